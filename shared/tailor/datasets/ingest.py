"""Ingest: JSON batches and uploaded files → validated Parquet datasets, rejects and counts.

Idempotency: a batch is identified by the SHA-256 of its dataset name and content. Before
storing, the ledger is checked; the claim of the batch id, the ingest log entry and the
dataset counters are written in one DynamoDB transaction, so the same file or request sent
twice (or an S3 event delivered twice) is stored and counted once. Interactions sent through
the API go to the event stream instead of their own Parquet object (`datasets.buffer`), and
their claim is a conditional put rather than a transaction (see `_ingest`). A column mapping is part
of what identifies a batch: the same file sent again with another mapping is another batch.

Uploads: `POST /v1/uploads` records `UPLOAD#<upload_id>` (status `waiting`, the column mapping);
the S3 event of the file finds it by the key's folder (`incoming/<dataset>/<upload_id>/<file>`),
applies the mapping and records the outcome (`ingested`, `duplicate` or `refused`) with the
counts; `GET /v1/uploads/{upload_id}` reads it, with the reasons from the ingest log entry
(which a privacy erase cleans: the upload record itself holds no row content).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from tailor.core.errors import Invalid, NotFound, PayloadTooLarge
from tailor.core.observability import MetricUnit, metrics
from tailor.datasets import buffer
from tailor.datasets import store as datasets
from tailor.datasets.files import FileRejected, read_file
from tailor.datasets.schemas import SCHEMAS, RowError, Validated, check_columns, dataset_name, validate_records
from tailor.privacy import erase as privacy
from tailor.storage import keys
from tailor.storage.dynamo import ConditionFailed, StateTable
from tailor.storage.ports import RecordStreamPort
from tailor.storage.s3 import ObjectStore

MAX_BATCH_RECORDS = 500
UPLOAD_URL_SECONDS = 3600
UPLOAD_CONTENT_TYPE = "application/octet-stream"
REJECT_SAMPLES = 20
FILE_TYPES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet")
UPLOAD_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
UPLOAD_STATUS = {"stored": "ingested", "duplicate": "duplicate", "refused": "refused"}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    warnings: dict | None = None  # {reason: rows} about stored rows (records.Validated.warnings)
    warning_samples: list | None = None  # the first rows' numbers per warning, no content
    upload_id: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None and not k.startswith("_")}


class IngestService:
    def __init__(self, store: ObjectStore, state: StateTable, *, max_upload_bytes: int,
                 on_stored: Callable[[str, dict[str, list]], None] | None = None,
                 stream: RecordStreamPort | None = None):
        self.store = store
        self.state = state
        self.max_upload_bytes = max_upload_bytes
        self.on_stored = on_stored  # (dataset, columns of the stored rows): e.g. keep profiles fresh
        # Interactions sent through the API go to the event stream (datasets.buffer) when there is one.
        self.stream = stream

    # ---- entry points -------------------------------------------------------------------
    def ingest_records(self, dataset: str, records: list, columns: dict | None = None) -> IngestResult:
        """A JSON batch from the API (up to MAX_BATCH_RECORDS records); `columns` maps the
        records' keys to fields (records.check_columns)."""
        name = dataset_name(dataset)
        mapping = check_columns(SCHEMAS[name], columns)
        if len(records) > MAX_BATCH_RECORDS:
            raise PayloadTooLarge(
                f"batch of {len(records)} records is too large: send at most {MAX_BATCH_RECORDS} "
                "per request, or upload a file through POST /v1/uploads"
            )
        if not records:
            raise Invalid("the batch is empty: send at least one record")
        content = json.dumps(records, sort_keys=True, ensure_ascii=False, default=str).encode()

        def validate() -> Validated:
            try:
                return validate_records(SCHEMAS[name], records, columns=mapping)
            except RowError as exc:  # the mapping clashes with the batch's keys
                raise Invalid(str(exc)) from None

        return self._ingest(name, content + _mapping_salt(mapping), "api", validate,
                            buffered=self.stream is not None and name == buffer.DATASET)

    def ingest_object(self, key: str, size: int | None = None) -> IngestResult:
        """A file that arrived under `incoming/<dataset>/` (S3 ObjectCreated)."""
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != "incoming":
            raise Invalid(f"{key}: uploads must be under incoming/<dataset>/")
        name = dataset_name(parts[1])
        upload_id = parts[2] if len(parts) >= 4 and UPLOAD_ID.match(parts[2]) else None
        size = self.store.size(key) if size is None else size
        problem = None
        if size is None:
            problem = "the uploaded object no longer exists"
        elif size == 0:
            problem = ("the file is empty (0 bytes); if you uploaded with a script, "
                       f"send the body with Content-Type: {UPLOAD_CONTENT_TYPE}")
        elif size > self.max_upload_bytes:
            problem = (f"the file is {size / 2**20:.1f} MB; the limit is "
                       f"{self.max_upload_bytes / 2**20:.0f} MB per file: split it")
        else:
            try:
                data = self.store.get(key)
            except KeyError:
                problem = "the uploaded object no longer exists (an upload is deleted once it is ingested)"
        if problem is not None:
            return self._finish_upload(upload_id, self._refuse(name, key, problem))
        filename = parts[-1]
        upload = self.state.get(keys.upload_pk(upload_id), keys.UPLOAD_SK) if upload_id else None
        try:
            mapping = check_columns(SCHEMAS[name], (upload or {}).get("columns"))
        except Invalid as exc:  # checked when the upload was created; only a hand-edited record fails
            return self._finish_upload(upload_id, self._refuse(name, key, exc.message))

        def validate() -> Validated:
            return read_file(data, filename, SCHEMAS[name], max_bytes=self.max_upload_bytes * 10,
                             columns=mapping)[1]

        try:
            result = self._ingest(name, data + _mapping_salt(mapping), key, validate)
        except FileRejected as exc:
            return self._finish_upload(upload_id, self._refuse(name, key, str(exc)))
        self._finish_upload(upload_id, result)
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
            if not key.startswith(keys.INCOMING_PREFIX):
                continue
            results.append(self.ingest_object(key, s3.get("object", {}).get("size")).to_dict())
        return results

    def create_upload(self, dataset: str, filename: str, size_bytes: int | None = None,
                      columns: dict | None = None) -> dict:
        name = dataset_name(dataset)
        mapping = check_columns(SCHEMAS[name], columns)
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", (filename or "").strip().split("/")[-1])[:120]
        if not safe or not safe.lower().removesuffix(".gz").endswith(FILE_TYPES):
            raise Invalid(f"filename {filename!r} must end with one of {', '.join(FILE_TYPES)} "
                          "(optionally .gz)")
        if size_bytes is not None and size_bytes > self.max_upload_bytes:
            raise PayloadTooLarge(f"a {size_bytes / 2**20:.1f} MB file is over the "
                                  f"{self.max_upload_bytes / 2**20:.0f} MB limit per file: split it")
        now = _now_ms()
        stamp = datetime.fromtimestamp(now / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
        upload_id = f"{stamp}-{secrets.token_hex(4)}"
        key = keys.incoming_key(name, upload_id, safe)
        url = self.store.presign_put(key, expires_in=UPLOAD_URL_SECONDS, content_type=UPLOAD_CONTENT_TYPE)
        record: dict[str, Any] = {"pk": keys.upload_pk(upload_id), "sk": keys.UPLOAD_SK, "upload_id": upload_id, "dataset": name,
                  "filename": safe, "key": key, "status": "waiting", "created_at": _iso(now),
                  "expires_at": _iso(now + UPLOAD_URL_SECONDS * 1000)}
        if mapping:
            record["columns"] = mapping
        self.state.put(record, only_if_new=True)
        answer = {"upload_id": upload_id, "upload_url": url, "method": "PUT", "key": key,
                  "expires_in": UPLOAD_URL_SECONDS, "headers": {"Content-Type": UPLOAD_CONTENT_TYPE},
                  "max_bytes": self.max_upload_bytes, "status_url": f"/v1/uploads/{upload_id}"}
        if mapping:
            answer["columns"] = mapping
        return answer

    def upload_status(self, upload_id: str) -> dict:
        """One upload: `waiting` (no file yet), `ingested`, `duplicate` or `refused`, with the
        counts, warnings and reasons of its ingest."""
        record = self.state.get(keys.upload_pk(upload_id), keys.UPLOAD_SK) if UPLOAD_ID.match(upload_id or "") else None
        if record is None:
            raise NotFound(f"no upload {upload_id!r}: use the upload_id that POST /v1/uploads returned")
        out = {k: v for k, v in record.items() if k not in ("pk", "sk", "log_pk", "log_sk")}
        if record.get("log_pk") and record.get("log_sk"):
            entry = self.state.get(record["log_pk"], record["log_sk"]) or {}
            for field in ("message", "reject_samples", "rejects_key", "warnings", "warning_samples"):
                if entry.get(field) is not None:
                    out[field] = entry[field]
        if out.get("status") == "waiting":
            expires = datetime.fromisoformat(str(record["expires_at"]).replace("Z", "+00:00"))
            if datetime.now(UTC) > expires:
                out["note"] = (f"no file arrived before the upload URL expired at {record['expires_at']}: "
                               "ask POST /v1/uploads for a new one")
            else:
                out["note"] = "no file has arrived yet: PUT it to the upload_url (ingest starts when it lands)"
        return out

    def _finish_upload(self, upload_id: str | None, result: IngestResult) -> IngestResult:
        if upload_id is None:
            return result
        result.upload_id = upload_id
        log = getattr(result, "_log", None) or {}
        fields = {"status": UPLOAD_STATUS.get(result.status, result.status), "ingested_at": log.get("at"),
                  "rows_stored": result.rows_stored, "rows_rejected": result.rows_rejected,
                  "log_pk": log.get("pk"), "log_sk": log.get("sk")}
        try:
            self.state.update(keys.upload_pk(upload_id), keys.UPLOAD_SK, set={k: v for k, v in fields.items() if v is not None},
                              set_if_missing={"upload_id": upload_id, "dataset": result.dataset,
                                              "key": result.source})
        except Exception as exc:  # the rows are stored; only the status lookup would be stale
            print(f"could not record the outcome of upload {upload_id}: {exc}", flush=True)
        return result

    def summary(self) -> list[dict]:
        stats = {i["sk"]: i for i in self.state.query(keys.DATASET_STATS_PK)}
        out = []
        for name in SCHEMAS:
            item = stats.get(name, {})
            recent = self.state.query(keys.ingest_pk(name), newest_first=True, limit=5)
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
    def _ingest(self, name: str, content: bytes, source: str, validate, buffered: bool = False) -> IngestResult:
        batch_id = hashlib.sha256(name.encode() + b"\0" + content).hexdigest()[:32]
        if self.state.get(keys.batch_pk(batch_id), keys.BATCH_SK):
            return self._log_duplicate(name, source, batch_id)
        validated = validate()
        if "user_id" in SCHEMAS[name].field_names:
            # Erased users stay erased: their old rows are refused (see tailor.privacy.erase).
            privacy.drop_erased(validated, privacy.tombstones(self.state))
        now = _now_ms()
        if buffered:
            if validated.rows:
                self.stream.put(buffer.encode(validated, now))  # type: ignore[union-attr]
        else:
            datasets.write_batch(self.store, validated, batch_id, now)
        if self.on_stored is not None and validated.rows:
            self.on_stored(name, validated.columns)
        result = IngestResult(name, source, "stored", validated.rows, len(validated.rejects), batch_id=batch_id,
                              warnings=validated.warnings or None,
                              warning_samples=validated.warning_samples or None)
        if validated.rejects:
            result.rejects_key = keys.rejects_key(name, batch_id)
            lines = [json.dumps({**r.to_dict(), "source": source}, ensure_ascii=False) for r in validated.rejects]
            self.store.put(result.rejects_key, ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
            result.reject_samples = [r.to_dict() for r in validated.rejects[:REJECT_SAMPLES]]
        log = self._log_item(result, now)
        claim = {"pk": keys.batch_pk(batch_id), "sk": keys.BATCH_SK, "dataset": name, "source": source, "at": _iso(now)}
        stats = (keys.DATASET_STATS_PK, name, {"last_ingest": _iso(now), "last_stored": _iso(now)},
                 {"rows_stored": result.rows_stored, "rows_rejected": result.rows_rejected,
                  "files": 0 if buffered else 1})
        try:
            if buffered:
                # Three single-item writes, no transaction: a website's event stream stays at a few
                # ms per event (a TransactWriteItems costs double, and moto copies the whole table
                # for each). The rows are already in the stream, so a crash between these writes
                # loses no event; at worst a re-sent batch is streamed again, and the copy is
                # de-duplicated when read and compacted (datasets.buffer).
                self.state.put(claim, only_if_new=True)
                self.state.put(log)
                self.state.update(stats[0], stats[1], set=stats[2], add=stats[3])
            else:
                self.state.transact(new=[claim], puts=[log], adds=[stats])
        except ConditionFailed:  # a concurrent delivery of the same batch won the race
            return self._log_duplicate(name, source, batch_id)
        metrics.add_metadata("dataset", name)
        metrics.add_metric("RowsStored", MetricUnit.Count, result.rows_stored)
        metrics.add_metric("RowsRejected", MetricUnit.Count, result.rows_rejected)
        result._log = log  # type: ignore[attr-defined]  # where GET /v1/uploads/{id} finds the reasons
        return result

    def _log_duplicate(self, name: str, source: str, batch_id: str) -> IngestResult:
        result = IngestResult(name, source, "duplicate", batch_id=batch_id,
                              message="this content was already ingested; nothing was stored again")
        log = self._log_item(result, _now_ms())
        self.state.put(log)
        result._log = log  # type: ignore[attr-defined]
        return result

    def _refuse(self, name: str, source: str, message: str) -> IngestResult:
        result = IngestResult(name, source, "refused", message=message)
        now = _now_ms()
        log = self._log_item(result, now)
        self.state.transact(puts=[log],
                            adds=[(keys.DATASET_STATS_PK, name, {"last_ingest": _iso(now), "last_error": message}, {})])
        result._log = log  # type: ignore[attr-defined]
        return result

    @staticmethod
    def _log_item(result: IngestResult, now: int) -> dict:
        return {"pk": keys.ingest_pk(result.dataset), "sk": f"{_iso(now)}#{secrets.token_hex(3)}",
                "at": _iso(now), **result.to_dict()}


def stored_at(state: StateTable, dataset: str) -> str | None:
    """When `dataset` last stored rows (a refused or duplicate delivery does not count), or None."""
    return (state.get(keys.DATASET_STATS_PK, dataset) or {}).get("last_stored")


def _mapping_salt(mapping: dict[str, str]) -> bytes:
    """What a column mapping adds to a batch's identity (nothing without one: old ids stay)."""
    return b"\0columns:" + json.dumps(mapping, sort_keys=True).encode() if mapping else b""
