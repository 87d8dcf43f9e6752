"""The paper's objects, exact (Sankararaman et al., ICML 2020).

Public API (each name is documented in its own module):

- activations and losses with their derivatives, and a checker for (P1)/(P2);
- bias-free fully connected networks and the per-sample gradient Gram matrix
  ``gram`` by the factored back-propagation formula (THEORY.md section 2);
- confusion statistics of a Gram matrix (worst case, cosine, averaged,
  mini-batch);
- labeling functions ``C`` with ``|C| <= 1`` and ``||grad C|| <= 1``;
- toy SGD models (linear and logistic regression) for Theorems 3.1 and 3.2;
- confusion of arbitrary torch models (Section 7 protocol and per-sample Gram).
"""

__all__: list[str] = []

# --- core: activations, losses, networks, Gram, confusion, labels ---
from theory._activations import (
    ACTIVATIONS,
    Activation,
    ActivationCheck,
    check_activation,
    get_activation,
    identity,
    relu,
    sigmoid,
    tanh,
)
from theory._confusion import (
    cosine_matrix,
    eta,
    min_cosine,
    min_inner,
    minibatch_gram,
    negative_pairs,
    offdiag_mean,
)
from theory._gram import gram
from theory._labels import (
    LabelingFunction,
    constant_label,
    linear_teacher,
    network_teacher,
    random_signs,
    tanh_teacher,
)
from theory._losses import LOSSES, Loss, get_loss, logistic, square
from theory._network import forward

__all__ += [
    "ACTIVATIONS",
    "Activation",
    "ActivationCheck",
    "check_activation",
    "get_activation",
    "identity",
    "relu",
    "sigmoid",
    "tanh",
    "LOSSES",
    "Loss",
    "get_loss",
    "logistic",
    "square",
    "forward",
    "gram",
    "cosine_matrix",
    "eta",
    "min_cosine",
    "min_inner",
    "minibatch_gram",
    "negative_pairs",
    "offdiag_mean",
    "LabelingFunction",
    "constant_label",
    "linear_teacher",
    "network_teacher",
    "random_signs",
    "tanh_teacher",
]

# --- SGD toy models (Theorems 3.1, 3.2) ---
from theory._sgd import (
    DATA_KINDS,
    TOY_LOSSES,
    SGDRun,
    ToyProblem,
    make_data,
    make_problem,
    sgd,
)

__all__ += [
    "DATA_KINDS",
    "TOY_LOSSES",
    "SGDRun",
    "ToyProblem",
    "make_data",
    "make_problem",
    "sgd",
]

# --- confusion of torch models (Section 7) ---
from theory._torch_confusion import (
    MinibatchConfusion,
    minibatch_confusion,
    per_sample_gram,
    torch_mlp,
)

__all__ += [
    "MinibatchConfusion",
    "minibatch_confusion",
    "per_sample_gram",
    "torch_mlp",
]
