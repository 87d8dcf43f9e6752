"""The CUDA backend: Philox draws on the device, trials batched in torch.

A chunk of ``m`` trials of one configuration runs in three steps.

1. **Draw plan.** The draws of a trial are a fixed sequence of requests
   (:func:`draw_plan`): the data ``X`` (``n x d`` normals, then ``n``
   uniforms for ``ball`` data), the labeling function's parameters and
   labels, then the weights, exactly in the order of the numpy reference
   (:mod:`montecarlo._trial`). Request ``r`` of ``c_r`` numbers consumes
   ``ceil(c_r / 2)`` Philox blocks of the trial's stream (:mod:`montecarlo._rng`),
   so its first block and its place in the trial's flat draw buffer are known
   before anything is drawn.
2. **Draws.** ``rng="device"``: a numba CUDA kernel with one thread per
   (trial, Philox block) computes Philox4x32-10 and the uniform or Box-Muller
   conversion of :mod:`montecarlo._rng` and writes both numbers of its block
   into the ``(m, total)`` draw buffer on the device: the very numbers of the
   host stream (uniforms bit for bit, normals to the last ulp of
   ``log1p``/``cos``/``sin``). ``rng="host"`` (the test mode) takes the same
   buffer from :class:`montecarlo._rng.PhiloxStream`, one trial at a time.
3. **Trials.** torch, on any device, batched over the ``m`` trials with
   ``bmm``, batched ``linalg.qr`` (sign-corrected: Haar) and
   ``linalg.matrix_norm(ord=2)``: data, labels, weights, the forward and
   backward passes, the Gram matrix and the record of
   :mod:`montecarlo._stats` (non-finite ``G``: ``finite = 0``, every other
   field NaN).

So the backend gives the same trials as ``numpy`` to float tolerance in both
modes, and the device mode never moves the draws off the GPU.

Notation: ``m`` trials of a batch, ``n`` samples, ``d`` input dimension,
``depth`` = beta hidden layers of ``width`` units, ``L = depth + 1`` weight
matrices (``depth`` for ``orthogonal_linear``), ``A_p`` (``m x n x l_p``)
activations, ``S_p`` their ``sigma'``, ``D_p`` back-propagated errors
``df_i/dz_p``; per trial
``G = sum_p (D_p D_p^T) o (A_{p-1} A_{p-1}^T)`` (THEORY.md section 2).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numba
import numpy as np
import torch
from numba import cuda

from montecarlo._config import Config
from montecarlo._rng import PhiloxStream
from montecarlo._stats import MINIBATCH_COLUMNS, TRIAL_COLUMNS

__all__ = [
    "RNG_MODES",
    "DrawRequest",
    "DrawPlan",
    "draw_plan",
    "host_draws",
    "device_draws",
    "resolve_device",
    "check_rng",
    "run_chunk",
]

RNG_MODES = ("device", "host")
_KINDS = ("normal", "uniform")  # a request's kind is its index here in the kernel
_NORMAL = _KINDS.index("normal")
_THREADS = 128  # CUDA threads per block of the draw kernel, at most
_MAX_GRID_Y = 65535  # CUDA's limit on gridDim.y: at most this many trials a launch
_DEFAULT_MAX_BYTES = 2**30


# --- the draw plan ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DrawRequest:
    """One ``standard_normal`` or ``random`` call of a trial.

    Attributes:
        name: What the numbers become (``"X"``, ``"W0"``, ...).
        kind: ``"normal"`` or ``"uniform"``.
        shape: Shape of the drawn array (C order).
    """

    name: str
    kind: str
    shape: tuple[int, ...]

    @property
    def count(self) -> int:
        """Number of values drawn."""
        return math.prod(self.shape)


@dataclasses.dataclass(frozen=True)
class DrawPlan:
    """The requests of one trial, in draw order, with their offsets.

    Attributes:
        requests: The requests.
        offsets: Start of each request in the trial's flat draw buffer.
        blocks: First Philox block of each request in the trial's stream.
        total: Length of the draw buffer.
        n_blocks: Philox blocks a trial consumes.
    """

    requests: tuple[DrawRequest, ...]
    offsets: tuple[int, ...]
    blocks: tuple[int, ...]
    total: int
    n_blocks: int

    def index(self, name: str) -> int:
        """Position of the request called ``name``."""
        for i, req in enumerate(self.requests):
            if req.name == name:
                return i
        raise KeyError(name)

    def arrays(self) -> dict[str, np.ndarray]:
        """The plan as int64 arrays for the draw kernel.

        Returns:
            ``kind``, ``block``, ``offset``, ``count`` (one entry per request)
            and ``owner`` (for each Philox block, the request it belongs to).
        """
        counts = np.array([r.count for r in self.requests], dtype=np.int64)
        per_request = (counts + 1) // 2
        return {
            "kind": np.array([_KINDS.index(r.kind) for r in self.requests], np.int64),
            "block": np.array(self.blocks, dtype=np.int64),
            "offset": np.array(self.offsets, dtype=np.int64),
            "count": counts,
            "owner": np.repeat(np.arange(len(counts), dtype=np.int64), per_request),
        }


def _layer_shapes(config: Config) -> list[tuple[int, int]]:
    """``(rows, cols)`` of ``W_0, ..., W_beta`` (the read-out row last)."""
    if config.weights == "orthogonal_linear":
        return [(config.d, config.d)] * (config.depth - 1) + [(1, config.d)]
    fan_in = [config.d, *config.widths]
    fan_out = [*config.widths, 1]
    return list(zip(fan_out, fan_in, strict=True))


def _layered_requests(name: str, shapes: list[tuple[int, int]]) -> list[DrawRequest]:
    """The requests of the layered ensemble ``name`` (``_trial._layered``)."""
    reqs = []
    for p, (rows, cols) in enumerate(shapes):
        if name == "orthogonal":  # Haar: normals of shape (max, min)
            reqs.append(
                DrawRequest(f"W{p}", "normal", (max(rows, cols), min(rows, cols)))
            )
        elif name == "uniform_spectrum":  # U, V Haar with k columns, then s
            k = min(rows, cols)
            reqs.append(DrawRequest(f"W{p}.U", "normal", (rows, k)))
            reqs.append(DrawRequest(f"W{p}.V", "normal", (cols, k)))
            reqs.append(DrawRequest(f"W{p}.s", "uniform", (k,)))
        else:  # gaussian, small
            reqs.append(DrawRequest(f"W{p}", "normal", (rows, cols)))
    return reqs


def _linear_requests(layers: str, d: int, depth: int) -> list[DrawRequest]:
    """The requests of the orthogonal linear network with ``layers``."""
    if layers == "identity":
        return []
    reqs = []
    for p in range(depth - 1):
        if layers == "haar":
            reqs.append(DrawRequest(f"W{p}", "normal", (d, d)))
        else:  # signed permutation: keys, then signs
            reqs.append(DrawRequest(f"W{p}.keys", "uniform", (d,)))
            reqs.append(DrawRequest(f"W{p}.signs", "uniform", (d,)))
    last = f"W{depth - 1}"
    if layers == "haar":  # the unit read-out row is a plain normal row
        reqs.append(DrawRequest(last, "normal", (1, d)))
    else:  # index and sign of the signed coordinate read-out
        reqs.append(DrawRequest(last, "uniform", (2,)))
    return reqs


def draw_plan(config: Config) -> DrawPlan:
    """The draw requests of a trial of ``config``, in the reference's order.

    Order (:mod:`montecarlo._trial`): data ``X`` ``(n, d)`` normals and, for
    ``ball`` data, ``n`` uniform radii; the labeling function (``v`` of a
    linear/tanh teacher: ``d`` normals; network teacher: ``U`` ``(tw, d)``
    then ``a`` ``(tw,)``; random signs: ``n`` uniforms); then the weights:
    each weight matrix of the ensemble (Haar layers draw ``(max, min)`` of
    their shape; ``uniform_spectrum`` layers ``U`` ``(rows, k)``, ``V``
    ``(cols, k)`` normals and ``k`` uniforms), for the ``ball`` ensemble
    those of its ``centre`` then a direction of ``P`` normals and one uniform
    radius; for ``orthogonal_linear`` the layers ``config.layers`` (Haar:
    ``(d, d)`` normals each and a ``(1, d)`` read-out; signed permutations:
    ``d`` uniform keys and ``d`` uniform signs each and 2 uniforms for the
    read-out; identity: nothing). A ``fixed_data`` configuration draws no
    data here (the shared ``(X, y)`` come from the reserved stream).

    Args:
        config: The configuration.

    Returns:
        The plan.
    """
    n, d = config.n, config.d
    reqs: list[DrawRequest] = []
    if not config.fixed_data:
        reqs.append(DrawRequest("X", "normal", (n, d)))
        if config.data == "ball":
            reqs.append(DrawRequest("radius", "uniform", (n,)))
        if config.labels in ("linear_teacher", "tanh_teacher"):
            reqs.append(DrawRequest("v", "normal", (d,)))
        elif config.labels == "network_teacher":
            reqs.append(DrawRequest("U", "normal", (config.teacher_width, d)))
            reqs.append(DrawRequest("a", "normal", (config.teacher_width,)))
        elif config.labels == "random_signs":
            reqs.append(DrawRequest("signs", "uniform", (n,)))
    shapes = _layer_shapes(config)
    if config.weights == "orthogonal_linear":
        reqs += _linear_requests(config.layers, d, config.depth)
    elif config.weights == "ball":
        reqs += _layered_requests(config.centre, shapes)
        total_weights = sum(r * c for r, c in shapes)
        reqs.append(DrawRequest("direction", "normal", (total_weights,)))
        reqs.append(DrawRequest("ball_radius", "uniform", (1,)))
    else:
        reqs += _layered_requests(config.weights, shapes)
    counts = [r.count for r in reqs]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    n_blocks = [(c + 1) // 2 for c in counts]
    blocks = np.concatenate([[0], np.cumsum(n_blocks)]).astype(int)
    return DrawPlan(
        requests=tuple(reqs),
        offsets=tuple(int(o) for o in offsets[:-1]),
        blocks=tuple(int(b) for b in blocks[:-1]),
        total=int(offsets[-1]),
        n_blocks=int(blocks[-1]),
    )


# --- draws ----------------------------------------------------------------------


def host_draws(plan: DrawPlan, key: tuple[int, int], trials: np.ndarray) -> np.ndarray:
    """The draw buffer from the host streams (the test mode and the oracle).

    Args:
        plan: The trials' draw plan.
        key: Philox key from :func:`montecarlo._rng.stream_key`.
        trials: ``(m,)`` trial indices.

    Returns:
        ``(m, plan.total)`` float64: row ``i`` holds the requests of trial
        ``trials[i]`` one after the other, as
        ``PhiloxStream(key, trials[i])`` draws them.
    """
    out = np.empty((len(trials), plan.total))
    for i, t in enumerate(trials):
        stream = PhiloxStream(key, int(t))
        for req, start in zip(plan.requests, plan.offsets, strict=True):
            draw = stream.standard_normal if req.kind == "normal" else stream.random
            out[i, start : start + req.count] = draw(req.count)
    return out


_MASK = np.uint64(0xFFFFFFFF)
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_S5 = np.uint64(5)
_S6 = np.uint64(6)
_S32 = np.uint64(32)
_TWO_PI = 2.0 * math.pi


@cuda.jit(device=True)
def _philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of one counter (uint64 words < 2^32), as ``_rng.philox4x32``."""
    for r in range(10):
        if r > 0:
            k0 = (k0 + _W0) & _MASK
            k1 = (k1 + _W1) & _MASK
        p0 = c0 * _M0
        p1 = c2 * _M1
        n0 = (p1 >> _S32) ^ c1 ^ k0
        n2 = (p0 >> _S32) ^ c3 ^ k1
        c1 = p1 & _MASK
        c3 = p0 & _MASK
        c0 = n0
        c2 = n2
    return c0, c1, c2, c3


