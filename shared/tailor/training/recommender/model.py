"""Train the recommender with Keras and export it for the NumPy scorer (:mod:`tailor.recommend.scorer`).

Two models, factored like TensorFlow Recommenders (towers apart from the task; each model
implements ``compute_loss``; :func:`_fit` is the one training loop):

**Retrieval** (top-K from implicit interactions), :class:`RetrievalModel`:

- :class:`UserTower`: user id embedding + the recency-weighted mean of the embeddings of the
  user's ``history_length`` most recent items (learned weight per position, newest first).
  For a user with history, that pooled part carries most of the signal: on a temporal split
  what a user did last predicts what they do next far better than their long-run taste.
- :class:`ItemTower`: item id embedding + mean category embedding + mean title/description token
  embedding (tokens from :mod:`tailor.sentiment.text`). The content part alone is a usable vector for an
  item that arrives after training: an auxiliary loss trains the content-only vectors against the
  same user vectors. Items with no training interactions use their content part only.
- :class:`RetrievalTask`: next-item softmax. Each training interaction is an example whose query
  is the user *as they were just before it* (their earlier items), so training mirrors serving
  (predict what comes after the history we have). ``full`` softmax scores the whole catalog
  (exact, affordable up to ~20k items) and masks the items already in the example's history,
  as serving excludes seen items; ``in_batch`` uses the other targets of the batch as negatives
  with the logQ correction (Yi et al., RecSys 2019) for catalogs where the full softmax is too
  costly.

**Ratings**, :class:`RatingModel`: biased matrix factorisation trained on MSE with L2 on the
rows a batch touches (the classic SGD-MF regulariser), plus the SVD++-style implicit term
(Koren 2008): the user factor adds ``|N(u)|^-1/2 * sum of y_j`` over the items ``j`` the user
rated. The exported user factors already include that term, so serving is a plain dot product.

:func:`train_recommender` carves a validation split from the data it is given (per user the
newest 20%, as protocol T1), trains until the validation metric stops improving, reports the
validation metrics (and the popularity baseline's), then refits on all the data for the best
number of epochs and exports. Only the training data chooses anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import keras
import numpy as np
from keras import ops

from tailor.recommend import evaluation
from tailor.recommend.scorer import (
    AUDIENCE_RULES,
    RatingPredictor,
    Recommender,
    RecommenderArtifact,
    content_rows,
    item_text,
    pooled_history,
    split_categories,
    text_token_keys,
)
from tailor.sentiment.text import TokenizerConfig

Progress = Callable[[str], None]
FULL_SOFTMAX_MAX_ITEMS = 20_000
_MASKED = -1e9


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class RetrievalConfig:
    """Defaults chosen on the validation split of ml-100k's T1 training part (never its test)."""

    embedding_dim: int = 64
    history_length: int = 50
    recency_tau: float = 20.0  # initial position weights exp(-p / tau), then learned
    learn_position_weights: bool = True
    user_dropout: float = 0.1  # share of examples trained without the user embedding (sessions)
    content_loss_weight: float = 0.3
    mask_history: bool = True
    softmax: str = "auto"  # "full", "in_batch", or "auto" (full up to FULL_SOFTMAX_MAX_ITEMS)
    learning_rate: float = 3e-3
    batch_size: int = 512
    max_epochs: int = 12
    patience: int = 1  # validation NDCG rises smoothly, then falls: one worse epoch is enough
    token_min_items: int = 2  # a token must describe at least this many items to get an embedding
    max_tokens: int = 32  # per item, first distinct known tokens of title + description
    tokenizer: TokenizerConfig = field(default_factory=lambda: TokenizerConfig(word_ngrams=1, cjk_ngrams=2))
    max_validation_users: int = 5000
    # XLA fuses the per-example work on the logits (2-3x faster on ml-100k); Keras' "auto" leaves
    # it off for this model. Compiling costs a few seconds, so tiny test runs turn it off.
    jit_compile: bool = True

    def __post_init__(self) -> None:
        if self.softmax not in ("auto", "full", "in_batch"):
            raise ValueError(f"softmax must be auto, full or in_batch, got {self.softmax!r}")
        if self.embedding_dim < 1 or self.history_length < 1 or self.batch_size < 2:
            raise ValueError("embedding_dim and history_length must be >= 1 and batch_size >= 2")
        if not 0.0 <= self.user_dropout < 1.0:
            raise ValueError("user_dropout must be within [0, 1)")


