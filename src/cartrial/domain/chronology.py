"""The order of a subject's dates along the pathway, and nothing that happened in the future.

A patient is born, signs the consent, is screened and included; the apheresis is planned and
collected; the material travels to the lab and is received there; the product is made, released,
shipped and received at the pharmacy; lymphodepletion starts, the product is thawed and infused
(D0); a death comes after birth and not before the consent. A date typed out of that order (a
consent before the birth date, an infusion years before the inclusion) is a typing error that
would silently move every window computed from it (a back-dated D0 opens follow-up at once), so it
is refused, naming both dates and the rule.

The milestones are dates (`date`: birth, consent, planned apheresis, D0, death...) or instants
(aware `datetime`: a collection's end, a receipt, a thaw...). A date and an instant are compared
on the center's calendar (`zone`); two instants exactly. A milestone that *happened* may not lie
beyond now (the clock's tolerance for a scanner a little ahead: `shipping.CLOCK_TOLERANCE`); a
*planned* one (apheresis planned, planned D0) may be in the future, up to the protocol's planning
horizon, but never before what must precede it.

Two uses, one function, `chronology_check`:
- a step or an action brings new milestones (`entered`): each is checked against what precedes it
  (and within the step, against each other). What follows it is not looked at, because a repeat
  apheresis starts a new cycle whose later milestones do not exist yet.
- a correction proposes a whole candidate set (`entered=None`): every pair must be in order.

Pure: no Django.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import cache

from cartrial.domain.errors import InvalidInput
from cartrial.domain.shipping import CLOCK_TOLERANCE
from cartrial.domain.text import N_, label

Moment = date | datetime


class Milestone(StrEnum):
    """A dated point of a subject's pathway; values are stable codes (API, audit, corrections)."""

    BIRTH = "birth"
    CONSENT = "consent"
    RECONSENT = "reconsent"
    SCREENING_STARTED = "screening_started"
    LAB_SAMPLE = "lab_sample"
    INCLUDED = "included"
    APHERESIS_PLANNED = "apheresis_planned"
    COLLECTION_STARTED = "collection_started"
    COLLECTION_ENDED = "collection_ended"
    MATERIAL_SHIPPED = "material_shipped"
    MATERIAL_RECEIVED = "material_received"
    MANUFACTURING_STARTED = "manufacturing_started"
    RELEASED = "released"
    PRODUCT_SHIPPED = "product_shipped"
    PRODUCT_RECEIVED = "product_received"
    LYMPHODEPLETION_STARTED = "lymphodepletion_started"
    INFUSION_PLANNED = "infusion_planned"
    THAWED = "thawed"
    INFUSED = "infused"
    KINETIC_SAMPLE = "kinetic_sample"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    DEATH = "death"


MILESTONE_LABELS: Mapping[Milestone, str] = {
    Milestone.BIRTH: N_("the birth date"),
    Milestone.CONSENT: N_("the consent signature"),
    Milestone.RECONSENT: N_("the re-consent signature"),
    Milestone.SCREENING_STARTED: N_("the start of screening"),
    Milestone.LAB_SAMPLE: N_("the lab sample"),
    Milestone.INCLUDED: N_("the inclusion"),
    Milestone.APHERESIS_PLANNED: N_("the planned apheresis"),
    Milestone.COLLECTION_STARTED: N_("the start of the apheresis collection"),
    Milestone.COLLECTION_ENDED: N_("the end of the apheresis collection"),
    Milestone.MATERIAL_SHIPPED: N_("the departure of the apheresis material"),
    Milestone.MATERIAL_RECEIVED: N_("the receipt of the material at the lab"),
    Milestone.MANUFACTURING_STARTED: N_("the start of manufacturing"),
    Milestone.RELEASED: N_("the release of the product"),
    Milestone.PRODUCT_SHIPPED: N_("the departure of the product"),
    Milestone.PRODUCT_RECEIVED: N_("the receipt of the product at the pharmacy"),
    Milestone.LYMPHODEPLETION_STARTED: N_("the start of lymphodepletion"),
    Milestone.INFUSION_PLANNED: N_("the planned infusion (D0)"),
    Milestone.THAWED: N_("the thaw of the product"),
    Milestone.INFUSED: N_("the infusion (D0)"),
    Milestone.KINETIC_SAMPLE: N_("the kinetic sample"),
    Milestone.CONSENT_WITHDRAWN: N_("the withdrawal of consent"),
    Milestone.DEATH: N_("the death"),
}

