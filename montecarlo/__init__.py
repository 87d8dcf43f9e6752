"""Monte Carlo estimation of gradient confusion over random data and networks.

Public API:

- samplers: ``sphere``, ``unit_ball`` (data); ``gaussian_weights`` (Strategy
  4.1), ``haar_orthogonal``, ``orthogonal_weights``, ``small_weights``
  (Assumption 1), ``ball_around`` (Corollary 5.1), ``orthogonal_linear_network``
  (Section 6); each takes a ``NormalSource`` (a numpy ``Generator`` or a
  ``PhiloxStream``);
- random streams: ``PhiloxStream``, ``stream_key`` (per trial, keyed by seed,
  configuration and trial index);
- sweeps: ``Config``, ``Spec``, ``SpecError``, ``load_spec``, ``parse_spec``,
  ``bundled_specs``;
- running: ``run_sweep`` (to the end), ``iter_run`` (a generator of
  ``Progress``), ``BACKENDS``, ``get_backend``, ``available_backends``;
  ``DaskExecutor`` and ``dask_client`` to run chunks on a Dask cluster;
- results: ``load_results`` (per-trial DataFrame), ``TRIAL_COLUMNS``,
  ``MINIBATCH_COLUMNS``, ``estimates`` (P(eta) with Clopper-Pearson
  intervals), ``theorem_summary`` (c* and the bound at c* per configuration);
- SGD under confusion (Theorems 3.1, 3.2, Figure 1): ``check_theorems``,
  ``scan_printed_theorem_3_2``, ``figure1_experiment``, ``run_sgd_check``,
  ``run_figure1``, ``mean_ci`` and their result types;
- trained networks on real data (Figures 2-4 at small scale): ``run_real_data``.

The command line is ``python -m montecarlo.run`` (see ``--help``).
"""

__all__: list[str] = []

import montecarlo._kernel_cache  # noqa: F401  (before any kernel: cache keys)

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
from montecarlo._backends import BACKENDS, available_backends, get_backend
from montecarlo._config import (
    Config,
    Spec,
    SpecError,
    bundled_specs,
    load_spec,
    parse_spec,
)
from montecarlo._dask import DaskExecutor, dask_client
from montecarlo._engine import Progress, iter_run, run_sweep
from montecarlo._estimates import ConfigSummary, estimates, theorem_summary
from montecarlo._rng import PhiloxStream, stream_key
from montecarlo._stats import MINIBATCH_COLUMNS, TRIAL_COLUMNS
from montecarlo._store import load_results

__all__ += [
    "BACKENDS",
    "DaskExecutor",
    "dask_client",
    "available_backends",
    "get_backend",
    "Config",
    "Spec",
    "SpecError",
    "bundled_specs",
    "load_spec",
    "parse_spec",
    "Progress",
    "iter_run",
    "run_sweep",
    "ConfigSummary",
    "estimates",
    "theorem_summary",
    "PhiloxStream",
    "stream_key",
    "MINIBATCH_COLUMNS",
    "TRIAL_COLUMNS",
    "load_results",
]

# --- experiments: SGD (Theorems 3.1, 3.2, Figure 1) and real data (Figures 2-4) ---
from montecarlo._real_data import run_real_data
from montecarlo._sgd_check import (
    MeanCI,
    TheoremCheck,
    check_theorems,
    figure1_experiment,
    mean_ci,
    run_figure1,
    run_sgd_check,
    scan_printed_theorem_3_2,
)

__all__ += [
    "run_real_data",
    "MeanCI",
    "TheoremCheck",
    "check_theorems",
    "figure1_experiment",
    "mean_ci",
    "run_figure1",
    "run_sgd_check",
    "scan_printed_theorem_3_2",
]
