"""Activation functions with their first two derivatives, and the (P1)/(P2) check.

Notation (THEORY.md section 1; Sankararaman et al., ICML 2020, Section 4):

- ``sigma``: the activation, applied elementwise to every hidden layer and, by
  default, to the scalar output as well;
- (P1) ``|sigma(x)| <= 1`` and (P2) ``|sigma'(x)| <= 1``, ``|sigma''(x)| <= 1``
  for ``x`` in ``[-1, 1]``: the properties Theorems 4.1 and 5.1 assume. ReLU,
  tanh, sigmoid and the identity satisfy both.

Every callable is vectorized: it maps a float64 array to a float64 array of the
same shape.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

ArrayFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ``sigma`` with ``sigma'`` and ``sigma''``.

    Attributes:
        name: Short identifier, e.g. ``"tanh"``.
        fn: ``sigma``, vectorized (array in, array of the same shape out).
        d1: ``sigma'``, vectorized.
        d2: ``sigma''``, vectorized.
    """

    name: str
    fn: ArrayFn
    d1: ArrayFn
    d2: ArrayFn

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(
                f"Activation name must be a non-empty string, got {self.name!r}"
            )
        for field in ("fn", "d1", "d2"):
            value = getattr(self, field)
            if not callable(value):
                raise ValueError(
                    f"Activation {field} must be a vectorized callable, "
                    f"got {type(value).__name__}"
                )


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _relu_d1(x: np.ndarray) -> np.ndarray:
    # Derivative at 0 taken as 0, as torch.relu's autograd does.
    return (x > 0).astype(np.float64)


def _zeros(x: np.ndarray) -> np.ndarray:
    return np.zeros_like(x, dtype=np.float64)


def _ones(x: np.ndarray) -> np.ndarray:
    return np.ones_like(x, dtype=np.float64)


def _identity(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).copy()


def _tanh_d1(x: np.ndarray) -> np.ndarray:
    t = np.tanh(x)
    return 1.0 - t * t


def _tanh_d2(x: np.ndarray) -> np.ndarray:
    t = np.tanh(x)
    return -2.0 * t * (1.0 - t * t)


def _sigmoid_d1(x: np.ndarray) -> np.ndarray:
    s = expit(x)
    return s * (1.0 - s)


def _sigmoid_d2(x: np.ndarray) -> np.ndarray:
    s = expit(x)
    return s * (1.0 - s) * (1.0 - 2.0 * s)


relu = Activation("relu", _relu, _relu_d1, _zeros)
"""ReLU ``max(x, 0)``; ``sigma'(0) = 0`` (torch's convention), ``sigma'' = 0``."""

tanh = Activation("tanh", np.tanh, _tanh_d1, _tanh_d2)
"""Hyperbolic tangent; ``sigma' = 1 - tanh^2``, ``sigma'' = -2 tanh (1 - tanh^2)``."""

sigmoid = Activation("sigmoid", expit, _sigmoid_d1, _sigmoid_d2)
"""Logistic sigmoid ``s = 1 / (1 + exp(-x))``; ``s' = s(1-s)``, ``s'' = s'(1-2s)``."""

identity = Activation("identity", _identity, _ones, _zeros)
"""Identity ``x`` (linear networks, Section 6)."""

ACTIVATIONS: dict[str, Activation] = {
    a.name: a for a in (relu, tanh, sigmoid, identity)
}
"""The built-in activations by name."""


def get_activation(name_or_activation: str | Activation) -> Activation:
    """Resolve an activation given by name, or pass an ``Activation`` through.

    Args:
        name_or_activation: One of ``"relu"``, ``"tanh"``, ``"sigmoid"``,
            ``"identity"``, or an ``Activation`` instance (returned unchanged).

    Returns:
        The ``Activation``.

    Raises:
        ValueError: If the name is unknown or the argument is neither a string
            nor an ``Activation``.
    """
    if isinstance(name_or_activation, Activation):
        return name_or_activation
    if isinstance(name_or_activation, str) and name_or_activation in ACTIVATIONS:
        return ACTIVATIONS[name_or_activation]
    raise ValueError(
        f"activation must be one of {sorted(ACTIVATIONS)} or an Activation "
        f"instance, got {name_or_activation!r}"
    )


@dataclass(frozen=True)
class ActivationCheck:
    """Result of ``check_activation``: (P1) and (P2) on a grid of ``[-1, 1]``.

    Attributes:
        p1: ``max |sigma| <= 1`` on the grid.
        p2: ``max |sigma'| <= 1`` and ``max |sigma''| <= 1`` on the grid.
        max_abs_value: ``max |sigma(x)|`` over the grid.
        max_abs_d1: ``max |sigma'(x)|`` over the grid.
        max_abs_d2: ``max |sigma''(x)|`` over the grid.
    """

    p1: bool
    p2: bool
    max_abs_value: float
    max_abs_d1: float
    max_abs_d2: float

    @property
    def ok(self) -> bool:
        """Whether both (P1) and (P2) hold on the grid."""
        return self.p1 and self.p2


def check_activation(
    activation: str | Activation, *, n_grid: int = 20001
) -> ActivationCheck:
    """Check (P1) and (P2) of THEORY.md section 1 on a uniform grid of ``[-1, 1]``.

    (P1) ``|sigma(x)| <= 1``; (P2) ``|sigma'(x)| <= 1`` and ``|sigma''(x)| <= 1``,
    for ``x`` in ``[-1, 1]`` (the assumptions of Theorems 4.1 and 5.1). The
    check evaluates the activation's own ``fn``, ``d1`` and ``d2`` on
    ``n_grid`` equally spaced points including both end points (and 0 when
    ``n_grid`` is odd), with no tolerance. A grid can reveal a violation but
    cannot prove the property between grid points; a non-finite value on the
    grid counts as a violation.

    Args:
        activation: A built-in name or any ``Activation`` (e.g. a user's own).
        n_grid: Number of grid points, an integer >= 2. Defaults to 20001
            (spacing 1e-4).

    Returns:
        An ``ActivationCheck`` with flags ``p1``, ``p2``, ``ok`` and the three
        maxima.

    Raises:
        ValueError: If ``activation`` is unknown, ``n_grid`` is not an integer
            >= 2, or a callable does not return an array of the grid's shape.
    """
    act = get_activation(activation)
    if (
        isinstance(n_grid, bool)
        or not isinstance(n_grid, int | np.integer)
        or n_grid < 2
    ):
        raise ValueError(f"n_grid must be an integer >= 2, got {n_grid!r}")
    x = np.linspace(-1.0, 1.0, int(n_grid))
    maxima = []
    for field in ("fn", "d1", "d2"):
        values = np.asarray(getattr(act, field)(x), dtype=np.float64)
        if values.shape != x.shape:
            raise ValueError(
                f"activation {act.name!r}: {field} must be vectorized, it returned "
                f"shape {values.shape} for an input of shape {x.shape}"
            )
        # np.max propagates NaN, and NaN <= 1 is False: non-finite fails.
        maxima.append(float(np.max(np.abs(values))))
    max_value, max_d1, max_d2 = maxima
    return ActivationCheck(
        p1=bool(max_value <= 1.0),
        p2=bool(max_d1 <= 1.0 and max_d2 <= 1.0),
        max_abs_value=max_value,
        max_abs_d1=max_d1,
        max_abs_d2=max_d2,
    )
