"""Tests of the confusion statistics: hand-built Gram matrices and properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import theory

# A hand-built 3 x 3 Gram matrix (of the vectors below) with one negative pair.
#   u_0 = (1, 1, 0), u_1 = (-1, 0, 1), u_2 = (0, 1, 0)
U = np.array([[1.0, 1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
G3 = U @ U.T  # [[2, -1, 1], [-1, 2, 0], [1, 0, 1]]


def test_hand_built_statistics():
    np.testing.assert_array_equal(G3, [[2, -1, 1], [-1, 2, 0], [1, 0, 1]])
    assert theory.confusion.min_inner(G3) == -1.0
    assert theory.eta(G3) == 1.0
    assert theory.confusion.negative_pairs(G3) == 1
    # Off-diagonal entries: -1, 1, 0 (each twice): mean 0.
    assert theory.offdiag_mean(G3) == 0.0
    C = theory.confusion.cosine_matrix(G3)
    expected = np.array(
        [
            [1.0, -0.5, 1 / np.sqrt(2)],
            [-0.5, 1.0, 0.0],
            [1 / np.sqrt(2), 0.0, 1.0],
        ]
    )
    np.testing.assert_allclose(C, expected, rtol=1e-15, atol=0)
    assert theory.min_cosine(G3) == pytest.approx(-0.5, rel=1e-15)


def test_no_negative_pair_means_zero_eta():
    G = np.array([[1.0, 0.5], [0.5, 3.0]])
    assert theory.eta(G) == 0.0
    # A zero inner product gives eta = +0.0, not -0.0.
    assert not np.signbit(theory.eta(np.eye(3)))
    assert theory.confusion.min_inner(G) == 0.5
    assert theory.confusion.negative_pairs(G) == 0
    assert theory.offdiag_mean(G) == 0.5


def test_zero_gradient_gives_nan_cosines_and_is_ignored_by_min_cosine():
    # u_0 = 0, u_1 = (1, 0), u_2 = (-1, 1)
    V = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 1.0]])
    G = V @ V.T
    C = theory.confusion.cosine_matrix(G)
    assert np.all(np.isnan(C[0, :])) and np.all(np.isnan(C[:, 0]))
    assert C[1, 1] == 1.0 and C[2, 2] == 1.0
    assert C[1, 2] == pytest.approx(-1 / np.sqrt(2), rel=1e-15)
    assert theory.min_cosine(G) == pytest.approx(-1 / np.sqrt(2), rel=1e-15)
    # Only one non-zero gradient: no pair remains.
    assert np.isnan(theory.min_cosine(np.diag([0.0, 0.0, 4.0])))
    # Not a Gram matrix (G_00 = 0 but G_01 != 0): still NaN, never +-inf or a
    # clipped +-1.
    C = theory.confusion.cosine_matrix(np.array([[0.0, -1.0], [2.0, 1.0]]))
    assert np.all(np.isnan(C[0, :])) and np.all(np.isnan(C[:, 0]))
    assert C[1, 1] == 1.0


def test_non_finite_gram_propagates_nan():
    G = G3.copy()
    G[0, 1] = G[1, 0] = np.nan
    assert np.isnan(theory.eta(G))
    assert np.isnan(theory.confusion.min_inner(G))
    assert np.isnan(theory.offdiag_mean(G))
    assert np.isnan(theory.min_cosine(G))
    G = G3.copy()
    G[2, 2] = np.inf
    assert np.isnan(theory.min_cosine(G))


def test_minibatch_gram_hand_built():
    G = np.arange(16.0).reshape(4, 4)
    # Blocks {0, 1}, {2, 3}: sums 0+1+4+5 = 10, 2+3+6+7 = 18, 8+9+12+13 = 42,
    # 10+11+14+15 = 50, each divided by B^2 = 4.
    np.testing.assert_array_equal(
        theory.minibatch_gram(G, 2), [[2.5, 4.5], [10.5, 12.5]]
    )
    np.testing.assert_array_equal(theory.minibatch_gram(G, 1), G)
    np.testing.assert_array_equal(theory.minibatch_gram(G, 4), [[G.sum() / 16]])


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------
# Small integers and halves make exact ties and zeros (the boundary of eta = 0)
# common, not just generic floats.
entries = st.integers(-6, 6).map(lambda k: k / 2)


@st.composite
def symmetric_matrices(draw):
    n = draw(st.integers(2, 9))
    M = draw(arrays(np.float64, (n, n), elements=entries))
    return (M + M.T) / 2  # exactly symmetric: addition is commutative


@st.composite
def gram_matrices(draw):
    n = draw(st.integers(2, 9))
    k = draw(st.integers(1, 5))
    J = draw(arrays(np.float64, (n, k), elements=entries))
    return J @ J.T


@given(G=symmetric_matrices())
def test_eta_properties(G):
    n = G.shape[0]
    e = theory.eta(G)
    assert e >= 0
    off = [G[i, j] for i in range(n) for j in range(n) if i != j]
    assert (e == 0) == all(v >= 0 for v in off)
    assert e == max(0.0, -min(off))
    assert theory.confusion.min_inner(G) == min(off)
    assert theory.offdiag_mean(G) == pytest.approx(sum(off) / len(off), abs=1e-12)


@given(G=symmetric_matrices())
def test_negative_pairs_matches_brute_force(G):
    n = G.shape[0]
    count = 0
    for i in range(n):
        for j in range(i + 1, n):
            if G[i, j] < 0:
                count += 1
    assert theory.confusion.negative_pairs(G) == count


@given(G=gram_matrices())
def test_cosine_properties(G):
    C = theory.confusion.cosine_matrix(G)
    m = theory.min_cosine(G)
    assert np.array_equal(C, C.T, equal_nan=True)
    finite = C[~np.isnan(C)]
    assert np.all((finite >= -1) & (finite <= 1))
    nonzero = np.diag(G) > 0
    if nonzero.sum() >= 2:
        assert -1 <= m <= 1
        # Brute force over pairs of non-zero gradients.
        idx = np.flatnonzero(nonzero)
        brute = min(
            G[i, j] / np.sqrt(G[i, i] * G[j, j]) for i in idx for j in idx if i != j
        )
        assert m == pytest.approx(brute, abs=1e-15)
    else:
        assert np.isnan(m)


@st.composite
def batched_gradients(draw):
    B = draw(st.integers(1, 4))
    m = draw(st.integers(2 if B == 1 else 1, 4))
    J = draw(arrays(np.float64, (B * m, 3), elements=st.floats(-2, 2)))
    return B, J


@settings(max_examples=30)
@given(batch=batched_gradients())
def test_minibatch_gram_is_gram_of_batch_means(batch):
    B, J = batch
    G = J @ J.T
    means = J.reshape(J.shape[0] // B, B, -1).mean(axis=1)
    expected = means @ means.T
    # Both sides are sums of at most 16 products of numbers <= 4 in magnitude:
    # rounding is below 1e-13 * max(|G|, 1).
    scale = max(np.max(np.abs(G)), 1.0)
    np.testing.assert_allclose(
        theory.minibatch_gram(G, B), expected, rtol=0, atol=1e-13 * scale
    )


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fn",
    [
        theory.eta,
        theory.confusion.min_inner,
        theory.confusion.cosine_matrix,
        theory.min_cosine,
        theory.offdiag_mean,
        theory.confusion.negative_pairs,
        lambda G: theory.minibatch_gram(G, 1),
    ],
)
@pytest.mark.parametrize(
    ("G", "pattern"),
    [
        (np.ones((2, 3)), r"G must be a square \(n, n\) matrix, got shape \(2, 3\)"),
        (np.ones(4), r"G must be a square"),
        (np.ones((1, 1)), r"n >= 2, got shape \(1, 1\)"),
    ],
)
def test_bad_gram_raises(fn, G, pattern):
    with pytest.raises(ValueError, match=pattern):
        fn(G)


def test_negative_diagonal_rejected_by_cosine():
    with pytest.raises(ValueError, match=r"non-negative diagonal.*G\[1, 1\] = -1"):
        theory.confusion.cosine_matrix(np.array([[1.0, 0.0], [0.0, -1.0]]))


@pytest.mark.parametrize("B", [0, -2, 1.0, 2.5, True])
def test_minibatch_bad_B(B):
    with pytest.raises(ValueError, match=r"B must be an integer >= 1"):
        theory.minibatch_gram(np.eye(4), B)


def test_minibatch_B_must_divide_n():
    with pytest.raises(ValueError, match=r"B must divide.*B = 4 and n = 6"):
        theory.minibatch_gram(np.eye(6), 4)
