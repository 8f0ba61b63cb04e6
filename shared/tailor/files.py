"""Reading uploaded files (CSV, JSON Lines, Parquet; gzip-compressed too) into validated rows.

Every row ends up in `Validated.columns` or `Validated.rejects`; a problem with the whole
file (unknown format, missing required column, wrong encoding) raises `FileRejected`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib

from .records import Reject, RowError, Schema, Validated, Validator, has_surrogates, validate_records

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
csv.field_size_limit(16 * 1024 * 1024)  # long review texts are legitimate


class FileRejected(ValueError):
    """The whole file is unusable; the message says why and what to do."""


def decompress(data: bytes, limit: int) -> bytes:
    """Gunzip with a cap, so a small compressed bomb cannot exhaust the function's memory."""
    if not data.startswith(GZIP_MAGIC):
        return data
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while chunk := stream.read(1 << 20):
                out.write(chunk)
                if out.tell() > limit:
                    raise FileRejected(
                        f"file decompresses to more than {limit // (1024 * 1024)} MB; split it into smaller files"
                    )
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRejected(f"corrupt gzip data: {exc}") from exc
    return out.getvalue()


def detect_format(data: bytes, filename: str) -> str:
    name = filename.lower().removesuffix(".gz")
    if data.startswith(PARQUET_MAGIC) or name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head[:1] in (b"{", b"[") else "csv"


def read_file(data: bytes, filename: str, schema: Schema, *, max_bytes: int) -> tuple[str, Validated]:
    """Parse and validate one uploaded file. Returns (format, validated rows)."""
    data = decompress(data, max_bytes)
    if not data.strip():
        raise FileRejected("the file is empty (0 rows)")
    fmt = detect_format(data, filename)
    try:
        if fmt == "parquet":
            return fmt, _read_parquet(data, schema)
        if data.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_like_utf16(data):
            raise FileRejected("the file is UTF-16; save it as UTF-8 and upload it again")
        if fmt == "jsonl":
            return fmt, _read_json(data, schema)
        return fmt, _read_csv(data, schema)
    except RowError as exc:  # a header problem affects every row
        raise FileRejected(str(exc)) from exc


def _looks_like_utf16(data: bytes) -> bool:
    """UTF-16 without a byte order mark: every other byte of the (ASCII) header line is NUL
    (otherwise the header would read as garbage and the message would blame the columns)."""
    head = data[:512].split(b"\n", 1)[0]
    return len(head) >= 8 and any(head[i::2].count(0) >= 0.9 * len(head[i::2]) for i in (0, 1))


def _sniff_delimiter(header_line: str) -> str:
    # Only these three: `|` separates categories inside a field and must not be taken for one.
    counts = {d: header_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(data: bytes, schema: Schema) -> Validated:
    try:
        text = data.decode("utf-8-sig")
        clean = True
    except UnicodeDecodeError:
        # Keep the undecodable bytes as surrogates so only the rows that hold them are rejected.
        text = data.decode("utf-8-sig", errors="surrogateescape")
        clean = False
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(first_line))
    try:
        header = next(reader)
    except StopIteration:
        raise FileRejected("the file has no header row") from None
    except csv.Error as exc:
        raise FileRejected(f"unreadable CSV header: {exc}") from exc
    if not clean and has_surrogates("".join(header)):
        raise FileRejected("the header row is not valid UTF-8; save the file as UTF-8")
    validator = Validator(schema, header)
    line = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a NUL byte or an unterminated quote: skip to the next line
            validator.reject(reader.line_num, f"unreadable CSV: {exc}", "")
            line = reader.line_num
            continue
        start, line = line + 1, reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank lines are layout, not data
        if not clean and any(has_surrogates(v) for v in row):
            raw = ",".join(row).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            validator.reject(start, "invalid UTF-8 (the file must be UTF-8 encoded)", raw)
            continue
        validator.add(start, row)
    return validator.result()


def _read_json(data: bytes, schema: Schema) -> Validated:
    # Only the BOM is cut from the lines: leading blank lines still count, so that reject
    # row numbers are the lines a person sees in an editor.
    body = data.removeprefix(b"\xef\xbb\xbf")
    stripped = body.lstrip(b" \t\r\n")
    if stripped.startswith(b"["):  # a whole JSON array is accepted too
        try:
            records = json.loads(stripped.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FileRejected(f"the file starts like a JSON array but is not valid JSON: {exc}") from exc
        return validate_records(schema, records if isinstance(records, list) else [records])
    records: list = []
    numbers: list[int] = []
    bad: list[tuple[int, str, str]] = []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            records.append(json.loads(raw))
            numbers.append(number)
        except UnicodeDecodeError:
            bad.append((number, "invalid UTF-8 (the file must be UTF-8 encoded)", raw.decode("utf-8", "backslashreplace")))
        except json.JSONDecodeError as exc:
            bad.append((number, f"malformed JSON: {exc.msg} at column {exc.colno}", raw.decode("utf-8", "backslashreplace")))
    result = validate_records(schema, records)
    # validate_records numbers rows by position; map them back to file lines.
    for reject in result.rejects:
        reject.row = numbers[reject.row - 1]
    result.row_numbers = [numbers[row - 1] for row in result.row_numbers or []]
    result.rejects.extend(Reject(n, reason, raw[:300]) for n, reason, raw in bad)
    result.rejects.sort(key=lambda r: r.row)
    return result


def _read_parquet(data: bytes, schema: Schema) -> Validated:
    import pyarrow.parquet as pq  # only the functions that read files carry pyarrow

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise FileRejected(f"unreadable Parquet file: {exc}") from exc
    header = list(table.column_names)
    validator = Validator(schema, header)
    columns = [table.column(i).to_pylist() for i in range(len(header))]
    for index, values in enumerate(zip(*columns), start=1):
        validator.add(index, values, raw=dict(zip(header, values)))
    return validator.result()
