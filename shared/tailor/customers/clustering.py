"""Clustering the active customers into segments: the feature blocks, k-means (k-means++ init,
restarts, seeded), the silhouette and Calinski–Harabasz scores, and the choice of k.

Features per active user are up to four blocks, each scaled to a total variance of 1 so no block
dominates by its width: the L2-normalised model user vector (users the model does not know get the
mean vector), standardised behaviour (log events, log recency, log frequency), the category shares
over the 30 most common categories, and what else the shop has (mean rating, log mean item price,
share of negative reviews; unknown values get the base's mean). k-means runs for each k in
``k_range`` capped at one segment per ``USERS_PER_SEGMENT`` (40) active customers; a k that leaves a
segment smaller than max(``MIN_SEGMENT_USERS``, ``MIN_SEGMENT_SHARE``) = max(15, 4% of the
customers) is not chosen (none left, or fewer than 80 active customers: one segment). Among the rest
k is chosen by the mean silhouette on a fixed, seeded sample of users (ties and near-ties go to the
smaller k); the Calinski–Harabasz index is reported beside it.

Speed: the k sweep runs on a sample of at most 5,000 users; the chosen k is then fitted on everyone.
With several BLAS threads on a busy machine the many small matrix products of k-means slow down
several-fold: one BLAS thread is best.
"""

from __future__ import annotations

import math

import numpy as np

from tailor.customers.activity import Activity
from tailor.customers.attributes import Derived
from tailor.customers.columns import rounded

SILHOUETTE_SAMPLE = 2000
SWEEP_SAMPLE = 5000
KMEANS_RESTARTS = 3
KMEANS_MAX_ITER = 100
# How many segments a shop can get: at most one per USERS_PER_SEGMENT active customers, and a k
# whose smallest segment holds fewer than max(MIN_SEGMENT_USERS, MIN_SEGMENT_SHARE of the
# customers) is not chosen. A shop of a few hundred customers gets a few segments.
USERS_PER_SEGMENT = 40
MIN_SEGMENT_USERS = 15
MIN_SEGMENT_SHARE = 0.04
# Segments scoring within this much of the best silhouette are as good: take the fewer segments.
SILHOUETTE_TOLERANCE = 0.005


