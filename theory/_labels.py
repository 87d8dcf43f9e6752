"""Labeling functions ``C`` with ``|C(x)| <= 1`` and ``||grad C(x)|| <= 1``.

Notation (THEORY.md section 1; Sankararaman et al., ICML 2020, Section 4):

- ``n`` samples, ``d`` input dimension, ``X`` of shape ``(n, d)``;
- ``y_i = C(x_i)``: the theorems assume ``|C(x)| <= 1`` and
  ``||grad_x C(x)|| <= 1`` for ``||x|| <= 1`` (the "Lipschitz assumption");
- ``width``: hidden width of ``network_teacher``.

Reproducibility across backends: the constructors draw random numbers only
through ``rng.standard_normal(size)`` and ``rng.random(size)``, in the order
stated in each docstring (arrays are filled in row-major order).
"""

from collections.abc import Callable

import numpy as np

from theory._activations import ACTIVATIONS

# sup_t |sigma'(t)| over the real line, for the built-in activations.
_ACTIVATION_LIPSCHITZ = {"relu": 1.0, "tanh": 1.0, "sigmoid": 0.25, "identity": 1.0}


class LabelingFunction:
    """A labeling function ``C``: callable on ``X`` of shape ``(n, d)``.

    Attributes:
        name: Readable description, e.g. ``"linear_teacher(d=5)"``.
        lipschitz: Whether ``C`` satisfies ``|C| <= 1`` and ``||grad C|| <= 1``
            on the unit ball (the theorems' assumption).
        d: Required input dimension, or None if any ``d >= 1`` is accepted.
    """

    __slots__ = ("_fn", "d", "lipschitz", "name")

    def __init__(
        self,
        name: str,
        fn: Callable[[np.ndarray], np.ndarray],
        *,
        lipschitz: bool,
        d: int | None = None,
    ) -> None:
        """Wrap a vectorized function ``fn: (n, d) -> (n,)``.

        Args:
            name: Readable description.
            fn: Vectorized labeling function.
            lipschitz: Whether ``fn`` satisfies the Lipschitz assumption.
            d: Required input dimension, or None. Defaults to None.

        Raises:
            ValueError: If ``name`` is empty, ``fn`` is not callable or ``d``
                is not None or an integer >= 1.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if not callable(fn):
            raise ValueError(f"fn must be callable, got {type(fn).__name__}")
        if d is not None:
            _check_positive_int("d", d)
        self.name = name
        self._fn = fn
        self.lipschitz = bool(lipschitz)
        self.d = None if d is None else int(d)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Labels ``y_i = C(x_i)`` for the rows of ``X``.

        The bounds of the Lipschitz assumption are guaranteed for rows with
        ``||x_i|| <= 1`` only; other rows are evaluated but not guaranteed.

        Args:
            X: Inputs, shape ``(n, d)``, ``n >= 1``, finite.

        Returns:
            Float64 array of shape ``(n,)``.

        Raises:
            ValueError: If ``X`` is not a finite 2-D array with ``n >= 1``
                rows and (if ``self.d`` is set) ``d`` columns.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                f"X must be a 2-D array of shape (n, d) with n, d >= 1, "
                f"got shape {X.shape}"
            )
        if self.d is not None and X.shape[1] != self.d:
            raise ValueError(
                f"X must have d = {self.d} columns for {self.name}, got shape {X.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise ValueError("X must be finite, got non-finite entries")
        return np.asarray(self._fn(X), dtype=np.float64).reshape(X.shape[0])

    def __repr__(self) -> str:
        return f"LabelingFunction({self.name}, lipschitz={self.lipschitz})"


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_rng(rng: np.random.Generator) -> None:
    """Accept a Generator or any source with ``standard_normal`` and ``random``.

    The Monte Carlo engine passes its counter-based ``PhiloxStream``, which
    offers exactly those two methods.
    """
    if not all(callable(getattr(rng, m, None)) for m in ("standard_normal", "random")):
        raise ValueError(
            "rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)) or "
            "an object with standard_normal(size) and random(size) methods, "
            f"got {type(rng).__name__}"
        )


def _unit_vector(rng: np.random.Generator, d: int) -> np.ndarray:
    """Uniform on the sphere ``S^{d-1}``: ``rng.standard_normal(d)``, normalized."""
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


def constant_label(value: float = 1.0) -> LabelingFunction:
    """The constant labeling function ``C(x) = value`` (gradient 0).

    Draws no random numbers.

    Args:
        value: The label, finite with ``|value| <= 1``. Defaults to 1.0.

    Returns:
        A ``LabelingFunction`` with ``lipschitz=True``, for any ``d``.

    Raises:
        ValueError: If ``value`` is not a finite number in ``[-1, 1]``.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not np.isfinite(value)
        or abs(value) > 1
    ):
        raise ValueError(f"value must be a finite number in [-1, 1], got {value!r}")
    c = float(value)
    return LabelingFunction(
        f"constant_label({c})", lambda X: np.full(X.shape[0], c), lipschitz=True
    )


def linear_teacher(rng: np.random.Generator, d: int) -> LabelingFunction:
    """Linear teacher ``C(x) = <v, x>`` with ``v`` uniform on the unit sphere.

    ``|C(x)| <= ||v|| ||x|| <= 1`` and ``grad C = v`` has norm 1.

    Draws ``rng.standard_normal(d)`` for ``v``, then normalizes it.

    Args:
        rng: A ``numpy.random.Generator``, or any source with
            ``standard_normal(size)`` and ``random(size)`` methods.
        d: Input dimension, an integer >= 1.

    Returns:
        A ``LabelingFunction`` with ``lipschitz=True`` for inputs of dimension
        ``d``.

    Raises:
        ValueError: If ``rng`` lacks those methods or ``d`` is not >= 1.
    """
    _check_rng(rng)
    _check_positive_int("d", d)
    v = _unit_vector(rng, int(d))
    return LabelingFunction(
        f"linear_teacher(d={d})", lambda X: X @ v, lipschitz=True, d=int(d)
    )


