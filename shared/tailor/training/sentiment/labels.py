"""The labels sentiment training learns, and which of them a corpus gets.

Labels are the serving scorer's class names (``tailor.sentiment.scorer.CLASS_NAMES``), so a
trained model's classes always mean what serving says. Star ratings become labels here, and
:func:`choose_classes` decides whether the neutral class is learned at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from tailor.sentiment.scorer import CLASS_NAMES
from tailor.training.sentiment.config import SentimentTrainingConfig

LABELS = CLASS_NAMES  # ("negative", "neutral", "positive")


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


def choose_classes(counts: dict[str, int], n_labelled: int, config: SentimentTrainingConfig) -> tuple[str, ...]:
    """Negative and positive always (both must occur: ``ValueError`` otherwise); neutral too when
    it is plentiful (``config.neutral_min_count`` and ``config.neutral_min_share``)."""
    for needed in ("negative", "positive"):
        if counts[needed] == 0:
            raise ValueError(f"no {needed} examples: sentiment training needs both positive and negative reviews")
    neutral = counts["neutral"]
    if neutral >= config.neutral_min_count and neutral >= config.neutral_min_share * n_labelled:
        return LABELS
    return ("negative", "positive")
