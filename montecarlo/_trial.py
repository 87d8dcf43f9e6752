"""One Monte Carlo trial, in readable numpy: the reference every backend must match.

A trial of configuration ``config`` with index ``t`` draws, from the stream
``PhiloxStream(stream_key(seed, config_hash), t)`` and in this order:

1. the data ``X`` (``sphere`` or ``unit_ball``), then the labeling function's
   parameters and the labels ``y = C(X)`` -- unless ``config.fixed_data``, in
   which case ``(X, y)`` come once from the reserved stream index
   :data:`FIXED_DATA_TRIAL` and are shared by all trials (Theorem 4.1 part 1);
2. the weights from the configured ensemble (``ball`` draws its centre from
   the ensemble ``config.centre`` and then a uniform point of the ball around
   it; ``orthogonal_linear`` draws the layers ``config.layers``);

then computes ``G = theory.gram(...)`` and the record of
:func:`montecarlo._stats.trial_record`.

Every random input is a transform of standard normals: the samplers draw only
``standard_normal`` and ``random``, and a uniform can be written ``Phi(z)``
with ``z`` standard normal. So a trial is also a deterministic function of one
vector ``u ~ N(0, I_D)``, ``D = trial_dimension(config)`` the count of numbers
it draws: :class:`NormalBuffer` serves the draws from ``u`` in order, and
:func:`run_trial_from_normals` is the trial on it (the reference of the numba
backend's ``records_from_normals``, on which :mod:`montecarlo._rare` runs).
"""

from __future__ import annotations

import numpy as np
from scipy import special

import theory
from montecarlo import _samplers as samplers
from montecarlo._config import Config
from montecarlo._rng import PhiloxStream
from montecarlo._stats import trial_record

__all__ = [
    "FIXED_DATA_TRIAL",
    "NormalBuffer",
    "draw_centre",
    "draw_data",
    "draw_weights",
    "fixed_data",
    "run_trial",
    "run_trial_from_normals",
    "trial_dimension",
]

FIXED_DATA_TRIAL = 2**64 - 1


def _labeling_function(config: Config, rng: samplers.NormalSource):
    name = config.labels
    if name == "constant":
        return theory.labels.constant_label(config.label_value)
    if name == "linear_teacher":
        return theory.labels.linear_teacher(rng, config.d)
    if name == "tanh_teacher":
        return theory.labels.tanh_teacher(rng, config.d)
    if name == "network_teacher":
        return theory.labels.network_teacher(rng, config.d, config.teacher_width)
    return theory.labels.random_signs(rng)


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


def _layered(name: str, config: Config, rng: samplers.NormalSource) -> list[np.ndarray]:
    """``[W_0, ..., W_beta]`` of the layered ensemble ``name`` (not ball)."""
    d, widths = config.d, config.widths
    if name == "gaussian":
        return samplers.gaussian_weights(rng, d, widths, kappa=config.kappa)
    if name == "orthogonal":
        return samplers.orthogonal_weights(rng, d, widths)
    if name == "small":
        return samplers.small_weights(rng, d, widths, scale=config.scale)
    return samplers.uniform_spectrum_weights(rng, d, widths, scale=config.scale)


def draw_centre(config: Config, rng: samplers.NormalSource) -> list[np.ndarray]:
    """Draw the centre of a ``ball`` configuration's ball (ensemble ``config.centre``).

    Raises:
        ValueError: If ``config.weights`` is not ``"ball"``.
    """
    if config.weights != "ball":
        raise ValueError(
            f"config must have weights = 'ball' to have a centre, got "
            f"weights = {config.weights!r}"
        )
    return _layered(config.centre, config, rng)


