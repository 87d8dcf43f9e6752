"""Convergence bounds of constant-step SGD under gradient confusion (Section 3).

Notation (paper symbol in brackets):

- ``n`` [N]: number of samples ``f_1..f_n``; ``F = (1/n) sum_i f_i``.
- ``L``: every ``f_i`` is ``L``-smooth (A1).
- ``mu`` [mu]: every ``f_i`` is ``mu``-PL (A2),
  ``1/2 ||grad f_i||^2 >= mu (f_i - f_i^*)``.
- ``alpha``: constant step size; ``T``: number of SGD steps.
- ``eta`` [eta]: gradient confusion bound along the SGD path,
  ``<grad f_i(w), grad f_j(w)> >= -eta`` for ``i != j``.
- ``gap0 = F(w_0) - F^*``, ``gap1 = F(w_1) - F^*``.
"""

import numpy as np
from scipy.special import xlog1py

from bounds import _validate as v

_FORMS = ("printed", "derived")


def _check_step(alpha: object, n: int, L: float) -> float:
    """``0 < alpha < 2/(n L)``, the step-size hypothesis of Theorems 3.1 and 3.2.

    ``2/(n L)`` is 0 where ``n L`` exceeds the float range: no step qualifies.
    """
    limit = 2.0 / (v.int_as_float(n) * L)
    return v.real(
        "alpha",
        alpha,
        lower=0.0,
        lower_open=True,
        upper=limit,
        upper_open=True,
        range_text=f"with 0 < alpha < 2/(n L) = {limit:.6g}",
    )


def theorem_3_1(
    T: int | np.ndarray,
    *,
    alpha: float,
    n: int,
    L: float,
    mu: float,
    eta: float,
    gap0: float,
) -> np.ndarray | float:
    r"""Upper bound of Theorem 3.1 on ``E[F(w_T) - F^*]`` (linear convergence).

    .. math::

        E[F(w_T) - F^*] \le \rho^T (F(w_0) - F^*) + \frac{\alpha\eta}{1-\rho},
        \qquad \rho = 1 - \frac{2\mu}{n}\Big(\alpha - \frac{n L \alpha^2}{2}\Big).

    Assumptions: (A1) each ``f_i`` is ``L``-smooth, (A2) each ``f_i`` is
    ``mu``-PL, gradient confusion ``eta`` at every iterate, and
    ``0 < alpha < 2/(n L)``. The reading of the scrambled fraction for ``rho``
    is **[reconstructed]** (THEORY.md section 3), confirmed by re-deriving it
    from ``F(w_{k+1}) <= F(w_k) - alpha <grad F, grad f_k> + L alpha^2/2
    ||grad f_k||^2`` and ``<grad F, grad f_k> >= ||grad f_k||^2 / n - eta``.

    (A1) and (A2) together imply ``mu <= L`` (smoothness gives
    ``f_i - f_i^* >= ||grad f_i||^2 / (2L)``), which is checked; it makes
    ``0 <= rho < 1``. The bound decreases in ``T`` to the floor
    ``alpha eta / (1 - rho) = n eta / (2 mu (1 - n L alpha / 2))``. ``1 - rho``
    and ``rho^T`` are computed as ``(2 mu alpha / n)(1 - n L alpha / 2)`` and
    ``exp(T log1p(-(1 - rho)))``, so a ``rho`` within ``1e-16`` of 1 loses no
    precision; values beyond the float range are ``inf``, silently.

    Args:
        T: Number of SGD steps, an integer ``>= 0`` of any size (Python ints
            beyond int64 included) or an integer array (``T = 0`` gives
            ``gap0 + alpha eta / (1 - rho)``).
        alpha: Step size, ``0 < alpha < 2/(n L)``.
        n: Number of samples ``N``, integer ``>= 1``.
        L: Smoothness constant, ``> 0``.
        mu: PL constant, ``0 < mu <= L``.
        eta: Gradient confusion bound, ``>= 0``.
        gap0: Initial suboptimality ``F(w_0) - F^*``, ``>= 0``.

    Returns:
        The bound, float64 with the shape of ``T`` (a NumPy scalar for scalar ``T``).

    Raises:
        ValueError: If an argument is outside the range stated above.
    """
    n = v.integer("n", n, minimum=1)
    L = v.real("L", L, lower=0.0, lower_open=True)
    mu = v.real(
        "mu",
        mu,
        lower=0.0,
        lower_open=True,
        upper=L,
        range_text=f"with 0 < mu <= L = {L:g}",
    )
    alpha = _check_step(alpha, n, L)
    eta = v.real("eta", eta, lower=0.0)
    gap0 = v.real("gap0", gap0, lower=0.0)
    steps = v.count_array("T", T, minimum=0)

    nf = v.int_as_float(n)
    slack = 1.0 - nf * L * alpha / 2.0  # in (0, 1] up to rounding
    one_minus_rho = (2.0 * mu * alpha / nf) * slack
    contraction = np.exp(xlog1py(steps, -one_minus_rho))
    with np.errstate(over="ignore", divide="ignore"):
        floor = 0.0 if eta == 0 else np.float64(nf * eta) / (2.0 * mu * slack)
    return (contraction * gap0 + floor)[()]


