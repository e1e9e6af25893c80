"""The casebook's rules: a form's lifecycle, a query's lifecycle, and what a casebook signature covers.

Form lifecycle (issue 9): not started → draft → complete → verified (SDV) → locked → signed.
- Saving computes draft or complete from the missing required items; a saved form that was
  verified, whose changed items lose their verification, falls back to complete (or draft).
- Any change after the first save needs a reason; a locked or signed form refuses changes
  (the data manager unlocks it first, with a reason; an unlock voids the casebook signature).
- The monitor verifies items; a form is verified when every item holding a value is verified.
Query lifecycle: open → answered → closed, and closed or answered → open again (reopen). An
automatic query (from an edit check) closes itself when its finding disappears.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from enum import StrEnum
from typing import Any

from cartrial.domain.ecrf import FormStatus
from cartrial.domain.errors import InvalidInput, Refused
from cartrial.domain.text import N_

# Statuses in which the values of a form may no longer change.
FROZEN_STATUSES: frozenset[FormStatus] = frozenset({FormStatus.LOCKED, FormStatus.SIGNED})


class QueryStatus(StrEnum):
    """Where a data query stands; stable codes (API, database)."""

    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


QUERY_STATUS_LABELS: dict[QueryStatus, str] = {
    QueryStatus.OPEN: N_("Open"),
    QueryStatus.ANSWERED: N_("Answered"),
    QueryStatus.CLOSED: N_("Closed"),
}


class QueryOrigin(StrEnum):
    """Who raised a query: a person (monitor, data manager) or an edit check of the protocol."""

    MANUAL = "manual"
    EDIT_CHECK = "edit_check"


class QueryMove(StrEnum):
    """What can happen to a query; each move is one message in its thread."""

    RAISE = "raise"
    ANSWER = "answer"
    CLOSE = "close"
    REOPEN = "reopen"
    RESOLVE = "resolve"


QUERY_MOVE_LABELS: dict[QueryMove, str] = {
    QueryMove.RAISE: N_("Raised"),
    QueryMove.ANSWER: N_("Answered"),
    QueryMove.CLOSE: N_("Closed"),
    QueryMove.REOPEN: N_("Reopened"),
    QueryMove.RESOLVE: N_("Closed automatically: the data was corrected"),
}

_QUERY_MOVES: dict[QueryMove, tuple[frozenset[QueryStatus], QueryStatus]] = {
    QueryMove.ANSWER: (frozenset({QueryStatus.OPEN}), QueryStatus.ANSWERED),
    QueryMove.CLOSE: (frozenset({QueryStatus.OPEN, QueryStatus.ANSWERED}), QueryStatus.CLOSED),
    QueryMove.REOPEN: (frozenset({QueryStatus.ANSWERED, QueryStatus.CLOSED}), QueryStatus.OPEN),
    QueryMove.RESOLVE: (frozenset({QueryStatus.OPEN, QueryStatus.ANSWERED}), QueryStatus.CLOSED),
}


def query_move_check(status: QueryStatus, move: QueryMove, text: str) -> QueryStatus:
    """The status after `move`, or a refusal naming why (a closed query cannot be answered...)."""
    if move is QueryMove.RAISE:
        raise Refused("A query is raised once.", code="query_already_raised")
    allowed, after = _QUERY_MOVES[move]
    if status not in allowed:
        raise Refused(
            "This query is {status}: it cannot be {move} now.",
            code="query_wrong_status",
            status=QUERY_STATUS_LABELS[status],
            move=QUERY_MOVE_LABELS[move],
        )
    if move is not QueryMove.RESOLVE and not text.strip():
        item = "reason" if move is QueryMove.CLOSE else "text"
        raise InvalidInput("A text is required for this step of the query.", code="query_text_required", item=item)
    return after


def query_text_check(text: str) -> str:
    """A query's question: not empty, one paragraph a center can answer."""
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput("The query needs a question.", code="query_text_required", item="text")
    if len(cleaned) > 2000:
        raise InvalidInput(
            "The query is too long ({length} characters, at most {limit}).",
            code="query_text_too_long",
            item="text",
            length=len(cleaned),
            limit=2000,
        )
    return cleaned


