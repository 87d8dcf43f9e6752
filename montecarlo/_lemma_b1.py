r"""Lemma B.1 by Monte Carlo: the largest inner product of random sphere points.

Lemma B.1 of the paper (THEORY.md section 3, used in Section 2): for ``N``
points ``x_1, ..., x_N`` i.i.d. uniform on the sphere ``S^{d-1}``,

.. math:: M_N = \max_{i \ne j} |\langle x_i, x_j \rangle| = O(1/\sqrt{d})
          \quad (N \text{ fixed}).

Notation: ``d`` dimension, ``N`` points, ``R`` trials, ``m = N (N - 1)/2``
pairs, ``a = (d - 1)/2``.

**Exact law of one pair.** ``<x_i, x_j>`` has the law of one coordinate of a
uniform point of ``S^{d-1}``: ``(1 + <x_i, x_j>)/2 ~ Beta(a, a)``, so
``p(t) = P(|<x_i, x_j>| > t) = 2 P(Beta(a, a) > (1 + t)/2)``.

**Pairs are pairwise independent.** Given ``x_1``, the inner products
``<x_1, x_j>`` (``j >= 2``) are i.i.d. with a law that does not depend on
``x_1`` (rotation invariance), so the inner products of a star (pairs sharing
one point) are mutually independent, and pairs without a common point are
independent because they use disjoint points. Hence any two distinct pairs
``e != f`` have ``P(|<e>| > t, |<f>| > t) = p(t)^2`` and the first two
Bonferroni sums are exact:

.. math::

    S_1 = m\, p(t), \qquad S_2 = \binom{m}{2} p(t)^2, \qquad
    \max\bigl(S_1 - S_2,\ 1 - (1 - p(t))^{N-1}\bigr) \le P(M_N > t)
    \le \min(1, S_1),

the second lower bound being the exact law of the star at one point
(:func:`bonferroni_bracket`). Triples of pairs forming a triangle are not
independent, so the bracket stops at ``S_2``.

**Scale.** ``<x_i, x_j>`` is strictly sub-Gaussian with variance proxy
``1/d`` (a symmetric Beta law is strictly sub-Gaussian: Marchal & Arbel,
Electron. Commun. Probab. 22 (2017), no. 54), so the maximal inequality for
the ``2m`` variables ``+-<x_i, x_j>`` gives ``E[M_N] sqrt(d) <= sqrt(2 log(N
(N - 1)))`` (:func:`maximal_ceiling`; at most ``2 sqrt(log N)``). As
``d -> infinity`` with ``N`` fixed, ``sqrt(d) <x_i, x_j>`` converge jointly to
i.i.d. standard normals, so ``E[M_N] sqrt(d)`` tends to the mean of the
largest of ``m`` i.i.d. ``|Z|`` (:func:`gaussian_limit`).

**Experiment** (:func:`run_lemma_b1`). For every ``d`` of the grid and trial
``t``, ``n_max = max(N grid)`` points are drawn by
``montecarlo.samplers.sphere(PhiloxStream(stream_key(seed, "lemma_b1:d=<d>:n=<n_max>"),
t), n_max, d)``; ``M_N`` is the maximum over the first ``N`` points, for every
``N`` of the grid (nested prefixes of one sample), and the ``n_max / 2``
disjoint pairs ``(x_{2k}, x_{2k+1})`` give independent draws of the pair law
(KS test per ``d``, :func:`montecarlo.claims.tests.sphere_pair_ks`). The
claims are built by :func:`montecarlo.claims._lemma_minibatch.lemma_b1_claims`.

``lemma_b1.json``: ``experiment``, ``seed``, ``quick``, ``seconds``,
``settings`` (``dims``, ``ns``, ``trials``, ``fit_min_d``, ``tail_level``,
``pairs_per_trial``, ``stream``), ``reference`` (``ceiling`` and
``gaussian_limit``, one value per ``N``) and ``by_d``, one entry per ``d``:
``{d, max_inner, ks, pair_hist, tail}`` with ``max_inner[t][j] = M_{ns[j]}``
of trial ``t``, ``ks = {n, statistic, p_value}`` (pair law),
``pair_hist = {edges, counts, n}`` (histogram of ``sqrt(d) <x_{2k},
x_{2k+1}>``) and ``tail[j] = {n, t, low, high, s2}`` (the threshold with
``S_1 = tail_level`` and the exact bracket of ``P(M_N > t)``).
"""

