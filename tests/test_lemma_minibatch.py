"""Lemma B.1 and Section 8's mini-batch statement: formulas, tests, claims, plots.

Exact formulas are checked against brute-force enumeration to float
tolerance; Monte Carlo checks use tolerances from the sample size at a stated
false-failure rate (each test fixes its seed, so it is deterministic; the
rate is that over seeds). Several tests exist to catch a specific mutation
(named in the test).
"""

import itertools
import json
import math
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, special, stats

import theory
from montecarlo import _lemma_b1 as lb
from montecarlo import _minibatch as mb
from montecarlo._rng import PhiloxStream, stream_key
from montecarlo._samplers import sphere
from montecarlo.claims import _tests as tests
from montecarlo.claims._family import adjust
from montecarlo.claims._lemma_minibatch import (
    dominance_margin,
    lemma_b1_claims,
    minibatch_claims,
)
from theory._minibatch import minibatch_inner_moments, minibatch_moments

# --- exact mini-batch moments -------------------------------------------------


def _enumerate(G: np.ndarray, B: int) -> tuple[float, float]:
    """Mean and variance of X_B over every ordered pair of disjoint batches."""
    n = G.shape[0]
    values = []
    for s0 in itertools.combinations(range(n), B):
        rest = [i for i in range(n) if i not in s0]
        for s1 in itertools.combinations(rest, B):
            values.append(G[np.ix_(s0, s1)].sum() / B**2)
    v = np.array(values)
    return float(v.mean()), float(v.var())


def _symmetric(rng: np.random.Generator, n: int) -> np.ndarray:
    z = rng.normal(size=(n, n))
    return z + z.T


@pytest.mark.parametrize("B", [1, 2, 3])
def test_moments_equal_enumeration_of_all_batch_pairs_n6(B):
    # Mutations caught: a q3 coefficient (B-1) instead of 2(B-1); sampling
    # with replacement; dropping the disjoint-pair term.
    rng = np.random.default_rng(B)
    X = sphere(rng, 6, 4)
    W = mb.gaussian_weights(rng, 4, [5], kappa=1.0)
    y = theory.labels.tanh_teacher(rng, 4)(X)
    for G in (
        _symmetric(rng, 6),
        theory.gram(W, X, y, activation="tanh", loss="square"),
    ):
        mean, var = minibatch_inner_moments(G, B)
        e_mean, e_var = _enumerate(G, B)
        scale = float(np.abs(G).max())
        assert mean == pytest.approx(e_mean, rel=1e-12, abs=1e-14 * scale)
        assert var == pytest.approx(e_var, rel=1e-10, abs=1e-14 * scale**2)


