"""Customer profiles and segments from stored datasets (NumPy and pyarrow only: runs in a zip Lambda).

`build_profiles` turns the interactions, items and users tables (as `datasets.read_dataset`
returns them) and, when a recommender model exists, its learned user vectors into:

- one **profile** per user (everyone in interactions or users): activity, top categories with an
  affinity score, declared attributes and the user's segment;
- **segments**: k-means clusters of the users with activity, each with a name, a plain
  description of what sets it apart from the whole base, and statistics. Users who only appear in
  the users table (attributes, no events) get one clearly named segment of their own.

Definitions (what the numbers in a profile mean):

- ``recency_days``: days from the last event to ``now_ms`` (0 if the event is in the future).
- ``frequency_per_month``: events per 30 days over the user's active span, where the span is
  last − first event but at least 30 days, so a burst of events on a single day counts as that
  many events in a month instead of being extrapolated (10 events in one day → 10.0).
- ratings: events with ``event_type == "rating"`` and a value → ``rating_count``, ``rating_mean``.
  Any other event with a value (purchases, weights) → ``monetary`` = value_count/total/mean.
- category weights: every event spreads a weight of 1 equally over its item's categories (an item
  in "Action|Sci-Fi" gives 0.5 to each), so a user's category shares sum to 1 over categorised
  events. ``share`` is the user's share of a category; ``affinity`` is a lift, smoothed towards 1
  for users with few events: ``((w_uc + A·g_c) / (W_u + A)) / g_c`` where w_uc is the user's weight
  in the category, W_u the user's total weight, g_c the category's share of all events and
  A = 5 pseudo-events. Above 1 means the user favours the category more than the base does.

Segments: features per active user are up to four blocks, each scaled to a total variance of 1
so no block dominates by its width: the L2-normalised model user vector (users the model does not
know get the mean vector), standardised behaviour (log events, log recency, log frequency), the
category shares over the 30 most common categories, and what else the shop has (mean rating, log
mean item price, share of negative reviews; unknown values get the base's mean). k-means (k-means++
init, restarts, seeded) runs for each k in ``k_range`` capped at one segment per
``USERS_PER_SEGMENT`` (40) active customers; a k that leaves a segment smaller than
max(``MIN_SEGMENT_USERS``, ``MIN_SEGMENT_SHARE``) = max(15, 4% of the customers) is not chosen
(none left, or fewer than 80 active customers: one segment). Among the rest k is chosen by the mean
silhouette on a fixed, seeded sample of users (ties and near-ties go to the smaller k); the
Calinski–Harabasz index is reported beside it.

What a segment is called: only what sets it apart. A category is named when the segment holds it
at ``MIN_LIFT`` (1.2) times its base share or more (and it has at least 3% of the segment's
weight); an attribute value or band when at least 20% of the members hold it, at 1.2x the base
share or more. Besides declared attributes (a numeric one such as age is banded at quantiles),
bands are derived from what the shop has: mean rating (critical <= 2.5 stars, lukewarm, happy >= 4),
review sentiment (the sentiment results, else the reviews' labels: mostly negative, mixed, mostly
positive) and the mean ``price`` (an items metadata column, "$1,299.00" and "12,50 €" read) of the
customer's items at the catalog's price tertiles (budget, mid-range, premium). Behaviour is
heavy/light (median events) or recent/lapsed (median recency) against the base medians, else
typical. A shop without categories gets names from its two strongest other traits ("Critical
raters, unhappy reviewers"); nothing distinguishing gives "Typical customers". Names are distinct:
segments sharing a name get the first fact that tells them apart (mean rating, median events,
recency, frequency), else a group number.

Output is JSON as it is (floats rounded to 4 decimals, no NaN: missing numbers are None); DynamoDB
needs floats as Decimal, which `storage._to_dynamo` does. Speed: ml-100k in about a second,
1M interactions / 10k users in about 10 s on one core (the k sweep runs on a sample of at most
5,000 users; the chosen k is then fitted on everyone). With several BLAS threads on a busy machine
the many small matrix products of k-means slow down several-fold: one BLAS thread is best.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DAY_MS = 86_400_000
TOP_CATEGORIES = 5
AFFINITY_PSEUDO_EVENTS = 5.0
FEATURE_CATEGORIES = 30
SILHOUETTE_SAMPLE = 2000
SWEEP_SAMPLE = 5000
KMEANS_RESTARTS = 3
KMEANS_MAX_ITER = 100
SAMPLE_MEMBERS = 20
MIN_TASTE_SHARE = 0.03
MIN_ATTRIBUTE_SHARE = 0.20
# A category, attribute or band is named in a segment only when the segment holds it at least
# this many times as often as the whole base: a "lean" of about 1.0x says nothing.
MIN_LIFT = 1.2
# How many segments a shop can get: at most one per USERS_PER_SEGMENT active customers, and a k
# whose smallest segment holds fewer than max(MIN_SEGMENT_USERS, MIN_SEGMENT_SHARE of the
# customers) is not chosen. A shop of a few hundred customers gets a few segments.
USERS_PER_SEGMENT = 40
MIN_SEGMENT_USERS = 15
MIN_SEGMENT_SHARE = 0.04
# Per-customer bands derived from what the shop has (see _derived_attributes).
CRITICAL_RATING = 2.5
HAPPY_RATING = 4.0
# Segments scoring within this much of the best silhouette are as good: take the fewer segments.
SILHOUETTE_TOLERANCE = 0.005
NO_ACTIVITY_NAME = "New customers, no activity yet"
# Attribute columns that are numbers but not quantities: banding them would mean nothing.
_IDENTIFIER_NAME = re.compile(r"(^|_)id$|zip|postal|postcode|phone|email", re.I)


@dataclass
class ProfileBuild:
    profiles: dict[str, dict]
    segments: list[dict]
    criterion: dict
    stats: dict = field(default_factory=dict)  # sizes and timings, for logs and reports


# --------------------------------------------------------------------------- small helpers


def _round(value: float, digits: int = 4) -> float | None:
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits)


def _iso(ms: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(ms.astype("datetime64[ms]"), unit="s"), "Z")


def _strings(column) -> np.ndarray:
    """A pyarrow column as a NumPy array of str (nulls → "")."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = pc.fill_null(pc.cast(column, pa.string()), "")
    return np.asarray(column.to_numpy(zero_copy_only=False)).astype(str)


