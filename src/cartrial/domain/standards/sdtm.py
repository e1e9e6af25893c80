"""SDTM derivations: a subject's trial data (plain dataclasses gathered by the exports app) → the rows
of DM, DS, EX, AE, LB, VS, CM and SV; the trial design → TS, TA and TE.

Each domain is one function over one subject, so an export streams subject by subject and never
holds a whole dataset. Rows are mappings of variable name → value (None: empty) in the types the
variable declares (`sdtm_metadata.py`); dates are ISO 8601 on the center's calendar (SDTM keeps the
local time of collection), to the minute where a time was collected. Every rule is named by a
Define-XML method (`sdtm_metadata.METHODS`) and explained in docs/exports.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from cartrial.domain import units
from cartrial.domain.errors import Refused
from cartrial.domain.pathway import Step
from cartrial.domain.safety.terms import AESI_LABELS, term_get
from cartrial.domain.screening import age_in_completed_years
from cartrial.domain.standards import terminology as ct
from cartrial.domain.standards.sdtm_metadata import SDTMIG_VERSION
from cartrial.domain.visits import Anchor, VisitDefinition, is_unscheduled

Row = dict[str, object]

# The study treatment and its single arm (the protocol defines one arm, open label).
STUDY_TREATMENT = "ANTI-CD19 CAR-T CELLS"
ARM_CODE = "CART"
ARM_NAME = "Anti-CD19 CAR-T cells"
INDICATION = "SYSTEMIC LUPUS ERYTHEMATOSUS"
LD_CATEGORY = "LYMPHODEPLETING CHEMOTHERAPY"
CART_CATEGORY = "CAR-T CELL THERAPY"
LD_DRUGS: Mapping[str, tuple[tuple[str, str | None], ...]] = {
    # regimen code of the lymphodepletion form → (EXTRT, the form's dose item) per drug
    "flu_cy": (
        ("FLUDARABINE", "fludarabine_mg_per_m2_per_day"),
        ("CYCLOPHOSPHAMIDE", "cyclophosphamide_mg_per_m2_per_day"),
    ),
    "cy_only": (("CYCLOPHOSPHAMIDE", "cyclophosphamide_mg_per_m2_per_day"),),
}
LD_OTHER = "OTHER LYMPHODEPLETING CHEMOTHERAPY"

_SCREENING, _TREATMENT, _FOLLOW_UP, _LONG_TERM = (
    ct.EPOCH_BY_PHASE[phase] for phase in ("screening", "treatment", "follow_up", "long_term_follow_up")
)
_EXIT_STEPS = frozenset(
    {Step.FAIL_SCREENING, Step.COMPLETE, Step.WITHDRAW, Step.MARK_LOST_TO_FOLLOW_UP, Step.RECORD_DEATH}
)
_SERIOUSNESS_FLAGS = {
    "death": "AESDTH",
    "life_threatening": "AESLIFE",
    "hospitalisation": "AESHOSP",
    "disability": "AESDISAB",
    "congenital_anomaly": "AESCONG",
    "important_medical_event": "AESMIE",
}


# --- what the exports app gathers -----------------------------------------------------------------


@dataclass(frozen=True)
class StudyDesign:
    """The protocol's facts the datasets need (study id, title, visits, follow-up lengths, ages)."""

    study_id: str
    title: str
    sponsor: str
    phase: str
    visits: tuple[VisitDefinition, ...]
    follow_up_months: int
    long_term_follow_up_years: int
    age_range: tuple[int, int] | None = None
    lymphodepletion_days: int | None = None


@dataclass(frozen=True)
class PathwayStep:
    """One pathway step taken (the subject's timeline): its code, when, the reason typed, details."""

    step: str
    occurred_at: datetime
    reason: str = ""
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class LabResult:
    """One lab observation as stored: value (None below the limit of quantification) in its unit."""

    analyte: str
    value: float | None
    unit: str
    lower_limit: float | None
    upper_limit: float | None
    limit_of_quantification: float | None
    sampled_at: datetime
    context: str = ""
    visit_code: str | None = None  # the casebook visit whose form recorded it


@dataclass(frozen=True)
class VisitOccurrence:
    """A visit done (its date) or missed (its reason)."""

    visit_code: str
    done_on: date | None
    missed_reason: str = ""


@dataclass(frozen=True)
class AdverseEventRecord:
    """One AE as stored by the safety app (codes of domain/safety/adverse_events)."""

    term: str
    grade: int
    serious: bool
    seriousness_criteria: tuple[str, ...]
    start_date: date
    end_date: date | None
    relatedness_cart: str
    action: str
    outcome: str


