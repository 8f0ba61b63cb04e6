"""Phrase corpora (SST's train.tsv: every phrase of every sentence, each labelled): the
validation split holds out whole sentences, and none of their phrases — not one copy of a
repeated phrase — stays in the training part; otherwise validation measures memory, not the
accuracy on unseen sentences, and chooses epochs and the head mixture by it."""

import numpy as np
import pytest

pytest.importorskip("keras")

from tailor.training.sentiment.split import validation_split  # noqa: E402

POSITIVE = ["great", "lovely", "charming", "superb", "moving"]
NEGATIVE = ["dull", "awful", "tedious", "clumsy", "flat"]
FILLER = ["the", "film", "plot", "cast", "is", "and", "a", "story", "with", "its", "ending", "very"]


def sentences(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(FILLER, size=rng.integers(4, 9))) + [rng.choice(POSITIVE if label else NEGATIVE)]
        rng.shuffle(words)
        texts.append(" ".join(words) + f" s{i}")  # a word of its own: no sentence inside another
        labels.append(label)
    return texts, labels


def with_phrases(texts: list[str], labels: list[int]) -> tuple[list[str], np.ndarray]:
    """Each sentence and its contiguous phrases of 2+ tokens (the sentence's label)."""
    out, y = [], []
    for text, label in zip(texts, labels):
        tokens = text.split()
        for start in range(len(tokens)):
            for end in range(start + 2, len(tokens) + 1):
                out.append(" ".join(tokens[start:end]))
                y.append(label)
    return out, np.array(y, dtype=np.int32)


def test_phrase_corpus_validation_holds_out_whole_sentences_without_their_phrases():
    roots, root_labels = sentences(60)
    texts, y = with_phrases(roots, root_labels)
    assert len(texts) > len(set(texts))  # short phrases ("the film") repeat across sentences
    train, validation, left_out = validation_split(texts, y, 0.2, seed=0)
    assert {texts[i] for i in validation} <= set(roots)
    assert len(validation) == 12 and sorted(np.bincount(y[validation])) == [6, 6]
    held_out = [f" {texts[i]} " for i in validation]
    leaked = [texts[i] for i in train if any(f" {texts[i]} " in v for v in held_out)]
    assert leaked == [] and left_out > 0
    assert len(train) + len(validation) + left_out == len(texts)


def test_reviews_get_a_plain_split():
    texts = [f"review number {i} of this hotel, and a long enough text to be a review, not a phrase" for i in range(40)]
    y = np.array([i % 2 for i in range(40)], dtype=np.int32)
    train, validation, left_out = validation_split(texts, y, 0.25, seed=0)
    assert left_out == 0 and len(validation) == 10 and len(train) == 30
