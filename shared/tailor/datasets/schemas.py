"""Dataset record schemas and the per-row validation every ingest path shares.

A record is accepted or rejected whole with a reason a person can act on; nothing is coerced
silently. A required field that does not parse rejects the row. An optional field that does
not parse (a rating, a label, a review's date) leaves that field empty and the row is kept,
with a warning counted per reason (`Validated.warnings`); so does a value read leniently (a
number taken from "5.0 out of 5 stars", a column of Unix milliseconds). Columns that are not
part of a schema are kept as metadata (strings). A column mapping (`columns`: source column →
field) renames a file's or batch's columns before validation.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 100_000
# Unix seconds up to 2100-01-01; larger numbers are almost always milliseconds by mistake.
MAX_UNIX_SECONDS = 4_102_444_800
# A column whose every number lies in [MIN_UNIX_MS, MAX_UNIX_MS] (1973-03-03 .. 2100-01-01 in
# milliseconds) and none in the seconds range is read as Unix milliseconds.
MIN_UNIX_MS = 100_000_000_000
MAX_UNIX_MS = MAX_UNIX_SECONDS * 1000
MAX_COLUMN_MAPPINGS = 100
LABELS = {"positive": "positive", "negative": "negative", "neutral": "neutral",
          "pos": "positive", "neg": "negative", "1": "positive", "0": "negative"}


class RowError(ValueError):
    """One field of one row is unusable; the message names the column. `kind` is the same
    problem without the row's value, so warnings can be counted per reason."""

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        self.kind = kind or message


class Milliseconds(RowError):
    """A Unix timestamp in the millisecond range: read as such when the whole column is."""

    def __init__(self, value: Any, ms: int):
        super().__init__(f"timestamp {value!r} is after 2100 as Unix seconds; as milliseconds it would be "
                         "read only if every number of the column were milliseconds, but other rows "
                         "are in seconds: send one unit per column",
                         kind="Unix milliseconds in a column that also has Unix seconds")
        self.ms = ms


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bytes):
        raise RowError("bytes where text was expected")
    text = str(value).strip()
    if has_surrogates(text):
        raise RowError("invalid UTF-8 (or an unpaired \\uD800-style escape)")
    return text or None