@dataclass(frozen=True)
class SubjectRecord:
    """Everything the SDTM datasets read about one subject.

    `forms`: form code → visit code → the form's saved values (the casebook's JSON: lab items are
    `{"value", "unit", ...}`, repeating groups lists of rows). `infusions`: start of each infusion
    from the bedside record. `birth_date` only serves AGE and is never written.
    """

    code: str
    center_code: str
    country: str
    time_zone: str
    sex: str | None = None
    birth_date: date | None = None
    consent_dates: tuple[date, ...] = ()
    steps: tuple[PathwayStep, ...] = ()
    infusions: tuple[datetime, ...] = ()
    forms: Mapping[str, Mapping[str, Mapping[str, object]]] = field(default_factory=dict)
    visits: tuple[VisitOccurrence, ...] = ()
    adverse_events: tuple[AdverseEventRecord, ...] = ()
    labs: tuple[LabResult, ...] = ()


# --- small rules --------------------------------------------------------------------------------


def study_day(on: date | None, reference: date | None) -> int | None:
    """SDTM study day of `on` against the reference start date: no day 0 (the day before day 1 is -1)."""
    if on is None or reference is None:
        return None
    delta = (on - reference).days
    return delta + 1 if delta >= 0 else delta


def usubjid(study_id: str, subject_code: str) -> str:
    """The unique subject identifier: study and subject code, one per subject across the submission."""
    return f"{study_id}-{subject_code}"


def number_text(value: float) -> str:
    """A number as a result is written: no trailing zeros, up to 10 significant digits (117.0 → 117)."""
    return f"{value:.10g}"


def sdtm_unit(unit: str) -> str:
    """A unit in SDTM's ASCII spelling (µmol/L → umol/L, cells/µL → cells/uL)."""
    return unit.replace("µ", "u").replace("μ", "u")


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        return date.fromisoformat(value[:10])
    return None


def _number(value: object) -> float | None:
    """A number of a form value (a lab item is `{"value": ...}`); booleans are not numbers."""
    if isinstance(value, Mapping):
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _numbered(rows: list[Row], seq: str) -> list[Row]:
    for index, row in enumerate(rows, start=1):
        row[seq] = index
    return rows


def _sort_key(*values: object) -> tuple[tuple[int, object], ...]:
    """Sorts None last whatever the type of the other values."""
    return tuple((1, "") if v is None else (0, v) for v in values)


