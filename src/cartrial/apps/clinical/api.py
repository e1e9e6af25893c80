"""API: the calculators (calculators.md contract), screening data with its verdict, the screening log,
the CONSORT flow and the re-consent list (the same rules as the pages).

`POST /api/v1/calculators/NAME` takes the calculator's JSON input and answers its JSON output,
exactly as `cartrial calc NAME` does; bad input is a 422 whose `fields` name every offending key.
The body is read and the result written as the contract says, not through a schema of ours: the
OpenAPI schema declares each calculator's input (its JSON Schema, `GET /api/v1/calculators/NAME`)
and output (the models below, checked against every documented example by the tests).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal, cast

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.responses import NinjaJSONEncoder
from pydantic import ConfigDict

from cartrial.apps.access import Scope, reach_subject, require_somewhere
from cartrial.apps.api_contract import Page, PageQuery, described_by, paged
from cartrial.apps.clinical import selectors
from cartrial.apps.clinical.services import LabObservationInput, screening_preview, screening_record
from cartrial.apps.clinical.views import OUTCOME_LABELS, SCREENING_EDIT_STATES, screening_log_csv
from cartrial.apps.text import api_language, render, tr
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.clinical_labels import clinical_label
from cartrial.domain.errors import InvalidInput, NotFound
from cartrial.domain.lab_catalogue import ANALYTES, unit_label
from cartrial.domain.pathway import STATE_LABELS, State
from cartrial.domain.roles import Action
from cartrial.domain.scores.input_fields import (
    BooleanInput,
    ChoiceInput,
    ChoiceListInput,
    InputField,
    IntegerInput,
)
from cartrial.domain.scores.registry import CALCULATOR_NAMES, CALCULATORS, calculate, describe
from cartrial.domain.screening import SCREENING_FIELDS, ScreeningEvaluation
from cartrial.domain.text import message_from_data, protocol_text
from cartrial.protocols import Protocol

router = Router(tags=["calculators", "screening"])

_SCREENING_FIELDS = "/api/v1/screening-fields"

# --- calculators: the contract's description -------------------------------------------------------


class CalculatorInputPropertyOut(Schema):
    """One key of a calculator's input, as a JSON Schema (2020-12 subset)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: str | list[str] = Field(description="JSON type(s): integer, number, string, boolean, array, object, null")
    description: str | None = None
    enum: list[str | int] | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    exclusive_minimum: int | float | None = Field(None, alias="exclusiveMinimum")
    default: str | int | float | bool | None = None
    items: CalculatorInputPropertyOut | None = Field(None, description="An array's items")
    unique_items: bool | None = Field(None, alias="uniqueItems")
    min_items: int | None = Field(None, alias="minItems")
    properties: dict[str, CalculatorInputPropertyOut] | None = Field(None, description="An object's keys")
    required: list[str] | None = None
    additional_properties: bool | None = Field(None, alias="additionalProperties")


