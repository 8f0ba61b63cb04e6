"""Customer profiles, segments and campaign audiences (ProfilesFunction; NumPy only).

Where things live in the state table:
- `PROFILE#<user_id>` / `PROFILE`: what the last recommender training built for the user
  (activity, top categories, declared attributes, segment — see `tailor.customers.profiles`), plus live
  counters that ingest adds as events and attributes arrive (`live_events`,
  `live_count#<event type>`, `live_first_seen`, `live_last_seen`, `attributes`). The next
  training replaces the item from the stored data, which folds the counters in.
- `SEGMENTS` / `<segment_id>`: one item per segment; `SEGMENTS` / `#META`: how many segments and why.
- `AUDIENCE#<job_id>` / `EXPORT`: an asynchronous audience export.

Audiences rank every user the current recommender knows by predicted affinity (the rule the
trainer chose on its validation split, protocol A1); a category audience scores the chance of
engaging with any item of the category (log-sum-exp over its items).
"""

from __future__ import annotations

import csv
import io
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from tailor.core.clock import now_iso
from tailor.core.errors import Invalid, NotFound, Unavailable
from tailor.models.cache import ModelCache
from tailor.storage import keys
from tailor.storage.dynamo import StateTable
from tailor.storage.s3 import ObjectStore

if TYPE_CHECKING:
    from tailor.privacy.erase import UserErasure

PROFILE_SK, SEGMENTS_PK, META_SK = keys.PROFILE_SK, keys.SEGMENTS_PK, keys.SEGMENTS_META_SK
MAX_AUDIENCE = 100_000
SYNC_AUDIENCE = 10_000  # larger audiences are exported asynchronously (an API request ends at 29 s)
EXPORT_URL_SECONDS = 3600
# Ingested batches touching up to this many customers update their profiles at once (every
# POST /v1/events batch does); larger bulk imports are folded in by the next training.
LIVE_MAX_USERS = 2_000
SCORE_CHUNK = 128  # item columns scored at once for a category: bounds memory at n_users x 128 floats


profile_key = keys.profile_pk


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def _public(item: dict) -> dict:
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}


# --------------------------------------------------------------------------- storage