def theorem_3_2(
    T: int | np.ndarray,
    *,
    alpha: float,
    n: int,
    L: float,
    eta: float,
    gap1: float,
    form: str,
) -> np.ndarray | float:
    r"""Upper bound of Theorem 3.2 on ``min_{k=1..T} E||grad F(w_k)||^2``.

    As printed in the paper (``form="printed"``):

    .. math::

        \min_{k=1..T} E\|\nabla F(w_k)\|^2 \le \frac{\rho (F(w_1) - F^*)}{T}
        + \rho\eta, \qquad \rho = \frac{2n}{2 - n L \alpha}.

    The printed first term is not invariant under a rescaling of ``w`` (it
    lacks a factor ``1/alpha``); re-deriving the theorem gives
    ``rho (F(w_1) - F^*) / (alpha T)`` in its place (``form="derived"``,
    THEORY.md section 3). Both forms are offered so that Monte Carlo can say
    which one holds; neither is silently preferred, hence ``form`` has no
    default.

    Assumptions: (A1) each ``f_i`` is ``L``-smooth, gradient confusion
    ``eta`` at every iterate, ``0 < alpha < 2/(n L)`` (which makes
    ``rho > 0`` finite). Both forms decrease in ``T`` to the floor ``rho eta``.

    Args:
        T: Number of SGD steps, an integer ``>= 1`` of any size or an integer
            array.
        alpha: Step size, ``0 < alpha < 2/(n L)``.
        n: Number of samples ``N``, integer ``>= 1``.
        L: Smoothness constant, ``> 0``.
        eta: Gradient confusion bound, ``>= 0``.
        gap1: ``F(w_1) - F^*``, ``>= 0``.
        form: ``"printed"`` or ``"derived"`` (see above).

    Returns:
        The bound, float64 with the shape of ``T`` (a NumPy scalar for scalar ``T``).

    Raises:
        ValueError: If an argument is outside the range stated above.
    """
    n = v.integer("n", n, minimum=1)
    L = v.real("L", L, lower=0.0, lower_open=True)
    alpha = _check_step(alpha, n, L)
    eta = v.real("eta", eta, lower=0.0)
    gap1 = v.real("gap1", gap1, lower=0.0)
    form = v.choice("form", form, _FORMS)
    steps = v.count_array("T", T, minimum=1)

    nf = v.int_as_float(n)
    with np.errstate(over="ignore", divide="ignore"):
        rho = np.float64(2.0 * nf) / (2.0 - nf * L * alpha)  # inf beyond floats
        scale = steps if form == "printed" else alpha * steps
        # a zero gap or eta contributes 0 even where rho is inf (no 0 * inf)
        first = rho * gap1 / scale if gap1 else np.zeros_like(steps)
        return (first + (rho * eta if eta else 0.0))[()]
