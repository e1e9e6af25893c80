"""`cartrial simulate`: the summary table or JSON on stdout, PNG plots in --out, and bad input as one
line on stderr with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cartrial.cli.simulate import register
from cartrial.domain.simulation.model import planner_cpsat

runner = CliRunner()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("other")
    def other() -> None:  # a second command keeps `simulate` a named sub-command
        pass

    return app


def test_summary_table_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "plots"
    result = runner.invoke(
        _app(), ["simulate", "--months", "4", "--policy", "greedy", "--replications", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Days inclusion → infusion, median" in result.stdout
    assert "4 months, 2 replication(s), seed 0" in result.stdout
    for name in ("queue_length", "line_use", "bed_use", "inclusion_to_infusion_days"):
        assert (out / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)


def test_json_output_is_deterministic_per_seed(tmp_path: Path) -> None:
    arguments = ["simulate", "--months", "3", "--policy", "greedy", "--seed", "5", "--json"]
    first = runner.invoke(_app(), arguments)
    assert first.exit_code == 0, first.output
    document = json.loads(first.stdout)
    greedy = document["policies"]["greedy"]
    assert document["seed"] == 5 and document["months"] == 3
    outcomes = ("screen_failures_mean", "infused_mean", "no_infusion_mean", "in_progress_mean")
    assert greedy["arrivals_mean"] == sum(greedy[key] for key in outcomes)
    assert set(greedy["failures"]) == {"remanufacture", "re_apheresis", "no_infusion"}
    assert runner.invoke(_app(), arguments).stdout == first.stdout


def test_params_file_changes_the_network(tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"facilities": [{"id": "LAB", "lines": 5}], "months": 2}), encoding="utf-8")
    result = runner.invoke(_app(), ["simulate", "--policy", "greedy", "--params", str(params), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["months"] == 2


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--months", "0"], "months: must be between 1 and 120"),
        (["--policy", "random"], "--policy must be greedy, optimised or both"),
        (["--replications", "0"], "--replications must be between 1"),
        (["--seed", "-1"], "--seed must be ≥ 0"),
        (["--params", "{missing}"], "cannot read"),
        (["--params", "{bad_json}"], "is not JSON"),
        (["--params", "{bad_value}"], "centers[0].infusions_per_week: must be between 1 and 50"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, arguments: list[str], says: str) -> None:
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "value.json").write_text(json.dumps({"centers": [{"id": "BDX", "infusions_per_week": 0}]}), "utf-8")
    paths = {
        "{missing}": str(tmp_path / "missing.json"),
        "{bad_json}": str(tmp_path / "bad.json"),
        "{bad_value}": str(tmp_path / "value.json"),
    }
    result = runner.invoke(_app(), ["simulate", "--policy", "greedy", *[paths.get(a, a) for a in arguments]])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cartrial simulate: ") and says in lines[0]


def test_optimised_without_the_planner_is_refused_else_compared() -> None:
    try:
        planner_cpsat()
    except Exception:
        result = runner.invoke(_app(), ["simulate", "--months", "2"])
        assert result.exit_code == 2 and "[planner_unavailable]" in result.stderr
    else:
        result = runner.invoke(_app(), ["simulate", "--months", "2", "--json"])
        assert result.exit_code == 0, result.output
        assert set(json.loads(result.stdout)["policies"]) == {"greedy", "optimised"}
