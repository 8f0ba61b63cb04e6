"""Statistics of A/B experiments on recommendations, from per-arm sufficient statistics.

Customers (units) are randomised to arms. Unit i of an arm was served n_i recommendations and made
c_i clicks and v_i conversions; the store keeps per arm only sums over units (`ArmTotals`), added
to as events arrive, so every number here is computed from those sums alone.

- Rates (`ctr`, `conversion_rate`) are ratios of sums over units. Their variance is the delta
  method over units (Deng, Knoblich, Lu 2018, "Applying the Delta Method in Metric Analytics"):
  the customer, not the recommendation, is what was randomised, and one customer's clicks are
  correlated, so counting recommendations as independent would make intervals too narrow.
- `compare` tests treatment against control on the log ratio of their CTRs with the mixture
  sequential probability ratio test (mSPRT; Johari, Koomen, Pekelis, Walsh 2017, "Peeking at A/B
  tests: why it matters, and what to do about it", normal approximation, normal mixing
  distribution N(0, tau^2)). Its p-value and confidence sequence are valid whenever the results
  are looked at, so marketers may check a dashboard every day and stop at the first significant
  result without inflating the false positive rate, which a fixed-sample z-test would.
- `verdict` turns comparisons into one plain-English sentence.

Several treatment arms: the caller passes `alpha` already divided by the number of treatment arms
(Bonferroni), so all comparisons together hold at the family level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TEST_NAME = (
    "mSPRT (mixture sequential probability ratio test, Johari et al. 2017) on the log ratio of customer-level CTR, "
    "delta-method variance"
)
# Below this many customers per arm the normal approximations behind the delta method and the
# mSPRT are poor, and one heavy clicker can swing the result.
MIN_UNITS = 20
# Standard deviation of the normal mixing distribution over the log CTR ratio: the mSPRT has
# most power for true log lifts around tau. 0.3 (lifts of about 10-50%): with 0.1 a 2x lift on a
# few hundred customers per arm stayed "not significant" (p 0.47 where 0.3 gives 0.005), while
# the interval for a 10% lift at large samples is only ~15% wider than with 0.1.
TAU = 0.3
Z95 = 1.96

# A combined variance of exactly 0 (every customer with the same click rate in both arms) would
# divide by zero; this floor keeps the formulas finite and still gives p = 1 when the CTRs agree.
_MIN_VARIANCE = 1e-300
# exp() overflows past about 709; a log lift bound that large only arises from absurd variances.
_MAX_EXP = 700.0
_BISECTION_STEPS = 80


@dataclass(frozen=True)
class ArmTotals:
    """Sums over the units (customers) of one arm: n = recommendations served, c = clicks,
    v = conversions of one unit; `nn` = Σn², `cc` = Σc², `vv` = Σv², `nc` = Σn·c, `nv` = Σn·v."""

    units: int = 0
    recommendations: int = 0
    clicks: int = 0
    conversions: int = 0
    nn: float = 0.0
    cc: float = 0.0
    vv: float = 0.0
    nc: float = 0.0
    nv: float = 0.0
    revenue: float = 0.0

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> ArmTotals:
        """The totals in a stored item: missing keys count 0, unknown keys are ignored, and the
        numbers may be `Decimal` (as DynamoDB returns them), `int` or `float`."""
        if not item:
            return cls()

        def count(name: str) -> int:
            return int(item.get(name) or 0)

        def total(name: str) -> float:
            return float(item.get(name) or 0)

        return cls(units=count("units"), recommendations=count("recommendations"), clicks=count("clicks"),
                   conversions=count("conversions"), nn=total("nn"), cc=total("cc"), vv=total("vv"),
                   nc=total("nc"), nv=total("nv"), revenue=total("revenue"))


@dataclass(frozen=True)
class Rate:
    """A rate and its confidence interval (95% unless said otherwise)."""

    value: float
    low: float
    high: float


def _ratio_moments(units: int, total_numerator: float, total_denominator: float, sum_sq_num: float,
                   sum_sq_den: float, sum_cross: float) -> tuple[float, float] | None:
    """The ratio r = Σc/Σn and its delta-method variance over units (Deng, Knoblich, Lu 2018):

        Var(r) ≈ (1/U) (s_c²/μn² − 2 μc s_nc/μn³ + μc² s_n²/μn⁴)

    with sample (co)variances over units (U − 1 denominators). Computed in the equivalent form
    Σ(c_i − r n_i)² / ((U − 1) U μn²) (expand the square; the (Σc − r Σn)² term is 0), a sum of
    squares, so rounding cannot make it negative by much. None when U < 2 or Σn = 0.
    """
    if units < 2 or total_denominator <= 0:
        return None
    ratio = total_numerator / total_denominator
    mean_denominator = total_denominator / units
    residual_sum_sq = sum_sq_num - 2.0 * ratio * sum_cross + ratio * ratio * sum_sq_den
    variance = max(0.0, residual_sum_sq) / ((units - 1) * units * mean_denominator * mean_denominator)
    return ratio, variance


def ratio_rate(units: int, total_numerator: float, total_denominator: float, sum_sq_num: float,
               sum_sq_den: float, sum_cross: float, z: float = Z95) -> Rate | None:
    """A ratio metric Σc/Σn over units with its normal interval from the delta-method variance
    (Deng, Knoblich, Lu 2018; see `_ratio_moments`). `low` is clipped at 0 (counts are never
    negative). None when U < 2 or Σn = 0."""
    moments = _ratio_moments(units, total_numerator, total_denominator, sum_sq_num, sum_sq_den, sum_cross)
    if moments is None:
        return None
    ratio, variance = moments
    half_width = z * math.sqrt(variance)
    return Rate(ratio, max(0.0, ratio - half_width), ratio + half_width)


def rate_fields(name: str, rate: Rate | None) -> dict[str, float | list[float] | None]:
    """A rate as response fields: `{name: value, name_interval: [low, high]}` rounded to 6
    digits, both None when the rate is (no data yet)."""
    if rate is None:
        return {name: None, f"{name}_interval": None}
    return {name: round(rate.value, 6), f"{name}_interval": [round(rate.low, 6), round(rate.high, 6)]}


def ctr(t: ArmTotals) -> Rate | None:
    """Clicks per recommendation, with its delta-method interval over customers."""
    return ratio_rate(t.units, t.clicks, t.recommendations, t.cc, t.nn, t.nc)


def conversion_rate(t: ArmTotals) -> Rate | None:
    """Conversions per recommendation, with its delta-method interval over customers."""
    return ratio_rate(t.units, t.conversions, t.recommendations, t.vv, t.nn, t.nv)


def per_recommendation_rate(n: int, total: float, sum_sq: float, z: float = Z95) -> Rate | None:
    """The mean of n observations (one per recommendation, x_r its clicks) with the normal
    interval mean ± z·s/√n, s² the sample variance (n − 1 denominator) from Σx and Σx².
    For the metrics route, which has no units: it treats recommendations as independent, so it
    is narrower than `ctr` when customers differ. `low` is clipped at 0. None when n < 2."""
    if n < 2:
        return None
    mean = total / n
    variance = max(0.0, sum_sq - total * mean) / (n - 1)
    half_width = z * math.sqrt(variance / n)
    return Rate(mean, max(0.0, mean - half_width), mean + half_width)


@dataclass(frozen=True)
class Comparison:
    """Treatment `arm` against `control` on CTR. `lift` = ctr_t/ctr_c − 1 with its always-valid
    interval; `significant` is `p_value < alpha` (alpha already corrected for several arms);
    `more_per_arm` is the recommendations per arm still needed for an `mde` lift to become
    significant, None when already significant."""

    arm: str
    control: str
    lift: float
    lift_low: float
    lift_high: float
    p_value: float
    significant: bool
    more_per_arm: int | None
    mde: float = 0.10


def _msprt_p_value(log_lift: float, variance: float, tau: float) -> float:
    """The always-valid p-value of the normal-mixture mSPRT (Johari et al. 2017):
    Λ = sqrt(V/(V+τ²)) · exp(L²τ² / (2V(V+τ²))), p = min(1, 1/Λ).

    Using the current Λ rather than the running minimum of p is conservative: p is valid at
    every look on its own. Computed on log Λ so that a decisive result does not overflow exp()."""
    tau_sq = tau * tau
    log_lambda = 0.5 * math.log(variance / (variance + tau_sq)) + (
        log_lift * log_lift * tau_sq / (2.0 * variance * (variance + tau_sq)))
    return 1.0 if log_lambda <= 0.0 else math.exp(-log_lambda)


def _msprt_half_width(variance: float, tau: float, alpha: float) -> float:
    """Half-width of the always-valid confidence sequence matching `_msprt_p_value` (Johari et al.
    2017): sqrt(V(V+τ²)/τ² · (ln((V+τ²)/V) + 2 ln(1/α))). 0 lies outside L ± this exactly when
    p < α. Increasing in V."""
    tau_sq = tau * tau
    return math.sqrt(variance * (variance + tau_sq) / tau_sq
                     * (math.log((variance + tau_sq) / variance) + 2.0 * math.log(1.0 / alpha)))


def _round_up_2_significant(count: int) -> int:
    """12,345 -> 13,000: the number shown to marketers is an estimate, and rounding up keeps it
    from promising an end sooner than the estimate says."""
    if count < 100:
        return count
    step = 10 ** (len(str(count)) - 2)
    return -(-count // step) * step


def _more_per_arm(variance: float, tau: float, alpha: float, mde: float, mean_recommendations: float) -> int:
    """Recommendations per arm still needed before a true lift of `mde` would be significant:
    the variance V* at which the confidence sequence's half-width is ln(1 + mde) (bisection,
    the half-width increases with V), then n_needed = n_now · V / V* since V falls as 1/n.
    Rounded up to 2 significant digits."""
    target = math.log1p(mde)
    if _msprt_half_width(variance, tau, alpha) <= target:
        return 0
    # Bracket V* in [low, high] by halving, then bisect on log V: V* may be orders of magnitude
    # below V, and a geometric midpoint reaches it in a fixed number of steps.
    high = variance
    low = variance / 2.0
    while _msprt_half_width(low, tau, alpha) > target:
        high, low = low, low / 2.0
    for _ in range(_BISECTION_STEPS):
        middle = math.sqrt(low * high)
        if _msprt_half_width(middle, tau, alpha) > target:
            high = middle
        else:
            low = middle
    # `low` meets the target; using it rather than `high` errs towards more data, never less.
    needed = mean_recommendations * variance / low
    return _round_up_2_significant(max(0, math.ceil(needed - mean_recommendations)))


def compare(control: ArmTotals, treatment: ArmTotals, *, control_name: str, arm_name: str,
            alpha: float = 0.05, tau: float = TAU, mde: float = 0.10) -> Comparison | None:
    """Treatment against control on CTR with the normal-mixture mSPRT on L = ln(ctr_t/ctr_c)
    (Johari, Koomen, Pekelis, Walsh 2017), V = Var(ctr_t)/ctr_t² + Var(ctr_c)/ctr_c² from the
    delta-method variances over customers (Deng, Knoblich, Lu 2018). See `TEST_NAME`.

    None (not enough data) while either arm has fewer than `MIN_UNITS` customers or no click.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if tau <= 0.0 or mde <= 0.0:
        raise ValueError(f"tau and mde must be positive, got tau={tau}, mde={mde}")
    if min(control.units, treatment.units) < MIN_UNITS or min(control.clicks, treatment.clicks) <= 0:
        return None
    control_moments = _ratio_moments(control.units, control.clicks, control.recommendations,
                                     control.cc, control.nn, control.nc)
    treatment_moments = _ratio_moments(treatment.units, treatment.clicks, treatment.recommendations,
                                       treatment.cc, treatment.nn, treatment.nc)
    if control_moments is None or treatment_moments is None:
        return None
    control_ctr, control_variance = control_moments
    treatment_ctr, treatment_variance = treatment_moments
    log_lift = math.log(treatment_ctr / control_ctr)
    variance = max(_MIN_VARIANCE, treatment_variance / treatment_ctr ** 2 + control_variance / control_ctr ** 2)

    p_value = _msprt_p_value(log_lift, variance, tau)
    half_width = _msprt_half_width(variance, tau, alpha)
    significant = p_value < alpha
    more = None
    if not significant:
        mean_recommendations = (control.recommendations + treatment.recommendations) / 2.0
        more = _more_per_arm(variance, tau, alpha, mde, mean_recommendations)
    return Comparison(
        arm=arm_name,
        control=control_name,
        lift=math.expm1(log_lift),
        lift_low=math.expm1(min(_MAX_EXP, log_lift - half_width)),
        lift_high=math.expm1(min(_MAX_EXP, log_lift + half_width)),
        p_value=p_value,
        significant=significant,
        more_per_arm=more,
        mde=mde,
    )