from __future__ import annotations

import json
import math
import pathlib
import time
from collections.abc import Sequence

import numpy as np
from scipy import integrate, stats
from threadpoolctl import threadpool_limits

from montecarlo._rng import PhiloxStream, stream_key
from montecarlo._samplers import sphere
from montecarlo.claims._tests import sphere_pair_ks

__all__ = [
    "DIMS",
    "NS",
    "TRIALS",
    "FIT_MIN_D",
    "TAIL_LEVEL",
    "pair_tail",
    "bonferroni_bracket",
    "tail_threshold",
    "maximal_ceiling",
    "gaussian_limit",
    "max_inner_trials",
    "lemma_b1_experiment",
    "run_lemma_b1",
]

DIMS = (5, 10, 20, 40, 80, 160, 320, 640)
"""The grid of dimensions ``d``."""

NS = (4, 8, 16, 32, 64, 128, 256)
"""The grid of numbers of points ``N`` (nested prefixes of one sample)."""

TRIALS = {True: 200, False: 1000}
"""Trials per ``d``: quick and full runs."""

FIT_MIN_D = 80
"""Smallest ``d`` in the exponent fits. For ``d >= 80`` and ``N <= 256`` the
local exponent of ``E[M_N]`` in ``d`` is within 0.04 of ``-1/2`` (computed from
the exact pair law with the pairs treated as independent); below, ``M_N``
saturates at 1 for large ``N`` and the local exponent is far from its limit
(``-0.09`` between ``d = 5`` and ``10`` at ``N = 256``)."""

TAIL_LEVEL = 0.1
"""``S_1`` at the tail threshold ``t`` of each cell; the bracket is then
``[0.1 - S_2, 0.1]`` with ``S_2 <= 0.005``."""

_HIST_EDGES = np.linspace(-4.0, 4.0, 41)


def _check_d(d: object) -> int:
    if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 2:
        raise ValueError(f"d must be an integer >= 2, got {d!r}")
    return int(d)


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    return int(n)


def pair_tail(t: float, d: int) -> float:
    """``p(t) = P(|<x, y>| > t)`` for independent uniform ``x, y`` on ``S^{d-1}``.

    Args:
        t: Threshold in ``[0, 1]``.
        d: Dimension, an integer ``>= 2``.

    Returns:
        ``2 P(Beta(a, a) > (1 + t)/2)``, ``a = (d - 1)/2``.

    Raises:
        ValueError: If ``t`` or ``d`` is out of range.
    """
    d = _check_d(d)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t!r}")
    a = (d - 1) / 2.0
    return float(2.0 * stats.beta.sf((1.0 + t) / 2.0, a, a))


def bonferroni_bracket(t: float, n: int, d: int) -> tuple[float, float, float, float]:
    """Exact bounds on ``P(M_n > t)`` from the first two Bonferroni sums.

    Args:
        t: Threshold in ``[0, 1]``.
        n: Number of points, an integer ``>= 2``.
        d: Dimension, an integer ``>= 2``.

    Returns:
        ``(low, high, S_1, S_2)`` with ``low = max(S_1 - S_2, 1 - (1 - p)^{n-1},
        0)`` and ``high = min(1, S_1)`` (module docstring).

    Raises:
        ValueError: If an argument is out of range.
    """
    n = _check_n(n)
    p = pair_tail(t, d)
    m = n * (n - 1) // 2
    s1 = m * p
    s2 = m * (m - 1) / 2.0 * p * p
    star = -math.expm1((n - 1) * math.log1p(-p)) if p < 1.0 else 1.0
    return max(s1 - s2, star, 0.0), min(1.0, s1), s1, s2


