"""Every form of the pages, posted with generated values (issue 13, item 8).

The forms are found, not listed: every page of the URL configuration is opened, on the demo
trial, by each role that may act on it (the subject's center's investigator, coordinator,
apheresis and pharmacist, the lab, the data manager, the sponsor), and each `<form method="post">`
it shows is read (inputs, selects, textareas with their types, ranges and options). Hypothesis
then posts values to each: plausible ones (an option, a number in range, a date) and bad ones
(wrong types, out of range, huge strings, unicode and control characters, empty). Whatever is
posted: never a 5xx; an accepted post redirects; any other answer adds nothing to the audit
trail but the refusal itself (no record written), and a refusal with a 4xx status shows why (a
field marked, or the refusal said). A 200 is the form shown again with its errors, or what a page
computes without storing (a calculator, a preview). The test fails unless both outcomes (accepted,
refused) are reached across the forms.

Slow (a few minutes): `-m "not slow"` skips it; `./run test` runs it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

# Posts that end a session or change the language: not forms of the trial.
NOT_FORMS = ("/accounts/logout/", "/i18n/", "/accounts/login/")
# What a refused post shows: a field marked, or the refusal said (form errors, an alert, the error page).
REFUSAL_SHOWN = re.compile(r'data-error="|class="errorlist|data-testid="(form-errors|refusal|error-page)"|role="alert"')


@dataclass
class Input:
    name: str
    kind: str  # text, number, date, datetime-local, checkbox, select, textarea, file, hidden...
    options: list[str] = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    value: str = ""


@dataclass
class PageForm:
    page: str
    action: str
    username: str
    inputs: dict[str, Input]

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        """The same form shown on two pages or to two roles is fuzzed once."""
        return re.sub(r"/[A-Z]{3}-\d+/", "/S/", self.action), tuple(sorted(self.inputs))


class _Forms(HTMLParser):
    """The post forms of a page and their fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, Input]]] = []
        self._inputs: dict[str, Input] | None = None
        self._select: Input | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            if a.get("method", "get").lower() == "post":
                self._inputs = {}
                self.forms.append((a.get("action", ""), self._inputs))
            return
        if self._inputs is None or not a.get("name"):
            return
        name = a["name"]
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "reset"):
                return
            low, high = (_number(a.get("min")), _number(a.get("max")))
            current = self._inputs.get(name)
            if current and kind in ("radio", "checkbox"):
                current.options.append(a.get("value", "on"))
                return
            options = [a.get("value", "on")] if kind in ("radio", "checkbox") else []
            self._inputs[name] = Input(name, kind, options, low, high, a.get("value", ""))
        elif tag == "select":
            self._select = self._inputs[name] = Input(name, "select")
        elif tag == "textarea":
            self._inputs[name] = Input(name, "textarea")
        elif tag == "option" and self._select is not None:
            self._select.options.append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inputs = None
        elif tag == "select":
            self._select = None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


# --- generated values ---------------------------------------------------------------------------------

BAD = st.one_of(
    st.just(""),
    st.just("x" * 100_000),
    st.text(max_size=40),  # any unicode, control characters included
    st.sampled_from(["-1", "1e309", "NaN", "0x10", "12,5", "١٢", "2026-02-30", "31/12/2026", "'; DROP TABLE x;--"]),
    st.sampled_from(["<script>alert(1)</script>", '=HYPERLINK("http://x")', "\u202e\u0000", "null", "[]"]),
)


def _plausible(entry: Input) -> st.SearchStrategy[str]:
    if entry.options:
        return st.sampled_from(entry.options)
    if entry.kind == "number":
        low = entry.low if entry.low is not None else -1e6
        high = entry.high if entry.high is not None else 1e6
        return st.floats(low, high, allow_nan=False).map(lambda x: f"{x:.3g}")
    if entry.kind == "date":
        return st.dates().map(str)
    if entry.kind == "datetime-local":
        return st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M"))
    if entry.kind == "hidden":
        return st.just(entry.value)
    return st.text(min_size=1, max_size=30)


@st.composite
def posts(draw: st.DrawFn, form: PageForm) -> tuple[dict[str, str], bool]:
    """Values for each field: mostly plausible, some bad; some fields left out. Says whether any is bad."""
    data: dict[str, str] = {}
    bad = False
    for entry in form.inputs.values():
        if entry.kind == "file":
            continue
        choice = draw(st.integers(0, 9))
        if choice == 0:
            continue  # left out
        if choice <= 2:
            bad = True
            data[entry.name] = draw(BAD)
        else:
            data[entry.name] = draw(_plausible(entry))
    return data, bad


# --- the demo and its forms ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page_forms(django_db_setup: Any, django_db_blocker: Any) -> Iterator[list[PageForm]]:
    """The demo trial and every post form of its pages, for the whole module, undone at its end."""
    from cartrial.demo import STAGED, build_demo, demo_epoch
    from cartrial.domain.pathway import State
    from cartrial.protocols import active_protocol

    kept = {State.APHERESIS_COLLECTED, State.PRODUCT_RELEASED, State.LYMPHODEPLETION, State.FOLLOW_UP}
    with django_db_blocker.unblock(), transaction.atomic():
        build_demo(active_protocol(), today=demo_epoch(), staged=tuple(s for s in STAGED if s[1] in kept))
        yield _collect()
        transaction.set_rollback(True)


