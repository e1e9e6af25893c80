"""The access matrix (DESIGN §5): every page and API endpoint × every role × own / other center.

What it proves:
- a subject outside the user's scope answers 404 on every page and endpoint, for every role;
- the subject list (page and API) holds exactly the codes the user may see, never another center's;
- identity data (names, birth date, hospital number) appears only for the staff of the subject's own
  center (investigator, coordinator, apheresis, pharmacist), never for the sponsor or the lab;
- sponsor roles read pseudonymous pages but cannot perform any step (403, `access.refused` recorded);
- the lab sees subjects only once their material has shipped, pseudonymously, and performs only
  manufacturing steps;
- a role performing a step it has no right to (STEP_ROLES) gets 403 and nothing changes.

The expected outcome of each case comes from the rules above written independently of the access
module (memberships, the subject's center and state, STEP_ROLES), never from the app's own answer.

The world (centers, users, ~20 subjects along the pathway, tokens, logged-in clients) is built once
for the module inside an outer transaction; each test runs in a savepoint rolled back after it, so a
step performed in one case is gone in the next.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.http import HttpResponse
from django.test import Client
from screening_data import api_payload, form_post
from url_routes import all_routes, key_of

from cartrial.apps import clock
from cartrial.apps.accounts.models import Membership
from cartrial.apps.accounts.services import api_token_create, membership_grant, user_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.subjects.models import EligibilityAssessment, PathwayEvent, Subject
from cartrial.apps.subjects.services import IdentityInput, subject_create
from cartrial.apps.trial.models import Center
from cartrial.apps.trial.services import center_create
from cartrial.demo import DEMO_PASSWORD, PathwayDriver, build_centers_and_users
from cartrial.domain.pathway import State, Step, steps_from
from cartrial.domain.roles import STEP_ROLES, Action, Role, roles_for
from cartrial.protocols import active_protocol

pytestmark = pytest.mark.django_db

# --- the rules under test, written from DESIGN §1/§5 and the brief ------------------------------

# Who registers subjects; who reads screening and consent; who reads a subject's audit trail (its own
# permission since issue 8: the center's investigators, the monitors and the data managers).
SUBJECT_CREATORS = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})
SCREENING_READERS = frozenset({Role.INVESTIGATOR, Role.COORDINATOR, Role.MONITOR, Role.DATA_MANAGER})
AUDIT_READERS = frozenset({Role.INVESTIGATOR, Role.MONITOR, Role.DATA_MANAGER})
# The casebook (issue 9): clinical staff enter it, sponsor's monitors and data managers read it and
# raise queries; not the lab, the apheresis unit, the pharmacy or the sponsor's administrator.
CASEBOOK_READERS = frozenset({Role.INVESTIGATOR, Role.COORDINATOR, Role.MONITOR, Role.DATA_MANAGER})
CASEBOOK_WRITERS = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})
QUERY_RAISERS = frozenset({Role.MONITOR, Role.DATA_MANAGER})
# The study dashboard (issue 10): the center's clinical staff, the monitors, the data managers and the
# sponsor's administrator, each over the centers they are members of; not the lab, the apheresis unit
# or the pharmacy. A subject's time courses are casebook data: the casebook's readers.
STUDY_DASHBOARD_READERS = frozenset(
    {Role.INVESTIGATOR, Role.COORDINATOR, Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN}
)
# Alerts (issue 10): a user reads and acknowledges the alerts of their centers that name their role
# among those who must act (an SAE clock: investigators, coordinators, the center's monitor), and
# the center's investigators every alert of their center; every role has the notifications page.
SAE_ALERT_ROLES = frozenset({Role.INVESTIGATOR, Role.COORDINATOR, Role.MONITOR})
# Safety (issue 10): the center's clinical staff record AEs; only the investigator assesses
# relatedness and decides DLTs; every sponsor role reads, pseudonymously.
SAFETY_READERS = frozenset({Role.INVESTIGATOR, Role.COORDINATOR, Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN})
SAFETY_WRITERS = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})
RELATEDNESS_ASSESSORS = frozenset({Role.INVESTIGATOR})
# The network simulation (issue 11): the sponsor's capacity planning, no patient data; the sponsor's
# administrator and the data managers, wherever they are members; nobody else.
SIMULATION_RUNNERS = frozenset({Role.SPONSOR_ADMIN, Role.DATA_MANAGER})
# Staff of the subject's own hospital: the only ones who may see who the patient is.
IDENTITY_ROLES = frozenset({Role.INVESTIGATOR, Role.COORDINATOR, Role.APHERESIS, Role.PHARMACIST})
# States reached only after the material was shipped to the lab: the lab sees the subject from
# then on, through infusion and follow-up (it holds or has held the cells), never before.
LAB_SEES = frozenset(
    {
        State.MATERIAL_SHIPPED,
        State.MANUFACTURING,
        State.PRODUCT_RELEASED,
        State.MANUFACTURING_FAILED,
        State.PRODUCT_SHIPPED,
        State.PRODUCT_RECEIVED,
        State.LYMPHODEPLETION,
        State.INFUSED,
        State.ACUTE_MONITORING,
        State.FOLLOW_UP,
        State.COMPLETED,
    }
)
LAB_NEVER_SEES = (
    State.PRE_SCREENING,
    State.SCREENING,
    State.ELIGIBLE,
    State.INCLUDED,
    State.APHERESIS_SCHEDULED,
    State.APHERESIS_COLLECTED,
)

# One user per role; "own" is the center where the role acts, "other" one where it has no role.
ROLE_USERS: dict[Role, str] = {
    Role.INVESTIGATOR: "bdx.investigator",
    Role.COORDINATOR: "bdx.coordinator",
    Role.APHERESIS: "bdx.apheresis",
    Role.PHARMACIST: "bdx.pharmacist",
    Role.MANUFACTURING: "lab.manufacturing",
    Role.MONITOR: "cra.monitor",  # assigned to BDX and LIL only
    Role.DATA_MANAGER: "dm.datamanager",  # all five demo centers, not TLS
    Role.SPONSOR_ADMIN: "sponsor.admin",  # all five demo centers, not TLS
}
OWN_CENTER: dict[Role, str] = {role: ("LAB" if role is Role.MANUFACTURING else "BDX") for role in Role}
OTHER_CENTER: dict[Role, str] = {
    Role.INVESTIGATOR: "LIL",
    Role.COORDINATOR: "LIL",
    Role.APHERESIS: "LIL",
    Role.PHARMACIST: "LIL",
    Role.MANUFACTURING: "LYO",  # another manufacturing lab
    Role.MONITOR: "PAR",
    Role.DATA_MANAGER: "TLS",
    Role.SPONSOR_ADMIN: "TLS",
}
ROLES = list(ROLE_USERS)
CODE_RE = re.compile(r"\b(?:BDX|LIL|PAR|STR|MTL|TLS)-\d{3}\b")


@dataclass
class Built:
    centers: dict[str, Center]
    users: dict[str, Any]
    subjects: dict[str, Subject]  # by label
    identity: dict[str, tuple[str, ...]] = field(default_factory=dict)  # code -> identity strings
    clients: dict[str, Client] = field(default_factory=dict)
    api: dict[str, Client] = field(default_factory=dict)
    roles: dict[str, dict[str, Role]] = field(default_factory=dict)  # username -> center code -> role

    # -- oracles -----------------------------------------------------------------------------
    def visible(self, username: str, subject: Subject) -> bool:
        roles = self.roles[username]
        role_here = roles.get(subject.center.code)
        if role_here is not None and role_here is not Role.MANUFACTURING:
            return True
        site = subject.manufacturing_site.code if subject.manufacturing_site else None
        shipped = subject.pathway_events.filter(step="ship_material").exists()
        return roles.get(site or "") is Role.MANUFACTURING and shipped

    def identity_allowed(self, username: str, subject: Subject) -> bool:
        return self.roles[username].get(subject.center.code) in IDENTITY_ROLES

    def visible_codes(self, username: str, center: str | None = None) -> set[str]:
        return {
            s.code
            for s in Subject.objects.select_related("center", "manufacturing_site")
            if self.visible(username, s) and (center is None or s.center.code == center)
        }

    def assert_no_identity_leak(self, username: str, response: HttpResponse) -> None:
        """No identity string of a subject this user may not identify appears in the response."""
        body = response.content.decode("utf-8", errors="replace").lower()  # PDFs and files too
        for subject in Subject.objects.select_related("center"):
            if self.identity_allowed(username, subject):
                continue
            for secret in self.identity.get(subject.code, ()):
                assert secret.lower() not in body, f"{username} sees identity '{secret}' of {subject.code}"


def _identity(index: int) -> IdentityInput:
    """Distinctive identity strings, so that any of them found in a response is a leak."""
    return IdentityInput(
        family_name=f"Famqz{index:02d}xw",
        given_names=f"Givqz{index:02d}xw",
        birth_date=date(1961, 1 + index % 12, 1 + index % 27),
        hospital_number=f"HNQZ{index:02d}77",
    )


def _build() -> Built:
    protocol = active_protocol()
    centers, users = build_centers_and_users(protocol)
    system = Actor.system("test")
    # A clinical center where no sponsor user is assigned, and a second manufacturing lab.
    centers["TLS"] = center_create(
        actor=system,
        code="TLS",
        name="CHU de Toulouse",
        city="Toulouse",
        country="FR",
        time_zone="Europe/Paris",
        language="fr",
        kind=Center.Kind.CLINICAL,
    )
    centers["LYO"] = center_create(
        actor=system,
        code="LYO",
        name="Second lab",
        city="Lyon",
        country="FR",
        time_zone="Europe/Paris",
        language="fr",
        kind=Center.Kind.MANUFACTURING,
    )
    tls = user_create(actor=system, username="tls.coordinator", password=DEMO_PASSWORD, first_name="T", last_name="L")
    membership_grant(actor=system, user=tls, center=centers["TLS"], role=Role.COORDINATOR)
    users["tls.coordinator"] = tls

    built = Built(centers=centers, users=users, subjects={})
    index = 0

    def make(label: str, center: str, state: State, site: str = "LAB") -> None:
        nonlocal index
        index += 1
        identity = _identity(index)
        subject = subject_create(
            actor=Actor(
                users[f"{center.lower()}.coordinator"].pk,
                f"{center.lower()}.coordinator",
                Role.COORDINATOR.value,
                center,
                clock.now(),
            ),
            center=centers[center],
            manufacturing_site=centers[site],
            identity=identity,
            protocol=protocol,
            synthetic=True,
        )
        if state is not State.PRE_SCREENING:
            PathwayDriver(protocol, users, subject, clock.now() - timedelta(days=900)).advance_to(state)
        subject.refresh_from_db()
        built.subjects[label] = subject
        built.identity[subject.code] = (
            identity.family_name,
            identity.given_names,
            identity.birth_date.isoformat(),
            identity.hospital_number,
        )

    make("bdx_shipped", "BDX", State.MATERIAL_SHIPPED)  # the "own" subject of every role
    make("bdx_screening", "BDX", State.SCREENING)  # eligibility is assessed in screening
    make("bdx_lyo", "BDX", State.MATERIAL_SHIPPED, site="LYO")  # the other lab's material
    make("lil_shipped", "LIL", State.MATERIAL_SHIPPED)
    make("par_shipped", "PAR", State.MATERIAL_SHIPPED)
    make("tls_pre", "TLS", State.PRE_SCREENING)
    for state in (*LAB_NEVER_SEES, *sorted(LAB_SEES - {State.MATERIAL_SHIPPED})):
        if state is not State.SCREENING:
            make(f"bdx_{state.value}", "BDX", state)

    for membership in Membership.objects.select_related("user", "center"):
        built.roles.setdefault(membership.user.username, {})[membership.center.code] = Role(membership.role)
    for username in ROLE_USERS.values():
        built.clients[username] = Client()
        built.clients[username].force_login(users[username])
        token = api_token_create(actor=system, user=users[username], label="matrix")
        built.api[username] = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    return built


@pytest.fixture(scope="module")
def built(django_db_setup: None, django_db_blocker: Any) -> Iterator[Built]:
    """The world, built once; each test's own transaction is a savepoint inside this one."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build()
        transaction.set_rollback(True)


# --- helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What a refused or out-of-scope request must leave untouched."""

    subjects: int
    state: str
    events: int
    assessments: int


def _snapshot(subject: Subject) -> Snapshot:
    return Snapshot(
        subjects=Subject.objects.count(),
        state=Subject.objects.get(pk=subject.pk).state,
        events=PathwayEvent.objects.filter(subject=subject).count(),
        assessments=EligibilityAssessment.objects.filter(subject=subject).count(),
    )


def _last_sequence() -> int:
    entry = AuditEntry.objects.order_by("-sequence").first()
    return entry.sequence if entry else 0


def _entries_after(sequence: int) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(sequence__gt=sequence).order_by("sequence"))


def _assert_refusal_recorded(since: int, username: str, subject: Subject, what: str) -> None:
    entries = _entries_after(since)
    assert [e.event for e in entries] == ["access.refused"], [e.event for e in entries]
    entry = entries[0]
    assert entry.actor_username == username
    assert entry.subject_code == subject.code
    assert what in entry.changes_json


def _codes(response: HttpResponse) -> set[str]:
    return set(CODE_RE.findall(response.content.decode("utf-8", errors="replace")))


def _screening_form() -> dict[str, object]:
    """The screening page's form for an eligible patient (tests/integration/screening_data.py)."""
    return form_post()


# --- the endpoint × role × center matrix --------------------------------------------------------


@dataclass(frozen=True)
class Case:
    built: Built
    role: Role
    own: bool

    @property
    def username(self) -> str:
        return ROLE_USERS[self.role]

    @property
    def page(self) -> Client:
        return self.built.clients[self.username]

    @property
    def api(self) -> Client:
        return self.built.api[self.username]

    @property
    def center(self) -> str:
        return OWN_CENTER[self.role] if self.own else OTHER_CENTER[self.role]

    def subject(self, own_label: str = "bdx_shipped") -> Subject:
        """The target: a BDX subject (own) or one of the other center's (or other lab's)."""
        if self.own:
            label = own_label
        else:
            label = {"LIL": "lil_shipped", "PAR": "par_shipped", "TLS": "tls_pre", "LYO": "bdx_lyo"}[self.center]
        return Subject.objects.select_related("center", "manufacturing_site").get(pk=self.built.subjects[label].pk)

    def visible(self, subject: Subject) -> bool:
        return self.built.visible(self.username, subject)

    def may(self, step: Step) -> bool:
        return self.role in STEP_ROLES[step]

    def reads_screening(self) -> bool:
        return self.role in SCREENING_READERS

    def reads_audit(self) -> bool:
        return self.role in AUDIT_READERS


def _page_list(case: Case) -> list[HttpResponse]:
    everything = case.page.get("/subjects/")
    assert everything.status_code == 200
    assert _codes(everything) == case.built.visible_codes(case.username)
    filtered = case.page.get("/subjects/", {"center": case.center})
    assert filtered.status_code == 200
    assert _codes(filtered) == case.built.visible_codes(case.username, case.center)
    if not case.own:
        assert _codes(filtered) == set()
    if case.role in IDENTITY_ROLES:  # staff see their own patients' names in the list
        own = case.built.subjects["bdx_shipped"]
        assert case.built.identity[own.code][0].upper() in everything.content.decode()
    return [everything, filtered]


def _page_create_get(case: Case) -> list[HttpResponse]:
    response = case.page.get("/subjects/new/")
    if case.role in SUBJECT_CREATORS:
        assert response.status_code == 200
        body = response.content.decode()
        assert f'value="{OWN_CENTER[case.role]}"' in body
        assert f'value="{OTHER_CENTER[case.role]}"' not in body
    else:
        assert response.status_code == 403
    return [response]


def _identity_payload(center: str) -> dict[str, str]:
    return {
        "center": center,
        "family_name": "Newpatqz",
        "given_names": "Newgivqz",
        "birth_date": "1970-05-05",
        "hospital_number": "HNNEWQZ1",
    }


def _page_create_post(case: Case) -> list[HttpResponse]:
    before = Subject.objects.count()
    at_center = Subject.objects.filter(center__code=case.center).count()
    response = case.page.post("/subjects/new/", _identity_payload(case.center))
    if case.role in SUBJECT_CREATORS and case.own:
        expected = f"{case.center}-{at_center + 1:03d}"
        assert response.status_code == 302
        assert response["Location"] == f"/subjects/{expected}/"
        assert Subject.objects.get(code=expected).center.code == case.center
        assert Subject.objects.count() == before + 1
    else:
        # A creator choosing a center that is not theirs gets the form back with the error; others a 403.
        assert response.status_code == (422 if case.role in SUBJECT_CREATORS else 403)
        assert Subject.objects.count() == before
    return [response]


def _page_detail(case: Case) -> list[HttpResponse]:
    subject = case.subject()
    response = case.page.get(f"/subjects/{subject.code}/")
    if not case.visible(subject):
        assert response.status_code == 404
        return [response]
    assert response.status_code == 200
    assert subject.code in response.content.decode()
    if case.built.identity_allowed(case.username, subject):
        family, _given, birth, hospital = case.built.identity[subject.code]
        body = response.content.decode()
        assert family.upper() in body and hospital in body and birth in body
    return [response]


def _page_eligibility_get(case: Case) -> list[HttpResponse]:
    subject = case.subject("bdx_screening")
    response = case.page.get(f"/subjects/{subject.code}/eligibility/")
    if not case.visible(subject):
        assert response.status_code == 404
    else:
        assert response.status_code == (200 if case.reads_screening() else 403)
    return [response]


def _page_eligibility_post(case: Case) -> list[HttpResponse]:
    subject = case.subject("bdx_screening")
    before, since = _snapshot(subject), _last_sequence()
    response = case.page.post(f"/subjects/{subject.code}/eligibility/", {**_screening_form(), "save": "1"})
    if not case.visible(subject):
        assert response.status_code == 404
        assert _snapshot(subject) == before and _entries_after(since) == []
    elif case.role in roles_for(Action.ENTER_SCREENING_DATA):
        assert response.status_code == 302
        assert EligibilityAssessment.objects.filter(subject=subject).count() == before.assessments + 1
    else:
        assert response.status_code == 403
        assert _snapshot(subject) == before
        _assert_refusal_recorded(since, case.username, subject, Action.ENTER_SCREENING_DATA.value)
    return [response]


def _page_step_get(case: Case) -> list[HttpResponse]:
    subject = case.subject()
    response = case.page.get(f"/subjects/{subject.code}/steps/{Step.WITHDRAW.value}/")
    assert response.status_code == (200 if case.visible(subject) else 404)
    return [response]


def _page_step_post(case: Case) -> list[HttpResponse]:
    subject = case.subject()
    before, since = _snapshot(subject), _last_sequence()
    response = case.page.post(f"/subjects/{subject.code}/steps/{Step.WITHDRAW.value}/", {"reason": "matrix"})
    if not case.visible(subject):
        assert response.status_code == 404
        assert _snapshot(subject) == before and _entries_after(since) == []
    elif case.may(Step.WITHDRAW):
        assert response.status_code == 302
        assert Subject.objects.get(pk=subject.pk).state == State.WITHDRAWN.value
    else:
        assert response.status_code == 403
        assert _snapshot(subject) == before
        _assert_refusal_recorded(since, case.username, subject, Step.WITHDRAW.value)
    return [response]


def _page_audit(case: Case) -> list[HttpResponse]:
    subject = case.subject()
    response = case.page.get(f"/subjects/{subject.code}/audit/")
    if not case.visible(subject):
        assert response.status_code == 404
    elif case.reads_audit():
        assert response.status_code == 200
        assert "subject.created" in response.content.decode()
    else:
        assert response.status_code == 403
    return [response]