class _Subject:
    """One subject seen through the study: identifiers, reference dates, visits and epochs, computed once."""

    def __init__(self, study: StudyDesign, record: SubjectRecord) -> None:
        self.study = study
        self.record = record
        self.zone = ZoneInfo(record.time_zone)
        self.usubjid = usubjid(study.study_id, record.code)
        self.steps = sorted(record.steps, key=lambda s: s.occurred_at)

    def head(self, domain: str) -> Row:
        return {"STUDYID": self.study.study_id, "DOMAIN": domain, "USUBJID": self.usubjid}

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def minutes(self, moment: datetime) -> str:
        return self.local(moment).strftime("%Y-%m-%dT%H:%M")

    def step_date(self, step: PathwayStep) -> date:
        return self.local(step.occurred_at).date()

    def first(self, step: Step) -> PathwayStep | None:
        return next((s for s in self.steps if s.step == step.value), None)

    @cached_property
    def inclusion(self) -> date | None:
        step = self.first(Step.INCLUDE)
        return self.step_date(step) if step else None

    @cached_property
    def infusion_starts(self) -> list[str]:
        """Each infusion's start (center time, to the minute), from the bedside record or else the form."""
        starts = [self.minutes(moment) for moment in sorted(self.record.infusions)]
        if starts:
            return starts
        for values in self.record.forms.get("infusion", {}).values():
            on = _as_date(values.get("infusion_date"))
            if on is not None:
                time = values.get("infusion_start_time")
                starts.append(f"{on.isoformat()}T{time}" if isinstance(time, str) and time else on.isoformat())
        return sorted(starts)

    @cached_property
    def reference_date(self) -> date | None:
        """The date of RFSTDTC: the first infusion (center's calendar)."""
        return _as_date(self.infusion_starts[0]) if self.infusion_starts else None

    @cached_property
    def long_term_start(self) -> date | None:
        step = self.first(Step.START_LONG_TERM_FOLLOW_UP)
        return self.step_date(step) if step else None

    def day(self, on: date | None) -> int | None:
        return study_day(on, self.reference_date)

    def epoch(self, on: date | None) -> str | None:
        if on is None:
            return None
        if self.inclusion is None or on < self.inclusion:
            return _SCREENING
        if self.reference_date is None or on <= self.reference_date:
            return _TREATMENT
        if self.long_term_start is not None and on >= self.long_term_start:
            return _LONG_TERM
        return _FOLLOW_UP

    @cached_property
    def exit(self) -> tuple[PathwayStep, date] | None:
        """The step the subject left the study by, and its date (the death's, the consent withdrawal's)."""
        exits = [s for s in self.steps if s.step in _EXIT_STEPS]
        if not exits:
            return None
        step = exits[-1]
        on = _as_date(step.details.get("death_date")) or _as_date(step.details.get("consent_withdrawn_on"))
        return step, on or self.step_date(step)

    @cached_property
    def visit_dates(self) -> dict[str, date]:
        return {v.visit_code: v.done_on for v in self.record.visits if v.done_on is not None}

    @cached_property
    def _visit_numbers(self) -> dict[str, float]:
        numbers = {v.code: float(index) for index, v in enumerate(self.study.visits, start=1)}
        unscheduled = sorted((on, code) for code, on in self.visit_dates.items() if is_unscheduled(code))
        count: dict[float, int] = {}
        for on, code in unscheduled:
            base = max((numbers[c] for c, d in self.visit_dates.items() if c in numbers and d <= on), default=0.0)
            count[base] = count.get(base, 0) + 1
            numbers[code] = round(base + 0.01 * count[base], 2)
        return numbers

    def visit(self, code: str | None) -> Row:
        """VISITNUM, VISIT and VISITDY of a visit code (empty for no visit)."""
        if code is None:
            return {"VISITNUM": None, "VISIT": None, "VISITDY": None}
        definition = next((v for v in self.study.visits if v.code == code), None)
        planned_day = None
        if definition is not None and definition.anchor is Anchor.INFUSION:
            planned_day = definition.day + 1 if definition.day >= 0 else definition.day
        if definition is not None:
            name = definition.label.get("en") or code
        elif is_unscheduled(code):
            name = f"Unscheduled {code}"
        else:
            name = code
        return {"VISITNUM": self._visit_numbers.get(code), "VISIT": name, "VISITDY": planned_day}

    def visit_of_day0(self) -> str | None:
        return next((v.code for v in self.study.visits if v.anchor is Anchor.INFUSION and v.day == 0), None)

    def visit_on(self, on: date) -> str | None:
        """The visit done on that day (the first in protocol order), for results not linked to a form."""
        codes = [code for code, done in self.visit_dates.items() if done == on]
        return min(codes, key=lambda c: self._visit_numbers.get(c, float("inf"))) if codes else None

    @cached_property
    def exposure(self) -> list[Row]:
        return _exposure_rows(self)

    @cached_property
    def exposure_start(self) -> str | None:
        starts = [str(r["EXSTDTC"]) for r in self.exposure if r.get("EXSTDTC")]
        return min(starts) if starts else None

    @cached_property
    def exposure_end(self) -> str | None:
        ends = [str(r.get("EXENDTC") or r["EXSTDTC"]) for r in self.exposure if r.get("EXSTDTC")]
        return max(ends) if ends else None


# --- the subject-level datasets -------------------------------------------------------------------


