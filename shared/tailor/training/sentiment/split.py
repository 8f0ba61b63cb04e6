"""Validation splits that measure accuracy on unseen texts rather than memory of seen ones.

:func:`validation_split` holds out a stratified share of the labelled texts. Two kinds of corpus
make a plain split lie:

- Phrase corpora (short texts, many of them phrases of other texts, like SST-2's train.tsv):
  the validation split is drawn from texts that lie inside no other text, and the texts that
  lie inside a validation text leave the training part of the validation run. Otherwise
  validation rewards memorising the phrases of its own sentences (on SST-2, 0.92 "validation
  accuracy" for a model that labels unseen sentences ~0.82 right) and picks too many epochs.
- Review corpora with copies (shops paste one review onto each variant listing):
  :func:`duplicate_aware_split` keeps every copy of a text (after :func:`normalized_text`) on
  one side of the split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from tailor.sentiment.text import _GOLDEN, _mix_array, token_key, tokenize


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


def validation_split(texts: list[str], y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
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
