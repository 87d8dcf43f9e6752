"""SGD under gradient confusion: Theorems 3.1 and 3.2 and Figure 1 on toy models.

Public ``montecarlo.sgd`` API; see ``montecarlo/_sgd_check.py``. The claims of
these checks are built by :mod:`montecarlo.claims`.
"""

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

__all__ = [
    "MeanCI",
    "TheoremCheck",
    "check_theorems",
    "figure1_experiment",
    "mean_ci",
    "run_figure1",
    "run_sgd_check",
    "scan_printed_theorem_3_2",
]
