"""What the benchmark measures is right: the numba Gram kernel against per-sample
gradients from torch autograd, its branch-free exp/tanh against numpy, the
benchmark's naive and BackPACK routes against ``theory.gram``, and its flop count
against a hand count. (The benchmark itself is not timed here.)"""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from montecarlo._numba_trial import _activate, gram

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import bench

ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
TORCH_ACT = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda z: z,
}


def _autograd_gram(Ws, X, y, activation, loss, output_activation, gamma):
    """``G_ij = <grad f_i, grad f_j>`` from one torch backward pass per sample."""
    act = TORCH_ACT[activation]
    rows = []
    for x, t in zip(torch.from_numpy(X), torch.from_numpy(y), strict=True):
        params = [torch.from_numpy(W).clone().requires_grad_(True) for W in Ws]
        a = x
        for p, W in enumerate(params):
            z = W @ a
            a = act(z) if (p < len(params) - 1 or output_activation) else z
        g = gamma * a[0]
        f = (
            0.5 * (g - t) ** 2
            if loss == "square"
            else torch.nn.functional.softplus(-t * g)
        )
        grads = torch.autograd.grad(f, params)
        rows.append(torch.cat([gr.reshape(-1) for gr in grads]))
    J = torch.stack(rows)
    return (J @ J.T).numpy()


