"""Gradient confusion of arbitrary torch models (Section 7 and Section 8 of the paper).

Notation (used in every docstring and variable below):

- ``n``: samples whose per-sample gradients are compared (rows of ``G``);
- ``P``: number of trainable parameters (length of one flattened gradient);
- ``B``: mini-batch size (``batch_size``), ``K``: pairs of mini-batches (``pairs``);
- ``c``: chunk size of the blockwise Gram accumulation (``chunk_size``);
- for a plain MLP, layer ``p`` computes ``z_p = W_p a_{p-1} (+ b_p)``; ``A_{p-1}``
  (n, in) stacks its inputs and ``Delta_p`` (n, out) the back-propagated errors
  ``d f_i / d z_p``.

Two measurements at the current weights ``w`` of a model:

1. **The paper's protocol** (Section 7): draw ``K`` pairs of mini-batches of size
   ``B`` (the paper: ``K = 100``, ``B = 128``), compute the gradient of the
   mini-batch loss on each, and take each pair's cosine similarity

   .. math:: \\cos_k = \\langle g_{k,1}, g_{k,2} \\rangle
             / (\\lVert g_{k,1} \\rVert \\lVert g_{k,2} \\rVert).

   The minimum over the pairs and a kernel density estimate of the cosines are the
   quantities of Figures 2 to 4. ``max(0, -min_k cos_k)`` is the normalized
   (cosine) gradient confusion bound of Section 8, for mini-batch gradients.

2. **The per-sample Gram matrix** (Definition 2.1):
   ``G_ij = <grad f_i(w), grad f_j(w)>`` for up to a few thousand samples, either
   by ``torch.func`` (``vmap`` of ``grad``) accumulated block by block, or, for a
   plain MLP, by the factored back-propagation formula (THEORY.md section 2)

   .. math:: G = \\sum_p (\\Delta_p \\Delta_p^T) \\circ (A_{p-1} A_{p-1}^T)
             \\; [+ \\Delta_p \\Delta_p^T \\text{ for a bias}],

   which never forms the ``n x P`` matrix of per-sample gradients.

Loss convention: ``loss_fn(output, target)`` returns a scalar tensor. The
per-sample gradient of sample ``i`` is the gradient of
``loss_fn(model(x_i[None]), y_i[None])``, the loss on that single sample, so a
``"mean"`` and a ``"sum"`` reduction give the same per-sample gradients. A
mini-batch gradient is the gradient of ``loss_fn(model(X_b), y_b)`` (with
``"mean"``: the average of the per-sample gradients, as in SGD); cosines do not
depend on that choice.

Modes: during a measurement the model is put in eval mode (dropout off, so the
measurement is deterministic) except its batch-norm layers, which are set to
``bn_mode``; all modes and all buffers (batch-norm running statistics) are
restored afterwards, so a measurement never changes the model.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import gaussian_kde
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.utils.data import DataLoader, Dataset, default_collate

__all__ = [
    "MinibatchConfusion",
    "minibatch_confusion",
    "per_sample_gram",
    "torch_mlp",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_BN_MODES = ("train", "eval")
_METHODS = ("auto", "vmap", "factored")
# Memory the vmap route may spend on the two chunks of per-sample gradients it
# holds at once when ``chunk_size`` is not given.
_DEFAULT_CHUNK_BYTES = 256 * 2**20

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


# ---------------------------------------------------------------------------
# validation and data
# ---------------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_bn_mode(bn_mode: Any) -> str:
    if bn_mode not in _BN_MODES:
        raise ValueError(f"bn_mode must be one of {_BN_MODES}, got {bn_mode!r}")
    return bn_mode


def _check_model(model: Any) -> list[tuple[str, nn.Parameter]]:
    if isinstance(model, type):
        raise ValueError(
            f"model must be an nn.Module instance, got the class {model.__name__}; "
            "instantiate it first"
        )
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("model must have at least one parameter with requires_grad")
    return named


def _check_loss_fn(loss_fn: Any) -> None:
    if not callable(loss_fn):
        raise ValueError(
            f"loss_fn must be callable as loss_fn(output, target), got "
            f"{type(loss_fn).__name__}"
        )


def _scalar_loss(loss: Any) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss)
        raise ValueError(
            "loss_fn must return a scalar tensor (reduction 'mean' or 'sum'), "
            f"got {shape}"
        )
    return loss


class _Source:
    """Random access to ``(inputs, targets)`` on the model's device and dtype."""

    def __init__(self, data: Any, device: torch.device, dtype: torch.dtype) -> None:
        self.device, self.dtype = device, dtype
        self._tensors: tuple[torch.Tensor, torch.Tensor] | None = None
        self._dataset: Any = None
        self._collate: Callable[[list[Any]], Any] = default_collate
        if isinstance(data, tuple | list) and len(data) == 2:
            x, y = data
            if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
                raise ValueError(
                    "data as a pair must hold two tensors (inputs, targets), got "
                    f"({type(x).__name__}, {type(y).__name__})"
                )
            if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
                raise ValueError(
                    "data inputs and targets must share their first (sample) "
                    f"dimension, got shapes {tuple(x.shape)} and {tuple(y.shape)}"
                )
            self._tensors = (x, y)
            self.n = int(x.shape[0])
        elif isinstance(data, DataLoader):
            self._dataset, self._collate = data.dataset, data.collate_fn
            self.n = self._map_len(self._dataset)
        elif isinstance(data, Dataset):
            self._dataset = data
            self.n = self._map_len(data)
        else:
            raise ValueError(
                "data must be a pair (inputs, targets) of tensors, a DataLoader or "
                f"a map-style Dataset, got {type(data).__name__}"
            )
        if self.n < 1:
            raise ValueError("data must hold at least one sample, got 0")

    @staticmethod
    def _map_len(dataset: Any) -> int:
        try:
            return len(dataset)
        except TypeError:
            raise ValueError(
                "data must be a map-style dataset with __len__ (random access is "
                f"needed to draw mini-batches), got {type(dataset).__name__}"
            ) from None

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of the samples ``idx`` (1-D long tensor, on CPU)."""
        if self._tensors is not None:
            x, y = self._tensors
            x, y = x[idx.to(x.device)], y[idx.to(y.device)]
        else:
            batch = self._collate([self._dataset[int(i)] for i in idx])
            if not isinstance(batch, tuple | list) or len(batch) != 2:
                raise ValueError(
                    "data items must be (input, target) pairs, got a collated "
                    f"batch of type {type(batch).__name__}"
                )
            x, y = batch
        return self._place(x), self._place(y)

    def _place(self, t: torch.Tensor) -> torch.Tensor:
        if t.is_floating_point():
            return t.to(device=self.device, dtype=self.dtype)
        return t.to(device=self.device)


def _is_batchnorm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


@contextlib.contextmanager
def _measurement_mode(model: nn.Module, bn_mode: str) -> Iterator[None]:
    """Eval mode except batch norm in ``bn_mode``; modes and buffers restored."""
    modes = [(m, m.training) for m in model.modules()]
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        model.eval()
        for m in model.modules():
            if _is_batchnorm(m):
                m.train(bn_mode == "train")
        yield
    finally:
        for m, training in modes:
            m.training = training
        with torch.no_grad():
            for b, copy in saved:
                b.copy_(copy)


def _uses_batch_statistics(model: nn.Module, bn_mode: str) -> bool:
    """Whether a forward pass couples the samples of a batch (train-mode BN)."""
    return bn_mode == "train" and any(_is_batchnorm(m) for m in model.modules())


def _as_generator(generator: Any) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(0)
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int | np.integer) and not isinstance(generator, bool):
        if generator < 0:
            raise ValueError(f"generator as a seed must be >= 0, got {generator}")
        return torch.Generator().manual_seed(int(generator))
    raise ValueError(
        "generator must be a torch.Generator, an integer seed >= 0 or None, got "
        f"{type(generator).__name__}"
    )


# ---------------------------------------------------------------------------
# (a) the paper's protocol: pairs of mini-batches
# ---------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class MinibatchConfusion:
    """Cosine similarities of ``K`` pairs of mini-batch gradients (Section 7).

    Attributes:
        cosines: float64 array (K,), the cosine similarity of each pair, clipped
            to [-1, 1]; ``nan`` where a gradient of the pair is exactly zero
            (the cosine is undefined there).
        batch_size: the mini-batch size ``B``.
        bn_mode: the batch-norm mode of the measurement ("train" or "eval").
        disjoint: whether the two mini-batches of a pair share no sample.
    """

    cosines: np.ndarray
    batch_size: int
    bn_mode: str
    disjoint: bool

    @property
    def pairs(self) -> int:
        """Number ``K`` of mini-batch pairs."""
        return int(self.cosines.shape[0])

    @property
    def undefined(self) -> int:
        """Number of pairs whose cosine is undefined (a zero gradient)."""
        return int(np.count_nonzero(np.isnan(self.cosines)))

    @property
    def minimum(self) -> float:
        """Minimum cosine over the defined pairs (``nan`` if none is defined)."""
        finite = self.cosines[~np.isnan(self.cosines)]
        return float(finite.min()) if finite.size else math.nan

    @property
    def eta(self) -> float:
        """Normalized confusion bound ``max(0, -minimum)`` (Section 8)."""
        return max(0.0, -self.minimum) if not math.isnan(self.minimum) else math.nan

    def density(self, grid: Sequence[float] | np.ndarray) -> np.ndarray:
        """Gaussian kernel density estimate of the cosines on ``grid``.

        Uses ``scipy.stats.gaussian_kde`` with Scott's bandwidth, over the defined
        cosines (the Figure 2c / 3c curves of the paper).

        Args:
            grid: points at which to evaluate the density (1-D).

        Returns:
            float64 array with the density at each grid point.

        Raises:
            ValueError: if fewer than two distinct defined cosines exist (the
                bandwidth would be zero) or ``grid`` is not 1-D.
        """
        points = np.asarray(grid, dtype=np.float64)
        if points.ndim != 1:
            raise ValueError(f"grid must be 1-D, got shape {points.shape}")
        finite = self.cosines[~np.isnan(self.cosines)]
        if np.unique(finite).size < 2:
            raise ValueError(
                "density needs at least two distinct defined cosines, got "
                f"{np.unique(finite).size}"
            )
        return gaussian_kde(finite)(points)

    def __repr__(self) -> str:
        return (
            f"MinibatchConfusion(pairs={self.pairs}, batch_size={self.batch_size}, "
            f"bn_mode={self.bn_mode!r}, minimum={self.minimum:.4g}, "
            f"eta={self.eta:.4g}, undefined={self.undefined})"
        )


def _flat_grad(
    loss: torch.Tensor, params: list[nn.Parameter], retain_graph: bool = False
) -> torch.Tensor:
    grads = torch.autograd.grad(
        loss, params, allow_unused=True, retain_graph=retain_graph
    )
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )


def _cosine(u: torch.Tensor, v: torch.Tensor) -> float:
    u, v = u.to(torch.float64), v.to(torch.float64)
    norm = float(torch.linalg.vector_norm(u) * torch.linalg.vector_norm(v))
    if norm == 0.0:
        return math.nan
    return min(1.0, max(-1.0, float(u @ v) / norm))


def minibatch_confusion(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    pairs: int = 100,
    batch_size: int = 128,
    generator: torch.Generator | int | None = None,
    bn_mode: str = "eval",
    disjoint: bool = True,
) -> MinibatchConfusion:
    """Cosine similarities of pairs of mini-batch gradients (the Section 7 protocol).

    For each of ``K = pairs`` pairs, two mini-batches of ``B = batch_size``
    samples are drawn uniformly without replacement (disjoint from each other if
    ``disjoint``), the gradient of ``loss_fn(model(X_b), y_b)`` with respect to
    all trainable parameters is computed for each, and their cosine

    .. math:: \\cos_k = \\langle g_{k,1}, g_{k,2} \\rangle /
              (\\lVert g_{k,1} \\rVert \\lVert g_{k,2} \\rVert)

    is recorded (in float64). The paper (Section 7) uses ``K = 100``,
    ``B = 128`` and reports the minimum and a kernel density estimate. Cost:
    ``2 K`` forward/backward passes of a mini-batch; memory: two gradients.

    Args:
        model: the network, at the weights to measure (not modified: modes and
            buffers are restored).
        loss_fn: ``loss_fn(output, target) -> scalar tensor``, e.g.
            ``nn.CrossEntropyLoss()``.
        data: ``(inputs, targets)`` tensors with samples along dimension 0, a
            map-style ``Dataset`` of ``(input, target)`` items, or a
            ``DataLoader`` (its dataset and ``collate_fn`` are used; its batch
            size, sampler and shuffling are ignored). Floating tensors are moved
            to the model's device and parameter dtype.
        pairs: number of mini-batch pairs ``K`` (>= 1). Default 100.
        batch_size: mini-batch size ``B``, between 1 and the number of samples
            (half of it when ``disjoint``). Default 128.
        generator: a ``torch.Generator`` (CPU) or an integer seed for the
            mini-batch draws; ``None`` means seed 0. Default None.
        bn_mode: "eval" (running statistics) or "train" (statistics of each
            mini-batch, which is the gradient SGD steps along). Default "eval".
        disjoint: draw the two mini-batches of a pair without common samples.
            Default True.

    Returns:
        A :class:`MinibatchConfusion` with the ``K`` cosines, ``minimum``,
        ``eta`` and ``density(grid)``.

    Raises:
        ValueError: on a bad ``model``, ``loss_fn``, ``data``, ``pairs``,
            ``batch_size``, ``generator`` or ``bn_mode``, or if ``loss_fn`` does
            not return a scalar.
    """
    named = _check_model(model)
    _check_loss_fn(loss_fn)
    pairs = _check_int("pairs", pairs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    bn_mode = _check_bn_mode(bn_mode)
    gen = _as_generator(generator)
    params = [p for _, p in named]
    source = _Source(data, params[0].device, params[0].dtype)
    limit = source.n // 2 if disjoint else source.n
    if batch_size > limit:
        raise ValueError(
            f"batch_size must be <= {limit} ("
            + (
                "half the number of samples, as pairs are disjoint"
                if disjoint
                else "the number of samples"
            )
            + f"), got {batch_size}"
        )

    cosines = np.empty(pairs, dtype=np.float64)
    with _measurement_mode(model, bn_mode):
        for k in range(pairs):
            if disjoint:
                perm = torch.randperm(source.n, generator=gen, device=gen.device)
                idx = (perm[:batch_size].cpu(), perm[batch_size : 2 * batch_size].cpu())
            else:
                idx = tuple(
                    torch.randperm(source.n, generator=gen, device=gen.device)[
                        :batch_size
                    ].cpu()
                    for _ in range(2)
                )
            flat = []
            for b in idx:
                x, t = source.get(b)
                flat.append(_flat_grad(_scalar_loss(loss_fn(model(x), t)), params))
            cosines[k] = _cosine(flat[0], flat[1])
    return MinibatchConfusion(
        cosines=cosines, batch_size=batch_size, bn_mode=bn_mode, disjoint=disjoint
    )


# ---------------------------------------------------------------------------
# (b) per-sample Gram: torch.func route, blockwise
# ---------------------------------------------------------------------------


def _blockwise_gram(
    rows: Callable[[int, int], torch.Tensor], n: int, chunk: int, like: torch.Tensor
) -> torch.Tensor:
    """``G = J J^T`` from row blocks ``J[a:b]`` computed on demand by ``rows(a, b)``.

    Holds at most two blocks (``2 c P`` numbers) besides ``G``. Block ``a`` is
    computed once and multiplied with every later block ``b``, which is
    recomputed for each ``a``: ``m (m + 1) / 2`` block evaluations for
    ``m = ceil(n / c)`` blocks (one when ``c >= n``).
    """
    G = torch.empty((n, n), dtype=like.dtype, device=like.device)
    starts = list(range(0, n, chunk))
    for i, a in enumerate(starts):
        a_end = min(a + chunk, n)
        Ja = rows(a, a_end)
        G[a:a_end, a:a_end] = Ja @ Ja.T
        for b in starts[i + 1 :]:
            b_end = min(b + chunk, n)
            block = Ja @ rows(b, b_end).T
            G[a:a_end, b:b_end] = block
            G[b:b_end, a:a_end] = block.T
    return G


def _vmap_rows(
    model: nn.Module,
    loss_fn: LossFn,
    named: list[tuple[str, nn.Parameter]],
    X: torch.Tensor,
    y: torch.Tensor,
) -> Callable[[int, int], torch.Tensor]:
    """Per-sample gradients of samples ``a..b-1``, forward on each sample alone."""
    params = {k: p.detach() for k, p in named}
    trainable = set(params)
    frozen = {k: p.detach() for k, p in model.named_parameters() if k not in trainable}
    frozen.update(dict(model.named_buffers()))

    def sample_loss(
        p: dict[str, torch.Tensor], x: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        out = functional_call(model, (p, frozen), (x.unsqueeze(0),))
        return _scalar_loss(loss_fn(out, t.unsqueeze(0)))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))

    def rows(a: int, b: int) -> torch.Tensor:
        g = per_sample(params, X[a:b], y[a:b])
        return torch.cat([g[k].reshape(b - a, -1) for k, _ in named], dim=1)

    return rows


def _batch_coupled_rows(
    model: nn.Module,
    loss_fn: LossFn,
    named: list[tuple[str, nn.Parameter]],
    X: torch.Tensor,
    y: torch.Tensor,
) -> Callable[[int, int], torch.Tensor]:
    """Rows of the Jacobian of the per-sample losses of one forward over all ``n``.

    Used when batch norm is in train mode: ``f_i`` is sample ``i``'s loss term
    when the batch statistics are those of the ``n`` measured samples, so
    ``sum_i grad f_i / n`` is the gradient of the mean loss on that batch.
    """
    params = [p for _, p in named]
    out = model(X)
    losses = vmap(lambda o, t: _scalar_loss(loss_fn(o.unsqueeze(0), t.unsqueeze(0))))(
        out, y
    )
    n = X.shape[0]

    def rows(a: int, b: int) -> torch.Tensor:
        basis = torch.zeros((b - a, n), dtype=losses.dtype, device=losses.device)
        basis[torch.arange(b - a), torch.arange(a, b)] = 1.0
        grads = torch.autograd.grad(
            losses,
            params,
            grad_outputs=basis,
            is_grads_batched=True,
            retain_graph=True,
            allow_unused=True,
        )
        return torch.cat(
            [
                (
                    g
                    if g is not None
                    else torch.zeros((b - a, *p.shape), dtype=p.dtype, device=p.device)
                ).reshape(b - a, -1)
                for g, p in zip(grads, params, strict=True)
            ],
            dim=1,
        )

    return rows


# ---------------------------------------------------------------------------
# (b) per-sample Gram: factored route for plain MLPs
# ---------------------------------------------------------------------------


def _parse_mlp(model: nn.Module) -> list[nn.Module] | None:
    """The layers of a plain MLP the factored formula handles, else ``None``.

    Recognized: an ``nn.Sequential`` (flat) of ``nn.Linear`` (with or without
    bias), ``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``, ``nn.Identity`` and
    ``nn.Flatten()`` (default dims), containing at least one ``nn.Linear``.
    """
    if type(model) is not nn.Sequential:
        return None
    layers = list(model.children())
    allowed = (nn.Linear, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Flatten)
    for layer in layers:
        if type(layer) not in allowed:
            return None
        if isinstance(layer, nn.Flatten) and (layer.start_dim, layer.end_dim) != (
            1,
            -1,
        ):
            return None
    if not any(isinstance(layer, nn.Linear) for layer in layers):
        return None
    return layers


def _factored_applicable(layers: list[nn.Module], X: torch.Tensor) -> bool:
    """Every Linear sees 2-D input: ``X`` is 2-D or flattened before the first."""
    for layer in layers:
        if isinstance(layer, nn.Flatten):
            return True
        if isinstance(layer, nn.Linear):
            return X.ndim == 2
    return False


def _factored_gram(
    layers: list[nn.Module], loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """``G = sum_p (Delta_p Delta_p^T) o (A_{p-1} A_{p-1}^T) [+ Delta_p Delta_p^T]``.

    Forward pass recording each Linear's input ``A_{p-1}`` and each activation's
    derivative ``sigma'(z)`` (in the form torch's own backward uses: ``z > 0``
    for ReLU, ``1 - tanh^2``, ``s (1 - s)``); output errors
    ``d f_i / d output`` by ``vmap(grad)`` of ``loss_fn`` on single samples; then
    the backward recursion ``Delta_{p-1} = (Delta_p W_p) * sigma'(z_{p-1})``.
    Memory: ``O(n sum_p l_p + n^2)``; no per-sample gradient is formed.
    """
    n = X.shape[0]
    # (layer, saved): a Linear's input, or an activation's derivative. Nothing
    # below the first Linear is needed, and Flatten is only allowed there or on
    # 2-D tensors (a no-op), so it is not recorded.
    tape: list[tuple[nn.Module, torch.Tensor]] = []
    with torch.no_grad():
        a = X
        for layer in layers:
            if isinstance(layer, nn.Linear):
                tape.append((layer, a))
                a = nn.functional.linear(a, layer.weight, layer.bias)
            elif isinstance(layer, nn.Flatten):
                a = a.reshape(n, -1)
            elif isinstance(layer, nn.ReLU):
                derivative = (a > 0).to(a.dtype)
                a = torch.relu(a)
            elif isinstance(layer, nn.Tanh):
                a = torch.tanh(a)
                derivative = 1 - a * a
            elif isinstance(layer, nn.Sigmoid):
                a = torch.sigmoid(a)
                derivative = a * (1 - a)
            if tape and isinstance(layer, nn.ReLU | nn.Tanh | nn.Sigmoid):
                tape.append((layer, derivative))
            # nn.Identity: nothing to do.
    out = a.detach()

    def sample_loss(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return _scalar_loss(loss_fn(o.unsqueeze(0), t.unsqueeze(0)))

    delta = vmap(grad(sample_loss))(out, y)
    G = torch.zeros((n, n), dtype=out.dtype, device=out.device)
    with torch.no_grad():
        for layer, saved in reversed(tape):
            if isinstance(layer, nn.Linear):
                dd = delta @ delta.T
                if layer.weight.requires_grad:
                    G += dd * (saved @ saved.T)
                if layer.bias is not None and layer.bias.requires_grad:
                    G += dd
                delta = delta @ layer.weight
            else:
                delta = delta * saved
    return G


# ---------------------------------------------------------------------------
# public: per-sample Gram
# ---------------------------------------------------------------------------


def _mirror_upper(G: torch.Tensor) -> torch.Tensor:
    """``G`` with its strict lower triangle replaced by the mirrored upper one.

    ``J J^T`` from BLAS is symmetric only up to rounding (the two triangles may
    be summed in different orders, differently on different CPUs); mirroring
    makes the returned Gram matrix symmetric bit for bit, by construction.
    """
    return torch.triu(G) + torch.triu(G, 1).mT


def per_sample_gram(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    max_samples: int = 2048,
    chunk_size: int | None = None,
    bn_mode: str = "eval",
    method: str = "auto",
) -> torch.Tensor:
    """Per-sample gradient Gram matrix ``G_ij = <grad f_i(w), grad f_j(w)>``.

    ``f_i`` is the loss on sample ``i`` alone (module docstring), the gradient is
    over all parameters with ``requires_grad``; the gradient confusion bound of
    Definition 2.1 is ``max(0, -min_{i != j} G_ij)``. The first
    ``min(N, max_samples)`` samples of ``data`` are used, in order.

    Methods:

    - ``"vmap"``: ``torch.func.vmap(grad(f_i))`` over chunks of ``c`` samples;
      ``G`` is accumulated block by block (chunk ``a`` x chunk ``b``), holding at
      most two chunks of per-sample gradients. Memory ``2 c P + n^2`` numbers
      (plus the activations of ``c`` samples); time: per-sample gradients are
      recomputed, ``m (m + 1) / 2`` chunk evaluations for ``m = ceil(n / c)``,
      i.e. ``(m + 1) / 2`` times a single pass (one pass when ``c >= n``).
    - ``"factored"``: the back-propagation formula of THEORY.md section 2 for a
      plain MLP: an ``nn.Sequential`` of ``nn.Linear`` (bias or not), ``nn.ReLU``,
      ``nn.Tanh``, ``nn.Sigmoid``, ``nn.Identity`` and ``nn.Flatten()`` (before
      the first ``nn.Linear``, or a no-op on 2-D activations). Memory
      ``O(n (sum of widths) + n^2)``, no chunking needed.
    - ``"auto"``: ``"factored"`` when the model is such an MLP, else ``"vmap"``.

    Batch norm: in ``bn_mode="eval"`` each sample is normalized with the running
    statistics and ``f_i`` depends on sample ``i`` alone. In ``bn_mode="train"``
    a per-sample gradient depends on the batch; what is computed then is the
    gradient of sample ``i``'s loss term in **one forward pass over all n
    measured samples** (batch statistics of those ``n`` samples), i.e. the rows
    of the Jacobian of the per-sample losses, by batched backward passes
    (``is_grads_batched``) over the retained graph, chunked as above (memory:
    that graph for ``n`` samples plus ``2 c P + n^2``); so
    ``sum_ij G_ij / n^2`` is the squared norm of the mean-loss gradient of that
    batch. Models without batch norm give the same result in both modes.

    Args:
        model: the network at the weights to measure (modes and buffers are
            restored afterwards).
        loss_fn: ``loss_fn(output, target) -> scalar tensor``.
        data: ``(inputs, targets)`` tensors, a map-style ``Dataset`` or a
            ``DataLoader`` (its dataset is read in order); floating tensors are
            moved to the model's device and parameter dtype.
        max_samples: at most this many samples (>= 1). Default 2048.
        chunk_size: samples per chunk of the vmap route (>= 1); ``None`` picks
            the largest chunk whose two blocks of per-sample gradients fit in
            256 MiB. Ignored by the factored route. Default None.
        bn_mode: "eval" or "train", the mode of batch-norm layers. Default "eval".
        method: "auto", "vmap" or "factored". Default "auto".

    Returns:
        ``G`` as a torch tensor (n, n) on the model's device, in the dtype of its
        parameters.

    Raises:
        ValueError: on a bad argument (named in the message), if
            ``method="factored"`` is asked for a model it does not handle, or if
            ``loss_fn`` does not return a scalar.
    """
    named = _check_model(model)
    _check_loss_fn(loss_fn)
    max_samples = _check_int("max_samples", max_samples, 1)
    if chunk_size is not None:
        chunk_size = _check_int("chunk_size", chunk_size, 1)
    bn_mode = _check_bn_mode(bn_mode)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    first = named[0][1]
    source = _Source(data, first.device, first.dtype)
    n = min(source.n, max_samples)
    X, y = source.get(torch.arange(n))

    layers = _parse_mlp(model)
    factored = layers is not None and _factored_applicable(layers, X)
    if method == "factored" and not factored:
        raise ValueError(
            "method='factored' needs an nn.Sequential of nn.Linear, nn.ReLU, "
            "nn.Tanh, nn.Sigmoid, nn.Identity (and a leading nn.Flatten() for "
            f"inputs with more than 2 dimensions), got {type(model).__name__} with "
            f"input shape {tuple(X.shape)}; use method='vmap'"
        )
    if method in ("factored", "auto") and factored:
        assert layers is not None
        return _mirror_upper(_factored_gram(layers, loss_fn, X, y))

    if chunk_size is None:
        P = sum(p.numel() for _, p in named)
        chunk_size = max(1, _DEFAULT_CHUNK_BYTES // (2 * P * first.element_size()))
    chunk_size = min(chunk_size, n)
    with _measurement_mode(model, bn_mode):
        if _uses_batch_statistics(model, bn_mode):
            rows = _batch_coupled_rows(model, loss_fn, named, X, y)
        else:
            rows = _vmap_rows(model, loss_fn, named, X, y)
        return _mirror_upper(_blockwise_gram(rows, n, chunk_size, first).detach())


# ---------------------------------------------------------------------------
# the package's MLP as a torch module
# ---------------------------------------------------------------------------


def torch_mlp(
    weights: Sequence[np.ndarray | torch.Tensor],
    *,
    activation: str,
    output_activation: bool = True,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> nn.Sequential:
    """The bias-free MLP ``g(x) = sigma(W_beta ... sigma(W_0 x))`` as ``nn.Sequential``.

    Same network as ``theory.gram`` with ``gamma = 1`` (THEORY.md section 1):
    ``Linear(W_0, bias=False), act, ..., Linear(W_beta, bias=False) [, act]``,
    so ``per_sample_gram(torch_mlp(weights, ...), ...)`` takes the factored route.

    Args:
        weights: ``[W_0 (l_0, d), W_1 (l_1, l_0), ..., W_beta (l_beta, l_{beta-1})]``.
        activation: "relu", "tanh", "sigmoid" or "identity".
        output_activation: apply ``sigma`` after the last layer (the paper's
            network). Default True.
        dtype: parameter dtype. Default torch.float64.
        device: parameter device. Default "cpu".

    Returns:
        The network with copies of ``weights`` as its parameters.

    Raises:
        ValueError: on an unknown activation, an empty list, a non-matrix
            weight, or consecutive shapes that do not chain.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {tuple(_ACTIVATIONS)}, got {activation!r}"
        )
    if len(weights) < 1:
        raise ValueError("weights must hold at least one matrix, got 0")
    mats = [
        torch.as_tensor(np.asarray(w) if not isinstance(w, torch.Tensor) else w)
        for w in weights
    ]
    for p, w in enumerate(mats):
        if w.ndim != 2:
            raise ValueError(
                f"weights[{p}] must be a matrix, got shape {tuple(w.shape)}"
            )
        if p and w.shape[1] != mats[p - 1].shape[0]:
            raise ValueError(
                f"weights[{p}] must have {mats[p - 1].shape[0]} columns to follow "
                f"weights[{p - 1}], got shape {tuple(w.shape)}"
            )
    modules: list[nn.Module] = []
    for p, w in enumerate(mats):
        linear = nn.Linear(
            w.shape[1], w.shape[0], bias=False, dtype=dtype, device=device
        )
        with torch.no_grad():
            linear.weight.copy_(w.to(dtype=dtype, device=device))
        modules.append(linear)
        if p < len(mats) - 1 or output_activation:
            modules.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*modules)
