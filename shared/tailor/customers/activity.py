"""Per-customer activity from the interactions: event counts, first and last event, distinct items
and active days, counts per event type, ratings and other values, recency and frequency.

Definitions (what the numbers in a profile's ``activity`` mean):

- ``recency_days``: days from the last event to ``now_ms`` (0 if the event is in the future).
- ``frequency_per_month``: events per 30 days over the user's active span, where the span is
  last − first event but at least 30 days, so a burst of events on a single day counts as that
  many events in a month instead of being extrapolated (10 events in one day → 10.0).
- ratings: events with ``event_type == "rating"`` and a value → ``rating_count``, ``rating_mean``.
  Any other event with a value (purchases, weights) → ``monetary`` = value_count/total/mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Where each run of equal keys starts in a sorted array (per-user groups of sorted events)."""
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if len(sorted_keys) else np.zeros(0, int)


@dataclass
class Activity:
    events: np.ndarray            # (n,) int
    first_ms: np.ndarray          # (n,) int64, meaningless where events == 0
    last_ms: np.ndarray
    distinct_items: np.ndarray
    active_days: np.ndarray
    type_names: list[str]
    type_counts: np.ndarray       # (n, n_types)
    rating_count: np.ndarray
    rating_sum: np.ndarray
    value_count: np.ndarray
    value_sum: np.ndarray
    recency_days: np.ndarray      # float, NaN where no events
    frequency: np.ndarray         # events per 30 days


def _distinct_per_user(user: np.ndarray, key: np.ndarray, n: int) -> np.ndarray:
    """How many distinct keys (items, days) each user has."""
    if not len(user):
        return np.zeros(n, np.int64)
    width = np.int64(key.max() - key.min() + 1)
    pairs = np.unique(user * width + (key - key.min()))
    return np.bincount(pairs // width, minlength=n)


def compute_activity(n: int, user: np.ndarray, item: np.ndarray, ts: np.ndarray, types: np.ndarray,
                     type_names: list[str], value: np.ndarray, now_ms: int) -> Activity:
    events = np.bincount(user, minlength=n)
    first = np.zeros(n, np.int64)
    last = np.zeros(n, np.int64)
    if len(user):
        order = np.lexsort((ts, user))
        su, st = user[order], ts[order]
        starts = group_starts(su)
        ends = np.r_[starts[1:], len(su)] - 1
        first[su[starts]] = st[starts]
        last[su[starts]] = st[ends]
    distinct = _distinct_per_user(user, item, n)
    active_days = _distinct_per_user(user, ts // DAY_MS, n)
    n_types = max(len(type_names), 1)
    type_counts = np.bincount(user * n_types + types, minlength=n * n_types).reshape(n, n_types)
    has_value = ~np.isnan(value)
    is_rating = has_value & (types == type_names.index("rating")) if "rating" in type_names else np.zeros_like(has_value)
    is_other = has_value & ~is_rating
    rating_count = np.bincount(user[is_rating], minlength=n)
    rating_sum = np.bincount(user[is_rating], weights=value[is_rating], minlength=n)
    value_count = np.bincount(user[is_other], minlength=n)
    value_sum = np.bincount(user[is_other], weights=value[is_other], minlength=n)
    active = events > 0
    recency = np.full(n, np.nan)
    recency[active] = np.maximum(now_ms - last[active], 0) / DAY_MS
    span_days = np.maximum((last - first) / DAY_MS, 30.0)
    frequency = np.where(active, events * 30.0 / span_days, 0.0)
    return Activity(events, first, last, distinct, active_days, type_names, type_counts, rating_count,
                    rating_sum, value_count, value_sum, recency, frequency)
