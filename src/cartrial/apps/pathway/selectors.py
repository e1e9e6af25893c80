"""What the pathway's guards read about a subject, gathered from the records of every app."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from cartrial.apps.clinical.selectors import consent_facts, consent_withdrawn
from cartrial.apps.logistics.selectors import logistics_facts
from cartrial.apps.subjects.models import EligibilityAssessment, PathwayEvent, Subject
from cartrial.domain.pathway import Facts, Step
from cartrial.protocols import Protocol


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