@cuda.jit(device=True)
def _u53(hi, lo):
    """A uniform on [0, 1) with 53 random bits, as ``_rng._uniform53``."""
    return (float(hi >> _S5) * 67108864.0 + float(lo >> _S6)) * (
        1.0 / 9007199254740992.0
    )


@cuda.jit
def _draw_kernel(key, t_lo, t_hi, owner, kind, block, offset, count, out):
    """Thread ``(b, t)``: Philox block ``b`` of trial ``t`` into its ``out`` slots."""
    b, t = cuda.grid(2)
    if t >= out.shape[0] or b >= owner.shape[0]:
        return
    r = owner[b]
    bb = np.uint64(b)
    x0, x1, x2, x3 = _philox(bb & _MASK, bb >> _S32, t_lo[t], t_hi[t], key[0], key[1])
    u0 = _u53(x0, x1)
    u1 = _u53(x2, x3)
    if kind[r] == _NORMAL:
        radius = math.sqrt(-2.0 * math.log1p(-u0))
        theta = _TWO_PI * u1
        v0 = radius * math.cos(theta)
        v1 = radius * math.sin(theta)
    else:
        v0 = u0
        v1 = u1
    i = 2 * (b - block[r])
    out[t, offset[r] + i] = v0
    if i + 1 < count[r]:
        out[t, offset[r] + i + 1] = v1


