"""The protocol as a CDISC USDM v4 document (Unified Study Definitions Model 4.0.0), built with the
model classes of `usdm4` so the output is the schema by construction and every code is taken from
the CDISC terminology that `usdm4` ships (a code missing from it is a bug, raised here).

What the document holds, all of it from the protocol file:
- Study, StudyVersion (the protocol version, its effective date, the sponsor's identifier, the
  official title), the protocol document, the sponsor organisation and its sponsor role.
- One InterventionalStudyDesign: phase, one arm (the pathway has no randomisation: every included
  subject is meant to be infused), open label, single group, the indication, the study product.
- Epochs: one per visit phase, except the treatment phase, whose visits (apheresis and manufacturing,
  lymphodepletion, infusion) are distinct stages of a cell therapy and each open an epoch.
- The main ScheduleTimeline: one ScheduledActivityInstance per protocol visit, in time order, and
  one anchor per anchor date (inclusion, infusion D0) with a Fixed Reference timing. A visit's
  Timing is relative to its anchor: `Before`/`After` and the distance as an ISO 8601 duration,
  never negative (DDF00060), its window as `windowLower`/`windowUpper` (days before and after the
  target, DDF00061/62). A day-0 visit without a window is its anchor itself (D0); an anchor without
  such a visit (inclusion) is an instance of its own, with no encounter and no activity.
- One Encounter per visit (scheduled at its timing) and one Activity per eCRF form; the instance of
  a visit lists the activities of the forms collected at it. Each activity refers to one biomedical
  concept surrogate per item of its form; the infusion form's activity carries the procedure that
  administers the study product.
- The eligibility criteria: one EligibilityCriterion (inclusion or exclusion) and its item text per
  protocol criterion, all used by the study population, whose planned age comes from the age rule.

French: USDM has one text per attribute, written in English. The French text of the protocol (and of
the catalog for the few texts this module writes) travels beside it as an extension attribute whose
URL names the attribute it translates (`FRENCH_URL` + attribute name).

Building needs the terminology loaded once (`usdm_builder()`, about 3 s); a builder is reused for
several documents (each build starts by clearing its identifiers), never by two threads at once.
"""

from __future__ import annotations

import html
import itertools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import usdm4
from simple_error_log.errors import Errors
from usdm4.__info__ import __model_version__
from usdm4.api.activity import Activity
from usdm4.api.alias_code import AliasCode
from usdm4.api.biomedical_concept_surrogate import BiomedicalConceptSurrogate
from usdm4.api.code import Code
from usdm4.api.duration import Duration
from usdm4.api.eligibility_criterion import EligibilityCriterion, EligibilityCriterionItem
from usdm4.api.encounter import Encounter
from usdm4.api.extension import ExtensionAttribute
from usdm4.api.geographic_scope import GeographicScope
from usdm4.api.governance_date import GovernanceDate
from usdm4.api.identifier import StudyIdentifier
from usdm4.api.indication import Indication as UsdmIndication
from usdm4.api.organization import Organization
from usdm4.api.population_definition import StudyDesignPopulation
from usdm4.api.procedure import Procedure
from usdm4.api.quantity_range import Quantity, Range
from usdm4.api.schedule_timeline import ScheduleTimeline
from usdm4.api.schedule_timeline_exit import ScheduleTimelineExit
from usdm4.api.scheduled_instance import ScheduledActivityInstance
from usdm4.api.study import Study
from usdm4.api.study_arm import StudyArm
from usdm4.api.study_cell import StudyCell
from usdm4.api.study_definition_document import StudyDefinitionDocument
from usdm4.api.study_definition_document_version import StudyDefinitionDocumentVersion
from usdm4.api.study_design import InterventionalStudyDesign
from usdm4.api.study_element import StudyElement
from usdm4.api.study_epoch import StudyEpoch
from usdm4.api.study_intervention import StudyIntervention
from usdm4.api.study_role import StudyRole
from usdm4.api.study_title import StudyTitle
from usdm4.api.study_version import StudyVersion
from usdm4.api.timing import Timing
from usdm4.api.wrapper import Wrapper
from usdm4.builder.builder import Builder

from cartrial.domain.ecrf import FormDef
from cartrial.domain.ecrf.definitions import Label
from cartrial.domain.eligibility import Criterion
from cartrial.domain.errors import InvalidInput
from cartrial.domain.standards.indication import Indication
from cartrial.domain.text import N_, Message, ProtocolText, Translate
from cartrial.domain.visits import ANCHOR_LABELS, VISIT_PHASE_LABELS, Anchor, VisitDefinition, VisitPhase

