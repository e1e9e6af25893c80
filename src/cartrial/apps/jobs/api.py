"""API of long jobs: the reader's jobs, one job (progress, result, error), its file, and a request.

The request's body and a job's `parameters` and `result` are typed by the registered kinds' own
schemas (`JobKind.parameters_schema`, `result_schema`): the body is one variant per kind, chosen by
`kind` (built when this module is imported, after every app registered its kinds). Pydantic reads
the body against the schema; the kind's `check`/`resolve` then applies the rules, as for the pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, cast

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status
from pydantic import BaseModel, ValidationError, ValidatorFunctionWrapHandler, WrapValidator, create_model
from pydantic_core import InitErrorDetails, PydanticCustomError

from cartrial.apps import text
from cartrial.apps.access import actor_somewhere, require_somewhere
from cartrial.apps.api_contract import Page, PageQuery, paged
from cartrial.apps.jobs import selectors, services
from cartrial.apps.jobs.models import Job
from cartrial.apps.jobs.presenters import kind_label, progress_text, summary_text
from cartrial.apps.jobs.registry import JobKind, job_kind, job_kinds
from cartrial.apps.jobs.views import file_response
from cartrial.domain.errors import DomainError
from cartrial.domain.roles import Action

router = Router(tags=["jobs"])

JobStatus = Literal["queued", "running", "done", "failed"]


def _variant(kind: JobKind, schema: type[BaseModel]) -> type[Schema]:
    """The request of one kind: `{"kind": <its code>, "parameters": <its schema>}` (parameters may be
    left out when the kind requires none of them)."""
    required = any(field.is_required() for field in schema.model_fields.values())
    code: Any = Literal.__getitem__(kind.code)
    model: type[Schema] = create_model(
        "".join(part.title() for part in kind.code.split("_")) + "JobIn",
        __base__=Schema,
        __doc__=f"Request a job: {kind.label}.",
        kind=(code, Field(description="The kind of job")),
        parameters=(schema, Field(...) if required else Field(default_factory=schema)),
    )
    return model


def _as_sent(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """The body's refusals named as the client wrote them: pydantic places a variant's errors under
    its tag (`plan_network.parameters.solver`), and an unknown or missing kind at the body itself."""
    try:
        return handler(value)
    except ValidationError as error:
        tags = set(_REQUESTABLE)
        named: list[InitErrorDetails] = []
        for detail in error.errors():
            loc = tuple(detail["loc"])
            if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
                loc = ("kind",)
            elif loc[:1] and loc[0] in tags:
                loc = loc[1:]
            named.append(
                {"type": PydanticCustomError(detail["type"], detail["msg"]), "loc": loc, "input": detail["input"]}
            )
        raise ValidationError.from_exception_data(error.title, named) from None


def _request_body(kinds: Iterable[JobKind]) -> object:
    """The body of `POST /api/v1/jobs`: one variant per kind that declares its parameters, by `kind`."""
    variants = tuple(_variant(kind, kind.parameters_schema) for kind in kinds if kind.parameters_schema is not None)
    if len(variants) == 1:
        return variants[0]
    return Annotated[Union.__getitem__(variants), Field(discriminator="kind"), WrapValidator(_as_sent)]


def _union(schemas: Iterable[type[BaseModel] | None]) -> object:
    """The union of the kinds' schemas (a job's parameters or result, whichever kind it is)."""
    distinct = tuple(dict.fromkeys(schema for schema in schemas if schema is not None))
    return Union.__getitem__(distinct) if len(distinct) > 1 else distinct[0]


_REQUESTABLE = [kind.code for kind in job_kinds() if kind.parameters_schema is not None]

if TYPE_CHECKING:
    JobParameters = BaseModel
    JobResult = BaseModel

    class JobRequestIn(Schema):
        kind: str
        parameters: BaseModel

else:
    JobRequestIn = _request_body(job_kinds())
    JobParameters = _union(kind.parameters_schema for kind in job_kinds())
    JobResult = _union(kind.result_schema for kind in job_kinds())


class JobProgressOut(Schema):
    percent: int = Field(description="0 to 100")
    message: str = Field(description="Where the work stands, in the request's language")


class JobFileOut(Schema):
    name: str
    url: str = Field(description="GET it: the file the job produced")
    content_type: str


class JobOut(Schema):
    """A job: its record, the progress and outcome in the request's language; in a list, without
    its parameters and result (a planning instance, a plan: large), read from the job itself."""

    id: int
    kind: str = Field(description="The kind's code (`POST /api/v1/jobs` lists them)")
    kind_label: str
    status: JobStatus
    progress: JobProgressOut
    file: JobFileOut | None = Field(description="The file the job produced, once done; null without one")
    summary: str = Field(description="The outcome in one sentence (the error's, when it failed)")
    error: str | None
    requested_by: str = Field(description="The requester's username")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parameters: JobParameters | None = Field(description="As stored (checked); null in a list")
    result: JobResult | None = Field(description="What the work returned, once done; null in a list")


def _typed(schema: type[BaseModel] | None, value: object) -> BaseModel | None:
    """A stored JSON value read with its kind's schema (only the keys the schema declares: an
    export also stores the access resolved for its requester, which is not the API's to show)."""
    if schema is None or not isinstance(value, dict):
        return None
    return schema.model_validate({key: item for key, item in value.items() if key in schema.model_fields})


