"""Random data and weight samplers for the Monte Carlo engine.

Notation (Sankararaman et al., ICML 2020, restated in THEORY.md sections 1, 4-6):

- ``n``: number of data points (the paper's ``N``); ``d``: input dimension.
- ``widths = [l_0, ..., l_{beta-1}]``: the hidden widths; ``depth`` = ``beta`` =
  ``len(widths)``. A scalar output layer (``l_beta = 1``) is always appended, so
  a network has ``beta + 1`` weight matrices
  ``[W_0 (l_0, d), W_1 (l_1, l_0), ..., W_beta (1, l_{beta-1})]``.
- ``kappa``: the variance scale of Strategy 4.1 (``1/2`` for ReLU, ``1`` for tanh).
- ``P``: the total number of weights, ``sum_p size(W_p)``.

Random-draw contract. Every sampler takes ``rng`` first and draws only through
``rng.standard_normal(size)`` and ``rng.random(size)``, always passing ``size``
positionally (an ``int``, a ``tuple`` of ``int``, or ``None`` for one scalar
uniform). Each docstring lists the exact calls, in order, with their shapes;
arrays are filled in C order. Any object with these two methods (the protocol
:class:`NormalSource`, which ``numpy.random.Generator`` satisfies) can therefore
drive the samplers, and a compiled engine can replicate the draws exactly.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Protocol, TypeGuard, overload, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "LINEAR_LAYERS",
    "NormalSource",
    "ball_around",
    "gaussian_weights",
    "haar_orthogonal",
    "orthogonal_linear_network",
    "orthogonal_weights",
    "signed_permutation",
    "small_weights",
    "sphere",
    "uniform_spectrum_weights",
    "unit_ball",
]

FloatArray = npt.NDArray[np.float64]
Size = int | tuple[int, ...]


@runtime_checkable
class NormalSource(Protocol):
    """The two random methods every sampler uses (``numpy.random.Generator`` fits).

    ``size`` is always passed positionally: an ``int`` or a ``tuple`` of ``int``
    gives a float64 array of that shape filled in C order, and ``random(None)``
    gives one float.
    """

    def standard_normal(self, size: Size, /) -> FloatArray:
        """Return i.i.d. N(0, 1) draws of shape ``size``."""
        ...

    @overload
    def random(self, size: None, /) -> float: ...

    @overload
    def random(self, size: Size, /) -> FloatArray: ...

    def random(self, size: Size | None, /) -> float | FloatArray:
        """Return i.i.d. Uniform[0, 1) draws of shape ``size`` (a float for None)."""
        ...


# --- validation ------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[numbers.Integral]:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(name: str, value: object, minimum: int) -> int:
    if not (_is_int(value) and int(value) >= minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_real(name: str, value: object) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _check_widths(widths: object) -> list[int]:
    allowed = "widths must be a non-empty sequence of integers >= 1"
    if isinstance(widths, str | bytes) or not isinstance(widths, Sequence | np.ndarray):
        raise ValueError(f"{allowed}, got {widths!r}")
    values = list(widths)
    if not values or not all(_is_int(w) and w >= 1 for w in values):
        raise ValueError(f"{allowed}, got {widths!r}")
    return [int(w) for w in values]


def _layer_shapes(d: int, widths: list[int]) -> list[tuple[int, int]]:
    """Shapes ``[(l_0, d), (l_1, l_0), ..., (1, l_{beta-1})]``."""
    fan_in = [d, *widths]
    fan_out = [*widths, 1]
    return list(zip(fan_out, fan_in, strict=True))


def _normal(rng: NormalSource, size: Size) -> FloatArray:
    return np.asarray(rng.standard_normal(size), dtype=np.float64)


# --- data -------------------------------------------------------------------


def sphere(rng: NormalSource, n: int, d: int) -> FloatArray:
    """Draw ``n`` points i.i.d. uniform on the unit sphere ``S^{d-1}``.

    The "sphere data" of Theorems 4.1 (part 2), 5.1 and 6.1: ``x_i = z_i /
    ||z_i||_2`` with ``z_i ~ N(0, I_d)`` (the normal law is rotation invariant).

    Draws: ``rng.standard_normal((n, d))`` (row ``i`` is ``z_i``, C order).

    Args:
        rng: Source of the random draws (e.g. ``numpy.random.default_rng(seed)``).
        n: Number of points, an integer >= 2 (confusion needs pairs).
        d: Dimension of the ambient space, an integer >= 1.

    Returns:
        Array of shape ``(n, d)`` whose rows have Euclidean norm 1.

    Raises:
        ValueError: If ``n`` or ``d`` is not an integer in its range.
    """
    n = _check_int("n", n, 2)
    d = _check_int("d", d, 1)
    z = _normal(rng, (n, d))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def unit_ball(rng: NormalSource, n: int, d: int) -> FloatArray:
    """Draw ``n`` points i.i.d. uniform in the closed unit ball of ``R^d``.

    Data with ``||x_i|| <= 1`` as in Section 1 and Theorem 4.1 (part 1):
    ``x_i = u_i ** (1/d) * z_i / ||z_i||_2`` with ``z_i ~ N(0, I_d)`` and
    ``u_i ~ Uniform[0, 1)``, so the radius has CDF ``t^d`` on ``[0, 1]``.

    Draws, in this order: ``rng.standard_normal((n, d))`` (row ``i`` is ``z_i``,
    C order), then ``rng.random(n)`` (entry ``i`` is ``u_i``).

    Args:
        rng: Source of the random draws.
        n: Number of points, an integer >= 2.
        d: Dimension, an integer >= 1.

    Returns:
        Array of shape ``(n, d)`` with row norms in ``[0, 1]``.

    Raises:
        ValueError: If ``n`` or ``d`` is not an integer in its range.
    """
    n = _check_int("n", n, 2)
    d = _check_int("d", d, 1)
    z = _normal(rng, (n, d))
    u = np.asarray(rng.random(n), dtype=np.float64)
    radius = u ** (1.0 / d)
    return z / np.linalg.norm(z, axis=1, keepdims=True) * radius[:, None]


# --- weights ----------------------------------------------------------------


def gaussian_weights(
    rng: NormalSource, d: int, widths: Sequence[int], *, kappa: float
) -> list[FloatArray]:
    """Draw the weights of a network by Strategy 4.1 (Gaussian initialization).

    .. math::
        (W_0)_{jk} \\sim N(0, 1/d), \\qquad
        (W_p)_{jk} \\sim N(0, 1/(\\kappa\\, l_{p-1})), \\quad p = 1, \\dots, \\beta,

    all independent; ``W_beta`` is the ``(1, l_{beta-1})`` output row. Implemented
    as ``W_0 = Z_0 / sqrt(d)`` and ``W_p = Z_p / sqrt(kappa * l_{p-1})``.

    Draws, layer by layer for ``p = 0, ..., beta``:
    ``rng.standard_normal(shape_p)`` with ``shape_0 = (l_0, d)``,
    ``shape_p = (l_p, l_{p-1})`` and ``shape_beta = (1, l_{beta-1})`` (C order).

    Args:
        rng: Source of the random draws.
        d: Input dimension, an integer >= 1.
        widths: Hidden widths ``[l_0, ..., l_{beta-1}]``, a non-empty sequence of
            integers >= 1.
        kappa: Variance scale of the layers ``p >= 1``, finite and > 0
            (``1/2`` for ReLU, ``1`` for tanh in the paper).

    Returns:
        The ``beta + 1`` weight matrices ``[W_0, ..., W_beta]``.

    Raises:
        ValueError: If ``d``, ``widths`` or ``kappa`` is out of range.
    """
    d = _check_int("d", d, 1)
    hidden = _check_widths(widths)
    kappa_value = _check_real("kappa", kappa)
    if not (math.isfinite(kappa_value) and kappa_value > 0):
        raise ValueError(f"kappa must be a finite number > 0, got {kappa!r}")
    weights = []
    for p, (rows, cols) in enumerate(_layer_shapes(d, hidden)):
        variance_inv = float(d) if p == 0 else kappa_value * cols
        weights.append(_normal(rng, (rows, cols)) / math.sqrt(variance_inv))
    return weights


def haar_orthogonal(rng: NormalSource, m: int, n: int) -> FloatArray:
    """Draw a Haar-distributed ``m x n`` matrix with orthonormal columns or rows.

    For ``m >= n`` the columns are orthonormal (uniform on the Stiefel manifold,
    the first ``n`` columns of a Haar orthogonal ``m x m`` matrix); for ``m < n``
    the rows are, and the result is the transpose of the ``n x m`` case. Method
    of Mezzadri (2007), "How to generate random matrices from the classical
    compact groups", Notices of the AMS 54(5), 592-604: take the reduced QR
    decomposition ``Z = Q R`` (``numpy.linalg.qr``) of a standard normal
    ``Z`` and multiply column ``j`` of ``Q`` by ``sign(R_jj)``, which makes the
    decomposition unique and ``Q`` exactly Haar (without it, ``Q`` inherits the
    sign convention of the QR routine and is not Haar). ``sign(0)`` is taken as
    ``+1``; a zero diagonal has probability 0.

    Draws: ``rng.standard_normal((max(m, n), min(m, n)))`` (C order).

    Args:
        rng: Source of the random draws.
        m: Number of rows, an integer >= 1.
        n: Number of columns, an integer >= 1.

    Returns:
        C-contiguous array of shape ``(m, n)`` with ``Q^T Q = I_n`` if ``m >= n``,
        else ``Q Q^T = I_m``.

    Raises:
        ValueError: If ``m`` or ``n`` is not an integer >= 1.
    """
    m = _check_int("m", m, 1)
    n = _check_int("n", n, 1)
    z = _normal(rng, (max(m, n), min(m, n)))
    q, r = np.linalg.qr(z, mode="reduced")
    q = q * np.where(np.diagonal(r) < 0, -1.0, 1.0)
    return np.ascontiguousarray(q if m >= n else q.T)


def orthogonal_weights(
    rng: NormalSource, d: int, widths: Sequence[int]
) -> list[FloatArray]:
    """Draw every layer as an independent Haar (semi-)orthogonal matrix.

    ``W_p = haar_orthogonal(rng, rows_p, cols_p)`` for the shapes
    ``[(l_0, d), (l_1, l_0), ..., (1, l_{beta-1})]``; the output row is thus a
    unit vector uniform on ``S^{l_{beta-1}-1}``. Every operator norm is 1, so
    Assumption 1 (Section 5) holds. Orthogonal initialization of Section 6,
    extended to rectangular and nonlinear networks.

    Draws, layer by layer for ``p = 0, ..., beta``:
    ``rng.standard_normal((max(rows_p, cols_p), min(rows_p, cols_p)))``.

    Args:
        rng: Source of the random draws.
        d: Input dimension, an integer >= 1.
        widths: Hidden widths ``[l_0, ..., l_{beta-1}]``, a non-empty sequence of
            integers >= 1.

    Returns:
        The ``beta + 1`` weight matrices ``[W_0, ..., W_beta]``.

    Raises:
        ValueError: If ``d`` or ``widths`` is out of range.
    """
    d = _check_int("d", d, 1)
    hidden = _check_widths(widths)
    return [haar_orthogonal(rng, rows, cols) for rows, cols in _layer_shapes(d, hidden)]


def small_weights(
    rng: NormalSource, d: int, widths: Sequence[int], *, scale: float = 1.0
) -> list[FloatArray]:
    """Draw weights whose every operator norm equals ``scale`` (Assumption 1).

    Assumption 1 of Theorem 5.1 asks ``||W_p||_2 <= 1`` for all ``p``. Each layer
    is ``W_p = Z_p * (scale / ||Z_p||_2)`` with ``Z_p`` standard normal of the
    layer's shape and ``||.||_2`` the largest singular value
    (``numpy.linalg.norm(Z_p, 2)``), so ``||W_p||_2 = scale`` up to rounding.

    Draws, layer by layer for ``p = 0, ..., beta``: ``rng.standard_normal(shape_p)``
    with the shapes ``[(l_0, d), (l_1, l_0), ..., (1, l_{beta-1})]`` (C order).

    Args:
        rng: Source of the random draws.
        d: Input dimension, an integer >= 1.
        widths: Hidden widths ``[l_0, ..., l_{beta-1}]``, a non-empty sequence of
            integers >= 1.
        scale: The common operator norm, ``0 < scale <= 1``. Defaults to 1.0.

    Returns:
        The ``beta + 1`` weight matrices ``[W_0, ..., W_beta]``.

    Raises:
        ValueError: If ``d``, ``widths`` or ``scale`` is out of range.
    """
    d = _check_int("d", d, 1)
    hidden = _check_widths(widths)
    scale_value = _check_real("scale", scale)
    if not 0 < scale_value <= 1:
        raise ValueError(f"scale must be a number with 0 < scale <= 1, got {scale!r}")
    weights = []
    for shape in _layer_shapes(d, hidden):
        z = _normal(rng, shape)
        weights.append(z * (scale_value / np.linalg.norm(z, 2)))
    return weights


def uniform_spectrum_weights(
    rng: NormalSource, d: int, widths: Sequence[int], *, scale: float = 1.0
) -> list[FloatArray]:
    """Draw layers of Haar singular vectors and uniform singular values (Assumption 1).

    Each layer of shape ``(rows, cols)``, ``k = min(rows, cols)``, is

    .. math::
        W_p = U_p \\operatorname{diag}(s_p) V_p^T, \\qquad
        s_{p,i} = \\mathrm{scale} \\cdot u_{p,i}, \\quad
        u_{p,i} \\sim \\mathrm{Uniform}[0, 1),

    with ``U_p`` (``rows x k``) and ``V_p`` (``cols x k``) Haar with
    orthonormal columns (:func:`haar_orthogonal`), all independent. Since
    ``U_p`` and ``V_p`` have orthonormal columns, the singular values of
    ``W_p`` are exactly the ``s_{p,i}``, so ``||W_p||_2 = scale * max_i u_{p,i}
    < scale`` and Assumption 1 (Section 5) holds. The spectrum is spread over
    ``[0, scale)``, unlike :func:`small_weights` (a Gaussian spectrum whose top
    is ``scale``) and :func:`orthogonal_weights` (every singular value 1).

    Draws, layer by layer for ``p = 0, ..., beta``, with the shapes
    ``(rows_p, cols_p)`` of ``[(l_0, d), (l_1, l_0), ..., (1, l_{beta-1})]``:
    ``rng.standard_normal((rows_p, k_p))`` (``U_p``),
    ``rng.standard_normal((cols_p, k_p))`` (``V_p``), then ``rng.random(k_p)``
    (``u_p``).

    Args:
        rng: Source of the random draws.
        d: Input dimension, an integer >= 1.
        widths: Hidden widths ``[l_0, ..., l_{beta-1}]``, a non-empty sequence of
            integers >= 1.
        scale: The bound on the singular values, ``0 < scale <= 1``. Defaults
            to 1.0.

    Returns:
        The ``beta + 1`` weight matrices ``[W_0, ..., W_beta]``.

    Raises:
        ValueError: If ``d``, ``widths`` or ``scale`` is out of range.
    """
    d = _check_int("d", d, 1)
    hidden = _check_widths(widths)
    scale_value = _check_real("scale", scale)
    if not 0 < scale_value <= 1:
        raise ValueError(f"scale must be a number with 0 < scale <= 1, got {scale!r}")
    weights = []
    for rows, cols in _layer_shapes(d, hidden):
        k = min(rows, cols)
        U = haar_orthogonal(rng, rows, k)
        V = haar_orthogonal(rng, cols, k)
        s = scale_value * np.asarray(rng.random(k), dtype=np.float64)
        weights.append((U * s) @ V.T)
    return weights


def ball_around(
    rng: NormalSource, weights: Sequence[npt.ArrayLike], r: float
) -> list[FloatArray]:
    """Draw a point uniform in the Euclidean ball of radius ``r`` around ``weights``.

    The ball ``B_r`` of Corollary 5.1, in the Euclidean (Frobenius) norm of all
    ``P`` weights concatenated (each array flattened in C order, layer by layer):
    ``w' = w + r u^{1/P} z / ||z||_2`` with ``z ~ N(0, I_P)`` and
    ``u ~ Uniform[0, 1)``, so ``||w' - w||`` has CDF ``(t / r)^P`` on ``[0, r]``.
    The draws are made for ``r = 0`` too (the stream always advances by the same
    amount), and then the result equals ``weights``.

    Draws, in this order: ``rng.standard_normal(P)``, then ``rng.random(None)``.

    Args:
        rng: Source of the random draws.
        weights: The centre, a non-empty sequence of finite real arrays (any
            shapes; typically ``[W_0, ..., W_beta]``). Not modified.
        r: Radius, finite and >= 0.

    Returns:
        New float64 arrays with the shapes of ``weights``.

    Raises:
        ValueError: If ``weights`` is empty, not a sequence, or has an empty or
            non-finite array, or if ``r`` is out of range.
    """
    if isinstance(weights, str | bytes | np.ndarray) or not isinstance(
        weights, Sequence
    ):
        raise ValueError(
            f"weights must be a non-empty sequence of arrays (e.g. a list), "
            f"got {type(weights).__name__}"
        )
    try:
        centre = [np.asarray(w, dtype=np.float64) for w in weights]
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"weights must be a sequence of real arrays, got {weights!r}"
        ) from error
    if not centre or any(w.size == 0 for w in centre):
        raise ValueError(
            "weights must be a non-empty sequence of non-empty arrays, got sizes "
            f"{[w.size for w in centre]}"
        )
    if not all(np.all(np.isfinite(w)) for w in centre):
        raise ValueError("weights must contain only finite values, got nan or inf")
    r_value = _check_real("r", r)
    if not (math.isfinite(r_value) and r_value >= 0):
        raise ValueError(f"r must be a finite number >= 0, got {r!r}")
    sizes = [w.size for w in centre]
    total = sum(sizes)
    z = _normal(rng, total)
    radius = r_value * float(rng.random(None)) ** (1.0 / total)
    step = z * (radius / np.linalg.norm(z))
    offsets = np.cumsum([0, *sizes])
    return [
        w + step[start:stop].reshape(w.shape)
        for w, start, stop in zip(centre, offsets[:-1], offsets[1:], strict=True)
    ]


LINEAR_LAYERS = ("haar", "identity", "signed_permutation")
"""Orthogonal layers of :func:`orthogonal_linear_network` (``Config.layers``)."""


def signed_permutation(rng: NormalSource, m: int) -> FloatArray:
    """Draw a uniformly random ``m x m`` signed permutation matrix.

    ``W[i, pi_i] = sigma_i`` and every other entry 0, where ``pi`` is the
    stable ``argsort`` of ``m`` i.i.d. uniform keys ``a`` (``pi_i`` the index
    of the ``i``-th smallest key: a uniform permutation, ties having
    probability 0) and ``sigma_i = -1`` if ``b_i < 1/2`` else ``+1`` for
    i.i.d. uniform ``b``. So ``W`` is uniform on the ``2^m m!`` signed
    permutations (the hyperoctahedral group), an orthogonal matrix with
    entries in ``{-1, 0, 1}``.

    Draws, in this order: ``rng.random(m)`` (``a``), then ``rng.random(m)``
    (``b``).

    Args:
        rng: Source of the random draws.
        m: Size, an integer >= 1.

    Returns:
        C-contiguous float64 array of shape ``(m, m)`` with ``W^T W = I``.

    Raises:
        ValueError: If ``m`` is not an integer >= 1.
    """
    m = _check_int("m", m, 1)
    keys = np.asarray(rng.random(m), dtype=np.float64)
    signs = np.where(np.asarray(rng.random(m)) < 0.5, -1.0, 1.0)
    W = np.zeros((m, m))
    W[np.arange(m), np.argsort(keys, kind="stable")] = signs
    return W


def orthogonal_linear_network(
    rng: NormalSource, d: int, depth: int, *, layers: str = "haar"
) -> tuple[list[FloatArray], float]:
    """Draw the orthogonal deep linear network of Section 6 (scalar read-out).

    The network is ``g_W(x) = gamma W_beta W_{beta-1} ... W_1 x`` (equation 4 of
    the paper) with ``W_1, ..., W_{beta-1}`` orthogonal ``d x d`` matrices and
    ``W_beta`` a unit row, the scalar-output reading of Theorem 6.1, which
    holds for *arbitrary* orthogonal layers. ``gamma = 1 / sqrt(2 beta)`` is
    the **[reconstructed]** reading of the scrambled rescaling factor
    (THEORY.md section 6). Three ensembles of orthogonal layers (``layers``):

    - ``"haar"``: Haar orthogonal layers (:func:`haar_orthogonal`) and a
      read-out uniform on ``S^{d-1}`` (``z / ||z||``, ``z`` standard normal);
    - ``"identity"``: every ``W_p = I_d`` and the read-out ``e_1^T``
      (deterministic: no draws);
    - ``"signed_permutation"``: uniformly random signed permutation layers
      (:func:`signed_permutation`) and the read-out ``sigma e_j^T`` with
      ``j = min(floor(d c_0), d - 1)`` and ``sigma = -1`` if ``c_1 < 1/2``
      else ``+1``, for uniforms ``c_0, c_1`` (a uniformly random signed
      coordinate vector, up to the ``2^-53`` grid of the uniforms; the
      ``min`` only acts on a uniform equal to 1, which ``Phi(z)`` can give in
      :class:`montecarlo._trial.NormalBuffer`).

    The three give the same law of the Gram matrix ``G`` whenever the data
    and the labeling function are independent of the weights and jointly
    rotation invariant in law (``(X Q^T, C(. Q^T))`` distributed as ``(X,
    C)`` for every orthogonal ``Q``; true of ``sphere`` and ``ball`` data with
    every labeling function of ``montecarlo._config.LABEL_NAMES``: the teachers'
    directions and weights are Gaussian or uniform on the sphere). Indeed
    with ``v = (W_beta ... W_1)^T``, a unit vector, ``g(x) = gamma <v, x>``
    and for the square loss

    .. math::
        G_{ij} = \\beta \\gamma^2 r_i r_j \\langle x_i, x_j \\rangle
        = \\tfrac12 r_i r_j \\langle x_i, x_j \\rangle, \\qquad
        r_i = \\gamma \\langle v, x_i \\rangle - y_i,

    since the gradient with respect to ``W_p`` is
    ``(g_i - y_i) gamma (W_beta ... W_{p+1})^T (W_{p-1} ... W_1 x_i)^T``, a
    unit row times an orthogonal image of ``x_i``. So ``G`` depends on the
    weights only through ``v``; a rotation ``Q`` with ``Q v = e_1`` maps
    ``(X, C)`` to an equally distributed pair, so ``G`` has the same law for
    every ``v`` independent of ``(X, C)``, random or not.

    Draws, in this order: ``"haar"``: ``beta - 1`` times
    ``rng.standard_normal((d, d))`` (one per square layer, each turned into
    ``W_p`` as in :func:`haar_orthogonal`), then ``rng.standard_normal((1,
    d))``, normalized to ``W_beta``; ``"identity"``: none;
    ``"signed_permutation"``: ``beta - 1`` times ``rng.random(d)``,
    ``rng.random(d)`` (one signed permutation per square layer, as in
    :func:`signed_permutation`), then ``rng.random(2)`` (``c_0, c_1``).

    Args:
        rng: Source of the random draws.
        d: Input dimension and width, an integer >= 1.
        depth: ``beta``, the number of weight matrices, an integer >= 1
            (``depth = 1`` gives just the unit row).
        layers: One of :data:`LINEAR_LAYERS`. Defaults to ``"haar"``.

    Returns:
        ``(weights, gamma)`` with ``weights = [W_1, ..., W_beta]`` (shapes
        ``(d, d)`` repeated ``beta - 1`` times, then ``(1, d)``) and
        ``gamma = 1 / sqrt(2 * depth)``.

    Raises:
        ValueError: If ``d`` or ``depth`` is not an integer >= 1, or
            ``layers`` is not one of :data:`LINEAR_LAYERS`.
    """
    d = _check_int("d", d, 1)
    depth = _check_int("depth", depth, 1)
    if layers not in LINEAR_LAYERS:
        raise ValueError(f"layers must be one of {list(LINEAR_LAYERS)}, got {layers!r}")
    gamma = 1.0 / math.sqrt(2 * depth)
    if layers == "identity":
        readout = np.zeros((1, d))
        readout[0, 0] = 1.0
        return [np.eye(d) for _ in range(depth - 1)] + [readout], gamma
    if layers == "signed_permutation":
        weights = [signed_permutation(rng, d) for _ in range(depth - 1)]
        c = np.asarray(rng.random(2), dtype=np.float64)
        readout = np.zeros((1, d))
        readout[0, min(math.floor(d * c[0]), d - 1)] = -1.0 if c[1] < 0.5 else 1.0
        return [*weights, readout], gamma
    weights = [haar_orthogonal(rng, d, d) for _ in range(depth - 1)]
    z = _normal(rng, (1, d))
    weights.append(z / np.linalg.norm(z))
    return weights, gamma