def demographics(subject: _Subject) -> list[Row]:
    """DM: one record per subject."""
    record = subject.record
    consent = min(record.consent_dates) if record.consent_dates else None
    age = None
    if consent is not None and record.birth_date is not None:
        try:
            age = age_in_completed_years(record.birth_date, consent)
        except ValueError:
            age = None
    country = ct.COUNTRY_ALPHA3.get(record.country.upper())
    if country is None:
        raise Refused(
            "{item}: no ISO 3166-1 alpha-3 code is declared for the country {country} of center {center}.",
            code="sdtm_country_unknown",
            item="DM.COUNTRY",
            country=record.country,
            center=record.center_code,
        )
    included = subject.inclusion is not None
    infused = subject.reference_date is not None
    exit_ = subject.exit
    null_reason = None
    if not included:
        screen_failed = exit_ is not None and exit_[0].step == Step.FAIL_SCREENING.value
        null_reason = ct.ARM_NULL_SCREEN_FAILURE if screen_failed else ct.ARM_NULL_NOT_ASSIGNED
    elif not infused:
        null_reason = ct.ARM_NULL_NOT_TREATED
    death = next((s for s in subject.steps if s.step == Step.RECORD_DEATH.value), None)
    death_date = _as_date(death.details.get("death_date")) if death else None
    return [
        {
            **subject.head("DM"),
            "SUBJID": record.code,
            "RFSTDTC": subject.infusion_starts[0] if infused else None,
            "RFENDTC": exit_[1].isoformat() if included and exit_ else None,
            "RFXSTDTC": subject.exposure_start,
            "RFXENDTC": subject.exposure_end,
            "RFICDTC": consent.isoformat() if consent else None,
            "RFPENDTC": exit_[1].isoformat() if exit_ else None,
            "DTHDTC": death_date.isoformat() if death_date else None,
            "DTHFL": "Y" if death is not None else None,
            "SITEID": record.center_code,
            "AGE": age,
            "AGEU": ct.AGE_UNIT_YEARS if age is not None else None,
            "SEX": ct.SEX_CODES.get(record.sex or "", ct.SEX_UNKNOWN),
            "RACE": None,
            "ARMCD": ARM_CODE if included else None,
            "ARM": ARM_NAME if included else None,
            "ACTARMCD": ARM_CODE if infused else None,
            "ACTARM": ARM_NAME if infused else None,
            "ARMNRS": null_reason,
            "COUNTRY": country,
        }
    ]


def disposition(subject: _Subject) -> list[Row]:
    """DS: each consent, the inclusion, each infusion and the subject's exit, in date order."""
    events: list[tuple[date, str, ct.Term, str]] = []  # date, DSCAT, DSDECOD, DSTERM
    for consent in sorted(subject.record.consent_dates):
        events.append((consent, ct.DS_CATEGORY_MILESTONE, ct.DS_CONSENT, ct.DS_CONSENT.value))
    if subject.inclusion is not None:
        events.append((subject.inclusion, ct.DS_CATEGORY_MILESTONE, ct.DS_ENROLLED, ct.DS_ENROLLED.value))
    for start in subject.infusion_starts:
        on = _as_date(start)
        if on is not None:
            events.append((on, ct.DS_CATEGORY_MILESTONE, ct.DS_INFUSED, ct.DS_INFUSED.value))
    if subject.exit is not None:
        step, on = subject.exit
        term = _exit_term(step)
        reason = step.reason.strip()
        events.append((on, ct.DS_CATEGORY_DISPOSITION, term, reason or term.value))
    events.sort(key=lambda e: e[0])
    rows = [
        {
            **subject.head("DS"),
            "DSTERM": verbatim,
            "DSDECOD": term.value,
            "DSCAT": category,
            "EPOCH": subject.epoch(on),
            "DSSTDTC": on.isoformat(),
            "DSSTDY": subject.day(on),
        }
        for on, category, term, verbatim in events
    ]
    return _numbered(rows, "DSSEQ")


def _exit_term(step: PathwayStep) -> ct.Term:
    if step.step == Step.WITHDRAW.value:
        return ct.DS_WITHDRAWN_BY_SUBJECT if step.details.get("consent_withdrawn_on") else ct.DS_OTHER
    return {
        Step.FAIL_SCREENING.value: ct.DS_SCREEN_FAILURE,
        Step.COMPLETE.value: ct.DS_COMPLETED,
        Step.MARK_LOST_TO_FOLLOW_UP.value: ct.DS_LOST,
        Step.RECORD_DEATH.value: ct.DS_DEATH,
    }[step.step]


