"""The description of what may be corrected, how a corrected value is read, and the minimal date order."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from cartrial.domain.corrections import (
    CORRECTABLE,
    SIGNED_RECORDS,
    RecordKind,
    ValueType,
    correctable,
    correction_action,
    correction_check,
    parse_corrected_value,
    pathway_date_order_check,
)
from cartrial.domain.errors import InvalidInput
from cartrial.domain.roles import ACTION_LABELS, Role, roles_for
from cartrial.domain.screening import SCREENING_FIELDS

PARIS = ZoneInfo("Europe/Paris")


def test_every_kind_of_record_is_described_with_an_action_and_a_label() -> None:
    assert set(CORRECTABLE) == set(RecordKind)
    for kind, record in CORRECTABLE.items():
        assert record.kind is kind
        assert record.fields, kind
        assert record.action in ACTION_LABELS
        assert roles_for(record.action), kind


def test_only_a_role_that_may_sign_corrects_a_signed_record() -> None:
    """The signing action's roles are a subset of those who correct the record when unsigned."""
    for record in CORRECTABLE.values():
        if record.covered_by is None:
            continue
        signers = roles_for(correction_action(record, record.covered_by))
        assert signers <= roles_for(record.action), record.kind
    assert roles_for(SIGNED_RECORDS[correctable("infusion").covered_by].action) == {Role.INVESTIGATOR}  # type: ignore[index]
    assert roles_for(correction_action(correctable("lab_observation"), correctable("lab_observation").covered_by)) == {
        Role.INVESTIGATOR
    }
    assert roles_for(correction_action(correctable("qc_result"), correctable("qc_result").covered_by)) == {
        Role.MANUFACTURING
    }


def test_sponsor_roles_never_correct() -> None:
    for record in CORRECTABLE.values():
        assert not roles_for(record.action) & {Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN}


def test_screening_data_fields_are_the_screening_contract() -> None:
    assert [f.name for f in correctable("screening_data").fields] == list(SCREENING_FIELDS)


def test_unknown_record_and_field_are_refused_naming_what_exists() -> None:
    with pytest.raises(InvalidInput) as unknown:
        correctable("audit_entry")
    assert unknown.value.code == "unknown_record" and "thaw" in str(unknown.value)
    with pytest.raises(InvalidInput) as field:
        correctable("collection").field("din")
    assert field.value.code == "unknown_field" and field.value.item == "field"
    assert "ended_at" in str(field.value)


def test_an_instant_without_offset_is_the_centers_wall_clock_time() -> None:
    field = correctable("collection").field("ended_at")
    parsed = parse_corrected_value(field, "2026-03-05 08:30", PARIS)
    assert parsed == datetime(2026, 3, 5, 7, 30, tzinfo=UTC)
    with_offset = parse_corrected_value(field, "2026-03-05T08:30:00+00:00", PARIS)
    assert with_offset == datetime(2026, 3, 5, 8, 30, tzinfo=UTC)
    with pytest.raises(InvalidInput) as date_only:
        parse_corrected_value(field, "2026-03-05", PARIS)
    assert date_only.value.code == "invalid_value"


def test_numbers_dates_and_texts_are_read_as_typed() -> None:
    lab = correctable("lab_observation")
    assert parse_corrected_value(lab.field("value"), "12,5", PARIS) == 12.5
    assert parse_corrected_value(lab.field("value"), 3, PARIS) == 3.0
    assert parse_corrected_value(lab.field("value"), "", PARIS) is None
    assert parse_corrected_value(lab.field("value"), None, PARIS) is None
    with pytest.raises(InvalidInput, match="is not a number"):
        parse_corrected_value(lab.field("value"), "twelve", PARIS)
    with pytest.raises(InvalidInput):
        parse_corrected_value(lab.field("value"), True, PARIS)
    volume = correctable("collection").field("volume_ml")
    assert volume.type is ValueType.NUMBER
    with pytest.raises(InvalidInput) as missing:
        parse_corrected_value(volume, "", PARIS)
    assert missing.value.code == "value_missing"
    d0 = correctable("infusion").field("infusion_date")
    assert parse_corrected_value(d0, "2026-03-05", PARIS) == date(2026, 3, 5)
    with pytest.raises(InvalidInput):
        parse_corrected_value(d0, "05/03/2026", PARIS)
    assert parse_corrected_value(correctable("product_receipt").field("storage_location"), "  Tank 3 ", PARIS) == (
        "Tank 3"
    )


def test_a_correction_needs_a_reason_and_a_change() -> None:
    with pytest.raises(InvalidInput) as no_reason:
        correction_check(1.0, 2.0, "  ")
    assert (no_reason.value.code, no_reason.value.item) == ("reason_required", "reason")
    with pytest.raises(InvalidInput) as same:
        correction_check(1.0, 1.0, "typo")
    assert same.value.code == "no_change"
    correction_check(1.0, 2.0, "transcription error")


def test_pathway_dates_follow_each_other_and_what_happened_is_not_in_the_future() -> None:
    today = date(2026, 3, 10)
    pathway_date_order_check(
        [
            ("consent_signed_on", date(2026, 1, 5)),
            ("apheresis_date", date(2026, 3, 20)),  # planned: may be ahead
            ("infusion_date", None),
            ("death_date", None),
        ],
        today,
    )
    with pytest.raises(InvalidInput) as order:
        pathway_date_order_check(
            [("consent_signed_on", date(2026, 1, 5)), ("apheresis_date", None), ("infusion_date", date(2026, 1, 4))],
            today,
        )
    assert order.value.code == "dates_out_of_order"
    assert "2026-01-04" in str(order.value) and "2026-01-05" in str(order.value)
    with pytest.raises(InvalidInput) as future:
        pathway_date_order_check([("death_date", date(2026, 3, 11))], today)
    assert future.value.code == "date_in_future"
