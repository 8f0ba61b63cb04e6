"""Review sentiment scoring with NumPy only (the serving side; never imports TensorFlow).

A :class:`SentimentArtifact` is what training exports: a ``.npz`` of weights and a small JSON
config (tokenizer settings, class names, neutral threshold, model version). A
:class:`SentimentScorer` turns a batch of texts into labels, scores and probabilities.

The model (trained by ``tailor.training.sentiment.fit``) reads a text as the *set* of its n-gram
keys that are in the vocabulary (``tailor.sentiment.text``), and has two linear heads over them:

- head 0 sums one ``nb_table`` row per feature (Naive-Bayes-weighted logistic regression);
- head 1 sums ``idf_table`` rows and divides by the text's idf norm ``sqrt(Σ idf²)`` (TF-IDF
  logistic regression on binary features).

A text's features are its distinct known word/Han n-grams plus, when the tokenizer has
character n-grams, the known character n-grams of each of its distinct words; a word's
character n-gram rows and its own unigram row are summed once and cached per scorer
(:meth:`SentimentScorer.feature_sums`), so a text costs one row per distinct word however many
n-grams the word has.

The class probabilities are ``head_weights[0] * softmax(head 0) + head_weights[1] *
softmax(head 1)``. Scoring a batch is vectorised: the texts' feature rows form one CSR-like
index array, a single gather plus ``np.add.reduceat`` gives every per-text sum, and the rest
is elementwise arithmetic on ``[n_texts, n_classes]`` arrays.

Output per text (in input order)::

    {"label": "POSITIVE" | "NEGATIVE" | "NEUTRAL",
     "score": P(positive) - P(negative),            # in [-1, 1]
     "probabilities": {"positive": p, "negative": q, "neutral": r},
     "language": "en" | "zh" | "mixed" | "und"}

``label`` is ``NEUTRAL`` when the neutral class has the highest probability (3-class models)
or when the highest probability is below ``neutral_threshold`` (default 0.6: the model is not
confident; ``score(texts, neutral_threshold=...)`` overrides it per call, 0 meaning a 2-class
model always answers POSITIVE or NEGATIVE). A 2-class model reports ``neutral`` probability 0. Empty or whitespace-only text
gets ``NEUTRAL``, score 0, probabilities ``{positive 0, negative 0, neutral 1}``, language
``und`` and ``"note": "empty text"`` — there is nothing to score, and neutral is the answer
that moves aggregates (mean score, share positive) least. A non-empty text with no known
feature (e.g. in a language the model never saw) is scored normally: the model falls back to
its biases, which usually lands under the threshold and so reads as ``NEUTRAL``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tailor.sentiment.text import (
    TokenizerConfig,
    char_ngram_keys,
    detect_language,
    encode_batch,
    encode_for_scoring,
    token_key,
)

WEIGHTS_FILE = "sentiment.npz"
CONFIG_FILE = "sentiment.json"
ARTIFACT_FILES = (WEIGHTS_FILE, CONFIG_FILE)
FORMAT_VERSION = 1
CLASS_NAMES = ("negative", "neutral", "positive")
DEFAULT_NEUTRAL_THRESHOLD = 0.6
EMPTY_NOTE = "empty text"
# A language's answers come from the model alone once it saw this many labelled reviews of it,
# counted as twice its rarer class (positive or negative: 149 negatives of 3,000 reviews count
# 298); below, the lexicon prior (tailor.sentiment.prior) is blended in with weight 1 - n / 200.
PRIOR_FULL_WEIGHT = 200
_WEIGHT_NAMES = ("vocabulary", "nb_table", "idf", "idf_table", "bias", "head_weights")


@dataclass
class SentimentArtifact:
    """Exported weights and config of one trained sentiment model.

    Weights (``n_features`` rows; ``vocabulary`` is sorted so keys map to rows by binary search):

    - ``vocabulary``: ``uint64[n_features]`` feature keys (``tailor.sentiment.text``), sorted
    - ``nb_table``: ``float32[n_features, n_classes]`` logits each feature adds in head 0
    - ``idf``: ``float32[n_features]`` and ``idf_table``: ``float32[n_features, n_classes]``
      (idf times weight) for head 1
    - ``bias``: ``float32[2, n_classes]``, one row per head
    - ``head_weights``: ``float32[2]``, the heads' shares of the probability mixture
    """

    vocabulary: np.ndarray
    nb_table: np.ndarray
    idf: np.ndarray
    idf_table: np.ndarray
    bias: np.ndarray
    head_weights: np.ndarray
    classes: tuple[str, ...]
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    neutral_threshold: float = DEFAULT_NEUTRAL_THRESHOLD
    model_version: str = "unversioned"
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.classes) - set(CLASS_NAMES)
        if unknown or len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be 2 or 3 distinct names from {CLASS_NAMES}, got {self.classes}")
        if "positive" not in self.classes or "negative" not in self.classes:
            raise ValueError("classes must include 'positive' and 'negative'")
        n_features, n_classes = len(self.vocabulary), len(self.classes)
        expected = {
            "nb_table": (n_features, n_classes),
            "idf": (n_features,),
            "idf_table": (n_features, n_classes),
            "bias": (2, n_classes),
            "head_weights": (2,),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")
        if n_features > 1 and np.any(self.vocabulary[1:] <= self.vocabulary[:-1]):
            raise ValueError("vocabulary must be sorted and free of duplicates")
        if np.any(self.head_weights < 0) or not np.isclose(self.head_weights.sum(), 1.0):
            raise ValueError(f"head_weights must be non-negative and sum to 1, got {self.head_weights}")
        if not 0.0 <= self.neutral_threshold <= 1.0:
            raise ValueError("neutral_threshold must be within [0, 1]")

    def config(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "model_version": self.model_version,
            "classes": list(self.classes),
            "neutral_threshold": self.neutral_threshold,
            "tokenizer": self.tokenizer.to_dict(),
            "n_features": int(len(self.vocabulary)),
            "metadata": self.metadata,
        }

    def to_files(self) -> dict[str, bytes]:
        """``{"sentiment.npz": weights, "sentiment.json": config}``, ready to store side by side."""
        buffer = io.BytesIO()
        np.savez(buffer, **{name: getattr(self, name) for name in _WEIGHT_NAMES})
        config = json.dumps(self.config(), indent=2, sort_keys=True).encode("utf-8")
        return {WEIGHTS_FILE: buffer.getvalue(), CONFIG_FILE: config}

    @classmethod
    def from_files(cls, files: Mapping[str, bytes]) -> SentimentArtifact:
        missing = [name for name in ARTIFACT_FILES if name not in files]
        if missing:
            raise ValueError(f"sentiment artifact is missing {', '.join(missing)}")
        config = json.loads(files[CONFIG_FILE])
        if config.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"sentiment artifact format {config.get('format_version')!r} is not supported "
                f"(this code reads format {FORMAT_VERSION})"
            )
        with np.load(io.BytesIO(files[WEIGHTS_FILE]), allow_pickle=False) as weights:
            arrays = {name: weights[name] for name in _WEIGHT_NAMES}
        return cls(
            **arrays,
            classes=tuple(config["classes"]),
            tokenizer=TokenizerConfig.from_dict(config["tokenizer"]),
            neutral_threshold=float(config["neutral_threshold"]),
            model_version=str(config["model_version"]),
            metadata=dict(config.get("metadata") or {}),
        )

    def save(self, directory: str | os.PathLike) -> None:
        os.makedirs(directory, exist_ok=True)
        for name, data in self.to_files().items():
            with open(os.path.join(directory, name), "wb") as handle:
                handle.write(data)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SentimentArtifact:
        files = {}
        for name in ARTIFACT_FILES:
            with open(os.path.join(directory, name), "rb") as handle:
                files[name] = handle.read()
        return cls.from_files(files)


class SentimentScorer:
    """Scores texts with an exported model; build once per container and reuse."""

    def __init__(self, artifact: SentimentArtifact):
        self.artifact = artifact
        self.classes = artifact.classes
        self.model_version = artifact.model_version
        self.neutral_threshold = artifact.neutral_threshold
        self._vocabulary = artifact.vocabulary
        self._tokenizer = artifact.tokenizer
        self._n_classes = artifact.nb_table.shape[1]
        # One row per feature with everything summed per text: head-0 logits, head-1 logits
        # before normalisation, idf². float64 keeps the sums as exact as the float32 Keras
        # model they mirror.
        self._table = np.concatenate(
            [artifact.nb_table, artifact.idf_table, artifact.idf[:, None].astype(np.float64) ** 2], axis=1,
            dtype=np.float64)
        # Character n-grams are summed per distinct word, so each word's sum ("bundle") is
        # computed once and cached: a text then costs one row per distinct word.
        self._bundle_index: dict[str, int] = {}
        self._bundles = np.zeros((1024, self._table.shape[1]))
        self._bias = artifact.bias.astype(np.float64)
        self._head_weights = artifact.head_weights.astype(np.float64)
        self._column = {name: index for index, name in enumerate(self.classes)}

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SentimentScorer:
        return cls(SentimentArtifact.load(directory))

    @classmethod
    def from_files(cls, files: Mapping[str, bytes]) -> SentimentScorer:
        return cls(SentimentArtifact.from_files(files))

    def feature_rows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary rows of each text's distinct known word/Han n-gram features, CSR-like
        ``(rows, row_splits)`` (character n-grams are not included: see :meth:`feature_sums`)."""
        keys, key_splits = encode_batch(texts, self._tokenizer)
        return rows_of_keys(self._vocabulary, keys, key_splits)

    def feature_sums(self, texts: Sequence[str]) -> np.ndarray:
        """``float64[n_texts, 2 * n_classes + 1]``: per text, the sums over its features of the
        head-0 logits, the head-1 logits (before normalisation) and idf². The features are
        the text's distinct known word/Han n-grams plus, for each of its distinct words, that
        word's known character n-grams."""
        keys, key_text, n_texts, words, word_ids, word_splits = encode_for_scoring(texts, self._tokenizer)
        sums = _csr_sums(self._table, *_rows_of_texts(self._vocabulary, keys, key_text, n_texts))
        if len(words):
            sums += _csr_sums(self._word_bundles(words), word_ids, word_splits)
        return sums

    def _word_bundles(self, words: list[str]) -> np.ndarray:
        """Each word's sum of ``_table`` rows over its known character n-grams."""
        index = self._bundle_index
        missing = [word for word in words if word not in index]
        if len(index) + len(missing) > _BUNDLE_LIMIT:  # bounded: forget everything and start over
            index.clear()
            missing = list(words)
        if missing:
            # A word's bundle: its character n-grams and the word itself (encode_for_scoring
            # leaves word unigrams to the bundles).
            keys = [np.append(char_ngram_keys(word, self._tokenizer), np.uint64(token_key(word))) for word in missing]
            splits = np.zeros(len(keys) + 1, dtype=np.int64)
            np.cumsum([len(k) for k in keys], out=splits[1:])
            rows, row_splits = rows_of_keys(self._vocabulary, np.concatenate(keys), splits)
            bundles = _csr_sums(self._table, rows, row_splits)
            start = len(index)
            if start + len(missing) > len(self._bundles):
                grown = np.zeros((max(2 * len(self._bundles), start + len(missing)), self._table.shape[1]))
                grown[:start] = self._bundles[:start]
                self._bundles = grown
            self._bundles[start : start + len(missing)] = bundles
            index.update(zip(missing, range(start, start + len(missing))))
        return self._bundles[[index[word] for word in words]]

    def head_logits(self, sums: np.ndarray) -> np.ndarray:
        """``float64[n_texts, 2, n_classes]``: the logits of both heads from :meth:`feature_sums`."""
        n_classes = self._n_classes
        nb_logits = sums[:, :n_classes]
        norm = np.sqrt(np.maximum(sums[:, -1:], 1e-12))
        idf_logits = sums[:, n_classes : 2 * n_classes] / norm
        return np.stack([nb_logits, idf_logits], axis=1) + self._bias

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """``float64[n_texts, n_classes]`` class probabilities, columns in ``self.classes`` order."""
        head_probabilities = softmax(self.head_logits(self.feature_sums(texts)))
        return np.einsum("thc,h->tc", head_probabilities, self._head_weights)

    def score(self, texts: Sequence[str], neutral_threshold: float | None = None) -> list[dict]:
        """Label, score, probabilities and language of each text, in input order.

        ``neutral_threshold`` overrides the artifact's threshold for this call (0: a 2-class
        model never answers NEUTRAL for a non-empty text)."""
        threshold = self.neutral_threshold if neutral_threshold is None else float(neutral_threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"neutral_threshold must be within [0, 1], got {neutral_threshold!r}")
        texts = list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{index}] is {type(text).__name__}, expected str")
        probabilities = self.probabilities(texts)
        languages = [detect_language(text) for text in texts]
        sources, notes = self._blend_prior(texts, languages, probabilities)
        positive = probabilities[:, self._column["positive"]].tolist()
        negative = probabilities[:, self._column["negative"]].tolist()
        neutral_column = self._column.get("neutral")
        neutral = probabilities[:, neutral_column].tolist() if neutral_column is not None else [0.0] * len(texts)
        top = probabilities.argmax(axis=1) if len(texts) else np.zeros(0, dtype=int)
        confident = (probabilities.max(axis=1, initial=0.0) >= threshold).tolist()
        labels = [name.upper() for name in self.classes]
        top_labels = [labels[index] if sure else "NEUTRAL" for index, sure in zip(top.tolist(), confident)]
        results = []
        for text, label, p, n, r, language, source, note in zip(texts, top_labels, positive, negative, neutral,
                                                                 languages, sources, notes):
            results.append(_result(text, label, p, n, r, language, source, note))
        return results

    def _blend_prior(self, texts: list[str], languages: list[str], probabilities: np.ndarray
                     ) -> tuple[list[str], list[str | None]]:
        """Blends the lexicon prior into ``probabilities`` (in place) for languages the model saw
        too few labelled reviews of; returns each text's source (model, blend, prior) and note.
        Artifacts trained before languages were counted answer from the model alone."""
        from tailor.sentiment import prior

        trained = self.artifact.metadata.get("languages")
        if trained is None:
            return ["model"] * len(texts), [None] * len(texts)
        sources: list[str] = []
        notes: list[str | None] = []
        pos, neg = self._column["positive"], self._column["negative"]
        for row, (text, language) in enumerate(zip(texts, languages)):
            counts = trained.get(language) or {}
            weight = min(1.0, 2 * min(counts.get("positive", 0), counts.get("negative", 0)) / PRIOR_FULL_WEIGHT)
            if weight >= 1.0 or not text.strip():
                sources.append("model")
                notes.append(None)
                continue
            prior_positive, prior_negative = prior.probabilities(text)
            probabilities[row] *= weight
            probabilities[row, pos] += (1 - weight) * prior_positive
            probabilities[row, neg] += (1 - weight) * prior_negative
            sources.append("prior" if weight == 0 else "blend")
            notes.append(f"no {language} reviews were labelled for training: scored by the built-in lexicon"
                         if not counts else
                         f"few labelled {language} reviews: the built-in lexicon weighs {1 - weight:.0%}")
        return sources, notes


