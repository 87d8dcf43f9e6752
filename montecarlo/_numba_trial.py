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

Speed (see ``benchmarks/bench.py``): the matrix products go to BLAS, the two
symmetric Gram factors through ``dsyrk`` (half the flops of a general
product); the activations use branch-free ``exp``/``tanh`` (fdlibm, Cephes)
so their loops vectorize, and the random numbers come from the vectorized
generator of :mod:`montecarlo._rng`. :func:`gram` exposes the Gram kernel.

Trials from given normals: every draw function reads from a *source*
``(st, buf)``, the trial's Philox stream when ``buf`` is empty (the engine's
trials, unchanged), else the vector ``buf`` (normals as they are, uniforms as
``Phi(z)``). :func:`records_from_normals` and :func:`scores_from_normals` run
a batch of such vectors in parallel through the same draws, forward, backward,
Gram and statistics code; the rare-event estimator (:mod:`montecarlo._rare`)
calls the per-vector kernel ``_score_from_normals`` inside its own chains.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import llvmlite.binding as llvm
import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import get_cython_function_address, intrinsic
from numba.typed import List

from montecarlo._config import (
    ACTIVATION_NAMES,
    DATA_NAMES,
    LABEL_NAMES,
    LAYER_NAMES,
    LOSS_NAMES,
    WEIGHT_NAMES,
    Config,
)
from montecarlo._rng import _bits_f64, _nb_scaled_normals, _nb_uniforms
from montecarlo._stats import MINIBATCH_COLUMNS, TRIAL_COLUMNS

__all__ = [
    "STATISTICS",
    "gram",
    "pack_config",
    "records_from_normals",
    "run_chunk",
    "scores_from_normals",
]

_NB = len(TRIAL_COLUMNS)
_NM = len(MINIBATCH_COLUMNS)


