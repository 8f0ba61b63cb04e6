"""Property tests for the ingest parsers (tailor.datasets.files, tailor.datasets.schemas).

Whatever arrives — any bytes, encoding, delimiter, huge field or mixed JSON types — ingest
never crashes: the only whole-file failure is `FileRejected` with a message, and otherwise
every row read is stored or rejected exactly once, each reject with its row number and a
reason. (tests/unit/test_files.py holds the example-based tests and a first arbitrary-bytes
property; these add exact accounting per format, encodings and the field parsers.)
Budget: `HYPOTHESIS_PROFILE=fuzz` (set by `make fuzz`) runs ten times more examples.
"""

from __future__ import annotations

import csv
import io
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailor.datasets.files import FileRejected, read_file
from tailor.datasets.schemas import (
    SCHEMAS,
    RowError,
    parse_categories,
    parse_id,
    parse_label,
    parse_language,
    parse_number,
    parse_text,
    parse_timestamp,
    validate_records,
)

LIMIT = 10 * 2**20
SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 1
PROPERTY = settings(max_examples=80 * SCALE, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HUGE = 120_000  # over MAX_TEXT_LENGTH (100,000) and far over MAX_ID_LENGTH (256)

# Cells: ordinary values, the characters that break naive CSV (delimiters, quotes, newlines,
# a BOM, `|`), non-Latin text, and now and then a huge field.
plain = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
tricky = st.sampled_from([",", ";", "\t", "|", '"', '""', "\n", "\r\n", "a,b", 'say "hi"', "\ufeff", " ",
                          "1700000000", "2024-02-30T10:00:00Z", "-1", "1e308", "nan", "ünïcødé", "日本語", "🙂"])
huge = st.builds(lambda ch, n: ch * n, st.sampled_from(["x", "é", "字"]), st.integers(HUGE, HUGE + 10))
cell = st.one_of(plain, tricky, plain.map(lambda s: s + "u1"), st.just(""), huge.filter(lambda _: True))
cells = st.lists(cell, min_size=0, max_size=6)

ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le"]


def _accounted(result, expected_rows: int) -> None:
    stored, rejected = result.rows, len(result.rejects)
    assert stored + rejected == expected_rows, (stored, rejected, expected_rows)
    assert all(len(column) == stored for column in result.columns.values())
    assert all(reject.reason and isinstance(reject.row, int) and reject.row >= 1 for reject in result.rejects)
    numbers = list(getattr(result, "row_numbers", None) or []) + [reject.row for reject in result.rejects]
    assert len(set(numbers)) == len(numbers), "a row was both stored and rejected, or counted twice"


@PROPERTY
@given(rows=st.lists(cells, max_size=15), delimiter=st.sampled_from([",", "\t", ";"]),
       encoding=st.sampled_from(ENCODINGS), extra_column=st.booleans(), gz=st.booleans())
def test_csv_any_delimiter_encoding_and_cells_every_row_stored_or_rejected(rows, delimiter, encoding,
                                                                         extra_column, gz):
    header = ["user_id", "item_id", "timestamp", "value"] + (["note"] if extra_column else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)  # "\r\n" lines: cells holding \r or \n get quoted
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode(encoding, errors="replace")
    if gz:
        import gzip

        data = gzip.compress(data)
    try:
        fmt, result = read_file(data, "upload.csv.gz" if gz else "upload.csv", SCHEMAS["interactions"],
                                max_bytes=LIMIT)
    except FileRejected as exc:
        # Only a UTF-16 file is refused as a whole (its header cannot be read as UTF-8).
        assert encoding.startswith("utf-16"), f"{encoding}: {exc}"
        assert "UTF-16" in str(exc) or "UTF-8" in str(exc)
        return
    assert fmt == "csv"
    # csv.writer writes an empty row as a blank line, and a row of one blank cell is layout too.
    expected = sum(1 for row in rows if not (len(row) == 0 or (len(row) == 1 and not row[0].strip())))
    _accounted(result, expected)
    for reject in result.rejects:
        assert reject.row >= 2, "row numbers are file lines; line 1 is the header"


json_value = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | plain | tricky | huge,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(plain, children, max_size=3),
    max_leaves=8,
)
record = st.one_of(
    st.fixed_dictionaries({"user_id": json_value, "item_id": json_value, "timestamp": json_value},
                          optional={"event_type": json_value, "value": json_value, "Extra": json_value}),
    json_value,  # not an object at all
)


@PROPERTY
@given(records=st.lists(record, max_size=20))
def test_json_batches_of_mixed_types_every_record_stored_or_rejected(records):
    result = validate_records(SCHEMAS["interactions"], records)
    _accounted(result, len(records))
    assert {reject.row for reject in result.rejects} <= set(range(1, len(records) + 1))


@PROPERTY
@given(lines=st.lists(st.one_of(record.map(lambda r: json.dumps(r, ensure_ascii=False)),
                                st.sampled_from(["{", "not json", '{"user_id": 1,}', "\udcff".encode(
                                    "utf-8", "surrogatepass").decode("latin-1")]),
                                st.just("   ")), max_size=20),
       blank_first=st.booleans())
