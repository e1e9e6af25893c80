"""The job kinds the jobs app registers itself: the audit-chain walk (the audit app is below the
jobs app, so it cannot register its own). Other apps register theirs in their `ready()`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.jobs.registry import JobKind, JobOutcome, NoParameters, ProgressReport, job_kind_register
from cartrial.domain.roles import Action
from cartrial.domain.text import N_, Message

AUDIT_VERIFY = "audit_verify"


class AuditChainBreak(BaseModel):
    sequence: int | None = Field(description="The first entry where the chain does not hold (null: the head row)")
    problem: str = Field(description="What does not hold there (the walk's English text)")


class AuditVerifyResult(BaseModel):
    """What `audit_verify_run` returns."""

    intact: bool
    checked: int = Field(description="How many entries were verified")
    head: str | None = Field(description="The SHA-256 of the last entry when the chain is intact")
    first_break: AuditChainBreak | None


def audit_verify_run(parameters: Mapping[str, Any], progress: ProgressReport) -> JobOutcome:
    """`cartrial audit verify` as a job: the same walk, its progress by entries walked."""

    def walked(done: int, total: int) -> None:
        progress.step(
            done, total, Message(N_("{done} of {total} audit entries checked"), {"done": done, "total": total})
        )

    report = audit_verify(progress=walked)
    first_break = report.first_break
    return JobOutcome(
        {
            "intact": report.intact,
            "checked": report.checked,
            "head": report.head_hash if report.intact else None,
            "first_break": None
            if first_break is None
            else {"sequence": first_break.sequence, "problem": first_break.problem},
        }
    )


def audit_verify_summary(result: Mapping[str, Any]) -> Message:
    """The walk's outcome in one sentence (the problem itself is the walk's English text)."""
    if result.get("intact"):
        return Message(
            N_("Audit trail intact: {checked} entries verified; head {head}."),
            {"checked": result.get("checked", 0), "head": result.get("head", "")},
        )
    broken = result.get("first_break") or {}
    return Message(
        N_("Audit trail broken at entry #{sequence}: {problem} ({checked} entries verified before it)."),
        {
            "sequence": broken.get("sequence") or "—",
            "problem": broken.get("problem", ""),
            "checked": result.get("checked", 0),
        },
    )


def register_audit_verify() -> None:
    job_kind_register(
        JobKind(
            code=AUDIT_VERIFY,
            label=N_("Verify the audit trail's hash chain"),
            action=Action.VERIFY_AUDIT_TRAIL,
            run=audit_verify_run,
            summary=audit_verify_summary,
            offered=True,
            parameters_schema=NoParameters,
            result_schema=AuditVerifyResult,
        )
    )
