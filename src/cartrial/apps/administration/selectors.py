"""Reads of the administration pages: the study's audit trail filtered, the people and their roles,
the API tokens. The caller has passed the access entry point."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Prefetch, Q, QuerySet

from cartrial.apps.accounts.models import ApiToken, Membership, User
from cartrial.apps.audit.models import AuditEntry
from cartrial.domain.standards.tables import spreadsheet_safe


@dataclass(frozen=True)
class AuditFilter:
    """What the study audit view narrows the trail to (every part optional)."""

    date_from: date | None = None
    date_to: date | None = None
    center: str = ""
    actor: str = ""
    event: str = ""
    entity: str = ""
    subject: str = ""
    since: datetime | None = None


def readable_entries(center_codes: Iterable[str]) -> Q:
    """The entries of the study a reader of these centers may see: those about a subject of one of
    them (a subject's code starts with its center's), those written at one of them about no subject,
    and the study's own entries (no center, no subject: accounts, tokens, protocol)."""
    codes = sorted(set(center_codes))
    about_subject = Q()
    for code in codes:
        about_subject |= Q(subject_code__startswith=f"{code}-")
    no_subject = Q(subject_code="") & (Q(center_code__in=codes) | Q(center_code=""))
    return no_subject | (about_subject if codes else Q(pk__in=[]))


def study_audit_entries(center_codes: Iterable[str], chosen: AuditFilter) -> QuerySet[AuditEntry]:
    """The study's audit entries the reader may see, narrowed by `chosen`, newest first. Dates are
    UTC days, as the trail records them; the center narrows to one of the reader's centers."""
    codes = set(center_codes)
    if chosen.center:
        codes &= {chosen.center}
    rows = AuditEntry.objects.filter(readable_entries(codes))
    if chosen.center:
        rows = rows.exclude(Q(subject_code="") & Q(center_code=""))
    if chosen.date_from is not None:
        rows = rows.filter(occurred_at__gte=datetime.combine(chosen.date_from, time(0), tzinfo=UTC))
    if chosen.date_to is not None and chosen.date_to < date.max:
        end = datetime.combine(chosen.date_to + timedelta(days=1), time(0), tzinfo=UTC)
        rows = rows.filter(occurred_at__lt=end)
    if chosen.actor:
        rows = rows.filter(actor_username__iexact=chosen.actor.strip())
    if chosen.event:
        rows = rows.filter(event=chosen.event)
    if chosen.entity:
        rows = rows.filter(entity=chosen.entity)
    if chosen.subject:
        rows = rows.filter(subject_code=chosen.subject.strip().upper())
    if chosen.since is not None:
        rows = rows.filter(occurred_at__gt=chosen.since)
    return rows.order_by("-sequence")


CSV_COLUMNS = (
    "sequence",
    "occurred_at_utc",
    "actor",
    "role",
    "center",
    "event",
    "entity",
    "entity_id",
    "subject",
    "changes",
    "reason",
    "entry_sha256",
)


class _Line:
    """A file-like that hands back what the csv module writes (one line at a time)."""

    def write(self, text: str) -> str:
        return text


def audit_csv_lines(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    """The entries as CSV lines, streamed (the memory stays flat whatever their number); every text
    cell neutralised for spreadsheets (formula injection), the changes as recorded (JSON)."""
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_COLUMNS)
    fields = (
        "sequence",
        "occurred_at",
        "actor_username",
        "role",
        "center_code",
        "event",
        "entity",
        "entity_id",
        "subject_code",
        "changes_json",
        "reason",
        "entry_hash",
    )
    for values in entries.values_list(*fields).iterator(chunk_size=2000):
        sequence, occurred_at, *texts = values
        yield writer.writerow([sequence, occurred_at.isoformat(), *(spreadsheet_safe(str(t)) for t in texts)])


def users_with_memberships() -> QuerySet[User]:
    """Every account with its memberships (and their centers), by username."""
    memberships = Prefetch("memberships", queryset=Membership.objects.select_related("center").order_by("center__code"))
    return User.objects.prefetch_related(memberships).order_by("username")


def user_named(username: str) -> User | None:
    """The account of `username` in any case (usernames ignore case)."""
    return users_with_memberships().filter(username__iexact=username.strip()).first()


def api_tokens(username: str = "") -> QuerySet[ApiToken]:
    """The API tokens (never the tokens themselves: prefix, label, owner, dates, state), newest first."""
    rows = ApiToken.objects.select_related("user").order_by("-created_at", "-pk")
    if username:
        rows = rows.filter(user__username__iexact=username.strip())
    return rows
