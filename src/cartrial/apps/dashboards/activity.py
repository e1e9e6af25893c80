"""A subject's disease activity per visit as the dashboards use it: the stored scores, one home.

The `sle_activity` form derives and stores SLEDAI-2K, clinical SLEDAI, DORIS, drug-free DORIS,
LLDAS and SRI-4 on save (docs/endpoints.md); the casebook's selectors read them
(`disease_activity`, `disease_activity_in_scope`). This module only picks, from what they return,
the visits the dashboards draw: nothing is computed again here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from cartrial.apps.casebook.selectors import ActivityVisit, DiseaseActivity
from cartrial.domain.dashboards import VisitActivity

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


def _assessed(visit: ActivityVisit) -> VisitActivity | None:
    """The visit as the dashboards draw it; None when it was not done or its SLEDAI-2K is not stored
    (no PGA entered: not an assessment)."""
    if visit.done_on is None or visit.sledai is None or visit.clinical_sledai is None:
        return None
    return VisitActivity(
        code=visit.code,
        done_on=visit.done_on,
        sledai=visit.sledai,
        clinical_sledai=visit.clinical_sledai,
        doris=visit.doris,
        lldas=visit.lldas,
        prednisone_mg_per_day=visit.prednisone_mg_per_day,
    )


def subject_activity(activity: DiseaseActivity | None, follow_up_codes: Collection[str]) -> SubjectActivity:
    """The screening visit and the follow-up visits (`follow_up_codes`: the protocol's visits after D0
    holding the form) assessed, from the subject's stored scores; `doris_sustained_from` is the
    casebook's."""
    if activity is None:
        return SubjectActivity(None, (), None)
    baseline = None
    follow_up = []
    for visit in activity.visits:
        row = _assessed(visit)
        if row is None:
            continue
        if visit.code == BASELINE_VISIT:
            baseline = row
        elif visit.code in follow_up_codes:
            follow_up.append(row)
    return SubjectActivity(baseline, tuple(follow_up), activity.doris_sustained_from)
