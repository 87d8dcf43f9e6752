"""The numba backend's trial: draws, forward, backward, Gram and statistics fused.

Each trial of a chunk runs in its own ``prange`` iteration and draws from its
own Philox stream (:mod:`montecarlo._rng`), in exactly the order of the numpy
reference (:mod:`montecarlo._trial`): data, labeling function, labels,
weights. So the numba and numpy backends give the same trials to float
tolerance, and a trial's record does not depend on chunking or thread count.

Notation: ``n`` samples, ``d`` input dimension, ``depth`` = beta hidden
layers of ``width`` units, ``A_p`` (``n x l_p``) activations, ``S_p`` their
``sigma'``, ``D_p`` (``n x l_p``) back-propagated errors ``df_i/dz_p``;
``G = sum_p (D_p D_p^T) o (A_{p-1} A_{p-1}^T)`` (THEORY.md section 2).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from montecarlo._config import (
    ACTIVATION_NAMES,
    DATA_NAMES,
    LABEL_NAMES,
    LOSS_NAMES,
    WEIGHT_NAMES,
    Config,
)
from montecarlo._rng import _nb_normals, _nb_uniforms
from montecarlo._stats import MINIBATCH_COLUMNS, TRIAL_COLUMNS

__all__ = ["pack_config", "run_chunk"]

_NB = len(TRIAL_COLUMNS)
_NM = len(MINIBATCH_COLUMNS)


def pack_config(config: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The configuration as ``(ints, floats, batch_sizes)`` arrays for the kernel."""
    ints = np.array(
        [
            config.n,
            config.d,
            config.depth,
            config.width,
            ACTIVATION_NAMES.index(config.activation),
            LOSS_NAMES.index(config.loss),
            int(config.output_activation),
            DATA_NAMES.index(config.data),
            LABEL_NAMES.index(config.labels),
            config.teacher_width,
            WEIGHT_NAMES.index(config.weights),
            int(config.fixed_data),
        ],
        dtype=np.int64,
    )
    floats = np.array(
        [config.label_value, config.kappa, config.scale, config.r, config.gamma]
    )
    return ints, floats, np.array(config.batch_sizes, dtype=np.int64)


