"""Alerts: what the trial must tell people about a subject, who must act, and how urgent it is.

An alert is raised by a write (a lab form saved, a kinetic result recorded, an adverse event, a
CRS/ICANS assessment) or by the daily scan (overdue visits, SAE reports due); it names its kind, the subject, the
data of its message (rendered later in each reader's language), the roles that must act and a
link to the record. This module holds the rules, pure: the kinds and their messages, who acts,
the severity, which lab values call for an alert, and who may acknowledge one.

Lab values (issue 10 item 5): a CTCAE v5.0 grade ≥ 3 from the calculator of `scores/ctcae.py`
(blood counts and haemoglobin: the only lab terms it grades) against the lab's lower limit of
normal, and IgG below `IGG_LOW_G_PER_L`, converted to g/L by `units.py` only.

SAE clock (`sae_clock_alert`): the next report of a serious AE's clock, due or overdue, each stage
once. CRS and ICANS (`severe_episodes_reached`): once per episode reaching grade ≥ 3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from cartrial.domain.roles import Role
from cartrial.domain.safety.sae_clock import ReportKind, ReportStatus, SaeClockState
from cartrial.domain.scores.ctcae import (
    PLAUSIBLE_MAX_BY_UNIT,
    CtcaeLabTerm,
    grade_lab_value,
    units_for,
)
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.text import N_, Message, label
from cartrial.domain.toxicity import DailyGrade, ToxicityKind, episodes_from
from cartrial.domain.units import Analyte, UnitConversionError, convert


class AlertKind(StrEnum):
    """What an alert is about; stable codes (database, API, audit)."""

    OVERDUE_VISIT = "overdue_visit"
    SAE_CLOCK = "sae_clock"
    CRS_GRADE_3 = "crs_grade_3"
    ICANS_GRADE_3 = "icans_grade_3"
    LAB_GRADE_3 = "lab_grade_3"
    IGG_LOW = "igg_low"
    KINETICS_FLAG = "kinetics_flag"


class Severity(StrEnum):
    """How soon someone must look: the order of the notifications page within an age."""

    WARNING = "warning"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_LABELS: dict[Severity, str] = {
    Severity.WARNING: N_("Warning"),
    Severity.HIGH: N_("High"),
    Severity.CRITICAL: N_("Critical"),
}


@dataclass(frozen=True)
class AlertSpec:
    """One kind: its label, its message (a msgid whose `{params}` the raiser gives), who must act
    (the center's roles and, where the sponsor follows it, the monitor of the center) and severity."""

    kind: AlertKind
    label: str
    message: str
    roles: frozenset[Role]
    severity: Severity
    params: tuple[str, ...] = field(default=())


_CLINICAL = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})

ALERT_SPECS: dict[AlertKind, AlertSpec] = {
    spec.kind: spec
    for spec in (
        AlertSpec(
            AlertKind.OVERDUE_VISIT,
            N_("Overdue visit"),
            N_("{subject}: visit {visit} is overdue; its window closed on {latest}."),
            _CLINICAL,
            Severity.WARNING,
            ("subject", "visit", "latest"),
        ),
        AlertSpec(
            AlertKind.SAE_CLOCK,
            N_("Serious adverse event report"),
            N_("{subject}: serious adverse event “{event}”: {report} (due {due} UTC)."),
            _CLINICAL | {Role.MONITOR},
            Severity.CRITICAL,
            ("subject", "report", "event", "due"),
        ),
        AlertSpec(
            AlertKind.CRS_GRADE_3,
            N_("CRS grade ≥ 3"),
            N_("{subject}: cytokine release syndrome grade {grade} on {day}."),
            _CLINICAL | {Role.MONITOR},
            Severity.CRITICAL,
            ("subject", "grade", "day"),
        ),
        AlertSpec(
            AlertKind.ICANS_GRADE_3,
            N_("ICANS grade ≥ 3"),
            N_("{subject}: ICANS grade {grade} on {day}."),
            _CLINICAL | {Role.MONITOR},
            Severity.CRITICAL,
            ("subject", "grade", "day"),
        ),
        AlertSpec(
            AlertKind.LAB_GRADE_3,
            N_("Lab value grade ≥ 3"),
            N_("{subject}: {term} grade {grade} (CTCAE {version}) at visit {visit}: {value} {unit}."),
            _CLINICAL,
            Severity.HIGH,
            ("subject", "term", "grade", "version", "visit", "value", "unit"),
        ),
        AlertSpec(
            AlertKind.IGG_LOW,
            N_("IgG below threshold"),
            N_("{subject}: IgG {value} g/L at visit {visit}, below {threshold} g/L."),
            _CLINICAL,
            Severity.HIGH,
            ("subject", "value", "visit", "threshold"),
        ),
        AlertSpec(
            AlertKind.KINETICS_FLAG,
            N_("Kinetics flag"),
            N_("{subject}: kinetics flag raised: {flag}"),
            _CLINICAL,
            Severity.WARNING,
            ("subject", "flag"),
        ),
    )
}


