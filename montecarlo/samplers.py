"""Data and weight ensembles, and the counter-based random streams they draw from.

Public ``montecarlo.samplers`` API; see ``montecarlo/_samplers.py`` (every
sampler takes ``rng`` first and documents its exact draws) and
``montecarlo/_rng.py`` (Philox4x32-10 streams keyed by seed, configuration
and trial).
"""

from montecarlo._rng import PhiloxStream, stream_key
from montecarlo._samplers import (
    LINEAR_LAYERS,
    NormalSource,
    ball_around,
    gaussian_weights,
    haar_orthogonal,
    orthogonal_linear_network,
    orthogonal_weights,
    signed_permutation,
    small_weights,
    sphere,
    uniform_spectrum_weights,
    unit_ball,
)

__all__ = [
    "LINEAR_LAYERS",
    "NormalSource",
    "PhiloxStream",
    "ball_around",
    "gaussian_weights",
    "haar_orthogonal",
    "orthogonal_linear_network",
    "orthogonal_weights",
    "signed_permutation",
    "small_weights",
    "sphere",
    "stream_key",
    "uniform_spectrum_weights",
    "unit_ball",
]
