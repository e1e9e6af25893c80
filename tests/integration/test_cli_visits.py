"""`cartrial visits status`: the contract's JSON, its exit-2 refusals, the protocol in charge,
and no Django. `cartrial visits table` is the table of docs/visits.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import cartrial.cli
from cartrial.cli.visits import register, schedule_table
from cartrial.protocols import DEFAULT_PROTOCOL_FILE, load_protocol

runner = CliRunner()
PROTOCOL = load_protocol()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "visits.md"

INPUT: dict[str, Any] = {
    "inclusion_date": "2026-03-02",
    "infusion_date": "2026-04-20",
    "today": "2026-05-18",
    "done": {"SCR": "2026-02-10", "APH": "2026-03-10", "LD": "2026-04-15", "D0": "2026-04-20", "D7": "2026-04-28"},
    "missed": ["D1"],
}


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()
    register(application)
    return application


def status(app: typer.Typer, tmp_path: Path, payload: object, *extra: str) -> tuple[int, str, str]:
    path = tmp_path / "subject.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    result = runner.invoke(app, ["visits", "status", "--input", str(path), *extra])
    return result.exit_code, result.stdout, result.stderr


def by_code(out: str) -> dict[str, dict[str, Any]]:
    return {row["code"]: row for row in json.loads(out)["visits"]}


def test_group_is_listed_in_the_entry_point() -> None:
    assert "cartrial.cli.visits" in cartrial.cli._COMMAND_MODULES


def test_status_prints_every_protocol_visit_in_order_with_the_contract_keys(app: typer.Typer, tmp_path: Path) -> None:
    code, out, err = status(app, tmp_path, INPUT)
    assert (code, err) == (0, "")
    answer = json.loads(out)
    assert list(answer) == ["visits"]
    assert [row["code"] for row in answer["visits"]] == [v.code for v in PROTOCOL.visits]
    assert all(list(row) == ["code", "anchor", "target", "earliest", "latest", "status"] for row in answer["visits"])
    rows = by_code(out)
    assert rows["D28"] == {
        "code": "D28",
        "anchor": "infusion",
        "target": "2026-05-18",
        "earliest": "2026-05-15",
        "latest": "2026-05-21",
        "status": "due",
    }
    assert {c: rows[c]["status"] for c in ("SCR", "APH", "LD", "D0", "D1", "D2", "D7", "M3")} == {
        "SCR": "done",
        "APH": "done",
        "LD": "done",
        "D0": "done",
        "D1": "missed",
        "D2": "overdue",
        "D7": "done_out_of_window",
        "M3": "upcoming",
    }
    assert rows["Y15"]["target"] == (date(2026, 4, 20) + timedelta(days=5479)).isoformat()


def test_a_subject_not_yet_infused_has_no_dates_after_apheresis(app: typer.Typer, tmp_path: Path) -> None:
    code, out, _ = status(app, tmp_path, {**INPUT, "infusion_date": None, "done": {}, "missed": []})
    assert code == 0
    rows = json.loads(out)["visits"]
    infusion_rows = [row for row in rows if row["anchor"] == "infusion"]
    assert len(infusion_rows) == len(rows) - 2
    assert {(r["target"], r["earliest"], r["latest"], r["status"]) for r in infusion_rows} == {
        (None, None, None, "not_applicable")
    }
    assert [row["status"] for row in rows[:2]] == ["overdue", "overdue"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({**INPUT, "done": {"D8": "2026-04-28"}}, r"done\.D8: 'D8' is not a visit of the protocol\. \[visit_unknown\]"),
        ({**INPUT, "missed": ["U1"]}, r"missed: 'U1' is not a visit of the protocol\. \[visit_unknown\]"),
        ({**INPUT, "today": "18/05/2026"}, r"today must be a calendar date .* \[date_malformed\]"),
        ({**INPUT, "infusion_date": "2026-02-30"}, r"infusion_date must be a calendar date .* \[date_malformed\]"),
        ({k: v for k, v in INPUT.items() if k != "today"}, r"The input lacks the key today\. \[key_missing\]"),
        ("{not json", r"is not JSON .* \[input_not_json\]"),
        ("[1, 2]", r"must hold a JSON object \[input_not_object\]"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    app: typer.Typer, tmp_path: Path, payload: object, expected: str
) -> None:
    code, out, err = status(app, tmp_path, payload)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert re.fullmatch(rf"error: .*{expected}\n", err), err


def test_an_unreadable_input_file_is_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(app, ["visits", "status", "--input", str(tmp_path / "absent.json")])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("error: input file ") and result.stderr.endswith("[input_unreadable]\n")


def test_a_broken_protocol_file_is_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8").replace("code: M9,", "code: U9,"), "utf-8")
    code, out, err = status(app, tmp_path, INPUT, "--protocol", str(broken))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "visits.18.code" in err and err.endswith("[protocol_invalid]\n")


def test_a_window_changed_in_a_copy_of_the_protocol_changes_the_answer(app: typer.Typer, tmp_path: Path) -> None:
    original = "{code: D28, label: {en: Day 28, fr: J28}, anchor: infusion, day: 28, window_before_days: 3,"
    text = DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8")
    assert text.count(original) == 1
    amended = tmp_path / "amended.yaml"
    amended.write_text(text.replace(original, original.replace("window_before_days: 3", "window_before_days: 1")))
    payload = {**INPUT, "today": "2026-05-16"}  # two days before D28's target
    _, before, _ = status(app, tmp_path, payload)
    code, after, _ = status(app, tmp_path, payload, "--protocol", str(amended))
    assert code == 0
    assert (by_code(before)["D28"]["earliest"], by_code(before)["D28"]["status"]) == ("2026-05-15", "due")
    assert (by_code(after)["D28"]["earliest"], by_code(after)["D28"]["status"]) == ("2026-05-17", "upcoming")
    assert {k: v for k, v in by_code(after).items() if k != "D28"} == {
        k: v for k, v in by_code(before).items() if k != "D28"
    }


def test_status_runs_as_a_command_without_django(tmp_path: Path) -> None:
    path = tmp_path / "subject.json"
    path.write_text(json.dumps(INPUT), encoding="utf-8")
    program = (
        "import sys; from cartrial.cli import main; sys.argv = ['cartrial', 'visits', 'status', '--input', "
        f"{str(path)!r}]\ntry:\n    main()\nexcept SystemExit as end:\n    code = end.code\nelse:\n    code = 0\n"
        "assert 'django' not in sys.modules, 'visits status imported Django'\nsys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert by_code(done.stdout)["D28"]["status"] == "due"


def test_the_schedule_table_of_the_docs_is_the_protocols(app: typer.Typer) -> None:
    table = schedule_table(PROTOCOL.visits)
    assert table.count("\n") == len(PROTOCOL.visits) + 2
    docs = DOCS.read_text(encoding="utf-8")
    begin, end = "<!-- schedule table: begin -->\n", "<!-- schedule table: end -->"
    assert docs[docs.index(begin) + len(begin) : docs.index(end)] == table, (
        "docs/visits.md is not the protocol's schedule: paste the output of `cartrial visits table`"
    )
    result = runner.invoke(app, ["visits", "table"])
    assert (result.exit_code, result.stdout) == (0, table)
