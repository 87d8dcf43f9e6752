"""Tests of ``theory.forward`` and ``theory.gram`` against a torch autograd oracle.

The oracle shares no code with the implementation: it rebuilds the network
with torch ops from the weight arrays, one sample at a time, takes
``torch.autograd.grad`` of ``f_i`` with respect to every weight matrix,
flattens, and forms the inner products explicitly.
"""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

import theory

ACTIVATION_NAMES = ["relu", "tanh", "sigmoid", "identity"]
LOSS_NAMES = ["square", "logistic"]
GAMMAS = [1.0, 0.37]

# Relative Frobenius error allowed against the oracle. Both sides are float64
# computations of the same sums in a different order, with at most 7 layers
# and 8 samples: rounding error is a small multiple of 1e-16, so 1e-10 leaves
# six orders of margin while any wrong factor (a missing sigma', gamma, or a
# layer left out of the sum) gives an error of order 1.
REL_TOL = 1e-10
# Absolute floor for a Gram matrix that is exactly 0 (all ReLU units dead).
ABS_FLOOR = 1e-300


# --------------------------------------------------------------------------
# Oracle (torch autograd, one sample at a time)
# --------------------------------------------------------------------------
def _torch_activation(name: str, z: torch.Tensor) -> torch.Tensor:
    if name == "relu":
        return torch.relu(z)  # autograd: derivative 0 at z = 0
    if name == "tanh":
        return torch.tanh(z)
    if name == "sigmoid":
        return torch.sigmoid(z)
    assert name == "identity"
    return z


def _torch_loss(name: str, g: torch.Tensor, y: float) -> torch.Tensor:
    if name == "square":
        return 0.5 * (y - g) ** 2
    assert name == "logistic"
    return torch.log1p(torch.exp(-y * g))


def oracle_per_sample_grads(weights, X, y, act, loss, output_activation, gamma):
    """Rows: flattened gradient of f_i with respect to [W_0, ..., W_beta]."""
    rows = []
    for i in range(X.shape[0]):
        Ws = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in weights]
        a = torch.tensor(X[i], dtype=torch.float64)
        for p, W in enumerate(Ws):
            z = W @ a
            last = p == len(Ws) - 1
            a = _torch_activation(act, z) if (not last or output_activation) else z
        g = gamma * a[0]
        f = _torch_loss(loss, g, float(y[i]))
        grads = torch.autograd.grad(f, Ws)
        rows.append(torch.cat([gr.reshape(-1) for gr in grads]).numpy())
    return np.stack(rows)


def oracle_output(weights, X, act, output_activation, gamma):
    out = []
    for i in range(X.shape[0]):
        a = torch.tensor(X[i], dtype=torch.float64)
        for p, W in enumerate(weights):
            z = torch.tensor(W, dtype=torch.float64) @ a
            last = p == len(weights) - 1
            a = _torch_activation(act, z) if (not last or output_activation) else z
        out.append(gamma * float(a[0]))
    return np.array(out)


def explicit_gram(J):
    n = J.shape[0]
    G = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            G[i, j] = float(np.dot(J[i], J[j]))
    return G


def assert_close_rel(G, G_ref):
    err = np.linalg.norm(G - G_ref)
    ref = np.linalg.norm(G_ref)
    assert err <= REL_TOL * ref + ABS_FLOOR, f"relative error {err / ref:.3e}"


# --------------------------------------------------------------------------
# Problem generators
# --------------------------------------------------------------------------
def sphere(rng, n, d):
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def random_weights(rng, d, widths):
    """Gaussian weights N(0, 1/fan_in), output layer (1, l_last).

    With unit-norm inputs the pre-activations are O(1): tanh and sigmoid work
    in their non-linear, non-saturated range, so every sigma' factor matters.
    """
    sizes = [d, *widths, 1]
    return [
        rng.standard_normal((sizes[p + 1], sizes[p])) / np.sqrt(sizes[p])
        for p in range(len(sizes) - 1)
    ]