def _result(text: str, label: str, positive: float, negative: float, neutral: float, language: str,
            source: str, note: str | None) -> dict:
    if text.isspace() or not text:
        return {"label": "NEUTRAL", "score": 0.0, "probabilities": {"positive": 0.0, "negative": 0.0, "neutral": 1.0},
                "language": "und", "note": EMPTY_NOTE}
    result = {"label": label, "score": positive - negative,
              "probabilities": {"positive": positive, "negative": negative, "neutral": neutral},
              "language": language, "source": source}
    if note:
        result["note"] = note
    return result


class PriorScorer:
    """Answers before any sentiment model is trained: the built-in lexicon alone (English and
    Chinese), in the trained scorer's answer shape, every answer with ``source: prior`` and a note."""

    NOTE = "no sentiment model is trained yet: scored by the built-in lexicon"

    def score(self, texts: Sequence[str], neutral_threshold: float | None = None) -> list[dict]:
        from tailor.sentiment import prior

        threshold = DEFAULT_NEUTRAL_THRESHOLD if neutral_threshold is None else float(neutral_threshold)
        results = []
        for text in texts:
            positive, negative = prior.probabilities(text)
            label = ("POSITIVE" if positive >= negative else "NEGATIVE") if max(positive, negative) >= threshold \
                else "NEUTRAL"
            results.append(_result(text, label, positive, negative, 0.0, detect_language(text), "prior", self.NOTE))
        return results


