"""Tests of the differentiable Gram matrix and the confusion objectives in torch.

``theory._torch_gram.gram_torch`` is checked three ways:

- its values against ``theory.gram`` (numpy) and a closed form;
- its gradient with respect to the weights and the data against torch autograd
  through *naive per-sample gradients* (the oracle below: one sample at a
  time, ``torch.autograd.grad(..., create_graph=True)``, explicit inner
  products; it shares no code with the implementation);
- the same gradient against central finite differences, with a tolerance that
  the differences themselves estimate (Richardson).

Notation as in the module: ``n`` samples, ``d`` input dimension, ``m`` draws
in a batch, ``p`` a layer, ``beta`` the depth.
"""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from theory._torch_gram import (
    failure_surrogate,
    gram_torch,
    min_offdiag,
    soft_min_offdiag,
)

ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
SMOOTH = ("tanh", "sigmoid", "identity")
LOSSES = ("square", "logistic")
EPS = np.finfo(np.float64).eps
F64 = torch.float64

# gram_torch against theory.gram: the same formula in float64, evaluated in
# the same order except inside BLAS dot products (length <= 7 here). With
# weights N(0, 1/fan_in) and unit inputs nothing is amplified: each entry
# carries a few eps per operation over <= 2 * 4 layers, < 1e-14 of the scale;
# 1e-12 is the agreement the search relies on, and any wrong factor (a missing
# sigma', gamma or layer) gives an error of order 1.
REL_TOL_NUMPY = 1e-12

# Gradients against the autograd oracle: two float64 evaluations of the same
# derivative in different orders. Each entry sums at most ~10^3 products
# (P <= 120 weights, n <= 4 samples, double back-propagation), so rounding is
# below 10^3 eps = 2.2e-13 of the scale of the terms; 1e-10 leaves a factor of
# ~500 for cancellation, while a wrong derivative is off by order 1.
REL_TOL_GRAD = 1e-10


