"""The qualitative and quantitative claims of the paper, tested on stored trials.

Notation: a trial draws data and weights and records the Gram matrix
``G_ij = <grad f_i, grad f_j>`` of ``N`` samples; its *confusion* is
``eta = max(0, -min_{i != j} G_ij)`` (Definition 2.1) and its *normalized
confusion* ``max(0, -min_{i != j} cos(grad f_i, grad f_j))`` (Section 8).
``depth`` = beta, ``width`` = l, ``d`` the input dimension, ``r`` the ball
radius of Corollary 5.1.

Every claim is decided by :func:`verdict` from a p-value, whether the effect
points the way the claim allows, and the smallest sample behind the test:

- trend claims ("wider Gaussian nets: lower confusion"): Spearman rank
  correlation between the grid axis and the per-trial statistic;
- null claims ("confusion independent of depth"): Kruskal-Wallis across the
  axis values, with the Hodges-Lehmann 95% interval of the shift between the
  extreme values as the power statement;
- ``c*`` bounded away from 0: a trend test on the theorem-normalized
  confusion ``log K(eta)`` (see :func:`c_star_claims`);
- "the bound holds at c": exact one-sided binomial tests of the failure
  counts against the bound, Bonferroni over configurations and ``eta``.

Each test runs at level ``alpha = 0.05`` on its own; there is no multiplicity
correction across rows of the report.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

import bounds
from figures._run import GroupTrials, StoredRun
from figures._style import STATEMENT_TITLES, fmt_num, statement_of
from montecarlo import BOUND_FUNCTIONS, Config, bound_params, estimates

__all__ = [
    "Claim",
    "VERDICTS",
    "verdict",
    "format_p",
    "hodges_lehmann_ci",
    "bound_for",
    "log_rate_factor",
    "monte_carlo_claims",
    "experiment_claims",
]

VERDICTS = ("consistent", "violated", "inconclusive")

MIN_TRIALS = 30
"""Fewest finite trials per configuration for a test to count (else inconclusive)."""

RELEVANT_SHIFT = 0.25
"""A null claim is powered when its 95% shift interval is within +-25% of the median."""

COLLAPSE_FACTOR = 10.0
"""``c*`` falling by this factor or more along an axis counts as heading to 0."""

MIN_CONFIGS = 3
"""Fewest configurations for a statement about ``c*`` across a sweep."""


@dataclasses.dataclass(frozen=True)
class Claim:
    """One row of the report's claims table.

    Attributes:
        claim: The statement in words.
        test: The statistical test and what it is applied to.
        statistic: The test statistic and effect sizes.
        ci_or_p: The p-value or confidence interval.
        verdict: One of :data:`VERDICTS`.
        reason: Why, in words.
        figure: Stem of the figure that shows it (``None`` if none).
        source: ``"Monte Carlo"`` or the experiment's name.
        statement: The theorem the row belongs to (for ordering), or ``None``.
    """

    claim: str
    test: str
    statistic: str
    ci_or_p: str
    verdict: str
    reason: str
    figure: str | None
    source: str = "Monte Carlo"
    statement: str | None = None


def _check_probability(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")


def verdict(
    p_value: float,
    direction_ok: bool,
    n_min: int,
    *,
    alpha: float = 0.05,
    min_trials: int = MIN_TRIALS,
    null: bool = False,
    powered: bool = True,
) -> tuple[str, str]:
    """The verdict of one claim from its test.

    Trend claims (``null=False``) predict an effect with a sign:

    - fewer than ``min_trials`` finite trials behind the smallest sample, or
      no p-value (NaN): ``inconclusive``;
    - ``p < alpha`` and ``direction_ok``: ``consistent``;
    - ``p < alpha`` and not ``direction_ok``: ``violated``;
    - ``p >= alpha``: ``inconclusive`` (no significant effect; the reason says
      whether the test was ``powered``).

    Null claims (``null=True``) are the null hypothesis ("no effect", "the
    bound holds"):

    - too few trials or no p-value: ``inconclusive``;
    - ``p < alpha`` and not ``direction_ok``: ``violated``;
    - ``p < alpha`` and ``direction_ok`` (a departure the claim allows, e.g.
      less confusion than bounded): ``consistent``;
    - ``p >= alpha``: ``consistent`` if ``powered`` (the sample could have
      shown a relevant departure), else ``inconclusive``.

    Args:
        p_value: The test's p-value in ``[0, 1]``, or NaN when there is none.
        direction_ok: Whether the observed effect points the way the claim
            allows.
        n_min: Finite trials in the smallest sample behind the test (>= 0).
        alpha: Significance level in ``(0, 1)``. Defaults to ``0.05``.
        min_trials: Required ``n_min`` (>= 1). Defaults to ``30``.
        null: Whether the claim is the null hypothesis. Defaults to ``False``.
        powered: Whether the sample could detect a relevant effect.
            Defaults to ``True``.

    Returns:
        ``(verdict, reason)`` with ``verdict`` in :data:`VERDICTS`.

    Raises:
        ValueError: On a p-value outside ``[0, 1]``, ``alpha`` outside
            ``(0, 1)``, a negative ``n_min`` or ``min_trials < 1``.
    """
    p = float(p_value)
    if not (math.isnan(p) or 0.0 <= p <= 1.0):
        raise ValueError(f"p_value must be in [0, 1] or NaN, got {p_value!r}")
    _check_probability("alpha", alpha)
    if isinstance(n_min, bool) or not isinstance(n_min, int | np.integer) or n_min < 0:
        raise ValueError(f"n_min must be an integer >= 0, got {n_min!r}")
    if (
        isinstance(min_trials, bool)
        or not isinstance(min_trials, int)
        or min_trials < 1
    ):
        raise ValueError(f"min_trials must be an integer >= 1, got {min_trials!r}")
    if n_min < min_trials:
        return "inconclusive", (
            f"too few trials: the smallest sample has {n_min} finite trials, "
            f"the test needs >= {min_trials}"
        )
    if math.isnan(p):
        return "inconclusive", "no test possible (empty or constant sample)"
    ps = format_p(p)
    if not null:
        if p < alpha:
            if direction_ok:
                return (
                    "consistent",
                    f"significant at {alpha:g} ({ps}) in the predicted direction",
                )
            return (
                "violated",
                f"significant at {alpha:g} ({ps}) against the predicted direction",
            )
        why = "" if powered else "; the test has too little power"
        return "inconclusive", f"no significant effect at {alpha:g} ({ps}){why}"
    if p < alpha:
        if direction_ok:
            return "consistent", (
                f"significant departure at {alpha:g} ({ps}), in a direction the claim "
                "allows"
            )
        return "violated", f"rejected at {alpha:g} ({ps})"
    if powered:
        return "consistent", (
            f"not rejected at {alpha:g} ({ps}); the sample could detect a relevant "
            "departure"
        )
    return "inconclusive", (
        f"not rejected at {alpha:g} ({ps}), but the sample is too small to detect a "
        "relevant departure"
    )


def format_p(p: float) -> str:
    """``"p = 0.013"``, ``"p = 3.2e-28"`` or ``"p < 1e-300"`` (underflow)."""
    if math.isnan(p):
        return "p = n/a"
    if p < 1e-300:
        return "p < 1e-300"
    return f"p = {p:.2g}" if p < 1e-3 else f"p = {p:.3f}"


def hodges_lehmann_ci(
    x: np.ndarray, y: np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Hodges-Lehmann shift ``x - y`` with its distribution-free confidence interval.

    The interval is ``[D_(k), D_(m - k + 1)]`` over the ``m = len(x) len(y)``
    sorted pairwise differences ``D = x_i - y_j``, with ``k`` from the normal
    approximation of the Mann-Whitney statistic (Hollander & Wolfe, 3rd ed.,
    Section 4.3). The order statistics are found by bisection on counts, in
    ``O((len(x) + len(y)) log)`` memory, so large samples are fine.

    Args:
        x, y: Samples (at least one value each, finite).
        confidence: Level in ``(0, 1)``. Defaults to ``0.95``.

    Returns:
        ``(estimate, low, high)``.

    Raises:
        ValueError: On an empty or non-finite sample or a bad ``confidence``.
    """
    _check_probability("confidence", confidence)
    x = np.sort(np.asarray(x, float))
    y = np.sort(np.asarray(y, float))
    if (
        x.size == 0
        or y.size == 0
        or not (np.isfinite(x).all() and np.isfinite(y).all())
    ):
        raise ValueError(
            f"x and y must be non-empty finite samples, got sizes {x.size}, {y.size}"
        )
    m = x.size * y.size
    z = stats.norm.ppf(0.5 + confidence / 2)
    k = int(math.floor(m / 2 - z * math.sqrt(m * (x.size + y.size + 1) / 12)))
    k = min(max(k, 1), m)

    def count_le(delta: float) -> int:
        # number of pairs with x_i - y_j <= delta, i.e. y_j >= x_i - delta
        return int(y.size * x.size - np.searchsorted(y, x - delta, side="left").sum())

    def order_stat(rank: int) -> float:
        lo, hi = x[0] - y[-1], x[-1] - y[0]
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


def bound_for(config: Config, eta: np.ndarray, c: float) -> bounds.ProbabilityBound:
    """The probability bound of ``config``'s statement at constant ``c``.

    Theorem 4.1 is evaluated with ``c1=None`` (its ``beta exp(-c1 kappa^2
    l^2)`` term dropped, the ``c1 -> inf`` limit), as ``c*`` is.

    Raises:
        ValueError: If the configuration has no bound (``theorem = "none"``).
    """
    spec = bound_params(config)
    if spec is None:
        raise ValueError(
            f"config must test a theorem, got theorem = {config.theorem!r}"
        )
    key, params = spec
    return BOUND_FUNCTIONS[key](eta, c=c, **params)


def in_domain(config: Config, eta: np.ndarray) -> np.ndarray:
    """Where the bound is defined: ``eta > 4`` (4.1 part 1), ``eta > 0`` otherwise."""
    eta = np.asarray(eta, float)
    return eta > 4.0 if statement_of(config) == "4.1 part 1" else eta > 0.0


def log_rate_factor(config: Config) -> float:
    """``log k`` of the bound's exponent ``K(eta) = k eta^2`` (``k (eta-4)^2``, part 1).

    Every bound has the failure form ``N^2 exp(-c K(eta) + B(eta))`` with
    ``K`` quadratic in ``eta`` (THEORY.md sections 4-6), e.g.
    ``k = (l d + l^2 beta) / (16 zeta_0^4 (beta+2)^4)`` for Theorem 4.1 part 2.
    ``k`` is read off the public bound functions as
    ``(log P_fail(c=1) - log P_fail(c=C)) / (C - 1)`` at ``eta = 1``
    (``eta = 5`` in part 1), which cancels ``N^2`` and ``B``; a large ``C``
    keeps the difference exact even when ``k`` is tiny.
    """
    eta = np.array([5.0 if statement_of(config) == "4.1 part 1" else 1.0])
    big = 1e12
    diff = (
        bound_for(config, eta, 1.0).log_failure
        - bound_for(config, eta, big).log_failure
    )
    return float(np.log(diff[0] / (big - 1.0)))


# --- claim builders --------------------------------------------------------

_STAT_WORDS = {
    "eta": "confusion max(0, -min_{i!=j} <grad f_i, grad f_j>)",
    "eta_cos": "normalized confusion max(0, -min_{i!=j} cos(grad f_i, grad f_j))",
}


def _pooled(group: GroupTrials, column: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``(axis-independent values, per-trial config index, smallest sample)``."""
    vals = group.values(column)
    idx = np.concatenate([np.full(v.size, i) for i, v in enumerate(vals)])
    return np.concatenate(vals), idx, min(v.size for v in vals)


def _axis_per_trial(
    group: GroupTrials, axis: str, column: str
) -> tuple[np.ndarray, ...]:
    vals, idx, n_min = _pooled(group, column)
    xs = np.array([float(getattr(c, axis)) for c in group.configs])[idx]
    return xs, vals, n_min


def _medians(group: GroupTrials, axis: str, column: str) -> str:
    per_value: dict[float, list[np.ndarray]] = {}
    for config, v in zip(group.configs, group.values(column), strict=True):
        per_value.setdefault(getattr(config, axis), []).append(v)
    parts = [
        f"{fmt_num(np.median(np.concatenate(vs)))} ({axis}={fmt_num(a)})"
        for a, vs in sorted(per_value.items())
    ]
    return "medians " + ", ".join(parts)


def _factor(fall: float) -> str:
    """``"falls 12x"`` or ``"rises 3.2x"`` for a ratio first / last."""
    if math.isnan(fall):
        return "changes by an undefined factor"
    return f"falls {fmt_num(fall)}x" if fall >= 1 else f"rises {fmt_num(1 / fall)}x"


def _spearman(
    x: np.ndarray, y: np.ndarray, alternative: str = "two-sided"
) -> tuple[float, float]:
    if x.size < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return math.nan, math.nan
    res = stats.spearmanr(x, y, alternative=alternative)
    return float(res.statistic), float(res.pvalue)


def trend_claim(
    group: GroupTrials,
    axis: str,
    sign: int,
    column: str,
    claim: str,
    figure: str | None,
    *,
    alpha: float = 0.05,
) -> Claim:
    """A predicted monotone trend of a per-trial statistic along a grid axis.

    Test: Spearman rank correlation between the axis value and ``column``
    over all finite trials of the group (pooled over any other axis),
    two-sided p; ``sign`` is the predicted sign of the correlation.
    """
    x, y, n_min = _axis_per_trial(group, axis, column)
    rho, p = _spearman(x, y)
    v, reason = verdict(p, bool(np.sign(rho) == sign), n_min, alpha=alpha)
    stat = f"rho = {rho:+.3f}; {_medians(group, axis, column)}"
    if column == "eta":
        # Raw inner products carry the gradient norms: say how those move.
        xn, norms, _ = _axis_per_trial(group, axis, "max_norm")
        rho_n, p_n = _spearman(xn, norms)
        stat += f"; max gradient norm {_medians(group, axis, 'max_norm')}"
        if v == "violated" and p_n < alpha and np.sign(rho_n) == np.sign(rho):
            reason += (
                f"; the gradient norms {'rise' if rho_n > 0 else 'fall'} with {axis} "
                f"too (Spearman rho = {rho_n:+.3f}) and carry the raw inner products "
                "with them: compare the normalized (cosine) row"
            )
    return Claim(
        claim=claim,
        test=(
            f"Spearman rank correlation of {axis} with the per-trial "
            f"{_STAT_WORDS[column]}, {y.size} trials in {len(group.configs)} "
            f"configurations of group {group.name}; two-sided; predicted sign "
            f"{'+' if sign > 0 else '-'}"
        ),
        statistic=stat,
        ci_or_p=format_p(p),
        verdict=v,
        reason=reason,
        figure=figure,
        statement=group.statement,
    )


def _extreme_shift(
    group: GroupTrials, axis: str, column: str, confidence: float
) -> tuple[float, float, float, float, float, float]:
    """HL shift (largest - smallest axis value), its CI, the pooled median, the ends."""
    values = group.axis_values(axis)
    lo_v, hi_v = values[0], values[-1]
    per = dict(zip(group.configs, group.values(column), strict=True))
    a = np.concatenate([v for c, v in per.items() if getattr(c, axis) == hi_v])
    b = np.concatenate([v for c, v in per.items() if getattr(c, axis) == lo_v])
    est, lo, hi = hodges_lehmann_ci(a, b, confidence)
    median = float(np.median(np.concatenate(list(per.values()))))
    return est, lo, hi, median, lo_v, hi_v


def independence_claim(
    group: GroupTrials,
    axis: str,
    column: str,
    claim: str,
    figure: str | None,
    *,
    alpha: float = 0.05,
) -> Claim:
    """The per-trial statistic does not depend on the axis (a null claim).

    Test: Kruskal-Wallis across the axis values. Power: the Hodges-Lehmann
    95% interval of the shift between the largest and the smallest axis
    value; the test counts as powered when that interval lies within
    ``+-RELEVANT_SHIFT`` times the pooled median (shifts beyond that would
    have been detected).
    """
    values = group.axis_values(axis)
    per_value = [
        np.concatenate(
            [
                v
                for c, v in zip(group.configs, group.values(column), strict=True)
                if getattr(c, axis) == a
            ]
        )
        for a in values
    ]
    n_min = min(v.size for v in per_value)
    if (
        len(per_value) >= 2
        and all(v.size for v in per_value)
        and np.unique(np.concatenate(per_value)).size > 1
    ):
        res = stats.kruskal(*per_value)
        h, p = float(res.statistic), float(res.pvalue)
    else:
        h, p = math.nan, math.nan
    x, y, _ = _axis_per_trial(group, axis, column)
    rho, _ = _spearman(x, y)
    stat = f"H = {h:.3g}; Spearman rho = {rho:+.3f}; {_medians(group, axis, column)}"
    powered, power_text = False, ""
    if n_min and all(v.size for v in per_value):
        est, lo, hi, med, lo_v, hi_v = _extreme_shift(group, axis, column, 1 - alpha)
        if med > 0:
            rel_lo, rel_hi = lo / med, hi / med
            powered = max(abs(rel_lo), abs(rel_hi)) <= RELEVANT_SHIFT
            power_text = (
                f"; 95% CI of the shift {axis}={fmt_num(hi_v)} minus {axis}="
                f"{fmt_num(lo_v)} (Hodges-Lehmann): [{lo:.3g}, {hi:.3g}] = "
                f"[{100 * rel_lo:+.0f}%, {100 * rel_hi:+.0f}%] of the median "
                f"{med:.3g}; powered iff within +-{100 * RELEVANT_SHIFT:.0f}%"
            )
    v, reason = verdict(p, False, n_min, alpha=alpha, null=True, powered=powered)
    if v == "violated" and not math.isnan(rho):
        reason += f"; the statistic {'rises' if rho > 0 else 'falls'} with {axis}"
    return Claim(
        claim=claim,
        test=(
            f"Kruskal-Wallis across {len(values)} values of {axis} on the per-trial "
            f"{_STAT_WORDS[column]} (group {group.name}); consistent when not "
            f"rejected at {alpha:g} and the shift interval excludes relevant effects"
        ),
        statistic=stat + power_text,
        ci_or_p=format_p(p),
        verdict=v,
        reason=reason,
        figure=figure,
        statement=group.statement,
    )


def no_increase_claim(
    group: GroupTrials,
    axis: str,
    column: str,
    claim: str,
    figure: str | None,
    *,
    alpha: float = 0.05,
) -> Claim:
    """The statistic does not grow along the axis (one-sided null claim).

    Test: one-sided Spearman (alternative: increasing). Powered when the
    upper end of the Hodges-Lehmann 95% interval of the shift (largest minus
    smallest axis value) is at most ``RELEVANT_SHIFT`` times the median.
    """
    x, y, n_min = _axis_per_trial(group, axis, column)
    rho, p = _spearman(x, y, alternative="greater")
    powered, extra = False, ""
    if n_min:
        est, lo, hi, med, lo_v, hi_v = _extreme_shift(group, axis, column, 1 - alpha)
        if med > 0:
            powered = hi / med <= RELEVANT_SHIFT
            extra = (
                f"; shift {axis}={fmt_num(hi_v)} minus {axis}={fmt_num(lo_v)}: "
                f"{est:.3g}, 95% CI [{lo:.3g}, {hi:.3g}] (upper end "
                f"{100 * hi / med:+.0f}% of the median); powered iff <= "
                f"+{100 * RELEVANT_SHIFT:.0f}%"
            )
    v, reason = verdict(p, False, n_min, alpha=alpha, null=True, powered=powered)
    return Claim(
        claim=claim,
        test=(
            f"one-sided Spearman test (alternative: rises with {axis}) on the "
            f"per-trial {_STAT_WORDS[column]}, {y.size} trials (group {group.name})"
        ),
        statistic=f"rho = {rho:+.3f}; {_medians(group, axis, column)}{extra}",
        ci_or_p=format_p(p),
        verdict=v,
        reason=reason,
        figure=figure,
        statement=group.statement,
    )


def _normalized_log_rate(group: GroupTrials) -> list[np.ndarray]:
    """Per configuration: ``log K(eta)`` per finite trial (``-inf`` off the domain)."""
    out = []
    for config, eta in zip(group.configs, group.values("eta"), strict=True):
        part1 = statement_of(config) == "4.1 part 1"
        base = eta - 4.0 if part1 else eta
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(
                base > 0, log_rate_factor(config) + 2.0 * np.log(base), -np.inf
            )
        out.append(z)
    return out


def c_star_claims(
    run: StoredRun, group: GroupTrials, figure: str | None, *, alpha: float = 0.05
) -> Claim:
    """``c*`` stays bounded away from 0 across the group's configurations.

    A universal constant ``c`` must satisfy ``c <= c*`` for every
    configuration. Statistic: the smallest and largest ``c*`` and their ratio.
    Test, per numeric grid axis: under the theorem,
    ``P(K(eta) > z) <= N^2 e^{-c z}`` with one ``c`` for all configurations,
    so ``c*`` falling along the axis shows as the per-trial
    ``log K(eta)`` rising. Spearman between the axis and ``log K(eta)``
    (two-sided); the claim is violated on an axis when that trend is
    significant, points up (``c*`` down) and ``c*`` falls by at least
    :data:`COLLAPSE_FACTOR` from the smallest to the largest axis value
    (geometric mean over other axes). Fewer than :data:`MIN_CONFIGS`
    configurations: inconclusive. ``c* = 0`` anywhere: violated.
    """
    st = group.statement
    rows = [(c, run.summary(group.name, c)) for c in group.configs]
    cs = np.array([s.c_star if s is not None else math.nan for _, s in rows])
    labels = [group.label(c) for c, _ in rows]
    n_min = min(int(s.trials) if s is not None else 0 for _, s in rows)
    title = STATEMENT_TITLES[st].split(" (")[0]
    claim = f"c* bounded away from 0 across the sweep ({title}, group {group.name})"
    ok = ~np.isnan(cs)
    if ok.any():
        i_lo, i_hi = int(np.nanargmin(cs)), int(np.nanargmax(cs))
        ratio = cs[i_hi] / cs[i_lo] if cs[i_lo] > 0 else math.inf
        stat = (
            f"min c* = {fmt_num(cs[i_lo])} ({labels[i_lo]}), max c* = "
            f"{fmt_num(cs[i_hi])} ({labels[i_hi]}), ratio {fmt_num(ratio)}"
        )
    else:
        stat = "no c* (no finite trials)"
    test = (
        "c* per configuration (one-sided Clopper-Pearson upper limit); per axis, "
        "Spearman of the axis with the per-trial log K(eta) (rising <=> c* falling), "
        f"violated when significant, rising and c* falls >= {COLLAPSE_FACTOR:g}x"
    )
    if int(ok.sum()) < MIN_CONFIGS:
        return Claim(
            claim,
            test,
            stat,
            "n/a",
            "inconclusive",
            f"only {int(ok.sum())} configuration(s) with a c*; a sweep needs >= "
            f"{MIN_CONFIGS}",
            figure,
            statement=st,
        )
    if (cs[ok] == 0).any():
        j = int(np.flatnonzero(cs == 0)[0])
        return Claim(
            claim,
            test,
            stat,
            "n/a",
            "violated",
            f"c* = 0 for {labels[j]}: the data exclude every constant c > 0",
            figure,
            statement=st,
        )
    axes = [
        a for a in group.axes if len(group.axis_values(a)) >= 2 and _numeric(group, a)
    ]
    if not axes:
        return Claim(
            claim,
            test,
            stat,
            "n/a",
            "consistent",
            "c* > 0 for every configuration; no numeric axis to test a trend along",
            figure,
            statement=st,
        )
    z_all = _normalized_log_rate(group)
    results = []
    for axis in axes:
        x = np.concatenate(
            [
                np.full(z.size, float(getattr(c, axis)))
                for c, z in zip(group.configs, z_all, strict=True)
            ]
        )
        z = np.concatenate(z_all)
        finite = np.isfinite(z)
        z = np.where(finite, z, (z[finite].min() - 1.0) if finite.any() else 0.0)
        rho, p = _spearman(x, z)
        values = group.axis_values(axis)

        def gm(value: float, axis: str = axis) -> float:
            sel = [cs[i] for i, (c, _) in enumerate(rows) if getattr(c, axis) == value]
            return float(np.exp(np.mean(np.log(sel))))

        first, last = gm(values[0]), gm(values[-1])
        with np.errstate(invalid="ignore", divide="ignore"):
            fall = float(np.divide(first, last))
        collapse = bool(rho > 0 and fall >= COLLAPSE_FACTOR)
        v, _ = verdict(p, not collapse, n_min, alpha=alpha, null=True)
        ps = format_p(p)
        span = f"{fmt_num(values[0])} to {fmt_num(values[-1])}"
        if v == "violated":
            why = (
                f"along {axis} c* {_factor(fall)} from {span} and the per-trial log "
                f"K(eta) rises significantly ({ps}): no single constant fits every "
                "configuration if the trend continues"
            )
        elif v == "inconclusive":
            why = (
                f"along {axis}: too few trials ({n_min} in the smallest configuration)"
            )
        elif p < alpha and rho > 0:
            small = "" if not fall >= 1 else f" (< {COLLAPSE_FACTOR:g}x)"
            why = (
                f"along {axis} log K(eta) rises ({ps}) but c* {_factor(fall)}{small}: "
                "no collapse"
            )
        elif p < alpha:
            why = f"along {axis} c* {_factor(fall)} (log K(eta) falls, {ps})"
        else:
            why = (
                f"along {axis} no significant trend of log K(eta) ({ps}); "
                f"c* {_factor(fall)}"
            )
        results.append((axis, rho, p, fall, v, why))
    order = {"violated": 0, "inconclusive": 1, "consistent": 2}
    v = min((r[4] for r in results), key=order.get)
    details = "; ".join(
        f"along {a}: c* {_factor(f)}, rho(log K) = {rho:+.3f}"
        for a, rho, _, f, _, _ in results
    )
    ps = "; ".join(f"{a}: {format_p(p)}" for a, _, p, _, _, _ in results)
    reason = "; ".join(r[5] for r in results if r[4] == v)
    return Claim(claim, test, f"{stat}; {details}", ps, v, reason, figure, statement=st)


def _numeric(group: GroupTrials, axis: str) -> bool:
    return all(
        isinstance(getattr(c, axis), int | float)
        and not isinstance(getattr(c, axis), bool)
        for c in group.configs
    )


def bound_claim(
    run: StoredRun,
    statement: str,
    c: float | None,
    figure: str | None,
    *,
    confidence: float = 0.95,
    alpha: float = 0.05,
) -> Claim:
    """The statement's bound at one constant holds for every configuration.

    ``c=None`` uses ``c*_min``, the smallest ``c*`` over the statement's
    configurations (the largest single constant consistent with all of
    them). Test: at every configuration and every ``eta`` of the spec's grid
    where the bound is not vacuous, the exact one-sided binomial test of
    ``H0: P(failure) <= P_fail(eta; c)`` (p = ``P(Binom(T, P_fail) >= k)``);
    Bonferroni over all such tests.
    """
    seen: dict[str, tuple[Config, str, str]] = {}
    for g in run.groups:
        for config in g.configs:
            if statement_of(config) == statement and config.config_hash not in seen:
                seen[config.config_hash] = (config, g.name, g.label(config))
    frames = {
        config.config_hash: f
        for g in run.groups
        for config, f in zip(g.configs, g.frames, strict=True)
    }
    title = STATEMENT_TITLES[statement].split(" (")[0]
    grid = run.spec.eta.values()
    summaries = {
        s.config.config_hash: s
        for s in run.summaries
        if statement_of(s.config) == statement
    }
    if c is None:
        cs = {h: s.c_star for h, s in summaries.items() if h in seen}
        finite = {h: v for h, v in cs.items() if not math.isnan(v)}
        claim = f"{title} bound holds at c* (one constant for every configuration)"
        if not finite:
            return Claim(
                claim,
                "c* from the stored trials",
                "no c*",
                "n/a",
                "inconclusive",
                "no configuration has a c*",
                figure,
                statement=statement,
            )
        h_min = min(finite, key=finite.get)
        c_use = finite[h_min]
        s_min = summaries[h_min]
        where = (
            f"c*_min = {fmt_num(c_use)} ({seen[h_min][1]}, {seen[h_min][2]}, binding "
            f"at eta = {fmt_num(s_min.binding_eta)})"
        )
        if c_use == 0:
            return Claim(
                claim,
                "c* from the stored trials",
                where,
                "n/a",
                "violated",
                "c* = 0: the data exclude every constant c > 0",
                figure,
                statement=statement,
            )
        if math.isinf(c_use):
            return Claim(
                claim,
                "c* from the stored trials",
                where,
                "n/a",
                "inconclusive",
                "no eta constrains c (c* = inf)",
                figure,
                statement=statement,
            )
    else:
        c_use = c
        claim = f"{title} bound holds at c = {fmt_num(c)} (user-given constant)"
        where = f"c = {fmt_num(c)}"
    tests = []
    n_min = None
    for h, (config, gname, label) in seen.items():
        f = frames[h]
        g = grid[in_domain(config, grid)]
        if not g.size:
            continue
        est = estimates(f, g, statistic="min_inner", confidence=confidence)
        t = int(est.trials.iloc[0])
        n_min = t if n_min is None else min(n_min, t)
        if t == 0:
            continue
        log_b = bound_for(config, g, c_use).log_failure
        for e, k, lb in zip(g, est.failures.to_numpy(int), log_b, strict=True):
            if lb < 0.0:
                bf = math.exp(lb)
                p = float(stats.binom.sf(k - 1, t, bf)) if k > 0 else 1.0
                tests.append((p, e, k, t, bf, f"{gname} {label}"))
    test = (
        "exact one-sided binomial test of H0: P(confusion > eta) <= bound's failure "
        "probability, at every configuration and non-vacuous eta of the spec's grid; "
        "Bonferroni over those tests"
        + (
            "; Theorem 4.1 with its c1 term dropped (c1 -> inf)"
            if "4.1" in statement
            else ""
        )
    )
    if not tests:
        return Claim(
            claim,
            test,
            f"{where}; bound vacuous at every eta of the grid",
            "n/a",
            "inconclusive",
            "the bound is vacuous (failure bound >= 1) at every eta of the "
            "grid: nothing to test",
            figure,
            statement=statement,
        )
    p_min, e, k, t, bf, who = min(tests, key=lambda r: r[0])
    p_adj = min(1.0, p_min * len(tests))
    v, reason = verdict(p_adj, False, n_min or 0, alpha=alpha, null=True, powered=True)
    stat = (
        f"{where}; {len(tests)} non-vacuous (configuration, eta) pairs; tightest: "
        f"{who} at eta = {e:.3g}: {k}/{t} failures vs bound {bf:.3g}"
    )
    if c is None and v == "consistent":
        reason += "; expected by construction of c* (shows where the bound is tightest)"
    return Claim(
        claim,
        test,
        stat,
        f"Bonferroni {format_p(p_adj)}",
        v,
        reason,
        figure,
        statement=statement,
    )


# --- discovery -------------------------------------------------------------

_Rule = tuple[str, str, int, str]  # (axis, kind, sign, claim text)

_RULES: dict[str | None, list[_Rule]] = {
    "4.1 part 2": [
        ("width", "trend", -1, "wider Gaussian nets: lower {what} (Theorem 4.1)"),
        ("depth", "trend", +1, "deeper Gaussian nets: higher {what} (Theorem 4.1)"),
        ("d", "trend", -1, "larger input dimension: lower {what} (Theorem 4.1 part 2)"),
        ("n", "trend", +1, "more samples: higher {what} (Theorem 4.1)"),
    ],
    "4.1 part 1": [
        (
            "width",
            "trend",
            -1,
            "wider Gaussian nets: lower {what} (Theorem 4.1 part 1)",
        ),
        (
            "depth",
            "trend",
            +1,
            "deeper Gaussian nets: higher {what} (Theorem 4.1 part 1)",
        ),
    ],
    "5.1": [
        ("depth", "trend", +1, "deeper small-weight nets: higher {what} (Theorem 5.1)"),
        ("d", "trend", -1, "larger input dimension: lower {what} (Theorem 5.1)"),
        (
            "width",
            "null",
            0,
            "small-weight nets: {what} independent of width (Theorem 5.1)",
        ),
        ("n", "trend", +1, "more samples: higher {what} (Theorem 5.1)"),
    ],
    "corollary_5.1": [
        ("r", "trend", +1, "larger ball radius: higher {what} (Corollary 5.1)"),
        (
            "depth",
            "trend",
            +1,
            "deeper small-weight nets: higher {what} (Corollary 5.1)",
        ),
        ("d", "trend", -1, "larger input dimension: lower {what} (Corollary 5.1)"),
    ],
    "6.1": [
        (
            "depth",
            "null",
            0,
            "orthogonal linear nets: {what} independent of depth (Theorem 6.1)",
        ),
        (
            "depth",
            "no_increase",
            0,
            "orthogonal linear nets: {what} does not grow with depth (Theorem 6.1)",
        ),
        ("d", "trend", -1, "larger input dimension: lower {what} (Theorem 6.1)"),
    ],
    None: [
        (
            "depth",
            "trend",
            +1,
            "deeper Gaussian nets: higher {what} (contrast ensemble, no bound)",
        ),
        (
            "width",
            "trend",
            -1,
            "wider Gaussian nets: lower {what} (contrast ensemble, no bound)",
        ),
    ],
}

_WHAT = {"eta": "confusion", "eta_cos": "normalized (cosine) confusion"}


def monte_carlo_claims(
    run: StoredRun,
    figure_for: Callable[[str, GroupTrials | None], str | None],
    *,
    c: float = 1.0,
    confidence: float = 0.95,
) -> list[Claim]:
    """Every claim the stored spec supports, in report order.

    Discovery: per group whose configurations share a statement, the rules
    of :data:`_RULES` for each of its grid axes (each in the raw and the
    normalized form; contrast groups only with Gaussian weights); per group
    with a bound, ``c*`` bounded away from 0; per statement, its bound at
    ``c*_min`` and at the user's ``c``.

    Args:
        run: The stored run.
        figure_for: Maps ``(kind, group)`` to a figure stem; kinds are
            ``"trend"``, ``"c_star"`` and ``"bound:<statement>"``.
        c: The user-given constant. Defaults to ``1.0``.
        confidence: Confidence level of the tests (``alpha = 1 - confidence``).
            Defaults to ``0.95``.

    Returns:
        The claims, grouped by statement.
    """
    if run.spec is None:
        return []
    alpha = 1.0 - confidence
    out: list[Claim] = []
    for st in [*run.statements(), None]:
        for group in run.groups:
            if not group.uniform or group.statement != st:
                continue
            if st is None and group.configs[0].weights != "gaussian":
                continue
            for axis, kind, sign, text in _RULES[st]:
                if axis not in group.axes or len(group.axis_values(axis)) < 2:
                    continue
                fig = figure_for("trend", group)
                columns = ("eta",) if kind == "no_increase" else ("eta", "eta_cos")
                for column in columns:
                    claim = text.format(what=_WHAT[column])
                    if kind == "trend":
                        out.append(
                            trend_claim(
                                group, axis, sign, column, claim, fig, alpha=alpha
                            )
                        )
                    elif kind == "null":
                        out.append(
                            independence_claim(
                                group, axis, column, claim, fig, alpha=alpha
                            )
                        )
                    else:
                        out.append(
                            no_increase_claim(
                                group, axis, column, claim, fig, alpha=alpha
                            )
                        )
            if st is not None:
                out.append(
                    c_star_claims(run, group, figure_for("c_star", group), alpha=alpha)
                )
        if st is not None:
            fig = figure_for(f"bound:{st}", None)
            out.append(
                bound_claim(run, st, None, fig, confidence=confidence, alpha=alpha)
            )
            out.append(bound_claim(run, st, c, fig, confidence=confidence, alpha=alpha))
    return out


def _text(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return fmt_num(value)
    return str(value)


def experiment_claims(name: str, result: dict) -> list[Claim]:
    """The ``claims`` rows of an experiment's JSON as :class:`Claim` objects.

    Rows carry ``claim, test, statistic, ci_or_p, verdict, reason, figure``;
    numbers are formatted, ``None`` becomes ``"n/a"``, and the figure is
    reduced to its file stem.

    Raises:
        ValueError: If a row lacks one of those keys or has an unknown verdict.
    """
    keys = ("claim", "test", "statistic", "ci_or_p", "verdict", "reason", "figure")
    out = []
    for i, row in enumerate(result.get("claims", [])):
        missing = [k for k in keys if k not in row]
        if missing:
            raise ValueError(f"{name}.json claims[{i}] lacks the keys {missing}")
        if row["verdict"] not in VERDICTS:
            raise ValueError(
                f"{name}.json claims[{i}].verdict must be one of {list(VERDICTS)}, "
                f"got {row['verdict']!r}"
            )
        fig = row["figure"]
        stem = None if not fig else str(fig).rsplit("/", 1)[-1].removesuffix(".png")
        out.append(
            Claim(
                claim=str(row["claim"]),
                test=str(row["test"]),
                statistic=_text(row["statistic"]),
                ci_or_p=_text(row["ci_or_p"]),
                verdict=row["verdict"],
                reason=str(row["reason"]),
                figure=stem,
                source=name,
            )
        )
    return out


def summarize(claims: Sequence[Claim]) -> dict[str, int]:
    """Count of claims per verdict."""
    return {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