def _page_urls() -> list[str]:
    from test_french_pages import _pattern_urls

    from cartrial.apps.casebook.models import FormRecord
    from cartrial.apps.subjects.models import Subject

    codes = list(Subject.objects.order_by("code").values_list("code", flat=True))
    urls = _pattern_urls(codes)
    records = FormRecord.objects.order_by("subject__code", "form_code").values_list(
        "subject__code", "visit_code", "form_code"
    )
    seen: set[str] = set()
    for code, visit, form in records:
        if form not in seen:
            seen.add(form)
            urls.append(reverse("casebook:form", kwargs={"code": code, "visit": visit, "form": form}))
    return urls


def _callers(url: str) -> list[str]:
    center = re.search(r"/([A-Z]{3})-\d+/", url)
    prefix = center.group(1).lower() if center else "bdx"
    if center:
        return [f"{prefix}.{role}" for role in ("investigator", "coordinator", "apheresis", "pharmacist")]
    return ["sponsor.admin", "dm.datamanager", "lab.manufacturing", "bdx.coordinator"]


def _collect() -> list[PageForm]:
    from cartrial.apps.accounts.models import User

    clients: dict[str, Client] = {}
    found: dict[tuple[str, tuple[str, ...]], PageForm] = {}
    for url in _page_urls():
        if url.endswith((".pdf", ".csv", ".ics")):
            continue
        for username in _callers(url):
            if username not in clients:
                clients[username] = Client()
                clients[username].force_login(User.objects.get(username=username))
            response = clients[username].get(url)
            if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
                continue
            parser = _Forms()
            parser.feed(response.content.decode())
            shown = [(action or url, inputs) for action, inputs in parser.forms if inputs]
            shown = [(target, inputs) for target, inputs in shown if not target.startswith(NOT_FORMS)]
            for target, inputs in shown:
                form = PageForm(url, target, username, inputs)
                found.setdefault(form.key, form)
            if shown:
                break  # the first role that may act on the page: its forms are the page's
    return list(found.values())


def _writes_after(sequence: int) -> list[str]:
    """The events audited after `sequence` that record a change, not a refused attempt (a refusal is
    audited with its one `refusal` change: `pathway.step_refused`, `otp.failed`, ...)."""
    from cartrial.apps.audit.models import AuditEntry

    entries = AuditEntry.objects.filter(sequence__gt=sequence).values_list("event", "changes_json")
    return [event for event, changes in entries if [c["field"] for c in json.loads(changes)] != ["refusal"]]


def _last_sequence() -> int:
    from cartrial.apps.audit.models import AuditEntry

    last = AuditEntry.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    return last or 0


def test_the_pages_show_the_forms_of_every_kind(page_forms: list[PageForm]) -> None:
    actions = {form.action for form in page_forms}
    for kind in ("/steps/", "/logistics/", "/casebook/", "/safety/", "/toxicity/", "/planning/", "/exports/"):
        assert any(kind in action for action in actions), f"no form found under {kind}: {sorted(actions)}"


def test_every_form_refuses_bad_values_cleanly(page_forms: list[PageForm]) -> None:
    from cartrial.apps.accounts.models import User

    clients: dict[str, Client] = {}
    outcomes: dict[str, set[str]] = {"accepted": set(), "refused": set()}
    for form in page_forms:
        if form.username not in clients:
            clients[form.username] = Client()
            clients[form.username].force_login(User.objects.get(username=form.username))
        client = clients[form.username]

        post_one = _fuzzer(form, client, outcomes)
        with transaction.atomic():
            post_one()
            transaction.set_rollback(True)
    # The generator reaches both outcomes across the forms.
    assert outcomes["accepted"], "no post was ever accepted: the plausible values never reach a valid form"
    assert outcomes["refused"], "no post was ever refused: the bad values never reach a check"


def _fuzzer(form: PageForm, client: Client, outcomes: dict[str, set[str]]) -> Any:
    """A hypothesis test posting generated values to `form` as `client`."""

    @settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(posts(form))
    def post_one(drawn: tuple[dict[str, str], bool]) -> None:
        data, bad = drawn
        before = _last_sequence()
        response = client.post(form.action, data)
        assert response.status_code < 500, (form.action, data, response.content[:2000])
        event("input has a bad value" if bad else "input all plausible")
        if response.status_code in (301, 302, 303):
            event("accepted")
            outcomes["accepted"].add(form.action)
            return
        event(f"not accepted: {response.status_code}")
        outcomes["refused"].add(form.action)
        written = _writes_after(before)
        assert written == [], (form.action, data, written)
        if response.status_code >= 400:
            # Refused with a status: the page says why (a field marked, or the refusal said).
            assert REFUSAL_SHOWN.search(response.content.decode(errors="replace")), (form.action, data)
        else:
            # 200: the form shown again with its errors, or what it computes without storing (a
            # calculator, a preview); either way nothing was written (checked above).
            event("shown again (200)")

    return post_one
