"""Flags and results as an investigator reads them, in French or English.

The domain words each flag in English (`Flag.message`); the pages re-word it from the flag's
code, state and evidence through gettext, so the French page says the same thing with the same
numbers. A message the presenter does not know (a new domain variant) is shown as the domain
wrote it rather than hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from cartrial.domain.kinetics import Flag
from cartrial.domain.kinetics.published import B_CELL_REAPPEARANCE_CELLS_PER_UL, IGG_HALF_LIFE_UPPER_DAYS
from cartrial.domain.text import N_
from cartrial.locale import render

FLAG_TITLES = {
    "car_t_peak_below_band": gettext_lazy("CAR-T peak below the band"),
    "no_b_cell_depletion_by_day_14": gettext_lazy("No B-cell depletion by D14"),
    "early_b_cell_return": gettext_lazy("B-cell return far earlier than expected"),
    "anti_dsdna_slow_decline": gettext_lazy("Anti-dsDNA falling slower than an IgG half-life allows"),
    "anti_dsdna_rise_after_b_cell_return": gettext_lazy("Anti-dsDNA rising after B-cell return"),
}

MARKER_TITLES = {
    "car_t": N_("CAR-T cells"),
    "b_cells": N_("CD19+ B cells"),
    "anti_dsdna": N_("Anti-dsDNA"),
}

NOT_USED_REASONS = {
    "before_infusion": gettext_lazy("before the infusion: not used by the model"),
    "other_unit": gettext_lazy("in a unit the model does not use"),
    "not_infused": gettext_lazy("no infusion date"),
    "zero_without_loq": gettext_lazy("0 without the assay's limit of quantification: not used by the model"),
    "implausible": gettext_lazy("outside the plausible range: not used by the model"),
}


def number(value: float | None, digits: int = 3) -> str:
    """A short number in the active language's decimal separator."""
    if value is None:
        return "—"
    text = f"{value:.{digits}g}"
    if "e" in text:
        text = f"{value:.2e}"
    return text.replace(".", ",") if (get_language() or "fr").startswith("fr") else text


def _evidence(flag: Flag, key: str) -> float | None:
    value = flag.evidence.get(key)
    return None if value is None else float(value)


def _cannot_tell(flag: Flag) -> str:
    known = {
        "No CAR-T measurement between day 0 and day 28.": _("No CAR-T measurement between D0 and D28."),
        "CAR-T was below the assay limit, which is above the expected 5 % level.": _(
            "CAR-T was below the assay's limit of quantification, which is above the 5th percentile of the population."
        ),
        "No B-cell count between day 7 and day 14.": _("No B-cell count between D7 and D14."),
        "Needs an anti-dsDNA value by day 7 and another between day 28 and 180.": _(
            "Needs an anti-dsDNA value by D7 and another between D28 and D180."
        ),
        "B cells have not come back yet; nothing to compare.": _("B cells have not come back yet; nothing to compare."),
        "Needs anti-dsDNA values both before and after B-cell return.": _(
            "Needs anti-dsDNA values both before and after B-cell return."
        ),
    }
    if flag.message.msgid in known:
        return known[flag.message.msgid]
    if flag.code == "no_b_cell_depletion_by_day_14":
        return _("B cells below a limit of quantification above %(threshold)s cells/µL; depth unknown.") % {
            "threshold": number(B_CELL_REAPPEARANCE_CELLS_PER_UL)
        }
    return render(flag.message, (get_language() or "fr")[:2])