@dataclass(frozen=True)
class RatingConfig:
    """Defaults chosen on a validation split of ml-100k's u1.base (never a u*.test file)."""

    factors: int = 64
    l2: float = 0.1  # on the user/item factor rows of each batch (mean over the batch)
    bias_l2: float = 0.01
    implicit_l2: float = 100.0  # on all implicit factors y, divided by the number of ratings
    implicit: bool = True
    init_std: float = 0.05
    learning_rate: float = 0.01
    batch_size: int = 4096
    max_epochs: int = 40
    patience: int = 2
    validation: str = "temporal"  # "temporal" (newest 20% per user) or "random" (20% of rows)
    jit_compile: bool = True  # XLA, as for retrieval

    def __post_init__(self) -> None:
        if self.validation not in ("temporal", "random"):
            raise ValueError(f"validation must be temporal or random, got {self.validation!r}")


# --------------------------------------------------------------------------- input data


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


class _Content:
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
        self.category_rows = _pad(category_rows)
        self.token_rows = _pad(token_rows)
        self.category_indptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum([len(rows) for rows in category_rows], out=self.category_indptr[1:])
        self.category_indices = (np.concatenate(category_rows) if category_rows else np.zeros(0)).astype(np.int32)


def _pad(rows: list[np.ndarray]) -> np.ndarray:
    width = max([len(r) for r in rows] + [1])
    padded = np.full((len(rows), width), -1, dtype=np.int32)
    for index, r in enumerate(rows):
        padded[index, : len(r)] = r
    return padded


@dataclass
class _Encoded:
    """Deduplicated interactions as indices, sorted by user then (timestamp, item)."""

    user_ids: np.ndarray  # index -> id (sorted strings)
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    ratings: np.ndarray | None


def _encode(interactions: Interactions, catalog: ItemCatalog | None) -> _Encoded:
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
    return _Encoded(user_ids, item_ids, users[keep].astype(np.int64), items[keep].astype(np.int64),
                    timestamps[keep], None if ratings is None else ratings[keep])


def _histories(users: np.ndarray, items: np.ndarray, length: int) -> np.ndarray:
    """For rows sorted by user then time: each row's previous ``length`` items, newest first (-1 pads)."""
    n = len(users)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if n else np.zeros(0, np.int64)
    first_row = np.repeat(starts, np.diff(np.r_[starts, n]))
    previous = np.arange(n)[:, None] - 1 - np.arange(length)[None, :]
    valid = previous >= first_row[:, None]
    return np.where(valid, items[np.maximum(previous, 0)], -1).astype(np.int32)


def _latest_histories(users: np.ndarray, items: np.ndarray, n_users: int, length: int) -> np.ndarray:
    """Per user the last ``length`` items, newest first (-1 pads): the history serving uses.

    That is the training history of a next row: the user's last item, then that row's history.
    """
    history = np.full((n_users, length), -1, dtype=np.int32)
    if len(users):
        last = np.flatnonzero(np.r_[users[1:] != users[:-1], True])
        history[users[last]] = np.hstack([items[last, None], _histories(users, items, length)[last, :-1]])
    return history


