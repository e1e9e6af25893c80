"""Dates and times typed at a center go in and come back out unchanged, in every form, zone and language.

Issue 8: the screening labs' sample time moved +1 h each time the screening form was saved (09:00 →
10:00 → 11:00): Django's DateTimeField read the typed wall-clock time in the server's zone (UTC), the
page showed it back in the center's, and the next save stored that. Forms now use
`apps.fields.CenterDateTimeField` (naive stays naive) and `at_center` attaches the center's zone.

- `test_every_date_and_time_field_round_trips`: every form of the apps with a date or time field is
  found (the list is generated, so a new field is covered without editing this file), built with an
  initial value from a stored instant, rendered as the page renders it, posted back as a browser posts
  that widget's value, cleaned and turned into an instant the way the app does; the instant must be the
  stored one, in Paris and Montréal (America/Toronto), in French and English, on ordinary days and on
  both clock-change days.
- `test_saving_the_screening_page_again_keeps_the_sample_time`: the reported drift, through the page.
- `test_the_main_path_through_the_pages_stores_the_times_typed` (below): every step and logistics action
  of the main path posted through its page as the browser posts the rendered form; each time typed is
  found, as the same instant, in what the request stored.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django import forms
from django.apps import apps as django_apps
from django.urls import get_resolver
from django.utils import translation

from cartrial.apps.fields import CenterDateTimeField, at_center, center_wall_clock
from cartrial.apps.pathway.forms import correction_initial
from cartrial.domain.corrections import CORRECTABLE, parse_corrected_value
from cartrial.domain.kinetics import preset_named
from cartrial.domain.scores.registry import CALCULATORS
from cartrial.protocols import active_protocol
from cartrial.protocols.simulation import simulation_defaults

ZONES = ("Europe/Paris", "America/Toronto")
LANGUAGES = ("fr", "en")
# Clock changes of 2026: Paris 29 March and 25 October, Toronto 8 March and 1 November.
CLOCK_CHANGE_DAYS = {
    "Europe/Paris": (date(2026, 3, 29), date(2026, 10, 25)),
    "America/Toronto": (date(2026, 3, 8), date(2026, 11, 1)),
}


def stored_instants(zone: str) -> list[datetime]:
    """Instants as stored (aware): an ordinary morning, and times around each clock change of the zone.

    The second pass of the hour repeated when clocks go back cannot be typed without an offset (a
    datetime-local input has none); the first pass is what a typed time means, so only it is here.
    """
    tz = ZoneInfo(zone)
    spring, autumn = CLOCK_CHANGE_DAYS[zone]
    local = [
        datetime(2026, 1, 15, 9, 0),
        datetime(2026, 7, 14, 23, 45),
        datetime.combine(spring, time(1, 30)),
        datetime.combine(spring, time(3, 30)),
        datetime.combine(spring, time(9, 0)),
        datetime.combine(autumn, time(0, 30)),
        datetime.combine(autumn, time(1, 30) if zone == "America/Toronto" else time(2, 30)),  # first pass
        datetime.combine(autumn, time(3, 30)),
        datetime.combine(autumn, time(9, 0)),
        datetime(2026, 12, 31, 23, 59),
    ]
    return [moment.replace(tzinfo=tz) for moment in local]


STORED_DATES = [
    date(2026, 1, 15),
    date(2026, 3, 8),
    date(2026, 3, 29),
    date(2026, 10, 25),
    date(2026, 11, 1),
    date(2028, 2, 29),
    date(2026, 12, 31),
]


# --- the forms of the apps, found rather than listed ---------------------------------------------------


def _app_forms() -> list[type[forms.Form]]:
    """Every Form subclass defined in cartrial's modules: the apps' forms.py, and whatever the URLs load
    (pages and API), so a form defined next to its view is found too."""
    get_resolver().url_patterns  # loads every view and API module
    for config in django_apps.get_app_configs():
        if config.name.startswith("cartrial."):
            try:
                importlib.import_module(f"{config.name}.forms")
            except ModuleNotFoundError as missing:
                if missing.name != f"{config.name}.forms":
                    raise
    found: list[type[forms.Form]] = []
    pending = list(forms.Form.__subclasses__())
    while pending:
        form_class = pending.pop()
        pending.extend(form_class.__subclasses__())
        if form_class.__module__.startswith("cartrial.") and form_class not in found:
            found.append(form_class)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _constructions(form_class: type[forms.Form], language: str) -> Iterator[dict[str, Any]]:
    """The keyword arguments each form is built with by its page: one set per calculator for calculators,
    per correctable field (signed and not) for the correction form."""
    wanted = [
        name
        for name, parameter in inspect.signature(form_class.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is inspect.Parameter.empty
    ]
    known = {
        "protocol": active_protocol(),
        "language": language,
        "center_choices": [("MTL", "MTL"), ("BDX", "BDX")],
        "preset": preset_named("sle-default"),
        # The simulation page: the protocol's defaults (apps/simulation/views.py).
        "defaults": simulation_defaults(active_protocol()),
    }
    if "inputs" in wanted:
        for calculator in CALCULATORS.values():
            yield {name: known[name] for name in wanted if name != "inputs"} | {"inputs": dict(calculator.inputs)}
        return
    if "spec" in wanted:
        for record in CORRECTABLE.values():
            for spec in record.fields:
                yield {name: known[name] for name in wanted if name not in ("spec", "signed")} | {
                    "spec": spec,
                    "signed": record.covered_by is not None,
                }
        return
    unknown = [name for name in wanted if name not in known]
    assert not unknown, f"{form_class.__qualname__} needs {unknown}: say here how its page builds it"
    yield {name: known[name] for name in wanted}


TEMPORAL = (forms.DateField, forms.DateTimeField, forms.TimeField, forms.SplitDateTimeField)


@dataclass(frozen=True)
class TemporalField:
    form_class: type[forms.Form]
    kwargs_index: int
    name: str

    def __str__(self) -> str:
        spec = self.build("en").__dict__.get("spec")  # the correction form: which stored field it corrects
        return f"{self.form_class.__qualname__}.{self.name}" + (f"[{spec.name}]" if spec is not None else "")

    def build(self, language: str, **form_args: Any) -> forms.Form:
        kwargs = list(_constructions(self.form_class, language))[self.kwargs_index]
        return self.form_class(**form_args, **kwargs)


def temporal_fields() -> list[TemporalField]:
    found = []
    with translation.override("en"):
        for form_class in _app_forms():
            for index, kwargs in enumerate(_constructions(form_class, "en")):
                for name, field in form_class(**kwargs).fields.items():
                    if isinstance(field, TEMPORAL):
                        found.append(TemporalField(form_class, index, name))
    return found


TEMPORAL_FIELDS = temporal_fields()


def test_the_search_finds_the_forms_with_dates_and_times() -> None:
    """The generated list holds the fields known today (it may only grow): the search itself works."""
    names = {str(field) for field in TEMPORAL_FIELDS}
    known = {
        "ScreeningForm.creatinine_sampled_at",
        "ScreeningForm.cd3_sampled_at",
        "SampleForm.sampled_at",
        "CollectApheresisForm.started_at",
        "ShipMaterialForm.actual_departure_at",
        "ShipProductForm.planned_arrival_at",
        "ReceiveProductForm.received_at",
        "ReceiveMaterialForm.received_at",
        "ThawForm.thawed_at",
        "StartScreeningForm.signed_on",
        "InfuseForm.infused_on",
        "ConsentWithdrawalForm.withdrawn_on",
        "SubjectCreateForm.birth_date",
    }
    assert known <= names, known - names


# --- what a browser posts -------------------------------------------------------------------------


class _Inputs(HTMLParser):
    """The name, type and value of each input, select and textarea of some HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str]] = []
        self._select: dict[str, str] | None = None
        self._textarea: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "input":
            self.inputs.append(attributes | {"tag": "input"})
        elif tag == "select":
            self._select = attributes | {"tag": "select", "value": ""}
            self.inputs.append(self._select)
        elif tag == "option" and self._select is not None and "selected" in attributes:
            self._select["value"] = attributes.get("value", "")
        elif tag == "textarea":
            self._textarea = attributes | {"tag": "textarea", "value": ""}
            self.inputs.append(self._textarea)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea["value"] += data


