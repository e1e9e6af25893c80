"""Issue 9's sentence, from the pages: "a full year of follow-up of a demo subject can be entered,
queried, verified, locked and signed from the pages".

One subject infused more than a year ago. Its coordinator records every visit from D1 to M12 on
its target date and saves every form the protocol lists for it, the posted fields built from the
protocol's item definitions (as the form page names them); an edit check at M3 opens a query that
the correction closes; the monitor raises a query at M6 that the center answers and the monitor
closes, then verifies every form against the source; the data manager locks the casebook and the
investigator signs it. Every casebook step is a request to a page (Django's test client), never the API
nor a service; the audit chain stays intact.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils.html import escape

from cartrial.apps import clock
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.casebook.models import CasebookSignature, FormRecord, Query, VisitRecord
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain import lab_catalogue
from cartrial.domain.ecrf import FormDef, FormStatus, ItemDef, ItemType
from cartrial.domain.pathway import State
from cartrial.domain.visits import Anchor, VisitDefinition
from cartrial.protocols import Protocol

pytestmark = pytest.mark.django_db

Posted = dict[str, str | list[str]]

# What a follow-up visit of a lupus patient in remission after CAR-T typically shows, by item name,
# in the item's default unit ("," as a French keyboard types decimals). Every value is checked against
# the protocol's definition of its item before it is posted, so the table cannot drift from the
# protocol unnoticed; an item missing here gets a value built from its definition alone.
TYPICAL: dict[str, str | list[str]] = {
    "temperature_c": "36,8",
    "heart_rate_bpm": "72",
    "systolic_bp_mmhg": "118",
    "diastolic_bp_mmhg": "74",
    "spo2_pct": "98",
    "weight_kg": "62,4",
    "anc": "3,2",
    "lymphocytes": "1,1",
    "platelets": "230",
    "haemoglobin": "124",
    "creatinine": "71",
    "alt": "22",
    "ast": "25",
    "bilirubin": "9",
    "crp": "2",
    "ferritin": "85",
    "ldh": "190",
    "anti_dsdna": "12",
    "c3": "1,05",
    "c4": "0,21",
    "igg": "9,8",
    "b_cells": "150",
    "car_t_cells": "3",
    "car_t_copies": "1200",
    "upcr": "18",
    "sledai2k_descriptors": [],  # remission: no descriptor present
    "physician_global_assessment": "0,5",
    "prednisone_mg_per_day": "5",
    "medication": "Hydroxychloroquine",
    "dose": "200",
}

# The correction of an edit check's finding and the monitor's question, as people type them.
M3_DIASTOLIC_TYPED = "124"  # systolic 118: the two pressures swapped at entry
M3_CORRECTION_REASON = "Erreur de saisie : 118/74 sur la fiche de surveillance"


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _range_of(item: ItemDef) -> tuple[float | None, float | None]:
    """The item's plausible range in its default unit (a lab's is its analyte's unless narrowed)."""
    if item.analyte is None:
        return item.minimum, item.maximum
    low, high = lab_catalogue.ANALYTES[item.analyte].ranges[item.unit]
    return (item.minimum if item.minimum is not None else low), (item.maximum if item.maximum is not None else high)


def _value(item: ItemDef, visit_date: date, since: date) -> str | list[str]:
    """A plausible answer to `item`: the typical one when known, else one built from its definition."""
    typical = TYPICAL.get(item.name)
    if item.type in (ItemType.INTEGER, ItemType.NUMBER):
        low, high = _range_of(item)
        if typical is None:
            middle = ((low or 0.0) + (high if high is not None else 100.0)) / 2
            typical = str(round(middle)) if item.type is ItemType.INTEGER else f"{middle:g}".replace(".", ",")
        assert isinstance(typical, str)
        number = _number(typical)
        assert (low is None or number >= low) and (high is None or number <= high), (item.name, typical, low, high)
        return typical
    if item.type is ItemType.CHOICE:
        assert typical is None or typical in item.codes, (item.name, typical)
        return typical if isinstance(typical, str) else item.codes[0]
    if item.type is ItemType.MULTI_CHOICE:
        chosen = [item.codes[0]] if typical is None else typical
        assert isinstance(chosen, list) and set(chosen) <= set(item.codes), (item.name, chosen)
        return chosen
    if item.type is ItemType.BOOLEAN:
        return "true"
    if item.type is ItemType.DATE:
        # The visit's own date where the item is the visit date; otherwise an earlier start (a
        # medication taken since before the trial).
        return (visit_date if item.visit_date else since).isoformat()
    assert isinstance(typical, str | None)
    return typical or "Sans particularité"


