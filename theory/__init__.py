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

# --- SGD toy models (Theorems 3.1, 3.2) ---

# --- confusion of torch models (Section 7) ---