# The value sanitisation of HTML date inputs: a value in another shape is shown empty and posted empty.
VALID_INPUT_VALUE = {
    "date": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "datetime-local": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?"),
    "time": re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?"),
}


def browser_post(html: str) -> dict[str, Any]:
    """What a browser sends for these controls, untouched by the user (checkboxes only when checked)."""
    parser = _Inputs()
    parser.feed(html)
    posted: dict[str, Any] = {}
    for control in parser.inputs:
        name, kind = control.get("name"), control.get("type", "text")
        if not name or (kind in ("checkbox", "radio") and "checked" not in control):
            continue
        value = control.get("value", "on" if kind == "checkbox" else "")
        pattern = VALID_INPUT_VALUE.get(kind)
        if pattern is not None and not pattern.fullmatch(value):
            value = ""
        posted.setdefault(name, []).append(value)
    return {name: values[0] if len(values) == 1 else values for name, values in posted.items()}


# --- the round trip of every field -------------------------------------------------------------------


def _round_trip(field: TemporalField, language: str, initial: Any) -> tuple[str, Any]:
    """Render the field with `initial` as its page does in `language`, post back what the browser sends,
    and return the rendered HTML and the cleaned value."""
    with translation.override(language):
        shown = field.build(language, initial={field.name: initial})
        html = str(shown[field.name])
        posted = browser_post(html)
        bound = field.build(language, data=posted)
        bound.is_valid()
        assert field.name not in bound.errors, f"{field} refused its own rendering {posted}: {bound.errors[field.name]}"
        return html, bound.cleaned_data.get(field.name)