def _csr(users: np.ndarray, items: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((items, users))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return indptr, items[order].astype(np.int32)


# --------------------------------------------------------------------------- towers and task


def _bag_mean(table, rows):
    """Mean of the embedding rows ``rows`` (..., n) with -1 pads; zeros when a bag is empty."""
    valid = ops.cast(rows >= 0, table.dtype)
    embedded = ops.take(table, ops.maximum(rows, 0), axis=0)
    total = ops.sum(embedded * ops.expand_dims(valid, -1), axis=-2)
    return total / ops.maximum(ops.sum(valid, axis=-1, keepdims=True), 1.0)


class ItemTower(keras.layers.Layer):
    """Item vectors (``dim + 1``; the last column is the item bias) from id and content."""

    def __init__(self, n_items: int, dim: int, content: _Content, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.n_items, self.dim = n_items, dim
        init = keras.initializers.RandomNormal(stddev=0.05, seed=seed)
        self.id_embeddings = self.add_weight(shape=(n_items, dim + 1), initializer=init, name="id_embeddings")
        self.category_embeddings = self.add_weight(
            shape=(max(len(content.category_names), 1), dim + 1), initializer=init, name="category_embeddings")
        self.token_embeddings = self.add_weight(
            shape=(max(len(content.token_keys), 1), dim + 1), initializer=init, name="token_embeddings")
        self._n_categories, self._n_tokens = len(content.category_names), len(content.token_keys)
        self._category_rows = content.category_rows
        self._token_rows = content.token_rows
        # 1 for items with training interactions; the others keep a content-only vector, as
        # new items do (set by RetrievalModel.observe).
        self.id_mask = self.add_weight(shape=(n_items, 1), initializer="ones", trainable=False, name="id_mask")

    def content(self, items=None):
        categories = self._category_rows if items is None else ops.take(self._category_rows, items, axis=0)
        tokens = self._token_rows if items is None else ops.take(self._token_rows, items, axis=0)
        return _bag_mean(self.category_embeddings, categories) + _bag_mean(self.token_embeddings, tokens)

    def call(self, items=None, content_only: bool = False):
        content = self.content(items)
        if content_only:
            return content
        mask = self.id_mask if items is None else ops.take(self.id_mask, items, axis=0)
        ids = self.id_embeddings if items is None else ops.take(self.id_embeddings, items, axis=0)
        return ids * mask + content

    def export(self) -> dict[str, np.ndarray]:
        return {
            "item_vectors": np.asarray(ops.convert_to_numpy(self(None)), dtype=np.float32),
            "category_embeddings": self.category_embeddings.numpy()[: self._n_categories],
            "token_embeddings": self.token_embeddings.numpy()[: self._n_tokens],
        }


class UserTower(keras.layers.Layer):
    """User vectors (``dim + 1``; the last column is 1, matching the item bias) from id and history."""

    def __init__(self, n_users: int, n_items: int, config: RetrievalConfig, seed: int, **kwargs):
        super().__init__(**kwargs)
        dim, length = config.embedding_dim, config.history_length
        self.user_embeddings = self.add_weight(
            shape=(n_users, dim), initializer=keras.initializers.RandomNormal(stddev=0.01, seed=seed),
            name="user_embeddings")
        self.history_embeddings = self.add_weight(
            shape=(n_items, dim), initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed + 1),
            name="history_embeddings")
        initial = np.exp(-np.arange(length) / config.recency_tau)
        # softplus(raw) = initial, so the weights start as exponential recency decay.
        self.position_raw = self.add_weight(
            shape=(length,), initializer=keras.initializers.Constant(np.log(np.expm1(initial))),
            trainable=config.learn_position_weights, name="position_raw")
        self.user_dropout = config.user_dropout
        self._seed = keras.random.SeedGenerator(seed + 2)

    def position_weights(self):
        return ops.softplus(self.position_raw)

    def call(self, users, history, training=False):
        valid = ops.cast(history >= 0, "float32")
        weights = valid * ops.expand_dims(self.position_weights(), 0)
        weights = weights / ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1e-6)
        embedded = ops.take(self.history_embeddings, ops.maximum(history, 0), axis=0)
        pooled = ops.einsum("bl,bld->bd", weights, embedded)
        own = ops.take(self.user_embeddings, users, axis=0)
        if training and self.user_dropout > 0:
            keep = keras.random.uniform((ops.shape(users)[0], 1), seed=self._seed) >= self.user_dropout
            own = own * ops.cast(keep, own.dtype)
        vectors = own + pooled
        return ops.concatenate([vectors, ops.ones_like(vectors[:, :1])], axis=1)

    def export(self) -> dict[str, np.ndarray]:
        return {
            "user_embeddings": self.user_embeddings.numpy(),
            "history_embeddings": self.history_embeddings.numpy(),
            "position_weights": ops.convert_to_numpy(self.position_weights()).astype(np.float32),
        }


class RetrievalTask:
    """Next-item softmax loss over the catalog (``full``) or the batch's targets (``in_batch``)."""

    def __init__(self, mode: str, n_items: int, *, content_loss_weight: float, mask_history: bool):
        self.mode, self.n_items = mode, n_items
        self.content_loss_weight = content_loss_weight
        self.mask_history = mask_history

    def _cross_entropy(self, targets, logits):
        return ops.mean(keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))

    def compute_loss(self, queries, targets, history, item_tower: ItemTower, log_q):
        """``log_q``: log sampling probability of each item as an in-batch negative (its frequency)."""
        if self.mode == "full":
            loss = self._full(queries, targets, history, item_tower)
        else:
            loss = self._in_batch(queries, targets, item_tower(targets), log_q)
        if self.content_loss_weight > 0:
            # Content-only vectors must rank well against the same queries (items new after
            # training get nothing else); in-batch negatives keep this second loss cheap.
            loss = loss + self.content_loss_weight * self._in_batch(
                queries, targets, item_tower(targets, content_only=True), log_q)
        return loss

    def _full(self, queries, targets, history, item_tower):
        logits = ops.matmul(queries, ops.transpose(item_tower(None)))
        if self.mask_history:
            # Items already in the example's history cannot be its next item (serving excludes them).
            batch = ops.shape(history)[0]
            rows = ops.broadcast_to(ops.expand_dims(ops.arange(batch), 1), ops.shape(history))
            columns = ops.where(history >= 0, history, self.n_items)  # pads land in a dropped column
            indices = ops.reshape(ops.stack([rows, ops.cast(columns, rows.dtype)], axis=-1), (-1, 2))
            hits = ops.scatter(indices, ops.ones((ops.shape(indices)[0],)), (batch, self.n_items + 1))
            logits = ops.where(hits[:, : self.n_items] > 0, _MASKED, logits)
        return self._cross_entropy(targets, logits)

    def _in_batch(self, queries, targets, candidates, log_q):
        """Softmax over the batch's own targets, with logQ correction and accidental hits masked."""
        batch = ops.shape(targets)[0]
        # logQ correction: popular items are over-represented as in-batch negatives.
        log_q = ops.take(log_q, targets, axis=0)
        same = ops.equal(ops.expand_dims(targets, 1), ops.expand_dims(targets, 0))
        accidental = ops.logical_and(same, ops.logical_not(ops.eye(batch, dtype="bool")))
        logits = ops.matmul(queries, ops.transpose(candidates)) - ops.expand_dims(log_q, 0)
        logits = ops.where(accidental, _MASKED, logits)
        return self._cross_entropy(ops.arange(batch), logits)