_BUNDLE_LIMIT = 200_000


def _csr_sums(table: np.ndarray, rows: np.ndarray, row_splits: np.ndarray) -> np.ndarray:
    """Per CSR segment, the sum of its ``table`` rows (zeros for an empty segment)."""
    n = len(row_splits) - 1
    sums = np.zeros((n, table.shape[1]))
    has_rows = np.diff(row_splits) > 0
    if has_rows.any():
        # reduceat would return the next element for an empty segment: those stay at zero.
        sums[has_rows] = np.add.reduceat(table[rows], row_splits[:-1][has_rows], axis=0)
    return sums


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` via a sort: NumPy 2.4's ``np.unique`` hashes, and on millions of
    large integers that is ~100x slower than sorting."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def sorted_positions(sorted_values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``np.searchsorted(sorted_values, keys)``, several times faster on large inputs: binary
    searches for sorted keys walk memory in order instead of missing the cache every time."""
    order = np.argsort(keys)
    positions = np.empty(len(keys), dtype=np.int64)
    positions[order] = np.searchsorted(sorted_values, keys[order])
    return positions


def rows_of_keys(vocabulary: np.ndarray, keys: np.ndarray, key_splits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map CSR feature keys to rows of a sorted ``vocabulary``, dropping unknown keys and
    repeats within a text (a feature counts once per text: a binary bag of n-grams)."""
    n_texts = len(key_splits) - 1
    text_of_key = np.repeat(np.arange(n_texts, dtype=np.int64), np.diff(key_splits))
    return _rows_of_texts(vocabulary, keys, text_of_key, n_texts)


def _rows_of_texts(vocabulary: np.ndarray, keys: np.ndarray, text_of_key: np.ndarray,
                   n_texts: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rows_of_keys` with each key's text given (keys in any order)."""
    if len(vocabulary) == 0 or len(keys) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(n_texts + 1, dtype=np.int64)
    rows = sorted_positions(vocabulary, keys)
    rows[rows == len(vocabulary)] = 0
    known = vocabulary[rows] == keys
    # Deduplicating (text, row) pairs packed into one int64 also sorts them by text, which
    # the CSR layout needs.
    pairs = sorted_unique(text_of_key[known] * len(vocabulary) + rows[known])
    text_of_row, rows = np.divmod(pairs, len(vocabulary))
    row_splits = np.zeros(n_texts + 1, dtype=np.int64)
    np.cumsum(np.bincount(text_of_row, minlength=n_texts), out=row_splits[1:])
    return rows, row_splits


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True, initial=-np.inf))
    return exp / exp.sum(axis=-1, keepdims=True)
