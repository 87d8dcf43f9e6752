"""Monte Carlo estimation of gradient confusion over random data and networks.

Public API (``import montecarlo`` loads neither torch, pandas nor dask; the
names below load what they need on first use):

- sweeps: ``Config``, ``Spec``, ``SpecError``, ``load_spec``, ``parse_spec``
  (TOML specs, every problem reported with its key path);
- running: ``run_sweep`` (to the end, resumable) and ``iter_run`` (a generator
  of progress); the command line is ``python -m montecarlo.run``;
- results: ``load_results`` (one row per trial), ``load_run`` (a results
  directory as stored), ``estimates`` (P(eta) with Clopper-Pearson
  intervals), ``theorem_summary`` (``c*`` per configuration);
- submodules:

  - ``montecarlo.samplers``: data and weight ensembles, Philox streams;
  - ``montecarlo.backends``: the numpy / numba / cuda trial backends;
  - ``montecarlo.dask``: chunks as Dask tasks on a cluster;
  - ``montecarlo.claims``: the inference layer (claims, tests, verdicts);
  - ``montecarlo.sgd``: Theorems 3.1/3.2 and Figure 1 on toy models;
  - ``montecarlo.experiments``: every experiment a spec can list.
"""

import importlib

import montecarlo._kernel_cache  # noqa: F401  (before any kernel: cache keys)
from montecarlo._config import Config, Spec, SpecError, load_spec, parse_spec

__all__ = [
    "Config",
    "Spec",
    "SpecError",
    "backends",
    "claims",
    "dask",
    "estimates",
    "experiments",
    "iter_run",
    "load_results",
    "load_run",
    "load_spec",
    "parse_spec",
    "run_sweep",
    "samplers",
    "sgd",
    "theorem_summary",
]

_LAZY = {
    "run_sweep": "montecarlo._engine",
    "iter_run": "montecarlo._engine",
    "load_results": "montecarlo._store",
    "load_run": "montecarlo._results",
    "estimates": "montecarlo._estimates",
    "theorem_summary": "montecarlo._estimates",
}
_SUBMODULES = ("backends", "claims", "dask", "experiments", "samplers", "sgd")


def __getattr__(name: str) -> object:
    # SPEC 1 lazy loading: pandas, torch and dask load with the first name
    # that needs them, not with ``import montecarlo``.
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"montecarlo.{name}")
    raise AttributeError(f"module 'montecarlo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
