"""The paper's objects, exact (Sankararaman et al., ICML 2020).

Public API (numpy only: ``import theory`` loads neither torch nor pandas):

- ``gram``: the per-sample gradient Gram matrix ``G_ij = <grad f_i, grad f_j>``
  of a bias-free network by the factored back-propagation formula
  (THEORY.md section 2); ``forward``: the network itself;
- ``eta``, ``min_cosine``, ``offdiag_mean``, ``minibatch_gram``: the
  confusion of a Gram matrix (Definition 2.1) and its Section 8 variants;
- submodules, each a short list:

  - ``theory.activations``, ``theory.losses``: sigma with (P1)/(P2), the
    square and logistic losses, with derivatives;
  - ``theory.labels``: labeling functions ``C`` with ``|C| <= 1`` and
    ``||grad C|| <= 1``;
  - ``theory.confusion``: every statistic of a Gram matrix, and the exact
    moments of mini-batch gradient inner products (Section 8);
  - ``theory.toy``: linear and logistic regression and SGD on them
    (Theorems 3.1, 3.2, Figure 1);
  - ``theory.torch``: the same objects for torch models (Section 7 protocol,
    per-sample Gram of any model, a differentiable Gram); loads torch.
"""

import importlib

from theory import activations, confusion, labels, losses, toy
from theory._confusion import eta, min_cosine, minibatch_gram, offdiag_mean
from theory._gram import gram
from theory._network import forward

__all__ = [
    "activations",
    "confusion",
    "eta",
    "forward",
    "gram",
    "labels",
    "losses",
    "min_cosine",
    "minibatch_gram",
    "offdiag_mean",
    "toy",
    "torch",
]


def __getattr__(name: str) -> object:
    # ``theory.torch`` is loaded on first use: it imports torch (seconds).
    if name == "torch":
        return importlib.import_module("theory.torch")
    raise AttributeError(f"module 'theory' has no attribute {name!r}")
