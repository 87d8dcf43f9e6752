r"""Exact moments of the inner product of two disjoint mini-batch gradients.

Section 8 of the paper: "the gradient confusion condition [...] is applicable
even when the stochastic gradients are averaged over minibatches of size B.
The variance of the gradient inner product scales down as 1/B^2 in this case,
and thus eta is expected to decrease as B grows." This module gives that
variance exactly, for a fixed weight vector and a fixed dataset.

Notation (THEORY.md section 2):

- ``n`` samples (the paper's ``N``), ``G`` (``n, n``) the per-sample gradient
  Gram matrix ``G_ij = <grad f_i(w), grad f_j(w)>`` (``theory.gram``);
- ``B`` the mini-batch size; ``S_0, S_1`` two disjoint mini-batches of ``B``
  samples each, drawn uniformly without replacement (the ``2B`` indices are a
  uniformly random ordered selection of distinct samples, ``2B <= n``);
- ``g_S = (1/B) sum_{i in S} grad f_i`` the mini-batch gradient and

  .. math:: X_B = \langle g_{S_0}, g_{S_1} \rangle
            = \frac{1}{B^2} \sum_{i \in S_0,\, j \in S_1} G_{ij};

- ``(n)_k = n (n - 1) ... (n - k + 1)``; sums below run over *distinct*
  indices ``i, j, k, l``.

Index-pattern moments of ``G`` (each the mean of its pattern over all ordered
tuples of distinct indices):

.. math::

    \mu   = \frac{1}{(n)_2} \sum_{i \ne j} G_{ij}, \qquad
    q_2   = \frac{1}{(n)_2} \sum_{i \ne j} G_{ij}^2,

    q_3   = \frac{1}{(n)_3} \sum_{i, j, k} G_{ij} G_{ik}, \qquad
    q_4   = \frac{1}{(n)_4} \sum_{i, j, k, l} G_{ij} G_{kl},

and the three covariances they define: the pair variance
``v = q_2 - mu^2 = Var(G_ij)``, the shared-sample covariance
``c_1 = q_3 - mu^2 = Cov(G_ij, G_ik)`` and the disjoint-pair covariance
``c_0 = q_4 - mu^2 = Cov(G_ij, G_kl)``.

**Exact moments.** Expanding ``X_B^2`` over the ``B^4`` index pairs and
sorting them by which batch positions coincide (same row and column: ``B^2``
terms of type ``q_2``; same row or same column only: ``2 B^2 (B - 1)`` terms
of type ``q_3``, using the symmetry of ``G``; neither: ``B^2 (B - 1)^2``
terms of type ``q_4``):

.. math::

    E[X_B] = \mu, \qquad
    \mathrm{Var}(X_B) = \frac{v - 2 c_1 + c_0}{B^2}
                        + \frac{2 (c_1 - c_0)}{B} + c_0 .

Computed in ``O(n^2)`` from the off-diagonal part ``O`` of ``G``, its row sums
``r_i = sum_{j != i} G_ij``, ``T = sum_i r_i`` and ``Q = sum_{i != j} G_ij^2``:
``sum G_ij G_ik = sum_i r_i^2 - Q`` and ``sum G_ij G_kl = T^2 - 4 (sum_i r_i^2
- Q) - 2 Q`` (from ``T^2`` remove the four patterns that share one index and
the two that share both).

**When the variance scales as 1/B^2.** For samples drawn i.i.d. from a
population (``n -> infinity``), ``c_0 -> 0`` and

.. math:: \mathrm{Var}(X_B) \to \frac{v - 2 c_1}{B^2} + \frac{2 c_1}{B},

with ``c_1 = Var_i(<grad f_i, g_bar>)`` for the population mean gradient
``g_bar`` (condition ``E[G_ij G_ik | i] = <grad f_i, g_bar>^2``). So the
paper's ``1/B^2`` is exact only when ``c_1 = 0``, e.g. when the mean gradient
vanishes (a stationary point of the risk); when the mean gradient dominates,
the ``1/B`` term takes over for ``B > (v - 2 c_1) / (2 c_1)`` and the
exponent tends to ``-1``. A finite dataset adds the without-replacement
terms in ``c_0`` (of order ``1/n``), which change the exponent as ``2B``
approaches ``n``. At a stationary point of the *empirical* risk (zero mean
gradient: ``sum_j G_ij = 0`` for every ``i``) the row sums are ``r_i =
-G_ii`` and, exactly, ``c_1 = -v/(n - 2) + s^2/((n - 1)(n - 2))`` with ``s^2``
the variance of the diagonal ``(G_ii)`` (``1/n`` normalization): the ``1/B``
term is a finite-population remainder, not the mean-gradient term, and the
variance falls like ``1/B^2`` until ``2B`` nears ``n`` (at ``2B = n``,
``g_{S_1} = -g_{S_0}`` and ``X_B = -||g_{S_0}||^2``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from theory._confusion import _check_gram

__all__ = ["MinibatchMoments", "minibatch_moments", "minibatch_inner_moments"]


@dataclasses.dataclass(frozen=True)
class MinibatchMoments:
    """The index-pattern moments of one Gram matrix (see the module docstring).

    Attributes:
        n: Number of samples.
        mean: ``mu``, the mean off-diagonal entry; ``E[X_B]`` for every ``B``.
        pair_variance: ``v = Var(G_ij)`` over ordered distinct pairs.
        shared_covariance: ``c_1 = Cov(G_ij, G_ik)`` (pairs sharing one
            sample); NaN when ``n < 3``.
        disjoint_covariance: ``c_0 = Cov(G_ij, G_kl)`` (disjoint pairs, the
            without-replacement term); NaN when ``n < 4``.
    """

    n: int
    mean: float
    pair_variance: float
    shared_covariance: float
    disjoint_covariance: float

    def variance(self, B: int) -> float:
        """``Var(X_B) = (v - 2 c_1 + c_0)/B^2 + 2 (c_1 - c_0)/B + c_0``.

        Args:
            B: Mini-batch size, an integer with ``1 <= B`` and ``2B <= n``.

        Returns:
            The exact variance over the random pair of disjoint batches.

        Raises:
            ValueError: If ``B`` is not an integer in ``[1, n // 2]``.
        """
        B = _check_batch(B, self.n)
        if B == 1:  # no shared or disjoint pattern enters
            return self.pair_variance
        v, c1, c0 = self.pair_variance, self.shared_covariance, self.disjoint_covariance
        return (v - 2.0 * c1 + c0) / B**2 + 2.0 * (c1 - c0) / B + c0


def _check_batch(B: object, n: int) -> int:
    if isinstance(B, bool) or not isinstance(B, int | np.integer):
        raise ValueError(f"B must be an integer in [1, n // 2 = {n // 2}], got {B!r}")
    if not 1 <= int(B) <= n // 2:
        raise ValueError(
            f"B must be an integer in [1, n // 2 = {n // 2}] (two disjoint batches "
            f"of n = {n} samples), got {B}"
        )
    return int(B)


def minibatch_moments(G: np.ndarray) -> MinibatchMoments:
    """Index-pattern moments of ``G`` that give ``E[X_B]`` and ``Var(X_B)``.

    Args:
        G: Per-sample gradient Gram matrix, shape ``(n, n)``, ``n >= 2``,
            finite and symmetric (up to ``1e-12`` of its largest entry; the
            two triangles are averaged).

    Returns:
        The moments (:class:`MinibatchMoments`).

    Raises:
        ValueError: If ``G`` is not square, ``n < 2``, not finite or not
            symmetric.
    """
    G = _check_gram(G)
    if not np.isfinite(G).all():
        raise ValueError("G must be finite, got nan or inf entries")
    scale = float(np.abs(G).max())
    if not np.allclose(G, G.T, rtol=0.0, atol=1e-12 * scale):
        raise ValueError(
            "G must be symmetric (a Gram matrix), got max |G - G^T| = "
            f"{float(np.abs(G - G.T).max()):.3g} with max |G| = {scale:.3g}"
        )
    n = G.shape[0]
    off = 0.5 * (G + G.T)
    np.fill_diagonal(off, 0.0)
    r = off.sum(axis=1)
    total = float(r.sum())
    squares = float((off * off).sum())
    shared = float(r @ r) - squares
    disjoint = total * total - 4.0 * shared - 2.0 * squares
    n2 = n * (n - 1)
    mu = total / n2
    q3 = shared / (n2 * (n - 2)) if n >= 3 else math.nan
    q4 = disjoint / (n2 * (n - 2) * (n - 3)) if n >= 4 else math.nan
    return MinibatchMoments(
        n=n,
        mean=mu,
        pair_variance=squares / n2 - mu * mu,
        shared_covariance=q3 - mu * mu,
        disjoint_covariance=q4 - mu * mu,
    )


def minibatch_inner_moments(G: np.ndarray, B: int) -> tuple[float, float]:
    """``(E[X_B], Var(X_B))`` for two disjoint mini-batches drawn without replacement.

    ``X_B = (1/B^2) sum_{i in S_0, j in S_1} G_ij`` (module docstring, Section
    8 of the paper); exact over the uniform random choice of the two batches.

    Args:
        G: Per-sample gradient Gram matrix, shape ``(n, n)``, ``n >= 2``,
            finite and symmetric.
        B: Mini-batch size, an integer in ``[1, n // 2]``.

    Returns:
        ``(mean, variance)``.

    Raises:
        ValueError: If ``G`` or ``B`` is out of range (see
            :func:`minibatch_moments` and :meth:`MinibatchMoments.variance`).
    """
    m = minibatch_moments(G)
    return m.mean, m.variance(B)