def _kmeans_pp(x: np.ndarray, sq: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = len(x)
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[rng.integers(n)]
    closest = np.maximum(sq - 2 * x @ centres[0] + centres[0] @ centres[0], 0)
    for c in range(1, k):
        total = closest.sum()
        pick = rng.choice(n, p=closest / total) if total > 0 else rng.integers(n)
        centres[c] = x[pick]
        closest = np.minimum(closest, np.maximum(sq - 2 * x @ centres[c] + centres[c] @ centres[c], 0))
    return centres


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, restarts: int = KMEANS_RESTARTS,
           max_iter: int = KMEANS_MAX_ITER) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd's k-means with k-means++ seeding; the restart with the lowest inertia wins.
    Returns (labels, centres, inertia). An emptied cluster is re-seeded at the worst-served point."""
    sq = np.einsum("ij,ij->i", x, x)
    # stop when the centres move less than this (scikit-learn's rule: 1e-4 of the mean variance)
    tol = 1e-4 * float(x.var(axis=0).mean()) if len(x) > 1 else 0.0
    best = None
    for _ in range(restarts):
        centres = _kmeans_pp(x, sq, k, rng)
        labels = np.full(len(x), -1)
        for _ in range(max_iter):
            dist = sq[:, None] - 2 * x @ centres.T + np.einsum("ij,ij->i", centres, centres)[None, :]
            new = dist.argmin(axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            counts = np.bincount(labels, minlength=k)
            sums = np.zeros_like(centres)
            _add_rows(sums, labels, x, k)
            for empty in np.flatnonzero(counts == 0):
                far = int(dist[np.arange(len(x)), labels].argmax())
                sums[empty], counts[empty] = x[far], 1
                labels[far] = empty
            moved = centres
            centres = sums / counts[:, None]
            if float(((centres - moved) ** 2).sum()) <= tol:
                break
        dist = sq[:, None] - 2 * x @ centres.T + np.einsum("ij,ij->i", centres, centres)[None, :]
        labels = dist.argmin(axis=1)
        inertia = float(np.maximum(dist[np.arange(len(x)), labels], 0).sum())
        if best is None or inertia < best[2] - 1e-9:
            best = (labels, centres, inertia)
    assert best is not None, "kmeans needs at least one restart"
    return best


def _add_rows(sums: np.ndarray, labels: np.ndarray, x: np.ndarray, k: int) -> None:
    """sums[c] += the rows of x labelled c (sorted segments: far faster than np.add.at)."""
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=k)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    nonempty = counts > 0
    sums[nonempty] += np.add.reduceat(x[order], starts[nonempty], axis=0)


def silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette from a full pairwise distance matrix (points alone in a cluster score 0)."""
    k = int(labels.max()) + 1
    onehot = np.zeros((len(labels), k))
    onehot[np.arange(len(labels)), labels] = 1.0
    counts = onehot.sum(axis=0)
    sums = distances @ onehot
    own = counts[labels]
    a = sums[np.arange(len(labels)), labels] / np.maximum(own - 1, 1)
    mean_other = np.where(counts[None, :] > 0, sums / np.maximum(counts[None, :], 1), np.inf)
    mean_other[np.arange(len(labels)), labels] = np.inf
    b = mean_other.min(axis=1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(np.mean(s))


def calinski_harabasz(x: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> float:
    k, n = len(centres), len(x)
    if k < 2 or n <= k:
        return 0.0
    counts = np.bincount(labels, minlength=k)
    mean = x.mean(axis=0)
    between = float((counts * ((centres - mean) ** 2).sum(axis=1)).sum())
    within = float(((x - centres[labels]) ** 2).sum())
    return between / (k - 1) / max(within / (n - k), 1e-12)


def min_segment_size(n: int) -> int:
    return max(MIN_SEGMENT_USERS, math.ceil(MIN_SEGMENT_SHARE * n))


def choose_k(x: np.ndarray, k_range: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    n = len(x)
    k_hi = min(int(k_range[1]), n - 1, n // USERS_PER_SEGMENT)
    k_lo = min(int(k_range[0]), k_hi)
    name = "silhouette"
    smallest = min_segment_size(n)
    rule = (f"at most one segment per {USERS_PER_SEGMENT} active customers, each of at least {smallest} "
            f"(max({MIN_SEGMENT_USERS}, {MIN_SEGMENT_SHARE:.0%} of {n}))")
    if k_hi < 2:
        return np.zeros(n, dtype=int), {"name": name, "values": {}, "chosen_k": 1, "size_rule": rule,
                                        "note": f"{n} active customers: too few to split into segments "
                                                f"({rule})"}
    # The sweep over k runs on a seeded sample of users (all of them up to SWEEP_SAMPLE); the
    # chosen k is then fitted on everyone. The silhouette is scored on a sub-sample of the sweep.
    sweep = np.sort(rng.choice(n, size=min(n, SWEEP_SAMPLE), replace=False)) if n > SWEEP_SAMPLE else np.arange(n)
    xw = x[sweep]
    sample = np.sort(rng.choice(len(sweep), size=min(len(sweep), SILHOUETTE_SAMPLE), replace=False))
    xs = xw[sample]
    sq = np.einsum("ij,ij->i", xs, xs)
    distances = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * xs @ xs.T, 0))
    values, ch, fits, eligible = {}, {}, {}, {}
    for k in range(k_lo, k_hi + 1):
        labels, centres, _ = kmeans(xw, k, rng)
        fits[k] = labels
        sample_labels = labels[sample]
        present = np.unique(sample_labels)
        remap = np.searchsorted(present, sample_labels)
        values[k] = silhouette(distances, remap) if len(present) > 1 else 0.0
        ch[k] = calinski_harabasz(xw, labels, centres)
        sizes = np.bincount(labels, minlength=k)
        eligible[k] = bool(sizes.min() >= smallest * len(sweep) / n)
    criterion = {"name": name,
                 "definition": f"mean silhouette (Euclidean) of a seeded sample of {len(sample)} users; "
                               f"among the k whose segments are all large enough, the smallest k within "
                               f"{SILHOUETTE_TOLERANCE} of the best wins",
                 "size_rule": rule, "sample_size": int(len(sample)), "sweep_users": int(len(sweep)),
                 "values": {str(k): rounded(v) for k, v in values.items()},
                 "calinski_harabasz": {str(k): rounded(v, 2) for k, v in ch.items()},
                 "too_small": [k for k, ok in eligible.items() if not ok],
                 "k_range": [k_lo, k_hi]}
    candidates = {k: v for k, v in values.items() if eligible[k]}
    if not candidates:
        criterion.update(chosen_k=1, note=f"every k from {k_lo} to {k_hi} left a segment smaller than "
                                          f"{smallest} customers: one segment")
        return np.zeros(n, dtype=int), criterion
    best = max(candidates.values())
    chosen = min(k for k, v in candidates.items() if v >= best - SILHOUETTE_TOLERANCE)
    labels = fits[chosen] if len(sweep) == n else kmeans(x, chosen, rng)[0]
    criterion["chosen_k"] = int(chosen)
    return labels, criterion


# --------------------------------------------------------------------------- features


def _scaled_block(block: np.ndarray) -> np.ndarray:
    """Centre the block and scale it to a total variance of 1 (a constant block becomes zeros)."""
    block = block - block.mean(axis=0)
    total = float((block ** 2).sum(axis=1).mean())
    return block / math.sqrt(total) if total > 1e-12 else np.zeros_like(block)


def _standardise(column: np.ndarray) -> np.ndarray:
    std = column.std()
    return (column - column.mean()) / std if std > 1e-12 else np.zeros_like(column)


def features(active: np.ndarray, act: Activity, shares: np.ndarray | None,
             vectors: np.ndarray | None, vector_row: np.ndarray,
             derived: Derived | None = None) -> tuple[np.ndarray, list[str]]:
    blocks, used = [], []
    if vectors is not None and (vector_row[active] >= 0).any():
        v = np.asarray(vectors, dtype=np.float64)
        v = v[:, v.std(axis=0) > 1e-9]  # a constant column (a bias slot) carries no taste
        if v.shape[1]:
            v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
            rows = vector_row[active]
            known = rows >= 0
            block = np.empty((len(rows), v.shape[1]))
            block[known] = v[rows[known]]
            block[~known] = v[rows[known]].mean(axis=0)
            blocks.append(_scaled_block(block))
            used.append("embedding")
    behaviour = np.column_stack([_standardise(np.log1p(act.events[active].astype(float))),
                                 _standardise(np.log1p(act.recency_days[active])),
                                 _standardise(np.log1p(act.frequency[active]))])
    blocks.append(_scaled_block(behaviour))
    used.append("behaviour")
    if shares is not None and shares.shape[1]:
        blocks.append(_scaled_block(shares[active]))
        used.append("category_shares")
    if derived is not None:
        columns = []
        for values, transform in ((derived.rating_mean, None), (derived.price_mean, np.log1p),
                                  (derived.negative_share, None)):
            v = values[active]
            known = np.isfinite(v)
            if known.sum() < 2:
                continue
            v = np.where(known, v, v[known].mean())  # unknown: the base's mean
            v = transform(v) if transform is not None else v
            if v.std() > 1e-9:
                columns.append(_standardise(v))
        if columns:
            blocks.append(_scaled_block(np.column_stack(columns)))
            used.append("ratings_prices_sentiment")
    return np.hstack(blocks), used