@st.composite
def problems(draw):
    n = draw(st.integers(2, 8))
    d = draw(st.integers(1, 6))
    n_layers = draw(st.integers(1, 7))  # len(weights); depth beta = n_layers - 1
    widths = draw(
        st.lists(st.integers(1, 7), min_size=n_layers - 1, max_size=n_layers - 1)
    )
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    X = sphere(rng, n, d)
    weights = random_weights(rng, d, widths)
    y = rng.uniform(-1.0, 1.0, n)
    return weights, X, y


COMBOS = list(itertools.product(ACTIVATION_NAMES, LOSS_NAMES, [True, False], GAMMAS))


# --------------------------------------------------------------------------
# Gram versus the oracle
# --------------------------------------------------------------------------
# ReLU kinks: weights and data are continuous random draws, so a pre-activation
# is exactly 0 with probability 0, except when a whole layer is dead (its input
# is the zero vector); then torch and theory.activations.relu use derivative 0 at 0.
@pytest.mark.parametrize(
    ("act", "loss", "output_activation", "gamma"),
    COMBOS,
    ids=[f"{a}-{lo}-out{int(o)}-gamma{g}" for a, lo, o, g in COMBOS],
)
@settings(max_examples=25)
@given(problem=problems())
def test_gram_matches_autograd_oracle(problem, act, loss, output_activation, gamma):
    weights, X, y = problem
    G = theory.gram(
        weights,
        X,
        y,
        activation=act,
        loss=loss,
        output_activation=output_activation,
        gamma=gamma,
    )
    J = oracle_per_sample_grads(weights, X, y, act, loss, output_activation, gamma)
    assert G.shape == (X.shape[0], X.shape[0])
    assert_close_rel(G, explicit_gram(J))


@pytest.mark.parametrize(
    ("act", "loss", "output_activation", "gamma"),
    COMBOS,
    ids=[f"{a}-{lo}-out{int(o)}-gamma{g}" for a, lo, o, g in COMBOS],
)
def test_gram_single_matrix_matches_autograd_oracle(
    act, loss, output_activation, gamma
):
    """len(weights) == 1: a generalized linear model, g = gamma sigma(w^T x)."""
    rng = np.random.default_rng(5)
    X = sphere(rng, 5, 4)
    weights = random_weights(rng, 4, [])
    y = rng.uniform(-1.0, 1.0, 5)
    G = theory.gram(
        weights,
        X,
        y,
        activation=act,
        loss=loss,
        output_activation=output_activation,
        gamma=gamma,
    )
    J = oracle_per_sample_grads(weights, X, y, act, loss, output_activation, gamma)
    assert_close_rel(G, explicit_gram(J))


@pytest.mark.parametrize(
    ("act", "loss"), list(itertools.product(ACTIVATION_NAMES, LOSS_NAMES))
)
def test_gram_oracle_fixed_deep_case_is_nonzero(act, loss):
    """A fixed deep, wide case where the Gram matrix is far from 0 (sensitivity)."""
    rng = np.random.default_rng(20200713)
    X = sphere(rng, 6, 5)
    weights = random_weights(rng, 5, [7, 6, 7, 5, 6])
    y = rng.uniform(-1.0, 1.0, 6)
    G = theory.gram(weights, X, y, activation=act, loss=loss, gamma=0.37)
    J = oracle_per_sample_grads(weights, X, y, act, loss, True, 0.37)
    G_ref = explicit_gram(J)
    assert np.linalg.norm(G_ref) > 1e-6
    assert_close_rel(G, G_ref)


@pytest.mark.parametrize("act", ACTIVATION_NAMES)
@settings(max_examples=15)
@given(problem=problems(), output_activation=st.booleans())
def test_forward_matches_torch(problem, act, output_activation):
    weights, X, _ = problem
    g = theory.forward(
        weights, X, activation=act, output_activation=output_activation, gamma=0.37
    )
    g_ref = oracle_output(weights, X, act, output_activation, 0.37)
    assert g.shape == (X.shape[0],)
    # Same float64 operations in a different order: rounding only.
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-15)


@settings(max_examples=40)
@given(
    problem=problems(),
    act=st.sampled_from(ACTIVATION_NAMES),
    loss=st.sampled_from(LOSS_NAMES),
)
def test_gram_symmetric_psd(problem, act, loss):
    weights, X, y = problem
    G = theory.gram(weights, X, y, activation=act, loss=loss)
    scale = np.max(np.abs(G))
    # Rounding of a sum of at most 14 float64 products: 1e-13 relative.
    np.testing.assert_allclose(G, G.T, rtol=0, atol=1e-13 * scale)
    eigenvalues = np.linalg.eigvalsh((G + G.T) / 2)
    assert eigenvalues.min() >= -1e-12 * max(eigenvalues.max(), 0.0)