# Where the French text of an attribute travels: FRENCH_URL + the attribute's name ("label", "text"...).
FRENCH_URL = "https://cartrial.example/usdm/v4/french/"

# The study's identity, stable across exports and versions of the same protocol code.
STUDY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://cartrial.example/studies")

# The eCRF form that records the administration of the study product (its activity holds the
# procedure referring to the study intervention).
ADMINISTRATION_FORM = "infusion"

# The protocol file's `study.phase` → Trial Phase Response (C66737).
PHASE_CODES: Mapping[str, str] = {
    "1": "C15600",
    "1/2": "C15693",
    "2": "C15601",
    "2/3": "C15694",
    "3": "C15602",
    "4": "C15603",
}

# Visit phase → Epoch (C99079): screening, treatment, follow-up (the acute monitoring to D28 is the
# first follow-up after the product), long-term follow-up.
EPOCH_TYPES: Mapping[VisitPhase, str] = {
    VisitPhase.SCREENING: "C202487",
    VisitPhase.TREATMENT: "C101526",
    VisitPhase.ACUTE_MONITORING: "C202578",
    VisitPhase.FOLLOW_UP: "C202578",
    VisitPhase.LONG_TERM_FOLLOW_UP: "C202577",
}

# The name of the instance of an anchor date that has no visit of its own (ANCHOR_INCLUSION).
ANCHOR_PREFIX = "ANCHOR_"

# The codes every document uses, by class and attribute of the CDISC terminology mapping (the
# public ones are read back by `usdm_import`).
TIMING_FIXED, TIMING_BEFORE, TIMING_AFTER = "C201358", "C201357", "C201356"
_START_TO_START = "C201355"
_VISIT, _HOSPITAL, _IN_PERSON = "C25716", "C16696", "C175574"
INCLUSION_CRITERIA, EXCLUSION_CRITERIA = "C25532", "C25370"
_OFFICIAL_TITLE = "C207616"
_SPONSOR_ORGANISATION = "C54149"  # Pharmaceutical Company: the protocol file does not say the sponsor's kind
_SPONSOR_ROLE = "C70793"
_EFFECTIVE_DATE, _GLOBAL = "C215663", "C68846"
_PROTOCOL_DOCUMENT, _APPROVED = "C70817", "C25425"
_INTERVENTIONAL, _SINGLE_GROUP, _TREATMENT_INTENT, _OPEN_LABEL = "C98388", "C82640", "C49656", "C49659"
_INVESTIGATIONAL_ARM, _GENERATED_IN_STUDY = "C174266", "C188866"
_GENE_THERAPY, _EXPERIMENTAL_INTERVENTION = "C15238", "C41161"
_FEMALE, _MALE, _YEAR = "C16576", "C20197", "C29848"

_AGE_ITEM = "age_years"
_SEX_ITEM = "sex"


@dataclass(frozen=True)
class StudyProduct:
    """The investigational product (the protocol's drug product): its code and name ({en, fr})."""

    code: str
    label: Mapping[str, str]


@dataclass(frozen=True)
class ProtocolDesign:
    """What of a protocol version the USDM document describes (the apps build it from the protocol)."""

    code: str
    version: str
    title: Mapping[str, str]
    phase: str
    sponsor: str
    effective_date: date
    visits: tuple[VisitDefinition, ...]
    forms: Mapping[str, FormDef]
    criteria: tuple[Criterion, ...]
    indication: Indication | None
    product: StudyProduct


@dataclass(frozen=True)
class UsdmCounts:
    """What a document holds: encounters (one per visit), activities (one per form collected at a
    visit), scheduled activities (a form at a visit) and eligibility criteria. `records`, the export's
    count, is encounters + scheduled activities + criteria: the rows of the schedule of activities
    and of the criteria list a reader checks against the protocol."""

    encounters: int
    activities: int
    scheduled_activities: int
    criteria: int

    @property
    def records(self) -> int:
        return self.encounters + self.scheduled_activities + self.criteria


class UsdmBuildError(Exception):
    """A model instance could not be made or a code is missing from the terminology: a bug."""


