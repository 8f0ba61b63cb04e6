"""Honest sentiment validation: copies of one review text stay on one side of the split, the
gate reads balanced accuracy, and a candidate is held against the current model on its own data."""

import numpy as np

from tailor.models.promotion import promotion_decision
from tailor.training.sentiment.metrics import evaluation_metrics
from tailor.training.sentiment.split import duplicate_aware_split, duplicate_count, normalized_text


def test_copies_of_a_review_never_straddle_the_split():
    texts = [f"Great shoe number {i % 30}!" if i % 3 else f"great shoe NUMBER {i % 30}" for i in range(300)]
    texts += [f"awful, broke after {i % 10} days" for i in range(60)]
    y = np.array([1] * 300 + [0] * 60)
    train, validation = duplicate_aware_split(texts, y, 0.2, seed=0)
    assert len(np.intersect1d(train, validation)) == 0 and len(train) + len(validation) == len(texts)
    assert not {normalized_text(texts[i]) for i in train} & {normalized_text(texts[i]) for i in validation}
    assert set(y[validation]) == {0, 1}
    assert duplicate_count(texts) == len(texts) - 40


def test_balanced_accuracy_sees_through_always_positive():
    y = np.array([1] * 95 + [0] * 5)
    always_positive = np.tile([0.0, 1.0], (100, 1))
    metrics = evaluation_metrics(y, always_positive, ("negative", "positive"))
    assert metrics["accuracy"] == 0.95 and metrics["balanced_accuracy"] == 0.5


def test_the_current_model_is_judged_on_the_candidates_validation_data():
    current = {"version": "v1", "metrics": {"gate": {"metric": "balanced_accuracy", "score": 0.95}}}
    # On an easier, English-only split v1 read 0.95; on the new split with Chinese it reads 0.62.
    promote, reason = promotion_decision("balanced_accuracy", 0.88, "majority class", 0.5, current, 0.02,
                                         current_score=0.62)
    assert promote and "0.6200 on the same validation data" in reason
    promote, reason = promotion_decision("balanced_accuracy", 0.60, "majority class", 0.5, current, 0.02,
                                         current_score=0.70)
    assert not promote and "same validation data" in reason
    # Without a measured current score the stored one decides, as before.
    assert not promotion_decision("balanced_accuracy", 0.88, "majority class", 0.5, current, 0.02)[0]
