"""Every experiment a spec can list besides its Monte Carlo groups.

Public ``montecarlo.experiments`` API: ``EXPERIMENTS`` and ``run_experiment``
(the registry, :mod:`montecarlo._experiments`), and each experiment's entry
point, loaded on first use (some load torch):

- ``run_sgd_check``, ``run_figure1``: Theorems 3.1/3.2 and Figure 1;
- ``run_real_data``: trained MLPs on the bundled digits (Section 7, small);
- ``run_real_data_cnn``: the paper's CNN-beta-k (Figures 2 to 4);
- ``run_lemma_b1``: Lemma B.1 on the sphere;
- ``run_minibatch``: the Section 8 mini-batch rates;
- ``run_adversarial``: the worst case found for the uniform statements
  (loads torch);
- ``run_tail``: rare-event estimates of the failure tail and its rates
  (loads torch through the shared group selection).
"""

import importlib

from montecarlo._experiments import EXPERIMENTS, run_experiment
from montecarlo._lemma_b1 import run_lemma_b1
from montecarlo._minibatch import run_minibatch
from montecarlo._sgd_check import run_figure1, run_sgd_check

__all__ = [
    "EXPERIMENTS",
    "run_experiment",
    "run_figure1",
    "run_lemma_b1",
    "run_minibatch",
    "run_sgd_check",
]

_TORCH = {
    "run_adversarial": "montecarlo._worst_case",
    "run_real_data": "montecarlo._real_data",
    "run_real_data_cnn": "montecarlo._cnn_experiment",
    "run_tail": "montecarlo._tails",
}


def __getattr__(name: str) -> object:
    # these load torch: on first use only
    if name in _TORCH:
        return getattr(importlib.import_module(_TORCH[name]), name)
    raise AttributeError(f"module 'montecarlo.experiments' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_TORCH])