class UsdmBuilder(Builder):  # type: ignore[misc]  # usdm4 ships no types
    """usdm4's builder loading only the terminology this export uses: the CDISC code lists and the
    ISO 639 languages (3 s, 30 MB). Its default also loads the CDISC biomedical concepts (ten times
    the time, 310 MB), which the document does not use (its activities refer to surrogates)."""

    _ct_loaded: bool

    def _ensure_ct_loaded(self) -> None:
        if not self._ct_loaded:
            self.cdisc_ct_library.load()
            self.iso639_library.load()
            self._cdisc_code_system = self.cdisc_ct_library.system
            self._cdisc_code_system_version = self.cdisc_ct_library.version
            self._ct_loaded = True


def usdm_builder() -> UsdmBuilder:
    """A builder with its terminology loaded (once per export, or once for many documents)."""
    builder = UsdmBuilder(str(Path(usdm4.__file__).parent), Errors())
    builder._ensure_ct_loaded()
    return builder


def usdm_json(document: Wrapper) -> str:
    """The document as USDM JSON text (the model's own serialisation)."""
    text: str = document.to_json()
    return text


def usdm_phase_code(phase: str) -> str:
    """The Trial Phase Response code of the protocol's `study.phase`; InvalidInput when unknown."""
    code = PHASE_CODES.get(phase.strip())
    if code is None:
        raise InvalidInput(
            N_("The protocol's phase {phase} has no USDM code; known phases: {known}."),
            code="usdm_phase_unknown",
            item="study.phase",
            phase=phase,
            known=", ".join(PHASE_CODES),
        )
    return code


def planned_age_years(criteria: Sequence[Criterion]) -> tuple[float, float] | None:
    """The age range a criterion's rule requires (`{item: age_years, between: [LOW, HIGH]}`, alone
    or within an `all`), or None when no rule bounds the age on both sides."""
    for criterion in criteria:
        for comparison in _required_comparisons(criterion.rule):
            bounds = comparison.get("between")
            if comparison.get("item") == _AGE_ITEM and isinstance(bounds, list | tuple) and len(bounds) == 2:
                return float(bounds[0]), float(bounds[1])
    return None


def _required_comparisons(rule: Mapping[str, object] | None) -> Iterable[Mapping[str, object]]:
    """The comparisons a rule requires to be met: itself, or the parts of an `all` (not under an
    `any` or a `not`, which require none of them)."""
    if rule is None:
        return
    parts = rule.get("all")
    if isinstance(parts, list):
        for part in parts:
            if isinstance(part, Mapping):
                yield from _required_comparisons(part)
    elif "item" in rule:
        yield rule


def _rule_items(rule: Mapping[str, object] | None) -> set[str]:
    """Every item a rule names, at any depth."""
    if rule is None:
        return set()
    names: set[str] = set()
    item = rule.get("item")
    if isinstance(item, str):
        names.add(item)
    for key in ("all", "any"):
        parts = rule.get(key)
        if isinstance(parts, list):
            for part in parts:
                if isinstance(part, Mapping):
                    names |= _rule_items(part)
    negated = rule.get("not")
    if isinstance(negated, Mapping):
        names |= _rule_items(negated)
    return names


def _days(days: int) -> str:
    """A whole number of days as a non-negative ISO 8601 duration."""
    return f"P{abs(days)}D"


@dataclass
class _Point:
    """One instance of the timeline: a protocol visit, or an anchor date without a visit of its own."""

    anchor: Anchor
    day: int
    visit: VisitDefinition | None
    is_anchor: bool
    epoch_key: str = ""
    instance: Any = None
    timing: Any = None


def _timeline_points(visits: Sequence[VisitDefinition]) -> list[_Point]:
    """The visits in time order, each anchor's date among them: anchors in the order the schedule
    first uses them, then by day; an anchor before the visits of its own day. A day-0 visit without a
    window is its anchor; otherwise the anchor is a point of its own."""
    anchors = list(dict.fromkeys(visit.anchor for visit in visits))
    points: list[tuple[tuple[int, int, int, int], _Point]] = []
    for position, visit in enumerate(visits):
        is_anchor = visit.day == 0 and visit.window_before_days == 0 and visit.window_after_days == 0
        if is_anchor and any(p.is_anchor and p.anchor is visit.anchor for _, p in points):
            is_anchor = False  # a second day-0 visit of the same anchor is timed from the first
        points.append(
            ((anchors.index(visit.anchor), visit.day, 1, position), _Point(visit.anchor, visit.day, visit, is_anchor))
        )
    for anchor in anchors:
        if not any(p.is_anchor and p.anchor is anchor for _, p in points):
            points.append(((anchors.index(anchor), 0, 0, -1), _Point(anchor, 0, None, True)))
    return [point for _, point in sorted(points, key=lambda pair: pair[0])]


