"""Reading a subject's lab observations (the caller has resolved the subject within scope)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from django.db.models import QuerySet

from cartrial.apps.clinical.models import LabObservation, ScreeningRecord
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.apps.subjects.models import Subject, SubjectIdentity
from cartrial.domain.screening import LabFact, ScreeningEvaluation, age_in_completed_years, evaluate_screening
from cartrial.protocols import Protocol


def lab_observations(*, subject: Subject, analytes: Iterable[str] | None = None) -> QuerySet[LabObservation]:
    """The subject's results, oldest first, optionally for some analytes only."""
    queryset = LabObservation.objects.filter(subject=subject)
    if analytes is not None:
        queryset = queryset.filter(analyte__in=list(analytes))
    return queryset.order_by("sampled_at", "pk")


def latest_lab_values(*, subject: Subject) -> dict[str, LabObservation]:
    """The most recent result of each analyte (screening facts, dashboards)."""
    latest: dict[str, LabObservation] = {}
    for row in lab_observations(subject=subject):
        latest[row.analyte] = row
    return latest


# --- screening ------------------------------------------------------------------------------

SCREENING_CONTEXT = "screening"
SCREENING_ANALYTES = ("creatinine", "cd3")


def screening_record_get(*, subject: Subject) -> ScreeningRecord | None:
    return ScreeningRecord.objects.filter(subject=subject).first()


def screening_labs(*, subject: Subject) -> dict[str, LabObservation]:
    """The latest screening result of each analyte."""
    latest: dict[str, LabObservation] = {}
    for row in LabObservation.objects.filter(subject=subject, context=SCREENING_CONTEXT).order_by("sampled_at", "pk"):
        latest[row.analyte] = row
    return latest


def lab_fact(row: LabObservation) -> LabFact:
    return LabFact(row.analyte, row.value, row.unit, row.lower_limit, row.upper_limit, row.sampled_at.date())


def subject_age_at_consent(*, subject: Subject) -> int | None:
    """Completed years on the date the first consent was signed (criterion I01 says "at consent")."""
    consent = subject.consents.order_by("signed_on", "pk").first()
    identity = SubjectIdentity.objects.filter(subject=subject).first()
    if consent is None or identity is None:
        return None
    birth = date.fromisoformat(identity_decrypt(identity.ciphertext)["birth_date"])
    try:
        return age_in_completed_years(birth, consent.signed_on)
    except ValueError:
        return None


def screening_evaluation(
    *,
    subject: Subject,
    protocol: Protocol,
    data: Mapping[str, object] | None = None,
    labs: Mapping[str, LabFact] | None = None,
    attestations: Mapping[str, str] | None = None,
) -> ScreeningEvaluation:
    """The verdict from what is stored, or from `data`/`labs` given instead (the live preview)."""
    record = screening_record_get(subject=subject)
    if data is None:
        data = record.data_json if record else {}
    if attestations is None:
        attestations = record.attestations_json if record else {}
    if labs is None:
        labs = {analyte: lab_fact(row) for analyte, row in screening_labs(subject=subject).items()}
    return evaluate_screening(
        protocol.criteria, data, labs, age_years=subject_age_at_consent(subject=subject), attestations=attestations
    )
