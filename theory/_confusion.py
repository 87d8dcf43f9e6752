"""Gradient-confusion statistics of a per-sample gradient Gram matrix.

Notation (THEORY.md section 2; Sankararaman et al., ICML 2020, Definition 2.1
and Section 8):

- ``n`` samples; ``G`` (``n, n``) with ``G_ij = <grad f_i(w), grad f_j(w)>``
  (see ``theory.gram``);
- ``eta``: the gradient confusion bound, ``<grad f_i, grad f_j> >= -eta`` for
  all ``i != j``; the smallest one is ``max(0, -min_{i != j} G_ij)``;
- ``B``: mini-batch size.

Every function takes ``G`` as its first argument and requires a square matrix
with ``n >= 2``. Non-finite entries of ``G`` (overflowed deep ReLU networks)
are not an error: they propagate as NaN into the float statistics, so a caller
can count such trials.
"""

import numpy as np


def _check_gram(G: np.ndarray) -> np.ndarray:
    """Convert ``G`` to float64 and check it is a square matrix with ``n >= 2``."""
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise ValueError(f"G must be a square (n, n) matrix, got shape {G.shape}")
    if G.shape[0] < 2:
        raise ValueError(f"G must be (n, n) with n >= 2, got shape {G.shape}")
    return G


def _offdiag(G: np.ndarray) -> np.ndarray:
    """The ``n (n - 1)`` off-diagonal entries of ``G`` (both triangles)."""
    return G[~np.eye(G.shape[0], dtype=bool)]


def min_inner(G: np.ndarray) -> float:
    """Smallest off-diagonal entry ``min_{i != j} G_ij`` (Definition 2.1).

    Args:
        G: Gram matrix, shape ``(n, n)``, ``n >= 2``.

    Returns:
        The minimum; NaN if ``G`` has a NaN off-diagonal entry.

    Raises:
        ValueError: If ``G`` is not square or ``n < 2``.
    """
    return float(np.min(_offdiag(_check_gram(G))))


def eta(G: np.ndarray) -> float:
    """Smallest gradient confusion bound ``eta = max(0, -min_{i != j} G_ij)``.

    Definition 2.1 of the paper: ``{f_i}`` has confusion bound ``eta >= 0`` at
    ``w`` if ``<grad f_i(w), grad f_j(w)> >= -eta`` for all ``i != j``.

    Args:
        G: Gram matrix, shape ``(n, n)``, ``n >= 2``.

    Returns:
        ``eta >= 0``; NaN if ``G`` has a NaN off-diagonal entry.

    Raises:
        ValueError: If ``G`` is not square or ``n < 2``.
    """
    m = min_inner(G)
    # max(0.0, -m) returns +0.0 (not -0.0) when m = 0; NaN must be kept.
    return float("nan") if np.isnan(m) else max(0.0, -m)


def cosine_matrix(G: np.ndarray) -> np.ndarray:
    """Gradient cosines ``G_ij / sqrt(G_ii G_jj)`` (normalized confusion, Section 8).

    Entries with ``G_ii = 0`` or ``G_jj = 0`` (a zero gradient has no
    direction) are NaN, including the diagonal entry ``(i, i)``; every other
    diagonal entry is exactly 1. For a true Gram matrix the cosines lie in
    ``[-1, 1]`` by Cauchy-Schwarz; values are clipped to ``[-1, 1]`` to remove
    the last-bit excess of floating-point rounding.

    Args:
        G: Gram matrix, shape ``(n, n)``, ``n >= 2``, with ``G_ii >= 0``.

    Returns:
        Float64 array of shape ``(n, n)``.

    Raises:
        ValueError: If ``G`` is not square, ``n < 2``, or a diagonal entry is
            negative.
    """
    G = _check_gram(G)
    diag = np.diag(G)
    if np.any(diag < 0):
        i = int(np.flatnonzero(diag < 0)[0])
        raise ValueError(
            f"G must have a non-negative diagonal (squared gradient norms), "
            f"got G[{i}, {i}] = {diag[i]}"
        )
    norms = np.sqrt(diag)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        C = G / np.outer(norms, norms)
    np.fill_diagonal(C, 1.0)
    zero = norms == 0
    C[zero, :] = np.nan
    C[:, zero] = np.nan
    return np.clip(C, -1.0, 1.0)


