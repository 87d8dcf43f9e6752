"""Tail rates: how ``log P(fail)`` decays with ``eta``, width, depth, ``d`` and ``N``.

Notation (paper symbols in brackets): a *tail point* ``i`` is one
configuration and one ``eta`` with the rare-event estimate ``p_i`` of
``P(statistic < -eta)`` from ``R_i`` repetitions (:mod:`montecarlo._rare`),
``y_i = log p_i`` the centre of its interval on the log scale
(``RareEventEstimate.log_center``) and ``se_i`` its standard error
(``log_se``).
``n`` [N] samples, ``d``, ``width`` [l], ``depth`` [beta].

Every statement's failure bound (``c1 -> inf`` in Theorem 4.1, as in
:mod:`bounds._statements`) has the form

    log P_fail(eta; c) = L(eta) - c K(eta),

``L = 2 log n`` (plus Corollary 5.1's ``8 d zeta_0^2 r / eta`` outside the
small ball) and ``K(eta) = k (eta - eta_0)^2`` with ``k`` the statement's rate
factor: ``(l d + l^2 beta) / (16 zeta_0^4 (beta + 2)^4)`` (Theorem 4.1 part
2), ``d / (16 zeta_0^4 (beta + 2)^4)`` (Theorem 5.1), ``d`` (Theorem 6.1).
``L`` and ``K`` are read off the public bound itself,
``K = log P_fail(eta; 1) - log P_fail(eta; 2)`` and
``L = 2 log P_fail(eta; 1) - log P_fail(eta; 2)``.

Two fits, by weighted least squares (weights ``1 / se_i^2``), on the points
with ``0 < p_i <= max_probability`` (a union bound says nothing near
``P ~ 1``, and the exponential form is a tail statement):

(a) the theorem's form, ``y_i - L_i = a - c K_i``, one ``c`` and one ``a``
    over the whole sweep (a universal constant); the statement says
    ``y_i - L_i <= -c K_i`` at every point, i.e. a line of slope ``-c``
    through the origin above the data. ``c_fit`` is the rate the data decay
    at in the theorem's units, ``chi2 / dof`` how well one line fits them;
(b) a free form,

        y = a + b log n - exp(log k + p log eta + sum_x q_x log x),

    ``x`` over the axes among ``d``, ``width``, ``depth`` that vary in the
    sweep, in this order, each only if it is not a power law of the axes
    before it (Theorem 6.1's width is ``d``); ``b`` only if ``n`` varies.
    Each exponent is reported with its interval next to the theorem's:
    ``p = 2``, ``b = 2``, and for an axis the slope of ``log k`` between the
    sweep's smallest and largest value at the other axes' median (Theorem
    4.1 part 2: between 1, the ``l d`` term, and 2, the ``l^2 beta`` term, for
    the width; 1 for ``d`` in Theorems 5.1 and 6.1). Part 1's
    ``(eta - 4)^2`` is not a power of ``eta``: its ``p`` has no prediction.

Intervals: the parameters' covariance is ``(J^T W J)^{-1}`` scaled by
``max(1, chi2 / dof)`` (so a model the data reject gets wider intervals, not
narrower), and an interval is ``value +- t_{dof} se``.

``c*`` from the tail: at each point ``c(eta) = (L - log U) / K`` with ``U``
the one-sided upper confidence limit ``exp(log_center + t_{R-1} se)`` of the
estimate (its interval's upper end at one-sided level ``confidence``), by
:meth:`bounds.Statement.constant_at` (the building block of
:func:`bounds.implied_constant`), and ``c* = min_i c(eta_i)``: the largest
constant for which the bound lies above the upper limit at every point.
Points with ``p = 0`` (not resolved) constrain nothing and are left out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

from bounds import get_statement
from montecarlo._rare import RareEventEstimate
from montecarlo._statements import bound_kwargs, statement_of

__all__ = [
    "AXES",
    "Exponent",
    "FreeFormFit",
    "TailPoints",
    "TailRateAnalysis",
    "TheoremFormFit",
    "fit_free_form",
    "fit_theorem_form",
    "tail_points",
    "tail_rates",
]

AXES = ("d", "width", "depth")  # the free form's power-law axes (besides eta, n)


def _json(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclasses.dataclass(frozen=True)
class TailPoints:
    """The tail points of a sweep, one per configuration and ``eta``.

    Attributes:
        statement: The statement's registry key, e.g. ``"4.1 part 2"``.
        config_hash: Per point, the configuration.
        n, d, width, depth: Per point, the configuration's axes (``width`` is
            the bound's width, ``config.max_width``).
        eta: Per point.
        log_p: ``log p``, the estimate's ``log_center`` (``-inf`` where the
            estimate is 0).
        se: Its standard error, ``log_se`` (NaN where the estimate is 0).
        log_upper: ``log U``, one-sided upper confidence limit (NaN where
            ``p = 0``).
        rate: ``K(eta)`` of the statement's bound.
        log_prefactor: ``L(eta)``.
        constant: ``c(eta)``, the largest ``c`` with ``P_fail(eta; c) >= U``
            (``inf`` where ``p = 0``).
        confidence: One-sided level of ``U``.
    """

    statement: str
    config_hash: tuple[str, ...]
    n: np.ndarray
    d: np.ndarray
    width: np.ndarray
    depth: np.ndarray
    eta: np.ndarray
    log_p: np.ndarray
    se: np.ndarray
    log_upper: np.ndarray
    rate: np.ndarray
    log_prefactor: np.ndarray
    constant: np.ndarray
    confidence: float

    def usable(self, max_probability: float) -> np.ndarray:
        """Points with ``0 < p <= max_probability``, a positive ``se`` and ``K > 0``."""
        with np.errstate(invalid="ignore"):
            return (
                np.isfinite(self.log_p)
                & (self.log_p <= math.log(max_probability))
                & (self.se > 0)
                & (self.rate > 0)
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; non-finite numbers become ``None``."""
        out: dict[str, Any] = {
            "statement": self.statement,
            "config_hash": list(self.config_hash),
            "confidence": self.confidence,
        }
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                out[f.name] = [_json(x) for x in value.tolist()]
        return out


