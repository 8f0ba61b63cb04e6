"""Privacy erase (`DELETE /v1/users/{user_id}`): synchronous, physical, and remembered.

What `EraseService.erase` removes, in this order (the tombstone first, so an ingest that
starts meanwhile already refuses the user's old rows):
1. writes the tombstone `ERASED` / sha256(user id) with `erased_at` (the id itself is not stored);
2. objects: the user's rows in `results/sentiment/` and in every `datasets/<interactions|users|
   reviews>/` file (rewritten without them, deleted when empty, `DATASET` counters decremented),
   lines in `rejects/` and `exports/`, raw uploads under `incoming/` that mention the user
   (deleted whole: an ingested upload is already in `datasets/`), and the id in `reports/`;
   every rewrite or delete also deletes the key's older S3 versions (the bucket is versioned);
3. state table: `PROFILE#<id>` items, the user's sentiment summary (the summaries of the items
   they reviewed are recomputed), the user in segment samples and sizes, the user's rows in
   ingest-log reject samples;
4. models: the user's rows in every stored recommender version (`RecommenderArtifact.without_users`),
   then a new `revision` on the pointer and a new serving stamp (`ModelCache.signal`), so every
   warm serving container (recommendations, rankings, audiences) reloads on its next request.

Returning customers (the tombstone rule, applied by ingest through `drop_erased`): a row of
an erased user is refused when it is dated at or before the erase, or has no date (users rows
without `updated_at`/`timestamp`, undated reviews), with the reason "user erased by a privacy
request on <date>" and without the row's content. Rows dated after the erase are a returning
customer and are stored. Training and serving read only stored data, which no longer holds
the erased rows, so they need no filter of their own.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from tailor.core.errors import Invalid, NotFound
from tailor.datasets.schemas import MAX_ID_LENGTH, Reject, Validated, parse_timestamp
from tailor.models.cache import ModelCache
from tailor.models.registry import ModelRegistry
from tailor.storage import keys
from tailor.storage.dynamo import StateTable
from tailor.storage.s3 import ObjectStore

ERASED_PK = keys.ERASED_PK
USER_DATASETS = ("interactions", "users", "reviews")
# A users row may carry its own date: a returning customer's attributes are accepted then.
USER_ROW_DATES = ("updated_at", "timestamp")
ERASE_REASON = "user erased by a privacy request on {date}"
SENTIMENT_RESULTS = keys.SENTIMENT_RESULTS_PREFIX


def user_hash(user_id: str) -> str:
    """The pseudonymous key of a tombstone: the id is never stored in clear."""
    return hashlib.sha256(str(user_id).encode("utf-8")).hexdigest()


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def tombstones(state: StateTable) -> dict[str, int]:
    """sha256(user id) → erased_at (Unix ms) of every erased user."""
    return {item["sk"]: int(item["erased_at_ms"]) for item in state.query(ERASED_PK)}


def users_erased_since(state: StateTable, user_ids, since_ms: int) -> list[str]:
    """The given users whose erase happened at or after `since_ms` (e.g. while a job trained)."""
    recent = {digest for digest, at in tombstones(state).items() if at >= since_ms}
    return [str(u) for u in user_ids if user_hash(str(u)) in recent] if recent else []


def drop_erased(validated: Validated, erased: dict[str, int]) -> int:
    """Move the rows of erased users that predate their erase (or are undated) to the rejects,
    without their content. Mutates `validated`; returns how many rows were dropped."""
    columns = validated.columns
    if not erased or "user_id" not in columns or not validated.rows:
        return 0
    name = validated.schema.name
    if name == "users":
        lowered = {c.lower(): c for c in columns}
        date_column = next((lowered[c] for c in USER_ROW_DATES if c in lowered), None)
        dates = columns[date_column] if date_column else [None] * validated.rows
    else:
        dates = columns.get("timestamp") or [None] * validated.rows
    numbers = validated.row_numbers or list(range(1, validated.rows + 1))
    hashes: dict[str, str] = {}
    keep, rejects = [], []
    for index, user in enumerate(columns["user_id"]):
        erased_at = None
        if user is not None:
            digest = hashes.get(user) or hashes.setdefault(user, user_hash(user))
            erased_at = erased.get(digest)
        if erased_at is None:
            keep.append(index)
            continue
        try:
            moment = dates[index] if isinstance(dates[index], int) or dates[index] is None \
                else parse_timestamp(dates[index])
        except ValueError:
            moment = None
        if moment is not None and moment > erased_at:
            keep.append(index)  # a returning customer: new activity after the erase
            continue
        rejects.append(Reject(numbers[index], ERASE_REASON.format(date=_iso(erased_at)[:10]), ""))
    if not rejects:
        return 0
    validated.columns = {c: [values[i] for i in keep] for c, values in columns.items()}
    validated.row_numbers = [numbers[i] for i in keep]
    validated.rejects = sorted(validated.rejects + rejects, key=lambda r: r.row)
    return len(rejects)


def _parquet_bytes(table) -> bytes:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class EraseService:
    def __init__(self, store: ObjectStore, state: StateTable, registry: ModelRegistry):
        self.store, self.state, self.registry = store, state, registry

    def erase(self, user_id: str) -> dict:
        """Erase everything stored about `user_id`; returns what was removed.

        Raises NotFound when nothing is stored for the user (also on a second erase)."""
        if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_ID_LENGTH:
            raise Invalid("user_id must be a non-empty id of at most 256 characters")
        self.user_id = user_id
        self.pattern = re.compile(r"(?<![\w-])" + re.escape(user_id) + r"(?![\w-])")
        digest = user_hash(user_id)
        previous = self.state.get(ERASED_PK, digest)
        now = _now_ms()
        self.state.put({"pk": ERASED_PK, "sk": digest, "erased_at": _iso(now), "erased_at_ms": now,
                        "erasures": int((previous or {}).get("erasures") or 0) + 1})
        self.report: dict[str, Any] = {
            "user_id": user_id, "erased_at": _iso(now),
            "datasets": {name: {"rows_removed": 0, "files_rewritten": 0, "files_deleted": 0} for name in USER_DATASETS},
            "objects": {"rewritten": 0, "deleted": 0, "old_versions_deleted": 0},
            "items": {"deleted": 0, "updated": 0},
            "models": {"versions_rewritten": 0, "pointer_revision": None},
        }
        try:
            reviewed_items = self._sentiment_results()
            self._datasets()
            self._text_objects(keys.REJECTS_PREFIX, self._drop_lines, count_rejects=True)
            self._text_objects(keys.EXPORTS_PREFIX, self._drop_lines)
            self._text_objects(keys.REPORTS_PREFIX, self._scrub)
            self._incoming()
            self._profile_and_segments()
            self._sentiment_summaries(reviewed_items)
            self._ingest_logs()
            self._models()
        except Exception:
            if not self._found():  # failed before anything was removed: leave no trace of the call
                self._restore_tombstone(digest, previous)
            raise
        if not self._found():
            self._restore_tombstone(digest, previous)
            raise NotFound(f"nothing is stored for user {user_id!r}: no profile, dataset rows, files or model "
                           "rows hold that id (an erased user stays erased)")
        self.report["tombstone"] = {"key": f"{ERASED_PK}/{digest}", "rule":
                                    "rows of this user dated at or before erased_at, or undated, are refused "
                                    "at ingest; rows dated later are a returning customer and are stored"}
        return self.report

    # ---- bookkeeping ------------------------------------------------------------------------
    def _found(self) -> bool:
        r = self.report
        return bool(sum(d["rows_removed"] for d in r["datasets"].values()) or r["objects"]["rewritten"]
                    or r["objects"]["deleted"] or r["items"]["deleted"] or r["items"]["updated"]
                    or r["models"]["versions_rewritten"])

    def _restore_tombstone(self, digest: str, previous: dict | None) -> None:
        if previous is None:
            self.state.delete(ERASED_PK, digest)
        else:
            self.state.put(previous)

    def _rewrite(self, key: str, body: bytes | None, content_type: str = "application/octet-stream") -> None:
        """Replace (or, with body None, delete) the object and every older version of it."""
        if body is None:
            self.report["objects"]["old_versions_deleted"] += max(self.store.purge(key) - 1, 0)
            self.report["objects"]["deleted"] += 1
        else:
            self.report["objects"]["old_versions_deleted"] += self.store.replace(key, body, content_type)
            self.report["objects"]["rewritten"] += 1

    # ---- objects ----------------------------------------------------------------------------
    def _without_user_rows(self, key: str):
        """(remaining table or None when nothing matched, removed rows) of a Parquet object."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(self.store.get(key)))
        if "user_id" not in table.column_names:
            return None, None
        mask = pc.fill_null(pc.equal(table.column("user_id").cast("string"), self.user_id), False)
        if not pc.any(mask).as_py():
            return None, None
        return table.filter(pc.invert(mask)), table.filter(mask)

    def _sentiment_results(self) -> set[str]:
        """Done before the reviews dataset: a re-score triggered by that rewrite then reads clean data."""
        items: set[str] = set()
        for key in [k for k in self.store.keys(SENTIMENT_RESULTS) if k.endswith(".parquet")]:
            rest, removed = self._without_user_rows(key)
            if rest is None:
                continue
            if "item_id" in removed.column_names:
                items.update(i for i in removed.column("item_id").to_pylist() if i)
            self._rewrite(key, _parquet_bytes(rest) if rest.num_rows else None)
        return items

    def _datasets(self) -> None:
        from tailor.datasets.store import dataset_keys

        for name in USER_DATASETS:
            stats = self.report["datasets"][name]
            for key in dataset_keys(self.store, name):
                rest, removed = self._without_user_rows(key)
                if rest is None:
                    continue
                stats["rows_removed"] += removed.num_rows
                if rest.num_rows:
                    self._rewrite(key, _parquet_bytes(rest))
                    stats["files_rewritten"] += 1
                else:
                    self._rewrite(key, None)
                    stats["files_deleted"] += 1
            if stats["rows_removed"]:
                self.state.update("DATASET", name, add={"rows_stored": -stats["rows_removed"]})

    def _drop_lines(self, text: str) -> tuple[str, int]:
        lines = text.splitlines(keepends=True)
        kept = [line for line in lines if not self.pattern.search(line)]
        return "".join(kept), len(lines) - len(kept)

    def _scrub(self, text: str) -> tuple[str, int]:
        return self.pattern.subn("[erased]", text)

    def _text_objects(self, prefix: str, edit, count_rejects: bool = False) -> None:
        removed_rejects: dict[str, int] = defaultdict(int)
        for key in list(self.store.keys(prefix)):
            if key.endswith((".png", ".npz", ".parquet")):
                continue
            data = self.store.get(key)
            text = data.decode("utf-8", "replace")
            if not self.pattern.search(text):
                continue
            new, changed = edit(text)
            if not changed:
                continue
            keep_file = new.strip() and not (prefix == keys.EXPORTS_PREFIX and len(new.strip().splitlines()) <= 1
                                             and new.startswith("user_id"))
            self._rewrite(key, new.encode("utf-8") if keep_file else None,
                          "application/x-ndjson" if key.endswith(".jsonl") else "text/plain")
            if count_rejects:
                removed_rejects[key.split("/")[1]] += changed
        for dataset, lines in removed_rejects.items():
            self.state.update("DATASET", dataset, add={"rows_rejected": -lines})

    def _incoming(self) -> None:
        """Raw uploads are deleted once ingested; any left over that mention the user go whole."""
        for key in list(self.store.keys(keys.INCOMING_PREFIX)):
            try:
                data = self.store.get(key)
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
            if self.pattern.search(text):
                self._rewrite(key, None)

    # ---- state table ------------------------------------------------------------------------
    def _profile_and_segments(self) -> None:
        from tailor.customers.service import META_SK, PROFILE_SK, SEGMENTS_PK, profile_key

        items = self.state.query(profile_key(self.user_id))
        built = next((i for i in items if i["sk"] == PROFILE_SK and i.get("built_at")), None)
        segment_id = ((built or {}).get("segment") or {}).get("segment_id")
        for item in items:
            self.state.delete(item["pk"], item["sk"])
            self.report["items"]["deleted"] += 1
        for segment in self.state.query(SEGMENTS_PK):
            changed = False
            if segment["sk"] == META_SK:
                if built is not None and segment.get("users"):
                    segment["users"] = int(segment["users"]) - 1
                    changed = True
            else:
                members = segment.get("sample_members") or []
                if self.user_id in members:
                    segment["sample_members"] = [m for m in members if m != self.user_id]
                    changed = True
                if segment["sk"] == segment_id and segment.get("size"):
                    segment["size"] = int(segment["size"]) - 1
                    changed = True
            if changed:
                self.state.put(segment)
                self.report["items"]["updated"] += 1

    def _sentiment_summaries(self, reviewed_items: set[str]) -> None:
        if self.state.get(keys.sentiment_pk("user", self.user_id), keys.SUMMARY_SK) is not None:
            self.state.delete(keys.sentiment_pk("user", self.user_id), keys.SUMMARY_SK)
            self.report["items"]["deleted"] += 1
        if not reviewed_items:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        from tailor.sentiment.service import summarise

        stored = [k for k in self.store.keys(SENTIMENT_RESULTS) if k.endswith(".parquet")]
        rows: dict[str, list[dict]] = defaultdict(list)
        if stored:
            table = pa.concat_tables([pq.read_table(io.BytesIO(self.store.get(k))) for k in stored],
                                     promote_options="default")
            for row in table.select(["item_id", "timestamp", "label", "score"]).to_pylist():
                if row["item_id"] in reviewed_items:
                    rows[row["item_id"]].append(row)
        for item_id in reviewed_items:
            pk = keys.sentiment_pk("item", item_id)
            if rows.get(item_id):
                self.state.put({"pk": pk, "sk": keys.SUMMARY_SK, "item_id": item_id, **summarise(rows[item_id])})
                self.report["items"]["updated"] += 1
            elif self.state.get(pk, keys.SUMMARY_SK) is not None:
                self.state.delete(pk, keys.SUMMARY_SK)
                self.report["items"]["deleted"] += 1

    def _ingest_logs(self) -> None:
        from tailor.datasets.schemas import SCHEMAS

        for name in SCHEMAS:
            for item in self.state.query(keys.ingest_pk(name)):
                samples = item.get("reject_samples") or []
                kept = [s for s in samples if not self.pattern.search(json.dumps(s, ensure_ascii=False))]
                if len(kept) != len(samples):
                    self.state.update(item["pk"], item["sk"], set={"reject_samples": kept})
                    self.report["items"]["updated"] += 1

    # ---- models -----------------------------------------------------------------------------
    def _models(self) -> None:
        from tailor.recommend.scorer import CONFIG_FILE, WEIGHTS_FILE, RecommenderArtifact

        current = self.registry.current("recommender")
        rewritten_current = False
        for key in [k for k in self.store.keys(keys.model_prefix("recommender")) if k.endswith("/" + WEIGHTS_FILE)]:
            weights = self.store.get(key)
            import numpy as np

            with np.load(io.BytesIO(weights), allow_pickle=False) as npz:
                if self.user_id not in set(npz["user_ids"].astype(str).tolist()):
                    continue
            prefix = key[: -len(WEIGHTS_FILE)]
            artifact = RecommenderArtifact.from_files({WEIGHTS_FILE: weights,
                                                       CONFIG_FILE: self.store.get(prefix + CONFIG_FILE)})
            files = artifact.without_users([self.user_id]).to_files()
            self._rewrite(key, files[WEIGHTS_FILE])
            self.report["models"]["versions_rewritten"] += 1
            if current and prefix == keys.model_prefix("recommender", current["version"]):
                rewritten_current = True
        if rewritten_current:
            pointer = self.registry.bump_revision("recommender", "privacy erase")
            self.report["models"]["pointer_revision"] = pointer and pointer["revision"]
            # after the pointer: every warm serving container re-reads it on its next request
            ModelCache.signal(self.state, "recommender", "privacy erase")

