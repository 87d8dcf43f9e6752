r"""Claims of the ``tail`` experiment: the bounds' exponents and ``c*`` from the tail.

The experiment (:mod:`montecarlo._tails`) stores, per configuration, ``R``
subset-simulation repetitions of ``P(eta) = P(statistic < -eta)`` on a grid
reaching ``1e-8`` and below, and per *sweep* (configurations of one group
testing one statement) two fits (:mod:`montecarlo._tail_rates`): the
theorem's form ``log P - L = a - c K(eta)`` and the free form

.. math::

    \log P = a + b \log N - k\, \eta^{p} \prod_x x^{q_x},
    \qquad x \in \{d, \text{width}, \text{depth}\} \text{ varying in the sweep},

each fitted quantity also recomputed with repetition ``r`` left out of every
configuration. Errors (:func:`rates`): the points of one configuration share
their repetitions (a run's deeper estimates are products of the same level
fractions), which the fits' least-squares errors ignore; the delete-one
jackknife over repetitions (:func:`montecarlo.claims._tests.jackknife`)
carries that dependence, the least-squares error scaled by
``max(1, chi2/dof)`` the model's lack of fit; the larger of the two is used,
with Student's t on ``min(R - 1, fit dof)`` degrees of freedom
(:func:`montecarlo.claims._tests.coefficient_test`).

Why the tests are one-sided, and in which direction. The bound is an upper
bound on the tail, ``P(eta) <= N^2 exp(-c k(x) eta^2)``, for *some* constant
``c > 0``. A decay exponent measured *larger* than the theorem's (a lighter
tail) is what an upper bound allows. One measured significantly *smaller*
contradicts it for every constant, under the fitted power law, along an axis
``x`` on which the whole bound tends to 0 at a fixed ``eta`` inside the
statistic's support: if ``log P`` falls like ``x^q`` with ``q`` below the
theorem's slope of ``log k_th`` in ``log x``, the ratio of the measured decay
to the bound's ``c k_th(x) eta^2`` tends to 0 as ``x`` grows, and the bound
falls below ``P`` at a large enough ``x``, whatever ``c`` (widths and ``d``
are at least 1: only ``x -> inf`` extrapolates). The theorem's slope is the
secant of ``log k_th`` over the sweep's range
(:class:`montecarlo._tail_rates.Exponent`): between 1 and 2 for the width of
Theorem 4.1 part 2 (``l d + l^2 beta``), 1 for ``d`` in Theorems 5.1 and
6.1. So each such exponent gets one *contradicting* test, ``H0: q >= q_th``
against ``q < q_th`` (rejected: violated), and the default ``consistent``
when it is not rejected with ``R >=`` :data:`MIN_REPETITIONS`.

Which rows are inequality claims (:func:`can_contradict`): the exponents of the
:func:`contradicting_axes` (Theorem 4.1: the width; Theorems 5.1, 6.1 and
Corollary 5.1: ``d``) and the theorem-form ``c`` of a sweep over one; every
other rate is an observation, with the same test as evidence, because it
cannot contradict the statement for every constant:

- ``eta``. Under Theorems 5.1, 6.1 and Corollary 5.1 (``||W_p|| <= 1`` or
  orthogonal layers, ``||x_i|| <= 1``) the Gram matrix is bounded, so the
  confusion is at most some ``eta_max`` and ``c = 2 log N / (k eta_max^2)``
  makes the bound at least 1 wherever ``P > 0``: a tail exponent below 2 at
  one configuration only says the constant is small. Theorem 4.1 adds
  ``beta exp(-c1 kappa^2 l^2)``, constant in ``eta`` and ``d`` and growing
  with the depth, which for some ``c1 > 0`` absorbs any tail at a fixed
  width; its ``eta``, ``d`` and depth exponents test the ``c`` term alone
  (the ``c1 -> inf`` reading of every ``c*`` in this package).
- The depth, and Theorem 5.1's width: the bound does not tend to 0 along
  them (``k`` falls with the depth), so a heavier tail only lowers ``c``.
- ``N``: ``b > 2`` (a tail growing faster than the ``N^2`` prefactor) only
  lowers the largest admissible ``c`` by the factor ``2/b``: at the largest
  ``N`` where ``P`` is still below 1 at a given ``eta`` the bound is
  non-vacuous only for ``c > 2 k / (b k_th)``, and a constant below that
  survives every ``N``. And with data and weights drawn independently of
  ``N`` the union bound gives ``P <= C(N, 2) p_pair(eta)`` with a pair law
  free of ``N``, so ``b <= 2`` in the rare regime whatever the theorem says:
  the test of ``b > 2`` flags a pre-asymptotic grid or the estimator.
- Theorem 4.1 part 1's ``eta``: ``(eta - 4)^2`` is not a power of ``eta``;
  reported without a test.

The theorem-form rate ``c``: the bound needs ``log P - L <= -c K`` with
``c > 0``. Over a sweep along a contradicting axis (``K -> inf`` there), a
fitted slope ``c <= 0`` (the tail not falling with ``K`` at all) contradicts
it for every positive constant under the fitted line; ``c > 0`` supports it.
Both one-sided tests against 0 are evidence.

``c*`` from the tail (observation, per sweep): the largest ``c`` whose bound
lies above the one-sided ``1 - alpha`` upper limit of every resolved tail
estimate (:func:`montecarlo._tail_rates.tail_points`), beside the plain Monte
Carlo ``c*`` of the same configurations from the sweep's stored trials, both
recomputed at ``1 - alpha``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from bounds import STATEMENTS
from montecarlo._rare import RareEventEstimate
from montecarlo._statements import bound_kwargs
from montecarlo._tail_rates import tail_points
from montecarlo.claims import _tests as t
from montecarlo.claims._claim import Claim, Evidence, Kind

__all__ = [
    "MIN_REPETITIONS",
    "Rate",
    "TailSweep",
    "figure_stem",
    "rates",
    "tail_claims",
    "tail_sweeps",
    "contradicting_axes",
    "can_contradict",
]

SOURCE = "tail"

MIN_REPETITIONS = 10
"""Fewest repetitions per configuration for a decisive verdict (a jackknife
standard error from fewer is too rough for a t-test)."""

_WHY_NOT = {
    True: (
        "the c term alone: for some c1 > 0 Theorem 4.1's beta exp(-c1 kappa^2 "
        "l^2) absorbs any tail at a fixed width"
    ),
    False: (
        "a bounded statistic satisfies the bound for some c > 0 whatever this "
        "rate: only the d exponent, along which the bound tends to 0, can "
        "contradict it"
    ),
}

_WORDS = {
    "eta": "eta",
    "n": "N (the prefactor)",
    "d": "the input dimension d",
    "width": "the width",
    "depth": "the depth",
    "c": "K(eta) (the theorem's form)",
}


def figure_stem(statement: str) -> str:
    """File stem of a statement's tail figure, e.g. ``"tail_rates_4_1_part_2"``.

    Raises:
        ValueError: On a statement not in :data:`bounds.STATEMENTS`.
    """
    if statement not in STATEMENTS:
        raise ValueError(
            f"statement must be one of {list(STATEMENTS)}, got {statement!r}"
        )
    return f"tail_rates_{statement.replace('.', '_').replace(' ', '_')}"


@dataclasses.dataclass(frozen=True)
class TailSweep:
    """One sweep of a stored ``tail`` result.

    Attributes:
        name: ``"group"`` or ``"group (axis=value)"``.
        group: The spec group.
        statement: The statement key.
        axes: The sweep's varying axes among ``n, d, width, depth``.
        labels: Per configuration, its values of ``axes``.
        estimates: Per configuration, the rare-event estimate.
        plain: Per configuration, the plain Monte Carlo counts and ``c*``
            (``None`` when the sweep's trials are not stored).
        analysis: The stored fits (``TailRateAnalysis.to_dict``), or None.
        analysis_error: Why there is none, or None.
        jackknife: Per left-out repetition, the fitted rates by name (None
            where that fit failed), or None.
    """

    name: str
    group: str
    statement: str
    axes: tuple[str, ...]
    labels: tuple[str, ...]
    estimates: tuple[RareEventEstimate, ...]
    plain: tuple[Mapping[str, Any] | None, ...]
    analysis: Mapping[str, Any] | None
    analysis_error: str | None
    jackknife: tuple[Mapping[str, float] | None, ...] | None

    @property
    def repetitions(self) -> int:
        """The fewest repetitions behind a configuration."""
        return min(e.repetitions for e in self.estimates)


def tail_sweeps(result: Mapping[str, Any]) -> list[TailSweep]:
    """The sweeps of ``tail.json``, in order.

    Raises:
        ValueError: If ``result`` is not the experiment's JSON.
    """
    if not isinstance(result, Mapping):
        raise ValueError(f"result must be a dict, got {type(result).__name__}")
    missing = [k for k in ("sweeps", "estimates", "confidence") if k not in result]
    if missing:
        raise ValueError(
            f"result must be the tail experiment's JSON, missing {missing}"
        )
    out = []
    for s in result["sweeps"]:
        entries = [e for e in result["estimates"] if e["sweep"] == s["name"]]
        jack = s["jackknife"]
        out.append(
            TailSweep(
                name=s["name"],
                group=s["group"],
                statement=s["statement"],
                axes=tuple(s["axes"]),
                labels=tuple(e["label"] for e in entries),
                estimates=tuple(
                    RareEventEstimate.from_dict(e["estimate"]) for e in entries
                ),
                plain=tuple(e["plain"] for e in entries),
                analysis=s["analysis"],
                analysis_error=s["analysis_error"],
                jackknife=None if jack is None else tuple(jack),
            )
        )
    return out


@dataclasses.dataclass(frozen=True)
class Rate:
    """A fitted rate of one sweep with its error, interval and tests.

    Attributes:
        name: ``"eta"``, ``"n"``, ``"d"``, ``"width"``, ``"depth"`` (free-form
            exponents) or ``"c"`` (the theorem-form rate).
        value: The fit on every repetition.
        se_jackknife: Jackknife standard error over repetitions (NaN when a
            left-out fit failed).
        se_fit: The fit's own least-squares standard error, scaled by
            ``max(1, chi2 / dof)``.
        se: ``max(se_jackknife, se_fit)``, the error the interval and tests
            use: the jackknife carries the points' dependence through shared
            repetitions, the scaled least-squares error the model's lack of
            fit; the larger is valid for both.
        dof: Degrees of freedom of the t-quantiles: ``min(R - 1, fit dof)``.
        repetitions: ``R``, the left-out fits.
        ci_low, ci_high: ``value -+ t_{dof} se`` at the requested confidence.
        reference: The theorem's exponent (``0`` for ``c``), or None.
        test: One-sided tests of ``value`` against ``reference`` (None
            without a reference or an error).
        failed: Left-out fits that failed.
    """

    name: str
    value: float
    se_jackknife: float
    se_fit: float
    se: float
    dof: int
    repetitions: int
    ci_low: float
    ci_high: float
    reference: float | None
    test: t.CoefficientTest | None
    failed: int


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _fit_errors(analysis: Mapping[str, Any]) -> dict[str, tuple[float, int]]:
    """``{rate: (least-squares se, dof)}`` from the stored fits."""
    free = analysis["free"]
    index = {p: i for i, p in enumerate(free["parameters"])}
    key = {"eta": "p", "n": "b"}
    out = {}
    for e in free["exponents"]:
        i = index[key.get(e["name"], f"q_{e['name']}")]
        out[e["name"]] = (math.sqrt(_nan(free["covariance"][i][i])), int(free["dof"]))
    th = analysis["theorem"]
    q = stats.t.ppf(0.5 + th["confidence"] / 2, th["dof"])
    out["c"] = ((_nan(th["c_ci"][1]) - _nan(th["c_fit"])) / q, int(th["dof"]))
    return out


def rates(sweep: TailSweep, *, confidence: float) -> list[Rate]:
    """The fitted rates of a sweep with their errors and intervals at ``confidence``.

    Empty when the sweep has no analysis.

    Raises:
        ValueError: If ``confidence`` is not in ``(0, 1)``.
    """
    if not (isinstance(confidence, float | int) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    if sweep.analysis is None or sweep.jackknife is None:
        return []
    items = [
        (e["name"], _nan(e["value"]), e["predicted"])
        for e in sweep.analysis["free"]["exponents"]
    ]
    items.append(("c", _nan(sweep.analysis["theorem"]["c_fit"]), 0.0))
    fit = _fit_errors(sweep.analysis)
    out = []
    for name, value, reference in items:
        reps = [None if j is None else j.get(name) for j in sweep.jackknife]
        failed = sum(r is None or not math.isfinite(r) for r in reps)
        se_jk = math.nan
        if not failed and math.isfinite(value):
            se_jk = t.jackknife(value, np.array(reps, dtype=float)).se
        se_fit, dof_fit = fit[name]
        se = max(se_jk, se_fit) if math.isfinite(se_jk) else math.nan
        dof = max(1, min(len(reps) - 1, dof_fit))
        half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * se
        test = None
        if reference is not None and math.isfinite(value):
            test = t.coefficient_test(value, se, dof, float(reference))
        out.append(
            Rate(
                name=name,
                value=value,
                se_jackknife=se_jk,
                se_fit=se_fit,
                se=se,
                dof=dof,
                repetitions=len(reps),
                ci_low=value - half,
                ci_high=value + half,
                reference=None if reference is None else float(reference),
                test=test,
                failed=failed,
            )
        )
    return out


def _fmt(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:.3g}"


def _interval(rate: Rate, pct: str) -> str:
    return (
        f"{_fmt(rate.value)} [{_fmt(rate.ci_low)}, {_fmt(rate.ci_high)}] ({pct} "
        f"interval, t with {rate.dof} dof; se {_fmt(rate.se)}, the larger of the "
        f"jackknife over {rate.repetitions} repetitions, {_fmt(rate.se_jackknife)}, "
        f"and the least-squares fit's, {_fmt(rate.se_fit)})"
    )


def _base(sweep: TailSweep, alpha: float, max_probability: float) -> dict[str, Any]:
    st = STATEMENTS[sweep.statement]
    points = ""
    if sweep.analysis is not None:
        points = f" ({sweep.analysis['free']['points']} points)"
    return dict(
        statement=sweep.statement,
        alpha=alpha,
        n_min=sweep.repetitions,
        min_trials=MIN_REPETITIONS,
        figure=figure_stem(st.key),
        source=SOURCE,
        test=(
            f"subset simulation, {sweep.repetitions} repetitions per configuration "
            f"of group {sweep.name}; free form log P = a + b log N - k eta^p prod "
            f"x^q_x fitted by weighted least squares to the estimates with P <= "
            f"{max_probability:g}{points}; jackknife over repetitions for the "
            "standard errors, one-sided t-tests with R - 1 degrees of freedom"
        ),
    )


def _p(rate: Rate, side: str) -> float:
    """A one-sided p-value of ``rate.test`` (NaN when there is no test)."""
    return math.nan if rate.test is None else getattr(rate.test, side)


def contradicting_axes(statement: str) -> tuple[str, ...]:
    """The axes along which a measured rate can contradict ``statement``.

    Those along which the whole bound tends to 0 at a fixed ``eta`` inside
    the statistic's support (module docstring): the statement's
    :attr:`~bounds.Statement.limit_axes`, except that Theorem 4.1's additive
    ``beta exp(-c1 kappa^2 l^2)`` vanishes along the width only.
    """
    st = STATEMENTS[statement]
    if st.family == "4.1":
        return ("width",)
    return st.limit_axes


def can_contradict(statement: str, rate: str, axes: tuple[str, ...]) -> bool:
    """Whether a ``rate`` measured over ``axes`` can contradict ``statement``.

    An exponent of a :func:`contradicting_axes` axis, and the theorem-form
    rate ``c`` of a sweep over one; never the ``N`` or ``eta`` exponent
    (module docstring).
    """
    along = contradicting_axes(statement)
    if rate == "c":
        return any(a in along for a in axes)
    return rate in along


def _rate_claim(
    sweep: TailSweep, rate: Rate, alpha: float, max_probability: float
) -> Claim:
    """The claim of one fitted rate (see the module docstring for the directions)."""
    st = STATEMENTS[sweep.statement]
    base = _base(sweep, alpha, max_probability)
    measured = _interval(rate, f"{100 * (1 - alpha):g}%")
    where = f"{st.title}; {sweep.name}"
    kind = (
        Kind.INEQUALITY
        if can_contradict(sweep.statement, rate.name, sweep.axes)
        else Kind.OBSERVATION
    )
    note = ""
    if kind is Kind.OBSERVATION and rate.name != "n":
        note = f"; {_WHY_NOT[st.family == '4.1']}"
    no_test = (
        f"{rate.failed} of {rate.repetitions} left-out fits failed (too few resolved "
        "points without one repetition): no jackknife error"
        if rate.failed
        else None
    )
    if rate.reference is None:  # Theorem 4.1 part 1's (eta - 4)^2
        return Claim(
            **base,
            kind=Kind.OBSERVATION,
            claim=f"the tail's exponent of eta ({where})",
            statistic=f"p = {measured}; the bound's (eta - 4)^2 is not a power of eta",
            default_reason="reported, not tested: the bound has no eta exponent",
        )
    ref = _fmt(rate.reference)
    if rate.name == "c":
        th = sweep.analysis["theorem"]
        scale = th["chi2"] / th["dof"] if th["dof"] else math.nan
        return Claim(
            **base,
            kind=kind,
            claim=f"the tail falls with the theorem's K(eta): its rate c > 0 ({where})",
            statistic=(
                f"c = {measured}; the theorem needs c > 0; chi2/dof of the line "
                f"{_fmt(scale)}{note}"
            ),
            evidence=(
                Evidence("the fitted rate c is <= 0", _p(rate, "p_below"), False),
                Evidence("the fitted rate c is > 0", _p(rate, "p_above"), True),
            ),
            default_reason=no_test or "c is not significantly > 0",
        )
    if rate.name == "n":
        return Claim(
            **base,
            kind=kind,
            claim=f"the tail grows with N no faster than the N^2 prefactor ({where})",
            statistic=(
                f"exponent {measured}; the theorem's {ref} (b > 2 would only lower "
                "the largest admissible c by 2/b)"
            ),
            evidence=(
                Evidence(
                    "the N exponent is above 2 (one-sided t)",
                    _p(rate, "p_above"),
                    False,
                ),
            ),
            default="consistent",
            default_reason=no_test
            or f"the N exponent is not significantly above {ref}",
        )
    return Claim(
        **base,
        kind=kind,
        claim=(
            f"the tail decays in {_WORDS[rate.name]} at least as fast as the bound: "
            f"exponent >= {ref} ({where})"
        ),
        statistic=f"exponent {measured}; the theorem's {ref}{note}",
        evidence=(
            Evidence(
                f"the {rate.name} exponent is below the theorem's {ref} (one-sided t)",
                _p(rate, "p_below"),
                False,
            ),
        ),
        default="consistent",
        default_reason=no_test
        or (
            f"the {rate.name} exponent is not significantly below {ref}: the "
            "measured tail decays at least as fast as the bound allows"
        ),
    )


def _c_star_claim(sweep: TailSweep, alpha: float, max_probability: float) -> Claim:
    """``c*`` from the tail beside the plain ``c*``, both at ``1 - alpha``."""
    st = STATEMENTS[sweep.statement]
    conf = 1.0 - alpha
    parts = []
    tails = []
    plains = []
    for label, est, plain in zip(
        sweep.labels, sweep.estimates, sweep.plain, strict=True
    ):
        points = tail_points([est], confidence=conf)
        c = points.constant
        i = int(np.argmin(c))
        tail_c = float(c[i])
        tails.append(tail_c)
        text = f"{label}: tail {_fmt(tail_c)}"
        if math.isfinite(tail_c):
            eta, p = float(points.eta[i]), est.estimate[i]
            text += f" (eta = {_fmt(eta)}, P = {_fmt(p)})"
        if plain is None:
            text += "; plain: no stored trials"
        else:
            res = st.implied_constant(
                np.asarray(plain["eta"]),
                np.asarray(plain["failures"]),
                int(plain["trials"]),
                bound_kwargs(est.config_object()),
                confidence=conf,
            )
            plains.append(res.c_star)
            text += (
                f"; plain {_fmt(res.c_star)} ({plain['trials']} trials, eta = "
                f"{_fmt(res.binding_eta)})"
            )
        parts.append(text)
    c_tail = min(tails)
    stat = f"c* from the tail {_fmt(c_tail)}"
    if plains:
        stat += f", plain Monte Carlo {_fmt(min(plains))}"
    stat += " (smallest over the sweep); per configuration: " + "; ".join(parts)
    usable = math.isfinite(c_tail) and c_tail > 0
    return Claim(
        **_base(sweep, alpha, max_probability),
        kind=Kind.OBSERVATION,
        claim=(
            f"c* from the tail beside the plain Monte Carlo c* ({st.title}; "
            f"{sweep.name})"
        ),
        statistic=stat,
        default="consistent" if usable else "inconclusive",
        default_reason=(
            f"the bound at c <= {_fmt(c_tail)} lies above the one-sided "
            f"{100 * conf:g}% upper limit of every resolved tail estimate"
            if usable
            else "no resolved tail estimate constrains c"
        ),
    )


def tail_claims(result: Mapping[str, Any], *, alpha: float = 0.05) -> list[Claim]:
    """Every claim of a stored ``tail`` experiment (before adjustment).

    Args:
        result: The experiment's JSON dict (``OUT/tail.json``).
        alpha: Level of every test; intervals and ``c*`` at ``1 - alpha``.
            Defaults to 0.05.

    Returns:
        Per sweep: one row per fitted rate (decay exponents and ``c``:
        inequality; the ``N`` exponent, Theorem 4.1 part 1's ``eta``
        exponent: observation), or one inconclusive row when the sweep could
        not be fitted; then the ``c*`` observation.

    Raises:
        ValueError: If ``alpha`` is not in ``(0, 1)`` or ``result`` is not the
            experiment's JSON.
    """
    if not (isinstance(alpha, float | int) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    max_probability = float(result.get("max_probability", 1e-2))
    out: list[Claim] = []
    for sweep in tail_sweeps(result):
        if sweep.analysis is None:
            st = STATEMENTS[sweep.statement]
            out.append(
                Claim(
                    **_base(sweep, alpha, max_probability),
                    kind=Kind.INEQUALITY,
                    claim=(
                        f"the tail decays at least as fast as the bound ({st.title}; "
                        f"{sweep.name})"
                    ),
                    statistic="no fit",
                    default_reason=f"the tail could not be fitted: "
                    f"{sweep.analysis_error}",
                )
            )
        else:
            out += [
                _rate_claim(sweep, r, alpha, max_probability)
                for r in rates(sweep, confidence=1.0 - alpha)
            ]
        out.append(_c_star_claim(sweep, alpha, max_probability))
    return out