def tail_points(
    estimates: Sequence[RareEventEstimate], *, confidence: float = 0.95
) -> TailPoints:
    """The tail points of rare-event estimates of one statement's configurations.

    Args:
        estimates: One :class:`RareEventEstimate` per configuration, all of
            configurations testing the same statement; ``eta`` outside the
            statement's domain (``eta <= 4`` in Theorem 4.1 part 1) is dropped.
        confidence: One-sided level of the upper limits ``U``, in ``(0, 1)``.
            Defaults to 0.95.

    Returns:
        TailPoints, in the order of ``estimates`` and of their grids.

    Raises:
        ValueError: If ``estimates`` is empty, a configuration tests no
            statement or not the same one as the others, or ``confidence`` is
            out of range.
    """
    if not estimates:
        raise ValueError("estimates must hold at least one RareEventEstimate")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    statement = None
    rows: dict[str, list] = {k: [] for k in ("hash", "n", "d", "w", "b", "eta")}
    cols: dict[str, list] = {k: [] for k in ("log_p", "se", "log_u", "K", "L", "c")}
    for est in estimates:
        config = est.config_object()
        st = statement_of(config)
        if st is None:
            raise ValueError(
                f"every configuration must test a statement; {config.config_hash} "
                f"has theorem = {config.theorem!r}"
            )
        if statement is not None and st.key != statement.key:
            raise ValueError(
                f"estimates must test one statement, got {statement.key!r} and "
                f"{st.key!r}"
            )
        statement = st
        eta = np.asarray(est.eta)
        inside = st.in_domain(eta)
        eta = eta[inside]
        p = np.asarray(est.estimate)[inside]
        rel = np.asarray(est.log_se)[inside]
        t = stats.t.ppf(confidence, est.repetitions - 1)
        params = bound_kwargs(config)
        f1 = st.failure_bound(eta, 1.0, params).log_failure
        f2 = st.failure_bound(eta, 2.0, params).log_failure
        centre = np.asarray(est.log_center)[inside]
        cols["log_p"].append(np.where(p > 0, centre, -np.inf))
        cols["se"].append(rel)
        log_u = np.where(p > 0, centre + t * rel, np.nan)
        cols["log_u"].append(log_u)
        upper = np.where(p > 0, np.minimum(np.exp(log_u), 1.0), 1.0)
        cols["c"].append(np.where(p > 0, st.constant_at(eta, upper, params), np.inf))
        cols["K"].append(f1 - f2)
        cols["L"].append(2.0 * f1 - f2)
        m = eta.size
        rows["hash"] += [config.config_hash] * m
        rows["n"] += [config.n] * m
        rows["d"] += [config.d] * m
        rows["w"] += [config.max_width] * m
        rows["b"] += [config.depth] * m
        rows["eta"].append(eta)
    return TailPoints(
        statement=statement.key,
        config_hash=tuple(rows["hash"]),
        n=np.array(rows["n"], dtype=float),
        d=np.array(rows["d"], dtype=float),
        width=np.array(rows["w"], dtype=float),
        depth=np.array(rows["b"], dtype=float),
        eta=np.concatenate(rows["eta"]),
        log_p=np.concatenate(cols["log_p"]),
        se=np.concatenate(cols["se"]),
        log_upper=np.concatenate(cols["log_u"]),
        rate=np.concatenate(cols["K"]),
        log_prefactor=np.concatenate(cols["L"]),
        constant=np.concatenate(cols["c"]),
        confidence=float(confidence),
    )