def _shown_initial(field: TemporalField, stored: date | datetime, zone: str) -> Any:
    """The initial value the page gives the field for a stored value: the correction form's own function
    (it shows the stored record), else a stored instant as the center's wall-clock time."""
    spec = field.build("en").__dict__.get("spec")
    if spec is not None:
        return correction_initial(spec, stored, zone)["value"]
    return center_wall_clock(stored, zone) if isinstance(stored, datetime) else stored


def _as_stored(field: TemporalField, cleaned: Any, zone: str) -> Any:
    """The cleaned value as the app stores it: the correction form's parser, else `at_center`."""
    spec = field.build("en").__dict__.get("spec")
    if spec is not None:
        return parse_corrected_value(spec, cleaned, ZoneInfo(zone))
    return at_center(cleaned, zone) if isinstance(cleaned, datetime) else cleaned


@pytest.mark.parametrize("field", TEMPORAL_FIELDS, ids=str)
def test_every_date_and_time_field_round_trips(field: TemporalField) -> None:
    form_field = field.build("en").fields[field.name]
    if isinstance(form_field, forms.DateTimeField):
        # Django's own DateTimeField reads a typed time in the server's zone (UTC): the cause of the drift.
        assert isinstance(form_field, CenterDateTimeField), f"{field} must be a CenterDateTimeField"
        assert form_field.widget.input_type == "datetime-local", f"{field}: a browser date-time picker"
        for zone in ZONES:
            for language in LANGUAGES:
                for stored in stored_instants(zone):
                    html, cleaned = _round_trip(field, language, _shown_initial(field, stored, zone))
                    shown = f'value="{stored.astimezone(ZoneInfo(zone)):%Y-%m-%dT%H:%M}"'
                    assert shown in html, f"{field} shows {html} for {stored} in {zone}"
                    assert _as_stored(field, cleaned, zone) == stored, (
                        f"{field}: {stored} came back {cleaned} ({zone}, {language})"
                    )
    elif isinstance(form_field, forms.DateField):
        assert form_field.widget.input_type == "date", f"{field}: a browser date picker"
        for language in LANGUAGES:
            for stored_date in STORED_DATES:
                html, cleaned = _round_trip(field, language, _shown_initial(field, stored_date, "Europe/Paris"))
                assert f'value="{stored_date.isoformat()}"' in html, f"{field} shows {html}"
                back = _as_stored(field, cleaned, "Europe/Paris")
                assert back == stored_date, f"{field}: {stored_date} came back {back} ({language})"
    else:
        pytest.fail(f"{field}: a {type(form_field).__name__}; write how its value is typed and stored, then test it")


