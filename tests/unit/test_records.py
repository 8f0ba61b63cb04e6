"""Field parsers: clear reasons for bad values, no silent coercion."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailor.core.errors import Invalid
from tailor.datasets.schemas import (
    SCHEMAS,
    RowError,
    dataset_name,
    parse_id,
    parse_label,
    parse_number,
    parse_timestamp,
    validate_records,
)


@pytest.mark.parametrize("value,expected", [
    ("2024-01-02T03:04:05Z", 1704164645000),
    ("2024-01-02T03:04:05+01:00", 1704161045000),
    ("2024-01-02", 1704153600000),
    ("1704164645", 1704164645000),
    (1704164645, 1704164645000),
    (1704164645.5, 1704164645500),
])
def test_timestamps_iso_or_unix_seconds(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value,match", [
    ("yesterday", "unparseable"), (1704164645000, "milliseconds"), (-5, "out of range"), (True, "boolean")])
def test_bad_timestamps_say_why(value, match):
    with pytest.raises(RowError, match=match):
        parse_timestamp(value)


def test_ids_numbers_labels():
    assert parse_id(42.0) == "42"
    assert parse_id("  a b ") == "a b"
    assert parse_id("") is None
    with pytest.raises(RowError):
        parse_id("x" * 300)
    assert parse_number("4.5") == 4.5
    with pytest.raises(RowError, match="not a number"):
        parse_number("four")
    with pytest.raises(RowError, match="finite"):
        parse_number("nan")
    assert parse_label("POSITIVE") == "positive" and parse_label(0) == "negative"
    with pytest.raises(RowError, match="not positive, negative or neutral"):
        parse_label("great")


def test_dataset_aliases_and_unknown_names():
    assert dataset_name("events") == "interactions"
    with pytest.raises(Invalid, match="unknown dataset"):
        dataset_name("orders")


def test_json_records_keep_extras_and_reject_non_objects():
    result = validate_records(SCHEMAS["users"], [{"user_id": 7, "Age": "25-34"}, "oops", {"age": 3}])
    assert result.columns == {"user_id": ["7"], "Age": ["25-34"]}
    assert [(r.row, r.reason) for r in result.rejects] == [
        (2, "expected a JSON object, got str"), (3, "missing user_id")]


@given(st.text(max_size=50))
def test_timestamp_parser_either_parses_or_explains(text):
    try:
        value = parse_timestamp(text)
    except RowError as exc:
        assert str(exc)
    else:
        assert value is None or isinstance(value, int)