def _exposure_rows(subject: _Subject) -> list[Row]:
    rows: list[Row] = []
    for visit_code, values in subject.record.forms.get("lymphodepletion", {}).items():
        start = _as_date(values.get("start_date"))
        days = values.get("days")
        end = start + timedelta(days=days - 1) if start and isinstance(days, int) and days >= 1 else None
        regimen = str(values.get("regimen") or "")
        for treatment, dose_item in LD_DRUGS.get(regimen, ((LD_OTHER, None),)):
            dose = _number(values.get(dose_item)) if dose_item else None
            rows.append(
                {
                    **subject.head("EX"),
                    "EXTRT": treatment,
                    "EXCAT": LD_CATEGORY,
                    "EXDOSE": dose,
                    "EXDOSU": "mg/m2" if dose is not None else None,
                    "EXDOSFRM": "SOLUTION",
                    "EXDOSFRQ": "QD",
                    "EXROUTE": "INTRAVENOUS",
                    **subject.visit(visit_code),
                    "EPOCH": subject.epoch(start),
                    "EXSTDTC": start.isoformat() if start else None,
                    "EXENDTC": end.isoformat() if end else None,
                    "EXSTDY": subject.day(start),
                    "EXENDY": subject.day(end),
                }
            )
    infusion_forms = subject.record.forms.get("infusion", {})
    form_visit, form_values = next(iter(sorted(infusion_forms.items())), (None, {}))
    dose = _number(form_values.get("dose_cells_per_kg"))
    for infusion_start in subject.infusion_starts:
        day = _as_date(infusion_start)
        rows.append(
            {
                **subject.head("EX"),
                "EXTRT": STUDY_TREATMENT,
                "EXCAT": CART_CATEGORY,
                "EXDOSE": dose,
                "EXDOSU": "cells/kg" if dose is not None else None,
                "EXDOSFRM": "SUSPENSION",
                "EXDOSFRQ": "ONCE",
                "EXROUTE": "INTRAVENOUS",
                **subject.visit(form_visit or subject.visit_of_day0()),
                "EPOCH": subject.epoch(day),
                "EXSTDTC": infusion_start,
                "EXENDTC": infusion_start,
                "EXSTDY": subject.day(day),
                "EXENDY": subject.day(day),
            }
        )
    rows.sort(key=lambda r: _sort_key(r["EXTRT"], r["EXSTDTC"]))
    return _numbered(rows, "EXSEQ")


def exposure(subject: _Subject) -> list[Row]:
    """EX: lymphodepleting chemotherapy (one record per drug) and each CAR-T infusion."""
    return subject.exposure


def adverse_events(subject: _Subject) -> list[Row]:
    """AE: one record per adverse event, CRS and ICANS included with their grade."""
    rows: list[Row] = []
    for ae in subject.record.adverse_events:
        term = term_get(ae.term)
        label = term.label["en"]
        after_dose = subject.reference_date is not None and ae.start_date > subject.reference_date
        action = ct.AE_ACTION_CODES.get(ae.action)
        if after_dose and ae.action not in ("infusion_interrupted", "infusion_not_given"):
            action = ct.AE_ACTION_CODES["not_applicable"]
        flags = dict.fromkeys(_SERIOUSNESS_FLAGS.values(), None if not ae.serious else "N")
        if ae.serious:
            for criterion in ae.seriousness_criteria:
                flags[_SERIOUSNESS_FLAGS[criterion]] = "Y"
        coded = term.ctcae_term and term.meddra_code is not None
        rows.append(
            {
                **subject.head("AE"),
                "AETERM": label,
                "AELLT": label if coded else None,
                "AELLTCD": term.meddra_code if coded else None,
                "AEDECOD": label,
                "AEBODSYS": term.soc,
                "AESOC": term.soc,
                "AECAT": "ADVERSE EVENT OF SPECIAL INTEREST" if term.aesi else None,
                "AESCAT": AESI_LABELS[term.aesi].upper() if term.aesi else None,
                "AESEV": ct.AE_SEVERITY_BY_GRADE[ae.grade],
                "AESER": "Y" if ae.serious else "N",
                "AEACN": action,
                "AEACNOTH": ct.AE_ACTION_OTHER.get(ae.action),
                "AEREL": ct.AE_RELATEDNESS_CODES.get(ae.relatedness_cart),
                "AEOUT": ct.AE_OUTCOME_CODES[ae.outcome],
                **flags,
                "AETOXGR": str(ae.grade),
                "EPOCH": subject.epoch(ae.start_date),
                "AESTDTC": ae.start_date.isoformat(),
                "AEENDTC": ae.end_date.isoformat() if ae.end_date else None,
                "AESTDY": subject.day(ae.start_date),
                "AEENDY": subject.day(ae.end_date),
            }
        )
    rows.sort(key=lambda r: _sort_key(r["AEDECOD"], r["AESTDTC"]))
    return _numbered(rows, "AESEQ")


def _standard(analyte: str, unit: str) -> Callable[[float], float] | None:
    """The conversion of a value of `analyte` in `unit` to the standard unit (None: the unit is kept)."""
    try:
        known = units.Analyte(analyte)
    except ValueError:
        return None
    target = units.units_for(known)[0]
    if units.normalize_unit(unit) == target:
        return None
    return lambda value: units.convert(analyte=known, value=value, from_unit=unit, to_unit=target).value


