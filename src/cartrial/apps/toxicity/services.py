"""Writes: record a daily CRS/ICANS assessment, correct one with a reason. Each atomic and audited.

The caller runs them inside `Reach.run` (one transaction, refusals recorded after the rollback);
the subject row is locked first so that two assessments of one day cannot both pass the check.
A day's CRS grade depends on whether CRS was ongoing the day before (`domain.toxicity.crs_treated`):
a day recorded or corrected grades the later days again (`_later_days_regrade`), each change audited
as `toxicity.assessment_regraded` with its reason, in the same transaction. A write that brings a
CRS or ICANS episode to grade ≥ 3 raises its alert in the same transaction (once per episode:
`domain.alerts.severe_episodes_reached`, comparing the episodes before and after the whole write),
e-mailed after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.urls import reverse

from cartrial.apps.alerts.models import Alert
from cartrial.apps.alerts.services import raise_alert
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_correction, audit_record
from cartrial.apps.subjects.models import Subject
from cartrial.apps.subjects.services import local_today, protocol_version_of, subject_lock
from cartrial.apps.toxicity.models import ToxicityAssessment
from cartrial.domain.alerts import severe_episodes_reached, toxicity_day
from cartrial.domain.corrections import correction_check
from cartrial.domain.errors import Refused
from cartrial.domain.toxicity import (
    INPUT_NAMES,
    AssessedDay,
    AssessmentInputs,
    DailyGrade,
    DayGrades,
    ToxicityKind,
    assessment_day,
    assessment_inputs_parse,
    series_grades,
)
from cartrial.protocols import Protocol

# The audit trail's entity for an assessment (its history is read back under this name).
ENTITY = "toxicity_assessment"


# The reason written with a later day graded again (English: the trail's language).
REGRADED_REASON = "Graded again: D{day} was {action}, which changes whether CRS was ongoing before this day."


def _apply(assessment: ToxicityAssessment, inputs: AssessmentInputs, grades: DayGrades) -> None:
    for name, value in inputs.as_dict().items():
        setattr(assessment, name, value)
    assessment.crs_grade = grades.crs.grade
    assessment.icans_grade = grades.icans.grade


def _grades_from(subject: Subject, day: int, inputs: AssessmentInputs) -> tuple[DayGrades, dict[int, DayGrades]]:
    """The grades of `day` with these inputs, and of every later assessed day graded again after it
    (the days before keep their stored grades: nothing after them changed)."""
    rows = list(ToxicityAssessment.objects.filter(subject=subject).exclude(day=day).order_by("day"))
    earlier = [DailyGrade(r.day, r.crs_grade) for r in rows if r.day < day]
    later = [AssessedDay(r.day, assessment_inputs_parse(r.inputs())) for r in rows if r.day > day]
    graded = series_grades([AssessedDay(day, inputs), *later], earlier=earlier)
    return graded.pop(day), graded


def _later_days_regrade(
    actor: Actor, subject: Subject, day: int, graded: dict[int, DayGrades], action: str
) -> list[ToxicityAssessment]:
    """Store the later days' grades that changed, each audited as a derived change with its reason."""
    regraded = []
    for later in ToxicityAssessment.objects.select_for_update().filter(subject=subject, day__in=graded).order_by("day"):
        grades = graded[later.day]
        old = {"crs_grade": later.crs_grade, "icans_grade": later.icans_grade}
        new = {"crs_grade": grades.crs.grade, "icans_grade": grades.icans.grade}
        if old == new:
            continue
        later.crs_grade, later.icans_grade = new["crs_grade"], new["icans_grade"]
        later.save(update_fields=["crs_grade", "icans_grade"])
        audit_record(
            actor=actor,
            event=AuditEvent.TOXICITY_ASSESSMENT_REGRADED,
            entity=ENTITY,
            entity_id=str(later.pk),
            subject_code=subject.code,
            center_code=subject.center.code,
            changes=[Change(name, old[name], new[name]) for name in old if old[name] != new[name]],
            reason=REGRADED_REASON.format(day=day, action=action),
            is_correction=True,
        )
        regraded.append(later)
    return regraded


def _daily_grades(subject: Subject) -> dict[ToxicityKind, list[DailyGrade]]:
    """The subject's daily grades of each kind as stored now (before or after the write)."""
    rows = ToxicityAssessment.objects.filter(subject=subject).values_list(
        "day", "crs_grade", "icans_grade", "tocilizumab_given", "corticosteroids_given"
    )
    grades: dict[ToxicityKind, list[DailyGrade]] = {kind: [] for kind in ToxicityKind}
    for day, crs, icans, tocilizumab, steroids in rows:
        grades[ToxicityKind.CRS].append(DailyGrade(day, crs, tocilizumab, steroids))
        grades[ToxicityKind.ICANS].append(DailyGrade(day, icans, tocilizumab, steroids))
    return grades


