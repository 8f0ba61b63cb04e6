"""The event buffer: interactions sent one request at a time (`POST /v1/events`) go to Amazon Data
Firehose instead of each writing its own Parquet object, and compaction folds them into each
month's few large Parquet files.

Why Firehose rather than a queue plus a writer: it is the AWS service built for exactly this (a
website's events to S3 in batched objects), with no function to run, scale or retry, and it
buffers by time and size (`BufferingHints` in template.yaml: at most one object per stream per
interval). At list prices (per GB ingested, each record billed as at least 5 KB) a million
one-event requests cost about $0.15, against $5 in S3 PUT requests for a million Parquet objects,
and a month of them is read back as a few objects rather than a million.

- Format: one JSON line per row (the validated columns, timestamps in Unix ms, and
  `_ingested_at`), delivered under `buffer/interactions/` (gzip on AWS; moto writes plain text,
  both are read).
- Reading: `read_dataset("interactions")` reads the buffer with the Parquet files, so training
  and profiles see an event as soon as Firehose delivered it, compacted or not.
- Compaction (`compact`, hourly on IngestFunction's CompactSchedule): per month, every small file
  and the buffered rows become at most a few `compacted-<hash>-<part>.parquet` files, the rows
  de-duplicated on their key (Firehose delivers at least once; a re-sent batch is also stopped by
  the ingest ledger) and rows of erased customers dropped; then the consumed objects are deleted
  with all their versions. A crash half way leaves rows in two places, which reading
  de-duplicates; the next run merges them. Everything runs in one function's memory: a month
  must fit in it (a million events are about 5 MB of Parquet).
- Erasure: `erase_user` removes the customer's lines from delivered buffer objects. Events still
  in Firehose's own buffer (up to its interval) land later; compaction and training drop them by
  the tombstone rule (rows dated at or before the erase).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from typing import TYPE_CHECKING, Any

from tailor.datasets.schemas import SCHEMAS, Validated
from tailor.storage import keys
from tailor.storage.ports import ObjectStorePort, StateTablePort

if TYPE_CHECKING:
    from tailor.privacy.erase import UserErasure

DATASET = "interactions"  # the one dataset sent event by event
# A compacted file above this size is left alone (it is already "large"); smaller ones are merged.
LARGE_FILE_BYTES = 64 * 2**20
ROWS_PER_FILE = 2_000_000  # ~20-40 MB of zstd Parquet per compacted file


def encode(validated: Validated, ingested_at_ms: int) -> list[bytes]:
    """One JSON line per validated row: what the stream carries."""
    names = list(validated.columns)
    columns = [validated.columns[name] for name in names]
    return [(json.dumps({**dict(zip(names, row)), "_ingested_at": ingested_at_ms}, ensure_ascii=False,
                        separators=(",", ":")) + "\n").encode()
            for row in zip(*columns)]


def buffer_keys(store: ObjectStorePort, dataset: str = DATASET) -> list[str]:
    return sorted(store.keys(keys.buffer_prefix(dataset)))


def _text(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace")


def _rows(text: str) -> list[dict]:
    """The rows of a buffer object's text (`_text`)."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:  # never written by ingest; a hand-made object: say so, keep the rest
            print(f"skipping a buffer line that is not JSON: {line[:80]!r}", flush=True)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def arrow_schema(dataset: str = DATASET):
    import pyarrow as pa

    types = {"string": pa.string(), "float64": pa.float64(), "timestamp": pa.timestamp("ms", tz="UTC")}
    return pa.schema([(f.name, types[f.arrow_type]) for f in SCHEMAS[dataset].fields]
                     + [("_ingested_at", pa.int64())])


def to_table(rows: list[dict], dataset: str = DATASET):
    """Buffered rows as a table with the dataset's Parquet schema (what `datasets.store` writes)."""
    import pyarrow as pa

    schema = arrow_schema(dataset)
    return pa.Table.from_pylist([{name: row.get(name) for name in schema.names} for row in rows], schema=schema)


def read_buffer(store: ObjectStorePort, buffered: list[str], dataset: str = DATASET):
    """The rows of the given buffer objects. KeyError when one vanished since it was listed (a
    compaction consumed it: the caller lists again and finds its rows in datasets/)."""
    return to_table([row for key in buffered for row in _rows(_text(store.get(key)))], dataset)


