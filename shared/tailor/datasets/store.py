"""Stored datasets: validated rows as Parquet under `datasets/<name>/`, and reading them back.

Layout (what training and other readers rely on):
- `datasets/interactions/month=YYYY-MM/<batch>.parquet`: interactions partitioned by the month of
  their timestamp, so a reader can take all of it or only a time range;
- `datasets/<items|users|reviews>/<batch>.parquet`: one file per ingested batch;
- `buffer/interactions/`: events sent one request at a time, until compaction (`datasets.buffer`).
`<batch>` is a content hash of the ingested file or request body, so writing the same batch
again replaces the same objects. Every row carries `_ingested_at` (Unix ms): for items, users
and reviews the newest row per key wins; interactions are de-duplicated on their full key.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tailor.datasets import buffer
from tailor.datasets.schemas import SCHEMAS, Schema, Validated
from tailor.storage import keys
from tailor.storage.dynamo import StateTable
from tailor.storage.ports import ObjectStorePort
from tailor.storage.s3 import ObjectStore

if TYPE_CHECKING:
    from tailor.privacy.erase import UserErasure

# The datasets whose rows name a customer (privacy erase).
USER_DATASETS = ("interactions", "users", "reviews")

PREFIX = keys.DATASETS_PREFIX


def _arrow_type(kind: str):
    import pyarrow as pa

    return {"string": pa.string(), "float64": pa.float64(),
            "timestamp": pa.timestamp("ms", tz="UTC")}[kind]


def to_table(validated: Validated, ingested_at_ms: int):
    import pyarrow as pa

    arrays, names = [], []
    kinds = {f.name: f.arrow_type for f in validated.schema.fields}
    for name, values in validated.columns.items():
        arrays.append(pa.array(values, type=_arrow_type(kinds.get(name, "string"))))
        names.append(name)
    arrays.append(pa.array([ingested_at_ms] * validated.rows, type=pa.int64()))
    names.append("_ingested_at")
    return pa.Table.from_arrays(arrays, names=names)


def parquet_bytes(table) -> bytes:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def month_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m")


def write_batch(store: ObjectStore, validated: Validated, batch_id: str, ingested_at_ms: int) -> list[str]:
    """Write accepted rows as Parquet; returns the keys written."""
    if validated.rows == 0:
        return []
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = validated.schema
    table = to_table(validated, ingested_at_ms)
    stored = []
    if schema.name == "interactions":
        months = pc.strftime(table.column("timestamp"), format="%Y-%m")
        for month in sorted(set(months.to_pylist())):
            part = table.filter(pc.equal(months, pa.scalar(month)))
            key = keys.dataset_key("interactions", batch_id, month)
            store.put(key, parquet_bytes(part))
            stored.append(key)
    else:
        key = keys.dataset_key(schema.name, batch_id)
        store.put(key, parquet_bytes(table))
        stored.append(key)
    return stored


def has_rows(store: ObjectStorePort, name: str) -> bool:
    """Whether anything is stored for `name`, in Parquet or still in the event buffer."""
    return bool(dataset_keys(store, name)) or (name == buffer.DATASET and bool(buffer.buffer_keys(store, name)))


def dataset_keys(store: ObjectStorePort, name: str, start_ms: int | None = None,
                 end_ms: int | None = None) -> list[str]:
    stored = [k for k in store.keys(keys.dataset_prefix(name)) if k.endswith(".parquet")]
    if name == "interactions" and (start_ms is not None or end_ms is not None):
        first = month_of(start_ms) if start_ms is not None else "0000-00"
        last = month_of(end_ms) if end_ms is not None else "9999-99"
        stored = [k for k in stored if first <= keys.dataset_month(k) <= last]
    return sorted(stored)


def read_dataset(store: ObjectStore, name: str, *, start_ms: int | None = None,
                 end_ms: int | None = None, erased: dict[str, int] | None = None):
    """All stored rows of a dataset as one pyarrow Table, de-duplicated (see module doc).

    `start_ms`/`end_ms` (interactions, reviews) keep rows with start <= timestamp < end.
    `erased` (`privacy.erase.tombstones`): buffered events of erased customers dated at or before
    their erase are left out (Firehose may deliver them after the erase ran; compaction drops them
    for good). Parquet files never hold such rows: ingest refuses them and the erase rewrites files.
    Returns None when nothing is stored yet.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema: Schema = SCHEMAS[name]
    for attempt in range(3):
        try:
            tables = [pq.read_table(io.BytesIO(store.get(k))) for k in dataset_keys(store, name, start_ms, end_ms)]
            if name == buffer.DATASET:  # events delivered by the stream, not compacted yet
                pending = buffer.read_buffer(store, buffer.buffer_keys(store, name))
                pending = buffer.drop_erased(pending, erased or {})[0]
                tables += [pending] if pending.num_rows else []
            break
        except KeyError:  # a compaction replaced what was listed: list again
            if attempt == 2:
                raise
    if not tables:
        return None
    table = pa.concat_tables(tables, promote_options="default")
    if "timestamp" in table.column_names and (start_ms is not None or end_ms is not None):
        ts = pc.cast(table.column("timestamp"), pa.int64())
        mask = pc.and_(pc.greater_equal(ts, start_ms if start_ms is not None else -(2**62)),
                       pc.less(ts, end_ms if end_ms is not None else 2**62))
        table = table.filter(mask)
    return latest_per_key(table, schema.key)


