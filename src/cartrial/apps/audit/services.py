"""Writing to the audit trail: the only way any change of trial data is recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from django.db import connection, transaction

from cartrial.apps import clock
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditChainHead, AuditEntry
from cartrial.domain.audit_chain import (
    CHAINED_FIELDS,
    GENESIS_HASH,
    ChainedContent,
    canonical_json,
    chained_row,
    entry_hash,
)
from cartrial.domain.errors import AccessDenied, DomainError, InvalidInput
from cartrial.domain.text import Message, message_data

logger = logging.getLogger("cartrial.audit")


class ReasonRequired(InvalidInput):
    code = "reason_required"


@dataclass(frozen=True)
class Actor:
    """One user action: who acts, in which role, at which center, and when.

    `now` is taken once when the action starts (the access entry point, a CLI command) and every
    record and audit entry of the action carries it, so one action has one time.
    """

    user_id: int | None
    username: str
    role: str
    center_code: str
    now: datetime

    @classmethod
    def system(cls, name: str = "system", now: datetime | None = None) -> Actor:
        """The actor of set-up commands run from the CLI (demo, protocol registration)."""
        return cls(user_id=None, username=name, role="system", center_code="", now=now or clock.now())

    @property
    def recording_user_id(self) -> int:
        """The acting user's id, for the records a person answers for (`recorded_by`, `thawed_by` ...).

        Those columns are not nullable: a system actor has no user, and writing one of them in its
        name is a bug, named here rather than as an integrity error from the database.
        """
        if self.user_id is None:
            raise ValueError(f"the system actor {self.username!r} cannot record what a person answers for")
        return self.user_id


@dataclass(frozen=True)
class Change:
    """One field's change: old → new (None for a field that had no value)."""

    field: str
    old: Any
    new: Any


def changes_between(before: dict[str, Any] | None, after: dict[str, Any]) -> list[Change]:
    """The field changes from `before` (None for a new record) to `after`, in field order."""
    before = before or {}
    return [Change(k, before.get(k), v) for k, v in after.items() if before.get(k) != v or not before]


def audit_record(
    *,
    actor: Actor,
    event: AuditEvent,
    entity: str,
    entity_id: str,
    changes: Sequence[Change] = (),
    reason: str = "",
    subject_code: str = "",
    center_code: str | None = None,
    is_correction: bool = False,
) -> AuditEntry:
    """Append one entry to the chain, inside the caller's transaction.

    A correction of data already saved needs a reason (21 CFR Part 11 style); refusing here
    keeps the rule in one place for every app.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    if is_correction and not reason.strip():
        raise ReasonRequired("A reason for the change is required once data has been saved.", item="reason")
    sequence, previous_hash = _head_advance()
    content = ChainedContent(
        sequence=sequence,
        occurred_at=actor.now,
        actor_id=actor.user_id,
        actor_username=actor.username,
        role=actor.role,
        center_code=actor.center_code if center_code is None else center_code,
        event=str(event),
        entity=entity,
        entity_id=str(entity_id),
        subject_code=subject_code,
        changes_json=canonical_json([{"field": c.field, "old": c.old, "new": c.new} for c in changes]),
        reason=reason,
        previous_hash=previous_hash,
    )
    digest = entry_hash(content)
    entry = AuditEntry(**{name: getattr(content, name) for name in CHAINED_FIELDS}, entry_hash=digest)
    entry.pk = _entry_append(chained_row(content, digest))
    entry._state.adding, entry._state.db = False, connection.alias
    return entry


# The append is two statements (ADR 0006): the first moves the head on and locks it until the
# caller's commit; the second inserts the entry and gives the head its hash (one statement on
# PostgreSQL; SQLite, without data-modifying WITH, runs the two parts). Raw SQL: the ORM's create
# and save cost as much as the writes themselves. Names from the models, values as parameters.
_HEAD = AuditChainHead._meta.db_table
_ENTRIES = AuditEntry._meta.db_table


@dataclass(frozen=True)
class _AppendSql:
    advance: str
    insert: str
    head_update: str
    together: str


@cache
def _append_sql(vendor: str) -> _AppendSql:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in (*CHAINED_FIELDS, "entry_hash"))
    values = ", ".join(["%s"] * (len(CHAINED_FIELDS) + 1))
    head, entries = quote(_HEAD), quote(_ENTRIES)
    insert = f"INSERT INTO {entries} ({columns}) VALUES ({values}) RETURNING id"  # noqa: S608
    head_update = f"UPDATE {head} SET last_hash = %s WHERE id = 1"  # noqa: S608
    return _AppendSql(
        advance=f"UPDATE {head} SET last_sequence = last_sequence + 1 WHERE id = 1 RETURNING last_sequence, last_hash",  # noqa: S608
        insert=insert,
        head_update=head_update,
        together=f"WITH entry AS ({insert}) {head_update} RETURNING (SELECT id FROM entry)",  # noqa: S608
    )


def _head_advance() -> tuple[int, str]:
    """The next sequence and the hash it follows, the head locked until the caller's commit."""
    with connection.cursor() as cursor:
        cursor.execute(_append_sql(connection.vendor).advance)
        row = cursor.fetchone()
    if row is None:
        AuditChainHead.objects.create(pk=1, last_sequence=1, last_hash=GENESIS_HASH)
        return 1, GENESIS_HASH
    return int(row[0]), str(row[1])