class CalculatorInputSchemaOut(Schema):
    """A calculator's input object as a JSON Schema: exactly these keys (unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    title: str
    description: str
    type: Literal["object"]
    properties: dict[str, CalculatorInputPropertyOut]
    required: list[str]
    additional_properties: bool = Field(alias="additionalProperties")


class CalculatorOut(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str
    title: str
    description: str
    source: str
    input_schema: CalculatorInputSchemaOut
    outputs: dict[str, str] = Field(description="The contract's output keys, each with its meaning")


def _described(name: str) -> CalculatorOut:
    return CalculatorOut.model_validate(describe(name))


@router.get(
    "/calculators",
    response=Page[CalculatorOut],
    summary="Calculators of the contract",
    by_alias=True,
    exclude_unset=True,
)
def calculator_list(request: HttpRequest, page: Query[PageQuery]) -> Page[CalculatorOut]:
    """In the contract's order. `since`: the calculators come with a release of cartrial, never from
    a change at run time, so none is listed as changed after any instant."""
    names = [] if page.since is not None else list(CALCULATOR_NAMES)
    window = paged(names, page, _described)
    # The descriptions are validated already: the page holds them as they are, so that each one is
    # written with exactly its own keys (`exclude_unset`), as `describe` gives them.
    return Page[CalculatorOut].model_construct(items=window.items, total=window.total, next_offset=window.next_offset)


@router.get(
    "/calculators/{name}",
    response=CalculatorOut,
    summary="One calculator: input schema and outputs",
    by_alias=True,
    exclude_unset=True,
)
def calculator_describe(request: HttpRequest, name: str) -> CalculatorOut:
    return _described(name)


# --- calculators: the contract's outputs ---------------------------------------------------------


class SledaiCountedOut(Schema):
    descriptor: str
    weight: int


class Sledai2kResultOut(Schema):
    score: int
    clinical_score: int
    counted: list[SledaiCountedOut]
    lookback_days: int
    max_score: int
    serology_points: int
    arthritis_rule: str
    explanation: list[str]


class EularCountedOut(Schema):
    domain: str
    criterion: str
    weight: int


class EularOutweighedOut(EularCountedOut):
    counted_instead: str


class EularAcr2019ResultOut(Schema):
    entry_criterion_met: bool
    score: int
    clinical_criterion_met: bool
    classified: bool
    counted: list[EularCountedOut]
    outweighed: list[EularOutweighedOut]
    explanation: list[str]


class EgfrResultOut(Schema):
    egfr: float
    unit: str
    equation: str
    creatinine_mg_per_dl: float


class CrsResultOut(Schema):
    grade: int
    reason: str
    grading: str


class IceItemsOut(Schema):
    orientation: int
    naming: int
    command: int
    writing: int
    attention: int


class IceResultOut(Schema):
    score: int
    items: IceItemsOut
    max_score: int


class IcansDomainOut(Schema):
    domain: str
    grade: int
    finding: str


class IcansResultOut(Schema):
    grade: int
    domains: list[IcansDomainOut]
    ice_performed: bool
    grading: str
    explanation: list[str]


class CtcaeLabResultOut(Schema):
    grade: int
    term: str
    band: str
    ctcae_version: str
    note: str | None = Field(None, description="Only for anemia: grade 4 is a clinical judgement")


class UnmetCriterionOut(Schema):
    criterion: str
    reason: str


class DorisResultOut(Schema):
    remission: bool
    clinical_sledai: int
    unmet: list[str]
    unmet_reasons: list[UnmetCriterionOut]
    prednisone_bound: str
    definition: str


class LldasResultOut(Schema):
    lldas: bool
    sledai: int
    unmet: list[str]
    unmet_reasons: list[UnmetCriterionOut]
    new_features: list[str]
    definition: str


class UnmetComponentOut(Schema):
    component: str
    reason: str


class Sri4ResultOut(Schema):
    responder: bool
    unmet: list[str]
    unmet_reasons: list[UnmetComponentOut]
    sledai_reduction: int
    pga_change: float
    sledai_version: str


class IcahtEarlyOut(Schema):
    days_anc_le_500: int
    days_anc_le_100: int
    days_without_value: list[int]
    duration_rule: str
    max_interpolation_gap_days: int


class IcahtLateOut(Schema):
    nadir_anc_per_ul: float | None
    confirming_anc_per_ul: float | None
    values_in_window: int
    window_days: list[int]


class IcahtResultOut(Schema):
    early_grade: int | None
    late_grade: int | None
    early: IcahtEarlyOut
    late: IcahtLateOut
    ignored_days: list[int]
    explanation: list[str]


class UnitsResultOut(Schema):
    value: float
    unit: str


# Each calculator's output: the contract's keys and the extra ones that explain what counted.
CALCULATOR_RESULTS: dict[str, type[Schema]] = {
    "sledai2k": Sledai2kResultOut,
    "eular-acr-2019": EularAcr2019ResultOut,
    "egfr": EgfrResultOut,
    "crs": CrsResultOut,
    "ice": IceResultOut,
    "icans": IcansResultOut,
    "ctcae-lab": CtcaeLabResultOut,
    "doris": DorisResultOut,
    "lldas": LldasResultOut,
    "sri4": Sri4ResultOut,
    "icaht": IcahtResultOut,
    "units": UnitsResultOut,
}

type CalculatorResultOut = (
    Sledai2kResultOut
    | EularAcr2019ResultOut
    | EgfrResultOut
    | CrsResultOut
    | IceResultOut
    | IcansResultOut
    | CtcaeLabResultOut
    | DorisResultOut
    | LldasResultOut
    | Sri4ResultOut
    | IcahtResultOut
    | UnitsResultOut
)

_COMPUTE_BODY = {
    "description": "The input of the calculator named in the path: one of these objects, exactly its keys "
    "(`GET /api/v1/calculators/{name}` gives its JSON Schema; an unknown key is refused)",
    "anyOf": [CALCULATORS[name].input_schema() for name in CALCULATOR_NAMES],
}


@router.post(
    "/calculators/{name}",
    response=CalculatorResultOut,
    summary="Compute a score (JSON in, JSON out; 422 with field errors on bad input)",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": _COMPUTE_BODY}}, "required": True}},
)
def calculator_compute(request: HttpRequest, name: str) -> HttpResponse:
    """The output of the calculator named in the path (its model above), as `cartrial calc NAME`
    writes it: the contract's keys plus the extra ones, written as computed."""
    # The body is read raw: the contract, not a schema of ours, decides what is valid (unknown keys refused).
    try:
        payload = json.loads(request.body or b"null")
    except ValueError:
        raise InvalidInput("The body is not JSON: send one JSON object.", code="invalid_json") from None
    result = calculate(name, payload)
    return HttpResponse(json.dumps(result, cls=NinjaJSONEncoder), content_type="application/json; charset=utf-8")


