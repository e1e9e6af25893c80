"""The simulation page's form: the main parameters, each with its unit and the domain's range; the page
caps months and replications (a longer run is a background job)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from cartrial.apps.simulation.jobs import JOB_MAXIMUM_REPLICATIONS
from cartrial.domain.simulation import POLICIES, SimulationParameters
from cartrial.domain.simulation.parameters import CENTER_RANGES, FACILITY_RANGES, PARAMETER_RANGES

# A background job (`simulate_network`) runs beyond the page's caps, up to the domain's months.
JOB_MAXIMUM_MONTHS = int(PARAMETER_RANGES["months"][1])

# In-process runs only: what a page answers in seconds. Longer runs go to the task queue.
PAGE_MAXIMUM_MONTHS = 24
PAGE_MAXIMUM_REPLICATIONS = 5
# Each weekly re-plan of the optimised policy is given at most this long in the request (its pools are
# small: CP-SAT proves them optimal well within it); 24 months are ~104 re-plans per replication.
PAGE_CPSAT_TIME_LIMIT_S = 1.0
POLICY_CHOICES = [
    ("both", _("Both, side by side")),
    ("greedy", _("First come, first served")),
    ("optimised", _("Optimised (CP-SAT)")),
]


def _percent(key: str) -> tuple[float, float]:
    low, high = PARAMETER_RANGES[key]
    return low * 100, high * 100


class SimulationForm(forms.Form):
    """Months, replications, seed, policy; the network's rates, the lab's lines and durations, and
    each center's arrivals per month (the protocol in force gives the other defaults)."""

    months = forms.IntegerField(label=_("Months simulated"), min_value=1, max_value=JOB_MAXIMUM_MONTHS)
    replications = forms.IntegerField(
        label=_("Replications per policy"), min_value=1, max_value=JOB_MAXIMUM_REPLICATIONS
    )
    seed = forms.IntegerField(label=_("Random seed"), min_value=0, max_value=2**31 - 1)
    policy = forms.ChoiceField(label=_("Planning policy"), choices=POLICY_CHOICES)
    screen_failure_percent = forms.FloatField(
        label=_("Screen failures (%)"),
        min_value=_percent("screen_failure_rate")[0],
        max_value=_percent("screen_failure_rate")[1],
    )
    manufacturing_failure_percent = forms.FloatField(
        label=_("Failed batches (%)"),
        min_value=_percent("manufacturing_failure_rate")[0],
        max_value=_percent("manufacturing_failure_rate")[1],
    )
    lines = forms.IntegerField(
        label=_("Manufacturing lines (per facility)"),
        min_value=int(FACILITY_RANGES["lines"][0]),
        max_value=int(FACILITY_RANGES["lines"][1]),
    )
    manufacturing_days = forms.IntegerField(
        label=_("Manufacturing (days)"),
        min_value=int(FACILITY_RANGES["manufacturing_days"][0]),
        max_value=int(FACILITY_RANGES["manufacturing_days"][1]),
    )
    qc_days = forms.IntegerField(
        label=_("Quality control (days)"),
        min_value=int(FACILITY_RANGES["qc_days"][0]),
        max_value=int(FACILITY_RANGES["qc_days"][1]),
    )

    background = forms.BooleanField(
        label=_("Run in the background (a job: beyond the page's months and replications)"), required=False
    )

    def __init__(self, *args: Any, defaults: SimulationParameters, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.defaults = defaults
        facility = defaults.facilities[0]
        self.initial.update(
            {
                "months": min(defaults.months, PAGE_MAXIMUM_MONTHS),
                "replications": 1,
                "seed": 0,
                "policy": "both",
                "screen_failure_percent": defaults.screen_failure_rate * 100,
                "manufacturing_failure_percent": defaults.manufacturing_failure_rate * 100,
                "lines": facility.lines,
                "manufacturing_days": facility.manufacturing_days,
                "qc_days": facility.qc_days,
            }
        )
        low, high = CENTER_RANGES["arrivals_per_month"]
        for center in defaults.centers:
            name = self.center_field(center.id)
            self.fields[name] = forms.FloatField(
                label=_("Arrivals at %(center)s (patients per month)") % {"center": center.id},
                min_value=low,
                max_value=high,
            )
            self.initial[name] = center.arrivals_per_month

    def clean(self) -> dict[str, Any]:
        """In the request, the page's caps; in the background, the job's."""
        data = super().clean() or {}
        if not data.get("background"):
            for name, maximum in (("months", PAGE_MAXIMUM_MONTHS), ("replications", PAGE_MAXIMUM_REPLICATIONS)):
                if data.get(name) is not None and data[name] > maximum:
                    self.add_error(
                        name,
                        _("At most %(maximum)s on the page: tick “Run in the background” for more.")
                        % {"maximum": maximum},
                    )
        return data

    @staticmethod
    def center_field(center_id: str) -> str:
        return f"arrivals_{center_id}"

    def center_fields(self) -> list[forms.BoundField]:
        return [self[self.center_field(c.id)] for c in self.defaults.centers]

    def overrides(self) -> dict[str, Any]:
        """The cleaned form as the parameters' JSON overrides (the CLI's `--params`)."""
        data = self.cleaned_data
        return {
            "months": data["months"],
            "cpsat_time_limit_s": PAGE_CPSAT_TIME_LIMIT_S,
            "screen_failure_rate": data["screen_failure_percent"] / 100,
            "manufacturing_failure_rate": data["manufacturing_failure_percent"] / 100,
            "facilities": [
                {
                    "id": f.id,
                    "lines": data["lines"],
                    "manufacturing_days": data["manufacturing_days"],
                    "qc_days": data["qc_days"],
                }
                for f in self.defaults.facilities
            ],
            "centers": [
                {"id": c.id, "arrivals_per_month": data[self.center_field(c.id)]} for c in self.defaults.centers
            ],
        }

    def policies(self) -> tuple[str, ...]:
        chosen = self.cleaned_data["policy"]
        return POLICIES if chosen == "both" else (chosen,)
