"""The backup file format: values come back exactly, and a damaged, cut or altered file is refused."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartrial.domain.backup_format import (
    BackupFileInvalid,
    BackupHeader,
    BackupWriter,
    Row,
    TableStart,
    plain_value,
    read_backup,
    read_header,
)

HEADER = BackupHeader(
    created_at="2026-12-03T07:00:00+00:00",
    engine="sqlite",
    migrations=(("audit", "0001_initial"), ("subjects", "0004_hospital_number_digest")),
    audit_sequence=2,
    audit_head="ab" * 32,
)


def _backup(tables: dict[str, tuple[list[str], list[list[object]]]]) -> bytes:
    stream = io.BytesIO()
    writer = BackupWriter(stream)
    writer.header(HEADER)
    for model, (columns, rows) in tables.items():
        writer.table(model, columns)
        for row in rows:
            writer.row(row)
    writer.finish()
    return stream.getvalue()


def _read(content: bytes) -> list[object]:
    return list(read_backup(io.BytesIO(content)))


def test_a_backup_reads_back_header_tables_and_rows_in_order() -> None:
    moment = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    content = _backup(
        {
            "audit.AuditEntry": (["id", "occurred_at", "reason"], [[1, moment, "é ✓"], [2, moment, ""]]),
            "trial.Center": (["id", "code"], []),
        }
    )
    items = _read(content)
    assert items[0] == HEADER
    assert items[1] == TableStart("audit.AuditEntry", ("id", "occurred_at", "reason"))
    assert items[2] == Row([1, "2026-03-01T08:30:15.123456+00:00", "é ✓"])  # to the microsecond
    assert items[3] == Row([2, "2026-03-01T08:30:15.123456+00:00", ""])
    assert items[4] == TableStart("trial.Center", ("id", "code"))
    assert len(items) == 5
    assert read_header(io.BytesIO(content)) == HEADER


def test_values_json_has_no_type_for_are_written_as_their_exact_text() -> None:
    assert plain_value(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2026-01-02T03:04:05.000006+00:00"
    assert plain_value(date(2026, 1, 2)) == "2026-01-02"
    assert plain_value(time(23, 59, 58, 1)) == "23:59:58.000001"
    assert plain_value(Decimal("0.1000")) == "0.1000"
    assert plain_value(UUID(int=5)) == "00000000-0000-0000-0000-000000000005"
    assert plain_value(timedelta(days=-1, seconds=3661, microseconds=7)) == "-1 01:01:01.000007"
    assert plain_value(memoryview(b"\x00\xff")) == "AP8="
    with pytest.raises(TypeError):
        plain_value(object())


@given(st.lists(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text())))
def test_plain_json_values_round_trip_unchanged(values: list[object]) -> None:
    content = _backup({"t.T": ([f"c{i}" for i in range(len(values))], [values])})
    assert _read(content)[2] == Row(values)


def test_a_file_cut_short_is_refused_naming_where_it_ends() -> None:
    content = _backup({"t.T": (["a"], [[1], [2], [3]])})
    lines = content.splitlines(keepends=True)
    with pytest.raises(BackupFileInvalid, match="ends without its closing line after line 5") as refused:
        _read(b"".join(lines[:-1]))
    assert refused.value.code == "backup_truncated"


def test_a_changed_value_is_refused_by_the_digest() -> None:
    content = _backup({"t.T": (["a"], [[1], [2]])})
    with pytest.raises(BackupFileInvalid) as refused:
        _read(content.replace(b"[2]", b"[3]"))
    assert refused.value.code == "backup_digest"


def test_a_removed_row_is_refused_by_the_counts() -> None:
    content = _backup({"t.T": (["a"], [[1], [2]])})
    with pytest.raises(BackupFileInvalid) as refused:
        _read(content.replace(b"[2]\n", b""))
    assert refused.value.code == "backup_digest"


def test_a_row_of_the_wrong_width_is_refused_with_its_line() -> None:
    content = _backup({"t.T": (["a", "b"], [[1, 2]])}).replace(b"[1,2]", b"[1]")
    with pytest.raises(BackupFileInvalid, match="Line 3 ") as refused:
        _read(content)
    assert refused.value.code == "backup_row"


def test_text_after_the_closing_line_is_refused() -> None:
    with pytest.raises(BackupFileInvalid) as refused:
        _read(_backup({}) + b"[1]\n")
    assert refused.value.code == "backup_trailing"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "backup_empty"),
        (b"not json\n", "backup_line_unreadable"),
        (b'{"format": "something-else"}\n', "backup_not_a_backup"),
        (b'{"format": "cartrial-backup", "version": 99}\n', "backup_version"),
        (b'{"format": "cartrial-backup", "version": 1}\n', "backup_header"),
    ],
)
def test_a_file_that_is_not_a_backup_is_refused_at_its_header(content: bytes, code: str) -> None:
    with pytest.raises(BackupFileInvalid) as refused:
        read_header(io.BytesIO(content))
    assert refused.value.code == code