def tail_threshold(n: int, d: int, level: float = TAIL_LEVEL) -> float:
    """The ``t`` at which ``S_1 = m p(t)`` equals ``level``.

    Args:
        n: Number of points, an integer ``>= 2``.
        d: Dimension, an integer ``>= 2``.
        level: The value of ``S_1``, in ``(0, m)``. Defaults to
            :data:`TAIL_LEVEL`.

    Returns:
        ``t = 2 q - 1`` with ``q`` the upper ``level / (2m)`` quantile of
        ``Beta(a, a)``.

    Raises:
        ValueError: If an argument is out of range.
    """
    n, d = _check_n(n), _check_d(d)
    m = n * (n - 1) // 2
    if not 0.0 < level < m:
        raise ValueError(f"level must be in (0, m = {m}), got {level!r}")
    a = (d - 1) / 2.0
    return float(2.0 * stats.beta.isf(level / (2.0 * m), a, a) - 1.0)


def maximal_ceiling(n: int) -> float:
    """``sqrt(2 log(n (n - 1)))``: the sub-Gaussian bound on ``E[M_n] sqrt(d)``.

    Args:
        n: Number of points, an integer ``>= 2``.

    Returns:
        The ceiling, valid for every ``d >= 2`` (module docstring).

    Raises:
        ValueError: If ``n`` is out of range.
    """
    n = _check_n(n)
    return math.sqrt(2.0 * math.log(n * (n - 1)))


def gaussian_limit(n: int) -> float:
    """``lim_{d -> inf} E[M_n] sqrt(d)``: the mean of the largest of ``m`` ``|Z_k|``.

    The ``Z_k`` are i.i.d. standard normal, one per pair.

    ``E max = int_0^inf 1 - (1 - 2 Phi(-t))^m dt`` by quadrature.

    Args:
        n: Number of points, an integer ``>= 2``.

    Returns:
        The limit.

    Raises:
        ValueError: If ``n`` is out of range.
    """
    n = _check_n(n)
    m = n * (n - 1) // 2

    def tail(t: float) -> float:
        return -math.expm1(m * math.log1p(-2.0 * stats.norm.sf(t)))

    value, _ = integrate.quad(tail, 0.0, 40.0, limit=200, epsabs=1e-12)
    return float(value)