# --- screening data and verdict --------------------------------------------------------------------

# A screening item's value: a code, a number, a yes/no, a list of codes, or null (not assessed).
type ScreeningValue = str | int | float | bool | list[str] | None
# A value a criterion read: a screening item's or a lab's, as the verdict recorded it.
type FactValue = str | int | float | bool | list[str | int | float | bool | None] | None


class ScreeningLabIn(Schema):
    analyte: str = Field(description="A screening analyte (`GET /api/v1/screening-fields` lists them)")
    value: float | None
    unit: str
    sampled_at: datetime
    lower_limit: float | None = None
    upper_limit: float | None = None
    limit_of_quantification: float | None = None


class EligibilityIn(Schema):
    """Screening data (null = not assessed), labs, the investigator's answers for the criteria the
    protocol gives no rule, and the reason once data is saved."""

    data: dict[str, ScreeningValue] = Field(description=described_by(_SCREENING_FIELDS))
    labs: list[ScreeningLabIn] = []
    attestations: dict[str, str] = Field(
        {}, description="By criterion id: met, not_met or missing (only criteria without a rule)"
    )
    reason: str = Field("", description="Why, once screening data was saved (422 reason_required)")


class EligibilityCriterionOut(Schema):
    id: str
    kind: str
    outcome: Literal["met", "not_met", "missing"]
    values_used: dict[str, FactValue]
    explanation: str = Field(description="In the request's language")


class ScreeningScoreOut(Schema):
    calculator: str
    computed: bool
    result: Sledai2kResultOut | EularAcr2019ResultOut | EgfrResultOut | None = Field(
        description="The calculator's output (`POST /api/v1/calculators/{name}`), when computed"
    )
    missing_inputs: list[str]
    refused: str = Field(description="Why it was not computed, in English as recorded (empty otherwise)")


class EligibilityOut(Schema):
    verdict: Literal["eligible", "not_eligible", "incomplete"]
    criteria: list[EligibilityCriterionOut]
    scores: list[ScreeningScoreOut]
    notes: list[str] = Field(description="In the request's language")


def _rendered(data: object, fallback: object, language: str) -> str:
    if isinstance(data, dict) and "msgid" in data:
        return render(message_from_data(data), language)
    return str(fallback)


def _eligibility_out(result: dict[str, object], language: str) -> EligibilityOut:
    """A verdict as stored (`ScreeningEvaluation.as_dict`), its explanations in `language`."""
    criteria = result.get("criteria")
    scores = result.get("scores")
    stored_notes = result.get("notes_messages")
    return EligibilityOut.model_validate(
        {
            "verdict": result["verdict"],
            "criteria": [
                {**c, "explanation": _rendered(c.get("explanation_message"), c.get("explanation", ""), language)}
                for c in (criteria if isinstance(criteria, list) else [])
            ],
            "scores": scores if isinstance(scores, list) else [],
            "notes": [_rendered(note, "", language) for note in stored_notes]
            if isinstance(stored_notes, list)
            else result.get("notes", []),
        }
    )


