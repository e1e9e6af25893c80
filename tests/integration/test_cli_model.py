"""`cartrial model`: CSV/JSON on stdout, nothing else; one line on stderr and exit 2 on bad input."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import cartrial.cli
from cartrial.cli.model import register
from cartrial.domain.kinetics import MARKERS

runner = CliRunner()

OBSERVATIONS = """marker,day,value,unit,loq
car_t,0,0.2,cells/µL,0.1
car_t,7,12,cells/µL,0.1
car_t,14,9,cells/µL,0.1
car_t,28,1.1,cells/µL,0.1
car_t,90,,cells/µL,0.1
b_cells,0,8,cells/µL,1
b_cells,7,,cells/µL,1
b_cells,14,,cells/µL,1
b_cells,60,,cells/µL,1
b_cells,90,3,cells/µL,1
b_cells,180,60,cells/µL,1
anti_dsdna,0,250,IU/mL,10
anti_dsdna,28,140,IU/mL,10
anti_dsdna,90,45,IU/mL,10
anti_dsdna,180,38,IU/mL,10
"""


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    # Only the `model` group: other groups may need Django settings.
    application = typer.Typer()

    @application.callback()
    def root() -> None:
        """cartrial (test)."""

    register(application)
    return application


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["model", *args])
    return result.exit_code, result.stdout, result.stderr


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def assert_one_line_refusal(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("cartrial model: ")
    assert fragment in err


def test_model_is_listed_in_the_entry_point() -> None:
    assert "cartrial.cli.model" in cartrial.cli._COMMAND_MODULES


def test_simulate_writes_day_then_every_marker_car_t_first(app: typer.Typer) -> None:
    code, out, err = run(app, "simulate", "--preset", "stein2019", "--days", "20", "--step", "0.1")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == ",".join(["day", *MARKERS])
    table = rows(out)
    assert len(table) == 201
    peak = next(row for row in table if row["day"] == "9.3")
    assert float(peak["car_t"]) == pytest.approx(24_000, rel=1e-7)  # Stein 2019 Cmax at Tmax


def test_simulate_applies_a_params_file(app: typer.Typer, tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text('{"anti_dsdna_baseline": 500, "car_t_peak": 60}')
    code, out, _ = run(app, "simulate", "--preset", "sle-default", "--params", str(params), "--days", "10")
    assert code == 0
    table = rows(out)
    assert float(table[0]["anti_dsdna"]) == 500
    assert float(table[9]["car_t"]) == pytest.approx(60, rel=1e-7)  # Tmax = 9 days


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["--preset", "tisa", "--days", "10"], "Unknown kinetics preset 'tisa'"),
        (["--days", "10"], "--preset is required"),
        (["--preset", "sle-default"], "--days is required"),
        (["--preset", "sle-default", "--days", "-5"], "--days must be > 0"),
        (["--preset", "sle-default", "--days", "ten"], "--days must be a number"),
        (["--preset", "sle-default", "--days", "10", "--step", "0"], "--step must be > 0"),
        (["--preset", "sle-default", "--days", "1000", "--step", "0.0001"], "rows"),
    ],
)
def test_simulate_refuses_bad_input(app: typer.Typer, arguments: list[str], fragment: str) -> None:
    assert_one_line_refusal(*run(app, "simulate", *arguments), fragment)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"car_t_peak": -1}', "car_t_peak = -1 cells/µL is outside its physical range"),
        ('{"kappa": 1}', "Unknown kinetics parameter(s) for preset sle-default: kappa"),
        ("[1, 2]", "one JSON object"),
        ("{not json", "invalid JSON"),
        ('{"car_t_peak": NaN}', "invalid JSON"),
    ],
)
def test_simulate_refuses_bad_params_files(app: typer.Typer, tmp_path: Path, content: str, fragment: str) -> None:
    params = tmp_path / "params.json"
    params.write_text(content)
    result = run(app, "simulate", "--preset", "sle-default", "--params", str(params), "--days", "10")
    assert_one_line_refusal(*result, fragment)


def test_cohort_writes_three_quantiles_per_marker_reproducibly(app: typer.Typer) -> None:
    arguments = ("cohort", "--preset", "sle-default", "--n", "400", "--days", "30", "--seed", "7")
    code, out, err = run(app, *arguments)
    assert (code, err) == (0, "")
    header = out.splitlines()[0].split(",")
    assert header[:4] == ["day", "car_t_p05", "car_t_p50", "car_t_p95"]
    assert len(header) == 1 + 3 * len(MARKERS)
    table = rows(out)
    assert [row["day"] for row in table] == [str(day) for day in range(31)]
    for row in table:
        for marker in MARKERS:
            assert float(row[f"{marker}_p05"]) <= float(row[f"{marker}_p50"]) <= float(row[f"{marker}_p95"])
    assert run(app, *arguments)[1] == out


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["--preset", "sle-default", "--n", "0", "--days", "30"], "--n must be ≥ 1"),
        (["--preset", "sle-default", "--n", "2.5", "--days", "30"], "--n must be a whole number"),
        (["--preset", "sle-default", "--n", "10", "--days", "30", "--seed", "-1"], "--seed must be ≥ 0"),
        (["--preset", "sle-default", "--days", "30"], "--n is required"),
    ],
)
def test_cohort_refuses_bad_input(app: typer.Typer, arguments: list[str], fragment: str) -> None:
    assert_one_line_refusal(*run(app, "cohort", *arguments), fragment)


def test_fit_writes_parameters_band_and_flags_as_json(app: typer.Typer, tmp_path: Path) -> None:
    observations = tmp_path / "subject.csv"
    observations.write_text(OBSERVATIONS, encoding="utf-8")
    code, out, err = run(app, "fit", "--observations", str(observations))
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["fit"]["converged"] is True
    assert document["observations"] == 15
    assert set(document["fit"]["parameters"]) >= {"car_t_peak", "b_lineage_kill_rate", "anti_dsdna_baseline"}
    band = document["fit"]["band"]["markers"]
    assert next(iter(band)) == "car_t" and set(band["b_cells"]) == {"unit", "p05", "p50", "p95"}
    flags = {flag["code"]: flag["raised"] for flag in document["flags"]}
    assert flags == {
        "car_t_peak_below_band": False,
        "no_b_cell_depletion_by_day_14": False,
        "early_b_cell_return": False,
        "anti_dsdna_slow_decline": False,
        "anti_dsdna_rise_after_b_cell_return": False,
    }


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("car_t,-1,3,cells/µL,", "Observation 16: day -1 is before the infusion"),
        ("b_cells,,3,cells/µL,", "Observation 16: the day (days since infusion) is missing"),
        ("il6,3,3,pg/mL,", "unknown marker 'il6'"),
        ("b_cells,3,3,cells/mL,", "report it in cells/µL"),
        ("b_cells,3,,cells/µL,", "no limit of quantification"),
        ("b_cells,3,1,cells/µL,1,extra", "more fields than header columns"),
    ],
)
def test_fit_refuses_bad_observations(app: typer.Typer, tmp_path: Path, line: str, fragment: str) -> None:
    observations = tmp_path / "subject.csv"
    observations.write_text(OBSERVATIONS + line + "\n", encoding="utf-8")
    assert_one_line_refusal(*run(app, "fit", "--observations", str(observations)), fragment)


def test_fit_refuses_a_missing_file_or_header(app: typer.Typer, tmp_path: Path) -> None:
    assert_one_line_refusal(*run(app, "fit", "--observations", str(tmp_path / "none.csv")), "cannot read")
    assert_one_line_refusal(*run(app, "fit"), "--observations is required")
    headless = tmp_path / "headless.csv"
    headless.write_text("marker,value,unit\nb_cells,3,cells/µL\n")
    assert_one_line_refusal(*run(app, "fit", "--observations", str(headless)), "missing: day")


def test_the_model_group_never_imports_django() -> None:
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "import typer\n"
        "from cartrial.cli.model import register\n"
        "app = typer.Typer()\n"
        "app.callback()(lambda: None)\n"
        "register(app)\n"
        "result = CliRunner().invoke(app, ['model', 'simulate', '--preset', 'sle-default', '--days', '3'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert not any(name == 'django' or name.startswith('django.') for name in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