def device_draws(plan: DrawPlan, key: tuple[int, int], trials: np.ndarray) -> Any:
    """The draw buffer computed on the CUDA device (or numba's simulator).

    One thread per (trial, Philox block); the numbers equal those of
    :func:`host_draws` (uniforms exactly, normals to the last ulp of the
    device's ``log1p``, ``cos`` and ``sin``).

    Args:
        plan: The trials' draw plan.
        key: Philox key from :func:`montecarlo._rng.stream_key`.
        trials: ``(m,)`` trial indices, ``m <= 65535``.

    Returns:
        A numba device array (``DeviceNDArray``, or the simulator's stand-in)
        of shape ``(m, plan.total)``, float64.

    Raises:
        ValueError: If no CUDA device (nor the simulator) is available, or
            ``m`` is out of range.
    """
    _check_device_rng()
    trials = np.asarray(trials, dtype=np.uint64)
    m = trials.size
    if not 1 <= m <= _MAX_GRID_Y:
        raise ValueError(f"trials must hold 1 to {_MAX_GRID_Y} indices, got {m}")
    arrays = plan.arrays()
    mask32 = np.uint64(0xFFFFFFFF)
    args = [
        np.array(key, dtype=np.uint64),
        trials & mask32,
        trials >> np.uint64(32),
        arrays["owner"],
        arrays["kind"],
        arrays["block"],
        arrays["offset"],
        arrays["count"],
    ]
    d_args = [cuda.to_device(np.ascontiguousarray(a)) for a in args]
    out = cuda.device_array((m, plan.total), dtype=np.float64)
    if plan.n_blocks == 0:  # a trial that draws nothing (fixed data, identity)
        return out
    # Whole warps, no more than a trial's blocks need (the simulator runs each
    # thread in Python, so idle ones cost there).
    threads = min(_THREADS, 32 * ((plan.n_blocks + 31) // 32))
    grid = ((plan.n_blocks + threads - 1) // threads, m)
    with warnings.catch_warnings():
        # A small chunk is a small grid; numba's low-occupancy hint is no error.
        warnings.simplefilter("ignore", numba.NumbaPerformanceWarning)
        _draw_kernel[grid, (threads, 1)](*d_args, out)
    cuda.synchronize()
    return out


def _check_device_rng() -> None:
    if not cuda.is_available():
        raise ValueError(
            "rng='device' needs a CUDA device visible to numba (numba.cuda."
            "is_available() is False here): install numba-cuda and a CUDA driver, "
            "set NUMBA_ENABLE_CUDASIM=1 before numba is imported to use the "
            "simulator, or use rng='host' (CudaBackend(rng='host'))"
        )


def _to_torch(draws, device: torch.device) -> torch.Tensor:
    """A device array as a torch tensor on ``device`` (no copy GPU to GPU)."""
    if device.type == "cuda" and not numba.config.ENABLE_CUDASIM:
        return torch.as_tensor(draws, device=device)
    return torch.from_numpy(draws.copy_to_host()).to(device)


# --- trials in torch -----------------------------------------------------------------


def _activate(name: str, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sigma(Z), sigma'(Z))``; relu's derivative is 0 at 0, as torch's."""
    if name == "relu":
        return torch.relu(Z), (Z > 0).to(Z.dtype)
    if name == "tanh":
        t = torch.tanh(Z)
        return t, 1.0 - t * t
    if name == "sigmoid":
        s = torch.sigmoid(Z)
        return s, s * (1.0 - s)
    return Z, torch.ones_like(Z)


def _haar(Z: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Batched Haar ``rows x cols`` from normals ``Z`` ``(m, max, min)``.

    Reduced QR, column ``j`` of ``Q`` times ``sign(R_jj)`` (``sign(0) = +1``), as
    :func:`montecarlo._samplers.haar_orthogonal`.
    """
    Q, R = torch.linalg.qr(Z, mode="reduced")
    sign = torch.where(torch.diagonal(R, dim1=-2, dim2=-1) < 0, -1.0, 1.0)
    Q = Q * sign[:, None, :]
    return Q if rows >= cols else Q.transpose(1, 2)


def _spectral(Z: torch.Tensor) -> torch.Tensor:
    """``||Z||_2`` of each matrix of the batch, shape ``(m, 1, 1)``."""
    return torch.linalg.matrix_norm(Z, ord=2)[:, None, None]


def _data(config: Config, take) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` ``(m, n, d)`` and ``y`` ``(m, n)`` as in ``_trial.draw_data``."""
    Z = take("X")
    X = Z / torch.linalg.vector_norm(Z, dim=2, keepdim=True)
    if config.data == "ball":
        X = X * (take("radius") ** (1.0 / config.d))[:, :, None]
    labels = config.labels
    if labels == "constant":
        y = X.new_full(X.shape[:2], float(config.label_value))
    elif labels in ("linear_teacher", "tanh_teacher"):
        v = take("v")
        v = v / torch.linalg.vector_norm(v, dim=1, keepdim=True)
        y = (X @ v[:, :, None])[:, :, 0]
        if labels == "tanh_teacher":
            y = torch.tanh(y)
    elif labels == "network_teacher":
        # theory.labels.network_teacher with tanh: sigma(0) = 0, so the scale is the
        # Lipschitz bound ||a|| ||U||_2.
        U, a = take("U"), take("a")
        lip = torch.linalg.vector_norm(a, dim=1) * torch.linalg.matrix_norm(U, ord=2)
        coef = (a / lip[:, None])[:, :, None]
        y = (torch.tanh(X @ U.transpose(1, 2)) @ coef)[:, :, 0]
    else:  # random_signs
        u = take("signs")
        y = torch.where(u < 0.5, -1.0, 1.0).to(X.dtype)
    return X, y


def _layered(config: Config, name: str, take) -> list[torch.Tensor]:
    """``[W_0, ..., W_beta]`` of the layered ensemble ``name``, batched."""
    Ws = []
    for p, (rows, cols) in enumerate(_layer_shapes(config)):
        if name == "uniform_spectrum":  # U diag(scale u) V^T
            k = min(rows, cols)
            U = _haar(take(f"W{p}.U"), rows, k)
            V = _haar(take(f"W{p}.V"), cols, k)
            s = config.scale * take(f"W{p}.s")
            Ws.append((U * s[:, None, :]) @ V.transpose(1, 2))
            continue
        Z = take(f"W{p}")
        if name == "gaussian":  # Strategy 4.1
            Ws.append(Z / math.sqrt(config.d if p == 0 else config.kappa * cols))
        elif name == "orthogonal":
            Ws.append(_haar(Z, rows, cols))
        else:  # small (Assumption 1)
            Ws.append(Z * (config.scale / _spectral(Z)))
    return Ws


def _signed_permutations(keys: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``(m, d, d)``: ``W[i, pi_i] = sigma_i``, ``pi = argsort(keys)`` (stable)."""
    perm = torch.argsort(keys, dim=1, stable=True)
    signs = torch.where(u < 0.5, -1.0, 1.0).to(keys.dtype)
    W = keys.new_zeros(keys.shape[0], keys.shape[1], keys.shape[1])
    return W.scatter_(2, perm[:, :, None], signs[:, :, None])


def _orthogonal_linear(config: Config, take, m: int, like: torch.Tensor):
    """Section 6's network with ``config.layers``, batched (``m`` trials)."""
    d, depth, layers = config.d, config.depth, config.layers
    Ws = []
    for p in range(depth - 1):
        if layers == "haar":
            Ws.append(_haar(take(f"W{p}"), d, d))
        elif layers == "identity":
            Ws.append(
                torch.eye(d, dtype=like.dtype, device=like.device).expand(m, d, d)
            )
        else:
            Ws.append(_signed_permutations(take(f"W{p}.keys"), take(f"W{p}.signs")))
    if layers == "haar":  # a unit row uniform on the sphere
        Z = take(f"W{depth - 1}")
        Ws.append(Z / torch.linalg.vector_norm(Z, dim=(1, 2), keepdim=True))
        return Ws
    readout = like.new_zeros(m, 1, d)
    if layers == "identity":  # e_1
        readout[:, 0, 0] = 1.0
    else:  # sigma e_j, j = min(floor(d c_0), d - 1), sigma = -1 iff c_1 < 1/2
        c = take(f"W{depth - 1}")
        j = torch.floor(d * c[:, 0]).clamp(max=d - 1).long()
        sign = torch.where(c[:, 1] < 0.5, -1.0, 1.0).to(like.dtype)
        readout.scatter_(2, j[:, None, None], sign[:, None, None])
    Ws.append(readout)
    return Ws


def _weights(config: Config, take, m: int, like: torch.Tensor) -> list[torch.Tensor]:
    """``[W_0, ..., W_L]`` batched (:func:`montecarlo._trial.draw_weights`).

    ``m`` is the number of trials and ``like`` a tensor of the batch's dtype
    and device (for the weights that draw nothing).
    """
    if config.weights == "orthogonal_linear":
        return _orthogonal_linear(config, take, m, like)
    if config.weights != "ball":
        return _layered(config, config.weights, take)
    Ws = _layered(config, config.centre, take)  # Corollary 5.1: uniform in B_r
    z = take("direction")
    P = z.shape[1]
    radius = config.r * take("ball_radius")[:, 0] ** (1.0 / P)
    step = z * (radius / torch.linalg.vector_norm(z, dim=1))[:, None]
    start = 0
    for p, W in enumerate(Ws):
        size = W.shape[1] * W.shape[2]
        Ws[p] = W + step[:, start : start + size].reshape(W.shape)
        start += size
    return Ws


def _gram(config: Config, Ws: list[torch.Tensor], X: torch.Tensor, y: torch.Tensor):
    """Per-trial Gram matrices ``(m, n, n)`` by factored back-propagation."""
    L = len(Ws)
    inputs, derivs = [], []
    A = X
    for p, W in enumerate(Ws):
        inputs.append(A)
        Z = A @ W.transpose(1, 2)
        last_linear = p == L - 1 and not config.output_activation
        A, S = _activate("identity" if last_linear else config.activation, Z)
        derivs.append(S)
    gamma = config.gamma
    g = gamma * A[:, :, 0]
    if config.loss == "square":
        dl = g - y
    else:  # logistic: -y / (1 + exp(y g))
        dl = -y * torch.sigmoid(-y * g)
    D = (dl * gamma)[:, :, None] * derivs[L - 1]
    G = torch.zeros(X.shape[0], X.shape[1], X.shape[1], dtype=X.dtype, device=X.device)
    for p in range(L - 1, -1, -1):
        G = G + (D @ D.transpose(1, 2)) * (inputs[p] @ inputs[p].transpose(1, 2))
        if p > 0:
            D = (D @ Ws[p]) * derivs[p - 1]
    # symmetric by construction (batched GEMM sums the triangles differently)
    return torch.triu(G) + torch.triu(G, 1).mT


def _four(G: torch.Tensor) -> torch.Tensor:
    """``min_inner, min_cos, offdiag_mean, neg_pairs`` of each ``G``, shape ``(m, 4)``.

    As ``theory``: cosines clipped to [-1, 1], pairs with a zero-norm
    gradient ignored (NaN when none is left); negative pairs counted on the
    upper triangle.
    """
    n = G.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=G.device)
    inf = torch.inf
    min_inner = G.masked_fill(eye, inf).amin(dim=(1, 2))
    norms = torch.sqrt(torch.diagonal(G, dim1=1, dim2=2))
    cos = (G / (norms[:, :, None] * norms[:, None, :])).clamp(-1.0, 1.0)
    nonzero = norms > 0
    valid = ~eye & nonzero[:, :, None] & nonzero[:, None, :] & ~torch.isnan(cos)
    min_cos = cos.masked_fill(~valid, inf).amin(dim=(1, 2))
    min_cos = torch.where(torch.isinf(min_cos), torch.nan, min_cos)
    mean = G.masked_fill(eye, 0.0).sum(dim=(1, 2)) / (n * (n - 1))
    upper = torch.ones(n, n, dtype=torch.bool, device=G.device).triu(1)
    neg = ((G < 0) & upper).sum(dim=(1, 2)).to(G.dtype)
    return torch.stack([min_inner, min_cos, mean, neg], dim=1)


def _records(G: torch.Tensor, batch_sizes: tuple[int, ...]):
    """The records of :mod:`montecarlo._stats` for each ``G`` of the batch."""
    m, n, _ = G.shape
    finite = torch.isfinite(G).flatten(1).all(dim=1)
    norms = torch.sqrt(torch.diagonal(G, dim1=1, dim2=2))
    den = norms[:, 0] * norms[:, 1]
    base = torch.cat(
        [
            finite.to(G.dtype)[:, None],
            _four(G),
            norms.amin(dim=1)[:, None],
            norms.amax(dim=1)[:, None],
            G[:, 0, 1, None],
            torch.where(den > 0, G[:, 0, 1] / den, torch.nan)[:, None],
        ],
        dim=1,
    )
    mb = [
        _four(G.reshape(m, n // B, B, n // B, B).sum(dim=(2, 4)) / B**2)
        for B in batch_sizes
    ]
    minibatch = (
        torch.stack(mb, dim=1) if mb else G.new_empty((m, 0, len(MINIBATCH_COLUMNS)))
    )
    bad = ~finite
    base[bad, 1:] = torch.nan
    minibatch[bad] = torch.nan
    return base, minibatch


def _batch(
    config: Config,
    plan: DrawPlan,
    draws: torch.Tensor,
    fixed: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The records of the trials whose draws are the rows of ``draws``."""
    m = draws.shape[0]

    def take(name: str) -> torch.Tensor:
        i = plan.index(name)
        req, start = plan.requests[i], plan.offsets[i]
        return draws[:, start : start + req.count].reshape(m, *req.shape)

    if fixed is not None:
        X0, y0 = (torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in fixed)
        X = X0.to(draws.device).expand(m, *X0.shape)
        y = y0.to(draws.device).expand(m, *y0.shape)
    else:
        X, y = _data(config, take)
    G = _gram(config, _weights(config, take, m, draws), X, y)
    return _records(G, config.batch_sizes)


# --- the chunk ---------------------------------------------------------------------


def check_rng(rng: str) -> str:
    """Validate the ``rng`` mode.

    Raises:
        ValueError: If ``rng`` is not one of :data:`RNG_MODES`, or is
            ``"device"`` where no CUDA device (nor the simulator) is available.
    """
    if rng not in RNG_MODES:
        raise ValueError(f"rng must be one of {list(RNG_MODES)}, got {rng!r}")
    if rng == "device":
        _check_device_rng()
    return rng


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The torch device ``device``; None: ``"cuda"`` if torch sees a GPU, else CPU.

    Raises:
        ValueError: If ``device`` is not a torch device string.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be None or a torch device such as 'cpu' or 'cuda:0', "
            f"got {device!r}"
        ) from exc


def _check_batch_sizes(config: Config) -> None:
    for B in config.batch_sizes:
        if B < 1 or config.n % B or config.n // B < 2:
            raise ValueError(
                f"config.batch_sizes must divide n = {config.n} into at least 2 "
                f"mini-batches, got B = {B}"
            )


def _bytes_per_trial(config: Config, plan: DrawPlan) -> int:
    """Rough peak device memory of one trial (draws, activations, Grams)."""
    n = config.n
    hidden = sum(r for r, _ in _layer_shapes(config))
    weights = sum(r * c for r, c in _layer_shapes(config))
    return 8 * (
        2 * plan.total
        + 2 * weights
        + 4 * n * (config.d + hidden)
        + (4 + len(config.batch_sizes)) * n * n
    )


def run_chunk(
    config: Config,
    key: tuple[int, int],
    trials: np.ndarray,
    fixed: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    rng: str = "device",
    device: str | torch.device | None = None,
    max_bytes: int = _DEFAULT_MAX_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the given trials of ``config``, batched on ``device``.

    Trials are processed in batches whose estimated memory stays under
    ``max_bytes`` (one trial at least); each trial's record depends only on
    its own draws, so batching changes nothing beyond float rounding.

    Args:
        config: The configuration.
        key: Philox key of the configuration's streams.
        trials: Trial indices.
        fixed: The shared ``(X, y)`` when ``config.fixed_data``.
        rng: ``"device"`` (default: draws by the CUDA kernel) or ``"host"``
            (draws from :class:`montecarlo._rng.PhiloxStream`, the test mode).
        device: torch device of the linear algebra; defaults to ``"cuda"``
            when torch sees a GPU, else ``"cpu"``.
        max_bytes: Memory budget of one batch, an integer >= 1. Defaults to
            1 GiB.

    Returns:
        ``(base, minibatch)`` records of shape ``(m, 9)`` and ``(m, nB, 4)``.

    Raises:
        ValueError: If ``rng``, ``device``, ``max_bytes`` or the
            configuration's ``batch_sizes`` are out of range, or if
            ``fixed`` is missing for a ``fixed_data`` configuration.
    """
    check_rng(rng)
    dev = resolve_device(device)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be an integer >= 1, got {max_bytes!r}")
    _check_batch_sizes(config)
    if config.fixed_data and fixed is None:
        raise ValueError("fixed must be the shared (X, y) of a fixed_data config")
    trials = np.ascontiguousarray(trials, dtype=np.uint64).ravel()
    plan = draw_plan(config)
    per_batch = max(1, min(_MAX_GRID_Y, max_bytes // _bytes_per_trial(config, plan)))
    n_b = len(config.batch_sizes)
    base = np.empty((trials.size, len(TRIAL_COLUMNS)))
    mb = np.empty((trials.size, n_b, len(MINIBATCH_COLUMNS)))
    with torch.no_grad():
        for start in range(0, trials.size, per_batch):
            part = trials[start : start + per_batch]
            if rng == "device":
                draws = _to_torch(device_draws(plan, key, part), dev)
            else:
                draws = torch.from_numpy(host_draws(plan, key, part)).to(dev)
            shared = fixed if config.fixed_data else None
            part_base, part_mb = _batch(config, plan, draws, shared)
            base[start : start + part.size] = part_base.cpu().numpy()
            mb[start : start + part.size] = part_mb.cpu().numpy()
    return base, mb
