"""Backends: the same trials, computed in different ways.

===========  ====================================================================
``numpy``    The readable reference (:mod:`montecarlo._trial`): the public
             samplers on a Philox stream, ``theory.gram``, ``theory``'s
             confusion statistics. One trial at a time; use it to check the
             others and to read the algorithm.
``numba``    Every trial's draws, forward and backward passes, Gram and
             statistics fused in compiled code, trials in parallel over cores
             (``prange``); compiled once and cached on disk. The default for
             runs: same trials as ``numpy`` to float tolerance.
``cuda``     For a GPU (:mod:`montecarlo._cuda`): a numba CUDA kernel draws
             every trial's Philox stream on the device (one thread per trial
             and Philox block: the very numbers of the host stream), torch
             batches data, weights, forward and backward passes, Gram and
             statistics over the trials of a chunk. Same trials as ``numpy``
             to float tolerance. Listed by :func:`available_backends` only
             where numba sees a CUDA device or its simulator
             (``NUMBA_ENABLE_CUDASIM=1``); ``CudaBackend(rng="host")`` takes
             the draws from the host stream instead (the test mode).
===========  ====================================================================

:data:`DEFAULT_BACKEND` is ``numba`` for runs; tests compare every pair of
available backends (:func:`available_backends`). A backend is an object with a
``name`` and ``run(config, key, trials, fixed) -> (base, minibatch)``; the
driver never needs more, so executors (serial, Dask) and new backends plug in
without touching it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

import montecarlo._kernel_cache  # noqa: F401  (kernels cached by their sources)
from montecarlo._config import Config
from montecarlo._stats import MINIBATCH_COLUMNS, TRIAL_COLUMNS

__all__ = [
    "Backend",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "get_backend",
    "available_backends",
]

DEFAULT_BACKEND = "numba"


class Backend(Protocol):
    """Computes the records of a chunk of trials of one configuration."""

    name: str

    def run(
        self,
        config: Config,
        key: tuple[int, int],
        trials: np.ndarray,
        fixed: tuple[np.ndarray, np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Records ``(base (m, 9), minibatch (m, nB, 4))`` of ``trials``."""
        ...


class NumpyBackend:
    """The numpy reference, one trial at a time (``montecarlo._trial.run_trial``)."""

    name = "numpy"

    def run(
        self,
        config: Config,
        key: tuple[int, int],
        trials: np.ndarray,
        fixed: tuple[np.ndarray, np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        from montecarlo._trial import run_trial

        recs = [run_trial(config, key, int(t), fixed) for t in trials]
        m, n_b = len(recs), len(config.batch_sizes)
        base = np.array([r[0] for r in recs]).reshape(m, len(TRIAL_COLUMNS))
        mb = np.array([r[1] for r in recs]).reshape(m, n_b, len(MINIBATCH_COLUMNS))
        return base, mb


class NumbaBackend:
    """Fused compiled trials, parallel over numba's threads (see module docstring).

    BLAS is limited to one thread while a chunk runs, so each numba thread owns
    one core and results do not depend on the thread count.
    """

    name = "numba"

    def run(
        self,
        config: Config,
        key: tuple[int, int],
        trials: np.ndarray,
        fixed: tuple[np.ndarray, np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        from threadpoolctl import threadpool_limits

        from montecarlo._numba_trial import run_chunk

        with threadpool_limits(1):
            return run_chunk(config, key, trials, fixed)

    def warm_up(self) -> None:
        """Load (or compile, once) the kernels on a one-trial problem.

        One compiled kernel serves every configuration (its options are run-time
        arguments), so this is all the compilation a run needs.
        """
        self.run(Config(n=2, d=1, depth=1, width=1), (0, 0), np.arange(1), None)


class CudaBackend:
    """Philox draws on a CUDA device, trials batched in torch (see module docstring).

    Args:
        rng: ``"device"`` (default): the draws come from the numba CUDA kernel;
            ``"host"``: from :class:`montecarlo._rng.PhiloxStream` (the test
            mode, which needs no CUDA device).
        device: torch device of the linear algebra; defaults to ``"cuda"`` when
            torch sees a GPU, else ``"cpu"``.

    Raises:
        ValueError: If ``rng`` is not ``"device"`` or ``"host"``, if
            ``rng="device"`` and numba sees no CUDA device (nor the
            simulator), or if ``device`` is not a torch device.
    """

    name = "cuda"

    def __init__(self, rng: str = "device", device: str | None = None) -> None:
        from montecarlo._cuda import check_rng, resolve_device

        self.rng = check_rng(rng)
        self.device = str(resolve_device(device))

    def run(
        self,
        config: Config,
        key: tuple[int, int],
        trials: np.ndarray,
        fixed: tuple[np.ndarray, np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Records ``(base, minibatch)`` of ``trials`` (the Backend protocol)."""
        from montecarlo._cuda import run_chunk

        return run_chunk(config, key, trials, fixed, rng=self.rng, device=self.device)


BACKENDS: dict[str, type] = {
    "numpy": NumpyBackend,
    "numba": NumbaBackend,
    "cuda": CudaBackend,
}


def get_backend(name: str) -> Backend:
    """The backend called ``name``.

    Raises:
        ValueError: If ``name`` is not one of :data:`BACKENDS`.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {name!r}")
    return BACKENDS[name]()


def _cuda_usable() -> bool:
    """Whether numba sees a CUDA device, or runs its simulator."""
    try:
        from numba import cuda
    except ImportError:  # a numba without its CUDA target
        return False
    return bool(cuda.is_available())


def available_backends() -> list[str]:
    """Backends usable on this machine (for tests that compare every pair).

    ``cuda`` is listed only where it can run: on a CUDA device, or under
    numba's simulator (``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported).
    """
    return [name for name in BACKENDS if name != "cuda" or _cuda_usable()]
