"""Reading a subject's lab observations (the caller has resolved the subject within scope)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, QuerySet

from cartrial.apps.access import Scope, centers_for, subject_filter
from cartrial.apps.audit.selectors import subject_codes_changed_since
from cartrial.apps.clinical.models import LabObservation, ScreeningRecord
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.apps.subjects.models import (
    Consent,
    ConsentWithdrawal,
    EligibilityAssessment,
    PathwayEvent,
    Subject,
    SubjectIdentity,
)
from cartrial.domain.chronology import Milestone, Moment
from cartrial.domain.pathway import State, Step, is_final
from cartrial.domain.roles import Action
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
# Kinetic markers entered after infusion (the biology app's results) are stored with this context.
KINETICS_CONTEXT = "kinetics"
SCREENING_ANALYTES = ("creatinine", "cd3")


def consent_facts(subject: Subject, protocol: Protocol) -> tuple[bool, bool]:
    """(signed any consent, signed the current version in the language signed)."""
    latest = subject.consents.order_by("-recorded_at", "-pk").first()
    if latest is None:
        return False, False
    return True, protocol.current_consent_versions().get(latest.language) == latest.document_version


def consent_withdrawn(subject: Subject) -> bool:
    return ConsentWithdrawal.objects.filter(subject=subject).exists()


def screening_record_get(*, subject: Subject) -> ScreeningRecord | None:
    return ScreeningRecord.objects.filter(subject=subject).first()


def screening_labs(*, subject: Subject) -> dict[str, LabObservation]:
    """The latest screening result of each analyte."""
    latest: dict[str, LabObservation] = {}
    for row in LabObservation.objects.filter(subject=subject, context=SCREENING_CONTEXT).order_by("sampled_at", "pk"):
        latest[row.analyte] = row
    return latest


def screening_lab_rows(*, subject: Subject) -> QuerySet[LabObservation]:
    """Every screening result stored, oldest first (the latest of each analyte is the one used)."""
    return LabObservation.objects.filter(subject=subject, context=SCREENING_CONTEXT).order_by(
        "analyte", "sampled_at", "pk"
    )


def lab_fact(row: LabObservation) -> LabFact:
    return LabFact(row.analyte, row.value, row.unit, row.lower_limit, row.upper_limit, row.sampled_at.date())


def subject_birth_date(subject: Subject) -> date | None:
    """The birth date from the encrypted identity (None when no identity is recorded)."""
    identity = SubjectIdentity.objects.filter(subject=subject).first()
    if identity is None:
        return None
    return date.fromisoformat(identity_decrypt(identity.ciphertext)["birth_date"])


def subject_age_at_consent(*, subject: Subject) -> int | None:
    """Completed years on the date the first consent was signed (criterion I01 says "at consent")."""
    consent = subject.consents.order_by("signed_on", "pk").first()
    if consent is None:
        return None
    birth = subject_birth_date(subject)
    if birth is None:
        return None
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


# --- the subject's dates along the pathway (chronology) -------------------------------------------

# The pathway events that date a milestone: when they were recorded, or a date they carry.
_EVENT_MILESTONES = {
    Step.START_SCREENING.value: Milestone.SCREENING_STARTED,
    Step.INCLUDE.value: Milestone.INCLUDED,
    Step.START_LYMPHODEPLETION.value: Milestone.LYMPHODEPLETION_STARTED,
}


def clinical_milestones(subject: Subject) -> dict[Milestone, Moment]:
    """The subject's own and clinical milestones: birth, first consent, screening start, inclusion,
    planned apheresis, lymphodepletion start and planned D0 (the latest), D0, withdrawal, death.

    The logistics milestones (collection, shipments, batch, receipt, thaw) are added by
    `logistics.selectors.subject_milestones`, the one selector the pathway engine reads.
    """
    dates: dict[Milestone, Moment] = {}
    birth = subject_birth_date(subject)
    if birth is not None:
        dates[Milestone.BIRTH] = birth
    consent = subject.consents.order_by("signed_on", "pk").first()
    if consent is not None:
        dates[Milestone.CONSENT] = consent.signed_on
    events = PathwayEvent.objects.filter(
        subject=subject, step__in=[*_EVENT_MILESTONES, Step.RECORD_DEATH.value]
    ).order_by("occurred_at", "pk")
    for event in events:
        if event.step == Step.RECORD_DEATH.value:
            if event.details.get("death_date"):
                dates[Milestone.DEATH] = date.fromisoformat(event.details["death_date"])
            continue
        milestone = _EVENT_MILESTONES[event.step]
        if milestone is Milestone.SCREENING_STARTED and milestone in dates:
            continue
        dates[milestone] = event.occurred_at
        if milestone is Milestone.LYMPHODEPLETION_STARTED and event.details.get("planned_infusion_date"):
            dates[Milestone.INFUSION_PLANNED] = date.fromisoformat(event.details["planned_infusion_date"])
    if subject.apheresis_date is not None:
        dates[Milestone.APHERESIS_PLANNED] = subject.apheresis_date
    if subject.infusion_date is not None:
        dates[Milestone.INFUSED] = subject.infusion_date
    withdrawal = ConsentWithdrawal.objects.filter(subject=subject).first()
    if withdrawal is not None:
        dates[Milestone.CONSENT_WITHDRAWN] = withdrawal.withdrawn_on
    return dates


def subject_zone(subject: Subject) -> ZoneInfo:
    """The center's time zone: clinical dates are the center's calendar dates."""
    return ZoneInfo(subject.center.time_zone)


# --- screening log, CONSORT flow, re-consent list -----------------------------------------------


@dataclass(frozen=True)
class ScreeningLogRow:
    """One screened subject: when, the outcome, and the criteria that failed."""

    subject_code: str
    center_code: str
    screened_at: datetime
    state: str
    outcome: str  # in_screening, screen_failed, eligible, included, exited_before_inclusion
    verdict: str
    failed_criteria: tuple[str, ...]
    failure_reason: str
    infused: bool


_IN_FOLLOW_UP = frozenset({State.ACUTE_MONITORING, State.FOLLOW_UP, State.LONG_TERM_FOLLOW_UP, State.COMPLETED})


def _outcome(steps: set[str], state: State) -> str:
    if Step.INCLUDE.value in steps:
        return "included"
    if state is State.SCREEN_FAILED:
        return "screen_failed"
    if state in (State.WITHDRAWN, State.LOST_TO_FOLLOW_UP, State.DECEASED):
        return "exited_before_inclusion"
    if Step.CONFIRM_ELIGIBILITY.value in steps:
        return "eligible"
    return "in_screening"


def screening_log(
    *, scope: Scope, center_code: str | None = None, since: datetime | None = None
) -> list[ScreeningLogRow]:
    """Every screened subject of the user's centers, oldest screening first: 3 queries whatever the size.
    With `since`, only the subjects about which the audit trail holds an entry after it."""
    subjects = (
        # The manufacturing lab has no business with screening outcomes: clinical and sponsor roles only.
        Subject.objects.filter(
            subject_filter(scope),
            center_id__in=centers_for(scope, Action.READ_SCREENING),
            pathway_events__step=Step.START_SCREENING.value,
        )
        .select_related("center")
        .prefetch_related(
            Prefetch(
                "pathway_events",
                queryset=PathwayEvent.objects.only("subject_id", "step", "occurred_at", "reason", "details").order_by(
                    "occurred_at", "pk"
                ),
            ),
            Prefetch(
                "eligibility_assessments",
                queryset=EligibilityAssessment.objects.only(
                    "subject_id", "verdict", "result_json", "assessed_at"
                ).order_by("assessed_at", "pk"),
            ),
        )
        .distinct()
    )
    if center_code:
        subjects = subjects.filter(center__code=center_code)
    if since is not None:
        subjects = subjects.filter(code__in=subject_codes_changed_since(since))
    rows = []
    for subject in subjects:
        events = list(subject.pathway_events.all())
        assessments = list(subject.eligibility_assessments.all())
        latest = assessments[-1] if assessments else None
        steps = {event.step for event in events}
        screened = next(event for event in events if event.step == Step.START_SCREENING.value)
        failure = next((event for event in events if event.step == Step.FAIL_SCREENING.value), None)
        if failure is not None:
            failed = tuple(failure.details.get("failed_criteria", []))
        elif latest is not None:
            failed = tuple(c["id"] for c in latest.result_json.get("criteria", []) if c["outcome"] == "not_met")
        else:
            failed = ()
        rows.append(
            ScreeningLogRow(
                subject_code=subject.code,
                center_code=subject.center.code,
                screened_at=screened.occurred_at,
                state=subject.state,
                outcome=_outcome(steps, State(subject.state)),
                verdict=latest.verdict if latest else "",
                failed_criteria=failed,
                failure_reason=failure.reason if failure else "",
                infused=Step.INFUSE.value in steps,
            )
        )
    return sorted(rows, key=lambda row: (row.screened_at, row.subject_code))


@dataclass(frozen=True)
class ConsortFlow:
    """CONSORT-style counts: screened → screen-failed (by criterion) → eligible → included → infused → follow-up."""

    screened: int
    in_screening: int
    screen_failed: int
    failed_by_criterion: list[tuple[str, int]]
    failed_without_criterion: int
    exited_before_inclusion: int
    eligible: int
    eligible_awaiting_inclusion: int
    included: int
    infused: int
    in_follow_up: int
    exited_after_inclusion: int


def consort_flow(*, scope: Scope, center_code: str | None = None) -> ConsortFlow:
    """The flow of the user's centers from the screening log (same 3 queries)."""
    rows = screening_log(scope=scope, center_code=center_code)
    failed = [row for row in rows if row.outcome == "screen_failed"]
    by_criterion: dict[str, int] = {}
    for row in failed:
        for criterion in row.failed_criteria:
            by_criterion[criterion] = by_criterion.get(criterion, 0) + 1
    included = [row for row in rows if row.outcome == "included"]
    eligible = [row for row in rows if row.outcome in ("eligible", "included")]
    exits = {State.WITHDRAWN.value, State.LOST_TO_FOLLOW_UP.value, State.DECEASED.value}
    return ConsortFlow(
        screened=len(rows),
        in_screening=sum(row.outcome == "in_screening" for row in rows),
        screen_failed=len(failed),
        failed_by_criterion=sorted(by_criterion.items(), key=lambda item: (-item[1], item[0])),
        failed_without_criterion=sum(not row.failed_criteria for row in failed),
        exited_before_inclusion=sum(row.outcome == "exited_before_inclusion" for row in rows),
        eligible=len(eligible),
        eligible_awaiting_inclusion=sum(row.outcome == "eligible" for row in rows),
        included=len(included),
        infused=sum(row.infused for row in included),
        in_follow_up=sum(State(row.state) in _IN_FOLLOW_UP for row in included),
        exited_after_inclusion=sum(row.state in exits for row in included),
    )


