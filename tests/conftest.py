"""Test set-up shared by every test: a test identity key and a fast password hasher.

Settings are imported by pytest-django before this file, so values are set on the live
settings object; the crypto and hashers read them at call time.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from cartrial.config.known_secrets import TEST_IDENTITY_KEY
from cartrial.domain.pathway import State

# Examples are judged by what they show, never by how fast a loaded 2-core machine runs them: no
# deadline and no "too slow" health check (speed is measured by the benchmarks, not by the tests).
# The suite draws the same examples on every run (derandomize): a test that passes today passes on
# the next clean clone, and a failure reproduces. CARTRIAL_HYPOTHESIS=explore draws new examples
# (random seed) to look for new failing cases; each one found is fixed and kept as a test.
hypothesis_settings.register_profile(
    "cartrial", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
hypothesis_settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("explore" if os.environ.get("CARTRIAL_HYPOTHESIS") == "explore" else "cartrial")


def pytest_configure(config: pytest.Config) -> None:
    try:
        from django.conf import settings
    except ImportError:
        return
    if not settings.configured:
        return
    settings.CARTRIAL_IDENTITY_KEY = os.environ.get("CARTRIAL_IDENTITY_KEY") or TEST_IDENTITY_KEY
    # Argon2 is the production hasher (tested in test_security); MD5 keeps fixtures fast.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
    ]


# --- database fixtures: the demo's centers and users, subjects at any stage ---------------------


if TYPE_CHECKING:  # Django is imported lazily so that `-p no:django` runs of CLI tests still load this file.
    from django.test import Client

    from cartrial.apps.accounts.models import User
    from cartrial.apps.audit.services import Actor
    from cartrial.apps.subjects.models import Subject
    from cartrial.apps.trial.models import Center
    from cartrial.protocols import Protocol


class World:
    """Centers (BDX, LIL, PAR, STR, MTL, LAB) and the demo users, one role per center."""

    def __init__(self, protocol: Protocol) -> None:
        from cartrial.demo import build_centers_and_users

        self.protocol = protocol
        self.centers, self.users = build_centers_and_users(protocol)
        # One number per subject even when threads register at once (next() on a count is atomic).
        self._numbers = itertools.count(1)

    def actor(self, username: str) -> Actor:
        """One action of `username` in their (first) role, now."""
        from cartrial.apps import clock
        from cartrial.apps.audit.services import Actor

        user = self.users[username]
        membership = user.memberships.select_related("center").first()
        assert membership is not None
        return Actor(user.pk, username, membership.role, membership.center.code, clock.now())

    def step(self, username: str, subject: Subject, action: Any, protocol: Protocol | None = None, **data: Any) -> Any:
        """Take a pathway step (or an action that takes one) as `username`, through the access entry
        point and the engine, exactly as the page and the API do; a refusal is recorded and raised."""
        from cartrial.apps.access import reach_subject
        from cartrial.apps.pathway.steps import step_run

        reach = reach_subject(self.users[username], subject.code, action)
        event = step_run(reach, action, data, protocol or self.protocol)
        subject.refresh_from_db()
        return event

    def act(self, username: str, subject: Subject, action: Any, **data: Any) -> Any:
        """Perform a logistics action as `username` (access entry point, one transaction, refusal recorded)."""
        from cartrial.apps.access import reach_subject
        from cartrial.apps.logistics.forms import action_perform

        reach = reach_subject(self.users[username], subject.code, action)
        result = action_perform(action, data, reach, self.protocol)
        subject.refresh_from_db()
        return result

    def new_subject(self, center_code: str = "BDX", state: State = State.PRE_SCREENING) -> Subject:
        """A subject at `center_code` moved through the real services up to `state`."""
        from cartrial.apps import clock
        from cartrial.apps.subjects.services import IdentityInput, subject_create
        from cartrial.demo import PathwayDriver

        number = next(self._numbers)
        subject = subject_create(
            actor=self.actor(f"{center_code.lower()}.coordinator"),
            center=self.centers[center_code],
            manufacturing_site=self.centers["LAB"],
            identity=IdentityInput(
                "Testpatient", f"Ann {number}", clock.now().date().replace(year=1985), f"IPP{number:05d}"
            ),
            protocol=self.protocol,
            synthetic=True,
        )
        if state is not State.PRE_SCREENING:
            start = clock.now() - timedelta(days=900)
            if state is State.LYMPHODEPLETION:
                # Lymphodepletion started four days ago, so that D0 today is inside the protocol's
                # D-5..D-3 window: a test may infuse now.
                from cartrial.demo import DAYS_TO_REACH

                start = clock.now() - timedelta(days=DAYS_TO_REACH[State.LYMPHODEPLETION] + 4)
            PathwayDriver(self.protocol, self.users, subject, start).advance_to(state)
            subject.refresh_from_db()
        return subject

    def client_for(self, username: str) -> Client:
        from django.test import Client

        client = Client()
        client.force_login(self.users[username])
        return client


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> None:
    """The test database, with PostgreSQL's trigger refusing TRUNCATE of the audit table disabled.

    Django empties the tables with TRUNCATE after each transactional test (live server, threads);
    the trigger would refuse it. It stays in place (only disabled), and the test that checks it
    enables it inside its own transaction.
    """
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_no_truncate")


@pytest.fixture
def world(db: Any) -> World:
    from cartrial.protocols import active_protocol

    return World(active_protocol())


@pytest.fixture
def client_for(world: World) -> Callable[[str], Client]:
    return world.client_for


@pytest.fixture
def user(world: World) -> Callable[[str], User]:
    return lambda name: world.users[name]


@pytest.fixture
def center(world: World) -> Callable[[str], Center]:
    return lambda code: world.centers[code]