def _epoch_key(visit: VisitDefinition) -> str:
    return f"{visit.phase.value}:{visit.code}" if visit.phase is VisitPhase.TREATMENT else visit.phase.value


class _Document:
    """One build: the builder, the French translation of catalog texts, and the helpers over them."""

    def __init__(self, builder: UsdmBuilder, french: Translate) -> None:
        self.builder = builder
        self.french = french

    def make(self, klass: type, **params: Any) -> Any:
        """A model instance with a fresh id; UsdmBuildError with the reason when the model refuses."""
        instance = self.builder.create(klass, params, cross_reference=False)
        if instance is None:
            reasons = "; ".join(row["message"] for row in self.builder.errors.to_dict()[-3:])
            raise UsdmBuildError(f"cannot make a {klass.__name__}: {reasons}")
        return instance

    def term(self, klass: str, attribute: str, concept: str) -> Any:
        """The code `concept` of the code list CDISC binds to `klass.attribute`."""
        code = self.builder.klass_and_attribute_value(klass, attribute, concept)
        if code is None:
            raise UsdmBuildError(f"{concept} is not a term of the code list of {klass}.{attribute}")
        return code

    def submission_term(self, klass: str, attribute: str, concept: str) -> Any:
        """As `term`, decoded with the term's submission value rather than its preferred term: the
        timing codes, whose DDF rules (DDF00011, DDF00031, DDF00036) compare the decode with
        "Fixed Reference" and "Start to Start" (both decodes are valid terms of the code list)."""
        code = self.term(klass, attribute, concept)
        terms = self.builder.klass_and_attribute(klass, attribute)["terms"]
        code.decode = next(t["submissionValue"] for t in terms if t["conceptId"] == concept)
        return code

    def cdisc(self, concept: str) -> Any:
        """A CDISC code by concept id (for attributes the terminology mapping does not bind)."""
        code = self.builder.cdisc_code(concept)
        if code is None:
            raise UsdmBuildError(f"{concept} is not in the CDISC terminology")
        return code

    def alias(self, code: Any) -> Any:
        return self.make(AliasCode, standardCode=code)

    def texts(self, text: Label | str) -> tuple[str, str]:
        """(English, French) of a protocol text ({en, fr}), a message or a catalog msgid."""
        if isinstance(text, Message):
            return text.render(), text.render(self.french, "fr")
        if isinstance(text, str):
            return text, self.french(text)
        return text["en"], text["fr"]

    def french_of(self, **texts: str | None) -> list[Any]:
        """The extension attributes carrying the French text of each named attribute."""
        return [
            self.make(ExtensionAttribute, url=FRENCH_URL + attribute, valueString=value)
            for attribute, value in texts.items()
            if value
        ]


def usdm_document(
    design: ProtocolDesign, builder: UsdmBuilder, french: Translate, system_version: str | None = None
) -> tuple[Wrapper, UsdmCounts]:
    """The USDM v4 document of the protocol version `design`, and what it holds.

    `french` renders a catalog msgid in French (the adapter's translation); `system_version` is the
    writing software's version. InvalidInput when the protocol's phase has no USDM code.
    """
    phase_code = usdm_phase_code(design.phase)
    builder.clear()
    doc = _Document(builder, french)
    points = _timeline_points(design.visits)
    epochs = _epochs(doc, points)
    intervention = _intervention(doc, design.product)
    activities, surrogates = _activities(doc, design, intervention)
    timeline, encounters = _timeline(doc, points, epochs, activities)
    arm, elements, cells = _arm(doc, design, epochs, points, intervention)
    criteria, criterion_items = _criteria(doc, design.criteria)
    rationale = doc.texts(N_("One arm, open label: every included subject is meant to receive the product once."))
    study_design = doc.make(
        InterventionalStudyDesign,
        name="STUDY_DESIGN",
        label=design.title["en"],
        rationale=rationale[0],
        studyType=doc.term("StudyDesign", "studyType", _INTERVENTIONAL),
        studyPhase=doc.alias(doc.term("StudyDesign", "studyPhase", phase_code)),
        model=doc.term("InterventionalStudyDesign", "model", _SINGLE_GROUP),
        intentTypes=[doc.term("InterventionalStudyDesign", "intentTypes", _TREATMENT_INTENT)],
        blindingSchema=doc.alias(doc.term("InterventionalStudyDesign", "blindingSchema", _OPEN_LABEL)),
        arms=[arm],
        epochs=list(epochs.values()),
        elements=elements,
        studyCells=cells,
        encounters=encounters,
        activities=activities,
        scheduleTimelines=[timeline],
        indications=[_indication(doc, design.indication)] if design.indication is not None else [],
        studyInterventionIds=[intervention.id],
        population=_population(doc, design.criteria, criteria),
        eligibilityCriteria=criteria,
        extensionAttributes=doc.french_of(label=design.title["fr"], rationale=rationale[1]),
    )
    version, document = _version(doc, design, study_design, criterion_items, surrogates, intervention)
    study = doc.make(
        Study,
        id=uuid.uuid5(STUDY_NAMESPACE, design.code),
        name=design.code,
        label=design.title["en"],
        versions=[version],
        documentedBy=[document],
    )
    wrapper = Wrapper(study=study, usdmVersion=__model_version__, systemName="cartrial", systemVersion=system_version)
    counts = UsdmCounts(
        encounters=len(encounters),
        activities=len(activities),
        scheduled_activities=sum(len(point.visit.forms) for point in points if point.visit is not None),
        criteria=len(criteria),
    )
    return wrapper, counts


