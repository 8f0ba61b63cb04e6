"""The Keras models: item and user towers, the retrieval model that joins them with its task,
and the rating model (biased MF with the SVD++-style implicit term)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tailor.training.recommender.config import RatingConfig, RetrievalConfig
from tailor.training.recommender.data import Content
from tailor.training.recommender.tasks import RetrievalTask


def _bag_mean(table, rows):
    """Mean of the embedding rows ``rows`` (..., n) with -1 pads; zeros when a bag is empty."""
    valid = ops.cast(rows >= 0, table.dtype)
    embedded = ops.take(table, ops.maximum(rows, 0), axis=0)
    total = ops.sum(embedded * ops.expand_dims(valid, -1), axis=-2)
    return total / ops.maximum(ops.sum(valid, axis=-1, keepdims=True), 1.0)


class ItemTower(keras.layers.Layer):
    """Item vectors (``dim + 1``; the last column is the item bias) from id and content."""

    def __init__(self, n_items: int, dim: int, content: Content, seed: int, **kwargs):
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
