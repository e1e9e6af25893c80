"""The casebook's rules: form lifecycle, query lifecycle, what a signature covers."""

from __future__ import annotations

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from cartrial.domain.casebook import (
    QueryMove,
    QueryStatus,
    casebook_content,
    changed_items,
    form_change_check,
    lock_check,
    query_move_check,
    query_text_check,
    reason_check,
    saved_status,
    sign_check,
    unlock_check,
    verify_check,
)
from cartrial.domain.ecrf import FormStatus
from cartrial.domain.errors import InvalidInput, Refused


def test_a_saved_form_with_missing_required_items_is_a_draft() -> None:
    assert saved_status(["weight_kg"], {}, {"temperature_c": 37.0}) is FormStatus.DRAFT


def test_a_saved_form_without_missing_items_is_complete_until_every_filled_item_is_verified() -> None:
    values = {"temperature_c": 37.0, "heart_rate_bpm": 80, "comment": None}
    assert saved_status([], {"temperature_c": {}}, values) is FormStatus.COMPLETE
    assert saved_status([], {"temperature_c": {}, "heart_rate_bpm": {}}, values) is FormStatus.VERIFIED


def test_a_form_holding_no_value_is_verified_once_the_monitor_verified_it() -> None:
    assert saved_status([], {}, {}) is FormStatus.COMPLETE
    assert saved_status([], {"medications": {}}, {}) is FormStatus.VERIFIED
    # Verifying an empty item does not stand for the filled ones.
    assert saved_status([], {"comment": {}}, {"weight_kg": 60}) is FormStatus.COMPLETE


@pytest.mark.parametrize("status", [FormStatus.LOCKED, FormStatus.SIGNED])
def test_a_locked_or_signed_form_refuses_changes(status: FormStatus) -> None:
    with pytest.raises(Refused) as refused:
        form_change_check(status)
    assert refused.value.code == "form_locked"


@pytest.mark.parametrize("status", [FormStatus.NOT_STARTED, FormStatus.DRAFT, FormStatus.COMPLETE, FormStatus.VERIFIED])
def test_an_open_form_accepts_changes(status: FormStatus) -> None:
    form_change_check(status)


def test_a_change_after_the_first_save_needs_a_reason() -> None:
    assert reason_check(None, {"a": 1}, "") == ""
    assert reason_check({"a": 1}, {"a": 1}, "") == ""
    with pytest.raises(InvalidInput) as refused:
        reason_check({"a": 1}, {"a": 2}, "  ")
    assert (refused.value.code, refused.value.item) == ("reason_required", "reason")
    assert reason_check({"a": 1}, {"a": 2}, " typo ") == "typo"


def test_changed_items_include_removed_ones() -> None:
    assert changed_items({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5}) == ["b", "c"]


def test_only_items_of_a_complete_form_can_be_verified() -> None:
    with pytest.raises(Refused) as draft:
        verify_check(FormStatus.DRAFT, ["a"], ("a",))
    assert draft.value.code == "form_not_complete"
    with pytest.raises(InvalidInput) as unknown:
        verify_check(FormStatus.COMPLETE, ["b"], ("a",))
    assert unknown.value.item == "b"
    assert str(unknown.value) == "'b' is not an item of this form: nothing to verify."  # the item named
    assert verify_check(FormStatus.COMPLETE, ["a"], ("a", "c")) == ["a"]


def test_lock_and_unlock_rules() -> None:
    for status, code in [(FormStatus.DRAFT, "form_not_complete"), (FormStatus.LOCKED, "form_already_locked")]:
        with pytest.raises(Refused) as refused:
            lock_check(status)
        assert refused.value.code == code
    lock_check(FormStatus.COMPLETE)
    lock_check(FormStatus.VERIFIED)
    with pytest.raises(Refused):
        unlock_check(FormStatus.COMPLETE, "why")
    with pytest.raises(InvalidInput) as no_reason:
        unlock_check(FormStatus.LOCKED, " ")
    assert no_reason.value.code == "reason_required"
    assert unlock_check(FormStatus.SIGNED, " late lab report ") == "late lab report"


def test_a_casebook_is_signed_only_when_every_form_is_locked() -> None:
    with pytest.raises(Refused) as empty:
        sign_check({})
    assert empty.value.code == "casebook_empty"
    with pytest.raises(Refused) as open_forms:
        sign_check({"D28/vital_signs": FormStatus.LOCKED, "D28/chemistry": FormStatus.VERIFIED})
    assert open_forms.value.code == "casebook_not_locked"
    assert "D28/chemistry" in str(open_forms.value)
    sign_check({"D28/vital_signs": FormStatus.LOCKED, "M3/chemistry": FormStatus.SIGNED})


def test_the_signed_content_does_not_depend_on_the_order_of_the_forms() -> None:
    rows = [("M3", "chemistry", "1.0", {"a": 1}), ("D28", "vital_signs", "1.0", {"b": 2})]
    assert casebook_content(rows) == casebook_content(list(reversed(rows)))
    assert casebook_content(rows)[0]["visit"] == "D28"


_ALLOWED = {
    QueryMove.ANSWER: {QueryStatus.OPEN},
    QueryMove.CLOSE: {QueryStatus.OPEN, QueryStatus.ANSWERED},
    QueryMove.REOPEN: {QueryStatus.ANSWERED, QueryStatus.CLOSED},
    QueryMove.RESOLVE: {QueryStatus.OPEN, QueryStatus.ANSWERED},
}


@given(
    status=st.sampled_from(list(QueryStatus)),
    move=st.sampled_from([m for m in QueryMove if m is not QueryMove.RAISE]),
)
def test_query_moves_follow_the_lifecycle(status: QueryStatus, move: QueryMove) -> None:
    allowed = status in _ALLOWED[move]
    event(f"{move.value} from {status.value}: {'allowed' if allowed else 'refused'}")
    if allowed:
        after = query_move_check(status, move, "text")
        expected = QueryStatus.OPEN if move is QueryMove.REOPEN else None
        expected = expected or (QueryStatus.ANSWERED if move is QueryMove.ANSWER else QueryStatus.CLOSED)
        assert after is expected
    else:
        with pytest.raises(Refused) as refused:
            query_move_check(status, move, "text")
        assert refused.value.code == "query_wrong_status"


def test_a_person_s_query_move_needs_a_text_but_an_automatic_resolution_does_not() -> None:
    with pytest.raises(InvalidInput) as refused:
        query_move_check(QueryStatus.OPEN, QueryMove.CLOSE, "")
    assert refused.value.item == "reason"
    assert query_move_check(QueryStatus.OPEN, QueryMove.RESOLVE, "") is QueryStatus.CLOSED


def test_a_query_needs_a_question_of_reasonable_length() -> None:
    with pytest.raises(InvalidInput):
        query_text_check("   ")
    with pytest.raises(InvalidInput) as long:
        query_text_check("x" * 2001)
    assert long.value.code == "query_text_too_long"
    assert query_text_check(" Source says 38.2? ") == "Source says 38.2?"
