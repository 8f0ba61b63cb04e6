"""Dataset record schemas and the per-row validation every ingest path shares.

A record is accepted whole or rejected whole with a reason a person can act on; nothing is
coerced silently. Columns that are not part of a schema are kept as metadata (strings).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 100_000
# Unix seconds up to 2100-01-01; larger numbers are almost always milliseconds by mistake.
MAX_UNIX_SECONDS = 4_102_444_800
LABELS = {"positive": "positive", "negative": "negative", "neutral": "neutral",
          "pos": "positive", "neg": "negative", "1": "positive", "0": "negative"}


class RowError(ValueError):
    """One field of one row is unusable; the message names the column."""


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
            raise RowError(f"not a number: {text[:40]!r}") from None
    if not math.isfinite(number):
        raise RowError("number is not finite")
    return number


def parse_timestamp(value: Any) -> int | None:
    """ISO-8601 (naive means UTC) or Unix seconds → Unix milliseconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
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
                    f"unparseable timestamp {text[:40]!r}: use ISO-8601 or Unix seconds"
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return int(moment.timestamp() * 1000)
    if not math.isfinite(seconds) or seconds < 0:
        raise RowError(f"timestamp {value!r} is out of range")
    if seconds > MAX_UNIX_SECONDS:
        raise RowError(f"timestamp {value!r} is after 2100: send Unix seconds, not milliseconds")
    return int(seconds * 1000)


def parse_label(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
        value = str(int(value))
    text = _text(value)
    if text is None:
        return None
    label = LABELS.get(text.lower())
    if label is None:
        raise RowError(f"label {text[:20]!r} is not positive, negative or neutral")
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
            Field("value", parse_number, "float64"),
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
            Field("rating", parse_number, "float64"),
            Field("label", parse_label, "string"),
            Field("timestamp", parse_timestamp, "timestamp"),
            Field("language", parse_language, "string"),
        ),
        key=("review_id",),
    ),
}

# What a user may call a dataset, in URLs, upload folders and API paths.
ALIASES = {"events": "interactions", "interactions": "interactions", "items": "items",
           "catalog": "items", "users": "users", "reviews": "reviews"}


def dataset_name(name: str) -> str:
    from .errors import Invalid  # local import keeps this module free of HTTP concerns

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


@dataclass
class Validated:
    """Columns of accepted rows (schema fields, then metadata columns) and the rejects."""

    schema: Schema
    columns: dict[str, list]
    rejects: list[Reject]
    row_numbers: list[int] | None = None  # of the accepted rows, numbered like Reject.row

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()), []))


def _short(raw: Any, limit: int = 300) -> str:
    if isinstance(raw, (list, tuple)) and all(isinstance(v, str) for v in raw):
        raw = ",".join(raw)  # a CSV row reads best as the line it came from
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "…"


class Validator:
    """Validates rows given as sequences aligned with a header (the fast path for files)."""

    def __init__(self, schema: Schema, header: list[str]):
        self.schema = schema
        self.header = [h.strip() for h in header]
        lowered = [h.lower() for h in self.header]
        missing = [name for name in schema.required if name not in lowered]
        if missing:
            raise RowError(
                f"missing required column(s) {', '.join(missing)}; the {schema.name} columns are "
                f"{', '.join(schema.field_names)} (required: {', '.join(schema.required)})"
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

    def add(self, row_number: int, values: list | tuple, raw: Any = None) -> bool:
        if len(values) > len(self.header) and any(v not in (None, "") for v in values[len(self.header):]):
            self._reject(row_number, f"row has {len(values)} fields but the header has "
                                     f"{len(self.header)}", raw if raw is not None else values)
            return False
        parsed = []
        width = len(values)
        for f in self.schema.fields:
            pos = self.positions[f.name]
            value = values[pos] if pos is not None and pos < width else None
            try:
                result = f.parse(value)
            except RowError as exc:
                self._reject(row_number, f"{f.name}: {exc}", raw if raw is not None else values)
                return False
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
        for f, value in zip(self.schema.fields, parsed):
            self.columns[f.name].append(value)
        for (_, name), value in zip(self.extra, extras):
            self.columns[name].append(value)
        self.row_numbers.append(row_number)
        return True

    def reject(self, row_number: int, reason: str, raw: Any) -> None:
        self._reject(row_number, reason, raw)

    def _reject(self, row_number: int, reason: str, raw: Any) -> None:
        self.rejects.append(Reject(row_number, reason, _short(raw)))

    def result(self) -> Validated:
        return Validated(self.schema, self.columns, self.rejects, self.row_numbers)


def validate_records(schema: Schema, records: list[Any], first_row: int = 1) -> Validated:
    """Validate dict records (JSON batches, JSON Lines). Keys are matched case-insensitively."""
    header: list[str] = []
    seen: set[str] = set()
    for record in records:
        if isinstance(record, dict):
            for key in record:
                if isinstance(key, str) and key.strip().lower() not in seen:
                    seen.add(key.strip().lower())
                    header.append(key.strip())
    for name in schema.required:  # so a batch missing a column rejects rows, not the request
        if name not in seen:
            header.append(name)
    validator = Validator(schema, header)
    lowered = [h.lower() for h in header]
    for offset, record in enumerate(records):
        row = first_row + offset
        if not isinstance(record, dict):
            validator.reject(row, f"expected a JSON object, got {type(record).__name__}", record)
            continue
        normalised = {str(k).strip().lower(): v for k, v in record.items()}
        validator.add(row, [normalised.get(h) for h in lowered], raw=record)
    return validator.result()
