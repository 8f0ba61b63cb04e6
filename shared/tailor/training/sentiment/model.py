"""Train the review-sentiment model with Keras 3 and export it for the NumPy scorer.

The model is factored like TensorFlow Recommenders:

- :class:`BagOfNgramsTower` (the text tower) maps a text's features to the logits of two heads.
  A text is the *set* of its n-gram keys (``tailor.sentiment.text``) found in the training vocabulary,
  given as padded vocabulary rows (0 = padding).

  * **head 0, NB-weighted sum** (NBLR, Wang & Manning 2012): feature ``f`` has fixed Naive
    Bayes log-count ratios ``r[f, c]`` (class ``c`` against the rest, from the training split)
    and a trained weight ``w[f, c]``; the head sums ``r * w`` over the text's features. After
    training, ``w`` may be interpolated towards its mean magnitude (NBSVM's β), which mixes
    the trained model with plain Naive Bayes.
  * **head 1, idf-weighted and length-normalised**: ``Σ_f idf[f] * v[f] / sqrt(Σ_f idf[f]²)``,
    a TF-IDF logistic regression on binary features.

  Head 0 grows with the number of features (confident on long texts), head 1 does not; their
  errors differ, so the served probabilities are a weighted mixture of the two heads'
  softmax probabilities.
- :class:`SentimentTask` owns the loss (softmax cross-entropy of each head, summed: each head
  is a model in its own right) and the metric (accuracy of the mixture).
- :class:`SentimentModel` joins tower and task and implements ``compute_loss``; Keras ``fit``
  driven by :func:`_fit` is the one training loop, used for the validation run and the refit.

Features (``tailor.sentiment.text``): word uni- and bigrams, Han character 1–3-grams, and character
2–5-grams of each distinct Latin-script word of a text (fastText-style ``<word>`` framing: they
carry morphology and rare or misspelt words; on MR they were worth ~1.5 points on a validation
split carved from training data); each token inside a negation scope once more as ``<not>
token``; and per valence bucket, counts of sentiment-lexicon words (VADER's, baked into the
code; the sign flips inside a negation scope). Negation and lexicon were worth ~0.75 points on
MR and ~0.3 on ChnSentiCorp (Han negators) on validation splits of training data.

:func:`train_sentiment` holds out a stratified validation split of the data it is given,
trains until validation accuracy stops improving (restoring the best epoch), picks the NBSVM
interpolation and the head mixture on that split from small fixed grids, reports validation
metrics (accuracy, macro-F1, calibration), then by default refits on all the data for the best
number of epochs and exports the refit model. Only the data passed in ever chooses anything.
For phrase corpora (short texts, many of them phrases of other texts, like SST-2's train.tsv)
the validation split is drawn from texts that lie inside no other text, and the texts that lie
inside a validation text leave the training part of the validation run: otherwise validation
rewards memorising the phrases of its own sentences (on SST-2, 0.92 "validation accuracy" for a
model that labels unseen sentences ~0.82 right) and picks too many epochs.

Hyperparameter defaults (learning rate, L2, feature dropout, grids) were chosen on validation
splits carved out of training data (never on a benchmark's test fold).
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops

from tailor.sentiment.lexicon import NAME as SENTIMENT_LEXICON
from tailor.sentiment.scorer import (
    CLASS_NAMES,
    DEFAULT_NEUTRAL_THRESHOLD,
    SentimentArtifact,
    SentimentScorer,
    rows_of_keys,
    softmax,
    sorted_positions,
    sorted_unique,
)
from tailor.sentiment.text import (
    _GOLDEN,
    TokenizerConfig,
    _mix_array,
    char_ngram_keys,
    encode_batch,
    encode_batch_words,
    token_key,
    tokenize,
)

LABELS = CLASS_NAMES  # ("negative", "neutral", "positive")
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
        if rating is None:
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
    """Hyperparameters (defaults chosen on validation splits of training data)."""

    # Word uni+bigrams, Han character 1-3-grams, character 2-5-grams of Latin-script words,
    # negation-scope tokens and sentiment-lexicon counts.
    tokenizer: TokenizerConfig = field(default_factory=lambda: TokenizerConfig(
        char_ngrams=5, char_min=2, negation=True, lexicon=SENTIMENT_LEXICON))
    min_count: int = 2  # keep n-grams found in at least this many training texts
    nb_alpha: float = 1.0  # Laplace smoothing of the NB log-count ratios
    # L2 penalty per weight of head 0 and head 1 = scale / number of training texts: the loss is
    # a mean over texts, so this keeps the balance of data and penalty fixed across corpus sizes
    # (a fixed C in scikit-learn terms). A fixed penalty (3e-4, chosen on MR) was ~30x too strong
    # for SST-2's 67k phrases: 0.868 vs 0.887 validation accuracy. ``nb_l2``/``idf_l2`` override.
    nb_l2_scale: float = 0.15
    idf_l2_scale: float = 0.025
    nb_l2: float | None = None
    idf_l2: float | None = None
    # Head 1's logits are scaled by this constant: with Adam (steps of ~learning_rate per
    # weight) it gives the length-normalised head the larger effective step size it needs.
    idf_scale: float = 3.0
    feature_dropout: float = 0.3  # drop this share of a text's features at each training step
    # 3e-3 rather than 1e-2: with penalties this weak, early stopping does the regularising and
    # needs the finer steps (validation: MR 0.782 -> 0.787, SST-2 0.887 -> 0.891, ChnSentiCorp
    # unchanged).
    learning_rate: float = 3e-3
    batch_size: int = 128  # at least; large corpora use larger batches (max_steps_per_epoch)
    max_steps_per_epoch: int = 120
    max_batch_features: int = 65_536  # long texts go in smaller batches
    max_epochs: int = 20
    patience: int = 2
    refit: bool = True
    # Chosen on the validation split: NBSVM interpolation β of head 0 (1 = none) and the
    # weight of head 0 in the probability mixture.
    nb_interpolations: tuple[float, ...] = (1.0, 0.5, 0.25)
    head_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    neutral_threshold: float = DEFAULT_NEUTRAL_THRESHOLD
    # The neutral class is learned only when there is enough of it; otherwise neutral
    # examples are left out and NEUTRAL comes from the confidence threshold alone.
    neutral_min_count: int = 200
    neutral_min_share: float = 0.05
    calibration_bins: int = 10


@dataclass
class SentimentTrainingResult:
    model: SentimentModel  # the fitted Keras model the artifact was exported from
    artifact: SentimentArtifact
    metrics: dict
    history: list[dict]  # one entry per epoch: stage, epoch, loss, accuracy, val_* ...
    # The validation texts and their true labels: the job scores the serving version on them too.
    validation: tuple[list[str], list[str]] = field(default_factory=lambda: ([], []))


# --------------------------------------------------------------------------- features


class FeatureSpace:
    """The training vocabulary: sorted n-gram keys, mapped to rows 1..n (row 0 is padding).

    A text's features are its distinct known word/Han n-grams and, when the tokenizer has
    character n-grams, the known character n-grams of each of its distinct words (a
    character n-gram shared by two words of the text counts twice) — what the NumPy scorer
    sums (``SentimentScorer.feature_sums``)."""

    def __init__(self, vocabulary: np.ndarray, tokenizer: TokenizerConfig):
        self.vocabulary = vocabulary
        self.tokenizer = tokenizer

    @classmethod
    def fit_transform(cls, texts: Sequence[str], tokenizer: TokenizerConfig,
                      min_count: int) -> tuple[FeatureSpace, np.ndarray, np.ndarray]:
        """Keep the n-grams (and character n-grams) found in at least ``min_count`` texts;
        return the space and the texts' rows (as :meth:`rows`)."""
        encoded = _encode(texts, tokenizer)
        keys, splits, words = encoded[0], encoded[1], encoded[2]
        kept = [_frequent_keys(keys, splits, min_count)]
        if words:
            char_keys, char_splits = _text_char_keys(*_word_char_keys(words, tokenizer), *encoded[3:])
            kept.append(_frequent_keys(char_keys, char_splits, min_count))
        space = cls(sorted_unique(np.concatenate(kept)), tokenizer)
        rows, row_splits = space._rows(encoded)
        return space, rows, row_splits

    def __len__(self) -> int:
        return len(self.vocabulary)

    def rows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each text's features as rows 1..n, CSR-like ``(rows, row_splits)``: the NumPy
        scorer's features, shifted by the padding row."""
        return self._rows(_encode(texts, self.tokenizer))

    def _rows(self, encoded) -> tuple[np.ndarray, np.ndarray]:
        keys, splits, words = encoded[0], encoded[1], encoded[2]
        rows, row_splits = rows_of_keys(self.vocabulary, keys, splits)
        if words:
            word_keys, word_key_splits = _word_char_keys(words, self.tokenizer)
            char_rows, char_row_splits = _text_char_keys(
                *rows_of_keys(self.vocabulary, word_keys, word_key_splits), *encoded[3:])
            rows, row_splits = _merge_csr(rows, row_splits, char_rows, char_row_splits)
        return rows + 1, row_splits


