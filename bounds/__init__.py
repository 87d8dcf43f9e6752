"""Closed-form bounds of the paper and the constant ``c*`` that Monte Carlo implies.

Public API (formulas, assumptions and chosen readings are in each docstring):

- ``theorem_3_1``, ``theorem_3_2``: SGD convergence bounds under gradient
  confusion (Section 3); ``theorem_3_2`` has a ``form="printed"`` and a
  ``form="derived"`` reading.
- ``theorem_4_1``, ``theorem_5_1``, ``corollary_5_1``, ``theorem_6_1``:
  lower bounds on the probability that the confusion bound holds, for given
  constants ``c`` (and ``c1``), vectorized over ``eta``.
- ``ProbabilityBound``: their result, carried in log space (``log_failure``,
  ``probability``, ``failure``, ``log_probability``, ``vacuous``).
- ``clopper_pearson``: exact binomial confidence limits, vectorized.
- ``implied_constant`` / ``ImpliedConstant``: the largest ``c`` consistent with
  Monte Carlo failure counts at a stated confidence, and the ``eta`` that binds.
- ``STATEMENTS`` / ``Statement`` / ``get_statement``: the registry of the
  probability statements (bound, parameters, title, hypothesis class, the
  paper's prose about them) that every other part of the package reads.
"""

__all__: list[str] = []

# --- bounds and implied constant ---
from bounds._implied import ImpliedConstant, clopper_pearson, implied_constant
from bounds._probability import (
    ProbabilityBound,
    corollary_5_1,
    theorem_4_1,
    theorem_5_1,
    theorem_6_1,
)
from bounds._sgd import theorem_3_1, theorem_3_2
from bounds._statements import (
    STATEMENTS,
    Statement,
    get_statement,
    informative_length,
)

__all__ += [
    "ImpliedConstant",
    "ProbabilityBound",
    "STATEMENTS",
    "Statement",
    "get_statement",
    "informative_length",
    "clopper_pearson",
    "corollary_5_1",
    "implied_constant",
    "theorem_3_1",
    "theorem_3_2",
    "theorem_4_1",
    "theorem_5_1",
    "theorem_6_1",
]
