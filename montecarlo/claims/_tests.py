"""The statistical tests behind every claim, each returning its p-values.

Every test here is a thin, documented layer over an exact or standard
procedure, so its oracle is ``scipy.stats`` (see ``tests/test_inference.py``):

- :func:`binomial_tail`: ``P(X >= k)`` for ``X ~ Binom(n, p0)``, the exact
  one-sided test of ``H0: P(failure) <= p0``;
- :func:`bound_test`: that test at many (configuration, ``eta``) pairs at
  once, combined by Bonferroni over the pairs;
- :func:`trend`: Spearman's rank correlation with both one-sided p-values;
- :func:`hodges_lehmann` and :func:`equivalence`: the Hodges-Lehmann shift with
  its distribution-free interval, and the two one-sided tests (TOST) of
  ``|shift| < margin`` by shifted Mann-Whitney tests;
- :func:`power_law`: the slope of ``log y`` on ``log x`` with a bootstrap
  standard error and normal one-sided p-values;
- :func:`ratio_test`: the Wald test of ``log p1 - log p0 > log rho`` for two
  binomial proportions;
- :func:`mean_above`: the one-sided z-test of a Monte Carlo mean against a
  bound at several checkpoints (Bonferroni), and its intersection-union dual;
  :func:`running_min_above` the same for ``min_{k < T} E[g_k]``;
- :func:`mean_regression`: least squares of (log) sample means on a design,
  with delta-method standard errors (independent or paired samples);
- :func:`binomial_bracket`: exact one-sided binomial tests of a probability
  against a bracket ``[low, high]``;
- :func:`sphere_pair_ks`: Kolmogorov-Smirnov test of inner products of
  independent uniform points of ``S^{d-1}`` against their exact Beta law;
- :func:`page_trend`: Page's test of an ordered trend in repeated measures;
- :func:`mean_equivalence`: one-sample t-tests (TOST) of ``|mean - center| <
  margin`` and of its complement;
- :func:`mcnemar`: McNemar's exact one-sided tests of two failure
  probabilities measured on the same (paired) trials;
- :func:`jackknife`: the delete-one jackknife standard error of an estimate
  from its leave-one-out replicates;
- :func:`coefficient_test`: one-sided t-tests of a fitted coefficient against
  a reference value, given its standard error and degrees of freedom.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = [
    "binomial_tail",
    "bound_test",
    "BoundTest",
    "trend",
    "trend_permutation",
    "Trend",
    "hodges_lehmann",
    "equivalence",
    "Equivalence",
    "power_law",
    "PowerLaw",
    "ratio_test",
    "mean_above",
    "running_min_above",
    "MeanAbove",
    "two_sample",
    "paired",
    "mean_regression",
    "MeanRegression",
    "binomial_bracket",
    "sphere_pair_ks",
    "page_trend",
    "PageTrend",
    "mean_equivalence",
    "MeanEquivalence",
    "mcnemar",
    "McNemar",
    "jackknife",
    "Jackknife",
    "coefficient_test",
    "CoefficientTest",
]


def _probability(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


def binomial_tail(k: int, n: int, p0: float) -> float:
    """``P(X >= k)`` for ``X ~ Binom(n, p0)``: the p-value of ``H0: p <= p0``.

    Args:
        k: Observed failures, ``0 <= k <= n``.
        n: Trials, ``>= 1``.
        p0: The bounded failure probability, in ``[0, 1]``.

    Raises:
        ValueError: On counts out of range or ``p0`` outside ``[0, 1]``.
    """
    if not (0 <= k <= n and n >= 1):
        raise ValueError(f"k and n must satisfy 0 <= k <= n, n >= 1, got {k}, {n}")
    if not 0.0 <= p0 <= 1.0:
        raise ValueError(f"p0 must be in [0, 1], got {p0!r}")
    if k == 0:
        return 1.0
    return float(stats.binom.sf(k - 1, n, p0))


@dataclasses.dataclass(frozen=True)
class BoundTest:
    """Exact one-sided binomial tests of a bound at ``m`` points, combined.

    Attributes:
        p_value: ``min(1, m * min_i p_i)`` (Bonferroni over the ``m`` tests).
        m: Number of tests (points where the bound is not vacuous).
        index: Index of the smallest ``p_i`` (``None`` when ``m = 0``).
        p_min: The smallest raw ``p_i``.
    """

    p_value: float
    m: int
    index: int | None
    p_min: float


def bound_test(
    failures: Sequence[int], trials: Sequence[int], bound: Sequence[float]
) -> BoundTest:
    """Test ``H0: P(failure_i) <= bound_i`` at every point with ``bound_i < 1``.

    Points with ``bound_i >= 1`` (a vacuous bound) test nothing and are left
    out of ``m``. The combined p-value is Bonferroni's over the ``m`` tests.
    """
    k = np.asarray(failures, dtype=np.int64)
    t = np.asarray(trials, dtype=np.int64)
    b = np.asarray(bound, dtype=float)
    if not (k.shape == t.shape == b.shape):
        raise ValueError(
            f"failures, trials and bound must have one shape, got {k.shape}, "
            f"{t.shape}, {b.shape}"
        )
    live = np.flatnonzero(b < 1.0)
    if live.size == 0:
        return BoundTest(math.nan, 0, None, math.nan)
    p = np.array([binomial_tail(int(k[i]), int(t[i]), float(b[i])) for i in live])
    j = int(np.argmin(p))
    return BoundTest(
        min(1.0, live.size * float(p[j])), int(live.size), int(live[j]), float(p[j])
    )


@dataclasses.dataclass(frozen=True)
class Trend:
    """Spearman's ``rho`` of ``(x, y)`` and both one-sided p-values."""

    rho: float
    p_increasing: float
    p_decreasing: float

    def p_for(self, sign: int) -> tuple[float, float]:
        """``(p supporting, p contradicting)`` a trend of sign ``+1`` or ``-1``."""
        if sign > 0:
            return self.p_increasing, self.p_decreasing
        return self.p_decreasing, self.p_increasing


