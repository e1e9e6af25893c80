"""Two-factor sign-in (issue 13, item 3): enrolment with the QR code drawn by the app, a code at
each sign-in, recovery codes usable once, no URL around it for the roles that require it, a code
at each electronic signature, throttled wrong codes, resets, and every step audited.

The suite runs with two-factor off (test_settings); these tests turn it on. django-otp's clock is
replaced by one the test moves, and the codes are computed by `domain.totp` (RFC 6238 written out),
not by django-otp: the library is checked against an independent computation.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import django_otp.models
import django_otp.plugins.otp_totp.models
import pytest
import typer
from django.test import Client
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from typer.testing import CliRunner

from cartrial.apps.accounts import two_factor
from cartrial.apps.accounts.models import User
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.audit.services import Actor
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.cli import otp as otp_cli
from cartrial.config.known_secrets import DEMO_PASSWORD, DEMO_TOTP_KEY
from cartrial.domain.pathway import State, Step
from cartrial.domain.roles import TWO_FACTOR_ROLES, Role
from cartrial.domain.totp import totp_code

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ENROL = "/accounts/two-factor/enrol/"
VERIFY = "/accounts/two-factor/code/"
TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "cartrial" / "templates"
# One user per role, from the demo's users (conftest `world`).
BY_ROLE = {
    Role.INVESTIGATOR: "bdx.investigator",
    Role.COORDINATOR: "bdx.coordinator",
    Role.APHERESIS: "bdx.apheresis",
    Role.PHARMACIST: "bdx.pharmacist",
    Role.MANUFACTURING: "lab.manufacturing",
    Role.MONITOR: "cra.monitor",
    Role.DATA_MANAGER: "dm.datamanager",
    Role.SPONSOR_ADMIN: "sponsor.admin",
}


class FakeClock:
    """django-otp's time (TOTP steps and the throttling's delays), moved by the test."""

    def __init__(self) -> None:
        self.t = 1_900_000_000.0  # the start of a 30-second step, far from any boundary

    def time(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def otp_clock(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FakeClock:
    """Two-factor on, and django-otp on a clock the test moves."""
    settings.CARTRIAL_TWO_FACTOR_REQUIRED = True
    fake = FakeClock()
    monkeypatch.setattr(django_otp.plugins.otp_totp.models, "time", SimpleNamespace(time=fake.time))
    monkeypatch.setattr(django_otp.models, "timezone", SimpleNamespace(now=fake.now))
    monkeypatch.setattr(two_factor, "timezone", SimpleNamespace(now=fake.now))
    return fake


def _code(user: User, clock: FakeClock) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return totp_code(bytes.fromhex(device.key), clock.t)


def _signed_in(username: str) -> Client:
    """A browser that gave the right password (the real login form, django-axes included)."""
    client = Client()
    response = client.post(LOGIN, {"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 302, response.content[:300]
    return client


def _enrolled(user: User, clock: FakeClock) -> list[str]:
    """Enrol `user` through the service (an app holding the pending secret gives its code)."""
    device = two_factor.pending_device(user)
    codes = two_factor.enrol_confirm(user=user, device=device, code=totp_code(bytes.fromhex(device.key), clock.t))
    clock.advance(30)  # the next code is a new one (a code is never accepted twice)
    return codes


def _events(username: str, event: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(entity="user", entity_id=username, event=event).order_by("sequence"))


def test_the_required_roles_are_one_named_set() -> None:
    assert {
        Role.INVESTIGATOR,
        Role.PHARMACIST,
        Role.MANUFACTURING,
        Role.MONITOR,
        Role.DATA_MANAGER,
        Role.SPONSOR_ADMIN,
    } == TWO_FACTOR_ROLES
    assert set(BY_ROLE) == set(Role)


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_a_required_role_enrols_before_anything_else(world: Any, otp_clock: FakeClock, role: Role) -> None:
    username = BY_ROLE[role]
    assert {m.role for m in world.users[username].memberships.all()} == {role.value}
    client = _signed_in(username)
    response = client.get("/subjects/")
    if role in TWO_FACTOR_ROLES:
        assert response.status_code == 302
        assert response["Location"] == f"{ENROL}?next=%2Fsubjects%2F"
    else:
        assert response.status_code == 200  # coordinators and the apheresis unit: voluntary


def test_no_url_gets_around_the_second_factor(world: Any, otp_clock: FakeClock) -> None:
    subject = world.new_subject("BDX", State.ELIGIBLE)
    client = _signed_in("bdx.investigator")
    before = AuditEntry.objects.count()
    for path in (
        "/",
        "/subjects/",
        f"/subjects/{subject.code}/",
        f"/subjects/{subject.code}/audit/",
        f"/casebook/subjects/{subject.code}/",
        "/alerts/",
        "/dashboards/study/",
        "/accounts/two-factor/",
        "/exports/",
        "/no/such/page/",
    ):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith(ENROL), path
    # A write sent straight to its URL does nothing either.
    posted = client.post(f"/subjects/{subject.code}/steps/include/", {"password": DEMO_PASSWORD})
    assert posted.status_code == 302 and posted["Location"] == ENROL
    htmx = client.get("/subjects/", HTTP_HX_REQUEST="true")
    assert htmx.status_code == 302 and htmx["HX-Redirect"].startswith(ENROL)
    assert Subject.objects.get(pk=subject.pk).state == State.ELIGIBLE.value
    assert AuditEntry.objects.count() == before
    # Enrolled but not verified: the code page, and the enrolment page cannot replace the authenticator.
    _enrolled(world.users["bdx.investigator"], otp_clock)
    assert client.get("/subjects/")["Location"].startswith(VERIFY)
    assert client.get(ENROL)["Location"] == VERIFY
    assert client.post(ENROL, {"otp_code": "123456"})["Location"] == VERIFY


def test_enrolment_draws_the_qr_code_and_confirms_with_a_code(world: Any, otp_clock: FakeClock) -> None:
    user = world.users["bdx.pharmacist"]
    client = _signed_in("bdx.pharmacist")
    page = client.get(f"{ENROL}?next=/logistics/")
    html = page.content.decode()
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    # The QR code is an inline SVG made by the app: no image from elsewhere, nothing to load.
    svg = re.search(r'<div class="otp-qr"[^>]*>(.*?)</div>', html, re.S)
    assert svg is not None and svg.group(1).lstrip().startswith("<svg") and "<path" in svg.group(1)
    assert "http" not in svg.group(1).replace("http://www.w3.org/2000/svg", "")
    assert two_factor.secret_for_typing(device) in html
    assert "otpauth://totp/cartrial%3Abdx.pharmacist?secret=" in device.config_url
    assert 'name="next" value="/logistics/"' in html

    wrong = client.post(ENROL, {"otp_code": "000000", "next": "/logistics/"})
    assert wrong.status_code == 422 and 'data-testid="otp-error"' in wrong.content.decode()
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed
    assert len(_events("bdx.pharmacist", "otp.failed")) == 1
    otp_clock.advance(2)  # past the throttle's delay after one wrong code

    session_before = client.session.session_key
    right = client.post(ENROL, {"otp_code": totp_code(bytes.fromhex(device.key), otp_clock.t), "next": "/logistics/"})
    assert right.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", right.content.decode())
    assert len(codes) == two_factor.RECOVERY_CODE_COUNT == 10 and len(set(codes)) == 10
    assert set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True)) == set(codes)
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert client.session.session_key != session_before  # a new session key once verified
    enrolled = _events("bdx.pharmacist", "otp.enrolled")
    assert len(enrolled) == 1 and '"recovery_codes"' in enrolled[0].changes_json
    assert client.get("/logistics/").status_code == 200
    # The codes are shown once: the second factor page only counts them.
    security = client.get("/accounts/two-factor/").content.decode()
    assert "10" in security and not any(code in security for code in codes)
    assert audit_verify().intact


def test_each_sign_in_asks_the_code(world: Any, otp_clock: FakeClock) -> None:
    user = world.users["cra.monitor"]
    _enrolled(user, otp_clock)
    client = _signed_in("cra.monitor")
    assert client.get("/subjects/")["Location"] == f"{VERIFY}?next=%2Fsubjects%2F"
    wrong = client.post(VERIFY, {"otp_code": "999999", "next": "/subjects/"})
    assert wrong.status_code == 422
    assert client.get("/subjects/").status_code == 302
    assert len(_events("cra.monitor", "otp.failed")) == 1
    otp_clock.advance(2)
    right = client.post(VERIFY, {"otp_code": _code(user, otp_clock), "next": "/subjects/"})
    assert right.status_code == 302 and right["Location"] == "/subjects/"
    assert client.get("/subjects/").status_code == 200
    # The same code a second time (another browser, within its 30 seconds) is refused: no replay.
    replay = _signed_in("cra.monitor").post(VERIFY, {"otp_code": _code(user, otp_clock)})
    assert replay.status_code == 422
    # An outside `next` is not followed.
    otp_clock.advance(30)
    other = _signed_in("cra.monitor")
    outside = other.post(VERIFY, {"otp_code": _code(user, otp_clock), "next": "https://evil.example/"})
    assert outside.status_code == 302 and outside["Location"] == "/subjects/"


def test_a_recovery_code_signs_in_once(world: Any, otp_clock: FakeClock) -> None:
    user = world.users["dm.datamanager"]
    codes = _enrolled(user, otp_clock)
    first = _signed_in("dm.datamanager")
    used = first.post(VERIFY, {"otp_code": codes[3].upper(), "next": "/subjects/"})
    assert used.status_code == 302 and first.get("/subjects/").status_code == 200
    recorded = _events("dm.datamanager", "otp.recovery_code_used")
    assert len(recorded) == 1
    assert json.loads(recorded[0].changes_json) == [{"field": "recovery_codes_left", "old": 10, "new": 9}]
    assert two_factor.recovery_codes_left(user) == 9
    otp_clock.advance(2)
    again = _signed_in("dm.datamanager").post(VERIFY, {"otp_code": codes[3]})
    assert again.status_code == 422
    assert len(_events("dm.datamanager", "otp.failed")) == 1
    otp_clock.advance(2)
    assert _signed_in("dm.datamanager").post(VERIFY, {"otp_code": codes[4]}).status_code == 302


def test_new_recovery_codes_replace_the_old_ones(world: Any, otp_clock: FakeClock) -> None:
    user = world.users["sponsor.admin"]
    old = _enrolled(user, otp_clock)
    client = _signed_in("sponsor.admin")
    assert client.post(VERIFY, {"otp_code": _code(user, otp_clock)}).status_code == 302
    page = client.post("/accounts/two-factor/")
    new = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert len(_events("sponsor.admin", "otp.recovery_codes_renewed")) == 1
    assert _signed_in("sponsor.admin").post(VERIFY, {"otp_code": old[0]}).status_code == 422
    otp_clock.advance(2)
    assert _signed_in("sponsor.admin").post(VERIFY, {"otp_code": new[0]}).status_code == 302


def test_wrong_codes_are_throttled(world: Any, otp_clock: FakeClock) -> None:
    user = world.users["lab.manufacturing"]
    _enrolled(user, otp_clock)
    client = _signed_in("lab.manufacturing")
    for wait in (1, 2, 4):
        assert client.post(VERIFY, {"otp_code": "000000"}).status_code == 422
        # The right code, before the delay is over, is refused too: guessing gets no faster.
        throttled = client.post(VERIFY, {"otp_code": _code(user, otp_clock)})
        assert throttled.status_code == 422
        assert f"{wait} seconds" in throttled.content.decode() or f"{wait} secondes" in throttled.content.decode()
        otp_clock.advance(wait)
    assert len(_events("lab.manufacturing", "otp.failed")) == 6  # three wrong, three while throttled
    assert client.post(VERIFY, {"otp_code": _code(user, otp_clock)}).status_code == 302


def test_a_coordinator_may_enrol_and_then_gives_codes(world: Any, otp_clock: FakeClock) -> None:
    user = world.users["bdx.coordinator"]
    client = _signed_in("bdx.coordinator")
    assert client.get("/subjects/").status_code == 200
    assert client.get("/accounts/two-factor/").status_code == 200
    device = two_factor.pending_device(user)
    page = client.get(ENROL)
    assert page.status_code == 200
    assert client.post(ENROL, {"otp_code": totp_code(bytes.fromhex(device.key), otp_clock.t)}).status_code == 200
    otp_clock.advance(30)
    assert _signed_in("bdx.coordinator").get("/subjects/")["Location"].startswith(VERIFY)


def test_the_signature_needs_the_code_of_an_enrolled_signer(world: Any, otp_clock: FakeClock) -> None:
    """The API (a bearer token, not concerned by the sign-in's second factor) signs an inclusion:
    the password alone is refused like a wrong password, audited as signature.failed, and counted
    by the throttling even though the signature's transaction rolled back."""
    investigator = world.users["bdx.investigator"]
    _enrolled(investigator, otp_clock)
    subject = world.new_subject("BDX", State.ELIGIBLE)
    token = api_token_create(actor=Actor.system("test"), user=investigator, label="test")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = f"/api/v1/subjects/{subject.code}/transitions"

    def include(**data: str) -> Any:
        return api.post(url, {"step": "include", "data": data}, content_type="application/json")

    for data in ({"password": DEMO_PASSWORD}, {"password": DEMO_PASSWORD, "otp_code": "000000"}):
        refused = include(**data)
        assert refused.status_code == 409 and refused.json()["code"] == "wrong_otp_code", refused.content
        otp_clock.advance(4)
    failed = AuditEntry.objects.filter(subject_code=subject.code, event="signature.failed")
    assert failed.count() == 2 and all("wrong_otp_code" in e.changes_json for e in failed)
    assert TOTPDevice.objects.get(user=investigator).throttling_failure_count == 2
    assert Subject.objects.get(pk=subject.pk).state == State.ELIGIBLE.value
    # A right code with a wrong password is still a wrong password.
    wrong_password = include(password="not-mine", otp_code=_code(investigator, otp_clock))
    assert wrong_password.json()["code"] == "wrong_password"
    signed = include(password=DEMO_PASSWORD, otp_code=_code(investigator, otp_clock))
    assert signed.status_code == 200, signed.content
    event = PathwayEvent.objects.get(subject=subject, step="include")
    assert event.signature is not None and event.signature.signer == investigator
    assert audit_verify().intact


def test_a_signer_without_authenticator_signs_with_the_password(world: Any, otp_clock: FakeClock) -> None:
    subject = world.new_subject("BDX", State.ELIGIBLE)
    world.step("bdx.investigator", subject, Step.INCLUDE, password=DEMO_PASSWORD)
    assert subject.state == State.INCLUDED.value


def test_every_signing_form_and_payload_has_the_code_field() -> None:
    """One field, one name: the step and action forms, the corrections, the raw-POST pages, the API."""
    from cartrial.apps.casebook.api import SignIn
    from cartrial.apps.logistics.forms import OosExceptionForm
    from cartrial.apps.pathway.api import RecordCorrectionIn
    from cartrial.apps.pathway.forms import IncludeForm, InfuseForm, ReleaseProductForm
    from cartrial.apps.safety.api import DltDecisionIn, RelatednessIn

    for form in (IncludeForm, ReleaseProductForm, OosExceptionForm, InfuseForm):
        assert "otp_code" in form.base_fields, form
    assert "second_otp_code" in InfuseForm.base_fields
    for schema in (SignIn, RecordCorrectionIn, DltDecisionIn, RelatednessIn):
        assert "otp_code" in schema.model_fields, schema
    # Every page form asking a password for a signature includes the code field.
    for template in TEMPLATES.rglob("*.html"):
        if template.parent.name == "accounts":
            continue  # the sign-in pages themselves
        text = template.read_text()
        for form in re.findall(r"<form.*?</form>", text, re.S):
            if 'type="password" name="password"' in form:
                assert 'include "accounts/_signature_code.html"' in form, template


def test_the_demo_key_is_refused_in_production(world: Any, otp_clock: FakeClock, settings: Any) -> None:
    user = world.users["bdx.investigator"]
    two_factor.demo_enrol(user, DEMO_TOTP_KEY)
    settings.CARTRIAL_REFUSED_TOTP_KEYS = [DEMO_TOTP_KEY]
    client = _signed_in("bdx.investigator")
    refused = client.post(VERIFY, {"otp_code": totp_code(bytes.fromhex(DEMO_TOTP_KEY), otp_clock.t)})
    assert (
        refused.status_code == 422 and "cartrial otp reset" in refused.content.decode()
    )  # the way out, in either language
    assert client.get("/subjects/").status_code == 302
    subject = world.new_subject("BDX", State.ELIGIBLE)
    with pytest.raises(Exception) as signature:
        world.step("bdx.investigator", subject, Step.INCLUDE, password=DEMO_PASSWORD, otp_code="123456")
    assert getattr(signature.value, "code", "") == "wrong_otp_code"


def test_a_reset_from_the_command_line_makes_the_person_enrol_again(world: Any, otp_clock: FakeClock) -> None:
    user = world.users["bdx.investigator"]
    _enrolled(user, otp_clock)
    app = typer.Typer()
    otp_cli.register(app)
    runner = CliRunner()
    missing_reason = runner.invoke(app, ["otp", "reset", "BDX.Investigator"])
    assert missing_reason.exit_code != 0 and two_factor.authenticator(user) is not None
    done = runner.invoke(app, ["otp", "reset", "BDX.Investigator", "--reason", "phone lost, identity checked"])
    assert done.exit_code == 0, done.output
    assert "bdx.investigator" in done.output
    assert two_factor.authenticator(user) is None and two_factor.recovery_codes_left(user) == 0
    reset = _events("bdx.investigator", "otp.reset")
    assert len(reset) == 1 and reset[0].reason == "phone lost, identity checked"
    assert _signed_in("bdx.investigator").get("/subjects/")["Location"].startswith(ENROL)
    unknown = runner.invoke(app, ["otp", "reset", "nobody", "--reason", "x"])
    assert unknown.exit_code == 2 and "No user nobody" in unknown.output
    assert audit_verify().intact


def test_a_reset_by_the_administrator_on_the_page_and_through_the_api(
    world: Any, otp_clock: FakeClock, settings: Any
) -> None:
    """The user page shows the second factor and resets it with a reason; the API does the same.
    The administrator's own sign-in is not under test here: two-factor is turned off for their
    client after the two people enrolled (the page and the API are the same either way)."""
    investigator, pharmacist = world.users["bdx.investigator"], world.users["bdx.pharmacist"]
    _enrolled(investigator, otp_clock)
    _enrolled(pharmacist, otp_clock)
    settings.CARTRIAL_TWO_FACTOR_REQUIRED = False
    admin = world.client_for("sponsor.admin")
    page = admin.get("/administration/users/bdx.investigator/").content.decode()
    assert 'data-testid="otp-reset"' in page and 'data-enrolled="true" data-codes-left="10"' in page
    no_reason = admin.post("/administration/users/bdx.investigator/", {"action": "otp_reset", "reason": ""})
    assert no_reason.status_code == 422 and two_factor.authenticator(investigator) is not None
    done = admin.post("/administration/users/bdx.investigator/", {"action": "otp_reset", "reason": "phone lost"})
    assert done.status_code == 302 and two_factor.authenticator(investigator) is None
    assert [e.reason for e in _events("bdx.investigator", "otp.reset")] == ["phone lost"]
    page = admin.get("/administration/users/bdx.investigator/").content.decode()
    assert 'data-enrolled="false"' in page and 'data-testid="otp-reset"' not in page

    token = api_token_create(actor=Actor.system("test"), user=world.users["sponsor.admin"], label="test")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = "/api/v1/administration/users/bdx.pharmacist/two-factor-reset"
    listed = api.get("/api/v1/administration/users", {"limit": 500}).json()["items"]
    assert {u["username"]: u["second_factor_enrolled"] for u in listed}["bdx.pharmacist"] is True
    assert api.post(url, {"reason": ""}, content_type="application/json").status_code == 422
    assert (
        api.post(
            "/api/v1/administration/users/nobody/two-factor-reset", {"reason": "x"}, content_type="application/json"
        ).status_code
        == 404
    )
    reset = api.post(url, {"reason": "new phone"}, content_type="application/json")
    assert reset.status_code == 200 and reset.json()["second_factor_enrolled"] is False
    assert two_factor.authenticator(pharmacist) is None and two_factor.recovery_codes_left(pharmacist) == 0
    assert [e.reason for e in _events("bdx.pharmacist", "otp.reset")] == ["new phone"]
    settings.CARTRIAL_TWO_FACTOR_REQUIRED = True
    assert _signed_in("bdx.pharmacist").get("/subjects/")["Location"].startswith(ENROL)
    assert audit_verify().intact


def test_the_session_refresh_and_the_idle_warning(world: Any) -> None:
    client = world.client_for("bdx.coordinator")
    page = client.get("/subjects/").content.decode()
    assert 'id="idle-warning"' in page and 'data-session-seconds="1800"' in page
    assert "/static/cartrial/idle.js" in page
    refreshed = client.post("/accounts/session/refresh/")
    assert refreshed.status_code == 200 and refreshed.json() == {"seconds": 1800}
    assert Client().post("/accounts/session/refresh/").status_code == 401
    assert 'id="idle-warning"' not in Client().get(LOGIN).content.decode()


@pytest.mark.parametrize("path", [ENROL, VERIFY, "/accounts/two-factor/"])
def test_the_second_factor_pages_need_the_password_first(world: Any, otp_clock: FakeClock, path: str) -> None:
    for response in (Client().get(path), Client().post(path, {"otp_code": "123456"})):
        assert response.status_code == 302 and response["Location"].startswith(f"{LOGIN}?next=")
    assert not TOTPDevice.objects.exists()
