"""The numeric inputs of the trial, each declared once: its unit, its plausible range, its label.

A number typed, scanned or imported is refused when it cannot describe a patient, a bag or a
shipper (a 10⁹ mL apheresis, a viability of 150 %, a logger at 10⁹ °C): such a value is a typing
or unit error, and once stored it would feed a verdict, a release or a model. Every adapter (page,
API, CSV import, demo) reaches the same service, which calls `plausible_check` with the item's
`Quantity`; forms take their `min`/`max` attributes from the same declaration (`Quantity.bounds`).

Where the items are declared:
- here: the apheresis collection (volume, TNC, CD3+), the screening items that are numbers (ANA
  titre), the readings of a temperature data logger, and the physical limits of the release tests
  by unit (a percentage is 0–100, a count at least 0);
- `lab_catalogue.py`: the lab analytes (screening labs, safety counts, kinetic markers), whose
  range depends on the unit they are reported in (`AnalyteSpec.quantity(unit)`).

A plausible range is not a clinical or a release criterion: a creatinine of 900 µmol/L is
plausible (and fails eGFR ≥ 30), a viability of 60 % is plausible (and fails the release
specification, which is the protocol's, `products[].release_specification`). Ranges here are
physics or the widest values reported in practice; a bound that is the trial's choice lives in
the protocol file (e.g. `pathway.planning_horizon_days`, `release_specification[].plausible`).

Pure: no Django.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cartrial.domain.errors import InvalidInput
from cartrial.domain.text import N_, label


@dataclass(frozen=True)
class Quantity:
    """One numeric input item: stable code, label (a msgid), unit, and the plausible range, bounds included."""

    code: str
    label: str
    unit: str
    minimum: float
    maximum: float
    integer: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.minimum) and math.isfinite(self.maximum) and self.minimum < self.maximum):
            raise ValueError(f"{self.code}: plausible range [{self.minimum}, {self.maximum}] is empty or not finite")

    def bounds(self) -> tuple[float, float]:
        """(min, max) for a form field's attributes: the same numbers the domain refuses with."""
        return self.minimum, self.maximum

    def contains(self, value: float) -> bool:
        return self.minimum <= value <= self.maximum