def latest_per_key(table, key: tuple[str, ...]):
    """Keep the most recently ingested row for each key (rows without a key are all kept)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not key or table.num_rows == 0:
        return table
    table = table.append_column("_row", pa.array(range(table.num_rows), type=pa.int64()))
    has_key = pc.is_valid(table.column(key[0]))
    keyed, unkeyed = table.filter(has_key), table.filter(pc.invert(has_key))
    # Within equal keys the later row in ingest order wins: sort by time, then take the last.
    keyed = keyed.sort_by([("_ingested_at", "ascending"), ("_row", "ascending")])
    keyed = keyed.append_column("_order", pa.array(range(keyed.num_rows), type=pa.int64()))
    winners = keyed.group_by(list(key), use_threads=False).aggregate([("_order", "max")])
    keep = pc.is_in(keyed.column("_order"), value_set=winners.column("_order_max"))
    out = pa.concat_tables([keyed.filter(keep).drop_columns(["_order"]), unkeyed])
    return out.sort_by([("_row", "ascending")]).drop_columns(["_row"])


def erase_user(erasure: UserErasure, state: StateTable) -> None:
    """A privacy erase of what ingest keeps: the user's rows in every dataset file (rewritten
    without them, deleted when empty, the dataset counters decremented), their lines in
    `rejects/`, any raw upload under `incoming/` that mentions them (deleted whole: an ingested
    upload is already in `datasets/`), and their rows in the ingest logs' reject samples."""
    import gzip
    import json

    for name in USER_DATASETS:
        stats = erasure.report["datasets"][name]
        for key in dataset_keys(erasure.store, name):
            rest, removed = erasure.without_user_rows(key)
            if rest is None:
                continue
            stats["rows_removed"] += removed.num_rows
            if rest.num_rows:
                erasure.rewrite(key, parquet_bytes(rest))
                stats["files_rewritten"] += 1
            else:
                erasure.rewrite(key, None)
                stats["files_deleted"] += 1
        if stats["rows_removed"]:
            state.update(keys.DATASET_STATS_PK, name, add={"rows_stored": -stats["rows_removed"]})
    buffer.erase_user(erasure, state)  # events delivered by the stream, not compacted yet

    removed_rejects: dict[str, int] = {}
    for key, lines in erasure.text_objects(keys.REJECTS_PREFIX, erasure.drop_lines).items():
        dataset = key.split("/")[1]
        removed_rejects[dataset] = removed_rejects.get(dataset, 0) + lines
    for dataset, lines in removed_rejects.items():
        state.update(keys.DATASET_STATS_PK, dataset, add={"rows_rejected": -lines})

    for key in list(erasure.store.keys(keys.INCOMING_PREFIX)):
        try:
            data = erasure.store.get(key)
        except KeyError:
            continue
        if data.startswith(b"\x1f\x8b"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):
                pass
        if data.startswith(b"PAR1"):
            try:
                import pyarrow.parquet as pq

                text = json.dumps(pq.read_table(io.BytesIO(data)).to_pylist(), default=str)
            except Exception:
                text = data.decode("utf-8", "replace")
        else:
            text = data.decode("utf-8", "replace")
        if erasure.mentions(text):
            erasure.rewrite(key, None)

    for name in SCHEMAS:
        for item in state.query(keys.ingest_pk(name)):
            samples = item.get("reject_samples") or []
            kept = [s for s in samples if not erasure.mentions(json.dumps(s, ensure_ascii=False))]
            if len(kept) != len(samples):
                state.update(item["pk"], item["sk"], set={"reject_samples": kept})
                erasure.report["items"]["updated"] += 1
