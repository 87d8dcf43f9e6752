"""Activations ``sigma`` with their derivatives, and the check of (P1)/(P2).

Public ``theory.activations`` API; see ``theory/_activations.py`` for details.
"""

from theory._activations import (
    ACTIVATIONS,
    Activation,
    ActivationCheck,
    check_activation,
    get_activation,
    identity,
    relu,
    sigmoid,
    tanh,
)

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "ActivationCheck",
    "check_activation",
    "get_activation",
    "identity",
    "relu",
    "sigmoid",
    "tanh",
]
