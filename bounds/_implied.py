"""Clopper-Pearson limits and the largest constant ``c*`` a Monte Carlo run allows.

Notation: for one configuration, ``k(eta)`` of ``T`` independent trials
failed (the confusion exceeded ``eta``) on a grid of ``eta``. ``U(eta)`` is
the Clopper-Pearson upper confidence limit of the failure probability. Each
bound of :mod:`bounds._probability` has the failure form

    P_fail(eta; c) = A + n^2 exp(-c K(eta) + B(eta)),   K > 0, B >= 0,

strictly decreasing in ``c``. The theorem is consistent with the data at
``eta`` iff ``P_fail(eta; c) >= U(eta)``, i.e. iff

    c <= c(eta) = (2 log n + B(eta) - log(U(eta) - A)) / K(eta)   (U > A),

and for every ``c`` when ``U(eta) <= A``. Hence ``c* = min_eta c(eta)``.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from scipy import stats

from bounds import _validate as v
from bounds._probability import BOUND_FUNCTIONS, STATEMENTS, ProbabilityBound
from bounds._stable import log_sub_exp

_SIDES = ("two", "upper", "lower")
_PUBLIC: dict[str, Callable[..., ProbabilityBound]] = {
    key: func for func, key in BOUND_FUNCTIONS.items()
}


def clopper_pearson(
    k: int | np.ndarray,
    n: int | np.ndarray,
    confidence: float = 0.95,
    *,
    sided: str = "two",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) confidence limits of a binomial proportion.

    With ``a = 1 - confidence`` and ``Beta(p, q)`` quantiles:

    - ``sided="two"``: ``lower = Beta(k, n-k+1).ppf(a/2)`` (``0`` if ``k = 0``),
      ``upper = Beta(k+1, n-k).ppf(1-a/2)`` (``1`` if ``k = n``); the same
      interval as ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``.
    - ``sided="upper"``: one-sided upper limit, ``lower = 0``,
      ``upper = Beta(k+1, n-k).ppf(confidence)`` (``1`` if ``k = n``).
    - ``sided="lower"``: one-sided lower limit, ``upper = 1``,
      ``lower = Beta(k, n-k+1).ppf(1 - confidence)`` (``0`` if ``k = 0``).

    Args:
        k: Number of successes (here: failures of the confusion bound),
            integer(s) ``0 <= k <= n``; broadcasts with ``n``.
        n: Number of trials, integer(s) ``>= 1``.
        confidence: Confidence level in ``(0, 1)``. Defaults to ``0.95``.
        sided: ``"two"``, ``"upper"`` or ``"lower"``. Defaults to ``"two"``.

    Returns:
        ``(lower, upper)``, float64 arrays of the broadcast shape of ``k`` and ``n``.

    Raises:
        ValueError: If ``k`` or ``n`` are not integers in range, if they do not
            broadcast, or if ``confidence`` or ``sided`` is invalid.
    """
    k = v.integer_array("k", k, minimum=0)
    n = v.integer_array("n", n, minimum=1)
    confidence = v.real(
        "confidence", confidence, lower=0.0, lower_open=True, upper=1.0, upper_open=True
    )
    sided = v.choice("sided", sided, _SIDES)
    try:
        k, n = np.broadcast_arrays(k, n)
    except ValueError:
        raise ValueError(
            f"k and n must broadcast to one shape, got shapes {k.shape} and {n.shape}"
        ) from None
    if (k > n).any():
        bad = np.flatnonzero((k > n).ravel())[0]
        raise ValueError(
            f"k must satisfy 0 <= k <= n, got k={k.flat[bad]} with n={n.flat[bad]}"
        )
    a = 1.0 - confidence
    levels = {
        "two": (a / 2, 1 - a / 2),
        "upper": (None, confidence),
        "lower": (a, None),
    }
    lo_level, up_level = levels[sided]
    lower = np.zeros(k.shape)
    upper = np.ones(k.shape)
    if lo_level is not None:
        some = k > 0
        lower = np.where(
            some, stats.beta.ppf(lo_level, np.where(some, k, 1), n - k + 1), 0.0
        )
    if up_level is not None:
        some = k < n
        upper = np.where(
            some, stats.beta.ppf(up_level, k + 1, np.where(some, n - k, 1)), 1.0
        )
    return lower, upper