@dataclasses.dataclass(frozen=True)
class Exponent:
    """A measured exponent with its interval, next to the theorem's.

    Attributes:
        name: ``"eta"``, ``"n"``, or an axis of :data:`AXES`.
        value: The fitted exponent.
        ci_low: Lower end of its interval.
        ci_high: Upper end.
        predicted: The theorem's exponent over the sweep (``None`` where the
            theorem's form has none, e.g. ``eta`` in Theorem 4.1 part 1).
    """

    name: str
    value: float
    ci_low: float
    ci_high: float
    predicted: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; non-finite numbers become ``None``."""
        return {
            "name": self.name,
            "value": _json(self.value),
            "ci_low": _json(self.ci_low),
            "ci_high": _json(self.ci_high),
            "predicted": None if self.predicted is None else _json(self.predicted),
        }


@dataclasses.dataclass(frozen=True)
class FreeFormFit:
    """Weighted least squares of ``y = a + b log n - exp(log k + p log eta + ...)``.

    Attributes:
        parameters: Names, in order: ``"a"``, ``"b"`` (if ``n`` varies),
            ``"log_k"``, ``"p"``, then ``"q_<axis>"`` per varying axis.
        values: Fitted values, same order.
        covariance: Their covariance (scaled by ``scale^2``).
        exponents: ``eta`` (``p``), ``n`` (``b``) and each axis (``q``).
        chi2: Weighted residual sum of squares.
        dof: Points minus parameters.
        scale: ``sqrt(max(1, chi2 / dof))``.
        points: Number of points fitted.
        confidence: Two-sided level of the intervals.
    """

    parameters: tuple[str, ...]
    values: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    exponents: tuple[Exponent, ...]
    chi2: float
    dof: int
    scale: float
    points: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; non-finite numbers become ``None``."""
        return {
            "parameters": list(self.parameters),
            "values": [_json(v) for v in self.values],
            "covariance": [[_json(v) for v in row] for row in self.covariance],
            "exponents": [e.to_dict() for e in self.exponents],
            "chi2": _json(self.chi2),
            "dof": self.dof,
            "scale": _json(self.scale),
            "points": self.points,
            "confidence": self.confidence,
        }


