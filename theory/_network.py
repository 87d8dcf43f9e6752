r"""Bias-free fully connected networks with a scalar output.

Notation (THEORY.md section 1; Sankararaman et al., ICML 2020, Section 4):

- ``n`` samples, ``d`` input dimension; ``X`` is ``(n, d)``, row ``i`` is
  ``x_i``;
- ``depth`` = ``beta`` = ``len(weights) - 1``; ``weights = [W_0, ..., W_beta]``
  with ``W_0`` of shape ``(l_0, d)``, ``W_p`` of shape ``(l_p, l_{p-1})`` and
  ``W_beta`` of shape ``(1, l_{beta-1})``; ``width`` = ``max_p l_p`` over the
  hidden layers;
- ``gamma``: fixed output scale (``1/sqrt(2 beta)`` for the orthogonal linear
  networks of Section 6).

The layer equation, with ``a_{-1} = x``:

.. math::

    z_p = W_p a_{p-1}, \quad a_p = \sigma(z_p) \ (p < \beta), \quad
    g_W(x) = \gamma\, \sigma(z_\beta) \ \text{(or } \gamma z_\beta
    \text{ if the output is linear)}.

A single ``(1, d)`` matrix (``beta = 0``) is a generalized linear model: linear
regression (identity activation, linear output) or logistic regression.
"""

import warnings
from collections.abc import Sequence

import numpy as np

from theory._activations import Activation, get_activation