def _index_in(values, value_set: np.ndarray) -> np.ndarray:
    """Position of each value in value_set (-1 when absent), computed by pyarrow's hash join."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(value_set) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    found = pc.index_in(pc.cast(values, pa.string()), value_set=pa.array(value_set, type=pa.string()))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _encode(column) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values as str) of a column; nulls get code -1."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pc.cast(column, pa.string())
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    encoded = array.dictionary_encode()
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    values = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False)).astype(str)
    return codes, values


def _group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if len(sorted_keys) else np.zeros(0, int)


# --------------------------------------------------------------------------- activity


@dataclass
class _Activity:
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


def _activity(n: int, user: np.ndarray, item: np.ndarray, ts: np.ndarray, types: np.ndarray,
              type_names: list[str], value: np.ndarray, now_ms: int) -> _Activity:
    events = np.bincount(user, minlength=n)
    first = np.zeros(n, np.int64)
    last = np.zeros(n, np.int64)
    if len(user):
        order = np.lexsort((ts, user))
        su, st = user[order], ts[order]
        starts = _group_starts(su)
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
    return _Activity(events, first, last, distinct, active_days, type_names, type_counts, rating_count,
                     rating_sum, value_count, value_sum, recency, frequency)


# --------------------------------------------------------------------------- categories


def _item_categories(items) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """(item ids, category names, indptr, indices): each item's categories, case-insensitively
    de-duplicated; a category is shown with the spelling met first."""
    if items is None or items.num_rows == 0 or "item_id" not in items.column_names:
        return np.zeros(0, str), [], np.zeros(1, np.int64), np.zeros(0, np.int64)
    ids = _strings(items.column("item_id"))
    raw = _strings(items.column("categories")) if "categories" in items.column_names else np.full(len(ids), "")
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
class _Categories:
    names: list[str]
    user: np.ndarray              # sparse (user, category, weight) triples
    category: np.ndarray
    weight: np.ndarray
    base_share: np.ndarray        # (n_cats,) each category's share of all weight
    user_weight: np.ndarray       # (n_users,) total weight per user
    top: list[list[dict]]         # per user: top categories with share and affinity
    feature_shares: np.ndarray | None  # (n_users, <= FEATURE_CATEGORIES) for clustering


def _categories(n: int, user: np.ndarray, item_code: np.ndarray, item_ids: np.ndarray, items) -> _Categories:
    import pyarrow as pa

    cat_item_ids, names, indptr, indices = _item_categories(items)
    n_cats = len(names)
    catalog_row = np.full(len(user), -1)
    if len(user) and n_cats:
        known = item_code >= 0
        catalog_row[known] = _index_in(pa.array(item_ids, type=pa.string()), cat_item_ids)[item_code[known]]
    cu, cc, cw = _category_weights(n, user, catalog_row, indptr, indices, n_cats)
    total = np.bincount(cc, weights=cw, minlength=n_cats) if n_cats else np.zeros(0)
    base_share = total / total.sum() if total.sum() > 0 else np.zeros(n_cats)
    user_weight = np.bincount(cu, weights=cw, minlength=n)

    top: list[list[dict]] = [[] for _ in range(n)]
    if len(cu):
        order = np.lexsort((cc, -cw, cu))  # per user by weight, ties in catalog order
        su, sc, sw = cu[order], cc[order], cw[order]
        starts = _group_starts(su)
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
    return _Categories(names, cu, cc, cw, base_share, user_weight, top, shares)


# --------------------------------------------------------------------------- attributes


@dataclass
class _Attribute:
    name: str
    kind: str                     # "categorical" | "numeric" | "derived"
    labels: list[str]             # value or band label per code
    codes: np.ndarray             # (n_users,) code, -1 = unknown
    phrases: list[str] | None = None  # derived bands: what a segment name calls the members


# --------------------------------------------------------------------------- what the shop has besides categories


_PRICE_NUMBER = re.compile(r"\d[\d.,]*")


def parse_price(value: Any) -> float:
    """A price kept as an items metadata column ("12.50", "$1,299.00", "12,50 €") → float, NaN if none."""
    if value is None:
        return math.nan
    found = _PRICE_NUMBER.search(str(value))
    if not found:
        return math.nan
    text = found.group().rstrip(".,")
    if "," in text and "." in text:
        text = text.replace(",", "") if text.rfind(".") > text.rfind(",") else text.replace(".", "").replace(",", ".")
    elif "," in text:
        head, _, tail = text.rpartition(",")
        text = f"{head.replace(',', '')}.{tail}" if len(tail) in (1, 2) else text.replace(",", "")
    try:
        number = float(text)
    except ValueError:
        return math.nan
    return number if math.isfinite(number) and number >= 0 else math.nan


def _money(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.2f}"


@dataclass
class _Derived:
    attributes: list[_Attribute]
    rating_mean: np.ndarray       # (n,) NaN where the user rated nothing
    price_mean: np.ndarray        # (n,) mean price of the user's distinct items, NaN where unknown
    negative_share: np.ndarray    # (n,) share of the user's reviews read as negative, NaN where none


def _per_user_labels(table, universe: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reviews, negative, positive) per user from a table with user_id and label columns."""
    n = len(universe)
    zeros = np.zeros(n), np.zeros(n), np.zeros(n)
    if table is None or not table.num_rows or "user_id" not in table.column_names or "label" not in table.column_names:
        return zeros
    who = _index_in(table.column("user_id"), universe)
    labels = np.char.lower(_strings(table.column("label")))
    known = (who >= 0) & np.isin(labels, ["positive", "negative", "neutral"])
    count = np.bincount(who[known], minlength=n).astype(float)
    negative = np.bincount(who[known & (labels == "negative")], minlength=n).astype(float)
    positive = np.bincount(who[known & (labels == "positive")], minlength=n).astype(float)
    return count, negative, positive