def _as_typed(value: float) -> float | int:
    """A whole number is shown without a decimal point or an exponent (1000000000, not 1e+09)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return int(value)
    return value


def plausible_check(quantity: Quantity, value: float, *, item: str | None = None, name: object | None = None) -> float:
    """`value` as a float when it lies in the quantity's plausible range; otherwise InvalidInput.

    The refusal names the item (its label, or `name` when the caller has a better one, e.g. the
    protocol's label of a release test), the value and the range, with the unit:
    "Apheresis volume: 1000000000 mL is outside the plausible range 10–1000 mL."
    """
    shown = name if name is not None else label(quantity.label)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput("{name} must be a number.", code="value_not_a_number", item=item, name=shown)
    if quantity.integer and not float(value).is_integer():
        raise InvalidInput("{name} must be a whole number.", code="value_not_a_number", item=item, name=shown)
    if quantity.contains(value):
        return float(value)
    bounds = {"value": _as_typed(value), "minimum": _as_typed(quantity.minimum), "maximum": _as_typed(quantity.maximum)}
    if quantity.unit:
        raise InvalidInput(
            "{name}: {value} {unit} is outside the plausible range {minimum}–{maximum} {unit}.",
            code="value_implausible",
            item=item,
            name=shown,
            unit=quantity.unit,
            **bounds,
        )
    raise InvalidInput(
        "{name}: {value} is outside the plausible range {minimum}–{maximum}.",
        code="value_implausible",
        item=item,
        name=shown,
        **bounds,
    )


def plausible_optional(
    quantity: Quantity, value: float | None, *, item: str | None = None, name: object | None = None
) -> float | None:
    """`plausible_check` for an item that may be left empty (None stays None)."""
    return None if value is None else plausible_check(quantity, value, item=item, name=name)


# --- apheresis collection -------------------------------------------------------------------------
# A leukapheresis product bag holds tens to a few hundred mL (typically 50–400 mL for CAR-T
# starting material); below 10 mL nothing was collected, above 1 L it is not one bag.
APHERESIS_VOLUME_ML = Quantity("apheresis.volume_ml", N_("Apheresis volume"), "mL", 10, 1000)
# Total nucleated cells of one collection: typically 5–50 ×10⁹; 500 ×10⁹ would be a leukaemic count.
APHERESIS_TNC_E9 = Quantity("apheresis.tnc_e9", N_("Total nucleated cells collected"), "×10⁹", 0, 500)
# CD3+ cells are a part of the nucleated cells (typically 1–20 ×10⁹); also checked against the TNC.
APHERESIS_CD3_E9 = Quantity("apheresis.cd3_cells_e9", N_("CD3+ cells collected"), "×10⁹", 0, 200)

# --- screening items that are numbers -------------------------------------------------------------
# ANA titres are reported as 1:N; 1:10 240 is the usual last dilution, 1:100 000 far above any lab's.
ANA_TITER = Quantity("screening.ana_titer", N_("ANA titre (1:N)"), "", 0, 100_000, integer=True)

# --- data loggers ---------------------------------------------------------------------------------
# A shipper's logger reads from LN2 vapour (−196 °C, a probe's error reaching −200 °C) to a parked
# vehicle in summer (~70 °C); beyond, the probe or the file's unit is wrong, not the product.
LOGGER_TEMPERATURE_C = Quantity("logger.temperature_c", N_("Logger temperature"), "°C", -200, 70)

# --- daily CRS / ICANS assessment (domain/toxicity.py) ----------------------------------------
# The body temperature of the vital-signs form (protocol `vital_signs.temperature_c`, 30–45 °C: the
# issue's contract; a test keeps the two equal): below 30 °C or above 45 °C is a typing error.
BODY_TEMPERATURE_C = Quantity("toxicity.temperature_c", N_("Temperature"), "°C", 30, 45)
# The ICE score is 0–10 points (ASTCT 2019, domain/scores/ice.py).
ICE_SCORE_POINTS = Quantity("toxicity.ice_score", N_("ICE score"), "points", 0, 10, integer=True)

# --- release tests: physical limits by unit ------------------------------------------------------
# The release *specification* (e.g. viability ≥ 70 %) is the protocol's; these are what a result in
# the unit can be at all. A test in another unit gives its own `plausible` range in the protocol.
QC_PHYSICAL_LIMITS: Mapping[str, Quantity] = MappingProxyType(
    {
        # A fraction of cells.
        "%": Quantity("qc.percent", N_("Release test result"), "%", 0, 100),
        # Integrated vector copies per transduced cell: regulators cap products at ~5; 100 is no cell.
        "copies/cell": Quantity("qc.copies_per_cell", N_("Release test result"), "copies/cell", 0, 100),
        # Endotoxin (LAL): specifications are ≤ 5 EU/mL; diluted assays report up to a few thousand.
        "EU/mL": Quantity("qc.endotoxin_eu_per_ml", N_("Release test result"), "EU/mL", 0, 10_000),
    }
)

# Every item declared in this module, by code (the lab analytes are listed by `lab_catalogue`).
QUANTITIES: Mapping[str, Quantity] = MappingProxyType(
    {
        q.code: q
        for q in (
            APHERESIS_VOLUME_ML,
            APHERESIS_TNC_E9,
            APHERESIS_CD3_E9,
            ANA_TITER,
            LOGGER_TEMPERATURE_C,
            BODY_TEMPERATURE_C,
            ICE_SCORE_POINTS,
            *QC_PHYSICAL_LIMITS.values(),
        )
    }
)


def collection_counts_check(*, volume_ml: float, tnc_e9: float | None, cd3_cells_e9: float | None) -> None:
    """An apheresis collection's numbers: each plausible, and the CD3+ cells a part of the nucleated cells."""
    plausible_check(APHERESIS_VOLUME_ML, volume_ml, item="volume_ml")
    plausible_optional(APHERESIS_TNC_E9, tnc_e9, item="tnc_e9")
    plausible_optional(APHERESIS_CD3_E9, cd3_cells_e9, item="cd3_cells_e9")
    if tnc_e9 is not None and cd3_cells_e9 is not None and cd3_cells_e9 > tnc_e9:
        raise InvalidInput(
            "CD3+ cells collected ({cd3} ×10⁹) cannot exceed the total nucleated cells ({tnc} ×10⁹).",
            code="value_implausible",
            item="cd3_cells_e9",
            cd3=_as_typed(cd3_cells_e9),
            tnc=_as_typed(tnc_e9),
        )
