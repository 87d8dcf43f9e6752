"""Tests of the closed-form bounds (``bounds.theorem_*``, ``bounds.corollary_5_1``).

Oracles are the formulas as written in THEORY.md sections 3 to 6, evaluated
straightforwardly: with ``math`` at moderate parameters, and with mpmath at
50 significant digits over random parameters (where float64 would under- or
overflow in a direct evaluation). The package computes in log space, so the
oracle shares no code or evaluation order with it.

Tolerances. float64 evaluation of ``log P_fail`` chains about ten correctly
rounded operations (plus ``log``/``exp``/``log1p`` within 1 ulp) on numbers
whose magnitude is at most ``M = |2 log n| + |log A| + c K``; the absolute
error is therefore below ``10 * 2^-53 * (1 + M) < 2e-15 (1 + M)``; we allow
``1e-14 (1 + M)``. ``probability = -expm1(log P_fail)`` then carries the
absolute error ``P_fail * 1e-14 (1 + M)``.
"""

import inspect
import math
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bounds import (
    ProbabilityBound,
    corollary_5_1,
    theorem_3_1,
    theorem_3_2,
    theorem_4_1,
    theorem_5_1,
    theorem_6_1,
)

mpmath.mp.dps = 50


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats spread evenly in ``log10`` over ``[10^lo, 10^hi]``."""
    return st.floats(min_value=lo, max_value=hi).map(lambda x: 10.0**x)


sizes = st.integers(min_value=1, max_value=2000)
depths = st.integers(min_value=1, max_value=200)
constants = log_uniform(-3, 3)
etas = log_uniform(-3, 2)


def assert_log_close(actual: float, expected: mpmath.mpf, magnitude: float) -> None:
    """``|actual - expected| <= 1e-14 (1 + magnitude)`` (see the module doc)."""
    tol = 1e-14 * (1.0 + magnitude)
    assert abs(actual - float(expected)) <= tol, (actual, float(expected), tol)


# ---------------------------------------------------------------------------
# Oracles: THEORY.md formulas in mpmath (returns P_fail and the magnitude M)
# ---------------------------------------------------------------------------


def mp_4_1(eta, *, n, d, width, depth, kappa, c, c1, part):
    mpf = mpmath.mpf
    beta, l = mpf(depth), mpf(width)
    zeta0 = 2 * mpmath.sqrt(beta)
    first_exp = -mpf(c1) * mpf(kappa) ** 2 * l**2
    if part == 1:
        rate = mpf(c) * l**2 * beta * (mpf(eta) - 4) ** 2
        rate /= 64 * zeta0**4 * (beta + 2) ** 4
    else:
        rate = mpf(c) * (l * d + l**2 * beta) * mpf(eta) ** 2
        rate /= 16 * zeta0**4 * (beta + 2) ** 4
    fail = beta * mpmath.exp(first_exp) + mpf(n) ** 2 * mpmath.exp(-rate)
    magnitude = abs(2 * math.log(n)) + abs(float(first_exp)) + math.log(depth)
    return fail, magnitude + float(rate)


def mp_5_1(eta, *, n, d, depth, c):
    mpf = mpmath.mpf
    beta = mpf(depth)
    zeta0 = 2 * mpmath.sqrt(beta)
    rate = mpf(c) * d * mpf(eta) ** 2 / (16 * zeta0**4 * (beta + 2) ** 4)
    return mpf(n) ** 2 * mpmath.exp(-rate), 2 * math.log(n) + float(rate)


def mp_corollary(eta, *, n, d, depth, r, c):
    mpf = mpmath.mpf
    beta = mpf(depth)
    zeta0 = 2 * mpmath.sqrt(beta)
    rate = mpf(c) * d * mpf(eta) ** 2 / (64 * zeta0**4 * (beta + 2) ** 4)
    penalty = mpf(0)
    if not mpf(r) <= mpf(eta) / (4 * zeta0**2):
        penalty = 8 * d * zeta0**2 * mpf(r) / mpf(eta)
    magnitude = 2 * math.log(n) + float(rate) + float(penalty)
    return mpf(n) ** 2 * mpmath.exp(penalty - rate), magnitude


def mp_6_1(eta, *, n, d, c):
    mpf = mpmath.mpf
    rate = mpf(c) * d * mpf(eta) ** 2
    return mpf(n) ** 2 * mpmath.exp(-rate), 2 * math.log(n) + float(rate)


def check_against_oracle(bound: ProbabilityBound, fail: mpmath.mpf, magnitude: float):
    assert_log_close(float(bound.log_failure), mpmath.log(fail), magnitude)
    tol = float(fail) * 1e-14 * (1.0 + magnitude) + 1e-300
    assert abs(float(bound.probability) - float(1 - fail)) <= tol
    assert bool(bound.vacuous) == (fail >= 1)
    if fail < 1:
        assert_log_close(float(bound.log_probability), mpmath.log(1 - fail), magnitude)
    else:
        assert float(bound.log_probability) == -math.inf


# ---------------------------------------------------------------------------
# Spot values: plain `math`, moderate parameters
# ---------------------------------------------------------------------------


def straight_4_1_part2(eta, n, d, l, b, kappa, c, c1):
    zeta0 = 2 * math.sqrt(b)
    return (
        1
        - b * math.exp(-c1 * kappa**2 * l**2)
        - n**2
        * math.exp(-c * (l * d + l**2 * b) * eta**2 / (16 * zeta0**4 * (b + 2) ** 4))
    )


def straight_4_1_part1(eta, n, l, b, kappa, c, c1):
    zeta0 = 2 * math.sqrt(b)
    return (
        1
        - b * math.exp(-c1 * kappa**2 * l**2)
        - n**2
        * math.exp(-c * l**2 * b * (eta - 4) ** 2 / (64 * zeta0**4 * (b + 2) ** 4))
    )


SPOT_CASES = [
    pytest.param(
        lambda: theorem_4_1(
            3.0, n=10, d=50, width=64, depth=2, kappa=0.5, c=30.0, c1=0.01, part=2
        ),
        straight_4_1_part2(3.0, 10, 50, 64, 2, 0.5, 30.0, 0.01),
        id="4.1-part2",
    ),
    pytest.param(
        lambda: theorem_4_1(
            9.0, n=5, width=32, depth=1, kappa=1.0, c=40.0, c1=0.005, part=1
        ),
        straight_4_1_part1(9.0, 5, 32, 1, 1.0, 40.0, 0.005),
        id="4.1-part1",
    ),
    pytest.param(
        lambda: theorem_5_1(2.0, n=4, d=3000, depth=1, c=20.0),
        1 - 16 * math.exp(-20.0 * 3000 * 4.0 / (16 * 16 * 1 * 3**4)),
        id="5.1",
    ),
    pytest.param(
        lambda: corollary_5_1(4.0, n=3, d=50000, depth=1, r=0.1, c=1.0),
        1 - 9 * math.exp(-50000 * 16.0 / (64 * 16 * 3**4)),
        id="corollary-small-ball",
    ),
    pytest.param(
        lambda: corollary_5_1(4.0, n=3, d=5, depth=1, r=0.3, c=2e4),
        1 - 9 * math.exp(-2e4 * 5 * 16.0 / (64 * 16 * 3**4) + 8 * 5 * 4 * 0.3 / 4.0),
        id="corollary-large-ball",
    ),
    pytest.param(
        lambda: theorem_6_1(0.1, n=2, d=1000, c=1.0),
        1 - 4 * math.exp(-10.0),
        id="6.1",
    ),
]


@pytest.mark.parametrize(("make", "expected"), SPOT_CASES)
def test_spot_values(make, expected):
    # Direct float evaluation of 1 - sum of terms: relative error a few ulps of
    # the largest term, at most 1e-10 here (terms < 1e5).
    got = make()
    assert math.isclose(float(got.probability), expected, rel_tol=1e-12, abs_tol=1e-10)
    assert bool(got.vacuous) == (expected <= 0)


def test_spot_values_sgd():
    # Theorem 3.1 with n=10, L=1, mu=0.5, alpha=0.05: rho = 1 - 0.1*(0.05 - 0.0125)
    rho = 1 - (2 * 0.5 / 10) * (0.05 - 10 * 1 * 0.05**2 / 2)
    expected = rho**7 * 2.0 + 0.05 * 0.3 / (1 - rho)
    got = theorem_3_1(7, alpha=0.05, n=10, L=1.0, mu=0.5, eta=0.3, gap0=2.0)
    assert math.isclose(got, expected, rel_tol=1e-12)
    rho2 = 2 * 10 / (2 - 10 * 1 * 0.05)
    printed = theorem_3_2(7, alpha=0.05, n=10, L=1.0, eta=0.3, gap1=2.0, form="printed")
    derived = theorem_3_2(7, alpha=0.05, n=10, L=1.0, eta=0.3, gap1=2.0, form="derived")
    assert math.isclose(printed, rho2 * 2.0 / 7 + rho2 * 0.3, rel_tol=1e-14)
    assert math.isclose(derived, rho2 * 2.0 / (0.05 * 7) + rho2 * 0.3, rel_tol=1e-14)


# ---------------------------------------------------------------------------
# Random parameters against the mpmath oracle
# ---------------------------------------------------------------------------


@settings(max_examples=40)
@given(
    eta=etas,
    n=sizes,
    d=st.integers(1, 10**6),
    width=st.integers(1, 5000),
    depth=depths,
    kappa=log_uniform(-1, 0.5),
    c=constants,
    c1=log_uniform(-6, 1),
    part=st.sampled_from([1, 2]),
)
def test_theorem_4_1_matches_oracle(eta, n, d, width, depth, kappa, c, c1, part):
    eta = eta + 4.0 if part == 1 else eta
    params = dict(
        n=n, d=d, width=width, depth=depth, kappa=kappa, c=c, c1=c1, part=part
    )
    fail, magnitude = mp_4_1(eta, **params)
    check_against_oracle(theorem_4_1(eta, **params), fail, magnitude)


@settings(max_examples=40)
@given(eta=etas, n=sizes, d=st.integers(1, 10**6), depth=depths, c=constants)
def test_theorem_5_1_matches_oracle(eta, n, d, depth, c):
    fail, magnitude = mp_5_1(eta, n=n, d=d, depth=depth, c=c)
    check_against_oracle(theorem_5_1(eta, n=n, d=d, depth=depth, c=c), fail, magnitude)


@settings(max_examples=40)
@given(
    eta=etas,
    n=sizes,
    d=st.integers(1, 10**5),
    depth=depths,
    r=st.one_of(st.just(0.0), log_uniform(-8, 0)),
    c=constants,
)
def test_corollary_5_1_matches_oracle(eta, n, d, depth, r, c):
    fail, magnitude = mp_corollary(eta, n=n, d=d, depth=depth, r=r, c=c)
    got = corollary_5_1(eta, n=n, d=d, depth=depth, r=r, c=c)
    assert_log_close(float(got.log_failure), mpmath.log(fail), magnitude)
    assert bool(got.vacuous) == (fail >= 1)


@settings(max_examples=40)
@given(eta=etas, n=sizes, d=st.integers(1, 10**6), c=constants)
def test_theorem_6_1_matches_oracle(eta, n, d, c):
    fail, magnitude = mp_6_1(eta, n=n, d=d, c=c)
    check_against_oracle(theorem_6_1(eta, n=n, d=d, c=c), fail, magnitude)


@given(
    T=st.integers(0, 10**6),
    n=st.integers(1, 500),
    L=log_uniform(-2, 2),
    mu_frac=st.floats(1e-6, 1.0),
    alpha_frac=st.floats(1e-6, 0.999999),
    eta=st.floats(0, 10),
    gap0=st.floats(0, 100),
)
def test_theorem_3_1_matches_oracle(T, n, L, mu_frac, alpha_frac, eta, gap0):
    mu, alpha = mu_frac * L, alpha_frac * 2 / (n * L)
    mpf = mpmath.mpf
    rho = 1 - (2 * mpf(mu) / n) * (mpf(alpha) - n * mpf(L) * mpf(alpha) ** 2 / 2)
    expected = rho**T * gap0 + mpf(alpha) * eta / (1 - rho)
    got = theorem_3_1(T, alpha=alpha, n=n, L=L, mu=mu, eta=eta, gap0=gap0)
    # rho^T = exp(T log1p(-q)): the exponent's relative error of a few ulps
    # becomes an absolute error T q 1e-15 in log(rho^T); other terms a few ulps.
    q = float(1 - rho)
    tol = 1e-14 * float(expected) + 1e-15 * T * q * float(rho**T * gap0)
    assert abs(float(got) - float(expected)) <= tol + 1e-300


@given(
    T=st.integers(1, 10**6),
    n=st.integers(1, 500),
    L=log_uniform(-2, 2),
    alpha_frac=st.floats(1e-6, 0.999999),
    eta=st.floats(0, 10),
    gap1=st.floats(0, 100),
)
def test_theorem_3_2_matches_formula(T, n, L, alpha_frac, eta, gap1):
    alpha = alpha_frac * 2 / (n * L)
    rho = 2 * n / (2 - n * L * alpha)
    common = dict(alpha=alpha, n=n, L=L, eta=eta, gap1=gap1)
    printed = theorem_3_2(T, form="printed", **common)
    derived = theorem_3_2(T, form="derived", **common)
    # Five rounded operations each: relative error below 1e-15; allow 1e-14.
    assert math.isclose(printed, rho * gap1 / T + rho * eta, rel_tol=1e-14)
    assert math.isclose(derived, rho * gap1 / (alpha * T) + rho * eta, rel_tol=1e-14)


# ---------------------------------------------------------------------------
# Monotonicity claimed by the paper (and documented in the docstrings)
# ---------------------------------------------------------------------------


def rises(after: float, before: float) -> bool:
    """``after >= before`` for log-failure values, up to 1e-15 relative rounding."""
    return after >= before - 1e-15 * (1.0 + abs(before))


params_4_1 = st.fixed_dictionaries(
    dict(
        n=sizes,
        d=st.integers(1, 10**6),
        width=st.integers(1, 10**4),
        depth=st.integers(1, 1000),
        kappa=log_uniform(-2, 1),
        c=constants,
        c1=log_uniform(-8, 2),
        part=st.sampled_from([1, 2]),
    )
)


@given(p=params_4_1, eta=etas, step=st.integers(1, 1000))
def test_theorem_4_1_probability_rises_with_width(p, eta, step):
    eta = eta + 4.0 if p["part"] == 1 else eta
    narrow = theorem_4_1(eta, **p).log_failure
    wide = theorem_4_1(eta, **{**p, "width": p["width"] + step}).log_failure
    assert rises(narrow, wide)  # failure falls, probability rises


@given(p=params_4_1, eta=etas, step=st.integers(1, 1000))
def test_theorem_4_1_probability_falls_with_depth(p, eta, step):
    eta = eta + 4.0 if p["part"] == 1 else eta
    shallow = theorem_4_1(eta, **p).log_failure
    deep = theorem_4_1(eta, **{**p, "depth": p["depth"] + step}).log_failure
    assert rises(deep, shallow)


def test_theorem_4_1_depth_monotonicity_is_strict_where_not_saturated():
    # A fixed, non-saturated case: both terms must move (guards against a
    # bound that is flat in depth passing the weak test above).
    p = dict(n=10, d=100, width=20, kappa=0.5, c=1e4, c1=0.001, part=2)
    lf = [float(theorem_4_1(1.0, depth=b, **p).log_failure) for b in (1, 2, 4, 8)]
    assert all(b > a for a, b in zip(lf, lf[1:], strict=False))


@given(
    n=sizes, d=st.integers(1, 10**6), depth=depths, c=constants, eta=etas, step=sizes
)
def test_theorem_5_1_falls_with_depth_rises_with_d(n, d, depth, c, eta, step):
    base = theorem_5_1(eta, n=n, d=d, depth=depth, c=c).log_failure
    deeper = theorem_5_1(eta, n=n, d=d, depth=depth + step, c=c).log_failure
    wider_input = theorem_5_1(eta, n=n, d=d + step, depth=depth, c=c).log_failure
    assert rises(deeper, base)
    assert rises(base, wider_input)


def test_theorem_6_1_takes_no_depth_or_width():
    names = set(inspect.signature(theorem_6_1).parameters)
    assert names == {"eta", "n", "d", "c"}
    with pytest.raises(TypeError):
        theorem_6_1(1.0, n=2, d=10, c=1.0, depth=3)


eta_grids = st.lists(etas, min_size=2, max_size=20).map(sorted)


def bound_families():
    return st.sampled_from(["4.1-1", "4.1-2", "5.1", "corollary", "6.1"])


def evaluate(family, eta, n, d, depth, c):
    eta = np.asarray(eta)
    if family == "4.1-1":
        return theorem_4_1(
            eta + 4.0, n=n, width=8, depth=depth, kappa=0.5, c=c, c1=0.1, part=1
        )
    if family == "4.1-2":
        return theorem_4_1(
            eta, n=n, d=d, width=8, depth=depth, kappa=0.5, c=c, c1=0.1, part=2
        )
    if family == "5.1":
        return theorem_5_1(eta, n=n, d=d, depth=depth, c=c)
    if family == "corollary":
        return corollary_5_1(eta, n=n, d=d, depth=depth, r=1e-3, c=c)
    return theorem_6_1(eta, n=n, d=d, c=c)


@given(
    family=bound_families(),
    eta=eta_grids,
    n=sizes,
    d=st.integers(1, 10**5),
    depth=depths,
    c=constants,
)
def test_every_probability_bound_rises_with_eta(family, eta, n, d, depth, c):
    # probability = -expm1(log_failure) is a decreasing map of log_failure.
    lf = evaluate(family, eta, n, d, depth, c).log_failure
    assert all(rises(a, b) for a, b in zip(lf, lf[1:], strict=False))


@given(
    n=sizes,
    d=st.integers(1, 10**5),
    depth=depths,
    c=constants,
    eta=etas,
    r=log_uniform(-8, 0),
    factor=st.floats(1.0, 100.0),
    step=st.integers(1, 100),
)
def test_corollary_5_1_falls_with_radius_and_depth(
    n, d, depth, c, eta, r, factor, step
):
    base = corollary_5_1(eta, n=n, d=d, depth=depth, r=r, c=c).log_failure
    larger = corollary_5_1(eta, n=n, d=d, depth=depth, r=r * factor, c=c).log_failure
    deeper = corollary_5_1(eta, n=n, d=d, depth=depth + step, r=r, c=c).log_failure
    assert rises(larger, base)
    assert rises(deeper, base)


@given(
    n=sizes,
    d=st.integers(1, 10**4),
    depth=st.integers(1, 5),
    c=log_uniform(0, 8),
    r=log_uniform(-3, 3),
    f=st.floats(0.01, 0.99),
)
def test_corollary_5_1_dependence_on_d_in_large_ball_branch(n, d, depth, c, r, f):
    # Docstring claim: in the branch r > eta/(4 zeta_0^2) the exponent is
    # d (8 zeta_0^2 r / eta - c eta^2 / (64 zeta_0^4 (beta+2)^4)), so the bound
    # rises with d iff c eta^3 >= 512 zeta_0^6 (beta+2)^4 r. eta = f 4 zeta_0^2 r
    # with f < 1 lies in that branch.
    zeta0_sq = 4.0 * depth
    eta = f * 4.0 * zeta0_sq * r
    penalty = 8 * zeta0_sq * r / eta
    rate = c * eta**2 / (64 * zeta0_sq**2 * (depth + 2) ** 4)
    # log P_fail(d) is formed from terms of size d (penalty + rate); its
    # rounding error is below 1e-14 (1 + 2 log n + d (penalty + rate)).
    tol = 1e-14 * (1 + 2 * math.log(n) + (d + 1) * (penalty + rate))
    assume(abs(penalty - rate) > 10 * tol)
    lo = float(corollary_5_1(eta, n=n, d=d, depth=depth, r=r, c=c).log_failure)
    hi = float(corollary_5_1(eta, n=n, d=d + 1, depth=depth, r=r, c=c).log_failure)
    assert abs((hi - lo) - (penalty - rate)) <= 2 * tol
    rises_with_d = c * eta**3 >= 512 * zeta0_sq**3 * (depth + 2) ** 4 * r
    assert (hi < lo) == rises_with_d  # failure falls <=> probability rises


@given(
    n=st.integers(1, 200),
    L=log_uniform(-1, 1),
    mu_frac=st.floats(1e-3, 1.0),
    alpha_frac=st.floats(1e-3, 0.999),
    eta=st.floats(0, 10),
    gap0=st.floats(1e-3, 100),
    T=st.lists(st.integers(0, 10**5), min_size=2, max_size=30).map(sorted),
)
def test_theorem_3_1_falls_with_T_to_its_floor(n, L, mu_frac, alpha_frac, eta, gap0, T):
    mu, alpha = mu_frac * L, alpha_frac * 2 / (n * L)
    kw = dict(alpha=alpha, n=n, L=L, mu=mu, eta=eta, gap0=gap0)
    values = theorem_3_1(np.array(T), **kw)
    rho = 1 - (2 * mu / n) * (alpha - n * L * alpha**2 / 2)
    floor = alpha * eta / (1 - rho)
    # Cancellation in 1 - rho of the oracle: relative error 1e-16 / (1 - rho).
    tol = 1e-14 * floor / (1 - rho) + 1e-300
    assert np.all(np.diff(values) <= 1e-15 * values[1:])
    assert np.all(values >= floor - tol)
    # rho^T gap0 < 1e-300 relative to the floor once T log(1/rho) > ~720.
    far = int(math.ceil(800 / -math.log(rho))) if rho > 0 else 1
    assert math.isclose(theorem_3_1(far, **kw), floor, rel_tol=1e-12, abs_tol=tol)


@given(
    n=st.integers(1, 200),
    L=log_uniform(-1, 1),
    alpha_frac=st.floats(1e-3, 0.999),
    eta=st.floats(0, 10),
    gap1=st.floats(1e-3, 100),
    T=st.lists(st.integers(1, 10**5), min_size=2, max_size=30).map(sorted),
)
def test_theorem_3_2_falls_with_T_and_forms_differ_by_alpha(
    n, L, alpha_frac, eta, gap1, T
):
    alpha = alpha_frac * 2 / (n * L)
    kw = dict(alpha=alpha, n=n, L=L, gap1=gap1)
    printed = theorem_3_2(np.array(T), form="printed", eta=eta, **kw)
    derived = theorem_3_2(np.array(T), form="derived", eta=eta, **kw)
    floor = 2 * n / (2 - n * L * alpha) * eta
    for values in (printed, derived):
        assert np.all(np.diff(values) <= 1e-15 * values[1:])
        assert np.all(values >= floor * (1 - 1e-15))
    # Without the floor the two forms differ by exactly the factor 1/alpha
    # (three rounded operations each: rtol 1e-14).
    printed0 = theorem_3_2(np.array(T), form="printed", eta=0.0, **kw)
    derived0 = theorem_3_2(np.array(T), form="derived", eta=0.0, **kw)
    np.testing.assert_allclose(derived0 * alpha, printed0, rtol=1e-14)


# ---------------------------------------------------------------------------
# Extreme parameters and log-space precision
# ---------------------------------------------------------------------------

EXTREME = dict(n=10**6, d=10**6, depth=1000)


@pytest.mark.parametrize("eta", [1e-12, 1e-3, 1.0, 1e6])
@pytest.mark.parametrize("c", [1e-6, 1.0, 1e6])
def test_no_nan_or_inf_at_extreme_parameters(eta, c):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = [
            theorem_4_1(eta, width=10**5, kappa=0.5, c=c, c1=1e-6, part=2, **EXTREME),
            theorem_4_1(
                eta + 4.0, width=10**5, kappa=0.5, c=c, c1=1e-6, part=1, **EXTREME
            ),
            theorem_5_1(eta, c=c, **EXTREME),
            corollary_5_1(eta, r=0.0, c=c, **EXTREME),
            theorem_6_1(eta, n=EXTREME["n"], d=EXTREME["d"], c=c),
        ]
        for res in results:
            for value in (res.log_failure, res.probability, res.failure):
                assert np.isfinite(value), res
            assert not np.isnan(res.log_probability)
        # With a positive radius the penalty 8 d zeta_0^2 r / eta is 3.2e22 at
        # eta = 1e-12: log P_fail is finite, P_fail itself exceeds float64.
        ball = corollary_5_1(eta, r=1.0, c=c, **EXTREME)
        assert np.isfinite(ball.log_failure)
        assert not np.isnan(ball.log_probability)


def test_log_probability_keeps_what_probability_rounds_away():
    # log P_fail = log 4 - 1000 * 0.7 = -698.6: P_fail = 2.5e-304 is far
    # below float64's 1 - 1e-16 but still a normal float.
    res = theorem_6_1(np.sqrt(0.7), n=2, d=1000, c=1.0)
    log_fail = math.log(4) - 700.0
    assert math.isclose(float(res.log_failure), log_fail, rel_tol=1e-14)
    assert float(res.probability) == 1.0
    assert math.isclose(float(res.log_probability), -math.exp(log_fail), rel_tol=1e-12)


def test_probability_bound_properties_in_log_space():
    # Naively, 1 - exp(-1e-20) is 0 and log(1 - exp(-700)) is 0.
    log_failure = np.array([-1e-20, -700.0, 0.0, 5.0])
    res = ProbabilityBound("test", np.ones(4), log_failure)
    np.testing.assert_allclose(res.probability[:2], [1e-20, 1.0], rtol=1e-15)
    assert res.probability[2] == 0.0
    assert math.isclose(res.probability[3], 1 - math.exp(5.0), rel_tol=1e-15)
    assert math.isclose(res.log_probability[0], math.log(1e-20), rel_tol=1e-15)
    assert math.isclose(res.log_probability[1], -math.exp(-700.0), rel_tol=1e-15)
    assert np.all(np.isneginf(res.log_probability[2:]))
    np.testing.assert_array_equal(res.vacuous, [False, False, True, True])
    np.testing.assert_allclose(res.failure, np.exp(log_failure), rtol=1e-15)


def test_vacuous_flags_and_shape():
    eta = np.array([[1e-3, 1.0], [10.0, 100.0]])
    res = theorem_6_1(eta, n=10, d=10, c=1.0)
    assert res.log_failure.shape == eta.shape
    expected = 100 * np.exp(-10 * eta**2) >= 1
    np.testing.assert_array_equal(res.vacuous, expected)
    assert np.all(res.probability[res.vacuous] <= 0)
    assert np.all(np.isneginf(res.log_probability[res.vacuous]))
    np.testing.assert_allclose(res.failure, 100 * np.exp(-10 * eta**2), rtol=1e-13)


def test_dropping_c1_term_equals_c1_to_infinity():
    p = dict(n=10, d=100, width=10, depth=3, kappa=0.5, c=1.0, part=2)
    eta = np.array([0.5, 5.0, 50.0])
    dropped = theorem_4_1(eta, c1=None, **p).log_failure
    huge = theorem_4_1(eta, c1=1e6, **p).log_failure
    finite = theorem_4_1(eta, c1=0.01, **p).log_failure
    np.testing.assert_array_equal(dropped, huge)
    assert np.all(finite > dropped)


def test_width_sequence_uses_the_maximum():
    p = dict(n=10, d=100, depth=3, kappa=0.5, c=1.0, c1=0.1, part=2)
    seq = theorem_4_1(2.0, width=[4, 32, 8], **p).log_failure
    assert seq == theorem_4_1(2.0, width=32, **p).log_failure


def test_part_1_does_not_depend_on_d():
    p = dict(n=10, width=16, depth=3, kappa=0.5, c=1.0, c1=0.1, part=1)
    assert theorem_4_1(6.0, d=5, **p).log_failure == theorem_4_1(6.0, **p).log_failure


def test_result_arrays_are_read_only():
    res = theorem_5_1(np.array([1.0, 2.0]), n=3, d=10, depth=2, c=1.0)
    with pytest.raises(ValueError, match="read-only"):
        res.log_failure[0] = 0.0


# ---------------------------------------------------------------------------
# Hypotheses are checked
# ---------------------------------------------------------------------------

P41 = dict(n=10, d=100, width=16, depth=3, kappa=0.5, c=1.0, c1=0.1, part=2)
P51 = dict(n=10, d=100, depth=3, c=1.0)
PC = dict(n=10, d=100, depth=3, r=0.1, c=1.0)
P61 = dict(n=10, d=100, c=1.0)
P31 = dict(alpha=0.01, n=10, L=1.0, mu=0.5, eta=0.1, gap0=1.0)
P32 = dict(alpha=0.01, n=10, L=1.0, eta=0.1, gap1=1.0, form="printed")

INVALID = [
    # (function, first positional, overrides, name expected in message)
    (theorem_3_1, 10, {"alpha": 0.2}, r"alpha .*2/\(n L\)"),
    (theorem_3_1, 10, {"alpha": 0.0}, "alpha"),
    (theorem_3_1, 10, {"mu": 2.0}, "mu"),
    (theorem_3_1, 10, {"mu": 0.0}, "mu"),
    (theorem_3_1, 10, {"L": -1.0}, "L must"),
    (theorem_3_1, 10, {"eta": -0.1}, "eta"),
    (theorem_3_1, 10, {"gap0": math.nan}, "gap0"),
    (theorem_3_1, -1, {}, "T must"),
    (theorem_3_1, [1.0, 2.0], {}, "T must"),
    (theorem_3_1, 10, {"n": 0}, "n must"),
    (theorem_3_2, 0, {}, "T must"),
    (theorem_3_2, 10, {"alpha": 0.2}, r"alpha .*2/\(n L\)"),
    (theorem_3_2, 10, {"form": "fixed"}, "form must"),
    (theorem_3_2, 10, {"gap1": math.inf}, "gap1"),
    (theorem_4_1, 4.0, {"part": 1}, r"eta .*> 4"),
    (theorem_4_1, [5.0, 3.0], {"part": 1}, r"eta .*> 4"),
    (theorem_4_1, 0.0, {}, "eta"),
    (theorem_4_1, math.nan, {}, "eta"),
    (theorem_4_1, 1.0, {"part": 3}, "part must"),
    (theorem_4_1, 1.0, {"n": 0}, "n must"),
    (theorem_4_1, 1.0, {"d": 0}, "d must"),
    (theorem_4_1, 1.0, {"d": None}, "d must"),
    (theorem_4_1, 1.0, {"width": 0}, "width must"),
    (theorem_4_1, 1.0, {"width": 2.0}, "width must"),
    (theorem_4_1, 1.0, {"width": [4, 0]}, "width must"),
    (theorem_4_1, 1.0, {"width": []}, "width must"),
    (theorem_4_1, 1.0, {"depth": 0}, "depth must"),
    (theorem_4_1, 1.0, {"depth": True}, "depth must"),
    (theorem_4_1, 1.0, {"kappa": 0.0}, "kappa must"),
    (theorem_4_1, 1.0, {"c": 0.0}, "c must"),
    (theorem_4_1, 1.0, {"c": math.inf}, "c must"),
    (theorem_4_1, 1.0, {"c1": -1.0}, "c1 must"),
    (theorem_5_1, -1.0, {}, "eta"),
    (theorem_5_1, math.inf, {}, "eta"),
    (theorem_5_1, "1.0", {}, "eta"),
    (theorem_5_1, 1.0, {"d": -5}, "d must"),
    (theorem_5_1, 1.0, {"c": -1.0}, "c must"),
    (corollary_5_1, 1.0, {"r": -0.1}, "r must"),
    (corollary_5_1, 0.0, {}, "eta"),
    (corollary_5_1, 1.0, {"r": math.nan}, "r must"),
    (theorem_6_1, 1.0, {"n": 0}, "n must"),
    (theorem_6_1, 1.0, {"d": 1.5}, "d must"),
]
BASE = {
    theorem_3_1: P31,
    theorem_3_2: P32,
    theorem_4_1: P41,
    theorem_5_1: P51,
    corollary_5_1: PC,
    theorem_6_1: P61,
}


@pytest.mark.parametrize(
    ("func", "first", "overrides", "pattern"),
    INVALID,
    ids=[f"{f.__name__}-{o or a}" for f, a, o, _ in INVALID],
)
def test_invalid_input_raises_value_error_naming_the_argument(
    func, first, overrides, pattern
):
    with pytest.raises(ValueError, match=pattern):
        func(first, **{**BASE[func], **overrides})


def test_error_message_states_range_and_value():
    with pytest.raises(ValueError, match=r"^width must be an integer >= 1, got 0$"):
        theorem_4_1(1.0, **{**P41, "width": 0})
    with pytest.raises(ValueError, match=r"0 < alpha < 2/\(n L\) = 0\.2, got 0\.3"):
        theorem_3_1(1, **{**P31, "alpha": 0.3})