class RetrievalModel(keras.Model):
    """Query tower (user) + candidate tower (item) + task. ``call`` returns the user vectors."""

    def __init__(self, user_tower: UserTower, item_tower: ItemTower, task: RetrievalTask, **kwargs):
        super().__init__(**kwargs)
        self.user_tower, self.item_tower, self.task = user_tower, item_tower, task
        self.candidate_log_probability = self.add_weight(
            shape=(item_tower.n_items,), initializer="zeros", trainable=False, name="candidate_log_probability")
        self.built = True  # the towers create their weights up front

    def observe(self, items: np.ndarray) -> None:
        """Set what depends on the training interactions (item indices): which items have an id
        embedding, and each item's frequency (the in-batch sampling probability)."""
        counts = np.bincount(items, minlength=self.item_tower.n_items).astype(np.float64)
        self.item_tower.id_mask.assign((counts > 0).astype(np.float32)[:, None])
        smoothed = counts + 1.0
        self.candidate_log_probability.assign(np.log(smoothed / smoothed.sum()).astype(np.float32))

    def call(self, inputs, training=False):
        return self.user_tower(inputs["user"], inputs["history"], training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.task.compute_loss(y_pred, y, x["history"], self.item_tower, self.candidate_log_probability)

    def scores(self, users: np.ndarray, history: np.ndarray) -> np.ndarray:
        """Full-catalog scores for the given users and histories (what the parity test compares)."""
        queries = self({"user": ops.convert_to_tensor(users), "history": ops.convert_to_tensor(history)})
        return ops.convert_to_numpy(ops.matmul(queries, ops.transpose(self.item_tower(None))))


class RatingModel(keras.Model):
    """Biased MF with an SVD++-style implicit user term; ``call`` returns predicted ratings."""

    def __init__(self, n_users: int, n_items: int, global_mean: float, rated_users: np.ndarray,
                 rated_items: np.ndarray, n_ratings: int, config: RatingConfig, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.config, self.global_mean, self.n_ratings = config, float(global_mean), max(int(n_ratings), 1)
        init = keras.initializers.RandomNormal(stddev=config.init_std, seed=seed)
        k = config.factors
        self.user_factors = self.add_weight(shape=(n_users, k), initializer=init, name="user_factors")
        self.item_factors = self.add_weight(shape=(n_items, k), initializer=init, name="item_factors")
        self.user_bias = self.add_weight(shape=(n_users,), initializer="zeros", name="user_bias")
        self.item_bias = self.add_weight(shape=(n_items,), initializer="zeros", name="item_bias")
        self.n_users = n_users
        if config.implicit:
            self.implicit_factors = self.add_weight(
                shape=(n_items, k), initializer=keras.initializers.RandomNormal(stddev=config.init_std, seed=seed + 1),
                name="implicit_factors")
            counts = np.bincount(rated_users, minlength=n_users).astype(np.float32)
            self._rated_users = rated_users.astype(np.int32)
            self._rated_items = rated_items.astype(np.int32)
            self._rated_weight = (1.0 / np.sqrt(counts[rated_users]))[:, None].astype(np.float32)
        self.built = True  # every weight exists from the start

    def all_user_factors(self):
        """Explicit factors plus, with ``implicit``, the normalised sum of the rated items' y."""
        if not self.config.implicit:
            return self.user_factors
        contributions = ops.take(self.implicit_factors, self._rated_items, axis=0) * self._rated_weight
        implicit = ops.segment_sum(contributions, self._rated_users, num_segments=self.n_users)
        return self.user_factors + implicit

    def call(self, inputs, training=False):
        users, items = inputs["user"], inputs["item"]
        user_vectors = ops.take(self.all_user_factors(), users, axis=0)
        return (self.global_mean + ops.take(self.user_bias, users) + ops.take(self.item_bias, items)
                + ops.sum(user_vectors * ops.take(self.item_factors, items, axis=0), axis=1))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        c = self.config
        users, items = x["user"], x["item"]
        p, q = ops.take(self.user_factors, users, axis=0), ops.take(self.item_factors, items, axis=0)
        loss = ops.mean(ops.square(ops.cast(y, y_pred.dtype) - y_pred))
        loss = loss + c.l2 * ops.mean(ops.sum(p * p, axis=1) + ops.sum(q * q, axis=1))
        loss = loss + c.bias_l2 * ops.mean(ops.square(ops.take(self.user_bias, users))
                                           + ops.square(ops.take(self.item_bias, items)))
        if c.implicit:
            loss = loss + c.implicit_l2 * ops.sum(ops.square(self.implicit_factors)) / self.n_ratings
        return loss

    def export(self) -> dict[str, np.ndarray]:
        return {
            "rating_user_factors": ops.convert_to_numpy(self.all_user_factors()).astype(np.float32),
            "rating_item_factors": self.item_factors.numpy().astype(np.float32),
            "rating_user_bias": self.user_bias.numpy().astype(np.float32),
            "rating_item_bias": self.item_bias.numpy().astype(np.float32),
        }


# --------------------------------------------------------------------------- the training loop


class _EpochEvaluator(keras.callbacks.Callback):
    """Scores the served (exported) model after each epoch; stops after ``patience`` epochs
    without improvement and restores the best weights."""

    def __init__(self, evaluate: Callable[[], dict] | None, metric: str | None, higher_is_better: bool,
                 patience: int, progress: Progress | None, stage: str, epochs: int):
        super().__init__()
        self.evaluate, self.metric, self.higher_is_better = evaluate, metric, higher_is_better
        self.patience, self.progress, self.stage, self.epochs = patience, progress, stage, epochs
        self.history: list[dict] = []
        self.best_epoch, self.best_value = 0, None
        self._best_weights: list[np.ndarray] | None = None
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1, "loss": float((logs or {}).get("loss", float("nan")))}
        if self.evaluate is not None:
            entry.update(self.evaluate())
            assert self.metric is not None, "an evaluator needs the metric it watches"
            value = entry[self.metric]
            better = self.best_value is None or (value > self.best_value if self.higher_is_better
                                                 else value < self.best_value)
            if better:
                self.best_epoch, self.best_value = epoch + 1, value
                self._best_weights = [np.array(w) for w in self.model.get_weights()]
            elif epoch + 1 - self.best_epoch >= self.patience:
                self.model.stop_training = True
        else:
            self.best_epoch = epoch + 1
        entry["seconds"] = round(time.monotonic() - self._started, 1)
        self.history.append(entry)
        if self.progress:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in entry.items() if k not in ("epoch", "seconds")
                              and isinstance(v, float))
            self.progress(f"{self.stage} epoch {epoch + 1}/{self.epochs}: {shown} ({entry['seconds']} s)")

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)