@dataclass(frozen=True, eq=False)
class ImpliedConstant:
    """The largest constant ``c*`` consistent with Monte Carlo failure counts.

    Attributes:
        theorem: ``"4.1"``, ``"5.1"``, ``"corollary_5.1"`` or ``"6.1"``.
        c_star: ``min_eta c(eta)``; ``+inf`` when no ``eta`` constrains ``c``;
            ``0.0`` when some ``eta`` is inconsistent with every ``c > 0``.
        binding_eta: The ``eta`` attaining the minimum (the first one on
            ties); ``nan`` when ``c_star`` is ``+inf``.
        binding_index: Index of ``binding_eta`` in ``eta``; ``None`` when
            ``c_star`` is ``+inf``.
        eta: The grid, float64, 1-D.
        failures: Failure counts ``k(eta)``, int64, same shape.
        trials: Trial counts ``T(eta)``, int64, same shape.
        upper: Clopper-Pearson upper limits ``U(eta)`` of the failure probability.
        c_per_eta: ``c(eta)``, the largest ``c`` allowed at each ``eta``
            (``+inf`` where that ``eta`` does not constrain ``c``).
        constrains: ``U(eta) > A``: whether ``eta`` constrains ``c`` at all.
        confidence: Confidence level of the limits.
        sided: ``"upper"`` (one-sided) or ``"two"`` (upper end of the
            two-sided interval).
        c1_dropped: Theorem 4.1 only: ``True`` if the ``c1`` term was dropped.
        params: The theorem's other keyword arguments, as given.
        notes: Plain-language statements about this result (dropped terms,
            unconstrained grid, inconsistent ``eta``).
    """

    theorem: str
    c_star: float
    binding_eta: float
    binding_index: int | None
    eta: np.ndarray
    failures: np.ndarray
    trials: np.ndarray
    upper: np.ndarray
    c_per_eta: np.ndarray
    constrains: np.ndarray
    confidence: float
    sided: str
    c1_dropped: bool
    params: Mapping[str, object]
    notes: tuple[str, ...]

    def bound(self, c: float | None = None) -> ProbabilityBound:
        """The theorem's bound on this result's ``eta`` grid.

        Args:
            c: The constant; ``None`` means ``c_star``. Defaults to ``None``.

        Returns:
            ProbabilityBound from the public bound function, evaluated with
            ``params``.

        Raises:
            ValueError: If the constant is not finite and ``> 0`` (e.g.
                ``c_star`` is ``+inf`` or ``0``).
        """
        value = self.c_star if c is None else c
        return _PUBLIC[self.theorem](self.eta, c=value, **self.params)

    def __str__(self) -> str:
        if self.binding_index is None:
            head = f"c* = inf for Theorem {self.theorem}"
        else:
            head = (
                f"c* = {self.c_star:.6g} for Theorem {self.theorem}, binding at "
                f"eta = {self.binding_eta:.6g} ({self.failures[self.binding_index]}/"
                f"{self.trials[self.binding_index]} failures, "
                f"U = {self.upper[self.binding_index]:.6g})"
            )
        return "\n".join([head, *self.notes])


