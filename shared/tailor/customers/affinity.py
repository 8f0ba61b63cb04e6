"""Each customer's taste in item categories: the items' categories, per-customer category weights,
the top categories with their share and affinity, and the category shares clustering uses.

Category weights: every event spreads a weight of 1 equally over its item's categories (an item in
"Action|Sci-Fi" gives 0.5 to each), so a user's category shares sum to 1 over categorised events.
``share`` is the user's share of a category; ``affinity`` is a lift, smoothed towards 1 for users
with few events: ``((w_uc + A·g_c) / (W_u + A)) / g_c`` where w_uc is the user's weight in the
category, W_u the user's total weight, g_c the category's share of all events and A = 5
pseudo-events. Above 1 means the user favours the category more than the base does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tailor.customers.activity import group_starts
from tailor.customers.columns import index_in, strings

TOP_CATEGORIES = 5
AFFINITY_PSEUDO_EVENTS = 5.0
FEATURE_CATEGORIES = 30


def _item_categories(items) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """(item ids, category names, indptr, indices): each item's categories, case-insensitively
    de-duplicated; a category is shown with the spelling met first."""
    if items is None or items.num_rows == 0 or "item_id" not in items.column_names:
        return np.zeros(0, str), [], np.zeros(1, np.int64), np.zeros(0, np.int64)
    ids = strings(items.column("item_id"))
    raw = strings(items.column("categories")) if "categories" in items.column_names else np.full(len(ids), "")
    names: list[str] = []
    index: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    cache: dict[str, list[int]] = {}
    for text in raw.tolist():
        rows = cache.get(text)
        if rows is None:
            rows = []
            for part in text.split("|"):
                name = " ".join(part.split())
                if not name:
                    continue
                key = name.casefold()
                if key not in index:
                    index[key] = len(names)
                    names.append(name)
                if index[key] not in rows:
                    rows.append(index[key])
            cache[text] = rows
        indices.extend(rows)
        indptr.append(len(indices))
    return ids, names, np.asarray(indptr, np.int64), np.asarray(indices, np.int64)


def _category_weights(n_users: int, user: np.ndarray, catalog_row: np.ndarray, indptr: np.ndarray,
                      indices: np.ndarray, n_cats: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse (user, category, weight) triples, each event's weight 1 spread over its categories."""
    known = catalog_row >= 0
    if not n_cats or not known.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    # count each (user, item) pair once, then expand the pair to its item's categories
    key = user[known] * np.int64(len(indptr) - 1) + catalog_row[known]
    pairs, counts = np.unique(key, return_counts=True)
    pair_user, pair_item = pairs // (len(indptr) - 1), pairs % (len(indptr) - 1)
    lengths = np.diff(indptr)[pair_item]
    keep = lengths > 0
    pair_user, pair_item, counts, lengths = pair_user[keep], pair_item[keep], counts[keep], lengths[keep]
    if not len(pair_user):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    rep_user = np.repeat(pair_user, lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    rep_cat = indices[np.repeat(indptr[pair_item], lengths) + offsets]
    rep_weight = np.repeat(counts / lengths, lengths)
    cell, inverse = np.unique(rep_user * np.int64(n_cats) + rep_cat, return_inverse=True)
    weight = np.bincount(inverse.ravel(), weights=rep_weight)
    return cell // n_cats, cell % n_cats, weight


@dataclass
class Categories:
    names: list[str]
    user: np.ndarray              # sparse (user, category, weight) triples
    category: np.ndarray
    weight: np.ndarray
    base_share: np.ndarray        # (n_cats,) each category's share of all weight
    user_weight: np.ndarray       # (n_users,) total weight per user
    top: list[list[dict]]         # per user: top categories with share and affinity
    feature_shares: np.ndarray | None  # (n_users, <= FEATURE_CATEGORIES) for clustering


def compute_categories(n: int, user: np.ndarray, item_code: np.ndarray, item_ids: np.ndarray, items) -> Categories:
    import pyarrow as pa

    cat_item_ids, names, indptr, indices = _item_categories(items)
    n_cats = len(names)
    catalog_row = np.full(len(user), -1)
    if len(user) and n_cats:
        known = item_code >= 0
        catalog_row[known] = index_in(pa.array(item_ids, type=pa.string()), cat_item_ids)[item_code[known]]
    cu, cc, cw = _category_weights(n, user, catalog_row, indptr, indices, n_cats)
    total = np.bincount(cc, weights=cw, minlength=n_cats) if n_cats else np.zeros(0)
    base_share = total / total.sum() if total.sum() > 0 else np.zeros(n_cats)
    user_weight = np.bincount(cu, weights=cw, minlength=n)

    top: list[list[dict]] = [[] for _ in range(n)]
    if len(cu):
        order = np.lexsort((cc, -cw, cu))  # per user by weight, ties in catalog order
        su, sc, sw = cu[order], cc[order], cw[order]
        starts = group_starts(su)
        rank = np.arange(len(su)) - np.repeat(starts, np.diff(np.r_[starts, len(su)]))
        keep = rank < TOP_CATEGORIES
        su, sc, sw = su[keep], sc[keep], sw[keep]
        share = sw / user_weight[su]
        affinity = ((sw + AFFINITY_PSEUDO_EVENTS * base_share[sc]) /
                    (user_weight[su] + AFFINITY_PSEUDO_EVENTS)) / base_share[sc]
        for u, c, s, a in zip(su.tolist(), sc.tolist(), np.round(share, 4).tolist(), np.round(affinity, 4).tolist()):
            top[u].append({"category": names[c], "share": s, "affinity": a})

    shares = None
    feature_cats = np.argsort(-total, kind="stable")[:FEATURE_CATEGORIES] if n_cats else np.zeros(0, int)
    if len(feature_cats) and len(cu):
        slot = np.full(n_cats, -1)
        slot[feature_cats] = np.arange(len(feature_cats))
        shares = np.zeros((n, len(feature_cats)))
        sel = slot[cc] >= 0
        np.add.at(shares, (cu[sel], slot[cc[sel]]), cw[sel])
        no_cats = user_weight <= 0
        shares[~no_cats] /= user_weight[~no_cats, None]
        shares[no_cats] = base_share[feature_cats]  # nothing known: assume the base's taste
    return Categories(names, cu, cc, cw, base_share, user_weight, top, shares)
