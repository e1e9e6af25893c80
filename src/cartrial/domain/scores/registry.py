"""The stable JSON contract of every clinical calculator (calculators.md): names, keys, schemas.

The CLI (`cartrial calc NAME`), the API (`POST /api/v1/calculators/NAME`) and the web pages
all go through `calculate`, so they accept and return exactly the same JSON. Input is
validated strictly (`CalculatorInputError` lists every field at fault); the output has every
key of the contract, plus extra keys that explain what counted and why. Renaming a contract
key breaks other programs: add keys, never rename them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cartrial.domain import units
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

__all__ = [
    "CALCULATORS",
    "CALCULATOR_NAMES",
    "Calculator",
    "CalculatorInputError",
    "UnknownCalculatorError",
    "calculate",
    "describe",
    "get_calculator",
]

Output = dict[str, object]


@dataclass(frozen=True)
class Calculator:
    """One calculator of the contract: what it is, what it takes, what it returns."""

    name: str
    title: str
    description: str
    source: str
    inputs: Mapping[str, InputField]
    outputs: Mapping[str, str]
    compute: Callable[[ParsedInput], Output]

    def input_schema(self) -> dict[str, object]:
        """JSON Schema of the input object, for API documentation and form generation."""
        return {"title": self.title, "description": self.description} | object_schema(
            self.inputs
        )


def _significant(value: float) -> float:
    """Drop binary noise (61.88000000000001) from a derived value; 12 digits exceed any lab's."""
    return float(f"{value:.12g}")


# SLEDAI-2K ---------------------------------------------------------------------------------

_DESCRIPTORS_FIELD = "SLEDAI-2K descriptors present at the visit or within the lookback window"


def _sledai2k(data: ParsedInput) -> Output:
    result = sledai2k.score_sledai2k(
        descriptors=data.texts("descriptors"), lookback_days=data.integer("lookback_days")
    )
    return {
        "score": result.score,
        "clinical_score": result.clinical_score,
        "counted": [{"descriptor": c.descriptor, "weight": c.weight} for c in result.counted],
        "lookback_days": result.lookback_days,
        "max_score": sledai2k.MAX_SCORE,
        "serology_points": result.score - result.clinical_score,
        "arthritis_rule": result.arthritis_rule,
        "explanation": [
            f"{c.descriptor}: +{c.weight}" + (" (serology, not in clinical SLEDAI)" if c.serology else "")
            for c in result.counted
        ]
        or ["no descriptor present: 0"],
    }


# EULAR/ACR 2019 ----------------------------------------------------------------------------


