"""Offline evaluation for the recommender: the splits and metrics of protocols T1, R1 and A1.

NumPy only, so the training job (its validation report), the benchmark (``bench.recommender``)
and the tests all compute a metric with the same code. See ``../shared/protocols.md``:

- **T1** (top-K): per user, the newest ``ceil(fraction * n)`` interactions by (timestamp, item)
  are held out (:func:`temporal_holdout`); every item the user did not interact with in the
  kept part is ranked; Precision@K, Recall@K = hits / min(|held out|, K), NDCG@K with binary
  relevance and the ideal DCG over min(|held out|, K) hits, and catalog coverage
  (:func:`ranking_metrics`).
- **R1** (ratings): RMSE and MAE of predictions clipped to the rating scale (:func:`rmse`, :func:`mae`).
- **A1** (audiences): for each item with enough held-out interactions, rank the users who did not
  interact with it before; recall of the top ``k`` users (:func:`audience_recall`).

Users and items are integer indices here (``0 .. n - 1``); the callers own the id maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def temporal_holdout(users: np.ndarray, items: np.ndarray, timestamps: np.ndarray,
                     fraction: float = 0.2) -> np.ndarray:
    """Boolean mask of the held-out rows: per user the newest ``ceil(fraction * n_user)``.

    Rows are ordered within a user by (timestamp, item); ties in time are common (a user rates
    many films in one sitting), and breaking them by item makes the split reproducible.
    ``users``/``items`` may be any sortable values (indices or id strings).
    """
    users, items, timestamps = np.asarray(users), np.asarray(items), np.asarray(timestamps)
    if not (len(users) == len(items) == len(timestamps)):
        raise ValueError("users, items and timestamps must have the same length")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be within (0, 1), got {fraction}")
    held_out = np.zeros(len(users), dtype=bool)
    if len(users) == 0:
        return held_out
    order = np.lexsort((items, timestamps, users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    # The small epsilon keeps float products such as 0.2 * 15 = 3.0000000000000004 at 3.
    n_held = np.ceil(counts * fraction - 1e-9).astype(np.int64)
    position_from_end = np.arange(len(order)) - np.repeat(starts + counts, counts)  # -n .. -1
    held_out[order[position_from_end >= -np.repeat(n_held, counts)]] = True
    return held_out


def _dcg_discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def ranking_metrics(top_items: np.ndarray, relevant: Sequence[np.ndarray], n_items: int,
                    k: int | None = None) -> dict:
    """T1 metrics of ranked lists against held-out items, averaged over users with held-out items.

    ``top_items[u]`` is user ``u``'s ranking (best first; ``-1`` pads a list shorter than K);
    ``relevant[u]`` holds the user's held-out item indices. Users with no held-out items are
    skipped. Coverage is the share of the ``n_items`` catalog in any evaluated user's list.
    """
    top_items = np.asarray(top_items)
    if top_items.ndim != 2 or top_items.shape[0] != len(relevant):
        raise ValueError("top_items must be (n_users, K) with one row per entry of relevant")
    k = top_items.shape[1] if k is None else k
    if k < 1 or k > top_items.shape[1]:
        raise ValueError(f"k must be within 1..{top_items.shape[1]}, got {k}")
    top_items = top_items[:, :k]
    n_relevant = np.array([len(set(np.asarray(r).tolist())) for r in relevant], dtype=np.int64)
    users = np.flatnonzero(n_relevant > 0)
    if len(users) == 0:
        return {"users": 0, "precision": 0.0, "recall": 0.0, "ndcg": 0.0, "coverage": 0.0}
    # One membership test for every (user, ranked item) pair, by encoding pairs as integers.
    relevant_keys = np.concatenate([u * n_items + np.asarray(relevant[int(u)], dtype=np.int64) for u in users])
    ranked = top_items[users].astype(np.int64)
    hits = (ranked >= 0) & np.isin(users[:, None] * n_items + ranked, relevant_keys)
    ideal_hits = np.minimum(n_relevant[users], k)
    discounts = _dcg_discounts(k)
    ideal_dcg = np.cumsum(discounts)[ideal_hits - 1]
    listed = np.unique(ranked[ranked >= 0])
    return {
        "users": int(len(users)),
        "precision": float(np.mean(hits.sum(axis=1) / k)),
        "recall": float(np.mean(hits.sum(axis=1) / ideal_hits)),
        "ndcg": float(np.mean((hits * discounts).sum(axis=1) / ideal_dcg)),
        "coverage": float(len(listed) / n_items) if n_items else 0.0,
    }


def top_k_unseen(scores: np.ndarray, seen_indptr: np.ndarray, seen_indices: np.ndarray, k: int,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """Top-``k`` item indices per row of a dense ``(n, n_items)`` score matrix, skipping seen items.

    ``seen_*`` is CSR (user ``u`` has seen ``seen_indices[seen_indptr[u]:seen_indptr[u + 1]]``);
    score row ``r`` belongs to user ``rows[r]`` (default: row ``r`` is user ``r``). ``-1`` pads
    rows with fewer than ``k`` candidates.
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    rows = np.arange(scores.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    counts = seen_indptr[rows + 1] - seen_indptr[rows]
    if counts.sum():
        seen = np.concatenate([seen_indices[seen_indptr[r]: seen_indptr[r + 1]] for r in rows])
        scores[np.repeat(np.arange(len(rows)), counts), seen] = -np.inf
    k_eff = min(k, scores.shape[1])
    part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    top[~np.isfinite(np.take_along_axis(scores, top, axis=1))] = -1
    if k_eff < k:
        top = np.pad(top, ((0, 0), (0, k - k_eff)), constant_values=-1)
    return top


def audience_recall(scores: np.ndarray, train_users: np.ndarray, train_items: np.ndarray,
                    test_users: np.ndarray, test_items: np.ndarray, *, k: int = 50,
                    min_test_users: int = 10) -> dict:
    """A1: mean recall@k of the top-``k`` users per item, over items with enough held-out engagers.

    ``scores`` is ``(n_users, n_items)``: higher means more likely to engage. For item ``i`` the
    candidates are users who did not interact with ``i`` in train; recall is
    (held-out engagers in the top k) / min(held-out engagers, k).
    """
    scores = np.asarray(scores)
    n_users, n_items = scores.shape
    test_pairs = np.unique(np.asarray(test_users, np.int64) * n_items + np.asarray(test_items, np.int64))
    train_pairs = np.unique(np.asarray(train_users, np.int64) * n_items + np.asarray(train_items, np.int64))
    test_pairs = test_pairs[~np.isin(test_pairs, train_pairs)]  # engagers must be new to the item
    per_item = np.bincount(test_pairs % n_items, minlength=n_items)
    items = np.flatnonzero(per_item >= min_test_users)
    if len(items) == 0:
        return {"items": 0, "recall": 0.0}
    candidate = np.array(scores[:, items], dtype=np.float64, copy=True)
    column = np.full(n_items, -1)
    column[items] = np.arange(len(items))
    known = train_pairs[column[train_pairs % n_items] >= 0]
    candidate[known // n_items, column[known % n_items]] = -np.inf
    k_eff = min(k, n_users)
    top_users = np.argpartition(-candidate, k_eff - 1, axis=0)[:k_eff]  # (k, n_selected)
    chosen = np.isfinite(np.take_along_axis(candidate, top_users, axis=0))
    keys = top_users.astype(np.int64) * n_items + items[None, :]
    hits = (np.isin(keys, test_pairs) & chosen).sum(axis=0)
    recall = hits / np.minimum(per_item[items], k)
    return {"items": int(len(items)), "recall": float(recall.mean())}


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    predicted, actual = np.asarray(predicted, np.float64), np.asarray(actual, np.float64)
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    predicted, actual = np.asarray(predicted, np.float64), np.asarray(actual, np.float64)
    return float(np.mean(np.abs(predicted - actual)))


def near_duplicate_families(matrix: np.ndarray, min_users: int = 3, min_jaccard: float = 0.8) -> np.ndarray:
    """Product families found from behaviour: items whose sets of customers overlap by at least
    ``min_jaccard`` (with ``min_users`` customers in common) are linked, and linked items form one
    family (union-find). ``matrix`` is users × items, 0/1. Returns each item's family index
    (``0 .. n_families - 1``, in order of first item)."""
    x = np.asarray(matrix, dtype=np.float64)
    counts = x.sum(axis=0)
    common = x.T @ x
    union = counts[:, None] + counts[None, :] - common
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, common / union, 0.0)
    parent = np.arange(x.shape[1])

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(*np.nonzero(np.triu((jaccard >= min_jaccard) & (common >= min_users), k=1))):
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(x.shape[1])])
    return np.unique(roots, return_inverse=True)[1]