def _derived_attributes(universe: np.ndarray, act: _Activity, user: np.ndarray, item_code: np.ndarray,
                        item_ids: np.ndarray, items, reviews, sentiment) -> _Derived:
    """Bands per customer from ratings, review sentiment and item prices, described like declared
    attributes (a segment names a band only at MIN_LIFT or more):

    - rating: the customer's mean star rating (rating events; else the stars of their reviews):
      critical (<= CRITICAL_RATING), lukewarm, happy (>= HAPPY_RATING);
    - review sentiment: the labels of the customer's reviews (the sentiment model's results when
      given, else the reviews' own label column): mostly negative, mixed, mostly positive;
    - price: the mean `price` (an items metadata column) of the customer's distinct items, banded
      at the catalog's price tertiles: budget, mid-range, premium.
    """
    n = len(universe)
    attributes: list[_Attribute] = []
    # ratings: events first, the reviews' stars for customers without rating events
    count, total = act.rating_count.astype(float), act.rating_sum.astype(float)
    if reviews is not None and reviews.num_rows and {"user_id", "rating"} <= set(reviews.column_names):
        import pyarrow as pa
        import pyarrow.compute as pc

        who = _index_in(reviews.column("user_id"), universe)
        stars = np.asarray(pc.cast(reviews.column("rating"), pa.float64()).to_numpy(zero_copy_only=False),
                           dtype=np.float64)
        ok = (who >= 0) & np.isfinite(stars)
        fallback = count == 0
        r_count = np.bincount(who[ok], minlength=n).astype(float)
        r_total = np.bincount(who[ok], weights=stars[ok], minlength=n)
        count = np.where(fallback, r_count, count)
        total = np.where(fallback, r_total, total)
    rating_mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    if np.isfinite(rating_mean).any():
        codes = np.full(n, -1)
        rated = np.isfinite(rating_mean)
        codes[rated] = np.where(rating_mean[rated] <= CRITICAL_RATING, 0,
                                np.where(rating_mean[rated] >= HAPPY_RATING, 2, 1))
        attributes.append(_Attribute(
            "mean rating", "derived",
            [f"mean rating {CRITICAL_RATING:g}★ or lower", f"mean rating between {CRITICAL_RATING:g}★ and "
             f"{HAPPY_RATING:g}★", f"mean rating {HAPPY_RATING:g}★ or higher"], codes,
            ["critical raters", "lukewarm raters", "happy raters"]))

    # review sentiment: the model's reading of every review when there is one, else the labels given
    reviewed, negative, positive = _per_user_labels(sentiment, universe)
    if not reviewed.any():
        reviewed, negative, positive = _per_user_labels(reviews, universe)
    negative_share = np.where(reviewed > 0, negative / np.maximum(reviewed, 1), np.nan)
    if reviewed.any():
        codes = np.full(n, -1)
        has = reviewed > 0
        codes[has] = np.where(negative[has] * 2 >= reviewed[has], 0, np.where(positive[has] * 2 > reviewed[has], 2, 1))
        attributes.append(_Attribute("review sentiment", "derived",
                                     ["reviews mostly negative", "reviews mixed", "reviews mostly positive"], codes,
                                     ["unhappy reviewers", "mixed reviewers", "positive reviewers"]))

    # prices
    price_mean = np.full(n, np.nan)
    if items is not None and items.num_rows and "price" in items.column_names and len(user):
        catalog_ids = _strings(items.column("item_id"))
        catalog_price = np.array([parse_price(v) for v in _strings(items.column("price")).tolist()])
        priced = np.isfinite(catalog_price)
        if len(np.unique(catalog_price[priced])) >= 3:
            import pyarrow as pa

            row = _index_in(pa.array(item_ids, type=pa.string()), catalog_ids)
            price_of_code = np.where(row >= 0, catalog_price[np.maximum(row, 0)], np.nan)
            known = item_code >= 0
            pairs = np.unique(user[known] * np.int64(len(item_ids)) + item_code[known])
            p_user, p_price = pairs // len(item_ids), price_of_code[pairs % len(item_ids)]
            ok = np.isfinite(p_price)
            p_count = np.bincount(p_user[ok], minlength=n)
            p_total = np.bincount(p_user[ok], weights=p_price[ok], minlength=n)
            price_mean = np.where(p_count > 0, p_total / np.maximum(p_count, 1), np.nan)
            low, high = np.quantile(catalog_price[priced], [1 / 3, 2 / 3])
            if high > low and np.isfinite(price_mean).any():
                codes = np.full(n, -1)
                has = np.isfinite(price_mean)
                codes[has] = np.where(price_mean[has] < low, 0, np.where(price_mean[has] >= high, 2, 1))
                attributes.append(_Attribute(
                    "item price", "derived",
                    [f"mean item price under {_money(low)}", f"mean item price {_money(low)}–{_money(high)}",
                     f"mean item price {_money(high)} or more"], codes,
                    ["budget buyers", "mid-range buyers", "premium buyers"]))
    return _Derived(attributes, rating_mean, price_mean, negative_share)