@given(n=st.integers(4, 8), data=st.data())
def test_moments_equal_enumeration_on_random_symmetric_matrices(n, data):
    B = data.draw(st.integers(1, n // 2))
    entries = data.draw(
        st.lists(st.floats(-10, 10, allow_nan=False), min_size=n * n, max_size=n * n)
    )
    Z = np.array(entries).reshape(n, n)
    G = Z + Z.T
    mean, var = minibatch_inner_moments(G, B)
    e_mean, e_var = _enumerate(G, B)
    assert mean == pytest.approx(e_mean, rel=1e-9, abs=1e-9)
    assert var == pytest.approx(e_var, rel=1e-7, abs=1e-7)
    # a constant added to every entry shifts X_B and leaves its variance
    mean_c, var_c = minibatch_inner_moments(G + 3.0, B)
    assert mean_c == pytest.approx(mean + 3.0, rel=1e-9, abs=1e-9)
    assert var_c == pytest.approx(var, rel=1e-6, abs=1e-6)
    # relabelling the samples changes nothing
    perm = np.random.default_rng(n).permutation(n)
    assert minibatch_inner_moments(G[np.ix_(perm, perm)], B)[1] == pytest.approx(
        var, rel=1e-9, abs=1e-9
    )


def test_moments_match_simulation_of_random_batch_pairs():
    # 200 000 random disjoint batch pairs from a network's Gram; z = 5 on the
    # mean and on the variance (normal approximation, SE of the variance from
    # the fourth central moment): false-failure rate below 1.2e-6.
    rng = np.random.default_rng(11)
    n, d, B, reps = 24, 6, 4, 200_000
    X = sphere(rng, n, d)
    W = mb.gaussian_weights(rng, d, [8, 8], kappa=1.0)
    y = theory.labels.tanh_teacher(rng, d)(X)
    G = theory.gram(W, X, y, activation="tanh", loss="square")
    idx = np.argsort(rng.random((reps, n)), axis=1)[:, : 2 * B]
    x = G[idx[:, :B, None], idx[:, None, B:]].sum(axis=(1, 2)) / B**2
    mean, var = minibatch_inner_moments(G, B)
    z = 5.0
    assert abs(x.mean() - mean) < z * x.std() / math.sqrt(reps)
    m4 = ((x - x.mean()) ** 4).mean()
    assert abs(x.var() - var) < z * math.sqrt((m4 - x.var() ** 2) / reps)


def test_shared_covariance_at_zero_mean_gradient_is_the_exact_remainder():
    # sum_j G_ij = 0: c1 = -v/(n-2) + Var(G_ii)/((n-1)(n-2)) (module docstring)
    rng = np.random.default_rng(5)
    n = 30
    g = rng.normal(size=(n, 12)) * rng.uniform(0.5, 2.0, size=(n, 1))
    g -= g.mean(axis=0)
    m = minibatch_moments(g @ g.T)
    diag = np.diag(g @ g.T)
    expected = -m.pair_variance / (n - 2) + diag.var() / ((n - 1) * (n - 2))
    assert m.shared_covariance == pytest.approx(expected, rel=1e-10)


def test_variance_has_the_stated_decomposition_and_validates_input():
    G = _symmetric(np.random.default_rng(2), 10)
    m = minibatch_moments(G)
    for B in (2, 3, 5):
        v, c1, c0 = m.pair_variance, m.shared_covariance, m.disjoint_covariance
        direct = (v - 2 * c1 + c0) / B**2 + 2 * (c1 - c0) / B + c0
        assert m.variance(B) == pytest.approx(direct, rel=1e-12)
    assert m.variance(1) == pytest.approx(m.pair_variance)
    with pytest.raises(ValueError, match=r"B must be an integer in \[1, n // 2 = 5\]"):
        m.variance(6)
    with pytest.raises(ValueError, match="B must be an integer"):
        minibatch_inner_moments(G, 1.5)
    with pytest.raises(ValueError, match="symmetric"):
        minibatch_moments(G + np.triu(np.ones((10, 10)), 1))
    with pytest.raises(ValueError, match="finite"):
        minibatch_moments(np.full((4, 4), np.nan))


# --- new statistical tests against scipy and hand computations ---------------


def test_mean_regression_two_points_by_hand():
    # Mutation caught: dropping 1/m^2 in the log-scale delta method.
    rng = np.random.default_rng(0)
    a, b = rng.exponential(2.0, 50), rng.exponential(5.0, 80)
    x = np.array([1.0, 3.0])
    design = np.column_stack([np.ones(2), x])
    lin = tests.mean_regression(design, [a, b])
    assert lin.coef[1] == pytest.approx((b.mean() - a.mean()) / 2.0)
    se = math.sqrt(a.var(ddof=1) / 50 + b.var(ddof=1) / 80) / 2.0
    assert lin.se[1] == pytest.approx(se)
    log = tests.mean_regression(design, [a, b], log=True)
    assert log.coef[1] == pytest.approx(math.log(b.mean() / a.mean()) / 2.0)
    se_log = (
        math.sqrt(
            a.var(ddof=1) / (50 * a.mean() ** 2) + b.var(ddof=1) / (80 * b.mean() ** 2)
        )
        / 2.0
    )
    assert log.se[1] == pytest.approx(se_log)
    z = stats.norm.ppf(0.975)
    assert lin.interval(1) == pytest.approx(
        (lin.coef[1] - z * se, lin.coef[1] + z * se)
    )
    assert lin.n_min == 50


def test_mean_regression_paired_is_the_t_statistic_of_row_contrasts():
    # Paired, linear: coef = mean of the per-row contrast H y_r, and coef / se
    # equals scipy's one-sample t statistic of those contrasts.
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(40, 5)) + rng.normal(size=(40, 1))  # correlated columns
    design = np.column_stack([np.ones(5), np.arange(5.0), np.arange(5.0) ** 2])
    fit = tests.mean_regression(design, Y, paired=True)
    H = np.linalg.solve(design.T @ design, design.T)
    contrast = Y @ H[2]
    assert fit.coef[2] == pytest.approx(contrast.mean())
    assert fit.coef[2] / fit.se[2] == pytest.approx(
        stats.ttest_1samp(contrast, 0.0).statistic
    )
    with pytest.raises(ValueError, match="positive means"):
        tests.mean_regression(design, -np.abs(Y), log=True, paired=True)


def test_binomial_bracket_is_scipys_exact_one_sided_tests():
    for k, n, low, high in ((3, 50, 0.05, 0.1), (12, 50, 0.09, 0.1), (0, 20, 0.0, 0.3)):
        p_above, p_below = tests.binomial_bracket(k, n, low, high)
        exp_above = stats.binomtest(k, n, high, alternative="greater").pvalue
        exp_below = (
            stats.binomtest(k, n, low, alternative="less").pvalue if low > 0 else 1.0
        )
        assert p_above == pytest.approx(exp_above if k else 1.0)
        assert p_below == pytest.approx(exp_below)
    with pytest.raises(ValueError, match="low and high"):
        tests.binomial_bracket(1, 10, 0.3, 0.2)


def test_sphere_pair_ks_accepts_the_sampler_and_rejects_a_wrong_law():
    # 20 000 independent pairs at d = 7: the right law gives p > 1e-4 (a
    # false failure has probability 1e-4); the law of d + 2 is rejected.
    rng = np.random.default_rng(7)
    x, y = sphere(rng, 20_000, 7), sphere(rng, 20_000, 7)
    inner = np.einsum("ij,ij->i", x, y)
    stat, p = tests.sphere_pair_ks(inner, 7)
    ref = stats.kstest((1 + inner) / 2, stats.beta(3.0, 3.0).cdf)
    assert (stat, p) == pytest.approx((ref.statistic, ref.pvalue))
    assert p > 1e-4
    assert tests.sphere_pair_ks(inner, 9)[1] < 1e-4
    with pytest.raises(ValueError, match="d must be an integer >= 2"):
        tests.sphere_pair_ks(inner, 1)


def test_page_trend_by_hand_and_scipy():
    data = np.array([[3.0, 2.0, 1.0], [3.0, 1.0, 2.0]])
    res = tests.page_trend(data)
    # ranks within rows: [3, 2, 1], [3, 1, 2]; rank sums [6, 3, 3];
    # L = 1*6 + 2*3 + 3*3 = 21
    assert res.statistic == 21.0
    assert res.p_decreasing == pytest.approx(
        stats.page_trend_test(data[:, ::-1]).pvalue
    )
    assert res.p_increasing == pytest.approx(stats.page_trend_test(data).pvalue)
    assert math.isnan(tests.page_trend(np.ones((4, 3))).p_increasing)


def test_mean_equivalence_is_tost_of_scipy_t_tests():
    y = np.random.default_rng(3).normal(-1.9, 0.2, 60)
    eq = tests.mean_equivalence(y, -2.0, 0.25)
    lo = stats.ttest_1samp(y, -2.25, alternative="greater").pvalue
    hi = stats.ttest_1samp(y, -1.75, alternative="less").pvalue
    assert eq.p_equivalent == pytest.approx(max(lo, hi))
    out_hi = stats.ttest_1samp(y, -1.75, alternative="greater").pvalue
    out_lo = stats.ttest_1samp(y, -2.25, alternative="less").pvalue
    assert eq.p_different == pytest.approx(min(1.0, 2 * min(out_hi, out_lo)))
    half = stats.t.ppf(0.95, 59) * y.std(ddof=1) / math.sqrt(60)
    assert (eq.low, eq.high) == pytest.approx((y.mean() - half, y.mean() + half))


def test_dominance_margin_by_hand():
    # two sizes 1, 2: slope of log(1 + B/2) on log B = log(4/3) / log 2
    assert dominance_margin([1, 2]) == pytest.approx(math.log(4 / 3) / math.log(2))
    # B = 2^k, k = -2..2 after centring: sum_k k log(1 + B/16) / (10 log 2)
    num = math.log((24 / 16) * 2**2 / ((17 / 16) ** 2 * (18 / 16)))
    assert dominance_margin([1, 2, 4, 8, 16]) == pytest.approx(num / (10 * math.log(2)))


# --- Lemma B.1: exact law, bracket, reference values -------------------------


@pytest.mark.parametrize("d", [2, 3, 7, 40])
def test_pair_tail_integrates_the_density_of_one_coordinate(d):
    # density of <x, y>: (1 - t^2)^((d-3)/2) / B(1/2, (d-1)/2) on [-1, 1]
    t = 0.3
    dens = lambda u: (1 - u * u) ** ((d - 3) / 2) / special.beta(0.5, (d - 1) / 2)  # noqa: E731
    tail, _ = integrate.quad(dens, t, 1.0)
    assert lb.pair_tail(t, d) == pytest.approx(2 * tail, rel=1e-8)


def test_two_pairs_sharing_a_point_are_independent():
    # S_2 uses P(|<x1,x2>| > t, |<x1,x3>| > t) = p(t)^2. 400 000 triples at
    # d = 4 with p = 0.3: two-sided exact binomial test, false failure 1e-6.
    # Mutation caught: a wrong S_2 (this is the identity it relies on).
    rng = np.random.default_rng(17)
    reps, d = 400_000, 4
    x1, x2, x3 = (sphere(rng, reps, d) for _ in range(3))
    a = np.abs(np.einsum("ij,ij->i", x1, x2))
    b = np.abs(np.einsum("ij,ij->i", x1, x3))
    a_t = 2 * stats.beta.isf(0.15, 1.5, 1.5) - 1  # p(t) = 0.3
    assert lb.pair_tail(a_t, d) == pytest.approx(0.3)
    k = int(((a > a_t) & (b > a_t)).sum())
    assert stats.binomtest(k, reps, 0.09).pvalue > 1e-6


def test_bracket_and_threshold_and_references():
    n, d = 16, 20
    t = lb.tail_threshold(n, d)
    low, high, s1, s2 = lb.bonferroni_bracket(t, n, d)
    m = n * (n - 1) // 2
    assert s1 == pytest.approx(lb.TAIL_LEVEL) and high == pytest.approx(s1)
    assert s2 == pytest.approx(math.comb(m, 2) * (s1 / m) ** 2)
    assert low == pytest.approx(s1 - s2)
    # the star bound wins when S_1 - S_2 is negative
    low_big, high_big, s1_big, s2_big = lb.bonferroni_bracket(0.1, n, d)
    p = lb.pair_tail(0.1, d)
    assert s1_big - s2_big < 0 and low_big == pytest.approx(1 - (1 - p) ** (n - 1))
    assert high_big == 1.0
    # E|Z| = sqrt(2/pi) for one pair; the ceiling bounds the limit
    assert lb.gaussian_limit(2) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-9)
    for n in lb.NS:
        assert (
            lb.gaussian_limit(n) < lb.maximal_ceiling(n) <= 2 * math.sqrt(math.log(n))
        )
    with pytest.raises(ValueError, match="level must be in"):
        lb.tail_threshold(4, 5, level=7.0)