@dataclasses.dataclass(frozen=True)
class TheoremFormFit:
    """The sweep against the theorem's form ``log p - L = a - c K``, and ``c*``.

    Attributes:
        statement: The statement's registry key.
        c_fit: The fitted rate ``c`` (slope of ``-(log p - L)`` in ``K``).
        c_ci: Its interval ``(low, high)``.
        intercept: ``a`` (the theorem allows ``a <= 0``).
        intercept_ci: Its interval.
        chi2: Weighted residual sum of squares of the line.
        dof: Points minus 2.
        scale: ``sqrt(max(1, chi2 / dof))``.
        points: Number of points fitted.
        c_star: ``min_i (L_i - log U_i) / K_i`` over every resolved point
            (``inf`` when none constrains).
        binding: ``(config_hash, eta)`` of the minimum (``None`` if none).
        c_star_per_config: ``c*`` of each configuration.
        confidence: Level of the intervals (two-sided) and of ``U`` (one-sided).
    """

    statement: str
    c_fit: float
    c_ci: tuple[float, float]
    intercept: float
    intercept_ci: tuple[float, float]
    chi2: float
    dof: int
    scale: float
    points: int
    c_star: float
    binding: tuple[str, float] | None
    c_star_per_config: Mapping[str, float]
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; non-finite numbers become ``None``."""
        return {
            "statement": self.statement,
            "c_fit": _json(self.c_fit),
            "c_ci": [_json(x) for x in self.c_ci],
            "intercept": _json(self.intercept),
            "intercept_ci": [_json(x) for x in self.intercept_ci],
            "chi2": _json(self.chi2),
            "dof": self.dof,
            "scale": _json(self.scale),
            "points": self.points,
            "c_star": _json(self.c_star),
            "binding": None if self.binding is None else list(self.binding),
            "c_star_per_config": {
                k: _json(v) for k, v in self.c_star_per_config.items()
            },
            "confidence": self.confidence,
        }


def _wls_covariance(
    J: np.ndarray, r: np.ndarray, confidence: float
) -> tuple[np.ndarray, float, int, float, float]:
    """``(covariance, chi2, dof, scale, t)`` of a weighted fit's Jacobian/residuals."""
    dof = J.shape[0] - J.shape[1]
    chi2 = float(r @ r)
    scale = math.sqrt(max(1.0, chi2 / dof)) if dof > 0 else math.nan
    cov = np.linalg.pinv(J.T @ J) * scale**2
    t = float(stats.t.ppf(0.5 + confidence / 2, dof)) if dof > 0 else math.nan
    return cov, chi2, dof, scale, t


