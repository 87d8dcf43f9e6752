"""Bound-versus-empirical plots and the verification report (reads stored results only).

Plotting is a thin layer: every statistical test and verdict comes from
:mod:`montecarlo.claims`; this package only draws and writes.

Public API:

- ``write_report``: draw every figure of a results directory into
  ``OUT/figures/`` (PNG and PDF) and write ``OUT/report.md`` and a
  self-contained ``OUT/report.html``; also ``python -m figures OUT``;
- ``make_figures``: every applicable figure, without the report;
- ``plot_theorem``, ``plot_c_star``: empirical P(eta) against a theorem's
  bound at ``c*`` and at a given ``c``; ``c*`` across sweeps;
- ``plot_confusion_vs_architecture``, ``plot_cosine_kde``,
  ``plot_orthogonal_vs_gaussian``: the paper's Figure 2/3 analogues on the
  Monte Carlo ensembles and Theorem 6.1 against Gaussian initialization;
- ``plot_sgd_check``, ``plot_figure1``: SGD against Theorems 3.1/3.2 and the
  paper's Figure 1; ``plot_real_data``: the trained-network experiment;
- ``FigureRecord``: a written figure with its caption.
"""

from figures._ensembles import (
    plot_confusion_vs_architecture,
    plot_cosine_kde,
    plot_orthogonal_vs_gaussian,
)
from figures._real_data import plot_real_data
from figures._report import make_figures, write_report
from figures._sgd import plot_figure1, plot_sgd_check
from figures._style import FigureRecord
from figures._theorems import plot_c_star, plot_theorem

__all__ = [
    "FigureRecord",
    "make_figures",
    "plot_c_star",
    "plot_confusion_vs_architecture",
    "plot_cosine_kde",
    "plot_figure1",
    "plot_orthogonal_vs_gaussian",
    "plot_real_data",
    "plot_sgd_check",
    "plot_theorem",
    "write_report",
]
