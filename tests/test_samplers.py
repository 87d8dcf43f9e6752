"""Tests of the random samplers in ``montecarlo._samplers``.

Oracles: closed-form moments of the uniform law on the sphere, scipy.stats
distributions (``beta`` for a sphere coordinate, ``ortho_group`` for Haar
matrices, ``chi2`` for sample variances and goodness of fit, ``kstest`` /
``ks_2samp``), and exact algebraic identities (orthonormality, operator norms,
singular values).

False-failure budget: every statistical assertion fails with probability at most
ALPHA = 1e-6 under the null (Bonferroni over the quantities of one assertion
where several are checked together). Seeds are fixed, so the suite is
deterministic; the budget says how unlucky a seed would have to be.
"""

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from montecarlo.samplers import (
    NormalSource,
    ball_around,
    gaussian_weights,
    haar_orthogonal,
    orthogonal_linear_network,
    orthogonal_weights,
    signed_permutation,
    small_weights,
    sphere,
    uniform_spectrum_weights,
    unit_ball,
)

ALPHA = 1e-6  # false-failure probability of one statistical assertion
EPS = np.finfo(np.float64).eps


def z_two_sided(alpha: float) -> float:
    """Normal quantile z with P(|N(0, 1)| > z) = alpha."""
    return float(stats.norm.isf(alpha / 2))


def coordinate_beta_pvalue(coordinate: np.ndarray, dim: int) -> float:
    """KS p-value of one coordinate of a uniform point on S^{dim-1}.

    For x uniform on S^{dim-1} (dim >= 2), (x_1 + 1) / 2 ~ Beta((dim-1)/2,
    (dim-1)/2).
    """
    a = (dim - 1) / 2
    return stats.kstest((coordinate + 1) / 2, stats.beta(a, a).cdf).pvalue


def flat(weights: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([w.ravel() for w in weights])


# --- sphere and unit ball -----------------------------------------------------


def test_sphere_unit_norms_and_shape():
    x = sphere(np.random.default_rng(1), 500, 7)
    assert x.shape == (500, 7)
    assert x.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=0, atol=1e-12)


def test_sphere_first_and_second_moments():
    n, d = 20_000, 4
    x = sphere(np.random.default_rng(2), n, d)
    # Uniform on S^{d-1}: E[x] = 0, E[x x^T] = I/d, Var(x_k) = 1/d,
    # E[x_k^4] = 3/(d(d+2)), E[x_k^2 x_l^2] = 1/(d(d+2)) (k != l), hence
    # Var(x_k^2) = 3/(d(d+2)) - 1/d^2 and Var(x_k x_l) = 1/(d(d+2)).
    # CLT: a mean of n i.i.d. terms of variance s^2 lies within z s / sqrt(n) of
    # its expectation; z is two-sided at ALPHA / K, Bonferroni over the
    # K = d + d(d+1)/2 checked quantities (d means, upper triangle of E[x x^T]).
    k_checks = d + d * (d + 1) // 2
    z = z_two_sided(ALPHA / k_checks)
    mean = x.mean(axis=0)
    assert np.all(np.abs(mean) <= z * math.sqrt(1 / d) / math.sqrt(n)), mean
    second = x.T @ x / n
    var_diag = 3 / (d * (d + 2)) - 1 / d**2
    var_off = 1 / (d * (d + 2))
    tol = np.where(np.eye(d, dtype=bool), var_diag, var_off) ** 0.5 * z / n**0.5
    assert np.all(np.abs(second - np.eye(d) / d) <= tol), second


def test_sphere_coordinate_distribution():
    d = 5
    x = sphere(np.random.default_rng(3), 5_000, d)
    assert coordinate_beta_pvalue(x[:, 0], d) > ALPHA