def _epochs(doc: _Document, points: list[_Point]) -> dict[str, Any]:
    """The epochs in time order, keyed as `_epoch_key`; each point learns its epoch (an anchor without
    a visit belongs to the epoch before it: inclusion closes the screening)."""
    epochs: dict[str, Any] = {}
    for point in points:
        if point.visit is None:
            continue
        point.epoch_key = key = _epoch_key(point.visit)
        if key in epochs:
            continue
        phase = point.visit.phase
        if phase is VisitPhase.TREATMENT:
            name, (label, label_fr) = f"TREATMENT_{point.visit.code}", doc.texts(point.visit.label)
        else:
            name, (label, label_fr) = phase.value.upper(), doc.texts(VISIT_PHASE_LABELS[phase])
        epochs[key] = doc.make(
            StudyEpoch,
            name=name,
            label=label,
            type=doc.term("StudyEpoch", "type", EPOCH_TYPES[phase]),
            extensionAttributes=doc.french_of(label=label_fr),
        )
    for index, point in enumerate(points):
        if point.visit is None:
            neighbours = points[index - 1 :: -1] if index > 0 else points[index + 1 :]
            point.epoch_key = next(p.epoch_key for p in neighbours if p.visit is not None)
    doc.builder.double_link(list(epochs.values()), "previousId", "nextId")
    return epochs


def _intervention(doc: _Document, product: StudyProduct) -> Any:
    return doc.make(
        StudyIntervention,
        name=product.code,
        label=product.label["en"],
        role=doc.term("StudyIntervention", "role", _EXPERIMENTAL_INTERVENTION),
        type=doc.term("StudyIntervention", "type", _GENE_THERAPY),
        extensionAttributes=doc.french_of(label=product.label["fr"]),
    )


def _activities(doc: _Document, design: ProtocolDesign, intervention: Any) -> tuple[list[Any], list[Any]]:
    """One activity per form collected at some visit (in the protocol's form order), each referring to
    one surrogate per item of its form; the administration form's activity holds the procedure."""
    collected = {code for visit in design.visits for code in visit.forms}
    activities: list[Any] = []
    surrogates: list[Any] = []
    for form in design.forms.values():
        if form.code not in collected:
            continue
        own: list[Any] = []
        for group in form.groups:
            for item in group.items:
                label, label_fr = doc.texts(item.label)
                help_en, help_fr = doc.texts(item.help) if item.help is not None else (None, None)
                own.append(
                    doc.make(
                        BiomedicalConceptSurrogate,
                        name=f"{form.code}.{item.name}",
                        label=label,
                        description=help_en,
                        reference=f"eCRF {form.code}/{group.name}/{item.name}",
                        extensionAttributes=doc.french_of(label=label_fr, description=help_fr),
                    )
                )
        surrogates += own
        label, label_fr = doc.texts(form.label)
        procedures = []
        if form.code == ADMINISTRATION_FORM:
            procedures.append(
                doc.make(
                    Procedure,
                    name=f"{form.code}.administration",
                    label=label,
                    procedureType=label,
                    code=doc.term("StudyIntervention", "type", _GENE_THERAPY),
                    studyInterventionId=intervention.id,
                    extensionAttributes=doc.french_of(label=label_fr, procedureType=label_fr),
                )
            )
        activities.append(
            doc.make(
                Activity,
                name=form.code,
                label=label,
                bcSurrogateIds=[surrogate.id for surrogate in own],
                definedProcedures=procedures,
                extensionAttributes=doc.french_of(label=label_fr),
            )
        )
    doc.builder.double_link(activities, "previousId", "nextId")
    return activities, surrogates


