"""Train the review-sentiment model with Keras and export it for the NumPy scorer.

The model, factored like TensorFlow Recommenders:

- :class:`BagOfNgramsTower` (the text tower) maps a text's features to class logits. A text is
  the *set* of its n-gram keys (``tailor.text``) that are in the training vocabulary, given as
  padded vocabulary rows (0 = padding). Two parts add their logits:

  * **NB-weighted linear part** (NBSVM/NBLR, Wang & Manning 2012): each feature ``f`` has fixed
    log-count ratios ``r[f, c]`` (class ``c`` against the rest, from the training split) and a
    trainable weight ``w[f, c]``; it contributes ``r[f, c] * (nb_prior + w[f, c])``. With
    ``w = 0`` this is Naive Bayes scaled by ``nb_prior``; L2 on ``w`` pulls the model towards
    that prior, which is what makes NB-weighting work well on small sentiment corpora.
  * **Embedding bag** (fastText-style): the mean of the features' embedding rows, times a
    kernel. It shares strength between related n-grams that the linear part treats apart.

- :class:`SentimentTask` owns the loss (softmax cross-entropy) and the metrics.
- :class:`SentimentModel` joins them and implements ``compute_loss``; Keras' ``fit`` is the one
  training loop (:func:`_fit`), used for the validation run and for the final refit.

:func:`train_sentiment` holds out a stratified validation split, trains until validation
loss stops improving (early stopping restores the best epoch), reports validation metrics
(accuracy, macro-F1, calibration), then by default refits on all the data for the number of
epochs that was best and exports the refit model. Only the training data ever chooses
anything: the epoch count comes from the validation split of the data passed in.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence

import numpy as np

import keras
from keras import ops

from ..sentiment import CLASS_NAMES, DEFAULT_NEUTRAL_THRESHOLD, SentimentArtifact, SentimentScorer
from ..text import TokenizerConfig, encode_batch

LABELS = CLASS_NAMES  # "negative", "neutral", "positive"
Progress = Callable[[str], None]


# --------------------------------------------------------------------------- labels


def labels_from_ratings(ratings: Iterable[float | int | None]) -> list[str | None]:
    """Star ratings (1–5) to labels: >= 4 positive, <= 2 negative, otherwise (3) neutral.

    A missing rating (``None`` or NaN) gives ``None`` (no label: the caller drops the review or
    labels it another way). A rating outside [1, 5] or not a number raises ``ValueError``
    naming its position, because a silently mislabelled review would teach the model wrong.
    """
    labels: list[str | None] = []
    for index, rating in enumerate(ratings):
        if rating is None or (isinstance(rating, float) and math.isnan(rating)):
            labels.append(None)
            continue
        if isinstance(rating, bool) or not isinstance(rating, (int, float, np.integer, np.floating)):
            raise ValueError(f"rating at position {index} is {rating!r}, expected a number from 1 to 5")
        value = float(rating)
        if math.isnan(value):
            labels.append(None)
        elif not 1.0 <= value <= 5.0:
            raise ValueError(f"rating at position {index} is {rating!r}, outside 1..5")
        elif value >= 4.0:
            labels.append("positive")
        elif value <= 2.0:
            labels.append("negative")
        else:
            labels.append("neutral")
    return labels


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SentimentTrainingConfig:
    """Hyperparameters. Defaults were chosen on validation splits carved out of training data."""

    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    min_count: int = 2  # keep n-grams found in at least this many training texts
    nb_alpha: float = 1.0  # Laplace smoothing of the NB log-count ratios
    nb_prior: float = 0.1
    nb_l2: float = 3e-4
    idf_l2: float = 2e-5
    feature_dropout: float = 0.0
    learning_rate: float = 1e-2
    batch_size: int = 128
    max_batch_features: int = 65_536  # long texts go in smaller batches
    max_epochs: int = 20
    patience: int = 3
    monitor: str = "val_accuracy"  # what early stopping watches: "val_loss" or "val_accuracy"
    refit: bool = True
    neutral_threshold: float = DEFAULT_NEUTRAL_THRESHOLD
    # The neutral class is learned only when there is enough of it; otherwise neutral
    # examples are left out and NEUTRAL comes from the confidence threshold alone.
    neutral_min_count: int = 200
    neutral_min_share: float = 0.05
    calibration_bins: int = 10


@dataclass
class SentimentTrainingResult:
    model: "SentimentModel"  # the fitted Keras model the artifact was exported from
    artifact: SentimentArtifact
    metrics: dict
    history: list[dict]


# --------------------------------------------------------------------------- features


class FeatureSpace:
    """The training vocabulary: sorted n-gram keys, mapped to rows 1..n (row 0 is padding)."""

    def __init__(self, vocabulary: np.ndarray, tokenizer: TokenizerConfig):
        self.vocabulary = vocabulary
        self.tokenizer = tokenizer

    @classmethod
    def fit(cls, texts: Sequence[str], tokenizer: TokenizerConfig, min_count: int) -> "FeatureSpace":
        keys, splits = encode_batch(texts, tokenizer)
        text_of_key = np.repeat(np.arange(len(texts)), np.diff(splits))
        # Document frequency: count each key once per text.
        pairs = np.unique(np.stack([text_of_key.astype(np.uint64), keys], axis=1), axis=0)
        unique_keys, document_frequency = np.unique(pairs[:, 1], return_counts=True)
        return cls(unique_keys[document_frequency >= min_count], tokenizer)

    def __len__(self) -> int:
        return len(self.vocabulary)

    def rows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each text's distinct known features as rows 1..n, CSR-like ``(rows, row_splits)``."""
        scorer_rows, splits = _scorer_for(self).feature_rows(texts)
        return scorer_rows + 1, splits