def _standard_unit(analyte: str, unit: str) -> str:
    try:
        return units.units_for(units.Analyte(analyte))[0]
    except ValueError:
        return unit


def _rounded(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.10g}")


def laboratory(subject: _Subject) -> list[Row]:
    """LB: one record per lab observation of the one store (screening, casebook and kinetic results)."""
    screening_visit = next((v.code for v in subject.study.visits if v.phase.value == "screening"), None)
    rows: list[Row] = []
    for lab in subject.record.labs:
        coding = ct.LAB_CODINGS[lab.analyte]
        convert = _standard(lab.analyte, lab.unit)

        def standard(value: float | None, convert: Callable[[float], float] | None = convert) -> float | None:
            return _rounded(value if value is None or convert is None else convert(value))

        sampled = subject.local(lab.sampled_at)
        visit_code = lab.visit_code
        if visit_code is None and lab.context == "screening":
            visit_code = screening_visit
        if visit_code is None:
            visit_code = subject.visit_on(sampled.date())
        value, loq = lab.value, lab.limit_of_quantification
        standard_value = standard(value)
        if value is not None and standard_value is not None:
            original, standard_text = number_text(value), number_text(standard_value)
        else:
            limit, standard_limit = loq or 0.0, standard(loq) or 0.0
            original, standard_text = f"<{number_text(limit)}", f"<{number_text(standard_limit)}"
        indicator = None
        if value is not None and (lab.lower_limit is not None or lab.upper_limit is not None):
            indicator = "NORMAL"
            if lab.lower_limit is not None and value < lab.lower_limit:
                indicator = "LOW"
            elif lab.upper_limit is not None and value > lab.upper_limit:
                indicator = "HIGH"
        loinc = coding.loinc(lab.unit)
        rows.append(
            {
                **subject.head("LB"),
                "LBTESTCD": coding.lbtestcd,
                "LBTEST": coding.lbtest,
                "LBCAT": ct.LAB_CATEGORIES[lab.analyte],
                "LBORRES": original,
                "LBORRESU": sdtm_unit(lab.unit),
                "LBORNRLO": number_text(lab.lower_limit) if lab.lower_limit is not None else None,
                "LBORNRHI": number_text(lab.upper_limit) if lab.upper_limit is not None else None,
                "LBSTRESC": standard_text,
                "LBSTRESN": standard_value,
                "LBSTRESU": sdtm_unit(_standard_unit(lab.analyte, lab.unit)),
                "LBSTNRLO": standard(lab.lower_limit),
                "LBSTNRHI": standard(lab.upper_limit),
                "LBNRIND": indicator,
                "LBLOINC": loinc[0] if loinc else None,
                "LBMETHOD": ct.LAB_METHOD_BY_UNIT.get(lab.unit),
                "LBLOBXFL": None,
                **subject.visit(visit_code),
                "EPOCH": subject.epoch(sampled.date()),
                "LBDTC": sampled.strftime("%Y-%m-%dT%H:%M"),
                "LBDY": subject.day(sampled.date()),
            }
        )
    rows.sort(key=lambda r: _sort_key(r["LBTESTCD"], r["LBDTC"], r["LBMETHOD"], r["LBORRESU"]))
    _flag_last_before_exposure(subject, rows, "LB", ("LBTESTCD", "LBMETHOD"), "LBDTC", "LBORRES")
    return _numbered(rows, "LBSEQ")


def _flag_last_before_exposure(
    subject: _Subject, rows: Sequence[Row], domain: str, test: tuple[str, ...], when: str, result: str
) -> None:
    start = _as_date(subject.exposure_start)
    if start is None:
        return
    last: dict[tuple[object, ...], Row] = {}
    for row in rows:
        on = _as_date(row.get(when))
        if on is not None and on <= start and row.get(result) is not None:
            key = tuple(row.get(name) for name in test)
            previous = last.get(key)
            if previous is None or str(row[when]) >= str(previous[when]):
                last[key] = row
    for row in last.values():
        row[f"{domain}LOBXFL"] = "Y"


