"""Toy models for the SGD theorems (Section 3 of the paper) and SGD itself.

Notation (THEORY.md sections 1-3):

- ``n`` samples (the paper's ``N``), ``d`` input dimension, rows ``x_i`` of
  ``X in R^{n x d}``, labels ``y_i``;
- per-sample losses ``f_i(w)`` of a linear model, ``F(w) = (1/n) sum_i f_i(w)``,
  ``F* = inf_w F(w)``;
- every per-sample gradient is a multiple of its input,
  ``grad f_i(w) = c_i(w) x_i``, so the per-sample gradient Gram matrix is
  ``G = (c c^T) o (X X^T)`` (``o`` = Hadamard product);
- ``eta(w) = max(0, -min_{i != j} G_ij)`` is the gradient confusion at ``w``
  (Definition 2.1), ``L`` the per-sample smoothness constant (A1), ``mu`` the
  per-sample PL constant (A2);
- SGD: ``w_{k+1} = w_k - alpha (1/|b_k|) sum_{i in b_k} grad f_i(w_k)`` with a
  mini-batch ``b_k`` of size ``B`` (``B = 1`` is the paper's setting), run for
  ``T`` steps; ``R`` independent runs are advanced together as one batch.

The two models:

- linear regression, ``f_i(w) = 1/2 (x_i^T w - y_i)^2``: ``c_i = x_i^T w - y_i``
  (the residual), ``L = max_i ||x_i||^2``, ``mu = min_i ||x_i||^2``,
  ``f_i* = 0`` (Section 3, toy model);
- logistic regression, ``f_i(w) = log(1 + exp(-y_i x_i^T w))`` with
  ``y_i in {-1, +1}``: ``c_i = -y_i / (1 + exp(y_i x_i^T w))``,
  ``L = max_i ||x_i||^2 / 4``, ``f_i* = 0`` (an infimum); it satisfies no PL
  inequality with a positive constant on all of ``R^d``, so ``mu = 0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.optimize import linprog
from scipy.special import expit

__all__ = [
    "DATA_KINDS",
    "TOY_LOSSES",
    "SGDRun",
    "ToyProblem",
    "make_data",
    "make_problem",
    "sgd",
]

TOY_LOSSES = ("square", "logistic")
"""Per-sample losses of the toy models."""

DATA_KINDS = ("gaussian", "sphere", "orthogonal")
"""Input distributions of :func:`make_data`."""

# Largest number of Gram entries held in memory at once when the confusion
# of many runs is evaluated (runs are processed in chunks of this size).
_GRAM_CHUNK = 1 << 22


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            "rng must be a numpy.random.Generator (e.g. "
            f"numpy.random.default_rng(0)), got {type(rng).__name__}"
        )
    return rng


def _coefficients(margins: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    """``c_i`` with ``grad f_i(w) = c_i x_i``, from ``m_i = x_i^T w``."""
    if loss == "square":
        return margins - y
    return -y * expit(-y * margins)


def _losses(margins: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    """Per-sample losses ``f_i`` from ``m_i = x_i^T w``."""
    if loss == "square":
        return 0.5 * (margins - y) ** 2
    return np.logaddexp(0.0, -y * margins)


def _pairs(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``i < j`` and the kernel entries ``K_ij`` there (``[..., n(n-1)/2]``)."""
    iu, ju = np.triu_indices(kernel.shape[-1], k=1)
    return iu, ju, kernel[..., iu, ju]


