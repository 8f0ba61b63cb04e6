"""What was served: every recommendation answer gets a `recommendation_id`, and serving records
the answer as one JSON line in its own log (`StdoutLog`).

Why a log line and not a call to a stream or table: a line on stdout costs microseconds, where
any network call (Firehose, DynamoDB) adds milliseconds to each request; Lambda's log agent ships
the line to CloudWatch Logs durably after the response, and the template's subscription filter
(`ServedRecommendationsFilter`, pattern `{ $.record = "recommendation" }`) delivers it within
seconds to IngestFunction, which records it for attribution (`attribution.ledger`). The local
stack emulates the same subscription from the template (infra/local/logs.py).

The record names the customer by `sha256(user_id)` (the erase tombstones' hash) and a session by
`sha256(session_id)`: the log and the ledger hold no raw customer id.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from tailor.core.clock import from_iso, iso

RECORD_KIND = "recommendation"  # the value the subscription filter matches (`$.record`)
SURFACES = ("user", "session", "similar", "rankings", "trending")


def new_recommendation_id(now_ms: int | None = None) -> str:
    """48 bits of time (ms, hex) then 64 random bits: unique, and sortable by when it was served."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{ms:012x}{secrets.token_hex(8)}"


def unit_hash(kind: str, identifier: str) -> str:
    """The pseudonym of a customer (`kind` "user": sha256 of the id, as the erase tombstones) or a
    session (`kind` "session")."""
    digest = hashlib.sha256(str(identifier).encode("utf-8")).hexdigest()
    return digest if kind == "user" else f"s-{digest}"


@dataclass(frozen=True)
class Served:
    """One served answer, as recorded."""

    recommendation_id: str
    served_at: str  # ISO-8601 UTC, to the millisecond
    surface: str  # one of SURFACES
    strategy: str
    model_version: str | None
    items: tuple[str, ...]
    unit: str | None = None  # unit_hash of the customer or session, None when neither is known
    experiment_id: str | None = None
    arm: str | None = None
    record: str = field(default=RECORD_KIND)

    @property
    def day(self) -> str:
        return self.served_at[:10]

    @property
    def served_ms(self) -> int:
        return int(from_iso(self.served_at).timestamp() * 1000)

    def line(self) -> str:
        values = {k: v for k, v in asdict(self).items() if v is not None}
        values["items"] = list(self.items)
        return json.dumps(values, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, values: dict) -> Served:
        """A record from its line (or its state-table item); KeyError/ValueError/TypeError when it is not one."""
        if values.get("record", RECORD_KIND) != RECORD_KIND:
            raise ValueError("not a served recommendation")
        items = values["items"]
        if not isinstance(items, list):
            raise TypeError("items must be a list")
        return cls(recommendation_id=str(values["recommendation_id"]), served_at=str(values["served_at"]),
                   surface=str(values.get("surface") or "user"), strategy=str(values["strategy"]),
                   model_version=values.get("model_version"), items=tuple(map(str, items)),
                   unit=values.get("unit"), experiment_id=values.get("experiment_id"), arm=values.get("arm"))


def served_now(surface: str, answer: dict, unit: str | None, experiment: dict | None) -> Served:
    now = datetime.now(UTC)
    return Served(recommendation_id=new_recommendation_id(int(now.timestamp() * 1000)),
                  served_at=iso(now, "milliseconds"), surface=surface,
                  strategy=str(answer.get("strategy")), model_version=answer.get("model_version"),
                  items=tuple(entry["item_id"] for entry in answer.get("items", ())), unit=unit,
                  experiment_id=(experiment or {}).get("experiment_id"), arm=(experiment or {}).get("arm"))


class ServedLogPort(Protocol):
    def write(self, served: Served) -> None: ...


class StdoutLog:
    """The served line on stdout, which Lambda sends to the function's CloudWatch log group."""

    def __init__(self, stream: Any = None):
        self.stream = stream

    def write(self, served: Served) -> None:
        out = self.stream or sys.stdout
        out.write(served.line() + "\n")
        out.flush()  # one line per write: the log agent never sees half a record


def from_log_event(event: dict) -> tuple[list[Served], int]:
    """The served records of a CloudWatch Logs subscription delivery
    (`{"awslogs": {"data": base64(gzip(json))}}`) and how many of its log events were not one
    (they are skipped: the filter should only send served lines)."""
    payload = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    if payload.get("messageType") != "DATA_MESSAGE":  # CONTROL_MESSAGE: CloudWatch checking the destination
        return [], 0
    return parse_lines(entry.get("message", "") for entry in payload.get("logEvents", []))


def parse_lines(lines: Iterable[str]) -> tuple[list[Served], int]:
    records, skipped = [], 0
    for line in lines:
        try:
            values = json.loads(line[line.index("{"):]) if "{" in line else None
            records.append(Served.from_dict(values))  # type: ignore[arg-type]
        except (KeyError, ValueError, TypeError, AttributeError):
            skipped += 1
    return records, skipped