def _eular_acr_2019(data: ParsedInput) -> Output:
    result = eular_acr_2019.classify_eular_acr_2019(
        ana_titer=data.integer("ana_titer"), criteria=data.texts("criteria")
    )
    if not result.entry_criterion_met:
        explanation = [
            f"ANA titre 1:{data.integer('ana_titer')} is below the entry criterion "
            f"(1:{eular_acr_2019.ANA_ENTRY_MIN_TITER}); the criteria are not applied"
        ]
    else:
        explanation = [f"{c.domain}: {c.criterion} +{c.weight}" for c in result.counted]
        explanation += [
            f"{o.domain}: {o.criterion} not counted, {o.counted_instead} weighs as much or more"
            for o in result.outweighed
        ]
        explanation.append(
            f"total {result.score} (≥ {eular_acr_2019.CLASSIFICATION_MIN_SCORE} needed) and "
            + ("a clinical criterion is met" if result.clinical_criterion_met else "no clinical criterion")
        )
    return {
        "entry_criterion_met": result.entry_criterion_met,
        "score": result.score,
        "clinical_criterion_met": result.clinical_criterion_met,
        "classified": result.classified,
        "counted": [
            {"domain": c.domain, "criterion": c.criterion, "weight": c.weight} for c in result.counted
        ],
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
    explanation = [f"{d.domain}: {d.finding} → grade {d.grade}" for d in result.domains]
    if not result.ice_performed:
        explanation.append("ICE not performed: graded on the other domains only")
    return {
        "grade": result.grade,
        "domains": [{"domain": d.domain, "grade": d.grade, "finding": d.finding} for d in result.domains],
        "ice_performed": result.ice_performed,
        "grading": "ASTCT 2019 (adults)",
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
        output["note"] = "anemia grade 4 (life-threatening) is a clinical judgement, not a value"
    return output


# DORIS, LLDAS, SRI-4 -----------------------------------------------------------------------


def _doris(data: ParsedInput) -> Output:
    result = remission.assess_doris_2021(
        sledai_descriptors=data.texts("sledai_descriptors"),
        pga=data.number("pga"),
        prednisone_mg_per_day=data.number("prednisone_mg_per_day"),
        maintenance_therapy_stable=data.boolean("maintenance_therapy_stable"),
    )
    bound = "≤" if remission.DORIS_PRED_INCLUSIVE else "<"
    return {
        "remission": result.remission,
        "clinical_sledai": result.clinical_sledai,
        "unmet": [u.code for u in result.unmet],
        "unmet_reasons": [{"criterion": u.code, "reason": u.reason} for u in result.unmet],
        "prednisone_bound": f"{bound} {remission.DORIS_PRED_MAX_MG:g} mg/day",
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
        explanation.append("early ICAHT not graded: no ANC value on days 0 to 30")
    elif early.days_without_value:
        explanation.append(
            f"early ICAHT graded on partial data: {len(early.days_without_value)} of the 31 days "
            "0 to 30 have no measured or interpolated ANC"
        )
    if late.grade is None:
        explanation.append(
            f"late ICAHT not graded: no ANC value on days {icaht.LATE_WINDOW_FIRST_DAY} "
            f"to {icaht.LATE_ICAHT_WINDOW_LAST_DAY}"
        )
    elif late.confirming_anc_per_ul is None:
        explanation.append("late ICAHT graded on a single ANC value (no confirming count)")
    elif late.confirming_anc_per_ul > icaht.LATE_CONFIRMATION_MAX_ANC_PER_UL:
        explanation.append("late nadir not confirmed by a second count ≤ 1500/µL: transient, grade 0")
    if result.ignored_days:
        explanation.append(
            f"counts after day {icaht.LATE_ICAHT_WINDOW_LAST_DAY} are outside both windows: "
            f"days {', '.join(str(d) for d in result.ignored_days)}"
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
    dict.fromkeys(
        [unit for analyte in units.Analyte for unit in units.units_for(analyte)]
        + ["µmol/L", "μmol/L"]
    )
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
    description="physician global assessment, SELENA 0-3 scale",
    minimum=remission.PGA_MIN,
    maximum=remission.PGA_MAX,
)
_PREDNISONE = NumberInput(
    description="prednisolone-equivalent glucocorticoid dose, mg/day",
    minimum=0.0,
    maximum=remission.PREDNISONE_MAX_PLAUSIBLE_MG_PER_DAY,
)

_CALCULATOR_LIST: tuple[Calculator, ...] = (
    Calculator(
        name="sledai2k",
        title="SLEDAI-2K",
        description="Lupus disease activity: 24 weighted descriptors, with the clinical "
        "SLEDAI that leaves out low complement and raised anti-dsDNA.",
        source="Gladman 2002, J Rheumatol 29:288; Touma 2010, Lupus 19:49 (30-day window)",
        inputs=MappingProxyType(
            {
                "descriptors": ChoiceListInput(
                    description=_DESCRIPTORS_FIELD, choices=sledai2k.DESCRIPTOR_KEYS
                ),
                "lookback_days": IntegerInput(
                    description="window the descriptors were collected over, days",
                    choices=sledai2k.LOOKBACK_DAYS_CHOICES,
                    required=False,
                    default=sledai2k.DEFAULT_LOOKBACK_DAYS,
                ),
            }
        ),
        outputs=MappingProxyType(
            {
                "score": "SLEDAI-2K, 0-105",
                "clinical_score": "clinical SLEDAI (no serology), 0-101",
                "counted": "descriptors present with their weights",
                "lookback_days": "window used, days",
            }
        ),
        compute=_sledai2k,
    ),
    Calculator(
        name="eular-acr-2019",
        title="2019 EULAR/ACR classification criteria for SLE",
        description="ANA entry criterion, then the highest-weighted criterion of each domain; "
        "classified at ≥ 10 points with at least one clinical criterion.",
        source="Aringer 2019, Ann Rheum Dis 78:1151 / Arthritis Rheumatol 71:1400",
        inputs=MappingProxyType(
            {
                "ana_titer": IntegerInput(
                    description="denominator of the highest ANA titre ever on HEp-2 "
                    "(80 for 1:80, 0 if negative)",
                    minimum=0,
                    maximum=eular_acr_2019.ANA_TITER_MAX,
                ),
                "criteria": ChoiceListInput(
                    description="criteria that occurred at least once, with no more likely "
                    "explanation than SLE",
                    choices=eular_acr_2019.CRITERION_KEYS,
                ),
            }
        ),
        outputs=MappingProxyType(
            {
                "entry_criterion_met": "ANA ≥ 1:80",
                "score": "total of the counted criteria, 0-51 (0 without the entry criterion)",
                "clinical_criterion_met": "at least one clinical criterion counted",
                "classified": "classified as SLE",
                "counted": "one criterion per domain with its weight",
            }
        ),
        compute=_eular_acr_2019,
    ),
    Calculator(
        name="egfr",
        title="eGFR, CKD-EPI 2021 (race-free, creatinine)",
        description="Estimated glomerular filtration rate of an adult from serum creatinine, "
        "age and sex.",
        source="Inker 2021, N Engl J Med 385:1737",
        inputs=MappingProxyType(
            {
                "creatinine": NumberInput(
                    description="IDMS-standardised serum creatinine", minimum=0.0, exclusive_minimum=True
                ),
                "creatinine_unit": ChoiceInput(
                    description="unit of the creatinine value", choices=("mg/dL", "umol/L")
                ),
                "age_years": NumberInput(
                    description="age, years (adults)",
                    minimum=egfr.MIN_AGE_YEARS,
                    maximum=egfr.MAX_AGE_YEARS,
                ),
                "sex": ChoiceInput(description="sex", choices=tuple(s.value for s in egfr.Sex)),
            }
        ),
        outputs=MappingProxyType(
            {
                "egfr": "eGFR rounded to 2 decimals",
                "unit": "mL/min/1.73m2",
                "equation": "CKD-EPI 2021",
            }
        ),
        compute=_egfr,
    ),
    Calculator(
        name="crs",
        title="Cytokine release syndrome grade (ASTCT 2019)",
        description="Grade = the more severe of hypotension and hypoxia, given fever (or "
        "after antipyretic or anti-cytokine treatment); grade 5 = death from CRS.",
        source="Lee 2019, Biol Blood Marrow Transplant 25:625",
        inputs=MappingProxyType(
            {
                "fever": BooleanInput(
                    description="temperature ≥ 38.0 °C not attributable to another cause"
                ),
                "antipyretic_or_anticytokine_given": BooleanInput(
                    description="antipyretic or anti-cytokine treatment (tocilizumab, "
                    "corticosteroids) given for CRS"
                ),
                "hypotension": ChoiceInput(
                    description="hypotension and vasopressor need (vasopressin not counted)",
                    choices=tuple(h.value for h in crs.Hypotension),
                ),
                "hypoxia": ChoiceInput(
                    description="oxygen support: low_flow ≤ 6 L/min or blow-by; high_flow "
                    "> 6 L/min, facemask, non-rebreather or Venturi",
                    choices=tuple(h.value for h in crs.Hypoxia),
                ),
                "death_from_crs": BooleanInput(description="death attributed to CRS"),
            }
        ),
        outputs=MappingProxyType({"grade": "CRS grade 0-5 (0 = no CRS)"}),
        compute=_crs,
    ),
    Calculator(
        name="ice",
        title="ICE score",
        description="Immune effector cell-associated encephalopathy score, 0-10 (10 = normal).",
        source="Lee 2019, Biol Blood Marrow Transplant 25:625",
        inputs=MappingProxyType(
            {
                "orientation": IntegerInput(
                    description="year, month, city, hospital: 1 point each",
                    minimum=0,
                    maximum=ice.ITEM_MAX_POINTS["orientation"],
                ),
                "naming": IntegerInput(
                    description="naming 3 objects: 1 point each",
                    minimum=0,
                    maximum=ice.ITEM_MAX_POINTS["naming"],
                ),
                "command": IntegerInput(
                    description="follows a simple command", minimum=0, maximum=1
                ),
                "writing": IntegerInput(
                    description="writes a standard sentence", minimum=0, maximum=1
                ),
                "attention": IntegerInput(
                    description="counts backwards from 100 by ten", minimum=0, maximum=1
                ),
            }
        ),
        outputs=MappingProxyType({"score": "ICE score 0-10"}),
        compute=_ice,
    ),
    Calculator(
        name="icans",
        title="ICANS grade, adults (ASTCT 2019)",
        description="Neurotoxicity grade = the most severe of ICE score, consciousness, "
        "seizure, motor weakness and cerebral oedema.",
        source="Lee 2019, Biol Blood Marrow Transplant 25:625",
        inputs=MappingProxyType(
            {
                "ice_score": IntegerInput(
                    description="ICE score 0-10, null if it cannot be performed",
                    minimum=0,
                    maximum=ice.MAX_SCORE,
                    nullable=True,
                ),
                "consciousness": ChoiceInput(
                    description="depressed level of consciousness not due to another cause",
                    choices=tuple(c.value for c in icans.Consciousness),
                ),
                "seizure": ChoiceInput(
                    description="clinical or EEG seizure",
                    choices=tuple(s.value for s in icans.Seizure),
                ),
                "motor_weakness": ChoiceInput(
                    description="deep focal motor weakness",
                    choices=tuple(m.value for m in icans.MotorWeakness),
                ),
                "cerebral_edema": ChoiceInput(
                    description="raised intracranial pressure / cerebral oedema",
                    choices=tuple(e.value for e in icans.CerebralEdema),
                ),
            }
        ),
        outputs=MappingProxyType({"grade": "ICANS grade 0-4 (0 = no ICANS)"}),
        compute=_icans,
    ),
    Calculator(
        name="ctcae-lab",
        title="CTCAE v5.0 decreased blood counts",
        description="Grade of a decreased neutrophil, platelet, white-cell or lymphocyte "
        "count, or of anemia, from the value and the lab's lower limit of normal.",
        source="NCI CTCAE v5.0, 27 Nov 2017",
        inputs=MappingProxyType(
            {
                "term": ChoiceInput(
                    description="CTCAE term", choices=tuple(t.value for t in ctcae.CtcaeLabTerm)
                ),
                "value": NumberInput(description="the measured value", minimum=0.0),
                "unit": ChoiceInput(
                    description="10^9/L for counts; g/dL, g/L or mmol/L for haemoglobin",
                    choices=(ctcae.COUNT_UNIT, *ctcae.ANEMIA_BOUNDS_BY_UNIT),
                ),
                "lln": NumberInput(
                    description="the lab's lower limit of normal, same unit",
                    minimum=0.0,
                    exclusive_minimum=True,
                ),
            }
        ),
        outputs=MappingProxyType({"grade": "CTCAE grade 0-4 (0 = not below LLN)"}),
        compute=_ctcae_lab,
    ),
    Calculator(
        name="doris",
        title="DORIS 2021 remission",
        description="Clinical SLEDAI 0, PGA < 0.5, prednisolone ≤ 5 mg/day and stable "
        "maintenance therapy, at one visit.",
        source="van Vollenhoven 2021, Lupus Sci Med 8:e000538",
        inputs=MappingProxyType(
            {
                "sledai_descriptors": ChoiceListInput(
                    description=_DESCRIPTORS_FIELD, choices=sledai2k.DESCRIPTOR_KEYS
                ),
                "pga": _PGA,
                "prednisone_mg_per_day": _PREDNISONE,
                "maintenance_therapy_stable": BooleanInput(
                    description="antimalarials, immunosuppressives and biologics at stable doses"
                ),
            }
        ),
        outputs=MappingProxyType(
            {
                "remission": "DORIS 2021 remission",
                "clinical_sledai": "clinical SLEDAI",
                "unmet": "codes of the criteria not met",
            }
        ),
        compute=_doris,
    ),
    Calculator(
        name="lldas",
        title="Lupus Low Disease Activity State (Franklyn 2016)",
        description="SLEDAI-2K ≤ 4 without major organ activity, no new features since the "
        "previous assessment, PGA ≤ 1, prednisolone ≤ 7.5 mg/day, standard maintenance only.",
        source="Franklyn 2016, Ann Rheum Dis 75:1615",
        inputs=MappingProxyType(
            {
                "sledai_descriptors": ChoiceListInput(
                    description=_DESCRIPTORS_FIELD, choices=sledai2k.DESCRIPTOR_KEYS
                ),
                "previous_sledai_descriptors": ChoiceListInput(
                    description="SLEDAI-2K descriptors at the previous assessment",
                    choices=sledai2k.DESCRIPTOR_KEYS,
                ),
                "hemolytic_anemia": BooleanInput(description="haemolytic anaemia present"),
                "gi_activity": BooleanInput(description="gastrointestinal lupus activity"),
                "pga": _PGA,
                "prednisone_mg_per_day": _PREDNISONE,
                "standard_maintenance_only": BooleanInput(
                    description="well-tolerated standard maintenance doses of immunosuppressives "
                    "and approved biologics only"
                ),
            }
        ),
        outputs=MappingProxyType(
            {
                "lldas": "in LLDAS",
                "sledai": "SLEDAI-2K at this visit",
                "unmet": "codes of the criteria not met",
            }
        ),
        compute=_lldas,
    ),
    Calculator(
        name="sri4",
        title="SLE Responder Index 4",
        description="SLEDAI reduced by ≥ 4, no new BILAG A and ≤ 1 new BILAG B, PGA rise < 0.3.",
        source="Furie 2009, Arthritis Rheum 61:1143",
        inputs=MappingProxyType(
            {
                "baseline_sledai": IntegerInput(
                    description="SLEDAI-2K at baseline", minimum=0, maximum=sledai2k.MAX_SCORE
                ),
                "current_sledai": IntegerInput(
                    description="SLEDAI-2K now", minimum=0, maximum=sledai2k.MAX_SCORE
                ),
                "new_bilag_a": IntegerInput(
                    description="BILAG-2004 domains graded A now and not A at baseline",
                    minimum=0,
                    maximum=sri4.BILAG_DOMAIN_COUNT,
                ),
                "new_bilag_b": IntegerInput(
                    description="BILAG-2004 domains graded B now and C, D or E at baseline",
                    minimum=0,
                    maximum=sri4.BILAG_DOMAIN_COUNT,
                ),
                "baseline_pga": NumberInput(
                    description="PGA at baseline (0-3)", minimum=sri4.PGA_MIN, maximum=sri4.PGA_MAX
                ),
                "current_pga": NumberInput(
                    description="PGA now (0-3)", minimum=sri4.PGA_MIN, maximum=sri4.PGA_MAX
                ),
            }
        ),
        outputs=MappingProxyType(
            {"responder": "SRI-4 responder", "unmet": "codes of the components not met"}
        ),
        compute=_sri4,
    ),
    Calculator(
        name="icaht",
        title="ICAHT, neutrophils (EHA/EBMT 2023)",
        description="Early (days 0-30) and late (days 31-100) immune effector cell-associated "
        "haematotoxicity from absolute neutrophil counts.",
        source="Rejeski 2023, Blood 142:865",
        inputs=MappingProxyType(
            {
                "anc": RecordListInput(
                    description="absolute neutrophil counts by day from infusion (day 0)",
                    fields=MappingProxyType(
                        {
                            "day": IntegerInput(
                                description="days since infusion", minimum=0, maximum=icaht.ANC_DAY_MAX
                            ),
                            "anc_per_ul": NumberInput(
                                description="ANC, cells/µL",
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
                "early_grade": "early ICAHT 0-4, null if no count on days 0-30",
                "late_grade": "late ICAHT 0-4, null if no count on days 31-100",
            }
        ),
        compute=_icaht,
    ),
    Calculator(
        name="units",
        title="Lab unit conversion",
        description="UPCR mg/mmol ↔ g/g, creatinine µmol/L ↔ mg/dL, C3/C4/IgG mg/dL ↔ g/L, "
        "haemoglobin g/dL ↔ g/L ↔ mmol/L.",
        source="clinical.md §6 (creatinine 88.4 µmol/L per mg/dL)",
        inputs=MappingProxyType(
            {
                "analyte": ChoiceInput(
                    description="analyte", choices=tuple(a.value for a in units.Analyte)
                ),
                "value": NumberInput(description="the value to convert", minimum=0.0),
                "from": ChoiceInput(description="unit of the value", choices=_ALL_UNITS),
                "to": ChoiceInput(description="unit wanted", choices=_ALL_UNITS),
            }
        ),
        outputs=MappingProxyType({"value": "converted value", "unit": "unit of the value"}),
        compute=_units,
    ),
)

CALCULATORS: Mapping[str, Calculator] = MappingProxyType({c.name: c for c in _CALCULATOR_LIST})
CALCULATOR_NAMES: tuple[str, ...] = tuple(CALCULATORS)


def get_calculator(name: str) -> Calculator:
    """The calculator of that contract name."""
    try:
        return CALCULATORS[name]
    except KeyError:
        raise UnknownCalculatorError(
            [("name", f"unknown calculator {name!r}; known: {', '.join(CALCULATOR_NAMES)}")]
        ) from None


def calculate(name: str, payload: Mapping[str, object]) -> dict[str, object]:
    """Validate `payload` against the calculator's contract, compute, return the output object."""
    calculator = get_calculator(name)
    return calculator.compute(parse_input(payload, calculator.inputs))


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