def family_metrics(top_items: np.ndarray, relevant: Sequence[np.ndarray], seen_indptr: np.ndarray,
                   seen_indices: np.ndarray, family_of: np.ndarray, k: int = 10) -> dict:
    """T1 metrics per product family: a ranking's variants of one family count once, and a family
    the user already has in training is neither a hit nor a new find (it is what made a
    variant-heavy shop's item-level figure read 0.93). ``top_items`` should hold more than ``k``
    items per user, so that ``k`` distinct families remain."""
    n_families = int(family_of.max()) + 1 if len(family_of) else 0
    lists = np.full((len(relevant), k), -1, dtype=np.int64)
    family_relevant = []
    for u in range(len(relevant)):
        had = set(family_of[seen_indices[seen_indptr[u]:seen_indptr[u + 1]]].tolist())
        ranked: list[int] = []
        for item in top_items[u]:
            if item >= 0:
                family = int(family_of[item])
                if family not in had and family not in ranked:
                    ranked.append(family)
                    if len(ranked) == k:
                        break
        lists[u, :len(ranked)] = ranked
        family_relevant.append(np.array(sorted(set(family_of[np.asarray(relevant[u], dtype=np.int64)].tolist()) - had),
                                        dtype=np.int64))
    return ranking_metrics(lists, family_relevant, n_families, k)
