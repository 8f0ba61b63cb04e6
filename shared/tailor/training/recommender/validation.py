"""Validation metrics on the held-out split: T1 ranking of any user/item vectors, the popularity
baseline, and A1 per audience rule (which one is served)."""

from __future__ import annotations

import numpy as np

from tailor.recommend import evaluation
from tailor.recommend.scorer import (
    AUDIENCE_RULES,
    Recommender,
)
from tailor.training.recommender.data import Encoded, csr


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