@dataclass(frozen=True)
class ReconsentRow:
    subject: Subject
    signed_version: str
    language: str
    current_version: str


def consent_reconsent_list(
    *, scope: Scope, protocol: Protocol, center_code: str | None = None, since: datetime | None = None
) -> list[ReconsentRow]:
    """Active subjects whose latest consent is not the protocol's current version in its language.
    With `since`, only the subjects about which the audit trail holds an entry after it."""
    current = protocol.current_consent_versions()
    final = [state.value for state in State if is_final(state)]
    subjects = (
        Subject.objects.filter(subject_filter(scope), center_id__in=centers_for(scope, Action.READ_SCREENING))
        .exclude(state__in=final)
        .select_related("center")
        .prefetch_related(Prefetch("consents", queryset=Consent.objects.order_by("recorded_at", "pk")))
        .order_by("center__code", "number")
    )
    if center_code:
        subjects = subjects.filter(center__code=center_code)
    if since is not None:
        subjects = subjects.filter(code__in=subject_codes_changed_since(since))
    rows = []
    for subject in subjects:
        consents = list(subject.consents.all())
        if not consents:
            continue
        latest = consents[-1]
        if current.get(latest.language) != latest.document_version:
            rows.append(
                ReconsentRow(subject, latest.document_version, latest.language, current.get(latest.language, "—"))
            )
    return rows


class LabRow(NamedTuple):
    """One stored lab result as the exports read it, subjects by the hundred."""

    pk: int
    subject_id: int
    analyte: str
    value: float | None
    unit: str
    lower_limit: float | None
    upper_limit: float | None
    limit_of_quantification: float | None
    sampled_at: datetime
    recorded_at: datetime
    context: str


def lab_rows_of(subject_ids: Iterable[int]) -> Iterator[LabRow]:
    """Every lab result of the subjects, by subject then sampling time, read as it streams."""
    rows = (
        LabObservation.objects.filter(subject_id__in=list(subject_ids))
        .order_by("subject_id", "sampled_at", "pk")
        .values_list(*LabRow._fields)
    )
    for row in rows.iterator(chunk_size=2000):
        yield LabRow(*row)
