"""Bound-versus-empirical plots and the verification report (reads stored results only).

Public API:

- ``write_report``: draw every figure of a results directory into
  ``OUT/figures/`` (PNG and PDF) and write ``OUT/report.md`` and a
  self-contained ``OUT/report.html``; also ``python -m figures OUT``;
- ``load_run`` / ``StoredRun`` / ``GroupTrials``: a results directory as
  stored (spec, trials per group, ``c*`` summaries, experiment JSONs);
- ``make_figures``: every applicable figure, without the report;
- ``plot_theorem``, ``plot_c_star``: empirical P(eta) against a theorem's
  bound at ``c*`` and at a given ``c``; ``c*`` across sweeps;
- ``plot_confusion_vs_architecture``, ``plot_cosine_kde``,
  ``plot_orthogonal_vs_gaussian``: the paper's Figure 2/3 analogues on the
  Monte Carlo ensembles and Theorem 6.1 against Gaussian initialization;
- ``Claim``, ``verdict``, ``monte_carlo_claims``, ``experiment_claims``: the
  claims table and the verdict rule every claim uses;
- ``FigureRecord``: a written figure with its caption;
- ``plot_sgd_check``, ``plot_figure1``: SGD against Theorems 3.1/3.2 and the
  paper's Figure 1; ``plot_real_data``: the digits Figures 2-4 experiment.
"""

__all__: list[str] = []

# --- report, figures, claims ---
from figures._claims import Claim, experiment_claims, monte_carlo_claims, verdict
from figures._ensembles import (
    plot_confusion_vs_architecture,
    plot_cosine_kde,
    plot_orthogonal_vs_gaussian,
)
from figures._report import make_figures, write_report
from figures._run import GroupTrials, StoredRun, load_run
from figures._style import FigureRecord
from figures._theorems import plot_c_star, plot_theorem

__all__ += [
    "Claim",
    "FigureRecord",
    "GroupTrials",
    "StoredRun",
    "experiment_claims",
    "load_run",
    "make_figures",
    "monte_carlo_claims",
    "plot_c_star",
    "plot_confusion_vs_architecture",
    "plot_cosine_kde",
    "plot_orthogonal_vs_gaussian",
    "plot_theorem",
    "verdict",
    "write_report",
]

# --- experiments: SGD and real data ---
from figures._real_data import plot_real_data
from figures._sgd import plot_figure1, plot_sgd_check

__all__ += ["plot_figure1", "plot_real_data", "plot_sgd_check"]