class ProfileStore:
    """Profiles and segments in the state table: written by training and ingest, read by the API."""

    def __init__(self, state: StateTable, clock: Callable[[], float] | None = None):
        self.state = state
        self.clock = clock or (lambda: datetime.now(UTC).timestamp() * 1000)

    # ---- written by the recommender training job -------------------------------------------
    def save_build(self, build, model_version: str | None) -> None:
        built_at = now_iso()
        self.state.put_many({"pk": profile_key(user_id), "sk": PROFILE_SK, **profile,
                             "model_version": model_version, "built_at": built_at}
                            for user_id, profile in build.profiles.items())
        old = {item["sk"] for item in self.state.query(SEGMENTS_PK)}
        new = {segment["segment_id"] for segment in build.segments}
        self.state.put_many({"pk": SEGMENTS_PK, "sk": segment["segment_id"], **segment,
                             "model_version": model_version, "built_at": built_at}
                            for segment in build.segments)
        self.state.put({"pk": SEGMENTS_PK, "sk": META_SK, "criterion": build.criterion,
                        "segments": len(build.segments), "users": len(build.profiles),
                        "model_version": model_version, "built_at": built_at})
        for stale in old - new - {META_SK}:
            self.state.delete(SEGMENTS_PK, stale)

    # ---- written by ingest, so a profile is fresh before the next training ----------------
    def record(self, dataset: str, columns: dict[str, list]) -> None:
        if dataset == "interactions":
            self.record_events(columns)
        elif dataset == "users":
            self.record_attributes(columns)

    def record_events(self, columns: dict[str, list]) -> None:
        per_user: dict[str, dict] = defaultdict(lambda: {"n": 0, "types": Counter(), "first": None, "last": None})
        for user, moment, kind in zip(columns["user_id"], columns["timestamp"],
                                      columns.get("event_type") or ["interaction"] * len(columns["user_id"])):
            entry = per_user[user]
            entry["n"] += 1
            entry["types"][kind or "interaction"] += 1
            entry["first"] = moment if entry["first"] is None else min(entry["first"], moment)
            entry["last"] = moment if entry["last"] is None else max(entry["last"], moment)
        if len(per_user) > LIVE_MAX_USERS:
            return  # a bulk history import: the next training folds it in (one write per user is too slow)
        # One update per user and batch; the earliest first-seen wins, and reads take the latest
        # last-seen of the build and the live counters.
        self.state.update_many([
            {"pk": profile_key(user), "sk": PROFILE_SK,
             "set": {"user_id": user, "live_last_seen": _iso(entry["last"])},
             "add": {"live_events": entry["n"], **{f"live_count#{kind}": n for kind, n in entry["types"].items()}},
             "set_if_missing": {"live_first_seen": _iso(entry["first"])}}
            for user, entry in per_user.items()])

    def record_attributes(self, columns: dict[str, list]) -> None:
        if len(columns["user_id"]) > LIVE_MAX_USERS:
            return  # a bulk import of the customer base: the next training folds it in
        names = [name for name in columns if name != "user_id"]
        latest = {user: row for row, user in enumerate(columns["user_id"])}  # the last row of a user wins
        self.state.update_many([
            {"pk": profile_key(user), "sk": PROFILE_SK,
             "set": {"user_id": user, "attributes": {name: columns[name][row] for name in names
                                                     if columns[name][row] not in (None, "")}}}
            for user, row in latest.items()])

    # ---- privacy erase ---------------------------------------------------------------------
    def erase_user(self, erasure: UserErasure) -> None:
        """The user's profile items, their place in segment samples and sizes, and their lines in
        audience exports (an export left with its header only is deleted)."""
        erasure.text_objects(keys.EXPORTS_PREFIX, erasure.drop_lines, keep_header_only=False)
        user_id = erasure.user_id
        items = self.state.query(profile_key(user_id))
        built = next((i for i in items if i["sk"] == PROFILE_SK and i.get("built_at")), None)
        segment_id = ((built or {}).get("segment") or {}).get("segment_id")
        for item in items:
            self.state.delete(item["pk"], item["sk"])
            erasure.report["items"]["deleted"] += 1
        for segment in self.state.query(SEGMENTS_PK):
            changed = False
            if segment["sk"] == META_SK:
                if built is not None and segment.get("users"):
                    segment["users"] = int(segment["users"]) - 1
                    changed = True
            else:
                members = segment.get("sample_members") or []
                if user_id in members:
                    segment["sample_members"] = [m for m in members if m != user_id]
                    changed = True
                if segment["sk"] == segment_id and segment.get("size"):
                    segment["size"] = int(segment["size"]) - 1
                    changed = True
            if changed:
                self.state.put(segment)
                erasure.report["items"]["updated"] += 1

    # ---- read by the API -------------------------------------------------------------------
    def get(self, user_id: str) -> dict | None:
        item = self.state.get(profile_key(user_id), PROFILE_SK)
        return None if item is None else self._merge(item)

    def _merge(self, item: dict) -> dict:
        activity = dict(item.get("activity") or {})
        live = int(item.get("live_events") or 0)
        if live:
            by_type = dict(activity.get("by_event_type") or {})
            for name, value in item.items():
                if name.startswith("live_count#"):
                    kind = name.split("#", 1)[1]
                    by_type[kind] = int(by_type.get(kind, 0)) + int(value)
            activity["events"] = int(activity.get("events") or 0) + live
            activity["by_event_type"] = by_type
            activity["events_since_training"] = live
            firsts = [t for t in (activity.get("first_seen"), item.get("live_first_seen")) if t]
            lasts = [t for t in (activity.get("last_seen"), item.get("live_last_seen")) if t]
            activity["first_seen"] = min(firsts, key=_ms)
            activity["last_seen"] = max(lasts, key=_ms)
        if activity.get("last_seen"):
            activity["recency_days"] = round(max(0.0, (self.clock() - _ms(activity["last_seen"])) / 86_400_000), 2)
        profile = {"user_id": item.get("user_id") or item["pk"].split("#", 1)[1], "activity": activity,
                   "top_categories": item.get("top_categories") or [], "attributes": item.get("attributes") or {},
                   "segment": item.get("segment"), "model_version": item.get("model_version"),
                   "built_at": item.get("built_at")}
        if not item.get("built_at"):
            profile["note"] = ("this customer arrived after the last recommender training: activity is counted "
                               "as events arrive; categories and segment come with the next training")
        return profile

    def segments(self) -> tuple[dict | None, list[dict]]:
        items = self.state.query(SEGMENTS_PK)
        meta = next((i for i in items if i["sk"] == META_SK), None)
        return meta, [i for i in items if i["sk"] != META_SK]


# --------------------------------------------------------------------------- service