@router.post(
    "/subjects/{code}/eligibility",
    response=EligibilityOut,
    summary="Record screening data and labs; answers the verdict computed from them (per criterion, values used)",
)
def subject_eligibility(request: HttpRequest, code: str, payload: EligibilityIn) -> EligibilityOut:
    reach = reach_subject(request.user, code, Action.ENTER_SCREENING_DATA)
    saved = reach.run(
        lambda: screening_record(
            actor=reach.actor,
            subject=reach.subject,
            protocol=protocol_in_force(),
            data=payload.data,
            labs=[LabObservationInput(**lab.dict()) for lab in payload.labs],
            attestations=payload.attestations,
            reason=payload.reason,
        ),
        what="enter_screening_data",
    )
    return _eligibility_out(saved.assessment.result_json, api_language(request))


@router.post(
    "/subjects/{code}/eligibility/preview",
    response=EligibilityOut,
    summary="The verdict screening data and labs would give, storing nothing (the page's live preview)",
)
def subject_eligibility_preview(request: HttpRequest, code: str, payload: EligibilityIn) -> EligibilityOut:
    """Checked as a save is (422 naming the field), computed, nothing stored: a lab not given is the
    one stored. Screening readers (`reason` is not read)."""
    reach = reach_subject(request.user, code, Action.READ_SCREENING)
    evaluation = screening_preview(
        subject=reach.subject,
        protocol=protocol_in_force(),
        now=reach.actor.now,
        data=payload.data,
        labs=[LabObservationInput(**lab.dict()) for lab in payload.labs],
        attestations=payload.attestations,
    )
    return _eligibility_out(evaluation.as_dict(), api_language(request))


class ScreeningRecordOut(Schema):
    data: dict[str, ScreeningValue] = Field(description=described_by(_SCREENING_FIELDS))
    attestations: dict[str, str]
    revision: int
    first_recorded_at: datetime
    updated_at: datetime


class ScreeningLabOut(Schema):
    id: int = Field(description="The result's id (a correction's `id` for record `lab_observation`)")
    analyte: str
    value: float | None
    unit: str
    lower_limit: float | None
    upper_limit: float | None
    limit_of_quantification: float | None
    sampled_at: datetime


class EligibilityReadOut(Schema):
    editable: bool = Field(description="Screening data may be saved now (the subject is in screening or eligible)")
    age_years: int | None = Field(description="Completed years when the first consent was signed")
    record: ScreeningRecordOut | None = Field(description="The screening data saved (null: none yet)")
    labs: list[ScreeningLabOut] = Field(description="Every screening result, by analyte then time (the latest counts)")
    evaluation: EligibilityOut = Field(description="The verdict computed now from what is stored")


@router.get(
    "/subjects/{code}/eligibility",
    response=EligibilityReadOut,
    summary="The screening data and labs saved, and the verdict computed from them",
)
def subject_eligibility_read(request: HttpRequest, code: str) -> EligibilityReadOut:
    """What the screening page shows (screening readers)."""
    reach = reach_subject(request.user, code, Action.READ_SCREENING)
    subject = reach.subject
    record = selectors.screening_record_get(subject=subject)
    evaluation: ScreeningEvaluation = selectors.screening_evaluation(subject=subject, protocol=protocol_in_force())
    return EligibilityReadOut(
        editable=subject.state in SCREENING_EDIT_STATES,
        age_years=selectors.subject_age_at_consent(subject=subject),
        record=ScreeningRecordOut(
            data=record.data_json,
            attestations=record.attestations_json,
            revision=record.revision,
            first_recorded_at=record.first_recorded_at,
            updated_at=record.updated_at,
        )
        if record
        else None,
        labs=[
            ScreeningLabOut(
                id=row.pk,
                analyte=row.analyte,
                value=row.value,
                unit=row.unit,
                lower_limit=row.lower_limit,
                upper_limit=row.upper_limit,
                limit_of_quantification=row.limit_of_quantification,
                sampled_at=row.sampled_at,
            )
            for row in selectors.screening_lab_rows(subject=subject)
        ],
        evaluation=_eligibility_out(evaluation.as_dict(), api_language(request)),
    )


class ScreeningChoiceOut(Schema):
    value: str | int
    label: str


class ScreeningFieldOut(Schema):
    name: str
    description: str = Field(description="In the request's language")
    type: Literal["boolean", "integer", "choice", "choices"] = Field(
        description="`choice`: one of `choices`; `choices`: a list of distinct `choices` (empty: none present)"
    )
    nullable: bool = Field(description="null means not assessed")
    choices: list[ScreeningChoiceOut] | None
    minimum: int | None
    maximum: int | None
    default: str | int | float | bool | None