def tanh_teacher(rng: np.random.Generator, d: int) -> LabelingFunction:
    """Teacher ``C(x) = tanh(<v, x>)`` with ``v`` uniform on the unit sphere.

    ``|C| < 1`` and ``grad C = (1 - tanh^2(<v, x>)) v`` has norm ``<= 1``.

    Draws ``rng.standard_normal(d)`` for ``v``, then normalizes it.

    Args:
        rng: A ``numpy.random.Generator``, or any source with
            ``standard_normal(size)`` and ``random(size)`` methods.
        d: Input dimension, an integer >= 1.

    Returns:
        A ``LabelingFunction`` with ``lipschitz=True`` for inputs of dimension
        ``d``.

    Raises:
        ValueError: If ``rng`` lacks those methods or ``d`` is not >= 1.
    """
    _check_rng(rng)
    _check_positive_int("d", d)
    v = _unit_vector(rng, int(d))
    return LabelingFunction(
        f"tanh_teacher(d={d})", lambda X: np.tanh(X @ v), lipschitz=True, d=int(d)
    )


def network_teacher(
    rng: np.random.Generator, d: int, width: int, *, activation: str = "tanh"
) -> LabelingFunction:
    """Random one-hidden-layer teacher ``C(x) = a^T sigma(U x) / S``.

    ``U`` (``width x d``) and ``a`` (``width``) have i.i.d. standard normal
    entries, so ``<u_k, x>`` is ``N(0, 1)`` for a fixed unit ``x`` (the
    non-linear range of tanh). Let ``h(x) = a^T sigma(U x)`` and
    ``L_sigma = sup_t |sigma'(t)|`` (1 for relu, tanh, identity; 1/4 for
    sigmoid). Since ``grad h(x) = U^T (a o sigma'(U x))``,

        Lip(h) <= L := L_sigma ||a||_2 ||U||_2        (spectral norm of U),

    and on the unit ball ``|h(x)| <= |h(0)| + L ||x|| <= S := |sigma(0) sum_k a_k|
    + L``. Dividing by ``S >= L`` gives ``|C| <= 1`` and ``||grad C|| <= L / S
    <= 1`` (for relu, a Lipschitz bound 1 where the gradient is undefined).

    Draws ``rng.standard_normal((width, d))`` for ``U`` (row-major), then
    ``rng.standard_normal(width)`` for ``a``.

    Args:
        rng: A ``numpy.random.Generator``, or any source with
            ``standard_normal(size)`` and ``random(size)`` methods.
        d: Input dimension, an integer >= 1.
        width: Hidden width, an integer >= 1.
        activation: ``"tanh"``, ``"relu"``, ``"sigmoid"`` or ``"identity"``.
            Defaults to ``"tanh"``.

    Returns:
        A ``LabelingFunction`` with ``lipschitz=True`` for inputs of dimension
        ``d``.

    Raises:
        ValueError: If ``rng`` lacks those methods, ``d`` or ``width`` is not an
            integer >= 1, or ``activation`` is not a built-in name.
    """
    _check_rng(rng)
    _check_positive_int("d", d)
    _check_positive_int("width", width)
    if not isinstance(activation, str) or activation not in _ACTIVATION_LIPSCHITZ:
        raise ValueError(
            f"activation must be one of {sorted(_ACTIVATION_LIPSCHITZ)}, "
            f"got {activation!r}"
        )
    sigma = ACTIVATIONS[activation].fn
    U = rng.standard_normal((int(width), int(d)))
    a = rng.standard_normal(int(width))
    lip = _ACTIVATION_LIPSCHITZ[activation] * np.linalg.norm(a) * np.linalg.norm(U, 2)
    scale = abs(float(sigma(np.zeros(1))[0]) * a.sum()) + lip
    coef = a / scale
    return LabelingFunction(
        f"network_teacher(d={d}, width={width}, activation={activation!r})",
        lambda X: sigma(X @ U.T) @ coef,
        lipschitz=True,
        d=int(d),
    )


def random_signs(rng: np.random.Generator) -> LabelingFunction:
    """Random labels: i.i.d. ``+-1`` with probability 1/2 each, drawn per call.

    The labels are not a function of ``x`` (calling twice on the same ``X``
    gives new labels), so this is outside the Lipschitz assumption of the
    theorems (``lipschitz=False``): it models pure label noise.

    Draws nothing at construction; each call on ``X`` of shape ``(n, d)``
    draws ``rng.random(n)`` and labels ``-1`` where the draw is ``< 0.5``,
    else ``+1``. The generator is kept by reference, so calls advance it.

    Args:
        rng: A ``numpy.random.Generator``, or any source with
            ``standard_normal(size)`` and ``random(size)`` methods.

    Returns:
        A ``LabelingFunction`` with ``lipschitz=False``, for any ``d``.

    Raises:
        ValueError: If ``rng`` lacks those methods.
    """
    _check_rng(rng)
    return LabelingFunction(
        "random_signs",
        lambda X: np.where(rng.random(X.shape[0]) < 0.5, -1.0, 1.0),
        lipschitz=False,
    )
