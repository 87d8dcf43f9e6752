"""Toy models for Theorems 3.1 and 3.2: linear and logistic regression, and SGD.

Public ``theory.toy`` API; see ``theory/_sgd.py`` for details.
"""

from theory._sgd import (
    DATA_KINDS,
    TOY_LOSSES,
    SGDRun,
    ToyProblem,
    make_data,
    make_problem,
    sgd,
)

__all__ = [
    "DATA_KINDS",
    "TOY_LOSSES",
    "SGDRun",
    "ToyProblem",
    "make_data",
    "make_problem",
    "sgd",
]