@settings(max_examples=30)
@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 4),
    m=st.integers(1, 4),
    d=st.integers(1, 5),
    widths=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    act=st.sampled_from(ACTIVATION_NAMES),
    loss=st.sampled_from(LOSS_NAMES),
)
def test_minibatch_gram_matches_averaged_gradients(seed, B, m, d, widths, act, loss):
    n = B * m
    assume(n >= 2)
    rng = np.random.default_rng(seed)
    X = sphere(rng, n, d)
    weights = random_weights(rng, d, widths)
    y = rng.uniform(-1.0, 1.0, n)
    G = theory.gram(weights, X, y, activation=act, loss=loss)
    J = oracle_per_sample_grads(weights, X, y, act, loss, True, 1.0)
    batch_means = J.reshape(n // B, B, J.shape[1]).mean(axis=1)
    assert_close_rel(theory.minibatch_gram(G, B), explicit_gram(batch_means))


# --------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------
@settings(max_examples=30)
@given(
    d=st.integers(2, 12),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_logistic_regression_orthogonal_data_has_no_confusion(d, seed, data):
    """Section 2 of the paper: orthogonal data gives zero confusion."""
    n = data.draw(st.integers(2, d))
    rng = np.random.default_rng(seed)
    X = ortho_group.rvs(d, random_state=rng)[:n]
    w = rng.standard_normal((1, d))
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    G = theory.gram(
        [w], X, y, activation="identity", loss="logistic", output_activation=False
    )
    off = G[~np.eye(n, dtype=bool)]
    # |G_ij| = |l'_i l'_j <x_i, x_j>| <= |<x_i, x_j>|, which is rounding (~1e-16)
    # for rows of an orthogonal matrix.
    assert np.max(np.abs(off)) <= 1e-15
    assert theory.eta(G) <= 1e-15
    # Diagonal: ||grad f_i||^2 = l'(g_i, y_i)^2 ||x_i||^2 = (y_i / (1 + e^{y_i g_i}))^2.
    g = X @ w[0]
    np.testing.assert_allclose(np.diag(G), (y / (1.0 + np.exp(y * g))) ** 2, rtol=1e-12)


@settings(max_examples=30)
@given(
    n_layers=st.integers(1, 8),
    d=st.integers(1, 8),
    n=st.integers(2, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_orthogonal_linear_network_closed_form(n_layers, d, n, seed):
    """THEORY.md section 6: with Haar layers, G = 1/2 (r r^T) o (X X^T).

    ``n_layers`` matrices W_1..W_beta of the paper (here weights[0..]), the
    first n_layers - 1 Haar d x d, the last a unit row; gamma = 1/sqrt(2 beta)
    with beta = n_layers, so each of the n_layers layers contributes
    gamma^2 r_i r_j <x_i, x_j>.
    """
    rng = np.random.default_rng(seed)
    X = sphere(rng, n, d)
    orth = [
        ortho_group.rvs(d, random_state=rng) if d > 1 else np.array([[1.0]])
        for _ in range(n_layers - 1)
    ]
    v = rng.standard_normal(d)
    weights = [*orth, (v / np.linalg.norm(v))[None, :]]
    gamma = 1.0 / np.sqrt(2 * n_layers)
    y = rng.uniform(-1.0, 1.0, n)
    G = theory.gram(
        weights,
        X,
        y,
        activation="identity",
        loss="square",
        output_activation=False,
        gamma=gamma,
    )
    r = (
        theory.forward(
            weights, X, activation="identity", output_activation=False, gamma=gamma
        )
        - y
    )
    expected = 0.5 * np.outer(r, r) * (X @ X.T)
    np.testing.assert_allclose(
        G, expected, rtol=0, atol=1e-13 * np.max(np.abs(expected))
    )


def test_gram_overflow_is_returned_not_raised():
    """Deep ReLU nets with huge weights overflow: non-finite G, no exception."""
    rng = np.random.default_rng(0)
    X = np.abs(sphere(rng, 3, 4))  # positive rows: every ReLU unit is active
    weights = [np.full((4, 4), 1e200), np.full((4, 4), 1e200), np.full((1, 4), 1.0)]
    with np.errstate(all="raise"):
        G = theory.gram(weights, X, np.zeros(3), activation="relu", loss="square")
    assert not np.all(np.isfinite(G))


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------
def _valid():
    rng = np.random.default_rng(1)
    X = sphere(rng, 4, 3)
    weights = random_weights(rng, 3, [5, 6])
    return weights, X, rng.uniform(-1, 1, 4)


def _gram(weights, X, y, **kwargs):
    kwargs = {"activation": "tanh", "loss": "square", **kwargs}
    return theory.gram(weights, X, y, **kwargs)


def test_shape_mismatch_names_the_layer():
    weights, X, y = _valid()
    weights[2] = np.ones((1, 7))
    with pytest.raises(
        ValueError,
        match=r"weights\[2\] has shape \(1, 7\) but layer 1 has 6 outputs; "
        r"expected \(1, 6\)",
    ):
        _gram(weights, X, y)
    weights, X, y = _valid()
    with pytest.raises(ValueError, match=r"weights\[0\].*X has d = 2 columns"):
        _gram(weights, X[:, :2], y)
    weights, X, y = _valid()
    weights.append(np.ones((1, 1)))
    weights[2] = np.ones((2, 6))
    weights[3] = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"weights\[3\].*output.*expected \(1, 2\)"):
        _gram(weights, X, y)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda w, X, y: (w, np.ones((4, 0)), y), r"X must have d >= 1"),
        (lambda w, X, y: (w, X[:1], y[:1]), r"X must have n >= 2"),
        (lambda w, X, y: (w, X[0], y), r"X must be a 2-D array"),
        (lambda w, X, y: (w, np.where(X > 0.5, np.nan, X), y), r"X must be finite"),
        (
            lambda w, X, y: ([w[0], w[1] * np.inf, w[2]], X, y),
            r"weights\[1\] must be finite",
        ),
        (lambda w, X, y: ([], X, y), r"weights must contain at least one"),
        (lambda w, X, y: (w[0], X, y), r"weights must be a list"),
        (lambda w, X, y: ([w[0][0], *w[1:]], X, y), r"weights\[0\] must be a 2-D"),
        (lambda w, X, y: (w, X, y[:3]), r"y must have shape \(n,\) = \(4,\)"),
        (lambda w, X, y: (w, X, y * np.inf), r"y must be finite"),
        (lambda w, X, y: (w, X, y + 3.0), r"\|y_i\| <= label_bound = 1.0"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(mutate, pattern):
    weights, X, y = mutate(*_valid())
    with pytest.raises(ValueError, match=pattern):
        _gram(weights, X, y)


def test_label_bound_option():
    weights, X, y = _valid()
    _gram(weights, X, 3.0 * y, label_bound=None)
    _gram(weights, X, 3.0 * y, label_bound=3.0)
    with pytest.raises(ValueError, match="label_bound must be None or a finite"):
        _gram(weights, X, y, label_bound=-1.0)


@pytest.mark.parametrize("gamma", [0.0, -1.0, np.inf, np.nan, True, "1"])
def test_bad_gamma(gamma):
    weights, X, y = _valid()
    with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
        _gram(weights, X, y, gamma=gamma)
    with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
        theory.forward(weights, X, activation="tanh", gamma=gamma)


def test_unknown_activation_or_loss():
    weights, X, y = _valid()
    with pytest.raises(
        ValueError,
        match=r"activation must be one of "
        r"\['identity', 'relu', 'sigmoid', 'tanh'\].*'softsign'",
    ):
        _gram(weights, X, y, activation="softsign")
    with pytest.raises(
        ValueError, match=r"loss must be one of \['logistic', 'square'\].*'hinge'"
    ):
        _gram(weights, X, y, loss="hinge")


def test_forward_accepts_single_sample():
    weights, X, _ = _valid()
    g = theory.forward(weights, X[:1], activation="tanh")
    assert g.shape == (1,)
