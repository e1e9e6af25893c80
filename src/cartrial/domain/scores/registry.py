"""The stable JSON contract of every clinical calculator (calculators.md): names, keys, schemas.

The CLI (`cartrial calc NAME`), the API (`POST /api/v1/calculators/NAME`) and the web pages
all go through the same compute functions, so they accept and return exactly the same JSON.
Input is validated strictly (`CalculatorInputError` lists every field at fault); the output has
every key of the contract, plus extra keys that explain what counted and why. Renaming a contract
key breaks other programs: add keys, never rename them.

The explaining texts are messages whose parameters are labels ("Seizure: +8"), so a page shows
them in the reader's language (`calculate_readable`). The JSON keeps the contract's codes in
those texts ("seizure: +8"): `calculate` renders each message in English with every label
turned back into its code (`_CODES`), so programs reading the JSON see what they always saw.
Titles, descriptions, field labels, units and result labels are msgids (English in the JSON
Schema and `describe`, translated on the pages).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cartrial.domain import units
from cartrial.domain.clinical_labels import CLINICAL_LABELS, clinical_label
from cartrial.domain.scores import (
    crs,
    ctcae,
    egfr,
    eular_acr_2019,
    icaht,
    icans,
    ice,
    remission,
    sledai2k,
    sri4,
)
from cartrial.domain.scores.errors import CalculatorInputError, UnknownCalculatorError
from cartrial.domain.scores.input_fields import (
    BooleanInput,
    ChoiceInput,
    ChoiceListInput,
    InputField,
    IntegerInput,
    NumberInput,
    ParsedInput,
    RecordListInput,
    object_schema,
    parse_input,
)
from cartrial.domain.text import N_, Message, label

__all__ = [
    "CALCULATORS",
    "CALCULATOR_NAMES",
    "RESULT_LABELS",
    "Calculator",
    "CalculatorInputError",
    "UnknownCalculatorError",
    "calculate",
    "calculate_readable",
    "describe",
    "get_calculator",
    "result_label",
]

Output = dict[str, object]


@dataclass(frozen=True)
class Calculator:
    """One calculator of the contract: what it is, what it takes, what it returns.

    `title`, `description` and the values of `outputs` (the contract keys, each with its meaning)
    are msgids; `source` is a citation and stays as written.
    """

    name: str
    title: str
    description: str
    source: str
    inputs: Mapping[str, InputField]
    outputs: Mapping[str, str]
    compute: Callable[[ParsedInput], Output] = field(repr=False)

    def input_schema(self) -> dict[str, object]:
        """JSON Schema of the input object, for API documentation and form generation."""
        return {"title": self.title, "description": self.description} | object_schema(self.inputs)


def _significant(value: float) -> float:
    """Drop binary noise (61.88000000000001) from a derived value; 12 digits exceed any lab's."""
    return float(f"{value:.12g}")


def _term(code: str) -> Message:
    """A contract code as its label (the JSON shows the code again)."""
    return label(clinical_label(code))


# SLEDAI-2K ---------------------------------------------------------------------------------

_DESCRIPTORS_FIELD = N_("SLEDAI-2K descriptors present at the visit or within the lookback window")


def _sledai2k(data: ParsedInput) -> Output:
    result = sledai2k.score_sledai2k(descriptors=data.texts("descriptors"), lookback_days=data.integer("lookback_days"))
    explanation = [
        Message(
            N_("{descriptor}: +{weight} (serology, not in clinical SLEDAI)")
            if c.serology
            else N_("{descriptor}: +{weight}"),
            {"descriptor": _term(c.descriptor), "weight": c.weight},
        )
        for c in result.counted
    ]
    return {
        "score": result.score,
        "clinical_score": result.clinical_score,
        "counted": [{"descriptor": c.descriptor, "weight": c.weight} for c in result.counted],
        "lookback_days": result.lookback_days,
        "max_score": sledai2k.MAX_SCORE,
        "serology_points": result.score - result.clinical_score,
        "arthritis_rule": result.arthritis_rule,
        "explanation": explanation or [Message(N_("no descriptor present: 0"))],
    }


# EULAR/ACR 2019 ----------------------------------------------------------------------------


