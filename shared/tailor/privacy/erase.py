"""Privacy erase (`DELETE /v1/users/{user_id}`): synchronous, physical, and remembered.

What `EraseService.erase` does, in this order (the tombstone first, so an ingest that starts
meanwhile already refuses the user's old rows). Each store erases what it keeps (`erase_user`),
given a `UserErasure` (the user, the report, and the object rewrite that also deletes a key's
older S3 versions: the bucket is versioned); this module only orchestrates:
1. writes the tombstone `ERASED` / sha256(user id) with `erased_at` (the id itself is not stored);
2. `sentiment.service.erase_user`: the user's rows in `results/sentiment/` (before the reviews
   dataset, so a re-score triggered by that rewrite reads clean data), their summary, and the
   summaries of the items they reviewed, recomputed;
3. `datasets.store.erase_user`: the user's rows in every `datasets/<interactions|users|reviews>/`
   file (rewritten, deleted when empty, `DATASET` counters decremented), lines in `rejects/`, raw
   uploads under `incoming/` that mention the user (deleted whole), ingest-log reject samples;
4. `customers.service.ProfileStore.erase_user`: lines in `exports/`, `PROFILE#<id>` items, the
   user in segment samples and sizes; `recommend.recent.RecentEvents.erase_user`: their recent
   events (`RECENT#<id>`, what recommendations fold in);
5. `models.registry.ModelRegistry.erase_user`: the id in `reports/`, the user's rows in every
   stored recommender version (`RecommenderArtifact.without_users`), then a new `revision` on the
   pointer and a new serving stamp (`ModelCache.signal`), so every warm serving container
   (recommendations, rankings, audiences) reloads on its next request.

Returning customers (the tombstone rule, applied by ingest through `drop_erased`): a row of
an erased user is refused when it is dated at or before the erase, or has no date (users rows
without `updated_at`/`timestamp`, undated reviews), with the reason "user erased by a privacy
request on <date>" and without the row's content. Rows dated after the erase are a returning
customer and are stored. Training and serving read only stored data, which no longer holds
the erased rows, so they need no filter of their own.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime
from typing import Any

from tailor.core.errors import Invalid, NotFound
from tailor.datasets.schemas import MAX_ID_LENGTH, Reject, Validated, parse_timestamp
from tailor.datasets.store import USER_DATASETS
from tailor.models.registry import ModelRegistry
from tailor.storage import keys
from tailor.storage.dynamo import StateTable
from tailor.storage.ports import StateTablePort
from tailor.storage.s3 import ObjectStore

ERASED_PK = keys.ERASED_PK
# A users row may carry its own date: a returning customer's attributes are accepted then.
USER_ROW_DATES = ("updated_at", "timestamp")
ERASE_REASON = "user erased by a privacy request on {date}"


def user_hash(user_id: str) -> str:
    """The pseudonymous key of a tombstone: the id is never stored in clear."""
    return hashlib.sha256(str(user_id).encode("utf-8")).hexdigest()


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def tombstones(state: StateTablePort) -> dict[str, int]:
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


class UserErasure:
    """One erase in progress, handed to each store's `erase_user`: who is erased, the report of
    what was removed, and the object operations every store shares (a rewrite also deletes the
    key's older versions; the bucket is versioned)."""

    def __init__(self, store: ObjectStore, user_id: str, erased_at: str):
        self.store, self.user_id = store, user_id
        self.pattern = re.compile(r"(?<![\w-])" + re.escape(user_id) + r"(?![\w-])")
        self.report: dict[str, Any] = {
            "user_id": user_id, "erased_at": erased_at,
            "datasets": {name: {"rows_removed": 0, "files_rewritten": 0, "files_deleted": 0} for name in USER_DATASETS},
            "objects": {"rewritten": 0, "deleted": 0, "old_versions_deleted": 0},
            "items": {"deleted": 0, "updated": 0},
            "models": {"versions_rewritten": 0, "pointer_revision": None},
        }

    def found(self) -> bool:
        r = self.report
        return bool(sum(d["rows_removed"] for d in r["datasets"].values()) or r["objects"]["rewritten"]
                    or r["objects"]["deleted"] or r["items"]["deleted"] or r["items"]["updated"]
                    or r["models"]["versions_rewritten"])

    def mentions(self, text: str) -> bool:
        return self.pattern.search(text) is not None

    def rewrite(self, key: str, body: bytes | None, content_type: str = "application/octet-stream") -> None:
        """Replace (or, with body None, delete) the object and every older version of it."""
        if body is None:
            self.report["objects"]["old_versions_deleted"] += max(self.store.purge(key) - 1, 0)
            self.report["objects"]["deleted"] += 1
        else:
            self.report["objects"]["old_versions_deleted"] += self.store.replace(key, body, content_type)
            self.report["objects"]["rewritten"] += 1

    def without_user_rows(self, key: str):
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

    def drop_lines(self, text: str) -> tuple[str, int]:
        lines = text.splitlines(keepends=True)
        kept = [line for line in lines if not self.pattern.search(line)]
        return "".join(kept), len(lines) - len(kept)

    def scrub(self, text: str) -> tuple[str, int]:
        return self.pattern.subn("[erased]", text)

    def text_objects(self, prefix: str, edit, keep_header_only: bool = True) -> dict[str, int]:
        """Edit every text object under `prefix` that mentions the user; lines changed per object."""
        changed_by_key: dict[str, int] = {}
        for key in list(self.store.keys(prefix)):
            if key.endswith((".png", ".npz", ".parquet")):
                continue
            text = self.store.get(key).decode("utf-8", "replace")
            if not self.pattern.search(text):
                continue
            new, changed = edit(text)
            if not changed:
                continue
            keep_file = new.strip() and (keep_header_only or not (len(new.strip().splitlines()) <= 1
                                                                  and new.startswith("user_id")))
            self.rewrite(key, new.encode("utf-8") if keep_file else None,
                         "application/x-ndjson" if key.endswith(".jsonl") else "text/plain")
            changed_by_key[key] = changed
        return changed_by_key


class EraseService:
    """Orchestrates an erase: the tombstone, then each store's `erase_user`, in an order that
    keeps each step safe to retry (see the module docstring)."""

    def __init__(self, store: ObjectStore, state: StateTable, registry: ModelRegistry):
        self.store, self.state, self.registry = store, state, registry

    def erase(self, user_id: str) -> dict:
        """Erase everything stored about `user_id`; returns what was removed.

        Raises NotFound when nothing is stored for the user (also on a second erase)."""
        from tailor.customers.service import ProfileStore
        from tailor.datasets import store as datasets
        from tailor.recommend.recent import RecentEvents
        from tailor.sentiment import service as sentiment

        if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_ID_LENGTH:
            raise Invalid("user_id must be a non-empty id of at most 256 characters")
        digest = user_hash(user_id)
        previous = self.state.get(ERASED_PK, digest)
        now = _now_ms()
        self.state.put({"pk": ERASED_PK, "sk": digest, "erased_at": _iso(now), "erased_at_ms": now,
                        "erasures": int((previous or {}).get("erasures") or 0) + 1})
        erasure = UserErasure(self.store, user_id, _iso(now))
        try:
            # Sentiment results before the reviews dataset: a re-score triggered by that rewrite reads clean data.
            sentiment.erase_user(erasure, self.state)
            datasets.erase_user(erasure, self.state)
            ProfileStore(self.state).erase_user(erasure)
            RecentEvents(self.state).erase_user(erasure)
            self.registry.erase_user(erasure)  # last: its new pointer revision makes serving reload
        except Exception:
            if not erasure.found():  # failed before anything was removed: leave no trace of the call
                self._restore_tombstone(digest, previous)
            raise
        if not erasure.found():
            self._restore_tombstone(digest, previous)
            raise NotFound(f"nothing is stored for user {user_id!r}: no profile, dataset rows, files or model "
                           "rows hold that id (an erased user stays erased)")
        erasure.report["tombstone"] = {"key": f"{ERASED_PK}/{digest}", "rule":
                                       "rows of this user dated at or before erased_at, or undated, are refused "
                                       "at ingest; rows dated later are a returning customer and are stored"}
        return erasure.report

    def _restore_tombstone(self, digest: str, previous: dict | None) -> None:
        if previous is None:
            self.state.delete(ERASED_PK, digest)
        else:
            self.state.put(previous)