def test_max_inner_trials_equals_brute_force_on_the_same_streams():
    key = stream_key(3, "test")
    M, pairs = lb.max_inner_trials(5, [2, 3, 6], 4, key)
    for t in range(4):
        x = sphere(PhiloxStream(key, t), 6, 5)
        for j, n in enumerate([2, 3, 6]):
            brute = max(abs(x[i] @ x[k]) for i in range(n) for k in range(i + 1, n))
            assert M[t, j] == pytest.approx(brute, rel=1e-12)
        assert pairs[3 * t : 3 * t + 3] == pytest.approx(
            [x[0] @ x[1], x[2] @ x[3], x[4] @ x[5]]
        )
    again, _ = lb.max_inner_trials(5, [2, 3, 6], 4, key)
    assert np.array_equal(M, again)
    with pytest.raises(ValueError, match="ns must be a non-empty increasing"):
        lb.max_inner_trials(5, [4, 3], 2, key)


# --- the experiments end to end ----------------------------------------------


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    t0 = time.perf_counter()
    lemma = lb.run_lemma_b1(out, seed=2020, quick=True)
    t1 = time.perf_counter()
    mini = mb.run_minibatch(out, seed=2020, quick=True)
    t2 = time.perf_counter()
    return out, lemma, mini, t1 - t0, t2 - t1