def _eular_acr_2019(data: ParsedInput) -> Output:
    result = eular_acr_2019.classify_eular_acr_2019(
        ana_titer=data.integer("ana_titer"), criteria=data.texts("criteria")
    )
    explanation: list[Message]
    if not result.entry_criterion_met:
        explanation = [
            Message(
                N_("ANA titre 1:{titer} is below the entry criterion (1:{minimum}); the criteria are not applied"),
                {"titer": data.integer("ana_titer"), "minimum": eular_acr_2019.ANA_ENTRY_MIN_TITER},
            )
        ]
    else:
        explanation = [
            Message(
                N_("{domain}: {criterion} +{weight}"),
                {"domain": _term(c.domain), "criterion": _term(c.criterion), "weight": c.weight},
            )
            for c in result.counted
        ]
        explanation += [
            Message(
                N_("{domain}: {criterion} not counted, {instead} weighs as much or more"),
                {"domain": _term(o.domain), "criterion": _term(o.criterion), "instead": _term(o.counted_instead)},
            )
            for o in result.outweighed
        ]
        total = {"score": result.score, "minimum": eular_acr_2019.CLASSIFICATION_MIN_SCORE}
        if result.clinical_criterion_met:
            explanation.append(Message(N_("total {score} (≥ {minimum} needed) and a clinical criterion is met"), total))
        else:
            explanation.append(Message(N_("total {score} (≥ {minimum} needed) and no clinical criterion"), total))
    return {
        "entry_criterion_met": result.entry_criterion_met,
        "score": result.score,
        "clinical_criterion_met": result.clinical_criterion_met,
        "classified": result.classified,
        "counted": [{"domain": c.domain, "criterion": c.criterion, "weight": c.weight} for c in result.counted],
        "outweighed": [
            {
                "domain": o.domain,
                "criterion": o.criterion,
                "weight": o.weight,
                "counted_instead": o.counted_instead,
            }
            for o in result.outweighed
        ],
        "explanation": explanation,
    }


# eGFR --------------------------------------------------------------------------------------


def _egfr(data: ParsedInput) -> Output:
    result = egfr.estimate_egfr_ckd_epi_2021(
        creatinine=data.number("creatinine"),
        creatinine_unit=data.text("creatinine_unit"),
        age_years=data.number("age_years"),
        sex=egfr.Sex(data.text("sex")),
    )
    return {
        "egfr": round(result.egfr_ml_per_min_per_1_73m2, 2),
        "unit": egfr.EGFR_UNIT,
        "equation": result.equation,
        "creatinine_mg_per_dl": _significant(result.creatinine_mg_per_dl),
    }


# CRS, ICE, ICANS ---------------------------------------------------------------------------


def _crs(data: ParsedInput) -> Output:
    result = crs.grade_crs(
        fever=data.boolean("fever"),
        antipyretic_or_anticytokine_given=data.boolean("antipyretic_or_anticytokine_given"),
        hypotension=crs.Hypotension(data.text("hypotension")),
        hypoxia=crs.Hypoxia(data.text("hypoxia")),
        death_from_crs=data.boolean("death_from_crs"),
    )
    return {"grade": result.grade, "reason": result.reason, "grading": "ASTCT 2019"}


def _ice(data: ParsedInput) -> Output:
    result = ice.score_ice(**{item: data.integer(item) for item in ice.ITEM_MAX_POINTS})
    return {"score": result.score, "items": dict(result.items), "max_score": ice.MAX_SCORE}


def _icans(data: ParsedInput) -> Output:
    result = icans.grade_icans(
        ice_score=data.optional_integer("ice_score"),
        consciousness=icans.Consciousness(data.text("consciousness")),
        seizure=icans.Seizure(data.text("seizure")),
        motor_weakness=icans.MotorWeakness(data.text("motor_weakness")),
        cerebral_edema=icans.CerebralEdema(data.text("cerebral_edema")),
    )
    explanation = [
        Message(
            N_("{domain}: {finding} → grade {grade}"),
            {"domain": _term(d.domain), "finding": d.finding, "grade": d.grade},
        )
        for d in result.domains
    ]
    if not result.ice_performed:
        explanation.append(Message(N_("ICE not performed: graded on the other domains only")))
    return {
        "grade": result.grade,
        "domains": [{"domain": d.domain, "grade": d.grade, "finding": d.finding} for d in result.domains],
        "ice_performed": result.ice_performed,
        # A name, in the JSON as written; marked so a page can translate it.
        "grading": N_("ASTCT 2019 (adults)"),
        "explanation": explanation,
    }


# CTCAE -------------------------------------------------------------------------------------


def _ctcae_lab(data: ParsedInput) -> Output:
    result = ctcae.grade_lab_value(
        term=ctcae.CtcaeLabTerm(data.text("term")),
        value=data.number("value"),
        unit=data.text("unit"),
        lln=data.number("lln"),
    )
    output: Output = {
        "grade": result.grade,
        "term": result.term.value,
        "band": result.band,
        "ctcae_version": result.version,
    }
    if result.term is ctcae.CtcaeLabTerm.ANEMIA:
        output["note"] = Message(N_("anemia grade 4 (life-threatening) is a clinical judgement, not a value"))
    return output


# DORIS, LLDAS, SRI-4 -----------------------------------------------------------------------


def _doris(data: ParsedInput) -> Output:
    result = remission.assess_doris_2021(
        sledai_descriptors=data.texts("sledai_descriptors"),
        pga=data.number("pga"),
        prednisone_mg_per_day=data.number("prednisone_mg_per_day"),
        maintenance_therapy_stable=data.boolean("maintenance_therapy_stable"),
    )
    return {
        "remission": result.remission,
        "clinical_sledai": result.clinical_sledai,
        "unmet": [u.code for u in result.unmet],
        "unmet_reasons": [{"criterion": u.code, "reason": u.reason} for u in result.unmet],
        "prednisone_bound": remission.doris_prednisone_bound(),
        "definition": "DORIS 2021",
    }


