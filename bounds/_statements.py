"""The registry of the paper's probability statements: one entry per statement.

Every other part of the package (the implied constant, the Monte Carlo
estimates, the command-line tables, the claims and the report) reads the
statement a configuration tests from :data:`STATEMENTS`; nothing else maps a
theorem to its bound, its title or its hypothesis class.

Notation as in :mod:`bounds._probability`: ``n`` [N] samples, ``d`` input
dimension, ``width`` [l], ``depth`` [beta], ``kappa``, ``r`` the ball radius,
``zeta_0 = 2 sqrt(beta)``. Each bound has the failure form

    P_fail(eta; c) = A + n^2 exp(-c K(eta) + B(eta)),   K(eta) = k (eta - eta_0)^2,

with ``eta_0 = 4`` for Theorem 4.1 part 1 and ``0`` otherwise, ``A`` the
``c``-free floor (``beta exp(-c1 kappa^2 l^2)`` in Theorem 4.1, dropped here:
``c1 -> inf``, which gives the smallest ``c*`` over every ``c1``) and ``k``
the *rate factor* of the configuration (:meth:`Statement.log_rate_factor`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

from bounds._implied import ImpliedConstant, clopper_pearson, implied_constant
from bounds._probability import (
    STATEMENTS as _FAMILIES,
)
from bounds._probability import (
    ProbabilityBound,
    corollary_5_1,
    theorem_4_1,
    theorem_5_1,
    theorem_6_1,
)
from bounds._stable import log_sub_exp

__all__ = ["STATEMENTS", "Statement", "get_statement", "informative_length"]


def informative_length(failures: np.ndarray) -> np.ndarray:
    """How much of an increasing ``eta`` grid informs ``c*``, per row of counts.

    The grid up to and including its first point at which no trial fails:
    beyond it the failure count stays 0, the upper limit ``U`` stays at its
    zero-failure value while the bound's exponent grows like ``eta^2``, so
    every further point would lower ``c*`` by the grid's reach alone, not by
    anything the data show.

    Args:
        failures: Failure counts on the grid, shape ``(g,)`` or ``(b, g)``.

    Returns:
        The number of informative points (``1 .. g``), shape ``()`` or ``(b,)``.
    """
    k = np.asarray(failures)
    g = k.shape[-1]
    if g == 0:
        return np.zeros(k.shape[:-1], dtype=np.int64)
    zero = k == 0
    return np.where(zero.any(axis=-1), zero.argmax(axis=-1) + 1, g)


@dataclasses.dataclass(frozen=True)
class Statement:
    """One probability statement of the paper and how to evaluate its bound.

    Attributes:
        key: Registry key, e.g. ``"4.1 part 2"``.
        family: Key of the bound function for :func:`bounds.implied_constant`
            (``"4.1"``, ``"5.1"``, ``"corollary_5.1"``, ``"6.1"``).
        title: Short name, e.g. ``"Theorem 4.1 part 2"``.
        setting: The setting in a few words (weights and data).
        hypothesis: The hypothesis class the statement quantifies over.
        uniform_over: What the statement holds *for every* element of
            (``"weights"``, ``"ball"``, ``"data"``), or ``None`` when it is a
            statement about random weights and random data only. A random draw
            cannot contradict a uniform statement; a worst-case search can.
        bound: The public bound function (``theorem_4_1``, ...).
        fixed: Keyword arguments of ``bound`` fixed by the statement
            (``part`` and ``c1=None`` for Theorem 4.1).
        params: The keyword arguments a configuration supplies.
        eta_min: The bound is stated for ``eta > eta_min``.
        limit_axes: Axes along which ``K(eta) -> inf``, i.e. along which the
            bound tends to 1 at every fixed ``eta`` in its domain.
        prose: The paper's qualitative statements about this setting, as
            ``(axis, sign, words)``: ``sign = +1`` means confusion rises with
            the axis, ``0`` that it does not depend on it.
    """

    key: str
    family: str
    title: str
    setting: str
    hypothesis: str
    uniform_over: str | None
    bound: Callable[..., ProbabilityBound]
    fixed: Mapping[str, object]
    params: tuple[str, ...]
    eta_min: float
    limit_axes: tuple[str, ...]
    prose: tuple[tuple[str, int, str], ...]

    @property
    def full_title(self) -> str:
        """``"Theorem 4.1 part 2 (Gaussian init, sphere data)"``."""
        return f"{self.title} ({self.setting})"

    def _kwargs(self, params: Mapping[str, object]) -> dict[str, object]:
        unknown = sorted(set(params) - set(self.params))
        missing = [p for p in self.params if p not in params]
        if unknown or missing:
            raise ValueError(
                f"{self.title} takes the parameters {list(self.params)}; missing "
                f"{missing or 'none'}, unknown {unknown or 'none'}"
            )
        return {**{p: params[p] for p in self.params}, **self.fixed}

    def in_domain(self, eta: np.ndarray) -> np.ndarray:
        """Where the bound is stated: ``eta > eta_min``."""
        return np.asarray(eta, dtype=float) > self.eta_min

    def failure_bound(
        self, eta: np.ndarray, c: float, params: Mapping[str, object]
    ) -> ProbabilityBound:
        """The bound at constant ``c`` for a configuration's ``params``.

        Raises:
            ValueError: On missing or unknown parameters, ``c <= 0`` or ``eta``
                outside the domain.
        """
        return self.bound(eta, c=c, **self._kwargs(params))

    def implied_constant(
        self,
        eta: np.ndarray,
        failures: np.ndarray,
        trials: int,
        params: Mapping[str, object],
        *,
        confidence: float = 0.95,
    ) -> ImpliedConstant:
        """:func:`bounds.implied_constant` of this statement (one-sided limits)."""
        return implied_constant(
            self.family,
            eta,
            failures,
            trials,
            confidence=confidence,
            **self._kwargs(params),
        )

    def log_rate_factor(self, params: Mapping[str, object]) -> float:
        """``log k`` of the exponent ``K(eta) = k (eta - eta_min)^2``.

        E.g. ``k = (l d + l^2 beta) / (16 zeta_0^4 (beta + 2)^4)`` for Theorem
        4.1 part 2 and ``k = d`` for Theorem 6.1 (THEORY.md sections 4-6).
        """
        terms = self._terms(np.array([self.eta_min + 1.0]), params)
        return float(terms.log_rate[0])

    def _terms(self, eta: np.ndarray, params: Mapping[str, object]):
        return _FAMILIES[self.family].terms(eta, **self._kwargs(params))

    def constant_at(
        self, eta: np.ndarray, failure: np.ndarray, params: Mapping[str, object]
    ) -> np.ndarray:
        """The constant at which the bound's failure probability equals ``failure``.

        ``c(eta, q) = (2 log n + B(eta) - log(q - A)) / K(eta)`` (elementwise),
        the largest ``c`` with ``P_fail(eta; c) >= q``: if ``q`` is the true
        failure probability at ``eta``, every constant the theorem may take
        satisfies ``c <= c(eta, q)``. ``inf`` where ``q <= A``, ``eta`` is
        outside the domain or ``K(eta) = 0``.

        Args:
            eta: Confusion levels (any shape; values outside the domain allowed).
            failure: Failure probabilities in ``(0, 1]``, broadcast with ``eta``.
            params: The configuration's bound parameters.
        """
        eta, q = np.broadcast_arrays(
            np.asarray(eta, dtype=float), np.asarray(failure, dtype=float)
        )
        if ((q <= 0) | (q > 1) | np.isnan(q)).any():
            raise ValueError("failure must be in (0, 1]")
        inside = self.in_domain(eta)
        terms = self._terms(np.where(inside, eta, self.eta_min + 1.0), params)
        log_q = np.log(q)
        constrains = inside & (log_q > terms.log_floor) & np.isfinite(terms.log_rate)
        log_excess = log_sub_exp(log_q, np.minimum(terms.log_floor, log_q))
        numerator = np.maximum(terms.log_prefactor - log_excess, 0.0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            c = np.exp(np.log(numerator) - terms.log_rate)
        return np.where(constrains, c, np.inf)

    def c_star(
        self,
        eta: np.ndarray,
        failures: np.ndarray,
        trials: np.ndarray,
        params: Mapping[str, object],
        *,
        confidence: float = 0.95,
    ) -> np.ndarray:
        """``c*`` of many failure-count vectors at once (e.g. bootstrap replicates).

        The same quantity as :meth:`implied_constant` (one-sided
        Clopper-Pearson upper limits ``U``, ``c(eta) = (2 log n + B - log(U -
        A)) / K``, ``c* = min_eta c(eta)``), vectorized over the leading axis,
        and restricted, row by row, to the *informative* grid: up to and
        including the first ``eta`` at which no trial fails (beyond it ``U``
        stays at its zero-failure value while ``K`` grows like ``eta^2``, so
        further points would lower ``c*`` by the grid's reach alone).

        Args:
            eta: Grid in the domain, shape ``(g,)``, increasing.
            failures: Failure counts, shape ``(b, g)``.
            trials: Trials per row, shape ``(b,)``.
            params: The configuration's bound parameters.
            confidence: One-sided level of ``U``. Defaults to ``0.95``.

        Returns:
            ``c*`` per row, shape ``(b,)`` (``inf`` where no ``eta`` constrains).
        """
        eta = np.asarray(eta, dtype=float)
        k = np.asarray(failures, dtype=np.int64)
        t = np.asarray(trials, dtype=np.int64)
        if k.ndim != 2 or k.shape[1] != eta.size or t.shape != (k.shape[0],):
            raise ValueError(
                f"failures must have shape (b, {eta.size}) and trials (b,), got "
                f"{k.shape} and {t.shape}"
            )
        terms = self._terms(eta, params)
        _, upper = clopper_pearson(k, t[:, None], confidence, sided="upper")
        log_u = np.log(upper)
        constrains = (log_u > terms.log_floor) & np.isfinite(terms.log_rate)
        informative = np.arange(eta.size)[None, :] < informative_length(k)[:, None]
        log_excess = log_sub_exp(log_u, np.minimum(terms.log_floor, log_u))
        numerator = np.maximum(terms.log_prefactor - log_excess, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            c_eta = np.exp(np.log(numerator) - terms.log_rate)
        c_eta = np.where(constrains & informative, c_eta, np.inf)
        return c_eta.min(axis=1)


_PROSE_41 = (
    ("width", -1, "wider networks have lower gradient confusion"),
    ("depth", +1, "deeper networks have higher gradient confusion"),
)

STATEMENTS: Mapping[str, Statement] = MappingProxyType(
    {
        "4.1 part 2": Statement(
            key="4.1 part 2",
            family="4.1",
            title="Theorem 4.1 part 2",
            setting="Gaussian init, sphere data",
            hypothesis="weights by Strategy 4.1, data i.i.d. uniform on S^{d-1}",
            uniform_over=None,
            bound=theorem_4_1,
            fixed=MappingProxyType({"part": 2, "c1": None}),
            params=("n", "d", "width", "depth", "kappa"),
            eta_min=0.0,
            limit_axes=("width", "d"),
            prose=_PROSE_41,
        ),
        "4.1 part 1": Statement(
            key="4.1 part 1",
            family="4.1",
            title="Theorem 4.1 part 1",
            setting="Gaussian init, one fixed dataset",
            hypothesis=(
                "weights by Strategy 4.1, for a fixed but arbitrary dataset with "
                "||x_i|| <= 1"
            ),
            uniform_over="data",
            bound=theorem_4_1,
            fixed=MappingProxyType({"part": 1, "c1": None}),
            params=("n", "d", "width", "depth", "kappa"),
            eta_min=4.0,
            limit_axes=("width",),
            prose=_PROSE_41,
        ),
        "5.1": Statement(
            key="5.1",
            family="5.1",
            title="Theorem 5.1",
            setting="small weights, Assumption 1",
            hypothesis=(
                "any weights with every ||W_p||_2 <= 1 (Assumption 1), data i.i.d. "
                "uniform on S^{d-1}"
            ),
            uniform_over="weights",
            bound=theorem_5_1,
            fixed=MappingProxyType({}),
            params=("n", "d", "depth"),
            eta_min=0.0,
            limit_axes=("d",),
            prose=(
                ("depth", +1, "deeper networks have higher gradient confusion"),
                ("width", 0, "gradient confusion does not depend on the width"),
            ),
        ),
        "corollary_5.1": Statement(
            key="corollary_5.1",
            family="corollary_5.1",
            title="Corollary 5.1",
            setting="every point of the ball B_r around small weights",
            hypothesis=(
                "every W' in the ball B_r around weights W with every ||W_p||_2 <= 1, "
                "data i.i.d. uniform on S^{d-1}"
            ),
            uniform_over="ball",
            bound=corollary_5_1,
            fixed=MappingProxyType({}),
            params=("n", "d", "depth", "r"),
            eta_min=0.0,
            limit_axes=("d",),
            prose=(("depth", +1, "deeper networks have higher gradient confusion"),),
        ),
        "6.1": Statement(
            key="6.1",
            family="6.1",
            title="Theorem 6.1",
            setting="orthogonal linear network",
            hypothesis=(
                "arbitrary orthogonal layers, linear network with gamma = "
                "1/sqrt(2 beta), square loss, data i.i.d. uniform on S^{d-1}"
            ),
            uniform_over="weights",
            bound=theorem_6_1,
            fixed=MappingProxyType({}),
            params=("n", "d"),
            eta_min=0.0,
            limit_axes=("d",),
            prose=(("depth", 0, "gradient confusion is independent of depth"),),
        ),
    }
)
"""Every probability statement, in report order."""


def get_statement(key: str) -> Statement:
    """The :class:`Statement` of ``key`` (one of :data:`STATEMENTS`).

    Raises:
        ValueError: On an unknown key (the message lists the keys).
    """
    if key not in STATEMENTS:
        raise ValueError(f"statement must be one of {list(STATEMENTS)}, got {key!r}")
    return STATEMENTS[key]
