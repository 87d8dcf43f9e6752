"""The paper's objects for torch models (loads torch).

Public ``theory.torch`` API:

- ``per_sample_gram``, ``minibatch_confusion``, ``MinibatchConfusion``,
  ``torch_mlp``: confusion of any torch model (Section 7 protocol, per-sample
  Gram by the factored formula or vmap); see ``theory/_torch_confusion.py``;
- ``gram_torch``, ``min_offdiag``, ``soft_min_offdiag``,
  ``failure_surrogate``: the factored Gram of the paper's networks in torch,
  batched and differentiable (the worst-case search); see
  ``theory/_torch_gram.py``.
"""

from theory._torch_confusion import (
    MinibatchConfusion,
    minibatch_confusion,
    per_sample_gram,
    torch_mlp,
)
from theory._torch_gram import (
    failure_surrogate,
    gram_torch,
    min_offdiag,
    soft_min_offdiag,
)

__all__ = [
    "MinibatchConfusion",
    "failure_surrogate",
    "gram_torch",
    "min_offdiag",
    "minibatch_confusion",
    "per_sample_gram",
    "soft_min_offdiag",
    "torch_mlp",
]