# --------------------------------------------------------------------------
# Oracle: per-sample gradients, one sample at a time (shares no code)
# --------------------------------------------------------------------------
def _act(name, z):
    if name == "relu":
        return torch.relu(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "sigmoid":
        return torch.sigmoid(z)
    return z


def oracle_gram(Ws, X, y, act, loss, output_activation, gamma):
    """``J J^T`` from per-sample gradients; differentiable (``create_graph``)."""
    rows = []
    for i in range(X.shape[0]):
        a = X[i]
        for p, W in enumerate(Ws):
            z = W @ a
            a = _act(act, z) if (p < len(Ws) - 1 or output_activation) else z
        g = gamma * a[0]
        if loss == "square":
            f = 0.5 * (g - y[i]) ** 2
        else:
            f = torch.nn.functional.softplus(-y[i] * g)
        grads = torch.autograd.grad(f, Ws, create_graph=True)
        rows.append(torch.cat([gr.reshape(-1) for gr in grads]))
    J = torch.stack(rows)
    return J @ J.T


# --------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------
def weights_of(rng, d, widths, batch=()):
    sizes = [d, *widths, 1]
    return [
        rng.standard_normal((*batch, sizes[p + 1], sizes[p])) / np.sqrt(sizes[p])
        for p in range(len(sizes) - 1)
    ]


def sphere(rng, shape):
    X = rng.standard_normal(shape)
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


def labels(rng, loss, shape):
    return (
        rng.choice([-1.0, 1.0], shape)
        if loss == "logistic"
        else rng.uniform(-1, 1, shape)
    )


def t(a, grad=False):
    return torch.tensor(a, dtype=F64, requires_grad=grad)


@st.composite
def nets(draw):
    n = draw(st.integers(2, 6))
    d = draw(st.integers(1, 5))
    widths = draw(st.lists(st.integers(1, 6), min_size=0, max_size=3))
    act = draw(st.sampled_from(ACTIVATIONS))
    loss = draw(st.sampled_from(LOSSES))
    output_activation = draw(st.booleans())
    gamma = draw(st.sampled_from([1.0, 0.37]))
    seed = draw(st.integers(0, 2**32 - 1))
    return n, d, widths, act, loss, output_activation, gamma, seed


def kw(act, loss, output_activation, gamma):
    return dict(
        activation=act, loss=loss, output_activation=output_activation, gamma=gamma
    )


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------
@settings(max_examples=60)
@given(net=nets())
def test_gram_torch_equals_numpy_gram(net):
    n, d, widths, act, loss, oa, gamma, seed = net
    rng = np.random.default_rng(seed)
    Ws, X, y = weights_of(rng, d, widths), sphere(rng, (n, d)), labels(rng, loss, n)
    ref = theory.gram(Ws, X, y, **kw(act, loss, oa, gamma))
    G = gram_torch([t(W) for W in Ws], t(X), t(y), **kw(act, loss, oa, gamma))
    assert G.dtype == F64 and G.shape == (n, n)
    err = np.linalg.norm(G.numpy() - ref)
    assert err <= REL_TOL_NUMPY * np.linalg.norm(ref) + 1e-300, err
    # symmetric by construction, bit for bit
    assert torch.equal(G, G.T)


@settings(max_examples=30)
@given(net=nets(), m=st.integers(1, 4))
def test_batched_gram_equals_one_draw_at_a_time(net, m):
    """Batches of data, of weights, and both (broadcast) give the per-draw G."""
    n, d, widths, act, loss, oa, gamma, seed = net
    rng = np.random.default_rng(seed)
    k = kw(act, loss, oa, gamma)
    Xb, yb = sphere(rng, (m, n, d)), labels(rng, loss, (m, n))
    Wb = weights_of(rng, d, widths, batch=(2, 1))  # [R = 2, 1, ...] restarts
    G = gram_torch([t(W) for W in Wb], t(Xb), t(yb), **k)
    assert G.shape == (2, m, n, n)
    assert torch.equal(G, G.mT)
    for r, b in itertools.product(range(2), range(m)):
        one = gram_torch([t(W[r, 0]) for W in Wb], t(Xb[b]), t(yb[b]), **k)
        ref = np.linalg.norm(one.numpy())
        assert np.linalg.norm((G[r, b] - one).numpy()) <= REL_TOL_NUMPY * ref + 1e-300


@settings(max_examples=30)
@given(net=nets())
def test_gram_is_equivariant_under_permutations_of_the_samples(net):
    """Relabelling the samples permutes rows and columns of G: G(PX) = P G P^T."""
    n, d, widths, act, loss, oa, gamma, seed = net
    rng = np.random.default_rng(seed)
    Ws, X, y = weights_of(rng, d, widths), sphere(rng, (n, d)), labels(rng, loss, n)
    perm = rng.permutation(n)
    k = kw(act, loss, oa, gamma)
    G = gram_torch([t(W) for W in Ws], t(X), t(y), **k).numpy()
    Gp = gram_torch([t(W) for W in Ws], t(X[perm]), t(y[perm]), **k).numpy()
    ref = np.linalg.norm(G)
    assert np.linalg.norm(Gp - G[np.ix_(perm, perm)]) <= REL_TOL_NUMPY * ref + 1e-300


@settings(max_examples=40)
@given(
    n=st.integers(2, 6),
    d=st.integers(1, 5),
    gamma=st.floats(0.1, 2.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_linear_model_closed_form(n, d, gamma, seed):
    """g(x) = gamma w^T x, square loss: grad_w f_i = gamma r_i x_i, r = g - y, so
    G_ij = gamma^2 r_i r_j <x_i, x_j>."""
    rng = np.random.default_rng(seed)
    w, X, y = rng.standard_normal((1, d)), sphere(rng, (n, d)), rng.uniform(-1, 1, n)
    G = gram_torch([t(w)], t(X), t(y), **kw("identity", "square", False, gamma)).numpy()
    r = gamma * X @ w[0] - y
    ref = gamma**2 * np.outer(r, r) * (X @ X.T)
    # a handful of roundings per entry, relative to |r_i r_j| |x_i| |x_j|
    scale = gamma**2 * np.outer(np.abs(r), np.abs(r))
    assert np.all(np.abs(G - ref) <= 16 * (d + 2) * EPS * scale + 1e-300)


# --------------------------------------------------------------------------
# Objectives
# --------------------------------------------------------------------------
@settings(max_examples=60)
@given(
    n=st.integers(2, 7),
    m=st.integers(1, 3),
    temperature=st.floats(1e-3, 10.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_soft_min_brackets_the_minimum(n, m, temperature, seed):
    """min - t log K <= softmin_t <= min, K = n (n - 1) / 2, and both equal
    theory.confusion.min_inner; for n = 2 the soft minimum is G_01 itself."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n, n + 1))
    G = t(A @ A.transpose(0, 2, 1))
    hard = min_offdiag(G)
    soft = soft_min_offdiag(G, temperature)
    K = n * (n - 1) // 2
    # log-sum-exp in float64: a few eps of the largest |G_ij / t|, times t
    slack = 8 * EPS * (G.abs().amax(dim=(-2, -1)) + temperature * math.log(K + 1))
    assert torch.all(soft <= hard + slack)
    assert torch.all(soft >= hard - temperature * math.log(K) - slack)
    for b in range(m):
        assert hard[b].item() == theory.confusion.min_inner(G[b].numpy())
    if n == 2:
        assert torch.allclose(soft, G[:, 0, 1], rtol=4 * EPS, atol=0)


def test_soft_min_tends_to_the_minimum_as_the_temperature_vanishes():
    G = t([[2.0, -0.5, 0.3], [-0.5, 1.0, -0.2], [0.3, -0.2, 3.0]])
    for temperature in (1e-2, 1e-3, 1e-4):
        gap = (min_offdiag(G) - soft_min_offdiag(G, temperature)).item()
        # the next-smallest pair is 0.3 above the minimum: its weight is
        # exp(-0.3 / t), so the gap is t log(1 + 2 exp(-0.3/t) ...) <= t log 3
        assert 0 <= gap <= temperature * math.log(3)
    assert gap < 1e-12


@settings(max_examples=60)
@given(
    m=st.integers(1, 20),
    eta=st.floats(-1.0, 1.0),
    tau=st.floats(1e-3, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_failure_surrogate_is_a_smoothed_failure_fraction(m, eta, tau, seed):
    """In [0, 1], decreasing in eta, and -> #{s_b < -eta} / m as tau -> 0."""
    rng = np.random.default_rng(seed)
    s = t(rng.standard_normal(m))
    p = failure_surrogate(s, eta, tau).item()
    assert 0.0 <= p <= 1.0
    assert failure_surrogate(s, eta + 0.1, tau).item() <= p
    # At tau' = margin / 40 each term is within sigmoid(-40) < exp(-40) of its
    # indicator; the mean of m float64 terms adds a few eps.
    margin = np.min(np.abs(s.numpy() + eta))
    frac = float(np.mean(s.numpy() < -eta))
    if margin > 0:
        close = failure_surrogate(s, eta, margin / 40).item()
        assert abs(close - frac) <= math.exp(-40) + 4 * EPS


def test_objectives_reject_bad_arguments():
    G = torch.eye(3, dtype=F64)
    with pytest.raises(ValueError, match="G must be a batch of square"):
        min_offdiag(torch.ones(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="n >= 2"):
        min_offdiag(torch.ones(1, 1, dtype=F64))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        soft_min_offdiag(G, 0.0)
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        soft_min_offdiag(G, torch.tensor(-1.0, dtype=F64))
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        failure_surrogate(torch.zeros(3, dtype=F64), 0.1, float("inf"))
    with pytest.raises(ValueError, match="eta must be a finite number"):
        failure_surrogate(torch.zeros(3, dtype=F64), float("nan"), 0.1)
    with pytest.raises(ValueError, match="m >= 1 draws"):
        failure_surrogate(torch.zeros(2, 0, dtype=F64), 0.1, 0.1)
    with pytest.raises(ValueError, match="G must be a torch.Tensor"):
        min_offdiag(np.eye(3))


def test_gram_torch_rejects_bad_arguments():
    W = [torch.ones(3, 2, dtype=F64), torch.ones(1, 3, dtype=F64)]
    X, y = torch.ones(4, 2, dtype=F64), torch.zeros(4, dtype=F64)
    k = dict(activation="tanh", loss="square")
    with pytest.raises(ValueError, match="activation must be one of"):
        gram_torch(W, X, y, activation="softplus", loss="square")
    custom = theory.activations.Activation("mine", np.tanh, np.tanh, np.tanh)
    with pytest.raises(ValueError, match="custom Activation 'mine'"):
        gram_torch(W, X, y, activation=custom, loss="square")
    with pytest.raises(ValueError, match="loss must be one of"):
        gram_torch(W, X, y, activation="tanh", loss="hinge")
    with pytest.raises(ValueError, match="X must be a torch.Tensor"):
        gram_torch(W, X.numpy(), y, **k)
    with pytest.raises(ValueError, match="X must have a floating dtype"):
        gram_torch(W, X.long(), y, **k)
    with pytest.raises(ValueError, match="n >= 2 rows"):
        gram_torch(W, X[:1], y[:1], **k)
    with pytest.raises(ValueError, match=r"y must have shape \[..., n\] with n = 4"):
        gram_torch(W, X, y[:3], **k)
    with pytest.raises(ValueError, match=r"weights\[1\] has shape \(1, 4\)"):
        gram_torch([W[0], torch.ones(1, 4, dtype=F64)], X, y, **k)
    with pytest.raises(ValueError, match="output layer"):
        gram_torch([W[0]], X, y, **k)
    with pytest.raises(ValueError, match="wrap a single matrix W as"):
        gram_torch(W[0], X, y, **k)
    with pytest.raises(ValueError, match="dtype and device of X"):
        gram_torch([W[0].float(), W[1]], X, y, **k)
    with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
        gram_torch(W, X, y, gamma=0.0, **k)
    with pytest.raises(ValueError, match="must broadcast"):
        gram_torch(W, X.expand(3, 4, 2), y.expand(2, 4), **k)


def test_every_tensor_lives_on_the_inputs_device():
    """On the ``meta`` device (shapes only) any tensor created elsewhere, e.g. a
    CPU constant, would make torch raise: the code runs unchanged on CUDA."""
    meta = dict(dtype=F64, device="meta")
    Ws = [torch.empty(2, 1, 4, 3, **meta), torch.empty(1, 1, 4, **meta)]
    X, y = torch.empty(7, 6, 3, **meta), torch.empty(7, 6, **meta)
    for act, loss, oa in itertools.product(ACTIVATIONS, LOSSES, (True, False)):
        G = gram_torch(Ws, X, y, **kw(act, loss, oa, 0.5))
        assert G.device.type == "meta" and G.shape == (2, 7, 6, 6)
        s = soft_min_offdiag(G, 0.1)
        assert min_offdiag(G).shape == s.shape == (2, 7)
        assert failure_surrogate(s, 0.2, 0.3).shape == (2,)


def test_import_theory_does_not_load_the_torch_gram_module():
    code = "import sys, theory; print('theory._torch_gram' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------
# Gradients: autograd oracle
# --------------------------------------------------------------------------
GRAD_CASES = [
    dict(act=a, loss=lo, oa=oa, batched=b)
    for a, lo, oa, b in itertools.product(ACTIVATIONS, LOSSES, (True, False), (0, 2))
]


def _case_id(c):
    return f"{c['act']}-{c['loss']}-out{int(c['oa'])}-batch{c['batched']}"


def _problem(case, seed=0, n=4, d=3, widths=(4, 3)):
    """Weights, data ``[m, n, d]`` (or ``[n, d]``) and a teacher ``v``: the labels
    are ``tanh(X v)`` (square loss) or ``+-1`` (logistic), so the gradient with
    respect to ``X`` also flows through the labels."""
    rng = np.random.default_rng(seed)
    shape = (case["batched"], n, d) if case["batched"] else (n, d)
    Ws = [t(W, grad=True) for W in weights_of(rng, d, list(widths))]
    X = t(0.9 * sphere(rng, shape), grad=True)
    v = t(sphere(rng, d))
    signs = t(rng.choice([-1.0, 1.0], shape[:-1]))
    V = t(rng.standard_normal(shape[:-1] + (n,)))
    V = V + V.mT  # a symmetric test direction for <V, G>

    def y_of(X):
        return signs if case["loss"] == "logistic" else torch.tanh(X @ v)

    return Ws, X, y_of, V


def _draws(X):
    return [X] if X.dim() == 2 else list(X)


@pytest.mark.parametrize("case", GRAD_CASES, ids=_case_id)
def test_gradient_matches_autograd_through_per_sample_gradients(case):
    """d<V, G>/dW and d<V, G>/dX (labels following X) against the oracle."""
    Ws, X, y_of, V = _problem(case)
    k = kw(case["act"], case["loss"], case["oa"], 0.8)
    phi = (V * gram_torch(Ws, X, y_of(X), **k)).sum()
    got = torch.autograd.grad(phi, [*Ws, X])
    phi_ref = 0
    Vs = _draws(V)
    for b, Xb in enumerate(_draws(X)):
        yb = y_of(X)[b] if X.dim() == 3 else y_of(X)
        G = oracle_gram(Ws, Xb, yb, case["act"], case["loss"], case["oa"], 0.8)
        phi_ref = phi_ref + (Vs[b] * G).sum()
    ref = torch.autograd.grad(phi_ref, [*Ws, X])
    assert abs(phi.item() - phi_ref.item()) <= REL_TOL_GRAD * abs(phi_ref.item())
    for name, g, r in zip(
        [*(f"W{p}" for p in range(len(Ws))), "X"], got, ref, strict=True
    ):
        scale = r.abs().max().item()
        assert scale > 0, name  # the check is not vacuous
        assert (g - r).abs().max().item() <= REL_TOL_GRAD * scale, name


# --------------------------------------------------------------------------
# Gradients: central finite differences
# --------------------------------------------------------------------------
def _fd_check(f, params, seed):
    """Directional derivative of the scalar ``f(params)`` along a random direction.

    ``D(h) = (f(x + h u) - f(x - h u)) / (2h) = f'u + h^2 f''' / 6 + O(h^4)``,
    so ``|D(h) - D(h/2)|`` is three times the truncation error of ``D(h/2)``
    (Richardson) up to ``O(h^4)``; rounding adds at most ``2 e_f / h``, with
    ``e_f`` the rounding of one evaluation, below ``10^3 eps`` times the sum
    of the magnitudes ``S`` of the terms (estimated by ``|f| + 1``). The
    analytic derivative must lie within ``|D(h) - D(h/2)| + 4 e_f / h`` of
    ``D(h/2)``: ``h = 1e-3`` makes that ``~1e-7``, a wrong gradient is off by
    order 1.
    """
    rng = np.random.default_rng(seed)
    value = f(params)
    grads = torch.autograd.grad(value, params)
    direction = [t(rng.standard_normal(p.shape)) for p in params]
    analytic = sum((g * u).sum() for g, u in zip(grads, direction, strict=True)).item()

    def D(h):
        with torch.no_grad():
            plus = f([p + h * u for p, u in zip(params, direction, strict=True)])
            minus = f([p - h * u for p, u in zip(params, direction, strict=True)])
        return (plus - minus).item() / (2 * h)

    h = 1e-3
    d1, d2 = D(h), D(h / 2)
    rounding = 1e3 * EPS * (abs(value.item()) + 1.0)
    assert abs(analytic) > 0
    assert abs(analytic - d2) <= abs(d1 - d2) + 4 * rounding / h, (analytic, d1, d2)


FD_CASES = [c for c in GRAD_CASES if c["act"] in SMOOTH]


@pytest.mark.parametrize("case", FD_CASES, ids=_case_id)
def test_gradient_matches_central_finite_differences(case):
    """ReLU is left out: its kinks break finite differences (the oracle covers it)."""
    Ws, X, y_of, V = _problem(case, seed=1)
    k = kw(case["act"], case["loss"], case["oa"], 0.8)

    def phi(params):
        *W, X_ = params
        return (V * gram_torch(W, X_, y_of(X_), **k)).sum()

    _fd_check(phi, [*Ws, X], seed=2)


def test_surrogate_objective_gradient_matches_finite_differences():
    """The search's objective: failure surrogate of the soft minimum of a batch."""
    case = dict(act="tanh", loss="square", oa=True, batched=3)
    Ws, X, y_of, _ = _problem(case, seed=3, n=5)

    def objective(params):
        *W, X_ = params
        G = gram_torch(W, X_, y_of(X_), **kw("tanh", "square", True, 1.0))
        s = soft_min_offdiag(G, 0.05)
        return failure_surrogate(s, 0.01, 0.02)

    _fd_check(objective, [*Ws, X], seed=4)