def test_json_lines_every_non_blank_line_stored_or_rejected(lines, blank_first):
    text = ("\n" if blank_first else "") + "\n".join(lines)
    data = text.encode("utf-8", "surrogatepass")
    first = next((line for line in lines if line.strip()), "")
    try:
        fmt, result = read_file(data, "upload.jsonl", SCHEMAS["interactions"], max_bytes=LIMIT)
    except FileRejected as exc:
        # Empty files, and a file whose first line is a JSON array (read as one document).
        assert not text.strip() or first.lstrip().startswith("["), str(exc)
        return
    assert fmt == "jsonl"
    if first.lstrip().startswith("["):  # the whole file was one JSON array: rows are its elements
        _accounted(result, result.rows + len(result.rejects))
        return
    non_blank = [n for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
    _accounted(result, len(non_blank))
    assert {reject.row for reject in result.rejects} <= set(non_blank), "rejects point at their own lines"


@PROPERTY
@given(data=st.binary(max_size=3000), name=st.sampled_from(["a.csv", "a.tsv", "a.jsonl", "a.json", "a.parquet",
                                                              "a.csv.gz", "a", "a.txt"]),
       dataset=st.sampled_from(sorted(SCHEMAS)))
def test_arbitrary_bytes_in_any_dataset_are_rows_or_a_file_rejection(data, name, dataset):
    try:
        _, result = read_file(data, name, SCHEMAS[dataset], max_bytes=LIMIT)
    except FileRejected as exc:
        assert str(exc)
        return
    assert all(len(column) == result.rows for column in result.columns.values())
    assert all(reject.reason and reject.row >= 1 for reject in result.rejects)


@PROPERTY
@given(text=st.text(max_size=200), encoding=st.sampled_from(["latin-1", "cp1252", "utf-16", "utf-32"]))
def test_text_in_other_encodings_never_crashes(text, encoding):
    data = ("user_id,item_id,timestamp\n" + "\n".join(f"u{i},{text!r},{i}" for i in range(3))).encode(
        encoding, errors="replace")
    try:
        _, result = read_file(data, "a.csv", SCHEMAS["interactions"], max_bytes=LIMIT)
    except FileRejected as exc:
        assert "UTF" in str(exc) or "column" in str(exc) or "header" in str(exc), str(exc)
        return
    assert result.rows + len(result.rejects) >= 1


any_value = st.one_of(json_value, st.binary(max_size=20), st.text(max_size=30),
                      st.sampled_from(["\ud800", "a\udcffb"]), st.tuples(plain), st.sets(st.integers(), max_size=3))
PARSERS = [parse_id, parse_text, parse_number, parse_timestamp, parse_label, parse_categories, parse_language]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@PROPERTY
@given(value=any_value)
def test_field_parsers_return_a_value_or_explain(parser, value):
    try:
        parsed = parser(value)
    except RowError as exc:
        assert str(exc), f"{parser.__name__}({value!r}) raised without a reason"
        return
    assert parsed is None or isinstance(parsed, (str, int, float)), (parser.__name__, value, parsed)
    if isinstance(parsed, str):
        parsed.encode("utf-8")  # what is stored must be valid UTF-8 (no lone surrogates)


# ---- forgiving readers: ratings written as text, millisecond columns, column mappings ----------
from tailor.core.errors import Invalid  # noqa: E402
from tailor.datasets.schemas import apply_columns, check_columns, number_from_text  # noqa: E402

rating = st.decimals(min_value=0, max_value=10, places=1, allow_nan=False, allow_infinity=False)
scale = st.sampled_from(["", " out of 5", "/5", " of 10", " out of 5 stars", " stars", " star"])


@PROPERTY
@given(value=rating, suffix=scale, prefix=st.sampled_from(["", "Rated ", "rating: ", "Score "]),
       case=st.booleans())
def test_a_rating_written_as_text_keeps_its_number(value, suffix, prefix, case):
    text = f"{prefix}{value}{suffix}"
    number, note = number_from_text(text.upper() if case else text)
    assert number == float(value) and "text" in note


@PROPERTY
@given(text=st.text(max_size=30))
def test_rating_text_is_a_number_or_a_reason(text):
    try:
        number, _ = number_from_text(text)
    except RowError as exc:
        assert str(exc)
        return
    assert number >= 0 or text.lstrip().startswith(("-", "rated", "Rated", "RATED", "rating", "score"))


@PROPERTY
@given(seconds=st.lists(st.integers(min_value=946_684_800, max_value=4_102_444_799), min_size=1, max_size=20),
       as_text=st.booleans())
def test_a_column_of_millisecond_timestamps_reads_as_the_same_moments(seconds, as_text):
    records = [{"user_id": f"u{i}", "item_id": "i1",
                "timestamp": str(s * 1000) if as_text else s * 1000} for i, s in enumerate(seconds)]
    result = validate_records(SCHEMAS["interactions"], records)
    assert result.rows == len(seconds) and not result.rejects
    assert sorted(result.columns["timestamp"]) == sorted(s * 1000 for s in seconds)


field = st.sampled_from(SCHEMAS["interactions"].field_names)
name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@PROPERTY
@given(columns=st.dictionaries(name, st.one_of(field, name), max_size=6))
def test_a_column_mapping_is_accepted_whole_or_refused_with_a_reason(columns):
    try:
        mapping = check_columns(SCHEMAS["interactions"], columns)
    except Invalid as exc:
        assert "columns" in str(exc)
        return
    assert set(mapping.values()) <= set(SCHEMAS["interactions"].field_names)
    assert len(set(mapping.values())) == len(mapping)  # one source per field
    header = list(columns)
    try:
        renamed, warnings = apply_columns(header, mapping)
    except RowError as exc:
        assert "two columns" in str(exc)
        return
    assert len(renamed) == len(header) and not warnings
    assert [mapping.get(h.lower(), h) for h in header] == renamed