def _job_out(job: Job, language: str, *, detail: bool = True) -> JobOut:
    try:
        kind: JobKind | None = job_kind(job.kind)
    except DomainError:
        kind = None  # its app was removed: the record is still shown
    return JobOut(
        id=job.pk,
        kind=job.kind,
        kind_label=kind_label(job.kind, language),
        status=cast(JobStatus, job.status),
        progress=JobProgressOut(percent=job.progress_percent, message=progress_text(job, language)),
        file=JobFileOut(name=job.result_file_name, url=f"/api/v1/jobs/{job.pk}/file", content_type=job.result_file_type)
        if job.result_file_name
        else None,
        summary=summary_text(job, language),
        error=job.error or None,
        requested_by=job.requested_by.get_username(),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        parameters=_typed(kind.parameters_schema, job.parameters) if detail and kind else None,
        result=_typed(kind.result_schema, job.result) if detail and kind else None,
    )


@router.get(
    "", response=Page[JobOut], summary="Your jobs (every job of the study for the sponsor's roles), newest first"
)
def jobs_list(request: HttpRequest, page: Query[PageQuery], status: JobStatus | None = None) -> Page[JobOut]:
    """`since`: the jobs created, started or finished after it, by the job's own times (a job is
    not audited as it runs: its request and its end are)."""
    scope = require_somewhere(request.user, Action.READ_JOBS, "jobs")
    language = text.api_language(request)
    jobs = selectors.jobs_for(scope, status=status, since=page.since).defer("parameters")
    return paged(jobs, page, lambda job: _job_out(job, language, detail=False))


# A job's parameters and result are shown with the keys the kind stored (an override left out is
# left out, not null): `exclude_unset`.
@router.post("", response={202: JobOut}, exclude_unset=True, summary="Request a job of a registered kind (queued)")
def job_request(request: HttpRequest, payload: JobRequestIn) -> Status[JobOut]:
    kind = job_kind(payload.kind)
    actor = actor_somewhere(request.user, kind.action, "jobs")
    parameters = payload.parameters.model_dump(mode="json", exclude_unset=True)
    job = services.job_enqueue(actor=actor, kind=kind.code, parameters=parameters)
    return Status(202, _job_out(job, text.api_language(request)))


@router.get(
    "/{job_id}",
    response=JobOut,
    exclude_unset=True,
    summary="One job: status, progress (percent, message), result or error",
)
def job_get(request: HttpRequest, job_id: int) -> JobOut:
    scope = require_somewhere(request.user, Action.READ_JOBS, "jobs")
    return _job_out(selectors.job_get(scope, job_id), text.api_language(request))


@router.get("/{job_id}/file", response={200: None}, summary="The file a job produced (a plot, a plan)")
def job_file(request: HttpRequest, job_id: int) -> HttpResponse:
    scope = require_somewhere(request.user, Action.READ_JOBS, "jobs")
    return file_response(selectors.job_file(scope, job_id))
