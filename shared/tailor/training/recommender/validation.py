"""Validation metrics on the held-out split: T1 ranking of any user/item vectors, the popularity
baseline, A1 per audience rule (which one is served), and trending against popularity for
customers new to the model (which one they are served)."""

from __future__ import annotations

import numpy as np

from tailor.recommend import evaluation
from tailor.recommend.scorer import (
    AUDIENCE_RULES,
    Recommender,
)
from tailor.training.recommender.data import Encoded, csr
from tailor.trending.scoring import BUCKETS_PER_WINDOW, BUCKETS_READ, MIN_TREND_COUNT, WINDOWS, trends_from_totals


def ranking_on(user_vectors: np.ndarray, item_vectors: np.ndarray, seen: tuple[np.ndarray, np.ndarray],
                held_users: np.ndarray, held_items: np.ndarray, max_users: int, seed: int, k: int = 10,
                chunk: int = 512) -> dict:
    """T1 metrics of ``user_vectors @ item_vectors.T`` (seen items excluded) on held-out (user, item)
    indices; at most ``max_users`` users (a seeded sample) keep validation cheap on big data."""
    users = np.unique(held_users)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    top = np.concatenate([
        evaluation.top_k_unseen(user_vectors[batch] @ item_vectors.T, *seen, k, rows=batch)
        for batch in np.array_split(users, max(1, -(-len(users) // chunk)))])
    position = {user: row for row, user in enumerate(users.tolist())}
    relevant: list[list[int]] = [[] for _ in users]
    for user, item in zip(held_users.tolist(), held_items.tolist()):
        if user in position:
            relevant[position[user]].append(item)
    return evaluation.ranking_metrics(top, [np.array(r, dtype=np.int64) for r in relevant], len(item_vectors))


def popularity_on(data: Encoded, held_users: np.ndarray, held_items: np.ndarray, max_users: int, seed: int) -> dict:
    """The popularity baseline as a model: every user vector is 1, every item vector its count."""
    counts = np.bincount(data.items, minlength=len(data.item_ids)).astype(np.float32)[:, None]
    return ranking_on(np.ones((len(data.user_ids), 1), np.float32), counts,
                       csr(data.users, data.items, len(data.user_ids)), held_users, held_items, max_users, seed)


def choose_audience_rule(scorer: Recommender, fit: Encoded, held_users: np.ndarray, held_items: np.ndarray,
                          seed: int, min_test_users: int = 10, max_cells: int = 20_000_000) -> tuple[str, dict]:
    """A1 on the validation split for each audience rule; the best rule is served.

    Only items with at least ``min_test_users`` held-out engagers count (as in A1); on big data a
    seeded sample of them keeps the users × items score matrix under ``max_cells``.
    """
    per_item = np.bincount(held_items, minlength=scorer.n_items)
    items = np.flatnonzero(per_item >= min_test_users)
    if len(items) == 0:
        return "activity", {}  # nothing to measure: the rule that models P(engage) is the default
    limit = max(50, max_cells // max(len(scorer.user_ids), 1))
    if len(items) > limit:
        items = np.sort(np.random.default_rng(seed).choice(items, limit, replace=False))
    column = np.full(scorer.n_items, -1)
    column[items] = np.arange(len(items))
    in_train, in_held = column[fit.items] >= 0, column[held_items] >= 0
    results = {rule: evaluation.audience_recall(
        scorer.audience_matrix(items, rule), fit.users[in_train], column[fit.items[in_train]],
        held_users[in_held], column[held_items[in_held]], min_test_users=min_test_users)
        for rule in AUDIENCE_RULES}
    return max(AUDIENCE_RULES, key=lambda rule: results[rule]["recall"]), results


def choose_cold_start(fit: Encoded, held_users: np.ndarray, held_items: np.ndarray, held_times: np.ndarray,
                      max_users: int, seed: int, k: int = 10) -> dict:
    """HR@k of what a customer new to the model would be shown, trending or popular, on the
    validation split; trending is served to such customers only when it wins.

    Each held-out user stands for a new customer arriving at their first held-out event: the
    trending list is scored (`tailor.trending.scoring`) from the training events before that moment,
    as the live counters would have it, and filled up with popular items as serving does; the
    popular list is the training popularity serving uses. A hit is any of the user's held-out items
    in the list. Timestamps are epoch seconds (as `job.load_training_data` gives them).
    """
    counts = np.bincount(fit.items, minlength=len(fit.item_ids))
    popular = np.argsort(-counts, kind="stable")[:k]
    users, first = _first_held(held_users, held_times)
    if len(users) > max_users:
        chosen = np.sort(np.random.default_rng(seed).choice(len(users), max_users, replace=False))
        users, first = users[chosen], first[chosen]
    relevant: dict[int, set[int]] = {int(u): set() for u in users.tolist()}
    for user, item in zip(held_users.tolist(), held_items.tolist()):
        if user in relevant:
            relevant[user].add(int(item))
    popular_hr = _hit_rate([popular.tolist()] * len(users), users, relevant)
    order = np.argsort(fit.timestamps, kind="stable")
    times, items = fit.timestamps[order], fit.items[order]
    by_window = {}
    for name, window in WINDOWS.items():
        lists = [_trending_list(times, items, float(moment), window.bucket_seconds, popular, k)
                 for moment in first.tolist()]
        by_window[name] = _hit_rate(lists, users, relevant)
    best = max(WINDOWS, key=lambda name: by_window[name])  # ties: the shortest window
    wins = by_window[best] > popular_hr
    return {"strategy": "trending" if wins else "popular", "window": best,
            "trending_hr10": round(by_window[best], 6), "popular_hr10": round(popular_hr, 6),
            "trending_hr10_by_window": {name: round(hr, 6) for name, hr in by_window.items()},
            "users": int(len(users))}


def _first_held(held_users: np.ndarray, held_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each held-out user and the time of their first held-out event."""
    order = np.lexsort((held_times, held_users))
    users, times = held_users[order], held_times[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.zeros(0, np.int64)
    return users[starts], times[starts]


def _trending_list(times: np.ndarray, items: np.ndarray, moment: float, bucket: int, popular: np.ndarray,
                   k: int) -> list[int]:
    """The top-k trends at `moment` from events sorted by time, filled up with popular items."""
    newest = int(moment // bucket) * bucket
    window_start = newest - bucket * (BUCKETS_PER_WINDOW - 1)
    read_start = newest - bucket * (BUCKETS_READ - 1)
    lo, mid, hi = np.searchsorted(times, [read_start, window_start, moment], side="left")
    in_window, window_counts = np.unique(items[mid:hi], return_counts=True)
    candidates = in_window[window_counts >= MIN_TREND_COUNT]  # the rest cannot trend: skip them early
    if not len(candidates):
        return popular.tolist()
    before_items, before_counts = np.unique(items[lo:mid], return_counts=True)
    before = dict(zip(before_items.tolist(), before_counts.tolist()))
    current = dict(zip(in_window.tolist(), window_counts.tolist()))
    found = [int(t.item_id) for t in trends_from_totals({str(i): current[i] for i in candidates.tolist()},
                                                        {str(i): before.get(i, 0) for i in candidates.tolist()})[:k]]
    shown = set(found)
    return found + [int(i) for i in popular.tolist() if i not in shown][: k - len(found)]


def _hit_rate(lists: list[list[int]], users: np.ndarray, relevant: dict[int, set]) -> float:
    if not len(users):
        return 0.0
    return float(np.mean([bool(relevant[int(u)] & set(shown)) for u, shown in zip(users.tolist(), lists)]))
