"""Memory a configuration needs, checked against the machine before a run starts.

One trial holds, in float64 (8 bytes each), with ``P`` the number of weights
(``d l + (beta - 1) l^2 + l`` for hidden width ``l``, ``(beta - 1) d^2 + d``
for the orthogonal linear network) and ``S`` the number of units summed over
layers:

- the data ``X`` (``n x d``) and labels, a ``network_teacher``'s weights;
- the weights, the normals they are drawn from and the workspace of a QR
  factorization or a spectral norm: ``3 P``, plus ``P`` for the
  ``uniform_spectrum`` ensemble (its factors ``U`` and ``V`` hold up to
  ``2 P`` numbers, and their QR workspace) and ``P`` for the ``ball``
  ensemble (a direction in weight space; its centre counts as its own
  ensemble);
- activations and their derivatives per layer (``2 n S``) and the two
  back-propagated error slabs (``2 n l``);
- the Gram matrix and its two factors (``3 n^2``).

The numba backend runs one trial per thread at a time, so a chunk needs the
per-trial memory times the number of threads, plus its records. A run is
refused when that exceeds :data:`FRACTION` of the machine's memory (physical
memory, or a smaller cgroup limit).
"""

from __future__ import annotations

import os
from pathlib import Path

from montecarlo._config import Config, Spec, SpecError
from montecarlo._stats import MINIBATCH_COLUMNS, TRIAL_COLUMNS

__all__ = ["FRACTION", "check_memory", "machine_memory", "trial_bytes"]

FRACTION = 0.8
"""Share of the machine's memory a run may plan to use."""

_CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")


def trial_bytes(config: Config) -> int:
    """Peak bytes one trial of ``config`` holds (the estimate of the module docstring).

    Args:
        config: The configuration.

    Returns:
        The estimate in bytes (a Python int: no overflow for any size).
    """
    n, d, depth, width = config.n, config.d, config.depth, config.width
    if config.weights == "orthogonal_linear":  # depth - 1 layers d x d, then 1 x d
        params = (depth - 1) * d * d + d
        units = (depth - 1) * d + 1
        widest = d if depth > 1 else 1
    else:  # l x d, depth - 1 layers l x l, then 1 x l
        params = width * d + (depth - 1) * width * width + width
        units = depth * width + 1
        widest = width
    layered = config.centre if config.weights == "ball" else config.weights
    draws = 3 + (layered == "uniform_spectrum") + (config.weights == "ball")
    words = (
        n * d
        + 2 * n
        + config.teacher_width * (d + 1)
        + draws * params
        + 2 * n * units
        + 2 * n * widest
        + 3 * n * n
    )
    return 8 * words


def machine_memory() -> int:
    """Bytes of memory of this machine: physical, or a smaller cgroup (v2) limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = _CGROUP_LIMIT.read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def _gib(x: int) -> str:
    return f"{x / 2**30:.3g} GiB"


def check_memory(spec: Spec, *, threads: int, chunk_size: int) -> None:
    """Refuse, before any work, configurations whose chunks cannot fit in memory.

    Args:
        spec: The parsed spec.
        threads: Trials computed at once (numba threads; 1 for the numpy
            backend and for Dask workers, which run one trial at a time).
        chunk_size: Trials per chunk (their records are held together).

    Raises:
        SpecError: One line per configuration that does not fit, with the
            estimate and the limit.
    """
    limit = int(FRACTION * machine_memory())
    problems = []
    for group, configs in spec.groups.items():
        axes = spec.axes.get(group, [])
        for config in configs:
            records = min(chunk_size, config.trials) * (
                len(TRIAL_COLUMNS) + len(config.batch_sizes) * len(MINIBATCH_COLUMNS)
            )
            need = threads * trial_bytes(config) + 8 * records
            if need > limit:
                label = f"[{config.label(axes)}]" if axes else ""
                problems.append(
                    f"configs.{group}{label}: needs about {_gib(need)} "
                    f"({threads} trial(s) at once x {_gib(trial_bytes(config))}: "
                    f"weights, activations n x width per layer, Gram n x n), more "
                    f"than the {_gib(limit)} allowed ({FRACTION:.0%} of this "
                    "machine's memory): lower n, d, width or depth (or --threads)"
                )
    if problems:
        raise SpecError(problems, f"spec {spec.name!r}")
