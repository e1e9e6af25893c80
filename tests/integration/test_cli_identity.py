"""`cartrial identity`: generation, checking in every accepted form, exit codes, and no Django."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
import typer
from typer.testing import CliRunner

import cartrial.cli
from cartrial.cli.identity import register
from cartrial.domain.identity import mod37_2_check_character, parse_coi, parse_din

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    # A fresh application with only this group: other groups may need Django settings.
    application = typer.Typer()
    register(application)
    return application


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_group_is_listed_in_the_entry_point() -> None:
    assert "cartrial.cli.identity" in cartrial.cli._COMMAND_MODULES


def test_new_coi_prints_content_and_check_character(app: typer.Typer) -> None:
    code, out, _ = run(app, "identity", "new-coi", "--fin", "A9999", "--year", "2023", "--sequence", "7")
    assert code == 0
    assert out == "CHA999923000007" + mod37_2_check_character("CHA999923000007") + "\n"
    assert parse_coi(out.strip()).sequence == "000007"


def test_new_coi_defaults_to_this_year(app: typer.Typer) -> None:
    code, out, _ = run(app, "identity", "new-coi", "--fin", "A9990")
    assert code == 0
    assert out[7:9] == f"{datetime.now(UTC).year % 100:02d}"
    assert len(out.strip()) == 16


@pytest.mark.parametrize(
    ("form", "expected"),
    [("plain", "A999818123456N"), ("eye-readable", "A9998 18 123456 [N]"), ("barcode", "=A99981812345683")],
)
def test_new_din_forms_match_the_st001_example(app: typer.Typer, form: str, expected: str) -> None:
    code, out, _ = run(
        app, "identity", "new-din", "--fin", "A9998", "--year", "2018", "--sequence", "123456", "--form", form
    )
    assert (code, out) == (0, expected + "\n")


def test_generation_with_a_production_fin_is_refused(app: typer.Typer) -> None:
    code, out, err = run(app, "identity", "new-coi", "--fin", "B1234", "--year", "2026")
    assert code == 2
    assert out == ""
    assert "ICCBBA registration" in err
    assert "[identifier_facility_not_registered]" in err


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (["CHA999923ABC123U"], "CoI CH A9999 23 ABC123 [U]"),
        (["CH A9999 23 ABC123 U"], "CoI CH A9999 23 ABC123 [U]"),
        (["CH", "A9999", "23", "ABC123", "U"], "CoI CH A9999 23 ABC123 [U]"),
        (["&/CHA999923ABC123"], "CoI CH A9999 23 ABC123 [U]"),
        (["A9998 18 123456 N"], "DIN A9998 18 123456 [N]"),
        (["=A99981812345683"], "DIN A9998 18 123456 [N]"),
        (["G1234 17 654321 A"], "DIN G1234 17 654321 [A]"),
    ],
)
def test_check_accepts_every_form(app: typer.Typer, args: list[str], kind: str) -> None:
    code, out, _ = run(app, "identity", "check", *args)
    assert code == 0
    assert out.startswith(f"valid {kind}")
    assert out.count("\n") == 1


def test_check_names_a_registered_fin(app: typer.Typer) -> None:
    code, out, _ = run(app, "identity", "check", "G1234 17 654321 A")
    assert code == 0
    assert "FIN G1234 (registered FIN)" in out


@pytest.mark.parametrize(
    ("text", "error_code"),
    [
        ("CHA999923ABC123V", "check_character_mismatch"),
        ("CHA999923ABC123", "check_character_missing"),
        ("A9998 18 123465 N", "check_character_mismatch"),
        ("=A99981812345684", "din_flag_checksum_mismatch"),
        ("=<S12954A0", "identifier_data_identifier"),
        ("cha999923abc123u", "identifier_character"),
    ],
)
def test_check_refuses_with_the_reason(app: typer.Typer, text: str, error_code: str) -> None:
    code, out, _ = run(app, "identity", "check", text)
    assert code == 1
    assert out.startswith("invalid: ")
    assert out.rstrip().endswith(f"[{error_code}]")


def test_check_char(app: typer.Typer) -> None:
    assert run(app, "identity", "check-char", "G123498654321")[:2] == (0, "H\n")
    assert run(app, "identity", "check-char", "A9999", "22", "012346")[:2] == (0, "*\n")
    assert run(app, "identity", "check-char", "CHA999923ABC123")[:2] == (0, "U\n")
    code, _, err = run(app, "identity", "check-char", "A99-99")
    assert code == 2
    assert "[identifier_character]" in err


def test_generated_codes_check_valid(app: typer.Typer) -> None:
    _, din, _ = run(app, "identity", "new-din", "--fin", "A9997", "--year", "2026", "--sequence", "31")
    assert parse_din(din.strip()).sequence == "000031"
    assert run(app, "identity", "check", din.strip())[0] == 0


def test_identity_cli_does_not_import_django() -> None:
    probe = "import sys, cartrial.cli.identity; print(any(m.split('.')[0] == 'django' for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
