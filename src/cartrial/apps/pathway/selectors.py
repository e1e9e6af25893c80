"""What the pathway's guards read about a subject, gathered from the records of every app; what
the subject's page offers (its steps, its timeline); and the incremental reads of the API (what
changed since an instant, the audit trail's feed of changes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet

from cartrial.apps.access import Scope, can, scope_narrowed, subject_filter
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import entity_ids_changed_since, subject_codes_changed_since
from cartrial.apps.clinical.selectors import consent_facts, consent_withdrawn
from cartrial.apps.logistics.selectors import logistics_facts
from cartrial.apps.subjects.models import EligibilityAssessment, PathwayEvent, Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.pathway import Facts, State, Step, next_step, steps_from
from cartrial.domain.roles import Action
from cartrial.protocols import Protocol

# Steps that end the participation: offered apart from the pathway's next step.
EXIT_STEPS = (Step.WITHDRAW, Step.MARK_LOST_TO_FOLLOW_UP, Step.RECORD_DEATH)


def local_date(subject: Subject, moment: datetime) -> date:
    """The center's calendar date of an instant: clinical dates are the center's local dates."""
    return moment.astimezone(ZoneInfo(subject.center.time_zone)).date()


def latest_assessment(subject: Subject) -> EligibilityAssessment | None:
    return subject.eligibility_assessments.order_by("-assessed_at", "-pk").first()


def lymphodepletion_event(subject: Subject) -> PathwayEvent | None:
    """The start of lymphodepletion in force (the latest, after a repeat)."""
    return (
        PathwayEvent.objects.filter(subject=subject, step=Step.START_LYMPHODEPLETION.value)
        .order_by("-occurred_at", "-pk")
        .first()
    )


def subject_facts(subject: Subject, protocol: Protocol, *, now: datetime, reason: str = "") -> Facts:
    """The facts the domain's guards read, from what is recorded about the subject."""
    signed, current = consent_facts(subject, protocol)
    latest = latest_assessment(subject)
    lymphodepletion = lymphodepletion_event(subject)
    planned: Any = lymphodepletion.details.get("planned_infusion_date") if lymphodepletion else None
    return Facts(
        consent_signed=signed,
        consent_current=current,
        consent_withdrawn=consent_withdrawn(subject),
        eligibility_verdict=latest.verdict if latest else None,
        apheresis_date=subject.apheresis_date,
        infusion_date=subject.infusion_date,
        planned_infusion_date=date.fromisoformat(planned) if planned else None,
        lymphodepletion_started_on=local_date(subject, lymphodepletion.occurred_at) if lymphodepletion else None,
        today=local_date(subject, now),
        reason=reason,
        # Manufacturing, shipment, receipt and thaw facts come from the logistics records.
        **logistics_facts(subject, protocol, now=now),
    )


# --- what the subject's page offers -----------------------------------------------------------------


@dataclass(frozen=True)
class StepChoice:
    """A step (or an action that takes one) the pathway allows now and the user's role may take."""

    action: Step | Action
    main: bool  # the pathway's next step
    exit: bool  # ends the participation


def step_choices(scope: Scope, subject: Subject) -> list[StepChoice]:
    """The steps offered on the subject's page (and by the API), in the pathway's order."""
    state = State(subject.state)
    choices = [
        StepChoice(step, step is next_step(state), step in EXIT_STEPS)
        for step in steps_from(state)
        if can(scope, step, subject)
    ]
    if state is State.MANUFACTURING_FAILED and can(scope, Action.DECIDE_NO_INFUSION, subject):
        choices.append(StepChoice(Action.DECIDE_NO_INFUSION, main=False, exit=True))
    return choices


def timeline_events(subject: Subject, since: datetime | None = None) -> QuerySet[PathwayEvent]:
    """The subject's timeline, oldest first; with `since`, the steps taken after it and those whose
    record was corrected after it (a death date, the signature an event points to)."""
    events = subject.pathway_events.select_related("actor", "signature").order_by("occurred_at", "pk")
    if since is None:
        return events
    corrected = entity_ids_changed_since("pathway_event", since) | entity_ids_changed_since("death", since)
    ids = [int(pk) for pk in corrected if pk.isdigit()]
    return events.filter(Q(occurred_at__gt=since) | Q(pk__in=ids))


# --- incremental reads of the API ---------------------------------------------------------------------


def subjects_changed_since(subjects: QuerySet[Subject], since: datetime | None) -> QuerySet[Subject]:
    """`subjects` narrowed to those about which the audit trail holds an entry after `since`
    (unchanged when `since` is None): the subject or any record of it created or changed."""
    if since is None:
        return subjects
    return subjects.filter(code__in=subject_codes_changed_since(since))


def centers_changed_since(centers: QuerySet[Center], username: str, since: datetime | None) -> QuerySet[Center]:
    """`centers` narrowed to those created or changed after `since`, or where the user's role was
    granted after it (unchanged when `since` is None)."""
    if since is None:
        return centers
    granted = {
        entity_id.split("@", 1)[1]
        for entity_id in entity_ids_changed_since("membership", since)
        if entity_id.startswith(f"{username}@")
    }
    return centers.filter(Q(code__in=entity_ids_changed_since("center", since)) | Q(code__in=granted))


def audit_changes(scope: Scope, *, since: datetime | None = None, after: int | None = None) -> QuerySet[AuditEntry]:
    """The audit entries about the subjects whose trail the user may read (at the centers where the
    role reads the audit trail), oldest first; only those after `since` (their time) and after the
    sequence number `after` (a cursor that never moves) when given."""
    readers = scope_narrowed(scope, Action.READ_AUDIT)
    codes = Subject.objects.filter(subject_filter(readers)).values("code")
    entries = AuditEntry.objects.filter(subject_code__in=codes)
    if since is not None:
        entries = entries.filter(occurred_at__gt=since)
    if after is not None:
        entries = entries.filter(sequence__gt=after)
    return entries.order_by("sequence")