def vital_signs(subject: _Subject) -> list[Row]:
    """VS: one record per measurement of the vital signs form, dated by its visit."""
    rows: list[Row] = []
    for visit_code, values in subject.record.forms.get("vital_signs", {}).items():
        on = subject.visit_dates.get(visit_code)
        for item, coding in ct.VITAL_SIGN_CODINGS.items():
            number = _number(values.get(item))
            if number is None:
                continue
            rows.append(
                {
                    **subject.head("VS"),
                    "VSTESTCD": coding.vstestcd,
                    "VSTEST": coding.vstest,
                    "VSPOS": coding.position,
                    "VSORRES": number_text(number),
                    "VSORRESU": coding.unit,
                    "VSSTRESC": number_text(number),
                    "VSSTRESN": number,
                    "VSSTRESU": coding.unit,
                    "VSLOBXFL": None,
                    **subject.visit(visit_code),
                    "EPOCH": subject.epoch(on),
                    "VSDTC": on.isoformat() if on else None,
                    "VSDY": subject.day(on),
                }
            )
    rows.sort(key=lambda r: _sort_key(r["VSTESTCD"], r.get("VISITNUM")))
    _flag_last_before_exposure(subject, rows, "VS", ("VSTESTCD",), "VSDTC", "VSORRES")
    return _numbered(rows, "VSSEQ")


def concomitant_medications(subject: _Subject) -> list[Row]:
    """CM: the medications listed at the visits, one record per medication, dose, route and start."""
    latest: dict[tuple[object, ...], tuple[tuple[object, ...], str, Mapping[str, object]]] = {}
    for visit_code, values in subject.record.forms.get("concomitant_medications", {}).items():
        on = subject.visit_dates.get(visit_code)
        medications = values.get("medications")
        for medication in medications if isinstance(medications, list) else []:
            name = str(medication.get("medication") or "").strip()
            key = (
                name.casefold(),
                medication.get("dose"),
                medication.get("dose_unit"),
                medication.get("route"),
                str(medication.get("start_date") or ""),
            )
            order = _sort_key(on, subject.visit(visit_code).get("VISITNUM"))
            if key not in latest or order >= latest[key][0]:
                latest[key] = (order, visit_code, medication)
    rows: list[Row] = []
    for _, visit_code, medication in latest.values():
        start = _as_date(medication.get("start_date"))
        end = _as_date(medication.get("stop_date"))
        ongoing = medication.get("ongoing") is True
        seen_on = subject.visit_dates.get(visit_code)
        rows.append(
            {
                **subject.head("CM"),
                "CMTRT": str(medication.get("medication") or "").strip(),
                "CMDOSE": _number(medication.get("dose")),
                "CMDOSU": ct.DOSE_UNIT_CODES.get(str(medication.get("dose_unit") or "")),
                "CMROUTE": ct.ROUTE_CODES.get(str(medication.get("route") or "")),
                "CMSTDTC": start.isoformat() if start else None,
                "CMENDTC": end.isoformat() if end else None,
                "CMENRTPT": "ONGOING" if ongoing else None,
                "CMENTPT": seen_on.isoformat() if ongoing and seen_on else None,
                "CMSTDY": subject.day(start),
                "CMENDY": subject.day(end),
            }
        )
    rows.sort(key=lambda r: _sort_key(r["CMTRT"], r["CMSTDTC"], r["CMDOSE"], r["CMENDTC"]))
    return _numbered(rows, "CMSEQ")


def subject_visits(subject: _Subject) -> list[Row]:
    """SV: every visit done (with its date) or missed (with its reason)."""
    phases = {v.code: v.phase.value for v in subject.study.visits}
    rows: list[Row] = []
    for occurrence in subject.record.visits:
        done = occurrence.done_on is not None
        on = occurrence.done_on
        epoch = subject.epoch(on) if done else ct.EPOCH_BY_PHASE.get(phases.get(occurrence.visit_code, ""))
        rows.append(
            {
                **subject.head("SV"),
                **subject.visit(occurrence.visit_code),
                "SVPRESP": None if is_unscheduled(occurrence.visit_code) else "Y",
                "SVOCCUR": "Y" if done else "N",
                "SVREASOC": occurrence.missed_reason.strip() or None if not done else None,
                "EPOCH": epoch,
                "SVSTDTC": on.isoformat() if on else None,
                "SVENDTC": on.isoformat() if on else None,
                "SVSTDY": subject.day(on),
            }
        )
    rows.sort(key=lambda r: _sort_key(r.get("VISITNUM"), r["VISIT"]))
    return rows


SUBJECT_DOMAINS: Mapping[str, Callable[[_Subject], list[Row]]] = {
    "DM": demographics,
    "DS": disposition,
    "EX": exposure,
    "AE": adverse_events,
    "LB": laboratory,
    "VS": vital_signs,
    "CM": concomitant_medications,
    "SV": subject_visits,
}


