"""Reads: a subject's daily assessments, its CRS/ICANS episodes, the days still due, ICAHT from its labs.

`episodes_for(subject)` is what the alerts and the dashboards read (the subject already reached
through the access entry point); `episodes_in_scope(scope)` lists the episodes of every subject a
user may read the toxicity of, for the study's dashboards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from cartrial.apps.access import Scope, centers_for, subject_filter
from cartrial.apps.accounts.models import User
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import entry_changes, records_changed_since
from cartrial.apps.casebook.models import FormRecord, VisitRecord
from cartrial.apps.subjects.models import Subject
from cartrial.apps.subjects.services import local_today
from cartrial.apps.toxicity.models import ToxicityAssessment
from cartrial.apps.toxicity.services import ENTITY
from cartrial.domain.errors import NotFound
from cartrial.domain.pathway import State, is_final
from cartrial.domain.roles import Action
from cartrial.domain.toxicity import (
    AncSample,
    DailyGrade,
    DaysDue,
    Episode,
    IcahtResult,
    ToxicityKind,
    anc_sample,
    assessment_days_due,
    episodes_from,
    icaht_from_samples,
)
from cartrial.protocols import Protocol

# The haematology form and its ANC item (protocol `forms:`), the source of ICAHT.
HAEMATOLOGY_FORM = "haematology"
ANC_ITEM = "anc"


def assessments_of(subject: Subject) -> QuerySet[ToxicityAssessment]:
    """The subject's daily assessments from D0, in day order, with who recorded them."""
    return (
        ToxicityAssessment.objects.filter(subject=subject)
        .select_related("recorded_by", "protocol_version")
        .order_by("day")
    )


def subject_assessments(subject: Subject) -> list[ToxicityAssessment]:
    """The subject's daily assessments from D0, in day order, with who recorded them."""
    return list(assessments_of(subject))


def assessment_get(subject: Subject, day: int) -> ToxicityAssessment:
    """The subject's assessment of day `day` (from D0); NotFound when that day has none."""
    assessment = assessments_of(subject).filter(day=day).first()
    if assessment is None:
        raise NotFound("D{day} has no assessment.", code="not_found", day=day)
    return assessment


def _daily(assessments: list[ToxicityAssessment], kind: ToxicityKind) -> list[DailyGrade]:
    return [
        DailyGrade(
            day=a.day,
            grade=a.crs_grade if kind is ToxicityKind.CRS else a.icans_grade,
            tocilizumab=a.tocilizumab_given,
            corticosteroids=a.corticosteroids_given,
        )
        for a in assessments
    ]


def episodes_of(assessments: list[ToxicityAssessment]) -> list[Episode]:
    """CRS then ICANS episodes of one subject's assessments, each in onset order."""
    return [episode for kind in ToxicityKind for episode in episodes_from(kind, _daily(assessments, kind))]


def episodes_changed_since(subject: Subject, episodes: list[Episode], since: datetime | None) -> list[Episode]:
    """The episodes holding a day whose assessment was recorded, corrected or graded again after
    `since` (the audit trail's `toxicity_assessment` entries): a day from the onset to the day that
    resolved it, or any later day while it goes on. All of them when `since` is None."""
    if since is None:
        return episodes
    changed = records_changed_since(since=since, subject_codes=[subject.code], entities=[ENTITY])
    ids = [int(entity_id) for _, entity_id in changed if entity_id.isdigit()]
    days = set(ToxicityAssessment.objects.filter(subject=subject, pk__in=ids).values_list("day", flat=True))

    def touched(episode: Episode) -> bool:
        last = episode.resolved_day
        return any(day >= episode.onset_day and (last is None or day <= last) for day in days)

    return [episode for episode in episodes if touched(episode)]


def episodes_for(subject: Subject) -> list[Episode]:
    """The subject's CRS and ICANS episodes (onset day, max grade, duration, treatments, resolution)."""
    return episodes_of(subject_assessments(subject))


@dataclass(frozen=True)
class SubjectEpisode:
    subject_code: str
    center_code: str
    episode: Episode


