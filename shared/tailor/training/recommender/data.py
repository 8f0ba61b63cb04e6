"""Training inputs: interactions and the catalog as given, then as indices (one row per
(user, item), sorted by user and time), per-example histories and the catalog as tower inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tailor.recommend.scorer import (
    content_rows,
    item_text,
    split_categories,
    text_token_keys,
)
from tailor.training.recommender.config import RetrievalConfig


@dataclass
class Interactions:
    """Interaction events as parallel arrays. ``ratings`` may be absent or NaN where there is none."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    timestamps: np.ndarray
    ratings: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.user_ids = np.asarray(self.user_ids).astype(str)
        self.item_ids = np.asarray(self.item_ids).astype(str)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64)
        n = len(self.user_ids)
        if len(self.item_ids) != n or len(self.timestamps) != n:
            raise ValueError("user_ids, item_ids and timestamps must have the same length")
        if self.ratings is not None:
            self.ratings = np.asarray(self.ratings, dtype=np.float64)
            if len(self.ratings) != n:
                raise ValueError("ratings must have one value per interaction (NaN for none)")
        if n and not np.all(np.isfinite(self.timestamps)):
            raise ValueError("timestamps must be finite numbers")

    def __len__(self) -> int:
        return len(self.user_ids)


@dataclass
class ItemCatalog:
    """Item content: ``categories`` per item as a list or a ``|``-separated string."""

    item_ids: Sequence[str]
    titles: Sequence[str | None]
    categories: Sequence[str | Sequence[str] | None]
    descriptions: Sequence[str | None] | None = None

    def __post_init__(self) -> None:
        self.item_ids = [str(item) for item in self.item_ids]
        n = len(self.item_ids)
        self.descriptions = list(self.descriptions) if self.descriptions is not None else [None] * n
        if len(self.titles) != n or len(self.categories) != n or len(self.descriptions) != n:
            raise ValueError("item_ids, titles, categories and descriptions must have the same length")
        if len(set(self.item_ids)) != n:
            raise ValueError("item_ids must be unique in a catalog")


class Content:
    """The catalog as item-tower inputs: padded category and token rows per item (-1 pads)."""

    def __init__(self, item_ids: np.ndarray, catalog: ItemCatalog | None, config: RetrievalConfig):
        n_items = len(item_ids)
        categories: list[list[str]] = [[] for _ in range(n_items)]
        texts = [""] * n_items
        if catalog is not None:
            row_of = {item: row for row, item in enumerate(item_ids.tolist())}
            descriptions = catalog.descriptions or [None] * len(catalog.item_ids)  # filled in __post_init__
            for item, title, names, description in zip(catalog.item_ids, catalog.titles, catalog.categories,
                                                       descriptions):
                row = row_of.get(item)
                if row is not None:
                    categories[row] = split_categories(names)
                    texts[row] = item_text(title, description)
        self.category_names = np.array(sorted({name for names in categories for name in names}), dtype=str)
        keys = text_token_keys(texts, config.tokenizer)
        unique, items_per_key = np.unique(np.concatenate(keys) if keys else np.zeros(0, np.uint64), return_counts=True)
        self.token_keys = unique[items_per_key >= config.token_min_items].astype(np.uint64)
        category_rows, token_rows = content_rows(
            categories, texts, category_names=self.category_names, token_keys=self.token_keys,
            tokenizer=config.tokenizer, max_tokens=config.max_tokens)
        self.category_rows = pad(category_rows)
        self.token_rows = pad(token_rows)
        self.category_indptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum([len(rows) for rows in category_rows], out=self.category_indptr[1:])
        self.category_indices = (np.concatenate(category_rows) if category_rows else np.zeros(0)).astype(np.int32)


def pad(rows: list[np.ndarray]) -> np.ndarray:
    width = max([len(r) for r in rows] + [1])
    padded = np.full((len(rows), width), -1, dtype=np.int32)
    for index, r in enumerate(rows):
        padded[index, : len(r)] = r
    return padded


@dataclass
class Encoded:
    """Deduplicated interactions as indices, sorted by user then (timestamp, item)."""

    user_ids: np.ndarray  # index -> id (sorted strings)
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    ratings: np.ndarray | None


def encode(interactions: Interactions, catalog: ItemCatalog | None) -> Encoded:
    """Index users and items (catalog items without interactions included) and keep one
    interaction per (user, item): the latest, since serving excludes seen items anyway and the
    latest time is where the item sits in the user's recent history."""
    if len(interactions) == 0:
        raise ValueError("no interactions to train on")
    user_ids, users = np.unique(interactions.user_ids, return_inverse=True)
    known_items = interactions.item_ids if catalog is None else np.concatenate(
        [interactions.item_ids, np.asarray(catalog.item_ids, dtype=str)])
    item_ids = np.unique(known_items)
    items = np.searchsorted(item_ids, interactions.item_ids)
    order = np.lexsort((items, interactions.timestamps, users))
    users, items, timestamps = users[order], items[order], interactions.timestamps[order]
    ratings = None if interactions.ratings is None else interactions.ratings[order]
    pair = users.astype(np.int64) * len(item_ids) + items
    # The last row of each (user, item) pair in time order is its latest interaction.
    _, last_from_end = np.unique(pair[::-1], return_index=True)
    keep = np.sort(len(pair) - 1 - last_from_end)
    return Encoded(user_ids, item_ids, users[keep].astype(np.int64), items[keep].astype(np.int64),
                    timestamps[keep], None if ratings is None else ratings[keep])


def histories(users: np.ndarray, items: np.ndarray, length: int) -> np.ndarray:
    """For rows sorted by user then time: each row's previous ``length`` items, newest first (-1 pads)."""
    n = len(users)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if n else np.zeros(0, np.int64)
    first_row = np.repeat(starts, np.diff(np.r_[starts, n]))
    previous = np.arange(n)[:, None] - 1 - np.arange(length)[None, :]
    valid = previous >= first_row[:, None]
    return np.where(valid, items[np.maximum(previous, 0)], -1).astype(np.int32)


def latest_histories(users: np.ndarray, items: np.ndarray, n_users: int, length: int) -> np.ndarray:
    """Per user the last ``length`` items, newest first (-1 pads): the history serving uses.

    That is the training history of a next row: the user's last item, then that row's history.
    """
    history = np.full((n_users, length), -1, dtype=np.int32)
    if len(users):
        last = np.flatnonzero(np.r_[users[1:] != users[:-1], True])
        history[users[last]] = np.hstack([items[last, None], histories(users, items, length)[last, :-1]])
    return history


def csr(users: np.ndarray, items: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((items, users))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return indptr, items[order].astype(np.int32)