@cache
def _entry_fields() -> tuple[Any, ...]:
    return tuple(AuditEntry._meta.get_field(name) for name in (*CHAINED_FIELDS, "entry_hash"))


def _entry_append(row: tuple[Any, ...]) -> int:
    """Insert the entry (`row`: CHAINED_FIELDS then its hash) and make its hash the head's; its id.
    Each value goes to the database as the ORM sends it (a time, on SQLite: UTC text without offset)."""
    sql = _append_sql(connection.vendor)
    values = [f.get_db_prep_save(value, connection) for f, value in zip(_entry_fields(), row, strict=True)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(sql.together, [*values, row[-1]])
            (entry_id,) = cursor.fetchone()
        else:
            cursor.execute(sql.insert, values)
            (entry_id,) = cursor.fetchone()
            cursor.execute(sql.head_update, [row[-1]])
    return int(entry_id)


def audit_correction(
    *,
    actor: Actor,
    entity: str,
    entity_id: str,
    field: str,
    old: Any,
    new: Any,
    reason: str,
    subject_code: str,
    follows: Sequence[Change] = (),
) -> AuditEntry:
    """One correction of one stored record: `field` old → new, why, and what followed in the same record.

    The history of a record's corrections is these entries (event `record.corrected`, entity the
    kind of record, entity_id its id): the audit trail is the one store of old values (ADR 0004).
    """
    return audit_record(
        actor=actor,
        event=AuditEvent.RECORD_CORRECTED,
        entity=entity,
        entity_id=entity_id,
        subject_code=subject_code,
        changes=[
            Change(field, _plain(old), _plain(new)),
            *(Change(c.field, _plain(c.old), _plain(c.new)) for c in follows),
        ],
        reason=reason.strip(),
        is_correction=True,
    )


def _plain(value: Any) -> Any:
    """A value as the trail keeps it: times and dates as ISO text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def audit_refusal(
    *,
    actor: Actor,
    event: AuditEvent,
    entity: str,
    entity_id: str,
    code: str,
    message: str,
    subject_code: str = "",
    center_code: str | None = None,
    said: Message | None = None,
    what: str = "",
) -> None:
    """Record a refused attempt in its own transaction, after the refused change rolled back.

    `message` is the English text (what the log and the trail keep as said); `said`, the refusal's
    message, is kept as message data too, with `what` was attempted (a step's or action's code), so
    that the trail shows it again in each reader's language.
    """
    logger.warning("refused %s by %s (%s): %s", event, actor.username, code, message)
    refusal: dict[str, Any] = {"code": code, "message": message}
    if said is not None:
        refusal |= {"what": what, "message_data": message_data(said)}
    with transaction.atomic():
        audit_record(
            actor=actor,
            event=event,
            entity=entity,
            entity_id=entity_id,
            changes=[Change("refusal", None, refusal)],
            subject_code=subject_code,
            center_code=center_code,
        )


def audited_attempt[T](
    *, actor: Actor, event: AuditEvent, entity: str, entity_id: str, what: str, subject_code: str, work: Callable[[], T]
) -> T:
    """Run `work` in one transaction; if a rule refuses it, record the refusal after the rollback.

    The one place where refusals are recorded: `event` is the refusal's kind (a step, a logistics
    action...), a refused signature and a refused role are recorded as such, and the records the refusal carries in
    `after_rollback` (e.g. the deviation of a wrong scan) are written too, each in its own transaction.
    """
    try:
        with transaction.atomic():
            return work()
    except DomainError as refusal:
        kind = event
        if refusal.code in SIGNATURE_REFUSAL_CODES:
            kind = AuditEvent.SIGNATURE_FAILED
        elif isinstance(refusal, AccessDenied):
            # A role refused by a rule that needs the record itself (who owns this deviation) is
            # an access refusal like those of the entry point.
            kind = AuditEvent.ACCESS_REFUSED
        audit_refusal(
            actor=actor,
            event=kind,
            entity=entity,
            entity_id=entity_id,
            code=refusal.code,
            message=f"{what}: {refusal}",
            subject_code=subject_code,
            said=refusal.message,
            what=what,
        )
        for record in refusal.after_rollback:
            with transaction.atomic():
                record()
        raise


# Refusal codes of an electronic signature (wrong password, missing or wrong code): recorded as `signature.failed`.
SIGNATURE_REFUSAL_CODES = frozenset({"wrong_password", "wrong_otp_code"})
