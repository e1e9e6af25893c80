"""A new protocol version from a USDM v4 document: its visits (with their anchors, days and windows,
phases and forms) and its eligibility criteria (with their texts), on top of a base protocol that
gives everything USDM does not carry (forms, products, pathway, safety, capacities, consents).

The reading is the converse of `usdm.py`, and accepts what another study-build tool may write:
- Visits are the timeline's instances that have an encounter, in timeline order; the visit code is
  the encounter's name, its label the encounter's label (French from the extension `usdm.FRENCH_URL
  + "label"`, else the base visit of the same code).
- Each visit's timing is relative to an anchor: a Fixed Reference instance that is either named
  `ANCHOR_INCLUSION` / `ANCHOR_INFUSION`, or the instance of a base visit with that anchor (D0). The
  day is minus (Before) or plus (After) the timing's value, in days or weeks (ISO 8601 `PnD`, `PnW`);
  the window is `windowLower` / `windowUpper` (none: 0 days).
- The phase comes from the instance's epoch: its name as `usdm.py` writes it, else the base visit's
  phase, else the epoch's CDISC type. The forms are the names of the instance's activities.
- Criteria: the study design's eligibility criteria in order; the id is the criterion's identifier,
  the kind its category (Inclusion C25532, Exclusion C25370), the text its item's text without the
  markup (French from the extension, else the base criterion). USDM does not carry the rule language,
  so a criterion keeps the base criterion's rule of the same id; a new criterion has none (attested).

Anything it cannot place is refused naming the USDM instance (InvalidInput); the protocol loader then
checks the result as it checks every protocol file.
"""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from cartrial.domain.errors import InvalidInput
from cartrial.domain.standards.usdm import (
    ANCHOR_PREFIX,
    EPOCH_TYPES,
    EXCLUSION_CRITERIA,
    FRENCH_URL,
    INCLUSION_CRITERIA,
    TIMING_AFTER,
    TIMING_BEFORE,
    TIMING_FIXED,
)
from cartrial.domain.text import N_
from cartrial.domain.visits import Anchor, VisitPhase

# An epoch's CDISC type → the visit phase (the follow-up type is read as follow-up, not acute monitoring).
_EPOCH_PHASES: Mapping[str, VisitPhase] = {code: phase for phase, code in EPOCH_TYPES.items()}
_DURATION = re.compile(r"^P(\d+)([DW])$")
_TAG = re.compile(r"<[^>]*>")


def next_version(version: str) -> str:
    """The next minor version of a protocol version written MAJOR.MINOR ("1.0" → "1.1")."""
    major, _, minor = version.partition(".")
    return f"{major}.{int(minor or 0) + 1}"


def protocol_from_usdm(
    document: Mapping[str, Any], base: Mapping[str, Any], *, version: str, effective_date: date
) -> dict[str, Any]:
    """The protocol file's data for a new version: `base` (a protocol file's data) with the visits and
    criteria of the USDM `document`, `version` and `effective_date`."""
    study_design = _study_design(document)
    data = copy.deepcopy(dict(base))
    data["study"]["version"] = version
    data["study"]["effective_date"] = effective_date.isoformat()
    data["visits"] = _visits(study_design, base.get("visits", []))
    eligibility = data.setdefault("eligibility", {})
    eligibility["criteria"] = _criteria(
        study_design, document["study"]["versions"][0], base.get("eligibility", {}).get("criteria", [])
    )
    return data


def _refuse(msgid: str, code: str, item: str, **params: object) -> InvalidInput:
    return InvalidInput(msgid, code=code, item=item, **params)