def max_inner_trials(
    d: int, ns: Sequence[int], trials: int, key: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """``M_N`` for the nested prefixes ``N`` of ``trials`` samples of one ``d``.

    Trial ``t`` draws ``sphere(PhiloxStream(key, t), max(ns), d)``.

    Args:
        d: Dimension, an integer ``>= 2``.
        ns: Increasing numbers of points, each ``>= 2``.
        trials: Number of trials, ``>= 1``.
        key: Philox key of this ``d`` (:func:`montecarlo.samplers.stream_key`).

    Returns:
        ``(M, pairs)``: ``M`` of shape ``(trials, len(ns))``, and the inner
        products of the disjoint pairs ``(x_{2k}, x_{2k+1})``, shape
        ``(trials * (max(ns) // 2),)`` (independent draws of the pair law).

    Raises:
        ValueError: If an argument is out of range.
    """
    d = _check_d(d)
    grid = [_check_n(n) for n in ns]
    if not grid or any(b <= a for a, b in zip(grid, grid[1:], strict=False)):
        raise ValueError(f"ns must be a non-empty increasing sequence, got {ns!r}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1, got {trials!r}")
    n_max = grid[-1]
    cols = np.array(grid) - 1
    M = np.empty((trials, len(grid)))
    pairs = np.empty((trials, n_max // 2))
    half = 2 * (n_max // 2)
    # small products: one BLAS thread is fastest, and never oversubscribes
    with threadpool_limits(1, user_api="blas"):
        for t in range(trials):
            x = sphere(PhiloxStream(key, t), n_max, d)
            G = x @ x.T
            # a_j = max_{i < j} |G_ij|; M_N = max_{j < N} a_j
            col_max = np.abs(np.triu(G, 1)).max(axis=0)
            M[t] = np.maximum.accumulate(col_max)[cols]
            pairs[t] = np.einsum("ij,ij->i", x[0:half:2], x[1:half:2])
    return M, pairs.ravel()


def lemma_b1_experiment(
    *, seed: int, dims: Sequence[int], ns: Sequence[int], trials: int
) -> dict:
    """The Lemma B.1 data on a grid (see the module docstring).

    Args:
        seed: Run seed, an integer ``>= 0``.
        dims: Dimensions ``d``, each ``>= 2``, increasing.
        ns: Numbers of points ``N``, each ``>= 2``, increasing.
        trials: Trials per ``d``, ``>= 1``.

    Returns:
        The dictionary written by :func:`run_lemma_b1` (without ``seed``,
        ``quick`` and ``seconds``).

    Raises:
        ValueError: If an argument is out of range.
    """
    dims = [_check_d(d) for d in dims]
    if not dims or any(b <= a for a, b in zip(dims, dims[1:], strict=False)):
        raise ValueError(f"dims must be a non-empty increasing sequence, got {dims!r}")
    n_max = max(_check_n(n) for n in ns)
    by_d = []
    for d in dims:
        key = stream_key(seed, f"lemma_b1:d={d}:n={n_max}")
        M, pairs = max_inner_trials(d, ns, trials, key)
        statistic, p_value = sphere_pair_ks(pairs, d)
        counts, _ = np.histogram(np.sqrt(d) * pairs, bins=_HIST_EDGES)
        tail = []
        for n in ns:
            t = tail_threshold(n, d)
            low, high, s1, s2 = bonferroni_bracket(t, n, d)
            tail.append({"n": int(n), "t": t, "low": low, "high": high, "s2": s2})
        by_d.append(
            {
                "d": d,
                "max_inner": M.tolist(),
                "ks": {
                    "n": int(pairs.size),
                    "statistic": statistic,
                    "p_value": p_value,
                },
                "pair_hist": {
                    "edges": _HIST_EDGES.tolist(),
                    "counts": counts.tolist(),
                    "n": int(pairs.size),
                },
                "tail": tail,
            }
        )
    return {
        "experiment": "lemma_b1",
        "settings": {
            "dims": dims,
            "ns": [int(n) for n in ns],
            "trials": int(trials),
            "fit_min_d": FIT_MIN_D,
            "tail_level": TAIL_LEVEL,
            "pairs_per_trial": n_max // 2,
            "stream": 'stream_key(seed, "lemma_b1:d=<d>:n=<max N>"), trial t',
        },
        "reference": {
            "ceiling": [maximal_ceiling(n) for n in ns],
            "gaussian_limit": [gaussian_limit(n) for n in ns],
        },
        "by_d": by_d,
    }


def run_lemma_b1(out_dir: pathlib.Path, *, seed: int, quick: bool = True) -> dict:
    """Run the Lemma B.1 experiment and write ``out_dir / "lemma_b1.json"``.

    Args:
        out_dir: Directory for the JSON file (created if missing).
        seed: Run seed, an integer ``>= 0``.
        quick: :data:`TRIALS` ``[True]`` trials per ``d`` instead of
            ``TRIALS[False]``. Defaults to True.

    Returns:
        The dictionary written (:func:`lemma_b1_experiment` plus ``seed``,
        ``quick`` and ``seconds``, the wall time).

    Raises:
        ValueError: If ``seed`` is not an integer ``>= 0``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    t0 = time.perf_counter()
    result = lemma_b1_experiment(
        seed=int(seed), dims=DIMS, ns=NS, trials=TRIALS[bool(quick)]
    )
    result["seed"] = int(seed)
    result["quick"] = bool(quick)
    result["seconds"] = time.perf_counter() - t0
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "lemma_b1.json").write_text(json.dumps(result, allow_nan=False))
    return result