def _fit(model: keras.Model, x: dict, y: np.ndarray, *, batch_size: int, epochs: int,
         evaluate: Callable[[], dict] | None = None, metric: str | None = None, higher_is_better: bool = True,
         patience: int = 1, progress: Progress | None = None, stage: str = "train") -> _EpochEvaluator:
    """The one training loop: Keras ``fit``; with ``evaluate``, early stopping on its ``metric``."""
    evaluator = _EpochEvaluator(evaluate, metric, higher_is_better, patience, progress, stage, epochs)
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, callbacks=[evaluator], verbose=0)
    return evaluator


# --------------------------------------------------------------------------- retrieval training


@dataclass
class _RetrievalRun:
    model: RetrievalModel
    content: _Content
    history: list[dict]
    best_epoch: int


def _softmax_mode(config: RetrievalConfig, n_items: int) -> str:
    if config.softmax != "auto":
        return config.softmax
    return "full" if n_items <= FULL_SOFTMAX_MAX_ITEMS else "in_batch"


def _build_retrieval(data: _Encoded, content: _Content, config: RetrievalConfig, seed: int) -> RetrievalModel:
    n_users, n_items = len(data.user_ids), len(data.item_ids)
    task = RetrievalTask(_softmax_mode(config, n_items), n_items, content_loss_weight=config.content_loss_weight,
                         mask_history=config.mask_history)
    model = RetrievalModel(UserTower(n_users, n_items, config, seed),
                           ItemTower(n_items, config.embedding_dim, content, seed + 3), task)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=config.jit_compile)
    return model


