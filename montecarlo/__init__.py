"""Monte Carlo estimation of gradient confusion over random data and networks."""

__all__: list[str] = []

# --- samplers ---
from montecarlo._samplers import (
    NormalSource,
    ball_around,
    gaussian_weights,
    haar_orthogonal,
    orthogonal_linear_network,
    orthogonal_weights,
    small_weights,
    sphere,
    unit_ball,
)

__all__ += [
    "NormalSource",
    "ball_around",
    "gaussian_weights",
    "haar_orthogonal",
    "orthogonal_linear_network",
    "orthogonal_weights",
    "small_weights",
    "sphere",
    "unit_ball",
]

# --- engine, store, sweeps ---
