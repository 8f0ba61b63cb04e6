"""The whole recommender: validation run, final fit, rating model, one artifact and its report."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from keras import ops

from tailor.recommend import evaluation
from tailor.recommend.scorer import (
    Recommender,
    RecommenderArtifact,
)
from tailor.training.recommender.config import RatingConfig, RetrievalConfig
from tailor.training.recommender.data import Interactions, ItemCatalog, csr, encode
from tailor.training.recommender.export import pooled_users, retrieval_arrays, retrieval_config
from tailor.training.recommender.fit import Progress
from tailor.training.recommender.rating import train_rating
from tailor.training.recommender.retrieval import softmax_mode, train_retrieval
from tailor.training.recommender.towers import RatingModel, RetrievalModel
from tailor.training.recommender.validation import (
    choose_audience_rule,
    choose_cold_start,
    popularity_on,
    ranking_on,
)


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
       the content-only (new item) metrics, A1 for each audience rule (the best is served), and
       HR@10 of trending against popularity for customers new to the model (the better is served).
    2. Final fit on all interactions for the best epoch count; export; A1 rule from step 1.
    """
    started = time.monotonic()
    data = encode(interactions, catalog)
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
    run = train_retrieval(fit, catalog, retrieval, seed, epochs=retrieval.max_epochs,
                           evaluate_on=(held_users, held_items), progress=progress, stage="retrieval validation")
    arrays = retrieval_arrays(run.model, fit, run.content, retrieval, with_normalizer=True)
    scorer = Recommender(RecommenderArtifact(arrays, retrieval_config(retrieval)))
    validation = next(e for e in run.history if e["epoch"] == run.best_epoch)
    max_users, seen = retrieval.max_validation_users, csr(fit.users, fit.items, n_users)
    # What a new item gets (its content alone) and what an anonymous session gets (no user embedding).
    content_only = ops.convert_to_numpy(run.model.item_tower(None, content_only=True)).astype(np.float32)
    cold = ranking_on(scorer.user_matrix, content_only, seen, held_users, held_items, max_users, seed)
    session_vectors = np.hstack([pooled_users(arrays), np.ones((n_users, 1), np.float32)])
    sessions = ranking_on(session_vectors, scorer.item_matrix, seen, held_users, held_items, max_users, seed)
    audience_rule, audiences = choose_audience_rule(scorer, fit, held_users, held_items, seed)
    cold_start = choose_cold_start(fit, held_users, held_items, data.timestamps[held], max_users, seed)
    report: dict[str, Any] = {
        "validation": {
            "protocol": "T1 on the training data: per user the newest "
                        f"{validation_fraction:.0%} held out, full ranking, k=10",
            "interactions": int(held.sum()),
            "model": {k: validation[k] for k in ("precision", "recall", "ndcg", "coverage", "users")},
            "popularity": popularity_on(fit, held_users, held_items, max_users, seed),
            "content_only_items": cold,
            "history_only_users": sessions,
            "audiences": audiences, "audience_rule": audience_rule,
            "cold_start": cold_start,
        },
        "retrieval": {"epochs": run.best_epoch, "history": run.history,
                      "softmax": softmax_mode(retrieval, n_items), "config": asdict(retrieval)},
    }
    say(f"retrieval validation NDCG@10 {validation['ndcg']:.4f} at epoch {run.best_epoch} "
        f"(popularity {report['validation']['popularity']['ndcg']:.4f}); audience rule {audience_rule}; "
        f"new customers get {cold_start['strategy']} (trending {cold_start['window']} HR@10 "
        f"{cold_start['trending_hr10']:.4f}, popular {cold_start['popular_hr10']:.4f})")

    final = train_retrieval(data, catalog, retrieval, seed, epochs=run.best_epoch, evaluate_on=None,
                             progress=progress, stage="retrieval final")
    arrays = retrieval_arrays(final.model, data, final.content, retrieval, with_normalizer=True)
    config = {**retrieval_config(retrieval), "model_version": model_version, "audience_rule": audience_rule,
              "rating": None,
              "cold_start": {key: cold_start[key] for key in ("strategy", "window", "trending_hr10", "popular_hr10")}}
    rated = None
    if rating is not None:
        rated = train_rating(data, rating, seed, validation_fraction, progress)
        if rated is not None:
            arrays.update({name: value for name, value in rated.arrays.items() if name.startswith("rating_")})
            config["rating"] = rated.config
            report["rating"] = rated.report
            say(f"rating validation RMSE {rated.report['validation']['rmse']:.4f} at epoch {rated.report['epochs']}")
    report["seconds"] = round(time.monotonic() - started, 1)
    return TrainedRecommender(RecommenderArtifact(arrays, config), report, final.model,
                              None if rated is None else rated.model)
