"""Tests of the labeling functions: the Lipschitz assumption and the draw order."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import theory

TEACHER_ACTIVATIONS = ["tanh", "relu", "sigmoid", "identity"]

# Central differences with step H: truncation error <= H^2 / 6 * max|C'''|.
# For the rescaled network teacher C = a^T sigma(U x) / S with S >= ||a|| ||U||,
# |C'''| <= max|sigma'''| sqrt(width) max_k ||u_k||^2 <= 2 * 3 * 50 (d, width <= 8,
# standard normal rows), so truncation is < 5e-11; rounding adds ~eps / H = 2e-10
# per coordinate. GRAD_TOL = 1e-7 is far above both and far below the violation
# a missing normalization would cause (a factor well above 1 in most draws).
H = 1e-6
GRAD_TOL = 1e-7


def unit_ball_points(rng, n, d):
    """n points uniform in the unit ball, followed by n points on the sphere."""
    Z = rng.standard_normal((2 * n, d))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    radii = np.concatenate([rng.random(n) ** (1.0 / d), np.ones(n)])
    return Z * radii[:, None]


def fd_gradients(C, X):
    n, d = X.shape
    grads = np.empty((n, d))
    for k in range(d):
        e = np.zeros(d)
        e[k] = H
        grads[:, k] = (C(X + e) - C(X - e)) / (2 * H)
    return grads


def lipschitz_labelings(draw, d):
    kind = draw(st.sampled_from(["constant", "linear", "tanh", "network"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if kind == "constant":
        return theory.labels.constant_label(draw(st.floats(-1, 1)))
    if kind == "linear":
        return theory.labels.linear_teacher(rng, d)
    if kind == "tanh":
        return theory.labels.tanh_teacher(rng, d)
    width = draw(st.integers(1, 8))
    act = draw(st.sampled_from(TEACHER_ACTIVATIONS))
    return theory.labels.network_teacher(rng, d, width, activation=act)


@settings(max_examples=120)
@given(d=st.integers(1, 8), data=st.data())
def test_lipschitz_labelings_satisfy_the_assumption(d, data):
    C = lipschitz_labelings(data.draw, d)
    assert C.lipschitz
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = unit_ball_points(rng, 20, d)
    y = C(X)
    assert y.shape == (40,)
    assert np.all(np.abs(y) <= 1.0)
    grad_norms = np.linalg.norm(fd_gradients(C, X), axis=1)
    assert np.all(grad_norms <= 1.0 + GRAD_TOL), grad_norms.max()


@given(d=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_linear_teacher_gradient_has_unit_norm(d, seed):
    """grad <v, x> = v with ||v|| = 1: the bound is attained (sensitivity)."""
    C = theory.labels.linear_teacher(np.random.default_rng(seed), d)
    X = unit_ball_points(np.random.default_rng(seed + 1), 3, d)
    np.testing.assert_allclose(
        np.linalg.norm(fd_gradients(C, X), axis=1), 1.0, rtol=0, atol=GRAD_TOL
    )


# --------------------------------------------------------------------------
# Draw order (reproducibility across backends)
# --------------------------------------------------------------------------
def same_state(a, b):
    return a.bit_generator.state == b.bit_generator.state


@pytest.mark.parametrize(
    "make", [theory.labels.linear_teacher, theory.labels.tanh_teacher]
)
def test_teacher_draw_order(make):
    d = 5
    rng, ref = np.random.default_rng(7), np.random.default_rng(7)
    C = make(rng, d)
    v = ref.standard_normal(d)
    v /= np.linalg.norm(v)
    assert same_state(rng, ref)
    X = unit_ball_points(np.random.default_rng(8), 4, d)
    expected = X @ v if make is theory.labels.linear_teacher else np.tanh(X @ v)
    np.testing.assert_allclose(C(X), expected, rtol=1e-14, atol=1e-15)


def test_network_teacher_draw_order():
    rng, ref = np.random.default_rng(11), np.random.default_rng(11)
    theory.labels.network_teacher(rng, 4, 6)
    ref.standard_normal((6, 4))
    ref.standard_normal(6)
    assert same_state(rng, ref)


def test_random_signs():
    rng, ref = np.random.default_rng(3), np.random.default_rng(3)
    C = theory.labels.random_signs(rng)
    assert not C.lipschitz
    assert same_state(rng, ref)  # nothing drawn at construction
    X = np.zeros((1000, 2))
    y1 = C(X)
    np.testing.assert_array_equal(y1, np.where(ref.random(1000) < 0.5, -1.0, 1.0))
    y2 = C(X)
    np.testing.assert_array_equal(y2, np.where(ref.random(1000) < 0.5, -1.0, 1.0))
    assert set(np.unique(y1)) == {-1.0, 1.0}
    assert not np.array_equal(y1, y2)  # labels are not a function of x


def test_constant_label():
    C = theory.labels.constant_label(-0.25)
    np.testing.assert_array_equal(C(np.ones((3, 7))), [-0.25, -0.25, -0.25])
    assert C.lipschitz and C.d is None


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1.5, -2.0, np.nan, np.inf, True, "1"])
def test_constant_label_rejects_bad_value(value):
    with pytest.raises(ValueError, match=r"value must be a finite number in \[-1, 1\]"):
        theory.labels.constant_label(value)


@pytest.mark.parametrize("d", [0, -1, 2.0, None])
def test_teachers_reject_bad_d(d):
    rng = np.random.default_rng(0)
    for make in (theory.labels.linear_teacher, theory.labels.tanh_teacher):
        with pytest.raises(ValueError, match=r"d must be an integer >= 1"):
            make(rng, d)
    with pytest.raises(ValueError, match=r"d must be an integer >= 1"):
        theory.labels.network_teacher(rng, d, 3)


def test_network_teacher_rejects_bad_width_and_activation():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"width must be an integer >= 1, got 0"):
        theory.labels.network_teacher(rng, 3, 0)
    with pytest.raises(ValueError, match=r"activation must be one of .*'softplus'"):
        theory.labels.network_teacher(rng, 3, 2, activation="softplus")


@pytest.mark.parametrize("rng", [0, "seed", object()])
def test_rng_must_offer_standard_normal_and_random(rng):
    with pytest.raises(ValueError, match=r"rng must be a numpy.random.Generator"):
        theory.labels.linear_teacher(rng, 3)
    with pytest.raises(ValueError, match=r"rng must be a numpy.random.Generator"):
        theory.labels.random_signs(rng)


class RecordingSource:
    """Exposes only standard_normal(size) and random(size), and logs each call."""

    def __init__(self, seed):
        self._gen = np.random.default_rng(seed)
        self.calls = []

    def standard_normal(self, size):
        self.calls.append(("standard_normal", size))
        return self._gen.standard_normal(size)

    def random(self, size):
        self.calls.append(("random", size))
        return self._gen.random(size)


def test_only_the_documented_draws_are_made():
    """Any source with the two methods works, and the call log is as documented."""
    src = RecordingSource(0)
    theory.labels.linear_teacher(src, 4)
    theory.labels.tanh_teacher(src, 2)
    theory.labels.network_teacher(src, 3, 5, activation="relu")
    C = theory.labels.random_signs(src)
    C(np.zeros((6, 3)))
    assert src.calls == [
        ("standard_normal", 4),
        ("standard_normal", 2),
        ("standard_normal", (5, 3)),
        ("standard_normal", 5),
        ("random", 6),
    ]


def test_labeling_function_checks_X():
    C = theory.labels.linear_teacher(np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match=r"X must have d = 3 columns"):
        C(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"X must be a 2-D array"):
        C(np.ones(3))
    with pytest.raises(ValueError, match=r"X must be finite"):
        C(np.full((2, 3), np.nan))