def _timeline(
    doc: _Document, points: list[_Point], epochs: Mapping[str, Any], activities: Sequence[Any]
) -> tuple[Any, list[Any]]:
    """The main timeline (instances, timings, exit, planned duration) and the encounters it schedules."""
    activity_of = {activity.name: activity for activity in activities}
    for point in points:
        if point.visit is not None:
            label, label_fr = doc.texts(point.visit.label)
            name = point.visit.code
            activity_ids = [activity_of[code].id for code in point.visit.forms]
        else:
            label, label_fr = doc.texts(ANCHOR_LABELS[point.anchor])
            name, activity_ids = f"{ANCHOR_PREFIX}{point.anchor.value.upper()}", []
        point.instance = doc.make(
            ScheduledActivityInstance,
            name=name,
            label=label,
            epochId=epochs[point.epoch_key].id,
            activityIds=activity_ids,
            extensionAttributes=doc.french_of(label=label_fr),
        )
    exit_ = doc.make(ScheduleTimelineExit)
    for point, following in itertools.pairwise(points):
        point.instance.defaultConditionId = following.instance.id
    points[-1].instance.timelineExitId = exit_.id
    anchor_of = {point.anchor: point.instance for point in points if point.is_anchor}
    encounters = []
    for point in points:
        point.timing = _timing(doc, point, anchor_of[point.anchor])
        if point.visit is None:
            continue
        label, label_fr = doc.texts(point.visit.label)
        encounter = doc.make(
            Encounter,
            name=point.visit.code,
            label=label,
            type=doc.term("Encounter", "type", _VISIT),
            environmentalSettings=[doc.term("Encounter", "environmentalSettings", _HOSPITAL)],
            contactModes=[doc.term("Encounter", "contactModes", _IN_PERSON)],
            scheduledAtId=point.timing.id,
            extensionAttributes=doc.french_of(label=label_fr),
        )
        point.instance.encounterId = encounter.id
        encounters.append(encounter)
    doc.builder.double_link(encounters, "previousId", "nextId")
    first = next(p.visit for p in points if p.visit is not None)
    last = next(p.visit for p in reversed(points) if p.visit is not None)
    span = doc.texts(
        Message(
            N_("From {first} to {last}, {days} days after {anchor}"),
            {
                "first": ProtocolText(first.label),
                "last": ProtocolText(last.label),
                "days": last.day,
                "anchor": Message(ANCHOR_LABELS[last.anchor]),
            },
        )
    )
    varies = doc.texts(N_("The time from inclusion to the infusion depends on the manufacturing of the product."))
    duration = doc.make(
        Duration,
        text=span[0],
        durationWillVary=True,
        reasonDurationWillVary=varies[0],
        extensionAttributes=doc.french_of(text=span[1], reasonDurationWillVary=varies[1]),
    )
    label, label_fr = doc.texts(N_("Visit schedule"))
    entry, entry_fr = doc.texts(N_("Informed consent signed"))
    timeline = doc.make(
        ScheduleTimeline,
        name="MAIN_TIMELINE",
        label=label,
        mainTimeline=True,
        entryCondition=entry,
        entryId=points[0].instance.id,
        exits=[exit_],
        timings=[point.timing for point in points],
        instances=[point.instance for point in points],
        plannedDuration=duration,
        extensionAttributes=doc.french_of(label=label_fr, entryCondition=entry_fr),
    )
    return timeline, encounters