def test_unit_ball_norms_and_radius_distribution():
    n, d = 5_000, 3
    x = unit_ball(np.random.default_rng(4), n, d)
    assert x.shape == (n, d)
    radius = np.linalg.norm(x, axis=1)
    # u ** (1/d) < 1 exactly, but it can round to 1.0 and the normalized
    # direction has norm 1 only up to a few ulps: allow 4 eps.
    assert np.all(radius <= 1 + 4 * EPS)
    # Uniform in the ball: P(||x|| <= t) = vol(t B) / vol(B) = t^d.
    assert stats.kstest(radius, lambda t: t**d).pvalue > ALPHA
    # The direction is uniform on S^{d-1}, independent of the radius.
    assert coordinate_beta_pvalue(x[:, 0] / radius, d) > ALPHA


@settings(max_examples=30)
@given(n=st.integers(2, 30), d=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_data_samplers_shapes_and_norms_property(n, d, seed):
    x = sphere(np.random.default_rng(seed), n, d)
    assert x.shape == (n, d)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=0, atol=1e-12)
    y = unit_ball(np.random.default_rng(seed), n, d)
    assert y.shape == (n, d)
    assert np.all(np.linalg.norm(y, axis=1) <= 1 + 4 * EPS)


# --- Haar orthogonal ------------------------------------------------------------


@pytest.mark.parametrize("m, n", [(5, 5), (7, 3), (3, 7), (1, 6), (6, 1), (1, 1)])
def test_haar_orthogonal_is_orthonormal(m, n):
    q = haar_orthogonal(np.random.default_rng(5), m, n)
    assert q.shape == (m, n)
    assert q.flags.c_contiguous
    gram = q.T @ q if m >= n else q @ q.T
    np.testing.assert_allclose(gram, np.eye(min(m, n)), rtol=0, atol=1e-12)