def _lldas(data: ParsedInput) -> Output:
    result = remission.assess_lldas(
        sledai_descriptors=data.texts("sledai_descriptors"),
        previous_sledai_descriptors=data.texts("previous_sledai_descriptors"),
        hemolytic_anemia=data.boolean("hemolytic_anemia"),
        gi_activity=data.boolean("gi_activity"),
        pga=data.number("pga"),
        prednisone_mg_per_day=data.number("prednisone_mg_per_day"),
        standard_maintenance_only=data.boolean("standard_maintenance_only"),
    )
    return {
        "lldas": result.lldas,
        "sledai": result.sledai,
        "unmet": [u.code for u in result.unmet],
        "unmet_reasons": [{"criterion": u.code, "reason": u.reason} for u in result.unmet],
        "new_features": list(result.new_features),
        "definition": "LLDAS (Franklyn 2016)",
    }


def _sri4(data: ParsedInput) -> Output:
    result = sri4.assess_sri4(
        baseline_sledai=data.integer("baseline_sledai"),
        current_sledai=data.integer("current_sledai"),
        new_bilag_a=data.integer("new_bilag_a"),
        new_bilag_b=data.integer("new_bilag_b"),
        baseline_pga=data.number("baseline_pga"),
        current_pga=data.number("current_pga"),
    )
    return {
        "responder": result.responder,
        "unmet": [u.code for u in result.unmet],
        "unmet_reasons": [{"component": u.code, "reason": u.reason} for u in result.unmet],
        "sledai_reduction": result.sledai_reduction,
        "pga_change": result.pga_change,
        "sledai_version": result.sledai_version,
    }


# ICAHT -------------------------------------------------------------------------------------


def _icaht(data: ParsedInput) -> Output:
    values = [
        icaht.AncValue(day=record.integer("day"), anc_per_ul=record.number("anc_per_ul"))
        for record in data.records("anc")
    ]
    result = icaht.grade_icaht(anc=values)
    early, late = result.early, result.late
    explanation = []
    if early.grade is None:
        explanation.append(Message(N_("early ICAHT not graded: no ANC value on days 0 to 30")))
    elif early.days_without_value:
        explanation.append(
            Message(
                N_(
                    "early ICAHT graded on partial data: {missing} of the 31 days 0 to 30 have no measured "
                    "or interpolated ANC"
                ),
                {"missing": len(early.days_without_value)},
            )
        )
    window = {"first": icaht.LATE_WINDOW_FIRST_DAY, "last": icaht.LATE_ICAHT_WINDOW_LAST_DAY}
    if late.grade is None:
        explanation.append(Message(N_("late ICAHT not graded: no ANC value on days {first} to {last}"), window))
    elif late.confirming_anc_per_ul is None:
        explanation.append(Message(N_("late ICAHT graded on a single ANC value (no confirming count)")))
    elif late.confirming_anc_per_ul > icaht.LATE_CONFIRMATION_MAX_ANC_PER_UL:
        explanation.append(Message(N_("late nadir not confirmed by a second count ≤ 1500/µL: transient, grade 0")))
    if result.ignored_days:
        explanation.append(
            Message(
                N_("counts after day {last} are outside both windows: days {days}"),
                {"last": icaht.LATE_ICAHT_WINDOW_LAST_DAY, "days": list(result.ignored_days)},
            )
        )
    return {
        "early_grade": early.grade,
        "late_grade": late.grade,
        "early": {
            "days_anc_le_500": early.days_anc_le_500,
            "days_anc_le_100": early.days_anc_le_100,
            "days_without_value": list(early.days_without_value),
            "duration_rule": early.duration_rule,
            "max_interpolation_gap_days": icaht.ICAHT_MAX_INTERPOLATION_GAP_DAYS,
        },
        "late": {
            "nadir_anc_per_ul": late.nadir_anc_per_ul,
            "confirming_anc_per_ul": late.confirming_anc_per_ul,
            "values_in_window": late.values_in_window,
            "window_days": [icaht.LATE_WINDOW_FIRST_DAY, icaht.LATE_ICAHT_WINDOW_LAST_DAY],
        },
        "ignored_days": list(result.ignored_days),
        "explanation": explanation,
    }


# Units -------------------------------------------------------------------------------------

_ALL_UNITS: tuple[str, ...] = tuple(
    dict.fromkeys([unit for analyte in units.Analyte for unit in units.units_for(analyte)] + ["µmol/L", "μmol/L"])
)


def _units(data: ParsedInput) -> Output:
    try:
        quantity = units.convert(
            analyte=data.text("analyte"),
            value=data.number("value"),
            from_unit=data.text("from"),
            to_unit=data.text("to"),
        )
    except units.UnitConversionError as exc:
        raise CalculatorInputError.for_field(exc.field, exc.message) from None
    return {"value": _significant(quantity.value), "unit": quantity.unit}


