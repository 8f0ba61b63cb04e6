"""The Keras model of review sentiment, factored like TensorFlow Recommenders.

- :class:`BagOfNgramsTower` (the text tower) maps a text's features to the logits of two heads.
  A text is the *set* of its n-gram keys (``tailor.sentiment.text``) found in the training vocabulary,
  given as padded vocabulary rows (0 = padding; see :mod:`tailor.training.sentiment.features`).

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
  (driven by :mod:`tailor.training.sentiment.fit`) is the one training loop, used for the
  validation run and the refit.

The NumPy scorer serves what :meth:`BagOfNgramsTower.export` folds out of these weights;
:func:`keras_probabilities` is the Keras side of the parity test that proves the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from tailor.training.sentiment.features import FeatureBatches, FeatureSpace


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
