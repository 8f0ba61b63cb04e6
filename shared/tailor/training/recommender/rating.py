"""Training the rating model: epochs chosen on a validation split (temporal or random), then a
refit on all ratings and the exported factors."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import keras
import numpy as np

from tailor.recommend import evaluation
from tailor.recommend.scorer import (
    RatingPredictor,
)
from tailor.training.recommender.config import RatingConfig
from tailor.training.recommender.data import Encoded, Interactions, encode
from tailor.training.recommender.fit import EpochEvaluator, Progress, fit_model
from tailor.training.recommender.towers import RatingModel


@dataclass
class RatingResult:
    arrays: dict[str, np.ndarray]
    config: dict  # global_mean, min, max (the predictor's clip range)
    report: dict
    model: RatingModel  # the final Keras model (for parity checks); serving uses ``arrays``


def _rating_rows(data: Encoded) -> np.ndarray:
    if data.ratings is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.isfinite(data.ratings))


def _rating_validation_split(data: Encoded, rows: np.ndarray, config: RatingConfig, fraction: float,
                             seed: int) -> np.ndarray:
    if config.validation == "random":
        return np.random.default_rng(seed).random(len(rows)) < fraction
    return evaluation.temporal_holdout(data.users[rows], data.items[rows], data.timestamps[rows], fraction)


def _train_rating_once(users, items, ratings, n_users, n_items, config: RatingConfig, seed: int, *, epochs: int,
                       evaluate_on=None, progress=None, stage="rating") -> tuple[RatingModel, EpochEvaluator, dict]:
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
    evaluator = fit_model(model, x, ratings.astype(np.float32), batch_size=config.batch_size, epochs=epochs,
                     evaluate=evaluate, metric="rmse", higher_is_better=False, patience=config.patience,
                     progress=progress, stage=stage)
    return model, evaluator, clip


def train_rating_model(interactions: Interactions, config: RatingConfig = RatingConfig(), *, seed: int = 0,
                       validation_fraction: float = 0.2, progress: Progress | None = None) -> RatingResult | None:
    """Select the epoch count on a validation split, then refit on all ratings and export.

    Returns ``None`` when no interaction carries a rating. Arrays are indexed like the
    interactions' sorted unique user and item ids (``user_ids``/``item_ids`` are included).
    """
    return train_rating(encode(interactions, None), config, seed, validation_fraction, progress)


def train_rating(data: Encoded, config: RatingConfig, seed: int, validation_fraction: float,
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
