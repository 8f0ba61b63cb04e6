"""Reading uploaded files (CSV, JSON Lines, Parquet; gzip-compressed too) into validated rows.

Every row ends up in `Validated.columns` or `Validated.rejects`; a problem with the whole
file (unknown format, missing required column, UTF-16) raises `FileRejected`.

Encoding: text files are UTF-8. A file that is not valid UTF-8 and has no valid multi-byte
UTF-8 sequence at all (a spreadsheet saved as "CSV" on Windows, with é as one byte) is read
as Windows-1252 (which covers Latin-1's printable characters), with a warning; a file mixing
valid UTF-8 with invalid bytes is read as UTF-8 and only the rows with invalid bytes are
rejected.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib

from tailor.datasets.schemas import Reject, RowError, Schema, Validated, Validator, has_surrogates, validate_records

CP1252_WARNING = "file is not UTF-8: read as Windows-1252 (Latin-1); lines with non-ASCII characters"
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_CP1252_UNDEFINED = {0x81, 0x8D, 0x8F, 0x90, 0x9D}  # Latin-1 keeps these as C1 control characters

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


def read_file(data: bytes, filename: str, schema: Schema, *, max_bytes: int,
              columns: dict[str, str] | None = None) -> tuple[str, Validated]:
    """Parse and validate one uploaded file. Returns (format, validated rows). `columns` is a
    checked column mapping (records.check_columns) applied to the header."""
    data = decompress(data, max_bytes)
    if not data.strip():
        raise FileRejected("the file is empty (0 rows)")
    fmt = detect_format(data, filename)
    try:
        if fmt == "parquet":
            return fmt, _read_parquet(data, schema, columns)
        if data.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_like_utf16(data):
            raise FileRejected("the file is UTF-16; save it as UTF-8 and upload it again")
        data, transcoded = windows_1252_to_utf8(data)
        result = _read_json(data, schema, columns) if fmt == "jsonl" else _read_csv(data, schema, columns)
        if transcoded:
            result.warn(CP1252_WARNING, transcoded)
        return fmt, result
    except RowError as exc:  # a header problem affects every row
        raise FileRejected(str(exc)) from exc


def windows_1252_to_utf8(data: bytes) -> tuple[bytes, int]:
    """(data as UTF-8, lines with non-ASCII characters) when `data` is Windows-1252 text by the
    rule of the module doc; (data, 0) otherwise (UTF-8 already, mixed, or binary)."""
    try:
        data.decode("utf-8")
        return data, 0
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        return data, 0  # binary (a spreadsheet, an image), not text in another encoding
    text = data.decode("utf-8", errors="surrogateescape")
    if any(ord(c) > 0x7F and not 0xDC80 <= ord(c) <= 0xDCFF for c in text):
        return data, 0  # valid multi-byte UTF-8 here and there: UTF-8 with some broken bytes
    decoded = "".join(bytes([b]).decode("latin-1") if b in _CP1252_UNDEFINED else bytes([b]).decode("cp1252")
                      for b in range(256))
    table = {i: decoded[i] for i in range(0x80, 0x100)}
    converted = data.decode("latin-1").translate(table)
    lines = sum(1 for line in data.split(b"\n") if _HIGH_BYTE.search(line))
    return converted.encode("utf-8"), lines


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


def _read_csv(data: bytes, schema: Schema, columns: dict[str, str] | None = None) -> Validated:
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
    validator = Validator(schema, header, columns)
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


def _read_json(data: bytes, schema: Schema, columns: dict[str, str] | None = None) -> Validated:
    # Only the BOM is cut from the lines: leading blank lines still count, so that reject
    # row numbers are the lines a person sees in an editor.
    body = data.removeprefix(b"\xef\xbb\xbf")
    stripped = body.lstrip(b" \t\r\n")
    if stripped.startswith(b"["):  # a whole JSON array is accepted too
        try:
            whole = json.loads(stripped.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FileRejected(f"the file starts like a JSON array but is not valid JSON: {exc}") from exc
        return validate_records(schema, whole if isinstance(whole, list) else [whole], columns=columns)
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
    result = validate_records(schema, records, columns=columns)
    # validate_records numbers rows by position; map them back to file lines.
    for reject in result.rejects:
        reject.row = numbers[reject.row - 1]
    result.row_numbers = [numbers[row - 1] for row in result.row_numbers or []]
    for sample in result.warning_samples:
        sample["row"] = numbers[sample["row"] - 1]
    result.rejects.extend(Reject(n, reason, raw[:300]) for n, reason, raw in bad)
    result.rejects.sort(key=lambda r: r.row)
    return result


def _read_parquet(data: bytes, schema: Schema, columns: dict[str, str] | None = None) -> Validated:
    import pyarrow.parquet as pq  # only the functions that read files carry pyarrow

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise FileRejected(f"unreadable Parquet file: {exc}") from exc
    header = list(table.column_names)
    validator = Validator(schema, header, columns)
    values_by_column = [table.column(i).to_pylist() for i in range(len(header))]
    for index, values in enumerate(zip(*values_by_column), start=1):
        validator.add(index, values, raw=dict(zip(header, values)))
    return validator.result()