def flag_message(flag: Flag) -> str:
    """The flag's message in the active language, with its evidence."""
    code, raised = flag.code, flag.raised
    if raised is None:
        return _cannot_tell(flag)
    day = _evidence(flag, "day")
    if code == "car_t_peak_below_band" and day is not None:
        ratio = number(_evidence(flag, "value_over_lower_band"), 2)
        if raised:
            return _(
                "Every CAR-T value up to D28 is below the population's 5 %% band (highest: D%(day)s, "
                "%(ratio)s × the band's lower edge): poor expansion."
            ) % {"day": number(day), "ratio": ratio}
        return _("CAR-T expanded into the expected range (D%(day)s: %(ratio)s × the band's 5 %% edge).") % {
            "day": number(day),
            "ratio": ratio,
        }
    if code == "no_b_cell_depletion_by_day_14":
        threshold = number(B_CELL_REAPPEARANCE_CELLS_PER_UL)
        if raised:
            return _(
                "B cells still at %(lowest)s cells/µL or more between D7 and D14 (depletion means < %(threshold)s "
                "cells/µL)."
            ) % {"lowest": number(_evidence(flag, "lowest_cells_per_ul")), "threshold": threshold}
        if day is not None:
            return _("B cells depleted by D%(day)s (< %(threshold)s cells/µL).") % {
                "day": number(day),
                "threshold": threshold,
            }
    if code == "early_b_cell_return":
        back = _evidence(flag, "reappearance_day")
        earliest = _evidence(flag, "expected_5th_percentile_day")
        if back is None:
            return _("B cells have not been seen coming back after depletion.")
        if raised:
            return _(
                "B cells back by D%(day)s, before 95 %% of comparable patients (5th percentile: D%(earliest)s): "
                "CAR-T persistence may be short."
            ) % {"day": number(back), "earliest": number(earliest)}
        return _("B cells back on D%(day)s, within the expected range (5th percentile: D%(earliest)s).") % {
            "day": number(back),
            "earliest": number(earliest),
        }
    if code == "anti_dsdna_slow_decline":
        if raised and day is not None:
            fraction = _evidence(flag, "fraction_of_baseline") or 0.0
            return _(
                "Anti-dsDNA at D%(day)s is %(percent)s %% of its first value, %(excess)s × the most IgG clearance "
                "(half-life ≤ %(half_life)s days) allows: antibody production continues."
            ) % {
                "day": number(day),
                "percent": number(100 * fraction, 2),
                "excess": number(_evidence(flag, "excess_over_allowed"), 2),
                "half_life": number(IGG_HALF_LIFE_UPPER_DAYS),
            }
        if not raised:
            return _("Anti-dsDNA falls as fast as IgG clearance allows.")
    if code == "anti_dsdna_rise_after_b_cell_return":
        returned = _evidence(flag, "b_cell_return_day")
        nadir = _evidence(flag, "nadir_before")
        highest = _evidence(flag, "highest_after")
        if raised and nadir:
            return _(
                "Anti-dsDNA rose %(fold)s-fold after B cells returned on D%(day)s (from %(nadir)s to %(highest)s "
                "IU/mL): possible relapse."
            ) % {
                "fold": number((highest or 0.0) / nadir, 2),
                "day": number(returned),
                "nadir": number(nadir),
                "highest": number(highest),
            }
        if not raised:
            return _("No anti-dsDNA rebound after B-cell return on D%(day)s.") % {"day": number(returned)}
    return render(flag.message, (get_language() or "fr")[:2])


@dataclass(frozen=True)
class FlagView:
    code: str
    title: str
    state: str  # raised | clear | unknown
    state_label: str
    message: str
    evidence: dict[str, float]


def flag_views(flags: tuple[Flag, ...] | list[Flag]) -> list[FlagView]:
    """Flags ready for a template, in the domain's stable order (the issue's order)."""
    labels = {"raised": _("Raised"), "clear": _("Not raised"), "unknown": _("Cannot tell")}
    views = []
    for flag in flags:
        state = "unknown" if flag.raised is None else ("raised" if flag.raised else "clear")
        views.append(
            FlagView(
                code=flag.code,
                title=str(FLAG_TITLES.get(flag.code, flag.code)),
                state=state,
                state_label=labels[state],
                message=flag_message(flag),
                evidence=dict(flag.evidence),
            )
        )
    return views
