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

import importlib

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
from montecarlo.claims._family import FAMILY, adjust, holm

__all__ = [
    "FAMILY",
    "KIND_TITLES",
    "VERDICTS",
    "Claim",
    "Evidence",
    "Kind",
    "adjust",
    "format_p",
    "holm",
    "statement_order",
    "statement_title",
    "tests",
]

# The builders read stored runs (pandas) and the experiments' modules (some
# load torch): loaded on first use, so that an experiment can import the tests
# and the claim types without them.
_LAZY = {
    "by_kind": "montecarlo.claims._collect",
    "collect": "montecarlo.claims._collect",
    "summary": "montecarlo.claims._collect",
    "experiment_claims": "montecarlo.claims._experiments",
    "monte_carlo_claims": "montecarlo.claims._monte_carlo",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'montecarlo.claims' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_LAZY])
