"""Writes: kinetic results go to the one store of lab observations (clinical app), context `kinetics`.

Refused before anything is stored (the batch is all or nothing): a subject not infused yet, a
sample taken before the infusion day (kinetics count from D0; pre-infusion results belong to
screening) or before birth, a sample time in the future, a value or LoQ outside the marker's
plausible range (`domain/lab_catalogue.py`), each naming its line (CSV) or result (API). A result
identical to one already stored (same marker, sample time, value, unit and LoQ) is skipped, so
re-importing a cumulative lab export adds only the new rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.urls import reverse

from cartrial.apps.alerts.models import Alert
from cartrial.apps.alerts.services import raise_alert
from cartrial.apps.audit.services import Actor
from cartrial.apps.biology.entries import KineticEntry, KineticEntryRefused, parse_entry
from cartrial.apps.biology.selectors import day_since_infusion, kinetics_preset, raised_flags
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.clinical.selectors import KINETICS_CONTEXT, lab_observations, subject_birth_date
from cartrial.apps.clinical.services import LabObservationInput, lab_observation_correct, lab_observations_record
from cartrial.apps.subjects.models import Subject
from cartrial.domain.alerts import AlertKind
from cartrial.domain.chronology import Milestone, chronology_check
from cartrial.domain.errors import InvalidInput
from cartrial.domain.kinetics import OBSERVED_MARKERS
from cartrial.domain.lab_catalogue import ANALYTES, lab_value_plausible_check, normalise_unit


@dataclass(frozen=True)
class KineticsRecorded:
    """What one entry or import did."""

    recorded: list[LabObservation]
    skipped_duplicates: int


def _key(marker: str, entry_time: object, value: float | None, unit: str, loq: float | None) -> tuple[object, ...]:
    return (marker, entry_time, value, unit, loq)


def kinetic_entry_check(subject: Subject, entry: KineticEntry, now: datetime, *, index: int | None = None) -> None:
    """A kinetic result counts from D0 and was not sampled in the future (new or corrected)."""
    if subject.infusion_date is None:
        raise KineticEntryRefused(
            "{subject} has not been infused: kinetic results count from the infusion (D0).",
            code="kinetics_not_infused",
            subject=subject.code,
        )
    zone = ZoneInfo(subject.center.time_zone)
    day = day_since_infusion(entry.sampled_at, subject.infusion_date, zone)
    local = entry.sampled_at.astimezone(zone)
    if day < 0:
        raise KineticEntryRefused(
            "sampled on {when} ({zone}), {days} day(s) before the infusion on {d0}; "
            "kinetic results count from the infusion day (D0).",
            code="kinetics_before_infusion",
            when=f"{local:%Y-%m-%d %H:%M}",
            zone=zone.key,
            days=-day,
            d0=subject.infusion_date,
            line=entry.line,
            index=index,
        )
    if entry.sampled_at > now:
        raise KineticEntryRefused(
            "the sample time {when} ({zone}) is in the future.",
            code="kinetics_sample_in_future",
            when=f"{local:%Y-%m-%d %H:%M}",
            zone=zone.key,
            line=entry.line,
            index=index,
        )
    birth = subject_birth_date(subject)
    try:
        lab_value_plausible_check(ANALYTES[entry.marker], normalise_unit(entry.unit), value=entry.value, loq=entry.loq)
        if birth is not None:
            chronology_check(
                {Milestone.BIRTH: birth, Milestone.KINETIC_SAMPLE: entry.sampled_at},
                now=now,
                zone=zone,
                entered=[Milestone.KINETIC_SAMPLE],
            )
    except InvalidInput as error:
        # The domain's own words, placed on the line (CSV) or result (API) they are about.
        raise KineticEntryRefused(
            error.message.msgid,
            code=error.code,
            line=entry.line,
            index=index,
            marker_title=None,
            **error.message.params,
        ) from None


def kinetic_observations_record(*, actor: Actor, subject: Subject, entries: Sequence[KineticEntry]) -> KineticsRecorded:
    """Store one subject's CAR-T, B-cell and anti-dsDNA results, all or none."""
    if subject.infusion_date is None:
        raise KineticEntryRefused(
            "{subject} has not been infused: kinetic results count from the infusion (D0).",
            code="kinetics_not_infused",
            subject=subject.code,
        )
    if not entries:
        raise KineticEntryRefused("there are no results to record.", code="kinetics_missing_value")
    for index, entry in enumerate(entries, start=1):
        kinetic_entry_check(subject, entry, actor.now, index=index)
    stored = list(lab_observations(subject=subject, analytes=OBSERVED_MARKERS))
    existing = {_key(row.analyte, row.sampled_at, row.value, row.unit, row.limit_of_quantification) for row in stored}
    new: list[LabObservationInput] = []
    skipped = 0
    for entry in entries:
        key = _key(entry.marker, entry.sampled_at, entry.value, entry.unit, entry.loq)
        if key in existing:
            skipped += 1
            continue
        existing.add(key)
        new.append(
            LabObservationInput(
                analyte=entry.marker,
                value=entry.value,
                unit=entry.unit,
                sampled_at=entry.sampled_at,
                limit_of_quantification=entry.loq,
                context=KINETICS_CONTEXT,
            )
        )
    # The new flags are alerted by `kinetic_flag_alerts_on_record`, on the store's signal.
    recorded = lab_observations_record(actor=actor, subject=subject, observations=new) if new else []
    return KineticsRecorded(recorded=recorded, skipped_duplicates=skipped)


