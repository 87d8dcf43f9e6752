"""Every statistic of a per-sample gradient Gram matrix (Definition 2.1, Section 8).

Public ``theory.confusion`` API; see ``theory/_confusion.py`` and
``theory/_minibatch.py`` (the exact moments of mini-batch inner products).
"""

from theory._confusion import (
    cosine_matrix,
    eta,
    min_cosine,
    min_inner,
    minibatch_gram,
    negative_pairs,
    offdiag_mean,
)
from theory._minibatch import (
    MinibatchMoments,
    minibatch_inner_moments,
    minibatch_moments,
)

__all__ = [
    "MinibatchMoments",
    "cosine_matrix",
    "eta",
    "min_cosine",
    "min_inner",
    "minibatch_gram",
    "minibatch_inner_moments",
    "minibatch_moments",
    "negative_pairs",
    "offdiag_mean",
]