# Planned dates may be in the future (up to the protocol's planning horizon); the others happened.
PLANNED: frozenset[Milestone] = frozenset({Milestone.APHERESIS_PLANNED, Milestone.INFUSION_PLANNED})


@dataclass(frozen=True)
class OrderRule:
    """`earlier` comes no later than `later` (strictly before when `strict`: one is born before signing).

    `implied`: `later` cannot exist without `earlier` (no infusion without a thaw). Only through such
    rules does the order carry over a milestone not recorded: an infusion follows the inclusion even
    when no collection is recorded, but a death follows a release only if the patient was infused.
    """

    earlier: Milestone
    later: Milestone
    strict: bool = False
    implied: bool = True


_M = Milestone
# The pathway's order, edge by edge; what a milestone must follow is the closure of these edges.
# Lymphodepletion may start while the product is still in transit with a confirmed arrival before
# D0 (the guard `product_arrival_confirmed_before_d0`), so its receipt precedes the thaw, not the
# start of lymphodepletion. A death follows every milestone the patient took part in, not what the
# lab or the courier did afterwards (a product may be released after the patient died).
ORDER: tuple[OrderRule, ...] = (
    OrderRule(_M.BIRTH, _M.CONSENT, strict=True),
    OrderRule(_M.BIRTH, _M.LAB_SAMPLE),
    OrderRule(_M.BIRTH, _M.KINETIC_SAMPLE),
    OrderRule(_M.BIRTH, _M.DEATH, strict=True),
    OrderRule(_M.CONSENT, _M.RECONSENT),
    OrderRule(_M.CONSENT, _M.SCREENING_STARTED),
    OrderRule(_M.CONSENT, _M.CONSENT_WITHDRAWN),
    OrderRule(_M.CONSENT, _M.DEATH, implied=False),
    OrderRule(_M.SCREENING_STARTED, _M.INCLUDED),
    OrderRule(_M.INCLUDED, _M.APHERESIS_PLANNED),
    OrderRule(_M.INCLUDED, _M.COLLECTION_STARTED),
    OrderRule(_M.COLLECTION_STARTED, _M.COLLECTION_ENDED),
    OrderRule(_M.COLLECTION_ENDED, _M.MATERIAL_SHIPPED),
    OrderRule(_M.MATERIAL_SHIPPED, _M.MATERIAL_RECEIVED),
    OrderRule(_M.MATERIAL_RECEIVED, _M.MANUFACTURING_STARTED),
    OrderRule(_M.MANUFACTURING_STARTED, _M.RELEASED),
    OrderRule(_M.RELEASED, _M.PRODUCT_SHIPPED),
    OrderRule(_M.PRODUCT_SHIPPED, _M.PRODUCT_RECEIVED),
    OrderRule(_M.PRODUCT_SHIPPED, _M.LYMPHODEPLETION_STARTED),
    OrderRule(_M.PRODUCT_SHIPPED, _M.INFUSION_PLANNED),
    OrderRule(_M.LYMPHODEPLETION_STARTED, _M.INFUSION_PLANNED),
    OrderRule(_M.PRODUCT_RECEIVED, _M.THAWED),
    OrderRule(_M.LYMPHODEPLETION_STARTED, _M.THAWED),
    OrderRule(_M.THAWED, _M.INFUSED),
    OrderRule(_M.COLLECTION_ENDED, _M.DEATH, implied=False),
    OrderRule(_M.LYMPHODEPLETION_STARTED, _M.DEATH, implied=False),
    OrderRule(_M.INFUSED, _M.DEATH, implied=False),
    OrderRule(_M.INFUSED, _M.KINETIC_SAMPLE),
)


@cache
def _closure() -> dict[tuple[Milestone, Milestone], bool]:
    """(earlier, later) → strict, for every pair ORDER orders: by a rule, or through milestones that
    `later` implies (a path whose rules after the first are all `implied`)."""
    pairs: dict[tuple[Milestone, Milestone], bool] = {(r.earlier, r.later): r.strict for r in ORDER}
    implied = [r for r in ORDER if r.implied]
    changed = True
    while changed:
        changed = False
        for (a, b), strict_ab in list(pairs.items()):
            for rule in implied:
                if rule.earlier is b:
                    strict = strict_ab or rule.strict
                    if (a, rule.later) not in pairs or (strict and not pairs[(a, rule.later)]):
                        pairs[(a, rule.later)] = strict
                        changed = True
    return pairs


def must_precede(milestone: Milestone) -> list[Milestone]:
    """Every milestone that comes before `milestone` in the pathway (directly or through others)."""
    return [earlier for (earlier, later) in _closure() if later is milestone]