def _scorer_for(space: FeatureSpace) -> SentimentScorer:
    """A weightless scorer, to reuse its exact feature-row mapping (training == serving)."""
    n, classes = len(space.vocabulary), ("negative", "positive")
    artifact = SentimentArtifact(
        vocabulary=space.vocabulary,
        nb_table=np.zeros((n, 2), np.float32),
        idf=np.zeros(n, np.float32),
        idf_table=np.zeros((n, 2), np.float32),
        bias=np.zeros((2, 2), np.float32),
        classes=classes,
        tokenizer=space.tokenizer,
    )
    return SentimentScorer(artifact)


def nb_log_count_ratios(
    rows: np.ndarray, row_splits: np.ndarray, y: np.ndarray, n_rows: int, n_classes: int, alpha: float
) -> np.ndarray:
    """``r[f, c] = log(p_c(f) / p_rest(f))`` with Laplace smoothing; shape ``(n_rows, n_classes)``.

    ``p_c(f)`` is the smoothed share of class-``c`` feature occurrences that are ``f``
    (binary counts). Row 0 (padding) is all zeros.
    """
    text_of_row = np.repeat(np.arange(len(row_splits) - 1), np.diff(row_splits))
    counts = np.zeros((n_rows, n_classes))
    np.add.at(counts, (rows, y[text_of_row]), 1.0)
    ratios = np.zeros((n_rows, n_classes))
    for c in range(n_classes):
        inside = counts[:, c] + alpha
        outside = counts.sum(axis=1) - counts[:, c] + alpha
        inside[0] = outside[0] = alpha  # padding row: neutral
        ratios[:, c] = np.log(inside / inside[1:].sum()) - np.log(outside / outside[1:].sum())
    ratios[0] = 0.0
    return ratios.astype(np.float32)


def inverse_document_frequency(rows: np.ndarray, n_texts: int, n_rows: int) -> np.ndarray:
    """Smoothed idf per row, ``log((1 + n) / (1 + df)) + 1`` (as scikit-learn); row 0 is 0."""
    document_frequency = np.bincount(rows, minlength=n_rows)
    idf = np.log((1.0 + n_texts) / (1.0 + document_frequency)) + 1.0
    idf[0] = 0.0
    return idf.astype(np.float32)