class ScreeningUnitOut(Schema):
    unit: str
    label: str
    minimum: float = Field(description="The plausible minimum of a result in this unit")
    maximum: float = Field(description="The plausible maximum of a result in this unit")


class ScreeningAnalyteOut(Schema):
    analyte: str
    label: str
    units: list[ScreeningUnitOut]


class ScreeningFieldsOut(Schema):
    fields: list[ScreeningFieldOut] = Field(description="The keys of the screening `data`")
    labs: list[ScreeningAnalyteOut] = Field(description="The screening analytes and their units")


def _screening_field(name: str, item: InputField, language: str) -> ScreeningFieldOut:
    inner: InputField = getattr(item, "inner", item)
    kind: Literal["boolean", "integer", "choice", "choices"] = "boolean"
    choices: list[ScreeningChoiceOut] | None = None
    minimum = maximum = None
    if isinstance(inner, ChoiceListInput | ChoiceInput):
        kind = "choices" if isinstance(inner, ChoiceListInput) else "choice"
        choices = [ScreeningChoiceOut(value=c, label=tr(clinical_label(c), language)) for c in inner.choices]
    elif isinstance(inner, IntegerInput):
        kind = "integer"
        if inner.choices:
            choices = [ScreeningChoiceOut(value=c, label=str(c)) for c in inner.choices]
        minimum, maximum = inner.minimum, inner.maximum
    elif not isinstance(inner, BooleanInput):
        raise TypeError(f"screening item {name} has no API description")
    return ScreeningFieldOut(
        name=name,
        description=tr(item.description, language),
        type=kind,
        nullable=inner is not item,
        choices=choices,
        minimum=minimum,
        maximum=maximum,
        default=item.default if isinstance(item.default, str | int | float | bool) else None,
    )


@router.get("/screening-fields", response=ScreeningFieldsOut, summary="The screening data's fields and labs")
def screening_fields(request: HttpRequest) -> ScreeningFieldsOut:
    """The keys `POST /api/v1/subjects/{code}/eligibility` takes as `data`, with their values, and the
    screening analytes with their units and plausible ranges (labels in the request's language)."""
    language = api_language(request)
    return ScreeningFieldsOut(
        fields=[_screening_field(name, item, language) for name, item in SCREENING_FIELDS.items()],
        labs=[
            ScreeningAnalyteOut(
                analyte=analyte,
                label=tr(ANALYTES[analyte].label, language),
                units=[
                    ScreeningUnitOut(unit=unit, label=tr(unit_label(unit), language), minimum=low, maximum=high)
                    for unit, (low, high) in ANALYTES[analyte].ranges.items()
                ],
            )
            for analyte in selectors.SCREENING_ANALYTES
        ],
    )


# --- screening log, CONSORT flow, re-consent list ---------------------------------------------------


def _center_in_scope(scope: Scope, center: str | None) -> str | None:
    if center is not None and center not in scope.center_codes.values():
        raise NotFound("No center '{center}' in your scope.", code="not_found", center=center)
    return center


@router.get("/screening-log.csv", summary="Screening log of my centers as CSV (pseudonymous)")
def screening_log_export(request: HttpRequest, center: str | None = None) -> HttpResponse:
    scope = require_somewhere(request.user, Action.READ_SCREENING, "screening_log")
    return screening_log_csv(scope, _center_in_scope(scope, center))


class FailedCriterionOut(Schema):
    id: str
    text: str = Field(description="The criterion in the request's language")


ScreeningOutcome = Literal["in_screening", "screen_failed", "eligible", "included", "exited_before_inclusion"]


class ScreeningLogRowOut(Schema):
    center: str
    subject: str
    screened_at: datetime
    outcome: ScreeningOutcome
    outcome_label: str
    state: str
    state_label: str
    latest_verdict: str = Field(description="The latest verdict computed (empty: none yet)")
    failed_criteria: list[FailedCriterionOut]
    reason: str = Field(description="Why screening failed, as recorded")


def _criteria_texts(protocol: Protocol, language: str) -> dict[str, str]:
    return {c.id: protocol_text(c.text, language) for c in protocol.criteria}


