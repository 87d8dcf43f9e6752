"""The inference layer: every claim of the report, its test and its verdict.

Public API:

- ``Claim``, ``Evidence``, ``Kind``, ``KIND_TITLES``, ``VERDICTS``: a claim
  states which statement it tests and of what kind (the theorem's
  inequality, the paper's prose, an observation about one ensemble, a check
  at a user-given constant); its verdict comes from its evidence by one rule;
- ``adjust`` / ``holm`` / ``FAMILY``: Holm's adjustment over the report's
  family of tests;
- ``collect``: every claim of a stored run (Monte Carlo and experiments),
  in the paper's order, adjusted; ``summary``: the console's text of them;
  ``monte_carlo_claims`` and ``experiment_claims``: the two sources;
- ``statement_title`` / ``statement_order``: titles and order of every
  statement a claim can be about;
- ``tests``: the statistical tests (exact binomial tails, one-sided trends,
  TOST equivalence, power-law slopes, ratio and mean tests).
"""

from montecarlo.claims import _tests as tests
from montecarlo.claims._claim import (
    KIND_TITLES,
    VERDICTS,
    Claim,
    Evidence,
    Kind,
    format_p,
    statement_order,
    statement_title,
)
from montecarlo.claims._collect import by_kind, collect, summary
from montecarlo.claims._experiments import experiment_claims
from montecarlo.claims._family import FAMILY, adjust, holm
from montecarlo.claims._monte_carlo import monte_carlo_claims

__all__ = [
    "by_kind",
    "collect",
    "experiment_claims",
    "statement_order",
    "statement_title",
    "summary",
    "Claim",
    "Evidence",
    "FAMILY",
    "KIND_TITLES",
    "Kind",
    "VERDICTS",
    "adjust",
    "format_p",
    "holm",
    "monte_carlo_claims",
    "tests",
]
