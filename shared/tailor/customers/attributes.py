"""Customer attributes: the declared ones (the users table, aligned with the profiled users, cleaned
and described as categorical values or numeric quantile bands) and the bands derived from what the
shop has besides categories (mean rating, review sentiment, mean item price, with price parsing).

Segments name an attribute value or band only when it sets them apart (see tailor.customers.describe).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from tailor.customers.activity import Activity
from tailor.customers.columns import index_in, strings

# Per-customer bands derived from what the shop has (see derived_attributes).
CRITICAL_RATING = 2.5
HAPPY_RATING = 4.0
# Attribute columns that are numbers but not quantities: banding them would mean nothing.
_IDENTIFIER_NAME = re.compile(r"(^|_)id$|zip|postal|postcode|phone|email", re.I)


@dataclass
class Attribute:
    name: str
    kind: str                     # "categorical" | "numeric" | "derived"
    labels: list[str]             # value or band label per code
    codes: np.ndarray             # (n_users,) code, -1 = unknown
    phrases: list[str] | None = None  # derived bands: what a segment name calls the members


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
class Derived:
    attributes: list[Attribute]
    rating_mean: np.ndarray       # (n,) NaN where the user rated nothing
    price_mean: np.ndarray        # (n,) mean price of the user's distinct items, NaN where unknown
    negative_share: np.ndarray    # (n,) share of the user's reviews read as negative, NaN where none


def _per_user_labels(table, universe: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reviews, negative, positive) per user from a table with user_id and label columns."""
    n = len(universe)
    zeros = np.zeros(n), np.zeros(n), np.zeros(n)
    if table is None or not table.num_rows or "user_id" not in table.column_names or "label" not in table.column_names:
        return zeros
    who = index_in(table.column("user_id"), universe)
    labels = np.char.lower(strings(table.column("label")))
    known = (who >= 0) & np.isin(labels, ["positive", "negative", "neutral"])
    count = np.bincount(who[known], minlength=n).astype(float)
    negative = np.bincount(who[known & (labels == "negative")], minlength=n).astype(float)
    positive = np.bincount(who[known & (labels == "positive")], minlength=n).astype(float)
    return count, negative, positive


def derived_attributes(universe: np.ndarray, act: Activity, user: np.ndarray, item_code: np.ndarray,
                       item_ids: np.ndarray, items, reviews, sentiment) -> Derived:
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
    attributes: list[Attribute] = []
    # ratings: events first, the reviews' stars for customers without rating events
    count, total = act.rating_count.astype(float), act.rating_sum.astype(float)
    if reviews is not None and reviews.num_rows and {"user_id", "rating"} <= set(reviews.column_names):
        import pyarrow as pa
        import pyarrow.compute as pc

        who = index_in(reviews.column("user_id"), universe)
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
        attributes.append(Attribute(
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
        attributes.append(Attribute("review sentiment", "derived",
                                    ["reviews mostly negative", "reviews mixed", "reviews mostly positive"], codes,
                                    ["unhappy reviewers", "mixed reviewers", "positive reviewers"]))

    # prices
    price_mean = np.full(n, np.nan)
    if items is not None and items.num_rows and "price" in items.column_names and len(user):
        catalog_ids = strings(items.column("item_id"))
        catalog_price = np.array([parse_price(v) for v in strings(items.column("price")).tolist()])
        priced = np.isfinite(catalog_price)
        if len(np.unique(catalog_price[priced])) >= 3:
            import pyarrow as pa

            row = index_in(pa.array(item_ids, type=pa.string()), catalog_ids)
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
                attributes.append(Attribute(
                    "item price", "derived",
                    [f"mean item price under {_money(low)}", f"mean item price {_money(low)}–{_money(high)}",
                     f"mean item price {_money(high)} or more"], codes,
                    ["budget buyers", "mid-range buyers", "premium buyers"]))
    return Derived(attributes, rating_mean, price_mean, negative_share)


def attribute_table(users, universe: np.ndarray) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """(attribute names, raw values per attribute aligned with universe, row of user in table or -1)."""
    if users is None or users.num_rows == 0 or "user_id" not in users.column_names:
        return [], {}, np.full(len(universe), -1)
    ids = strings(users.column("user_id"))
    row_of = index_in(universe, ids)
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


def clean_attribute(value: Any) -> Any:
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


def display(name: str) -> str:
    return " ".join(name.replace("_", " ").split())


def describe_attribute(name: str, raw: np.ndarray) -> Attribute | None:
    """Categorical (few distinct values) or numeric (quantile bands); None for id-like columns."""
    cleaned = [clean_attribute(v) for v in raw.tolist()]
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
            labels.append(f"{display(name)} {fmt(lo)}–{fmt(hi)}" if lo != hi else f"{display(name)} {fmt(lo)}")
        return Attribute(name, "numeric", labels, codes)
    if distinct > 50 or (distinct > 0.5 * len(known) and len(known) >= 20):
        return None  # free text or an identifier: nothing a segment could share
    vocabulary = sorted(set(map(str, known)))
    lookup = {v: i for i, v in enumerate(vocabulary)}
    codes = np.array([-1 if v is None else lookup[str(v)] for v in cleaned])
    return Attribute(name, "categorical", [f"{display(name)} {v}" for v in vocabulary], codes)