def _attribute_table(users, universe: np.ndarray) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """(attribute names, raw values per attribute aligned with universe, row of user in table or -1)."""
    if users is None or users.num_rows == 0 or "user_id" not in users.column_names:
        return [], {}, np.full(len(universe), -1)
    ids = _strings(users.column("user_id"))
    row_of = _index_in(universe, ids)
    names = [c for c in users.column_names if c != "user_id" and not c.startswith("_")]
    values = {}
    for name in names:
        column = users.column(name).to_numpy(zero_copy_only=False)
        aligned = np.empty(len(universe), dtype=object)
        aligned[:] = None
        present = row_of >= 0
        aligned[present] = np.asarray(column, dtype=object)[row_of[present]]
        values[name] = aligned
    return names, values, row_of


def _clean_attribute(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return None
        return int(value) if float(value).is_integer() else round(float(value), 4)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip()
    return text or None


def _as_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _display(name: str) -> str:
    return " ".join(name.replace("_", " ").split())


def _describe_attribute(name: str, raw: np.ndarray) -> _Attribute | None:
    """Categorical (few distinct values) or numeric (quantile bands); None for id-like columns."""
    cleaned = [_clean_attribute(v) for v in raw.tolist()]
    known = [v for v in cleaned if v is not None]
    if not known:
        return None
    numbers = [_as_number(v) for v in known]
    numeric_share = sum(x is not None for x in numbers) / len(known)
    distinct = len(set(map(str, known)))
    if numeric_share >= 0.95 and distinct > 12 and not _IDENTIFIER_NAME.search(name):
        values = np.array([np.nan if (x := _as_number(v)) is None else x for v in cleaned])
        finite = values[np.isfinite(values)]
        edges = np.unique(np.quantile(finite, [0.0, 0.25, 0.5, 0.75, 1.0]))
        if len(edges) < 2:
            return None
        codes = np.full(len(values), -1)
        ok = np.isfinite(values)
        codes[ok] = np.clip(np.searchsorted(edges, values[ok], side="right") - 1, 0, len(edges) - 2)
        labels = []
        integral = bool(np.all(finite == np.round(finite)))
        for band in range(len(edges) - 1):
            members = values[codes == band]
            lo, hi = (members.min(), members.max()) if len(members) else (edges[band], edges[band + 1])
            fmt = (lambda x: str(int(x))) if integral else (lambda x: f"{x:.3g}")
            labels.append(f"{_display(name)} {fmt(lo)}–{fmt(hi)}" if lo != hi else f"{_display(name)} {fmt(lo)}")
        return _Attribute(name, "numeric", labels, codes)
    if distinct > 50 or (distinct > 0.5 * len(known) and len(known) >= 20):
        return None  # free text or an identifier: nothing a segment could share
    vocabulary = sorted(set(map(str, known)))
    lookup = {v: i for i, v in enumerate(vocabulary)}
    codes = np.array([-1 if v is None else lookup[str(v)] for v in cleaned])
    return _Attribute(name, "categorical", [f"{_display(name)} {v}" for v in vocabulary], codes)


# --------------------------------------------------------------------------- k-means


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
                 "values": {str(k): _round(v) for k, v in values.items()},
                 "calinski_harabasz": {str(k): _round(v, 2) for k, v in ch.items()},
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


def _features(active: np.ndarray, act: _Activity, shares: np.ndarray | None,
              vectors: np.ndarray | None, vector_row: np.ndarray,
              derived: _Derived | None = None) -> tuple[np.ndarray, list[str]]:
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


# --------------------------------------------------------------------------- segment descriptions


def _pct(x: float) -> str:
    return "under 1%" if 0 < x < 0.005 else f"{100 * x:.0f}%"


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _taste(seg_weight: np.ndarray, base_share: np.ndarray, cat_names: list[str]) -> list[dict]:
    total = seg_weight.sum()
    if total <= 0:
        return []
    share = seg_weight / total
    lift = np.where(base_share > 0, share / np.maximum(base_share, 1e-12), 0.0)
    # only categories the segment holds at MIN_LIFT x the base share or more distinguish it
    candidates = np.flatnonzero((share >= MIN_TASTE_SHARE) & (lift >= MIN_LIFT - 1e-9))
    order = candidates[np.lexsort((candidates, -lift[candidates]))]
    return [{"category": cat_names[c], "share": _round(share[c]), "base_share": _round(base_share[c]),
             "lift": _round(lift[c], 3)} for c in order[:5]]


def _attribute_highlights(members: np.ndarray, attributes: list[_Attribute],
                          base_counts: list[tuple[np.ndarray, int]]) -> list[dict]:
    found: list[dict[str, Any]] = []
    for position, attr in enumerate(attributes):
        base, base_known = base_counts[position]
        codes = attr.codes[members]
        codes = codes[codes >= 0]
        if not len(codes) or not base_known:
            continue
        seg = np.bincount(codes, minlength=len(attr.labels))
        share, base_share = seg / len(codes), base / base_known
        lift = np.where(base_share > 0, share / np.maximum(base_share, 1e-12), 0.0)
        for code in np.flatnonzero((share >= MIN_ATTRIBUTE_SHARE) & (lift >= MIN_LIFT - 1e-9) & (seg >= 2)):
            found.append({"attribute": attr.name,
                          "value": attr.labels[code] if attr.phrases else attr.labels[code][len(_display(attr.name)) + 1:],
                          "label": attr.labels[code], "kind": attr.kind, "share": _round(share[code]),
                          "base_share": _round(base_share[code]), "lift": _round(lift[code], 3)})
            if attr.phrases:
                found[-1]["phrase"] = attr.phrases[code]
    found.sort(key=lambda h: (-h["lift"], -h["share"], h["label"]))
    return found


def _behaviour(events: np.ndarray, recency: np.ndarray, base_events: float, base_recency: float) -> dict:
    med_events, med_recency = float(np.median(events)), float(np.median(recency))
    events_ratio = med_events / max(base_events, 1e-9)
    recency_ratio = (med_recency + 1) / (base_recency + 1)
    options = []
    if events_ratio >= 1.5:
        options.append((math.log(events_ratio), "heavy users", "events"))
    elif events_ratio <= 1 / 1.5:
        options.append((-math.log(max(events_ratio, 1e-9)), "light users", "events"))
    if recency_ratio <= 0.5:
        options.append((-math.log(recency_ratio), "recently active", "recency"))
    elif recency_ratio >= 2:
        options.append((math.log(recency_ratio), "lapsed", "recency"))
    label, basis = (max(options)[1], max(options)[2]) if options else ("typical activity", "events")
    return {"label": label, "basis": basis, "median_events": _round(med_events, 1),
            "base_median_events": _round(base_events, 1), "median_recency_days": _round(med_recency, 1),
            "base_median_recency_days": _round(base_recency, 1)}


def _highlight_part(h: dict) -> str:
    if h.get("phrase"):
        return h["phrase"]
    return ("mostly " if h["share"] > 0.5 else "often ") + h["label"]


def _highlight_sentence(h: dict) -> str:
    if h.get("phrase"):
        return (f"{h['phrase']} ({h['label']}) are over-represented ({_pct(h['share'])} vs "
                f"{_pct(h['base_share'])} overall, {h['lift']:.1f}×)")
    return f"{h['label']} is over-represented ({_pct(h['share'])} vs {_pct(h['base_share'])} overall)"


def _name_and_description(size: int, n_total: int, taste: list[dict], highlights: list[dict],
                          behaviour: dict, has_categories: bool = True,
                          rating: tuple[float, float] | None = None) -> tuple[str, str, list[str]]:
    """(name, description, further name parts to tell it from a segment of the same name).

    Only what sets the segment apart is named: categories and attribute or band values held at
    MIN_LIFT x the base share or more, and non-typical activity. Without category data a segment
    is named by its two strongest other traits."""
    tastes = [t["category"] for t in taste[:2]]  # _taste keeps only lifts >= MIN_LIFT
    parts = [f"{' and '.join(tastes)} fans"] if tastes else []
    # one trait per attribute: "critical raters, lukewarm raters" would say the same thing twice
    seen: set[str] = set()
    traits = []
    for h in highlights:
        if h["attribute"] not in seen:
            seen.add(h["attribute"])
            traits.append(_highlight_part(h))
    parts += traits[:1]
    if behaviour["label"] != "typical activity":
        parts.append(behaviour["label"])
    used = 1
    if not tastes and len(parts) < 2 and len(traits) > 1:
        parts.append(traits[1])
        used = 2
    alternates = traits[used:]
    if not parts:
        parts = ["Typical customers"]
    name = ", ".join(parts)
    name = name[0].upper() + name[1:]

    sentences = []
    head = f"{size} customers ({_pct(size / n_total)} of the base)"
    if taste:
        lifts = [f"{t['category']} ({t['lift']:.1f}× the base share)" for t in taste[:len(tastes)]]
        sentences.append(f"{head} who lean towards {_join(lifts)}.")
    elif has_categories:
        sentences.append(f"{head}; their categories follow the base's (none at {MIN_LIFT:g}× its base share or more).")
    else:
        sentences.append(f"{head}; the shop's items have no categories, so activity, ratings, reviews, prices "
                         f"and attributes describe them.")
    rest = []
    b = behaviour
    if b["basis"] == "recency" and b["label"] != "typical activity":
        detail = (f"last active a median {b['median_recency_days']:g} days ago vs "
                  f"{b['base_median_recency_days']:g} overall")
    else:
        detail = f"a median {_events(b['median_events'])} vs {b['base_median_events']:g} overall"
    rest.append(f"{'They show ' if b['label'] == 'typical activity' else 'They are '}{b['label']} ({detail})")
    rest += [_highlight_sentence(h) for h in highlights[:2]]
    if rating is not None and all(math.isfinite(r) for r in rating):
        rest.append(f"mean rating {rating[0]:.1f}★ vs {rating[1]:.1f}★ overall")
    sentences.append("; ".join(rest) + ".")
    return name, " ".join(sentences), alternates


def _events(count: float) -> str:
    return f"{count:g} event" + ("" if count == 1 else "s")


def _make_distinct(segments: list[dict], facts: list[dict[str, str]]) -> None:
    """Names shared by several segments get, on every one of them, the first fact (mean rating,
    median events, recency, frequency) that tells them all apart; failing that, a group number."""
    by_name: dict[str, list[int]] = {}
    for i, segment in enumerate(segments):
        by_name.setdefault(segment["name"], []).append(i)
    taken = set(by_name)
    for name, group in by_name.items():
        if len(group) < 2:
            continue
        for kind in ("rating", "events", "recency", "frequency"):
            texts = [facts[i].get(kind) for i in group]
            if all(texts) and len(set(texts)) == len(texts) and not {f"{name}, {t}" for t in texts} & taken:
                for i, text in zip(group, texts):
                    segments[i]["name"] = f"{name}, {text}"
                break
        else:
            for n, i in enumerate(group, 1):
                segments[i]["name"] = f"{name} (group {n})"
        taken.update(segments[i]["name"] for i in group)


def _segments(universe: np.ndarray, segment_of: np.ndarray, act: _Activity, cats: _Categories,
              attributes: list[_Attribute], vector_row: np.ndarray,
              rating_mean: np.ndarray | None = None) -> tuple[list[dict], np.ndarray]:
    """Segment dicts (largest first, ids s1..sN) and each user's position in that list."""
    n = len(universe)
    groups = [np.flatnonzero(segment_of == s) for s in range(int(segment_of.max(initial=-1)) + 1)]
    groups.append(np.flatnonzero(act.events == 0))  # known from the users table only
    groups = [g for g in groups if len(g)]
    groups.sort(key=lambda g: (-len(g), int(g[0])))  # ties: the first member's id, for a stable order
    segment_index = np.full(n, -1)
    for s, members in enumerate(groups):
        segment_index[members] = s

    active = act.events > 0
    base_events = float(np.median(act.events[active])) if active.any() else 0.0
    base_recency = float(np.median(act.recency_days[active])) if active.any() else 0.0
    base_counts = [(np.bincount(a.codes[a.codes >= 0], minlength=len(a.labels)), int((a.codes >= 0).sum()))
                   for a in attributes]
    seg_cat = np.zeros((len(groups), len(cats.names)))
    if len(cats.user):
        np.add.at(seg_cat, (segment_index[cats.user], cats.category), cats.weight)

    # No ratings at all reads as NaN everywhere: nobody rated.
    user_rating = rating_mean if rating_mean is not None else np.full(n, np.nan)
    rated = np.isfinite(user_rating)
    base_rating = float(user_rating[rated].mean()) if rated.any() else math.nan
    segments, facts = [], []
    for s, members in enumerate(groups):
        segment_id = f"s{s + 1}"
        highlights = _attribute_highlights(members, attributes, base_counts)
        is_inactive = act.events[members[0]] == 0
        events = act.events[members]
        if is_inactive:
            taste: list[dict] = []
            behaviour = {"label": "no activity", "basis": "events", "median_events": 0.0,
                         "base_median_events": _round(base_events, 1)}
            name = NO_ACTIVITY_NAME
            attr_text = (f"; {highlights[0]['label']} is over-represented ({_pct(highlights[0]['share'])} vs "
                         f"{_pct(highlights[0]['base_share'])} overall)" if highlights else "")
            description = (f"{len(members)} customers ({_pct(len(members) / n)} of the base) known only from "
                           f"their declared attributes: no events yet, so no taste is known{attr_text}.")
        else:
            taste = _taste(seg_cat[s], cats.base_share, cats.names)
            behaviour = _behaviour(events, act.recency_days[members], base_events, base_recency)
            seg_rated = members[rated[members]]
            rating = (float(user_rating[seg_rated].mean()), base_rating) if len(seg_rated) else None
            name, description, _ = _name_and_description(
                len(members), n, taste, highlights, behaviour, bool(len(cats.names)), rating)
        fact = {"events": f"median {_events(float(np.median(events)))}"}
        if not is_inactive:
            if rated[members].any():
                fact["rating"] = f"mean rating {float(user_rating[members[rated[members]]].mean()):.1f}★"
            fact["recency"] = f"last active a median {float(np.median(act.recency_days[members])):.0f} days ago"
            fact["frequency"] = f"{float(act.frequency[members].mean()):.1f} events a month"
        facts.append(fact)
        total = seg_cat[s].sum()
        by_share = np.argsort(-seg_cat[s], kind="stable")[:5] if total > 0 else np.zeros(0, dtype=np.int64)
        statistics = {
            "share_of_users": _round(len(members) / n),
            "mean_events": _round(events.mean(), 2),
            "median_events": _round(np.median(events), 1),
            "median_recency_days": None if is_inactive else _round(np.median(act.recency_days[members]), 1),
            "mean_frequency_per_month": _round(act.frequency[members].mean(), 2),
            "top_categories": [{"category": cats.names[c], "share": _round(seg_cat[s, c] / total),
                                "lift": _round(seg_cat[s, c] / total / cats.base_share[c], 3)}
                               for c in by_share if seg_cat[s, c] > 0],
            "distinguishing_categories": taste,
            "attribute_highlights": highlights[:5],
            "behaviour": behaviour,
            "with_model_vector": int((vector_row[members] >= 0).sum()),
        }
        ratings, values = act.rating_count[members].sum(), act.value_count[members].sum()
        if ratings:
            statistics["rating_mean"] = _round(act.rating_sum[members].sum() / ratings, 3)
        if values:
            statistics["value_mean"] = _round(act.value_sum[members].sum() / values, 2)
        segments.append({"segment_id": segment_id, "name": name, "description": description,
                         "size": int(len(members)), "kind": "no_activity" if is_inactive else "cluster",
                         "statistics": statistics,
                         "sample_members": [str(u) for u in universe[members[:SAMPLE_MEMBERS]]]})
    _make_distinct(segments, facts)
    return segments, segment_index


def _profiles(universe: np.ndarray, act: _Activity, cats: _Categories, attr_names: list[str],
              attr_values: dict[str, np.ndarray], segments: list[dict], segment_index: np.ndarray) -> dict[str, dict]:
    first_iso, last_iso = _iso(act.first_ms), _iso(act.last_ms)
    attr_lists = {name: attr_values[name].tolist() for name in attr_names}
    type_counts = act.type_counts.tolist()
    profiles: dict[str, dict] = {}
    for u, user_id in enumerate(universe.tolist()):
        events = int(act.events[u])
        activity: dict[str, Any] = {
            "first_seen": str(first_iso[u]) if events else None,
            "last_seen": str(last_iso[u]) if events else None,
            "events": events,
            "by_event_type": {t: c for t, c in zip(act.type_names, type_counts[u]) if c},
            "distinct_items": int(act.distinct_items[u]),
            "active_days": int(act.active_days[u]),
            "recency_days": _round(act.recency_days[u]) if events else None,
            "frequency_per_month": _round(act.frequency[u]),
        }
        if act.rating_count[u]:
            activity["rating_count"] = int(act.rating_count[u])
            activity["rating_mean"] = _round(act.rating_sum[u] / act.rating_count[u])
        if act.value_count[u]:
            activity["monetary"] = {"value_count": int(act.value_count[u]), "value_total": _round(act.value_sum[u]),
                                    "value_mean": _round(act.value_sum[u] / act.value_count[u])}
        attributes = {}
        for name in attr_names:
            value = _clean_attribute(attr_lists[name][u])
            if value is not None:
                attributes[name] = value
        segment = segments[segment_index[u]]
        profiles[user_id] = {"user_id": user_id, "activity": activity, "top_categories": cats.top[u],
                             "attributes": attributes,
                             "segment": {"segment_id": segment["segment_id"], "name": segment["name"]}}
    return profiles


# --------------------------------------------------------------------------- the build


def _column(table, name: str):
    return table.column(name) if table is not None and name in table.column_names else None


def build_profiles(interactions, items, users, user_ids: np.ndarray | None = None,
                   user_vectors: np.ndarray | None = None, *, now_ms: int, seed: int = 0,
                   k_range=(3, 20), reviews=None, sentiment=None) -> ProfileBuild:
    """Profiles for every user in interactions or users, and segments of them (see module doc).

    `user_ids`/`user_vectors`: the current recommender's user vectors, rows aligned (optional).
    `reviews` (the reviews dataset) and `sentiment` (the sentiment results: user_id, label), both
    optional, give the rating and review-sentiment bands. Deterministic for a given input and seed.
    """
    import time

    import pyarrow as pa
    import pyarrow.compute as pc

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    if interactions is not None and interactions.num_rows:
        # rows without a user or a time cannot be placed (ingest never stores them anyway)
        interactions = interactions.filter(pc.and_(pc.is_valid(interactions.column("user_id")),
                                                   pc.is_valid(interactions.column("timestamp"))))
    has_events = interactions is not None and interactions.num_rows > 0

    # events as arrays of codes
    if has_events:
        user_code, event_users = _encode(interactions.column("user_id"))
        item_code, item_ids = _encode(interactions.column("item_id"))
        ts = np.asarray(pc.cast(interactions.column("timestamp"), pa.int64()).to_numpy(), dtype=np.int64)
        type_col = _column(interactions, "event_type")
        if type_col is not None:
            types, type_values = _encode(type_col)
            type_values = np.where(type_values == "", "interaction", type_values)
            # null or empty types are "interaction", as ingest's default; names sorted for stable output
            type_values = np.append(type_values, "interaction")
            types = np.where(types < 0, len(type_values) - 1, types)
            names, remap = np.unique(type_values, return_inverse=True)
            type_names, types = [str(t) for t in names], remap.ravel()[types].astype(np.int64)
        else:
            type_names, types = ["interaction"], np.zeros(len(user_code), np.int64)
        value_col = _column(interactions, "value")
        value = (np.asarray(pc.cast(value_col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
                 if value_col is not None else np.full(len(user_code), np.nan))
    else:
        user_code = item_code = ts = types = np.zeros(0, np.int64)
        event_users, item_ids, type_names, value = np.zeros(0, str), np.zeros(0, str), [], np.zeros(0)

    # the users profiled: everyone with an event or a users row, in sorted id order
    table_users = (_strings(users.column("user_id")) if users is not None and users.num_rows and
                   "user_id" in users.column_names else np.zeros(0, str))
    table_users = table_users[table_users != ""]
    universe = np.unique(np.concatenate([event_users, table_users]))
    n = len(universe)
    user = np.searchsorted(universe, event_users)[user_code] if has_events else user_code
    act = _activity(n, user, item_code, ts, types, type_names, value, now_ms)
    t_activity = time.perf_counter()

    cats = _categories(n, user, item_code, item_ids, items)
    t_categories = time.perf_counter()

    attr_names, attr_values, _ = _attribute_table(users, universe)
    attributes = [a for a in (_describe_attribute(name, attr_values[name]) for name in attr_names) if a]
    derived = _derived_attributes(universe, act, user, item_code, item_ids, items, reviews, sentiment)
    attributes += derived.attributes

    vector_row = np.full(n, -1)
    if user_ids is not None and user_vectors is not None and len(user_ids):
        vector_row = _index_in(pa.array(universe, type=pa.string()), np.asarray(user_ids).astype(str))
    active = np.flatnonzero(act.events > 0)
    segment_of = np.full(n, -1)
    if len(active):
        x, feature_blocks = _features(active, act, cats.feature_shares, user_vectors, vector_row, derived)
        labels, criterion = choose_k(x, k_range, rng)
        segment_of[active] = labels
        criterion["features"] = feature_blocks
    else:
        criterion = {"name": "silhouette", "values": {}, "chosen_k": 0, "features": [],
                     "note": "no user has any event"}
    t_cluster = time.perf_counter()

    segments, segment_index = _segments(universe, segment_of, act, cats, attributes, vector_row,
                                        derived.rating_mean)
    profiles = _profiles(universe, act, cats, attr_names, attr_values, segments, segment_index)
    finished = time.perf_counter()
    stats = {"users": n, "active_users": int(len(active)), "interactions": int(len(user)),
             "categories": len(cats.names), "segments": len(segments),
             "seconds": {"activity": round(t_activity - started, 3), "categories": round(t_categories - t_activity, 3),
                         "clustering": round(t_cluster - t_categories, 3), "total": round(finished - started, 3)}}
    return ProfileBuild(profiles, segments, criterion, stats)