def test_the_stored_instants_cover_both_clock_changes_of_each_zone() -> None:
    for zone in ZONES:
        offsets = {moment.utcoffset() for moment in stored_instants(zone)}
        assert len(offsets) == 2, (zone, offsets)  # winter and summer time both present
        spring, autumn = CLOCK_CHANGE_DAYS[zone]
        for day in (spring, autumn):
            on_day = [m for m in stored_instants(zone) if m.date() == day]
            assert len({m.utcoffset() for m in on_day}) == 2, (zone, day)  # before and after the change


# --- the reported drift: the screening page saved again and again ----------------------------------------


def _form_html(page: str, form_id: str) -> str:
    match = re.search(rf'<form[^>]*id="{form_id}".*?</form>', page, re.S)
    assert match is not None, f"no form {form_id} on the page"
    return match.group(0)


def _stored_sample_times(subject: Any) -> dict[str, datetime]:
    from cartrial.apps.clinical.models import LabObservation

    latest: dict[str, datetime] = {}
    for row in LabObservation.objects.filter(subject=subject, context="screening").order_by("recorded_at", "pk"):
        latest[row.analyte] = row.sampled_at
    return latest


@pytest.mark.django_db
@pytest.mark.parametrize("day", ["ordinary", "spring", "autumn"])
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("center", ["BDX", "MTL"])
def test_saving_the_screening_page_again_keeps_the_sample_time(
    world: Any, center: str, language: str, day: str
) -> None:
    from screening_data import form_post

    from cartrial.apps import clock
    from cartrial.domain.pathway import State

    zone = world.centers[center].time_zone
    spring, autumn = CLOCK_CHANGE_DAYS[zone]
    sample_day = {"ordinary": date(2026, 1, 15), "spring": spring, "autumn": autumn}[day]
    sampled = datetime.combine(sample_day, time(9, 0), ZoneInfo(zone))
    with clock.frozen_at(datetime(2027, 1, 10, 15, 0, tzinfo=ZoneInfo("UTC"))):
        subject = world.new_subject(center, State.SCREENING)
        client = world.client_for(f"{center.lower()}.coordinator")
        client.cookies["django_language"] = language
        url = f"/subjects/{subject.code}/eligibility/"
        first = client.post(url, {**form_post(sampled_at=f"{sample_day}T09:00"), "save": "1"})
        assert first.status_code == 302, first.content.decode()[-2000:]
        assert _stored_sample_times(subject) == {"creatinine": sampled, "cd3": sampled}
        for save in range(1, 4):
            page = client.get(url)
            assert page.status_code == 200
            form = _form_html(page.content.decode(), "screening-form")
            assert form.count(f'value="{sample_day}T09:00"') == 2, f"save {save}: the page shows another time"
            posted = browser_post(form) | {"save": "1", "reason": f"Checked against the source document ({save})"}
            again = client.post(url, posted)
            assert again.status_code == 302, again.content.decode()[-2000:]
            assert _stored_sample_times(subject) == {"creatinine": sampled, "cd3": sampled}, f"after save {save}"


# --- the main path through the pages: each time typed is stored as the same instant ------------------------


def _as_typed(value: Any, zone: str) -> Any:
    """A value of the driver as the page would show it: an instant as the center's wall-clock time."""
    return center_wall_clock(value, zone) if isinstance(value, datetime) else value


def _same(stored: Any, intended: Any) -> bool:
    """Whether a stored (JSON) value is the intended date or instant."""
    if not isinstance(stored, str):
        return False
    try:
        if isinstance(intended, datetime):
            parsed = datetime.fromisoformat(stored)
            return parsed.tzinfo is not None and parsed == intended
        return date.fromisoformat(stored) == intended
    except ValueError:
        return False


