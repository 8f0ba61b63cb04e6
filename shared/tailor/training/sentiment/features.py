"""What the sentiment model reads of a text: vocabulary rows, fixed per-feature statistics, batches.

Features (``tailor.sentiment.text``): word uni- and bigrams, Han character 1–3-grams, and character
2–5-grams of each distinct Latin-script word of a text (fastText-style ``<word>`` framing: they
carry morphology and rare or misspelt words; on MR they were worth ~1.5 points on a validation
split carved from training data); each token inside a negation scope once more as ``<not>
token``; and per valence bucket, counts of sentiment-lexicon words (VADER's, baked into the
code; the sign flips inside a negation scope). Negation and lexicon were worth ~0.75 points on
MR and ~0.3 on ChnSentiCorp (Han negators) on validation splits of training data.

:class:`FeatureSpace` keeps the n-gram keys frequent enough in the training texts and maps a
text to the *set* of its known keys as vocabulary rows (0 = padding), exactly as the NumPy
scorer sums them. :func:`nb_log_count_ratios` and :func:`inverse_document_frequency` are the
fixed (not trained) statistics the two heads of the tower weight features by.
:class:`FeatureBatches` pads rows into the batches Keras trains and predicts on. No Keras here:
only :meth:`FeatureBatches.dataset` imports TensorFlow, when it is called.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tailor.sentiment.scorer import rows_of_keys, sorted_positions, sorted_unique
from tailor.sentiment.text import TokenizerConfig, char_ngram_keys, encode_batch, encode_batch_words


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