def min_cosine(G: np.ndarray) -> float:
    """Smallest off-diagonal gradient cosine (normalized confusion, Section 8).

    The normalized bound reads ``G_ij / (||grad f_i|| ||grad f_j||) >= -eta``.
    Pairs involving a zero-norm gradient (NaN in ``cosine_matrix``) are
    ignored.

    Args:
        G: Gram matrix, shape ``(n, n)``, ``n >= 2``, with ``G_ii >= 0``.

    Returns:
        The minimum, in ``[-1, 1]``; NaN if no pair remains or ``G`` is not
        finite.

    Raises:
        ValueError: If ``G`` is not square, ``n < 2``, or a diagonal entry is
            negative.
    """
    G = _check_gram(G)
    C = cosine_matrix(G)
    if not np.all(np.isfinite(G)):
        return float("nan")
    off = _offdiag(C)
    off = off[~np.isnan(off)]
    return float(np.min(off)) if off.size else float("nan")


def offdiag_mean(G: np.ndarray) -> float:
    """Averaged confusion: mean of ``G_ij`` over the ``n (n - 1)`` pairs ``i != j``.

    Section 8's averaged condition. **[reconstructed]** The printed sum runs
    over all ``i, j`` including the diagonal, which makes it always ``>= 0``;
    the off-diagonal mean is the meaningful reading (THEORY.md section 2).

    Args:
        G: Gram matrix, shape ``(n, n)``, ``n >= 2``.

    Returns:
        The mean (the averaged bound is ``max(0, -offdiag_mean(G))``).

    Raises:
        ValueError: If ``G`` is not square or ``n < 2``.
    """
    return float(np.mean(_offdiag(_check_gram(G))))


def negative_pairs(G: np.ndarray) -> int:
    """Number of unordered pairs ``i < j`` with ``G_ij < 0``.

    Reads the upper triangle (``G`` is symmetric); NaN entries compare false
    and are not counted.

    Args:
        G: Gram matrix, shape ``(n, n)``, ``n >= 2``.

    Returns:
        The count, between 0 and ``n (n - 1) / 2``.

    Raises:
        ValueError: If ``G`` is not square or ``n < 2``.
    """
    G = _check_gram(G)
    return int(np.count_nonzero(G[np.triu_indices(G.shape[0], k=1)] < 0))


def minibatch_gram(G: np.ndarray, B: int) -> np.ndarray:
    """Gram matrix of mini-batch mean gradients, from the per-sample Gram.

    Mini-batch ``b`` is the consecutive block of samples ``bB, ..., bB + B - 1``
    and its gradient is the mean ``(1/B) sum_{i in b} grad f_i``; hence (Section
    8, THEORY.md section 2)

        G^B_{ab} = (1 / B^2) sum_{i in a, j in b} G_ij,

    the block sums of ``G`` divided by ``B^2``. No new backward pass is needed.

    Args:
        G: Per-sample Gram matrix, shape ``(n, n)``, ``n >= 2``.
        B: Mini-batch size, an integer >= 1 dividing ``n``.

    Returns:
        Float64 array of shape ``(n // B, n // B)``.

    Raises:
        ValueError: If ``G`` is not square, ``n < 2``, ``B`` is not an integer
            >= 1, or ``B`` does not divide ``n``.
    """
    G = _check_gram(G)
    n = G.shape[0]
    if isinstance(B, bool) or not isinstance(B, int | np.integer) or B < 1:
        raise ValueError(f"B must be an integer >= 1, got {B!r}")
    B = int(B)
    if n % B != 0:
        raise ValueError(
            f"B must divide the number of samples n; got B = {B} and n = {n} "
            f"(n % B = {n % B})"
        )
    m = n // B
    return G.reshape(m, B, m, B).sum(axis=(1, 3)) / B**2