def episodes_in_scope(scope: Scope, *, center_code: str | None = None) -> list[SubjectEpisode]:
    """Every episode of the subjects whose toxicity the user may read, by subject code then onset."""
    centers = centers_for(scope, Action.READ_TOXICITY)
    rows = (
        ToxicityAssessment.objects.filter(subject__in=Subject.objects.filter(subject_filter(scope)))
        .filter(subject__center_id__in=centers)
        .select_related("subject__center")
        .order_by("subject__center__code", "subject__number", "day")
    )
    if center_code:
        rows = rows.filter(subject__center__code=center_code)
    by_subject: dict[int, list[ToxicityAssessment]] = {}
    for row in rows:
        by_subject.setdefault(row.subject_id, []).append(row)
    return [
        SubjectEpisode(assessments[0].subject.code, assessments[0].subject.center.code, episode)
        for assessments in by_subject.values()
        for episode in episodes_of(assessments)
    ]


def anc_samples(subject: Subject) -> list[AncSample]:
    """The ANC of each haematology form, on its visit's day from D0 (empty before the infusion)."""
    if subject.infusion_date is None:
        return []
    done_on = dict(
        VisitRecord.objects.filter(subject=subject, done_on__isnull=False).values_list("visit_code", "done_on")
    )
    samples = []
    for visit_code, values in FormRecord.objects.filter(subject=subject, form_code=HAEMATOLOGY_FORM).values_list(
        "visit_code", "values_json"
    ):
        on = done_on.get(visit_code)
        if on is None:
            continue
        sample = anc_sample((on - subject.infusion_date).days, (values or {}).get(ANC_ITEM))
        if sample is not None:
            samples.append(sample)
    return sorted(samples, key=lambda s: s.day)


@dataclass(frozen=True)
class SubjectToxicity:
    """Everything the toxicity page and the episodes endpoint show for one subject."""

    assessments: list[ToxicityAssessment]
    episodes: list[Episode]
    days_due: DaysDue
    today_day: int | None
    samples: list[AncSample]
    icaht: IcahtResult | None


def subject_toxicity(subject: Subject, protocol: Protocol, now: datetime) -> SubjectToxicity:
    """The subject's assessments, episodes, the days due up to today, and ICAHT from the ANC series."""
    assessments = subject_assessments(subject)
    episodes = episodes_of(assessments)
    today_day = None
    if subject.infusion_date is not None:
        today_day = (local_today(subject.center, now) - subject.infusion_date).days
    due = assessment_days_due(
        assessed_days=[a.day for a in assessments],
        episodes=episodes,
        today_day=today_day if today_day is not None else -1,
        assessment_days=protocol.pathway_rules.toxicity_assessment_days,
    )
    if is_final(State(subject.state)):
        # Withdrawn, lost to follow-up, deceased or completed: no one can assess the patient any more.
        due = DaysDue(due.required, ())
    samples = anc_samples(subject)
    return SubjectToxicity(assessments, episodes, due, today_day, samples, icaht_from_samples(samples))


@dataclass(frozen=True)
class CorrectionEntry:
    at: datetime
    name: str
    role: str
    changes: list[dict[str, Any]]
    reason: str


def assessment_history(subject: Subject, assessment: ToxicityAssessment) -> list[CorrectionEntry]:
    """The assessment's corrections from the audit trail (the one store of old values): who, when, why;
    with the grades derived again after a change of an earlier day (`toxicity.assessment_regraded`)."""
    rows = list(
        AuditEntry.objects.filter(
            subject_code=subject.code,
            event__in=(AuditEvent.RECORD_CORRECTED.value, AuditEvent.TOXICITY_ASSESSMENT_REGRADED.value),
            entity=ENTITY,
            entity_id=str(assessment.pk),
        ).order_by("sequence")
    )
    names = {
        u.pk: u.get_full_name() or u.get_username()
        for u in User.objects.filter(pk__in={r.actor_id for r in rows if r.actor_id})
    }
    return [
        CorrectionEntry(
            at=row.occurred_at,
            name=names.get(row.actor_id or 0, row.actor_username),
            role=row.role,
            changes=entry_changes(row),
            reason=row.reason,
        )
        for row in rows
    ]