def test_quick_runs_write_their_json_in_time(quick_results):
    out, lemma, mini, t_lemma, t_mini = quick_results
    assert t_lemma < 20 and t_mini < 20
    assert json.loads((out / "lemma_b1.json").read_text()) == json.loads(
        json.dumps(lemma)
    )
    assert json.loads((out / "minibatch.json").read_text()) == json.loads(
        json.dumps(mini)
    )
    assert len(lemma["by_d"]) == len(lb.DIMS)
    assert np.shape(lemma["by_d"][0]["max_inner"]) == (lb.TRIALS[True], len(lb.NS))
    assert [e["name"] for e in mini["ensembles"]] == list(mb.ENSEMBLES)


def test_quick_claims_have_the_expected_verdicts(quick_results):
    # At alpha = 1e-3 a true statement is rejected with probability <= 1e-3
    # per test (over seeds); the supporting p-values of quick runs are far
    # smaller (below 1e-9 for seeds 0-3 and 2020), so the verdicts do not hang
    # on the seed.
    _, lemma, mini, _, _ = quick_results
    rate, growth, law = adjust(lemma_b1_claims(lemma, alpha=1e-3))
    assert rate.verdict == "consistent"
    assert growth.verdict == "consistent"
    assert law.verdict == "consistent"
    variance, eta = adjust(minibatch_claims(mini, alpha=1e-3))
    by_name = {p.ensemble: p.verdict for p in variance.parts}
    assert by_name == {
        "tanh_init": "violated",
        "linear_init": "violated",
        "linear_stationary": "consistent",
    }
    assert variance.verdict == "ensemble-dependent"
    assert eta.verdict == "consistent"