def _browser_driver(world: Any, language: str) -> type:
    from django.test import Client

    from cartrial.apps import clock
    from cartrial.apps.audit.models import AuditEntry
    from cartrial.apps.audit.selectors import entry_changes
    from cartrial.apps.logistics import services as logistics_services
    from cartrial.apps.logistics.forms import action_form
    from cartrial.apps.pathway.steps import STEPS
    from cartrial.demo import DEMO_PASSWORD, PathwayDriver, logger_csv
    from cartrial.domain.pathway import Step
    from cartrial.domain.roles import Action

    class BrowserDriver(PathwayDriver):
        """The demo's main path, each step and timed logistics action posted through its page as a browser
        posts the form rendered with the driver's values; what each request stored is checked."""

        checked: list[str]

        def _client(self, username: str) -> Client:
            client = world.client_for(username)
            client.cookies["django_language"] = language
            return client

        def _post(self, username: str, url: str, form: forms.Form, data: dict[str, Any], what: str) -> None:
            zone = self.subject.center.time_zone
            with translation.override(language):
                posted = browser_post(form.as_div())
            for name, field in form.fields.items():  # what the person types where nothing is shown
                if isinstance(field.widget, forms.PasswordInput) and name in data:
                    posted[name] = data[name]
            since = AuditEntry.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
            response = self._client(username).post(url, posted)
            assert response.status_code == 302, f"{what}: {response.status_code} {response.content.decode()[-1500:]}"
            stored: list[tuple[str, Any]] = []
            for entry in AuditEntry.objects.filter(sequence__gt=since):
                stored += [(change["field"], change["new"]) for change in entry_changes(entry)]
            event = self.subject.pathway_events.order_by("-occurred_at", "-pk").first()
            if event is not None:
                stored += list(event.details.items())
            for name, field in form.fields.items():
                intended = data.get(name)
                if not isinstance(field, TEMPORAL) or intended in (None, ""):
                    continue
                # Stored under the field's name or another (a receipt time is the custody hand-over's `at`).
                assert any(_same(value, intended) for _key, value in stored), (
                    f"{what}.{name}: typed {_as_typed(intended, zone)} at {zone} ({intended}); "
                    f"the request stored {stored}"
                )
                self.checked.append(f"{what}.{name}")

        def step(self, username: str, action: Any, days_later: float, **data: Any) -> None:
            self.moment += timedelta(days=days_later)
            zone = self.subject.center.time_zone
            form_class = STEPS[action].form
            with clock.frozen_at(self.moment):
                kwargs = next(_constructions(form_class, language))
                initial = {name: _as_typed(value, zone) for name, value in data.items()}
                form = form_class(initial=initial, **kwargs)
                url = f"/subjects/{self.subject.code}/steps/{action.value}/"
                self._post(username, url, form, data, action.value)
            self.subject.refresh_from_db()

        def _action(self, username: str, action: Action, at: datetime, **data: Any) -> None:
            zone = self.subject.manufacturing_site if action is Action.RECEIVE_MATERIAL else self.subject.center
            with clock.frozen_at(at):
                initial = {name: _as_typed(value, zone.time_zone) for name, value in data.items()}
                form = action_form(action, self.protocol, language, initial=initial)
                url = f"/logistics/subjects/{self.subject.code}/actions/{action.value}/"
                self._post(username, url, form, data, action.value)
            self.subject.refresh_from_db()

        def _receive_at_lab(self, actor: Any, user: Any, moment: datetime) -> None:
            shipment = self.subject.shipments.filter(direction="to_lab").order_by("-pk").first()
            assert shipment is not None and shipment.collection is not None
            scanned = logistics_services.din_of(shipment.collection).typed_form
            # Typed a few minutes after unpacking, as a technician does.
            received_at = moment - timedelta(minutes=7)
            self._action(
                "lab.manufacturing", Action.RECEIVE_MATERIAL, moment, scanned_code=scanned, received_at=received_at
            )
            logistics_services.temperature_log_import(
                actor=actor,
                subject=self.subject,
                protocol=self.protocol,
                shipment=shipment,
                content=logger_csv(shipment.actual_departure_at, received_at, low_c=3.6, high_c=6.2, fresh=True),
                file_name="logger.csv",
                logger_time_zone="UTC",
            )

        def _infuse(self) -> None:
            self.moment += timedelta(days=5)
            thawed_at = self.moment - timedelta(minutes=18)
            pharmacist = f"{self.prefix}.pharmacist"
            self._action(
                pharmacist,
                Action.THAW,
                self.moment - timedelta(minutes=16),
                scanned_code=self._coi_scan(),
                thawed_at=thawed_at,
            )
            typed = logistics_services.coi_of(self.subject.chain_of_identity).typed_form
            self.step(
                f"{self.prefix}.investigator",
                Step.INFUSE,
                0,
                infused_on=self.day(),
                password=DEMO_PASSWORD,
                bag_code=typed,
                wristband_code=self.subject.code,
                second_username=pharmacist,
                second_password=DEMO_PASSWORD,
                second_bag_code=self._coi_scan(),
                second_wristband_code=self.subject.code,
            )

    BrowserDriver.checked = []
    return BrowserDriver