def _study_design(document: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        study_design: Mapping[str, Any] = document["study"]["versions"][0]["studyDesigns"][0]
    except (KeyError, IndexError, TypeError):
        raise _refuse(
            N_("The USDM file has no study design (study.versions[0].studyDesigns[0])."),
            "usdm_no_design",
            "study.versions",
        ) from None
    return study_design


def _french(instance: Mapping[str, Any], attribute: str) -> str | None:
    for extension in instance.get("extensionAttributes") or []:
        if extension.get("url") == FRENCH_URL + attribute and extension.get("valueString"):
            return str(extension["valueString"])
    return None


def _main_timeline(study_design: Mapping[str, Any]) -> Mapping[str, Any]:
    for timeline in study_design.get("scheduleTimelines") or []:
        if timeline.get("mainTimeline"):
            return timeline  # type: ignore[no-any-return]
    raise _refuse(N_("The USDM study design has no main timeline."), "usdm_no_timeline", "scheduleTimelines")


def _days(value: object, timing: str) -> int:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise _refuse(
            N_("Timing {timing}: {value} is not a duration in days or weeks (P7D, P2W)."),
            "usdm_duration_unsupported",
            timing,
            timing=timing,
            value=repr(value),
        )
    return int(match.group(1)) * (7 if match.group(2) == "W" else 1)


def _visits(study_design: Mapping[str, Any], base_visits: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    timeline = _main_timeline(study_design)
    base_by_code = {visit["code"]: visit for visit in base_visits}
    encounters = {e["id"]: e for e in study_design.get("encounters") or []}
    activities = {a["id"]: a for a in study_design.get("activities") or []}
    epochs = {e["id"]: e for e in study_design.get("epochs") or []}
    timing_of = {t["relativeFromScheduledInstanceId"]: t for t in timeline.get("timings") or []}
    instances = timeline.get("instances") or []
    anchor_of = {
        instance["id"]: _anchor(instance, encounters, base_by_code)
        for instance in instances
        if _timing_code(timing_of.get(instance["id"])) == TIMING_FIXED
    }
    visits = []
    for instance in instances:
        encounter = encounters.get(instance.get("encounterId"))
        if encounter is None:
            continue
        code = str(encounter["name"])
        timing = timing_of.get(instance["id"])
        if timing is None:
            raise _refuse(N_("Visit {visit} has no timing."), "usdm_timing_missing", code, visit=code)
        kind = _timing_code(timing)
        anchor = anchor_of.get(instance["id"] if kind == TIMING_FIXED else timing.get("relativeToScheduledInstanceId"))
        if kind == TIMING_FIXED and anchor is not None:
            day = 0
        else:
            if anchor is None or kind not in (TIMING_BEFORE, TIMING_AFTER):
                raise _refuse(
                    N_("Timing {timing} of visit {visit} is not Before or After an anchor (inclusion or infusion)."),
                    "usdm_anchor_unknown",
                    str(timing["name"]),
                    timing=timing["name"],
                    visit=code,
                )
            days = _days(timing["value"], str(timing["name"]))
            day = -days if kind == TIMING_BEFORE else days
        base = base_by_code.get(code, {})
        visits.append(
            {
                "code": code,
                "label": {"en": str(encounter.get("label") or code), "fr": _french_or_base(encounter, base, code)},
                "anchor": anchor.value,
                "day": day,
                "window_before_days": _window(timing, "windowLower"),
                "window_after_days": _window(timing, "windowUpper"),
                "phase": _phase(epochs.get(instance.get("epochId")), base, code).value,
                "forms": [str(activities[i]["name"]) for i in instance.get("activityIds") or [] if i in activities],
            }
        )
    return visits


def _timing_code(timing: Mapping[str, Any] | None) -> str | None:
    """The timing's type code (its decode when a writer left the code out)."""
    if timing is None:
        return None
    kind = timing.get("type") or {}
    decodes = {"Fixed Reference": TIMING_FIXED, "Before": TIMING_BEFORE, "After": TIMING_AFTER}
    return str(kind.get("code") or decodes.get(kind.get("decode", ""), ""))


def _anchor(
    instance: Mapping[str, Any], encounters: Mapping[str, Any], base_by_code: Mapping[str, Mapping[str, Any]]
) -> Anchor:
    name = str(instance.get("name", ""))
    anchor = name.removeprefix(ANCHOR_PREFIX).lower()
    if name.startswith(ANCHOR_PREFIX) and anchor in {a.value for a in Anchor}:
        return Anchor(anchor)
    encounter = encounters.get(str(instance.get("encounterId")))
    base = base_by_code.get(str(encounter["name"])) if encounter is not None else None
    if base is not None:
        return Anchor(base["anchor"])
    raise _refuse(
        N_("Anchor {instance} is not inclusion or infusion: name it {prefix}INCLUSION or {prefix}INFUSION."),
        "usdm_anchor_unknown",
        name,
        instance=name,
        prefix=ANCHOR_PREFIX,
    )


def _window(timing: Mapping[str, Any], attribute: str) -> int:
    value = timing.get(attribute)
    return 0 if value in (None, "") else _days(value, str(timing["name"]))


def _french_or_base(encounter: Mapping[str, Any], base: Mapping[str, Any], code: str) -> str:
    french = _french(encounter, "label") or (base.get("label") or {}).get("fr")
    if not french:
        raise _refuse(
            N_("Visit {visit} has no French label (extension {url}label) and is not a visit of the base protocol."),
            "usdm_french_missing",
            code,
            visit=code,
            url=FRENCH_URL,
        )
    return str(french)


def _phase(epoch: Mapping[str, Any] | None, base: Mapping[str, Any], code: str) -> VisitPhase:
    name = str((epoch or {}).get("name", "")).lower()
    if name.startswith(VisitPhase.TREATMENT.value):
        return VisitPhase.TREATMENT
    if name in {phase.value for phase in VisitPhase}:
        return VisitPhase(name)
    if base.get("phase"):
        return VisitPhase(base["phase"])
    epoch_type = str(((epoch or {}).get("type") or {}).get("code"))
    if epoch_type in _EPOCH_PHASES:
        return _EPOCH_PHASES[epoch_type]
    raise _refuse(
        N_("Visit {visit}: its epoch does not say which phase of the trial it belongs to."),
        "usdm_phase_unknown",
        code,
        visit=code,
    )


def _text(markup: str) -> str:
    """The text of an XHTML fragment, as the protocol file writes it."""
    return " ".join(html.unescape(_TAG.sub(" ", markup)).split())


def _criteria(
    study_design: Mapping[str, Any], version: Mapping[str, Any], base_criteria: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    items = {item["id"]: item for item in version.get("eligibilityCriterionItems") or []}
    base_by_id = {criterion["id"]: criterion for criterion in base_criteria}
    criteria = []
    for criterion in study_design.get("eligibilityCriteria") or []:
        identifier = str(criterion.get("identifier") or criterion["name"])
        category = (criterion.get("category") or {}).get("code")
        if category not in (INCLUSION_CRITERIA, EXCLUSION_CRITERIA):
            raise _refuse(
                N_("Criterion {criterion}: its category is neither inclusion (C25532) nor exclusion (C25370)."),
                "usdm_criterion_category",
                identifier,
                criterion=identifier,
            )
        item = items.get(criterion.get("criterionItemId"))
        if item is None:
            raise _refuse(
                N_("Criterion {criterion} has no criterion item (its text)."),
                "usdm_criterion_text_missing",
                identifier,
                criterion=identifier,
            )
        base = base_by_id.get(identifier, {})
        french = _french(item, "text")
        text_fr = _text(french) if french else (base.get("text") or {}).get("fr")
        if not text_fr:
            raise _refuse(
                N_("Criterion {criterion} has no French text (extension {url}text) and is not in the base protocol."),
                "usdm_french_missing",
                identifier,
                criterion=identifier,
                url=FRENCH_URL,
            )
        entry: dict[str, Any] = {
            "id": identifier,
            "kind": "inclusion" if category == INCLUSION_CRITERIA else "exclusion",
            "text": {"en": _text(str(item["text"])), "fr": str(text_fr)},
        }
        if "rule" in base:
            entry["rule"] = copy.deepcopy(base["rule"])
        criteria.append(entry)
    return criteria