def _encode(texts: Sequence[str], tokenizer: TokenizerConfig) -> tuple:
    """``(keys, splits, words, word_ids, word_splits)``; ``words`` is empty without character n-grams."""
    if tokenizer.char_ngrams:
        return encode_batch_words(texts, tokenizer)
    return (*encode_batch(texts, tokenizer), [], None, None)


def _frequent_keys(keys: np.ndarray, splits: np.ndarray, min_count: int) -> np.ndarray:
    """The keys found in at least ``min_count`` of the CSR texts, sorted."""
    unique_keys = sorted_unique(keys)
    if len(unique_keys) == 0:
        return unique_keys
    key_ids = sorted_positions(unique_keys, keys)
    n_keys = len(unique_keys)
    text_of_key = np.repeat(np.arange(len(splits) - 1, dtype=np.int64), np.diff(splits))
    distinct = sorted_unique(text_of_key * n_keys + key_ids)  # each key counts once per text
    document_frequency = np.bincount(distinct % n_keys, minlength=n_keys)
    return unique_keys[document_frequency >= min_count]


def _word_char_keys(words: list[str], tokenizer: TokenizerConfig) -> tuple[np.ndarray, np.ndarray]:
    """Character n-gram keys of each word, CSR-like over ``words``."""
    per_word = [char_ngram_keys(word, tokenizer) for word in words]
    splits = np.zeros(len(per_word) + 1, dtype=np.int64)
    np.cumsum([len(k) for k in per_word], out=splits[1:])
    return (np.concatenate(per_word) if per_word else np.zeros(0, np.uint64)), splits