def _timing(doc: _Document, point: _Point, anchor: Any) -> Any:
    """When a point happens: the anchor itself (Fixed Reference), or before/after its anchor by whole
    days, with the visit's window (days before and after the target) when it has one."""
    start_to_start = doc.submission_term("Timing", "relativeToFrom", _START_TO_START)
    anchor_label = Message(ANCHOR_LABELS[point.anchor])
    if point.is_anchor:
        value_label = doc.texts(anchor_label)
        return doc.make(
            Timing,
            name=f"TIMING_{point.instance.name}",
            type=doc.submission_term("Timing", "type", TIMING_FIXED),
            value=_days(0),
            valueLabel=value_label[0],
            relativeToFrom=start_to_start,
            relativeFromScheduledInstanceId=point.instance.id,
            relativeToScheduledInstanceId=point.instance.id,
            extensionAttributes=doc.french_of(valueLabel=value_label[1]),
        )
    visit = point.visit
    assert visit is not None  # only anchors have no visit
    value_label = doc.texts(Message(N_("Day {day} from {anchor}"), {"day": visit.day, "anchor": anchor_label}))
    window: dict[str, Any] = {}
    window_fr = None
    if visit.window_before_days or visit.window_after_days:
        window_label = doc.texts(
            Message(
                N_("{before} days before to {after} days after"),
                {"before": visit.window_before_days, "after": visit.window_after_days},
            )
        )
        window = {
            "windowLower": _days(visit.window_before_days),
            "windowUpper": _days(visit.window_after_days),
            "windowLabel": window_label[0],
        }
        window_fr = window_label[1]
    return doc.make(
        Timing,
        name=f"TIMING_{visit.code}",
        type=doc.submission_term("Timing", "type", TIMING_BEFORE if visit.day < 0 else TIMING_AFTER),
        value=_days(visit.day),
        valueLabel=value_label[0],
        relativeToFrom=start_to_start,
        relativeFromScheduledInstanceId=point.instance.id,
        relativeToScheduledInstanceId=anchor.id,
        extensionAttributes=doc.french_of(valueLabel=value_label[1], windowLabel=window_fr),
        **window,
    )


def _arm(
    doc: _Document, design: ProtocolDesign, epochs: Mapping[str, Any], points: Sequence[_Point], intervention: Any
) -> tuple[Any, list[Any], list[Any]]:
    """The one arm, one element per epoch (the infusion's gives the study product) and the cells."""
    origin, origin_fr = doc.texts(N_("Collected in the trial's eCRF"))
    arm = doc.make(
        StudyArm,
        name=design.product.code,
        label=design.product.label["en"],
        type=doc.term("StudyArm", "type", _INVESTIGATIONAL_ARM),
        dataOriginDescription=origin,
        dataOriginType=doc.term("StudyArm", "dataOriginType", _GENERATED_IN_STUDY),
        extensionAttributes=doc.french_of(label=design.product.label["fr"], dataOriginDescription=origin_fr),
    )
    infusion_epoch = next(p.epoch_key for p in points if p.is_anchor and p.anchor is Anchor.INFUSION)
    elements, cells = [], []
    for key, epoch in epochs.items():
        element = doc.make(
            StudyElement,
            name=f"{epoch.name}_ELEMENT",
            label=epoch.label,
            studyInterventionIds=[intervention.id] if key == infusion_epoch else [],
            extensionAttributes=doc.french_of(label=epoch.get_extension(FRENCH_URL + "label").valueString),
        )
        elements.append(element)
        cells.append(doc.make(StudyCell, armId=arm.id, epochId=epoch.id, elementIds=[element.id]))
    return arm, elements, cells


def _criteria(doc: _Document, criteria: Sequence[Criterion]) -> tuple[list[Any], list[Any]]:
    """One criterion and its item text per protocol criterion, in protocol order."""
    models, items = [], []
    for criterion in criteria:
        text = {language: f"<p>{html.escape(criterion.text[language], quote=False)}</p>" for language in ("en", "fr")}
        item = doc.make(
            EligibilityCriterionItem,
            name=criterion.id,
            text=text["en"],
            extensionAttributes=doc.french_of(text=text["fr"]),
        )
        category = INCLUSION_CRITERIA if criterion.kind == "inclusion" else EXCLUSION_CRITERIA
        models.append(
            doc.make(
                EligibilityCriterion,
                name=criterion.id,
                label=criterion.text["en"],
                category=doc.term("EligibilityCriterion", "category", category),
                identifier=criterion.id,
                criterionItemId=item.id,
                extensionAttributes=doc.french_of(label=criterion.text["fr"]),
            )
        )
        items.append(item)
    doc.builder.double_link(models, "previousId", "nextId")
    return models, items