@settings(max_examples=30)
@given(
    n=st.integers(2, 6),
    d=st.integers(1, 5),
    widths=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    activation=st.sampled_from(ACTIVATIONS),
    loss=st.sampled_from(("square", "logistic")),
    output_activation=st.booleans(),
    gamma=st.floats(0.25, 2.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_numba_gram_equals_autograd_per_sample_gradients(
    n, d, widths, activation, loss, output_activation, gamma, seed
):
    rng = np.random.default_rng(seed)
    sizes = [d, *widths, 1]
    Ws = [
        rng.standard_normal((b, a)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    X = rng.standard_normal((n, d))
    y = rng.choice([-1.0, 1.0], n) if loss == "logistic" else rng.uniform(-1, 1, n)
    G = gram(
        Ws,
        X,
        y,
        activation=activation,
        loss=loss,
        output_activation=output_activation,
        gamma=gamma,
    )
    ref = _autograd_gram(Ws, X, y, activation, loss, output_activation, gamma)
    # Both sum at most P products of float64 terms: rounding ~ P * eps * scale
    # (P <= 5*6 + 2*36 + 6 = 108 here, eps = 2.2e-16), far below 1e-11 * scale.
    scale = max(np.max(np.abs(ref)), 1e-300)
    np.testing.assert_allclose(G, ref, rtol=1e-10, atol=1e-11 * scale)
    np.testing.assert_array_equal(G, G.T)


def test_numba_gram_rejects_bad_arguments():
    Ws, X, y = [np.ones((3, 2)), np.ones((1, 3))], np.ones((4, 2)), np.zeros(4)
    with pytest.raises(ValueError, match="activation must be one of"):
        gram(Ws, X, y, activation="softplus")
    with pytest.raises(ValueError, match="loss must be one of"):
        gram(Ws, X, y, loss="hinge")
    with pytest.raises(ValueError, match="gamma must be a number > 0, got 0"):
        gram(Ws, X, y, gamma=0)
    with pytest.raises(ValueError, match=r"weights\[1\] must have shape \(l_1, 3\)"):
        gram([np.ones((3, 2)), np.ones((1, 4))], X, y)
    with pytest.raises(ValueError, match="weights\\[-1\\] must have 1 row"):
        gram([np.ones((3, 2))], X, y)
    with pytest.raises(ValueError, match="y shape"):
        gram(Ws, X, np.zeros(3))


def _ulps(a, b):
    return np.abs(a - b) / np.spacing(np.maximum(np.abs(a), np.abs(b)))


@pytest.mark.parametrize(("code", "name"), [(1, "tanh"), (2, "sigmoid")])
def test_branch_free_activations_match_numpy_to_a_few_ulp(code, name):
    rng = np.random.default_rng(7)
    z = np.concatenate(
        [
            rng.normal(0, 3, 200_000),
            rng.uniform(-800, 800, 20_000),
            10.0 ** rng.uniform(-300, 2, 20_000) * rng.choice([-1, 1], 20_000),
            [0.0, 0.625, -0.625, 22.0, -22.0, 709.0, -709.0, 745.0, -745.0],
        ]
    )
    A, S = z.copy().reshape(1, -1), np.empty((1, z.size))
    _activate(code, A, S)
    act = theory.activations.get_activation(name)
    ref, dref = act.fn(z), act.d1(z)
    # fdlibm exp (< 1 ulp) and Cephes tanh (< 3 ulp) against numpy/scipy's own
    # (<= 4 ulp): they may differ by up to ~7 ulp.
    normal = np.abs(ref) > np.finfo(float).tiny
    assert np.max(_ulps(A[0][normal], ref[normal])) <= 8
    # sigma' = 1 - t^2 (tanh), s (1 - s) (sigmoid) cancel near |t|, s -> 1, so
    # their error is absolute: t within 3 ulp (<= 6.7e-16) moves 1 - t^2 by
    # <= 1.4e-15, plus two roundings and the reference's few ulp: < 16 eps.
    eps = np.finfo(float).eps
    assert np.max(np.abs(S[0] - dref)) <= 16 * eps
    assert np.all(np.abs(A[0][~normal] - ref[~normal]) <= np.finfo(float).tiny)


@pytest.mark.parametrize("code", [0, 1, 2, 3])
def test_activations_of_non_finite_inputs(code):
    z = np.array([[np.inf, -np.inf, np.nan]])
    S = np.empty_like(z)
    _activate(code, z, S)
    expected = {
        0: ([np.inf, 0.0], [1.0, 0.0]),  # relu (NaN -> 0, as before)
        1: ([1.0, -1.0], [0.0, 0.0]),
        2: ([1.0, 0.0], [0.0, 0.0]),
        3: ([np.inf, -np.inf], [1.0, 1.0]),
    }[code]
    np.testing.assert_array_equal(z[0, :2], expected[0])
    np.testing.assert_array_equal(S[0, :2], expected[1])
    assert np.isnan(z[0, 2]) or code == 0


def test_gram_flop_count_by_hand():
    # (n, d, width, depth) = (2, 3, 4, 1): layers 3 -> 4 -> 1.
    # forward 2*2*(3*4 + 4*1) = 64; backward 2*2*(4*1) = 16;
    # Gram factors by dsyrk, n (n + 1) k each: 2*3*((3 + 4) + (4 + 1)) = 72.
    assert bench.gram_flops(2, 3, 4, 1) == 152
    assert bench.n_params(3, 4, 1) == 16
    # the sizes quoted in issue 13
    assert round(bench.gram_flops(100, 100, 256, 4) / 1e6, 1) == 105.6
    assert round(bench.gram_flops(128, 784, 1024, 4) / 1e6, 1) == 1964.9


def test_plain_trials_for_a_relative_error():
    # T = z^2 (1 - p) / (p h^2): the binomial interval's relative half-width
    # z sqrt((1 - p) / (p T)) is then h
    p, h = 1e-3, 0.1
    T = bench.plain_trials_for(p, h)
    assert T == pytest.approx(1.959963984540054**2 * 0.999 / (1e-3 * 0.01), rel=1e-12)
    assert 1.959963984540054 * math.sqrt((1 - p) / (p * T)) == pytest.approx(h)


def test_benchmark_routes_compute_the_same_gram():
    Ws, X, y = bench.problem(7, 5, 6, 2, seed=3)
    ref = theory.gram(Ws, X, y, activation="tanh", loss="square")
    naive, with_backpack = bench.torch_routes()
    routes = {"naive": naive}
    if importlib.util.find_spec("backpack") is not None:
        assert with_backpack is not None
        routes["backpack"] = with_backpack
    for name, route in routes.items():
        np.testing.assert_allclose(
            route(Ws, X, y)(), ref, rtol=1e-10, atol=1e-13, err_msg=name
        )
    np.testing.assert_allclose(gram(Ws, X, y), ref, rtol=1e-10, atol=1e-13)