def form_change_check(status: FormStatus) -> None:
    """A locked or signed form refuses every change until the data manager unlocks it."""
    if status in FROZEN_STATUSES:
        raise Refused(
            "This form is locked: the data manager must unlock it (with a reason) before it can change.",
            code="form_locked",
        )


def changed_items(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The items whose value differs, in the order of `after` then of the removed ones."""
    names = list(after) + [name for name in before if name not in after]
    return [name for name in names if before.get(name) != after.get(name)]


def reason_check(before: Mapping[str, Any] | None, after: Mapping[str, Any], reason: str) -> str:
    """Once a form is saved, every change of a value needs a reason (who, when and why are kept)."""
    if before is not None and changed_items(before, after) and not reason.strip():
        raise InvalidInput(
            "A reason for the change is required once data has been saved.", code="reason_required", item="reason"
        )
    return reason.strip()


def saved_status(missing: Iterable[str], verified: Iterable[str], values: Mapping[str, Any]) -> FormStatus:
    """A saved form's status from its missing items and which items the monitor verified: verified
    when every filled item is, and at least one item was (a form holding no value, such as "no
    concomitant medication", is verified against the source like any other)."""
    if list(missing):
        return FormStatus.DRAFT
    filled = {name for name, value in values.items() if value not in (None, "", [])}
    checked = set(verified)
    if checked and filled <= checked:
        return FormStatus.VERIFIED
    return FormStatus.COMPLETE


def verify_check(status: FormStatus, items: Iterable[str], known: Collection[str]) -> list[str]:
    """Items the monitor may verify: on a complete form, among the items the form declares (an
    empty one too: the source shows no value either)."""
    if status is FormStatus.DRAFT:
        raise Refused(
            "This form is still a draft: its required items must be entered before it can be verified.",
            code="form_not_complete",
        )
    form_change_check(status)
    chosen = list(items)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise InvalidInput(
            "'{item}' is not an item of this form: nothing to verify.",
            code="item_unknown",
            item=unknown[0],
        )
    return chosen


def lock_check(status: FormStatus) -> None:
    """The data manager locks a complete or verified form (not a draft, not twice)."""
    if status in (FormStatus.NOT_STARTED, FormStatus.DRAFT):
        raise Refused(
            "Only a complete or verified form can be locked; this one is not complete.", code="form_not_complete"
        )
    if status in FROZEN_STATUSES:
        raise Refused("This form is already locked.", code="form_already_locked")


def unlock_check(status: FormStatus, reason: str) -> str:
    """Unlocking reopens a form to changes: only a locked or signed one, always with a reason."""
    if status not in FROZEN_STATUSES:
        raise Refused("This form is not locked.", code="form_not_locked")
    if not reason.strip():
        raise InvalidInput("A reason for unlocking is required.", code="reason_required", item="reason")
    return reason.strip()


def sign_check(statuses: Mapping[str, FormStatus]) -> None:
    """The investigator signs a casebook whose every saved form is locked (nothing left to change)."""
    if not statuses:
        raise Refused("This casebook holds no form yet: there is nothing to sign.", code="casebook_empty")
    open_forms = sorted(key for key, status in statuses.items() if status not in FROZEN_STATUSES)
    if open_forms:
        raise Refused(
            "Every form must be locked before the casebook is signed; not locked: {forms}.",
            code="casebook_not_locked",
            forms=", ".join(open_forms),
        )


def casebook_content(forms: Iterable[tuple[str, str, str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """What a casebook signature covers (its hash is stored): each form's visit, code, protocol
    version and values, in a stable order so the same casebook always gives the same hash."""
    return [
        {"visit": visit, "form": form, "protocol_version": version, "values": dict(values)}
        for visit, form, version, values in sorted(forms, key=lambda row: (row[0], row[1]))
    ]