# The contract ------------------------------------------------------------------------------

_PGA = NumberInput(
    description=N_("physician global assessment, SELENA 0-3 scale"),
    label=N_("Physician global assessment (PGA, 0-3)"),
    minimum=remission.PGA_MIN,
    maximum=remission.PGA_MAX,
)
_PREDNISONE = NumberInput(
    description=N_("prednisolone-equivalent glucocorticoid dose, mg/day"),
    label=N_("Prednisolone-equivalent dose"),
    unit=N_("mg/day"),
    minimum=0.0,
    maximum=remission.PREDNISONE_MAX_PLAUSIBLE_MG_PER_DAY,
)
_SLEDAI_DESCRIPTORS = ChoiceListInput(
    description=_DESCRIPTORS_FIELD, label=N_("SLEDAI-2K descriptors present"), choices=sledai2k.DESCRIPTOR_KEYS
)

_CALCULATOR_LIST: tuple[Calculator, ...] = (
    Calculator(
        name="sledai2k",
        title=N_("SLEDAI-2K"),
        description=N_(
            "Lupus disease activity: 24 weighted descriptors, with the clinical "
            "SLEDAI that leaves out low complement and raised anti-dsDNA."
        ),
        source="Gladman 2002, J Rheumatol 29:288; Touma 2010, Lupus 19:49 (30-day window)",
        inputs=MappingProxyType(
            {
                "descriptors": ChoiceListInput(
                    description=_DESCRIPTORS_FIELD,
                    label=N_("Descriptors present"),
                    choices=sledai2k.DESCRIPTOR_KEYS,
                ),
                "lookback_days": IntegerInput(
                    description=N_("window the descriptors were collected over, days"),
                    label=N_("Look-back window"),
                    unit=N_("days"),
                    choices=sledai2k.LOOKBACK_DAYS_CHOICES,
                    required=False,
                    default=sledai2k.DEFAULT_LOOKBACK_DAYS,
                ),
            }
        ),
        outputs=MappingProxyType(
            {
                "score": N_("SLEDAI-2K, 0-105"),
                "clinical_score": N_("clinical SLEDAI (no serology), 0-101"),
                "counted": N_("descriptors present with their weights"),
                "lookback_days": N_("window used, days"),
            }
        ),
        compute=_sledai2k,
    ),
    Calculator(
        name="eular-acr-2019",
        title=N_("2019 EULAR/ACR classification criteria for SLE"),
        description=N_(
            "ANA entry criterion, then the highest-weighted criterion of each domain; "
            "classified at ≥ 10 points with at least one clinical criterion."
        ),
        source="Aringer 2019, Ann Rheum Dis 78:1151 / Arthritis Rheumatol 71:1400",
        inputs=MappingProxyType(
            {
                "ana_titer": IntegerInput(
                    description=N_("denominator of the highest ANA titre ever on HEp-2 (80 for 1:80, 0 if negative)"),
                    label=N_("Highest ANA titre ever (1:N)"),
                    minimum=0,
                    maximum=eular_acr_2019.ANA_TITER_MAX,
                ),
                "criteria": ChoiceListInput(
                    description=N_("criteria that occurred at least once, with no more likely explanation than SLE"),
                    label=N_("Criteria present"),
                    choices=eular_acr_2019.CRITERION_KEYS,
                ),
            }
        ),
        outputs=MappingProxyType(
            {
                "entry_criterion_met": N_("ANA ≥ 1:80"),
                "score": N_("total of the counted criteria, 0-51 (0 without the entry criterion)"),
                "clinical_criterion_met": N_("at least one clinical criterion counted"),
                "classified": N_("classified as SLE"),
                "counted": N_("one criterion per domain with its weight"),
            }
        ),
        compute=_eular_acr_2019,
    ),
    Calculator(
        name="egfr",
        title=N_("eGFR, CKD-EPI 2021 (race-free, creatinine)"),
        description=N_("Estimated glomerular filtration rate of an adult from serum creatinine, age and sex."),
        source="Inker 2021, N Engl J Med 385:1737",
        inputs=MappingProxyType(
            {
                "creatinine": NumberInput(
                    description=N_("IDMS-standardised serum creatinine"),
                    label=N_("Serum creatinine"),
                    minimum=0.0,
                    exclusive_minimum=True,
                ),
                "creatinine_unit": ChoiceInput(
                    description=N_("unit of the creatinine value"),
                    label=N_("Unit of the creatinine"),
                    choices=("mg/dL", "umol/L"),
                ),
                "age_years": NumberInput(
                    description=N_("age, years (adults)"),
                    label=N_("Age"),
                    unit=N_("years"),
                    minimum=egfr.MIN_AGE_YEARS,
                    maximum=egfr.MAX_AGE_YEARS,
                ),
                "sex": ChoiceInput(description=N_("sex"), label=N_("Sex"), choices=tuple(s.value for s in egfr.Sex)),
            }
        ),
        outputs=MappingProxyType(
            {
                "egfr": N_("eGFR rounded to 2 decimals"),
                "unit": N_("mL/min/1.73m2"),
                "equation": N_("CKD-EPI 2021"),
            }
        ),
        compute=_egfr,
    ),
    Calculator(
        name="crs",
        title=N_("Cytokine release syndrome grade (ASTCT 2019)"),
        description=N_(
            "Grade = the more severe of hypotension and hypoxia, given fever (or "
            "after antipyretic or anti-cytokine treatment); grade 5 = death from CRS."
        ),
        source="Lee 2019, Biol Blood Marrow Transplant 25:625",
        inputs=MappingProxyType(
            {
                "fever": BooleanInput(
                    description=N_("temperature ≥ 38.0 °C not attributable to another cause"),
                    label=N_("Fever"),
                ),
                "antipyretic_or_anticytokine_given": BooleanInput(
                    description=N_(
                        "antipyretic or anti-cytokine treatment (tocilizumab, corticosteroids) given for CRS"
                    ),
                    label=N_("Antipyretic or anti-cytokine treatment given"),
                ),
                "hypotension": ChoiceInput(
                    description=N_("hypotension and vasopressor need (vasopressin not counted)"),
                    label=N_("Hypotension"),
                    choices=tuple(h.value for h in crs.Hypotension),
                    choice_labels=MappingProxyType({h.value: text for h, text in crs.HYPOTENSION_LABELS.items()}),
                ),
                "hypoxia": ChoiceInput(
                    description=N_(
                        "oxygen support: low_flow ≤ 6 L/min or blow-by; high_flow "
                        "> 6 L/min, facemask, non-rebreather or Venturi"
                    ),
                    label=N_("Hypoxia (oxygen support)"),
                    choices=tuple(h.value for h in crs.Hypoxia),
                    choice_labels=MappingProxyType({h.value: text for h, text in crs.HYPOXIA_LABELS.items()}),
                ),
                "death_from_crs": BooleanInput(description=N_("death attributed to CRS"), label=N_("Death from CRS")),
            }
        ),
        outputs=MappingProxyType({"grade": N_("CRS grade 0-5 (0 = no CRS)")}),
        compute=_crs,
    ),
    Calculator(
        name="ice",
        title=N_("ICE score"),
        description=N_("Immune effector cell-associated encephalopathy score, 0-10 (10 = normal)."),
        source="Lee 2019, Biol Blood Marrow Transplant 25:625",
        inputs=MappingProxyType(
            {
                "orientation": IntegerInput(
                    description=N_("year, month, city, hospital: 1 point each"),
                    label=N_("Orientation"),
                    unit=N_("points"),
                    minimum=0,
                    maximum=ice.ITEM_MAX_POINTS["orientation"],
                ),
                "naming": IntegerInput(
                    description=N_("naming 3 objects: 1 point each"),
                    label=N_("Naming"),
                    unit=N_("points"),
                    minimum=0,
                    maximum=ice.ITEM_MAX_POINTS["naming"],
                ),
                "command": IntegerInput(
                    description=N_("follows a simple command"),
                    label=N_("Following commands"),
                    unit=N_("points"),
                    minimum=0,
                    maximum=1,
                ),
                "writing": IntegerInput(
                    description=N_("writes a standard sentence"),
                    label=N_("Writing"),
                    unit=N_("points"),
                    minimum=0,
                    maximum=1,
                ),
                "attention": IntegerInput(
                    description=N_("counts backwards from 100 by ten"),
                    label=N_("Attention"),
                    unit=N_("points"),
                    minimum=0,
                    maximum=1,
                ),
            }
        ),
        outputs=MappingProxyType({"score": N_("ICE score 0-10")}),
        compute=_ice,
    ),
    Calculator(
        name="icans",
        title=N_("ICANS grade, adults (ASTCT 2019)"),
        description=N_(
            "Neurotoxicity grade = the most severe of ICE score, consciousness, "
            "seizure, motor weakness and cerebral oedema."
        ),
        source="Lee 2019, Biol Blood Marrow Transplant 25:625",
        inputs=MappingProxyType(
            {
                "ice_score": IntegerInput(
                    description=N_("ICE score 0-10, null if it cannot be performed"),
                    label=N_("ICE score"),
                    minimum=0,
                    maximum=ice.MAX_SCORE,
                    nullable=True,
                ),
                "consciousness": ChoiceInput(
                    description=N_("depressed level of consciousness not due to another cause"),
                    label=N_("Level of consciousness"),
                    choices=tuple(c.value for c in icans.Consciousness),
                    choice_labels=MappingProxyType({c.value: text for c, text in icans.CONSCIOUSNESS_LABELS.items()}),
                ),
                "seizure": ChoiceInput(
                    description=N_("clinical or EEG seizure"),
                    label=N_("Seizure"),
                    choices=tuple(s.value for s in icans.Seizure),
                    choice_labels=MappingProxyType({s.value: text for s, text in icans.SEIZURE_LABELS.items()}),
                ),
                "motor_weakness": ChoiceInput(
                    description=N_("deep focal motor weakness"),
                    label=N_("Motor findings"),
                    choices=tuple(m.value for m in icans.MotorWeakness),
                    choice_labels=MappingProxyType({m.value: text for m, text in icans.MOTOR_WEAKNESS_LABELS.items()}),
                ),
                "cerebral_edema": ChoiceInput(
                    description=N_("raised intracranial pressure / cerebral oedema"),
                    label=N_("Raised intracranial pressure / cerebral oedema"),
                    choices=tuple(e.value for e in icans.CerebralEdema),
                    choice_labels=MappingProxyType({e.value: text for e, text in icans.CEREBRAL_EDEMA_LABELS.items()}),
                ),
            }
        ),
        outputs=MappingProxyType({"grade": N_("ICANS grade 0-4 (0 = no ICANS)")}),
        compute=_icans,
    ),
    Calculator(
        name="ctcae-lab",
        title=N_("CTCAE v5.0 decreased blood counts"),
        description=N_(
            "Grade of a decreased neutrophil, platelet, white-cell or lymphocyte "
            "count, or of anemia, from the value and the lab's lower limit of normal."
        ),
        source="NCI CTCAE v5.0, 27 Nov 2017",
        inputs=MappingProxyType(
            {
                "term": ChoiceInput(
                    description=N_("CTCAE term"),
                    label=N_("CTCAE term"),
                    choices=tuple(t.value for t in ctcae.CtcaeLabTerm),
                ),
                "value": NumberInput(description=N_("the measured value"), label=N_("Measured value"), minimum=0.0),
                "unit": ChoiceInput(
                    description=N_("10^9/L for counts; g/dL, g/L or mmol/L for haemoglobin"),
                    label=N_("Unit"),
                    choices=(ctcae.COUNT_UNIT, *ctcae.ANEMIA_BOUNDS_BY_UNIT),
                ),
                "lln": NumberInput(
                    description=N_("the lab's lower limit of normal, same unit"),
                    label=N_("Lab's lower limit of normal (LLN)"),
                    minimum=0.0,
                    exclusive_minimum=True,
                ),
            }
        ),
        outputs=MappingProxyType({"grade": N_("CTCAE grade 0-4 (0 = not below LLN)")}),
        compute=_ctcae_lab,
    ),
    Calculator(
        name="doris",
        title=N_("DORIS 2021 remission"),
        description=N_(
            "Clinical SLEDAI 0, PGA < 0.5, prednisolone ≤ 5 mg/day and stable maintenance therapy, at one visit."
        ),
        source="van Vollenhoven 2021, Lupus Sci Med 8:e000538",
        inputs=MappingProxyType(
            {
                "sledai_descriptors": _SLEDAI_DESCRIPTORS,
                "pga": _PGA,
                "prednisone_mg_per_day": _PREDNISONE,
                "maintenance_therapy_stable": BooleanInput(
                    description=N_("antimalarials, immunosuppressives and biologics at stable doses"),
                    label=N_("Stable maintenance therapy"),
                ),
            }
        ),
        outputs=MappingProxyType(
            {
                "remission": N_("DORIS 2021 remission"),
                "clinical_sledai": N_("clinical SLEDAI"),
                "unmet": N_("codes of the criteria not met"),
            }
        ),
        compute=_doris,
    ),
    Calculator(
        name="lldas",
        title=N_("Lupus Low Disease Activity State (Franklyn 2016)"),
        description=N_(
            "SLEDAI-2K ≤ 4 without major organ activity, no new features since the "
            "previous assessment, PGA ≤ 1, prednisolone ≤ 7.5 mg/day, standard maintenance only."
        ),
        source="Franklyn 2016, Ann Rheum Dis 75:1615",
        inputs=MappingProxyType(
            {
                "sledai_descriptors": _SLEDAI_DESCRIPTORS,
                "previous_sledai_descriptors": ChoiceListInput(
                    description=N_("SLEDAI-2K descriptors at the previous assessment"),
                    label=N_("SLEDAI-2K descriptors at the previous assessment"),
                    choices=sledai2k.DESCRIPTOR_KEYS,
                ),
                "hemolytic_anemia": BooleanInput(
                    description=N_("haemolytic anaemia present"), label=N_("Haemolytic anaemia")
                ),
                "gi_activity": BooleanInput(
                    description=N_("gastrointestinal lupus activity"), label=N_("Gastrointestinal activity")
                ),
                "pga": _PGA,
                "prednisone_mg_per_day": _PREDNISONE,
                "standard_maintenance_only": BooleanInput(
                    description=N_(
                        "well-tolerated standard maintenance doses of immunosuppressives and approved biologics only"
                    ),
                    label=N_("Standard maintenance treatment only"),
                ),
            }
        ),
        outputs=MappingProxyType(
            {
                "lldas": N_("in LLDAS"),
                "sledai": N_("SLEDAI-2K at this visit"),
                "unmet": N_("codes of the criteria not met"),
            }
        ),
        compute=_lldas,
    ),
    Calculator(
        name="sri4",
        title=N_("SLE Responder Index 4"),
        description=N_("SLEDAI reduced by ≥ 4, no new BILAG A and ≤ 1 new BILAG B, PGA rise < 0.3."),
        source="Furie 2009, Arthritis Rheum 61:1143",
        inputs=MappingProxyType(
            {
                "baseline_sledai": IntegerInput(
                    description=N_("SLEDAI-2K at baseline"),
                    label=N_("SLEDAI-2K at baseline"),
                    minimum=0,
                    maximum=sledai2k.MAX_SCORE,
                ),
                "current_sledai": IntegerInput(
                    description=N_("SLEDAI-2K now"), label=N_("SLEDAI-2K now"), minimum=0, maximum=sledai2k.MAX_SCORE
                ),
                "new_bilag_a": IntegerInput(
                    description=N_("BILAG-2004 domains graded A now and not A at baseline"),
                    label=N_("New BILAG A domains"),
                    minimum=0,
                    maximum=sri4.BILAG_DOMAIN_COUNT,
                ),
                "new_bilag_b": IntegerInput(
                    description=N_("BILAG-2004 domains graded B now and C, D or E at baseline"),
                    label=N_("New BILAG B domains"),
                    minimum=0,
                    maximum=sri4.BILAG_DOMAIN_COUNT,
                ),
                "baseline_pga": NumberInput(
                    description=N_("PGA at baseline (0-3)"),
                    label=N_("PGA at baseline (0-3)"),
                    minimum=sri4.PGA_MIN,
                    maximum=sri4.PGA_MAX,
                ),
                "current_pga": NumberInput(
                    description=N_("PGA now (0-3)"),
                    label=N_("PGA now (0-3)"),
                    minimum=sri4.PGA_MIN,
                    maximum=sri4.PGA_MAX,
                ),
            }
        ),
        outputs=MappingProxyType({"responder": N_("SRI-4 responder"), "unmet": N_("codes of the components not met")}),
        compute=_sri4,
    ),
    Calculator(
        name="icaht",
        title=N_("ICAHT, neutrophils (EHA/EBMT 2023)"),
        description=N_(
            "Early (days 0-30) and late (days 31-100) immune effector cell-associated "
            "haematotoxicity from absolute neutrophil counts."
        ),
        source="Rejeski 2023, Blood 142:865",
        inputs=MappingProxyType(
            {
                "anc": RecordListInput(
                    description=N_("absolute neutrophil counts by day from infusion (day 0)"),
                    label=N_("Absolute neutrophil counts (ANC)"),
                    fields=MappingProxyType(
                        {
                            "day": IntegerInput(
                                description=N_("days since infusion"),
                                label=N_("Day since infusion"),
                                minimum=0,
                                maximum=icaht.ANC_DAY_MAX,
                            ),
                            "anc_per_ul": NumberInput(
                                description=N_("ANC, cells/µL"),
                                label=N_("ANC"),
                                unit=N_("cells/µL"),
                                minimum=0.0,
                                maximum=icaht.ANC_MAX_PER_UL,
                            ),
                        }
                    ),
                ),
            }
        ),
        outputs=MappingProxyType(
            {
                "early_grade": N_("early ICAHT 0-4, null if no count on days 0-30"),
                "late_grade": N_("late ICAHT 0-4, null if no count on days 31-100"),
            }
        ),
        compute=_icaht,
    ),
    Calculator(
        name="units",
        title=N_("Lab unit conversion"),
        description=N_(
            "UPCR mg/mmol ↔ g/g, creatinine µmol/L ↔ mg/dL, C3/C4/IgG mg/dL ↔ g/L, haemoglobin g/dL ↔ g/L ↔ mmol/L."
        ),
        source="clinical.md §6 (creatinine 88.4 µmol/L per mg/dL)",
        inputs=MappingProxyType(
            {
                "analyte": ChoiceInput(
                    description=N_("analyte"), label=N_("Analyte"), choices=tuple(a.value for a in units.Analyte)
                ),
                "value": NumberInput(description=N_("the value to convert"), label=N_("Value"), minimum=0.0),
                "from": ChoiceInput(description=N_("unit of the value"), label=N_("From"), choices=_ALL_UNITS),
                "to": ChoiceInput(description=N_("unit wanted"), label=N_("To"), choices=_ALL_UNITS),
            }
        ),
        outputs=MappingProxyType({"value": N_("converted value"), "unit": N_("unit of the value")}),
        compute=_units,
    ),
)