class ProfileService:
    def __init__(self, profiles: ProfileStore, models: ModelCache, store: ObjectStore, state: StateTable,
                 invoke_export: Callable[[dict], None] | None = None,
                 new_items: Callable[[str], dict | None] | None = None):
        self.profiles, self.models, self.store, self.state = profiles, models, store, state
        self.invoke_export = invoke_export
        self.new_items = new_items

    # ---- profiles and segments -------------------------------------------------------------
    def profile(self, user_id: str) -> dict:
        profile = self.profiles.get(user_id)
        if profile is None:
            raise NotFound(f"no profile for user {user_id!r}: the user has no stored events or attributes")
        summary = self.state.get(keys.sentiment_pk("user", user_id), keys.SUMMARY_SK)
        profile["sentiment"] = _public(summary) if summary else None
        return profile

    def segments(self) -> dict:
        meta, segments = self.profiles.segments()
        if meta is None:
            raise Unavailable('no segments yet: they are built by the recommender training '
                              '(POST /v1/training-jobs {"models": ["recommender"]})')
        segments.sort(key=lambda s: -int(s.get("size", 0)))
        return {"model_version": meta.get("model_version"), "built_at": meta.get("built_at"),
                "users": meta.get("users"), "criterion": meta.get("criterion"),
                "segments": [{k: s.get(k) for k in ("segment_id", "name", "description", "size")} for s in segments]}

    def segment(self, segment_id: str) -> dict:
        item = self.state.get(SEGMENTS_PK, segment_id) if segment_id != META_SK else None
        if item is None:
            raise NotFound(f"unknown segment {segment_id!r}: GET /v1/segments lists them")
        return _public(item)

    # ---- audiences -------------------------------------------------------------------------
    def audience(self, *, item_id: str | None, category: str | None, size: int,
                 include_engaged: bool = False, export: bool = False) -> tuple[dict, int]:
        if bool(item_id) == bool(category):
            raise Invalid('give exactly one of "item_id" or "category"')
        if not 1 <= size <= MAX_AUDIENCE:
            raise Invalid(f"size must be between 1 and {MAX_AUDIENCE:,}, got {size}")
        request = {"item_id": item_id, "category": category, "size": size, "include_engaged": include_engaged}
        model, version = self.models.get()
        self._target_rows(model, item_id, category)  # unknown item or category → 404 now, not in the job
        if size > SYNC_AUDIENCE:
            return self._start_export(request), 202
        users, scores = self._rank(model, **request)
        answer = {"model_version": version, **{k: v for k, v in request.items() if v is not None},
                  "users": [{"user_id": u, "score": round(float(s), 6)} for u, s in zip(users, scores)]}
        if len(users) < size:
            answer["note"] = f"only {len(users):,} users qualify (users who already engaged are excluded unless " \
                             '"include_engaged": true)'
        if export:
            key = keys.audience_export_key(_export_id())
            self._write_csv(key, users, scores)
            answer.update(export_key=key, export_url=self.store.presign_get(key, expires_in=EXPORT_URL_SECONDS),
                          expires_in=EXPORT_URL_SECONDS)
        return answer, 200

    def _target_rows(self, model, item_id: str | None, category: str | None) -> np.ndarray:
        rec = model.recommender
        if item_id:
            if not rec.has_item(item_id) and not self._add_new_item(model, item_id):
                raise NotFound(f"unknown item {item_id!r}: it is neither in the model nor in the catalog")
            return np.array([rec.item_row(item_id)])
        rows = rec.items_in_categories([category])
        if not len(rows):
            raise NotFound(f"unknown category {category!r}")
        return rows

    def _rank(self, model, *, item_id, category, size, include_engaged) -> tuple[list[str], np.ndarray]:
        rec = model.recommender
        rows = self._target_rows(model, item_id, category)
        scores = None
        for start in range(0, len(rows), SCORE_CHUNK):
            chunk = rec.audience_matrix(rows[start:start + SCORE_CHUNK])
            part = np.logaddexp.reduce(chunk, axis=1) if chunk.shape[1] > 1 else chunk[:, 0]
            scores = part if scores is None else np.logaddexp(scores, part)
        scores = np.asarray(scores, dtype=np.float64)
        if not include_engaged:
            scores[rec.users_who_engaged(rows)] = -np.inf
        take = min(size, len(scores))
        top = np.argpartition(-scores, take - 1)[:take] if take < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[np.isfinite(scores[top])]
        return rec.user_ids[top].tolist(), scores[top]

    def _add_new_item(self, model, item_id: str) -> bool:
        item = self.new_items(item_id) if self.new_items else None
        if item is None:
            return False
        model.recommender.add_item(item_id, item.get("title"), item.get("categories"), item.get("description"))
        return True

    def _write_csv(self, key: str, users: list[str], scores: np.ndarray) -> None:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["user_id", "score"])
        writer.writerows((u, f"{s:.6f}") for u, s in zip(users, scores))
        self.store.put(key, out.getvalue().encode(), "text/csv")

    # ---- asynchronous exports --------------------------------------------------------------
    def _start_export(self, request: dict) -> dict:
        if self.invoke_export is None:
            raise Unavailable("asynchronous exports are not configured (EXPORT_FUNCTION_NAME is not set)")
        job_id = "aud-" + now_iso().replace(":", "").replace("-", "") + "-" + secrets.token_hex(3)
        job = {"pk": keys.audience_pk(job_id), "sk": keys.EXPORT_SK, "job_id": job_id, "status": "QUEUED",
               "request": {k: v for k, v in request.items() if v is not None}, "created_at": now_iso()}
        self.state.put(job, only_if_new=True)
        try:
            self.invoke_export({"audience_export": {"job_id": job_id}})
        except Exception as exc:
            self.state.update(keys.audience_pk(job_id), keys.EXPORT_SK,
                              set={"status": "FAILED", "error": f"could not start: {exc}"})
            raise Unavailable("the export could not be started; try again later") from exc
        return {**_public(job), "note": f"audiences above {SYNC_AUDIENCE:,} users are exported asynchronously: "
                                        f"GET /v1/audiences/{job_id} gives the status and the download URL"}

    def run_export(self, job_id: str) -> dict:
        job = self.state.get(keys.audience_pk(job_id), keys.EXPORT_SK)
        if job is None:
            return {"job_id": job_id, "status": "UNKNOWN"}
        self.state.update(job["pk"], keys.EXPORT_SK, set={"status": "RUNNING", "started_at": now_iso()})
        try:
            model, version = self.models.get()
            request = {"item_id": None, "category": None, "include_engaged": False, **job["request"]}
            users, scores = self._rank(model, **request)
            key = keys.audience_export_key(job_id)
            self._write_csv(key, users, scores)
        except Exception as exc:  # the job record says what went wrong; nothing half-written is served
            self.state.update(job["pk"], keys.EXPORT_SK, set={"status": "FAILED", "error": f"{type(exc).__name__}: {exc}",
                                                        "finished_at": now_iso()})
            return {"job_id": job_id, "status": "FAILED"}
        self.state.update(job["pk"], keys.EXPORT_SK, set={"status": "SUCCEEDED", "rows": len(users), "export_key": key,
                                                    "model_version": version, "finished_at": now_iso()})
        return {"job_id": job_id, "status": "SUCCEEDED", "rows": len(users)}

    def export_status(self, job_id: str) -> dict:
        job = self.state.get(keys.audience_pk(job_id), keys.EXPORT_SK) if job_id.startswith("aud-") else None
        if job is None:
            raise NotFound(f"unknown audience export {job_id!r}")
        answer = _public(job)
        if job.get("status") == "SUCCEEDED" and self.store.size(job["export_key"]) is not None:
            answer.update(export_url=self.store.presign_get(job["export_key"], expires_in=EXPORT_URL_SECONDS),
                          expires_in=EXPORT_URL_SECONDS)
        return answer


