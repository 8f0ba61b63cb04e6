"""Parsing uploaded files: every row is stored or rejected with a reason; nothing is mangled."""

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailor.datasets.files import FileRejected, read_file
from tailor.datasets.schemas import SCHEMAS

INTERACTIONS = SCHEMAS["interactions"]
LIMIT = 10 * 2**20


def read(data: bytes, name="f.csv", schema=INTERACTIONS):
    return read_file(data, name, schema, max_bytes=LIMIT)[1]


def test_ten_good_rows_and_three_broken_ones():
    good = [f"u{i},i{i},2024-01-0{1 + i % 9}T10:00:00Z" for i in range(10)]
    broken = [",i99,1700000000", "u98,i98,yesterday", "u97,i\xff97,1700000000"]
    # A valid UTF-8 "é" elsewhere in the file: it is UTF-8 with one broken byte, not Windows-1252.
    lines = ["user_id,item_id,timestamp"] + good[:5] + broken + good[5:] + ["u\xe9,i1,1700000000"]
    data = "\n".join(lines).encode("utf-8", "surrogateescape").replace(b"\xc3\xbf", b"\xff")
    result = read(data)
    assert result.rows == 11 and not result.warnings
    reasons = {r.row: r.reason for r in result.rejects}
    assert set(reasons) == {7, 8, 9}  # file lines, header is line 1
    assert reasons[7] == "missing user_id"
    assert "unparseable timestamp" in reasons[8]
    assert "invalid UTF-8" in reasons[9]
    assert result.columns["user_id"] == [f"u{i}" for i in range(10)] + ["u\xe9"]


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_windows_1252_and_latin1_files_are_read_with_a_warning(encoding):
    text = "item_id,title,description\ni1,Crème brûlée set,« très bien »\ni2,Plain,ok\ni3,Ça va,\n"
    result = read(text.encode(encoding), "items.csv", SCHEMAS["items"])
    assert result.columns["title"] == ["Crème brûlée set", "Plain", "Ça va"]
    assert result.columns["description"][0] == "« très bien »"
    assert result.warnings == {"file is not UTF-8: read as Windows-1252 (Latin-1); lines with non-ASCII characters": 2}
    assert read("item_id,title\ni1,caf\u00e9 \u20ac5\n".encode("cp1252"), "i.csv", SCHEMAS["items"]).columns["title"] \
        == ["café €5"]


def test_windows_1252_json_lines_are_read_too():
    data = '{"item_id": "i1", "title": "Noël"}\n'.encode("cp1252")
    result = read(data, "items.jsonl", SCHEMAS["items"])
    assert result.columns["title"] == ["Noël"] and len(result.warnings) == 1


def test_column_mapping_renames_the_header_and_refuses_clashes():
    from tailor.datasets.schemas import check_columns

    mapping = check_columns(INTERACTIONS, {"Customer_ID": "user_id", "product_id": "item_id", "date": "timestamp",
                                           "stars": "value"})
    data = b"customer_id,product_id,date,stars\nc1,p1,2024-01-01,5.0 out of 5 stars\nc2,p2,2024-01-02,lots\n"
    result = read_file(data, "f.csv", INTERACTIONS, max_bytes=LIMIT, columns=mapping)[1]
    assert result.columns["user_id"] == ["c1", "c2"] and result.columns["value"] == [5.0, None]
    assert result.warnings == {"value: number read from text (such as '5.0 out of 5 stars', '4/5' or '★★★★☆')": 1,
                               "value: not a number; left empty": 1}
    assert result.warning_samples == [
        {"row": 2, "warning": "value: number read from text (such as '5.0 out of 5 stars', '4/5' or '★★★★☆')"},
        {"row": 3, "warning": "value: not a number; left empty"}]
    with pytest.raises(FileRejected, match="two columns the name user_id"):
        read_file(b"customer_id,user_id,product_id,date\nc,u,p,2024-01-01\n", "f.csv", INTERACTIONS,
                  max_bytes=LIMIT, columns=mapping)
    with pytest.raises(FileRejected, match="missing required column.*after the column mapping"):
        read_file(b"customer_id,date\nc,2024-01-01\n", "f.csv", INTERACTIONS, max_bytes=LIMIT,
                  columns={"customer_id": "user_id"})


