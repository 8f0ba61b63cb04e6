"""Ingest: JSON batches and uploaded files → validated Parquet datasets, rejects and counts.

Idempotency: a batch is identified by the SHA-256 of its dataset name and content. Before
storing, the ledger is checked; the claim of the batch id, the ingest log entry and the
dataset counters are written in one DynamoDB transaction, so the same file or request sent
twice (or an S3 event delivered twice) is stored and counted once.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import unquote_plus

from . import datasets, privacy
from .errors import Invalid, PayloadTooLarge
from .files import FileRejected, read_file
from .observability import MetricUnit, metrics
from .records import SCHEMAS, Validated, dataset_name, validate_records
from .storage import ConditionFailed, ObjectStore, StateTable

MAX_BATCH_RECORDS = 500
UPLOAD_URL_SECONDS = 3600
UPLOAD_CONTENT_TYPE = "application/octet-stream"
REJECT_SAMPLES = 20
FILE_TYPES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class IngestResult:
    dataset: str
    source: str
    status: str  # stored | duplicate | refused
    rows_stored: int = 0
    rows_rejected: int = 0
    rejects_key: str | None = None
    reject_samples: list | None = None
    message: str | None = None
    batch_id: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class IngestService:
    def __init__(self, store: ObjectStore, state: StateTable, *, max_upload_bytes: int,
                 on_stored: Callable[[str, dict[str, list]], None] | None = None):
        self.store = store
        self.state = state
        self.max_upload_bytes = max_upload_bytes
        self.on_stored = on_stored  # (dataset, columns of the stored rows): e.g. keep profiles fresh

    # ---- entry points -------------------------------------------------------------------
    def ingest_records(self, dataset: str, records: list) -> IngestResult:
        """A JSON batch from the API (up to MAX_BATCH_RECORDS records)."""
        name = dataset_name(dataset)
        if len(records) > MAX_BATCH_RECORDS:
            raise PayloadTooLarge(
                f"batch of {len(records)} records is too large: send at most {MAX_BATCH_RECORDS} "
                "per request, or upload a file through POST /v1/uploads"
            )
        if not records:
            raise Invalid("the batch is empty: send at least one record")
        content = json.dumps(records, sort_keys=True, ensure_ascii=False, default=str).encode()
        return self._ingest(name, content, "api", lambda: validate_records(SCHEMAS[name], records))

    def ingest_object(self, key: str, size: int | None = None) -> IngestResult:
        """A file that arrived under `incoming/<dataset>/` (S3 ObjectCreated)."""
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != "incoming":
            raise Invalid(f"{key}: uploads must be under incoming/<dataset>/")
        name = dataset_name(parts[1])
        size = self.store.size(key) if size is None else size
        if size is None:
            return self._refuse(name, key, "the uploaded object no longer exists")
        if size == 0:
            return self._refuse(name, key, "the file is empty (0 bytes); if you uploaded with a script, "
                                           f"send the body with Content-Type: {UPLOAD_CONTENT_TYPE}")
        if size > self.max_upload_bytes:
            return self._refuse(name, key, f"the file is {size / 2**20:.1f} MB; the limit is "
                                           f"{self.max_upload_bytes / 2**20:.0f} MB per file: split it")
        try:
            data = self.store.get(key)
        except KeyError:
            return self._refuse(name, key, "the uploaded object no longer exists (an upload is deleted once "
                                            "it is ingested)")
        filename = parts[-1]

        def validate() -> Validated:
            return read_file(data, filename, SCHEMAS[name], max_bytes=self.max_upload_bytes * 10)[1]

        try:
            result = self._ingest(name, data, key, validate)
        except FileRejected as exc:
            return self._refuse(name, key, str(exc))
        # The rows now live in datasets/ (and rejects/): the raw upload, with all its versions,
        # is not kept, so a privacy erase has one copy fewer to find. Not fatal: the rows are
        # stored, the lifecycle rule expires incoming/ anyway, and an erase searches it too.
        try:
            self.store.purge(key)
        except Exception as exc:  # e.g. a role without s3:DeleteObjectVersion
            print(f"could not delete the ingested upload {key}: {exc}", flush=True)
        return result

    def handle_s3_event(self, event: dict) -> list[dict]:
        results = []
        for record in event.get("Records", []):
            s3 = record.get("s3", {})
            key = unquote_plus(s3.get("object", {}).get("key", ""))  # keys arrive URL-encoded
            if not key.startswith("incoming/"):
                continue
            results.append(self.ingest_object(key, s3.get("object", {}).get("size")).to_dict())
        return results

    def create_upload(self, dataset: str, filename: str, size_bytes: int | None = None) -> dict:
        name = dataset_name(dataset)
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", (filename or "").strip().split("/")[-1])[:120]
        if not safe or not safe.lower().removesuffix(".gz").endswith(FILE_TYPES):
            raise Invalid(f"filename {filename!r} must end with one of {', '.join(FILE_TYPES)} "
                          "(optionally .gz)")
        if size_bytes is not None and size_bytes > self.max_upload_bytes:
            raise PayloadTooLarge(f"a {size_bytes / 2**20:.1f} MB file is over the "
                                  f"{self.max_upload_bytes / 2**20:.0f} MB limit per file: split it")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        key = f"incoming/{name}/{stamp}-{secrets.token_hex(4)}/{safe}"
        url = self.store.presign_put(key, expires_in=UPLOAD_URL_SECONDS, content_type=UPLOAD_CONTENT_TYPE)
        return {"upload_url": url, "method": "PUT", "key": key, "expires_in": UPLOAD_URL_SECONDS,
                "headers": {"Content-Type": UPLOAD_CONTENT_TYPE},
                "max_bytes": self.max_upload_bytes}

    def summary(self) -> list[dict]:
        stats = {i["sk"]: i for i in self.state.query("DATASET")}
        out = []
        for name in SCHEMAS:
            item = stats.get(name, {})
            recent = self.state.query(f"INGEST#{name}", newest_first=True, limit=5)
            out.append({
                "name": name,
                "rows_stored": item.get("rows_stored", 0),
                "rows_rejected": item.get("rows_rejected", 0),
                "files": item.get("files", 0),
                "last_ingest": item.get("last_ingest"),
                "recent_ingests": [{k: v for k, v in r.items() if k not in ("pk", "sk")} for r in recent],
            })
        return out

    # ---- the one ingest path -------------------------------------------------------------
    def _ingest(self, name: str, content: bytes, source: str, validate) -> IngestResult:
        batch_id = hashlib.sha256(name.encode() + b"\0" + content).hexdigest()[:32]
        if self.state.get(f"BATCH#{batch_id}", "BATCH"):
            return self._log_duplicate(name, source, batch_id)
        validated = validate()
        if "user_id" in SCHEMAS[name].field_names:
            # Erased users stay erased: their old rows are refused (see tailor.privacy).
            privacy.drop_erased(validated, privacy.tombstones(self.state))
        now = _now_ms()
        datasets.write_batch(self.store, validated, batch_id, now)
        if self.on_stored is not None and validated.rows:
            self.on_stored(name, validated.columns)
        result = IngestResult(name, source, "stored", validated.rows, len(validated.rejects), batch_id=batch_id)
        if validated.rejects:
            result.rejects_key = f"rejects/{name}/{batch_id}.jsonl"
            lines = [json.dumps({**r.to_dict(), "source": source}, ensure_ascii=False) for r in validated.rejects]
            self.store.put(result.rejects_key, ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
            result.reject_samples = [r.to_dict() for r in validated.rejects[:REJECT_SAMPLES]]
        try:
            self.state.transact(
                new=[{"pk": f"BATCH#{batch_id}", "sk": "BATCH", "dataset": name, "source": source, "at": _iso(now)}],
                puts=[self._log_item(result, now)],
                adds=[("DATASET", name, {"last_ingest": _iso(now)},
                       {"rows_stored": result.rows_stored, "rows_rejected": result.rows_rejected, "files": 1})],
            )
        except ConditionFailed:  # a concurrent delivery of the same batch won the race
            return self._log_duplicate(name, source, batch_id)
        metrics.add_metadata("dataset", name)
        metrics.add_metric("RowsStored", MetricUnit.Count, result.rows_stored)
        metrics.add_metric("RowsRejected", MetricUnit.Count, result.rows_rejected)
        return result

    def _log_duplicate(self, name: str, source: str, batch_id: str) -> IngestResult:
        result = IngestResult(name, source, "duplicate", batch_id=batch_id,
                              message="this content was already ingested; nothing was stored again")
        self.state.put(self._log_item(result, _now_ms()))
        return result

    def _refuse(self, name: str, source: str, message: str) -> IngestResult:
        result = IngestResult(name, source, "refused", message=message)
        now = _now_ms()
        self.state.transact(puts=[self._log_item(result, now)],
                            adds=[("DATASET", name, {"last_ingest": _iso(now), "last_error": message}, {})])
        return result

    @staticmethod
    def _log_item(result: IngestResult, now: int) -> dict:
        return {"pk": f"INGEST#{result.dataset}", "sk": f"{_iso(now)}#{secrets.token_hex(3)}",
                "at": _iso(now), **result.to_dict()}