def _percent(fraction: float) -> int:
    # int() so that a lift of -0.2% prints as 0, not "-0".
    return int(round(100.0 * fraction))


def _significant_sentence(c: Comparison) -> str:
    if c.lift > 0:
        return f"{c.arm} beats {c.control} by {_percent(c.lift)}% (95% CI {_percent(c.lift_low)}-{_percent(c.lift_high)}%)"
    # Stated as "worse by", so the interval is of the drop: its bounds swap and lose their sign.
    return (f"{c.arm} is worse than {c.control} by {_percent(-c.lift)}% "
            f"(95% CI {_percent(-c.lift_high)}-{_percent(-c.lift_low)}%)")


def _stopped_sentence(c: Comparison) -> str:
    return (f"stopped without a significant difference: {c.arm} vs {c.control} lift {_percent(c.lift):+d}% "
            f"(95% CI {_percent(c.lift_low)}-{_percent(c.lift_high)}%)")


def _waiting_sentence(waiting: list[Comparison], *, name_arms: bool) -> str:
    # One sentence for all arms still running: the experiment ends when the slowest arm is done.
    needed = [c for c in waiting if c.more_per_arm is not None]
    for_arms = f" for {', '.join(c.arm for c in waiting)}" if name_arms else ""
    if not needed:
        return f"not significant yet{for_arms}"
    slowest = max(needed, key=lambda c: c.more_per_arm or 0)
    mde = f"{round(100.0 * slowest.mde, 1):g}%"
    if not slowest.more_per_arm:
        # The data already suffice to detect an `mde` lift, which has not shown up.
        return f"not significant yet{for_arms}: enough data to detect a {mde} lift, so any difference is probably smaller"
    return (f"not significant yet{for_arms}: about {slowest.more_per_arm:,} more recommendations per arm "
            f"needed for a {mde} lift")


def verdict(comparisons: list[Comparison], *, stopped: bool = False, min_note: str | None = None) -> str:
    """The experiment's result in plain English for marketers, from `compare`'s comparisons (the
    caller drops the Nones; none left means not enough data). Significant arms get a sentence
    each; arms not yet significant share one sentence with the largest `more_per_arm`, or, once
    the experiment is `stopped`, get their lift and interval each. Sentences are joined with "; "."""
    if not comparisons:
        return min_note if min_note is not None else (
            f"not enough data yet: every arm needs at least {MIN_UNITS} customers and a click")
    sentences = [_significant_sentence(c) for c in comparisons if c.significant]
    waiting = [c for c in comparisons if not c.significant]
    if waiting and stopped:
        sentences.extend(_stopped_sentence(c) for c in waiting)
    elif waiting:
        # Named only beside a significant arm: alone, "not significant yet" is about every arm.
        sentences.append(_waiting_sentence(waiting, name_arms=len(waiting) < len(comparisons)))
    return "; ".join(sentences)