def has_surrogates(text: str) -> bool:
    """Undecodable bytes arrive as lone surrogates (surrogateescape); they cannot be stored."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_id(value: Any) -> str | None:
    if isinstance(value, bool):
        raise RowError("expected an id, got a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 42.0 from a spreadsheet export is id "42", not "42.0"
    text = _text(value)
    if text is not None and len(text) > MAX_ID_LENGTH:
        raise RowError(f"id longer than {MAX_ID_LENGTH} characters")
    return text


def parse_text(value: Any) -> str | None:
    text = _text(value)
    if text is not None and len(text) > MAX_TEXT_LENGTH:
        raise RowError(f"text longer than {MAX_TEXT_LENGTH} characters")
    return text


def parse_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise RowError("expected a number, got a boolean")
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = _text(value)
        if text is None:
            return None
        try:
            number = float(text)
        except ValueError:
            raise RowError(f"not a number: {text[:40]!r}", kind="not a number") from None
    if not math.isfinite(number):
        raise RowError("number is not finite")
    return number


_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
# "5", "4.5 stars", "5.0 out of 5 stars", "4/5", "4 of 5", "Rated 4.0 out of 5": one number, an
# optional scale, an optional unit; anything else ("about 4", "4-5", "3 or 4") stays unclear.
_RATING_TEXT = re.compile(
    rf"^(?:rated|rating|score)?:?\s*({_NUMBER})\s*(?:(?:/|out\s+of|of)\s*{_NUMBER})?\s*"
    r"(?:stars?|points?|pts)?\.?$", re.IGNORECASE)
_STARS = re.compile(r"^[★☆\s]+$")
RATING_TEXT_NOTE = "number read from text (such as '5.0 out of 5 stars', '4/5' or '★★★★☆')"


def number_from_text(value: Any) -> tuple[float, str]:
    """The clear number of a rating written as text → (number, warning reason); else RowError.
    The number is kept as written (the scale is not converted: '8/10' is 8)."""
    text = _text(value) if isinstance(value, str) else None
    if text is not None:
        match = _RATING_TEXT.match(text)
        if match:
            number = float(match.group(1))
            if math.isfinite(number):
                return number, RATING_TEXT_NOTE
        if _STARS.match(text) and "★" in text:
            return float(text.count("★")), RATING_TEXT_NOTE
    raise RowError("not a number", kind="not a number")


def parse_timestamp(value: Any) -> int | None:
    """ISO-8601 (naive means UTC) or Unix seconds → Unix milliseconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, bool):
        raise RowError("timestamp is a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = _text(value)
        if text is None:
            return None
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("z", "Z"))
            except ValueError:
                raise RowError(
                    f"unparseable timestamp {text[:40]!r}: use ISO-8601 or Unix seconds",
                    kind="unparseable timestamp (use ISO-8601 or Unix seconds)"
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return int(moment.timestamp() * 1000)
    if not math.isfinite(seconds) or seconds < 0:
        raise RowError(f"timestamp {value!r} is out of range", kind="timestamp out of range")
    if seconds > MAX_UNIX_SECONDS:
        if MIN_UNIX_MS <= seconds <= MAX_UNIX_MS:
            raise Milliseconds(value, int(seconds))
        raise RowError(f"timestamp {value!r} is after 2100: send Unix seconds or milliseconds",
                       kind="timestamp out of range")
    return int(seconds * 1000)


def is_number(value: Any) -> bool:
    """A plain number or a numeric string (a Unix timestamp, not an ISO date)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def parse_label(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
        value = str(int(value))
    text = _text(value)
    if text is None:
        return None
    label = LABELS.get(text.lower())
    if label is None:
        raise RowError(f"label {text[:20]!r} is not positive, negative or neutral",
                       kind="not positive, negative or neutral")
    return label


def parse_categories(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        parts = [_text(v) for v in value]
    else:
        text = _text(value)
        if text is None:
            return None
        parts = [p.strip() for p in text.split("|")]
    joined = "|".join(p for p in parts if p)
    return joined or None


def parse_language(value: Any) -> str | None:
    text = _text(value)
    return text.lower()[:16] if text else None


@dataclass(frozen=True)
class Field:
    name: str
    parse: Callable[[Any], Any]
    arrow_type: str  # "string" | "float64" | "timestamp"
    required: bool = False
    default: Any = None
    # Optional fields only: a value that does not parse leaves the field empty (with a warning)
    # instead of rejecting the row.
    lenient: bool = False
    # Tried when `parse` fails: (value, warning reason), or RowError.
    rescue: Callable[[Any], tuple[Any, str]] | None = None


@dataclass(frozen=True)
class Schema:
    name: str
    fields: tuple[Field, ...]
    # The columns that identify a record: a newer row with the same key replaces an older one.
    key: tuple[str, ...] = field(default_factory=tuple)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


SCHEMAS: dict[str, Schema] = {
    "interactions": Schema(
        "interactions",
        (
            Field("user_id", parse_id, "string", required=True),
            Field("item_id", parse_id, "string", required=True),
            Field("timestamp", parse_timestamp, "timestamp", required=True),
            Field("event_type", parse_id, "string", default="interaction"),
            Field("value", parse_number, "float64", lenient=True, rescue=number_from_text),
            # The answer the event came from (`tailor.attribution`); a malformed one is dropped
            # with a warning, never the event.
            Field("recommendation_id", parse_id, "string", lenient=True),
        ),
        key=("user_id", "item_id", "timestamp", "event_type"),
    ),
    "items": Schema(
        "items",
        (
            Field("item_id", parse_id, "string", required=True),
            Field("title", parse_text, "string", required=True),
            Field("description", parse_text, "string"),
            Field("categories", parse_categories, "string"),
            # The product family (variants by size or colour share one): evaluation keeps a
            # family on one side of a split.
            Field("group_id", parse_id, "string"),
        ),
        key=("item_id",),
    ),
    "users": Schema("users", (Field("user_id", parse_id, "string", required=True),), key=("user_id",)),
    "reviews": Schema(
        "reviews",
        (
            Field("text", parse_text, "string", required=True),
            Field("review_id", parse_id, "string"),
            Field("user_id", parse_id, "string"),
            Field("item_id", parse_id, "string"),
            Field("rating", parse_number, "float64", lenient=True, rescue=number_from_text),
            Field("label", parse_label, "string", lenient=True),
            Field("timestamp", parse_timestamp, "timestamp", lenient=True),
            Field("language", parse_language, "string"),
        ),
        key=("review_id",),
    ),
}

# What a user may call a dataset, in URLs, upload folders and API paths.
ALIASES = {"events": "interactions", "interactions": "interactions", "items": "items",
           "catalog": "items", "users": "users", "reviews": "reviews"}


def dataset_name(name: str) -> str:
    from tailor.core.errors import Invalid  # local import keeps this module free of HTTP concerns

    canonical = ALIASES.get((name or "").strip().lower())
    if canonical is None:
        raise Invalid(
            f"unknown dataset {name!r}: use one of interactions (or events), items, users, reviews"
        )
    return canonical


@dataclass
class Reject:
    row: int  # 1-based line (CSV/JSON Lines) or row (Parquet, JSON batch index + 1)
    reason: str
    record: str  # the raw row, shortened, so a person can find and fix it

    def to_dict(self) -> dict:
        return {"row": self.row, "reason": self.reason, "record": self.record}


WARNING_SAMPLES = 20


@dataclass
class Validated:
    """Columns of accepted rows (schema fields, then metadata columns), the rejects, and the
    warnings about accepted rows: {reason: rows} plus the first rows' numbers per reason."""

    schema: Schema
    columns: dict[str, list]
    rejects: list[Reject]
    row_numbers: list[int] | None = None  # of the accepted rows, numbered like Reject.row
    warnings: dict[str, int] = field(default_factory=dict)
    warning_samples: list[dict] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def warn(self, reason: str, count: int = 1, row: int | None = None) -> None:
        self.warnings[reason] = self.warnings.get(reason, 0) + count
        if row is not None and len(self.warning_samples) < WARNING_SAMPLES:
            self.warning_samples.append({"row": row, "warning": reason})


def check_columns(schema: Schema, columns: Any) -> dict[str, str]:
    """A column mapping {source column: field of `schema`}, checked; {} for None. Raises Invalid
    (422) with what is wrong: not an object, an empty name, an unknown field, two sources for one
    field, one source given twice (names are case-insensitive)."""
    from tailor.core.errors import Invalid

    if columns is None:
        return {}
    if not isinstance(columns, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in columns.items()):
        raise Invalid('"columns" must be an object of source column → field names, e.g. '
                      '{"customer_id": "user_id"}')
    if len(columns) > MAX_COLUMN_MAPPINGS:
        raise Invalid(f'"columns" maps {len(columns)} columns; at most {MAX_COLUMN_MAPPINGS}')
    mapping: dict[str, str] = {}
    by_target: dict[str, list[str]] = {}
    for source, target in columns.items():
        source_key, target_key = source.strip().lower(), target.strip().lower()
        if not source_key or not target_key:
            raise Invalid('"columns": column and field names must not be empty')
        if target_key not in schema.field_names:
            raise Invalid(f'"columns": unknown field {target!r} (for column {source!r}); the {schema.name} '
                          f"fields are {', '.join(schema.field_names)}")
        if source_key in mapping:
            raise Invalid(f'"columns": column {source!r} is given twice (names are case-insensitive)')
        mapping[source_key] = target_key
        by_target.setdefault(target_key, []).append(source)
    twice = {t: s for t, s in by_target.items() if len(s) > 1}
    if twice:
        raise Invalid('"columns": ' + "; ".join(f"{len(s)} columns map to {t}: {', '.join(map(repr, s))}"
                                               for t, s in twice.items()))
    return mapping


def apply_columns(header: list[str], mapping: dict[str, str]) -> tuple[list[str], list[str]]:
    """The header renamed by a checked mapping → (new header, warnings). Raises RowError when a
    renamed column meets a column of the file that already has that name."""
    if not mapping:
        return header, []
    lowered = [h.strip().lower() for h in header]
    for target in set(mapping.values()):
        sources = [header[i] for i, h in enumerate(lowered) if mapping.get(h, h) == target]
        if len(sources) > 1:
            raise RowError(f"the column mapping gives two columns the name {target}: "
                           f"{', '.join(map(repr, sources))}; map or rename one of them")
    missing = [source for source in mapping if source not in lowered]
    warnings = [f"columns: {source!r} (mapped to {mapping[source]}) is not in the data" for source in missing]
    out = [mapping[h] if h in mapping else original for h, original in zip(lowered, header)]
    return out, warnings


def _short(raw: Any, limit: int = 300) -> str:
    if isinstance(raw, (list, tuple)) and all(isinstance(v, str) for v in raw):
        raw = ",".join(raw)  # a CSV row reads best as the line it came from
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "…"


class Validator:
    """Validates rows given as sequences aligned with a header (the fast path for files)."""

    def __init__(self, schema: Schema, header: list[str], columns: dict[str, str] | None = None):
        self.schema = schema
        header, mapping_warnings = apply_columns([h.strip() for h in header], columns or {})
        self.header = header
        lowered = [h.lower() for h in self.header]
        missing = [name for name in schema.required if name not in lowered]
        if missing:
            hint = (f" (after the column mapping {json.dumps(columns, ensure_ascii=False)})" if columns else
                    '; if the file names them differently, map them: "columns": {"your_column": "field"}')
            raise RowError(
                f"missing required column(s) {', '.join(missing)}; the {schema.name} columns are "
                f"{', '.join(schema.field_names)} (required: {', '.join(schema.required)}){hint}"
            )
        self.positions = {f.name: lowered.index(f.name) if f.name in lowered else None
                          for f in schema.fields}
        known = set(schema.field_names)
        self.extra = [(i, h) for i, h in enumerate(self.header)
                      if h and h.lower() not in known and not h.startswith("_")]
        self.columns: dict[str, list] = {f.name: [] for f in schema.fields}
        for _, name in self.extra:
            self.columns[name] = []
        self.rejects: list[Reject] = []
        self.row_numbers: list[int] = []
        self.warnings: dict[str, int] = {}
        self.warning_samples: list[dict] = []
        for reason in mapping_warnings:
            self._warn(reason, None)
        # Timestamp fields: rows read as milliseconds (index, row, original value, warnings), and
        # whether any number of the column was in the seconds range (then those rows are rejected).
        self._ms_rows: dict[str, list[tuple[int, int, Any, list[str]]]] = {}
        self._seconds_seen: dict[str, bool] = {}

    def _warn(self, reason: str, row: int | None) -> None:
        self.warnings[reason] = self.warnings.get(reason, 0) + 1
        if row is not None and len(self.warning_samples) < WARNING_SAMPLES:
            self.warning_samples.append({"row": row, "warning": reason})

    def add(self, row_number: int, values: list | tuple, raw: Any = None) -> bool:
        if len(values) > len(self.header) and any(v not in (None, "") for v in values[len(self.header):]):
            self._reject(row_number, f"row has {len(values)} fields but the header has "
                                     f"{len(self.header)}", raw if raw is not None else values)
            return False
        parsed = []
        width = len(values)
        notes: list[str] = []
        ms_fields: list[tuple[str, Any]] = []
        for f in self.schema.fields:
            pos = self.positions[f.name]
            value = values[pos] if pos is not None and pos < width else None
            try:
                result = f.parse(value)
            except Milliseconds as exc:
                if self._seconds_seen.get(f.name):
                    self._reject(row_number, f"{f.name}: {exc}", raw if raw is not None else values)
                    return False
                result = exc.ms
                ms_fields.append((f.name, value))
            except RowError as exc:
                result = None
                if f.rescue is not None:
                    try:
                        result, note = f.rescue(value)
                        notes.append(f"{f.name}: {note}")
                    except RowError:
                        result = None
                if result is None:
                    if f.required or not f.lenient:
                        self._reject(row_number, f"{f.name}: {exc}", raw if raw is not None else values)
                        return False
                    notes.append(f"{f.name}: {exc.kind}; left empty")
            else:
                if f.arrow_type == "timestamp" and result is not None and is_number(value):
                    self._seconds_seen[f.name] = True
            if result is None:
                if f.required:
                    self._reject(row_number, f"missing {f.name}", raw if raw is not None else values)
                    return False
                result = f.default
            parsed.append(result)
        extras = []
        for pos, name in self.extra:
            value = values[pos] if pos < width else None
            try:
                extras.append(parse_text(value))
            except RowError as exc:
                self._reject(row_number, f"{name}: {exc}", raw if raw is not None else values)
                return False
        index = len(self.row_numbers)
        for f, value in zip(self.schema.fields, parsed):
            self.columns[f.name].append(value)
        for (_, name), value in zip(self.extra, extras):
            self.columns[name].append(value)
        self.row_numbers.append(row_number)
        if ms_fields:  # counted (or rejected) at the end, when the whole column is known
            for name, original in ms_fields:
                self._ms_rows.setdefault(name, []).append((index, row_number, original, notes))
        else:
            for note in notes:
                self._warn(note, row_number)
        return True

    def reject(self, row_number: int, reason: str, raw: Any) -> None:
        self._reject(row_number, reason, raw)

    def _reject(self, row_number: int, reason: str, raw: Any) -> None:
        self.rejects.append(Reject(row_number, reason, _short(raw)))

    def _settle_milliseconds(self) -> None:
        """A timestamp column whose every number is in the millisecond range is read as Unix
        milliseconds (one warning per row); if some numbers of it were seconds, the millisecond
        rows are ambiguous and rejected."""
        drop: dict[int, str] = {}
        warned: set[int] = set()
        for name, rows in self._ms_rows.items():
            if self._seconds_seen.get(name):
                for index, _, original, _notes in rows:
                    drop.setdefault(index, f"{name}: {Milliseconds(original, 0)}")
            else:
                for index, row_number, _, notes in rows:
                    self._warn(f"{name}: read as Unix milliseconds (every number of the column is in the "
                               "millisecond range)", row_number)
                    if index not in warned:
                        warned.add(index)
                        for note in notes:
                            self._warn(note, row_number)
        if not drop:
            return
        for index in sorted(drop):
            record = {name: values[index] for name, values in self.columns.items()}
            self._reject(self.row_numbers[index], drop[index], record)
        keep = [i for i in range(len(self.row_numbers)) if i not in drop]
        self.columns = {name: [values[i] for i in keep] for name, values in self.columns.items()}
        self.row_numbers = [self.row_numbers[i] for i in keep]
        self.rejects.sort(key=lambda r: r.row)

    def result(self) -> Validated:
        self._settle_milliseconds()
        return Validated(self.schema, self.columns, self.rejects, self.row_numbers,
                         dict(self.warnings), list(self.warning_samples))


def validate_records(schema: Schema, records: list[Any], first_row: int = 1,
                     columns: dict[str, str] | None = None) -> Validated:
    """Validate dict records (JSON batches, JSON Lines). Keys are matched case-insensitively;
    `columns` (checked by `check_columns`) renames keys first."""
    header: list[str] = []
    seen: set[str] = set()
    for record in records:
        if isinstance(record, dict):
            for key in record:
                if isinstance(key, str) and key.strip().lower() not in seen:
                    seen.add(key.strip().lower())
                    header.append(key.strip())
    mapped = {(columns or {}).get(key, key) for key in seen}
    for name in schema.required:  # so a batch missing a column rejects rows, not the request
        if name not in mapped:
            header.append(name)
    validator = Validator(schema, header, columns)
    lowered = [h.lower() for h in header]
    for offset, record in enumerate(records):
        row = first_row + offset
        if not isinstance(record, dict):
            validator.reject(row, f"expected a JSON object, got {type(record).__name__}", record)
            continue
        normalised = {str(k).strip().lower(): v for k, v in record.items()}
        validator.add(row, [normalised.get(h) for h in lowered], raw=record)
    return validator.result()