def trend(x: np.ndarray, y: np.ndarray) -> Trend:
    """Spearman rank correlation of ``y`` with ``x``, one-sided both ways.

    Returns NaN throughout when either variable is constant or there are
    fewer than 3 points (no test possible).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of one length, got {x.shape}, {y.shape}")
    if x.size < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return Trend(math.nan, math.nan, math.nan)
    up = stats.spearmanr(x, y, alternative="greater")
    down = stats.spearmanr(x, y, alternative="less")
    return Trend(float(up.statistic), float(up.pvalue), float(down.pvalue))


def trend_permutation(
    x: np.ndarray, y: np.ndarray, *, resamples: int = 9999, seed: int = 0
) -> Trend:
    """Spearman's ``rho`` with one-sided permutation p-values (small samples).

    The pairing of ``x`` and ``y`` is permuted ``resamples`` times
    (``scipy.stats.permutation_test``, a fixed ``seed``, so the p-values are
    reproducible); with a dozen runs per sweep the asymptotic p-values of
    :func:`trend` are not reliable. NaN throughout when no test is possible.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of one length, got {x.shape}, {y.shape}")
    if x.size < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return Trend(math.nan, math.nan, math.nan)

    def rho(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        ra = stats.rankdata(a, axis=axis)
        rb = stats.rankdata(b, axis=axis)
        ra = ra - ra.mean(axis=axis, keepdims=True)
        rb = rb - rb.mean(axis=axis, keepdims=True)
        den = np.sqrt((ra * ra).sum(axis=axis) * (rb * rb).sum(axis=axis))
        return (ra * rb).sum(axis=axis) / den

    out = []
    for alternative in ("greater", "less"):
        res = stats.permutation_test(
            (x, y),
            rho,
            permutation_type="pairings",
            vectorized=True,
            n_resamples=resamples,
            alternative=alternative,
            rng=np.random.default_rng(seed),
        )
        out.append(float(res.pvalue))
    return Trend(float(stats.spearmanr(x, y).statistic), out[0], out[1])


def hodges_lehmann(
    a: np.ndarray, b: np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Hodges-Lehmann shift ``a - b`` with its distribution-free interval.

    The interval is ``[D_(k), D_(m - k + 1)]`` over the ``m = len(a) len(b)``
    sorted differences ``D = a_i - b_j``, ``k`` from the normal approximation
    of the Mann-Whitney statistic (Hollander & Wolfe, 3rd ed., section 4.3).
    Order statistics are found by bisection on counts, in
    ``O((len(a) + len(b)) log)`` memory.

    Returns:
        ``(estimate, low, high)``.

    Raises:
        ValueError: On an empty or non-finite sample or a bad ``confidence``.
    """
    _probability("confidence", confidence)
    a = np.sort(np.asarray(a, float))
    b = np.sort(np.asarray(b, float))
    if (
        a.size == 0
        or b.size == 0
        or not (np.isfinite(a).all() and np.isfinite(b).all())
    ):
        raise ValueError(
            f"a and b must be non-empty finite samples, got sizes {a.size}, {b.size}"
        )
    m = a.size * b.size
    z = stats.norm.ppf(0.5 + confidence / 2)
    k = int(math.floor(m / 2 - z * math.sqrt(m * (a.size + b.size + 1) / 12)))
    k = min(max(k, 1), m)

    def count_le(delta: float) -> int:
        return int(m - np.searchsorted(b, a - delta, side="left").sum())

    def order_stat(rank: int) -> float:
        lo, hi = a[0] - b[-1], a[-1] - b[0]
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if count_le(mid) >= rank:
                hi = mid
            else:
                lo = mid
            if hi - lo <= 1e-12 * max(1.0, abs(hi)):
                break
        return hi

    est = 0.5 * (order_stat((m + 1) // 2) + order_stat(m // 2 + 1))
    return est, order_stat(k), order_stat(m - k + 1)


@dataclasses.dataclass(frozen=True)
class Equivalence:
    """Equivalence of two samples within ``+-margin`` (shift ``a - b``).

    Attributes:
        shift, low, high: Hodges-Lehmann shift and its ``1 - 2 alpha``
            interval (the interval that matches the TOST at level ``alpha``).
        margin: The equivalence margin (absolute).
        p_equivalent: TOST p-value: the larger of the Mann-Whitney p-values
            of ``H0: shift <= -margin`` and ``H0: shift >= margin``.
        p_different: p-value of ``H0: |shift| <= margin`` against
            ``|shift| > margin``: twice the smaller one-sided p-value.
    """

    shift: float
    low: float
    high: float
    margin: float
    p_equivalent: float
    p_different: float


def _mw(a: np.ndarray, b: np.ndarray, alternative: str) -> float:
    return float(stats.mannwhitneyu(a, b, alternative=alternative).pvalue)


def equivalence(
    a: np.ndarray, b: np.ndarray, margin: float, *, alpha: float = 0.05
) -> Equivalence:
    """Two one-sided tests (TOST) of ``|shift(a - b)| < margin``, rank based.

    ``H0: shift <= -margin`` is the one-sided Mann-Whitney test of
    ``a + margin`` against ``b`` (alternative "greater"), and so on: the
    tests the Hodges-Lehmann interval inverts, so ``p_equivalent < alpha``
    exactly when the ``1 - 2 alpha`` interval lies inside ``(-margin, margin)``
    (up to the interval's normal approximation).

    Raises:
        ValueError: On a non-positive margin or an empty sample.
    """
    if not (isinstance(margin, int | float) and margin > 0 and math.isfinite(margin)):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    _probability("alpha", alpha)
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    shift, low, high = hodges_lehmann(a, b, 1.0 - 2.0 * alpha)
    p_lower = _mw(a + margin, b, "greater")  # H0: shift <= -margin
    p_upper = _mw(a - margin, b, "less")  # H0: shift >= margin
    p_above = _mw(a - margin, b, "greater")  # H0: shift <= margin
    p_below = _mw(a + margin, b, "less")  # H0: shift >= -margin
    return Equivalence(
        shift,
        low,
        high,
        float(margin),
        max(p_lower, p_upper),
        min(1.0, 2.0 * min(p_above, p_below)),
    )


@dataclasses.dataclass(frozen=True)
class PowerLaw:
    """``log y = a + b log x`` fitted by least squares, bootstrap error on ``b``.

    Attributes:
        slope: ``b``.
        intercept: ``a``.
        se: Bootstrap standard error of ``b``.
        p_falls: ``Phi(b / se)``, one-sided p of ``H0: b >= 0``.
        p_rises: ``1 - Phi(b / se)``, one-sided p of ``H0: b <= 0``.
        replicates: Bootstrap replicates behind ``se``.
    """

    slope: float
    intercept: float
    se: float
    p_falls: float
    p_rises: float
    replicates: int

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Normal interval of the slope at ``confidence``."""
        z = stats.norm.ppf(0.5 + _probability("confidence", confidence) / 2)
        return self.slope - z * self.se, self.slope + z * self.se

    def crossing(self, y: float) -> float:
        """The ``x`` at which the fitted line reaches ``y`` (NaN if flat)."""
        if self.slope == 0 or not math.isfinite(self.slope):
            return math.nan
        log_x = (math.log(y) - self.intercept) / self.slope
        return math.exp(log_x) if log_x < 709.0 else math.inf


def _slope(logx: np.ndarray, logy: np.ndarray) -> np.ndarray:
    """Least-squares slopes of each row of ``logy`` on ``logx``."""
    xc = logx - logx.mean()
    return ((logy - logy.mean(axis=-1, keepdims=True)) * xc).sum(axis=-1) / (xc @ xc)


def power_law(x: np.ndarray, y: np.ndarray, y_boot: np.ndarray) -> PowerLaw:
    """Fit ``log y`` on ``log x`` and test the sign of the slope.

    Args:
        x: Axis values, positive, at least 2 distinct.
        y: The quantity at each ``x`` (positive, finite).
        y_boot: Bootstrap replicates of ``y``, shape ``(B, len(x))``.

    Returns:
        The fit; the p-values use the normal approximation of the slope's
        bootstrap distribution (its standard deviation as the standard error).

    Raises:
        ValueError: On non-positive or non-finite values or a bad shape.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    yb = np.asarray(y_boot, float)
    if x.ndim != 1 or y.shape != x.shape or yb.ndim != 2 or yb.shape[1] != x.size:
        raise ValueError(
            f"x, y must be 1-D of one length and y_boot (B, len(x)), got {x.shape}, "
            f"{y.shape}, {yb.shape}"
        )
    for name, v in (("x", x), ("y", y), ("y_boot", yb)):
        if not (np.isfinite(v).all() and (v > 0).all()):
            raise ValueError(f"{name} must be finite and > 0")
    if np.unique(x).size < 2:
        raise ValueError(f"x must have at least 2 distinct values, got {x}")
    lx = np.log(x)
    b = float(_slope(lx, np.log(y)))
    a = float(np.log(y).mean() - b * lx.mean())
    se = float(np.std(_slope(lx, np.log(yb)), ddof=1)) if yb.shape[0] > 1 else math.nan
    if se > 0:
        z = b / se
        p_falls, p_rises = float(stats.norm.cdf(z)), float(stats.norm.sf(z))
    else:
        p_falls = p_rises = math.nan
    return PowerLaw(b, a, se, p_falls, p_rises, int(yb.shape[0]))


def ratio_test(k1: int, n1: int, k0: int, n0: int, rho: float) -> tuple[float, float]:
    """Wald test of ``p1 / p0 > rho`` for binomial proportions ``p1 = k1/n1``.

    ``theta = log p1^ - log p0^ - log rho`` with the delta-method variance
    ``(1 - p)/(n p)`` of each log proportion. A zero count takes the
    Haldane-Anscombe correction (both proportions ``(k + 1/2) / (n + 1/2)``)
    so that the log exists.

    Returns:
        ``(theta, p)`` with ``p`` the one-sided p-value of ``H0: p1/p0 <= rho``.

    Raises:
        ValueError: On counts out of range or ``rho <= 0``.
    """
    if not (0 <= k1 <= n1 and 0 <= k0 <= n0 and n1 >= 1 and n0 >= 1):
        raise ValueError(f"counts out of range: {k1}/{n1}, {k0}/{n0}")
    if not (rho > 0 and math.isfinite(rho)):
        raise ValueError(f"rho must be a finite number > 0, got {rho!r}")
    half = 0.5 if k1 == 0 or k0 == 0 else 0.0
    p1, p0 = (k1 + half) / (n1 + half), (k0 + half) / (n0 + half)
    theta = math.log(p1) - math.log(p0) - math.log(rho)
    se = math.sqrt((1 - p1) / ((n1 + half) * p1) + (1 - p0) / ((n0 + half) * p0))
    if se == 0:
        return theta, (0.0 if theta > 0 else 1.0)
    return theta, float(stats.norm.sf(theta / se))


@dataclasses.dataclass(frozen=True)
class MeanAbove:
    """A Monte Carlo mean against a bound at ``K`` checkpoints.

    Attributes:
        p_above: ``min(1, K min_t p_t)`` with ``p_t`` the one-sided z-test
            p-value of ``H0: E <= bound_t`` (Bonferroni): small when the mean
            exceeds the bound somewhere.
        p_below: ``max_t q_t`` with ``q_t`` the p-value of ``H0: E >= bound_t``
            (intersection-union test): small when the mean is below the
            bound at every checkpoint.
        worst: Index of the checkpoint with the smallest ``p_t``.
        ratio: ``min_t bound_t / mean_t`` over checkpoints with a positive mean.
    """

    p_above: float
    p_below: float
    worst: int
    ratio: float


def mean_above(mean: np.ndarray, se: np.ndarray, bound: np.ndarray) -> MeanAbove:
    """One-sided z-tests of a mean against a bound at ``K`` checkpoints.

    Args:
        mean: Monte Carlo means, shape ``(K,)``.
        se: Their standard errors (``s / sqrt(R)``), shape ``(K,)``, ``>= 0``.
        bound: The bound at each checkpoint, shape ``(K,)``.
    """
    mean = np.asarray(mean, float)
    se = np.asarray(se, float)
    bound = np.asarray(bound, float)
    if not (mean.shape == se.shape == bound.shape and mean.ndim == 1 and mean.size):
        raise ValueError(
            f"mean, se, bound must be 1-D of one non-zero length, got {mean.shape}, "
            f"{se.shape}, {bound.shape}"
        )
    if (se < 0).any():
        raise ValueError("se must be >= 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (mean - bound) / se, np.sign(mean - bound) * np.inf)
    z = np.nan_to_num(z, nan=0.0)
    p_t = stats.norm.sf(z)
    q_t = stats.norm.cdf(z)
    worst = int(np.argmin(p_t))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(mean > 0, bound / mean, np.inf)
    return MeanAbove(
        min(1.0, mean.size * float(p_t[worst])),
        float(q_t.max()),
        worst,
        float(ratios.min()),
    )


def running_min_above(
    T: np.ndarray, mean: np.ndarray, se: np.ndarray, bound: np.ndarray
) -> MeanAbove:
    """Tests of ``Q_T = min_{k < T} E[g_k]`` against a bound at ``K`` checkpoints.

    ``Q_T > b_T`` holds iff every ``E[g_k] > b_T`` (``k < T``): its p-value is
    the intersection-union ``p_T = max_{k < T} Phi(-z_{k,T})`` with
    ``z_{k,T} = (mean_k - b_T) / se_k``, and ``p_above = min(1, K min_T p_T)``
    (Bonferroni over checkpoints). ``Q_T < b_T`` holds iff some
    ``E[g_k] < b_T``: ``q_T = min(1, T min_{k < T} Phi(z_{k,T}))`` (Bonferroni
    over ``k``) and ``p_below = max_T q_T`` (intersection-union over ``T``).

    Args:
        T: Checkpoints, integers ``1 <= T_1 < ... <= len(mean)``, shape ``(K,)``.
        mean: ``E[g_k]`` estimates for ``k = 0 .. len - 1``.
        se: Their standard errors, same shape.
        bound: ``b_T`` at each checkpoint, shape ``(K,)``.
    """
    T = np.asarray(T, dtype=np.int64)
    mean = np.asarray(mean, float)
    se = np.asarray(se, float)
    bound = np.asarray(bound, float)
    if T.ndim != 1 or bound.shape != T.shape or mean.shape != se.shape:
        raise ValueError(
            f"T and bound must be 1-D of one length and mean, se of one shape, got "
            f"{T.shape}, {bound.shape}, {mean.shape}, {se.shape}"
        )
    if T.size == 0 or T.min() < 1 or T.max() > mean.size:
        raise ValueError(f"T must lie in [1, {mean.size}], got {T}")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(
            se[None, :] > 0,
            (mean[None, :] - bound[:, None]) / se[None, :],
            np.sign(mean[None, :] - bound[:, None]) * np.inf,
        )
    z = np.nan_to_num(z, nan=0.0)
    before = np.arange(mean.size)[None, :] < T[:, None]
    z_min = np.where(before, z, np.inf).min(axis=1)
    p_t = stats.norm.sf(z_min)
    q_t = np.minimum(1.0, T * stats.norm.cdf(z_min))
    worst = int(np.argmin(p_t))
    running = np.minimum.accumulate(mean)[T - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(running > 0, bound / running, np.inf)
    return MeanAbove(
        min(1.0, T.size * float(p_t[worst])),
        float(q_t.max()),
        worst,
        float(ratios.min()),
    )


def two_sample(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mann-Whitney one-sided p-values ``(a stochastically larger, smaller)``."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if a.size == 0 or b.size == 0:
        return math.nan, math.nan
    return _mw(a, b, "greater"), _mw(a, b, "less")


def paired(diff: np.ndarray) -> tuple[float, float]:
    """Wilcoxon signed-rank one-sided p-values ``(median > 0, median < 0)``."""
    d = np.asarray(diff, float)
    if d.size == 0 or np.all(d == 0):
        return math.nan, math.nan
    up = stats.wilcoxon(d, alternative="greater")
    down = stats.wilcoxon(d, alternative="less")
    return float(up.pvalue), float(down.pvalue)


@dataclasses.dataclass(frozen=True)
class MeanRegression:
    """Least squares of (log) sample means on a design, delta-method errors.

    With column means ``m_k`` (``k = 1..K``), ``u_k = log m_k`` (or ``m_k``),
    design ``D`` (``K x q``) and ``H = (D^T D)^{-1} D^T``, the coefficients are
    ``beta = H u`` and their covariance ``H S_u H^T``, where ``S_u`` is the
    estimated covariance of ``u``: ``diag(s_k^2 / R_k)`` for independent
    columns, the sample covariance of the rows over ``R`` for paired columns,
    each multiplied by ``1/(m_k m_l)`` on the log scale (delta method).

    Attributes:
        coef: ``beta`` (length ``q``).
        se: Standard errors of ``beta``.
        n_min: Fewest observations behind a column mean.
    """

    coef: tuple[float, ...]
    se: tuple[float, ...]
    n_min: int

    def interval(self, j: int, confidence: float = 0.95) -> tuple[float, float]:
        """Normal interval of ``beta_j`` at ``confidence``."""
        z = stats.norm.ppf(0.5 + _probability("confidence", confidence) / 2)
        return self.coef[j] - z * self.se[j], self.coef[j] + z * self.se[j]


def mean_regression(
    design: np.ndarray,
    samples: Sequence[np.ndarray] | np.ndarray,
    *,
    log: bool = False,
    paired: bool = False,
) -> MeanRegression:
    """Regress the (log) means of ``K`` samples on a ``K x q`` design.

    The slope of ``log E[Y]`` on ``log x`` is ``mean_regression(column_stack(
    [1, log x]), samples, log=True).coef[1]``. The standard errors are those of
    the delta method (first order in ``1/R``), so the p-values are
    asymptotically exact; they need every mean well away from 0 on the log
    scale.

    Args:
        design: ``(K, q)`` design matrix of full column rank ``q <= K``.
        samples: ``K`` one-dimensional samples (independent columns), or an
            ``(R, K)`` array whose rows are paired observations
            (``paired=True``).
        log: Regress ``log`` of the means (they must be ``> 0``). Defaults to
            False.
        paired: The samples are the columns of one ``(R, K)`` array with
            dependent entries in a row; their covariance enters the errors.
            Defaults to False.

    Returns:
        The fit (:class:`MeanRegression`).

    Raises:
        ValueError: On a bad shape, a rank-deficient design, a sample with
            fewer than 2 finite values, a non-finite value, or a non-positive
            mean with ``log=True``.
    """
    X = np.asarray(design, dtype=float)
    if X.ndim != 2 or X.shape[0] < X.shape[1] or X.shape[1] < 1:
        raise ValueError(f"design must be (K, q) with K >= q >= 1, got {X.shape}")
    K = X.shape[0]
    if paired:
        Y = np.asarray(samples, dtype=float)
        if Y.ndim != 2 or Y.shape[1] != K or Y.shape[0] < 2:
            raise ValueError(
                f"samples must be (R, K) = (R >= 2, {K}) when paired, got {Y.shape}"
            )
        if not np.isfinite(Y).all():
            raise ValueError("samples must be finite")
        means = Y.mean(axis=0)
        cov = np.atleast_2d(np.cov(Y, rowvar=False)) / Y.shape[0]
        n_min = Y.shape[0]
    else:
        cols = [np.asarray(c, dtype=float) for c in samples]
        if len(cols) != K or any(c.ndim != 1 or c.size < 2 for c in cols):
            raise ValueError(
                f"samples must be {K} one-dimensional samples of size >= 2, got "
                f"sizes {[c.size for c in cols]}"
            )
        if not all(np.isfinite(c).all() for c in cols):
            raise ValueError("samples must be finite")
        means = np.array([c.mean() for c in cols])
        cov = np.diag([c.var(ddof=1) / c.size for c in cols])
        n_min = min(c.size for c in cols)
    if log:
        if (means <= 0).any():
            raise ValueError(f"log=True needs positive means, got {means}")
        u = np.log(means)
        cov = cov / np.outer(means, means)
    else:
        u = means
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(f"design must have full column rank {X.shape[1]}")
    H = np.linalg.solve(X.T @ X, X.T)
    coef = H @ u
    se = np.sqrt(np.clip(np.diag(H @ cov @ H.T), 0.0, None))
    return MeanRegression(
        tuple(float(c) for c in coef), tuple(float(s) for s in se), int(n_min)
    )


def binomial_bracket(k: int, n: int, low: float, high: float) -> tuple[float, float]:
    """Exact tests of ``low <= P <= high`` from ``k`` events in ``n`` trials.

    Args:
        k: Observed events, ``0 <= k <= n``.
        n: Trials, ``>= 1``.
        low: Lower end of the bracket, in ``[0, high]``.
        high: Upper end, in ``[low, 1]``.

    Returns:
        ``(p_above, p_below)``: ``P(Binom(n, high) >= k)``, the p-value of
        ``H0: P <= high``, and ``P(Binom(n, low) <= k)``, that of
        ``H0: P >= low``.

    Raises:
        ValueError: On counts out of range or a bad bracket.
    """
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(
            f"low and high must satisfy 0 <= low <= high <= 1, got {low}, {high}"
        )
    p_above = binomial_tail(k, n, high)
    p_below = 1.0 if low == 0.0 else float(stats.binom.cdf(k, n, low))
    return p_above, p_below


def sphere_pair_ks(inner: np.ndarray, d: int) -> tuple[float, float]:
    """KS test of ``<x, y>`` for independent uniform ``x, y`` on ``S^{d-1}``.

    The exact law (Lemma B.1's object): ``(1 + <x, y>)/2 ~ Beta((d-1)/2,
    (d-1)/2)``, since ``<x, y>`` has the law of one coordinate of a uniform
    point of the sphere, with density proportional to ``(1 - t^2)^{(d-3)/2}``.

    Args:
        inner: Independent inner products, one-dimensional, in ``[-1, 1]``.
        d: Dimension of the ambient space, an integer ``>= 2``.

    Returns:
        ``(statistic, p_value)`` of the two-sided one-sample KS test (exact
        distribution of the statistic where scipy computes it).

    Raises:
        ValueError: On ``d < 2`` or an empty or out-of-range sample.
    """
    if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 2:
        raise ValueError(f"d must be an integer >= 2, got {d!r}")
    t = np.asarray(inner, dtype=float)
    if t.ndim != 1 or t.size == 0 or not (np.abs(t) <= 1.0).all():
        raise ValueError("inner must be a non-empty 1-D sample in [-1, 1]")
    a = (d - 1) / 2.0
    res = stats.kstest((1.0 + t) / 2.0, stats.beta(a, a).cdf)
    return float(res.statistic), float(res.pvalue)


@dataclasses.dataclass(frozen=True)
class PageTrend:
    """Page's L for an increasing trend across columns, both one-sided p-values."""

    statistic: float
    p_increasing: float
    p_decreasing: float


def page_trend(data: np.ndarray) -> PageTrend:
    """Page's test (1963) of an ordered trend across the ``k`` columns of ``data``.

    Each row (a subject, e.g. one draw of weights and data) is ranked across
    its ``k`` treatments (ties share their mean rank); ``L = sum_j j R_j``
    with ``R_j`` the rank sum of column ``j``. ``scipy.stats.page_trend_test``
    gives the p-value of an increasing trend; the decreasing one is the same
    test on the reversed columns.

    Args:
        data: ``(n, k)`` array, ``n >= 1`` rows, ``k >= 3`` columns, finite.

    Returns:
        ``L`` of the increasing order and both one-sided p-values (NaN when
        every row is constant).

    Raises:
        ValueError: On a bad shape or non-finite data.
    """
    y = np.asarray(data, dtype=float)
    if y.ndim != 2 or y.shape[0] < 1 or y.shape[1] < 3:
        raise ValueError(f"data must be (n, k) with n >= 1, k >= 3, got {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("data must be finite")
    if (y == y[:, :1]).all():
        return PageTrend(math.nan, math.nan, math.nan)
    up = stats.page_trend_test(y)
    down = stats.page_trend_test(y[:, ::-1])
    return PageTrend(float(up.statistic), float(up.pvalue), float(down.pvalue))


@dataclasses.dataclass(frozen=True)
class MeanEquivalence:
    """One-sample equivalence of a mean to ``center`` within ``+-margin``.

    Attributes:
        mean, low, high: The sample mean and its ``1 - 2 alpha`` t-interval
            (the interval that matches the TOST at level ``alpha``).
        center, margin: The hypothesized value and the equivalence margin.
        p_equivalent: TOST p-value: the larger of the one-sided t-test
            p-values of ``H0: mean <= center - margin`` and
            ``H0: mean >= center + margin``.
        p_different: p-value of ``H0: |mean - center| <= margin``: twice the
            smaller of the one-sided p-values of ``H0: mean <= center +
            margin`` and ``H0: mean >= center - margin``.
    """

    mean: float
    low: float
    high: float
    center: float
    margin: float
    p_equivalent: float
    p_different: float


def mean_equivalence(
    sample: np.ndarray, center: float, margin: float, *, alpha: float = 0.05
) -> MeanEquivalence:
    """Two one-sided t-tests (TOST) of ``|E[Y] - center| < margin``, and the converse.

    Args:
        sample: One-dimensional finite sample, at least 2 values, not constant.
        center: The hypothesized mean.
        margin: The equivalence margin, finite and ``> 0``.
        alpha: Level that sets the reported interval (``1 - 2 alpha``).
            Defaults to 0.05.

    Returns:
        The tests (:class:`MeanEquivalence`).

    Raises:
        ValueError: On a bad sample, margin or alpha.
    """
    if not (isinstance(margin, int | float) and margin > 0 and math.isfinite(margin)):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    _probability("alpha", alpha)
    y = np.asarray(sample, dtype=float)
    if y.ndim != 1 or y.size < 2 or not np.isfinite(y).all() or np.ptp(y) == 0:
        raise ValueError("sample must be 1-D, finite, non-constant, with >= 2 values")

    def one_sided(value: float, alternative: str) -> float:
        return float(stats.ttest_1samp(y, value, alternative=alternative).pvalue)

    lo, hi = center - margin, center + margin
    m = float(y.mean())
    half = float(stats.t.ppf(1 - alpha, y.size - 1) * y.std(ddof=1) / math.sqrt(y.size))
    return MeanEquivalence(
        m,
        m - half,
        m + half,
        float(center),
        float(margin),
        max(one_sided(lo, "greater"), one_sided(hi, "less")),
        min(1.0, 2.0 * min(one_sided(hi, "greater"), one_sided(lo, "less"))),
    )


@dataclasses.dataclass(frozen=True)
class McNemar:
    """McNemar's exact one-sided tests of ``P(A fails)`` against ``P(B fails)``.

    Attributes:
        trials: Paired trials ``T``.
        failures_a, failures_b: Failures of each side.
        only_a: Discordant trials where only ``A`` fails (``b`` in McNemar's
            table).
        only_b: Discordant trials where only ``B`` fails (``c``).
        p_a_more: p-value of ``H0: p_A <= p_B`` against ``p_A > p_B``:
            ``P(Bin(b + c, 1/2) >= b)``.
        p_b_more: p-value of ``H0: p_A >= p_B`` against ``p_A < p_B``:
            ``P(Bin(b + c, 1/2) >= c)``.
    """

    trials: int
    failures_a: int
    failures_b: int
    only_a: int
    only_b: int
    p_a_more: float
    p_b_more: float


def mcnemar(fails_a: np.ndarray, fails_b: np.ndarray) -> McNemar:
    """McNemar's exact test (1947) of two failure probabilities on paired trials.

    ``p_A - p_B = P(A fails, B holds) - P(B fails, A holds)``, so only the
    discordant trials carry information: given their number ``b + c``, the
    count ``b`` of trials where only ``A`` fails is ``Bin(b + c, 1/2)`` when
    ``p_A = p_B``, and stochastically smaller when ``p_A < p_B``. Each
    one-sided p-value is the exact binomial tail (1 when no trial is
    discordant: nothing tells the sides apart).

    Args:
        fails_a: Whether ``A`` fails, per trial (boolean, 1-D).
        fails_b: Whether ``B`` fails on the same trials, same shape.

    Returns:
        The counts and both one-sided p-values (:class:`McNemar`).

    Raises:
        ValueError: If the arrays are not boolean, 1-D, of one non-zero length.
    """
    a = np.asarray(fails_a)
    b = np.asarray(fails_b)
    if a.dtype != bool or b.dtype != bool or a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            "fails_a and fails_b must be boolean 1-D arrays of one length, got "
            f"{a.dtype} {a.shape} and {b.dtype} {b.shape}"
        )
    if a.size == 0:
        raise ValueError("fails_a and fails_b must hold at least one trial, got 0")
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(b & ~a))
    n = only_a + only_b
    return McNemar(
        trials=int(a.size),
        failures_a=int(a.sum()),
        failures_b=int(b.sum()),
        only_a=only_a,
        only_b=only_b,
        p_a_more=float(stats.binom.sf(only_a - 1, n, 0.5)),
        p_b_more=float(stats.binom.sf(only_b - 1, n, 0.5)),
    )


@dataclasses.dataclass(frozen=True)
class Jackknife:
    """A delete-one jackknife standard error.

    Attributes:
        estimate: The estimate on the whole sample.
        se: ``sqrt((n - 1)/n sum_i (theta_(i) - theta_(.))^2)``.
        replicates: ``n``, the leave-one-out replicates.
        dof: ``n - 1``, the degrees of freedom of the t-quantiles to use with it.
    """

    estimate: float
    se: float
    replicates: int
    dof: int


def jackknife(estimate: float, replicates: Sequence[float] | np.ndarray) -> Jackknife:
    """The jackknife standard error of ``estimate`` (Efron & Stein, 1981).

    With ``theta_(i)`` the estimate recomputed with observation ``i`` left
    out (``i = 1..n``) and ``theta_(.)`` their mean, the variance estimate is
    ``(n - 1)/n sum_i (theta_(i) - theta_(.))^2``; for the sample mean it is
    exactly ``s^2 / n`` (Efron & Tibshirani, *An Introduction to the
    Bootstrap*, section 11.2). It is used where the observations are
    independent units (here: subset-simulation repetitions) but the estimate
    is a non-linear function of them whose analytic error ignores their
    dependence structure.

    Args:
        estimate: The estimate on the whole sample (finite).
        replicates: The ``n >= 2`` leave-one-out estimates (finite).

    Returns:
        The :class:`Jackknife`.

    Raises:
        ValueError: On fewer than 2 replicates or a non-finite value.
    """
    theta = np.asarray(replicates, dtype=float)
    if theta.ndim != 1 or theta.size < 2:
        raise ValueError(
            f"replicates must be a 1-D sample of at least 2 values, got shape "
            f"{theta.shape}"
        )
    if not (np.isfinite(theta).all() and math.isfinite(estimate)):
        raise ValueError("estimate and replicates must be finite")
    n = theta.size
    se = math.sqrt((n - 1) / n * float(np.sum((theta - theta.mean()) ** 2)))
    return Jackknife(float(estimate), se, int(n), int(n - 1))


@dataclasses.dataclass(frozen=True)
class CoefficientTest:
    """One-sided t-tests of a coefficient ``b`` against a reference ``b0``.

    Attributes:
        statistic: ``(b - b0) / se``.
        dof: Degrees of freedom of the t distribution.
        p_below: p-value of ``H0: b >= b0`` against ``b < b0``:
            ``F_t(statistic)``.
        p_above: p-value of ``H0: b <= b0`` against ``b > b0``:
            ``1 - F_t(statistic)``.
    """

    statistic: float
    dof: int
    p_below: float
    p_above: float


def coefficient_test(
    estimate: float, se: float, dof: int, reference: float
) -> CoefficientTest:
    """One-sided t-tests of a fitted coefficient against ``reference``.

    ``t = (estimate - reference) / se`` is referred to Student's t with
    ``dof`` degrees of freedom, as for a regression slope (where it is exact
    under normal errors) or a jackknife standard error (approximately, with
    ``dof = n - 1``).

    Args:
        estimate: The coefficient.
        se: Its standard error, ``> 0`` (NaN p-values when it is 0 or not
            finite: no test possible).
        dof: Degrees of freedom, an integer ``>= 1``.
        reference: The value tested against.

    Returns:
        The :class:`CoefficientTest`.

    Raises:
        ValueError: If ``dof`` is not an integer ``>= 1`` or ``estimate`` or
            ``reference`` is not finite.
    """
    if isinstance(dof, bool) or not isinstance(dof, int | np.integer) or dof < 1:
        raise ValueError(f"dof must be an integer >= 1, got {dof!r}")
    if not (math.isfinite(estimate) and math.isfinite(reference)):
        raise ValueError(
            f"estimate and reference must be finite, got {estimate!r}, {reference!r}"
        )
    if not (math.isfinite(se) and se > 0):
        return CoefficientTest(math.nan, int(dof), math.nan, math.nan)
    z = (estimate - reference) / se
    return CoefficientTest(
        float(z), int(dof), float(stats.t.cdf(z, dof)), float(stats.t.sf(z, dof))
    )
