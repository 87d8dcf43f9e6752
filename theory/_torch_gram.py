r"""Differentiable per-sample gradient Gram matrix and confusion objectives, in torch.

The torch twin of :func:`theory.gram` for the worst-case searches of the
uniform statements (Theorem 5.1, Corollary 5.1, Theorem 4.1 part 1): the same
factored formula, batched over leading dimensions (draws of data, draws of
weights, restarts of a search) and differentiable with respect to the weights
*and* the data, so that ``min_{i != j} G_ij`` can be pushed down by gradient
steps.

Notation (THEORY.md sections 1-2; Sankararaman et al., ICML 2020, Definition 2.1):

- ``n`` samples (the paper's ``N``), ``d`` input dimension, ``m`` draws in a
  batch (a leading dimension), ``p`` a layer (``0 .. beta``), ``beta`` =
  ``depth`` = ``len(weights) - 1``, ``l_p`` the outputs of layer ``p``
  (``width`` = ``max_p l_p`` over the hidden layers);
- ``A_p`` (``[..., n, l_p]``): activations, ``A_{-1} = X``;
  ``Z_p = A_{p-1} W_p^T``; ``Delta_p = df/dZ_p`` row by row;
- ``G`` (``[..., n, n]``): ``G_ij = <grad_W f_i, grad_W f_j>``; the confusion
  of one draw is ``eta(G) = max(0, -min_{i != j} G_ij)``;
- ``eta``: a confusion level, ``tau``: the temperature of the failure
  surrogate, ``t``: the temperature of the soft minimum.

The formula (THEORY.md section 2), in row-sample form:

.. math::

    \Delta_\beta = \ell'(g, y)\,\gamma\,\sigma'(Z_\beta), \quad
    \Delta_{p-1} = (\Delta_p W_p) \circ \sigma'(Z_{p-1}), \quad
    G = \sum_{p=0}^{\beta} (\Delta_p \Delta_p^T) \circ (A_{p-1} A_{p-1}^T),

with ``g = gamma a_beta`` (``sigma'(Z_beta)`` dropped for a linear output).
Per-sample gradients are never formed. ``G`` is symmetric by construction:
its upper triangle is mirrored (STYLE.md, "Equality that holds on every CPU").

Objectives of a batch of Gram matrices (``K = n (n - 1) / 2`` pairs ``i < j``):

- ``min_offdiag(G) = min_{i < j} G_ij`` (Definition 2.1);
- ``soft_min_offdiag(G, t) = -t log sum_{i < j} exp(-G_ij / t)``, with
  ``min - t log K <= soft min <= min``;
- ``failure_surrogate(s, eta, tau) = mean_b sigmoid((-s_b - eta) / tau)`` over
  the last dimension (the draws ``b``) of a statistic ``s`` (the minimum or the
  soft minimum): a smooth estimate of ``P(min G < -eta)``, the failure
  probability of Theorems 4.1 and 5.1, that tends to the empirical fraction
  ``#{s_b < -eta} / m`` as ``tau -> 0``.

Every tensor is created on the device and with the dtype of the inputs, so
the same code runs on a CUDA device; float64 is what the tests check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from theory._activations import ACTIVATIONS, Activation, get_activation
from theory._losses import LOSSES, Loss, get_loss

__all__ = ["failure_surrogate", "gram_torch", "min_offdiag", "soft_min_offdiag"]

TensorFn = Callable[[torch.Tensor], torch.Tensor]


def _relu_d1(z: torch.Tensor) -> torch.Tensor:
    # Derivative at 0 taken as 0, as theory.activations.relu and torch.relu do.
    return (z > 0).to(z.dtype)


def _tanh_d1(z: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(z)
    return 1.0 - t * t


def _sigmoid_d1(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return s * (1.0 - s)


# sigma and sigma' of the built-in activations (theory._activations), in torch.
_TORCH_ACTIVATIONS: dict[str, tuple[TensorFn, TensorFn]] = {
    "relu": (torch.relu, _relu_d1),
    "tanh": (torch.tanh, _tanh_d1),
    "sigmoid": (torch.sigmoid, _sigmoid_d1),
    "identity": (lambda z: z, torch.ones_like),
}


def _square_d1(g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return g - y


def _logistic_d1(g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # -y / (1 + exp(y g)) = -y sigmoid(-y g), stable for large |y g|.
    return -y * torch.sigmoid(-y * g)


# l'(g, y) of the built-in losses (theory._losses), in torch.
_TORCH_LOSS_D1: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "square": _square_d1,
    "logistic": _logistic_d1,
}


def _resolve_activation(activation: str | Activation) -> tuple[TensorFn, TensorFn]:
    act = get_activation(activation)
    if ACTIVATIONS.get(act.name) is not act:
        raise ValueError(
            f"activation must be a built-in one {sorted(ACTIVATIONS)} (only these "
            f"have a torch twin), got the custom Activation {act.name!r}"
        )
    return _TORCH_ACTIVATIONS[act.name]


def _resolve_loss(
    loss: str | Loss,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    loss_ = get_loss(loss)
    if LOSSES.get(loss_.name) is not loss_:
        raise ValueError(
            f"loss must be a built-in one {sorted(LOSSES)} (only these have a "
            f"torch twin), got the custom Loss {loss_.name!r}"
        )
    return _TORCH_LOSS_D1[loss_.name]


def _check_tensor(name: str, value: object, min_dim: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor, got {type(value).__name__}; convert "
            "arrays with torch.as_tensor(array, dtype=torch.float64)"
        )
    if not value.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {value.dtype}")
    if value.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimensions, got shape "
            f"{tuple(value.shape)}"
        )
    return value


def _validate(
    weights: Sequence[torch.Tensor], X: torch.Tensor, y: torch.Tensor, gamma: float
) -> tuple[int, torch.Size]:
    """Check types, dtypes, devices and shapes; return ``n`` and the batch shape."""
    X = _check_tensor("X", X, 2)
    y = _check_tensor("y", y, 1)
    if isinstance(weights, torch.Tensor) or not isinstance(weights, Sequence):
        raise ValueError(
            "weights must be a list [W_0, ..., W_beta] of tensors, got "
            f"{type(weights).__name__}; wrap a single matrix W as [W]"
        )
    if len(weights) == 0:
        raise ValueError("weights must contain at least one matrix, got []")
    if (
        isinstance(gamma, bool)
        or not isinstance(gamma, int | float)
        or not math.isfinite(gamma)
        or gamma <= 0
    ):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    n, d = X.shape[-2:]
    if n < 2:
        raise ValueError(
            f"X must have n >= 2 rows (samples), got shape {tuple(X.shape)}"
        )
    if d < 1:
        raise ValueError(f"X must have d >= 1 columns, got shape {tuple(X.shape)}")
    if y.shape[-1] != n:
        raise ValueError(
            f"y must have shape [..., n] with n = {n} (the rows of X), got shape "
            f"{tuple(y.shape)}"
        )
    batch = [X.shape[:-2], y.shape[:-1]]
    fan_in, source = d, f"X has d = {d} columns"
    for p, W in enumerate(weights):
        W = _check_tensor(f"weights[{p}]", W, 2)
        if W.shape[-1] != fan_in:
            raise ValueError(
                f"weights[{p}] has shape {tuple(W.shape)} but {source}; expected "
                f"[..., {W.shape[-2]}, {fan_in}]"
            )
        if W.shape[-2] < 1:
            raise ValueError(
                f"weights[{p}] has shape {tuple(W.shape)}; every layer needs "
                ">= 1 output"
            )
        batch.append(W.shape[:-2])
        fan_in, source = W.shape[-2], f"layer {p} has {W.shape[-2]} outputs"
    if fan_in != 1:
        raise ValueError(
            f"weights[{len(weights) - 1}] (the output layer) has {fan_in} outputs; "
            f"the output is scalar, so expected shape [..., 1, {weights[-1].shape[-1]}]"
        )
    for name, t in [("y", y), *((f"weights[{p}]", W) for p, W in enumerate(weights))]:
        if t.dtype != X.dtype or t.device != X.device:
            raise ValueError(
                f"{name} must have the dtype and device of X ({X.dtype}, {X.device}), "
                f"got ({t.dtype}, {t.device})"
            )
    try:
        shape = torch.broadcast_shapes(*batch)
    except RuntimeError:
        shapes = [tuple(b) for b in batch]
        raise ValueError(
            "the leading (batch) dimensions of X, y and weights must broadcast, got "
            f"{shapes[0]} (X), {shapes[1]} (y), {shapes[2:]} (weights)"
        ) from None
    return n, shape


def gram_torch(
    weights: Sequence[torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    activation: str | Activation,
    loss: str | Loss,
    output_activation: bool = True,
    gamma: float = 1.0,
) -> torch.Tensor:
    r"""Per-sample gradient Gram matrices of a batch, differentiable (factored).

    ``G_ij = <grad_W f_i, grad_W f_j>`` with ``f_i(W) = l(g_W(x_i), y_i)``
    (Definition 2.1; THEORY.md section 2), computed as in :func:`theory.gram`:

    .. math::

        G = \sum_{p=0}^{\beta} (\Delta_p \Delta_p^T) \circ (A_{p-1} A_{p-1}^T),

    over every leading (batch) dimension at once: ``X`` of shape
    ``[*bx, n, d]``, ``y`` of shape ``[*by, n]`` and each ``W_p`` of shape
    ``[*bw_p, l_p, l_{p-1}]`` broadcast against each other (a batch of data
    draws with one network, a batch of weight draws with one dataset, or
    restarts times draws). Autograd differentiates the result with respect to
    the weights, ``X`` and ``y`` (so labels computed from ``X`` by a
    differentiable labeling function carry their gradient too). Only the upper
    triangle is computed from the formula; the lower one is its mirror image,
    so ``G`` is exactly symmetric.

    Values are not checked for finiteness (a check would synchronize a CUDA
    device at every step of a search): non-finite entries propagate into
    ``G``. Labels are not checked against ``|y| <= 1`` either.

    Args:
        weights: ``[W_0, ..., W_beta]``, ``W_0`` of shape ``[..., l_0, d]``,
            ``W_p`` of shape ``[..., l_p, l_{p-1}]``, the last of shape
            ``[..., 1, l_{beta-1}]``; a single ``[..., 1, d]`` matrix is a
            generalized linear model.
        X: Inputs ``[..., n, d]`` with ``n >= 2``, ``d >= 1``; floating dtype.
        y: Labels ``[..., n]``.
        activation: ``sigma``: ``"relu"``, ``"tanh"``, ``"sigmoid"``,
            ``"identity"`` or the built-in ``Activation`` of that name.
        loss: ``"square"``, ``"logistic"`` or the built-in ``Loss``.
        output_activation: Apply ``sigma`` at the output (the paper's
            network). Defaults to True.
        gamma: Fixed output scale, finite and > 0 (gradients are with respect
            to the unscaled ``W_p``). Defaults to 1.0.

    Returns:
        ``G`` of shape ``[*batch, n, n]`` (``batch`` the broadcast of the
        leading dimensions), on the device and with the dtype of ``X``.

    Raises:
        ValueError: Naming the argument, if a tensor is missing or not
            floating, dtypes or devices differ, shapes do not chain or
            broadcast, ``n < 2``, ``gamma`` is not a finite number > 0, or the
            activation or loss is unknown or custom.
    """
    sigma, sigma_d1 = _resolve_activation(activation)
    loss_d1 = _resolve_loss(loss)
    _validate(weights, X, y, gamma)
    output_activation = bool(output_activation)
    beta = len(weights) - 1
    inputs: list[torch.Tensor] = []
    zs: list[torch.Tensor] = []
    a = X
    for p, W in enumerate(weights):
        inputs.append(a)
        z = a @ W.mT
        zs.append(z)
        a = sigma(z) if (p < beta or output_activation) else z
    g = gamma * a[..., 0]
    delta = (loss_d1(g, y) * gamma)[..., None]
    if output_activation:
        delta = delta * sigma_d1(zs[-1])
    G = None
    for p in range(beta, -1, -1):
        term = (delta @ delta.mT) * (inputs[p] @ inputs[p].mT)
        G = term if G is None else G + term
        if p > 0:
            delta = (delta @ weights[p]) * sigma_d1(zs[p - 1])
    # Symmetric by construction: the two triangles of a product may round
    # differently (summation order), so mirror the upper one.
    return torch.triu(G) + torch.triu(G, 1).mT


def _check_gram(G: object) -> torch.Tensor:
    G = _check_tensor("G", G, 2)
    if G.shape[-1] != G.shape[-2] or G.shape[-1] < 2:
        raise ValueError(
            f"G must be a batch of square [..., n, n] matrices with n >= 2, got shape "
            f"{tuple(G.shape)}"
        )
    return G


def _upper_pairs(G: torch.Tensor) -> torch.Tensor:
    """The ``K = n (n - 1) / 2`` entries ``G_ij``, ``i < j``, as ``[..., K]``."""
    n = G.shape[-1]
    i, j = torch.triu_indices(n, n, offset=1, device=G.device)
    return G[..., i, j]


def min_offdiag(G: torch.Tensor) -> torch.Tensor:
    """``min_{i != j} G_ij`` of every matrix of a batch (Definition 2.1).

    ``G`` is symmetric, so the minimum runs over the pairs ``i < j``. Where
    several pairs attain it, autograd spreads the gradient evenly over them.

    Args:
        G: ``[..., n, n]``, ``n >= 2``, symmetric (e.g. from :func:`gram_torch`).

    Returns:
        ``[...]``: the minimum of each matrix; the confusion of a draw is
        ``max(0, -min_offdiag(G))``.

    Raises:
        ValueError: If ``G`` is not a floating tensor of square matrices, n >= 2.
    """
    return _upper_pairs(_check_gram(G)).amin(dim=-1)


def soft_min_offdiag(
    G: torch.Tensor, temperature: float | torch.Tensor
) -> torch.Tensor:
    r"""Smooth minimum of the off-diagonal entries, by log-sum-exp.

    .. math::

        \operatorname{softmin}_t(G) = -t \log \sum_{i < j} e^{-G_{ij} / t},
        \qquad \min_{i<j} G_{ij} - t \log K \le \operatorname{softmin}_t(G)
        \le \min_{i<j} G_{ij},

    with ``K = n (n - 1) / 2``: a lower bound on the minimum that tends to it as
    ``t -> 0`` and whose gradient weights every pair by its softmax weight
    (smooth where the hard minimum switches pairs). For ``n = 2`` it equals
    ``G_01`` exactly.

    Args:
        G: ``[..., n, n]``, ``n >= 2``, symmetric.
        temperature: ``t > 0``: a number, or a tensor broadcastable to the
            batch shape ``[...]`` (a temperature per matrix, e.g. relative to
            each matrix's scale).

    Returns:
        ``[...]``, the soft minimum of each matrix.

    Raises:
        ValueError: If ``G`` is not a batch of square matrices with ``n >= 2``
            or a temperature is not finite and > 0.
    """
    G = _check_gram(G)
    t = _check_positive("temperature", temperature, G)
    pairs = _upper_pairs(G)
    return -t * torch.logsumexp(-pairs / t[..., None], dim=-1)


def _check_positive(name: str, value: object, like: torch.Tensor) -> torch.Tensor:
    """A finite ``> 0`` number or tensor, as a tensor on ``like``'s device/dtype."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise ValueError(f"{name} must be a floating tensor, got {value.dtype}")
        bad = ~(torch.isfinite(value) & (value > 0))
        if bool(bad.any()):
            raise ValueError(
                f"{name} must be finite and > 0, got {value[bad].flatten()[0].item()}"
            )
        return value.to(device=like.device, dtype=like.dtype)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return torch.as_tensor(float(value), device=like.device, dtype=like.dtype)


def failure_surrogate(
    statistic: torch.Tensor,
    eta: float | torch.Tensor,
    tau: float | torch.Tensor,
) -> torch.Tensor:
    r"""Smooth estimate of the failure probability ``P(min_{i != j} G_ij < -eta)``.

    .. math::

        \hat P_\tau(\eta) = \frac1m \sum_{b=1}^{m}
        \operatorname{sigmoid}\!\Big(\frac{-s_b - \eta}{\tau}\Big),

    the mean over the last dimension (``m`` draws) of a per-draw statistic
    ``s_b`` (:func:`min_offdiag` or :func:`soft_min_offdiag`). Each term lies
    in ``(0, 1)``, decreases in ``eta`` and tends to the indicator of
    ``s_b < -eta`` as ``tau -> 0`` (to 1/2 on ties), so the surrogate tends to
    the empirical failure fraction at level ``eta``, the quantity the bounds of
    Theorems 4.1 and 5.1 control.

    Args:
        statistic: ``[..., m]``, ``m >= 1``: one value per draw, floating.
        eta: The confusion level: a finite number, or a tensor broadcastable to
            ``[...]`` (one level per batch entry, e.g. per restart).
        tau: Temperature ``> 0``: a number, or a tensor broadcastable to ``[...]``.

    Returns:
        ``[...]``, values in ``[0, 1]``.

    Raises:
        ValueError: If ``statistic`` is not a floating tensor with a last
            dimension, ``eta`` is not finite or ``tau`` not finite and > 0.
    """
    s = _check_tensor("statistic", statistic, 1)
    if s.shape[-1] < 1:
        raise ValueError(
            f"statistic must have m >= 1 draws in its last dimension, got shape "
            f"{tuple(s.shape)}"
        )
    if isinstance(eta, torch.Tensor):
        if not eta.is_floating_point() or not bool(torch.isfinite(eta).all()):
            raise ValueError(f"eta must be a finite floating tensor, got {eta}")
        eta_t = eta.to(device=s.device, dtype=s.dtype)
    else:
        if (
            isinstance(eta, bool)
            or not isinstance(eta, int | float)
            or not math.isfinite(eta)
        ):
            raise ValueError(f"eta must be a finite number, got {eta!r}")
        eta_t = torch.as_tensor(float(eta), device=s.device, dtype=s.dtype)
    tau_t = _check_positive("tau", tau, s)
    return torch.sigmoid((-s - eta_t[..., None]) / tau_t[..., None]).mean(dim=-1)
