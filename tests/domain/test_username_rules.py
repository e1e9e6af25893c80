"""Usernames compare without case."""

from __future__ import annotations

from cartrial.domain.usernames import case_duplicates, username_key


def test_the_comparison_key_ignores_case_and_surrounding_spaces() -> None:
    assert username_key("LIL.Coordinator") == username_key("lil.coordinator ") == "lil.coordinator"
    assert username_key("lil.coordinator") != username_key("lil.coordinat0r")


def test_case_duplicates_are_grouped_for_a_person_to_merge() -> None:
    names = ["lil.coordinator", "bdx.investigator", "LIL.Coordinator", "Lil.coordinator", "BDX.pharmacist"]
    assert case_duplicates(names) == [["LIL.Coordinator", "Lil.coordinator", "lil.coordinator"]]
    assert case_duplicates(["a", "b"]) == []
