"""What each customer did since the model was trained: their recent events in the state table,
written by ingest as events arrive and read by RecommendFunction on every request, so the next
recommendation already reflects the last click (no retraining; see `Recommender.fold_in`).

One item per event under `RECENT#<user_id>` (keys in `storage/keys.py`), sorted by time: a re-sent
event lands on the same key (idempotent), concurrent writers never conflict (no read-modify-write),
and a request reads the newest `limit` events with one Query. Older items than a request reads are
never used; they expire through the table's TTL (`expires_at`, `RECENT_DAYS` after arrival).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tailor.storage import keys
from tailor.storage.ports import StateTablePort

if TYPE_CHECKING:  # privacy.erase calls erase_user; importing it here would be a cycle
    from tailor.privacy.erase import UserErasure

# What a request reads: the model pools at most its history length (50 by default) items.
RECENT_LIMIT = 50
# A batch touching more customers, or holding more events, than this is a history import: the
# next training folds it in (as for live profiles, writing it item by item would make a bulk
# upload slow, and its events are mostly older than what a request reads anyway).
RECENT_MAX_USERS = 2_000
RECENT_MAX_EVENTS = 5_000
RECENT_DAYS = 30
DISLIKED_RATING = 2.5  # a rating at or below this is not a taste to cite in a reason


@dataclass(frozen=True)
class RecentEvent:
    item_id: str
    timestamp_ms: int
    event_type: str = "interaction"
    value: float | None = None

    @property
    def disliked(self) -> bool:
        return self.event_type == "rating" and self.value is not None and self.value <= DISLIKED_RATING


class RecentEvents:
    """The store of customers' recent events (the state table's `RECENT#` partitions)."""

    def __init__(self, state: StateTablePort, *, days: int = RECENT_DAYS):
        self.state = state
        self.days = days

    def record(self, dataset: str, columns: dict[str, list]) -> None:
        """IngestService's `on_stored` hook: the newest `RECENT_LIMIT` events of each customer of
        a stored interactions batch (a larger batch's older events could never be read)."""
        if dataset != "interactions" or not columns.get("user_id"):
            return
        per_user: dict[str, list[tuple[int, str, str, float | None]]] = defaultdict(list)
        n = len(columns["user_id"])
        types = columns.get("event_type") or ["interaction"] * n
        values = columns.get("value") or [None] * n
        for user, item, moment, kind, value in zip(columns["user_id"], columns["item_id"], columns["timestamp"],
                                                   types, values):
            per_user[user].append((int(moment), item, kind or "interaction", value))
        if len(per_user) > RECENT_MAX_USERS or n > RECENT_MAX_EVENTS:
            return
        expires = int(time.time()) + self.days * 86_400
        self.state.put_many(
            {"pk": keys.recent_pk(user), "sk": keys.recent_sk(moment, item), "item_id": item, "ts": moment,
             "event_type": kind, **({"value": float(value)} if value is not None else {}), "expires_at": expires}
            for user, events in per_user.items()
            for moment, item, kind, value in sorted(events, reverse=True)[:RECENT_LIMIT])

    def latest(self, user_id: str, limit: int = RECENT_LIMIT) -> list[RecentEvent]:
        """The customer's newest events, newest first (one Query)."""
        return [RecentEvent(str(row["item_id"]), int(row["ts"]), str(row.get("event_type") or "interaction"),
                            None if row.get("value") is None else float(row["value"]))
                for row in self.state.query(keys.recent_pk(user_id), newest_first=True, limit=limit)]

    def erase_user(self, erasure: UserErasure) -> None:
        """Every recent event of the erased customer."""
        for row in self.state.query(keys.recent_pk(erasure.user_id)):
            self.state.delete(row["pk"], row["sk"])
            erasure.report["items"]["deleted"] += 1
