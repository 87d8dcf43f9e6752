"""Claims from the stored Monte Carlo trials of a run, one rule per kind.

Notation: a trial records the Gram matrix ``G_ij = <grad f_i, grad f_j>`` of
``N`` samples through three statistics, one per *variant* of Section 8:

- ``raw`` (Definition 2.1): ``min_{i != j} G_ij``;
- ``normalized``: the minimum pairwise cosine ``G_ij / sqrt(G_ii G_jj)``;
- ``averaged``: the mean of ``G_ij`` over pairs ``i != j``.

A trial's *confusion* is ``max(0, -statistic)`` and it *fails* at ``eta``
when the statistic is below ``-eta``. Section 8 says every result holds for
the normalized and averaged variants "up to constants": each variant is held
against the same functional form of the bound, with its own constant.

Rules, per group of configurations that test one statement (and per value of
its categorical axes), for every numeric grid axis (``depth``, ``width``,
``d``, ``n``, ``r``):

- *inequality* (:func:`c_star_claim`): one constant ``c`` serves every
  configuration. ``c*`` per configuration (one-sided Clopper-Pearson limits
  on the informative grid, :meth:`bounds.Statement.c_star`); ``log c*``
  fitted linearly in ``log axis`` (in ``axis`` where it takes the value 0),
  with the slope's standard error from a bootstrap of the trials. The claim
  is violated when ``c*`` falls significantly faster than
  :data:`COLLAPSE_FACTOR` over the sweep's range: under the fitted power law
  ``c*`` then tends to 0 along the axis, and the row says where it crosses
  ``c*_min / 100``. Raw, normalized and averaged variants.
- *prose* (:func:`trend_claim`, :func:`equivalence_claim`,
  :func:`limit_claim`): the paper's qualitative statements of
  :attr:`bounds.Statement.prose`, in the direction the paper states
  (one-sided Spearman both ways), "does not depend on" as an equivalence
  (TOST within :data:`EQUIVALENCE_MARGIN` of the median), and, along the
  axes where the bound tends to 1, whether the failure probability at a
  reference level at least halves over the sweep (:data:`LIMIT_FACTOR`), not
  only whether it moves the right way. Raw and normalized variants.
- *observation*: trends the bound's form suggests but the paper does not
  state (``d``, ``n``, ``r``), and every trend of a contrast ensemble.
- *user constant* (:func:`user_constant_claim`): the bound at the user's
  ``c`` at every configuration and ``eta`` (exact binomial tests, Bonferroni).

For statements quantified over a class of weights (Theorem 5.1, Corollary
5.1, Theorem 6.1), a group whose ensemble is a grid axis (``weights``,
``centre``, ``layers``) yields one claim per ensemble, aggregated: the verdict
is the theorem's only when every admissible ensemble agrees.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Mapping

import numpy as np
from scipy import stats

from bounds import STATEMENTS, Statement
from montecarlo._config import Config
from montecarlo._results import GroupTrials, StoredRun
from montecarlo._statements import bound_kwargs, statement_of
from montecarlo.claims import _tests as t
from montecarlo.claims._claim import Claim, Evidence, Kind, format_p

__all__ = [
    "VARIANTS",
    "COLLAPSE_FACTOR",
    "EQUIVALENCE_MARGIN",
    "LIMIT_FACTOR",
    "MIN_CONFIGS",
    "BOOTSTRAP",
    "monte_carlo_claims",
    "c_star_claim",
    "c_star_trend",
    "trend_claim",
    "equivalence_claim",
    "limit_claim",
    "user_constant_claim",
]

VARIANTS = {
    "raw": ("min_inner", "confusion max(0, -min_{i!=j} <grad f_i, grad f_j>)"),
    "normalized": ("min_cos", "normalized confusion max(0, -min_{i!=j} cos)"),
    "averaged": ("offdiag_mean", "averaged confusion max(0, -mean_{i!=j} G_ij)"),
}
"""Variant -> (stored per-trial statistic, words)."""

COLLAPSE_FACTOR = 10.0
"""``c*`` must fall faster than this factor over the sweep to count as collapsing."""

EQUIVALENCE_MARGIN = 0.25
""""Independent of" means a shift within this fraction of the reference median."""

LIMIT_FACTOR = 2.0
"""Where the bound tends to 1, the failure probability should fall by this factor."""

MIN_CONFIGS = 3
"""Fewest configurations along an axis for a ``c*`` trend."""

BOOTSTRAP = 200
"""Bootstrap replicates behind the standard error of a ``c_q`` slope."""

TAIL_LEVEL = 0.1
"""Failure level ``q`` of the constant ``c_q`` whose trend an inequality claim tests."""

MIN_TRIALS = 30
"""Fewest finite trials per configuration for a decisive verdict."""

MAX_DROPPED = 0.05
"""Largest fraction of bootstrap replicates without a finite ``c_q``."""

MIN_TAIL_COUNT = 5
"""Fewest trials beyond the tail quantile (``q n``) for a ``c_q``."""

_ENSEMBLE_KEYS = ("weights", "centre", "layers")
_OBSERVED_SIGNS = {"d": -1, "n": +1, "r": +1}
_CONTRAST_SIGNS = (("depth", +1), ("width", -1))


def _name(variant: str) -> str:
    """``"confusion"``, ``"normalized confusion"``, ``"averaged confusion"``."""
    return VARIANTS[variant][1].split(" max")[0]


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.3g}"


# --- the data of one sweep ------------------------------------------------


class _Sweep:
    """Configurations of one group that differ only along numeric axes.

    Attributes:
        group: The stored group.
        items: ``(config, frame)`` pairs of the sweep.
        fixed: The categorical axis values that define it, e.g.
            ``{"weights": "small"}``.
    """

    def __init__(
        self, group: GroupTrials, items: list[tuple[Config, object]], fixed: dict
    ) -> None:
        self.group = group
        self.items = items
        self.fixed = fixed

    @property
    def configs(self) -> list[Config]:
        return [c for c, _ in self.items]

    @property
    def ensemble(self) -> str:
        c = self.configs[0]
        name = c.weights
        for key in ("centre", "layers"):
            if key in self.fixed:
                name = f"{name}/{self.fixed[key]}"
        return name

    @property
    def label(self) -> str:
        """``"group t51_width (activation=relu)"``: where the trials come from.

        The ensemble is left out (it is the claim's ``ensemble``), so the same
        test on several ensembles reads the same.
        """
        extra = ", ".join(
            f"{k}={v}" for k, v in self.fixed.items() if k not in _ENSEMBLE_KEYS
        )
        return f"group {self.group.name}" + (f" ({extra})" if extra else "")

    @property
    def setting(self) -> str:
        """``", relu, logistic loss"``: the activation, a non-square loss, and
        the categorical values other than the ensemble (for the claim's text)."""
        c = self.configs[0]
        parts = [c.activation] + ([f"{c.loss} loss"] if c.loss != "square" else [])
        parts += [
            f"{k}={v}"
            for k, v in self.fixed.items()
            if k not in _ENSEMBLE_KEYS and k not in ("activation", "loss")
        ]
        return "".join(f", {p}" for p in parts)

    def values(self, variant: str) -> list[np.ndarray]:
        """Per configuration: finite trials' statistic (NaN dropped)."""
        column = VARIANTS[variant][0]
        out = []
        for _, f in self.items:
            v = f.loc[f.finite == 1.0, column].to_numpy(float)
            out.append(v[~np.isnan(v)])
        return out

    def confusion(self, variant: str) -> list[np.ndarray]:
        return [np.maximum(0.0, -v) for v in self.values(variant)]

    def axis(self, name: str) -> np.ndarray:
        return np.array([float(getattr(c, name)) for c in self.configs])

    def n_min(self, variant: str = "raw") -> int:
        return min((v.size for v in self.values(variant)), default=0)


def _numeric_axes(group: GroupTrials) -> list[str]:
    out = []
    for a in group.axes:
        vals = [getattr(c, a) for c in group.configs]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
            if len(set(vals)) >= 2:
                out.append(a)
    return out


def _sweeps(group: GroupTrials) -> list[_Sweep]:
    """The group split by its categorical axes (one sweep per combination)."""
    numeric = set(_numeric_axes(group))
    categorical = [a for a in group.axes if a not in numeric]
    by: dict[tuple, list] = {}
    for config, frame in zip(group.configs, group.frames, strict=True):
        key = tuple((a, getattr(config, a)) for a in categorical)
        by.setdefault(key, []).append((config, frame))
    return [_Sweep(group, items, dict(key)) for key, items in by.items()]


def _pooled(sweep: _Sweep, axis: str, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """``(axis value per trial, confusion per trial)`` over the sweep."""
    conf = sweep.confusion(variant)
    x = np.concatenate(
        [
            np.full(v.size, float(getattr(c, axis)))
            for c, v in zip(sweep.configs, conf, strict=True)
        ]
    )
    return x, np.concatenate(conf) if conf else np.array([])


def _by_value(sweep: _Sweep, axis: str, variant: str) -> dict[float, np.ndarray]:
    out: dict[float, list] = {}
    for c, v in zip(sweep.configs, sweep.confusion(variant), strict=True):
        out.setdefault(float(getattr(c, axis)), []).append(v)
    return {a: np.concatenate(vs) for a, vs in sorted(out.items())}


def _medians(sweep: _Sweep, axis: str, variant: str) -> str:
    parts = [
        f"{_fmt(float(np.median(v)))} ({axis}={_fmt(a)})"
        for a, v in _by_value(sweep, axis, variant).items()
        if v.size
    ]
    return "median confusion " + ", ".join(parts)


def _seed(*parts: object) -> int:
    text = "|".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


# --- claim builders -------------------------------------------------------


def _title(statement: str | None) -> str:
    return "contrast (no bound)" if statement is None else STATEMENTS[statement].title


def trend_claim(
    sweep: _Sweep,
    statement: str | None,
    axis: str,
    sign: int,
    words: str,
    variant: str,
    kind: Kind,
    *,
    alpha: float,
) -> Claim:
    """A stated direction of the per-trial confusion along ``axis``.

    Test: Spearman's rank correlation of the axis value with the per-trial
    confusion over every finite trial of the sweep (pooled over its other
    numeric axes), one-sided in the stated direction (supports) and in the
    opposite direction (contradicts).
    """
    x, y = _pooled(sweep, axis, variant)
    tr = t.trend(x, y)
    p_sup, p_con = tr.p_for(sign)
    way = "rises" if sign > 0 else "falls"
    other = "falls" if sign > 0 else "rises"
    stat = f"rho = {tr.rho:+.3f}; {_medians(sweep, axis, variant)}"
    if variant == "raw":
        norms = _by_value_norms(sweep, axis)
        if norms:
            stat += f"; median largest gradient norm {norms}"
    return Claim(
        statement=statement or "contrast",
        kind=kind,
        claim=f"{words} ({_title(statement)}, {_name(variant)}{sweep.setting})",
        test=(
            f"one-sided Spearman tests of {axis} against the per-trial "
            f"{VARIANTS[variant][1]}, {y.size} trials in {len(sweep.items)} "
            f"configurations of {sweep.label}"
        ),
        statistic=stat,
        evidence=(
            Evidence(f"confusion {way} with {axis}", p_sup, True),
            Evidence(f"confusion {other} with {axis}", p_con, False),
        ),
        alpha=alpha,
        n_min=sweep.n_min(variant),
        min_trials=MIN_TRIALS,
        default_reason=f"no significant trend along {axis} either way",
        figure=f"trend:{sweep.group.name}",
        ensemble=sweep.ensemble,
        variant=variant,
    )


def _by_value_norms(sweep: _Sweep, axis: str) -> str:
    out: dict[float, list] = {}
    for c, (_, f) in zip(sweep.configs, sweep.items, strict=True):
        v = f.loc[f.finite == 1.0, "max_norm"].to_numpy(float)
        out.setdefault(float(getattr(c, axis)), []).append(v[~np.isnan(v)])
    parts = [
        f"{_fmt(float(np.median(np.concatenate(v))))} ({axis}={_fmt(a)})"
        for a, v in sorted(out.items())
        if np.concatenate(v).size
    ]
    return ", ".join(parts)


def equivalence_claim(
    sweep: _Sweep,
    statement: str,
    axis: str,
    words: str,
    variant: str,
    *,
    alpha: float,
) -> Claim:
    """ "Confusion does not depend on ``axis``" as an equivalence (TOST).

    Compares the largest against the smallest axis value: Hodges-Lehmann
    shift of the per-trial confusion with its ``1 - 2 alpha`` interval, and
    the two one-sided Mann-Whitney tests of ``|shift| < m`` with the margin
    ``m`` = :data:`EQUIVALENCE_MARGIN` times the median confusion at the
    smallest value. Supports: equivalence (TOST); contradicts: the shift
    exceeds the margin. A depth-free *lower bound* on a probability allows
    confusion to fall with depth, so this tests the paper's prose, not the
    theorem's inequality.
    """
    groups = _by_value(sweep, axis, variant)
    lo_v, hi_v = min(groups), max(groups)
    a, b = groups[hi_v], groups[lo_v]
    med = float(np.median(b)) if b.size else math.nan
    claim = f"{words} ({_title(statement)}, {_name(variant)}{sweep.setting})"
    test = (
        f"two one-sided Mann-Whitney tests (TOST) of |shift| < "
        f"{EQUIVALENCE_MARGIN:g} x median confusion, {axis}={_fmt(hi_v)} vs "
        f"{axis}={_fmt(lo_v)}, {sweep.label}"
    )
    base = dict(
        statement=statement,
        kind=Kind.PROSE,
        claim=claim,
        test=test,
        alpha=alpha,
        n_min=min(a.size, b.size),
        min_trials=MIN_TRIALS,
        figure=f"trend:{sweep.group.name}",
        ensemble=sweep.ensemble,
        variant=variant,
    )
    if not (med > 0 and a.size and b.size):
        return Claim(
            **base,
            statistic=f"median confusion at {axis}={_fmt(lo_v)} is {_fmt(med)}",
            default_reason="no margin: the reference median confusion is 0",
        )
    eq = t.equivalence(a, b, EQUIVALENCE_MARGIN * med, alpha=alpha)
    rel = f"[{100 * eq.low / med:+.0f}%, {100 * eq.high / med:+.0f}%]"
    return Claim(
        **base,
        statistic=(
            f"shift {_fmt(eq.shift)} ({100 * eq.shift / med:+.0f}% of the median "
            f"{_fmt(med)}), {100 * (1 - 2 * alpha):g}% interval {rel}; margin "
            f"+-{100 * EQUIVALENCE_MARGIN:.0f}%; {_medians(sweep, axis, variant)}"
        ),
        evidence=(
            Evidence(
                f"|shift| < {EQUIVALENCE_MARGIN:g} x median (equivalent)",
                eq.p_equivalent,
                True,
            ),
            Evidence(
                f"|shift| > {EQUIVALENCE_MARGIN:g} x median", eq.p_different, False
            ),
        ),
        default_reason="neither equivalence nor a difference beyond the margin shown",
    )


def _failure_counts(values: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """``#{v < -eta}`` for each ``eta`` (``values`` finite)."""
    v = np.sort(values)
    return np.searchsorted(v, -np.asarray(eta), side="left")


def limit_claim(
    sweep: _Sweep, statement: Statement, axis: str, variant: str, *, alpha: float
) -> Claim:
    """Along an axis where the bound tends to 1, does the probability approach 1?

    At the reference level ``eta_ref`` (the median confusion at the smallest
    axis value, so the failure probability starts near 1/2), the failure
    probabilities ``f_0`` (smallest value) and ``f_1`` (largest value) are
    compared by the Wald test of their log ratio: supports when ``f_1 < f_0 /
    LIMIT_FACTOR`` significantly, contradicts when ``f_1 > f_0 /
    LIMIT_FACTOR`` significantly, i.e. the failure probability does not even
    halve while the bound's exponent ``K`` grows by the stated factor.
    """
    groups = _by_value(sweep, axis, variant)
    lo_v, hi_v = min(groups), max(groups)
    b, a = groups[lo_v], groups[hi_v]
    eta_ref = float(np.median(b)) if b.size else math.nan
    params0 = bound_kwargs(_config_at(sweep, axis, lo_v))
    params1 = bound_kwargs(_config_at(sweep, axis, hi_v))
    k_ratio = math.exp(
        statement.log_rate_factor(params1) - statement.log_rate_factor(params0)
    )
    claim = (
        f"the probability that the bound holds approaches 1 along {axis}, as the "
        f"bound does ({statement.title}, {_name(variant)}{sweep.setting})"
    )
    base = dict(
        statement=statement.key,
        kind=Kind.PROSE,
        claim=claim,
        test=(
            f"Wald test of log(f({axis}={_fmt(hi_v)}) / f({axis}={_fmt(lo_v)})) "
            f"against log(1/{LIMIT_FACTOR:g}) at eta_ref = median confusion at "
            f"{axis}={_fmt(lo_v)}, {sweep.label}"
        ),
        alpha=alpha,
        n_min=min(a.size, b.size),
        min_trials=MIN_TRIALS,
        figure=f"bound:{statement.key}",
        ensemble=sweep.ensemble,
        variant=variant,
    )
    if not (eta_ref > 0 and a.size and b.size):
        return Claim(
            **base,
            statistic=f"eta_ref = {_fmt(eta_ref)}",
            default_reason="no reference level (median confusion 0)",
        )
    k0, k1 = int((b > eta_ref).sum()), int((a > eta_ref).sum())
    _, p_sup = t.ratio_test(k0, b.size, k1, a.size, LIMIT_FACTOR)
    _, p_con = t.ratio_test(k1, a.size, k0, b.size, 1.0 / LIMIT_FACTOR)
    per_value = ", ".join(
        f"{_fmt(float((v > eta_ref).mean()))} ({axis}={_fmt(x)})"
        for x, v in groups.items()
        if v.size
    )
    return Claim(
        **base,
        statistic=(
            f"eta_ref = {_fmt(eta_ref)}; P(confusion > eta_ref): {per_value}; the "
            f"bound's exponent K grows {_fmt(k_ratio)}x over the sweep"
        ),
        evidence=(
            Evidence(
                f"failure probability falls more than {LIMIT_FACTOR:g}x", p_sup, True
            ),
            Evidence(
                f"failure probability falls less than {LIMIT_FACTOR:g}x", p_con, False
            ),
        ),
        default_reason="the change of the failure probability is not resolved",
    )


def _config_at(sweep: _Sweep, axis: str, value: float) -> Config:
    return next(c for c in sweep.configs if float(getattr(c, axis)) == value)


def c_star_claim(
    sweep: _Sweep,
    statement: Statement,
    axis: str,
    variant: str,
    grid: np.ndarray,
    *,
    alpha: float,
    confidence: float,
) -> Claim:
    """One constant serves every configuration of a sweep along ``axis``.

    :func:`c_star_trend` on the sweep's stored trials (statistic of
    ``variant``).
    """
    return c_star_trend(
        statement=statement,
        axis=axis,
        x=sweep.axis(axis),
        values=sweep.values(variant),
        params=[bound_kwargs(c) for c in sweep.configs],
        keys=[f"{c.config_hash}|{variant}" for c in sweep.configs],
        grid=grid,
        alpha=alpha,
        confidence=confidence,
        claim=(
            f"one constant c serves every {axis} ({statement.title}, "
            f"{_name(variant)}{sweep.setting})"
        ),
        where=sweep.label,
        figure=f"c_star:{sweep.group.name}",
        ensemble=sweep.ensemble,
        variant=variant,
    )


def c_star_trend(
    *,
    statement: Statement,
    axis: str,
    x: np.ndarray,
    values: list[np.ndarray],
    params: list[Mapping[str, object]],
    keys: list[str],
    grid: np.ndarray,
    alpha: float,
    confidence: float,
    claim: str,
    where: str,
    figure: str | None,
    ensemble: str | None,
    variant: str = "raw",
) -> Claim:
    """One constant serves every configuration along ``axis`` (an inequality claim).

    If the theorem holds with a constant ``c``, then at every level ``eta``
    the failure probability ``q(eta) <= N^2 exp(-c K(eta) + B(eta))``, so
    ``c <= c_q := (2 log N + B(eta_q) - log q) / K(eta_q)`` with ``eta_q`` the
    ``1 - q`` quantile of the confusion (:meth:`bounds.Statement.constant_at`).
    ``c_q`` at the tail level ``q`` = :data:`TAIL_LEVEL` is a smooth function
    of the sample (unlike ``c*``, which binds at a grid point), so its
    bootstrap is valid. ``log c_q`` is fitted linearly in ``log axis`` (in
    ``axis`` where it takes the value 0). Evidence (contradicts): the
    one-sided z-test, with the slope's bootstrap standard error
    (:data:`BOOTSTRAP` replicates resampling every configuration's trials),
    of ``H0: b >= b_10``, where ``b_10`` is the slope at which ``c_q`` falls
    :data:`COLLAPSE_FACTOR` times over the sweep's range: under the fitted
    power law ``c_q``, hence every admissible constant, tends to 0 along the
    axis. Not rejected: consistent, with ``c*_min``, the smallest ``c*``
    (:meth:`bounds.Statement.c_star`), as the largest single constant the
    sweep allows.

    Args:
        statement: The statement whose bound is tested.
        axis: The swept axis (its name, for the text).
        x: The axis value of each configuration.
        values: Per configuration, the finite per-trial statistics (a trial
            fails at ``eta`` when its statistic is below ``-eta``).
        params: Per configuration, the bound's parameters.
        keys: Per configuration, a text that seeds its bootstrap.
        grid: The ``eta`` grid of ``c*``.
        alpha, confidence: Level of the test, and of ``c*`` and the interval.
        claim, where, figure, ensemble, variant: The claim's text, where its
            trials come from, its figure token, ensemble and variant.
    """
    grid = grid[statement.in_domain(grid)]
    x = np.asarray(x, dtype=float)
    log_x = bool((x > 0).all())
    base = dict(
        statement=statement.key,
        kind=Kind.INEQUALITY,
        claim=claim,
        alpha=alpha,
        n_min=min((v.size for v in values), default=0),
        min_trials=MIN_TRIALS,
        figure=figure,
        ensemble=ensemble,
        variant=variant,
        test=(
            f"{where}: c_q = (2 log N + B - log q) / K(eta_q) at the "
            f"1 - q quantile eta_q of the confusion, q = {TAIL_LEVEL:g} (or half "
            "a quarter of the smallest fraction of positive confusions) "
            f"(every admissible c <= c_q); log c_q fitted linearly in "
            f"{'log ' if log_x else ''}{axis} over {len(values)} configurations, "
            f"slope error from {BOOTSTRAP} bootstrap replicates; violated when "
            f"c_q falls significantly faster than {COLLAPSE_FACTOR:g}x over the "
            "sweep"
        ),
    )
    if grid.size == 0 or min((v.size for v in values), default=0) == 0:
        return Claim(**base, statistic="no c*", default_reason="no c* to fit")
    confusion = [np.maximum(0.0, -v) for v in values]
    # the tail level: TAIL_LEVEL, lowered where confusion is rarely positive
    positive = min(float((c > 0).mean()) for c in confusion)
    q = min(TAIL_LEVEL, positive / 4.0)
    if q * base["n_min"] < MIN_TAIL_COUNT:
        return Claim(
            **base,
            statistic=f"the smallest fraction of trials with positive confusion is "
            f"{_fmt(positive)}",
            default_reason=(
                f"too few positive confusions for a tail level (q n >= "
                f"{MIN_TAIL_COUNT} needed)"
            ),
        )
    cs = np.empty(len(values))
    cq = np.empty(len(values))
    boot = np.empty((BOOTSTRAP, len(values)))
    for j, (v, par) in enumerate(zip(values, params, strict=True)):
        k = _failure_counts(v, grid)[None, :]
        cs[j] = statement.c_star(
            grid, k, np.array([v.size]), par, confidence=confidence
        )[0]
        conf = confusion[j]
        cq[j] = statement.constant_at(np.quantile(conf, 1.0 - q), q, par)
        rng = np.random.default_rng(_seed(keys[j], "c_q"))
        resampled = conf[rng.integers(0, v.size, size=(BOOTSTRAP, v.size))]
        boot[:, j] = statement.constant_at(
            np.quantile(resampled, 1.0 - q, axis=1), q, par
        )
    order = np.argsort(x, kind="stable")
    c_min = float(cs.min())
    stat = (
        "c*: "
        + ", ".join(f"{_fmt(cs[i])} ({axis}={_fmt(x[i])})" for i in order)
        + f"; c*_min = {_fmt(c_min)}; c_q at q = {_fmt(q)}: "
        + ", ".join(_fmt(cq[i]) for i in order)
    )
    # a replicate with too few positive confusions has c_q = inf (no constraint)
    finite_rows = np.isfinite(boot).all(axis=1)
    dropped = int((~finite_rows).sum())
    boot = boot[finite_rows]
    usable = bool(np.isfinite(cq).all() and (cq > 0).all() and (boot > 0).all())
    usable = usable and dropped <= MAX_DROPPED * BOOTSTRAP
    if np.unique(x).size < MIN_CONFIGS or not usable:
        why = (
            f"only {np.unique(x).size} values of {axis}; a trend needs >= {MIN_CONFIGS}"
            if np.unique(x).size < MIN_CONFIGS
            else "c_q is infinite at some configuration or in more than "
            f"{100 * MAX_DROPPED:g}% of the bootstrap replicates (the tail quantile "
            "of the confusion is outside the bound's domain)"
        )
        return Claim(**base, statistic=stat, default_reason=why)
    fit = t.power_law(x if log_x else np.exp(x), cq, boot)
    span = math.log(x.max() / x.min()) if log_x else x.max() - x.min()
    b10 = -math.log(COLLAPSE_FACTOR) / span
    p_fast = float(stats.norm.cdf((fit.slope - b10) / fit.se)) if fit.se > 0 else 1.0
    lo, hi = fit.interval(confidence)
    unit = f"{axis}^b" if log_x else f"exp(b {axis})"
    stat += (
        f"; c_q ~ {unit}, b = {fit.slope:+.3g} [{lo:+.3g}, {hi:+.3g}] (collapse: "
        f"b < {b10:+.3g}; {dropped} of {BOOTSTRAP} replicates without a c_q)"
    )
    target = float(cq.min()) / 100.0
    cross = fit.crossing(target) if fit.slope < 0 else math.nan
    if math.isfinite(cross):
        stat += (
            f"; the fit reaches c_q = {_fmt(target)} (1/100 of its smallest value) "
            f"at {axis} = {_fmt(cross if log_x else math.log(cross))}"
        )
    return Claim(
        **base,
        statistic=stat,
        evidence=(
            Evidence(
                f"c_q falls faster than {COLLAPSE_FACTOR:g}x over the sweep "
                "(power law)",
                p_fast,
                False,
            ),
        ),
        default="consistent",
        default_reason=(
            f"c_q does not collapse along {axis}: one constant c <= {_fmt(c_min)} "
            "serves every configuration of the sweep"
        ),
    )


def user_constant_claim(
    run: StoredRun, statement: Statement, c: float, *, alpha: float
) -> Claim:
    """The statement's bound at the user's constant ``c`` at every configuration.

    Exact one-sided binomial test of ``H0: P(confusion > eta) <= bound`` at
    every configuration and every non-vacuous ``eta`` of the spec's grid,
    Bonferroni over those tests (Theorem 4.1 with its ``c1`` term dropped).
    """
    grid = run.spec.eta.values()
    k_all, t_all, b_all, who = [], [], [], []
    n_min = None
    for g in run.groups:
        for config, frame in zip(g.configs, g.frames, strict=True):
            st = statement_of(config)
            if st is None or st.key != statement.key:
                continue
            v = frame.loc[frame.finite == 1.0, "min_inner"].to_numpy(float)
            v = v[~np.isnan(v)]
            n_min = v.size if n_min is None else min(n_min, v.size)
            g_dom = grid[statement.in_domain(grid)]
            if not v.size or not g_dom.size:
                continue
            log_b = statement.failure_bound(g_dom, c, bound_kwargs(config)).log_failure
            b = np.exp(np.minimum(log_b, 0.0))  # vacuous points (b >= 1) test nothing
            k_all += list(_failure_counts(v, g_dom))
            t_all += [v.size] * g_dom.size
            b_all += list(b)
            who += [(f"{g.name} {g.label(config)}", e) for e in g_dom]
    res = t.bound_test(k_all, t_all, b_all)
    claim = f"{statement.title} bound holds at c = {_fmt(c)} (a user-given constant)"
    test = (
        "exact one-sided binomial test of H0: P(confusion > eta) <= the bound's "
        "failure probability at every configuration and non-vacuous eta of the "
        "grid; Bonferroni over those tests"
    )
    if res.m == 0:
        return Claim(
            statement=statement.key,
            kind=Kind.USER_CONSTANT,
            claim=claim,
            test=test,
            statistic=f"the bound at c = {_fmt(c)} is vacuous at every eta of the grid",
            alpha=alpha,
            n_min=n_min or 0,
            default_reason="nothing to test: the bound is vacuous everywhere",
            figure=f"bound:{statement.key}",
        )
    i = res.index
    name, e = who[i]
    return Claim(
        statement=statement.key,
        kind=Kind.USER_CONSTANT,
        claim=claim,
        test=test,
        statistic=(
            f"{res.m} non-vacuous (configuration, eta) pairs; tightest: {name} at "
            f"eta = {e:.3g}: {k_all[i]}/{t_all[i]} failures vs bound {b_all[i]:.3g} "
            f"(raw {format_p(res.p_min)})"
        ),
        evidence=(
            Evidence(
                "the failure rate exceeds the bound somewhere", res.p_value, False
            ),
        ),
        alpha=alpha,
        n_min=n_min or 0,
        default="consistent",
        default_reason="the bound at this constant is not rejected anywhere",
        figure=f"bound:{statement.key}",
    )


def _per_ensemble(
    sweeps: list[_Sweep], build: Callable[[_Sweep], Claim], class_quantified: bool
) -> list[Claim]:
    """One claim per sweep, aggregated over ensembles for class statements."""
    claims = [build(s) for s in sweeps]
    if not class_quantified:
        return claims
    # sweeps differing only by their ensemble aggregate into one claim
    by_rest: dict[tuple, list[Claim]] = {}
    for s, c in zip(sweeps, claims, strict=True):
        rest = tuple((k, v) for k, v in s.fixed.items() if k not in _ENSEMBLE_KEYS)
        by_rest.setdefault(rest, []).append(c)
    return [g[0] if len(g) == 1 else Claim.over_ensembles(g) for g in by_rest.values()]


def _contrast_claims(sweeps: list[_Sweep], axis: str, alpha: float) -> list[Claim]:
    """Observations on a contrast ensemble: the 4.1 prose applied to it."""
    out = []
    for a, sign in _CONTRAST_SIGNS:
        if a != axis:
            continue
        words = (
            f"{'deeper' if a == 'depth' else 'wider'} networks have "
            f"{'higher' if sign > 0 else 'lower'} gradient confusion (contrast)"
        )
        for variant in ("raw", "normalized"):
            out += [
                trend_claim(
                    s, None, axis, sign, words, variant, Kind.OBSERVATION, alpha=alpha
                )
                for s in sweeps
            ]
    return out


def _axis_claims(
    sweeps: list[_Sweep],
    st: Statement,
    axis: str,
    grid: np.ndarray,
    alpha: float,
    confidence: float,
) -> list[Claim]:
    """Every claim of one statement along one numeric axis of a group."""
    class_q = st.uniform_over in ("weights", "ball")
    out: list[Claim] = []
    for a, sign, words in st.prose:
        if a != axis:
            continue
        for variant in ("raw", "normalized"):
            if sign == 0:
                build = functools.partial(
                    equivalence_claim,
                    statement=st.key,
                    axis=axis,
                    words=words,
                    variant=variant,
                    alpha=alpha,
                )
            else:
                build = functools.partial(
                    trend_claim,
                    statement=st.key,
                    axis=axis,
                    sign=sign,
                    words=words,
                    variant=variant,
                    kind=Kind.PROSE,
                    alpha=alpha,
                )
            out += _per_ensemble(sweeps, build, class_q)
    if axis in st.limit_axes:
        for variant in ("raw", "normalized"):
            build = functools.partial(
                limit_claim, statement=st, axis=axis, variant=variant, alpha=alpha
            )
            out += _per_ensemble(sweeps, build, class_q)
    if axis in _OBSERVED_SIGNS and axis not in {p[0] for p in st.prose}:
        sign = _OBSERVED_SIGNS[axis]
        words = (
            f"larger {axis}: {'higher' if sign > 0 else 'lower'} gradient confusion "
            "(the bound's form; not stated in the paper)"
        )
        for variant in ("raw", "normalized"):
            out += [
                trend_claim(
                    s, st.key, axis, sign, words, variant, Kind.OBSERVATION, alpha=alpha
                )
                for s in sweeps
            ]
    for variant in VARIANTS:
        build = functools.partial(
            c_star_claim,
            statement=st,
            axis=axis,
            variant=variant,
            grid=grid,
            alpha=alpha,
            confidence=confidence,
        )
        out += _per_ensemble(sweeps, build, class_q)
    return out


def monte_carlo_claims(
    run: StoredRun,
    *,
    c: float = 1.0,
    confidence: float = 0.95,
) -> list[Claim]:
    """Every claim the stored run supports, grouped by statement (before adjustment).

    Args:
        run: The stored run (:func:`montecarlo.load_run`).
        c: The user-given constant of the *user constant* claims. Defaults to 1.
        confidence: ``1 - alpha`` of every test, and the level of ``c*``.

    Returns:
        The claims; pass them with the experiments' claims through
        :func:`montecarlo.claims.adjust`.
    """
    if run.spec is None:
        return []
    alpha = 1.0 - confidence
    grid = run.spec.eta.values()
    out: list[Claim] = []
    for key in [*run.statements(), None]:
        st = STATEMENTS[key] if key is not None else None
        for group in run.groups:
            if not group.uniform or group.statement != key:
                continue
            sweeps = _sweeps(group)
            for axis in _numeric_axes(group):
                if st is None:
                    out += _contrast_claims(sweeps, axis, alpha)
                else:
                    out += _axis_claims(sweeps, st, axis, grid, alpha, confidence)
        if st is not None:
            out.append(user_constant_claim(run, st, c, alpha=alpha))
    return out