def _posted_fields(form: FormDef, visit_date: date, since: date) -> Posted:
    """The fields the form page posts for `form`, every item answered: a lab's value with its unit
    (`name__unit`), a repeating group as one row (`group.0.item`). Derived items are computed by the
    engine and items shown only under a condition are left to it (they are hidden by the answers)."""
    fields: Posted = {}
    for group in form.groups:
        for item in group.items:
            if item.derived or item.shown_when is not None:
                continue
            name = f"{group.name}.0.{item.name}" if group.repeating else item.name
            value = _value(item, visit_date, since)
            if value == []:
                continue
            fields[name] = value
            if item.analyte:
                fields[f"{name}__unit"] = item.unit
    return fields


def _refusal(html: str) -> str:
    """The refusal a page shows (its text, tags stripped), or '' when it shows none."""
    found = re.search(r'data-testid="refusal"[^>]*>(.*?)</div>', html, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip() if found else ""


def _post(client: Client, path: str, data: dict[str, Any], what: str) -> None:
    """Post as a person submits a page's form: it must be taken (redirect), else fail with the refusal."""
    response = client.post(path, data)
    if response.status_code != 302:
        html = response.content.decode()
        pytest.fail(f"{what}: HTTP {response.status_code}, refused: {_refusal(html) or html[:500]}")


def _year_visits(protocol: Protocol) -> list[VisitDefinition]:
    """The protocol's visits of the first year after the infusion (D0 excluded)."""
    return [v for v in protocol.visits if v.anchor is Anchor.INFUSION and 0 < v.day <= 365]


def _targets(client: Client, subject_code: str) -> dict[str, date]:
    """Each visit's target date as the subject's casebook page shows it."""
    html = client.get(f"/casebook/subjects/{subject_code}/").content.decode()
    rows = re.findall(r'<tr data-visit="([^"]+)">\s*<th[^>]*>.*?</th>\s*<td>(\d{4}-\d{2}-\d{2})</td>', html, re.S)
    return {code: date.fromisoformat(day) for code, day in rows}


def _form_statuses(client: Client, subject_code: str, year: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(visit, form) → status as the subject's casebook page shows each form's link, for the forms of
    `year`; the forms of every other visit are shown not started (nothing was entered there)."""
    html = client.get(f"/casebook/subjects/{subject_code}/").content.decode()
    statuses = {}
    for visit, row in re.findall(r'<tr data-visit="([^"]+)">(.*?)</tr>', html, re.S):
        for form, status in re.findall(r'data-form="([^"]+)" data-status="([^"]+)"', row):
            statuses[(visit, form)] = status
    others = {status for key, status in statuses.items() if key not in year}
    assert others <= {FormStatus.NOT_STARTED.value}, others
    return {key: status for key, status in statuses.items() if key in year}


def _status(subject: Any, visit: str, form: str) -> str:
    return FormRecord.objects.get(subject=subject, visit_code=visit, form_code=form).status


def test_a_full_year_of_follow_up_is_entered_queried_verified_locked_and_signed_from_the_pages(world: Any) -> None:
    protocol: Protocol = world.protocol
    subject = world.new_subject("BDX", State.LONG_TERM_FOLLOW_UP)
    infused = subject.infusion_date
    assert infused is not None and (clock.now().date() - infused).days > 365
    casebook = f"/casebook/subjects/{subject.code}/"
    year = _year_visits(protocol)
    assert [v.code for v in year] == [
        *("D1", "D2", "D3", "D4", "D5", "D6", "D7", "D10", "D14", "D21", "D28"),
        *("M2", "M3", "M6", "M9", "M12"),
    ]
    expected = {(v.code, form) for v in year for form in v.forms}
    since = infused - timedelta(days=120)

    coordinator = world.client_for("bdx.coordinator")
    monitor = world.client_for("cra.monitor")
    manager = world.client_for("dm.datamanager")
    investigator = world.client_for("bdx.investigator")

    # 1. The coordinator records each visit on its target date and saves every form it lists.
    targets = _targets(coordinator, subject.code)
    automatic: Query | None = None
    for visit in year:
        target = targets[visit.code]
        assert target == infused + timedelta(days=visit.day), visit.code
        visit_page = f"{casebook}visits/{visit.code}/"
        _post(coordinator, visit_page, {"op": "done", "done_on": target.isoformat()}, f"{visit.code} date")
        for form_code in visit.forms:
            path = f"{visit_page}forms/{form_code}/"
            page = coordinator.get(path)
            assert page.status_code == 200, path
            html = page.content.decode()
            fields = _posted_fields(protocol.forms[form_code], target, since)
            offered = set(re.findall(r'name="([^"]+)"', html))
            assert set(fields) <= offered, (path, set(fields) - offered)
            if (visit.code, form_code) == ("M3", "vital_signs"):
                fields["diastolic_bp_mmhg"] = M3_DIASTOLIC_TYPED
            _post(coordinator, path, {"op": "save", **fields}, f"{visit.code}/{form_code}")
            assert _status(subject, visit.code, form_code) == FormStatus.COMPLETE.value, (visit.code, form_code)

            if (visit.code, form_code) == ("M3", "vital_signs"):
                # 2. The edit check opened a query, shown beside the item on the form page.
                automatic = Query.objects.get(subject=subject, visit_code="M3", origin="edit_check")
                assert (automatic.form_code, automatic.item, automatic.status) == (
                    "vital_signs",
                    "diastolic_bp_mmhg",
                    "open",
                )
                shown = coordinator.get(path).content.decode()
                assert f'data-testid="query-{automatic.pk}" data-status="open"' in shown
                # A correction without a reason is refused; with one it is saved and closes the query.
                corrected = {**fields, "diastolic_bp_mmhg": TYPICAL["diastolic_bp_mmhg"]}
                refused = coordinator.post(path, {"op": "save", **corrected})
                assert refused.status_code == 422 and _refusal(refused.content.decode())
                _post(
                    coordinator,
                    path,
                    {"op": "save", **corrected, "reason": M3_CORRECTION_REASON},
                    "M3 correction",
                )
                automatic.refresh_from_db()
                assert automatic.status == "closed"
                shown = coordinator.get(path).content.decode()
                assert f'data-testid="query-{automatic.pk}" data-status="closed"' in shown
        visit_html = coordinator.get(visit_page).content.decode()
        assert 'data-testid="visit-status" data-status="done"' in visit_html, visit.code
        for form_code in visit.forms:
            assert f'data-form="{form_code}"' in visit_html, (visit.code, form_code)

    assert automatic is not None
    records = FormRecord.objects.filter(subject=subject)
    assert {(r.visit_code, r.form_code) for r in records} == expected
    assert {r.status for r in records} == {FormStatus.COMPLETE.value}
    assert dict(VisitRecord.objects.filter(subject=subject).values_list("visit_code", "done_on")) == {
        v.code: targets[v.code] for v in year
    }
    m3 = FormRecord.objects.get(subject=subject, visit_code="M3", form_code="vital_signs")
    assert m3.values_json["diastolic_bp_mmhg"] == 74 and m3.revision == 2
    medications = FormRecord.objects.get(subject=subject, visit_code="M12", form_code="concomitant_medications")
    assert medications.values_json["medications"][0]["medication"] == "Hydroxychloroquine"

    # 3. The monitor raises a query on the M6 weight; the center answers it; the monitor closes it.
    m6_vitals = f"{casebook}visits/M6/forms/vital_signs/"
    question = "Le dossier source indique 64 kg : pouvez-vous vérifier ?"
    _post(monitor, m6_vitals, {"op": "query", "item": "weight_kg", "text": question}, "raise query")
    manual = Query.objects.get(subject=subject, origin="manual")
    assert (manual.visit_code, manual.form_code, manual.item, manual.status) == (
        "M6",
        "vital_signs",
        "weight_kg",
        "open",
    )
    answer = "Pesée de la visite : 62,4 kg ; 64 kg était le poids d'inclusion."
    _post(coordinator, m6_vitals, {"op": "answer", "query": manual.pk, "text": answer}, "answer query")
    manual.refresh_from_db()
    assert manual.status == "answered"
    _post(monitor, m6_vitals, {"op": "close", "query": manual.pk, "text": "Réponse acceptée."}, "close query")
    manual.refresh_from_db()
    assert manual.status == "closed"
    assert [m.move for m in manual.messages.all()] == ["raise", "answer", "close"]
    assert not Query.objects.filter(subject=subject).exclude(status="closed").exists()

    # 4. The monitor verifies every form against the source: every item the verify page offers.
    for visit_code, form_code in sorted(expected):
        path = f"{casebook}visits/{visit_code}/forms/{form_code}/verify/"
        html = monitor.get(path).content.decode()
        ticked = re.findall(r'name="verify" value="([^"]+)"', html)
        record = FormRecord.objects.get(subject=subject, visit_code=visit_code, form_code=form_code)
        assert sorted(ticked) == sorted(record.values_json), (visit_code, form_code, ticked)
        _post(monitor, path, {"verify": ticked}, f"verify {visit_code}/{form_code}")
        assert _status(subject, visit_code, form_code) == FormStatus.VERIFIED.value, (visit_code, form_code)
    assert _form_statuses(monitor, subject.code, expected) == dict.fromkeys(expected, FormStatus.VERIFIED.value)

    # 5. The data manager locks the casebook: every form is locked.
    _post(manager, casebook, {"op": "lock"}, "lock casebook")
    assert _form_statuses(manager, subject.code, expected) == dict.fromkeys(expected, FormStatus.LOCKED.value)
    locked_html = coordinator.get(f"{casebook}visits/M12/forms/vital_signs/").content.decode()
    assert 'data-testid="save-form"' not in locked_html

    # 6. The investigator signs from the subject's page, with their password and the meaning shown.
    page = investigator.get(casebook).content.decode()
    assert 'data-testid="sign-casebook"' in page
    refused = investigator.post(casebook, {"op": "sign", "password": "not-my-password"})
    assert refused.status_code == 422 and _refusal(refused.content.decode())
    assert not CasebookSignature.objects.filter(subject=subject).exists()
    _post(investigator, casebook, {"op": "sign", "password": DEMO_PASSWORD}, "sign casebook")
    signature = CasebookSignature.objects.get(subject=subject)
    assert signature.signature.signer.username == "bdx.investigator"
    assert signature.signature.voided_at is None
    assert signature.forms_signed == len(expected)
    signed_page = investigator.get(casebook).content.decode()
    assert 'data-testid="casebook-signature"' in signed_page
    assert escape(signature.signature.signer_name) in signed_page

    # 7. Every form of every visit of the year is signed, and the audit chain is intact.
    assert _form_statuses(investigator, subject.code, expected) == dict.fromkeys(expected, FormStatus.SIGNED.value)
    signed = FormRecord.objects.filter(subject=subject, status=FormStatus.SIGNED.value)
    assert {(r.visit_code, r.form_code) for r in signed} == expected
    assert signed.count() == sum(len(v.forms) for v in year) == 71
    report = audit_verify()
    assert report.intact, report.first_break
    trail = AuditEntry.objects.filter(subject_code=subject.code)
    for event in (AuditEvent.FORM_VERIFIED, AuditEvent.FORM_LOCKED, AuditEvent.FORM_SIGNED):
        assert trail.filter(event=event.value).count() == len(expected), event
    saves = trail.filter(event=AuditEvent.FORM_SAVED.value)
    assert saves.count() == len(expected) + 1
    assert list(saves.exclude(reason="").values_list("reason", flat=True)) == [M3_CORRECTION_REASON]
    assert trail.filter(event=AuditEvent.VISIT_RECORDED.value).count() == len(year)