def test_stationary_ensemble_has_zero_mean_gradient():
    for k in range(3):
        G = mb.draw_gram("linear_stationary", PhiloxStream(stream_key(1, "s"), k))
        assert abs(G.sum()) < 1e-12 * G.shape[0] * np.trace(G)
        G0 = mb.draw_gram("linear_init", PhiloxStream(stream_key(1, "s"), k))
        assert G0.sum() > 1e-3 * G0.shape[0] * np.trace(G0)
    rng = np.random.default_rng(0)
    X = sphere(rng, 30, 4)
    y = theory.labels.tanh_teacher(rng, 4)(X)
    W = mb.least_squares_readout(mb.gaussian_weights(rng, 4, [6, 5], kappa=1.0), X, y)
    v = np.linalg.lstsq(X, y, rcond=None)[0]
    out = theory.forward(W, X, activation="identity", output_activation=False)
    assert out == pytest.approx(X @ v, rel=1e-9, abs=1e-12)
    with pytest.raises(ValueError, match="ensemble must be one of"):
        mb.draw_gram("relu", PhiloxStream(stream_key(1, "s"), 0))


def test_run_functions_reject_bad_seeds(tmp_path):
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        lb.run_lemma_b1(tmp_path, seed=-1)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        mb.run_minibatch(tmp_path, seed=1.5)