@router.get("/screening-log", response=Page[ScreeningLogRowOut], summary="Screening log of my centers (pseudonymous)")
def screening_log_read(
    request: HttpRequest, page: Query[PageQuery], center: str | None = None
) -> Page[ScreeningLogRowOut]:
    """The rows of the screening log page and its CSV, oldest screening first. `since`: the subjects
    about which the audit trail holds an entry after it."""
    scope = require_somewhere(request.user, Action.READ_SCREENING, "screening_log")
    rows = selectors.screening_log(scope=scope, center_code=_center_in_scope(scope, center), since=page.since)
    language = api_language(request)
    texts = _criteria_texts(protocol_in_force(), language)

    def out(row: selectors.ScreeningLogRow) -> ScreeningLogRowOut:
        return ScreeningLogRowOut(
            center=row.center_code,
            subject=row.subject_code,
            screened_at=row.screened_at,
            outcome=cast(ScreeningOutcome, row.outcome),
            outcome_label=tr(OUTCOME_LABELS[row.outcome], language),
            state=row.state,
            state_label=tr(STATE_LABELS[State(row.state)], language),
            latest_verdict=row.verdict,
            failed_criteria=[FailedCriterionOut(id=c, text=texts.get(c, c)) for c in row.failed_criteria],
            reason=row.failure_reason,
        )

    return paged(rows, page, out)


class CriterionCountOut(Schema):
    criterion: str
    text: str = Field(description="The criterion in the request's language")
    count: int


class ConsortOut(Schema):
    center: str | None = Field(description="The center counted (null: all my centers)")
    screened: int
    in_screening: int
    screen_failed: int
    failed_by_criterion: list[CriterionCountOut] = Field(description="Most frequent first")
    failed_without_criterion: int
    exited_before_inclusion: int
    eligible: int
    eligible_awaiting_inclusion: int
    included: int
    infused: int
    in_follow_up: int
    exited_after_inclusion: int


@router.get("/consort", response=ConsortOut, summary="CONSORT flow of my centers: screened to follow-up")
def consort_flow_read(request: HttpRequest, center: str | None = None) -> ConsortOut:
    """The counts of the CONSORT page, from the screening log."""
    scope = require_somewhere(request.user, Action.READ_SCREENING, "consort")
    chosen = _center_in_scope(scope, center)
    flow = selectors.consort_flow(scope=scope, center_code=chosen)
    texts = _criteria_texts(protocol_in_force(), api_language(request))
    return ConsortOut(
        center=chosen,
        screened=flow.screened,
        in_screening=flow.in_screening,
        screen_failed=flow.screen_failed,
        failed_by_criterion=[
            CriterionCountOut(criterion=criterion, text=texts.get(criterion, criterion), count=count)
            for criterion, count in flow.failed_by_criterion
        ],
        failed_without_criterion=flow.failed_without_criterion,
        exited_before_inclusion=flow.exited_before_inclusion,
        eligible=flow.eligible,
        eligible_awaiting_inclusion=flow.eligible_awaiting_inclusion,
        included=flow.included,
        infused=flow.infused,
        in_follow_up=flow.in_follow_up,
        exited_after_inclusion=flow.exited_after_inclusion,
    )


class ReconsentDueOut(Schema):
    subject: str
    center: str
    state: str
    state_label: str
    signed_version: str = Field(description="The version of the latest consent signed")
    language: str
    current_version: str = Field(description="The current version in that language (— when none)")


@router.get("/reconsent", response=Page[ReconsentDueOut], summary="Subjects to re-consent on the current version")
def reconsent_list(request: HttpRequest, page: Query[PageQuery], center: str | None = None) -> Page[ReconsentDueOut]:
    """The active subjects of my centers whose latest consent is not the current version in its
    language, by center then number. `since`: the subjects about which the audit trail holds an
    entry after it."""
    scope = require_somewhere(request.user, Action.READ_SCREENING, "reconsent")
    rows = selectors.consent_reconsent_list(
        scope=scope, protocol=protocol_in_force(), center_code=_center_in_scope(scope, center), since=page.since
    )
    language = api_language(request)
    return paged(
        rows,
        page,
        lambda row: ReconsentDueOut(
            subject=row.subject.code,
            center=row.subject.center.code,
            state=row.subject.state,
            state_label=tr(STATE_LABELS[State(row.subject.state)], language),
            signed_version=row.signed_version,
            language=row.language,
            current_version=row.current_version,
        ),
    )
