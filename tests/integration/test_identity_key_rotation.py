"""Rotating the identity encryption key: every identity re-encrypted under the newest key, its
hospital-number digest re-keyed, each rewrite audited, so that the old key can be removed."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.audit.services import Actor
from cartrial.apps.subjects.identity_crypto import hospital_number_digests, identity_decrypt
from cartrial.apps.subjects.models import SubjectIdentity
from cartrial.apps.subjects.services import IdentityInput, identity_key_rotate, subject_create
from cartrial.domain.errors import InvalidInput
from cartrial.domain.patient_identity import hospital_number_key

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
PEOPLE = [("Dupont", "Marie", date(1979, 4, 12), "IPP 12-345a"), ("Lefèvre", "Zoé", date(1990, 1, 2), "IPP2")]


def _register(world: Any, people: list[tuple[str, str, date, str]]) -> None:
    for person in people:
        subject_create(
            actor=world.actor("bdx.coordinator"),
            center=world.centers["BDX"],
            identity=IdentityInput(*person),
            protocol=world.protocol,
        )


def _identities() -> dict[str, dict[str, Any]]:
    rows = SubjectIdentity.objects.select_related("subject")
    return {row.subject.code: identity_decrypt(row.ciphertext) for row in rows}


@pytest.mark.django_db
def test_rotation_moves_every_identity_to_the_newest_key_so_the_old_one_can_go(world: Any) -> None:
    with override_settings(CARTRIAL_IDENTITY_KEY=OLD):
        _register(world, PEOPLE)
        before = _identities()
    with override_settings(CARTRIAL_IDENTITY_KEY=f"{NEW},{OLD}"):
        rotation = identity_key_rotate(actor=Actor.system("cli"), batch_size=1)
        assert (rotation.rekeyed, rotation.already_current) == (2, 0)
        again = identity_key_rotate(actor=Actor.system("cli"))
        assert (again.rekeyed, again.already_current) == (0, 2)  # an interrupted run is finished, not redone
    with override_settings(CARTRIAL_IDENTITY_KEY=NEW):
        assert _identities() == before
        for row in SubjectIdentity.objects.select_related("subject__center"):
            number = hospital_number_key(identity_decrypt(row.ciphertext)["hospital_number"])
            assert row.hospital_number_digest == hospital_number_digests("BDX", number)[0]
        # The blind index still finds the first patient under the new key alone.
        with pytest.raises(InvalidInput) as refused:
            _register(world, [("Dupont", "Marie", date(1979, 4, 12), "ipp12345A")])
        assert refused.value.code == "duplicate_hospital_number"
    rekeyed = AuditEntry.objects.filter(event="subject.identity_rekeyed").order_by("sequence")
    assert [entry.subject_code for entry in rekeyed] == ["BDX-001", "BDX-002"]
    assert all("Marie" not in entry.changes_json and "IPP" not in entry.changes_json for entry in rekeyed)
    assert audit_verify().intact


@pytest.mark.django_db
def test_an_identity_no_configured_key_opens_stops_the_rotation_naming_its_subject(world: Any) -> None:
    with override_settings(CARTRIAL_IDENTITY_KEY=OLD):
        _register(world, PEOPLE[:1])
    with override_settings(CARTRIAL_IDENTITY_KEY=NEW):
        _register(world, PEOPLE[1:])
        with pytest.raises(InvalidInput) as refused:
            identity_key_rotate(actor=Actor.system("cli"))
    assert refused.value.code == "identity_key_unknown"
    assert "BDX-001" in str(refused.value)
    assert not AuditEntry.objects.filter(event="subject.identity_rekeyed").exists()