def _api_centers(case: Case) -> list[HttpResponse]:
    response = case.api.get("/api/v1/centers")
    assert response.status_code == 200
    codes = {row["code"] for row in response.json()["items"]}
    assert codes == set(case.built.roles[case.username])
    assert (case.center in codes) is case.own
    return [response]


def _api_list(case: Case) -> list[HttpResponse]:
    everything = case.api.get("/api/v1/subjects")
    assert everything.status_code == 200
    assert {row["code"] for row in everything.json()["items"]} == case.built.visible_codes(case.username)
    filtered = case.api.get("/api/v1/subjects", {"center": case.center})
    assert filtered.status_code == 200
    assert {row["code"] for row in filtered.json()["items"]} == case.built.visible_codes(case.username, case.center)
    return [everything, filtered]


def _api_create(case: Case) -> list[HttpResponse]:
    before = Subject.objects.count()
    at_center = Subject.objects.filter(center__code=case.center).count()
    response = case.api.post("/api/v1/subjects", _identity_payload(case.center), content_type="application/json")
    if not case.own:
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert Subject.objects.count() == before
    elif case.role in SUBJECT_CREATORS:
        assert response.status_code == 201
        assert response.json()["code"] == f"{case.center}-{at_center + 1:03d}"
        assert response.json()["identity"]["hospital_number"] == "HNNEWQZ1"
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
        assert Subject.objects.count() == before
    return [response]


def _api_detail(case: Case) -> list[HttpResponse]:
    subject = case.subject()
    response = case.api.get(f"/api/v1/subjects/{subject.code}")
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        return [response]
    assert response.status_code == 200
    identity = response.json()["identity"]
    if case.built.identity_allowed(case.username, subject):
        family, given, birth, hospital = case.built.identity[subject.code]
        assert identity == {
            "family_name": family,
            "given_names": given,
            "birth_date": birth,
            "hospital_number": hospital,
        }
    else:
        assert identity is None
    return [response]


def _api_steps(case: Case) -> list[HttpResponse]:
    subject = case.subject()
    response = case.api.get(f"/api/v1/subjects/{subject.code}/steps")
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        return [response]
    assert response.status_code == 200
    expected = [s.value for s in steps_from(State(subject.state)) if case.may(s)]
    assert [row["step"] for row in response.json()["items"]] == expected
    return [response]


def _api_transition(case: Case) -> list[HttpResponse]:
    subject = case.subject()
    before, since = _snapshot(subject), _last_sequence()
    response = case.api.post(
        f"/api/v1/subjects/{subject.code}/transitions",
        {"step": Step.WITHDRAW.value, "data": {"reason": "matrix"}},
        content_type="application/json",
    )
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert _snapshot(subject) == before and _entries_after(since) == []
    elif case.may(Step.WITHDRAW):
        assert response.status_code == 200 and response.json()["state"] == State.WITHDRAWN.value
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
        assert _snapshot(subject) == before
        _assert_refusal_recorded(since, case.username, subject, Step.WITHDRAW.value)
    return [response]


def _api_eligibility(case: Case) -> list[HttpResponse]:
    subject = case.subject("bdx_screening")
    before, since = _snapshot(subject), _last_sequence()
    response = case.api.post(
        f"/api/v1/subjects/{subject.code}/eligibility", api_payload(), content_type="application/json"
    )
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert _snapshot(subject) == before and _entries_after(since) == []
    elif case.role in roles_for(Action.ENTER_SCREENING_DATA):
        assert response.status_code == 200 and response.json()["verdict"] == "eligible"
        assert EligibilityAssessment.objects.filter(subject=subject).count() == before.assessments + 1
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
        assert _snapshot(subject) == before
        _assert_refusal_recorded(since, case.username, subject, Action.ENTER_SCREENING_DATA.value)
    return [response]


def _api_audit(case: Case) -> list[HttpResponse]:
    subject = case.subject()
    response = case.api.get(f"/api/v1/subjects/{subject.code}/audit")
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    elif case.reads_audit():
        assert response.status_code == 200
        assert "subject.created" in {row["event"] for row in response.json()["items"]}
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
    return [response]


# Issue 12 (the API complete): the pathway's and the screening pages' reads and actions, and the
# feed of changes of the audit trail.


def _api_timeline(case: Case) -> list[HttpResponse]:
    subject = case.subject()
    response = case.api.get(f"/api/v1/subjects/{subject.code}/timeline", {"limit": 1000})
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        return [response]
    assert response.status_code == 200
    steps = list(
        PathwayEvent.objects.filter(subject=subject).order_by("occurred_at", "pk").values_list("step", flat=True)
    )
    assert [row["step"] for row in response.json()["items"]] == steps
    return [response]


def _api_step_form(case: Case) -> list[HttpResponse]:
    subject = case.subject()
    response = case.api.get(f"/api/v1/subjects/{subject.code}/steps/{Step.WITHDRAW.value}")
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        return [response]
    assert response.status_code == 200
    assert [f["name"] for f in response.json()["fields"]] == ["reason"]
    offered = case.may(Step.WITHDRAW) and Step.WITHDRAW in steps_from(State(subject.state))
    assert response.json()["offered"] is offered
    return [response]


def _screening_read(case: Case, response: HttpResponse, subject: Subject, since: int) -> None:
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert _entries_after(since) == []
    elif case.reads_screening():
        assert response.status_code == 200, response.content
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
        _assert_refusal_recorded(since, case.username, subject, Action.READ_SCREENING.value)


def _api_consent_read(case: Case) -> list[HttpResponse]:
    subject = case.subject()
    since = _last_sequence()
    response = case.api.get(f"/api/v1/subjects/{subject.code}/consent")
    _screening_read(case, response, subject, since)
    if response.status_code == 200:
        assert [c["document_version"] for c in response.json()["consents"]] == ["1.0"]
    return [response]


def _api_eligibility_read(case: Case) -> list[HttpResponse]:
    subject = case.subject("bdx_screening")
    since = _last_sequence()
    response = case.api.get(f"/api/v1/subjects/{subject.code}/eligibility")
    _screening_read(case, response, subject, since)
    if response.status_code == 200:
        assert response.json()["editable"] is True
    return [response]


def _api_eligibility_preview(case: Case) -> list[HttpResponse]:
    subject = case.subject("bdx_screening")
    before, since = _snapshot(subject), _last_sequence()
    response = case.api.post(
        f"/api/v1/subjects/{subject.code}/eligibility/preview", api_payload(), content_type="application/json"
    )
    _screening_read(case, response, subject, since)
    assert _snapshot(subject) == before
    if response.status_code == 200:
        assert response.json()["verdict"] == "eligible" and _entries_after(since) == []
    return [response]


def _screened_codes(case: Case, readers: frozenset[Role]) -> set[str]:
    """The screened subjects of the centers where the user's role is one of `readers`."""
    roles = case.built.roles[case.username]
    screened = Subject.objects.filter(pathway_events__step=Step.START_SCREENING.value).select_related("center")
    return {s.code for s in screened.distinct() if roles.get(s.center.code) in readers}


def _api_screening_log(case: Case) -> list[HttpResponse]:
    everything = case.api.get("/api/v1/screening-log", {"limit": 1000})
    filtered = case.api.get("/api/v1/screening-log", {"center": case.center})
    if not case.reads_screening():
        assert everything.status_code == filtered.status_code == 403
        return [everything, filtered]
    assert everything.status_code == 200
    assert {row["subject"] for row in everything.json()["items"]} == _screened_codes(case, SCREENING_READERS)
    if case.own:
        assert filtered.status_code == 200
        assert {row["center"] for row in filtered.json()["items"]} == {case.center}
    else:
        assert filtered.status_code == 404 and filtered.json()["code"] == "not_found"
    return [everything, filtered]


def _api_consort(case: Case) -> list[HttpResponse]:
    everything = case.api.get("/api/v1/consort")
    filtered = case.api.get("/api/v1/consort", {"center": case.center})
    if not case.reads_screening():
        assert everything.status_code == filtered.status_code == 403
        return [everything, filtered]
    assert everything.status_code == 200
    assert everything.json()["screened"] == len(_screened_codes(case, SCREENING_READERS))
    if case.own:
        screened = {code for code in _screened_codes(case, SCREENING_READERS) if code.startswith(f"{case.center}-")}
        assert filtered.status_code == 200 and filtered.json()["screened"] == len(screened)
    else:
        assert filtered.status_code == 404
    return [everything, filtered]


def _api_reconsent_list(case: Case) -> list[HttpResponse]:
    everything = case.api.get("/api/v1/reconsent")
    filtered = case.api.get("/api/v1/reconsent", {"center": case.center})
    if not case.reads_screening():
        assert everything.status_code == filtered.status_code == 403
        return [everything, filtered]
    # Every consent of the world is the current version: nobody to re-consent.
    assert everything.status_code == 200 and everything.json()["items"] == []
    assert filtered.status_code == (200 if case.own else 404)
    return [everything, filtered]


def _api_changes(case: Case) -> list[HttpResponse]:
    since = _last_sequence()
    response = case.api.get("/api/v1/changes", {"limit": 1000})
    if not case.reads_audit():
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
        assert [(e.event, e.entity_id) for e in _entries_after(since)] == [("access.refused", "changes")]
        return [response]
    assert response.status_code == 200
    roles = case.built.roles[case.username]
    readable = {s.code for s in Subject.objects.select_related("center") if roles.get(s.center.code) in AUDIT_READERS}
    body = response.json()
    assert body["total"] == AuditEntry.objects.filter(subject_code__in=readable).count() > 0
    assert {row["subject"] for row in body["items"]} <= readable
    if not case.own:
        assert case.subject().code not in {row["subject"] for row in body["items"]}
    later = case.api.get("/api/v1/changes", {"after": body["items"][-1]["sequence"], "limit": 1000})
    assert {row["subject"] for row in later.json()["items"]} <= readable
    return [response, later]


def _api_screening_fields(case: Case) -> list[HttpResponse]:
    response = case.api.get("/api/v1/screening-fields")
    assert response.status_code == 200 and response.json()["fields"]
    return [response]


def _casebook_subject(case: Case) -> Subject:
    """A subject in follow-up (own: BDX) or the other center's subject."""
    return case.subject("bdx_follow_up")


def _d28(subject: Subject) -> str:
    """D28 of an infused subject; any past date for another (the request is refused before the date matters)."""
    if subject.infusion_date is None:
        return (clock.now().date() - timedelta(days=30)).isoformat()
    return (subject.infusion_date + timedelta(days=28)).isoformat()


def _casebook_rows() -> tuple[int, int, int]:
    from cartrial.apps.casebook.models import FormRecord, Query, VisitRecord

    return (VisitRecord.objects.count(), FormRecord.objects.count(), Query.objects.count())