def _text_char_keys(values: np.ndarray, value_splits: np.ndarray, word_ids: np.ndarray,
                    word_splits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per text, the concatenated CSR segments (over words) of its distinct words."""
    lengths = np.diff(value_splits)[word_ids]
    starts = value_splits[:-1][word_ids]
    total = int(lengths.sum())
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    gathered = values[offsets + np.arange(total)]
    word_text = np.repeat(np.arange(len(word_splits) - 1), np.diff(word_splits))
    splits = np.zeros(len(word_splits), dtype=np.int64)
    np.cumsum(np.bincount(np.repeat(word_text, lengths), minlength=len(word_splits) - 1), out=splits[1:])
    return gathered, splits


def _merge_csr(a: np.ndarray, a_splits: np.ndarray, b: np.ndarray, b_splits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row ``i`` = row ``i`` of ``a`` followed by row ``i`` of ``b``."""
    n = len(a_splits) - 1
    text = np.concatenate([np.repeat(np.arange(n), np.diff(a_splits)), np.repeat(np.arange(n), np.diff(b_splits))])
    order = np.argsort(text, kind="stable")
    return np.concatenate([a, b])[order], a_splits + b_splits


def nb_log_count_ratios(rows: np.ndarray, row_splits: np.ndarray, y: np.ndarray, n_rows: int,
                        n_classes: int, alpha: float) -> np.ndarray:
    """``r[f, c] = log(p_c(f) / p_rest(f))``, shape ``(n_rows, n_classes)``; row 0 is zeros.

    ``p_c(f)`` is the Laplace-smoothed share of class-``c`` feature occurrences (binary
    counts) that are feature ``f``; ``p_rest`` the same over the other classes.
    """
    text_of_row = np.repeat(np.arange(len(row_splits) - 1), np.diff(row_splits))
    counts = np.zeros((n_rows, n_classes))
    np.add.at(counts, (rows, y[text_of_row]), 1.0)
    ratios = np.zeros((n_rows, n_classes))
    for c in range(n_classes):
        inside = counts[1:, c] + alpha
        outside = counts[1:].sum(axis=1) - counts[1:, c] + alpha
        ratios[1:, c] = np.log(inside / inside.sum()) - np.log(outside / outside.sum())
    return ratios.astype(np.float32)


def inverse_document_frequency(rows: np.ndarray, row_splits: np.ndarray, n_rows: int) -> np.ndarray:
    """Smoothed idf per row, ``log((1 + n) / (1 + df)) + 1`` (as scikit-learn); row 0 is 0."""
    n_texts = len(row_splits) - 1
    text_of_row = np.repeat(np.arange(n_texts, dtype=np.int64), np.diff(row_splits))
    distinct = sorted_unique(text_of_row * n_rows + rows)  # a row counts once per text
    document_frequency = np.bincount(distinct % n_rows, minlength=n_rows)
    idf = np.log((1.0 + n_texts) / (1.0 + document_frequency)) + 1.0
    idf[0] = 0.0
    return idf.astype(np.float32)


class FeatureBatches:
    """Padded feature-row batches as a ``tf.data.Dataset``.

    Texts of similar length share a batch (sorted inside shuffled chunks), long texts go in
    smaller batches (``max_batch_features``), and padded lengths are powers of four so that
    the compiled training step sees few distinct shapes. Shuffled batches are re-planned
    every epoch; unshuffled ones keep their plan, and :meth:`order` says which text each
    output row belongs to.
    """

    def __init__(self, rows: np.ndarray, row_splits: np.ndarray, y: np.ndarray | None = None, *,
                 batch_size: int = 128, max_batch_features: int = 65_536, shuffle: bool = False,
                 seed: int = 0):
        self.rows, self.row_splits, self.y = rows, row_splits, y
        self.batch_size, self.max_batch_features = batch_size, max_batch_features
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.lengths = np.diff(row_splits)
        self.batches = self._plan()

    def _plan(self) -> list[np.ndarray]:
        n = len(self.lengths)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        chunk = self.batch_size * 50
        batches = []
        for start in range(0, n, chunk):
            part = order[start : start + chunk]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            i = 0
            while i < len(part):
                size = self.batch_size
                # Halve the batch until its longest text fits the feature budget.
                while (size > 1 and size * _padded_length(self.lengths[part[min(i + size, len(part)) - 1]])
                       > self.max_batch_features):
                    size //= 2
                batches.append(part[i : i + size])
                i += size
        if self.shuffle:
            self.rng.shuffle(batches)
        return batches

    def __len__(self) -> int:
        return len(self.batches)

    def order(self) -> np.ndarray:
        """Text index of each output row when predicting."""
        return np.concatenate(self.batches) if self.batches else np.zeros(0, dtype=np.int64)

    def _batch(self, index: int):
        members = self.batches[index]
        lengths = self.lengths[members]
        padded = np.zeros((len(members), _padded_length(lengths.max(initial=1))), dtype=np.int32)
        for i, (text, length) in enumerate(zip(members, lengths)):
            start = self.row_splits[text]
            padded[i, :length] = self.rows[start : start + length]
        if self.y is None:
            return (padded,)
        return padded, self.y[members].astype(np.int32)

    def dataset(self):
        import tensorflow as tf  # the Keras backend; only ever imported in training

        def generate():
            if self.shuffle:
                self.batches = self._plan()
            for index in range(len(self.batches)):
                yield self._batch(index)

        rows_spec = tf.TensorSpec(shape=(None, None), dtype=tf.int32)
        signature = (rows_spec,) if self.y is None else (rows_spec, tf.TensorSpec(shape=(None,), dtype=tf.int32))
        return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(2)


def _padded_length(length: int) -> int:
    """16, 64, 128, 256, ...: every new batch shape costs Keras a re-trace (~1 s), so keep them
    few; doubling above 64 keeps the padding of texts with character n-grams small."""
    padded = 16
    while padded < length:
        padded *= 4 if padded < 64 else 2
    return padded


# --------------------------------------------------------------------------- model


class BagOfNgramsTower(keras.layers.Layer):
    """Text tower: padded feature rows ``int32[batch, length]`` (0 = padding) → the logits of
    both heads, ``float32[batch, 2, n_classes]`` (see the module docstring)."""

    def __init__(self, nb_ratios: np.ndarray, idf: np.ndarray, *, nb_l2: float, idf_l2: float,
                 idf_scale: float, feature_dropout: float, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        n_rows, n_classes = nb_ratios.shape
        self.idf_scale = idf_scale
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
        # Set after training (interpolate, set_head_weight); fixed while training.
        self.nb_mix = self.add_weight(name="nb_mix", shape=(), initializer="ones", trainable=False)
        self.nb_mean = self.add_weight(name="nb_mean", shape=(n_classes,), initializer="zeros", trainable=False)
        self.head_weight = self.add_weight(name="head_weight", shape=(), trainable=False,
                                           initializer=constant(0.5))
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, rows, training=False):
        present = ops.cast(ops.greater(rows, 0), "float32")
        if training and self.feature_dropout > 0:
            keep = keras.random.uniform(ops.shape(rows), seed=self.seed_generator) >= self.feature_dropout
            present = present * ops.cast(keep, "float32")
        nb_weight = self.nb_mix * ops.take(self.nb_weight, rows, axis=0) + (1.0 - self.nb_mix) * self.nb_mean
        ratio = ops.take(self.nb_ratio, rows, axis=0)  # zero for padding
        nb_logits = ops.sum(ratio * nb_weight * ops.expand_dims(present, -1), axis=1)
        idf = ops.take(self.idf, rows, axis=0) * present
        norm = ops.sqrt(ops.maximum(ops.sum(idf * idf, axis=1, keepdims=True), 1e-12))
        idf_weight = ops.take(self.idf_weight, rows, axis=0)
        idf_logits = ops.sum(ops.expand_dims(idf, -1) * idf_weight, axis=1) * (self.idf_scale / norm)
        return ops.stack([nb_logits, idf_logits], axis=1) + self.bias

    def interpolate(self, mix: float) -> None:
        """NBSVM interpolation (Wang & Manning 2012, β = ``mix``): ``w ← β w + (1 - β) mean|w|``
        in head 0 — a blend of the trained weights with plain Naive Bayes. 1 undoes it."""
        weights = keras.ops.convert_to_numpy(self.nb_weight)[1:]
        self.nb_mean.assign(np.abs(weights).mean(axis=0) if len(weights) else np.zeros(weights.shape[1]))
        self.nb_mix.assign(mix)

    def set_head_weight(self, weight: float) -> None:
        self.head_weight.assign(weight)

    def export(self) -> dict[str, np.ndarray]:
        """Weights for the NumPy scorer, folded per feature, without the padding row."""
        numpy = keras.ops.convert_to_numpy
        mix = float(numpy(self.nb_mix))
        nb_weight = mix * numpy(self.nb_weight)[1:] + (1.0 - mix) * numpy(self.nb_mean)
        idf = numpy(self.idf)[1:]
        head_weight = float(numpy(self.head_weight))
        return {
            "nb_table": (numpy(self.nb_ratio)[1:] * nb_weight).astype(np.float32),
            "idf": idf.astype(np.float32),
            "idf_table": (self.idf_scale * idf[:, None] * numpy(self.idf_weight)[1:]).astype(np.float32),
            "bias": numpy(self.bias).astype(np.float32),
            "head_weights": np.array([head_weight, 1.0 - head_weight], dtype=np.float32),
        }


def mixture_probabilities(head_logits, head_weight):
    """``head_weight * softmax(head 0) + (1 - head_weight) * softmax(head 1)``: ``[batch, C]``."""
    probabilities = ops.softmax(head_logits, axis=-1)
    return head_weight * probabilities[:, 0] + (1.0 - head_weight) * probabilities[:, 1]


class MixtureAccuracy(keras.metrics.Metric):
    """Accuracy of the head mixture, i.e. of what the scorer serves."""

    def __init__(self, tower: BagOfNgramsTower, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.tower = tower
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = ops.argmax(mixture_probabilities(y_pred, self.tower.head_weight), axis=-1)
        hits = ops.cast(ops.equal(ops.reshape(ops.cast(y_true, "int32"), (-1,)), ops.cast(predicted, "int32")), "float32")
        self.correct.assign_add(ops.sum(hits))
        self.total.assign_add(ops.cast(ops.shape(hits)[0], "float32"))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


class SentimentTask:
    """Loss: softmax cross-entropy of each head, summed. Metric: accuracy of the mixture."""

    def __init__(self):
        self.cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compute_loss(self, labels, head_logits, sample_weight=None):
        return (self.cross_entropy(labels, head_logits[:, 0], sample_weight=sample_weight)
                + self.cross_entropy(labels, head_logits[:, 1], sample_weight=sample_weight))

    def metrics(self, tower: BagOfNgramsTower) -> list:
        return [MixtureAccuracy(tower)]


class SentimentModel(keras.Model):
    """Tower + task. ``predict`` gives head logits; :meth:`probabilities` turns them into the
    served class probabilities."""

    def __init__(self, tower: BagOfNgramsTower, task: SentimentTask, feature_space: FeatureSpace,
                 classes: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        self.tower = tower
        self.task = task
        self.feature_space = feature_space
        self.classes = tuple(classes)

    def call(self, rows, training=False):
        return self.tower(rows, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.task.compute_loss(y, y_pred, sample_weight)
        if self.losses:  # the tower's L2 penalties
            loss = loss + ops.sum(ops.stack(self.losses))
        return loss

    def probabilities(self, head_logits) -> np.ndarray:
        return keras.ops.convert_to_numpy(mixture_probabilities(head_logits, self.tower.head_weight))


def keras_probabilities(model: SentimentModel, texts: Sequence[str]) -> np.ndarray:
    """Class probabilities computed by the Keras model itself (``model.predict``), in input
    order — what the parity test compares the NumPy scorer with."""
    logits = _predict_head_logits(model, texts)
    return model.probabilities(logits).astype(np.float64)


def _predict_head_logits(model: SentimentModel, texts: Sequence[str]) -> np.ndarray:
    rows, splits = model.feature_space.rows(texts)
    batches = FeatureBatches(rows, splits, batch_size=512, max_batch_features=1 << 20)
    logits = np.asarray(model.predict(batches.dataset(), verbose=0)) if len(batches) else np.zeros((0, 2, len(model.classes)))
    ordered = np.empty_like(logits)
    ordered[batches.order()] = logits
    return ordered


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
        scorer = SentimentScorer(_export(model, config))
        head_probabilities = softmax(scorer.head_logits(scorer.feature_sums(texts)))
        for weight in config.head_weights:
            probabilities = weight * head_probabilities[:, 0] + (1.0 - weight) * head_probabilities[:, 1]
            accuracy = float(np.mean(probabilities.argmax(axis=1) == y))
            log_loss = float(-np.mean(np.log(np.clip(probabilities[np.arange(len(y)), y], 1e-12, None))))
            table.append({"nb_interpolation": mix, "head_weight": weight, "accuracy": accuracy, "log_loss": log_loss})
    best = max(table, key=lambda row: (row["accuracy"], -row["log_loss"]))
    return best["nb_interpolation"], best["head_weight"], table


def _export(model: SentimentModel, config: SentimentTrainingConfig, model_version: str = "unversioned",
            metadata: dict | None = None) -> SentimentArtifact:
    return SentimentArtifact(
        vocabulary=model.feature_space.vocabulary,
        classes=model.classes,
        tokenizer=model.feature_space.tokenizer,
        neutral_threshold=config.neutral_threshold,
        model_version=model_version,
        metadata=metadata or {},
        **model.tower.export(),
    )


def _stratified_split(y: np.ndarray, fraction: float, seed: int,
                      candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stratified validation split drawn from ``candidates`` (default: all); the rest trains."""
    rng = np.random.default_rng(seed)
    candidates = np.arange(len(y)) if candidates is None else candidates
    per_class = []
    for c in np.unique(y):
        members = rng.permutation(candidates[y[candidates] == c])
        per_class.append(members[: int(round(len(members) * fraction))])
    validation = np.sort(np.concatenate(per_class))
    train = np.setdiff1d(np.arange(len(y)), validation)
    return train, validation


class _TokenRuns:
    """Contiguous token runs of texts, as 64-bit keys, to find texts inside other texts.

    Phrase-level corpora (SST's train.tsv holds every phrase of every sentence) would otherwise
    leak a validation sentence's phrases into the training split and make validation reward
    memorising them. Only texts of at most ``max_tokens`` tokens are looked for."""

    def __init__(self, texts: Sequence[str], max_tokens: int = 64):
        cache: dict[str, int] = {}
        token_lists = [tokenize(text) for text in texts]
        self.lengths = np.array([len(tokens) for tokens in token_lists], dtype=np.int64)
        self.flat = np.array([cache[t] if t in cache else cache.setdefault(t, token_key(t))
                              for tokens in token_lists for t in tokens], dtype=np.uint64)
        self.text_of = np.repeat(np.arange(len(texts), dtype=np.int64), self.lengths)
        self.max_tokens = max_tokens
        self.full = np.zeros(len(texts), dtype=np.uint64)  # key of each whole text
        for m, starts, keys in self._runs():
            whole = self.lengths[self.text_of[starts]] == m
            self.full[self.text_of[starts[whole]]] = keys[whole]

    def _runs(self, containers: np.ndarray | None = None):
        """``(m, start positions, keys)`` of the runs of ``m`` tokens, for each length m up to
        ``max_tokens`` that some text has."""
        wanted = set(np.unique(self.lengths[(self.lengths > 0) & (self.lengths <= self.max_tokens)]).tolist())
        flat, text_of = self.flat, self.text_of
        inside = np.ones(len(flat), dtype=bool) if containers is None else np.isin(text_of, containers)
        prefix = flat
        same = inside
        for m in range(1, (max(wanted) if wanted else 0) + 1):
            if m > 1:
                prefix = _mix_array(prefix[:-1] * np.uint64(_GOLDEN) + flat[m - 1 :])
                same = same[:-1] & (text_of[: len(prefix)] == text_of[m - 1 :])
            if m in wanted:
                starts = np.flatnonzero(same)
                yield m, starts, prefix[starts]

    def contained_in(self, containers: np.ndarray, candidates: np.ndarray, proper: bool) -> np.ndarray:
        """For each candidate, whether its tokens are a run of one of ``containers`` (with
        ``proper``: a run shorter than that container, or a whole other container text)."""
        candidates = candidates[(self.lengths[candidates] > 0) & (self.lengths[candidates] <= self.max_tokens)]
        hit = np.zeros(len(self.lengths), dtype=bool)
        for m, starts, keys in self._runs(containers):
            members = candidates[self.lengths[candidates] == m]
            if len(members) == 0:
                continue
            container = self.text_of[starts]
            if proper:
                keep = self.lengths[container] > m
                keys, container = keys[keep], container[keep]
            # Every copy of a repeated text: a search of the sorted keys found only the first,
            # which left 1,564 copies of SST-2 phrases of validation sentences in training (and
            # validation read 0.86-0.89 where unseen sentences read 0.82-0.84).
            hit[members[np.isin(self.full[members], keys)]] = True
        if proper:  # duplicates: the same text twice is inside the other copy
            full = self.full[candidates]
            unique, counts = np.unique(full, return_counts=True)
            hit[candidates[np.isin(full, unique[counts > 1])]] = True
        return hit


# Texts longer than this (median, in characters) are reviews rather than phrases of sentences,
# and are not searched for inside each other.
_PHRASE_MEDIAN_CHARS = 64


def _validation_split(texts: list[str], y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Stratified validation split of texts that lie inside no other text; the texts that lie
    inside a validation text leave the training part too. Returns (train, validation, left out)."""
    plain = _stratified_split(y, fraction, seed)
    lengths = [len(text) for text in texts]
    if not texts or np.median(lengths) > _PHRASE_MEDIAN_CHARS:  # reviews, not phrases: a group split
        return (*duplicate_aware_split(texts, y, fraction, seed), 0)
    runs = _TokenRuns(texts)
    everything = np.arange(len(texts))
    roots = np.flatnonzero(~runs.contained_in(everything, everything, proper=True))
    train_index, val_index = _stratified_split(y, fraction, seed, roots)
    if len(np.unique(y[val_index])) < len(np.unique(y)):  # too few texts outside other texts
        return plain[0], plain[1], 0
    inside_validation = runs.contained_in(val_index, train_index, proper=False)
    kept = train_index[~inside_validation[train_index]]
    return kept, val_index, int(len(train_index) - len(kept))


def normalized_text(text: str) -> str:
    """What makes two reviews "the same text": case, spacing and punctuation do not count."""
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


def duplicate_aware_split(texts: Sequence[str], y: np.ndarray, fraction: float, seed: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split in which every copy of a text (after ``normalized_text``) falls on one
    side: shops copy one review onto each variant listing, and a copy in both halves makes
    validation read 0.99 for a model that has learnt nothing but the copies."""
    keys = np.unique([normalized_text(t) for t in texts], return_inverse=True)[1]
    first = np.unique(keys, return_index=True)[1]
    _, val_first = _stratified_split(y, fraction, seed, np.sort(first))
    validation = np.flatnonzero(np.isin(keys, keys[val_first]))
    if len(np.unique(y[validation])) < len(np.unique(y)):  # too few distinct texts: a plain split
        return _stratified_split(y, fraction, seed)
    return np.setdiff1d(np.arange(len(y)), validation), validation


def duplicate_count(texts: Sequence[str]) -> int:
    """Texts that repeat an earlier one (after ``normalized_text``)."""
    return len(texts) - len({normalized_text(t) for t in texts})


def _choose_classes(counts: dict[str, int], n_labelled: int, config: SentimentTrainingConfig) -> tuple[str, ...]:
    for needed in ("negative", "positive"):
        if counts[needed] == 0:
            raise ValueError(f"no {needed} examples: sentiment training needs both positive and negative reviews")
    neutral = counts["neutral"]
    if neutral >= config.neutral_min_count and neutral >= config.neutral_min_share * n_labelled:
        return LABELS
    return ("negative", "positive")


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
    classes = _choose_classes(counts, sum(counts.values()), config)
    keep = [i for i, label in enumerate(labels) if label in classes and texts[i].strip()]
    texts = [texts[i] for i in keep]
    y = np.array([classes.index(labels[i]) for i in keep], dtype=np.int32)
    train_index, val_index, left_out = _validation_split(texts, y, validation_fraction, seed)
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
    val_probabilities = SentimentScorer(_export(model, config)).probabilities(val_texts)
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
    artifact = _export(model, config, model_version, metadata={
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
        accuracy: float | None = None
        mean_confidence: float | None = None
        if count:
            accuracy, mean_confidence = float(correct[members].mean()), float(confidence[members].mean())
            ece += count / len(y_true) * abs(accuracy - mean_confidence)
        table.append({"low": float(low), "high": float(high), "count": count,
                      "accuracy": accuracy, "mean_confidence": mean_confidence})
    present = [per_class[name]["recall"] for name in classes if per_class[name]["support"]]
    return {
        "accuracy": float(correct.mean()) if len(y_true) else 0.0,
        # Mean recall over the classes present: always answering the majority class scores 1 / n.
        "balanced_accuracy": float(np.mean(present)) if present else 0.0,
        "macro_f1": float(np.mean(f1s)),
        "per_class": per_class,
        "calibration": {"expected_calibration_error": float(ece), "bins": table},
    }