def draw_weights(
    config: Config, rng: samplers.NormalSource
) -> tuple[list[np.ndarray], float]:
    """Draw the weights ``[W_0, ..., W_beta]`` and the output scale ``gamma``.

    ``ball``: the centre (:func:`draw_centre`), then a uniform point of the
    ball of radius ``config.r`` around it; ``orthogonal_linear``: the network
    of :func:`montecarlo._samplers.orthogonal_linear_network` with
    ``config.layers``; any other ensemble: its sampler.
    """
    if config.weights == "ball":
        return samplers.ball_around(rng, draw_centre(config, rng), config.r), 1.0
    if config.weights == "orthogonal_linear":
        return samplers.orthogonal_linear_network(
            rng, config.d, config.depth, layers=config.layers
        )
    return _layered(config.weights, config, rng), 1.0


class NormalBuffer:
    """A :class:`~montecarlo._samplers.NormalSource` that reads a given vector.

    ``standard_normal(size)`` returns the next ``prod(size)`` entries of ``u``
    (C order), ``random(size)`` the next ones mapped by the standard normal
    CDF ``Phi``; ``consumed`` counts the entries read.

    Args:
        u: 1-D array of standard normals.

    Raises:
        ValueError: If ``u`` is not 1-D.
    """

    __slots__ = ("_u", "consumed")

    def __init__(self, u: np.ndarray) -> None:
        u = np.asarray(u, dtype=np.float64)
        if u.ndim != 1:
            raise ValueError(f"u must be a 1-D array, got shape {u.shape}")
        self._u = u
        self.consumed = 0

    @property
    def size(self) -> int:
        """The length of ``u``."""
        return self._u.size

    def _next(self, size: int | tuple[int, ...] | None) -> np.ndarray:
        shape = () if size is None else np.atleast_1d(size).astype(int)
        m = int(np.prod(shape))
        if self.consumed + m > self._u.size:
            raise ValueError(
                f"u has {self._u.size} entries, the trial draws more "
                f"(at least {self.consumed + m})"
            )
        out = self._u[self.consumed : self.consumed + m]
        self.consumed += m
        return out.reshape(tuple(shape))

    def standard_normal(
        self, size: int | tuple[int, ...] | None = None
    ) -> float | np.ndarray:
        """The next normals of ``u``, of shape ``size``."""
        z = self._next(size)
        return float(z) if size is None else z.copy()

    def random(self, size: int | tuple[int, ...] | None = None) -> float | np.ndarray:
        """``Phi`` of the next entries of ``u``: uniforms on ``[0, 1]``."""
        p = special.ndtr(self._next(size))
        return float(p) if size is None else p


class _CountingSource:
    """Standard normals and uniforms from a numpy Generator, counted."""

    def __init__(self) -> None:
        self._rng = np.random.default_rng(0)
        self.consumed = 0

    def standard_normal(self, size: int | tuple[int, ...] | None = None):
        self.consumed += int(np.prod(() if size is None else size))
        return self._rng.standard_normal(size)

    def random(self, size: int | tuple[int, ...] | None = None):
        self.consumed += int(np.prod(() if size is None else size))
        return self._rng.random(size)


def trial_dimension(config: Config) -> int:
    """``D``: how many numbers (normals and uniforms) one trial of ``config`` draws.

    Counted by running the reference draws (:func:`draw_data` unless
    ``config.fixed_data``, then :func:`draw_weights`) on a counting source.
    """
    counter = _CountingSource()
    if not config.fixed_data:
        draw_data(config, counter)
    draw_weights(config, counter)
    return counter.consumed


def run_trial_from_normals(
    config: Config,
    u: np.ndarray,
    fixed: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The trial of :func:`run_trial` whose draws are read from ``u``.

    Args:
        config: The configuration.
        u: ``(D,)`` standard normals, ``D = trial_dimension(config)``.
        fixed: The shared ``(X, y)`` when ``config.fixed_data``.

    Returns:
        ``(base, minibatch)`` records (see :mod:`montecarlo._stats`).

    Raises:
        ValueError: If ``u`` does not have exactly ``trial_dimension(config)``
            entries.
    """
    rng = NormalBuffer(u)
    X, y = fixed if fixed is not None else draw_data(config, rng)
    weights, gamma = draw_weights(config, rng)
    if rng.consumed != rng.size:
        raise ValueError(
            f"u must have trial_dimension(config) = {rng.consumed} entries, "
            f"got {rng.size}"
        )
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