# --- claims on synthetic data with known answers -----------------------------


def _lemma_result(
    mean_fn, trials: int = 200, ks_p: float = 0.5, dims=(20, 80, 160, 320, 640)
):
    """A lemma_b1.json whose M has mean ``mean_fn(d, N)`` and 5% lognormal noise."""
    rng = np.random.default_rng(0)
    dims, ns = list(dims), [4, 16, 64, 256]
    rows = []
    for d in dims:
        mean = np.array([mean_fn(d, n) for n in ns])
        noise = np.exp(
            rng.normal(0, 0.05, (trials, 1)) + rng.normal(0, 0.02, (trials, len(ns)))
        )
        M = np.maximum.accumulate(mean * noise / np.exp(0.05**2 / 2), axis=1)
        tail = []
        for n in ns:
            t = lb.tail_threshold(n, d)
            low, high, _, s2 = lb.bonferroni_bracket(t, n, d)
            tail.append({"n": n, "t": t, "low": low, "high": high, "s2": s2})
        rows.append(
            {
                "d": d,
                "max_inner": M.tolist(),
                "ks": {"n": 1000, "statistic": 0.01, "p_value": ks_p},
                "pair_hist": {"edges": [-1.0, 0.0, 1.0], "counts": [5, 5], "n": 10},
                "tail": tail,
            }
        )
    return {
        "settings": {
            "dims": dims,
            "ns": ns,
            "trials": trials,
            "fit_min_d": 80,
            "tail_level": 0.1,
        },
        "reference": {
            "ceiling": [lb.maximal_ceiling(n) for n in ns],
            "gaussian_limit": [lb.gaussian_limit(n) for n in ns],
        },
        "by_d": rows,
    }


def _verdicts(result, alpha=0.01):
    return [c.verdict for c in adjust(lemma_b1_claims(result, alpha=alpha))]


def test_lemma_claims_pass_on_the_lemmas_scaling():
    # E[M] = 0.8 * gaussian limit / sqrt(d): rate -1/2, below the ceiling,
    # concave in sqrt(log N). The tail counts of this fake M are not from the
    # exact law, so the law claim is not asserted here.
    res = _lemma_result(lambda d, n: 0.8 * lb.gaussian_limit(n) / math.sqrt(d))
    rate, growth, _ = _verdicts(res)
    assert (rate, growth) == ("consistent", "consistent")


def test_lemma_rate_claim_fails_on_a_slower_decay():
    res = _lemma_result(lambda d, n: 0.8 * lb.gaussian_limit(n) * d**-0.2 / 20**0.3)
    assert _verdicts(res)[0] == "violated"


def test_lemma_growth_claim_fails_on_log_n_growth():
    # M sqrt(d) = 0.4 log N: convex in sqrt(log N) and above the ceiling at N=256
    res = _lemma_result(lambda d, n: 0.4 * math.log(n) / math.sqrt(d))
    assert _verdicts(res)[1] == "violated"


def test_lemma_law_claim_fails_on_a_bad_sampler():
    res = _lemma_result(
        lambda d, n: 0.8 * lb.gaussian_limit(n) / math.sqrt(d), ks_p=1e-9
    )
    assert _verdicts(res)[2] == "violated"
    # a maximum that always exceeds the tail threshold (P(M > t) = 1 > S_1)
    res = _lemma_result(lambda d, n: 0.99)
    assert _verdicts(res)[2] == "violated"


