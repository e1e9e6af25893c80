"""`cartrial endpoints --input FILE.json`: the contract's JSON on stdout, one-line refusals with exit 2,
and no Django."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import cartrial.cli
from cartrial.cli.endpoints import register

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"


def visit(code: str, descriptors: list[str], pga: float, prednisone: float, **changes: Any) -> dict[str, Any]:
    return {
        "code": code,
        "sledai_descriptors": descriptors,
        "pga": pga,
        "prednisone_mg_per_day": prednisone,
        "maintenance_therapy_stable": True,
        "standard_maintenance_only": True,
        "hemolytic_anemia": False,
        "gi_activity": False,
        "new_bilag_a": 0,
        "new_bilag_b": 0,
        "immunosuppressants": [],
        **changes,
    }


# Baseline: arthritis 4 + proteinuria 4 + low complement 2 = 10, PGA 2.0.
INPUT: dict[str, Any] = {
    "baseline": {"sledai_descriptors": ["arthritis", "proteinuria", "low_complement"], "pga": 2.0},
    "visits": [
        # low complement 2, clinical 0: DORIS on 5 mg (not drug-free); LLDAS; 10 → 2 → SRI-4.
        visit("M3", ["low_complement"], 0.3, 5.0, immunosuppressants=["mycophenolate"]),
        # nothing: DORIS off drugs, LLDAS, SRI-4.
        visit("M6", [], 0.0, 0.0),
    ],
}
OUTPUT = {
    "visits": [
        {"code": "M3", "sledai": 2, "clinical_sledai": 0, "doris": True, "drug_free_doris": False, "lldas": True,
         "sri4": True},
        {"code": "M6", "sledai": 0, "clinical_sledai": 0, "doris": True, "drug_free_doris": True, "lldas": True,
         "sri4": True},
    ],
    "doris_sustained_from": "M3",
}  # fmt: skip


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()
    register(application)

    @application.command("other")
    def other() -> None:  # a second command, so `endpoints` is a sub-command as in `cartrial`
        """Unused."""

    return application


def run(app: typer.Typer, tmp_path: Path, payload: object) -> tuple[int, str, str]:
    path = tmp_path / "endpoints.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    result = runner.invoke(app, ["endpoints", "--input", str(path)])
    return result.exit_code, result.stdout, result.stderr


def test_command_is_listed_in_the_entry_point() -> None:
    assert "cartrial.cli.endpoints" in cartrial.cli._COMMAND_MODULES


def test_endpoints_prints_the_contract_json(app: typer.Typer, tmp_path: Path) -> None:
    code, out, err = run(app, tmp_path, INPUT)
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    answer = json.loads(out)
    assert answer == OUTPUT
    assert list(answer) == ["visits", "doris_sustained_from"]
    assert all(
        list(row) == ["code", "sledai", "clinical_sledai", "doris", "drug_free_doris", "lldas", "sri4"]
        for row in answer["visits"]
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {**INPUT, "visits": [visit("M3", ["nephritis"], 0.3, 5.0)]},
            r"visits\[0\]\.sledai_descriptors\[0\]: 'nephritis' is not a SLEDAI-2K descriptor\. \[descriptor_unknown\]",
        ),
        (
            {**INPUT, "visits": [visit("M3", [], 3.2, 5.0)]},
            r"visits\[0\]\.pga must be from 0 to 3, got 3\.2\. \[pga_out_of_range\]",
        ),
        (
            {**INPUT, "visits": [visit("M3", [], 0.2, -1)]},
            r"visits\[0\]\.prednisone_mg_per_day must be from 0 to 2000 mg/day, got -1\. \[dose_out_of_range\]",
        ),
        (
            {**INPUT, "visits": [visit("M3", [], 0.2, 0, gi_activity="no")]},
            r"visits\[0\]\.gi_activity must be true or false, got string\. \[type_invalid\]",
        ),
        ({"baseline": INPUT["baseline"]}, r"The input lacks the key visits\. \[key_missing\]"),
        ({**INPUT, "today": "2026-05-18"}, r"today is not a key of the input; .* \[key_unknown\]"),
        ({**INPUT, "visits": "M3"}, r"visits must be a list of visits, got string\. \[visits_malformed\]"),
        ('{"baseline": {"sledai_descriptors": [], "pga": NaN}, "visits": []}', r"is not JSON .* \[input_not_json\]"),
        ("{not json", r"is not JSON .* \[input_not_json\]"),
        ("[1, 2]", r"must hold a JSON object \[input_not_object\]"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    app: typer.Typer, tmp_path: Path, payload: object, expected: str
) -> None:
    code, out, err = run(app, tmp_path, payload)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert re.fullmatch(rf"error: .*{expected}\n", err), err


def test_an_unreadable_input_file_is_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(app, ["endpoints", "--input", str(tmp_path / "absent.json")])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("error: input file ") and result.stderr.endswith("[input_unreadable]\n")


def test_endpoints_runs_as_a_command_without_django(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(INPUT), encoding="utf-8")
    bad.write_text(json.dumps({**INPUT, "visits": [visit("M3", [], 0.2, 0, new_bilag_a=10)]}), encoding="utf-8")
    program = (
        "import sys; from cartrial.cli import main; sys.argv = ['cartrial', 'endpoints', '--input', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit as end:\n    code = end.code\nelse:\n    code = 0\n"
        "assert 'django' not in sys.modules, 'endpoints imported Django'\nsys.exit(code)"
    )
    # This checkout's sources first, whatever the environment's editable install points at.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", program, str(good)], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout) == OUTPUT
    refused = subprocess.run(
        [sys.executable, "-c", program, str(bad)], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        "error: visits[0].new_bilag_a must be from 0 to 9 BILAG domains, got 10. [bilag_out_of_range]\n"
    )


def test_the_example_of_the_docs_is_what_the_command_prints(app: typer.Typer, tmp_path: Path) -> None:
    docs = (SRC.parent / "docs" / "endpoints.md").read_text(encoding="utf-8")
    example = docs[docs.index("## Example") :]
    given = example[example.index("$ cat subject.json\n") + 19 : example.index("$ cartrial endpoints")]
    printed = example.split("$ cartrial endpoints --input subject.json\n", 1)[1].split("\n", 1)[0]
    code, out, _ = run(app, tmp_path, given)
    assert (code, out) == (0, printed + "\n"), "docs/endpoints.md: paste the command's output again"
