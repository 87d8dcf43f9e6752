"""The bounds at extreme magnitudes: silent, never NaN, and right in the limit.

Every bound is computed in log space, so parameters anywhere in the float
range (and integers far beyond it) must give a finite ``log P_fail`` or the
``+-inf`` that is its exact limit, without a warning (warnings are errors
here) and without an ``OverflowError``; or a ``ValueError`` naming the
argument when a hypothesis of the theorem fails (the SGD step size).
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounds import (
    corollary_5_1,
    theorem_3_1,
    theorem_3_2,
    theorem_4_1,
    theorem_5_1,
    theorem_6_1,
)

# floats spread over the whole positive range, and integers past float's
reals = st.floats(min_value=-300.0, max_value=300.0).map(lambda x: 10.0**x)
counts = st.one_of(
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=0, max_value=450).map(lambda k: 10**k),
)


def _silently(fn, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(**kwargs)


def _check(bound):
    """No NaN anywhere; the derived quantities are consistent with log P_fail."""
    lf = np.asarray(bound.log_failure)
    assert not np.isnan(lf).any(), bound
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        failure, probability, log_p = (
            bound.failure,
            bound.probability,
            bound.log_probability,
        )
    assert not np.isnan(failure).any() and not np.isnan(probability).any()
    assert not np.isnan(log_p).any()
    np.testing.assert_array_equal(bound.vacuous, lf >= 0)


@given(
    eta=reals,
    n=counts,
    d=counts,
    width=counts,
    depth=counts,
    kappa=reals,
    c=reals,
    c1=reals,
    part=st.sampled_from([1, 2]),
)
def test_theorem_4_1_is_silent_at_any_magnitude(
    eta, n, d, width, depth, kappa, c, c1, part
):
    eta = 4.0 + max(eta, 1e-12) if part == 1 else eta  # part 1 needs eta > 4
    _check(
        _silently(
            theorem_4_1,
            eta=eta,
            n=n,
            d=d,
            width=width,
            depth=depth,
            kappa=kappa,
            c=c,
            c1=c1,
            part=part,
        )
    )


@given(eta=reals, n=counts, d=counts, depth=counts, c=reals)
def test_theorem_5_1_and_6_1_are_silent_at_any_magnitude(eta, n, d, depth, c):
    _check(_silently(theorem_5_1, eta=eta, n=n, d=d, depth=depth, c=c))
    _check(_silently(theorem_6_1, eta=eta, n=n, d=d, c=c))


@given(eta=reals, n=counts, d=counts, depth=counts, r=reals, c=reals)
def test_corollary_5_1_is_silent_at_any_magnitude(eta, n, d, depth, r, c):
    _check(_silently(corollary_5_1, eta=eta, n=n, d=d, depth=depth, r=r, c=c))


@given(
    T=counts,
    step=st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
    n=counts,
    L=reals,
    mu_frac=st.floats(1e-6, 1.0),
    eta=st.one_of(st.just(0.0), reals),
    gap=st.one_of(st.just(0.0), reals),
)
def test_sgd_bounds_are_silent_at_any_magnitude(T, step, n, L, mu_frac, eta, gap):
    limit = 2.0 / (float(n) * L) if n < 10**300 else 0.0
    alpha = step * limit
    if not alpha > 0.0:  # the step-size hypothesis cannot hold: named, no warning
        with pytest.raises(ValueError, match="alpha must be a finite number"):
            _silently(theorem_3_1, T=T, alpha=limit, n=n, L=L, mu=L, eta=eta, gap0=gap)
        return
    kwargs = dict(T=T, alpha=alpha, n=n, L=L, eta=eta)
    b31 = _silently(theorem_3_1, mu=mu_frac * L, gap0=gap, **kwargs)
    assert not math.isnan(b31) and b31 >= 0.0
    for form in ("printed", "derived"):
        b32 = _silently(theorem_3_2, gap1=gap, form=form, **kwargs)
        assert not math.isnan(b32) and b32 >= 0.0
        if gap == 0.0 and eta == 0.0:
            assert b32 == 0.0  # rho may be inf; rho * 0 is still 0


def test_the_issue_cases_are_finite_or_their_exact_limit():
    # width 1e200: exp(-c l^2 ...) and exp(-c1 kappa^2 l^2) vanish exactly
    b = _silently(
        theorem_4_1,
        eta=1.0,
        n=10,
        d=10,
        width=10**200,
        depth=2,
        kappa=1.0,
        c=1.0,
        c1=1.0,
        part=2,
    )
    assert b.log_failure == -math.inf and b.probability == 1.0
    # eta = 1e300: the rate term vanishes, the floor depth exp(-c1 kappa^2 l^2) stays
    b = _silently(
        theorem_4_1,
        eta=1e300,
        n=10,
        d=10,
        width=10,
        depth=2,
        kappa=1.0,
        c=1.0,
        c1=1.0,
        part=2,
    )
    assert b.log_failure == pytest.approx(math.log(2) - 100.0, rel=1e-15)
    b = _silently(theorem_6_1, eta=1.0, n=10, d=10**400, c=1.0)
    assert b.log_failure == -math.inf
    # penalty and rate both beyond floats: the larger logarithm decides
    kw = dict(n=10, d=10**400, depth=1, c=1.0)
    assert _silently(corollary_5_1, eta=1e-3, r=1e300, **kw).log_failure == math.inf
    assert _silently(corollary_5_1, eta=1e100, r=1e-300, **kw).log_failure == -math.inf
    assert _silently(corollary_5_1, eta=1e-5, r=0.0, **kw).log_failure == -math.inf
