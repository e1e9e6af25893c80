"""Alerts: what the trial must tell people about a subject, who must act, and how urgent it is.

An alert is raised by a write (a lab form saved, a kinetic result recorded, an adverse event, a
CRS/ICANS assessment) or by the daily scan (overdue visits); it names its kind, the subject, the
data of its message (rendered later in each reader's language), the roles that must act and a
link to the record. This module holds the rules, pure: the kinds and their messages, who acts,
the severity, which lab values call for an alert, and who may acknowledge one.

Lab values (issue 10 item 5): a CTCAE v5.0 grade ≥ 3 from the calculator of `scores/ctcae.py`
(blood counts and haemoglobin: the only lab terms it grades) against the lab's lower limit of
normal, and IgG below `IGG_LOW_G_PER_L`, converted to g/L by `units.py` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cartrial.domain.roles import Role
from cartrial.domain.scores.ctcae import (
    PLAUSIBLE_MAX_BY_UNIT,
    CtcaeLabTerm,
    grade_lab_value,
    units_for,
)
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.text import N_, Message, label
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
    """Where a serious adverse event's reporting clock stands (the `report` of an SAE clock alert;
    the key of the alert is the SAE and this code, so each stage is alerted once)."""

    INITIAL_DUE = "initial_due"
    INITIAL_OVERDUE = "initial_overdue"
    FOLLOW_UP_DUE = "follow_up_due"


SAE_REPORT_LABELS: dict[SaeReport, str] = {
    SaeReport.INITIAL_DUE: N_("initial report due"),
    SaeReport.INITIAL_OVERDUE: N_("initial report overdue"),
    SaeReport.FOLLOW_UP_DUE: N_("follow-up report due"),
}


def sae_report_label(report: SaeReport | str) -> Message:
    """The `report` parameter of an SAE clock alert."""
    return label(SAE_REPORT_LABELS[SaeReport(report)])


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