class FeatureBatches:
    """Padded feature-row batches as a ``tf.data.Dataset``: texts of similar length share a
    batch, long texts go in smaller batches (``max_batch_features``), and padded lengths are
    powers of two so that the compiled training step sees few distinct shapes. Shuffled
    batches are re-planned every epoch."""

    def __init__(self, rows, row_splits, y=None, *, batch_size=128, max_batch_features=65_536,
                 shuffle=False, seed=0):
        self.rows, self.row_splits, self.y = rows, row_splits, y
        self.batch_size, self.max_batch_features = batch_size, max_batch_features
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.lengths = np.diff(row_splits)
        self.batches = self._plan()

    def _plan(self) -> list[np.ndarray]:
        n = len(self.lengths)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        # Sort by length inside chunks of 50 batches: similar lengths, still shuffled overall.
        chunk = self.batch_size * 50
        batches = []
        for start in range(0, n, chunk):
            part = order[start : start + chunk]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            i = 0
            while i < len(part):
                size = self.batch_size
                while size > 1 and size * _padded_length(self.lengths[part[min(i + size, len(part)) - 1]]) > self.max_batch_features:
                    size //= 2
                batches.append(part[i : i + size])
                i += size
        if self.shuffle:
            self.rng.shuffle(batches)
        elif n:
            # Keep the original order for prediction (outputs must line up with inputs).
            batches = [np.sort(b) for b in batches]
            batches.sort(key=lambda b: b[0])
        return batches

    def __len__(self) -> int:
        return len(self.batches)

    def dataset(self):
        import tensorflow as tf

        def generate():
            if self.shuffle:
                self.batches = self._plan()
            for index in range(len(self.batches)):
                yield self._batch(index)

        rows_spec = tf.TensorSpec(shape=(None, None), dtype=tf.int32)
        if self.y is None:
            signature = (rows_spec,)
        else:
            signature = (rows_spec, tf.TensorSpec(shape=(None,), dtype=tf.int32))
        return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(2)

    def _batch(self, index):
        members = self.batches[index]
        lengths = self.lengths[members]
        padded = np.zeros((len(members), _padded_length(lengths.max(initial=1))), dtype=np.int32)
        for i, (text, length) in enumerate(zip(members, lengths)):
            start = self.row_splits[text]
            padded[i, :length] = self.rows[start : start + length]
        if self.y is None:
            return (padded,)
        return padded, self.y[members].astype(np.int32)


def _padded_length(length: int) -> int:
    return max(8, 1 << int(max(length, 1) - 1).bit_length())


# --------------------------------------------------------------------------- model


class BagOfNgramsTower(keras.layers.Layer):
    """Text tower: padded feature rows ``int32[batch, length]`` (0 = padding) → logits of two
    heads, ``float32[batch, 2, n_classes]``.

    - head 0, **NB-weighted sum**: ``Σ_f r[f] * (nb_prior + w[f])`` — grows with the number of
      features, so long texts give confident answers;
    - head 1, **idf-weighted, length-normalised**: ``Σ_f idf[f] * v[f] / sqrt(Σ_f idf[f]²)``
      (a TF-IDF logistic regression on binary features) — does not grow with length.

    Their errors differ (on long Chinese reviews especially), so the model averages their
    probabilities; each head is trained with its own loss (see :class:`SentimentTask`).
    """

    def __init__(self, nb_ratios: np.ndarray, idf: np.ndarray, *, nb_prior: float, nb_l2: float,
                 idf_l2: float, feature_dropout: float, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        n_rows, n_classes = nb_ratios.shape
        self.nb_prior = nb_prior
        self.feature_dropout = feature_dropout
        constant = keras.initializers.Constant
        self.nb_ratio = self.add_weight(name="nb_ratio", shape=(n_rows, n_classes),
                                        initializer=constant(nb_ratios), trainable=False)
        self.idf = self.add_weight(name="idf", shape=(n_rows,), initializer=constant(idf), trainable=False)
        self.nb_weight = self.add_weight(name="nb_weight", shape=(n_rows, n_classes), initializer="zeros",
                                         regularizer=keras.regularizers.L2(nb_l2))
        self.idf_weight = self.add_weight(name="idf_weight", shape=(n_rows, n_classes), initializer="zeros",
                                          regularizer=keras.regularizers.L2(idf_l2))
        self.bias = self.add_weight(name="bias", shape=(2, n_classes), initializer="zeros")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, rows, training=False):
        present = ops.cast(ops.greater(rows, 0), "float32")
        if training and self.feature_dropout > 0:
            keep = keras.random.uniform(ops.shape(rows), seed=self.seed_generator) >= self.feature_dropout
            present = present * ops.cast(keep, "float32")
        mask = ops.expand_dims(present, -1)
        ratio = ops.take(self.nb_ratio, rows, axis=0)
        nb_weight = ops.take(self.nb_weight, rows, axis=0)
        nb_logits = ops.sum(ratio * (self.nb_prior + nb_weight) * mask, axis=1)
        idf = ops.take(self.idf, rows, axis=0) * present
        norm = ops.sqrt(ops.maximum(ops.sum(idf * idf, axis=1, keepdims=True), 1e-12))
        idf_weight = ops.take(self.idf_weight, rows, axis=0)
        idf_logits = ops.sum(ops.expand_dims(idf, -1) * idf_weight, axis=1) / norm
        return ops.stack([nb_logits, idf_logits], axis=1) + self.bias

    def export(self) -> dict[str, np.ndarray]:
        """Weights for the NumPy scorer (folded per feature), without the padding row."""
        numpy = keras.ops.convert_to_numpy
        idf = numpy(self.idf)[1:]
        return {
            "nb_table": (numpy(self.nb_ratio)[1:] * (self.nb_prior + numpy(self.nb_weight)[1:])).astype(np.float32),
            "idf": idf.astype(np.float32),
            "idf_table": (idf[:, None] * numpy(self.idf_weight)[1:]).astype(np.float32),
            "bias": numpy(self.bias).astype(np.float32),
        }


