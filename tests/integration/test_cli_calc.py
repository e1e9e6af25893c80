"""`cartrial calc`: JSON in and out, exit 2 with one line on bad input, no Django, docs that run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import cartrial.cli
from cartrial.cli.calc import register
from cartrial.domain.scores.registry import CALCULATOR_NAMES, calculate

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "calculators"
CARTRIAL = Path(sys.executable).parent / "cartrial"


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    # A fresh application with only `calc` (other groups may need Django settings); the callback
    # keeps it a group, so the command is invoked by name as in `cartrial calc`.
    application = typer.Typer()

    @application.callback()
    def root() -> None:
        """cartrial (test)."""

    register(application)
    return application


def run(app: typer.Typer, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["calc", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_calc_is_listed_in_the_entry_point() -> None:
    assert "cartrial.cli.calc" in cartrial.cli._COMMAND_MODULES


def test_reads_stdin_and_writes_one_json_object(app: typer.Typer) -> None:
    # seizure 8 + fever 1 = 9 (Gladman 2002 weights).
    code, out, err = run(app, "sledai2k", stdin='{"descriptors": ["seizure", "fever"]}')
    assert (code, err) == (0, "")
    output = json.loads(out)
    assert (output["score"], output["clinical_score"], output["lookback_days"]) == (9, 9, 10)


def test_reads_the_input_file(app: typer.Typer, tmp_path: Path) -> None:
    # 88.4 µmol/L = 1.0 mg/dL, woman of 50 → 68.63 (CRAN egfr vignette).
    payload = tmp_path / "egfr.json"
    payload.write_text('{"creatinine": 88.4, "creatinine_unit": "umol/L", "age_years": 50, "sex": "female"}')
    code, out, _ = run(app, "egfr", "--input", str(payload))
    assert code == 0
    assert json.loads(out)["egfr"] == 68.63


@pytest.mark.parametrize(
    ("name", "stdin", "fragment"),
    [
        ("sledai2k", "{descriptors: []}", "invalid JSON"),
        ("sledai2k", "", "invalid JSON"),
        ("sledai2k", '{"descriptors": []} {"descriptors": []}', "invalid JSON"),
        ("ice", "NaN", "NaN is not valid JSON"),
        ("egfr", '{"creatinine": Infinity, "creatinine_unit": "mg/dL", "age_years": 40, "sex": "male"}', "Infinity"),
        ("sledai2k", '["seizure"]', "one JSON object"),
        ("sledai2k", '{"descriptors": ["seizure"], "visit": 3}', "visit: unknown key"),
        ("ice", '{"orientation": true, "naming": 3, "command": 1, "writing": 1, "attention": 1}', "orientation"),
        (
            "sri4",
            '{"baseline_sledai": 8, "current_sledai": 4, "new_bilag_a": -1, "new_bilag_b": 0, '
            '"baseline_pga": 1, "current_pga": 1}',
            "new_bilag_a",
        ),
        ("ctcae-lab", '{"term": "anemia", "value": 9.0, "unit": "g/100mL", "lln": 12}', "unit"),
        ("crs", '{"fever": true}', "is required"),
        ("sledai", '{"descriptors": []}', "unknown calculator 'sledai'"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(app: typer.Typer, name: str, stdin: str, fragment: str) -> None:
    code, out, err = run(app, name, stdin=stdin)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert fragment in err


def test_missing_input_file_is_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    code, _, err = run(app, "ice", "--input", str(tmp_path / "absent.json"))
    assert code == 2
    assert err.count("\n") == 1


def test_schema_option_prints_the_contract(app: typer.Typer) -> None:
    code, out, _ = run(app, "icans", "--schema")
    assert code == 0
    description = json.loads(out)
    assert description["name"] == "icans"
    assert set(description["input_schema"]["required"]) == {
        "ice_score",
        "consciousness",
        "seizure",
        "motor_weakness",
        "cerebral_edema",
    }


def test_the_installed_command_runs_without_django() -> None:
    # ICE 4 + 3 + 1 + 1 + 1 = 10, through the real console script.
    result = subprocess.run(
        [str(CARTRIAL), "calc", "ice"],
        input='{"orientation": 4, "naming": 3, "command": 1, "writing": 1, "attention": 1}',
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["score"] == 10


def test_installed_command_exits_2_on_bad_input() -> None:
    result = subprocess.run(
        [str(CARTRIAL), "calc", "ice"], input="{", capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1


def test_calc_module_does_not_import_django() -> None:
    code = "import sys, cartrial.cli.calc; sys.exit(1 if any(m.split('.')[0] == 'django' for m in sys.modules) else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


# Every worked example in docs/calculators must be what the command really prints.
EXAMPLE = re.compile(
    r"```console\n\$ echo '(?P<stdin>[^\n]*)' \| cartrial calc (?P<name>[a-z0-9-]+)\n(?P<output>.*?)```",
    re.DOTALL,
)


def _doc_examples() -> list[tuple[str, str, str, str]]:
    return [
        (page.name, m["name"], m["stdin"], m["output"])
        for page in sorted(DOCS.glob("*.md"))
        for m in EXAMPLE.finditer(page.read_text(encoding="utf-8"))
    ]


def test_every_calculator_has_a_page_with_at_least_two_examples() -> None:
    examples = _doc_examples()
    for name in CALCULATOR_NAMES:
        assert (DOCS / f"{name}.md").exists(), name
        assert sum(1 for page, used, _, _ in examples if page == f"{name}.md" and used == name) >= 2, name


@pytest.mark.parametrize(("page", "name", "stdin", "output"), _doc_examples())
def test_documented_examples_match_the_command(app: typer.Typer, page: str, name: str, stdin: str, output: str) -> None:
    code, out, err = run(app, name, stdin=stdin)
    if output.lstrip().startswith("{"):
        assert code == 0, err
        assert json.loads(out) == json.loads(output) == calculate(name, json.loads(stdin))
    else:
        assert code == 2
        assert err.strip() == output.strip()