@nb.njit(cache=True)
def _normals(st: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.empty(rows * cols)
    _nb_normals(st, out)
    return out.reshape((rows, cols))


@nb.njit(cache=True)
def _activate(code: int, Z: np.ndarray, A: np.ndarray, S: np.ndarray) -> None:
    """``A = sigma(Z)``, ``S = sigma'(Z)`` for activation ``ACTIVATION_NAMES[code]``."""
    z = Z.ravel()
    a = A.ravel()
    s = S.ravel()
    for k in range(z.size):
        x = z[k]
        if code == 0:  # relu; derivative 0 at 0, as torch
            a[k] = x if x > 0.0 else 0.0
            s[k] = 1.0 if x > 0.0 else 0.0
        elif code == 1:  # tanh
            t = np.tanh(x)
            a[k] = t
            s[k] = 1.0 - t * t
        elif code == 2:  # sigmoid
            e = 1.0 / (1.0 + np.exp(-x))
            a[k] = e
            s[k] = e * (1.0 - e)
        else:  # identity
            a[k] = x
            s[k] = 1.0


@nb.njit(cache=True)
def _haar(st: np.ndarray, m: int, k: int) -> np.ndarray:
    """Haar ``m x k`` with orthonormal columns (m >= k) or rows: sign-corrected QR."""
    big = max(m, k)
    small = min(m, k)
    Z = _normals(st, big, small)
    Q, R = np.linalg.qr(Z)
    for j in range(small):
        if R[j, j] < 0.0:
            Q[:, j] = -Q[:, j]
    if m < k:
        return np.ascontiguousarray(Q.T)
    return np.ascontiguousarray(Q)


@nb.njit(cache=True)
def _draw_data(st, ints, floats):
    n, d = ints[0], ints[1]
    X = _normals(st, n, d)
    for i in range(n):
        X[i] /= np.sqrt(np.sum(X[i] ** 2))
    if ints[7] == 1:  # unit ball
        u = np.empty(n)
        _nb_uniforms(st, u)
        for i in range(n):
            X[i] *= u[i] ** (1.0 / d)
    labels = ints[8]
    y = np.empty(n)
    if labels == 0:
        y[:] = floats[0]
    elif labels == 1 or labels == 2:
        v = _normals(st, 1, d)[0]
        v /= np.sqrt(np.sum(v**2))
        y[:] = X @ v
        if labels == 2:
            y[:] = np.tanh(y)
    elif labels == 3:
        tw = ints[9]
        U = _normals(st, tw, d)
        a = _normals(st, 1, tw)[0]
        lip = np.sqrt(np.sum(a**2)) * np.linalg.norm(U, 2)
        y[:] = np.tanh(X @ U.T) @ (a / lip)
    else:
        u = np.empty(n)
        _nb_uniforms(st, u)
        for i in range(n):
            y[i] = -1.0 if u[i] < 0.5 else 1.0
    return X, y


@nb.njit(cache=True)
def _draw_weights(st, ints, floats):
    d, depth, width, kind = ints[1], ints[2], ints[3], ints[10]
    Ws = []
    if kind == 4:  # orthogonal linear network of Theorem 6.1
        for _ in range(depth - 1):
            Ws.append(_haar(st, d, d))
        u = _normals(st, 1, d)
        u /= np.sqrt(np.sum(u**2))
        Ws.append(u)
        return Ws
    fan_in = d
    for p in range(depth + 1):
        rows = width if p < depth else 1
        if kind == 0:  # gaussian, Strategy 4.1
            std = np.sqrt(1.0 / d) if p == 0 else np.sqrt(1.0 / (floats[1] * fan_in))
            Ws.append(_normals(st, rows, fan_in) * std)
        elif kind == 1:  # orthogonal
            Ws.append(_haar(st, rows, fan_in))
        else:  # small (and the centre of ball)
            Z = _normals(st, rows, fan_in)
            Ws.append(Z * (floats[2] / np.linalg.norm(Z, 2)))
        fan_in = rows
    if kind == 3:  # ball of radius r around the small-weight centre
        P = 0
        for W in Ws:
            P += W.size
        direction = np.empty(P)
        _nb_normals(st, direction)
        direction /= np.sqrt(np.sum(direction**2))
        u = np.empty(1)
        _nb_uniforms(st, u)
        radius = floats[3] * u[0] ** (1.0 / P)
        k = 0
        for W in Ws:
            w = W.ravel()
            for j in range(w.size):
                w[j] += radius * direction[k]
                k += 1
    return Ws


@nb.njit(cache=True)
def _gram(Ws, X, y, ints, floats) -> np.ndarray:
    act, loss, out_act = ints[4], ints[5], ints[6]
    gamma = floats[4]
    L = len(Ws)
    As = [X]
    Ss = []
    for p in range(L):
        Z = As[p] @ Ws[p].T
        A = np.empty_like(Z)
        S = np.empty_like(Z)
        _activate(act if (p < L - 1 or out_act == 1) else 3, Z, A, S)
        As.append(A)
        Ss.append(S)
    g = gamma * As[L][:, 0]
    if loss == 0:
        dl = g - y
    else:
        dl = -y / (1.0 + np.exp(y * g))
    D = (dl * gamma).reshape((-1, 1)) * Ss[L - 1]
    n = X.shape[0]
    G = np.zeros((n, n))
    for p in range(L - 1, -1, -1):
        G += (D @ D.T) * (As[p] @ As[p].T)
        if p > 0:
            D = (D @ Ws[p]) * Ss[p - 1]
    return G


@nb.njit(cache=True)
def _four(G: np.ndarray, out: np.ndarray) -> None:
    """min_inner, min_cos, offdiag_mean, neg_pairs of ``G`` into ``out[:4]``."""
    n = G.shape[0]
    mn = np.inf
    mc = np.inf
    total = 0.0
    neg = 0
    for i in range(n):
        for j in range(i + 1, n):
            v = G[i, j]
            total += v
            if v < mn:
                mn = v
            if v < 0.0:
                neg += 1
            den = np.sqrt(G[i, i]) * np.sqrt(G[j, j])
            if den > 0.0:
                c = v / den
                if c < mc:
                    mc = c
    out[0] = mn
    out[1] = mc if mc < np.inf else np.nan
    out[2] = 2.0 * total / (n * (n - 1))
    out[3] = neg


@nb.njit(cache=True)
def _record(G, batch_sizes, base, mb) -> None:
    base[:] = np.nan
    mb[:] = np.nan
    if not np.all(np.isfinite(G)):
        base[0] = 0.0
        return
    n = G.shape[0]
    base[0] = 1.0
    tmp = np.empty(4)
    _four(G, tmp)
    base[1:5] = tmp
    norms = np.sqrt(np.diag(G))
    base[5] = norms.min()
    base[6] = norms.max()
    base[7] = G[0, 1]
    den = norms[0] * norms[1]
    base[8] = G[0, 1] / den if den > 0.0 else np.nan
    for j in range(batch_sizes.size):
        B = batch_sizes[j]
        m = n // B
        Gb = np.zeros((m, m))
        for a in range(m):
            for b in range(m):
                Gb[a, b] = G[a * B : (a + 1) * B, b * B : (b + 1) * B].sum() / (B * B)
        _four(Gb, tmp)
        mb[j, :] = tmp


@nb.njit(cache=True, parallel=True)
def _run_chunk(keys, trials, ints, floats, batch_sizes, X_fixed, y_fixed, base, mb):
    for t in nb.prange(trials.size):
        trial = np.uint64(trials[t])
        st = np.empty(5, dtype=np.uint64)
        st[0] = keys[0]
        st[1] = keys[1]
        st[2] = trial & np.uint64(0xFFFFFFFF)
        st[3] = trial >> np.uint64(32)
        st[4] = np.uint64(0)
        if ints[11] == 1:
            X = X_fixed
            y = y_fixed
        else:
            X, y = _draw_data(st, ints, floats)
        Ws = _draw_weights(st, ints, floats)
        G = _gram(Ws, X, y, ints, floats)
        _record(G, batch_sizes, base[t], mb[t])


def run_chunk(
    config: Config,
    key: tuple[int, int],
    trials: np.ndarray,
    fixed: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the given trials of ``config`` in parallel over numba's threads.

    Args:
        config: The configuration.
        key: Philox key of the configuration's streams.
        trials: Trial indices.
        fixed: The shared ``(X, y)`` when ``config.fixed_data``.

    Returns:
        ``(base, minibatch)`` records of shape ``(m, 9)`` and ``(m, nB, 4)``.
    """
    ints, floats, bs = pack_config(config)
    trials = np.ascontiguousarray(trials, dtype=np.uint64)
    base = np.empty((trials.size, _NB))
    mb = np.empty((trials.size, bs.size, _NM))
    if fixed is None:
        X_fixed, y_fixed = np.zeros((1, 1)), np.zeros(1)
    else:
        X_fixed, y_fixed = (np.ascontiguousarray(a, dtype=np.float64) for a in fixed)
    _run_chunk(
        np.array(key, dtype=np.uint64), trials, ints, floats, bs, X_fixed, y_fixed, base, mb
    )
    return base, mb
