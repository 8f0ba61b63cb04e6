"""Training the retrieval model: build it for the catalog size, fit with validation NDCG@10 of the
exported scorer as the early-stopping metric."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from tailor.recommend.scorer import (
    Recommender,
    RecommenderArtifact,
)
from tailor.training.recommender.config import FULL_SOFTMAX_MAX_ITEMS, RetrievalConfig
from tailor.training.recommender.data import Content, Encoded, ItemCatalog, csr, histories
from tailor.training.recommender.export import retrieval_arrays, retrieval_config
from tailor.training.recommender.fit import Progress, fit_model
from tailor.training.recommender.tasks import RetrievalTask
from tailor.training.recommender.towers import ItemTower, RetrievalModel, UserTower
from tailor.training.recommender.validation import ranking_on


@dataclass
class RetrievalRun:
    model: RetrievalModel
    content: Content
    history: list[dict]
    best_epoch: int


def softmax_mode(config: RetrievalConfig, n_items: int) -> str:
    if config.softmax != "auto":
        return config.softmax
    return "full" if n_items <= FULL_SOFTMAX_MAX_ITEMS else "in_batch"


def build_retrieval(data: Encoded, content: Content, config: RetrievalConfig, seed: int) -> RetrievalModel:
    n_users, n_items = len(data.user_ids), len(data.item_ids)
    task = RetrievalTask(softmax_mode(config, n_items), n_items, content_loss_weight=config.content_loss_weight,
                         mask_history=config.mask_history)
    model = RetrievalModel(UserTower(n_users, n_items, config, seed),
                           ItemTower(n_items, config.embedding_dim, content, seed + 3), task)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=config.jit_compile)
    return model



def train_retrieval(data: Encoded, catalog: ItemCatalog | None, config: RetrievalConfig, seed: int, *,
                     epochs: int, evaluate_on: tuple[np.ndarray, np.ndarray] | None,
                     progress: Progress | None, stage: str) -> RetrievalRun:
    keras.utils.set_random_seed(seed)
    content = Content(data.item_ids, catalog, config)
    model = build_retrieval(data, content, config, seed)
    model.observe(data.items)
    x = {"user": data.users.astype(np.int32), "history": histories(data.users, data.items, config.history_length)}
    evaluate = None
    if evaluate_on is not None:
        held_users, held_items = evaluate_on
        seen = csr(data.users, data.items, len(data.user_ids))

        def evaluate() -> dict:
            scorer = Recommender(RecommenderArtifact(
                retrieval_arrays(model, data, content, config, with_normalizer=False), retrieval_config(config)))
            return ranking_on(scorer.user_matrix, scorer.item_matrix, seen, held_users, held_items,
                               config.max_validation_users, seed)

    evaluator = fit_model(model, x, data.items.astype(np.int32), batch_size=config.batch_size, epochs=epochs,
                     evaluate=evaluate, metric="ndcg", higher_is_better=True, patience=config.patience,
                     progress=progress, stage=stage)
    return RetrievalRun(model, content, evaluator.history, evaluator.best_epoch)
