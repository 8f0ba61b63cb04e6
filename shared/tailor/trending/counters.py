"""Interactions per item per time bucket in the state table: written by ingest as events are
stored, read by RecommendFunction for `GET /v1/trending` (scored in `trending.scoring`).

One item per (window, bucket, item) under `TRENDING#<window>#<bucket start>` (keys in
`storage/keys.py`) holding a count `n`: a batch is aggregated in memory and each counter gets one
ADD, so concurrent ingests never conflict (no read-modify-write). Counters carry no customer id,
so a privacy erase has nothing to remove here; they expire through the table's TTL (`expires_at`)
a window after the last score that can read them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable

from tailor.storage import keys
from tailor.storage.ports import StateTablePort
from tailor.trending.scoring import WINDOWS, Trend, Window, bucket_start, buckets_read, trends, window_named

# A batch holding more events than this is a history import: its events are mostly too old to
# count anyway, and writing the rest counter by counter would make a bulk upload slow.
TRENDING_MAX_EVENTS = 5_000
# Events stamped a little ahead of our clock (a client's clock drifts) still count; further ahead
# is a wrong timestamp that would otherwise trend until its time comes.
FUTURE_SLACK_SECONDS = 300
# A website may ask on every page view: one answer per window per container for this long.
CACHE_SECONDS = 30.0


class Trending:
    """The trending counters (the state table's `TRENDING#` partitions)."""

    def __init__(self, state: StateTablePort, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, cache_seconds: float = CACHE_SECONDS):
        self.state = state
        self.clock = clock
        self.monotonic = monotonic
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[Trend]]] = {}

    # ---- write side (IngestService's on_stored hook) ------------------------------------------
    def record(self, dataset: str, columns: dict[str, list]) -> None:
        """Count a stored interactions batch by the events' own time (a late batch lands in the
        buckets its events happened in); events too old for any score to read, or from the
        future, are skipped."""
        if dataset != "interactions" or not columns.get("item_id"):
            return
        if len(columns["item_id"]) > TRENDING_MAX_EVENTS:
            return
        now = self.clock()
        oldest = {w.name: buckets_read(now, w)[0] for w in WINDOWS.values()}
        counts: Counter[tuple[str, int, str]] = Counter()
        for item, moment_ms in zip(columns["item_id"], columns["timestamp"]):
            moment = int(moment_ms) / 1000.0
            if moment > now + FUTURE_SLACK_SECONDS:
                continue
            for window in WINDOWS.values():
                if moment >= oldest[window.name]:
                    counts[(window.name, bucket_start(moment, window), str(item))] += 1
        self.state.update_many([
            {"pk": keys.trending_pk(name, start), "sk": keys.trending_sk(item), "add": {"n": n},
             "set": {"expires_at": self._expires_at(WINDOWS[name], start)}}
            for (name, start, item), n in counts.items()])

    @staticmethod
    def _expires_at(window: Window, start: int) -> int:
        # The last score reading this bucket runs one read span after its start; a window more
        # keeps a counter alive past clock skew between containers.
        return start + window.read_seconds + window.span_seconds

    # ---- read side ----------------------------------------------------------------------------
    def counts(self, window: Window, now: float) -> dict[str, list[int]]:
        """Per item its counts per bucket, oldest first (one Query per bucket)."""
        starts = buckets_read(now, window)
        counts: dict[str, list[int]] = {}
        for position, start in enumerate(starts):
            for row in self.state.query(keys.trending_pk(window.name, start)):
                counts.setdefault(str(row["sk"]), [0] * len(starts))[position] = int(row.get("n") or 0)
        return counts

    def all_trends(self, window_name: str, now: float | None = None) -> list[Trend]:
        """Every trend of the window, best first; cached per window unless `now` is given."""
        window = window_named(window_name)
        if now is not None:
            return trends(self.counts(window, now))
        cached = self._cache.get(window.name)
        if cached is not None and self.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        found = trends(self.counts(window, self.clock()))
        self._cache[window.name] = (self.monotonic(), found)
        return found

    def top(self, window_name: str, k: int, allowed: Iterable[str] | None = None,
            now: float | None = None) -> list[Trend]:
        """The best `k` trends of the window, only among `allowed` items when given."""
        found = self.all_trends(window_name, now)
        if allowed is not None:
            keep = set(allowed)
            found = [t for t in found if t.item_id in keep]
        return found[:k]