def test_lemma_claims_with_no_dimension_in_the_fit_range():
    res = _lemma_result(
        lambda d, n: 0.8 * lb.gaussian_limit(n) / math.sqrt(d), dims=(20, 40)
    )
    rate, growth, _ = adjust(lemma_b1_claims(res, alpha=0.01))
    assert rate.verdict == "inconclusive" and "fewer than 2" in rate.statistic
    assert len(growth.evidence) == 2 and growth.verdict == "consistent"


def test_lemma_claims_are_inconclusive_with_few_trials():
    res = _lemma_result(
        lambda d, n: 0.8 * lb.gaussian_limit(n) / math.sqrt(d), trials=10
    )
    assert _verdicts(res)[:2] == ["inconclusive", "inconclusive"]


def _minibatch_result(exponent: float, eta_slope: float, draws: int = 60):
    """A minibatch.json with Var = B^exponent (jittered) and eta = B^eta_slope."""
    rng = np.random.default_rng(4)
    bs = [1, 2, 4, 8, 16]
    b = np.array(bs, dtype=float)
    ens = {
        k: []
        for k in (
            "variance",
            "eta",
            "exponent",
            "pair_variance",
            "shared_covariance",
            "disjoint_covariance",
            "mean_gradient_share",
        )
    }
    for _ in range(draws):
        e = exponent + rng.normal(0, 0.05)
        ens["variance"].append((b**e).tolist())
        ens["exponent"].append(e)
        ens["eta"].append((b**eta_slope * rng.uniform(0.8, 1.2, b.size)).tolist())
        ens["pair_variance"].append(1.0)
        ens["shared_covariance"].append(0.0)
        ens["disjoint_covariance"].append(0.0)
        ens["mean_gradient_share"].append(0.0)
    return {
        "settings": {"batch_sizes": bs},
        "ensembles": [{"name": "synthetic", "description": "", "skipped": 0, **ens}],
    }


def test_minibatch_claims_on_synthetic_data():
    variance, eta = adjust(minibatch_claims(_minibatch_result(-2.0, -1.0), alpha=0.01))
    assert (variance.verdict, eta.verdict) == ("consistent", "consistent")
    variance, eta = adjust(minibatch_claims(_minibatch_result(-1.0, 1.0), alpha=0.01))
    assert (variance.verdict, eta.verdict) == ("violated", "violated")
    # within the margin but not provably so: 60 draws at -2.2 +- 0.05
    variance, _ = adjust(minibatch_claims(_minibatch_result(-2.22, -1.0), alpha=0.01))
    assert variance.verdict == "inconclusive"
    few = minibatch_claims(_minibatch_result(-2.0, -1.0, draws=10), alpha=0.01)
    assert few[0].verdict == "inconclusive"
    # a draw whose exponent is undefined (a zero variance) is left out
    res = _minibatch_result(-2.0, -1.0)
    res["ensembles"][0]["exponent"][0] = None
    part = minibatch_claims(res, alpha=0.01)[0].parts[0]
    assert part.n_min == 59 and part.verdict == "consistent"
    assert math.isnan(mb._exponent(np.array([1.0, 0.0]), np.array([1.0, 2.0])))


# --- figures -------------------------------------------------------------------


def test_plots_write_png_and_pdf(quick_results, tmp_path):
    from figures._lemma_minibatch import plot_lemma_b1, plot_minibatch

    _, lemma, mini, _, _ = quick_results
    paths = plot_lemma_b1(json.loads(json.dumps(lemma)), tmp_path) + plot_minibatch(
        json.loads(json.dumps(mini)), tmp_path
    )
    assert [p.name for p in paths] == [
        "lemma_b1.png",
        "lemma_b1.pdf",
        "minibatch.png",
        "minibatch.pdf",
    ]
    assert all(p.stat().st_size > 1000 for p in paths)
    with pytest.raises(ValueError, match="result must be the dictionary of minibatch"):
        plot_minibatch({"settings": {}}, tmp_path)