def kinetic_flag_alerts_on_record(
    sender: object,
    *,
    actor: Actor,
    subject: Subject,
    observations: Sequence[LabObservation],
    previous: Sequence[LabObservation],
    **kwargs: object,
) -> list[Alert]:
    """Receiver of `clinical.signals.lab_observations_recorded`: results recorded or corrected by
    any entry path (this app's entry, the casebook's immunology form, a correction) alert the flags
    they raise. A batch without a kinetic marker returns at once, without a query."""
    if not any(row.analyte in OBSERVED_MARKERS for row in (*observations, *previous)):
        return []
    after = list(lab_observations(subject=subject, analytes=OBSERVED_MARKERS))
    changed = {row.pk for row in observations}
    before = [row for row in after if row.pk not in changed]
    before += [row for row in previous if row.analyte in OBSERVED_MARKERS]
    return kinetic_flag_alerts_raise(actor=actor, subject=subject, before=before, after=after)


def _in_time_order(rows: Sequence[LabObservation]) -> list[LabObservation]:
    return sorted(rows, key=lambda row: (row.sampled_at, row.pk))


def kinetic_flag_alerts_raise(
    *, actor: Actor, subject: Subject, before: Sequence[LabObservation], after: Sequence[LabObservation]
) -> list[Alert]:
    """Alert on each flag raised by the results `after` a write that was not raised `before` it
    (key: the flag's code, so an open alert is not raised twice)."""
    earlier = raised_flags(subject, _in_time_order(before))
    raised = []
    for code, flag in raised_flags(subject, _in_time_order(after)).items():
        if code in earlier:
            continue
        alert = raise_alert(
            actor=actor,
            kind=AlertKind.KINETICS_FLAG,
            subject=subject,
            link=reverse("biology:subject", args=[subject.code]),
            params={"flag": flag.message},
            key=code,
        )
        if alert is not None:
            raised.append(alert)
    return raised


# The stored result's fields, as the entry parser names them.
_ENTRY_NAMES = {
    "value": "value",
    "unit": "unit",
    "limit_of_quantification": "loq",
    "sampled_at": "sampled_at",
}


def kinetic_observation_correct(
    *, actor: Actor, subject: Subject, observation: LabObservation, field: str, value: object, reason: str
) -> LabObservation:
    """Correct a kinetic result: the corrected result is read by the same parser and checks as a
    new one (marker's unit, value or LoQ, from D0, not in the future), then stored by the clinical app."""
    if field not in _ENTRY_NAMES:
        raise KineticEntryRefused(
            "'{field}' cannot be corrected on a kinetic result.", code="kinetics_unknown_field", field=field
        )
    fields: dict[str, object] = {
        "marker": observation.analyte,
        "sampled_at": observation.sampled_at,
        "value": "" if observation.value is None else observation.value,
        "unit": observation.unit,
        "loq": observation.limit_of_quantification,
    }
    fields[_ENTRY_NAMES[field]] = "" if value is None else value
    entry = parse_entry(fields, kinetics_preset(), ZoneInfo(subject.center.time_zone))
    kinetic_entry_check(subject, entry, actor.now)
    corrected = {
        "value": entry.value,
        "unit": entry.unit,
        "limit_of_quantification": entry.loq,
        "sampled_at": entry.sampled_at,
    }
    return lab_observation_correct(
        actor=actor, subject=subject, observation=observation, field=field, value=corrected[field], reason=reason
    )