def drop_erased(table, erased: dict[str, int]):
    """Rows of erased customers dated at or before their erase (the tombstone rule of ingest)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from tailor.privacy.erase import user_hash

    if not erased or table.num_rows == 0:
        return table, 0
    users = pc.unique(table.column("user_id")).to_pylist()
    erased_at = {u: erased[user_hash(u)] for u in users if u is not None and user_hash(u) in erased}
    if not erased_at:
        return table, 0
    limit = pa.array([erased_at.get(u, -1) for u in table.column("user_id").to_pylist()], pa.int64())
    moment = pc.cast(table.column("timestamp"), pa.int64())
    drop = pc.fill_null(pc.less_equal(moment, limit), True)
    kept = table.filter(pc.invert(drop))
    return kept, table.num_rows - kept.num_rows


def compact(store: ObjectStorePort, state: StateTablePort) -> dict:
    """Merge each month's buffered rows and small files into a few large Parquet files (module doc).
    Returns what it did: objects read and written, rows in and out, duplicates and erased rows dropped."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from tailor.datasets.store import dataset_keys, latest_per_key, parquet_bytes
    from tailor.privacy.erase import tombstones

    buffered = buffer_keys(store)
    pending = read_buffer(store, buffered)
    pending_months = pc.strftime(pending.column("timestamp"), format="%Y-%m")
    months_of_buffer = set(pc.unique(pending_months).to_pylist()) if pending.num_rows else set()
    small_by_month: dict[str, list[str]] = {}  # each month's files that are not large compacted ones
    for key in dataset_keys(store, DATASET):
        files = small_by_month.setdefault(keys.dataset_month(key), [])
        if not _large(store, key):
            files.append(key)
    report: dict[str, Any] = {"buffer_objects": len(buffered), "files_merged": 0, "files_written": 0,
                              "rows_in": 0, "rows_out": 0, "duplicates_dropped": 0, "erased_dropped": 0,
                              "months": []}
    erased = tombstones(state)
    schema = arrow_schema()
    for month in sorted(months_of_buffer | {m for m, files in small_by_month.items() if len(files) > 1}):
        small = small_by_month.get(month, [])
        part = pending.filter(pc.equal(pending_months, month)) if month in months_of_buffer \
            else pending.schema.empty_table()
        tables = [part] + [pq.read_table(io.BytesIO(store.get(k))).cast(schema) for k in small]
        merged = pa.concat_tables(tables)
        rows_in = merged.num_rows
        unique = latest_per_key(merged, SCHEMAS[DATASET].key)
        kept, dropped = drop_erased(unique, erased)
        kept = kept.sort_by([("timestamp", "ascending"), ("user_id", "ascending")])
        digest = hashlib.sha256("\n".join(sorted(small) + buffered).encode()).hexdigest()[:16]
        written = []
        for index, start in enumerate(range(0, kept.num_rows, ROWS_PER_FILE)):
            key = keys.dataset_key(DATASET, f"{keys.COMPACTED_PREFIX}{digest}-{index}", month)
            store.put(key, parquet_bytes(kept.slice(start, ROWS_PER_FILE)))
            written.append(key)
        store.purge_many([key for key in small if key not in written])
        report["files_merged"] += len(small)
        report["files_written"] += len(written)
        report["rows_in"] += rows_in
        report["rows_out"] += kept.num_rows
        report["duplicates_dropped"] += rows_in - unique.num_rows
        report["erased_dropped"] += dropped
        report["months"].append(month)
    # Only now that every month's rows are in datasets/: the buffer objects this run read.
    store.purge_many(buffered)
    if report["erased_dropped"]:
        state.update(keys.DATASET_STATS_PK, DATASET, add={"rows_stored": -report["erased_dropped"]})
    return report


def _large(store: ObjectStorePort, key: str) -> bool:
    """A compacted file big enough to leave alone (only compacted files are looked at: others are
    one ingested batch each, merged whatever their size)."""
    name = key.rsplit("/", 1)[-1]
    return name.startswith(keys.COMPACTED_PREFIX) and (store.size(key) or 0) >= LARGE_FILE_BYTES


def erase_user(erasure: UserErasure, state: StateTablePort) -> None:
    """The customer's rows in every delivered buffer object (rewritten without them, or deleted)."""
    stats = erasure.report["datasets"][DATASET]
    removed = 0
    for key in buffer_keys(erasure.store):
        try:
            data = erasure.store.get(key)
        except KeyError:  # compacted meanwhile: the datasets/ pass finds its rows
            continue
        text = _text(data)
        if not erasure.mentions(text):
            continue
        rows = _rows(text)
        kept = [row for row in rows if row.get("user_id") != erasure.user_id]
        if len(kept) == len(rows):
            continue
        removed += len(rows) - len(kept)
        if kept:
            body = "".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in kept).encode()
            erasure.rewrite(key, gzip.compress(body) if data[:2] == b"\x1f\x8b" else body)
            stats["files_rewritten"] += 1
        else:
            erasure.rewrite(key, None)
            stats["files_deleted"] += 1
    if removed:
        stats["rows_removed"] += removed
        state.update(keys.DATASET_STATS_PK, DATASET, add={"rows_stored": -removed})
