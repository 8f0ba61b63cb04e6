"""Experiment statistics: the delta-method rates (hand example, the direct formula, a bootstrap,
the binomial case), reading stored totals, the mSPRT's p-value against its confidence sequence,
its false positive rate under peeking and its power (Monte Carlo), the sample still needed, and
the verdict sentences."""

from __future__ import annotations

import math
import os
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tailor.experiments.statistics import (
    MIN_UNITS,
    TAU,
    TEST_NAME,
    ArmTotals,
    Comparison,
    Rate,
    _round_up_2_significant,
    compare,
    conversion_rate,
    ctr,
    per_recommendation_rate,
    rate_fields,
    ratio_rate,
    verdict,
)

SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 1
PROPERTY = settings(max_examples=150 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def totals(recommendations, clicks, conversions=None) -> ArmTotals:
    """The sums the store keeps, from one arm's per-customer counts."""
    n = np.asarray(recommendations, dtype=float)
    c = np.asarray(clicks, dtype=float)
    v = np.zeros_like(n) if conversions is None else np.asarray(conversions, dtype=float)
    return ArmTotals(units=len(n), recommendations=int(n.sum()), clicks=int(c.sum()), conversions=int(v.sum()),
                     nn=float(n @ n), cc=float(c @ c), vv=float(v @ v), nc=float(n @ c), nv=float(n @ v))


def variance_of(rate: Rate) -> float:
    # `high` is never clipped, so it carries the interval's half-width.
    return ((rate.high - rate.value) / 1.96) ** 2


# --- rates ---------------------------------------------------------------------------------------

def test_delta_method_variance_of_a_hand_example():
    # (n, c) = (2, 1), (4, 1), (3, 0): r = 2/9, residuals c − r·n = 5/9, 1/9, −6/9, whose squares
    # sum to 62/81; Var(r) = (62/81) / (U − 1) / (U · μn²) = (31/81) / 27 = 31/2187.
    rate = ctr(totals([2, 4, 3], [1, 1, 0]))
    assert rate is not None
    assert rate.value == pytest.approx(2 / 9)
    assert variance_of(rate) == pytest.approx(31 / 2187)
    assert rate.low == 0.0  # 2/9 − 1.96·0.119 < 0: clipped


def test_delta_method_matches_the_direct_formula_with_sample_covariances():
    rng = np.random.default_rng(7)
    n = rng.integers(1, 11, size=60)
    c = rng.binomial(n, rng.beta(1, 5, size=60))
    units = len(n)
    mean_n, mean_c = n.mean(), c.mean()
    cov = np.cov(np.vstack([c, n]), ddof=1)  # [[s_c², s_nc], [s_nc, s_n²]]
    direct = (cov[0, 0] / mean_n**2 - 2 * mean_c * cov[0, 1] / mean_n**3 + mean_c**2 * cov[1, 1] / mean_n**4) / units
    rate = ctr(totals(n, c))
    assert rate is not None
    assert variance_of(rate) == pytest.approx(direct, rel=1e-9)


def test_delta_method_variance_agrees_with_a_customer_bootstrap():
    rng = np.random.default_rng(11)
    units = 400
    n = rng.integers(1, 11, size=units)
    c = rng.binomial(n, rng.beta(1, 20, size=units))
    resampled = rng.integers(0, units, size=(4000, units))  # resample customers, not recommendations
    bootstrap = (c[resampled].sum(axis=1) / n[resampled].sum(axis=1)).var()
    rate = ctr(totals(n, c))
    assert rate is not None
    assert variance_of(rate) == pytest.approx(bootstrap, rel=0.1)
    # Treating every recommendation as independent understates it when customers differ.
    # Clicks are 0 or 1 per recommendation, so Σx² = Σx.
    naive = per_recommendation_rate(int(n.sum()), float(c.sum()), float(c.sum()))
    assert naive is not None and variance_of(naive) < 0.9 * variance_of(rate)


def test_one_recommendation_per_customer_gives_the_binomial_interval():
    units, clicks = 500, 60
    rate = ctr(totals([1] * units, [1] * clicks + [0] * (units - clicks)))
    p = clicks / units
    # The binomial normal (Wald) interval with the sample variance, U/(U − 1)·p(1 − p).
    half_width = 1.96 * math.sqrt(p * (1 - p) / (units - 1))
    assert rate == Rate(pytest.approx(p), pytest.approx(p - half_width), pytest.approx(p + half_width))
    textbook = 1.96 * math.sqrt(p * (1 - p) / units)
    assert rate is not None and (rate.high - p) / textbook == pytest.approx(math.sqrt(units / (units - 1)))
    # The per-recommendation route agrees when each customer is one recommendation (x² = x).
    assert per_recommendation_rate(units, clicks, clicks) == rate


def test_rates_need_two_units_and_a_recommendation():
    assert ratio_rate(1, 1, 3, 1, 9, 3) is None
    assert ratio_rate(5, 0, 0, 0, 0, 0) is None
    assert ctr(ArmTotals()) is None
    assert per_recommendation_rate(1, 1.0, 1.0) is None
    assert ratio_rate(4, 0, 8, 0, 16, 0) == Rate(0.0, 0.0, 0.0)


def test_conversion_rate_reads_the_conversion_sums():
    arm = totals([2, 4, 3, 5], [1, 1, 0, 2], conversions=[1, 0, 0, 1])
    rate = conversion_rate(arm)
    expected = ratio_rate(4, 2, 14, 2, 54, 7)
    assert rate == expected and rate is not None and rate.value == pytest.approx(2 / 14)
    assert ctr(arm) != rate


def test_per_recommendation_rate_of_a_hand_example():
    # x = 0, 0, 1, 2, 2: mean 1, s² = (9 − 5) / 4 = 1, half-width 1.96 / √5.
    rate = per_recommendation_rate(5, 5.0, 9.0)
    assert rate == Rate(1.0, pytest.approx(1 - 1.96 / math.sqrt(5)), pytest.approx(1 + 1.96 / math.sqrt(5)))


def test_rate_fields_for_responses():
    assert rate_fields("ctr", Rate(0.1234567, 0.1, 0.15)) == {"ctr": 0.123457, "ctr_interval": [0.1, 0.15]}
    assert rate_fields("conversion_rate", None) == {"conversion_rate": None, "conversion_rate_interval": None}


def test_from_item_reads_stored_numbers_and_ignores_the_rest():
    item = {"pk": "EXPERIMENT#x", "sk": "ARM#b", "units": Decimal("25"), "recommendations": Decimal("120"),
            "clicks": 7, "nn": Decimal("640.0"), "cc": 9.0, "nc": Decimal("41"), "revenue": Decimal("19.95"),
            "updated_at": "2024-01-01T00:00:00Z"}
    arm = ArmTotals.from_item(item)
    assert arm == ArmTotals(units=25, recommendations=120, clicks=7, nn=640.0, cc=9.0, nc=41.0, revenue=19.95)
    assert isinstance(arm.units, int) and isinstance(arm.nn, float) and isinstance(arm.revenue, float)
    assert arm.conversions == 0 and arm.vv == 0.0  # missing keys
    assert ArmTotals.from_item(None) == ArmTotals() == ArmTotals.from_item({})


# --- the sequential test -------------------------------------------------------------------------

@st.composite
def random_arm(draw) -> ArmTotals:
    """An arm of 20 to 3,000 customers at a drawn click rate, so that some pairs differ
    significantly and some do not, and some sit near the edge."""
    units = draw(st.integers(MIN_UNITS, 3000))
    click_rate = draw(st.floats(0.005, 0.3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = rng.integers(1, 11, size=units)
    return totals(n, rng.binomial(n, click_rate))


@PROPERTY
@given(random_arm(), random_arm(), st.floats(0.001, 0.2), st.floats(0.02, 1.0))
def test_p_value_below_alpha_exactly_when_the_interval_excludes_no_lift(control, treatment, alpha, tau):
    result = compare(control, treatment, control_name="A", arm_name="B", alpha=alpha, tau=tau)
    if result is None:
        assert min(control.clicks, treatment.clicks) == 0
        return
    event("significant" if result.significant else "not significant")
    excludes_zero = result.lift_low > 0 or result.lift_high < 0
    assert (result.p_value < alpha) == excludes_zero == result.significant
    assert 0 <= result.p_value <= 1  # 0 when exp(-log Λ) underflows: overwhelming evidence
    assert result.lift_low <= result.lift <= result.lift_high
    assert (result.more_per_arm is None) == result.significant


def test_compare_needs_enough_customers_and_a_click_in_each_arm():
    rng = np.random.default_rng(3)
    n = rng.integers(1, 11, size=MIN_UNITS)
    clicked = totals(n, np.minimum(n, 1))
    few = totals(n[:-1], np.minimum(n[:-1], 1))
    no_clicks = totals(n, np.zeros_like(n))
    assert compare(clicked, clicked, control_name="A", arm_name="B") is not None
    assert compare(few, clicked, control_name="A", arm_name="B") is None
    assert compare(clicked, few, control_name="A", arm_name="B") is None
    assert compare(no_clicks, clicked, control_name="A", arm_name="B") is None
    assert compare(clicked, no_clicks, control_name="A", arm_name="B") is None


def test_equal_arms_give_p_one_and_no_lift():
    rng = np.random.default_rng(5)
    n = rng.integers(1, 11, size=200)
    arm = totals(n, rng.binomial(n, 0.05))
    result = compare(arm, arm, control_name="A", arm_name="B")
    assert result is not None
    assert result.p_value == 1.0 and result.lift == 0.0 and not result.significant
    assert result.lift_low < 0 < result.lift_high
    assert math.log1p(result.lift_high) == pytest.approx(-math.log1p(result.lift_low))  # symmetric in log


def simulate(rng: np.random.Generator, experiments: int, units: int, true_lift: float) -> dict[str, np.ndarray]:
    """Cumulative per-arm sums after each customer, shape (experiments, 2 arms, units): customers
    with heterogeneous click propensity Beta(1, 20) and 1-10 recommendations each."""
    n = rng.integers(1, 11, size=(experiments, 2, units)).astype(float)
    propensity = rng.beta(1, 20, size=(experiments, 2, units))
    propensity[:, 1] *= 1 + true_lift
    c = rng.binomial(n.astype(int), np.minimum(propensity, 1.0)).astype(float)
    return {name: np.cumsum(values, axis=2) for name, values in
            {"n": n, "c": c, "nn": n * n, "cc": c * c, "nc": n * c}.items()}


def arms_at(sums: dict[str, np.ndarray], experiment: int, units: int) -> tuple[ArmTotals, ArmTotals]:
    control, treatment = (
        ArmTotals(units=units, recommendations=int(sums["n"][experiment, arm, units - 1]),
                  clicks=int(sums["c"][experiment, arm, units - 1]), nn=sums["nn"][experiment, arm, units - 1],
                  cc=sums["cc"][experiment, arm, units - 1], nc=sums["nc"][experiment, arm, units - 1])
        for arm in (0, 1))
    return control, treatment


def naive_z_significant(control: ArmTotals, treatment: ArmTotals) -> bool:
    """A fixed-sample two-sided z-test at 5% on the same log CTR ratio and variance."""
    rate_c, rate_t = ctr(control), ctr(treatment)
    if rate_c is None or rate_t is None or rate_c.value == 0 or rate_t.value == 0:
        return False
    variance = variance_of(rate_c) / rate_c.value**2 + variance_of(rate_t) / rate_t.value**2
    return abs(math.log(rate_t.value / rate_c.value)) > 1.96 * math.sqrt(variance)


def test_a_a_experiments_looked_at_every_50_customers_rarely_end_significant():
    experiments, looks = 300, range(50, 1001, 50)
    sums = simulate(np.random.default_rng(20240601), experiments, 1000, true_lift=0.0)
    msprt_ever = naive_ever = 0
    for experiment in range(experiments):
        msprt_hit = naive_hit = False
        for units in looks:
            control, treatment = arms_at(sums, experiment, units)
            result = compare(control, treatment, control_name="A", arm_name="B")
            msprt_hit = msprt_hit or bool(result and result.significant)
            naive_hit = naive_hit or naive_z_significant(control, treatment)
        msprt_ever += msprt_hit
        naive_ever += naive_hit
    print(f"A/A, 20 looks: mSPRT ever significant {msprt_ever / experiments:.3f}, "
          f"naive z-test {naive_ever / experiments:.3f}")
    assert msprt_ever / experiments <= 0.06
    # Why the mSPRT: a fixed-sample test checked at every look is "significant" far too often.
    assert naive_ever / experiments > 0.05


def test_a_50_percent_lift_is_significant_with_1000_customers_per_arm():
    experiments = 100
    sums = simulate(np.random.default_rng(20240602), experiments, 1000, true_lift=0.5)
    results = [compare(*arms_at(sums, experiment, 1000), control_name="A", arm_name="B")
               for experiment in range(experiments)]
    power = sum(bool(r and r.significant and r.lift > 0) for r in results) / experiments
    print(f"power for a 50% lift at 1,000 customers per arm: {power:.2f}")
    assert power >= 0.80


def scaled(arm: ArmTotals, factor: int) -> ArmTotals:
    """The same customers `factor` times over: same rates, variance about 1/factor."""
    return ArmTotals(units=arm.units * factor, recommendations=arm.recommendations * factor, clicks=arm.clicks * factor,
                     nn=arm.nn * factor, cc=arm.cc * factor, nc=arm.nc * factor)


def test_more_per_arm_shrinks_as_data_grows_and_reaches_the_target_width():
    rng = np.random.default_rng(9)
    n = rng.integers(1, 11, size=100)
    arm = totals(n, rng.binomial(n, rng.beta(1, 20, size=100)))
    more = []
    for factor in (1, 2, 4, 8, 16, 64, 256):
        result = compare(scaled(arm, factor), scaled(arm, factor), control_name="A", arm_name="B")
        assert result is not None and result.more_per_arm is not None
        more.append(result.more_per_arm)
    assert all(later <= earlier for earlier, later in zip(more, more[1:])) and more[-2] < more[0], more
    assert more[0] > 0 and more[-1] == 0
    # With that many more recommendations the interval's half-width is ln(1 + mde): a true 10%
    # lift would just be significant. Rounding up to 2 digits may overshoot by up to 10%.
    first = compare(arm, arm, control_name="A", arm_name="B", mde=0.10)
    assert first is not None and first.more_per_arm
    factor = round((arm.recommendations + first.more_per_arm) / arm.recommendations)
    bigger = compare(scaled(arm, factor), scaled(arm, factor), control_name="A", arm_name="B", mde=0.10)
    assert bigger is not None
    assert math.log1p(bigger.lift_high) == pytest.approx(math.log(1.10), rel=0.1)


def test_more_per_arm_is_none_once_significant():
    rng = np.random.default_rng(13)
    n = rng.integers(1, 11, size=(2, 2000))
    control = totals(n[0], rng.binomial(n[0], 0.04))
    treatment = totals(n[1], rng.binomial(n[1], 0.08))
    result = compare(control, treatment, control_name="A", arm_name="B")
    assert result is not None and result.significant and result.more_per_arm is None
    assert result.lift_low > 0 and result.lift == pytest.approx(ctr(treatment).value / ctr(control).value - 1)


def test_round_up_to_two_significant_digits():
    assert [_round_up_2_significant(x) for x in (0, 7, 99, 100, 101, 12_345, 13_000, 990_001)] == \
        [0, 7, 99, 100, 110, 13_000, 13_000, 1_000_000]


def test_test_name_and_defaults():
    assert TEST_NAME.startswith("mSPRT") and "delta-method" in TEST_NAME
    assert (MIN_UNITS, TAU) == (20, 0.3)
    with pytest.raises(ValueError):
        compare(ArmTotals(), ArmTotals(), control_name="A", arm_name="B", alpha=0.0)


# --- verdict -------------------------------------------------------------------------------------

def comparison(arm="B", control="A", *, lift=0.0, low=-0.1, high=0.1, significant=False, more=None, mde=0.10):
    return Comparison(arm=arm, control=control, lift=lift, lift_low=low, lift_high=high,
                      p_value=0.001 if significant else 0.4, significant=significant,
                      more_per_arm=None if significant else more, mde=mde)


def test_verdict_without_comparisons():
    assert verdict([]) == "not enough data yet: every arm needs at least 20 customers and a click"
    assert verdict([], min_note="not enough data yet: 12 of 20 customers in B") == \
        "not enough data yet: 12 of 20 customers in B"


def test_verdict_of_a_winner_and_a_loser():
    assert verdict([comparison(lift=0.34, low=0.21, high=0.48, significant=True)]) == \
        "B beats A by 34% (95% CI 21-48%)"
    assert verdict([comparison(lift=-0.12, low=-0.19, high=-0.05, significant=True)]) == \
        "B is worse than A by 12% (95% CI 5-19%)"


def test_verdict_while_not_significant_uses_the_largest_sample_needed():
    assert verdict([comparison(more=13_000)]) == \
        "not significant yet: about 13,000 more recommendations per arm needed for a 10% lift"
    assert verdict([comparison("B", more=4_200, mde=0.05), comparison("C", more=130_000, mde=0.05)]) == \
        "not significant yet: about 130,000 more recommendations per arm needed for a 5% lift"
    assert verdict([comparison(more=0)]) == \
        "not significant yet: enough data to detect a 10% lift, so any difference is probably smaller"


def test_verdict_once_stopped():
    assert verdict([comparison(lift=0.03, low=-0.08, high=0.15, more=13_000)], stopped=True) == \
        "stopped without a significant difference: B vs A lift +3% (95% CI -8-15%)"
    assert verdict([comparison(lift=-0.002, low=-0.1, high=0.11, more=13_000)], stopped=True) == \
        "stopped without a significant difference: B vs A lift +0% (95% CI -10-11%)"


def test_verdict_of_several_arms():
    winner = comparison("B", lift=0.34, low=0.21, high=0.48, significant=True)
    loser = comparison("C", lift=-0.12, low=-0.19, high=-0.05, significant=True)
    flat = comparison("D", lift=0.03, low=-0.08, high=0.15, more=13_000)
    assert verdict([winner, loser]) == "B beats A by 34% (95% CI 21-48%); C is worse than A by 12% (95% CI 5-19%)"
    assert verdict([winner, flat], stopped=True) == (
        "B beats A by 34% (95% CI 21-48%); stopped without a significant difference: D vs A lift +3% (95% CI -8-15%)")
    assert verdict([winner, flat]) == (
        "B beats A by 34% (95% CI 21-48%); "
        "not significant yet for D: about 13,000 more recommendations per arm needed for a 10% lift")


def test_verdict_of_a_real_comparison_reads_its_mde():
    rng = np.random.default_rng(17)
    n = rng.integers(1, 11, size=(2, 100))
    control, treatment = totals(n[0], rng.binomial(n[0], 0.05)), totals(n[1], rng.binomial(n[1], 0.05))
    result = compare(control, treatment, control_name="control", arm_name="new model", mde=0.2)
    assert result is not None and not result.significant and result.more_per_arm
    assert verdict([result]) == (
        f"not significant yet: about {result.more_per_arm:,} more recommendations per arm needed for a 20% lift")
