"""The promotion gate: beat the baseline, and do not fall too far below the current version."""

from tailor.models.promotion import promotion_decision


def current(score):
    return {"version": "v1", "metrics": {"gate": {"metric": "accuracy", "score": score}}}


def test_must_beat_the_baseline():
    ok, reason = promotion_decision("accuracy", 0.60, "majority class", 0.61, None, 0.02)
    assert not ok and "does not beat majority class" in reason


def test_first_version_that_beats_the_baseline_is_promoted():
    ok, reason = promotion_decision("accuracy", 0.80, "majority class", 0.6, None, 0.02)
    assert ok and "no current version" in reason


def test_margin_against_the_current_version():
    assert promotion_decision("accuracy", 0.785, "m", 0.5, current(0.80), 0.02)[0]  # 1.9% worse: fine
    ok, reason = promotion_decision("accuracy", 0.78, "m", 0.5, current(0.80), 0.02)  # 2.5% worse
    assert not ok and "more than 2% below the current version v1" in reason
    assert promotion_decision("accuracy", 0.78, "m", 0.5, current(0.80), 0.05)[0]