@settings(max_examples=40)
@given(m=st.integers(1, 12), n=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_haar_orthogonal_orthonormal_property(m, n, seed):
    q = haar_orthogonal(np.random.default_rng(seed), m, n)
    gram = q.T @ q if m >= n else q @ q.T
    np.testing.assert_allclose(gram, np.eye(min(m, n)), rtol=0, atol=1e-12)


N_HAAR = 3_000


def haar_statistics(mats: np.ndarray) -> dict[str, np.ndarray]:
    """Trace of the leading square block and the (0, 0) entry of each matrix."""
    k = min(mats.shape[1:])
    return {
        "trace": np.trace(mats[:, :k, :k], axis1=1, axis2=2),
        "entry00": mats[:, 0, 0],
    }


def reference_haar(m: int, n: int, seed: int) -> np.ndarray:
    """Haar samples from scipy.stats.ortho_group, truncated to m x n.

    The first n columns (rows) of a Haar element of O(max(m, n)) are Haar
    distributed on the Stiefel manifold of orthonormal n-frames (m-frames).
    """
    full = stats.ortho_group.rvs(dim=max(m, n), size=N_HAAR, random_state=seed)
    return full[:, :m, :n]


@pytest.mark.parametrize("m, n", [(4, 4), (5, 3), (3, 5)])
def test_haar_orthogonal_matches_scipy_ortho_group(m, n):
    rng = np.random.default_rng(6)
    ours = np.stack([haar_orthogonal(rng, m, n) for _ in range(N_HAAR)])
    ref = reference_haar(m, n, seed=7)
    ours_stats, ref_stats = haar_statistics(ours), haar_statistics(ref)
    # Two-sample KS under the null of equal laws; each p-value threshold is
    # ALPHA, so the family of two comparisons fails with probability <= 2 ALPHA.
    for name in ours_stats:
        p = stats.ks_2samp(ours_stats[name], ref_stats[name]).pvalue
        assert p > ALPHA, (name, p)


def test_haar_test_detects_missing_sign_correction():
    # Power check: Q from QR *without* Mezzadri's sign fix inherits the sign
    # convention of LAPACK's Householder QR and is not Haar; the same statistic
    # and threshold as above must reject it.
    rng = np.random.default_rng(6)
    unfixed = np.stack(
        [np.linalg.qr(rng.standard_normal((4, 4)))[0] for _ in range(N_HAAR)]
    )
    ref = reference_haar(4, 4, seed=7)
    p = stats.ks_2samp(
        haar_statistics(unfixed)["entry00"], haar_statistics(ref)["entry00"]
    ).pvalue
    assert p < ALPHA, p


# --- weight samplers ----------------------------------------------------------

widths_strategy = st.lists(st.integers(1, 8), min_size=1, max_size=4)


def expected_shapes(d: int, widths: list[int]) -> list[tuple[int, int]]:
    return [(widths[0], d), *zip(widths[1:], widths[:-1], strict=True), (1, widths[-1])]


def test_gaussian_weights_shapes():
    w = gaussian_weights(np.random.default_rng(8), 6, [5, 4, 3], kappa=1.0)
    assert [x.shape for x in w] == [(5, 6), (4, 5), (3, 4), (1, 3)]
    assert all(x.dtype == np.float64 for x in w)


def test_gaussian_weights_variances():
    d, widths, kappa, repeats = 50, [40, 30], 0.5, 20
    rng = np.random.default_rng(9)
    draws = [gaussian_weights(rng, d, widths, kappa=kappa) for _ in range(repeats)]
    variances = [1 / d] + [1 / (kappa * fan_in) for fan_in in widths]
    n_layers = len(variances)
    for p, var in enumerate(variances):
        entries = np.concatenate([w[p].ravel() for w in draws])
        m = entries.size
        # Known mean 0: sum(w^2) / var ~ chi2(m). Two-sided bounds at
        # ALPHA / n_layers (Bonferroni over the layers).
        statistic = np.sum(entries**2) / var
        lo = stats.chi2.ppf(ALPHA / n_layers / 2, m)
        hi = stats.chi2.isf(ALPHA / n_layers / 2, m)
        assert lo <= statistic <= hi, (p, m, statistic, lo, hi)
        # The standardized entries are N(0, 1).
        assert stats.kstest(entries / math.sqrt(var), "norm").pvalue > ALPHA


@settings(max_examples=30)
@given(d=st.integers(1, 8), widths=widths_strategy, seed=st.integers(0, 2**32 - 1))
def test_weight_samplers_shapes_property(d, widths, seed):
    shapes = expected_shapes(d, widths)
    gauss = gaussian_weights(np.random.default_rng(seed), d, widths, kappa=0.5)
    assert [w.shape for w in gauss] == shapes
    ortho = orthogonal_weights(np.random.default_rng(seed), d, widths)
    assert [w.shape for w in ortho] == shapes
    for w in ortho:
        gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        np.testing.assert_allclose(gram, np.eye(min(w.shape)), rtol=0, atol=1e-12)


def test_widths_accepts_numpy_integers():
    a = gaussian_weights(np.random.default_rng(10), 3, [4, 2], kappa=1.0)
    b = gaussian_weights(np.random.default_rng(10), 3, np.array([4, 2]), kappa=1.0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("scale", [1.0, 0.5, 1e-3])
def test_small_weights_operator_norms(scale):
    w = small_weights(np.random.default_rng(11), 7, [9, 4, 6], scale=scale)
    assert [x.shape for x in w] == [(9, 7), (4, 9), (6, 4), (1, 6)]
    norms = np.array([np.linalg.norm(x, 2) for x in w])
    np.testing.assert_allclose(norms, scale, rtol=1e-12, atol=0)


@settings(max_examples=30)
@given(
    d=st.integers(1, 8),
    widths=widths_strategy,
    scale=st.floats(1e-6, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_small_weights_operator_norms_property(d, widths, scale, seed):
    w = small_weights(np.random.default_rng(seed), d, widths, scale=scale)
    assert [x.shape for x in w] == expected_shapes(d, widths)
    norms = np.array([np.linalg.norm(x, 2) for x in w])
    np.testing.assert_allclose(norms, scale, rtol=1e-12, atol=0)


def uniform_spectrum_tolerance(rows: int, cols: int, scale: float) -> float:
    """Bound on how far a singular value of a computed layer is from ``scale u_i``.

    By Weyl's inequality a singular value moves by at most the spectral norm
    of the perturbation, here the sum of: the rounding of the product, each
    entry a sum of ``k`` terms of size <= ``scale`` (``<= k EPS scale``
    entrywise, so ``<= k EPS scale sqrt(rows cols)`` in norm); the departure
    of ``U``, ``V`` from orthonormal columns (Householder QR: a small multiple
    of ``max(rows, cols) EPS``, times ``scale``); and the backward error of
    the SVD (the same order). ``4 k (rows + cols) EPS scale`` covers the three.
    """
    return 4 * min(rows, cols) * (rows + cols) * EPS * scale


def _uniform_spectrum_reference(seed, d, widths, scale):
    """The factors ``(U, s, V)`` per layer, drawn as the docstring says."""
    rng = np.random.default_rng(seed)
    out = []
    for rows, cols in expected_shapes(d, widths):
        k = min(rows, cols)
        U = haar_orthogonal(rng, rows, k)
        V = haar_orthogonal(rng, cols, k)
        out.append((U, scale * rng.random(k), V))
    return out


@pytest.mark.parametrize("scale", [1.0, 0.5, 1e-3])
def test_uniform_spectrum_weights_are_the_documented_factors(scale):
    d, widths = 7, [9, 4, 6]
    w = uniform_spectrum_weights(np.random.default_rng(21), d, widths, scale=scale)
    ref = _uniform_spectrum_reference(21, d, widths, scale)
    assert [x.shape for x in w] == [(9, 7), (4, 9), (6, 4), (1, 6)]
    for W, (U, s, V) in zip(w, ref, strict=True):
        # the same float operations on the same draws: the same bits
        np.testing.assert_array_equal(W, (U * s) @ V.T)
        tol = uniform_spectrum_tolerance(*W.shape, scale)
        singular = np.linalg.svd(W, compute_uv=False)
        np.testing.assert_allclose(singular, np.sort(s)[::-1], rtol=0, atol=tol)
        assert np.linalg.norm(W, 2) <= scale + tol


@settings(max_examples=30)
@given(
    d=st.integers(1, 8),
    widths=widths_strategy,
    scale=st.floats(1e-6, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_uniform_spectrum_singular_values_property(d, widths, scale, seed):
    w = uniform_spectrum_weights(np.random.default_rng(seed), d, widths, scale=scale)
    ref = _uniform_spectrum_reference(seed, d, widths, scale)
    assert [x.shape for x in w] == expected_shapes(d, widths)
    for W, (_, s, _) in zip(w, ref, strict=True):
        tol = uniform_spectrum_tolerance(*W.shape, scale)
        singular = np.linalg.svd(W, compute_uv=False)
        np.testing.assert_allclose(singular, np.sort(s)[::-1], rtol=0, atol=tol)
        assert np.linalg.norm(W, 2) <= scale + tol


def test_uniform_spectrum_singular_values_are_uniform():
    # The top singular value of a (1, l) read-out is scale * u with u uniform:
    # KS against Uniform(0, scale), at ALPHA.
    scale, draws = 0.7, 3_000
    rng = np.random.default_rng(22)
    top = [
        np.linalg.norm(uniform_spectrum_weights(rng, 3, [4], scale=scale)[1])
        for _ in range(draws)
    ]
    assert stats.kstest(top, stats.uniform(0, scale).cdf).pvalue > ALPHA


# --- ball around a point --------------------------------------------------------


def test_ball_around_distance_and_direction_distribution():
    centre = gaussian_weights(np.random.default_rng(12), 3, [2], kappa=1.0)
    p_total = sum(w.size for w in centre)  # (2, 3) + (1, 2): P = 8
    assert p_total == 8
    r, draws = 0.7, 3_000
    rng = np.random.default_rng(13)
    steps = np.stack(
        [flat(ball_around(rng, centre, r)) - flat(centre) for _ in range(draws)]
    )
    dist = np.linalg.norm(steps, axis=1)
    # The subtraction w' - w loses up to a few ulps of |w|.
    assert np.all(dist <= r + 1e-12)
    # Uniform in the P-ball of radius r: P(||w' - w|| <= t) = (t / r)^P.
    assert stats.kstest(dist, lambda t: (t / r) ** p_total).pvalue > ALPHA
    # Uniform direction: a coordinate of step / ||step|| as on S^{P-1}.
    assert coordinate_beta_pvalue(steps[:, 0] / dist, p_total) > ALPHA


def test_ball_around_radius_zero_returns_copies():
    centre = [np.arange(6.0).reshape(2, 3), np.array([[1.5, -2.0]])]
    kept = [w.copy() for w in centre]
    out = ball_around(np.random.default_rng(14), centre, 0.0)
    assert all(np.array_equal(a, b) for a, b in zip(out, kept, strict=True))
    out[0][0, 0] = 99.0
    assert all(np.array_equal(a, b) for a, b in zip(centre, kept, strict=True))


def test_ball_around_keeps_shapes_and_input():
    centre = orthogonal_weights(np.random.default_rng(15), 4, [3, 5])
    kept = [w.copy() for w in centre]
    out = ball_around(np.random.default_rng(16), centre, 2.0)
    assert [w.shape for w in out] == [w.shape for w in centre]
    assert all(w.dtype == np.float64 for w in out)
    assert all(np.array_equal(a, b) for a, b in zip(centre, kept, strict=True))


@settings(max_examples=30)
@given(
    d=st.integers(1, 6),
    widths=widths_strategy,
    r=st.floats(0.0, 10.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_ball_around_distance_property(d, widths, r, seed):
    rng = np.random.default_rng(seed)
    centre = gaussian_weights(rng, d, widths, kappa=1.0)
    out = ball_around(rng, centre, r)
    dist = np.linalg.norm(flat(out) - flat(centre))
    assert dist <= r * (1 + 1e-12) + 1e-12


# --- orthogonal linear network ----------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_orthogonal_linear_network_structure(depth):
    d = 6
    weights, gamma = orthogonal_linear_network(np.random.default_rng(17), d, depth)
    assert [w.shape for w in weights] == [(d, d)] * (depth - 1) + [(1, d)]
    for w in weights[:-1]:
        np.testing.assert_allclose(w.T @ w, np.eye(d), rtol=0, atol=1e-12)
        np.testing.assert_allclose(w @ w.T, np.eye(d), rtol=0, atol=1e-12)
    assert abs(np.linalg.norm(weights[-1]) - 1) <= 1e-12
    assert gamma == 1 / math.sqrt(2 * depth)


def test_orthogonal_linear_network_distribution():
    d, draws = 3, N_HAAR
    rng = np.random.default_rng(18)
    nets = [orthogonal_linear_network(rng, d, 2)[0] for _ in range(draws)]
    square = np.stack([w[0] for w in nets])
    rows = np.stack([w[1][0] for w in nets])
    ref = reference_haar(d, d, seed=19)
    # Two assertions at ALPHA each: the square layer agrees with ortho_group,
    # the read-out row is uniform on S^{d-1}.
    assert stats.ks_2samp(square[:, 0, 0], ref[:, 0, 0]).pvalue > ALPHA
    assert coordinate_beta_pvalue(rows[:, 0], d) > ALPHA


def _signed_permutation_index(W: np.ndarray) -> int:
    """A signed permutation as an integer in ``[0, 2^m m!)``."""
    m = W.shape[0]
    perm = np.argmax(np.abs(W), axis=1)
    signs = W[np.arange(m), perm] > 0
    rank = sum(int(p) * m**i for i, p in enumerate(perm))
    return rank * 2**m + sum(int(b) << i for i, b in enumerate(signs))


def test_signed_permutation_is_the_documented_draw():
    m = 6
    W = signed_permutation(np.random.default_rng(23), m)
    rng = np.random.default_rng(23)
    keys, b = rng.random(m), rng.random(m)
    expected = np.zeros((m, m))
    expected[np.arange(m), np.argsort(keys, kind="stable")] = np.where(
        b < 0.5, -1.0, 1.0
    )
    np.testing.assert_array_equal(W, expected)
    # entries in {-1, 0, 1}, one non-zero per row and column: W^T W = I exactly
    np.testing.assert_array_equal(W.T @ W, np.eye(m))
    assert W.flags.c_contiguous


def test_signed_permutation_is_uniform_on_the_hyperoctahedral_group():
    # m = 3: 2^3 3! = 48 signed permutations, each with probability 1/48.
    # Chi-square goodness of fit (47 degrees of freedom), at ALPHA.
    m, per_cell = 3, 200
    rng = np.random.default_rng(24)
    codes = [
        _signed_permutation_index(signed_permutation(rng, m))
        for _ in range(48 * per_cell)
    ]
    _, counts = np.unique(codes, return_counts=True)
    assert counts.size == 48
    assert stats.chisquare(counts).pvalue > ALPHA


def test_orthogonal_linear_network_identity_layers_draw_nothing():
    spy = SpyStream(25)
    weights, gamma = orthogonal_linear_network(spy, 4, 3, layers="identity")
    assert spy.calls == []
    readout = np.zeros((1, 4))
    readout[0, 0] = 1.0
    assert_same(weights, [np.eye(4), np.eye(4), readout])
    assert gamma == 1 / math.sqrt(6)


def test_orthogonal_linear_network_signed_permutation_layers():
    d, depth = 5, 3
    weights, _ = orthogonal_linear_network(
        np.random.default_rng(26), d, depth, layers="signed_permutation"
    )
    rng = np.random.default_rng(26)
    layers = [signed_permutation(rng, d) for _ in range(depth - 1)]
    c = rng.random(2)
    readout = np.zeros((1, d))
    readout[0, int(d * c[0])] = -1.0 if c[1] < 0.5 else 1.0
    assert_same(weights, [*layers, readout])


def test_signed_coordinate_readout_is_uniform():
    # d = 3: the read-out is one of the 2 d = 6 vectors +-e_j, each with
    # probability 1/6. Chi-square goodness of fit (5 degrees of freedom).
    d, per_cell = 3, 1_000
    rng = np.random.default_rng(27)
    codes = []
    for _ in range(2 * d * per_cell):
        v = orthogonal_linear_network(rng, d, 1, layers="signed_permutation")[0][-1]
        (j,) = np.flatnonzero(v[0])
        codes.append(2 * j + int(v[0, j] > 0))
    _, counts = np.unique(codes, return_counts=True)
    assert counts.size == 2 * d
    assert stats.chisquare(counts).pvalue > ALPHA


# --- the random-draw contract -------------------------------------------------------


class SpyStream:
    """Exposes only the two allowed methods and records every call."""

    __slots__ = ("_gen", "calls")

    def __init__(self, seed: int):
        self._gen = np.random.default_rng(seed)
        self.calls: list[tuple[str, object]] = []

    def standard_normal(self, size, /):
        self.calls.append(("standard_normal", size))
        return self._gen.standard_normal(size)

    def random(self, size, /):
        self.calls.append(("random", size))
        return self._gen.random(size)


DRAW_CASES: list[tuple[str, Callable, list[tuple[str, object]]]] = [
    ("sphere", lambda g: sphere(g, 5, 3), [("standard_normal", (5, 3))]),
    (
        "unit_ball",
        lambda g: unit_ball(g, 5, 3),
        [("standard_normal", (5, 3)), ("random", 5)],
    ),
    (
        "gaussian_weights",
        lambda g: gaussian_weights(g, 4, [3, 2], kappa=0.5),
        [("standard_normal", s) for s in [(3, 4), (2, 3), (1, 2)]],
    ),
    ("haar_tall", lambda g: haar_orthogonal(g, 5, 3), [("standard_normal", (5, 3))]),
    ("haar_wide", lambda g: haar_orthogonal(g, 3, 5), [("standard_normal", (5, 3))]),
    (
        "orthogonal_weights",
        lambda g: orthogonal_weights(g, 4, [3, 5]),
        [("standard_normal", s) for s in [(4, 3), (5, 3), (5, 1)]],
    ),
    (
        "small_weights",
        lambda g: small_weights(g, 4, [3, 2], scale=0.5),
        [("standard_normal", s) for s in [(3, 4), (2, 3), (1, 2)]],
    ),
    (
        "ball_around",
        lambda g: ball_around(g, [np.zeros((2, 3)), np.ones(4)], 0.5),
        [("standard_normal", 10), ("random", None)],
    ),
    (
        "ball_around_r0",
        lambda g: ball_around(g, [np.zeros((2, 3)), np.ones(4)], 0.0),
        [("standard_normal", 10), ("random", None)],
    ),
    (
        "orthogonal_linear_network",
        lambda g: orthogonal_linear_network(g, 3, 3),
        [("standard_normal", s) for s in [(3, 3), (3, 3), (1, 3)]],
    ),
    (
        "uniform_spectrum_weights",
        lambda g: uniform_spectrum_weights(g, 4, [3, 5], scale=0.5),
        [
            *[("standard_normal", (3, 3)), ("standard_normal", (4, 3)), ("random", 3)],
            *[("standard_normal", (5, 3)), ("standard_normal", (3, 3)), ("random", 3)],
            *[("standard_normal", (1, 1)), ("standard_normal", (5, 1)), ("random", 1)],
        ],
    ),
    (
        "signed_permutation",
        lambda g: signed_permutation(g, 4),
        [("random", 4), ("random", 4)],
    ),
    (
        "orthogonal_linear_network_identity",
        lambda g: orthogonal_linear_network(g, 3, 3, layers="identity"),
        [],
    ),
    (
        "orthogonal_linear_network_signed_permutation",
        lambda g: orthogonal_linear_network(g, 3, 3, layers="signed_permutation"),
        [("random", 3)] * 4 + [("random", 2)],
    ),
]


def assert_same(a, b):
    if isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and np.array_equal(a, b)
    else:
        assert a == b


def test_numpy_generator_satisfies_protocol():
    assert isinstance(np.random.default_rng(0), NormalSource)
    assert isinstance(SpyStream(0), NormalSource)


@pytest.mark.parametrize("case", DRAW_CASES, ids=[c[0] for c in DRAW_CASES])
def test_draws_only_the_documented_calls(case):
    _, sample, expected_calls = case
    spy = SpyStream(20)
    result = sample(spy)
    # Exactly the calls, order and sizes that the docstrings promise, sizes as
    # builtin ints / tuples of builtin ints (the compiled engine relies on it).
    assert spy.calls == expected_calls
    for _, size in spy.calls:
        parts = size if isinstance(size, tuple) else (size,)
        assert all(s is None or type(s) is int for s in parts)
    # Bit-identical to the same sampler driven by the Generator itself.
    assert_same(result, sample(np.random.default_rng(20)))


# --- validation --------------------------------------------------------------------

GOOD_W = [np.zeros((2, 3)), np.ones((1, 2))]

BAD_INPUTS: list[tuple[str, Callable, str]] = [
    ("sphere_n1", lambda g: sphere(g, 1, 3), "n"),
    ("sphere_n_float", lambda g: sphere(g, 2.0, 3), "n"),
    ("sphere_n_bool", lambda g: sphere(g, True, 3), "n"),
    ("sphere_d0", lambda g: sphere(g, 5, 0), "d"),
    ("ball_n1", lambda g: unit_ball(g, 1, 3), "n"),
    ("ball_d_float", lambda g: unit_ball(g, 4, 3.0), "d"),
    ("gauss_d0", lambda g: gaussian_weights(g, 0, [3], kappa=1.0), "d"),
    ("gauss_empty", lambda g: gaussian_weights(g, 3, [], kappa=1.0), "widths"),
    ("gauss_zero", lambda g: gaussian_weights(g, 3, [3, 0], kappa=1.0), "widths"),
    ("gauss_float", lambda g: gaussian_weights(g, 3, [3.0], kappa=1.0), "widths"),
    ("gauss_bool", lambda g: gaussian_weights(g, 3, [True], kappa=1.0), "widths"),
    ("gauss_int", lambda g: gaussian_weights(g, 3, 3, kappa=1.0), "widths"),
    ("gauss_str", lambda g: gaussian_weights(g, 3, "3", kappa=1.0), "widths"),
    ("kappa0", lambda g: gaussian_weights(g, 3, [3], kappa=0.0), "kappa"),
    ("kappa_neg", lambda g: gaussian_weights(g, 3, [3], kappa=-1.0), "kappa"),
    ("kappa_inf", lambda g: gaussian_weights(g, 3, [3], kappa=math.inf), "kappa"),
    ("kappa_nan", lambda g: gaussian_weights(g, 3, [3], kappa=math.nan), "kappa"),
    ("kappa_bool", lambda g: gaussian_weights(g, 3, [3], kappa=True), "kappa"),
    ("kappa_str", lambda g: gaussian_weights(g, 3, [3], kappa="1"), "kappa"),
    ("haar_m0", lambda g: haar_orthogonal(g, 0, 3), "m"),
    ("haar_n0", lambda g: haar_orthogonal(g, 3, 0), "n"),
    ("haar_m_float", lambda g: haar_orthogonal(g, 1.5, 3), "m"),
    ("ortho_empty", lambda g: orthogonal_weights(g, 3, []), "widths"),
    ("ortho_d0", lambda g: orthogonal_weights(g, 0, [2]), "d"),
    ("scale0", lambda g: small_weights(g, 3, [2], scale=0.0), "scale"),
    ("scale_big", lambda g: small_weights(g, 3, [2], scale=1.5), "scale"),
    ("scale_neg", lambda g: small_weights(g, 3, [2], scale=-0.1), "scale"),
    ("scale_nan", lambda g: small_weights(g, 3, [2], scale=math.nan), "scale"),
    ("scale_bool", lambda g: small_weights(g, 3, [2], scale=True), "scale"),
    ("small_widths", lambda g: small_weights(g, 3, [0]), "widths"),
    ("r_neg", lambda g: ball_around(g, GOOD_W, -1.0), "r"),
    ("r_inf", lambda g: ball_around(g, GOOD_W, math.inf), "r"),
    ("r_nan", lambda g: ball_around(g, GOOD_W, math.nan), "r"),
    ("w_empty", lambda g: ball_around(g, [], 1.0), "weights"),
    ("w_array", lambda g: ball_around(g, np.zeros(3), 1.0), "weights"),
    ("w_empty_array", lambda g: ball_around(g, [np.zeros(0)], 1.0), "weights"),
    ("w_nan", lambda g: ball_around(g, [np.array([np.nan])], 1.0), "weights"),
    ("w_str", lambda g: ball_around(g, ["a"], 1.0), "weights"),
    ("oln_depth0", lambda g: orthogonal_linear_network(g, 3, 0), "depth"),
    ("oln_depth_float", lambda g: orthogonal_linear_network(g, 3, 2.0), "depth"),
    ("oln_d0", lambda g: orthogonal_linear_network(g, 0, 2), "d"),
    (
        "oln_layers",
        lambda g: orthogonal_linear_network(g, 3, 2, layers="orthogonal"),
        "layers",
    ),
    ("us_d0", lambda g: uniform_spectrum_weights(g, 0, [2]), "d"),
    ("us_widths", lambda g: uniform_spectrum_weights(g, 3, [0]), "widths"),
    ("us_scale0", lambda g: uniform_spectrum_weights(g, 3, [2], scale=0.0), "scale"),
    ("us_scale_big", lambda g: uniform_spectrum_weights(g, 3, [2], scale=2.0), "scale"),
    ("sp_m0", lambda g: signed_permutation(g, 0), "m"),
    ("sp_m_float", lambda g: signed_permutation(g, 2.0), "m"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_raises_before_drawing(case):
    _, call, name = case
    spy = SpyStream(0)
    # The message starts with the argument name and states the value received.
    with pytest.raises(ValueError, match=rf"^{name} must .*got"):
        call(spy)
    assert spy.calls == []
