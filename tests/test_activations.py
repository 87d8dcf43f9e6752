"""Tests of activations, losses and the (P1)/(P2) checker."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import expit

import theory

TORCH_FN = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda z: z * 1.0,
}

points = arrays(
    np.float64,
    st.integers(1, 20),
    elements=st.floats(-8, 8, allow_nan=False, allow_subnormal=False),
)


def torch_derivatives(name, x):
    """sigma', sigma'' by torch autograd (double backward), one point at a time."""
    d1, d2 = [], []
    for v in x:
        t = torch.tensor(float(v), dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(TORCH_FN[name](t), t, create_graph=True)
        d1.append(float(g.detach()))
        if g.requires_grad:
            (h,) = torch.autograd.grad(g, t, allow_unused=True)
            d2.append(0.0 if h is None else float(h))
        else:  # derivative constant in t (relu, identity): sigma'' = 0
            d2.append(0.0)
    return np.array(d1), np.array(d2)


@pytest.mark.parametrize("name", sorted(theory.activations.ACTIVATIONS))
@given(x=points)
def test_activation_matches_torch_autograd(name, x):
    act = theory.activations.ACTIVATIONS[name]
    value = TORCH_FN[name](torch.tensor(x, dtype=torch.float64)).numpy()
    d1, d2 = torch_derivatives(name, x)
    # Same float64 closed forms, evaluated in a different order: rounding only.
    np.testing.assert_allclose(act.fn(x), value, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(act.d1(x), d1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(act.d2(x), d2, rtol=1e-12, atol=1e-15)


def test_relu_derivative_at_zero_matches_torch():
    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(torch.relu(t), t)
    assert float(g) == 0.0
    assert theory.activations.relu.d1(np.array([0.0]))[0] == 0.0
    assert theory.activations.relu.d2(np.array([0.0]))[0] == 0.0


def test_get_activation():
    assert theory.activations.get_activation("tanh") is theory.activations.tanh
    assert (
        theory.activations.get_activation(theory.activations.relu)
        is theory.activations.relu
    )
    with pytest.raises(
        ValueError,
        match=r"activation must be one of \['identity', 'relu', 'sigmoid', "
        r"'tanh'\] or an Activation instance, got 'gelu'",
    ):
        theory.activations.get_activation("gelu")
    with pytest.raises(ValueError, match="activation must be one of"):
        theory.activations.get_activation(np.tanh)


def test_activation_constructor_validates():
    with pytest.raises(ValueError, match="Activation name must be a non-empty"):
        theory.activations.Activation("", np.tanh, np.tanh, np.tanh)
    with pytest.raises(ValueError, match="Activation d2 must be a vectorized callable"):
        theory.activations.Activation("x", np.tanh, np.tanh, 3.0)


# --------------------------------------------------------------------------
# check_activation
# --------------------------------------------------------------------------
def test_builtins_satisfy_p1_p2_with_closed_form_maxima():
    # Maxima over [-1, 1]:
    #   relu: |x| <= 1, |sigma'| = 1 (x > 0), sigma'' = 0;
    #   tanh: tanh(1); 1 at x = 0; |-2 t (1 - t^2)| peaks at t = 1/sqrt(3),
    #         i.e. x = atanh(1/sqrt(3)) = 0.658 in [-1, 1], value 4 / (3 sqrt 3);
    #   sigmoid: s(1); 1/4 at x = 0; |s(1-s)(1-2s)| is increasing on [0, 1]
    #         (its maximum is at x = log(2 + sqrt 3) = 1.317 > 1), so x = 1;
    #   identity: 1, 1, 0.
    # The grid (spacing 1e-4, containing 0 and +-1) misses an interior maximum
    # by at most max|f''| (h/2)^2 / 2 < 1e-8.
    s1 = expit(1.0)
    expected = {
        "relu": (1.0, 1.0, 0.0),
        "tanh": (np.tanh(1.0), 1.0, 4 / (3 * np.sqrt(3))),
        "sigmoid": (s1, 0.25, s1 * (1 - s1) * (2 * s1 - 1)),
        "identity": (1.0, 1.0, 0.0),
    }
    for name, (v, g1, g2) in expected.items():
        result = theory.activations.check_activation(name)
        assert result.p1 and result.p2 and result.ok, name
        assert result.max_abs_value == pytest.approx(v, abs=1e-8)
        assert result.max_abs_d1 == pytest.approx(g1, abs=1e-8)
        assert result.max_abs_d2 == pytest.approx(g2, abs=1e-8)


def test_bad_activations_fail_with_the_right_flag():
    two_tanh = theory.activations.Activation(
        "2tanh",
        lambda x: 2 * np.tanh(x),
        lambda x: 2 * theory.activations.tanh.d1(x),
        lambda x: 2 * theory.activations.tanh.d2(x),
    )
    r = theory.activations.check_activation(two_tanh)
    # 2 tanh(1) = 1.52 > 1 and 2 tanh'(0) = 2 > 1.
    assert not r.p1 and not r.p2 and not r.ok
    assert r.max_abs_value == pytest.approx(2 * np.tanh(1.0), rel=1e-12)

    softplus = theory.activations.Activation(
        "softplus", lambda x: np.logaddexp(0.0, x), expit, theory.activations.sigmoid.d1
    )
    r = theory.activations.check_activation(softplus, n_grid=101)
    # softplus(1) = log(1 + e) = 1.31 > 1; but sigmoid <= 0.73, sigmoid' <= 1/4.
    assert not r.p1 and r.p2 and not r.ok
    assert r.max_abs_value == pytest.approx(np.log1p(np.e), rel=1e-12)

    half_sin = theory.activations.Activation(
        "sin(2x)/2",
        lambda x: np.sin(2 * x) / 2,
        lambda x: np.cos(2 * x),
        lambda x: -2 * np.sin(2 * x),
    )
    r = theory.activations.check_activation(half_sin)
    # |sigma| <= 1/2, |sigma'| <= 1, but |sigma''(pi/4)| = 2 > 1 (the grid
    # misses the peak by at most max|sigma^(4)| (h/2)^2 / 2 = 8 (5e-5)^2 / 2).
    assert r.p1 and not r.p2 and not r.ok
    assert r.max_abs_d2 == pytest.approx(2.0, abs=1e-8)


def test_non_finite_activation_fails():
    bad = theory.activations.Activation(
        "log|x|", lambda x: np.log(np.abs(x)), lambda x: 1 / x, lambda x: -1 / x**2
    )
    with np.errstate(divide="ignore"):
        r = theory.activations.check_activation(bad, n_grid=11)
    assert not r.p1 and not r.p2


def test_check_activation_validates():
    with pytest.raises(ValueError, match=r"n_grid must be an integer >= 2, got 1"):
        theory.activations.check_activation("tanh", n_grid=1)
    with pytest.raises(ValueError, match=r"n_grid must be an integer >= 2"):
        theory.activations.check_activation("tanh", n_grid=10.0)
    scalar = theory.activations.Activation("scalar", lambda x: 0.0, np.tanh, np.tanh)
    with pytest.raises(ValueError, match=r"fn must be vectorized, it returned shape"):
        theory.activations.check_activation(scalar)


# --------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------
def torch_loss(name, g, y):
    if name == "square":
        return 0.5 * (y - g) ** 2
    return torch.log1p(torch.exp(-y * g))


@pytest.mark.parametrize("name", sorted(theory.losses.LOSSES))
@given(
    gy=st.integers(1, 20).flatmap(
        lambda n: st.tuples(
            arrays(np.float64, n, elements=st.floats(-10, 10)),
            arrays(np.float64, n, elements=st.floats(-1, 1)),
        )
    )
)
def test_loss_matches_torch_autograd(name, gy):
    g, y = gy
    loss = theory.losses.LOSSES[name]
    gt = torch.tensor(g, dtype=torch.float64, requires_grad=True)
    f = torch_loss(name, gt, torch.tensor(y, dtype=torch.float64))
    (d1,) = torch.autograd.grad(f.sum(), gt)
    # |y g| <= 10: log1p(exp(.)) is accurate in float64 there; rounding only.
    np.testing.assert_allclose(
        loss.fn(g, y), f.detach().numpy(), rtol=1e-13, atol=1e-300
    )
    np.testing.assert_allclose(loss.d1(g, y), d1.numpy(), rtol=1e-12, atol=1e-300)


def test_logistic_is_stable_for_large_margins():
    g = np.array([1e4, -1e4, 800.0, -800.0])
    y = np.array([1.0, 1.0, -1.0, -1.0])
    # Underflow to 0 is the correct answer here; overflow or NaN would not be.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        f = theory.losses.logistic.fn(g, y)
        d = theory.losses.logistic.d1(g, y)
    # Closed forms: y g = 1e4 -> f ~ e^{-1e4} = 0 in float64, l' = -y e^{-yg} ~ 0;
    # y g = -1e4 -> f = 1e4 (log(1 + e^{1e4}) = 1e4 + log1p(e^{-1e4})), l' = -y.
    np.testing.assert_allclose(f, [0.0, 1e4, 800.0, 0.0], rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(d, [0.0, -1.0, 1.0, 0.0], rtol=1e-15, atol=1e-300)


def test_square_closed_form():
    g = np.array([0.5, -2.0])
    y = np.array([1.0, 1.0])
    np.testing.assert_array_equal(theory.losses.square.fn(g, y), [0.125, 4.5])
    np.testing.assert_array_equal(theory.losses.square.d1(g, y), [-0.5, -3.0])


def test_get_loss():
    assert theory.losses.get_loss("square") is theory.losses.square
    assert theory.losses.get_loss(theory.losses.logistic) is theory.losses.logistic
    with pytest.raises(
        ValueError,
        match=r"loss must be one of \['logistic', 'square'\] or a Loss instance, "
        r"got 'hinge'",
    ):
        theory.losses.get_loss("hinge")
    with pytest.raises(ValueError, match="Loss fn must be a vectorized callable"):
        theory.losses.Loss("x", None, theory.losses.square.d1)