class SaeReport(StrEnum):
    """Where a serious adverse event's reporting clock stands: its next report (initial, follow-up or
    final), due or overdue (the `report` of an SAE clock alert)."""

    INITIAL_DUE = "initial_due"
    INITIAL_OVERDUE = "initial_overdue"
    FOLLOW_UP_DUE = "follow_up_due"
    FOLLOW_UP_OVERDUE = "follow_up_overdue"
    FINAL_DUE = "final_due"
    FINAL_OVERDUE = "final_overdue"


SAE_REPORT_LABELS: dict[SaeReport, str] = {
    SaeReport.INITIAL_DUE: N_("initial report due"),
    SaeReport.INITIAL_OVERDUE: N_("initial report overdue"),
    SaeReport.FOLLOW_UP_DUE: N_("follow-up report due"),
    SaeReport.FOLLOW_UP_OVERDUE: N_("follow-up report overdue"),
    SaeReport.FINAL_DUE: N_("final report due"),
    SaeReport.FINAL_OVERDUE: N_("final report overdue"),
}


def sae_report_label(report: SaeReport | str) -> Message:
    """The `report` parameter of an SAE clock alert."""
    return label(SAE_REPORT_LABELS[SaeReport(report)])


@dataclass(frozen=True)
class SaeClockAlert:
    """The alert a serious AE's clock calls for: its next report, the how-many-th of its kind
    (`sequence`: the initial and the final report are 1, follow-ups count up), due or overdue."""

    report: SaeReport
    kind: ReportKind
    sequence: int
    due_at: datetime
    overdue: bool

    def key(self, ae_id: int) -> str:
        """`<ae id>/<report kind>/<sequence>/<due|overdue>`: each stage of each report is alerted once."""
        return f"{ae_id}/{self.kind.value}/{self.sequence}/{'overdue' if self.overdue else 'due'}"


def sae_clock_alert(state: SaeClockState) -> SaeClockAlert | None:
    """The stage of the clock to alert at the state's `now`: the next report not sent, due (pending)
    or overdue; None once the final report was sent."""
    upcoming = state.next_due
    if state.closed or upcoming is None:
        return None
    overdue = upcoming.status is ReportStatus.OVERDUE
    return SaeClockAlert(
        report=SaeReport(f"{upcoming.kind.value}_{'overdue' if overdue else 'due'}"),
        kind=upcoming.kind,
        sequence=sum(1 for r in state.reports if r.kind is upcoming.kind),
        due_at=upcoming.due_at,
        overdue=overdue,
    )


# CRS and ICANS (ASTCT) from this grade on are severe: an alert, once per episode that reaches it.
TOXICITY_ALERT_GRADE = 3

TOXICITY_ALERT_KINDS: dict[ToxicityKind, AlertKind] = {
    ToxicityKind.CRS: AlertKind.CRS_GRADE_3,
    ToxicityKind.ICANS: AlertKind.ICANS_GRADE_3,
}


@dataclass(frozen=True)
class SevereEpisode:
    """An episode that has just reached grade ≥ 3: its onset (the alert's key) and the first day
    graded ≥ 3 with that day's grade (the alert's message)."""

    kind: ToxicityKind
    onset_day: int
    day: int
    grade: int

    @property
    def alert_kind(self) -> AlertKind:
        return TOXICITY_ALERT_KINDS[self.kind]

    @property
    def key(self) -> str:
        """One alert per episode, named by its onset day."""
        return f"episode/D{self.onset_day}"


def severe_episodes_reached(
    kind: ToxicityKind, before: Iterable[DailyGrade], after: Iterable[DailyGrade]
) -> list[SevereEpisode]:
    """The episodes of `after` (a subject's daily grades once a day is recorded or corrected) with a
    day graded ≥ 3 whose days overlap no episode of `before` that already had one.

    Why episodes and not days: a grade 3 CRS lasting five days is one event to act on, not five; and
    a later day of an episode already alerted (even acknowledged) raises nothing. A correction that
    lowers the grade and raises it again within one episode is not a new episode either.
    """
    before_grades, after_grades = list(before), list(after)
    alerted = [
        (e.onset_day, e.last_day) for e in episodes_from(kind, before_grades) if e.max_grade >= TOXICITY_ALERT_GRADE
    ]
    reached = []
    for episode in episodes_from(kind, after_grades):
        if episode.max_grade < TOXICITY_ALERT_GRADE:
            continue
        if any(start <= episode.last_day and episode.onset_day <= end for start, end in alerted):
            continue
        first = min(
            (
                g
                for g in after_grades
                if episode.onset_day <= g.day <= episode.last_day and g.grade >= TOXICITY_ALERT_GRADE
            ),
            key=lambda g: g.day,
        )
        reached.append(SevereEpisode(kind, episode.onset_day, first.day, first.grade))
    return reached


def toxicity_day(day: int, on: date) -> Message:
    """The `day` of a CRS/ICANS alert: the date and the day since the infusion (J in French)."""
    return Message(N_("{date} (D{day})"), {"date": on, "day": day})