def head_probabilities(logits):
    """Average of the heads' softmax probabilities: ``[batch, heads, C]`` → ``[batch, C]``."""
    return ops.mean(ops.softmax(logits, axis=-1), axis=1)


class _EnsembleAccuracy(keras.metrics.Metric):
    """Accuracy of the averaged head probabilities (what the scorer serves)."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = ops.argmax(head_probabilities(y_pred), axis=-1)
        hits = ops.cast(ops.equal(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.cast(predicted, "int32")), "float32")
        self.correct.assign_add(ops.sum(hits))
        self.total.assign_add(ops.cast(ops.shape(hits)[0], "float32"))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


class SentimentTask:
    """The task: softmax cross-entropy on each head (summed), accuracy of their average."""

    def __init__(self):
        self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compute_loss(self, labels, head_logits, sample_weight=None):
        heads = ops.shape(head_logits)[1]
        return sum(self.loss(labels, head_logits[:, head], sample_weight=sample_weight) for head in range(heads))

    def metrics(self) -> list:
        return [_EnsembleAccuracy()]


class SentimentModel(keras.Model):
    def __init__(self, tower: BagOfNgramsTower, task: SentimentTask, **kwargs):
        super().__init__(**kwargs)
        self.tower = tower
        self.task = task

    def call(self, rows, training=False):
        return self.tower(rows, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.task.compute_loss(y, y_pred, sample_weight)
        if self.losses:  # weight regularisation declared by the tower
            loss = loss + ops.sum(ops.stack(self.losses))
        return loss


# --------------------------------------------------------------------------- training


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
            parts = [f"{name} {logs[name]:.4f}" for name in ("loss", "accuracy", "val_loss", "val_accuracy") if name in logs]
            self.progress(f"{self.stage} epoch {epoch + 1}/{self.epochs}: " + ", ".join(parts))


def _build_model(nb_ratios: np.ndarray, idf: np.ndarray, config: SentimentTrainingConfig, seed: int) -> SentimentModel:
    tower = BagOfNgramsTower(
        nb_ratios, idf, nb_prior=config.nb_prior, nb_l2=config.nb_l2, idf_l2=config.idf_l2,
        feature_dropout=config.feature_dropout, seed=seed,
    )
    task = SentimentTask()
    model = SentimentModel(tower, task)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), metrics=task.metrics())
    return model


def _fit(model, train: FeatureBatches, validation: FeatureBatches | None, *, epochs: int, patience: int,
         monitor: str, progress: Progress | None, stage: str) -> list[dict]:
    """The one training loop: Keras fit, with early stopping when there is a validation split."""
    logger = _ProgressLogger(progress, stage, epochs)
    callbacks = [logger]
    if validation is not None:
        mode = "max" if "accuracy" in monitor else "min"
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience,
                                                       restore_best_weights=True))
    model.fit(train.dataset(), validation_data=validation.dataset() if validation else None,
              epochs=epochs, callbacks=callbacks, verbose=0)
    return logger.history


def _stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_validation = int(round(len(members) * fraction))
        validation.append(members[:n_validation])
        train.append(members[n_validation:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))


def _choose_classes(labels: Sequence[str], config: SentimentTrainingConfig) -> tuple[str, ...]:
    counts = {name: 0 for name in LABELS}
    for index, label in enumerate(labels):
        if label not in counts:
            raise ValueError(f"label at position {index} is {label!r}, expected one of {', '.join(LABELS)}")
        counts[label] += 1
    for needed in ("negative", "positive"):
        if counts[needed] == 0:
            raise ValueError(f"no {needed} examples: sentiment training needs both positive and negative")
    neutral_ok = counts["neutral"] >= config.neutral_min_count and counts["neutral"] >= config.neutral_min_share * len(labels)
    return LABELS if neutral_ok else ("negative", "positive")


def _train_once(texts, y, classes, config, seed, validation, progress, stage, epochs):
    """Fit vocabulary, NB ratios and the Keras model on ``texts`` (one pass of the loop)."""
    space = FeatureSpace.fit(texts, config.tokenizer, config.min_count)
    rows, splits = space.rows(texts)
    ratios = nb_log_count_ratios(rows, splits, y, len(space) + 1, len(classes), config.nb_alpha)
    model = _build_model(ratios, inverse_document_frequency(rows, len(texts), len(space) + 1), config, seed)
    batches = FeatureBatches(rows, splits, y, batch_size=config.batch_size,
                             max_batch_features=config.max_batch_features, shuffle=True, seed=seed)
    validation_batches = None
    if validation is not None:
        val_texts, val_y = validation
        val_rows, val_splits = space.rows(val_texts)
        validation_batches = FeatureBatches(val_rows, val_splits, val_y, batch_size=512,
                                            max_batch_features=config.max_batch_features * 4)
    history = _fit(model, batches, validation_batches, epochs=epochs, patience=config.patience,
                   monitor=config.monitor, progress=progress, stage=stage)
    return space, model, history


def train_sentiment(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    seed: int = 0,
    validation_fraction: float = 0.2,
    progress: Progress | None = None,
    config: SentimentTrainingConfig | None = None,
    model_version: str = "unversioned",
) -> SentimentTrainingResult:
    """Train on labelled texts; return the Keras model, the exported artifact and metrics.

    ``labels`` are ``"positive"``, ``"negative"`` or ``"neutral"``. The model has 3 classes
    when neutral examples are plentiful (``neutral_min_count`` and ``neutral_min_share``),
    otherwise 2 and the neutral examples are not used (``metrics["dropped_neutral"]``).
    ``progress`` receives one line per epoch (epoch, loss, validation accuracy).
    """
    config = config or SentimentTrainingConfig()
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"text at position {index} is {type(text).__name__}, expected str")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError("validation_fraction must be between 0 and 1")
    keras.utils.set_random_seed(seed)
    classes = _choose_classes(labels, config)
    # Blank texts carry nothing to learn from (and serving answers them without the model).
    keep = [i for i, label in enumerate(labels) if label in classes and texts[i].strip()]
    dropped_empty = sum(1 for i, label in enumerate(labels) if label in classes and not texts[i].strip())
    dropped_neutral = sum(1 for label in labels if label == "neutral") if "neutral" not in classes else 0
    texts = [texts[i] for i in keep]
    y = np.array([classes.index(labels[i]) for i in keep], dtype=np.int32)
    train_index, val_index = _stratified_split(y, validation_fraction, seed)
    if len(val_index) == 0 or len(train_index) == 0:
        raise ValueError("too few examples to hold out a validation split")
    train_texts = [texts[i] for i in train_index]
    val_texts = [texts[i] for i in val_index]

    started = time.monotonic()
    space, model, history = _train_once(
        train_texts, y[train_index], classes, config, seed, (val_texts, y[val_index]), progress,
        "fit", config.max_epochs,
    )
    validation_model_seconds = time.monotonic() - started
    best_epoch = _best_epoch(history, config.monitor)
    artifact = _export(model, space, classes, config, model_version)
    val_probabilities = SentimentScorer(artifact).probabilities(val_texts)
    metrics = evaluation_metrics(y[val_index], val_probabilities, classes, config.calibration_bins)
    metrics.update(
        classes=list(classes),
        examples=len(texts),
        train_examples=len(train_index),
        validation_examples=len(val_index),
        class_counts={name: int((y == c).sum()) for c, name in enumerate(classes)},
        dropped_neutral=dropped_neutral,
        dropped_empty=dropped_empty,
        majority_baseline_accuracy=float(np.bincount(y[val_index]).max() / len(val_index)),
        best_epoch=best_epoch,
        features=len(space),
        validation_run_seconds=round(validation_model_seconds, 1),
    )
    if config.refit:
        space, model, refit_history = _train_once(texts, y, classes, config, seed, None, progress, "refit", best_epoch)
        history += refit_history
        artifact = _export(model, space, classes, config, model_version)
        metrics["features"] = len(space)
    metrics["refit_on_all_data"] = config.refit
    metrics["training_seconds"] = round(time.monotonic() - started, 1)
    return SentimentTrainingResult(model=model, artifact=artifact, metrics=metrics, history=history)


def _best_epoch(history: list[dict], monitor: str) -> int:
    """The epoch early stopping restored (first best, as Keras does)."""
    values = [entry[monitor] for entry in history if monitor in entry]
    if not values:
        return len(history)
    best = np.argmax(values) if "accuracy" in monitor else np.argmin(values)
    return int(best) + 1


def _export(model: SentimentModel, space: FeatureSpace, classes, config, model_version) -> SentimentArtifact:
    return SentimentArtifact(
        vocabulary=space.vocabulary,
        classes=tuple(classes),
        tokenizer=space.tokenizer,
        neutral_threshold=config.neutral_threshold,
        model_version=model_version,
        metadata={"architecture": "nb-weighted sum + idf-normalised linear, probabilities averaged"},
        **model.tower.export(),
    )


def keras_probabilities(model: SentimentModel, space_or_artifact, texts: Sequence[str]) -> np.ndarray:
    """Class probabilities from the Keras model itself (``model.predict``), for parity checks."""
    vocabulary = getattr(space_or_artifact, "vocabulary")
    tokenizer = getattr(space_or_artifact, "tokenizer")
    rows, splits = FeatureSpace(vocabulary, tokenizer).rows(texts)
    batches = FeatureBatches(rows, splits, batch_size=256, max_batch_features=1 << 20)
    logits = model.predict(batches.dataset(), verbose=0)
    return keras.ops.convert_to_numpy(head_probabilities(logits)).astype(np.float64)


# --------------------------------------------------------------------------- metrics


def evaluation_metrics(y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str], bins: int = 10) -> dict:
    """Accuracy, macro-F1, per-class counts and calibration (ECE + reliability table)."""
    y_true = np.asarray(y_true)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    correct = predicted == y_true
    per_class = {}
    f1s = []
    for c, name in enumerate(classes):
        tp = int(np.sum((predicted == c) & (y_true == c)))
        fp = int(np.sum((predicted == c) & (y_true != c)))
        fn = int(np.sum((predicted != c) & (y_true == c)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        per_class[name] = {"support": int(np.sum(y_true == c)), "predicted": int(np.sum(predicted == c)),
                           "precision": precision, "recall": recall, "f1": f1}
    table = []
    ece = 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i in range(bins):
        low, high = edges[i], edges[i + 1]
        members = (confidence > low) & (confidence <= high) if i else (confidence >= low) & (confidence <= high)
        count = int(members.sum())
        accuracy = float(correct[members].mean()) if count else None
        mean_confidence = float(confidence[members].mean()) if count else None
        if count:
            ece += count / len(y_true) * abs(accuracy - mean_confidence)
        table.append({"low": float(low), "high": float(high), "count": count,
                      "accuracy": accuracy, "mean_confidence": mean_confidence})
    return {
        "accuracy": float(correct.mean()) if len(y_true) else 0.0,
        "macro_f1": float(np.mean(f1s)),
        "per_class": per_class,
        "calibration": {"expected_calibration_error": float(ece), "bins": table},
    }
