"""Derived items of the lupus activity form: SLEDAI-2K, clinical SLEDAI, DORIS, drug-free DORIS,
LLDAS, SRI-4 and the new BILAG A/B counts, each visit's values fed to `cartrial endpoints`.

One home for every rule: this module only maps the form's items onto the endpoints contract's
`Visit` and `Baseline` and keeps what `endpoints.assess_visit` answers; the counts of new BILAG
domains are SRI-4's rule (`sri4.new_bilag_domains`). A derived value is stored only when every
input it needs was entered, otherwise it is left empty (not assessable):

- the scores need the physician global assessment (the assessment took place; no descriptor ticked
  means none present);
- DORIS and drug-free DORIS also need the prednisone dose and `maintenance_therapy_stable` (no
  immunosuppressant ticked means none taken);
- LLDAS also needs `hemolytic_anemia`, `gi_activity`, `standard_maintenance_only` and a previous
  assessment (the previous visit with this form, else the baseline): none at the baseline visit;
- SRI-4 and the new BILAG counts need the baseline visit's form with its PGA; none at the baseline
  visit itself (a visit is not a response to itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from cartrial.domain import endpoints
from cartrial.domain.scores import sri4

# The items the derivations read, by name (a form using them must hold these items).
DESCRIPTORS = "sledai2k_descriptors"
PGA = "physician_global_assessment"
PREDNISONE = "prednisone_mg_per_day"
IMMUNOSUPPRESSANTS = "immunosuppressants"
MAINTENANCE_STABLE = "maintenance_therapy_stable"
STANDARD_MAINTENANCE = "standard_maintenance_only"
HEMOLYTIC_ANEMIA = "hemolytic_anemia"
GI_ACTIVITY = "gi_activity"
# One optional choice item (codes a-e: grades A-E) per BILAG-2004 domain: `bilag_renal`, `bilag_haematological`...
BILAG_PREFIX = "bilag_"
BILAG_ITEMS: tuple[str, ...] = tuple(BILAG_PREFIX + domain for domain in sri4.BILAG_DOMAINS)

_DORIS_INPUTS = (PGA, PREDNISONE, MAINTENANCE_STABLE)
_LLDAS_INPUTS = (PGA, PREDNISONE, HEMOLYTIC_ANEMIA, GI_ACTIVITY, STANDARD_MAINTENANCE)

# Derivation name → the items of the form it reads (checked when the protocol is loaded).
ACTIVITY_DERIVATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "sledai2k": (DESCRIPTORS, PGA),
        "clinical_sledai": (DESCRIPTORS, PGA),
        "doris_2021": (DESCRIPTORS, *_DORIS_INPUTS),
        "drug_free_doris": (DESCRIPTORS, *_DORIS_INPUTS, IMMUNOSUPPRESSANTS),
        "lldas": (DESCRIPTORS, *_LLDAS_INPUTS),
        "sri4": (DESCRIPTORS, PGA),
        "new_bilag_a": BILAG_ITEMS,
        "new_bilag_b": BILAG_ITEMS,
    }
)
# Those comparing the visit with another visit of the same form (baseline or previous).
CROSS_VISIT_DERIVATIONS: frozenset[str] = frozenset({"lldas", "sri4", "new_bilag_a", "new_bilag_b"})


def _filled(values: Mapping[str, object], names: tuple[str, ...]) -> bool:
    return all(values.get(name) is not None for name in names)


def _descriptors(values: Mapping[str, object]) -> tuple[str, ...]:
    return _names(values, DESCRIPTORS)


def _number(values: Mapping[str, object], name: str) -> float:
    given = values.get(name)
    return float(given) if isinstance(given, int | float) else 0.0


def bilag_grades(values: Mapping[str, object]) -> dict[str, str]:
    """The BILAG-2004 grades entered on the form, by domain (the form's codes are the grades' letters
    in lower case)."""
    return {
        domain: str(values[item]).upper()
        for domain, item in zip(sri4.BILAG_DOMAINS, BILAG_ITEMS, strict=True)
        if values.get(item) is not None
    }


def _names(values: Mapping[str, object], name: str) -> tuple[str, ...]:
    given = values.get(name)
    return tuple(str(each) for each in given) if isinstance(given, list) else ()


def activity_derived(
    values: Mapping[str, object],
    *,
    baseline: Mapping[str, object] | None,
    previous: Mapping[str, object] | None,
) -> dict[str, object]:
    """Every activity derivation's value (None: not assessable) for one visit's form values.

    `baseline` is the form at the baseline visit (None at the baseline visit itself, or while it is
    not entered); `previous` the form at the visit before (None when there is none: the baseline
    then stands for it, as in the endpoints contract).
    """
    derived: dict[str, object] = dict.fromkeys(ACTIVITY_DERIVATIONS)
    reference = baseline if baseline is not None and baseline.get(PGA) is not None else None
    new_a = new_b = 0
    if reference is not None:
        new_a, new_b = sri4.new_bilag_domains(baseline=bilag_grades(reference), current=bilag_grades(values))
        derived["new_bilag_a"], derived["new_bilag_b"] = new_a, new_b
    if values.get(PGA) is None:
        return derived
    earlier = previous if previous is not None else baseline
    # Without a baseline the visit stands as its own reference; its SRI-4 is then not kept.
    against = reference if reference is not None else values
    visit = endpoints.Visit(
        code="",
        sledai_descriptors=_descriptors(values),
        pga=_number(values, PGA),
        prednisone_mg_per_day=_number(values, PREDNISONE),
        maintenance_therapy_stable=values.get(MAINTENANCE_STABLE) is True,
        standard_maintenance_only=values.get(STANDARD_MAINTENANCE) is True,
        hemolytic_anemia=values.get(HEMOLYTIC_ANEMIA) is True,
        gi_activity=values.get(GI_ACTIVITY) is True,
        new_bilag_a=new_a,
        new_bilag_b=new_b,
        immunosuppressants=_names(values, IMMUNOSUPPRESSANTS),
    )
    standard = endpoints.Baseline(sledai_descriptors=_descriptors(against), pga=_number(against, PGA))
    result = endpoints.assess_visit(
        visit,
        previous=_descriptors(earlier) if earlier is not None else visit.sledai_descriptors,
        baseline=standard,
        baseline_sledai=endpoints.baseline_sledai(standard),
    )
    derived["sledai2k"] = result.sledai
    derived["clinical_sledai"] = result.clinical_sledai
    if _filled(values, _DORIS_INPUTS):
        derived["doris_2021"] = result.doris
        derived["drug_free_doris"] = result.drug_free_doris
    if _filled(values, _LLDAS_INPUTS) and earlier is not None:
        derived["lldas"] = result.lldas
    if reference is not None:
        derived["sri4"] = result.sri4
    return derived
