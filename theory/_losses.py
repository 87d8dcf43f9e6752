"""Per-sample losses ``l(g, y)`` and their derivative in the output ``g``.

Notation (THEORY.md section 1; Sankararaman et al., ICML 2020, Section 4):

- ``g``: network output ``g_W(x_i)``, shape ``(n,)`` for ``n`` samples;
- ``y``: labels ``y_i = C(x_i)``, shape ``(n,)``;
- ``f_i(W) = l(g_W(x_i), y_i)``: square loss ``1/2 (y - g)^2`` or logistic loss
  ``log(1 + exp(-y g))``; ``l'(g, y) = dl/dg`` starts back-propagation in
  ``theory.gram``.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

LossFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Loss:
    """A per-sample loss ``l(g, y)`` with its derivative ``dl/dg``.

    Attributes:
        name: Short identifier, e.g. ``"square"``.
        fn: ``l(g, y)``, vectorized over equally shaped arrays ``g`` and ``y``.
        d1: ``dl/dg (g, y)``, vectorized.
    """

    name: str
    fn: LossFn
    d1: LossFn

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Loss name must be a non-empty string, got {self.name!r}")
        for field in ("fn", "d1"):
            value = getattr(self, field)
            if not callable(value):
                raise ValueError(
                    f"Loss {field} must be a vectorized callable, "
                    f"got {type(value).__name__}"
                )


def _square(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    r = y - g
    return 0.5 * r * r


def _square_d1(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    return g - y


def _logistic(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    # log(1 + exp(-y g)) without overflow for large |y g|.
    return np.logaddexp(0.0, -y * g)


def _logistic_d1(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    # -y / (1 + exp(y g)) = -y * expit(-y g), stable for large |y g|.
    return -y * expit(-y * g)


square = Loss("square", _square, _square_d1)
"""Square loss ``1/2 (y - g)^2``, ``l'(g, y) = g - y`` (THEORY.md section 1)."""

logistic = Loss("logistic", _logistic, _logistic_d1)
"""Logistic loss ``log(1 + exp(-y g))``, ``l'(g, y) = -y / (1 + exp(y g))``."""

LOSSES: dict[str, Loss] = {loss.name: loss for loss in (square, logistic)}
"""The built-in losses by name."""


def get_loss(name_or_loss: str | Loss) -> Loss:
    """Resolve a loss given by name, or pass a ``Loss`` through.

    Args:
        name_or_loss: ``"square"``, ``"logistic"``, or a ``Loss`` instance
            (returned unchanged).

    Returns:
        The ``Loss``.

    Raises:
        ValueError: If the name is unknown or the argument is neither a string
            nor a ``Loss``.
    """
    if isinstance(name_or_loss, Loss):
        return name_or_loss
    if isinstance(name_or_loss, str) and name_or_loss in LOSSES:
        return LOSSES[name_or_loss]
    raise ValueError(
        f"loss must be one of {sorted(LOSSES)} or a Loss instance, got {name_or_loss!r}"
    )
