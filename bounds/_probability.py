"""Probability bounds on gradient confusion (Theorems 4.1, 5.1, 6.1, Corollary 5.1).

Notation (paper symbol in brackets):

- ``n`` [N]: number of samples; ``d``: input dimension (sphere ``S^{d-1}``).
- ``width`` [l]: maximal hidden width ``max_p l_p``; ``depth`` [beta].
- ``eta`` [eta]: the confusion level, ``<grad f_i, grad f_j> >= -eta`` for
  all ``i != j`` is "the bound holds".
- ``kappa`` [kappa]: variance scale of Strategy 4.1, ``W_p ~ N(0, 1/(kappa l_{p-1}))``.
- ``zeta_0 = 2 sqrt(depth)`` [zeta_0], so ``zeta_0^2 = 4 depth`` and
  ``zeta_0^4 = 16 depth^2``.
- ``c``, ``c1`` [c, c_1]: the theorems' unspecified positive constants.

Every bound reads ``P(bound holds) >= 1 - P_fail`` with

    P_fail(eta; c) = A + n^2 exp(-c K(eta) + B(eta)),

``A >= 0`` independent of ``eta`` and ``c``, ``K(eta) > 0`` increasing in
``eta`` and ``B(eta) >= 0``. The bounds are returned as
:class:`ProbabilityBound`, which stores ``log P_fail`` and derives the
probability from it with ``expm1`` / ``log1p``.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from bounds import _validate as v
from bounds._stable import log1mexp


@dataclass(frozen=True, eq=False)
class ProbabilityBound:
    """A lower bound ``1 - P_fail`` on the probability that the confusion bound holds.

    ``P_fail`` is held as its logarithm, which is finite over the whole
    parameter range, or ``+-inf`` where the exact value is beyond the float
    range (``exp`` of it may not be finite: ``failure`` is ``inf`` and
    ``probability`` ``-inf`` once ``log_failure > 709``, a bound that is
    vacuous by an astronomical margin; no overflow warning is issued).

    Attributes:
        theorem: Which statement this is, e.g. ``"Theorem 4.1 part 2"``.
        eta: The confusion levels, float64, any shape.
        log_failure: ``log P_fail``, same shape as ``eta``. Values ``>= 0``
            mean the bound is vacuous (``P_fail >= 1``).
    """

    theorem: str
    eta: np.ndarray
    log_failure: np.ndarray

    @property
    def failure(self) -> np.ndarray:
        """``P_fail = exp(log_failure)``, the failure-probability bound (may be > 1)."""
        with np.errstate(over="ignore"):
            return np.exp(self.log_failure)

    @property
    def probability(self) -> np.ndarray:
        """``1 - P_fail = -expm1(log_failure)``, the lower bound itself (may be < 0)."""
        with np.errstate(over="ignore"):
            return -np.expm1(self.log_failure)

    @property
    def log_probability(self) -> np.ndarray:
        """``log max(0, 1 - P_fail)``, by ``log1mexp``; ``-inf`` where vacuous.

        Keeps the information that ``probability`` rounds away: for
        ``log_failure = -700`` the probability is ``1.0`` in float64 but its
        logarithm is ``-exp(-700) = -9.9e-305``, which is representable.
        """
        return np.where(
            self.vacuous, -np.inf, log1mexp(np.minimum(self.log_failure, 0.0))
        )

    @property
    def vacuous(self) -> np.ndarray:
        """``True`` where the bound says nothing (``1 - P_fail <= 0``)."""
        return self.log_failure >= 0.0

    def __repr__(self) -> str:
        return (
            f"ProbabilityBound({self.theorem!r}, eta={self.eta!r}, "
            f"log_failure={self.log_failure!r}, vacuous={self.vacuous!r})"
        )


class _Terms(NamedTuple):
    """``P_fail(eta; c) = exp(log_floor) + exp(log_prefactor - c exp(log_rate))``.

    ``log_floor = log A`` (``-inf`` when absent), ``log_prefactor =
    2 log n + B(eta)`` (``inf`` where ``B`` exceeds the float range),
    ``log_rate = log K(eta)``, ``log_penalty = log B(eta)`` (``-inf`` when
    ``B = 0``), which decides ``B - c K`` where both exceed the float range.
    """

    theorem: str
    eta: np.ndarray
    log_floor: float
    log_prefactor: np.ndarray
    log_rate: np.ndarray
    log_penalty: np.ndarray | float = -math.inf


def _log_failure(terms: _Terms, c: float) -> np.ndarray:
    """``log(A + n^2 exp(-c K + B))`` by ``logaddexp``, ``c K = exp(log c + log K)``.

    ``c K`` beyond the float range is ``inf`` (then ``exp(-c K)`` is 0 to
    far below float precision); where ``B`` is too, the larger logarithm
    decides the sign of the exponent (a tie counts as the vacuous side).
    """
    log_ck = math.log(c) + terms.log_rate
    with np.errstate(over="ignore"):
        ck = np.exp(log_ck)
    both = np.isposinf(terms.log_prefactor) & np.isposinf(ck)
    with np.errstate(invalid="ignore"):
        exponent = np.where(
            both,
            np.where(terms.log_penalty >= log_ck, np.inf, -np.inf),
            terms.log_prefactor - ck,
        )
    return np.logaddexp(terms.log_floor, exponent)


def _bound(terms: _Terms, c: float) -> ProbabilityBound:
    log_failure = _log_failure(terms, c)
    log_failure.setflags(write=False)
    return ProbabilityBound(terms.theorem, terms.eta, log_failure)


def _log_depth_factor(depth: int) -> float:
    """``log(zeta_0^4 (depth + 2)^4)`` with ``zeta_0^4 = 16 depth^2`` (any int size)."""
    return math.log(16.0) + 2.0 * math.log(depth) + 4.0 * math.log(depth + 2)


def _positive_product(*factors: float | int) -> float:
    """The product of positive numbers (ints of any size), ``inf`` beyond floats.

    Multiplied directly (as written, one rounding per product) where no
    partial product can leave the float range, i.e. every factor is within
    ``1e+-(300 / len(factors))``; otherwise from the sum of logarithms, so
    that neither an ``OverflowError`` nor a spurious 0 or ``inf`` occurs.
    """
    bound = 10.0 ** (300 // len(factors))
    if all(1.0 / bound <= f <= bound for f in factors):
        return math.prod(float(f) for f in factors)
    log = math.fsum(math.log(f) for f in factors)
    return math.exp(log) if log < 709.78 else math.inf


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


def _terms_4_1(
    eta: object,
    *,
    n: int,
    d: int | None = None,
    width: int,
    depth: int,
    kappa: float,
    c1: float | None,
    part: int,
) -> _Terms:
    part = v.choice("part", v.integer("part", part, minimum=1), (1, 2))
    n = v.integer("n", n, minimum=1)
    if part == 2 or d is not None:
        d = v.integer("d", d, minimum=1)
    width = v.width_value(width)
    depth = v.integer("depth", depth, minimum=1)
    kappa = v.real("kappa", kappa, lower=0.0, lower_open=True)
    if c1 is not None:
        c1 = v.real("c1", c1, lower=0.0, lower_open=True)
    if part == 1:
        eta = v.real_array(
            "eta",
            eta,
            lower=4.0,
            lower_open=True,
            range_text="> 4 (Theorem 4.1 part 1)",
        )
        log_rate = (
            2.0 * math.log(width)
            + math.log(depth)
            + 2.0 * np.log(eta - 4.0)
            - math.log(64.0)
            - _log_depth_factor(depth)
        )
    else:
        eta = v.real_array("eta", eta, lower=0.0, lower_open=True)
        log_rate = (
            math.log(width * d + width * width * depth)  # exact integers
            + 2.0 * _log(eta)
            - math.log(16.0)
            - _log_depth_factor(depth)
        )
    if c1 is None:
        log_floor = -math.inf
    else:
        log_floor = math.log(depth) - _positive_product(c1, kappa, kappa, width, width)
    log_prefactor = np.full(eta.shape, 2.0 * math.log(n))
    return _Terms(f"Theorem 4.1 part {part}", eta, log_floor, log_prefactor, log_rate)


def theorem_4_1(
    eta: float | np.ndarray,
    *,
    n: int,
    d: int | None = None,
    width: int,
    depth: int,
    kappa: float,
    c: float,
    c1: float | None,
    part: int,
) -> ProbabilityBound:
    r"""Theorem 4.1: confusion at Gaussian initialization (Strategy 4.1).

    Weights: ``W_0`` has i.i.d. ``N(0, 1/d)`` entries, ``W_p`` (``p >= 1``)
    i.i.d. ``N(0, 1/(kappa l_{p-1}))``; activation with (P1), (P2); square or
    logistic loss; labels with ``|C| <= 1``, ``||grad C|| <= 1``;
    ``zeta_0 = 2 sqrt(depth)``, ``l = width``.

    Part 1 (fixed data with ``||x_i|| <= 1``, ``eta > 4``):

    .. math::

        P \ge 1 - \beta e^{-c_1\kappa^2 l^2}
          - N^2 \exp\Big(-\frac{c\, l^2 \beta (\eta-4)^2}{64\zeta_0^4(\beta+2)^4}\Big).

    Part 2 (i.i.d. data uniform on ``S^{d-1}``, every ``eta > 0``):

    .. math::

        P \ge 1 - \beta e^{-c_1\kappa^2 l^2}
          - N^2 \exp\Big(-\frac{c\,(l d + l^2\beta)\,\eta^2}
                               {16\zeta_0^4(\beta+2)^4}\Big).

    The two terms are added by ``logaddexp``. ``c1=None`` drops the
    ``beta exp(-c1 kappa^2 l^2)`` term, i.e. the ``c1 -> inf`` limit. That is
    *not* the theorem's bound (it is smaller than the theorem's failure
    bound for every finite ``c1``); it is offered for :func:`implied_constant`,
    where it gives the most conservative ``c*``.

    Monotonicity (claimed in the paper, true for every valid parameter set):
    with ``zeta_0^4 = 16 beta^2`` the exponent's rate is
    ``c l^2 (eta-4)^2 / (1024 beta (beta+2)^4)`` (part 1) or
    ``c (l d + l^2 beta) eta^2 / (256 beta^2 (beta+2)^4)`` (part 2), which
    increases with ``l`` and decreases with ``beta``, while
    ``beta exp(-c1 kappa^2 l^2)`` decreases with ``l`` and increases with
    ``beta``. Both terms therefore move the same way: the bound is
    non-decreasing in ``width`` and ``eta``, non-increasing in ``depth`` and
    ``n`` (and, in part 2, non-decreasing in ``d``), everywhere.

    Args:
        eta: Confusion level(s), scalar or array; ``> 4`` for part 1, ``> 0``
            for part 2.
        n: Number of samples ``N``, integer ``>= 1``.
        d: Input dimension, integer ``>= 1``; required for part 2. Part 1
            does not depend on ``d`` (it is checked if given, so one parameter
            set can serve both parts). Defaults to ``None``.
        width: Maximal hidden width ``l``: an integer ``>= 1``, or a sequence
            of the hidden widths, of which the maximum is taken.
        depth: Depth ``beta``, integer ``>= 1``.
        kappa: Initialization scale ``kappa > 0``.
        c: Constant ``c > 0`` of the exponential tail.
        c1: Constant ``c1 > 0`` of the weight-norm term, or ``None`` to drop
            that term (see above).
        part: ``1`` (fixed data) or ``2`` (sphere data).

    Returns:
        ProbabilityBound of the shape of ``eta``.

    Raises:
        ValueError: If an argument is outside the range stated above
            (``eta <= 4`` in part 1 included).
    """
    c = v.real("c", c, lower=0.0, lower_open=True)
    terms = _terms_4_1(
        eta, n=n, d=d, width=width, depth=depth, kappa=kappa, c1=c1, part=part
    )
    return _bound(terms, c)


def _terms_5_1(eta: object, *, n: int, d: int, depth: int) -> _Terms:
    n = v.integer("n", n, minimum=1)
    d = v.integer("d", d, minimum=1)
    depth = v.integer("depth", depth, minimum=1)
    eta = v.real_array("eta", eta, lower=0.0)
    log_rate = math.log(d) + 2.0 * _log(eta) - math.log(16.0) - _log_depth_factor(depth)
    log_prefactor = np.full(eta.shape, 2.0 * math.log(n))
    return _Terms("Theorem 5.1", eta, -math.inf, log_prefactor, log_rate)


def theorem_5_1(
    eta: float | np.ndarray, *, n: int, d: int, depth: int, c: float
) -> ProbabilityBound:
    r"""Theorem 5.1: confusion under small weights (Assumption 1), sphere data.

    Assumptions: every ``||W_p|| <= 1`` (operator norm, Assumption 1), data
    i.i.d. uniform on ``S^{d-1}``, activation with (P1), (P2), square or
    logistic loss. With ``zeta_0 = 2 sqrt(depth)``:

    .. math::

        P \ge 1 - N^2 \exp\Big(-\frac{c\, d\, \eta^2}{16\zeta_0^4(\beta+2)^4}\Big).

    The bound does not depend on the width. It is non-decreasing in ``eta``
    and ``d`` and non-increasing in ``depth`` and ``n`` everywhere.
    ``eta = 0`` is allowed and gives the vacuous ``1 - N^2``.

    Args:
        eta: Confusion level(s) ``>= 0``, scalar or array.
        n: Number of samples ``N``, integer ``>= 1``.
        d: Input dimension, integer ``>= 1``.
        depth: Depth ``beta``, integer ``>= 1``.
        c: Constant ``c > 0``.

    Returns:
        ProbabilityBound of the shape of ``eta``.

    Raises:
        ValueError: If an argument is outside the range stated above.
    """
    c = v.real("c", c, lower=0.0, lower_open=True)
    return _bound(_terms_5_1(eta, n=n, d=d, depth=depth), c)


def _terms_corollary_5_1(
    eta: object, *, n: int, d: int, depth: int, r: float
) -> _Terms:
    n = v.integer("n", n, minimum=1)
    d = v.integer("d", d, minimum=1)
    depth = v.integer("depth", depth, minimum=1)
    r = v.real("r", r, lower=0.0)
    eta = v.real_array("eta", eta, lower=0.0, lower_open=True)
    log_zeta0_sq = math.log(4 * depth)
    log_rate = (
        math.log(d) + 2.0 * np.log(eta) - math.log(64.0) - _log_depth_factor(depth)
    )
    # r <= eta / (4 zeta_0^2) and the penalty 8 d zeta_0^2 r / eta, in logs (any
    # size of d and depth); beyond the float range the penalty is inf, and
    # _log_failure weighs its log against that of c K
    log_r = math.log(r) if r > 0 else -math.inf
    small_ball = r <= eta / (16.0 * v.int_as_float(depth))  # 4 zeta_0^2 = 16 depth
    log_penalty = np.where(
        small_ball,
        -math.inf,
        math.log(8.0) + math.log(d) + log_zeta0_sq + log_r - np.log(eta),
    )
    with np.errstate(over="ignore"):
        penalty = np.exp(log_penalty)
    log_prefactor = 2.0 * math.log(n) + penalty
    return _Terms("Corollary 5.1", eta, -math.inf, log_prefactor, log_rate, log_penalty)


def corollary_5_1(
    eta: float | np.ndarray, *, n: int, d: int, depth: int, r: float, c: float
) -> ProbabilityBound:
    r"""Corollary 5.1: confusion uniformly over a ball ``B_r`` of weights.

    Assumptions: the centre ``W`` satisfies Assumption 1 (every
    ``||W_p|| <= 1``), data i.i.d. uniform on ``S^{d-1}``; the bound holds
    for all ``W'`` in the ball of radius ``r`` around ``W`` at once. With
    ``zeta_0 = 2 sqrt(depth)``:

    .. math::

        P \ge \begin{cases}
          1 - N^2 \exp\big(-\frac{c\,d\,\eta^2}{64\zeta_0^4(\beta+2)^4}\big)
            & r \le \eta / (4\zeta_0^2), \\
          1 - N^2 \exp\big(-\frac{c\,d\,\eta^2}{64\zeta_0^4(\beta+2)^4}
            + \frac{8 d \zeta_0^2 r}{\eta}\big) & \text{otherwise.}
        \end{cases}

    The second line is **[reconstructed]** (THEORY.md section 5): the
    ``+ 8 d zeta_0^2 r / eta`` term is read as a separate summand inside the
    exponent, not multiplied by ``c``. At ``r = eta / (4 zeta_0^2)`` it equals
    ``2d``, so the bound jumps by the factor ``e^{2d}`` there.

    Monotonicity: non-decreasing in ``eta`` everywhere (both branches improve
    with ``eta`` and the switch at ``eta = 4 zeta_0^2 r`` drops the penalty);
    non-increasing in ``r``, ``depth`` and ``n``. In ``d`` it is
    non-decreasing in the small-ball branch, but in the other branch the
    exponent is ``d (8 zeta_0^2 r / eta - c eta^2 / (64 zeta_0^4 (beta+2)^4))``,
    so it rises with ``d`` only where
    ``c eta^3 >= 512 zeta_0^6 (beta+2)^4 r`` and falls otherwise.

    Args:
        eta: Confusion level(s) ``> 0``, scalar or array.
        n: Number of samples ``N``, integer ``>= 1``.
        d: Input dimension, integer ``>= 1``.
        depth: Depth ``beta``, integer ``>= 1``.
        r: Ball radius ``>= 0`` (``r = 0`` is the single point ``W``).
        c: Constant ``c > 0``.

    Returns:
        ProbabilityBound of the shape of ``eta``.

    Raises:
        ValueError: If an argument is outside the range stated above.
    """
    c = v.real("c", c, lower=0.0, lower_open=True)
    return _bound(_terms_corollary_5_1(eta, n=n, d=d, depth=depth, r=r), c)


def _terms_6_1(eta: object, *, n: int, d: int) -> _Terms:
    n = v.integer("n", n, minimum=1)
    d = v.integer("d", d, minimum=1)
    eta = v.real_array("eta", eta, lower=0.0)
    log_rate = math.log(d) + 2.0 * _log(eta)
    log_prefactor = np.full(eta.shape, 2.0 * math.log(n))
    return _Terms("Theorem 6.1", eta, -math.inf, log_prefactor, log_rate)


def theorem_6_1(
    eta: float | np.ndarray, *, n: int, d: int, c: float
) -> ProbabilityBound:
    r"""Theorem 6.1: confusion of deep linear networks with orthogonal weights.

    Assumptions: ``g_W(x) = gamma W_beta ... W_1 x`` with orthogonal
    ``W_p`` and ``gamma = 1/sqrt(2 beta)`` (**[reconstructed]**, THEORY.md
    section 6), square loss, data i.i.d. uniform on ``S^{d-1}``:

    .. math::

        P \ge 1 - N^2 \exp(-c\, d\, \eta^2).

    The bound depends on neither depth nor width, which is why the function
    takes no such argument. Non-decreasing in ``eta`` and ``d``,
    non-increasing in ``n``. ``eta = 0`` is allowed (vacuous ``1 - N^2``).

    Args:
        eta: Confusion level(s) ``>= 0``, scalar or array.
        n: Number of samples ``N``, integer ``>= 1``.
        d: Input dimension, integer ``>= 1``.
        c: Constant ``c > 0``.

    Returns:
        ProbabilityBound of the shape of ``eta``.

    Raises:
        ValueError: If an argument is outside the range stated above.
    """
    c = v.real("c", c, lower=0.0, lower_open=True)
    return _bound(_terms_6_1(eta, n=n, d=d), c)


class _Statement(NamedTuple):
    """A probability bound as :func:`implied_constant` needs it."""

    key: str
    terms: Callable[..., _Terms]
    required: tuple[str, ...]
    optional: tuple[str, ...]


STATEMENTS: dict[str, _Statement] = {
    "4.1": _Statement(
        "4.1", _terms_4_1, ("n", "width", "depth", "kappa", "c1", "part"), ("d",)
    ),
    "5.1": _Statement("5.1", _terms_5_1, ("n", "d", "depth"), ()),
    "corollary_5.1": _Statement(
        "corollary_5.1", _terms_corollary_5_1, ("n", "d", "depth", "r"), ()
    ),
    "6.1": _Statement("6.1", _terms_6_1, ("n", "d"), ()),
}

BOUND_FUNCTIONS: dict[Callable[..., ProbabilityBound], str] = {
    theorem_4_1: "4.1",
    theorem_5_1: "5.1",
    corollary_5_1: "corollary_5.1",
    theorem_6_1: "6.1",
}