def severe_toxicity_alerts_raise(
    *, actor: Actor, subject: Subject, before: dict[ToxicityKind, list[DailyGrade]]
) -> list[Alert]:
    """Raise `crs_grade_3` / `icans_grade_3` for each episode the write brought to grade ≥ 3 (compared
    with the grades `before` it), keyed by the episode's onset: one alert per episode, never for a
    later day of an episode already alerted, nor for grade 2."""
    infused = subject.infusion_date
    if infused is None:  # no assessment without a D0
        return []
    after = _daily_grades(subject)
    raised = []
    for kind in ToxicityKind:
        for severe in severe_episodes_reached(kind, before[kind], after[kind]):
            alert = raise_alert(
                actor=actor,
                kind=severe.alert_kind,
                subject=subject,
                link=reverse("toxicity:assessment", args=[subject.code, severe.day]),
                params={
                    "grade": severe.grade,
                    "day": toxicity_day(severe.day, infused + timedelta(days=severe.day)),
                },
                key=severe.key,
            )
            if alert is not None:
                raised.append(alert)
    return raised


def toxicity_assessment_record(
    *, actor: Actor, subject: Subject, protocol: Protocol, assessed_on: date, inputs: AssessmentInputs
) -> ToxicityAssessment:
    """Record one day's assessment, graded by the calculators knowing the days before it (a late entry
    grades the later days again); refused before D0 or for a day already assessed."""
    locked = subject_lock(subject)
    day = assessment_day(
        assessed_on=assessed_on, infusion_date=locked.infusion_date, today=local_today(subject.center, actor.now)
    )
    before = _daily_grades(locked)
    if any(grade.day == day for grade in before[ToxicityKind.CRS]):
        raise Refused(
            "D{day} ({assessed_on}) already has an assessment: correct it instead.",
            code="assessment_exists",
            item="assessed_on",
            day=day,
            assessed_on=assessed_on,
        )
    assessment = ToxicityAssessment(
        subject=locked,
        assessed_on=assessed_on,
        day=day,
        protocol_version=protocol_version_of(protocol),
        recorded_by_id=actor.recording_user_id,
        recorded_at=actor.now,
    )
    grades, later = _grades_from(locked, day, inputs)
    _apply(assessment, inputs, grades)
    assessment.save()
    audit_record(
        actor=actor,
        event=AuditEvent.TOXICITY_ASSESSMENT_RECORDED,
        entity=ENTITY,
        entity_id=str(assessment.pk),
        subject_code=locked.code,
        center_code=locked.center.code,
        changes=[
            Change("assessed_on", None, assessed_on.isoformat()),
            Change("day", None, day),
            *(Change(name, None, value) for name, value in inputs.as_dict().items()),
            Change("crs_grade", None, assessment.crs_grade),
            Change("icans_grade", None, assessment.icans_grade),
            Change("protocol_version", None, protocol.version),
        ],
    )
    _later_days_regrade(actor, locked, day, later, "recorded")
    severe_toxicity_alerts_raise(actor=actor, subject=locked, before=before)
    return assessment


@dataclass(frozen=True)
class AssessmentCorrected:
    assessment: ToxicityAssessment
    changed: list[str]
    regraded_days: list[int]


def toxicity_assessment_correct(
    *, actor: Actor, subject: Subject, protocol: Protocol, day: int, inputs: AssessmentInputs, reason: str
) -> AssessmentCorrected:
    """Correct a day's inputs with a reason: the grades of that day and of the later days that depend
    on it are computed again, old → new kept in the trail."""
    locked = subject_lock(subject)
    assessment = ToxicityAssessment.objects.select_for_update().filter(subject=locked, day=day).first()
    if assessment is None:
        raise Refused("D{day} has no assessment to correct.", code="assessment_missing", item="day", day=day)
    before = assessment.inputs()
    after = inputs.as_dict()
    correction_check(before, after, reason)
    grades_before = _daily_grades(locked)
    changed = [name for name in INPUT_NAMES if before[name] != after[name]]
    old_grades: dict[str, Any] = {"crs_grade": assessment.crs_grade, "icans_grade": assessment.icans_grade}
    old_version = assessment.protocol_version.version
    grades, later = _grades_from(locked, day, inputs)
    _apply(assessment, inputs, grades)
    assessment.protocol_version = protocol_version_of(protocol)
    assessment.save()
    follows = [Change(name, before[name], after[name]) for name in changed[1:]]
    follows += [
        Change(name, old, getattr(assessment, name))
        for name, old in old_grades.items()
        if old != getattr(assessment, name)
    ]
    if old_version != protocol.version:
        follows.append(Change("protocol_version", old_version, protocol.version))
    audit_correction(
        actor=actor,
        entity=ENTITY,
        entity_id=str(assessment.pk),
        field=changed[0],
        old=before[changed[0]],
        new=after[changed[0]],
        reason=reason,
        subject_code=locked.code,
        follows=follows,
    )
    regraded = _later_days_regrade(actor, locked, day, later, "corrected")
    severe_toxicity_alerts_raise(actor=actor, subject=locked, before=grades_before)
    return AssessmentCorrected(assessment, changed, [r.day for r in regraded])