def _export_id() -> str:
    return now_iso().replace(":", "").replace("-", "") + "-" + secrets.token_hex(4)


def _sentiment_results(store: ObjectStore):
    """The sentiment job's per-review results (user_id, label), or None when there are none."""
    import pyarrow as pa
    import pyarrow.parquet as pq


    stored = [k for k in store.keys(keys.SENTIMENT_RESULTS_PREFIX) if k.endswith(".parquet")]
    tables = []
    for key in stored:
        table = pq.read_table(io.BytesIO(store.get(key)))
        if {"user_id", "label"} <= set(table.column_names):
            tables.append(table.select(["user_id", "label"]))
    return pa.concat_tables(tables, promote_options="default") if tables else None


def build_and_save(store: ObjectStore, state: StateTable, recommender, model_version: str | None,
                   progress: Callable[[str], None] = print, now_ms: float | None = None) -> Any:
    """Profiles and segments from every stored dataset, the sentiment results and the given model
    (the training job)."""
    from tailor.customers.profiles import build_profiles
    from tailor.datasets.store import read_dataset
    from tailor.privacy.erase import tombstones

    interactions = read_dataset(store, "interactions", erased=tombstones(state))
    try:
        sentiment = _sentiment_results(store)
    except Exception as exc:  # segments without the sentiment band rather than no segments
        progress(f"profiles: sentiment results not read ({type(exc).__name__}: {exc})")
        sentiment = None
    build = build_profiles(interactions, read_dataset(store, "items"), read_dataset(store, "users"),
                           None if recommender is None else recommender.user_ids,
                           None if recommender is None else recommender.user_matrix[:, :-1],
                           now_ms=int(now_ms if now_ms is not None else datetime.now(UTC).timestamp() * 1000),
                           reviews=read_dataset(store, "reviews"), sentiment=sentiment)
    ProfileStore(state).save_build(build, model_version)
    progress(f"profiles: {len(build.profiles):,} users; {len(build.segments)} segments "
             f"({build.criterion.get('name', 'criterion')} chose k = {build.criterion.get('chosen_k', len(build.segments))})")
    return build