def _retrieval_arrays(model: RetrievalModel, data: _Encoded, content: _Content, config: RetrievalConfig,
                      *, with_normalizer: bool) -> dict[str, np.ndarray]:
    n_users, n_items = len(data.user_ids), len(data.item_ids)
    seen_indptr, seen_indices = _csr(data.users, data.items, n_users)
    arrays = {
        "user_ids": data.user_ids.astype(str), "item_ids": data.item_ids.astype(str),
        **model.user_tower.export(), **model.item_tower.export(),
        "user_history": _latest_histories(data.users, data.items, n_users, config.history_length),
        "seen_indptr": seen_indptr, "seen_indices": seen_indices,
        "category_names": content.category_names, "token_keys": content.token_keys,
        "item_category_indptr": content.category_indptr, "item_category_indices": content.category_indices,
        "item_popularity": np.bincount(data.items, minlength=n_items).astype(np.float32),
        "user_activity": np.bincount(data.users, minlength=n_users).astype(np.float32),
        "user_log_normalizer": np.zeros(n_users, dtype=np.float32),
    }
    if with_normalizer:
        arrays["user_log_normalizer"] = _user_log_normalizer(arrays)
    return arrays


def _retrieval_config(config: RetrievalConfig) -> dict:
    return {"tokenizer": config.tokenizer.to_dict(), "max_tokens": config.max_tokens,
            "embedding_dim": config.embedding_dim, "history_length": config.history_length}


def _user_log_normalizer(arrays: dict[str, np.ndarray], chunk: int = 2048) -> np.ndarray:
    """log-sum-exp of each user's scores over the catalog: turns scores into log P(item | user)."""
    users = arrays["user_embeddings"] + pooled_users(arrays)
    users = np.hstack([users, np.ones((len(users), 1), np.float32)])
    items = arrays["item_vectors"]
    result = np.empty(len(users), dtype=np.float32)
    for start in range(0, len(users), chunk):
        logits = users[start: start + chunk] @ items.T
        top = logits.max(axis=1, keepdims=True)
        result[start: start + chunk] = (top[:, 0] + np.log(np.exp(logits - top).sum(axis=1)))
    return result


def _train_retrieval(data: _Encoded, catalog: ItemCatalog | None, config: RetrievalConfig, seed: int, *,
                     epochs: int, evaluate_on: tuple[np.ndarray, np.ndarray] | None,
                     progress: Progress | None, stage: str) -> _RetrievalRun:
    keras.utils.set_random_seed(seed)
    content = _Content(data.item_ids, catalog, config)
    model = _build_retrieval(data, content, config, seed)
    model.observe(data.items)
    x = {"user": data.users.astype(np.int32), "history": _histories(data.users, data.items, config.history_length)}
    evaluate = None
    if evaluate_on is not None:
        held_users, held_items = evaluate_on
        seen = _csr(data.users, data.items, len(data.user_ids))

        def evaluate() -> dict:
            scorer = Recommender(RecommenderArtifact(
                _retrieval_arrays(model, data, content, config, with_normalizer=False), _retrieval_config(config)))
            return _ranking_on(scorer.user_matrix, scorer.item_matrix, seen, held_users, held_items,
                               config.max_validation_users, seed)

    evaluator = _fit(model, x, data.items.astype(np.int32), batch_size=config.batch_size, epochs=epochs,
                     evaluate=evaluate, metric="ndcg", higher_is_better=True, patience=config.patience,
                     progress=progress, stage=stage)
    return _RetrievalRun(model, content, evaluator.history, evaluator.best_epoch)