def subject_rows(study: StudyDesign, record: SubjectRecord) -> dict[str, list[Row]]:
    """Every subject-level dataset's rows for one subject, by dataset name."""
    subject = _Subject(study, record)
    return {name: derive(subject) for name, derive in SUBJECT_DOMAINS.items()}


def domain_rows(domain: str, study: StudyDesign, record: SubjectRecord) -> list[Row]:
    """One dataset's rows for one subject (the tests read one domain at a time)."""
    return SUBJECT_DOMAINS[domain](_Subject(study, record))


# --- the trial design datasets ------------------------------------------------------------------


@dataclass(frozen=True)
class Element:
    """A trial element: code, name, start and end rules, planned duration (ISO 8601), epoch."""

    code: str
    name: str
    start_rule: str
    end_rule: str
    duration: str | None
    epoch: str


def elements(study: StudyDesign) -> tuple[Element, ...]:
    """The single arm's elements in order, with the protocol's durations."""
    ld = f"P{study.lymphodepletion_days}D" if study.lymphodepletion_days else None
    long_term_months = study.long_term_follow_up_years * 12 - study.follow_up_months
    return (
        Element("SCRN", "Screening", "Informed consent signed", "Inclusion or screen failure", None, _SCREENING),
        Element("PREP", "Apheresis and manufacturing", "Inclusion", "First day of lymphodepletion", None, _TREATMENT),
        Element("LD", "Lymphodepletion", "First day of lymphodepleting chemotherapy", "CAR-T infusion", ld, _TREATMENT),
        Element("INF", "CAR-T infusion", "Start of the CAR-T infusion", "End of the infusion day", "P1D", _TREATMENT),
        Element(
            "FU",
            "Follow-up",
            "Day after the infusion",
            "Start of long-term follow-up",
            f"P{study.follow_up_months}M",
            _FOLLOW_UP,
        ),
        Element(
            "LTFU",
            "Long-term follow-up",
            "Start of long-term follow-up",
            "End of study participation",
            f"P{long_term_months}M" if long_term_months > 0 else None,
            _LONG_TERM,
        ),
    )


def trial_elements(study: StudyDesign) -> list[Row]:
    """TE: one record per planned element."""
    return [
        {
            "STUDYID": study.study_id,
            "DOMAIN": "TE",
            "ETCD": e.code,
            "ELEMENT": e.name,
            "TESTRL": e.start_rule,
            "TEENRL": e.end_rule,
            "TEDUR": e.duration,
        }
        for e in sorted(elements(study), key=lambda e: e.code)
    ]


def trial_arms(study: StudyDesign) -> list[Row]:
    """TA: the single arm's elements in order."""
    return [
        {
            "STUDYID": study.study_id,
            "DOMAIN": "TA",
            "ARMCD": ARM_CODE,
            "ARM": ARM_NAME,
            "TAETORD": order,
            "ETCD": e.code,
            "ELEMENT": e.name,
            "TABRANCH": None,
            "EPOCH": e.epoch,
        }
        for order, e in enumerate(elements(study), start=1)
    ]


def trial_summary(study: StudyDesign, cutoff: date) -> list[Row]:
    """TS: the trial summary parameters known from the protocol, and the data cut-off (the export's day)."""
    values: dict[str, str | None] = {
        "TITLE": study.title,
        "SPONSOR": study.sponsor,
        "TPHASE": ct.TRIAL_PHASES.get(study.phase),
        "STYPE": "INTERVENTIONAL",
        "TBLIND": "OPEN LABEL",
        "TCNTRL": "NONE",
        "RANDOM": "N",
        "NARMS": "1",
        "INDIC": INDICATION,
        "TRT": STUDY_TREATMENT,
        "AGEMIN": f"P{study.age_range[0]}Y" if study.age_range else None,
        "AGEMAX": f"P{study.age_range[1]}Y" if study.age_range else None,
        "SDTIGVER": SDTMIG_VERSION,
        "DCUTDTC": cutoff.isoformat(),
    }
    return [
        {
            "STUDYID": study.study_id,
            "DOMAIN": "TS",
            "TSSEQ": 1,
            "TSPARMCD": code,
            "TSPARM": ct.TS_PARAMETERS[code],
            "TSVAL": value,
        }
        for code, value in sorted(values.items())
        if value is not None
    ]


def trial_design_rows(study: StudyDesign, cutoff: date) -> dict[str, list[Row]]:
    """TS, TA and TE rows, by dataset name."""
    return {"TS": trial_summary(study, cutoff), "TA": trial_arms(study), "TE": trial_elements(study)}