def _float_array(name: str, value: object) -> np.ndarray:
    """``value`` as a float64 array; a ValueError naming ``name`` if it is not numeric.

    Args:
        name: Argument name used in the error message (``"X"``, ``"y"``,
            ``"weights[0]"``).
        value: Array-like of real numbers.

    Returns:
        The float64 array.

    Raises:
        ValueError: If ``value`` is a string or cannot be read as an array of
            real numbers (ragged, non-numeric or complex entries).
    """
    if isinstance(value, str | bytes):
        raise ValueError(f"{name} must be an array of real numbers, got {value!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, np.exceptions.ComplexWarning) as exc:
        shown = " ".join(repr(value).split())  # one line
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ValueError(
            f"{name} must be an array of real numbers, got {shown} ({exc})"
        ) from None


def _validate_network(
    weights: Sequence[np.ndarray], X: np.ndarray, *, gamma: float, min_n: int
) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Check and convert a network and its inputs to float64, before any work.

    Args:
        weights: The list ``[W_0, ..., W_beta]``.
        X: Inputs, shape ``(n, d)``.
        gamma: Output scale, finite and > 0.
        min_n: Smallest allowed number of samples ``n``.

    Returns:
        ``(weights, X, gamma)`` as float64 arrays and a Python float.

    Raises:
        ValueError: Naming the offending argument, if any shape is
            incompatible, a value is non-finite, ``n < min_n``, ``d < 1`` or
            ``gamma`` is not a finite number > 0.
    """
    if (
        isinstance(gamma, bool)
        or not isinstance(gamma, int | float | np.integer | np.floating)
        or not np.isfinite(gamma)
        or gamma <= 0
    ):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    X = _float_array("X", X)
    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array of shape (n, d) (rows are samples), "
            f"got shape {X.shape}"
        )
    n, d = X.shape
    if n < min_n:
        raise ValueError(f"X must have n >= {min_n} rows (samples), got n = {n}")
    if d < 1:
        raise ValueError(f"X must have d >= 1 columns, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        i, j = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(
            f"X must be finite, got X[{i}, {j}] = {X[i, j]} "
            f"({int(np.sum(~np.isfinite(X)))} non-finite entries)"
        )
    if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
        raise ValueError(
            "weights must be a list [W_0, ..., W_beta] of 2-D arrays, "
            f"got {type(weights).__name__}; wrap a single matrix W as [W]"
        )
    if len(weights) == 0:
        raise ValueError("weights must contain at least one matrix, got []")
    out: list[np.ndarray] = []
    fan_in, source = d, f"X has d = {d} columns"
    for p, W in enumerate(weights):
        W = _float_array(f"weights[{p}]", W)
        if W.ndim != 2:
            raise ValueError(f"weights[{p}] must be a 2-D array, got shape {W.shape}")
        if W.shape[0] < 1:
            raise ValueError(
                f"weights[{p}] has shape {W.shape}; every layer needs >= 1 output"
            )
        if W.shape[1] != fan_in:
            raise ValueError(
                f"weights[{p}] has shape {W.shape} but {source}; "
                f"expected ({W.shape[0]}, {fan_in})"
            )
        if not np.all(np.isfinite(W)):
            i, j = np.argwhere(~np.isfinite(W))[0]
            raise ValueError(
                f"weights[{p}] must be finite, got weights[{p}][{i}, {j}] = {W[i, j]}"
            )
        out.append(W)
        fan_in, source = W.shape[0], f"layer {p} has {W.shape[0]} outputs"
    if out[-1].shape[0] != 1:
        beta = len(out) - 1
        raise ValueError(
            f"weights[{beta}] (the output layer) has shape {out[-1].shape}; the "
            f"output is scalar, so expected (1, {out[-1].shape[1]})"
        )
    return out, X, float(gamma)


def _forward_pass(
    weights: list[np.ndarray],
    X: np.ndarray,
    activation: Activation,
    output_activation: bool,
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Forward pass on validated float64 input, keeping what back-prop needs.

    Non-finite intermediate values (overflow of deep ReLU nets) are returned,
    not reported: floating-point warnings are silenced.

    Returns:
        ``(inputs, zs, out)``: ``inputs[p] = A_{p-1}`` (``(n, l_{p-1})``, with
        ``A_{-1} = X``), ``zs[p] = Z_p = A_{p-1} W_p^T`` (``(n, l_p)``), and
        the unscaled output ``a_beta`` of shape ``(n,)``.
    """
    inputs: list[np.ndarray] = []
    zs: list[np.ndarray] = []
    a = X
    beta = len(weights) - 1
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for p, W in enumerate(weights):
            inputs.append(a)
            z = a @ W.T
            zs.append(z)
            a = activation.fn(z) if (p < beta or output_activation) else z
    return inputs, zs, a[:, 0]


def forward(
    weights: Sequence[np.ndarray],
    X: np.ndarray,
    *,
    activation: str | Activation,
    output_activation: bool = True,
    gamma: float = 1.0,
) -> np.ndarray:
    """Network outputs ``g_W(x_i) = gamma * a_beta(x_i)`` for every row of ``X``.

    Layer equation (THEORY.md section 1): ``a_{-1} = x``, ``z_p = W_p a_{p-1}``,
    ``a_p = sigma(z_p)`` for the hidden layers ``p < beta``; the output layer
    applies ``sigma`` only if ``output_activation`` (the paper's default).

    Args:
        weights: ``[W_0, ..., W_beta]``, ``W_0`` of shape ``(l_0, d)``, ``W_p``
            of shape ``(l_p, l_{p-1})``, the last of shape ``(1, l_{beta-1})``.
        X: Inputs, shape ``(n, d)`` with ``n >= 1``, ``d >= 1``, finite.
        activation: ``sigma``: a built-in name or an ``Activation``.
        output_activation: Apply ``sigma`` at the output. Defaults to True.
        gamma: Fixed output scale, finite and > 0. Defaults to 1.0.

    Returns:
        Float64 array of shape ``(n,)``. Overflow in deep networks yields
        non-finite entries rather than an error.

    Raises:
        ValueError: If ``activation`` is unknown, shapes are incompatible,
            ``X`` or ``weights`` are not finite, or ``gamma`` is not > 0.
    """
    act = get_activation(activation)
    Ws, X, gamma = _validate_network(weights, X, gamma=gamma, min_n=1)
    _, _, out = _forward_pass(Ws, X, act, bool(output_activation))
    with np.errstate(over="ignore", invalid="ignore"):
        return gamma * out
