"""docs/security.md names the tests that prove each control: every one it names exists, and every
OWASP Top 10 (2021) risk has a section naming at least one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
NAMED = re.compile(r"`((?:integration|domain)/[\w/]+\.py)?(?:::(\w+))?`")


def _named_tests() -> list[tuple[str, str | None]]:
    """(file, test or None) in order; `::name` alone belongs to the last file named before it."""
    named: list[tuple[str, str | None]] = []
    current = ""
    for match in NAMED.finditer(DOC.read_text(encoding="utf-8")):
        file, test = match.groups()
        if file:
            current = file
        if file or test:
            named.append((current, test))
    return named


def test_every_test_the_document_names_exists() -> None:
    named = _named_tests()
    assert len(named) > 40
    for file, test in named:
        path = ROOT / "tests" / file
        assert path.is_file(), file
        if test is not None:
            assert re.search(rf"^def {test}\(", path.read_text(encoding="utf-8"), re.M), f"{file}::{test}"


def test_every_owasp_risk_has_its_section_with_a_test() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    for number in range(1, 11):
        section = next((s for s in sections if s.startswith(f"A{number:02d} ")), None)
        assert section is not None, f"A{number:02d}"
        assert "integration/" in section or "domain/" in section, f"A{number:02d} names no test"
