"""The planner page's form: the solver, its time limit (seconds), the first day and the horizon
(days) of the network's instance, or an instance file uploaded as JSON instead."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from cartrial.apps.fields import DATE_WIDGET
from cartrial.apps.planning.jobs import DEFAULT_TIME_LIMIT_S, TIME_LIMIT_RANGE_S

# The contract's horizon (instance.schema.json): 1 to 3,660 days.
HORIZON_RANGE_DAYS = (1, 3660)
# An uploaded instance larger than this is refused before it is read (2,000 patients: ~250 kB).
UPLOAD_MAXIMUM_BYTES = 5_000_000
SOLVER_CHOICES = [
    ("cpsat", _("Optimised (first come, first served, then CP-SAT)")),
    ("greedy", _("First come, first served only")),
]


class PlanForm(forms.Form):
    """What `plan_network` needs besides the instance the page builds (or the uploaded one)."""

    solver = forms.ChoiceField(label=_("Solver"), choices=SOLVER_CHOICES, initial="cpsat")
    time_limit_s = forms.FloatField(
        label=_("CP-SAT time limit (seconds)"),
        min_value=TIME_LIMIT_RANGE_S[0],
        max_value=TIME_LIMIT_RANGE_S[1],
        initial=DEFAULT_TIME_LIMIT_S,
    )
    start_date = forms.DateField(label=_("First day planned"), required=False, widget=DATE_WIDGET)
    horizon_days = forms.IntegerField(
        label=_("Horizon (days)"), min_value=HORIZON_RANGE_DAYS[0], max_value=HORIZON_RANGE_DAYS[1], required=False
    )
    instance = forms.FileField(label=_("Or an instance file (JSON, docs/planning.md)"), required=False)

    def clean_instance(self) -> dict[str, Any] | None:
        """The uploaded file as JSON (its rules are checked by the job's parameters check)."""
        upload = self.cleaned_data.get("instance")
        if not upload:
            return None
        if upload.size > UPLOAD_MAXIMUM_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(maximum)s bytes.") % {"maximum": UPLOAD_MAXIMUM_BYTES}
            )
        try:
            data = json.loads(upload.read().decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise forms.ValidationError(_("The file is not JSON (UTF-8).")) from None
        if not isinstance(data, dict):
            raise forms.ValidationError(_("The file must hold one JSON object: the instance."))
        return data
