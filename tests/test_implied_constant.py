"""Tests of ``bounds.clopper_pearson`` and ``bounds.implied_constant``.

Oracles: ``scipy.stats.binomtest(...).proportion_ci(method="exact")`` (root
finding on the binomial cdf, independent of our Beta quantiles), closed forms
for zero and all failures, ``scipy.optimize.brentq`` on the public bound
functions for the per-eta constant, and the public bound functions evaluated
at ``c*`` for the inverse property.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from bounds import (
    ImpliedConstant,
    clopper_pearson,
    corollary_5_1,
    implied_constant,
    theorem_4_1,
    theorem_5_1,
    theorem_6_1,
)

# ---------------------------------------------------------------------------
# Clopper-Pearson
# ---------------------------------------------------------------------------

# scipy's exact interval is a brentq root of binom.cdf / binom.sf with
# xtol = 2e-12 (plus rtol 8.9e-16 |p|); our Beta quantiles are accurate to a
# few ulps. Their difference is therefore below 2e-12 + 1e-15; allow 1e-11.
CP_ATOL = 1e-11
SCIPY_ALTERNATIVE = {"two": "two-sided", "upper": "less", "lower": "greater"}


@settings(max_examples=60)
@given(
    data=st.data(),
    n=st.integers(1, 2000),
    confidence=st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99, 0.999]),
    sided=st.sampled_from(["two", "upper", "lower"]),
)
def test_clopper_pearson_matches_scipy_binomtest(data, n, confidence, sided):
    k = data.draw(st.one_of(st.just(0), st.just(n), st.integers(0, n)))
    lower, upper = clopper_pearson(k, n, confidence, sided=sided)
    ci = stats.binomtest(k, n, alternative=SCIPY_ALTERNATIVE[sided]).proportion_ci(
        confidence_level=confidence, method="exact"
    )
    assert abs(float(lower) - ci.low) <= CP_ATOL
    assert abs(float(upper) - ci.high) <= CP_ATOL


def test_clopper_pearson_closed_forms_at_the_ends():
    # k = 0: P(Bin(n, U) = 0) = (1-U)^n = 1 - confidence (one-sided);
    # k = n: L^n = 1 - confidence.
    n = np.array([1, 10, 100, 10_000])
    _, upper = clopper_pearson(np.zeros(4, dtype=int), n, 0.95, sided="upper")
    np.testing.assert_allclose(upper, 1 - 0.05 ** (1 / n), rtol=1e-12)
    lower, _ = clopper_pearson(n, n, 0.95, sided="lower")
    np.testing.assert_allclose(lower, 0.05 ** (1 / n), rtol=1e-12)
    lower, upper = clopper_pearson(n, n, 0.95, sided="two")
    np.testing.assert_allclose(lower, 0.025 ** (1 / n), rtol=1e-12)
    np.testing.assert_array_equal(upper, 1.0)


def test_clopper_pearson_is_vectorized_and_broadcasts():
    k = np.array([[0, 3, 7], [10, 1, 5]])
    lower, upper = clopper_pearson(k, 10, 0.9)
    assert lower.shape == upper.shape == (2, 3)
    for idx in np.ndindex(k.shape):
        lo, up = clopper_pearson(int(k[idx]), 10, 0.9)
        assert (lower[idx], upper[idx]) == (lo, up)
    assert np.all((lower <= k / 10) & (k / 10 <= upper))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(k=-1, n=10), "k must"),
        (dict(k=11, n=10), r"k must satisfy 0 <= k <= n, got k=11 with n=10"),
        (dict(k=1, n=0), "n must"),
        (dict(k=1.0, n=10), "k must"),
        (dict(k=[1, 2], n=[10, 10, 10]), "broadcast"),
        (dict(k=1, n=10, confidence=1.0), "confidence"),
        (dict(k=1, n=10, confidence=math.nan), "confidence"),
        (dict(k=1, n=10, sided="both"), "sided must"),
    ],
)
def test_clopper_pearson_rejects_bad_input(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        clopper_pearson(**kwargs)


# ---------------------------------------------------------------------------
# implied_constant: configurations
# ---------------------------------------------------------------------------

# The c1 = 0.1 configurations have A = 3 exp(-25.6) ~ 2e-11 (every eta
# constrains c); "4.1-floor" has A = 3 exp(-2.56) = 0.23, so an eta constrains
# c only where U(eta) > 0.23, which exercises log(U - A) and unconstrained eta.
CONFIGS = {
    "4.1-c1": (
        theorem_4_1,
        dict(n=20, d=50, width=32, depth=3, kappa=0.5, c1=0.1, part=2),
    ),
    "4.1-dropped": (
        theorem_4_1,
        dict(n=20, d=50, width=32, depth=3, kappa=0.5, c1=None, part=2),
    ),
    "4.1-part1": (
        theorem_4_1,
        dict(n=20, width=32, depth=3, kappa=0.5, c1=0.1, part=1),
    ),
    "5.1": (theorem_5_1, dict(n=20, d=200, depth=4)),
    # Branch switch at eta = 4 zeta_0^2 r = 1.28, inside the tested grids.
    "corollary": (corollary_5_1, dict(n=20, d=200, depth=4, r=0.02)),
    "6.1": (theorem_6_1, dict(n=20, d=200)),
}
FLOOR = {
    "4.1-floor": (
        theorem_4_1,
        dict(n=20, d=50, width=32, depth=3, kappa=0.5, c1=0.01, part=2),
    )
}
ALL_CONFIGS = {**CONFIGS, **FLOOR}


def floor_of(params: dict) -> float:
    """``A = depth exp(-c1 kappa^2 width^2)`` (0 without a c1 term)."""
    if params.get("c1") is None:
        return 0.0
    return params["depth"] * math.exp(
        -params["c1"] * params["kappa"] ** 2 * params["width"] ** 2
    )


def scale(params: dict, eta: np.ndarray) -> np.ndarray:
    """``1 + 2 log n + B(eta)``: the size of the terms that cancel in ``log P_fail``.

    ``B = 8 d zeta_0^2 r / eta`` in the corollary's large-ball branch, else 0.
    """
    penalty = np.zeros_like(np.asarray(eta, dtype=float))
    if "r" in params:
        zeta0_sq = 4.0 * params["depth"]
        large = params["r"] > eta / (4 * zeta0_sq)
        penalty = np.where(large, 8 * params["d"] * zeta0_sq * params["r"] / eta, 0.0)
    return 1.0 + 2 * math.log(params["n"]) + penalty


def grid_for(name: str, eta: np.ndarray) -> np.ndarray:
    return eta + 4.0 if name == "4.1-part1" else eta


def log_fail(func, eta, c, params) -> np.ndarray:
    return np.atleast_1d(func(eta, c=c, **params).log_failure)


def assert_consistent(res: ImpliedConstant, func, params) -> None:
    """The inverse property and the optimality of ``c*``.

    At ``c*`` the bound's failure probability must equal ``U`` at the binding
    eta. ``c*`` has a relative error of a few ulps, so ``c* K`` is off by
    ~1e-16 (2 log n + B) and so is ``log P_fail``; allow 1e-13 (1 + 2 log n + B).
    """
    assert res.c_star == np.min(res.c_per_eta)
    lf = log_fail(func, res.eta, res.c_star, params)
    b = res.binding_index
    tol = 1e-13 * scale(params, res.eta)
    assert abs(lf[b] - math.log(res.upper[b])) <= tol[b]
    # Consistent at every eta (up to the same rounding) ...
    assert np.all(lf >= np.log(res.upper) - tol)
    # ... and a constant 1e-6 larger is not consistent at the binding eta.
    assert log_fail(func, res.eta, res.c_star * (1 + 1e-6), params)[b] < math.log(
        res.upper[b]
    )


@settings(max_examples=30)
@given(
    name=st.sampled_from(sorted(ALL_CONFIGS)),
    eta=st.lists(st.floats(0.05, 3.0), min_size=1, max_size=12, unique=True).map(
        sorted
    ),
    data=st.data(),
    trials=st.integers(1, 5000),
    confidence=st.sampled_from([0.9, 0.95, 0.99]),
)
def test_inverse_property(name, eta, data, trials, confidence):
    func, params = ALL_CONFIGS[name]
    eta = grid_for(name, np.array(eta))
    failures = np.array(
        data.draw(
            st.lists(st.integers(0, trials), min_size=len(eta), max_size=len(eta))
        )
    )
    res = implied_constant(func, eta, failures, trials, confidence=confidence, **params)
    _, upper = clopper_pearson(failures, trials, confidence, sided="upper")
    np.testing.assert_array_equal(res.upper, upper)
    np.testing.assert_array_equal(res.constrains, upper > floor_of(params))
    if math.isinf(res.c_star):
        assert np.all(upper <= floor_of(params))
        return
    assert res.c_star > 0
    assert_consistent(res, func, params)
    # Each per-eta constant solves P_fail(eta; c) = U(eta) on its own.
    for i in np.flatnonzero(np.isfinite(res.c_per_eta)):
        lf = log_fail(func, eta[i], res.c_per_eta[i], params)[0]
        assert abs(lf - math.log(upper[i])) <= 1e-13 * scale(params, eta[i])


@pytest.mark.parametrize("name", sorted(ALL_CONFIGS))
def test_per_eta_constant_matches_root_finding(name):
    # brentq on the public bound: an oracle that never uses the closed form.
    func, params = ALL_CONFIGS[name]
    eta = grid_for(name, np.array([0.3, 0.7, 1.5]))
    res = implied_constant(func, eta, [400, 60, 2], 1000, **params)
    for i, e in enumerate(eta):
        target = math.log(res.upper[i])
        if res.upper[i] <= floor_of(params):
            assert res.c_per_eta[i] == math.inf
            continue
        root = optimize.brentq(
            lambda c, e=e, t=target: float(func(e, c=c, **params).log_failure) - t,
            1e-12,
            1e12,
            xtol=1e-14,
            rtol=1e-13,
        )
        # brentq stops within xtol + rtol |c|; allow 10x that.
        assert math.isclose(res.c_per_eta[i], root, rel_tol=1e-12, abs_tol=1e-13)
    if name in FLOOR:  # the grid must exercise both cases
        assert res.constrains.any() and not res.constrains.all()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_zero_failures_give_a_finite_constant(name):
    func, params = CONFIGS[name]
    eta = grid_for(name, np.array([0.2, 0.5, 1.0, 2.0]))
    res = implied_constant(func, eta, np.zeros(4, dtype=int), 500, **params)
    # One-sided 95% upper limit of 0/500: 1 - 0.05^(1/500).
    np.testing.assert_allclose(res.upper, 1 - 0.05 ** (1 / 500), rtol=1e-12)
    assert 0 < res.c_star < math.inf
    assert_consistent(res, func, params)
    # With U equal at every eta, c(eta) = (2 log n + B - log(U - A)) / K(eta)
    # has a common numerator (B = 0) and K rises with eta, so the largest eta
    # binds. The corollary's B(eta) breaks this, so it is left out.
    if name != "corollary":
        assert res.binding_eta == eta[-1]


def test_zero_failures_closed_form_for_theorem_6_1():
    # c = (2 log n - log U) / (d eta^2) with U = 1 - 0.05^(1/T).
    eta, n, d, T = np.array([0.1, 0.4]), 20, 200, 300
    res = implied_constant("6.1", eta, [0, 0], T, n=n, d=d)
    u = 1 - 0.05 ** (1 / T)
    expected = (2 * math.log(n) - math.log(u)) / (d * eta**2)
    np.testing.assert_allclose(res.c_per_eta, expected, rtol=1e-13)
    assert res.c_star == pytest.approx(expected[1], rel=1e-13)
    assert res.binding_eta == 0.4


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_all_failures_use_upper_limit_one(name):
    func, params = CONFIGS[name]
    eta = grid_for(name, np.array([0.2, 0.5, 1.0]))
    res = implied_constant(func, eta, [50, 50, 50], 50, **params)
    np.testing.assert_array_equal(res.upper, 1.0)
    assert 0 < res.c_star < math.inf
    assert_consistent(res, func, params)


def test_all_failures_closed_form_with_c1():
    # U = 1: c = (2 log n - log(1 - A)) / K with A = beta exp(-c1 kappa^2 l^2),
    # K = (l d + l^2 beta) eta^2 / (16 zeta_0^4 (beta + 2)^4), zeta_0^4 = 16 beta^2.
    n, d, l, beta, kappa, c1, eta = 20, 50, 32, 3, 0.5, 0.01, 0.8
    res = implied_constant(
        "4.1", [eta], [7], 7, n=n, d=d, width=l, depth=beta, kappa=kappa, c1=c1, part=2
    )
    a = beta * math.exp(-c1 * kappa**2 * l**2)
    k = (l * d + l**2 * beta) * eta**2 / (16 * 16 * beta**2 * (beta + 2) ** 4)
    assert res.c_star == pytest.approx(
        (2 * math.log(n) - math.log1p(-a)) / k, rel=1e-13
    )


def test_unconstrained_grid_gives_infinite_constant_and_says_so():
    # A = depth exp(-c1 kappa^2 l^2) = 3 exp(-1e-4) > 1 >= U: no eta constrains c.
    params = dict(n=20, d=50, width=2, depth=3, kappa=0.5, c1=1e-4, part=2)
    res = implied_constant("4.1", [0.5, 1.0], [10, 0], 100, **params)
    assert res.c_star == math.inf
    assert math.isnan(res.binding_eta) and res.binding_index is None
    assert not res.constrains.any()
    assert any("c* = inf" in note for note in res.notes)
    assert "c* = inf" in str(res)
    with pytest.raises(ValueError, match="c must"):
        res.bound()


def test_partly_constrained_grid_ignores_unconstrained_eta():
    # A = 3 exp(-0.5 * 0.25 * 16) = 3 e^{-2} = 0.406. Counts 100, 30, 0 of 100
    # give U = 1, 0.38, 0.03: only the first eta (U > A) constrains c.
    params = dict(n=20, d=50, width=4, depth=3, kappa=0.5, c1=0.5, part=2)
    res = implied_constant("4.1", [0.5, 1.0, 2.0], [100, 30, 0], 100, **params)
    a = 3 * math.exp(-2.0)
    np.testing.assert_array_equal(res.constrains, res.upper > a)
    np.testing.assert_array_equal(res.constrains, [True, False, False])
    assert res.binding_index == 0
    assert np.all(np.isinf(res.c_per_eta[~res.constrains]))
    assert_consistent(res, theorem_4_1, params)


def test_dropped_c1_is_stated_and_is_the_smallest_constant():
    base = dict(n=20, d=50, width=32, depth=3, kappa=0.5, part=2)
    eta, k = [0.3, 0.6, 1.2], [300, 40, 1]
    dropped = implied_constant("4.1", eta, k, 1000, c1=None, **base)
    kept = implied_constant("4.1", eta, k, 1000, c1=0.01, **base)
    assert dropped.c1_dropped and not kept.c1_dropped
    assert any("dropped" in note for note in dropped.notes)
    assert not kept.notes
    assert dropped.c_star <= kept.c_star
    # Evaluating with c1=None at c* reproduces U at the binding eta.
    assert_consistent(dropped, theorem_4_1, {**base, "c1": None})


def test_theorem_accepted_as_string_or_function():
    params = dict(n=20, d=200, depth=4, r=0.02)
    by_name = implied_constant("corollary_5.1", [0.5, 1.0], [5, 1], 200, **params)
    by_func = implied_constant(corollary_5_1, [0.5, 1.0], [5, 1], 200, **params)
    assert by_name.theorem == by_func.theorem == "corollary_5.1"
    assert by_name.c_star == by_func.c_star
    np.testing.assert_array_equal(
        by_func.bound().log_failure,
        corollary_5_1(by_func.eta, c=by_func.c_star, **params).log_failure,
    )


def test_two_sided_equals_one_sided_at_half_the_error():
    params = dict(n=20, d=200, depth=4)
    two = implied_constant("5.1", [0.5, 1.0], [20, 3], 400, sided="two", **params)
    one = implied_constant("5.1", [0.5, 1.0], [20, 3], 400, confidence=0.975, **params)
    np.testing.assert_allclose(two.upper, one.upper, rtol=1e-14)
    assert two.c_star == pytest.approx(one.c_star, rel=1e-14)
    default = implied_constant("5.1", [0.5, 1.0], [20, 3], 400, **params)
    assert default.c_star > two.c_star  # a lower U allows a larger c


def test_single_sample_with_all_failures_excludes_every_constant():
    # n = 1, B = 0, U = 1: n^2 exp(-c K) >= 1 only for c = 0.
    res = implied_constant("6.1", [0.5], [10], 10, n=1, d=5)
    assert res.c_star == 0.0
    assert any("every c > 0" in note for note in res.notes)


def test_trials_per_eta():
    params = dict(n=20, d=200)
    res = implied_constant("6.1", [0.2, 0.4], [3, 1], [100, 400], **params)
    _, upper = clopper_pearson([3, 1], [100, 400], sided="upper")
    np.testing.assert_array_equal(res.upper, upper)


P51 = dict(n=20, d=200, depth=4)


@pytest.mark.parametrize(
    ("args", "kwargs", "pattern"),
    [
        (("7.1", [1.0], [0], 10), P51, "theorem must"),
        (("5.1", [1.0], [0], 10), {**P51, "c": 1.0}, "c must not be given"),
        (("5.1", [1.0], [0], 10), dict(n=20, d=200), r"missing \['depth'\]"),
        (("5.1", [1.0], [0], 10), {**P51, "width": 3}, r"unknown \['width'\]"),
        (("5.1", [1.0, 2.0], [0], 10), P51, "failures must have one count per eta"),
        (("5.1", [1.0], [11], 10), P51, "failures must satisfy"),
        (("5.1", [1.0], [-1], 10), P51, "failures must"),
        (("5.1", [1.0], [0], 0), P51, "trials must"),
        (("5.1", [1.0, 2.0], [0, 0], [10, 10, 10]), P51, "trials must be one integer"),
        (("5.1", [[1.0]], [[0]], 10), P51, "eta must be a scalar or 1-D"),
        (("5.1", [-1.0], [0], 10), P51, "eta"),
        (("5.1", [1.0], [0], 10), {**P51, "confidence": 0.0}, "confidence"),
        (("5.1", [1.0], [0], 10), {**P51, "sided": "lower"}, "sided must"),
        (("5.1", [1.0], [0], 10), {**P51, "depth": 0}, "depth must"),
        (
            ("4.1", [3.0], [0], 10),
            dict(n=2, width=3, depth=1, kappa=1.0, c1=None, part=1),
            "eta",
        ),
        (("corollary_5.1", [1.0], [0], 10), dict(n=2, d=3, depth=1, r=-1.0), "r must"),
    ],
)
def test_implied_constant_rejects_bad_input(args, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        implied_constant(*args, **kwargs)