CALCULATORS: Mapping[str, Calculator] = MappingProxyType({c.name: c for c in _CALCULATOR_LIST})
CALCULATOR_NAMES: tuple[str, ...] = tuple(CALCULATORS)

# What the other output keys mean (contract keys read their calculator's `outputs` first).
RESULT_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "max_score": N_("maximum score"),
        "serology_points": N_("serology points"),
        "arthritis_rule": N_("arthritis: inflamed joints counted"),
        "explanation": N_("what counted and why"),
        "outweighed": N_("criteria not counted, outweighed in their domain"),
        "creatinine_mg_per_dl": N_("creatinine, mg/dL"),
        "reason": N_("why"),
        "grading": N_("grading"),
        "items": N_("points per task"),
        "domains": N_("grade per domain"),
        "ice_performed": N_("ICE performed"),
        "term": N_("CTCAE term"),
        "band": N_("band"),
        "ctcae_version": N_("CTCAE version"),
        "note": N_("note"),
        "unmet_reasons": N_("why each criterion is not met"),
        "prednisone_bound": N_("prednisone bound"),
        "definition": N_("definition"),
        "new_features": N_("new features since the previous assessment"),
        "sledai_reduction": N_("SLEDAI reduction"),
        "pga_change": N_("PGA change"),
        "sledai_version": N_("SLEDAI version"),
        "early": N_("early ICAHT, days 0-30"),
        "late": N_("late ICAHT, days 31-100"),
        "ignored_days": N_("days outside both windows"),
        "descriptor": N_("descriptor"),
        "weight": N_("weight"),
        "domain": N_("domain"),
        "criterion": N_("criterion"),
        "counted_instead": N_("counted instead"),
        "grade": N_("grade"),
        "finding": N_("finding"),
        "component": N_("component"),
        "orientation": N_("orientation"),
        "naming": N_("naming"),
        "command": N_("following commands"),
        "writing": N_("writing"),
        "attention": N_("attention"),
        "days_anc_le_500": N_("days with ANC ≤ 500/µL"),
        "days_anc_le_100": N_("days with ANC ≤ 100/µL"),
        "days_without_value": N_("days without a value"),
        "duration_rule": N_("duration rule"),
        "max_interpolation_gap_days": N_("longest gap interpolated, days"),
        "nadir_anc_per_ul": N_("nadir ANC, cells/µL"),
        "confirming_anc_per_ul": N_("confirming ANC, cells/µL"),
        "values_in_window": N_("counts in the window"),
        "window_days": N_("window, days"),
        "value": N_("value"),
        "unit": N_("unit"),
    }
)


