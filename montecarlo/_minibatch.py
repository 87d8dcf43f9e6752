r"""Section 8's mini-batch statement, checked with the exact batch-pair moments.

Section 8 of the paper: "The variance of the gradient inner product scales
down as 1/B^2 in this case, and thus eta is expected to decrease as B grows."

Notation: ``n`` samples (the paper's ``N``), ``d`` input dimension, widths
``[l_0, l_1]`` (depth ``beta = 2``), ``G`` the per-sample gradient Gram matrix
(``theory.gram``), ``B`` the mini-batch size, ``K`` draws of (weights, data).

For each draw, ``X_B = <g_{S_0}, g_{S_1}>`` for two disjoint batches drawn
without replacement has the exact moments of
:func:`theory._minibatch.minibatch_moments` (no sampling of batches):

.. math:: \mathrm{Var}(X_B) = \frac{v - 2 c_1 + c_0}{B^2}
          + \frac{2 (c_1 - c_0)}{B} + c_0,

where ``c_1`` is essentially the variance of ``<grad f_i, mean gradient>``:
the ``1/B^2`` rate needs a vanishing mean gradient. The mini-batch confusion
``eta_B`` is that of the ``n / B`` batch functions of one epoch's partition
into consecutive blocks (``theory.eta(theory.minibatch_gram(G, B))``): the
theorems' finite sum ``F = (B/n) sum_b f_b`` with ``f_b`` the batch means.
The data are i.i.d., so consecutive blocks are a uniformly random partition.

Ensembles (:data:`ENSEMBLES`), all with ``n = 64`` sphere data in ``d = 10``,
labels from ``theory.labels.tanh_teacher``, square loss, widths ``[32, 32]`` and
Strategy 4.1 weights (``kappa = 1``):

- ``tanh_init``: the paper's tanh network (tanh output) at initialization;
- ``linear_init``: the linear network (identity activation, linear output) at
  initialization;
- ``linear_stationary``: the same linear network with the read-out ``W_2``
  replaced by ``v^T (W_1 W_0)^+``, ``v`` the least-squares fit of ``y`` on
  ``X``. The network computes ``x -> <v, x>``, a global minimizer of the
  empirical risk: every layer's mean gradient is proportional to
  ``sum_i r_i x_i = 0`` (normal equations, residuals ``r``), while the
  per-sample gradients are not zero. It isolates the effect of the mean
  gradient at equal architecture.

Draw ``k`` of an ensemble uses ``PhiloxStream(stream_key(seed,
"minibatch:<ensemble>"), k)``: ``sphere(rng, n, d)``, then
``tanh_teacher(rng, d)``, then ``gaussian_weights(rng, d, widths, kappa=1)``.

``minibatch.json``: ``experiment``, ``seed``, ``quick``, ``seconds``,
``settings`` (``n``, ``d``, ``widths``, ``kappa``, ``data``, ``labels``,
``loss``, ``batch_sizes``, ``draws``, ``eta_partition``, ``stream``) and
``ensembles``, a list of ``{name, description, skipped, variance, mean, eta,
exponent, pair_variance, shared_covariance, disjoint_covariance,
mean_gradient_share}``: per kept draw, ``variance[k][b] = Var(X_B)`` and
``eta[k][b] = eta_B`` for ``B = batch_sizes[b]``, ``mean[k] = E[X_B]`` (the
same for every ``B``), ``exponent[k]`` the least-squares slope of ``log
Var(X_B)`` on ``log B`` (``null`` if some variance is 0), ``v, c_1, c_0``,
and ``||grad F||^2 / mean_i ||grad f_i||^2 = 1^T G 1 / (n tr G)``. Draws with
a non-finite ``G`` or ``tr G = 0`` are counted in ``skipped``.
"""

from __future__ import annotations

import json
import math
import pathlib
import time

import numpy as np
from threadpoolctl import threadpool_limits

import theory
from montecarlo._rng import PhiloxStream, stream_key
from montecarlo._samplers import gaussian_weights, sphere
from theory._minibatch import minibatch_moments

__all__ = [
    "ENSEMBLES",
    "BATCH_SIZES",
    "DRAWS",
    "N",
    "D",
    "WIDTHS",
    "least_squares_readout",
    "draw_gram",
    "minibatch_experiment",
    "run_minibatch",
]

ENSEMBLES = {
    "tanh_init": "tanh network (tanh output) at Gaussian initialization",
    "linear_init": "linear network at Gaussian initialization",
    "linear_stationary": (
        "linear network, least-squares read-out (global minimizer: zero mean gradient)"
    ),
}
"""Ensemble name -> description (see the module docstring)."""

BATCH_SIZES = (1, 2, 4, 8, 16)
"""Mini-batch sizes ``B`` (each divides ``N``; ``2B <= N``)."""

DRAWS = {True: 200, False: 2000}
"""Draws of (weights, data) per ensemble: quick and full runs."""

N = 64
D = 10
WIDTHS = (32, 32)


def least_squares_readout(
    weights: list[np.ndarray], X: np.ndarray, y: np.ndarray
) -> list[np.ndarray]:
    """Replace the read-out of a linear network by the least-squares one.

    With hidden product ``F = W_{beta-1} ... W_0`` (``l x d``, full column rank
    ``d``), the new read-out is ``v^T F^+`` with ``v = argmin ||X v - y||``, so
    the network computes ``x -> <v, x>``.

    Args:
        weights: ``[W_0, ..., W_beta]`` of a network with identity activation;
            not modified.
        X: Inputs, shape ``(n, d)``, rank ``d``.
        y: Labels, shape ``(n,)``.

    Returns:
        New weights with the same hidden layers and the least-squares read-out.

    Raises:
        ValueError: If ``X`` or the hidden product is not of full column rank.
    """
    X = np.asarray(X, dtype=np.float64)
    F = weights[0]
    for W in weights[1:-1]:
        F = W @ F
    d = X.shape[1]
    if np.linalg.matrix_rank(X) < d or np.linalg.matrix_rank(F) < d:
        raise ValueError(
            f"X and the hidden product W_{{beta-1}}...W_0 must have rank d = {d}, got "
            f"{np.linalg.matrix_rank(X)} and {np.linalg.matrix_rank(F)}"
        )
    v = np.linalg.lstsq(X, np.asarray(y, dtype=np.float64), rcond=None)[0]
    return [*weights[:-1], (v @ np.linalg.pinv(F))[None, :]]