# Hypogammaglobulinaemia worth acting on after CD19 CAR-T (clinical.md §4: IgG replacement is
# considered below 4 g/L, the threshold of the B-cell aplasia guidance); in g/L, the canonical unit.
IGG_LOW_G_PER_L = 4.0

# A lab value calls for an alert from this CTCAE grade on (severe; 4 is life-threatening).
LAB_ALERT_GRADE = 3

# The analytes of the lab forms the CTCAE calculator grades, with the term each is graded as.
CTCAE_TERM_OF_ANALYTE: dict[str, CtcaeLabTerm] = {
    "neutrophils": CtcaeLabTerm.NEUTROPHIL_COUNT_DECREASED,
    "platelets": CtcaeLabTerm.PLATELET_COUNT_DECREASED,
    "wbc": CtcaeLabTerm.WHITE_BLOOD_CELL_DECREASED,
    "lymphocytes": CtcaeLabTerm.LYMPHOCYTE_COUNT_DECREASED,
    "hemoglobin": CtcaeLabTerm.ANEMIA,
}

CTCAE_TERM_LABELS: dict[CtcaeLabTerm, str] = {
    CtcaeLabTerm.NEUTROPHIL_COUNT_DECREASED: N_("Neutrophil count decreased"),
    CtcaeLabTerm.PLATELET_COUNT_DECREASED: N_("Platelet count decreased"),
    CtcaeLabTerm.WHITE_BLOOD_CELL_DECREASED: N_("White blood cell decreased"),
    CtcaeLabTerm.LYMPHOCYTE_COUNT_DECREASED: N_("Lymphocyte count decreased"),
    CtcaeLabTerm.ANEMIA: N_("Anemia"),
}


def alert_spec(kind: AlertKind | str) -> AlertSpec:
    """The rules of one kind."""
    return ALERT_SPECS[AlertKind(kind)]


def alert_message(kind: AlertKind | str, params: Mapping[str, object]) -> Message:
    """What the alert says, as a message rendered later in the reader's language."""
    return Message(alert_spec(kind).message, dict(params))


def may_acknowledge(role: Role | None, acting_roles: Iterable[str]) -> bool:
    """An alert is acknowledged by a role that must act on it, or by an investigator of the center
    (who answers for the subject's care whatever the alert)."""
    if role is None:
        return False
    return role is Role.INVESTIGATOR or role.value in set(acting_roles)


@dataclass(frozen=True)
class LabFinding:
    """A lab value of a form that calls for an alert: its kind, the item (the idempotency key) and
    the message's parameters (without the subject, which the caller adds)."""

    kind: AlertKind
    item: str
    params: dict[str, object]


def lab_findings(items: Iterable[tuple[str, str, Mapping[str, object]]], *, visit: str) -> list[LabFinding]:
    """The alerts the lab items of one saved form call for.

    `items`: (item name, analyte, stored lab value `{value, unit, lower_limit, upper_limit}`).
    A count is graded against the lab's lower limit of normal; without one, only the grade ≥ 2
    bands apply, which CTCAE defines in absolute values, so the grade ≥ 3 decision is the same
    (the calculator is then given the unit's ceiling as the LLN). IgG is compared in g/L.
    """
    findings: list[LabFinding] = []
    for name, analyte, lab in items:
        value = lab.get("value")
        unit = str(lab.get("unit") or "")
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        term = CTCAE_TERM_OF_ANALYTE.get(analyte)
        if term is not None and unit in units_for(term):
            lower = lab.get("lower_limit")
            lln = float(lower) if isinstance(lower, int | float) and lower > 0 else PLAUSIBLE_MAX_BY_UNIT[unit]
            try:
                graded = grade_lab_value(term=term, value=float(value), unit=unit, lln=lln)
            except CalculatorInputError:
                continue  # outside the calculator's range: the form's plausibility check speaks for it
            if graded.grade >= LAB_ALERT_GRADE:
                findings.append(
                    LabFinding(
                        AlertKind.LAB_GRADE_3,
                        name,
                        {
                            "term": label(CTCAE_TERM_LABELS[term]),
                            "grade": graded.grade,
                            "version": graded.version,
                            "visit": visit,
                            "value": float(value),
                            "unit": unit,
                        },
                    )
                )
        elif analyte == Analyte.IGG.value:
            try:
                grams = convert(analyte=Analyte.IGG, value=float(value), from_unit=unit, to_unit="g/L").value
            except UnitConversionError:
                continue
            if grams < IGG_LOW_G_PER_L:
                findings.append(
                    LabFinding(
                        AlertKind.IGG_LOW,
                        name,
                        {"value": round(grams, 2), "visit": visit, "threshold": IGG_LOW_G_PER_L},
                    )
                )
    return findings


def lab_finding_key(visit: str, form: str, item: str) -> str:
    """One open alert per lab item of a visit's form: a second save of the same low value does not
    raise it again while the first is unacknowledged."""
    return f"{visit}/{form}/{item}"