def _population(doc: _Document, definitions: Sequence[Criterion], criteria: Sequence[Any]) -> Any:
    """The study population: every criterion, the planned age from the age rule, both sexes unless a
    criterion reads the sex."""
    label, label_fr = doc.texts(N_("Study population"))
    age = planned_age_years(definitions)
    planned_age = None
    if age is not None:
        low, high = (doc.make(Quantity, value=bound, unit=doc.alias(doc.cdisc(_YEAR))) for bound in age)
        planned_age = doc.make(Range, minValue=low, maxValue=high, isApproximate=False)
    reads_sex = any(_SEX_ITEM in _rule_items(criterion.rule) for criterion in definitions)
    return doc.make(
        StudyDesignPopulation,
        name="STUDY_POPULATION",
        label=label,
        includesHealthySubjects=False,
        criterionIds=[criterion.id for criterion in criteria],
        plannedAge=planned_age,
        plannedSex=[] if reads_sex else [doc.term("StudyDesignPopulation", "plannedSex", s) for s in (_FEMALE, _MALE)],
        extensionAttributes=doc.french_of(label=label_fr),
    )


def _indication(doc: _Document, indication: Indication) -> Any:
    return doc.make(
        UsdmIndication,
        name=indication.label["en"],
        label=indication.label["en"],
        codes=[
            doc.make(Code, code=c.code, codeSystem=c.system, codeSystemVersion=c.version, decode=c.decode)
            for c in indication.codes
        ],
        isRareDisease=indication.rare_disease,
        extensionAttributes=doc.french_of(label=indication.label["fr"]),
    )


def _version(
    doc: _Document,
    design: ProtocolDesign,
    study_design: Any,
    criterion_items: list[Any],
    surrogates: list[Any],
    intervention: Any,
) -> tuple[Any, Any]:
    """The study version (identifier, title, sponsor and role, effective date) and the protocol document."""
    sponsor = doc.make(
        Organization,
        name=design.sponsor,
        label=design.sponsor,
        type=doc.term("Organization", "type", _SPONSOR_ORGANISATION),
        identifierScheme="Name",
        identifier=design.sponsor,
    )
    title = doc.make(
        StudyTitle,
        text=design.title["en"],
        type=doc.term("StudyTitle", "type", _OFFICIAL_TITLE),
        extensionAttributes=doc.french_of(text=design.title["fr"]),
    )
    date_label = doc.texts(N_("Effective date"))

    def effective_date(of: str) -> Any:
        scope = doc.make(GeographicScope, type=doc.term("GeographicScope", "type", _GLOBAL))
        return doc.make(
            GovernanceDate,
            name=f"{of}_EFFECTIVE_DATE",
            label=date_label[0],
            type=doc.term("GovernanceDate", "type", _EFFECTIVE_DATE),
            dateValue=design.effective_date,
            geographicScopes=[scope],
            extensionAttributes=doc.french_of(label=date_label[1]),
        )

    document_version = doc.make(
        StudyDefinitionDocumentVersion,
        version=design.version,
        status=doc.term("StudyDefinitionDocumentVersion", "status", _APPROVED),
        dateValues=[effective_date("PROTOCOL")],
    )
    document = doc.make(
        StudyDefinitionDocument,
        name="PROTOCOL",
        label=design.title["en"],
        language=doc.builder.iso639_code("en"),
        type=doc.term("StudyDefinitionDocument", "type", _PROTOCOL_DOCUMENT),
        templateName="cartrial protocol file",
        versions=[document_version],
        extensionAttributes=doc.french_of(label=design.title["fr"]),
    )
    rationale = doc.texts(
        Message(
            N_("Protocol version {version}, in force from {effective_date}"),
            {"version": design.version, "effective_date": design.effective_date},
        )
    )
    version = doc.make(
        StudyVersion,
        versionIdentifier=design.version,
        rationale=rationale[0],
        titles=[title],
        studyIdentifiers=[doc.make(StudyIdentifier, text=design.code, scopeId=sponsor.id)],
        organizations=[sponsor],
        studyDesigns=[study_design],
        eligibilityCriterionItems=criterion_items,
        bcSurrogates=surrogates,
        studyInterventions=[intervention],
        documentVersionIds=[document_version.id],
        dateValues=[effective_date("VERSION")],
        extensionAttributes=doc.french_of(rationale=rationale[1]),
    )
    version.roles = [
        doc.make(
            StudyRole,
            name="SPONSOR",
            code=doc.term("StudyRole", "code", _SPONSOR_ROLE),
            organizationIds=[sponsor.id],
            appliesToIds=[version.id],
        )
    ]
    return version, document