def _compared(first: Moment, second: Moment, zone: tzinfo) -> tuple[Moment, Moment]:
    """Two instants as they are; otherwise both as calendar dates of the center."""
    if isinstance(first, datetime) and isinstance(second, datetime):
        return first, second
    return _day(first, zone), _day(second, zone)


def _day(moment: Moment, zone: tzinfo) -> date:
    return moment.astimezone(zone).date() if isinstance(moment, datetime) else moment


def _shown(moment: Moment, zone: tzinfo) -> date | datetime:
    """As a refusal shows it: a date, or the center's wall-clock time of an instant."""
    return moment.astimezone(zone).replace(tzinfo=None) if isinstance(moment, datetime) else moment


def _out_of_order(
    earlier: Milestone, earlier_at: Moment, later: Milestone, later_at: Moment, strict: bool, zone: tzinfo
) -> bool:
    first, second = _compared(earlier_at, later_at, zone)
    return bool(first >= second) if strict else bool(first > second)


def _refusal(
    earlier: Milestone,
    earlier_at: Moment,
    later: Milestone,
    later_at: Moment,
    strict: bool,
    zone: tzinfo,
    item: str | None,
) -> InvalidInput:
    params = {
        "earlier": label(MILESTONE_LABELS[earlier]),
        "earlier_at": _shown(earlier_at, zone),
        "later": label(MILESTONE_LABELS[later]),
        "later_at": _shown(later_at, zone),
    }
    if strict:
        return InvalidInput(
            "Dates out of order: {later} ({later_at}) is not after {earlier} ({earlier_at}), which must come first.",
            code="dates_out_of_order",
            item=item,
            **params,
        )
    return InvalidInput(
        "Dates out of order: {later} ({later_at}) is before {earlier} ({earlier_at}), which must come first.",
        code="dates_out_of_order",
        item=item,
        **params,
    )


def _future_check(
    milestone: Milestone,
    moment: Moment,
    *,
    now: datetime,
    zone: tzinfo,
    planning_horizon_days: int | None,
    item: str | None,
) -> None:
    today = now.astimezone(zone).date()
    if milestone in PLANNED:
        if planning_horizon_days is not None and _day(moment, zone) > today + timedelta(days=planning_horizon_days):
            raise InvalidInput(
                "Date too far ahead: {milestone} ({at}) is more than {days} days from today; is the year right?",
                code="date_too_far_ahead",
                item=item,
                milestone=label(MILESTONE_LABELS[milestone]),
                at=_shown(moment, zone),
                days=planning_horizon_days,
            )
        return
    ahead = moment > now + CLOCK_TOLERANCE if isinstance(moment, datetime) else moment > today
    if ahead:
        raise InvalidInput(
            "Date in the future: {milestone} ({at}).",
            code="date_in_future",
            item=item,
            milestone=label(MILESTONE_LABELS[milestone]),
            at=_shown(moment, zone),
        )


def chronology_check(
    dates: Mapping[Milestone, Moment],
    *,
    now: datetime,
    zone: tzinfo,
    entered: Iterable[Milestone] | None = None,
    items: Mapping[Milestone, str] | None = None,
    planning_horizon_days: int | None = None,
) -> None:
    """Refuse a date out of the pathway's order, or one that happened in the future (InvalidInput).

    `dates`: the subject's known milestones with the new or corrected ones in place. `entered`: the
    milestones a step brings, each checked against every known milestone that must precede it;
    None checks every pair of `dates` (a correction's candidate set). `items` names the input item of
    each entered milestone, so a form puts the refusal on its field. `now` is the action's time;
    `zone` the center's, for calendar dates. The first refusal found is raised: not in the future
    first, then the order: the earliest milestone out of
    order, against the nearest milestone it should follow.
    """
    names = items or {}
    checked: Collection[Milestone] = list(dates) if entered is None else [m for m in entered if m in dates]
    for milestone in checked:
        _future_check(
            milestone,
            dates[milestone],
            now=now,
            zone=zone,
            planning_horizon_days=planning_horizon_days,
            item=names.get(milestone),
        )
    closure = _closure()
    rank = {milestone: index for index, milestone in enumerate(Milestone)}
    for (earlier, later), strict in sorted(closure.items(), key=lambda pair: (rank[pair[0][1]], -rank[pair[0][0]])):
        if earlier not in dates or later not in dates:
            continue
        if entered is not None and later not in checked:
            continue
        if _out_of_order(earlier, dates[earlier], later, dates[later], strict, zone):
            raise _refusal(
                earlier, dates[earlier], later, dates[later], strict, zone, names.get(later) or names.get(earlier)
            )
