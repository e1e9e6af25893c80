"""A subject's disease activity per visit, the one place the dashboards get it from.

Until the `sle_activity` form stores its derived scores (issue 10 item 4), they are computed here
from the form's values: SLEDAI-2K by `domain/scores/sledai2k.py` and DORIS / LLDAS by
`domain/endpoints.py` (baseline: the screening visit's form). Switching to the stored scores is a
change of `subject_activity` alone: the study dashboard, the time courses and the API call nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from cartrial.domain.dashboards import VisitActivity, activity_visit
from cartrial.domain.endpoints import Baseline, assess_visits, doris_sustained_from
from cartrial.domain.errors import DomainError

# The visit whose `sle_activity` form is the baseline (SRI-4's reference, LLDAS's first "previous").
BASELINE_VISIT = "SCR"


@dataclass(frozen=True)
class SubjectActivity:
    """The baseline's activity (if assessed) and every follow-up visit assessed, in time order."""

    baseline: VisitActivity | None
    follow_up: tuple[VisitActivity, ...]
    doris_sustained_from: str | None

    @property
    def every_visit(self) -> tuple[VisitActivity, ...]:
        return ((self.baseline,) if self.baseline else ()) + self.follow_up


def subject_activity(
    forms: Mapping[str, Mapping[str, Any]], visits_done: Mapping[str, date], follow_up_codes: tuple[str, ...]
) -> SubjectActivity:
    """The activity of one subject from its `sle_activity` forms (visit code → values) at the visits
    done (code → date); `follow_up_codes` are the protocol's follow-up visits holding the form, in
    protocol order. A visit whose form lacks the PGA or the dose, or holds a value the calculators
    refuse, is not assessed."""
    baseline_input = activity_visit(BASELINE_VISIT, forms.get(BASELINE_VISIT, {}))
    baseline = Baseline(
        sledai_descriptors=baseline_input.sledai_descriptors if baseline_input else (),
        pga=baseline_input.pga if baseline_input else 0.0,
    )
    inputs = []
    for code in follow_up_codes:
        visit = activity_visit(code, forms.get(code, {}))
        if visit is not None and code in visits_done:
            inputs.append(visit)
    try:
        rows = assess_visits(baseline, inputs)
        first = (
            assess_visits(baseline, [baseline_input])[0]
            if baseline_input is not None and BASELINE_VISIT in visits_done
            else None
        )
    except DomainError:
        return SubjectActivity(None, (), None)
    follow_up = tuple(
        VisitActivity.of(row, visit, visits_done[visit.code]) for row, visit in zip(rows, inputs, strict=True)
    )
    return SubjectActivity(
        baseline=VisitActivity.of(first, baseline_input, visits_done[BASELINE_VISIT])
        if first is not None and baseline_input is not None
        else None,
        follow_up=follow_up,
        doris_sustained_from=doris_sustained_from([(row.code, row.doris) for row in follow_up]),
    )