def _check_fit_args(points: TailPoints, max_probability: float, confidence: float):
    if not 0 < max_probability <= 1:
        raise ValueError(f"max_probability must be in (0, 1], got {max_probability!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return points.usable(max_probability)


def fit_theorem_form(
    points: TailPoints, *, max_probability: float = 1e-2, confidence: float = 0.95
) -> TheoremFormFit:
    """Fit ``log p - L = a - c K`` over the sweep and compute ``c*`` from the tail.

    Args:
        points: From :func:`tail_points`.
        max_probability: Fit points with ``p <= max_probability``, in
            ``(0, 1]``. Defaults to 1e-2. (``c*`` uses every resolved point.)
        confidence: Two-sided level of the intervals. Defaults to 0.95.

    Returns:
        TheoremFormFit.

    Raises:
        ValueError: If fewer than 3 points are usable or an argument is out
            of range.
    """
    use = _check_fit_args(points, max_probability, confidence)
    if use.sum() < 3:
        raise ValueError(
            f"the theorem-form fit needs at least 3 points with 0 < p <= "
            f"{max_probability:g}, got {int(use.sum())}"
        )
    w = 1.0 / points.se[use]
    y = (points.log_p[use] - points.log_prefactor[use]) * w
    J = np.column_stack([w, -points.rate[use] * w])  # columns: a, c
    beta, *_ = np.linalg.lstsq(J, y, rcond=None)
    cov, chi2, dof, scale, t = _wls_covariance(J, y - J @ beta, confidence)
    se = np.sqrt(np.diag(cov))

    c_eta = points.constant
    hashes = np.array(points.config_hash)
    per_config = {h: float(c_eta[hashes == h].min()) for h in dict.fromkeys(hashes)}
    if np.isfinite(c_eta).any():
        i = int(np.argmin(c_eta))
        c_star, binding = float(c_eta[i]), (hashes[i], float(points.eta[i]))
    else:
        c_star, binding = math.inf, None
    return TheoremFormFit(
        statement=points.statement,
        c_fit=float(beta[1]),
        c_ci=(float(beta[1] - t * se[1]), float(beta[1] + t * se[1])),
        intercept=float(beta[0]),
        intercept_ci=(float(beta[0] - t * se[0]), float(beta[0] + t * se[0])),
        chi2=chi2,
        dof=dof,
        scale=scale,
        points=int(use.sum()),
        c_star=c_star,
        binding=binding,
        c_star_per_config=per_config,
        confidence=float(confidence),
    )


def _axis_values(points: TailPoints, axis: str) -> np.ndarray:
    return {"n": points.n, "width": points.width, "d": points.d, "depth": points.depth}[
        axis
    ]


def _predicted_slope(points: TailPoints, axis: str, use: np.ndarray) -> float:
    """Slope of ``log k`` in ``log axis`` across the sweep (other axes: median)."""

    st = get_statement(points.statement)
    x = _axis_values(points, axis)[use]
    lo, hi = float(x.min()), float(x.max())
    centre = {a: float(np.median(_axis_values(points, a)[use])) for a in AXES}

    def log_k(value: float) -> float:
        values = {**centre, axis: value, "n": 2.0, "kappa": 1.0, "r": 0.0}
        params = {}
        for p in st.params:
            v = values[p]
            params[p] = int(round(v)) if p in ("n", "d", "width", "depth") else v
        return st.log_rate_factor(params)

    return (log_k(hi) - log_k(lo)) / (math.log(hi) - math.log(lo))


def fit_free_form(
    points: TailPoints, *, max_probability: float = 1e-2, confidence: float = 0.95
) -> FreeFormFit:
    """Fit ``log p = a + b log n - exp(log k + p log eta + sum_x q_x log x)``.

    Weighted nonlinear least squares (``scipy.optimize.least_squares``),
    started from the theorem-like point ``p = 2``, ``q = 0``, ``b = 2`` with
    ``a`` and ``k`` from the linear fit there. ``b`` is fitted only if ``n``
    varies, ``q_x`` only for axes that vary.

    Args:
        points: From :func:`tail_points`.
        max_probability: Fit points with ``p <= max_probability``, in
            ``(0, 1]``. Defaults to 1e-2.
        confidence: Two-sided level of the intervals. Defaults to 0.95.

    Returns:
        FreeFormFit with the exponents next to the theorem's.

    Raises:
        ValueError: If there are fewer usable points than parameters plus one,
            or an argument is out of range.
    """
    use = _check_fit_args(points, max_probability, confidence)
    fit_n = np.unique(points.n[use]).size > 1
    axes: list[str] = []
    for a in AXES:  # varying, and not a power law of n and the axes taken
        taken = (["n"] if fit_n else []) + [*axes, a]
        cols = [np.ones(int(use.sum()))]
        cols += [np.log(_axis_values(points, x)[use]) for x in taken]
        if np.linalg.matrix_rank(np.column_stack(cols)) == len(cols):
            axes.append(a)
    names = ["a", *(["b"] if fit_n else []), "log_k", "p", *(f"q_{a}" for a in axes)]
    if use.sum() < len(names) + 1:
        raise ValueError(
            f"the free-form fit of {names} needs at least {len(names) + 1} points "
            f"with 0 < p <= {max_probability:g}, got {int(use.sum())}"
        )
    y = points.log_p[use]
    w = 1.0 / points.se[use]
    log_n = np.log(points.n[use])
    log_eta = np.log(points.eta[use])
    log_x = [np.log(_axis_values(points, a)[use]) for a in axes]

    def unpack(theta):
        a, rest = theta[0], list(theta[1:])
        b = rest.pop(0) if fit_n else 0.0
        log_k, p, *q = rest
        return a, b, log_k, p, q

    def model(theta):
        a, b, log_k, p, q = unpack(theta)
        expo = (
            log_k + p * log_eta + sum(qi * lx for qi, lx in zip(q, log_x, strict=True))
        )
        return a + b * log_n - np.exp(expo)

    def residual(theta):
        return (y - model(theta)) * w

    # start: p = 2, q = 0, b = 2: y - 2 log n = a - k eta^2 is linear in (a, k)
    b0 = 2.0 if fit_n else 0.0
    A = np.column_stack([w, -(points.eta[use] ** 2) * w])
    (a0, k0), *_ = np.linalg.lstsq(A, (y - b0 * log_n) * w, rcond=None)
    theta0 = [a0, *([b0] if fit_n else []), math.log(max(k0, 1e-12)), 2.0]
    theta0 += [0.0] * len(axes)
    sol = optimize.least_squares(residual, np.array(theta0), method="lm")
    cov, chi2, dof, scale, t = _wls_covariance(sol.jac, sol.fun, confidence)
    se = np.sqrt(np.diag(cov))
    index = {name: i for i, name in enumerate(names)}

    def exponent(name: str, key: str, predicted: float | None) -> Exponent:
        i = index[key]
        v = float(sol.x[i])
        h = float(t * se[i])
        return Exponent(name, v, v - h, v + h, predicted)

    eta_power = None if points.statement == "4.1 part 1" else 2.0
    exps = [exponent("eta", "p", eta_power)]
    if fit_n:
        exps.append(exponent("n", "b", 2.0))
    exps += [exponent(a, f"q_{a}", _predicted_slope(points, a, use)) for a in axes]
    return FreeFormFit(
        parameters=tuple(names),
        values=tuple(float(v) for v in sol.x),
        covariance=tuple(tuple(float(v) for v in row) for row in cov),
        exponents=tuple(exps),
        chi2=chi2,
        dof=dof,
        scale=scale,
        points=int(use.sum()),
        confidence=float(confidence),
    )


@dataclasses.dataclass(frozen=True)
class TailRateAnalysis:
    """Both fits and ``c*`` of one statement's sweep.

    Attributes:
        points: The tail points.
        theorem: The theorem-form fit and ``c*`` from the tail.
        free: The free-form fit.
        max_probability: The fits' cut on ``p``.
    """

    points: TailPoints
    theorem: TheoremFormFit
    free: FreeFormFit
    max_probability: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; non-finite numbers become ``None``."""
        return {
            "points": self.points.to_dict(),
            "theorem": self.theorem.to_dict(),
            "free": self.free.to_dict(),
            "max_probability": self.max_probability,
        }


def tail_rates(
    estimates: Sequence[RareEventEstimate],
    *,
    max_probability: float = 1e-2,
    confidence: float = 0.95,
) -> TailRateAnalysis:
    """Tail points, theorem-form fit, ``c*`` and free-form fit of a sweep.

    Args:
        estimates: Rare-event estimates of configurations testing one
            statement (e.g. a width sweep of Theorem 4.1 part 2).
        max_probability: The fits use points with ``p <= max_probability``.
            Defaults to 1e-2.
        confidence: Level of the intervals (two-sided) and of the upper limits
            behind ``c*`` (one-sided). Defaults to 0.95.

    Returns:
        TailRateAnalysis.

    Raises:
        ValueError: As :func:`tail_points`, :func:`fit_theorem_form` and
            :func:`fit_free_form`.
    """
    points = tail_points(estimates, confidence=confidence)
    return TailRateAnalysis(
        points=points,
        theorem=fit_theorem_form(
            points, max_probability=max_probability, confidence=confidence
        ),
        free=fit_free_form(
            points, max_probability=max_probability, confidence=confidence
        ),
        max_probability=float(max_probability),
    )
