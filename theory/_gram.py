r"""Per-sample gradient Gram matrix ``G_ij = <grad f_i(W), grad f_j(W)>``.

Notation (THEORY.md sections 1-2; Sankararaman et al., ICML 2020, Definition 2.1):

- ``n`` samples, ``d`` input dimension, ``depth`` = ``beta`` = ``len(weights) - 1``,
  ``l_p`` the number of outputs of layer ``p`` (``width`` = ``max_p l_p``);
- ``A_p`` (``n, l_p``): activations of layer ``p``, row ``i`` for sample ``i``,
  ``A_{-1} = X``; ``Z_p = A_{p-1} W_p^T`` (pre-activations);
- ``Delta_p`` (``n, l_p``): ``df_i/dz_p`` stacked by rows;
- ``G`` (``n, n``): the Gram matrix; ``eta = max(0, -min_{i != j} G_ij)``
  (see ``theory.eta``).

The per-sample gradient of ``W_p`` is the outer product ``delta_p a_{p-1}^T``,
so ``<delta_p^i (a_{p-1}^i)^T, delta_p^j (a_{p-1}^j)^T>_F =
<delta_p^i, delta_p^j> <a_{p-1}^i, a_{p-1}^j>`` and

.. math::

    G = \sum_{p=0}^{\beta} (\Delta_p \Delta_p^T) \circ (A_{p-1} A_{p-1}^T)

(``o`` = Hadamard product), which never forms the ``n x P`` matrix of
per-sample gradients.
"""

from collections.abc import Sequence

import numpy as np

from theory._activations import Activation, get_activation
from theory._losses import Loss, get_loss
from theory._network import _float_array, _forward_pass, _validate_network


def gram(
    weights: Sequence[np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    *,
    activation: str | Activation,
    loss: str | Loss,
    output_activation: bool = True,
    gamma: float = 1.0,
    label_bound: float | None = 1.0,
) -> np.ndarray:
    r"""Exact per-sample gradient Gram matrix by factored back-propagation.

    ``G_ij = <grad_W f_i, grad_W f_j>`` summed over all weight matrices, where
    ``f_i(W) = l(g_W(x_i), y_i)`` (Definition 2.1 of the paper; THEORY.md
    section 2). With ``a_{-1} = x``, ``z_p = W_p a_{p-1}``, ``a_p = sigma(z_p)``,
    ``g = gamma * a_beta`` and, in row-sample form,

    .. math::

        \Delta_\beta = \ell'(g, y)\, \gamma\, \sigma'(Z_\beta), \quad
        \Delta_{p-1} = (\Delta_p W_p) \circ \sigma'(Z_{p-1}), \quad
        G = \sum_{p=0}^{\beta} (\Delta_p \Delta_p^T) \circ (A_{p-1} A_{p-1}^T).

    If the output is linear (``output_activation=False``) the factor
    ``sigma'(Z_beta)`` is dropped. ``gamma`` is a fixed output scale: gradients
    are taken with respect to the unscaled weights ``W_p``.

    Cost: ``O(n^2 (l_{p-1} + l_p))`` per layer for the two Gram factors plus
    ``O(n l_{p-1} l_p)`` for the forward and backward products; memory
    ``O(n^2 + n sum_p l_p)``. Per-sample gradients are never formed.

    Deep ReLU networks can overflow: non-finite intermediate values are not an
    error, they propagate into ``G`` (callers count non-finite trials). Only
    non-finite *input* is rejected.

    Args:
        weights: ``[W_0, ..., W_beta]``: ``W_0`` of shape ``(l_0, d)``, ``W_p``
            of shape ``(l_p, l_{p-1})``, last of shape ``(1, l_{beta-1})``; a
            single ``(1, d)`` matrix is a generalized linear model.
        X: Inputs, shape ``(n, d)``, ``n >= 2``, ``d >= 1``, finite.
        y: Labels, shape ``(n,)``, finite.
        activation: ``sigma``: a built-in name or an ``Activation``.
        loss: ``"square"``, ``"logistic"`` or a ``Loss``.
        output_activation: Apply ``sigma`` at the output (the paper's
            network). Defaults to True.
        gamma: Fixed output scale, finite and > 0. Defaults to 1.0.
        label_bound: If not None, require ``|y_i| <= label_bound`` (the
            theorems assume ``|C(x)| <= 1``). Defaults to 1.0.

    Returns:
        ``G``, float64 array of shape ``(n, n)``, symmetric positive
        semi-definite up to rounding.

    Raises:
        ValueError: Naming the argument, if ``activation`` or ``loss`` is
            unknown, ``X``, ``y`` or a weight matrix is not an array of real
            numbers, shapes are incompatible, ``X``, ``weights`` or ``y`` are
            not finite, ``n < 2``, ``d < 1``, ``gamma`` is not > 0,
            ``label_bound`` is not a finite number >= 0, or a label exceeds it.
    """
    act = get_activation(activation)
    loss_ = get_loss(loss)
    Ws, X, gamma = _validate_network(weights, X, gamma=gamma, min_n=2)
    n = X.shape[0]
    y = _float_array("y", y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape (n,) = ({n},), got {y.shape}")
    if not np.all(np.isfinite(y)):
        i = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(f"y must be finite, got y[{i}] = {y[i]}")
    if label_bound is not None:
        if (
            isinstance(label_bound, bool)
            or not isinstance(label_bound, int | float | np.integer | np.floating)
            or not np.isfinite(label_bound)
            or label_bound < 0
        ):
            raise ValueError(
                f"label_bound must be None or a finite number >= 0, got {label_bound!r}"
            )
        i = int(np.argmax(np.abs(y)))
        if abs(y[i]) > label_bound:
            raise ValueError(
                f"y must satisfy |y_i| <= label_bound = {label_bound} (the theorems "
                f"assume |C(x)| <= 1), got y[{i}] = {y[i]}; pass label_bound=None "
                "to skip this check"
            )

    output_activation = bool(output_activation)
    inputs, zs, out = _forward_pass(Ws, X, act, output_activation)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        g = gamma * out
        delta = (loss_.d1(g, y) * gamma)[:, None]
        if output_activation:
            delta = delta * act.d1(zs[-1])
        G = np.zeros((n, n))
        for p in range(len(Ws) - 1, -1, -1):
            G += (delta @ delta.T) * (inputs[p] @ inputs[p].T)
            if p > 0:
                delta = (delta @ Ws[p]) * act.d1(zs[p - 1])
    # Symmetric by construction: BLAS may round the two triangles of a product
    # differently (summation order varies by CPU), so mirror the upper one.
    return np.triu(G) + np.triu(G, 1).T
