"""Per-trial statistics of a Gram matrix, and the record layout every backend fills.

For one trial with per-sample gradient Gram ``G`` (``n x n``, THEORY.md
section 2) the record holds, in this order (:data:`TRIAL_COLUMNS`):

==============  ================================================================
``finite``      1 if every entry of ``G`` is finite, else 0 (then every other
                field is NaN: such trials are counted, never estimated from)
``min_inner``   ``min_{i != j} G_ij``; the trial's confusion is ``max(0, -min_inner)``
``min_cos``     ``min_{i != j} G_ij / sqrt(G_ii G_jj)`` over pairs of non-zero
                gradients (NaN when no such pair exists)
``offdiag_mean`` mean of ``G_ij`` over ``i != j`` (averaged confusion, Section 8)
``neg_pairs``   number of pairs ``i < j`` with ``G_ij < 0``
``min_norm``    ``min_i ||grad f_i|| = min_i sqrt(G_ii)``
``max_norm``    ``max_i sqrt(G_ii)``
``inner01``     ``G_01``: one pair per trial, so over trials an i.i.d. sample of
                the pairwise inner product's distribution
``cos01``       the cosine of that pair
==============  ================================================================

For each mini-batch size ``B`` the same first four statistics of the Gram of
mini-batch mean gradients (block sums of ``G`` over consecutive blocks of
``B`` samples, divided by ``B^2``) form :data:`MINIBATCH_COLUMNS`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import theory

__all__ = ["TRIAL_COLUMNS", "MINIBATCH_COLUMNS", "TrialBlock", "trial_record"]

TRIAL_COLUMNS = (
    "finite",
    "min_inner",
    "min_cos",
    "offdiag_mean",
    "neg_pairs",
    "min_norm",
    "max_norm",
    "inner01",
    "cos01",
)
MINIBATCH_COLUMNS = ("min_inner", "min_cos", "offdiag_mean", "neg_pairs")


@dataclasses.dataclass(frozen=True)
class TrialBlock:
    """The records of a chunk of trials of one configuration.

    Attributes:
        trials: ``(m,)`` trial indices.
        base: ``(m, len(TRIAL_COLUMNS))`` records.
        batch_sizes: The mini-batch sizes ``B``.
        minibatch: ``(m, len(batch_sizes), len(MINIBATCH_COLUMNS))`` records.
    """

    trials: np.ndarray
    base: np.ndarray
    batch_sizes: tuple[int, ...]
    minibatch: np.ndarray


def _four(G: np.ndarray) -> list[float]:
    return [
        theory.confusion.min_inner(G),
        theory.min_cosine(G),
        theory.offdiag_mean(G),
        float(theory.confusion.negative_pairs(G)),
    ]


def trial_record(
    G: np.ndarray, batch_sizes: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The record of one trial from its Gram matrix (numpy reference).

    Args:
        G: ``(n, n)`` per-sample gradient Gram matrix.
        batch_sizes: Mini-batch sizes ``B`` (each divides ``n``, ``n / B >= 2``).

    Returns:
        ``(base, minibatch)`` arrays laid out as :data:`TRIAL_COLUMNS` and
        ``(len(batch_sizes), len(MINIBATCH_COLUMNS))``.
    """
    base = np.full(len(TRIAL_COLUMNS), np.nan)
    mb = np.full((len(batch_sizes), len(MINIBATCH_COLUMNS)), np.nan)
    if not np.isfinite(G).all():
        base[0] = 0.0
        return base, mb
    norms = np.sqrt(np.diag(G))
    denom = norms[0] * norms[1]
    base[:] = [
        1.0,
        *_four(G),
        norms.min(),
        norms.max(),
        G[0, 1],
        G[0, 1] / denom if denom > 0 else np.nan,
    ]
    for j, b in enumerate(batch_sizes):
        mb[j] = _four(theory.minibatch_gram(G, b))
    return base, mb