def _ranking_on(user_vectors: np.ndarray, item_vectors: np.ndarray, seen: tuple[np.ndarray, np.ndarray],
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


def _popularity_on(data: _Encoded, held_users: np.ndarray, held_items: np.ndarray, max_users: int, seed: int) -> dict:
    """The popularity baseline as a model: every user vector is 1, every item vector its count."""
    counts = np.bincount(data.items, minlength=len(data.item_ids)).astype(np.float32)[:, None]
    return _ranking_on(np.ones((len(data.user_ids), 1), np.float32), counts,
                       _csr(data.users, data.items, len(data.user_ids)), held_users, held_items, max_users, seed)


def _choose_audience_rule(scorer: Recommender, fit: _Encoded, held_users: np.ndarray, held_items: np.ndarray,
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


# --------------------------------------------------------------------------- rating training


@dataclass
class RatingResult:
    arrays: dict[str, np.ndarray]
    config: dict  # global_mean, min, max (the predictor's clip range)
    report: dict
    model: RatingModel  # the final Keras model (for parity checks); serving uses ``arrays``


def _rating_rows(data: _Encoded) -> np.ndarray:
    if data.ratings is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.isfinite(data.ratings))


def _rating_validation_split(data: _Encoded, rows: np.ndarray, config: RatingConfig, fraction: float,
                             seed: int) -> np.ndarray:
    if config.validation == "random":
        return np.random.default_rng(seed).random(len(rows)) < fraction
    return evaluation.temporal_holdout(data.users[rows], data.items[rows], data.timestamps[rows], fraction)


def _train_rating_once(users, items, ratings, n_users, n_items, config: RatingConfig, seed: int, *, epochs: int,
                       evaluate_on=None, progress=None, stage="rating") -> tuple[RatingModel, _EpochEvaluator, dict]:
    keras.utils.set_random_seed(seed)
    global_mean = float(ratings.mean())
    model = RatingModel(n_users, n_items, global_mean, users, items, len(ratings), config, seed)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=config.jit_compile)
    clip = {"global_mean": global_mean, "min": float(ratings.min()), "max": float(ratings.max())}
    evaluate = None
    if evaluate_on is not None:
        held_users, held_items, held_ratings = evaluate_on
        user_index = {str(u): u for u in range(n_users)}
        item_index = {str(i): i for i in range(n_items)}

        def evaluate() -> dict:
            predictor = RatingPredictor(model.export(), clip, user_index, item_index)
            predicted = predictor.predict([str(u) for u in held_users], [str(i) for i in held_items])
            return {"rmse": evaluation.rmse(predicted, held_ratings), "mae": evaluation.mae(predicted, held_ratings)}

    x = {"user": users.astype(np.int32), "item": items.astype(np.int32)}
    evaluator = _fit(model, x, ratings.astype(np.float32), batch_size=config.batch_size, epochs=epochs,
                     evaluate=evaluate, metric="rmse", higher_is_better=False, patience=config.patience,
                     progress=progress, stage=stage)
    return model, evaluator, clip


def train_rating_model(interactions: Interactions, config: RatingConfig = RatingConfig(), *, seed: int = 0,
                       validation_fraction: float = 0.2, progress: Progress | None = None) -> RatingResult | None:
    """Select the epoch count on a validation split, then refit on all ratings and export.

    Returns ``None`` when no interaction carries a rating. Arrays are indexed like the
    interactions' sorted unique user and item ids (``user_ids``/``item_ids`` are included).
    """
    return _train_rating(_encode(interactions, None), config, seed, validation_fraction, progress)


def _train_rating(data: _Encoded, config: RatingConfig, seed: int, validation_fraction: float,
                  progress: Progress | None) -> RatingResult | None:
    rows = _rating_rows(data)
    if len(rows) == 0:
        return None
    n_users, n_items = len(data.user_ids), len(data.item_ids)
    assert data.ratings is not None  # _rating_rows found rated rows
    users, items, ratings = data.users[rows], data.items[rows], data.ratings[rows]
    started = time.monotonic()
    held = _rating_validation_split(data, rows, config, validation_fraction, seed)
    _, evaluator, _ = _train_rating_once(
        users[~held], items[~held], ratings[~held], n_users, n_items, config, seed, epochs=config.max_epochs,
        evaluate_on=(users[held], items[held], ratings[held]), progress=progress, stage="rating validation")
    best = evaluator.best_epoch
    validation = next(e for e in evaluator.history if e["epoch"] == best)
    model, _, clip = _train_rating_once(users, items, ratings, n_users, n_items, config, seed, epochs=best,
                                        progress=progress, stage="rating final")
    arrays = {"user_ids": data.user_ids.astype(str), "item_ids": data.item_ids.astype(str), **model.export()}
    report = {"validation": {"split": config.validation, "ratings": int(held.sum()),
                             "rmse": validation["rmse"], "mae": validation["mae"]},
              "epochs": best, "history": evaluator.history, "ratings": int(len(rows)),
              "seconds": round(time.monotonic() - started, 1), "config": asdict(config)}
    return RatingResult(arrays, clip, report, model)


# --------------------------------------------------------------------------- the whole recommender


@dataclass
class TrainedRecommender:
    artifact: RecommenderArtifact
    report: dict
    retrieval_model: RetrievalModel  # the final Keras models (parity checks); serving uses ``artifact``
    rating_model: RatingModel | None = None

    def export(self) -> tuple[dict[str, np.ndarray], dict]:
        """Plain arrays and a JSON-able config: all :class:`tailor.recommend.scorer.Recommender` needs."""
        return self.artifact.arrays, self.artifact.config


