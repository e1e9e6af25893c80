"""`cartrial plan`: the contract's JSON plan on stdout, `--check` with exit 0 or 1, one-line
refusals with exit 2, and no Django."""

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
from cartrial.cli.plan import register

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"
ALL_DAYS = [0, 1, 2, 3, 4, 5, 6]

# One line, two patients ready on Monday 4 January; the urgent one (weight 5) is infused on day 8,
# the other on day 10: 5 × 8 + 10 = 50, proven optimal (docs/planning.md works it out).
INSTANCE: dict[str, Any] = {
    "start_date": "2027-01-04",
    "horizon_days": 60,
    "facilities": [{"id": "F1", "lines": 1, "manufacturing_days": 2, "qc_days": 1, "closed_weekdays": []}],
    "centers": [
        {"id": "BDX", "country": "FR", "apheresis_weekdays": ALL_DAYS, "apheresis_per_day": 1,
         "infusion_weekdays": ALL_DAYS, "infusions_per_week": 7, "ship_days": {"F1": 1}},
    ],
    "patients": [
        {"id": "P1", "center": "BDX", "ready_date": "2027-01-04", "weight": 1},
        {"id": "P2", "center": "BDX", "ready_date": "2027-01-04", "weight": 5},
    ],
    "lymphodepletion_days": 3,
    "ld_to_infusion_gap_days": [2, 4],
}  # fmt: skip
OPTIMAL = {
    "status": "optimal",
    "objective_days": 50,
    "lower_bound_days": 50,
    "patients": [
        {"id": "P1", "facility": "F1", "apheresis": "2027-01-05", "manufacturing_start": "2027-01-07",
         "release": "2027-01-10", "product_arrival": "2027-01-11", "lymphodepletion_start": "2027-01-10",
         "infusion": "2027-01-14"},
        {"id": "P2", "facility": "F1", "apheresis": "2027-01-04", "manufacturing_start": "2027-01-05",
         "release": "2027-01-08", "product_arrival": "2027-01-09", "lymphodepletion_start": "2027-01-08",
         "infusion": "2027-01-12"},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()
    register(application)

    @application.command("other")
    def other() -> None:  # a second command, so `plan` is a sub-command as in `cartrial`
        """Unused."""

    return application


def write(tmp_path: Path, name: str, payload: object) -> str:
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    return str(path)


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["plan", *args])
    return result.exit_code, result.stdout, result.stderr


def test_command_is_listed_in_the_entry_point() -> None:
    assert "cartrial.cli.plan" in cartrial.cli._COMMAND_MODULES


def test_plan_prints_the_contract_json(app: typer.Typer, tmp_path: Path) -> None:
    code, out, err = run(app, "--instance", write(tmp_path, "i.json", INSTANCE), "--time-limit", "10")
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    answer = json.loads(out)
    assert list(answer) == ["status", "objective_days", "lower_bound_days", "patients"]
    assert (answer["status"], answer["objective_days"], answer["lower_bound_days"]) == ("optimal", 50, 50)
    assert {p["id"]: p["infusion"] for p in answer["patients"]} == {"P1": "2027-01-14", "P2": "2027-01-12"}


def test_greedy_has_no_bound_and_serves_the_first_come(app: typer.Typer, tmp_path: Path) -> None:
    code, out, _ = run(app, "--instance", write(tmp_path, "i.json", INSTANCE), "--solver", "greedy")
    answer = json.loads(out)
    assert (code, answer["status"], answer["objective_days"], answer["lower_bound_days"]) == (0, "feasible", 58, None)


def test_an_infeasible_instance_names_the_unplaced_patients(app: typer.Typer, tmp_path: Path) -> None:
    code, out, _ = run(app, "--instance", write(tmp_path, "i.json", {**INSTANCE, "horizon_days": 8}))
    assert code == 0
    assert json.loads(out) == {
        "status": "infeasible", "objective_days": None, "lower_bound_days": None, "patients": [],
        "unplaced": ["P1", "P2"],
    }  # fmt: skip


def test_check_accepts_a_valid_plan(app: typer.Typer, tmp_path: Path) -> None:
    instance, plan = write(tmp_path, "i.json", INSTANCE), write(tmp_path, "p.json", OPTIMAL)
    code, out, err = run(app, "--check", plan, "--instance", instance)
    assert (code, err) == (0, "")
    assert out == f"plan {plan} is valid for instance {instance}: every rule holds\n"


def test_check_lists_the_violations_and_exits_1(app: typer.Typer, tmp_path: Path) -> None:
    wrong = json.loads(json.dumps(OPTIMAL))
    wrong["patients"][0]["apheresis"] = "2027-01-04"  # the same day as P2's, one slot a day
    instance, plan = write(tmp_path, "i.json", INSTANCE), write(tmp_path, "p.json", wrong)
    code, out, err = run(app, "--check", plan, "--instance", instance)
    assert code == 1
    assert out.splitlines() == ["BDX: 2 apheresis on 2027-01-04, at most 1"]
    assert err == f"plan {plan} breaks 1 rule(s) of instance {instance}\n"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({**INSTANCE, "horizon_days": 0}, r"horizon_days: 0 is less than the minimum of 1 \[instance_invalid\]"),
        ({**INSTANCE, "patients": [{**INSTANCE["patients"][0], "center": "LIL"}]},
         r"patients\[0\]\.center: no center has the id LIL\. \[center_unknown\]"),
        ({**INSTANCE, "centers": [{**INSTANCE["centers"][0], "ship_days": {"F1": 1, "F2": 2}}]},
         r"centers\[0\]\.ship_days\.F2: no facility has the id F2\. \[facility_unknown\]"),
        ('{"start_date": NaN}', r"is not JSON .* \[input_not_json\]"),
        ("{not json", r"is not JSON .* \[input_not_json\]"),
        ("[1, 2]", r"must hold a JSON object \[input_not_object\]"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    app: typer.Typer, tmp_path: Path, payload: object, expected: str
) -> None:
    code, out, err = run(app, "--instance", write(tmp_path, "i.json", payload))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert re.fullmatch(rf"error: .*{expected}\n", err), err


def test_a_malformed_plan_to_check_is_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    plan = write(tmp_path, "p.json", {**OPTIMAL, "status": "maybe"})
    code, out, err = run(app, "--check", plan, "--instance", write(tmp_path, "i.json", INSTANCE))
    assert (code, out) == (2, "")
    assert err == "error: status: must be optimal, feasible or infeasible [plan_invalid]\n"


def test_an_unknown_solver_and_an_unreadable_file_are_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    instance = write(tmp_path, "i.json", INSTANCE)
    assert run(app, "--instance", instance, "--solver", "mip")[0] == 2
    code, out, err = run(app, "--instance", str(tmp_path / "absent.json"))
    assert (code, out) == (2, "")
    assert err.startswith("error: input file ") and err.endswith("[input_unreadable]\n")


def test_plan_runs_as_a_command_without_django(tmp_path: Path) -> None:
    instance = write(tmp_path, "i.json", INSTANCE)
    bad = write(tmp_path, "bad.json", {**INSTANCE, "ld_to_infusion_gap_days": [4, 2]})
    program = (
        "import sys; from cartrial.cli import main; sys.argv = ['cartrial', 'plan', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit as end:\n    code = end.code\nelse:\n    code = 0\n"
        "assert 'django' not in sys.modules, 'plan imported Django'\nsys.exit(code)"
    )
    # This checkout's sources first, whatever the environment's editable install points at.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}

    def cartrial(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=120, check=False, env=env
        )

    done = cartrial("--instance", instance, "--time-limit", "10")
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout)["objective_days"] == 50
    plan = write(tmp_path, "p.json", done.stdout)
    checked = cartrial("--check", plan, "--instance", instance)
    assert checked.returncode == 0
    assert checked.stdout == f"plan {plan} is valid for instance {instance}: every rule holds\n"
    refused = cartrial("--instance", bad)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        "error: ld_to_infusion_gap_days: the smallest gap (4 days) is above the largest (2 days). [gap_order]\n"
    )


def test_the_example_of_the_docs_is_what_the_command_prints(app: typer.Typer, tmp_path: Path) -> None:
    docs = (SRC.parent / "docs" / "planning.md").read_text(encoding="utf-8")
    example = docs[docs.index("### Example") :]
    given = example.split("$ cat instance.json\n", 1)[1].split("\n", 1)[0]
    printed = example.split("$ cartrial plan --instance instance.json --solver greedy\n", 1)[1].split("\n", 1)[0]
    assert json.loads(given) == INSTANCE, "docs/planning.md: the example instance is the one of this test"
    code, out, _ = run(app, "--instance", write(tmp_path, "instance.json", given), "--solver", "greedy")
    assert (code, out) == (0, printed + "\n"), "docs/planning.md: paste the command's output again"
