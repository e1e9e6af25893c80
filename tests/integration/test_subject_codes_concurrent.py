"""Subject codes under concurrency: two coordinators at the same instant never get a gap or a twin."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from cartrial.apps.subjects.models import Subject
from cartrial.domain.pathway import State

WRITERS = 8


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks across threads need PostgreSQL")
def test_concurrent_creation_gives_consecutive_unique_codes(world) -> None:
    barrier = threading.Barrier(WRITERS)
    codes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def create() -> None:
        try:
            barrier.wait(timeout=10)
            subject = world.new_subject("BDX", State.PRE_SCREENING)
            with lock:
                codes.append(subject.code)
        except BaseException as error:  # collected and re-raised in the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(codes) == [f"BDX-{n:03d}" for n in range(1, WRITERS + 1)]
    assert Subject.objects.filter(center__code="BDX").count() == WRITERS
    assert connection.vendor == "postgresql"


@pytest.mark.django_db(transaction=True)
def test_a_creation_failing_inside_its_transaction_returns_its_number(world, monkeypatch) -> None:
    from cartrial.apps.subjects import services

    world.new_subject("BDX")

    def broken_encrypt(fields: dict) -> str:
        raise RuntimeError("key store unavailable")

    monkeypatch.setattr(services, "identity_encrypt", broken_encrypt)
    with pytest.raises(RuntimeError):
        world.new_subject("BDX")
    monkeypatch.undo()
    assert world.new_subject("BDX").code == "BDX-002"
    assert not Subject.objects.filter(code="BDX-003").exists()
