"""The backup file (`cartrial backup`): gzip-compressed JSON lines, written and read as a stream.

A backup is the whole database of one trial, so it can be any size: it is written one row at a
time and read back the same way, never held in memory. Line 1 is the header (the format, the
applied migrations, the audit chain's head); then each table is one line naming its model and
columns, followed by one line per row (a JSON array, in that column order); the last line is the
trailer: the row count of every table and the SHA-256 of every line before it. A file cut short
(a full disk, an interrupted copy) has no trailer, and a changed byte changes the digest: either
is refused before anything is committed.

Values are written by `plain_value` so that nothing is rounded on the way: Django's own JSON
serialisation keeps milliseconds only, and every audit entry's hash covers its time to the
microsecond.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from cartrial.domain.errors import InvalidInput

FORMAT = "cartrial-backup"
FORMAT_VERSION = 1


class ByteSink(Protocol):
    """Where a backup is written: a file, a gzip stream."""

    def write(self, data: bytes, /) -> object: ...


class BackupFileInvalid(InvalidInput):
    """The file is not a complete, unaltered cartrial backup."""

    code = "backup_file_invalid"


@dataclass(frozen=True)
class BackupHeader:
    """What a backup says about itself before its rows: where it came from and where its chain ends."""

    created_at: str
    engine: str
    migrations: tuple[tuple[str, str], ...]
    audit_sequence: int
    audit_head: str

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created_at": self.created_at,
            "engine": self.engine,
            "migrations": [list(pair) for pair in self.migrations],
            "audit": {"sequence": self.audit_sequence, "head": self.audit_head},
        }


@dataclass(frozen=True)
class TableStart:
    """The start of one table's rows: its model (`app_label.ModelName`) and the columns of each row."""

    model: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Row:
    """One row of the current table, its values in the table's column order."""

    values: list[Any]


def plain_value(value: object) -> object:
    """A value that JSON has no type for, as text that the column's own parser reads back exactly."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, timedelta):
        # Days, seconds, microseconds: what Django's DurationField parses back without rounding.
        hours, rest = divmod(value.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{value.days} {hours:02d}:{minutes:02d}:{seconds:02d}.{value.microseconds:06d}"
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"no backup form for {type(value).__name__}")


def _line(value: object) -> bytes:
    return json.dumps(value, default=plain_value, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


class BackupWriter:
    """Writes the lines of one backup to a binary stream and keeps what the trailer needs."""

    def __init__(self, stream: ByteSink) -> None:
        self._stream = stream
        self._digest = hashlib.sha256()
        self._counts: dict[str, int] = {}
        self._current: str | None = None

    def _write(self, value: object) -> None:
        line = _line(value)
        self._digest.update(line)
        self._stream.write(line)

    def header(self, header: BackupHeader) -> None:
        self._write(header.as_json())

    def table(self, model: str, columns: Iterable[str]) -> None:
        self._current = model
        self._counts[model] = 0
        self._write({"table": model, "columns": list(columns)})

    def row(self, values: Iterable[object]) -> None:
        assert self._current is not None, "a row is written after its table"
        self._counts[self._current] += 1
        self._write(list(values))

    def finish(self) -> dict[str, int]:
        """Write the trailer; the row count of every table."""
        trailer = {"end": FORMAT, "rows": self._counts, "sha256": self._digest.hexdigest()}
        self._stream.write(_line(trailer))
        return dict(self._counts)


def _parse(line: bytes, number: int) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        raise BackupFileInvalid(
            "Line {line} of the backup is not JSON: the file is damaged.", code="backup_line_unreadable", line=number
        ) from None


def _header(value: Any) -> BackupHeader:
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise BackupFileInvalid("This file is not a cartrial backup.", code="backup_not_a_backup")
    if value.get("version") != FORMAT_VERSION:
        raise BackupFileInvalid(
            "This backup is in format version {version}; this cartrial reads version {supported}.",
            code="backup_version",
            version=str(value.get("version")),
            supported=FORMAT_VERSION,
        )
    try:
        audit = value["audit"]
        return BackupHeader(
            created_at=str(value["created_at"]),
            engine=str(value["engine"]),
            migrations=tuple((str(app), str(name)) for app, name in value["migrations"]),
            audit_sequence=int(audit["sequence"]),
            audit_head=str(audit["head"]),
        )
    except (KeyError, TypeError, ValueError):
        raise BackupFileInvalid(
            "The backup's header is incomplete: the file is damaged.", code="backup_header"
        ) from None


def read_header(lines: Iterable[bytes]) -> BackupHeader:
    """The header alone (the first line), to check a backup before touching any database."""
    for line in lines:
        return _header(_parse(line, 1))
    raise BackupFileInvalid("The backup is empty.", code="backup_empty")


def read_backup(lines: Iterable[bytes]) -> Iterator[BackupHeader | TableStart | Row]:
    """The header, then each table's start and rows, as they are read; the trailer is checked last.

    Raises `BackupFileInvalid` naming the line at the first thing out of place, and at the end
    when the trailer is missing, its counts differ from the rows read, or the digest differs.
    """
    stream = iter(lines)
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    current: TableStart | None = None
    number = 0
    for number, line in enumerate(stream, start=1):
        value = _parse(line, number)
        if number == 1:
            digest.update(line)
            yield _header(value)
            continue
        if isinstance(value, list):
            if current is None or len(value) != len(current.columns):
                raise BackupFileInvalid(
                    "Line {line} of the backup is not a row of its table: the file is damaged.",
                    code="backup_row",
                    line=number,
                )
            digest.update(line)
            counts[current.model] += 1
            yield Row(value)
            continue
        if isinstance(value, dict) and "table" in value:
            model, columns = value.get("table"), value.get("columns")
            if not isinstance(model, str) or not isinstance(columns, list) or model in counts:
                raise BackupFileInvalid(
                    "Line {line} of the backup starts a table wrongly: the file is damaged.",
                    code="backup_table",
                    line=number,
                )
            digest.update(line)
            current = TableStart(model, tuple(str(column) for column in columns))
            counts[model] = 0
            yield current
            continue
        if isinstance(value, dict) and value.get("end") == FORMAT:
            if value.get("rows") != counts or value.get("sha256") != digest.hexdigest():
                raise BackupFileInvalid(
                    "The backup's content does not match its closing line: the file was altered or damaged.",
                    code="backup_digest",
                )
            for _extra in stream:
                raise BackupFileInvalid("The backup goes on after its closing line.", code="backup_trailing")
            return
        raise BackupFileInvalid(
            "Line {line} of the backup is not part of the format: the file is damaged.",
            code="backup_line",
            line=number,
        )
    if number == 0:
        raise BackupFileInvalid("The backup is empty.", code="backup_empty")
    raise BackupFileInvalid(
        "The backup ends without its closing line after line {line}: the file is incomplete.",
        code="backup_truncated",
        line=number,
    )