# The collection of each run straddles a clock change of its center (started before, ended after).
COLLECTION_AT = {
    ("Europe/Paris", "spring"): datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("UTC")),
    ("Europe/Paris", "autumn"): datetime(2026, 10, 25, 3, 30, tzinfo=ZoneInfo("UTC")),
    ("America/Toronto", "spring"): datetime(2026, 3, 8, 9, 30, tzinfo=ZoneInfo("UTC")),
    ("America/Toronto", "autumn"): datetime(2026, 11, 1, 9, 30, tzinfo=ZoneInfo("UTC")),
}


@pytest.mark.django_db
@pytest.mark.parametrize("season", ["spring", "autumn"])
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("center", ["BDX", "MTL"])
def test_the_main_path_through_the_pages_stores_the_times_typed(
    world: Any, center: str, language: str, season: str
) -> None:
    from cartrial.apps import clock
    from cartrial.demo import DAYS_TO_REACH
    from cartrial.domain.pathway import State

    zone = world.centers[center].time_zone
    collected = COLLECTION_AT[(zone, season)]
    start = collected - timedelta(days=DAYS_TO_REACH[State.APHERESIS_COLLECTED])
    ended_local = (collected - timedelta(minutes=20)).astimezone(ZoneInfo(zone))
    started_local = (collected - timedelta(hours=4, minutes=10)).astimezone(ZoneInfo(zone))
    assert started_local.utcoffset() != ended_local.utcoffset()  # the collection straddles the change
    with clock.frozen_at(start - timedelta(hours=1)):
        subject = world.new_subject(center)
    driver_class = _browser_driver(world, language)
    driver = driver_class(world.protocol, world.users, subject, start)
    driver.advance_to(State.INFUSED)
    subject.refresh_from_db()
    assert subject.state == State.INFUSED.value
    checked = set(driver.checked)
    # Every date or time field of the forms on this path was typed and found stored (the list is not written
    # here: it is what the forms hold), among them at least these.
    expected = {
        "start_screening.signed_on",
        "schedule_apheresis.apheresis_date",
        "collect_apheresis.started_at",
        "collect_apheresis.ended_at",
        "ship_material.planned_departure_at",
        "ship_material.actual_departure_at",
        "receive_material.received_at",
        "ship_product.planned_arrival_at",
        "start_lymphodepletion.planned_infusion_date",
        "thaw.thawed_at",
        "infuse.infused_on",
    }
    assert expected <= checked, expected - checked


# --- the consent page's dates (plain date inputs, no Django form) ----------------------------------------


def _form_by_testid(page: str, testid: str) -> str:
    match = re.search(rf'<form[^>]*data-testid="{testid}".*?</form>', page, re.S)
    assert match is not None, f"no form {testid} on the page"
    return match.group(0)


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("center", ["BDX", "MTL"])
def test_the_consent_pages_date_is_the_centers_today_and_is_stored_as_shown(
    world: Any, center: str, language: str
) -> None:
    """At 22:30 in Montréal it is already tomorrow in UTC (and 04:30 in Paris): the date shown and stored
    is the center's."""
    from cartrial.apps import clock
    from cartrial.apps.subjects.models import ConsentWithdrawal
    from cartrial.domain.pathway import State

    now = datetime(2026, 11, 2, 3, 30, tzinfo=ZoneInfo("UTC"))
    local_day = now.astimezone(ZoneInfo(world.centers[center].time_zone)).date()
    with clock.frozen_at(now):
        subject = world.new_subject(center, State.SCREENING)
        client = world.client_for(f"{center.lower()}.investigator")
        client.cookies["django_language"] = language
        url = f"/subjects/{subject.code}/consent/"
        form = _form_by_testid(client.get(url).content.decode(), "withdraw-form")
        posted = browser_post(form)
        assert posted["date"] == local_day.isoformat()
        posted |= {"confirm": "yes", "reason": "Ne souhaite plus participer"}
        response = client.post(url, posted)
        assert response.status_code == 302, response.content.decode()[-1500:]
    assert ConsentWithdrawal.objects.get(subject=subject).withdrawn_on == local_day