def train_recommender(interactions: Interactions, catalog: ItemCatalog | None = None, *,
                      retrieval: RetrievalConfig = RetrievalConfig(), rating: RatingConfig | None = RatingConfig(),
                      seed: int = 0, validation_fraction: float = 0.2, model_version: str = "unversioned",
                      progress: Progress | None = None) -> TrainedRecommender:
    """Train retrieval (and, when interactions carry ratings, the rating model) and export both.

    1. Validation: per user the newest ``validation_fraction`` of interactions are held out;
       the retrieval model trains on the rest until validation NDCG@10 of the *exported* scorer
       stops improving. The report holds the T1 metrics at the best epoch beside popularity's,
       the content-only (new item) metrics, and A1 for each audience rule (the best is served).
    2. Final fit on all interactions for the best epoch count; export; A1 rule from step 1.
    """
    started = time.monotonic()
    data = _encode(interactions, catalog)
    n_users, n_items = len(data.user_ids), len(data.item_ids)
    say = progress or (lambda message: None)
    say(f"{len(data.users)} interactions ({len(interactions) - len(data.users)} repeats merged), "
        f"{n_users} users, {n_items} items")

    held = evaluation.temporal_holdout(data.users, data.items, data.timestamps, validation_fraction)
    fit = replace(data, users=data.users[~held], items=data.items[~held], timestamps=data.timestamps[~held],
                  ratings=None if data.ratings is None else data.ratings[~held])
    held_users, held_items = data.users[held], data.items[held]
    if len(fit.users) == 0:
        raise ValueError("too little data to hold out a validation split: every user has a single interaction")
    run = _train_retrieval(fit, catalog, retrieval, seed, epochs=retrieval.max_epochs,
                           evaluate_on=(held_users, held_items), progress=progress, stage="retrieval validation")
    arrays = _retrieval_arrays(run.model, fit, run.content, retrieval, with_normalizer=True)
    scorer = Recommender(RecommenderArtifact(arrays, _retrieval_config(retrieval)))
    validation = next(e for e in run.history if e["epoch"] == run.best_epoch)
    max_users, seen = retrieval.max_validation_users, _csr(fit.users, fit.items, n_users)
    # What a new item gets (its content alone) and what an anonymous session gets (no user embedding).
    content_only = ops.convert_to_numpy(run.model.item_tower(None, content_only=True)).astype(np.float32)
    cold = _ranking_on(scorer.user_matrix, content_only, seen, held_users, held_items, max_users, seed)
    session_vectors = np.hstack([pooled_users(arrays), np.ones((n_users, 1), np.float32)])
    sessions = _ranking_on(session_vectors, scorer.item_matrix, seen, held_users, held_items, max_users, seed)
    audience_rule, audiences = _choose_audience_rule(scorer, fit, held_users, held_items, seed)
    report: dict[str, Any] = {
        "validation": {
            "protocol": "T1 on the training data: per user the newest "
                        f"{validation_fraction:.0%} held out, full ranking, k=10",
            "interactions": int(held.sum()),
            "model": {k: validation[k] for k in ("precision", "recall", "ndcg", "coverage", "users")},
            "popularity": _popularity_on(fit, held_users, held_items, max_users, seed),
            "content_only_items": cold,
            "history_only_users": sessions,
            "audiences": audiences, "audience_rule": audience_rule,
        },
        "retrieval": {"epochs": run.best_epoch, "history": run.history,
                      "softmax": _softmax_mode(retrieval, n_items), "config": asdict(retrieval)},
    }
    say(f"retrieval validation NDCG@10 {validation['ndcg']:.4f} at epoch {run.best_epoch} "
        f"(popularity {report['validation']['popularity']['ndcg']:.4f}); audience rule {audience_rule}")

    final = _train_retrieval(data, catalog, retrieval, seed, epochs=run.best_epoch, evaluate_on=None,
                             progress=progress, stage="retrieval final")
    arrays = _retrieval_arrays(final.model, data, final.content, retrieval, with_normalizer=True)
    config = {**_retrieval_config(retrieval), "model_version": model_version, "audience_rule": audience_rule,
              "rating": None}
    rated = None
    if rating is not None:
        rated = _train_rating(data, rating, seed, validation_fraction, progress)
        if rated is not None:
            arrays.update({name: value for name, value in rated.arrays.items() if name.startswith("rating_")})
            config["rating"] = rated.config
            report["rating"] = rated.report
            say(f"rating validation RMSE {rated.report['validation']['rmse']:.4f} at epoch {rated.report['epochs']}")
    report["seconds"] = round(time.monotonic() - started, 1)
    return TrainedRecommender(RecommenderArtifact(arrays, config), report, final.model,
                              None if rated is None else rated.model)


def pooled_users(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """User vectors without the user id embedding: what an anonymous session with the same history gets."""
    return pooled_history(arrays["history_embeddings"], arrays["position_weights"], arrays["user_history"])
