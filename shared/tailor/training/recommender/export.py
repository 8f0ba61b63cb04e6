"""The trained retrieval model as the plain arrays and config the NumPy scorer
(:class:`tailor.recommend.scorer.Recommender`) serves."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tailor.recommend.scorer import (
    pooled_history,
)
from tailor.training.recommender.config import RetrievalConfig
from tailor.training.recommender.data import Content, Encoded, csr, latest_histories
from tailor.training.recommender.towers import RetrievalModel


def retrieval_arrays(model: RetrievalModel, data: Encoded, content: Content, config: RetrievalConfig,
                      *, with_normalizer: bool) -> dict[str, np.ndarray]:
    n_users, n_items = len(data.user_ids), len(data.item_ids)
    seen_indptr, seen_indices = csr(data.users, data.items, n_users)
    arrays = {
        "user_ids": data.user_ids.astype(str), "item_ids": data.item_ids.astype(str),
        **model.user_tower.export(), **model.item_tower.export(),
        "user_history": latest_histories(data.users, data.items, n_users, config.history_length),
        "seen_indptr": seen_indptr, "seen_indices": seen_indices,
        "category_names": content.category_names, "token_keys": content.token_keys,
        "item_category_indptr": content.category_indptr, "item_category_indices": content.category_indices,
        "item_popularity": np.bincount(data.items, minlength=n_items).astype(np.float32),
        "user_activity": np.bincount(data.users, minlength=n_users).astype(np.float32),
        "user_log_normalizer": np.zeros(n_users, dtype=np.float32),
    }
    if with_normalizer:
        arrays["user_log_normalizer"] = user_log_normalizer(arrays)
    return arrays


def retrieval_config(config: RetrievalConfig) -> dict:
    return {"tokenizer": config.tokenizer.to_dict(), "max_tokens": config.max_tokens,
            "embedding_dim": config.embedding_dim, "history_length": config.history_length}


def user_log_normalizer(arrays: dict[str, np.ndarray], chunk: int = 2048) -> np.ndarray:
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



def pooled_users(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """User vectors without the user id embedding: what an anonymous session with the same history gets."""
    return pooled_history(arrays["history_embeddings"], arrays["position_weights"], arrays["user_history"])
