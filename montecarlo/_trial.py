"""One Monte Carlo trial, in readable numpy: the reference every backend must match.

A trial of configuration ``config`` with index ``t`` draws, from the stream
``PhiloxStream(stream_key(seed, config_hash), t)`` and in this order:

1. the data ``X`` (``sphere`` or ``unit_ball``), then the labeling function's
   parameters and the labels ``y = C(X)`` -- unless ``config.fixed_data``, in
   which case ``(X, y)`` come once from the reserved stream index
   :data:`FIXED_DATA_TRIAL` and are shared by all trials (Theorem 4.1 part 1);
2. the weights from the configured ensemble (``ball`` draws its centre from
   ``small_weights`` and then a uniform point of the ball around it);

then computes ``G = theory.gram(...)`` and the record of
:func:`montecarlo._stats.trial_record`.
"""

from __future__ import annotations

import numpy as np

import theory
from montecarlo import _samplers as samplers
from montecarlo._config import Config
from montecarlo._rng import PhiloxStream
from montecarlo._stats import trial_record

__all__ = ["FIXED_DATA_TRIAL", "draw_data", "draw_weights", "fixed_data", "run_trial"]

FIXED_DATA_TRIAL = 2**64 - 1


def _labeling_function(config: Config, rng: samplers.NormalSource):
    name = config.labels
    if name == "constant":
        return theory.constant_label(config.label_value)
    if name == "linear_teacher":
        return theory.linear_teacher(rng, config.d)
    if name == "tanh_teacher":
        return theory.tanh_teacher(rng, config.d)
    if name == "network_teacher":
        return theory.network_teacher(rng, config.d, config.teacher_width)
    return theory.random_signs(rng)


def draw_data(
    config: Config, rng: samplers.NormalSource
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(X, y)``: data from ``config.data``, labels from ``config.labels``."""
    if config.data == "sphere":
        X = samplers.sphere(rng, config.n, config.d)
    else:
        X = samplers.unit_ball(rng, config.n, config.d)
    y = _labeling_function(config, rng)(X)
    return X, np.asarray(y, dtype=np.float64)


def draw_weights(
    config: Config, rng: samplers.NormalSource
) -> tuple[list[np.ndarray], float]:
    """Draw the weights ``[W_0, ..., W_beta]`` and the output scale ``gamma``."""
    d, widths = config.d, config.widths
    if config.weights == "gaussian":
        return samplers.gaussian_weights(rng, d, widths, kappa=config.kappa), 1.0
    if config.weights == "orthogonal":
        return samplers.orthogonal_weights(rng, d, widths), 1.0
    if config.weights == "small":
        return samplers.small_weights(rng, d, widths, scale=config.scale), 1.0
    if config.weights == "ball":
        centre = samplers.small_weights(rng, d, widths, scale=config.scale)
        return samplers.ball_around(rng, centre, config.r), 1.0
    return samplers.orthogonal_linear_network(rng, d, config.depth)


def run_trial(
    config: Config,
    key: tuple[int, int],
    trial: int,
    fixed: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run trial ``trial`` of ``config`` on the stream with Philox key ``key``.

    Args:
        config: The configuration.
        key: Philox key from :func:`montecarlo._rng.stream_key`.
        trial: Trial index.
        fixed: The shared ``(X, y)`` when ``config.fixed_data``.

    Returns:
        ``(base, minibatch)`` records (see :mod:`montecarlo._stats`).
    """
    rng = PhiloxStream(key, trial)
    X, y = fixed if fixed is not None else draw_data(config, rng)
    weights, gamma = draw_weights(config, rng)
    G = theory.gram(
        weights,
        X,
        y,
        activation=config.activation,
        loss=config.loss,
        output_activation=config.output_activation,
        gamma=gamma,
    )
    return trial_record(G, config.batch_sizes)


def fixed_data(
    config: Config, key: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The shared data of a ``fixed_data`` configuration (None otherwise)."""
    if not config.fixed_data:
        return None
    return draw_data(config, PhiloxStream(key, FIXED_DATA_TRIAL))