def _page_casebook(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.page.get(f"/casebook/subjects/{subject.code}/")
    if not case.visible(subject):
        assert response.status_code == 404
    elif case.role in CASEBOOK_READERS:
        assert response.status_code == 200
        assert 'data-visit="D28"' in response.content.decode()
        # The disease-activity table (issue 10) is part of the casebook page.
        assert 'id="disease-activity"' in response.content.decode()
    else:
        assert response.status_code == 403
    return [response]


def _page_visit_post(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    before, since = _casebook_rows(), _last_sequence()
    response = case.page.post(
        f"/casebook/subjects/{subject.code}/visits/D28/", {"op": "done", "done_on": _d28(subject)}
    )
    if not case.visible(subject):
        assert response.status_code == 404
        assert _casebook_rows() == before and _entries_after(since) == []
    elif case.role in CASEBOOK_WRITERS:
        assert response.status_code == 302
        assert _casebook_rows()[0] == before[0] + 1
    else:
        assert response.status_code == 403
        assert _casebook_rows() == before
        if case.role in CASEBOOK_READERS:
            _assert_refusal_recorded(since, case.username, subject, Action.ENTER_FORM_DATA.value)
    return [response]


def _page_study_grid(case: Case) -> list[HttpResponse]:
    responses = [case.page.get("/casebook/"), case.page.get("/casebook/worklist/"), case.page.get("/casebook/queries/")]
    for response in responses:
        assert response.status_code == (200 if case.role in CASEBOOK_READERS else 403)
    if case.role in CASEBOOK_READERS:
        # Only subjects of the user's scope, never another center's.
        assert _codes(responses[0]) <= case.built.visible_codes(case.username)
        if case.own:
            assert case.built.subjects["bdx_follow_up"].code in _codes(responses[0])
    return responses


def _api_visits(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.api.get(f"/api/v1/subjects/{subject.code}/visits")
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    elif case.role in CASEBOOK_READERS:
        assert response.status_code == 200
        assert "D28" in {v["code"] for v in response.json()["items"]}
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
    return [response]


def _api_disease_activity(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.api.get(f"/api/v1/subjects/{subject.code}/disease-activity")
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    elif case.role in CASEBOOK_READERS:
        assert response.status_code == 200
        assert set(response.json()) == {"visits", "doris_sustained_from"}
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
    return [response]


def _api_form_put(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    from cartrial.apps.access import reach_subject
    from cartrial.apps.casebook.services import visit_done_record

    if case.visible(subject):
        coordinator = case.built.users[f"{subject.center.code.lower()}.coordinator"]
        reach = reach_subject(coordinator, subject.code, Action.ENTER_FORM_DATA)
        reach.run(
            lambda: visit_done_record(
                actor=reach.actor,
                subject=subject,
                protocol=active_protocol(),
                visit_code="D28",
                done_on=date.fromisoformat(_d28(subject)),
            )
        )
    before, since = _casebook_rows(), _last_sequence()
    body = {"items": {"temperature_c": 37.0, "heart_rate_bpm": 70, "systolic_bp_mmhg": 120, "diastolic_bp_mmhg": 70}}
    response = case.api.put(
        f"/api/v1/subjects/{subject.code}/visits/D28/forms/vital_signs", body, content_type="application/json"
    )
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert _casebook_rows() == before and _entries_after(since) == []
    elif case.role in CASEBOOK_WRITERS:
        assert response.status_code == 200 and response.json()["form"] == "vital_signs"
        assert _casebook_rows()[1] == before[1] + 1
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
        assert _casebook_rows() == before
        _assert_refusal_recorded(since, case.username, subject, Action.ENTER_FORM_DATA.value)
    return [response]


def _api_query_raise(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    before, since = _casebook_rows(), _last_sequence()
    response = case.api.post(
        f"/api/v1/subjects/{subject.code}/queries",
        {"visit": "D28", "form": "vital_signs", "item": "weight_kg", "text": "Weight missing?"},
        content_type="application/json",
    )
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert _casebook_rows() == before and _entries_after(since) == []
    elif case.role in QUERY_RAISERS:
        assert response.status_code == 201 and response.json()["status"] == "open"
        assert _casebook_rows()[2] == before[2] + 1
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
        assert _casebook_rows() == before
        _assert_refusal_recorded(since, case.username, subject, Action.RAISE_QUERY.value)
    return [response]


def _api_queries(case: Case) -> list[HttpResponse]:
    response = case.api.get("/api/v1/queries", {"status": "open"})
    if case.role in CASEBOOK_READERS:
        assert response.status_code == 200
        assert {q["subject"] for q in response.json()["items"]} <= case.built.visible_codes(case.username)
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
    return [response]


# --- the casebook's pages through the API (issue 12, item 8) ----------------------------------------
# Source-data verification is the monitor's, the lock the data manager's, the casebook's signature the
# investigator's (issue 9); the kinetics' markers and cohort are read by everyone, within their scope.
SOURCE_VERIFIERS = frozenset({Role.MONITOR})
DATA_LOCKERS = frozenset({Role.DATA_MANAGER})
CASEBOOK_SIGNERS = frozenset({Role.INVESTIGATOR})
FULL_VITALS = {
    "temperature_c": 37.0,
    "heart_rate_bpm": 70,
    "systolic_bp_mmhg": 120,
    "diastolic_bp_mmhg": 70,
    "spo2_pct": 98,
    "weight_kg": 60.0,
}


def _casebook_form(case: Case, subject: Subject, *, locked: bool = False) -> None:
    """D28 done and its vital signs saved complete by the subject's coordinator (locked by the data
    manager when asked); nothing for a subject the user cannot see."""
    if not case.visible(subject):
        return
    from cartrial.apps.access import reach_subject
    from cartrial.apps.casebook.services import form_save, forms_lock, visit_done_record

    protocol = active_protocol()
    coordinator = case.built.users[f"{subject.center.code.lower()}.coordinator"]
    reach = reach_subject(coordinator, subject.code, Action.ENTER_FORM_DATA)
    saved = reach.run(
        lambda: (
            visit_done_record(
                actor=reach.actor,
                subject=subject,
                protocol=protocol,
                visit_code="D28",
                done_on=date.fromisoformat(_d28(subject)),
            ),
            form_save(
                actor=reach.actor,
                subject=subject,
                protocol=protocol,
                visit_code="D28",
                form_code="vital_signs",
                items=FULL_VITALS,
            ),
        )[1]
    )
    if locked:
        locker = reach_subject(case.built.users["dm.datamanager"], subject.code, Action.LOCK_DATA)
        locker.run(lambda: forms_lock(actor=locker.actor, records=[saved.record]))


def _form_statuses(subject: Subject) -> list[str]:
    from cartrial.apps.casebook.models import FormRecord

    return list(FormRecord.objects.filter(subject=subject).order_by("pk").values_list("status", flat=True))


def _casebook_write(
    case: Case, path: str, body: dict[str, Any], allowed: frozenset[Role], ok: int, action: Action, locked: bool = False
) -> tuple[HttpResponse, Subject]:
    """A casebook action on the own (or the other center's) subject: 404 out of scope with nothing
    changed or recorded, `ok` for the roles allowed, 403 recorded for the others, nothing changed."""
    subject = _casebook_subject(case)
    _casebook_form(case, subject, locked=locked)
    before, statuses, since = _casebook_rows(), _form_statuses(subject), _last_sequence()
    response = case.api.post(f"/api/v1/subjects/{subject.code}{path}", body, content_type="application/json")
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert _casebook_rows() == before and _entries_after(since) == []
    elif case.role in allowed:
        assert response.status_code == ok, response.content
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
        assert _casebook_rows() == before and _form_statuses(subject) == statuses
        _assert_refusal_recorded(since, case.username, subject, action.value)
    return response, subject


def _api_casebook_lists(case: Case) -> list[HttpResponse]:
    responses = [
        case.api.get("/api/v1/casebook/grid"),
        case.api.get("/api/v1/casebook/worklist"),
        case.api.get("/api/v1/queries/summary"),
    ]
    for response in responses:
        assert response.status_code == (200 if case.role in CASEBOOK_READERS else 403)
    if case.role in CASEBOOK_READERS:
        grid = {row["subject"] for row in responses[0].json()["items"]}
        assert grid <= case.built.visible_codes(case.username)
        assert case.built.subjects["bdx_follow_up"].code in grid
        assert {e["subject"] for e in responses[1].json()["items"]} <= case.built.visible_codes(case.username)
    return responses


def _api_casebook_reads(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    base = f"/api/v1/subjects/{subject.code}"
    responses = [
        case.api.get(f"{base}/casebook"),
        case.api.get(f"{base}/visits/D28"),
        case.api.get(f"{base}/visits/D28/forms/vital_signs/queries"),
    ]
    for response in responses:
        if not case.visible(subject):
            assert response.status_code == 404 and response.json()["code"] == "not_found"
        elif case.role in CASEBOOK_READERS:
            assert response.status_code == 200
        else:
            assert response.status_code == 403 and response.json()["code"] == "access_denied"
    return responses


def _api_verification_read(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.api.get(f"/api/v1/subjects/{subject.code}/visits/D28/forms/vital_signs/verification")
    if not case.visible(subject):
        assert response.status_code == 404
    elif case.role in SOURCE_VERIFIERS:
        assert response.status_code == 200 and len(response.json()["checklist"]) == 4
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
    return [response]


def _api_form_verify(case: Case) -> list[HttpResponse]:
    path = "/visits/D28/forms/vital_signs/verification"
    response, subject = _casebook_write(case, path, {}, SOURCE_VERIFIERS, 200, Action.VERIFY_SOURCE)
    if response.status_code == 200:
        assert response.json()["status"] == "verified" and _form_statuses(subject) == ["verified"]
    return [response]


def _api_form_lock(case: Case) -> list[HttpResponse]:
    path = "/visits/D28/forms/vital_signs/lock"
    response, subject = _casebook_write(case, path, {}, DATA_LOCKERS, 200, Action.LOCK_DATA)
    if response.status_code == 200:
        assert _form_statuses(subject) == ["locked"]
    return [response]


def _api_form_unlock(case: Case) -> list[HttpResponse]:
    path = "/visits/D28/forms/vital_signs/unlock"
    body = {"reason": "Late source document"}
    response, subject = _casebook_write(case, path, body, DATA_LOCKERS, 200, Action.LOCK_DATA, locked=True)
    if response.status_code == 200:
        assert _form_statuses(subject) == ["complete"]
    return [response]


def _api_visit_lock_unlock(case: Case) -> list[HttpResponse]:
    locked, subject = _casebook_write(case, "/visits/D28/lock", {}, DATA_LOCKERS, 200, Action.LOCK_DATA)
    if locked.status_code == 200:
        assert _form_statuses(subject) == ["locked"]
        unlocked = case.api.post(
            f"/api/v1/subjects/{subject.code}/visits/D28/unlock", {"reason": "x"}, content_type="application/json"
        )
        assert unlocked.status_code == 200 and _form_statuses(subject) == ["complete"]
        return [locked, unlocked]
    return [locked]


def _api_casebook_lock(case: Case) -> list[HttpResponse]:
    response, subject = _casebook_write(case, "/casebook/lock", {}, DATA_LOCKERS, 200, Action.LOCK_DATA)
    if response.status_code == 200:
        assert _form_statuses(subject) == ["locked"]
    return [response]


def _api_casebook_sign(case: Case) -> list[HttpResponse]:
    body = {"password": DEMO_PASSWORD}
    path = "/casebook/signature"
    response, subject = _casebook_write(case, path, body, CASEBOOK_SIGNERS, 201, Action.SIGN_CASEBOOK, locked=True)
    if response.status_code == 201:
        assert _form_statuses(subject) == ["signed"] and response.json()["forms_signed"] == 1
    return [response]


def _api_unscheduled_visit(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    body = {"done_on": _d28(subject)}
    response, _ = _casebook_write(case, "/visits/unscheduled", body, CASEBOOK_WRITERS, 201, Action.ENTER_FORM_DATA)
    if response.status_code == 201:
        assert response.json()["visit"] == "U1"
    return [response]


def _api_protocol_descriptions(case: Case) -> list[HttpResponse]:
    """A form's definition and the kinetic markers are the protocol's, no patient's: every role reads them."""
    responses = [case.api.get("/api/v1/forms/vital_signs"), case.api.get("/api/v1/kinetics/markers")]
    assert [r.status_code for r in responses] == [200, 200]
    return responses


def _api_kinetics_reads(case: Case) -> list[HttpResponse]:
    """The cohort holds the infused subjects the user may see, for a center of theirs only; a subject's
    results are read by whoever may see the subject."""
    cohort = case.api.get("/api/v1/kinetics/cohort")
    assert cohort.status_code == 200
    codes = {p["subject"] for p in cohort.json()["items"]}
    infused = {s.code for s in Subject.objects.filter(infusion_date__isnull=False)}
    assert codes == case.built.visible_codes(case.username) & infused
    by_center = case.api.get("/api/v1/kinetics/cohort", {"center": case.center})
    if case.center in case.built.roles[case.username]:
        assert by_center.status_code == 200
    else:
        assert by_center.status_code == 404 and by_center.json()["code"] == "not_found"
    subject = _casebook_subject(case)
    results = case.api.get(f"/api/v1/subjects/{subject.code}/kinetics/observations")
    assert results.status_code == (200 if case.visible(subject) else 404)
    return [cohort, by_center, results]


def test_the_casebook_oracles_agree_with_the_access_table() -> None:
    assert roles_for(Action.VERIFY_SOURCE) == SOURCE_VERIFIERS
    assert roles_for(Action.LOCK_DATA) == DATA_LOCKERS
    assert roles_for(Action.SIGN_CASEBOOK) == CASEBOOK_SIGNERS


def _dashboard_codes(case: Case) -> set[str]:
    """The included subjects of the centers where the user's role reads the study dashboard."""
    roles = case.built.roles[case.username]
    return {
        s.code
        for s in Subject.objects.select_related("center")
        if roles.get(s.center.code) in STUDY_DASHBOARD_READERS and s.pathway_events.filter(step="include").exists()
    }


def _page_study_dashboard(case: Case) -> list[HttpResponse]:
    response = case.page.get("/dashboards/study/")
    if case.role in STUDY_DASHBOARD_READERS:
        assert response.status_code == 200
        assert _codes(response) == _dashboard_codes(case)
        assert case.built.subjects["bdx_follow_up"].code in _codes(response)
    else:
        assert response.status_code == 403
    return [response]


def _api_study_dashboard(case: Case) -> list[HttpResponse]:
    response = case.api.get("/api/v1/dashboards/study")
    if case.role in STUDY_DASHBOARD_READERS:
        assert response.status_code == 200
        assert {row["subject"] for row in response.json()["swimmers"]} == _dashboard_codes(case)
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
    return [response]


def _safety_dashboard_codes(case: Case) -> set[str]:
    """The infused subjects of the centers where the user's role reads safety data (each has its DLT
    window row on the safety dashboard)."""
    roles = case.built.roles[case.username]
    return {
        s.code
        for s in Subject.objects.select_related("center")
        if roles.get(s.center.code) in SAFETY_READERS and s.pathway_events.filter(step="infuse").exists()
    }


def _page_safety_dashboard(case: Case) -> list[HttpResponse]:
    response = case.page.get("/dashboards/safety/")
    if case.role in SAFETY_READERS:
        assert response.status_code == 200
        assert _codes(response) == _safety_dashboard_codes(case)
        assert case.built.subjects["bdx_follow_up"].code in _codes(response)
    else:
        assert response.status_code == 403
    return [response]


def _api_safety_dashboard(case: Case) -> list[HttpResponse]:
    response = case.api.get("/api/v1/dashboards/safety")
    if case.role in SAFETY_READERS:
        assert response.status_code == 200
        assert {row["subject"] for row in response.json()["dlt"]["subjects"]} == _safety_dashboard_codes(case)
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
    return [response]


def _page_time_courses(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.page.get(f"/dashboards/subjects/{subject.code}/time-courses/")
    if not case.visible(subject):
        assert response.status_code == 404
    elif case.role in CASEBOOK_READERS:
        assert response.status_code == 200
        assert 'data-series="car_t_cells car_t_copies"' in response.content.decode()
    else:
        assert response.status_code == 403
    return [response]


def _api_time_courses(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.api.get(f"/api/v1/subjects/{subject.code}/time-courses")
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    elif case.role in CASEBOOK_READERS:
        assert response.status_code == 200
        assert response.json()["subject"] == subject.code
        assert "sledai2k" in {series["key"] for series in response.json()["series"]}
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
    return [response]


# --- safety (issue 10) ----------------------------------------------------------------------------


def _safety_rows() -> tuple[int, int, str]:
    from cartrial.apps.safety.models import AdverseEvent, SaeReport

    assessed = ",".join(AdverseEvent.objects.order_by("pk").values_list("relatedness_cart", flat=True))
    return (AdverseEvent.objects.count(), SaeReport.objects.count(), assessed)


def _ae_body(serious: bool = True) -> dict[str, Any]:
    start = (clock.now().date() - timedelta(days=2)).isoformat()
    return {
        "term": "febrile_neutropenia",
        "grade": 3,
        "start_date": start,
        "serious": serious,
        "seriousness_criteria": ["hospitalisation"] if serious else [],
        "awareness_at": f"{start}T09:00" if serious else None,
        "action": "hospitalisation",
        "outcome": "recovering",
    }


def _existing_ae(case: Case, subject: Subject) -> int:
    """An SAE of the subject recorded by its center's coordinator (any id for an unreachable subject)."""
    if not case.visible(subject):
        return 1
    from cartrial.apps.access import reach_subject
    from cartrial.apps.safety.entries import read_adverse_event
    from cartrial.apps.safety.services import adverse_event_record

    coordinator = case.built.users[f"{subject.center.code.lower()}.coordinator"]
    reach = reach_subject(coordinator, subject.code, Action.RECORD_ADVERSE_EVENT)
    data = read_adverse_event(_ae_body(), subject.center.time_zone, ["hospitalisation"])
    ae = reach.run(
        lambda: adverse_event_record(actor=reach.actor, subject=reach.subject, protocol=active_protocol(), data=data)
    )
    return ae.pk


def _expect_read(case: Case, subject: Subject, response: HttpResponse, api: bool) -> None:
    if not case.visible(subject):
        assert response.status_code == 404
    elif case.role in SAFETY_READERS:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        if api:
            assert response.json()["code"] == "access_denied"


def _expect_write(
    case: Case,
    subject: Subject,
    response: HttpResponse,
    allowed: frozenset[Role],
    ok: int,
    before: Any,
    since: int,
    what: str,
) -> None:
    if not case.visible(subject):
        assert response.status_code == 404
        assert _safety_rows() == before and _entries_after(since) == []
    elif case.role in allowed:
        assert response.status_code == ok, response.content
        assert _safety_rows() != before
    else:
        assert response.status_code == 403
        assert _safety_rows() == before
        _assert_refusal_recorded(since, case.username, subject, what)


def _page_safety(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.page.get(f"/safety/subjects/{subject.code}/")
    _expect_read(case, subject, response, api=False)
    if response.status_code == 200:
        assert 'data-testid="adverse-events"' in response.content.decode()
    return [response]


def _neutropenic_value(case: Case, subject: Subject) -> int:
    """A grade 4 neutrophil count of the subject at D28, saved by its center's coordinator: the
    record to accept (any id for an unreachable subject)."""
    if not case.visible(subject):
        return 1
    from cartrial.apps.access import reach_subject
    from cartrial.apps.casebook.services import form_save, visit_done_record

    coordinator = case.built.users[f"{subject.center.code.lower()}.coordinator"]
    reach = reach_subject(coordinator, subject.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: visit_done_record(
            actor=reach.actor,
            subject=subject,
            protocol=active_protocol(),
            visit_code="D28",
            done_on=date.fromisoformat(_d28(subject)),
        )
    )
    reach = reach_subject(coordinator, subject.code, Action.ENTER_FORM_DATA)
    saved = reach.run(
        lambda: form_save(
            actor=reach.actor,
            subject=subject,
            protocol=active_protocol(),
            visit_code="D28",
            form_code="haematology",
            items={"anc": {"value": 0.3, "unit": "10^9/L", "lower_limit": 1.8, "upper_limit": 7.5}},
        )
    )
    return int(saved.record.pk)


def _page_lab_accept(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    record = _neutropenic_value(case, subject)
    before, since = _safety_rows(), _last_sequence()
    response = case.page.post(
        f"/safety/subjects/{subject.code}/", {"op": "accept_lab", "record": record, "item": "anc"}
    )
    _expect_write(case, subject, response, SAFETY_WRITERS, 302, before, since, Action.RECORD_ADVERSE_EVENT.value)
    return [response]


def _api_lab_proposals(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    _neutropenic_value(case, subject)
    response = case.api.get(f"/api/v1/subjects/{subject.code}/lab-proposals")
    _expect_read(case, subject, response, api=True)
    if response.status_code == 200:
        assert [p["term"] for p in response.json()["items"]] == ["neutrophil_count_decreased"]
    return [response]


def _api_lab_accept(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    record = _neutropenic_value(case, subject)
    before, since = _safety_rows(), _last_sequence()
    response = case.api.post(
        f"/api/v1/subjects/{subject.code}/lab-proposals",
        {"record": record, "item": "anc"},
        content_type="application/json",
    )
    _expect_write(case, subject, response, SAFETY_WRITERS, 201, before, since, Action.RECORD_ADVERSE_EVENT.value)
    return [response]


def _page_ae_new_post(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    before, since = _safety_rows(), _last_sequence()
    body = {k: v for k, v in _ae_body(serious=False).items() if v not in (None, [])}
    response = case.page.post(f"/safety/subjects/{subject.code}/adverse-events/new/", body)
    _expect_write(case, subject, response, SAFETY_WRITERS, 302, before, since, Action.RECORD_ADVERSE_EVENT.value)
    return [response]


def _page_ae_detail(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    ae_id = _existing_ae(case, subject)
    response = case.page.get(f"/safety/subjects/{subject.code}/adverse-events/{ae_id}/")
    _expect_read(case, subject, response, api=False)
    return [response]


def _api_ae_list(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.api.get(f"/api/v1/subjects/{subject.code}/adverse-events")
    _expect_read(case, subject, response, api=True)
    return [response]


def _api_ae_create(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    before, since = _safety_rows(), _last_sequence()
    response = case.api.post(
        f"/api/v1/subjects/{subject.code}/adverse-events", _ae_body(), content_type="application/json"
    )
    _expect_write(case, subject, response, SAFETY_WRITERS, 201, before, since, Action.RECORD_ADVERSE_EVENT.value)
    return [response]


def _api_ae_get(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.api.get(f"/api/v1/subjects/{subject.code}/adverse-events/{_existing_ae(case, subject)}")
    _expect_read(case, subject, response, api=True)
    return [response]


def _api_ae_put(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    ae_id = _existing_ae(case, subject)
    before, since = _safety_rows(), _last_sequence()
    response = case.api.put(
        f"/api/v1/subjects/{subject.code}/adverse-events/{ae_id}",
        {"changes": {"grade": 4}, "reason": "Transcription error"},
        content_type="application/json",
    )
    from cartrial.apps.safety.models import AdverseEvent

    if case.visible(subject) and case.role in SAFETY_WRITERS:
        assert response.status_code == 200 and AdverseEvent.objects.get(pk=ae_id).grade == 4
    elif case.visible(subject):
        assert response.status_code == 403 and AdverseEvent.objects.get(pk=ae_id).grade == 3
        _assert_refusal_recorded(since, case.username, subject, Action.RECORD_ADVERSE_EVENT.value)
    else:
        assert response.status_code == 404 and _safety_rows() == before and _entries_after(since) == []
    return [response]


def _api_sae_report(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    ae_id = _existing_ae(case, subject)
    before, since = _safety_rows(), _last_sequence()
    sent_at = (clock.now() - timedelta(days=1)).isoformat()
    response = case.api.post(
        f"/api/v1/subjects/{subject.code}/adverse-events/{ae_id}/sae-reports",
        {"kind": "initial", "sent_at": sent_at},
        content_type="application/json",
    )
    _expect_write(case, subject, response, SAFETY_WRITERS, 201, before, since, Action.RECORD_ADVERSE_EVENT.value)
    return [response]


def _api_relatedness(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    ae_id = _existing_ae(case, subject)
    before, since = _safety_rows(), _last_sequence()
    response = case.api.post(
        f"/api/v1/subjects/{subject.code}/adverse-events/{ae_id}/relatedness",
        {"cart": "possible", "lymphodepletion": "unlikely", "password": DEMO_PASSWORD},
        content_type="application/json",
    )
    _expect_write(case, subject, response, RELATEDNESS_ASSESSORS, 200, before, since, Action.ASSESS_RELATEDNESS.value)
    return [response]


def _api_dlt(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.api.get(f"/api/v1/subjects/{subject.code}/dlt")
    _expect_read(case, subject, response, api=True)
    if response.status_code == 200:
        assert response.json()["window_days"] == [0, 28]
    return [response]


def _api_dlt_decide(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    ae_id = 1
    if case.visible(subject) and subject.infusion_date is not None:
        from cartrial.apps.access import reach_subject
        from cartrial.apps.safety.entries import read_adverse_event
        from cartrial.apps.safety.services import adverse_event_record

        start = (subject.infusion_date + timedelta(days=2)).isoformat()
        crs = {**_ae_body(), "term": "cytokine_release_syndrome", "grade": 4, "start_date": start}
        crs["awareness_at"] = f"{start}T09:00"
        coordinator = case.built.users[f"{subject.center.code.lower()}.coordinator"]
        reach = reach_subject(coordinator, subject.code, Action.RECORD_ADVERSE_EVENT)
        data = read_adverse_event(crs, subject.center.time_zone, ["life_threatening"])
        ae_id = reach.run(
            lambda: adverse_event_record(
                actor=reach.actor, subject=reach.subject, protocol=active_protocol(), data=data
            )
        ).pk
    from cartrial.apps.safety.models import DltAssessment

    before, since = DltAssessment.objects.count(), _last_sequence()
    response = case.api.post(
        f"/api/v1/subjects/{subject.code}/dlt",
        {"adverse_event": ae_id, "decision": "confirmed", "password": DEMO_PASSWORD},
        content_type="application/json",
    )
    if not case.visible(subject):
        assert response.status_code == 404 and _entries_after(since) == []
    elif case.role in RELATEDNESS_ASSESSORS:
        assert response.status_code == 200, response.content
        assert DltAssessment.objects.count() == before + 1
        assert ae_id in {c["adverse_event"] for c in response.json()["candidates"] if c["decision"] == "confirmed"}
    else:
        assert response.status_code == 403 and DltAssessment.objects.count() == before
        _assert_refusal_recorded(since, case.username, subject, Action.DECIDE_DLT.value)
    return [response]


def _api_ctcae_terms(case: Case) -> list[HttpResponse]:
    response = case.api.get("/api/v1/ctcae-terms", {"q": "neutro"})
    if case.role in SAFETY_READERS:
        assert response.status_code == 200 and "febrile_neutropenia" in {t["code"] for t in response.json()["items"]}
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
    return [response]


def _alert(case: Case) -> tuple[Any, bool]:
    """An SAE clock alert on the case's subject, and whether this user may read and acknowledge it."""
    from cartrial.apps.alerts.services import raise_alert
    from cartrial.domain.alerts import AlertKind, SaeReport, sae_report_label

    subject = case.subject()
    alert = raise_alert(
        actor=Actor.system("matrix"),
        kind=AlertKind.SAE_CLOCK,
        subject=subject,
        link=f"/subjects/{subject.code}/",
        params={"report": sae_report_label(SaeReport.INITIAL_DUE), "event": "febrile neutropenia", "due": "—"},
        key="matrix",
    )
    assert alert is not None
    return alert, case.built.roles[case.username].get(subject.center.code) in SAE_ALERT_ROLES


def _page_simulation(case: Case) -> list[HttpResponse]:
    """The page and a short run (one month, greedy): the runners get the form and the summary; every
    other role a 403 with the refusal recorded, and no simulation ran."""
    since = _last_sequence()
    shown = case.page.get("/simulation/")
    ran = case.page.post(
        "/simulation/",
        {
            "months": 1,
            "replications": 1,
            "seed": 0,
            "policy": "greedy",
            "screen_failure_percent": 30,
            "manufacturing_failure_percent": 4,
            "lines": 2,
            "manufacturing_days": 10,
            "qc_days": 7,
            **{f"arrivals_{code}": 1 for code in ("BDX", "LIL", "PAR", "STR", "MTL")},
        },
    )
    if case.role in SIMULATION_RUNNERS:
        assert shown.status_code == 200 and 'data-testid="simulation-form"' in shown.content.decode()
        assert ran.status_code == 200 and 'data-testid="simulation-summary"' in ran.content.decode()
    else:
        assert shown.status_code == 403 and ran.status_code == 403
        assert 'data-testid="simulation-summary"' not in ran.content.decode()
        refusals = [e for e in _entries_after(since) if e.event == "access.refused"]
        assert len(refusals) == 2 and all(e.entity_id == "simulation" for e in refusals)
    assert not _codes(shown) and not _codes(ran)  # no patient on the page
    return [shown, ran]


def _page_alerts(case: Case) -> list[HttpResponse]:
    alert, allowed = _alert(case)
    response = case.page.get("/alerts/")
    assert response.status_code == 200  # every role has the page, perhaps empty
    assert (f'data-alert="{alert.pk}"' in response.content.decode()) is allowed
    assert _codes(response) <= case.built.visible_codes(case.username)
    return [response]


def _page_alert_acknowledge(case: Case) -> list[HttpResponse]:
    alert, allowed = _alert(case)
    since = _last_sequence()
    response = case.page.post("/alerts/", {"alert": alert.pk, "note": "seen"})
    alert.refresh_from_db()
    if allowed:
        assert response.status_code == 302 and alert.acknowledged_at is not None
        assert [e.event for e in _entries_after(since)] == ["alert.acknowledged"]
    else:
        assert response.status_code == 404 and alert.acknowledged_at is None
        assert _entries_after(since) == []
    return [response]


def _api_alerts(case: Case) -> list[HttpResponse]:
    alert, allowed = _alert(case)
    response = case.api.get("/api/v1/alerts", {"status": "open"})
    assert response.status_code == 200
    listed = response.json()["items"]
    assert (alert.pk in {a["id"] for a in listed}) is allowed
    assert {a["subject"] for a in listed} <= case.built.visible_codes(case.username)
    return [response]


def _api_alert_acknowledge(case: Case) -> list[HttpResponse]:
    alert, allowed = _alert(case)
    since = _last_sequence()
    response = case.api.post(
        f"/api/v1/alerts/{alert.pk}/acknowledge", {"note": "seen"}, content_type="application/json"
    )
    alert.refresh_from_db()
    if allowed:
        assert response.status_code == 200 and response.json()["acknowledged_by"] == case.username
        assert [e.event for e in _entries_after(since)] == ["alert.acknowledged"]
    else:
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert alert.acknowledged_at is None and _entries_after(since) == []
    return [response]


# --- CRS/ICANS assessments and episodes (issue 10) -------------------------------------------------

# The center's investigators and coordinators record and correct; the sponsor's roles read,
# pseudonymously; not the lab, the apheresis unit or the pharmacy.
TOXICITY_READERS = frozenset({Role.INVESTIGATOR, Role.COORDINATOR, Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN})
TOXICITY_WRITERS = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})
CALM_DAY = {
    "temperature_c": 37.0,
    "hypotension": "none",
    "hypoxia": "none",
    "ice_score": 10,
    "consciousness": "normal",
    "seizure": "none",
    "motor_weakness": "none",
    "cerebral_edema": "none",
}


def _toxicity_rows() -> int:
    from cartrial.apps.toxicity.models import ToxicityAssessment

    return ToxicityAssessment.objects.count()


def _day_one(subject: Subject) -> str:
    """D1 of an infused subject; any past date for another (refused before the date matters)."""
    if subject.infusion_date is None:
        return (clock.now().date() - timedelta(days=30)).isoformat()
    return (subject.infusion_date + timedelta(days=1)).isoformat()


def _toxicity_read(case: Case, responses: list[HttpResponse], marker: str) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    for response in responses:
        if not case.visible(subject):
            assert response.status_code == 404
        elif case.role in TOXICITY_READERS:
            assert response.status_code == 200
            assert marker in response.content.decode()
        else:
            assert response.status_code == 403
    return responses


def _page_toxicity(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    return _toxicity_read(case, [case.page.get(f"/toxicity/subjects/{subject.code}/")], 'data-testid="toxicity-days"')


def _toxicity_write(case: Case, response: HttpResponse, before: int, since: int, ok: int, what: str) -> None:
    subject = _casebook_subject(case)
    if not case.visible(subject):
        assert response.status_code == 404
        assert _toxicity_rows() == before and _entries_after(since) == []
    elif case.role in TOXICITY_WRITERS:
        assert response.status_code == ok
    else:
        assert response.status_code == 403
        assert _toxicity_rows() == before
        _assert_refusal_recorded(since, case.username, subject, what)


def _page_toxicity_post(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    before, since = _toxicity_rows(), _last_sequence()
    response = case.page.post(f"/toxicity/subjects/{subject.code}/", {"assessed_on": _day_one(subject), **CALM_DAY})
    _toxicity_write(case, response, before, since, 302, Action.RECORD_TOXICITY_ASSESSMENT.value)
    if case.visible(subject) and case.role in TOXICITY_WRITERS:
        assert _toxicity_rows() == before + 1
    return [response]


def _api_toxicity_read(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    responses = [
        case.api.get(f"/api/v1/subjects/{subject.code}/toxicity/assessments"),
        case.api.get(f"/api/v1/subjects/{subject.code}/toxicity/episodes"),
    ]
    return _toxicity_read(case, responses, subject.code)


def _api_toxicity_post(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    before, since = _toxicity_rows(), _last_sequence()
    response = case.api.post(
        f"/api/v1/subjects/{subject.code}/toxicity/assessments",
        {"assessed_on": _day_one(subject), **CALM_DAY},
        content_type="application/json",
    )
    _toxicity_write(case, response, before, since, 201, Action.RECORD_TOXICITY_ASSESSMENT.value)
    if case.visible(subject) and case.role in TOXICITY_WRITERS:
        assert _toxicity_rows() == before + 1 and response.json()["crs_grade"] == 0
    return [response]


def _assessed_day_one(case: Case, subject: Subject) -> None:
    """D1 assessed by the subject's center's coordinator (nothing for an unreachable subject)."""
    if not case.visible(subject):
        return
    from cartrial.apps.access import reach_subject
    from cartrial.apps.toxicity.services import toxicity_assessment_record
    from cartrial.domain.toxicity import assessment_inputs_parse

    coordinator = case.built.users[f"{subject.center.code.lower()}.coordinator"]
    reach = reach_subject(coordinator, subject.code, Action.RECORD_TOXICITY_ASSESSMENT)
    reach.run(
        lambda: toxicity_assessment_record(
            actor=reach.actor,
            subject=subject,
            protocol=active_protocol(),
            assessed_on=date.fromisoformat(_day_one(subject)),
            inputs=assessment_inputs_parse(CALM_DAY),
        )
    )


def _api_toxicity_put(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    _assessed_day_one(case, subject)
    before, since = _toxicity_rows(), _last_sequence()
    response = case.api.put(
        f"/api/v1/subjects/{subject.code}/toxicity/assessments/1",
        {**CALM_DAY, "temperature_c": 38.2, "reason": "Transcription error"},
        content_type="application/json",
    )
    _toxicity_write(case, response, before, since, 200, Action.CORRECT_TOXICITY_ASSESSMENT.value)
    if case.visible(subject) and case.role in TOXICITY_WRITERS:
        assert response.json()["crs_grade"] == 1
    return [response]


def _api_toxicity_day(case: Case) -> list[HttpResponse]:
    """One day's assessment with its corrections: its readers only, the day asked."""
    subject = _casebook_subject(case)
    _assessed_day_one(case, subject)
    response = case.api.get(f"/api/v1/subjects/{subject.code}/toxicity/assessments/1")
    if not case.visible(subject):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    elif case.role in TOXICITY_READERS:
        assert response.status_code == 200
        assert (response.json()["day"], response.json()["history"]) == (1, [])
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
    return [response]


# Calendars (issue 11): every role has one; the apheresis unit sees its aphereses and the material it
# ships, the lab the material's arrival, its batch starts, releases and shipments out, the pharmacy the
# product's arrival, thaws and infusions; the clinical team and the sponsor every kind. Pseudonymous.
ALL_CALENDAR_KINDS = frozenset(
    {
        "apheresis",
        "material_shipped",
        "material_arrival",
        "manufacturing_start",
        "product_release",
        "product_shipped",
        "product_arrival",
        "lymphodepletion",
        "thaw",
        "infusion",
        "visit",
        "toxicity_assessments",
    }
)
CALENDAR_KINDS: dict[Role, frozenset[str]] = {
    Role.APHERESIS: frozenset({"apheresis", "material_shipped"}),
    Role.MANUFACTURING: frozenset({"material_arrival", "manufacturing_start", "product_release", "product_shipped"}),
    Role.PHARMACIST: frozenset({"product_arrival", "thaw", "infusion"}),
}


def _ics_kinds(response: HttpResponse) -> tuple[set[str], set[str]]:
    """The kinds and the subject codes of an iCalendar feed, parsed back."""
    from icalendar import Calendar

    events = list(Calendar.from_ical(response.content).walk("VEVENT"))
    return {str(e["CATEGORIES"].cats[0]) for e in events}, set(CODE_RE.findall(response.content.decode()))


def _page_calendar(case: Case) -> list[HttpResponse]:
    month, week = case.page.get("/calendars/"), case.page.get("/calendars/week/")
    for response in (month, week):
        assert response.status_code == 200
        assert _codes(response) <= case.built.visible_codes(case.username)
    filtered = case.page.get("/calendars/", {"center": case.center})
    assert filtered.status_code == (200 if case.own else 404)
    return [month, week, filtered]


def _calendar_center_feed(case: Case, response: HttpResponse, not_found: Callable[[HttpResponse], bool]) -> None:
    if not case.own:
        assert not_found(response)
        return
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    kinds, codes = _ics_kinds(response)
    assert kinds <= CALENDAR_KINDS.get(case.role, ALL_CALENDAR_KINDS)
    assert codes <= case.built.visible_codes(case.username)


def _page_center_ics(case: Case) -> list[HttpResponse]:
    response = case.page.get(f"/calendars/center/{case.center}.ics")
    _calendar_center_feed(case, response, lambda r: r.status_code == 404)
    return [response]


def _api_center_ics(case: Case) -> list[HttpResponse]:
    response = case.api.get(f"/api/v1/calendars/center/{case.center}.ics")
    _calendar_center_feed(case, response, lambda r: r.status_code == 404 and r.json()["code"] == "not_found")
    return [response]


def _calendar_subject_feed(case: Case, subject: Subject, response: HttpResponse, api: bool) -> None:
    if not case.visible(subject):
        assert response.status_code == 404
        if api:
            assert response.json()["code"] == "not_found"
        return
    assert response.status_code == 200
    kinds, codes = _ics_kinds(response)
    # A subject in follow-up has every kind of event: the feed holds exactly the role's.
    assert kinds == CALENDAR_KINDS.get(case.role, ALL_CALENDAR_KINDS)
    assert codes == {subject.code}


def _page_subject_ics(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.page.get(f"/subjects/{subject.code}/calendar.ics")
    _calendar_subject_feed(case, subject, response, api=False)
    return [response]


def _api_subject_ics(case: Case) -> list[HttpResponse]:
    subject = _casebook_subject(case)
    response = case.api.get(f"/api/v1/subjects/{subject.code}/calendar.ics")
    _calendar_subject_feed(case, subject, response, api=True)
    return [response]


# --- long jobs (issue 11) ------------------------------------------------------------------------

# Everyone follows the jobs they asked for; the sponsor's roles follow every job of the study and
# may start the walk of the whole audit chain. Jobs belong to no center: "own" and "other" agree.
STUDY_JOB_READERS = frozenset({Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN})
AUDIT_CHAIN_WALKERS = frozenset({Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN})


def _jobs(case: Case) -> tuple[int, int]:
    """A job the case's user asked for, and one the TLS coordinator asked for (queued, not run)."""
    from cartrial.apps.jobs.models import Job
    from cartrial.apps.jobs.services import job_enqueue

    def asked_by(username: str, role: Role, center: str) -> int:
        user = case.built.users[username]
        actor = Actor(user.pk, username, role.value, center, clock.now())
        return job_enqueue(actor=actor, kind="audit_verify", parameters={}).pk

    mine = asked_by(case.username, case.role, OWN_CENTER[case.role])
    other = asked_by("tls.coordinator", Role.COORDINATOR, "TLS")
    assert Job.objects.filter(pk__in=[mine, other]).count() == 2
    return mine, other


def _page_jobs(case: Case) -> list[HttpResponse]:
    mine, other = _jobs(case)
    listing = case.page.get("/jobs/")
    body = listing.content.decode()
    assert listing.status_code == 200
    assert f'data-job="{mine}"' in body
    assert (f'data-job="{other}"' in body) is (case.role in STUDY_JOB_READERS)
    assert ('data-testid="start-audit_verify"' in body) is (case.role in AUDIT_CHAIN_WALKERS)
    own_page, other_page = case.page.get(f"/jobs/{mine}/"), case.page.get(f"/jobs/{other}/")
    assert own_page.status_code == 200 and case.page.get(f"/jobs/{mine}/progress/").status_code == 200
    assert other_page.status_code == (200 if case.role in STUDY_JOB_READERS else 404)
    return [listing, own_page, other_page]


def _page_job_start(case: Case) -> list[HttpResponse]:
    from cartrial.apps.jobs.models import Job

    before, since = Job.objects.count(), _last_sequence()
    response = case.page.post("/jobs/", {"kind": "audit_verify"})
    if case.role in AUDIT_CHAIN_WALKERS:
        assert response.status_code == 302 and Job.objects.count() == before + 1
        assert [e.event for e in _entries_after(since)] == ["job.requested"]
    else:
        assert response.status_code == 403 and Job.objects.count() == before
        entries = _entries_after(since)
        assert [e.event for e in entries] == ["access.refused"] and entries[0].actor_username == case.username
        assert Action.VERIFY_AUDIT_TRAIL.value in entries[0].changes_json
    return [response]


def _api_jobs(case: Case) -> list[HttpResponse]:
    mine, other = _jobs(case)
    listing = case.api.get("/api/v1/jobs")
    assert listing.status_code == 200
    ids = {job["id"] for job in listing.json()["items"]}
    assert mine in ids and (other in ids) is (case.role in STUDY_JOB_READERS)
    own, others = case.api.get(f"/api/v1/jobs/{mine}"), case.api.get(f"/api/v1/jobs/{other}")
    assert own.status_code == 200 and own.json()["requested_by"] == case.username
    if case.role in STUDY_JOB_READERS:
        assert others.status_code == 200 and others.json()["requested_by"] == "tls.coordinator"
    else:
        assert others.status_code == 404 and others.json()["code"] == "not_found"
    return [listing, own, others]


def _api_job_file(case: Case) -> list[HttpResponse]:
    """A finished job's file and typed result: its requester's; every job's for the sponsor's roles."""
    mine, other = _done_job(case, "plan_network"), _done_job(case, "plan_network", "tls.coordinator")
    own, others = case.api.get(f"/api/v1/jobs/{mine}/file"), case.api.get(f"/api/v1/jobs/{other}/file")
    assert own.status_code == 200 and own["Content-Type"] == "application/json"
    read = case.api.get(f"/api/v1/jobs/{mine}")
    assert read.status_code == 200 and read.json()["result"]["plan"]["status"] in {"optimal", "feasible"}
    if case.role in STUDY_JOB_READERS:
        assert others.status_code == 200 and others.content == own.content
    else:
        assert others.status_code == 404 and others.json()["code"] == "not_found"
    return [own, others, read]


def _api_job_request(case: Case) -> list[HttpResponse]:
    from cartrial.apps.jobs.models import Job

    before = Job.objects.count()
    response = case.api.post("/api/v1/jobs", {"kind": "audit_verify"}, content_type="application/json")
    if case.role in AUDIT_CHAIN_WALKERS:
        assert response.status_code == 202 and response.json()["status"] == "queued"
        assert Job.objects.count() == before + 1
    else:
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
        assert Job.objects.count() == before
    return [response]


# --- exports (issue 12) ---------------------------------------------------------------------------
# The investigator exports the center's subjects (with their identity: center staff); the data
# manager the study's, pseudonymously; nobody else exports. An export is its requester's alone.
EXPORTERS = frozenset({Role.INVESTIGATOR, Role.DATA_MANAGER})


def _export_job_check(case: Case, before: int) -> None:
    """The queued export holds exactly the center's subjects, identity only for the center's staff."""
    from cartrial.apps.jobs.models import Job

    job = Job.objects.filter(kind="export_data").order_by("-pk").first()
    assert job is not None and Job.objects.filter(kind="export_data").count() == before + 1
    expected = set(Subject.objects.filter(center__code=case.center).values_list("pk", flat=True))
    assert set(job.parameters["subject_ids"]) == expected and expected
    staff = case.role in {Role.INVESTIGATOR, Role.COORDINATOR, Role.APHERESIS, Role.PHARMACIST}
    assert set(job.parameters["identity_subject_ids"]) == (expected if staff else set())


def _page_exports(case: Case) -> list[HttpResponse]:
    from cartrial.apps.jobs.models import Job

    listing = case.page.get("/exports/")
    others = case.page.get(f"/exports/{_jobs(case)[1]}/file/")
    assert others.status_code == (404 if case.role in EXPORTERS else 403)
    before = Job.objects.filter(kind="export_data").count()
    posted = case.page.post("/exports/", {"format": "odm", "center": case.center})
    if case.role not in EXPORTERS:
        assert listing.status_code == 403 and posted.status_code == 403
    elif case.own:
        assert listing.status_code == 200 and posted.status_code == 302
        _export_job_check(case, before)
    else:
        assert listing.status_code == 200 and posted.status_code == 403
        assert Job.objects.filter(kind="export_data").count() == before
    return [listing, posted, others]


def _api_exports(case: Case) -> list[HttpResponse]:
    from cartrial.apps.jobs.models import Job

    before = Job.objects.filter(kind="export_data").count()
    posted = case.api.post(
        "/api/v1/exports", {"format": "fhir", "centers": [case.center]}, content_type="application/json"
    )
    listing = case.api.get("/api/v1/exports")
    if case.role not in EXPORTERS:
        assert posted.status_code == 403 and listing.status_code == 403
        return [posted, listing]
    assert listing.status_code == 200
    if case.own:
        assert posted.status_code == 202 and posted.json()["status"] == "queued"
        _export_job_check(case, before)
        assert [e["id"] for e in listing.json()["items"]][:1] == [posted.json()["id"]]
    else:
        assert posted.status_code == 403 and posted.json()["item"] == "center"
    others = case.api.get(f"/api/v1/exports/{_jobs(case)[1]}/file")
    assert others.status_code == 404
    return [posted, listing, others]


# --- capacities and booking (issue 11) ----------------------------------------------------------
# The center's clinical staff book their subjects' chains; the apheresis unit, the lab (its
# manufacturing slots) and the sponsor's administrator read them; only the sponsor's administrator
# sets the capacities up. Monitors and data managers have no use for them.
BOOKERS = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})
BOOKING_READERS = frozenset(
    {Role.INVESTIGATOR, Role.COORDINATOR, Role.APHERESIS, Role.MANUFACTURING, Role.SPONSOR_ADMIN}
)
CAPACITY_MANAGERS = frozenset({Role.SPONSOR_ADMIN})


def _network() -> None:
    """The protocol's capacities, loaded inside the test's savepoint (rolled back after it)."""
    from cartrial.apps.planning.services import capacities_load

    with transaction.atomic():
        capacities_load(actor=Actor.system("test"), protocol=active_protocol())


def _booking_subject(case: Case) -> Subject:
    return case.subject("bdx_included")


def _bookings() -> int:
    from cartrial.apps.planning.models import Booking

    return Booking.objects.filter(active=True).count()


def _free_chain() -> dict[str, str]:
    from cartrial.apps.planning.selectors import slots_free
    from cartrial.apps.subjects.services import local_today

    chain = slots_free(active_protocol(), "BDX", local_today(Center.objects.get(code="BDX"), clock.now()), 1)[0]
    return {
        "apheresis": chain.plan.apheresis.isoformat(),
        "facility": chain.plan.facility,
        "manufacturing_start": chain.plan.manufacturing_start.isoformat(),
        "infusion": chain.plan.infusion.isoformat(),
    }


def _booking_read(case: Case, response: HttpResponse, marker: str) -> list[HttpResponse]:
    subject = _booking_subject(case)
    if not case.visible(subject):
        assert response.status_code == 404
    elif case.role in BOOKING_READERS:
        assert response.status_code == 200
        assert marker in response.content.decode()
    else:
        assert response.status_code == 403
    return [response]


def _page_booking(case: Case) -> list[HttpResponse]:
    _network()
    subject = _booking_subject(case)
    response = case.page.get(f"/planning/subjects/{subject.code}/")
    return _booking_read(case, response, 'data-testid="bookings"')


def _api_bookings(case: Case) -> list[HttpResponse]:
    _network()
    subject = _booking_subject(case)
    return _booking_read(case, case.api.get(f"/api/v1/subjects/{subject.code}/bookings"), "[")


def _booking_write(case: Case, response: HttpResponse, before: int, since: int, ok: int) -> None:
    subject = _booking_subject(case)
    if not case.visible(subject):
        assert response.status_code == 404
        assert _bookings() == before and _entries_after(since) == []
    elif case.role not in BOOKERS:
        assert response.status_code == 403
        assert _bookings() == before
        _assert_refusal_recorded(since, case.username, subject, Action.BOOK_SLOTS.value)
    elif subject.state in (State.INCLUDED.value, State.APHERESIS_SCHEDULED.value):
        assert response.status_code == ok
        assert _bookings() == before + 1
    else:
        assert response.status_code == 409  # not waiting for a chain: refused by the rule
        assert _bookings() == before


def _page_booking_post(case: Case) -> list[HttpResponse]:
    _network()
    subject, chain = _booking_subject(case), _free_chain()
    before, since = _bookings(), _last_sequence()
    response = case.page.post(f"/planning/subjects/{subject.code}/", chain)
    _booking_write(case, response, before, since, 302)
    return [response]


def _api_booking_post(case: Case) -> list[HttpResponse]:
    _network()
    subject, chain = _booking_subject(case), _free_chain()
    before, since = _bookings(), _last_sequence()
    response = case.api.post(f"/api/v1/subjects/{subject.code}/bookings", chain, content_type="application/json")
    _booking_write(case, response, before, since, 201)
    return [response]


def _api_booking_delete(case: Case) -> list[HttpResponse]:
    from cartrial.apps.access import reach_subject
    from cartrial.apps.planning.services import booking_make
    from cartrial.apps.subjects.services import local_today
    from cartrial.domain.booking import BookingRequest

    _network()
    subject, chain = _booking_subject(case), _free_chain()
    booking_id = 999999
    if subject.state == State.INCLUDED.value:
        coordinator = case.built.users[f"{subject.center.code.lower()}.coordinator"]
        reach = reach_subject(coordinator, subject.code, Action.BOOK_SLOTS)
        request = BookingRequest(
            "BDX",
            date.fromisoformat(chain["apheresis"]),
            chain["facility"],
            date.fromisoformat(chain["manufacturing_start"]),
            date.fromisoformat(chain["infusion"]),
        )
        booking = reach.run(
            lambda: booking_make(
                actor=reach.actor,
                user_id=coordinator.pk,
                subject=subject,
                request=request,
                protocol=active_protocol(),
                today=local_today(subject.center, clock.now()),
            )
        )
        booking_id = booking.pk
    before, since = _bookings(), _last_sequence()
    response = case.api.delete(
        f"/api/v1/subjects/{subject.code}/bookings/{booking_id}",
        {"reason": "date moved"},
        content_type="application/json",
    )
    if not case.visible(subject):
        assert response.status_code == 404 and _entries_after(since) == []
    elif case.role not in BOOKERS:
        assert response.status_code == 403 and _bookings() == before
        _assert_refusal_recorded(since, case.username, subject, Action.BOOK_SLOTS.value)
    elif subject.state == State.INCLUDED.value:
        assert response.status_code == 200 and _bookings() == before - 1
    else:
        assert response.status_code == 422  # no such booking of this subject
    return [response]


def _api_slots(case: Case) -> list[HttpResponse]:
    _network()
    response = case.api.get("/api/v1/planning/slots", {"center": case.center})
    member = case.center in case.built.roles[case.username]
    if not member:
        assert response.status_code == 404
    elif case.role in BOOKERS:
        assert response.status_code == 200 and response.json()["items"][0]["facility"] == "LAB"
    else:
        assert response.status_code == 403
    return [response]


def _api_reservations(case: Case) -> list[HttpResponse]:
    _network()
    responses = [case.api.get("/api/v1/planning/reservations"), case.page.get("/planning/reservations/")]
    for response in responses:
        assert response.status_code == (200 if case.role in BOOKING_READERS else 403)
    return responses


def _page_capacities(case: Case) -> list[HttpResponse]:
    _network()
    responses = [case.page.get("/planning/capacities/"), case.api.get("/api/v1/planning/capacities")]
    for response in responses:
        assert response.status_code == (200 if case.role in CAPACITY_MANAGERS else 403)
    return responses


def _page_capacities_post(case: Case) -> list[HttpResponse]:
    from cartrial.apps.planning.models import FacilityCapacity

    _network()
    lab = FacilityCapacity.objects.get(center__code="LAB")
    response = case.page.post("/planning/capacities/", {"kind": "facility", "id": lab.pk, "lines": 3, "reason": "room"})
    lab.refresh_from_db()
    if case.role in CAPACITY_MANAGERS:
        assert response.status_code == 302 and lab.lines == 3
    else:
        assert response.status_code == 403 and lab.lines == 2
    return [response]


# --- re-planning (issue 11, item 4) ----------------------------------------------------------------
# Whoever reads bookings sees the proposals of the subjects they reach; a one-center proposal is
# decided by that center's coordinator only (a proposal across centers: the sponsor's administrator).
REPLAN_DECIDERS = frozenset({Role.COORDINATOR})


def _replan_subject(case: Case) -> Subject:
    """The target: the case's subject (own: BDX included) where its center has capacities, else BDX's."""
    from cartrial.apps.planning.models import CenterCapacity

    _network()
    subject = case.subject("bdx_included")
    if not CenterCapacity.objects.filter(center_id=subject.center_id).exists():
        subject = Subject.objects.select_related("center").get(pk=case.built.subjects["bdx_included"].pk)
    return subject


def _replan_proposal(subject: Subject) -> int:
    """A pending proposal for `subject`, inside the test's savepoint."""
    from cartrial.apps.planning.models import ReplanProposal
    from cartrial.apps.planning.replanning import replan_propose
    from cartrial.apps.subjects.services import local_today

    with transaction.atomic():
        proposal = replan_propose(
            actor=Actor.system("test"),
            user_id=None,
            affected=[subject],
            trigger=ReplanProposal.Trigger.MANUAL,
            detail="matrix",
            protocol=active_protocol(),
            today=local_today(subject.center, clock.now()),
        )
    assert proposal is not None
    return proposal.pk


def _page_replanning(case: Case) -> list[HttpResponse]:
    subject = _replan_subject(case)
    proposal_id = _replan_proposal(subject)
    responses = [case.page.get("/planning/replanning/"), case.api.get("/api/v1/planning/proposals")]
    for response in responses:
        if case.role not in BOOKING_READERS:
            assert response.status_code == 403
        else:
            assert response.status_code == 200
            if response["Content-Type"].startswith("application/json"):
                shown = any(p["id"] == proposal_id for p in response.json()["items"])
            else:
                shown = f'data-proposal="{proposal_id}"' in response.content.decode()
            assert shown == case.visible(subject)
    return responses


def _replan_decide(case: Case, move: str, done: str) -> list[HttpResponse]:
    from cartrial.apps.planning.models import ReplanProposal

    subject = _replan_subject(case)
    proposal_id = _replan_proposal(subject)
    since = _last_sequence()
    response = case.api.post(
        f"/api/v1/planning/proposals/{proposal_id}/{move}", {"reason": "not now"}, content_type="application/json"
    )
    status = ReplanProposal.objects.get(pk=proposal_id).status
    if case.role not in BOOKING_READERS:
        assert response.status_code == 403 and status == "pending"
    elif not case.visible(subject):
        assert response.status_code == 404 and status == "pending"
    elif case.role in REPLAN_DECIDERS:
        assert response.status_code == 200 and status == done, (response.status_code, status, response.content)
    else:
        assert response.status_code == 403 and status == "pending"
        assert "access.refused" in {e.event for e in _entries_after(since)}
    return [response]


def _api_replan_decide(case: Case) -> list[HttpResponse]:
    return _replan_decide(case, "reject", "rejected")


def _api_replan_accept(case: Case) -> list[HttpResponse]:
    return _replan_decide(case, "accept", "accepted")


# --- the API of the logistics, planning and calendar pages (issue 12, item 8) ---------------------
# Every read is scoped as the page's; every action needs the page's role. The logistics dashboard,
# the actions' fields, the deviations and the calendars are read by every role over its scope.
LOGISTICS_STAGES = frozenset(
    {
        State.APHERESIS_SCHEDULED,
        State.APHERESIS_COLLECTED,
        State.MATERIAL_SHIPPED,
        State.MANUFACTURING,
        State.MANUFACTURING_FAILED,
        State.PRODUCT_RELEASED,
        State.PRODUCT_SHIPPED,
        State.PRODUCT_RECEIVED,
        State.LYMPHODEPLETION,
    }
)
DEVIATION_SUBJECTS = ("bdx_shipped", "bdx_lyo", "lil_shipped", "par_shipped")


def _api_logistics_dashboard(case: Case) -> list[HttpResponse]:
    response = case.api.get("/api/v1/logistics/dashboard", {"limit": 1000})
    assert response.status_code == 200
    shown = {row["subject"] for row in response.json()["items"]}
    expected = {
        s.code
        for s in Subject.objects.select_related("center", "manufacturing_site")
        if State(s.state) in LOGISTICS_STAGES and case.visible(s)
    }
    assert shown == expected
    return [response]


def _api_logistics_action_fields(case: Case) -> list[HttpResponse]:
    response = case.api.get("/api/v1/logistics/actions")
    assert response.status_code == 200 and response.json()["actions"]
    return [response]


def _api_logistics_deviations(case: Case) -> list[HttpResponse]:
    """A deviation on a subject of each center (and of the other lab), opened inside the test's
    savepoint: the list and the counts hold those of the subjects the user reaches."""
    from cartrial.apps.logistics.services import deviation_open
    from cartrial.domain.deviations import DeviationKind

    subjects = [
        Subject.objects.select_related("center", "manufacturing_site").get(pk=case.built.subjects[label].pk)
        for label in DEVIATION_SUBJECTS
    ]
    with transaction.atomic():
        for subject in subjects:
            deviation_open(
                actor=Actor.system("test"), subject=subject, kind=DeviationKind.SCAN_MISMATCH, code="matrix", params={}
            )
    reached = [s for s in subjects if case.visible(s)]
    listed = case.api.get("/api/v1/logistics/deviations", {"limit": 1000})
    counts = case.api.get("/api/v1/logistics/deviations/counts")
    assert listed.status_code == 200 and counts.status_code == 200
    assert sorted(d["subject"] for d in listed.json()["items"]) == sorted(s.code for s in reached)
    assert {row["center"] for row in counts.json()["centers"]} == {s.center.code for s in reached}
    assert counts.json()["total"] == len(reached)
    return [listed, counts]


def _api_capacities_change(case: Case) -> list[HttpResponse]:
    from cartrial.apps.planning.models import FacilityCapacity

    _network()
    since = _last_sequence()
    body = {"kind": "facility", "record": "LAB", "values": {"lines": 3}, "reason": "room"}
    response = case.api.post("/api/v1/planning/capacities", body, content_type="application/json")
    lab = FacilityCapacity.objects.get(center__code="LAB")
    if case.role in CAPACITY_MANAGERS:
        assert response.status_code == 200 and lab.lines == 3
    else:
        assert response.status_code == 403 and lab.lines == 2
        assert [e.event for e in _entries_after(since)] == ["access.refused"]
    history = case.api.get("/api/v1/planning/capacities/history")
    assert history.status_code == (200 if case.role in CAPACITY_MANAGERS else 403)
    return [response, history]


def _api_proposal_request(case: Case) -> list[HttpResponse]:
    from cartrial.apps.planning.models import ReplanProposal

    _network()
    subject = _booking_subject(case)
    since = _last_sequence()
    response = case.api.post(
        f"/api/v1/subjects/{subject.code}/proposals", {"reason": "matrix"}, content_type="application/json"
    )
    if not case.visible(subject):
        assert response.status_code == 404 and _entries_after(since) == []
    elif case.role not in BOOKERS:
        assert response.status_code == 403 and not ReplanProposal.objects.exists()
        _assert_refusal_recorded(since, case.username, subject, Action.BOOK_SLOTS.value)
    else:
        assert response.status_code == 201 and response.json()["subjects"][0]["subject"] == subject.code
    return [response]


def _api_subject_proposals(case: Case) -> list[HttpResponse]:
    subject = _replan_subject(case)
    proposal_id = _replan_proposal(subject)
    response = case.api.get("/api/v1/planning/proposals", {"subject": subject.code})
    if case.role not in BOOKING_READERS:
        assert response.status_code == 403
    elif not case.visible(subject):
        assert response.status_code == 404
    else:
        assert response.status_code == 200 and [p["id"] for p in response.json()["items"]] == [proposal_id]
    return [response]


def _api_calendar(case: Case) -> list[HttpResponse]:
    month, week = case.api.get("/api/v1/calendars/month"), case.api.get("/api/v1/calendars/week")
    for response in (month, week):
        assert response.status_code == 200
        assert _codes(response) <= case.built.visible_codes(case.username)
    filtered = case.api.get("/api/v1/calendars/month", {"center": case.center})
    assert filtered.status_code == (200 if case.own else 404)
    return [month, week, filtered]


# --- the planner page and the background simulation (issue 11) -----------------------------------

# The planner page plans every waiting subject of the network against the shared capacities: the
# sponsor's administrator and the data managers, as for the simulation; not the centers' staff (who
# book their subjects' chains), the lab, the monitors. Network pages: "own" and "other" agree.
NETWORK_PLANNERS = frozenset({Role.SPONSOR_ADMIN, Role.DATA_MANAGER})


def _done_job(case: Case, kind: str, username: str | None = None) -> int:
    """A finished job of `kind` asked for by the case's user (or `username`), its outcome computed by
    the kind itself once for the module (a plan of a small generated instance; a one-month greedy
    simulation)."""
    from cartrial.apps.jobs.models import Job
    from cartrial.apps.jobs.registry import job_kind

    if kind not in _OUTCOMES:
        from cartrial.domain.planning import instance_to_json
        from cartrial.domain.planning.generate import generated_instance

        parameters = {
            "plan_network": {"instance": instance_to_json(generated_instance(2, 6, 2, 1)), "time_limit_s": 1},
            "simulate_network": {"overrides": {"months": 1}, "replications": 1, "policies": ["greedy"]},
        }[kind]
        checked = job_kind(kind).check(parameters)
        _OUTCOMES[kind] = (checked, job_kind(kind).run(checked, _silent))
    checked, outcome = _OUTCOMES[kind]
    user = case.built.users[username or case.username]
    assert outcome.file is not None
    return Job.objects.create(
        kind=kind,
        parameters=checked,
        status=Job.Status.DONE,
        progress_percent=100,
        result=dict(outcome.result),
        result_file=outcome.file.content,
        result_file_name=outcome.file.name,
        result_file_type=outcome.file.content_type,
        requested_by=user,
        requester_role=case.role.value if username is None else "",
        created_at=clock.now(),
        finished_at=clock.now(),
    ).pk


class _Silent:
    def __call__(self, percent: float, message: Any = None) -> None:
        return None

    def step(self, done: int, total: int, message: Any = None) -> None:
        return None


_silent = _Silent()
_OUTCOMES: dict[str, Any] = {}


def _page_plan(case: Case) -> list[HttpResponse]:
    """The planner page and its request: the planners get the network's waiting subjects and queue
    `plan_network`; every other role a 403, recorded, nothing queued."""
    from cartrial.apps.jobs.models import Job

    _network()
    since, before = _last_sequence(), Job.objects.count()
    shown = case.page.get("/planning/plan/")
    asked = case.page.post("/planning/plan/", {"solver": "greedy", "time_limit_s": 1})
    if case.role in NETWORK_PLANNERS:
        assert shown.status_code == 200 and 'data-testid="plan-form"' in shown.content.decode()
        job = Job.objects.get(kind="plan_network", requested_by__username=case.username)
        assert asked.status_code == 302 and asked["Location"] == f"/jobs/{job.pk}/"
        assert [e.event for e in _entries_after(since)] == ["job.requested"]
    else:
        assert shown.status_code == 403 and asked.status_code == 403 and Job.objects.count() == before
        refusals = _entries_after(since)
        assert [e.event for e in refusals] == ["access.refused"] * 2
        assert all(e.entity_id == "planning_plan" for e in refusals)
    return [shown, asked]


def _page_job_results(case: Case) -> list[HttpResponse]:
    """A finished plan's page and a finished background simulation's page: the planners (and the
    simulation's runners) read their own; the others are refused before any job is looked up."""
    plan, simulation = _done_job(case, "plan_network"), _done_job(case, "simulate_network")
    plan_page = case.page.get(f"/planning/plan/{plan}/")
    simulation_page = case.page.get(f"/simulation/jobs/{simulation}/")
    if case.role in NETWORK_PLANNERS:
        assert plan_page.status_code == 200 and 'data-testid="plan-patients"' in plan_page.content.decode()
        # A job of another kind is not a plan: 404, never the simulation shown as a plan.
        assert case.page.get(f"/planning/plan/{simulation}/").status_code == 404
    else:
        assert plan_page.status_code == 403
    if case.role in SIMULATION_RUNNERS:
        assert (
            simulation_page.status_code == 200 and 'data-testid="simulation-plot"' in simulation_page.content.decode()
        )
    else:
        assert simulation_page.status_code == 403
    return [plan_page, simulation_page]


def _api_plan_and_simulate_jobs(case: Case) -> list[HttpResponse]:
    """The API requests the same kinds, checked against the same actions."""
    from cartrial.domain.planning import instance_to_json
    from cartrial.domain.planning.generate import generated_instance

    plan = case.api.post(
        "/api/v1/jobs",
        {"kind": "plan_network", "parameters": {"instance": instance_to_json(generated_instance(2, 4, 1, 1))}},
        content_type="application/json",
    )
    simulate = case.api.post(
        "/api/v1/jobs",
        {"kind": "simulate_network", "parameters": {"overrides": {"months": 1}, "policies": ["greedy"]}},
        content_type="application/json",
    )
    assert plan.status_code == (202 if case.role in NETWORK_PLANNERS else 403)
    assert simulate.status_code == (202 if case.role in SIMULATION_RUNNERS else 403)
    return [plan, simulate]


# --- administration in the app (issue 13, item 2) ------------------------------------------------
# Centers, users, roles, suspensions and API tokens: the sponsor's administrator alone, across the
# network. The study's audit trail is its own permission: the sponsor's administrator and the data
# managers, over the centers they are members of (never TLS's subjects, where neither has a role).
ADMINISTRATORS = frozenset({Role.SPONSOR_ADMIN})
STUDY_AUDIT_READERS = frozenset({Role.SPONSOR_ADMIN, Role.DATA_MANAGER})


def _page_administration(case: Case) -> list[HttpResponse]:
    responses = [
        case.page.get(path)
        for path in (
            "/administration/users/",
            "/administration/users/bdx.investigator/",
            "/administration/centers/",
            f"/administration/centers/{case.center}/",
            "/administration/tokens/",
        )
    ]
    responses += [
        case.api.get(f"/api/v1/administration/{what}") for what in ("users", "centers", "tokens?owner=bdx.investigator")
    ]
    for response in responses:
        assert response.status_code == (200 if case.role in ADMINISTRATORS else 403), response.request["PATH_INFO"]
    return responses


def _page_administration_post(case: Case) -> list[HttpResponse]:
    from cartrial.apps.accounts.models import User

    since = _last_sequence()
    response = case.page.post("/administration/users/bdx.investigator2/", {"action": "suspend", "reason": "matrix"})
    suspended = not User.objects.get(username="bdx.investigator2").is_active
    if case.role in ADMINISTRATORS:
        assert response.status_code == 302 and suspended
        assert [e.event for e in _entries_after(since)] == ["user.suspended"]
    else:
        assert response.status_code == 403 and not suspended
        assert [e.event for e in _entries_after(since)] == ["access.refused"]
    return [response]


def _api_administration_writes(case: Case) -> list[HttpResponse]:
    since = _last_sequence()
    center = case.center
    before = Center.objects.get(code=center)
    body = {
        "name": "Renamed",
        "city": before.city,
        "country": before.country,
        "time_zone": before.time_zone,
        "language": before.language,
        "kind": before.kind,
        "active": True,
    }
    changed = case.api.put(f"/api/v1/administration/centers/{center}", body, content_type="application/json")
    grant = case.api.post(
        "/api/v1/administration/users/tls.coordinator/memberships",
        {"center": "LIL", "role": "coordinator"},
        content_type="application/json",
    )
    name = Center.objects.get(code=center).name
    granted = Membership.objects.filter(user__username="tls.coordinator", center__code="LIL").exists()
    if case.role in ADMINISTRATORS:
        assert changed.status_code == 200 and name == "Renamed"
        assert grant.status_code == 201 and granted
    else:
        assert changed.status_code == 403 and grant.status_code == 403
        assert name == before.name and not granted
        assert [e.event for e in _entries_after(since)] == ["access.refused", "access.refused"]
    return [changed, grant]


def _api_administration_more_writes(case: Case) -> list[HttpResponse]:
    """The other administration writes: each succeeds for the sponsor's administrator alone; for
    any other role it answers 403, records the refusal and changes nothing."""
    from cartrial.apps.accounts.models import ApiToken, User

    since = _last_sequence()
    lyon = Center.objects.get(code=case.center)
    center = {
        "code": "NEWC",
        "name": "New center",
        "city": lyon.city,
        "country": lyon.country,
        "time_zone": lyon.time_zone,
        "language": lyon.language,
        "kind": lyon.kind,
    }
    person = {"username": "new.person", "first_name": "New", "last_name": "Person"}
    token = ApiToken.objects.filter(user__username="bdx.investigator", revoked=False).first()
    assert token is not None
    json = "application/json"
    responses = [
        case.api.post("/api/v1/administration/centers", center, content_type=json),
        case.api.post(
            "/api/v1/administration/users", {**person, "password": "a long enough pass phrase"}, content_type=json
        ),
        case.api.put(
            "/api/v1/administration/users/tls.coordinator",
            {"username": "tls.coordinator", "first_name": "Changed", "last_name": "Name"},
            content_type=json,
        ),
        case.api.put(
            "/api/v1/administration/users/tls.coordinator/memberships/TLS",
            {"role": "coordinator", "last_day": "2999-12-31", "reason": "matrix"},
            content_type=json,
        ),
        case.api.post(
            "/api/v1/administration/users/bdx.investigator2/suspension", {"reason": "matrix"}, content_type=json
        ),
        case.api.post(
            "/api/v1/administration/users/bdx.investigator2/reinstatement", {"reason": "matrix"}, content_type=json
        ),
        case.api.post(
            "/api/v1/administration/users/bdx.investigator2/two-factor-reset", {"reason": "matrix"}, content_type=json
        ),
        case.api.post(
            "/api/v1/administration/tokens",
            {"owner": "bdx.investigator2", "label": "matrix", "days": 30},
            content_type=json,
        ),
        case.api.post(f"/api/v1/administration/tokens/{token.pk}/revocation", {}, content_type=json),
    ]
    statuses = [r.status_code for r in responses]
    if case.role in ADMINISTRATORS:
        assert statuses == [201, 201, 200, 200, 200, 200, 200, 201, 200], statuses
    else:
        assert statuses == [403] * len(responses), statuses
        assert {e.event for e in _entries_after(since)} == {"access.refused"}
        assert not Center.objects.filter(code="NEWC").exists()
        assert not User.objects.filter(username="new.person").exists()
        assert User.objects.get(username="tls.coordinator").first_name != "Changed"
        assert User.objects.get(username="bdx.investigator2").is_active
        assert not ApiToken.objects.get(pk=token.pk).revoked
    return responses


def _page_study_audit(case: Case) -> list[HttpResponse]:
    own = case.built.subjects["bdx_shipped"].code
    tls = case.built.subjects["tls_pre"].code
    responses = [
        case.page.get("/administration/audit/", {"subject": own}),
        case.page.get("/administration/audit.csv", {"subject": own}),
        case.api.get("/api/v1/administration/audit", {"subject": own}),
        case.api.get("/api/v1/administration/audit.csv", {"subject": own}),
    ]
    outside = case.api.get("/api/v1/administration/audit", {"subject": tls})
    if case.role in STUDY_AUDIT_READERS:
        assert [r.status_code for r in responses] == [200, 200, 200, 200]
        assert responses[2].json()["total"] > 0
        assert outside.status_code == 200 and outside.json()["total"] == 0
        foreign = case.api.get("/api/v1/administration/audit", {"center": "TLS"})
        assert foreign.status_code == 404
        responses[1] = _streamed(responses[1])
        responses[3] = _streamed(responses[3])
    else:
        assert [r.status_code for r in responses] == [403, 403, 403, 403]
        assert outside.status_code == 403
    return [*responses, outside]


def _streamed(response: Any) -> HttpResponse:
    """A streamed download read whole, so that the leak check reads its content."""
    return HttpResponse(b"".join(response.streaming_content), status=response.status_code)


# --- generic probes: the pages and operations without a case of their own above (issue 13) ------
# Each probe states who may use it (the roles of its action in DESIGN §5, or every role that sees the
# subject); the oracle is the same for all: another center's subject answers 404 and nothing is
# stored; on the case's own subject a role that may answers `ok`, any other 403 with only the refusal
# recorded; no response holds the code of a subject the user may not see, nor an identity it may not.

READ = (200,)
# A write a role may perform reaches its service: done (200, 201, 202 or a redirect after the form),
# or refused by the rules for this subject or this body (409, 422) - never by access (403, 404).
WRITE_OK = (200, 201, 202, 302, 409, 422)
EVERY_ROLE = frozenset(Role)
CENTER_STAFF = frozenset({Role.INVESTIGATOR, Role.COORDINATOR, Role.APHERESIS, Role.PHARMACIST})


@dataclass(frozen=True)
class Probe:
    method: str
    path: str  # {code} the target subject, {query} a query on it, {job} one of the user's finished jobs
    allowed: frozenset[Role]  # roles that may, on a subject they see (or anywhere for a study page)
    ok: tuple[int, ...] = READ
    subject: str | None = "bdx_shipped"  # the own subject's label; None: a page not about one subject
    data: dict[str, Any] | None = None
    json: bool = False
    writes: bool = False
    # How a role that may not is refused: 403; a few operations check the body first (422, nothing stored).
    refused: tuple[int, ...] = (403,)


def _probe_query(subject: Subject) -> int:
    from cartrial.apps.casebook.services import query_raise

    query = query_raise(
        actor=Actor.system("test"),
        subject=subject,
        protocol=active_protocol(),
        visit_code="D28",
        form_code="vital_signs",
        item="weight_kg",
        text="Weight missing?",
    )
    return query.pk


def _probe(probe: Probe) -> Callable[[Case], list[HttpResponse]]:
    def run(case: Case) -> list[HttpResponse]:
        subject = case.subject(probe.subject) if probe.subject else None
        values: dict[str, Any] = {"center": case.center}
        if subject is not None:
            values.update(code=subject.code, d28=_d28(subject), today=clock.now().date().isoformat())
            if "{query}" in probe.path:
                values["query"] = _probe_query(subject)
        if "{job}" in probe.path:
            values["job"] = _done_job(case, "plan_network")
        path = probe.path.format(**values)
        data = {k: v.format(**values) if isinstance(v, str) else v for k, v in (probe.data or {}).items()}
        client = case.api if path.startswith("/api/") else case.page
        since = _last_sequence()
        if probe.json:
            response = client.generic(probe.method, path, json.dumps(data), content_type="application/json")
        elif probe.method == "GET":
            response = client.get(path, data)
        else:
            response = client.post(path, data)
        assert response.status_code < 500, (path, response.status_code)
        # A code the request itself names may be echoed (the 404 page says what was asked for).
        codes = _codes(response) - set(CODE_RE.findall(path))
        assert codes <= case.built.visible_codes(case.username), (path, codes)
        recorded = {e.event for e in _entries_after(since)}
        if subject is not None and not case.visible(subject):
            # Out of scope looks absent; a role that may do this nowhere is refused before the lookup.
            expected = {404} if case.role in probe.allowed else {404, *probe.refused}
            assert response.status_code in expected, (path, response.status_code)
            assert recorded <= {"access.refused"}, (path, recorded)
            assert "access.refused" not in recorded or response.status_code != 404, (path, recorded)
        elif case.role in probe.allowed:
            assert response.status_code in probe.ok, (path, response.status_code, response.content[:300])
        else:
            assert response.status_code in probe.refused, (path, response.status_code)
            assert recorded <= {"access.refused"}, (path, recorded)
        if not probe.writes or response.status_code not in (200, 201, 202, 302):
            # Nothing stored: at most the record of a refusal (of access, or of a rule: `logistics.refused`).
            assert all(event.endswith(".refused") for event in recorded), (path, recorded)
        return [response]

    return run


CASEBOOK_FORM = "/subjects/{code}/visits/D28/forms/vital_signs"
VITALS = {"temperature_c": 37.0, "heart_rate_bpm": 70, "systolic_bp_mmhg": 120, "diastolic_bp_mmhg": 70}
PROBES: dict[str, tuple[Probe, tuple[str, ...]]] = {
    # subject pages
    "page GET /subjects/{code}/consent/": (
        Probe("GET", "/subjects/{code}/consent/", SCREENING_READERS),
        ("page subjects:consent",),
    ),
    "page GET /subjects/{code}/corrections/planned_apheresis/{code}/": (
        Probe("GET", "/subjects/{code}/corrections/planned_apheresis/{code}/", EVERY_ROLE),
        ("page subjects:correction",),
    ),
    "page GET /biology/subjects/{code}/ and /panel/": (
        Probe("GET", "/biology/subjects/{code}/", EVERY_ROLE),
        ("page biology:subject",),
    ),
    "page GET /biology/subjects/{code}/panel/": (
        Probe("GET", "/biology/subjects/{code}/panel/", EVERY_ROLE),
        ("page biology:panel",),
    ),
    "page POST /biology/subjects/{code}/observations/new/": (
        Probe(
            "POST",
            "/biology/subjects/{code}/observations/new/",
            roles_for(Action.ENTER_KINETIC_RESULTS),
            ok=WRITE_OK,
            data={"marker": "cart_copies", "value": "1000"},
            writes=True,
        ),
        ("page biology:entry",),
    ),
    "page POST /biology/subjects/{code}/observations/import/": (
        Probe(
            "POST",
            "/biology/subjects/{code}/observations/import/",
            roles_for(Action.ENTER_KINETIC_RESULTS),
            ok=WRITE_OK,
            writes=True,
        ),
        ("page biology:import",),
    ),
    "page GET /casebook/subjects/{code}/visits/D28/forms/vital_signs/ (form, verify, history)": (
        Probe("GET", "/casebook" + CASEBOOK_FORM + "/", CASEBOOK_READERS, subject="bdx_follow_up"),
        ("page casebook:form",),
    ),
    "page GET /casebook/.../forms/vital_signs/verify/": (
        Probe("GET", "/casebook" + CASEBOOK_FORM + "/verify/", SOURCE_VERIFIERS, subject="bdx_follow_up"),
        ("page casebook:verify",),
    ),
    "page GET /casebook/.../forms/vital_signs/history/": (
        Probe("GET", "/casebook" + CASEBOOK_FORM + "/history/", CASEBOOK_READERS, subject="bdx_follow_up"),
        ("page casebook:history",),
    ),
    "page GET /logistics/subjects/{code}/": (
        Probe("GET", "/logistics/subjects/{code}/", EVERY_ROLE),
        ("page logistics:subject",),
    ),
    "page POST /logistics/subjects/{code}/actions/record_qc/": (
        Probe(
            "POST",
            "/logistics/subjects/{code}/actions/record_qc/",
            roles_for(Action.RECORD_QC),
            ok=WRITE_OK,
            data={"test_code": "viability", "value": "85"},
            writes=True,
        ),
        ("page logistics:action",),
    ),
    "page GET /logistics/subjects/{code}/labels.pdf": (
        Probe("GET", "/logistics/subjects/{code}/labels.pdf", roles_for(Action.PRINT_LABELS), ok=(200, 409)),
        ("page logistics:labels",),
    ),
    "page POST /logistics/subjects/{code}/deviations/{id}/close/": (
        Probe(
            "POST",
            "/logistics/subjects/{code}/deviations/999999/close/",
            roles_for(Action.MANAGE_DEVIATION),
            ok=(404,),
            data={"text": "closed"},
        ),
        ("page logistics:deviation_move",),
    ),
    "page GET /toxicity/subjects/{code}/assessments/1/": (
        Probe(
            "GET", "/toxicity/subjects/{code}/assessments/1/", TOXICITY_READERS, ok=(200, 404), subject="bdx_infused"
        ),
        ("page toxicity:assessment",),
    ),
    # subject operations
    "api GET /logistics/subjects/{code}": (
        Probe("GET", "/api/v1/logistics/subjects/{code}", EVERY_ROLE),
        ("api GET /logistics/subjects/{code}",),
    ),
    "api GET /logistics/subjects/{code}/labels.pdf": (
        Probe("GET", "/api/v1/logistics/subjects/{code}/labels.pdf", roles_for(Action.PRINT_LABELS), ok=(200, 409)),
        ("api GET /logistics/subjects/{code}/labels.pdf",),
    ),
    "api POST /logistics/subjects/{code}/actions/record_qc": (
        Probe(
            "POST",
            "/api/v1/logistics/subjects/{code}/actions/record_qc",
            roles_for(Action.RECORD_QC),
            ok=WRITE_OK,
            data={"data": {"test_code": "viability", "value": "85"}},
            json=True,
            writes=True,
        ),
        ("api POST /logistics/subjects/{code}/actions/{action}",),
    ),
    "api POST /logistics/subjects/{code}/deviations/{id}/close": (
        Probe(
            "POST",
            "/api/v1/logistics/subjects/{code}/deviations/999999/close",
            roles_for(Action.MANAGE_DEVIATION),
            ok=(404,),
            data={"text": "closed"},
            json=True,
        ),
        ("api POST /logistics/subjects/{code}/deviations/{deviation_id}/{move}",),
    ),
    "api POST /logistics/subjects/{code}/temperature-logs": (
        Probe(
            "POST",
            "/api/v1/logistics/subjects/{code}/temperature-logs",
            roles_for(Action.IMPORT_TEMPERATURE_LOG),
            ok=WRITE_OK,
            data={"shipment": 1, "csv": "time,temperature\n", "logger_time_zone": "Europe/Paris"},
            json=True,
        ),
        ("api POST /logistics/subjects/{code}/temperature-logs",),
    ),
    "api GET, POST /subjects/{code}/corrections": (
        Probe("GET", "/api/v1/subjects/{code}/corrections?record=planned_apheresis&id={code}", EVERY_ROLE),
        ("api GET /subjects/{code}/corrections",),
    ),
    "api POST /subjects/{code}/corrections": (
        Probe(
            "POST",
            "/api/v1/subjects/{code}/corrections",
            roles_for(Action.CORRECT_APHERESIS_DATE),
            ok=WRITE_OK,
            refused=(403, 422),
            data={"record": "planned_apheresis", "id": "{code}", "field": "planned_date", "value": "x", "reason": "r"},
            json=True,
        ),
        ("api POST /subjects/{code}/corrections",),
    ),
    "api POST /subjects/{code}/consent/reconsent": (
        Probe(
            "POST",
            "/api/v1/subjects/{code}/consent/reconsent",
            roles_for(Action.RECORD_RECONSENT),
            ok=WRITE_OK,
            data={"language": "fr", "signed_on": "{today}"},
            writes=True,
            json=True,
        ),
        ("api POST /subjects/{code}/consent/reconsent",),
    ),
    "api POST /subjects/{code}/consent/withdrawal": (
        Probe(
            "POST",
            "/api/v1/subjects/{code}/consent/withdrawal",
            roles_for(Action.WITHDRAW_CONSENT),
            ok=WRITE_OK,
            data={"withdrawn_on": "{today}", "reason": "matrix"},
            writes=True,
            json=True,
        ),
        ("api POST /subjects/{code}/consent/withdrawal",),
    ),
    "api GET /subjects/{code}/kinetics/assessment": (
        # 409 `kinetics_no_observations`: this subject has no result since its infusion (a rule, not access).
        Probe("GET", "/api/v1/subjects/{code}/kinetics/assessment", EVERY_ROLE, ok=(200, 409)),
        ("api GET /subjects/{code}/kinetics/assessment",),
    ),
    "api POST /subjects/{code}/kinetics/observations": (
        Probe(
            "POST",
            "/api/v1/subjects/{code}/kinetics/observations",
            roles_for(Action.ENTER_KINETIC_RESULTS),
            ok=WRITE_OK,
            data={"observations": []},
            json=True,
        ),
        ("api POST /subjects/{code}/kinetics/observations",),
    ),
    "api POST /subjects/{code}/kinetics/observations.csv": (
        Probe(
            "POST",
            "/api/v1/subjects/{code}/kinetics/observations.csv",
            roles_for(Action.ENTER_KINETIC_RESULTS),
            ok=WRITE_OK,
            data={"csv": "marker,value\n"},
            json=True,
        ),
        ("api POST /subjects/{code}/kinetics/observations.csv",),
    ),
    "api GET /subjects/{code}/visits/D28/forms/vital_signs and /history": (
        Probe("GET", "/api/v1" + CASEBOOK_FORM, CASEBOOK_READERS, subject="bdx_follow_up"),
        ("api GET /subjects/{code}/visits/{visit}/forms/{form}",),
    ),
    "api GET /subjects/{code}/visits/D28/forms/vital_signs/history": (
        # 404 "No saved form vital_signs at D28" for a reader: the form was never saved on this subject.
        Probe("GET", "/api/v1" + CASEBOOK_FORM + "/history", CASEBOOK_READERS, ok=(200, 404), subject="bdx_follow_up"),
        ("api GET /subjects/{code}/visits/{visit}/forms/{form}/history",),
    ),
    "api PUT /subjects/{code}/visits/D28": (
        Probe(
            "PUT",
            "/api/v1/subjects/{code}/visits/D28",
            CASEBOOK_WRITERS,
            ok=WRITE_OK,
            subject="bdx_follow_up",
            data={"done_on": "{d28}"},
            json=True,
            writes=True,
        ),
        ("api PUT /subjects/{code}/visits/{visit}",),
    ),
    "api POST /queries/{id}/answer": (
        Probe(
            "POST",
            "/api/v1/queries/{query}/answer",
            roles_for(Action.ANSWER_QUERY),
            ok=WRITE_OK,
            subject="bdx_follow_up",
            data={"text": "Checked."},
            json=True,
            writes=True,
        ),
        ("api POST /queries/{query_id}/answer",),
    ),
    "api POST /queries/{id}/close": (
        Probe(
            "POST",
            "/api/v1/queries/{query}/close",
            roles_for(Action.CLOSE_QUERY),
            ok=WRITE_OK,
            subject="bdx_follow_up",
            data={"text": "Fine."},
            json=True,
            writes=True,
        ),
        ("api POST /queries/{query_id}/close",),
    ),
    "api POST /queries/{id}/reopen": (
        Probe(
            "POST",
            "/api/v1/queries/{query}/reopen",
            roles_for(Action.CLOSE_QUERY),
            ok=WRITE_OK,
            subject="bdx_follow_up",
            data={"text": "Again."},
            json=True,
        ),
        ("api POST /queries/{query_id}/reopen",),
    ),
    # study pages and operations (not about one subject): scoped lists, protocol descriptions, tools
    "page GET /": (Probe("GET", "/", EVERY_ROLE, ok=(200, 302), subject=None), ("page subjects:home",)),
    "page GET /calculators/ and /calculators/sledai2k/": (
        Probe("GET", "/calculators/", EVERY_ROLE, subject=None),
        ("page clinical:calculators",),
    ),
    "page GET /calculators/sledai2k/": (
        Probe("GET", "/calculators/sledai2k/", EVERY_ROLE, subject=None),
        ("page clinical:calculator",),
    ),
    "page GET /screening-log/": (
        Probe("GET", "/screening-log/", SCREENING_READERS, subject=None),
        ("page clinical:screening_log",),
    ),
    "page GET /screening-log.csv": (
        Probe("GET", "/screening-log.csv", SCREENING_READERS, subject=None),
        ("page clinical:screening_log_csv",),
    ),
    "page GET /dashboard/consort/": (
        Probe("GET", "/dashboard/consort/", SCREENING_READERS, subject=None),
        ("page clinical:consort",),
    ),
    "page GET /consent/reconsent/": (
        Probe("GET", "/consent/reconsent/", SCREENING_READERS, subject=None),
        ("page clinical:reconsent",),
    ),
    "page GET /biology/cohort/": (
        Probe("GET", "/biology/cohort/", EVERY_ROLE, subject=None),
        ("page biology:cohort",),
    ),
    "page GET /logistics/": (Probe("GET", "/logistics/", EVERY_ROLE, subject=None), ("page logistics:dashboard",)),
    "page GET /safety/terms/": (
        Probe("GET", "/safety/terms/", SAFETY_READERS, subject=None, data={"q": "fever"}),
        ("page safety:terms",),
    ),
    "page GET /jobs/{id}/file/": (
        Probe("GET", "/jobs/{job}/file/", EVERY_ROLE, subject=None),
        ("page jobs:file",),
    ),
    "api GET /calculators, /calculators/{name}": (
        Probe("GET", "/api/v1/calculators", EVERY_ROLE, subject=None),
        ("api GET /calculators",),
    ),
    "api GET /calculators/sledai2k": (
        Probe("GET", "/api/v1/calculators/sledai2k", EVERY_ROLE, subject=None),
        ("api GET /calculators/{name}",),
    ),
    "api POST /calculators/sledai2k": (
        Probe("POST", "/api/v1/calculators/sledai2k", EVERY_ROLE, ok=(200, 422), subject=None, data={}, json=True),
        ("api POST /calculators/{name}",),
    ),
    "api GET /logistics/vein-to-vein": (
        Probe("GET", "/api/v1/logistics/vein-to-vein", EVERY_ROLE, subject=None),
        ("api GET /logistics/vein-to-vein",),
    ),
    "api GET /screening-log.csv": (
        Probe("GET", "/api/v1/screening-log.csv", SCREENING_READERS, subject=None),
        ("api GET /screening-log.csv",),
    ),
    "api POST /forms/vital_signs/import.csv": (
        Probe(
            "POST",
            "/api/v1/forms/vital_signs/import.csv",
            CASEBOOK_WRITERS,
            ok=WRITE_OK,
            refused=(403, 422),
            subject=None,
            data={"visit": "D28", "csv": "subject\n"},
            json=True,
        ),
        ("api POST /forms/{form}/import.csv",),
    ),
    "api GET /exports/{id}": (
        Probe("GET", "/api/v1/exports/{job}", EXPORTERS, ok=(404,), subject=None),
        ("api GET /exports/{job_id}",),
    ),
}


ENDPOINTS: dict[str, Callable[[Case], list[HttpResponse]]] = {
    "page GET /subjects/": _page_list,
    "page GET /subjects/new/": _page_create_get,
    "page POST /subjects/new/": _page_create_post,
    "page GET /subjects/{code}/": _page_detail,
    "page GET /subjects/{code}/eligibility/": _page_eligibility_get,
    "page POST /subjects/{code}/eligibility/": _page_eligibility_post,
    "page GET /subjects/{code}/steps/{step}/": _page_step_get,
    "page POST /subjects/{code}/steps/{step}/": _page_step_post,
    "page GET /subjects/{code}/audit/": _page_audit,
    "api GET /centers": _api_centers,
    "api GET /subjects": _api_list,
    "api POST /subjects": _api_create,
    "api GET /subjects/{code}": _api_detail,
    "api GET /subjects/{code}/steps": _api_steps,
    "api POST /subjects/{code}/transitions": _api_transition,
    "api POST /subjects/{code}/eligibility": _api_eligibility,
    "api GET /subjects/{code}/audit": _api_audit,
    "api GET /subjects/{code}/timeline": _api_timeline,
    "api GET /subjects/{code}/steps/{step}": _api_step_form,
    "api GET /subjects/{code}/consent": _api_consent_read,
    "api GET /subjects/{code}/eligibility": _api_eligibility_read,
    "api POST /subjects/{code}/eligibility/preview": _api_eligibility_preview,
    "api GET /screening-log": _api_screening_log,
    "api GET /consort": _api_consort,
    "api GET /reconsent": _api_reconsent_list,
    "api GET /changes": _api_changes,
    "api GET /screening-fields": _api_screening_fields,
    "page GET /casebook/subjects/{code}/": _page_casebook,
    "page POST /casebook/subjects/{code}/visits/{visit}/": _page_visit_post,
    "page GET /casebook/ (grid, worklist, queries)": _page_study_grid,
    "api GET /subjects/{code}/visits": _api_visits,
    "api GET /subjects/{code}/disease-activity": _api_disease_activity,
    "api PUT /subjects/{code}/visits/{visit}/forms/{form}": _api_form_put,
    "api POST /subjects/{code}/queries": _api_query_raise,
    "api GET /queries": _api_queries,
    # The casebook's and the kinetics' pages through the API (issue 12, item 8).
    "api GET /casebook/grid, /casebook/worklist, /queries/summary": _api_casebook_lists,
    "api GET /subjects/{code}/casebook, /visits/{visit}, /visits/{visit}/forms/{form}/queries": _api_casebook_reads,
    "api GET /subjects/{code}/visits/{visit}/forms/{form}/verification": _api_verification_read,
    "api POST /subjects/{code}/visits/{visit}/forms/{form}/verification": _api_form_verify,
    "api POST /subjects/{code}/visits/{visit}/forms/{form}/lock": _api_form_lock,
    "api POST /subjects/{code}/visits/{visit}/forms/{form}/unlock": _api_form_unlock,
    "api POST /subjects/{code}/visits/{visit}/lock and /unlock": _api_visit_lock_unlock,
    "api POST /subjects/{code}/casebook/lock": _api_casebook_lock,
    "api POST /subjects/{code}/casebook/signature": _api_casebook_sign,
    "api POST /subjects/{code}/visits/unscheduled": _api_unscheduled_visit,
    "api GET /forms/{form}, /kinetics/markers": _api_protocol_descriptions,
    "api GET /kinetics/cohort, /subjects/{code}/kinetics/observations": _api_kinetics_reads,
    "page GET /dashboards/study/": _page_study_dashboard,
    "api GET /dashboards/study": _api_study_dashboard,
    "page GET /dashboards/safety/": _page_safety_dashboard,
    "api GET /dashboards/safety": _api_safety_dashboard,
    "page GET /dashboards/subjects/{code}/time-courses/": _page_time_courses,
    "api GET /subjects/{code}/time-courses": _api_time_courses,
    "page GET, POST /simulation/": _page_simulation,
    "page GET /alerts/": _page_alerts,
    "page POST /alerts/ (acknowledge)": _page_alert_acknowledge,
    "api GET /alerts": _api_alerts,
    "api POST /alerts/{id}/acknowledge": _api_alert_acknowledge,
    "page GET /safety/subjects/{code}/": _page_safety,
    "page POST /safety/subjects/{code}/adverse-events/new/": _page_ae_new_post,
    "page GET /safety/subjects/{code}/adverse-events/{id}/": _page_ae_detail,
    "api GET /subjects/{code}/adverse-events": _api_ae_list,
    "api POST /subjects/{code}/adverse-events": _api_ae_create,
    "api GET /subjects/{code}/adverse-events/{id}": _api_ae_get,
    "api PUT /subjects/{code}/adverse-events/{id}": _api_ae_put,
    "api POST /subjects/{code}/adverse-events/{id}/sae-reports": _api_sae_report,
    "api POST /subjects/{code}/adverse-events/{id}/relatedness": _api_relatedness,
    "page POST /safety/subjects/{code}/ (record a lab proposal)": _page_lab_accept,
    "api GET /subjects/{code}/lab-proposals": _api_lab_proposals,
    "api POST /subjects/{code}/lab-proposals": _api_lab_accept,
    "api GET /subjects/{code}/dlt": _api_dlt,
    "api POST /subjects/{code}/dlt": _api_dlt_decide,
    "api GET /ctcae-terms": _api_ctcae_terms,
    "page GET /toxicity/subjects/{code}/": _page_toxicity,
    "page POST /toxicity/subjects/{code}/": _page_toxicity_post,
    "api GET /subjects/{code}/toxicity/assessments and /episodes": _api_toxicity_read,
    "api POST /subjects/{code}/toxicity/assessments": _api_toxicity_post,
    "api PUT /subjects/{code}/toxicity/assessments/{day}": _api_toxicity_put,
    "api GET /subjects/{code}/toxicity/assessments/{day}": _api_toxicity_day,
    "page GET /calendars/ and /calendars/week/": _page_calendar,
    "page GET /calendars/center/{code}.ics": _page_center_ics,
    "api GET /calendars/center/{code}.ics": _api_center_ics,
    "page GET /subjects/{code}/calendar.ics": _page_subject_ics,
    "api GET /subjects/{code}/calendar.ics": _api_subject_ics,
    "page GET /jobs/, /jobs/{id}/, /jobs/{id}/progress/": _page_jobs,
    "page POST /jobs/ (start a job)": _page_job_start,
    "api GET /jobs, /jobs/{id}": _api_jobs,
    "api GET /jobs/{id}/file": _api_job_file,
    "api POST /jobs": _api_job_request,
    "page GET /planning/subjects/{code}/": _page_booking,
    "page POST /planning/subjects/{code}/": _page_booking_post,
    "api GET /subjects/{code}/bookings": _api_bookings,
    "api POST /subjects/{code}/bookings": _api_booking_post,
    "api DELETE /subjects/{code}/bookings/{id}": _api_booking_delete,
    "api GET /planning/slots": _api_slots,
    "page GET /planning/reservations/ and api GET /planning/reservations": _api_reservations,
    "page GET /planning/capacities/ and api GET /planning/capacities": _page_capacities,
    "page POST /planning/capacities/": _page_capacities_post,
    # Re-planning (issue 11, item 4).
    "page GET /planning/replanning/ and api GET /planning/proposals": _page_replanning,
    "api POST /planning/proposals/{id}/reject": _api_replan_decide,
    "api POST /planning/proposals/{id}/accept": _api_replan_accept,
    # The API of the logistics, planning and calendar pages (issue 12, item 8).
    "api GET /logistics/dashboard": _api_logistics_dashboard,
    "api GET /logistics/actions": _api_logistics_action_fields,
    "api GET /logistics/deviations and /logistics/deviations/counts": _api_logistics_deviations,
    "api POST /planning/capacities and GET /planning/capacities/history": _api_capacities_change,
    "api POST /subjects/{code}/proposals": _api_proposal_request,
    "api GET /planning/proposals?subject={code}": _api_subject_proposals,
    "api GET /calendars/month and /calendars/week": _api_calendar,
    "page GET, POST /planning/plan/": _page_plan,
    "page GET /planning/plan/{id}/ and /simulation/jobs/{id}/": _page_job_results,
    "api POST /jobs (plan_network, simulate_network)": _api_plan_and_simulate_jobs,
    "page GET, POST /exports/ and GET /exports/{id}/file/": _page_exports,
    "api POST, GET /exports, GET /exports/{id}, /exports/{id}/file": _api_exports,
    # Administration in the app (issue 13, item 2).
    "page GET /administration/ (users, centers, tokens) and api GET /administration/*": _page_administration,
    "page POST /administration/users/{username}/ (suspend)": _page_administration_post,
    "api PUT /administration/centers/{code}, POST /administration/users/{username}/memberships": (
        _api_administration_writes
    ),
    "page GET /administration/audit/, audit.csv and api GET /administration/audit, audit.csv": _page_study_audit,
    "api POST, PUT /administration/centers, users, memberships, suspension, reinstatement, two-factor-reset, tokens": (
        _api_administration_more_writes
    ),
}


ENDPOINTS.update({label: _probe(probe) for label, (probe, _covers) in PROBES.items()})

# What each entry of ENDPOINTS covers: pages by URL name (`page namespace:name`), API operations by
# method and path (`api GET /subjects/{code}`), as tests/integration/url_routes.py names them from the
# URL configuration. test_access_matrix checks that an entry reaches nothing it does not declare;
# test_every_page_and_operation_is_in_the_matrix that everything the URL configuration serves is
# declared by an entry or is public below.
COVERS: dict[str, tuple[str, ...]] = {
    "page GET /administration/ (users, centers, tokens) and api GET /administration/*": (
        "page administration:users",
        "page administration:user",
        "page administration:centers",
        "page administration:center",
        "page administration:tokens",
        "api GET /administration/users",
        "api GET /administration/centers",
        "api GET /administration/tokens",
    ),
    "page POST /administration/users/{username}/ (suspend)": ("page administration:user",),
    "api PUT /administration/centers/{code}, POST /administration/users/{username}/memberships": (
        "api PUT /administration/centers/{code}",
        "api POST /administration/users/{username}/memberships",
    ),
    "page GET /administration/audit/, audit.csv and api GET /administration/audit, audit.csv": (
        "page administration:audit",
        "page administration:audit_csv",
        "api GET /administration/audit",
        "api GET /administration/audit.csv",
    ),
    "api POST, PUT /administration/centers, users, memberships, suspension, reinstatement, two-factor-reset, tokens": (
        "api POST /administration/centers",
        "api POST /administration/users",
        "api PUT /administration/users/{username}",
        "api PUT /administration/users/{username}/memberships/{center}",
        "api POST /administration/users/{username}/suspension",
        "api POST /administration/users/{username}/reinstatement",
        "api POST /administration/users/{username}/two-factor-reset",
        "api POST /administration/tokens",
        "api POST /administration/tokens/{token_id}/revocation",
    ),
    "page GET /subjects/": ("page subjects:list",),
    "page GET /subjects/new/": ("page subjects:create",),
    "page POST /subjects/new/": ("page subjects:create",),
    "page GET /subjects/{code}/": ("page subjects:detail",),
    "page GET /subjects/{code}/eligibility/": ("page subjects:eligibility",),
    "page POST /subjects/{code}/eligibility/": ("page subjects:eligibility",),
    "page GET /subjects/{code}/steps/{step}/": ("page subjects:step",),
    "page POST /subjects/{code}/steps/{step}/": ("page subjects:step",),
    "page GET /subjects/{code}/audit/": ("page subjects:audit",),
    "api GET /centers": ("api GET /centers",),
    "api GET /subjects": ("api GET /subjects",),
    "api POST /subjects": ("api POST /subjects",),
    "api GET /subjects/{code}": ("api GET /subjects/{code}",),
    "api GET /subjects/{code}/steps": ("api GET /subjects/{code}/steps",),
    "api POST /subjects/{code}/transitions": ("api POST /subjects/{code}/transitions",),
    "api POST /subjects/{code}/eligibility": ("api POST /subjects/{code}/eligibility",),
    "api GET /subjects/{code}/audit": ("api GET /subjects/{code}/audit",),
    "api GET /subjects/{code}/timeline": ("api GET /subjects/{code}/timeline",),
    "api GET /subjects/{code}/steps/{step}": ("api GET /subjects/{code}/steps/{step}",),
    "api GET /subjects/{code}/consent": ("api GET /subjects/{code}/consent",),
    "api GET /subjects/{code}/eligibility": ("api GET /subjects/{code}/eligibility",),
    "api POST /subjects/{code}/eligibility/preview": ("api POST /subjects/{code}/eligibility/preview",),
    "api GET /screening-log": ("api GET /screening-log",),
    "api GET /consort": ("api GET /consort",),
    "api GET /reconsent": ("api GET /reconsent",),
    "api GET /changes": ("api GET /changes",),
    "api GET /screening-fields": ("api GET /screening-fields",),
    "page GET /casebook/subjects/{code}/": ("page casebook:subject",),
    "page POST /casebook/subjects/{code}/visits/{visit}/": ("page casebook:visit",),
    "page GET /casebook/ (grid, worklist, queries)": (
        "page casebook:grid",
        "page casebook:queries",
        "page casebook:worklist",
    ),
    "api GET /subjects/{code}/visits": ("api GET /subjects/{code}/visits",),
    "api GET /subjects/{code}/disease-activity": ("api GET /subjects/{code}/disease-activity",),
    "api PUT /subjects/{code}/visits/{visit}/forms/{form}": ("api PUT /subjects/{code}/visits/{visit}/forms/{form}",),
    "api POST /subjects/{code}/queries": ("api POST /subjects/{code}/queries",),
    "api GET /queries": ("api GET /queries",),
    "api GET /casebook/grid, /casebook/worklist, /queries/summary": (
        "api GET /casebook/grid",
        "api GET /casebook/worklist",
        "api GET /queries/summary",
    ),
    "api GET /subjects/{code}/casebook, /visits/{visit}, /visits/{visit}/forms/{form}/queries": (
        "api GET /subjects/{code}/casebook",
        "api GET /subjects/{code}/visits/{visit}",
        "api GET /subjects/{code}/visits/{visit}/forms/{form}/queries",
    ),
    "api GET /subjects/{code}/visits/{visit}/forms/{form}/verification": (
        "api GET /subjects/{code}/visits/{visit}/forms/{form}/verification",
    ),
    "api POST /subjects/{code}/visits/{visit}/forms/{form}/verification": (
        "api POST /subjects/{code}/visits/{visit}/forms/{form}/verification",
    ),
    "api POST /subjects/{code}/visits/{visit}/forms/{form}/lock": (
        "api POST /subjects/{code}/visits/{visit}/forms/{form}/lock",
    ),
    "api POST /subjects/{code}/visits/{visit}/forms/{form}/unlock": (
        "api POST /subjects/{code}/visits/{visit}/forms/{form}/unlock",
    ),
    "api POST /subjects/{code}/visits/{visit}/lock and /unlock": (
        "api POST /subjects/{code}/visits/{visit}/lock",
        "api POST /subjects/{code}/visits/{visit}/unlock",
    ),
    "api POST /subjects/{code}/casebook/lock": ("api POST /subjects/{code}/casebook/lock",),
    "api POST /subjects/{code}/casebook/signature": ("api POST /subjects/{code}/casebook/signature",),
    "api POST /subjects/{code}/visits/unscheduled": ("api POST /subjects/{code}/visits/unscheduled",),
    "api GET /forms/{form}, /kinetics/markers": (
        "api GET /forms/{form}",
        "api GET /kinetics/markers",
    ),
    "api GET /kinetics/cohort, /subjects/{code}/kinetics/observations": (
        "api GET /kinetics/cohort",
        "api GET /subjects/{code}/kinetics/observations",
    ),
    "page GET /dashboards/study/": ("page dashboards:study",),
    "api GET /dashboards/study": ("api GET /dashboards/study",),
    "page GET /dashboards/safety/": ("page dashboards:safety",),
    "api GET /dashboards/safety": ("api GET /dashboards/safety",),
    "page GET /dashboards/subjects/{code}/time-courses/": ("page dashboards:time_courses",),
    "api GET /subjects/{code}/time-courses": ("api GET /subjects/{code}/time-courses",),
    "page GET, POST /simulation/": ("page simulation:page",),
    "page GET /alerts/": ("page alerts:list",),
    "page POST /alerts/ (acknowledge)": ("page alerts:list",),
    "api GET /alerts": ("api GET /alerts",),
    "api POST /alerts/{id}/acknowledge": ("api POST /alerts/{alert_id}/acknowledge",),
    "page GET /safety/subjects/{code}/": ("page safety:subject",),
    "page POST /safety/subjects/{code}/adverse-events/new/": ("page safety:new",),
    "page GET /safety/subjects/{code}/adverse-events/{id}/": ("page safety:adverse_event",),
    "api GET /subjects/{code}/adverse-events": ("api GET /subjects/{code}/adverse-events",),
    "api POST /subjects/{code}/adverse-events": ("api POST /subjects/{code}/adverse-events",),
    "api GET /subjects/{code}/adverse-events/{id}": ("api GET /subjects/{code}/adverse-events/{ae_id}",),
    "api PUT /subjects/{code}/adverse-events/{id}": ("api PUT /subjects/{code}/adverse-events/{ae_id}",),
    "api POST /subjects/{code}/adverse-events/{id}/sae-reports": (
        "api POST /subjects/{code}/adverse-events/{ae_id}/sae-reports",
    ),
    "api POST /subjects/{code}/adverse-events/{id}/relatedness": (
        "api POST /subjects/{code}/adverse-events/{ae_id}/relatedness",
    ),
    "page POST /safety/subjects/{code}/ (record a lab proposal)": ("page safety:subject",),
    "api GET /subjects/{code}/lab-proposals": ("api GET /subjects/{code}/lab-proposals",),
    "api POST /subjects/{code}/lab-proposals": ("api POST /subjects/{code}/lab-proposals",),
    "api GET /subjects/{code}/dlt": ("api GET /subjects/{code}/dlt",),
    "api POST /subjects/{code}/dlt": ("api POST /subjects/{code}/dlt",),
    "api GET /ctcae-terms": ("api GET /ctcae-terms",),
    "page GET /toxicity/subjects/{code}/": ("page toxicity:subject",),
    "page POST /toxicity/subjects/{code}/": ("page toxicity:subject",),
    "api GET /subjects/{code}/toxicity/assessments and /episodes": (
        "api GET /subjects/{code}/toxicity/assessments",
        "api GET /subjects/{code}/toxicity/episodes",
    ),
    "api POST /subjects/{code}/toxicity/assessments": ("api POST /subjects/{code}/toxicity/assessments",),
    "api PUT /subjects/{code}/toxicity/assessments/{day}": ("api PUT /subjects/{code}/toxicity/assessments/{day}",),
    "api GET /subjects/{code}/toxicity/assessments/{day}": ("api GET /subjects/{code}/toxicity/assessments/{day}",),
    "page GET /calendars/ and /calendars/week/": (
        "page calendars:month",
        "page calendars:week",
    ),
    "page GET /calendars/center/{code}.ics": ("page calendars:center_ics",),
    "api GET /calendars/center/{code}.ics": ("api GET /calendars/center/{code}.ics",),
    "page GET /subjects/{code}/calendar.ics": ("page calendars:subject_ics",),
    "api GET /subjects/{code}/calendar.ics": ("api GET /subjects/{code}/calendar.ics",),
    "page GET /jobs/, /jobs/{id}/, /jobs/{id}/progress/": (
        "page jobs:detail",
        "page jobs:list",
        "page jobs:progress",
    ),
    "page POST /jobs/ (start a job)": ("page jobs:list",),
    "api GET /jobs, /jobs/{id}": (
        "api GET /jobs",
        "api GET /jobs/{job_id}",
    ),
    "api GET /jobs/{id}/file": (
        "api GET /jobs/{job_id}",
        "api GET /jobs/{job_id}/file",
    ),
    "api POST /jobs": ("api POST /jobs",),
    "page GET /planning/subjects/{code}/": ("page planning:booking",),
    "page POST /planning/subjects/{code}/": ("page planning:booking",),
    "api GET /subjects/{code}/bookings": ("api GET /subjects/{code}/bookings",),
    "api POST /subjects/{code}/bookings": ("api POST /subjects/{code}/bookings",),
    "api DELETE /subjects/{code}/bookings/{id}": ("api DELETE /subjects/{code}/bookings/{booking_id}",),
    "api GET /planning/slots": ("api GET /planning/slots",),
    "page GET /planning/reservations/ and api GET /planning/reservations": (
        "api GET /planning/reservations",
        "page planning:reservations",
    ),
    "page GET /planning/capacities/ and api GET /planning/capacities": (
        "api GET /planning/capacities",
        "page planning:capacities",
    ),
    "page POST /planning/capacities/": ("page planning:capacities",),
    "page GET /planning/replanning/ and api GET /planning/proposals": (
        "api GET /planning/proposals",
        "page planning:replanning",
    ),
    "api POST /planning/proposals/{id}/reject": ("api POST /planning/proposals/{proposal_id}/reject",),
    "api POST /planning/proposals/{id}/accept": ("api POST /planning/proposals/{proposal_id}/accept",),
    "api GET /logistics/dashboard": ("api GET /logistics/dashboard",),
    "api GET /logistics/actions": ("api GET /logistics/actions",),
    "api GET /logistics/deviations and /logistics/deviations/counts": (
        "api GET /logistics/deviations",
        "api GET /logistics/deviations/counts",
    ),
    "api POST /planning/capacities and GET /planning/capacities/history": (
        "api GET /planning/capacities/history",
        "api POST /planning/capacities",
    ),
    "api POST /subjects/{code}/proposals": ("api POST /subjects/{code}/proposals",),
    "api GET /planning/proposals?subject={code}": ("api GET /planning/proposals",),
    "api GET /calendars/month and /calendars/week": (
        "api GET /calendars/month",
        "api GET /calendars/week",
    ),
    "page GET, POST /planning/plan/": ("page planning:plan",),
    "page GET /planning/plan/{id}/ and /simulation/jobs/{id}/": (
        "page planning:plan_result",
        "page simulation:job_result",
    ),
    "api POST /jobs (plan_network, simulate_network)": ("api POST /jobs",),
    "page GET, POST /exports/ and GET /exports/{id}/file/": (
        "page exports:export_download",
        "page exports:export_list",
    ),
    "api POST, GET /exports, GET /exports/{id}, /exports/{id}/file": (
        "api GET /exports",
        "api GET /exports/{job_id}/file",
        "api POST /exports",
    ),
}
COVERS.update({label: covers for label, (_probe_, covers) in PROBES.items()})
# Entries whose requests depend on the role (a later request only when an earlier one succeeded):
# each case reaches a part of what they declare.
PARTLY_REACHED = frozenset(
    {
        "api POST /subjects/{code}/visits/{visit}/lock and /unlock",
        "api POST, GET /exports, GET /exports/{id}, /exports/{id}/file",
    }
)
# Served to anyone, signed in or not, and holding no trial data: outside the matrix, with the reason.
PUBLIC: dict[str, str] = {
    "page login": "the sign-in form (brute force: tests/integration/test_security.py, test_security_sessions.py)",
    "page logout": "ends the caller's own session only (tests/integration/test_security_sessions.py)",
    "page set_language": "sets the caller's language cookie; redirects only to this site (test_security_sessions.py)",
    "page api:api-root": "the API's root: no data",
    "page api:openapi-json": "the API's schema: operations and types, no data",
    "page api:openapi-view": "the API's documentation page (its own static files, no data)",
    "page otp_verify": "the second factor at sign-in: the caller's own code, after the password (test_two_factor.py)",
    "page otp_enrol": "enrolment of the caller's own authenticator app (test_two_factor.py)",
    "page otp_security": "the caller's own second factor and recovery codes, nothing of the trial (test_two_factor.py)",
    "page session_refresh": "renews the caller's own session before the idle sign-out (test_two_factor.py e2e)",
}


@pytest.mark.parametrize("where", ["own", "other"])
@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_access_matrix(built: Built, endpoint: str, role: Role, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    case = Case(built, role, where == "own")
    reached: set[str] = set()
    request = Client.request

    def recording(client: Client, **environ: Any) -> Any:
        reached.add(key_of(environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return request(client, **environ)

    monkeypatch.setattr(Client, "request", recording)
    for response in ENDPOINTS[endpoint](case):
        built.assert_no_identity_leak(case.username, response)
    declared = set(COVERS[endpoint])
    assert reached <= declared, (
        f"{endpoint!r} reaches {sorted(reached - declared)}: add them to its COVERS entry in "
        "tests/integration/test_access_matrix.py"
    )
    assert reached if endpoint in PARTLY_REACHED else reached == declared, (
        f"{endpoint!r} declares {sorted(declared - reached)} but does not reach them"
    )


def test_every_page_and_operation_is_in_the_matrix() -> None:
    """Walks the URL configuration: a page or API operation added to any app fails here until an
    entry of ENDPOINTS covers it (role x center) or PUBLIC names it with a reason."""
    served = set(all_routes())
    declared = {key for keys in COVERS.values() for key in keys}
    missing = sorted(served - declared - set(PUBLIC))
    assert not missing, (
        "Not in the access matrix: "
        + ", ".join(missing)
        + ". For each, write a case in tests/integration/test_access_matrix.py (a function of Case, or a"
        " Probe in PROBES stating the roles that may use it), add it to ENDPOINTS and name the key in its"
        " COVERS entry, e.g. COVERS['page GET /admin/centers/'] = ('page accounts:centers',); or, for a"
        " page that is public and holds no trial data, add it to PUBLIC with the reason."
    )
    assert not (declared | set(PUBLIC)) - served, (
        f"declared but not served: {sorted((declared | set(PUBLIC)) - served)}"
    )
    assert set(COVERS) == set(ENDPOINTS), sorted(set(COVERS) ^ set(ENDPOINTS))
    assert not declared & set(PUBLIC)


# --- role × step: only STEP_ROLES may act, on pages and the API --------------------------------

STEPS = list(Step)


@pytest.mark.parametrize("interface", ["page", "api"])
@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
@pytest.mark.parametrize("step", STEPS, ids=[s.value for s in STEPS])
def test_only_step_roles_may_perform_a_step(built: Built, step: Step, role: Role, interface: str) -> None:
    """On a subject every role may read, a step outside STEP_ROLES is refused, recorded and changes nothing."""
    case = Case(built, role, own=True)
    subject = case.subject()
    assert case.visible(subject)
    before, since = _snapshot(subject), _last_sequence()
    if interface == "page":
        response = case.page.post(f"/subjects/{subject.code}/steps/{step.value}/", {})
    else:
        response = case.api.post(
            f"/api/v1/subjects/{subject.code}/transitions",
            {"step": step.value, "data": {}},
            content_type="application/json",
        )
    built.assert_no_identity_leak(case.username, response)
    if case.may(step):
        # Allowed: the request reaches the form and the pathway (which may still refuse it), never a 403.
        assert response.status_code != 403
        assert "access.refused" not in {e.event for e in _entries_after(since)}
    else:
        assert response.status_code == 403
        if interface == "api":
            assert response.json()["code"] == "access_denied"
        assert _snapshot(subject) == before
        _assert_refusal_recorded(since, case.username, subject, step.value)


def test_every_role_is_in_the_matrix() -> None:
    assert set(ROLE_USERS) == set(Role)
    assert all(STEP_ROLES[step] for step in Step)
    # The oracles above are written independently of the access table; they must agree with it.
    assert roles_for(Action.REGISTER_SUBJECT) == SUBJECT_CREATORS
    assert roles_for(Action.READ_SCREENING) == SCREENING_READERS
    assert roles_for(Action.READ_AUDIT) == AUDIT_READERS
    assert roles_for(Action.READ_CASEBOOK) == CASEBOOK_READERS
    assert roles_for(Action.ENTER_FORM_DATA) == CASEBOOK_WRITERS
    assert roles_for(Action.RAISE_QUERY) == QUERY_RAISERS
    assert roles_for(Action.READ_STUDY_DASHBOARD) == STUDY_DASHBOARD_READERS
    assert roles_for(Action.READ_SAFETY) == SAFETY_READERS
    assert roles_for(Action.RECORD_ADVERSE_EVENT) == SAFETY_WRITERS
    assert roles_for(Action.ASSESS_RELATEDNESS) == RELATEDNESS_ASSESSORS
    assert roles_for(Action.DECIDE_DLT) == RELATEDNESS_ASSESSORS
    assert roles_for(Action.RUN_SIMULATION) == SIMULATION_RUNNERS
    assert roles_for(Action.READ_STUDY_JOBS) == STUDY_JOB_READERS
    assert roles_for(Action.VERIFY_AUDIT_TRAIL) == AUDIT_CHAIN_WALKERS
    assert roles_for(Action.READ_JOBS) == frozenset(Role)
    assert roles_for(Action.DECIDE_REPLAN) == REPLAN_DECIDERS
    assert roles_for(Action.PLAN_NETWORK) == NETWORK_PLANNERS
    assert roles_for(Action.ADMINISTER) == ADMINISTRATORS
    assert roles_for(Action.READ_STUDY_AUDIT) == STUDY_AUDIT_READERS


# --- the manufacturing lab ----------------------------------------------------------------------


@pytest.mark.parametrize("state", [*LAB_NEVER_SEES, *sorted(LAB_SEES)], ids=lambda s: s.value)
def test_lab_sees_subjects_only_from_material_shipped_and_pseudonymously(built: Built, state: State) -> None:
    label = "bdx_shipped" if state is State.MATERIAL_SHIPPED else f"bdx_{state.value}"
    subject = built.subjects[label]
    assert Subject.objects.get(pk=subject.pk).state == state.value
    lab = "lab.manufacturing"
    page = built.clients[lab].get(f"/subjects/{subject.code}/")
    api = built.api[lab].get(f"/api/v1/subjects/{subject.code}")
    listed = subject.code in {row["code"] for row in built.api[lab].get("/api/v1/subjects").json()["items"]}
    if state in LAB_SEES:
        assert page.status_code == 200 and api.status_code == 200 and listed
        assert api.json()["identity"] is None
    else:
        assert page.status_code == 404 and api.status_code == 404 and not listed
    for response in (page, api):
        built.assert_no_identity_leak(lab, response)


def test_lab_performs_manufacturing_steps_under_its_own_center(built: Built) -> None:
    subject = built.subjects["bdx_shipped"]
    client = built.clients["lab.manufacturing"]
    # Issue 4: the lab first scans the material in (the DIN on the bag); the step requires that record.
    collection = subject.collections.get()
    received = client.post(
        f"/logistics/subjects/{subject.code}/actions/receive_material/",
        {"scanned_code": collection.din + collection.check_character},
    )
    assert received.status_code == 302
    response = client.post(f"/subjects/{subject.code}/steps/start_manufacturing/", {})
    assert response.status_code == 302
    event = PathwayEvent.objects.filter(subject=subject).order_by("-pk").first()
    assert event is not None and event.step == Step.START_MANUFACTURING.value
    assert (event.role, event.center_code) == (Role.MANUFACTURING.value, "LAB")
    # Release needs every QC result conforming, the QP's signature and the bag's CoI scanned.
    for test_code, value in (
        ("viability", "85"),
        ("car_expression", "30"),
        ("vector_copy_number", "2"),
        ("endotoxin", "0.5"),
        ("sterility", "negative"),
        ("mycoplasma", "negative"),
    ):
        qc = built.api["lab.manufacturing"].post(
            f"/api/v1/logistics/subjects/{subject.code}/actions/record_qc",
            {"data": {"test_code": test_code, "value": value}},
            content_type="application/json",
        )
        assert qc.status_code == 200
    coi = subject.chain_of_identity
    api = built.api["lab.manufacturing"].post(
        f"/api/v1/subjects/{subject.code}/transitions",
        {"step": "release_product", "data": {"password": DEMO_PASSWORD, "bag_code": coi.content + coi.check_character}},
        content_type="application/json",
    )
    assert api.status_code == 200
    assert api.json()["state"] == State.PRODUCT_RELEASED.value and api.json()["identity"] is None


def test_lab_cannot_reach_another_labs_material(built: Built) -> None:
    subject = built.subjects["bdx_lyo"]
    before = _snapshot(subject)
    response = built.clients["lab.manufacturing"].post(
        f"/subjects/{subject.code}/steps/start_manufacturing/", {"material_received": "on"}
    )
    assert response.status_code == 404
    assert _snapshot(subject) == before


# --- no probing: out of scope looks exactly like absent -----------------------------------------


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_out_of_scope_is_indistinguishable_from_absent(built: Built, role: Role) -> None:
    case = Case(built, role, own=False)
    hidden = case.subject().code
    absent = f"{hidden[:3]}-999"
    assert not Subject.objects.filter(code=absent).exists()
    for path in ("/subjects/{}/", "/subjects/{}/audit/", "/subjects/{}/eligibility/"):
        assert case.page.get(path.format(hidden)).status_code == case.page.get(path.format(absent)).status_code == 404
    hidden_api = case.api.get(f"/api/v1/subjects/{hidden}")
    absent_api = case.api.get(f"/api/v1/subjects/{absent}")
    assert hidden_api.status_code == absent_api.status_code == 404
    assert hidden_api.json()["code"] == absent_api.json()["code"] == "not_found"
    # The lower-case code reaches the same subject (codes are normalised), so it cannot bypass scope either.
    assert case.page.get(f"/subjects/{hidden.lower()}/").status_code == 404


def test_sponsor_and_lab_read_pages_pseudonymously(built: Built) -> None:
    """The staff of BDX see the patient; the sponsor and the lab see the same page without identity."""
    subject = built.subjects["bdx_shipped"]
    family, _given, _birth, hospital = built.identity[subject.code]
    for username in ("bdx.investigator", "bdx.coordinator", "bdx.apheresis", "bdx.pharmacist"):
        body = built.clients[username].get(f"/subjects/{subject.code}/").content.decode()
        assert family.upper() in body and hospital in body
    for username in ("cra.monitor", "dm.datamanager", "sponsor.admin", "lab.manufacturing"):
        response = built.clients[username].get(f"/subjects/{subject.code}/")
        body = response.content.decode().lower()
        assert response.status_code == 200 and subject.code.lower() in body
        assert family.lower() not in body and hospital.lower() not in body
        built.assert_no_identity_leak(username, response)
