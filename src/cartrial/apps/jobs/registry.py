"""The job kinds: what the queue can run, registered by the apps that own the work.

The jobs app never imports those apps (they sit above it): each registers its kinds in its
`AppConfig.ready()` with `job_kind_register(JobKind(...))`, so every process that sets Django up
(the web server, the worker, a test) knows the same kinds. docs/jobs.md shows how.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from cartrial.apps.audit.services import Actor
from cartrial.domain.errors import InvalidInput
from cartrial.domain.roles import Action
from cartrial.domain.text import Message


class ProgressReport(Protocol):
    """What a job's work calls to say how far it is; the worker stores it (throttled) for the page."""

    def __call__(self, percent: float, message: Message | None = None) -> None: ...

    def step(self, done: int, total: int, message: Message | None = None) -> None: ...


@dataclass(frozen=True)
class JobFile:
    """A file a job produces (a plot, a plan as JSON): kept with the job, downloaded from its page."""

    name: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class JobOutcome:
    """What the work returns: a JSON-ready result (shown and served by the API), perhaps a file."""

    result: Mapping[str, Any]
    file: JobFile | None = None


class NoParameters(BaseModel):
    """The parameters schema of a kind that takes none (its `check` is `no_parameters`)."""

    model_config = ConfigDict(extra="forbid", title="NoParameters")


def no_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters check of a kind that takes none: anything given is refused, nothing stored."""
    if parameters:
        raise InvalidInput(
            "This kind of job takes no parameters ({names}).",
            code="job_parameters_invalid",
            item="parameters",
            names=sorted(parameters),
        )
    return {}


@dataclass(frozen=True)
class JobKind:
    """One kind of long job.

    `action` is who may request it (a role allowing it at one center at least); `check` turns the
    requested parameters into the stored ones or raises `InvalidInput` (nothing is stored, nothing
    queued); `run(parameters, progress)` does the work in the worker; `summary(result)` says the
    outcome in one translatable sentence for the pages. `offered` puts a start button on /jobs/
    (kinds without parameters); the others are started from their own app's page or the API.
    `result_view` names the URL (taking `job_id`) of the owning app's page that shows a finished
    job's result (a plan as a table, a simulation's plots); the job's page links to it.
    `resolve(parameters, actor)`, when given, replaces `check` for a kind whose stored parameters
    depend on who asks (an export: the subjects the requester may export, whose identity): the
    work then runs on what the requester could reach when asking, whoever calls the queue.

    `parameters_schema` and `result_schema` are the API's typed description of what a request
    sends (the `parameters` of `POST /api/v1/jobs`, checked by pydantic first) and of what `run`
    returns (the `result` of a job read through the API). They describe; `check`/`resolve` stays
    the one place the rules are applied (a range, a JSON path into an instance, the requester's
    access), so the pages, the CLI and the API refuse the same things with the same codes. A kind
    without a `parameters_schema` cannot be requested through the API, and the API shows neither
    its parameters nor its result.
    """

    code: str
    label: str
    action: Action
    run: Callable[[Mapping[str, Any], ProgressReport], JobOutcome]
    check: Callable[[Mapping[str, Any]], dict[str, Any]] = no_parameters
    summary: Callable[[Mapping[str, Any]], Message] | None = None
    offered: bool = False
    result_view: str | None = None
    resolve: Callable[[Mapping[str, Any], Actor], dict[str, Any]] | None = None
    parameters_schema: type[BaseModel] | None = None
    result_schema: type[BaseModel] | None = None


_KINDS: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> None:
    """Make `kind` known; registering the same code twice with another definition is a bug."""
    known = _KINDS.get(kind.code)
    if known is not None and known != kind:
        raise ValueError(f"job kind {kind.code!r} is already registered by {known.run.__module__}")
    _KINDS[kind.code] = kind


def job_kind(code: str) -> JobKind:
    """The registered kind `code`; InvalidInput naming the known ones otherwise."""
    kind = _KINDS.get(code)
    if kind is None:
        raise InvalidInput(
            "No job kind '{kind}'; known kinds: {known}.",
            code="job_kind_unknown",
            item="kind",
            kind=code,
            known=sorted(_KINDS),
        )
    return kind


def job_kinds() -> list[JobKind]:
    """Every registered kind, by code."""
    return [_KINDS[code] for code in sorted(_KINDS)]