def implied_constant(
    theorem: str | Callable[..., ProbabilityBound],
    eta: float | np.ndarray,
    failures: int | np.ndarray,
    trials: int | np.ndarray,
    *,
    confidence: float = 0.95,
    sided: str = "upper",
    **params: object,
) -> ImpliedConstant:
    r"""Largest ``c`` for which a probability bound is consistent with Monte Carlo.

    At each ``eta`` the failure probability is replaced by its Clopper-Pearson
    upper limit ``U(eta)`` (never the raw frequency, so ``k = 0`` still gives
    ``U > 0`` and a finite constant; ``k = T`` gives ``U = 1``). The theorem's
    failure bound ``P_fail(eta; c) = A + n^2 exp(-c K(eta) + B(eta))`` is
    strictly decreasing in ``c``, so

    .. math::

        c(\eta) = \frac{2\log n + B(\eta) - \log(U(\eta) - A)}{K(\eta)}
        \quad (U > A), \qquad c(\eta) = +\infty \quad (U \le A),

    is the largest ``c`` with ``P_fail(eta; c) >= U(eta)``, and
    ``c* = min_eta c(eta)``. Evaluating the bound at ``c*`` returns ``U`` at
    the binding ``eta`` up to rounding: the relative error of ``c*`` is a few
    ulps, so ``log P_fail`` is recovered to about ``1e-16 (2 log n + B)``
    in absolute terms.

    The default is the one-sided upper limit at level ``confidence``: ``c*``
    is then the largest constant such that, at every ``eta`` separately, the
    hypothesis "true failure probability <= bound" is not rejected by the
    exact one-sided binomial test at level ``1 - confidence`` (no
    multiplicity correction over the grid). ``sided="two"`` uses the upper end
    of the two-sided interval instead (level ``(1 - confidence)/2`` per side).

    A universal constant predicts ``c*`` bounded away from 0 over a sweep of
    ``d``, ``width``, ``depth``, ``n``.

    Args:
        theorem: ``"4.1"``, ``"5.1"``, ``"corollary_5.1"``, ``"6.1"``, or the
            function itself (``theorem_4_1``, ``theorem_5_1``,
            ``corollary_5_1``, ``theorem_6_1``).
        eta: 1-D grid of confusion levels (in the theorem's domain).
        failures: Failure counts ``k(eta)`` (trials whose confusion exceeded
            ``eta``), integers ``0 <= k <= trials``, one per ``eta``.
        trials: Number of trials ``T``, an integer ``>= 1`` or one per ``eta``.
        confidence: Confidence level in ``(0, 1)``. Defaults to ``0.95``.
        sided: ``"upper"`` or ``"two"`` (see above). Defaults to ``"upper"``.
        **params: The theorem's other keyword arguments, everything except
            ``eta`` and ``c``. For Theorem 4.1: ``n, d, width, depth, kappa,
            c1, part``, where ``c1=None`` drops the ``c1`` term (stated in
            ``notes``; that ``c*`` is a lower bound on ``c*`` for every
            ``c1 > 0``). Theorem 4.1 part 1 works as well (``eta > 4``).

    Returns:
        ImpliedConstant with ``c_star``, ``binding_eta``, the limits ``upper``
        and the per-eta constants ``c_per_eta``.

    Raises:
        ValueError: If ``theorem`` is unknown, ``params`` are missing, unknown
            or include ``c``, or any argument is out of range.
    """
    key = _resolve(theorem)
    statement = STATEMENTS[key]
    _check_params(key, statement.required, statement.optional, params)
    sided = v.choice("sided", sided, ("upper", "two"))
    v.real(
        "confidence", confidence, lower=0.0, lower_open=True, upper=1.0, upper_open=True
    )
    if np.ndim(eta) > 1:
        raise ValueError(f"eta must be a scalar or 1-D grid, got shape {np.shape(eta)}")
    terms = statement.terms(np.atleast_1d(eta), **params)
    k = v.integer_array("failures", failures, minimum=0)
    if k.shape != terms.eta.shape:
        raise ValueError(
            f"failures must have one count per eta (shape {terms.eta.shape}), "
            f"got shape {k.shape}"
        )
    t = v.integer_array("trials", trials, minimum=1)
    if t.ndim != 0 and t.shape != k.shape:
        raise ValueError(
            f"trials must be one integer or one per eta (shape {k.shape}), "
            f"got shape {t.shape}"
        )
    t = np.broadcast_to(t, k.shape)
    if (k > t).any():
        bad = np.flatnonzero(k > t)[0]
        raise ValueError(
            f"failures must satisfy 0 <= failures <= trials, got {k[bad]} > {t[bad]} "
            f"at eta = {terms.eta[bad]:g}"
        )
    _, upper = clopper_pearson(k, t, confidence, sided=sided)

    log_u = np.log(upper)
    constrains = (log_u > terms.log_floor) & np.isfinite(terms.log_rate)
    log_excess = log_sub_exp(log_u, np.minimum(terms.log_floor, log_u))
    # 2 log n + B >= 0 >= log(U - A) in exact arithmetic; the clip only guards
    # the sign of a zero against rounding.
    numerator = np.maximum(terms.log_prefactor - log_excess, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c_eta = np.where(constrains, np.exp(np.log(numerator) - terms.log_rate), np.inf)

    notes = []
    c1_dropped = key == "4.1" and params["c1"] is None
    if c1_dropped:
        notes.append(
            "The beta exp(-c1 kappa^2 l^2) term of Theorem 4.1 was dropped "
            "(c1 -> inf): this c* is a lower bound on c* for every c1 > 0."
        )
    if not constrains.any():
        c_star, index = math.inf, None
        notes.append(
            "No eta constrains c (at every eta, U(eta) <= A, the c-free part of the "
            "failure bound, or K(eta) = 0): every c > 0 is consistent, c* = inf."
        )
    else:
        index = int(np.argmin(c_eta))
        c_star = float(c_eta[index])
        if c_star == 0.0:
            notes.append(
                f"At eta = {terms.eta[index]:g} the data exclude every c > 0 "
                "(U = 1 with n^2 exp(B) = 1): the bound fails for any constant."
            )
    for arr in (c_eta, upper, constrains):
        arr.setflags(write=False)
    return ImpliedConstant(
        theorem=key,
        c_star=c_star,
        binding_eta=math.nan if index is None else float(terms.eta[index]),
        binding_index=index,
        eta=terms.eta,
        failures=k,
        trials=t,
        upper=upper,
        c_per_eta=c_eta,
        constrains=constrains,
        confidence=float(confidence),
        sided=sided,
        c1_dropped=c1_dropped,
        params=MappingProxyType(dict(params)),
        notes=tuple(notes),
    )


def _resolve(theorem: object) -> str:
    if callable(theorem) and theorem in BOUND_FUNCTIONS:
        return BOUND_FUNCTIONS[theorem]
    if isinstance(theorem, str) and theorem in STATEMENTS:
        return theorem
    options = ", ".join(repr(s) for s in STATEMENTS)
    raise ValueError(
        f"theorem must be one of {options} or one of theorem_4_1, theorem_5_1, "
        f"corollary_5_1, theorem_6_1, got {theorem!r}"
    )


def _check_params(
    key: str, required: tuple[str, ...], optional: tuple[str, ...], params: dict
) -> None:
    if "c" in params:
        raise ValueError(
            "c must not be given: it is the constant implied_constant solves for"
        )
    unknown = sorted(set(params) - set(required) - set(optional))
    missing = [name for name in required if name not in params]
    if unknown or missing:
        expected = ", ".join(required + tuple(f"{o} (optional)" for o in optional))
        raise ValueError(
            f"Theorem {key} takes the parameters {expected}; "
            f"missing {missing or 'none'}, unknown {unknown or 'none'}"
        )
