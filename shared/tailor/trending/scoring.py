"""Which items are trending, from counts per time bucket: pure functions, shared by serving (the
counters ingest keeps) and training (the same score measured on the validation split).

A window ("1h", "3h", "1d") is `BUCKETS_PER_WINDOW` buckets; the newest is the current, partial
bucket. An item's `current` count is its interactions in the window; its `baseline` is the mean
count per window over the `BASELINE_WINDOWS` windows before. The score is the smoothed ratio
`(current + 1) / (baseline + 1)`: the +1 keeps an item going from 0 to 3 from outranking one going
from 40 to 200. An item is a trend only when its rate rose (current > baseline) on at least
`MIN_TREND_COUNT` interactions in the window, so one click is not a trend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tailor.core.errors import Invalid

BUCKETS_PER_WINDOW = 6
BASELINE_WINDOWS = 3
BUCKETS_READ = BUCKETS_PER_WINDOW * (1 + BASELINE_WINDOWS)
MIN_TREND_COUNT = 3


@dataclass(frozen=True)
class Window:
    name: str
    bucket_seconds: int
    words: str  # how a reason names it: "in the last hour"

    @property
    def span_seconds(self) -> int:
        return self.bucket_seconds * BUCKETS_PER_WINDOW

    @property
    def read_seconds(self) -> int:
        """How far back a score reads: the window and its baseline."""
        return self.bucket_seconds * BUCKETS_READ


WINDOWS: dict[str, Window] = {w.name: w for w in (Window("1h", 600, "last hour"),
                                                  Window("3h", 1_800, "last 3 hours"),
                                                  Window("1d", 14_400, "last day"))}
DEFAULT_WINDOW = "1h"


def window_named(name: str) -> Window:
    window = WINDOWS.get(name)
    if window is None:
        raise Invalid(f"window must be one of {', '.join(WINDOWS)}, got {name!r}",
                      details={"window": name, "allowed": list(WINDOWS)})
    return window


def bucket_start(moment_s: float, window: Window) -> int:
    """Start (epoch seconds) of the bucket holding `moment_s`."""
    return int(moment_s // window.bucket_seconds) * window.bucket_seconds


def buckets_read(now_s: float, window: Window) -> list[int]:
    """The `BUCKETS_READ` bucket starts a score at `now_s` reads, oldest first (the last is current)."""
    newest = bucket_start(now_s, window)
    return [newest - window.bucket_seconds * back for back in range(BUCKETS_READ - 1, -1, -1)]


def trend_score(current: float, baseline: float) -> float:
    return (current + 1.0) / (baseline + 1.0)


@dataclass(frozen=True)
class Trend:
    item_id: str
    current: int  # interactions in the window
    baseline: float  # mean interactions per window over the windows before

    @property
    def score(self) -> float:
        return trend_score(self.current, self.baseline)

    def reason(self, window: Window) -> str:
        if self.baseline <= 0:
            return f"trending: {self.current} interactions in the {window.words}, none before"
        ratio = self.current / self.baseline
        shown = f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.1f}".removesuffix(".0")
        return f"trending: {shown}x more interactions in the {window.words}"


def trends(counts: Mapping[str, Sequence[int]], min_count: int = MIN_TREND_COUNT,
           allowed: Iterable[str] | None = None) -> list[Trend]:
    """Every trend, best first (score, then current count, then id for a stable order).

    `counts[item]` are the item's counts per bucket, oldest first, ending with the current bucket;
    a shorter list means zeros before it (buckets nobody interacted in are not stored)."""
    keep = None if allowed is None else set(allowed)
    current = {item: int(sum(per_bucket[-BUCKETS_PER_WINDOW:])) for item, per_bucket in counts.items()
               if keep is None or item in keep}
    before = {item: int(sum(counts[item][-BUCKETS_READ:-BUCKETS_PER_WINDOW])) for item in current}
    return trends_from_totals(current, before, min_count)


def trends_from_totals(current: Mapping[str, int], before: Mapping[str, int],
                       min_count: int = MIN_TREND_COUNT) -> list[Trend]:
    """Every trend, best first, from each item's count in the window (`current`) and in the
    `BASELINE_WINDOWS` windows before it together (`before`; a missing item had none)."""
    found = []
    for item, now in current.items():
        baseline = before.get(item, 0) / BASELINE_WINDOWS
        if now >= min_count and now > baseline:
            found.append(Trend(item, int(now), baseline))
    found.sort(key=lambda t: (-t.score, -t.current, t.item_id))
    return found