def _confusion(
    c: np.ndarray, pairs: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    """``eta = max(0, -min_{i != j} c_i c_j K_ij)`` for each row of ``c`` (``[R, n]``).

    ``pairs`` comes from :func:`_pairs` of a kernel of shape ``[n, n]`` or
    ``[R, n, n]``; only the pairs ``i < j`` are formed (``G`` is symmetric).
    """
    iu, ju, k = pairs
    runs = c.shape[0]
    out = np.zeros(runs)
    if iu.size == 0:
        return out
    chunk = max(1, _GRAM_CHUNK // iu.size)
    for start in range(0, runs, chunk):
        stop = min(runs, start + chunk)
        g = c[start:stop, iu]
        g *= c[start:stop, ju]
        g *= k if k.ndim == 1 else k[start:stop]
        # "+ 0.0" turns -0.0 (all pairs orthogonal) into 0.0.
        out[start:stop] = np.maximum(0.0, -g.min(axis=1)) + 0.0
    return out


@dataclass(frozen=True, eq=False)
class ToyProblem:
    """A linear or logistic regression instance with exact constants.

    ``grad f_i(w) = c_i(w) x_i`` for both losses (see the module notation), so
    every quantity below is exact and costs ``O(n d)`` or ``O(n^2)`` per ``w``.
    All methods accept a stack of weight vectors ``W`` of shape ``[..., d]``.

    Args:
        X: inputs, shape ``[n, d]``, finite.
        y: labels, shape ``[n]``; in ``{-1, +1}`` for the logistic loss.
        loss: ``"square"`` (linear regression) or ``"logistic"``. Default
            ``"square"``.

    Raises:
        ValueError: on a non-2-D or non-finite ``X``, a ``y`` whose shape is not
            ``[n]``, an unknown ``loss`` or logistic labels outside ``{-1, +1}``.
    """

    X: np.ndarray
    y: np.ndarray
    loss: str = "square"

    def __post_init__(self) -> None:
        X = np.array(self.X, dtype=np.float64)
        y = np.array(self.y, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                f"X must be a 2-D array of shape [n, d] with n, d >= 1, got shape "
                f"{X.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise ValueError("X must be finite, got NaN or infinite entries")
        if y.shape != (X.shape[0],):
            raise ValueError(
                f"y must have shape [n] = ({X.shape[0]},) to match X, got shape "
                f"{y.shape}"
            )
        if not np.all(np.isfinite(y)):
            raise ValueError("y must be finite, got NaN or infinite entries")
        if self.loss not in TOY_LOSSES:
            raise ValueError(f"loss must be one of {TOY_LOSSES}, got {self.loss!r}")
        if self.loss == "logistic" and not np.all(np.abs(y) == 1.0):
            raise ValueError(
                "y must take values in {-1, +1} for the logistic loss, got "
                f"{np.unique(y)[:5]}"
            )
        X.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)

    def __repr__(self) -> str:
        return f"ToyProblem(loss={self.loss!r}, n={self.n}, d={self.d})"

    @property
    def n(self) -> int:
        """Number of samples ``n``."""
        return self.X.shape[0]

    @property
    def d(self) -> int:
        """Input dimension ``d`` (number of parameters)."""
        return self.X.shape[1]

    @cached_property
    def kernel(self) -> np.ndarray:
        """Input Gram matrix ``K = X X^T``, shape ``[n, n]``."""
        K = self.X @ self.X.T
        K.setflags(write=False)
        return K

    def _weights(self, W: np.ndarray) -> np.ndarray:
        W = np.asarray(W, dtype=np.float64)
        if W.ndim < 1 or W.shape[-1] != self.d:
            raise ValueError(
                f"W must have shape [..., d] with d = {self.d}, got shape {W.shape}"
            )
        return W

    def margins(self, W: np.ndarray) -> np.ndarray:
        """Model outputs ``m_i = x_i^T w``.

        Args:
            W: weights, shape ``[..., d]``.

        Returns:
            Array of shape ``[..., n]``.

        Raises:
            ValueError: if the last axis of ``W`` is not ``d``.
        """
        return self._weights(W) @ self.X.T

    def sample_losses(self, W: np.ndarray) -> np.ndarray:
        """Per-sample losses ``f_i(w)``, shape ``[..., n]``.

        Args:
            W: weights, shape ``[..., d]``.

        Returns:
            Array of shape ``[..., n]``.
        """
        return _losses(self.margins(W), self.y, self.loss)

    def risk(self, W: np.ndarray) -> np.ndarray:
        """Empirical risk ``F(w) = (1/n) sum_i f_i(w)``.

        Args:
            W: weights, shape ``[..., d]``.

        Returns:
            Array of shape ``[...]``.
        """
        return self.sample_losses(W).mean(axis=-1)

    def coefficients(self, W: np.ndarray) -> np.ndarray:
        """Scalars ``c_i(w)`` with ``grad f_i(w) = c_i(w) x_i``.

        Square loss: ``c_i = x_i^T w - y_i``; logistic:
        ``c_i = -y_i / (1 + exp(y_i x_i^T w))``.

        Args:
            W: weights, shape ``[..., d]``.

        Returns:
            Array of shape ``[..., n]``.
        """
        return _coefficients(self.margins(W), self.y, self.loss)

    def sample_gradients(self, W: np.ndarray) -> np.ndarray:
        """Per-sample gradients ``grad f_i(w) = c_i x_i``, shape ``[..., n, d]``.

        Args:
            W: weights, shape ``[..., d]``.

        Returns:
            Array of shape ``[..., n, d]``.
        """
        return self.coefficients(W)[..., None] * self.X

    def grad_risk(self, W: np.ndarray) -> np.ndarray:
        """Full gradient ``grad F(w) = (1/n) X^T c``, shape ``[..., d]``.

        Args:
            W: weights, shape ``[..., d]``.

        Returns:
            Array of shape ``[..., d]``.
        """
        return self.coefficients(W) @ self.X / self.n

    def gram(self, W: np.ndarray) -> np.ndarray:
        """Exact per-sample gradient Gram ``G = (c c^T) o (X X^T)``.

        Args:
            W: weights, shape ``[..., d]``.

        Returns:
            Array of shape ``[..., n, n]``.
        """
        c = self.coefficients(W)
        return c[..., :, None] * c[..., None, :] * self.kernel

    def confusion(self, W: np.ndarray) -> np.ndarray:
        """Gradient confusion ``eta(w) = max(0, -min_{i != j} G_ij)`` (Definition 2.1).

        Args:
            W: weights, shape ``[..., d]``.

        Returns:
            Array of shape ``[...]`` (``0`` when ``n = 1``).
        """
        c = self.coefficients(W)
        flat = c.reshape(-1, self.n)
        return _confusion(flat, _pairs(self.kernel)).reshape(c.shape[:-1])

    def cosines(self, W: np.ndarray) -> np.ndarray:
        """Cosine similarities of all pairs ``i < j`` of per-sample gradients.

        ``cos(grad f_i, grad f_j) = sign(c_i c_j) <x_i, x_j> / (||x_i|| ||x_j||)``;
        a pair with a zero gradient has no cosine and gives ``NaN``.

        Args:
            W: weights, shape ``[..., d]``.

        Returns:
            Array of shape ``[..., n (n - 1) / 2]`` (pairs in ``numpy.triu_indices``
            order).
        """
        c = self.coefficients(W)
        norms = np.abs(c) * np.sqrt(np.diag(self.kernel))
        iu, ju = np.triu_indices(self.n, k=1)
        num = c[..., iu] * c[..., ju] * self.kernel[iu, ju]
        den = norms[..., iu] * norms[..., ju]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    @cached_property
    def L(self) -> float:
        """Per-sample smoothness constant of (A1), exact.

        The Hessian of ``f_i`` is ``h''(m) x_i x_i^T`` with ``h'' = 1`` (square)
        or ``h'' = s (1 - s) <= 1/4`` (logistic, ``s`` the sigmoid; the maximum
        1/4 is attained at ``m = 0``), so ``L = max_i ||x_i||^2`` or
        ``max_i ||x_i||^2 / 4``.
        """
        sq = float(np.max(np.einsum("nd,nd->n", self.X, self.X)))
        return sq if self.loss == "square" else sq / 4.0

    @cached_property
    def mu(self) -> float:
        """Per-sample PL constant of (A2), exact.

        Square loss: ``1/2 ||grad f_i||^2 = ||x_i||^2 f_i`` and ``f_i* = 0``, so
        the best constant is ``mu = min_i ||x_i||^2``. Logistic loss: for
        ``y_i x_i^T w -> -infinity`` the ratio ``||grad f_i||^2 / (2 f_i)`` tends
        to 0, so no positive constant holds on all of ``R^d`` and ``mu = 0``
        (Theorem 3.1 then says nothing).
        """
        if self.loss == "logistic":
            return 0.0
        return float(np.min(np.einsum("nd,nd->n", self.X, self.X)))

    @cached_property
    def _optimum(self) -> tuple[float, np.ndarray | None, bool]:
        if self.loss == "square":
            return self._least_squares()
        return self._logistic_optimum()

    def _least_squares(self) -> tuple[float, np.ndarray | None, bool]:
        # Minimum-norm least squares by SVD. If rank(X) = n every label vector
        # is fitted exactly (interpolation) and F* = 0 exactly.
        U, S, Vt = np.linalg.svd(self.X, full_matrices=False)
        tol = S[0] * max(self.X.shape) * np.finfo(np.float64).eps if S.size else 0.0
        rank = int(np.sum(S > tol))
        Ur, Sr, Vr = U[:, :rank], S[:rank], Vt[:rank].T
        coef = Ur.T @ self.y
        w_star = Vr @ (coef / Sr)
        if rank == self.n:
            return 0.0, w_star, True
        residual = self.y - Ur @ coef
        if np.linalg.norm(residual) <= 1e-10 * np.linalg.norm(self.y):
            # Labels in the range of X up to round-off (noise-free planted
            # labels with d < n): every f_i reaches 0 at once.
            return 0.0, w_star, True
        return float(residual @ residual / (2 * self.n)), w_star, False

    def _separable(self) -> bool:
        # Linear feasibility: exists w with y_i x_i^T w >= 1 for all i.
        A = -(self.y[:, None] * self.X)
        res = linprog(
            np.zeros(self.d),
            A_ub=A,
            b_ub=-np.ones(self.n),
            bounds=[(None, None)] * self.d,
            method="highs",
        )
        return res.status == 0

    def _logistic_optimum(self) -> tuple[float, np.ndarray | None, bool]:
        if self._separable():
            return 0.0, None, True
        # Damped Newton in float64. The Newton decrement dec = -grad^T step is
        # affine invariant and F(w) - F* ~ dec / 2 near the optimum; stop once
        # it is below 1e-20 (far below the round-off of F). In the quadratic
        # region (dec < 1e-10) full steps are taken: a line search there would
        # only compare round-off.
        w = np.zeros(self.d)
        value = float(self.risk(w))
        for _ in range(100):
            m = self.X @ w
            c = _coefficients(m, self.y, "logistic")
            grad = self.X.T @ c / self.n
            s = expit(m)
            H = (self.X.T * (s * (1 - s))) @ self.X / self.n
            step = np.linalg.lstsq(H, -grad, rcond=None)[0]
            dec = -float(grad @ step)
            if dec <= 1e-20:
                return value, w, False
            t = 1.0
            if dec >= 1e-10:
                while float(self.risk(w + t * step)) > value - 1e-4 * t * dec:
                    t *= 0.5
                    if t < 1e-12:
                        raise RuntimeError(
                            "Newton's method stalled for the logistic optimum "
                            "(data nearly separable?)"
                        )
            w = w + t * step
            value = float(self.risk(w))
        raise RuntimeError(
            "Newton's method did not converge for the logistic optimum (data "
            "nearly separable?)"
        )

    @property
    def F_star(self) -> float:
        """``F* = inf_w F(w)``, exact up to floating point.

        Linear regression: minimum-norm least squares (SVD); ``0`` exactly when
        ``rank(X) = n`` (the interpolating regime, generic for ``d >= n``) or
        when the least-squares residual is below ``1e-10 ||y||`` (labels
        realizable up to round-off, e.g. noise-free planted labels).
        Logistic regression: ``0`` (an infimum that is not attained) when the
        data are linearly separable (checked by a linear program), otherwise
        the value at a damped-Newton solution converged to machine precision.
        """
        return self._optimum[0]

    @property
    def w_star(self) -> np.ndarray | None:
        """A minimizer of ``F`` (minimum norm for least squares), or ``None``.

        ``None`` for separable logistic data, where no minimizer exists.
        """
        return self._optimum[1]

    @property
    def interpolating(self) -> bool:
        """Whether every ``f_i`` can be driven to its infimum 0 at once (``F* = 0``)."""
        return self._optimum[2]

    def rescaled(self, scale: float) -> ToyProblem:
        """The same problem with inputs ``scale * X`` and the same labels.

        ``w -> w / scale`` maps one onto the other with identical losses; SGD
        with step ``alpha / scale^2`` follows the same loss trajectory. ``L``,
        ``mu``, ``eta`` and ``||grad F||^2`` scale by ``scale^2``.

        Args:
            scale: positive finite factor.

        Returns:
            A new :class:`ToyProblem`.

        Raises:
            ValueError: if ``scale`` is not positive and finite.
        """
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {scale}")
        return ToyProblem(scale * self.X, self.y, self.loss)


def make_data(n: int, d: int, *, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Random inputs ``X`` of shape ``[n, d]``.

    Args:
        n: number of samples, ``>= 1``.
        d: input dimension, ``>= 1``.
        kind: ``"gaussian"`` (i.i.d. ``N(0, 1/d)`` entries, so
            ``E ||x_i||^2 = 1``), ``"sphere"`` (i.i.d. uniform on ``S^{d-1}``)
            or ``"orthogonal"`` (unit vectors with disjoint random supports:
            ``<x_i, x_j> = 0`` holds exactly in floating point; needs
            ``n <= d``).
        rng: random generator.

    Returns:
        Array of shape ``[n, d]``.

    Raises:
        ValueError: on ``n`` or ``d < 1``, an unknown ``kind``, or
            ``kind="orthogonal"`` with ``n > d``.
    """
    n = _check_int("n", n, 1)
    d = _check_int("d", d, 1)
    if kind not in DATA_KINDS:
        raise ValueError(f"kind must be one of {DATA_KINDS}, got {kind!r}")
    if kind == "orthogonal" and n > d:
        raise ValueError(
            f"kind='orthogonal' needs n <= d, got n = {n} > d = {d} (at most d "
            "vectors of R^d are orthogonal)"
        )
    rng = _check_rng(rng)
    if kind == "gaussian":
        return rng.standard_normal((n, d)) / math.sqrt(d)
    if kind == "sphere":
        Z = rng.standard_normal((n, d))
        return Z / np.linalg.norm(Z, axis=1, keepdims=True)
    X = np.zeros((n, d))
    blocks = np.array_split(rng.permutation(d), n)
    for i, block in enumerate(blocks):
        v = rng.standard_normal(block.size)
        X[i, block] = v / np.linalg.norm(v)
    return X


def make_problem(
    n: int,
    d: int,
    *,
    loss: str = "square",
    data: str = "gaussian",
    noise_std: float = 0.0,
    scale: float = 1.0,
    rng: np.random.Generator,
) -> ToyProblem:
    """A toy instance with labels from a planted linear model.

    Inputs ``X0 = make_data(n, d, kind=data)``, planted ``w0 ~ N(0, I_d)`` and
    ``t_i = x_i^T w0 + noise_std * eps_i`` with ``eps_i ~ N(0, 1)``. Linear
    regression uses ``y_i = t_i``; logistic regression ``y_i = sign(t_i)``
    (``+1`` at 0). The model's inputs are ``X = scale * X0`` (labels are made
    before scaling, so ``scale`` only reparametrizes ``w``). With ``d >= n``
    linear regression interpolates (``F* = 0``); with ``d < n`` and
    ``noise_std > 0`` it does not.

    Args:
        n: number of samples, ``>= 1``.
        d: input dimension, ``>= 1``.
        loss: ``"square"`` or ``"logistic"``. Default ``"square"``.
        data: input distribution, one of :data:`DATA_KINDS`. Default
            ``"gaussian"``.
        noise_std: label noise standard deviation, ``>= 0``. Default ``0.0``.
        scale: input scale, ``> 0``. Default ``1.0``.
        rng: random generator.

    Returns:
        A :class:`ToyProblem`.

    Raises:
        ValueError: on invalid arguments (see :func:`make_data`), an unknown
            ``loss``, a negative ``noise_std`` or a non-positive ``scale``.
    """
    if loss not in TOY_LOSSES:
        raise ValueError(f"loss must be one of {TOY_LOSSES}, got {loss!r}")
    if not (np.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    X0 = make_data(n, d, kind=data, rng=rng)
    planted = rng.standard_normal(d)
    t = X0 @ planted + noise_std * rng.standard_normal(n)
    y = t if loss == "square" else np.where(t >= 0, 1.0, -1.0)
    return ToyProblem(scale * X0, y, loss)


@dataclass(frozen=True, eq=False)
class SGDRun:
    """Trajectories of ``R`` independent SGD runs at the recorded steps.

    Attributes:
        steps: recorded step indices ``k`` (``w_0`` is step 0), shape ``[K]``.
        risk: ``F(w_k)``, shape ``[R, K]``.
        grad_sq: ``||grad F(w_k)||^2``, shape ``[R, K]``.
        eta: confusion ``eta(w_k)`` from the exact Gram, shape ``[R, K]``, or
            ``None`` when not tracked.
        w_final: ``w_T``, shape ``[R, d]``.
        weights: ``w_k`` at the recorded steps, shape ``[R, K, d]``, or ``None``.
        indices: the samples drawn, shape ``[R, T, B]`` (``-1`` pads the short
            last batch of an epoch without replacement), or ``None``.
        alpha: step size of each run, shape ``[R]``.
        batch_size: ``B``.
        replacement: ``True`` for uniform sampling with replacement.
    """

    steps: np.ndarray
    risk: np.ndarray
    grad_sq: np.ndarray
    eta: np.ndarray | None
    w_final: np.ndarray
    weights: np.ndarray | None
    indices: np.ndarray | None
    alpha: np.ndarray
    batch_size: int
    replacement: bool

    def __repr__(self) -> str:
        runs, k = self.risk.shape
        return (
            f"SGDRun(runs={runs}, T={int(self.steps[-1])}, recorded={k}, "
            f"B={self.batch_size}, replacement={self.replacement})"
        )


def _batches_without_replacement(
    rng: np.random.Generator, runs: int, n: int, batch_size: int
) -> list[np.ndarray]:
    """One epoch: a fresh permutation per run cut into batches of ``B``.

    The last batch is shorter when ``B`` does not divide ``n``.
    """
    perms = rng.permuted(np.tile(np.arange(n), (runs, 1)), axis=1)
    return [perms[:, s : s + batch_size] for s in range(0, n, batch_size)]


def sgd(
    problem: ToyProblem | Sequence[ToyProblem],
    w0: np.ndarray | None = None,
    *,
    alpha: float | np.ndarray,
    T: int,
    rng: np.random.Generator,
    runs: int | None = None,
    batch_size: int = 1,
    replacement: bool = True,
    record_every: int = 1,
    track_eta: bool = True,
    keep_weights: bool = False,
    keep_indices: bool = False,
) -> SGDRun:
    """Constant-step SGD, ``R`` independent runs advanced together.

    ``w_{k+1} = w_k - alpha (1/|b_k|) sum_{i in b_k} grad f_i(w_k)``. With
    ``replacement=True`` each of the ``B`` entries of ``b_k`` is drawn uniformly
    from ``{1..n}`` independently (the setting of Theorems 3.1 and 3.2 for
    ``B = 1``); otherwise each run draws a fresh permutation every epoch and
    takes consecutive batches of ``B`` from it (the last batch of an epoch is
    shorter when ``B`` does not divide ``n``). The sample draws depend only on
    ``rng``, ``R``, ``n``, ``B``, ``T`` and ``replacement``, so a seed
    reproduces a run exactly.

    Args:
        problem: one :class:`ToyProblem` shared by all runs, or a sequence of
            ``R`` problems of equal ``n``, ``d`` and loss (run ``r`` trains on
            problem ``r``: independent data draws).
        w0: initial weights, shape ``[d]`` or ``[R, d]``. Default zeros.
        alpha: step size ``> 0``, a number or one per run (shape ``[R]``).
        T: number of SGD steps, ``>= 1``.
        rng: random generator for the sampling.
        runs: ``R``. Default 1 for one problem, ``len(problem)`` for a sequence.
        batch_size: ``B >= 1`` (``<= n`` without replacement). Default 1.
        replacement: sample with replacement. Default ``True``.
        record_every: record every this many steps (steps 0 and ``T`` are always
            recorded). Default 1.
        track_eta: evaluate the confusion ``eta(w_k)`` at recorded steps
            (``O(R n^2)`` each). Default ``True``.
        keep_weights: keep ``w_k`` at recorded steps. Default ``False``.
        keep_indices: keep the drawn sample indices. Default ``False``.

    Returns:
        An :class:`SGDRun`.

    Raises:
        ValueError: on a non-positive or non-finite ``alpha``, ``T < 1``,
            ``runs``/``batch_size``/``record_every`` out of range, mismatched
            shapes of ``w0`` or ``alpha``, or problems of different shapes.
    """
    if isinstance(problem, ToyProblem):
        problems = [problem]
        runs = 1 if runs is None else _check_int("runs", runs, 1)
    else:
        problems = list(problem)
        if not problems or not all(isinstance(p, ToyProblem) for p in problems):
            raise ValueError(
                "problem must be a ToyProblem or a non-empty sequence of ToyProblem"
            )
        first = problems[0]
        for p in problems[1:]:
            if (p.n, p.d, p.loss) != (first.n, first.d, first.loss):
                raise ValueError(
                    "problem: all problems must share n, d and loss, got "
                    f"{(first.n, first.d, first.loss)} and {(p.n, p.d, p.loss)}"
                )
        if runs is None:
            runs = len(problems)
        runs = _check_int("runs", runs, 1)
        if runs != len(problems):
            raise ValueError(
                f"runs must equal the number of problems ({len(problems)}), got {runs}"
            )
    T = _check_int("T", T, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    record_every = _check_int("record_every", record_every, 1)
    rng = _check_rng(rng)
    p0 = problems[0]
    n, d, loss = p0.n, p0.d, p0.loss
    if not replacement and batch_size > n:
        raise ValueError(
            f"batch_size must be <= n = {n} without replacement, got {batch_size}"
        )
    alphas = np.asarray(alpha, dtype=np.float64)
    if alphas.ndim == 0:
        alphas = np.full(runs, float(alphas))
    if alphas.shape != (runs,):
        raise ValueError(
            f"alpha must be a number or have shape [runs] = ({runs},), got shape "
            f"{alphas.shape}"
        )
    if not np.all(np.isfinite(alphas) & (alphas > 0)):
        raise ValueError(f"alpha must be finite and > 0, got {alpha}")
    if w0 is None:
        W = np.zeros((runs, d))
    else:
        w0 = np.asarray(w0, dtype=np.float64)
        if w0.shape == (d,):
            W = np.tile(w0, (runs, 1))
        elif w0.shape == (runs, d):
            W = w0.copy()
        else:
            raise ValueError(
                f"w0 must have shape [d] = ({d},) or [runs, d] = ({runs}, {d}), got "
                f"shape {w0.shape}"
            )
        if not np.all(np.isfinite(W)):
            raise ValueError("w0 must be finite")

    shared = len(problems) == 1
    Xs = p0.X if shared else np.stack([p.X for p in problems])
    ys = p0.y if shared else np.stack([p.y for p in problems])
    pairs = _pairs(p0.kernel if shared else np.stack([p.kernel for p in problems]))
    run_ids = np.arange(runs)[:, None]

    record = np.unique(np.r_[np.arange(0, T + 1, record_every), T])
    n_rec = record.size
    risk = np.empty((runs, n_rec))
    grad_sq = np.empty((runs, n_rec))
    eta = np.empty((runs, n_rec)) if track_eta else None
    weights = np.empty((runs, n_rec, d)) if keep_weights else None
    indices = (
        np.full((runs, T, batch_size), -1, dtype=np.int64) if keep_indices else None
    )

    def observe(slot: int) -> None:
        margins = W @ Xs.T if shared else np.einsum("rnd,rd->rn", Xs, W)
        risk[:, slot] = _losses(margins, ys, loss).mean(axis=1)
        c = _coefficients(margins, ys, loss)
        grad = c @ Xs / n if shared else np.einsum("rn,rnd->rd", c, Xs) / n
        grad_sq[:, slot] = np.einsum("rd,rd->r", grad, grad)
        if eta is not None:
            eta[:, slot] = _confusion(c, pairs)
        if weights is not None:
            weights[:, slot] = W

    observe(0)
    slot = 1
    chunk = 1024
    pending: list[np.ndarray] = []
    for k in range(T):
        if not pending:
            if replacement:
                draws = rng.integers(0, n, size=(chunk, runs, batch_size))
                pending = list(draws[::-1])
            else:
                pending = _batches_without_replacement(rng, runs, n, batch_size)[::-1]
        idx = pending.pop()
        if indices is not None:
            indices[:, k, : idx.shape[1]] = idx
        if shared:
            Xb, yb = Xs[idx], ys[idx]
        else:
            Xb, yb = Xs[run_ids, idx], ys[run_ids, idx]
        c = _coefficients(np.einsum("rbd,rd->rb", Xb, W), yb, loss)
        grad = np.einsum("rb,rbd->rd", c, Xb) / idx.shape[1]
        W -= alphas[:, None] * grad
        if k + 1 == record[slot]:
            observe(slot)
            slot += 1
    return SGDRun(
        steps=record,
        risk=risk,
        grad_sq=grad_sq,
        eta=eta,
        w_final=W,
        weights=weights,
        indices=indices,
        alpha=alphas,
        batch_size=batch_size,
        replacement=replacement,
    )