def result_label(calculator: Calculator, key: str) -> str:
    """What an output key means (a msgid): the contract's wording for the calculator, else the common one."""
    return calculator.outputs.get(key) or RESULT_LABELS.get(key) or key.replace("_", " ")


def _code_table() -> dict[str, str]:
    """Label msgid → contract code, for every code a calculator's texts may name."""
    pairs = list(CLINICAL_LABELS.items())
    for calculator in _CALCULATOR_LIST:
        for spec in calculator.inputs.values():
            if isinstance(spec, ChoiceInput | ChoiceListInput):
                pairs += list(spec.choice_labels.items())
    table: dict[str, str] = {}
    for code, text in pairs:
        if table.setdefault(text, code) != code:
            raise ValueError(f"label {text!r} names two codes, {table[text]!r} and {code!r}")
    return table


_CODES: Mapping[str, str] = MappingProxyType(_code_table())


def _as_code(msgid: str) -> str:
    return _CODES.get(msgid, msgid)


def _as_json(value: object) -> object:
    """The output as the contract's JSON: messages in English, naming codes instead of labels."""
    if isinstance(value, Message):
        return value.render(_as_code)
    if isinstance(value, Mapping):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json(item) for item in value]
    return value


def get_calculator(name: str) -> Calculator:
    """The calculator of that contract name."""
    try:
        return CALCULATORS[name]
    except KeyError:
        raise UnknownCalculatorError(
            [
                (
                    "name",
                    Message(
                        "unknown calculator '{name}'; known: {known}", {"name": name, "known": list(CALCULATOR_NAMES)}
                    ),
                )
            ]
        ) from None


def calculate_readable(name: str, payload: Mapping[str, object]) -> dict[str, object]:
    """The output with its texts as messages naming labels, for a page to render in its language."""
    calculator = get_calculator(name)
    return calculator.compute(parse_input(payload, calculator.inputs))


def calculate(name: str, payload: Mapping[str, object]) -> dict[str, object]:
    """Validate `payload` against the calculator's contract, compute, return the output object (JSON)."""
    readable = calculate_readable(name, payload)
    return {key: _as_json(value) for key, value in readable.items()}


def describe(name: str) -> dict[str, object]:
    """Title, description, source, input schema and contract output keys of one calculator."""
    calculator = get_calculator(name)
    return {
        "name": calculator.name,
        "title": calculator.title,
        "description": calculator.description,
        "source": calculator.source,
        "input_schema": calculator.input_schema(),
        "outputs": dict(calculator.outputs),
    }