def test_millisecond_timestamps_read_when_the_whole_column_is():
    ms = read(b"user_id,item_id,timestamp\nu1,i1,1704164645000\nu2,i2,1704164646500\n")
    assert ms.columns["timestamp"] == [1704164645000, 1704164646500] and ms.rejects == []
    assert list(ms.warnings.values()) == [2] and "milliseconds" in next(iter(ms.warnings))
    mixed = read(b"user_id,item_id,timestamp\nu1,i1,1704164645000\nu2,i2,1704164646\nu3,i3,2024-01-01\n")
    assert mixed.columns["user_id"] == ["u2", "u3"] and mixed.warnings == {}
    assert [r.row for r in mixed.rejects] == [2] and "one unit per column" in mixed.rejects[0].reason


def test_utf8_text_survives_and_extra_columns_are_kept():
    data = "item_id,title,categories,brand\ni1,茶壶 🍵 Teapot,Home| Kitchen ,Müller\n".encode()
    result = read(data, "items.csv", SCHEMAS["items"])
    assert result.columns["title"] == ["茶壶 🍵 Teapot"]
    assert result.columns["categories"] == ["Home|Kitchen"]
    assert result.columns["brand"] == ["Müller"]


def test_tab_and_semicolon_delimiters_are_detected_but_not_pipes():
    tsv = b"user_id\titem_id\ttimestamp\nu1\ti1\t1700000000\n"
    assert read(tsv).columns["item_id"] == ["i1"]
    items = b"item_id,title,categories\ni1,Tent,Outdoor|Camping|Tents\n"
    assert read(items, "i.csv", SCHEMAS["items"]).columns["categories"] == ["Outdoor|Camping|Tents"]


def test_missing_required_column_rejects_the_file_with_a_clear_message():
    with pytest.raises(FileRejected, match="missing required column.*timestamp"):
        read(b"user_id,item_id\nu1,i1\n")


def test_gzip_jsonl_and_malformed_lines():
    lines = [json.dumps({"user_id": "u1", "item_id": "i1", "timestamp": 1700000000, "value": 4}),
             "{broken json", json.dumps({"user_id": "u2", "item_id": "i2", "timestamp": "2024-02-01"})]
    result = read(gzip.compress("\n".join(lines).encode()), "events.jsonl.gz")
    assert result.rows == 2
    assert result.columns["value"] == [4.0, None]
    assert [(r.row, r.reason.split(":")[0]) for r in result.rejects] == [(2, "malformed JSON")]


def test_parquet_upload_with_numeric_ids():
    table = pa.table({"user_id": [1, 2], "item_id": [10, 20], "timestamp": [1700000000, 1700000001]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    result = read(sink.getvalue(), "x.parquet")
    assert result.columns["user_id"] == ["1", "2"]
    assert result.columns["timestamp"] == [1700000000000, 1700000001000]


def test_empty_and_utf16_files_are_refused():
    with pytest.raises(FileRejected, match="empty"):
        read(b"   \n")
    with pytest.raises(FileRejected, match="UTF-16"):
        read("user_id,item_id,timestamp\n".encode("utf-16"))


def test_gzip_bomb_is_refused():
    bomb = gzip.compress(b"user_id,item_id,timestamp\n" + b"a" * (LIMIT + 10))
    with pytest.raises(FileRejected, match="decompresses to more than"):
        read(bomb, "x.csv.gz")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.sampled_from(["a.csv", "a.jsonl", "a.parquet", "a.csv.gz", "a"]))
def test_arbitrary_bytes_never_crash_and_every_row_is_accounted_for(data, name):
    try:
        fmt, result = read_file(data, name, INTERACTIONS, max_bytes=LIMIT)
    except FileRejected:
        return
    assert all(len(col) == result.rows for col in result.columns.values())
    assert all(r.reason for r in result.rejects)


cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(cell, cell, cell), max_size=20))
def test_csv_rows_are_stored_or_rejected_never_both_never_lost(rows):
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["user_id", "item_id", "timestamp"])
    writer.writerows(rows)
    result = read(buffer.getvalue().encode())
    non_blank = [r for r in rows if any(c.strip() for c in r) or len(r) > 1]
    # A row that is only blanks is layout; every other row is stored or rejected, exactly once.
    assert result.rows + len(result.rejects) <= len(rows)
    assert result.rows + len(result.rejects) >= len([r for r in non_blank if "".join(r).strip()])