def pack_config(config: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The configuration as ``(ints, floats, batch_sizes)`` arrays for the kernel.

    ``ints``: ``n, d, depth, width``, the indices of ``activation``, ``loss``,
    ``output_activation``, ``data``, ``labels``, then ``teacher_width``, the
    index of ``weights`` in ``WEIGHT_NAMES``, ``fixed_data``, the index of
    ``centre`` in ``WEIGHT_NAMES`` and of ``layers`` in ``LAYER_NAMES``.
    ``floats``: ``label_value, kappa, scale, r, gamma``.
    """
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
            WEIGHT_NAMES.index(config.centre),
            LAYER_NAMES.index(config.layers),
        ],
        dtype=np.int64,
    )
    floats = np.array(
        [config.label_value, config.kappa, config.scale, config.r, config.gamma]
    )
    return ints, floats, np.array(config.batch_sizes, dtype=np.int64)


# BLAS dsyrk (C = A A^T, one triangle: half the flops of a GEMM) from scipy's
# BLAS, the library numba's own matrix products use. The compiled code calls it
# by this symbol name, bound here at import, so cached kernels stay valid
# across processes.
_DSYRK = "montecarlo_dsyrk"
llvm.add_symbol(
    _DSYRK, get_cython_function_address("scipy.linalg.cython_blas", "dsyrk")
)


@intrinsic
def _dsyrk(typingctx, uplo, trans, n, k, alpha, a, lda, beta, c, ldc):
    """Fortran ``dsyrk(uplo, trans, n, k, alpha, a, lda, beta, c, ldc)`` on arrays.

    Every argument is an array (scalars as 1-element arrays) passed by its
    data pointer, so all of them stay alive for the duration of the call.
    """
    args = (uplo, trans, n, k, alpha, a, lda, beta, c, ldc)
    if not all(isinstance(t, types.Array) for t in args):
        return None

    def codegen(context, builder, signature, llargs):
        fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t] * 10)
        fn = cgutils.get_or_insert_function(builder.module, fnty, _DSYRK)
        ptrs = [
            builder.bitcast(
                context.make_array(t)(context, builder, v).data, cgutils.voidptr_t
            )
            for t, v in zip(signature.args, llargs, strict=True)
        ]
        builder.call(fn, ptrs)
        return context.get_dummy_value()

    return types.none(*args), codegen


@nb.njit(cache=True)
def _gram_factor(A: np.ndarray, out: np.ndarray) -> None:
    """Lower triangle (diagonal included) of ``A A^T`` into ``out`` (C order).

    ``A`` (``n x k``, C order) is, to Fortran, the ``k x n`` matrix ``A^T``;
    ``dsyrk('U', 'T')`` forms the upper triangle of ``(A^T)^T A^T = A A^T`` in
    Fortran order, which is the lower triangle in C order.
    """
    A = np.ascontiguousarray(A)
    n, k = A.shape
    ints = np.array([n, max(k, 1), n], dtype=np.int32)
    _dsyrk(
        np.array([85], dtype=np.uint8),  # 'U'
        np.array([84], dtype=np.uint8),  # 'T'
        ints[0:1],
        np.array([k], dtype=np.int32),
        np.ones(1),
        A,
        ints[1:2],
        np.zeros(1),
        out,
        ints[2:3],
    )


# --- random source: the Philox stream, or a given buffer of normals -----------
_SQRT1_2 = 0.70710678118654752440  # 1/sqrt(2): Phi(z) = erfc(-z/sqrt(2)) / 2
# Every draw function takes ``(st, buf)``. An empty ``buf`` selects the trial's
# Philox stream, whose state is ``st`` (see montecarlo._rng). Otherwise the
# numbers come from ``buf`` in request order and ``st[4]`` counts those consumed:
# a request for ``m`` normals takes the next ``m`` entries, a request for ``m``
# uniforms takes the next ``m`` entries ``z`` as ``Phi(z)`` (the standard normal
# CDF), so a trial is a deterministic function of one standard normal vector.


@nb.njit(cache=True, error_model="numpy")
def _fill_normals(st: np.ndarray, buf: np.ndarray, out: np.ndarray, scale: float):
    """Fill the flat ``out`` with ``scale`` times standard normals from the source."""
    if buf.size == 0:
        _nb_scaled_normals(st, out, scale)
        return
    k = st[4]
    st[4] = k + np.uint64(out.size)
    if st[4] > buf.size:  # buffer too short: NaN, and the count says so
        out[:] = np.nan
        return
    for i in range(out.size):
        out[i] = buf[k + np.uint64(i)] * scale


@nb.njit(cache=True, error_model="numpy")
def _fill_uniforms(st: np.ndarray, buf: np.ndarray, out: np.ndarray):
    """Fill the flat ``out`` with uniforms (``Phi(z)`` of the buffer's ``z``)."""
    if buf.size == 0:
        _nb_uniforms(st, out)
        return
    k = st[4]
    st[4] = k + np.uint64(out.size)
    if st[4] > buf.size:
        out[:] = np.nan
        return
    for i in range(out.size):
        out[i] = 0.5 * math.erfc(-buf[k + np.uint64(i)] * _SQRT1_2)


@nb.njit(cache=True)
def _normals(st, buf, rows: int, cols: int, scale: float = 1.0) -> np.ndarray:
    out = np.empty(rows * cols)
    _fill_normals(st, buf, out, scale)
    return out.reshape((rows, cols))


# Branch-free exp and tanh (fdlibm e_exp.c; Cephes tanh.c, < 3 ulp), written
# so that the activation loops vectorize: libm's scalar exp/tanh would not.
_INV_LN2 = 1.44269504088896338700e00
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_P1 = 1.66666666666666019037e-01
_P2 = -2.77777777770155933842e-03
_P3 = 6.61375632143793436117e-05
_P4 = -1.65339022054652515390e-06
_P5 = 4.13813679705723846039e-08
_TP0 = -9.64399179425052238628e-01
_TP1 = -9.92877231001918586564e01
_TP2 = -1.61468768441708447952e03
_TQ0 = 1.12811678491632931402e02
_TQ1 = 2.23548839060100448583e03
_TQ2 = 4.84406305325125486048e03


@nb.njit(cache=True, inline="always", error_model="numpy")
def _exp(x: float) -> float:
    """``exp(x)``: inf above ~709.8, 0 below ~-745, NaN for NaN (fdlibm)."""
    x = 800.0 if x > 800.0 else x  # exp overflows / underflows long before
    x = -800.0 if x < -800.0 else x
    kf = np.floor(x * _INV_LN2 + 0.5)
    kf = 0.0 if kf != kf else kf  # NaN: any k will do, the result is NaN
    hi = x - kf * _LN2_HI  # exact: _LN2_HI has 32 significant bits
    lo = kf * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    k = np.int64(kf)
    k1 = k >> 1  # 2^k as 2^k1 * 2^k2, both normal numbers, so that the
    k2 = k - k1  # product overflows to inf or underflows gradually
    s1 = _bits_f64(np.uint64(k1 + 1023) << np.uint64(52))
    s2 = _bits_f64(np.uint64(k2 + 1023) << np.uint64(52))
    return (y * s1) * s2


@nb.njit(cache=True, inline="always", error_model="numpy")
def _tanh(x: float) -> float:
    """``tanh(x)`` (Cephes: rational approximation below 0.625, exp above)."""
    t = -x if x < 0.0 else x
    z = x * x
    p = (_TP0 * z + _TP1) * z + _TP2
    q = ((z + _TQ0) * z + _TQ1) * z + _TQ2
    small = x + x * z * (p / q)
    tc = 22.0 if t > 22.0 else t  # tanh(22) = 1 in float64
    large = 1.0 - 2.0 / (_exp(2.0 * tc) + 1.0)
    large = -large if x < 0.0 else large
    return large if t >= 0.625 else small


@nb.njit(cache=True, error_model="numpy")
def _activate(code: int, Z: np.ndarray, S: np.ndarray) -> None:
    """``Z <- sigma(Z)`` in place and ``S = sigma'(Z)``, ``sigma`` named by ``code``."""
    z = Z.ravel()
    s = S.ravel()
    if code == 0:  # relu; derivative 0 at 0, as torch
        for k in range(z.size):
            x = z[k]
            z[k] = x if x > 0.0 else 0.0
            s[k] = 1.0 if x > 0.0 else 0.0
    elif code == 1:  # tanh
        for k in range(z.size):
            t = _tanh(z[k])
            z[k] = t
            s[k] = 1.0 - t * t
    elif code == 2:  # sigmoid
        for k in range(z.size):
            e = 1.0 / (1.0 + _exp(-z[k]))
            z[k] = e
            s[k] = e * (1.0 - e)
    else:  # identity
        for k in range(z.size):
            s[k] = 1.0


@nb.njit(cache=True)
def _haar(st: np.ndarray, buf: np.ndarray, m: int, k: int) -> np.ndarray:
    """Haar ``m x k`` with orthonormal columns (m >= k) or rows: sign-corrected QR."""
    big = max(m, k)
    small = min(m, k)
    Z = _normals(st, buf, big, small)
    Q, R = np.linalg.qr(Z)
    for j in range(small):
        if R[j, j] < 0.0:
            Q[:, j] = -Q[:, j]
    if m < k:
        return np.ascontiguousarray(Q.T)
    return np.ascontiguousarray(Q)


@nb.njit(cache=True)
def _draw_data(st, buf, ints, floats):
    n, d = ints[0], ints[1]
    X = _normals(st, buf, n, d)
    for i in range(n):
        X[i] /= np.sqrt(np.sum(X[i] ** 2))
    if ints[7] == 1:  # unit ball
        u = np.empty(n)
        _fill_uniforms(st, buf, u)
        for i in range(n):
            X[i] *= u[i] ** (1.0 / d)
    labels = ints[8]
    y = np.empty(n)
    if labels == 0:
        y[:] = floats[0]
    elif labels == 1 or labels == 2:
        v = _normals(st, buf, 1, d)[0]
        v /= np.sqrt(np.sum(v**2))
        y[:] = X @ v
        if labels == 2:
            y[:] = np.tanh(y)
    elif labels == 3:
        tw = ints[9]
        U = _normals(st, buf, tw, d)
        a = _normals(st, buf, 1, tw)[0]
        lip = np.sqrt(np.sum(a**2)) * np.linalg.norm(U, 2)
        y[:] = np.tanh(X @ U.T) @ (a / lip)
    else:
        u = np.empty(n)
        _fill_uniforms(st, buf, u)
        for i in range(n):
            y[i] = -1.0 if u[i] < 0.5 else 1.0
    return X, y


@nb.njit(cache=True)
def _uniform_spectrum(st, buf, rows: int, cols: int, scale: float) -> np.ndarray:
    """``U diag(scale u) V^T`` with Haar ``U``, ``V`` (``uniform_spectrum_weights``)."""
    k = min(rows, cols)
    U = _haar(st, buf, rows, k)
    V = _haar(st, buf, cols, k)
    u = np.empty(k)
    _fill_uniforms(st, buf, u)
    for j in range(k):
        U[:, j] *= scale * u[j]
    return np.ascontiguousarray(np.dot(U, V.T))


@nb.njit(cache=True)
def _signed_permutation(st, buf, m: int) -> np.ndarray:
    """``W[i, pi_i] = sigma_i`` (``_samplers.signed_permutation``): stable argsort."""
    keys = np.empty(m)
    _fill_uniforms(st, buf, keys)
    b = np.empty(m)
    _fill_uniforms(st, buf, b)
    perm = np.argsort(keys, kind="mergesort")
    W = np.zeros((m, m))
    for i in range(m):
        W[i, perm[i]] = -1.0 if b[i] < 0.5 else 1.0
    return W


@nb.njit(cache=True)
def _orthogonal_linear(st, buf, d: int, depth: int, layers: int):
    """Section 6's network, ``layers`` indexing ``LAYER_NAMES``."""
    Ws = []
    for _ in range(depth - 1):
        if layers == 0:  # haar
            Ws.append(_haar(st, buf, d, d))
        elif layers == 1:  # identity
            Ws.append(np.eye(d))
        else:  # signed permutation
            Ws.append(_signed_permutation(st, buf, d))
    if layers == 0:  # a unit row uniform on the sphere
        u = _normals(st, buf, 1, d)
        u /= np.sqrt(np.sum(u**2))
    else:
        u = np.zeros((1, d))
        if layers == 1:  # e_1
            u[0, 0] = 1.0
        else:  # sigma e_j, j = min(floor(d c_0), d - 1), sigma by c_1
            c = np.empty(2)
            _fill_uniforms(st, buf, c)
            j = min(int(np.floor(d * c[0])), d - 1)
            u[0, j] = -1.0 if c[1] < 0.5 else 1.0
    Ws.append(u)
    return Ws


@nb.njit(cache=True)
def _draw_weights(st, buf, ints, floats):
    d, depth, width, kind = ints[1], ints[2], ints[3], ints[10]
    if kind == 4:  # orthogonal linear network of Theorem 6.1
        return _orthogonal_linear(st, buf, d, depth, ints[13])
    Ws = []
    layered = ints[12] if kind == 3 else kind  # ball: the centre's ensemble
    fan_in = d
    for p in range(depth + 1):
        rows = width if p < depth else 1
        if layered == 0:  # gaussian, Strategy 4.1
            std = np.sqrt(1.0 / d) if p == 0 else np.sqrt(1.0 / (floats[1] * fan_in))
            Ws.append(_normals(st, buf, rows, fan_in, std))
        elif layered == 1:  # orthogonal
            Ws.append(_haar(st, buf, rows, fan_in))
        elif layered == 5:  # uniform spectrum
            Ws.append(_uniform_spectrum(st, buf, rows, fan_in, floats[2]))
        else:  # small
            Z = _normals(st, buf, rows, fan_in)
            Ws.append(Z * (floats[2] / np.linalg.norm(Z, 2)))
        fan_in = rows
    if kind == 3:  # ball of radius r around the centre
        P = 0
        for W in Ws:
            P += W.size
        direction = np.empty(P)
        _fill_normals(st, buf, direction, 1.0)
        direction /= np.sqrt(np.sum(direction**2))
        u = np.empty(1)
        _fill_uniforms(st, buf, u)
        radius = floats[3] * u[0] ** (1.0 / P)
        k = 0
        for W in Ws:
            w = W.ravel()
            for j in range(w.size):
                w[j] += radius * direction[k]
                k += 1
    return Ws


@nb.njit(cache=True, error_model="numpy")
def _gram(Ws, X, y, ints, floats) -> np.ndarray:
    act, loss, out_act = ints[4], ints[5], ints[6]
    gamma = floats[4]
    L = len(Ws)
    n = X.shape[0]
    # Every intermediate lives in one block: freed, it stays with the allocator,
    # whereas many MB-sized arrays are handed back to the OS on free and
    # page-faulted in again on every call (about 10% of a large Gram).
    widths = 0
    widest = 1
    for W in Ws:
        widths += W.shape[0]
        widest = max(widest, W.shape[0])
    ws = np.empty(2 * n * widths + 2 * n * widest + 2 * n * n)
    off = 0
    As = [X]
    Ss = []
    for p in range(L):
        size = n * Ws[p].shape[0]
        A = ws[off : off + size].reshape((n, Ws[p].shape[0]))
        S = ws[off + size : off + 2 * size].reshape((n, Ws[p].shape[0]))
        off += 2 * size
        np.dot(As[p], Ws[p].T, A)  # Z_p, activated in place
        _activate(act if (p < L - 1 or out_act == 1) else 3, A, S)
        As.append(A)
        Ss.append(S)
    slabs = (off, off + n * widest)  # D_p and D_{p-1}, alternately
    DD = ws[off + 2 * n * widest : off + 2 * n * widest + n * n].reshape((n, n))
    AA = ws[off + 2 * n * widest + n * n : off + 2 * n * widest + 2 * n * n].reshape(
        (n, n)
    )
    g = gamma * As[L][:, 0]
    if loss == 0:
        dl = (g - y) * gamma
    else:
        dl = -y / (1.0 + np.exp(y * g)) * gamma
    D = ws[slabs[0] : slabs[0] + n].reshape((n, 1))
    for i in range(n):
        D[i, 0] = dl[i] * Ss[L - 1][i, 0]
    G = np.zeros((n, n))
    for p in range(L - 1, -1, -1):
        _gram_factor(D, DD)
        _gram_factor(As[p], AA)
        for i in range(n):  # lower triangle
            for j in range(i + 1):
                G[i, j] += DD[i, j] * AA[i, j]
        if p > 0:
            start = slabs[(L - p) % 2]
            l_prev = Ws[p].shape[1]
            D_prev = ws[start : start + n * l_prev].reshape((n, l_prev))
            np.dot(D, Ws[p], D_prev)
            d_ = D_prev.ravel()
            s_ = Ss[p - 1].ravel()
            for k in range(d_.size):
                d_[k] *= s_[k]
            D = D_prev
    for i in range(n):
        for j in range(i):
            G[j, i] = G[i, j]
    return G


def gram(
    weights: Sequence[np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    *,
    activation: str = "tanh",
    loss: str = "square",
    output_activation: bool = True,
    gamma: float = 1.0,
) -> np.ndarray:
    """The Gram matrix ``G_ij = <grad f_i, grad f_j>`` by the numba backend's kernel.

    The compiled twin of :func:`theory.gram` (same formula, THEORY.md section
    2: ``G = sum_p (D_p D_p^T) o (A_{p-1} A_{p-1}^T)``), exposed to benchmark
    and check the kernel on given weights. It runs on the calling thread
    (BLAS threads as configured). Unlike :func:`theory.gram` it does not check
    finiteness or the label bound.

    Args:
        weights: ``[W_0, ..., W_beta]`` (``W_0`` of shape ``(l_0, d)``, the
            last of shape ``(1, l_{beta-1})``), or a ``numba.typed.List`` of
            C-contiguous float64 arrays (used as is, no copy).
        X: Inputs, shape ``(n, d)``.
        y: Labels, shape ``(n,)``.
        activation: One of ``ACTIVATION_NAMES``. Defaults to ``"tanh"``.
        loss: One of ``LOSS_NAMES``. Defaults to ``"square"``.
        output_activation: Apply ``sigma`` at the output. Defaults to True.
        gamma: Output scale, > 0. Defaults to 1.0.

    Returns:
        ``G``, float64 array of shape ``(n, n)``.

    Raises:
        ValueError: If ``activation`` or ``loss`` is unknown, ``gamma`` is not
            > 0, or the shapes of ``weights``, ``X`` and ``y`` do not chain.
    """
    if activation not in ACTIVATION_NAMES:
        raise ValueError(
            f"activation must be one of {list(ACTIVATION_NAMES)}, got {activation!r}"
        )
    if loss not in LOSS_NAMES:
        raise ValueError(f"loss must be one of {list(LOSS_NAMES)}, got {loss!r}")
    if not gamma > 0:
        raise ValueError(f"gamma must be a number > 0, got {gamma!r}")
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(
            f"X must have shape (n, d) and y shape (n,), got {X.shape} and {y.shape}"
        )
    Ws = weights
    if not isinstance(weights, List):
        Ws = List([np.ascontiguousarray(W, dtype=np.float64) for W in weights])
    fan_in = X.shape[1]
    for p, W in enumerate(Ws):
        if W.ndim != 2 or W.shape[1] != fan_in:
            raise ValueError(
                f"weights[{p}] must have shape (l_{p}, {fan_in}), got {W.shape}"
            )
        fan_in = W.shape[0]
    if fan_in != 1:
        raise ValueError(f"weights[-1] must have 1 row (scalar output), got {fan_in}")
    ints = np.zeros(14, dtype=np.int64)
    ints[4] = ACTIVATION_NAMES.index(activation)
    ints[5] = LOSS_NAMES.index(loss)
    ints[6] = int(bool(output_activation))
    floats = np.zeros(5)
    floats[4] = gamma
    return _gram(Ws, X, y, ints, floats)


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


@nb.njit(cache=True)
def _trial_gram(st, buf, ints, floats, X_fixed, y_fixed) -> np.ndarray:
    """One trial's Gram: draws (from ``(st, buf)``), forward, backward, Gram."""
    if ints[11] == 1:
        X = X_fixed
        y = y_fixed
    else:
        X, y = _draw_data(st, buf, ints, floats)
    Ws = _draw_weights(st, buf, ints, floats)
    return _gram(Ws, X, y, ints, floats)


@nb.njit(cache=True, parallel=True)
def _run_chunk(keys, trials, ints, floats, batch_sizes, X_fixed, y_fixed, base, mb):
    no_buf = np.empty(0)  # draw from each trial's Philox stream
    for t in nb.prange(trials.size):
        trial = np.uint64(trials[t])
        st = np.empty(5, dtype=np.uint64)
        st[0] = keys[0]
        st[1] = keys[1]
        st[2] = trial & np.uint64(0xFFFFFFFF)
        st[3] = trial >> np.uint64(32)
        st[4] = np.uint64(0)
        G = _trial_gram(st, no_buf, ints, floats, X_fixed, y_fixed)
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
    X_fixed, y_fixed = _fixed_arrays(fixed)
    _run_chunk(
        np.array(key, dtype=np.uint64),
        trials,
        ints,
        floats,
        bs,
        X_fixed,
        y_fixed,
        base,
        mb,
    )
    return base, mb


def _fixed_arrays(
    fixed: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's ``(X_fixed, y_fixed)`` arguments (placeholders when None)."""
    if fixed is None:
        return np.zeros((1, 1)), np.zeros(1)
    X, y = (np.ascontiguousarray(a, dtype=np.float64) for a in fixed)
    return X, y


# --- trials as functions of a standard normal vector -------------------------
# A trial that reads its numbers from a buffer ``u`` (see "random source"
# above) is a deterministic function of ``u``; montecarlo._rare runs subset
# simulation on it. ``trial_dimension`` (montecarlo._trial) is the length of
# ``u``: the count of numbers the trial draws.

STATISTICS = ("min_inner", "min_cos")  # whose lower tails are scored


@nb.njit(cache=True)
def _score(G: np.ndarray, code: int) -> float:
    """``-statistic(G)`` (``STATISTICS[code]``); ``-inf`` if ``G`` is not finite or
    the statistic undefined (a trial that cannot fail, as in the estimates)."""
    if not np.all(np.isfinite(G)):
        return -np.inf
    tmp = np.empty(4)
    _four(G, tmp)
    v = tmp[code]
    return -np.inf if v != v else -v


@nb.njit(cache=True)
def _score_from_normals(u, ints, floats, X_fixed, y_fixed, code):
    """``(score, numbers consumed)`` of the trial whose draws are ``u``."""
    st = np.zeros(5, dtype=np.uint64)
    G = _trial_gram(st, u, ints, floats, X_fixed, y_fixed)
    return _score(G, code), st[4]


@nb.njit(cache=True, parallel=True)
def _scores_from_normals(U, ints, floats, X_fixed, y_fixed, code, scores, consumed):
    for t in nb.prange(U.shape[0]):
        scores[t], consumed[t] = _score_from_normals(
            U[t], ints, floats, X_fixed, y_fixed, code
        )


@nb.njit(cache=True, parallel=True)
def _records_from_normals(
    U, ints, floats, batch_sizes, X_fixed, y_fixed, base, mb, consumed
):
    for t in nb.prange(U.shape[0]):
        st = np.zeros(5, dtype=np.uint64)
        G = _trial_gram(st, U[t], ints, floats, X_fixed, y_fixed)
        consumed[t] = st[4]
        _record(G, batch_sizes, base[t], mb[t])


def _check_normals(config: Config, U: np.ndarray, dimension: int) -> np.ndarray:
    U = np.ascontiguousarray(U, dtype=np.float64)
    if U.ndim != 2 or U.shape[1] != dimension or U.shape[0] == 0:
        raise ValueError(
            f"U must have shape (m >= 1, {dimension}): one row of "
            f"trial_dimension(config) = {dimension} normals per trial, got {U.shape}"
        )
    return U


def _check_consumed(consumed: np.ndarray, dimension: int) -> None:
    if not np.all(consumed == dimension):
        raise RuntimeError(
            f"the compiled trial drew {int(consumed.max())} numbers where "
            f"trial_dimension(config) = {dimension}: the numba and numpy draw "
            "orders disagree"
        )


def records_from_normals(
    config: Config,
    U: np.ndarray,
    fixed: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The records of trials whose draws are the rows of ``U``, in parallel.

    Row ``t`` of ``U`` replaces trial ``t``'s random stream: its normals are
    taken in the order of :func:`montecarlo._trial.run_trial`'s draws, and a
    uniform is ``Phi(z)`` of the next entry. Filled with the normals the
    Philox stream would give (a configuration that draws no uniforms), the
    records are those of :func:`run_chunk`.

    Args:
        config: The configuration.
        U: ``(m, D)`` standard normals, ``D = trial_dimension(config)``.
        fixed: The shared ``(X, y)`` when ``config.fixed_data``.

    Returns:
        ``(base, minibatch)`` records of shape ``(m, 9)`` and ``(m, nB, 4)``.

    Raises:
        ValueError: If ``U`` does not have ``trial_dimension(config)`` columns.
    """
    from montecarlo._trial import trial_dimension

    dimension = trial_dimension(config)
    U = _check_normals(config, U, dimension)
    ints, floats, bs = pack_config(config)
    base = np.empty((U.shape[0], _NB))
    mb = np.empty((U.shape[0], bs.size, _NM))
    consumed = np.empty(U.shape[0], dtype=np.uint64)
    _records_from_normals(
        U, ints, floats, bs, *_fixed_arrays(fixed), base, mb, consumed
    )
    _check_consumed(consumed, dimension)
    return base, mb


def scores_from_normals(
    config: Config,
    U: np.ndarray,
    statistic: str = "min_inner",
    fixed: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``-statistic`` of the trials whose draws are the rows of ``U``, in parallel.

    A trial fails at level ``eta`` iff its score exceeds ``eta`` (its
    statistic is below ``-eta``). Non-finite Grams and undefined cosines
    score ``-inf``: they never fail, as in :mod:`montecarlo._estimates`.

    Args:
        config: The configuration.
        U: ``(m, D)`` standard normals, ``D = trial_dimension(config)`` (see
            :func:`records_from_normals`).
        statistic: One of :data:`STATISTICS`. Defaults to ``"min_inner"``.
        fixed: The shared ``(X, y)`` when ``config.fixed_data``.

    Returns:
        ``(m,)`` scores.

    Raises:
        ValueError: If ``statistic`` is unknown or ``U`` has the wrong shape.
    """
    from montecarlo._trial import trial_dimension

    if statistic not in STATISTICS:
        raise ValueError(
            f"statistic must be one of {list(STATISTICS)}, got {statistic!r}"
        )
    dimension = trial_dimension(config)
    U = _check_normals(config, U, dimension)
    ints, floats, _ = pack_config(config)
    scores = np.empty(U.shape[0])
    consumed = np.empty(U.shape[0], dtype=np.uint64)
    _scores_from_normals(
        U,
        ints,
        floats,
        *_fixed_arrays(fixed),
        STATISTICS.index(statistic),
        scores,
        consumed,
    )
    _check_consumed(consumed, dimension)
    return scores
