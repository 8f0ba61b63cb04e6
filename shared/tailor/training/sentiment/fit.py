"""Train the review-sentiment model with Keras 3 and export it for the NumPy scorer.

:func:`train_sentiment` is the entry point. It holds out a validation split of the data it is
given (:mod:`~tailor.training.sentiment.split`), trains until validation accuracy stops improving
(restoring the best epoch), picks the NBSVM interpolation and the head mixture on that split
from small fixed grids, reports validation metrics (accuracy, macro-F1, calibration), then by
default refits on all the data for the best number of epochs and exports the refit model. Only
the data passed in ever chooses anything.

Where the rest lives: labels and class choice in ``labels``, hyperparameters in ``config``,
features and batches in ``features``, the Keras tower, task and model in ``towers``, the
artifact in ``export``, the metrics in ``metrics`` (all in ``tailor.training.sentiment``).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from tailor.sentiment.scorer import SentimentArtifact, SentimentScorer, softmax
from tailor.training.sentiment.config import SentimentTrainingConfig
from tailor.training.sentiment.export import export_artifact
from tailor.training.sentiment.features import (
    FeatureBatches,
    FeatureSpace,
    inverse_document_frequency,
    nb_log_count_ratios,
)
from tailor.training.sentiment.labels import LABELS, choose_classes
from tailor.training.sentiment.metrics import evaluation_metrics
from tailor.training.sentiment.split import duplicate_count, validation_split
from tailor.training.sentiment.towers import BagOfNgramsTower, SentimentModel, SentimentTask

Progress = Callable[[str], None]


@dataclass
class SentimentTrainingResult:
    model: SentimentModel  # the fitted Keras model the artifact was exported from
    artifact: SentimentArtifact
    metrics: dict
    history: list[dict]  # one entry per epoch: stage, epoch, loss, accuracy, val_* ...
    # The validation texts and their true labels: the job scores the serving version on them too.
    validation: tuple[list[str], list[str]] = field(default_factory=lambda: ([], []))


class _ProgressLogger(keras.callbacks.Callback):
    def __init__(self, progress: Progress | None, stage: str, epochs: int):
        super().__init__()
        self.progress, self.stage, self.epochs = progress, stage, epochs
        self.history: list[dict] = []
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        entry = {"stage": self.stage, "epoch": epoch + 1, "seconds": round(time.monotonic() - self._started, 1)}
        entry.update({name: float(value) for name, value in logs.items()})
        self.history.append(entry)
        if self.progress:
            shown = [f"{name} {logs[name]:.4f}" for name in ("loss", "accuracy", "val_loss", "val_accuracy") if name in logs]
            self.progress(f"{self.stage} epoch {epoch + 1}/{self.epochs}: " + ", ".join(shown))


def _fit(model: SentimentModel, train: FeatureBatches, validation: FeatureBatches | None, *, epochs: int,
         patience: int, progress: Progress | None, stage: str) -> list[dict]:
    """The one training loop: Keras ``fit``; with a validation split, early stopping on
    validation accuracy restores the best epoch."""
    logger = _ProgressLogger(progress, stage, epochs)
    callbacks: list = [logger]
    if validation is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=patience,
                                                       restore_best_weights=True))
    with warnings.catch_warnings():
        # The batches come from a generator of unknown length, which Keras reports on every
        # epoch although it is what the generator is meant to do.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
        model.fit(train.dataset(), validation_data=validation.dataset() if validation is not None else None,
                  epochs=epochs, callbacks=callbacks, verbose=0)
    return logger.history


def _train_once(texts: list[str], y: np.ndarray, classes: tuple[str, ...], config: SentimentTrainingConfig,
                seed: int, epochs: int, stage: str, progress: Progress | None,
                validation: tuple[list[str], np.ndarray] | None = None) -> tuple[SentimentModel, list[dict]]:
    """Vocabulary, NB ratios, idf and a fitted Keras model for ``texts``."""
    space, rows, splits = FeatureSpace.fit_transform(texts, config.tokenizer, config.min_count)
    n_rows = len(space) + 1
    tower = BagOfNgramsTower(
        nb_log_count_ratios(rows, splits, y, n_rows, len(classes), config.nb_alpha),
        inverse_document_frequency(rows, splits, n_rows),
        nb_l2=config.nb_l2 if config.nb_l2 is not None else config.nb_l2_scale / len(texts),
        idf_l2=config.idf_l2 if config.idf_l2 is not None else config.idf_l2_scale / len(texts),
        idf_scale=config.idf_scale,
        feature_dropout=config.feature_dropout, seed=seed,
    )
    task = SentimentTask()
    model = SentimentModel(tower, task, space, classes)
    batch_size = max(config.batch_size, math.ceil(len(texts) / config.max_steps_per_epoch))
    batches = FeatureBatches(rows, splits, y, batch_size=batch_size, max_batch_features=config.max_batch_features,
                             shuffle=True, seed=seed)
    # Several steps per compiled call: the steps are small, so per-call overhead dominates.
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), metrics=task.metrics(tower),
                  steps_per_execution=8)
    validation_batches = None
    if validation is not None:
        val_rows, val_splits = space.rows(validation[0])
        validation_batches = FeatureBatches(val_rows, val_splits, validation[1], batch_size=512,
                                            max_batch_features=config.max_batch_features * 4)
    history = _fit(model, batches, validation_batches, epochs=epochs, patience=config.patience,
                   progress=progress, stage=stage)
    return model, history


def _select_mixture(model: SentimentModel, texts: list[str], y: np.ndarray,
                    config: SentimentTrainingConfig) -> tuple[float, float, list[dict]]:
    """Pick NBSVM β and head-0 weight by validation accuracy (ties: lower log-loss).

    Scored with the exported NumPy weights, which equal the Keras model (the parity test
    proves it) and avoid re-tracing Keras' predict step for every candidate.
    """
    table = []
    for mix in config.nb_interpolations:
        model.tower.interpolate(mix)
        scorer = SentimentScorer(export_artifact(model, config))
        head_probabilities = softmax(scorer.head_logits(scorer.feature_sums(texts)))
        for weight in config.head_weights:
            probabilities = weight * head_probabilities[:, 0] + (1.0 - weight) * head_probabilities[:, 1]
            accuracy = float(np.mean(probabilities.argmax(axis=1) == y))
            log_loss = float(-np.mean(np.log(np.clip(probabilities[np.arange(len(y)), y], 1e-12, None))))
            table.append({"nb_interpolation": mix, "head_weight": weight, "accuracy": accuracy, "log_loss": log_loss})
    best = max(table, key=lambda row: (row["accuracy"], -row["log_loss"]))
    return best["nb_interpolation"], best["head_weight"], table


def train_sentiment(
    texts: Sequence[str],
    labels: Sequence[str | None],
    *,
    seed: int = 0,
    validation_fraction: float = 0.2,
    progress: Progress | None = None,
    config: SentimentTrainingConfig | None = None,
    model_version: str = "unversioned",
) -> SentimentTrainingResult:
    """Train on labelled texts; return the Keras model, the exported artifact and metrics.

    ``labels`` are ``"positive"``, ``"negative"``, ``"neutral"`` or ``None`` (unlabelled: skipped,
    e.g. a review without a rating from :func:`labels_from_ratings`). The model learns 3
    classes when neutral examples are plentiful (``neutral_min_count`` and
    ``neutral_min_share``); otherwise 2, and the neutral examples are left out. Blank texts
    are left out too. ``progress`` receives one line per epoch (epoch, loss, accuracy,
    validation accuracy).

    ``metrics`` describe the model trained *without* the validation split, measured on it
    (the mixture was chosen on that split too, so they are slightly optimistic); with
    ``config.refit`` (the default) the exported model is then retrained on all the data.
    """
    config = config or SentimentTrainingConfig()
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")
    counts = {name: 0 for name in LABELS}
    blank = 0
    for index, (text, label) in enumerate(zip(texts, labels)):
        if not isinstance(text, str):
            raise ValueError(f"text at position {index} is {type(text).__name__}, expected str")
        if label is not None and label not in counts:
            raise ValueError(f"label at position {index} is {label!r}, expected one of {', '.join(LABELS)} or None")
        if label is not None and text.strip():
            counts[label] += 1
        elif label is not None:
            blank += 1
    classes = choose_classes(counts, sum(counts.values()), config)
    keep = [i for i, label in enumerate(labels) if label in classes and texts[i].strip()]
    texts = [texts[i] for i in keep]
    y = np.array([classes.index(labels[i]) for i in keep], dtype=np.int32)
    train_index, val_index, left_out = validation_split(texts, y, validation_fraction, seed)
    if min(np.bincount(y[train_index], minlength=len(classes))) == 0 or len(val_index) < len(classes):
        raise ValueError(f"too few examples ({len(y)}) to train and hold out a validation split")
    train_texts = [texts[i] for i in train_index]
    val_texts, val_y = [texts[i] for i in val_index], y[val_index]

    keras.utils.set_random_seed(seed)
    started = time.monotonic()
    model, history = _train_once(train_texts, y[train_index], classes, config, seed, config.max_epochs, "fit",
                                 progress, validation=(val_texts, val_y))
    best_epoch = _best_epoch(history)
    mix, head_weight, selection = _select_mixture(model, val_texts, val_y, config)
    model.tower.interpolate(mix)
    model.tower.set_head_weight(head_weight)
    val_probabilities = SentimentScorer(export_artifact(model, config)).probabilities(val_texts)
    metrics = evaluation_metrics(val_y, val_probabilities, classes, config.calibration_bins)
    from tailor.sentiment.text import detect_language

    languages: dict[str, dict[str, int]] = {}
    for text, c in zip(texts, y):
        counts_of = languages.setdefault(detect_language(text), {})
        counts_of[classes[c]] = counts_of.get(classes[c], 0) + 1
    metrics.update(
        duplicate_texts=duplicate_count(texts),
        languages=languages,
        majority_baseline_balanced_accuracy=1.0 / len(classes),
        classes=list(classes),
        label_counts=counts,
        examples=len(texts),
        train_examples=len(train_index),
        validation_examples=len(val_index),
        left_out_inside_validation_texts=left_out,
        skipped_unlabelled=sum(1 for label in labels if label is None),
        skipped_neutral=counts["neutral"] if "neutral" not in classes else 0,
        skipped_blank=blank,
        majority_baseline_accuracy=float(np.bincount(val_y).max() / len(val_y)),
        best_epoch=best_epoch,
        nb_interpolation=mix,
        head_weight=head_weight,
        mixture_selection=selection,
        validation_run_seconds=round(time.monotonic() - started, 1),
    )
    if config.refit:
        keras.utils.set_random_seed(seed)
        model, refit_history = _train_once(texts, y, classes, config, seed, best_epoch, "refit", progress)
        model.tower.interpolate(mix)
        model.tower.set_head_weight(head_weight)
        history += refit_history
    metrics["features"] = len(model.feature_space)
    metrics["refit_on_all_data"] = config.refit
    metrics["training_seconds"] = round(time.monotonic() - started, 1)
    artifact = export_artifact(model, config, model_version, metadata={
        "trained_examples": len(texts) if config.refit else len(train_index),
        "validation_accuracy": metrics["accuracy"],
        "languages": languages,  # labelled reviews per language and class: how far serving trusts the model
    })
    return SentimentTrainingResult(model=model, artifact=artifact, metrics=metrics, history=history,
                                   validation=([val_texts[i] for i in range(len(val_texts))], [classes[c] for c in val_y]))


def _best_epoch(history: list[dict]) -> int:
    """The epoch early stopping restored (the first best, as Keras does)."""
    values = [entry["val_accuracy"] for entry in history if "val_accuracy" in entry]
    return int(np.argmax(values)) + 1 if values else max(len(history), 1)