def draw_gram(ensemble: str, rng: PhiloxStream) -> np.ndarray:
    """The Gram matrix of one draw of ``ensemble`` (module docstring).

    Args:
        ensemble: A key of :data:`ENSEMBLES`.
        rng: The draw's stream.

    Returns:
        ``G``, shape ``(N, N)``.

    Raises:
        ValueError: If ``ensemble`` is unknown.
    """
    if ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble must be one of {list(ENSEMBLES)}, got {ensemble!r}")
    X = sphere(rng, N, D)
    y = theory.labels.tanh_teacher(rng, D)(X)
    weights = gaussian_weights(rng, D, WIDTHS, kappa=1.0)
    if ensemble == "tanh_init":
        return theory.gram(weights, X, y, activation="tanh", loss="square")
    if ensemble == "linear_stationary":
        weights = least_squares_readout(weights, X, y)
    return theory.gram(
        weights, X, y, activation="identity", loss="square", output_activation=False
    )


def _exponent(variance: np.ndarray, batch_sizes: np.ndarray) -> float:
    """Least-squares slope of ``log Var(X_B)`` on ``log B`` (NaN if a Var is 0)."""
    if not (variance > 0).all():
        return math.nan
    x = np.log(batch_sizes)
    xc = x - x.mean()
    return float(xc @ np.log(variance) / (xc @ xc))


def minibatch_experiment(*, seed: int, draws: int) -> dict:
    """The mini-batch data: exact moments and confusion per draw and ``B``.

    Args:
        seed: Run seed, an integer ``>= 0``.
        draws: Draws per ensemble, an integer ``>= 1``.

    Returns:
        The dictionary written by :func:`run_minibatch` (without ``seed``,
        ``quick`` and ``seconds``).

    Raises:
        ValueError: If an argument is out of range.
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    bs = np.array(BATCH_SIZES, dtype=float)
    ensembles = []
    for name, description in ENSEMBLES.items():
        key = stream_key(seed, f"minibatch:{name}")
        rec: dict[str, list] = {
            k: []
            for k in (
                "variance",
                "mean",
                "eta",
                "exponent",
                "pair_variance",
                "shared_covariance",
                "disjoint_covariance",
                "mean_gradient_share",
            )
        }
        skipped = 0
        for k in range(draws):
            # small products: one BLAS thread is fastest, and never oversubscribes
            with threadpool_limits(1, user_api="blas"):
                G = draw_gram(name, PhiloxStream(key, k))
            if not (np.isfinite(G).all() and np.trace(G) > 0):
                skipped += 1  # overflow, or every per-sample gradient is zero
                continue
            m = minibatch_moments(G)
            var = np.array([m.variance(B) for B in BATCH_SIZES])
            rec["variance"].append(var.tolist())
            rec["mean"].append(m.mean)
            rec["eta"].append(
                [theory.eta(theory.minibatch_gram(G, B)) for B in BATCH_SIZES]
            )
            exponent = _exponent(var, bs)
            rec["exponent"].append(None if math.isnan(exponent) else exponent)
            rec["pair_variance"].append(m.pair_variance)
            rec["shared_covariance"].append(m.shared_covariance)
            rec["disjoint_covariance"].append(m.disjoint_covariance)
            # ||grad F||^2 / mean_i ||grad f_i||^2 = (1^T G 1 / n^2) / (tr G / n)
            rec["mean_gradient_share"].append(float(G.sum() / (N * np.trace(G))))
        ensembles.append(
            {"name": name, "description": description, "skipped": skipped, **rec}
        )
    return {
        "experiment": "minibatch",
        "settings": {
            "n": N,
            "d": D,
            "widths": list(WIDTHS),
            "kappa": 1.0,
            "data": "sphere",
            "labels": "tanh_teacher",
            "loss": "square",
            "batch_sizes": list(BATCH_SIZES),
            "draws": int(draws),
            "eta_partition": "consecutive blocks of B samples",
            "stream": 'stream_key(seed, "minibatch:<ensemble>"), draw k',
        },
        "ensembles": ensembles,
    }


def run_minibatch(out_dir: pathlib.Path, *, seed: int, quick: bool = True) -> dict:
    """Run the mini-batch experiment and write ``out_dir / "minibatch.json"``.

    Args:
        out_dir: Directory for the JSON file (created if missing).
        seed: Run seed, an integer ``>= 0``.
        quick: :data:`DRAWS` ``[True]`` draws per ensemble instead of
            ``DRAWS[False]``. Defaults to True.

    Returns:
        The dictionary written (:func:`minibatch_experiment` plus ``seed``,
        ``quick`` and ``seconds``, the wall time).

    Raises:
        ValueError: If ``seed`` is not an integer ``>= 0``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    t0 = time.perf_counter()
    result = minibatch_experiment(seed=int(seed), draws=DRAWS[bool(quick)])
    result["seed"] = int(seed)
    result["quick"] = bool(quick)
    result["seconds"] = time.perf_counter() - t0
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "minibatch.json").write_text(json.dumps(result, allow_nan=False))
    return result
