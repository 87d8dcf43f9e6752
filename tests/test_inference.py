"""The inference layer (montecarlo.claims): tests against scipy and hand
computations, the verdict rule, and claims on synthetic stores whose answer is
known. Several tests exist to catch a specific mutation (named in the test)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import bounds
import montecarlo as mc
from montecarlo._results import load_run
from montecarlo._stats import TRIAL_COLUMNS, TrialBlock
from montecarlo._store import ResultsStore
from montecarlo.claims import Claim, Evidence, Kind, adjust, collect, holm, tests
from montecarlo.claims._experiments import sgd_claims
from montecarlo.claims._monte_carlo import (
    COLLAPSE_FACTOR,
    EQUIVALENCE_MARGIN,
    monte_carlo_claims,
)

# --- exact tests against scipy ------------------------------------------------


@given(
    n=st.integers(1, 400),
    data=st.data(),
    p0=st.floats(0.0, 1.0),
)
def test_binomial_tail_is_scipys_exact_one_sided_test(n, data, p0):
    # Mutation caught: P(X > k) instead of P(X >= k).
    k = data.draw(st.integers(0, n))
    expected = stats.binomtest(k, n, p0, alternative="greater").pvalue if n else 1.0
    assert tests.binomial_tail(k, n, p0) == pytest.approx(
        expected, rel=1e-9, abs=1e-300
    )


def test_binomial_tail_counts_the_observed_value():
    # P(X >= 3) for Binom(3, 1/2) is 1/8; P(X > 3) would be 0.
    assert tests.binomial_tail(3, 3, 0.5) == pytest.approx(0.125)
    assert tests.binomial_tail(0, 10, 0.3) == 1.0


def test_bound_test_is_bonferroni_over_live_points():
    # Mutation caught: Bonferroni dropped (p_value = p_min).
    k = np.array([5, 9, 1, 0])
    t = np.array([100, 100, 100, 100])
    b = np.array([0.03, 0.05, 1.2, 0.01])  # the third point is vacuous
    res = tests.bound_test(k, t, b)
    p = [
        stats.binomtest(int(ki), 100, bi, alternative="greater").pvalue
        for ki, bi in zip(k[[0, 1, 3]], b[[0, 1, 3]], strict=True)
    ]
    assert res.m == 3
    assert res.p_min == pytest.approx(min(p), rel=1e-9)
    assert res.p_value == pytest.approx(min(1.0, 3 * min(p)), rel=1e-9)
    assert res.index == 1


def test_holm_against_a_hand_computation():
    # sorted: 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, max(0.06, 0.04)
    out = holm([0.01, 0.04, 0.03, 0.005, math.nan])
    np.testing.assert_allclose(out[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(out[4])


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30))
def test_holm_between_raw_and_bonferroni_and_order_preserving(p):
    p = np.array(p)
    adj = holm(p)
    assert (adj >= p - 1e-15).all()
    assert (adj <= np.minimum(1.0, p.size * p) + 1e-15).all()
    order = np.argsort(p, kind="stable")
    assert (np.diff(adj[order]) >= -1e-15).all()


def test_adjust_applies_holm_per_family():
    def claim(kind, p):
        return Claim("5.1", kind, "c", "t", "s", (Evidence("h", p, False),), n_min=100)

    family = [claim(Kind.INEQUALITY, 0.02), claim(Kind.PROSE, 0.01)]
    observations = [claim(Kind.OBSERVATION, 0.001), claim(Kind.OBSERVATION, 0.03)]
    user = [claim(Kind.USER_CONSTANT, 0.03)]
    out = adjust([*family, *observations, *user])
    assert [c.evidence[0].p_adjusted for c in out[:2]] == [0.02, 0.02]
    assert [c.evidence[0].p_adjusted for c in out[2:4]] == [0.002, 0.03]
    assert math.isnan(out[4].evidence[0].p_adjusted)
    assert out[4].verdict == "violated"  # raw p = 0.03 < 0.05


def test_equivalence_tost_against_a_known_case():
    rng = np.random.default_rng(0)
    b = rng.exponential(1.0, 2000)
    same = rng.exponential(1.0, 2000)
    eq = tests.equivalence(same, b, 0.25)
    assert eq.p_equivalent < 1e-6 and eq.p_different > 0.5
    assert -0.25 < eq.low < eq.high < 0.25
    far = tests.equivalence(b + 1.0, b, 0.25)
    assert far.p_different < 1e-6 and far.p_equivalent > 0.5
    # the TOST p-values are the one-sided Mann-Whitney p-values of the shifted data
    p1 = stats.mannwhitneyu(same + 0.25, b, alternative="greater").pvalue
    p2 = stats.mannwhitneyu(same - 0.25, b, alternative="less").pvalue
    assert eq.p_equivalent == pytest.approx(max(p1, p2))


def test_hodges_lehmann_matches_brute_force():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.3, 1, 60), rng.normal(0, 1, 50)
    est, lo, hi = tests.hodges_lehmann(a, b, 0.9)
    d = np.sort((a[:, None] - b[None, :]).ravel())
    assert est == pytest.approx(np.median(d), abs=1e-9)
    assert d[0] <= lo <= est <= hi <= d[-1]


def test_trend_one_sided_pvalues_are_scipys():
    rng = np.random.default_rng(2)
    x = np.repeat([1.0, 2.0, 4.0], 50)
    y = x + rng.normal(0, 2, x.size)
    tr = tests.trend(x, y)
    assert tr.p_increasing == pytest.approx(
        stats.spearmanr(x, y, alternative="greater").pvalue
    )
    assert tr.p_for(-1) == (tr.p_decreasing, tr.p_increasing)


def test_power_law_recovers_slope_and_crossing():
    x = np.array([4.0, 16.0, 64.0, 256.0])
    y = 100.0 * x**-2.0
    boot = y * np.exp(np.random.default_rng(3).normal(0, 0.05, (200, 4)))
    fit = tests.power_law(x, y, boot)
    assert fit.slope == pytest.approx(-2.0)
    assert fit.crossing(1e-2) == pytest.approx(100.0)
    assert fit.p_falls < 1e-10 and fit.p_rises > 0.99


def test_mean_above_is_bonferroni_over_checkpoints():
    mean = np.array([1.0, 1.2, 0.5])
    se = np.array([0.1, 0.1, 0.1])
    bound = np.array([1.0, 1.0, 1.0])
    res = tests.mean_above(mean, se, bound)
    assert res.p_above == pytest.approx(3 * stats.norm.sf(2.0))
    assert res.p_below == pytest.approx(stats.norm.cdf(2.0))  # the largest
    assert res.worst == 1


def test_running_min_above_uses_every_earlier_step():
    # E g_k = 2 for k < 3, then 0.5: min_{k<T} crosses the bound 1 at T = 4.
    mean = np.array([2.0, 2.0, 2.0, 0.5, 0.5])
    se = np.full(5, 0.01)
    res = tests.running_min_above(np.array([1, 3, 5]), mean, se, np.ones(3))
    assert res.p_above < 1e-10  # Q_1 = Q_3 = 2 > 1
    assert res.p_below == pytest.approx(1.0)  # not below at T = 1 and 3
    low = tests.running_min_above(np.array([4, 5]), mean, se, np.ones(2))
    assert low.p_above == 1.0  # min(1, 2 Phi(50))
    assert low.p_below < 1e-10


# --- the verdict rule ------------------------------------------------------------


def _claim(evidence, n_min=100, default="inconclusive", kind=Kind.PROSE, **kw):
    return Claim(
        "4.1 part 2",
        kind,
        "c",
        "t",
        "s",
        tuple(evidence),
        n_min=n_min,
        default=default,
        **kw,
    )


@pytest.mark.parametrize(
    ("evidence", "n_min", "default", "expected"),
    [
        (
            [Evidence("up", 0.001, True), Evidence("down", 0.9, False)],
            100,
            "inconclusive",
            "consistent",
        ),
        (
            [Evidence("up", 0.9, True), Evidence("down", 0.001, False)],
            100,
            "inconclusive",
            "violated",
        ),
        (
            [Evidence("up", 0.2, True), Evidence("down", 0.6, False)],
            100,
            "inconclusive",
            "inconclusive",
        ),
        ([Evidence("up", 0.001, True)], 10, "inconclusive", "inconclusive"),
        ([Evidence("exceeds", 0.3, False)], 100, "consistent", "consistent"),
        ([Evidence("up", math.nan, True)], 100, "consistent", "inconclusive"),
        ([], 100, "consistent", "consistent"),
    ],
)
def test_verdict_rule(evidence, n_min, default, expected):
    assert _claim(evidence, n_min, default).verdict == expected


def test_contradiction_wins_over_support():
    c = _claim([Evidence("up", 0.001, True), Evidence("down", 0.002, False)])
    assert c.verdict == "violated"


def test_adjusted_p_decides():
    e = Evidence("down", 0.01, False, p_adjusted=0.2)
    assert _claim([e]).verdict == "inconclusive"


def test_parts_aggregate_to_ensemble_dependent():
    yes = _claim([Evidence("up", 0.001, True)], ensemble="small")
    no = _claim([Evidence("down", 0.001, False)], ensemble="orthogonal")
    agg = Claim("5.1", Kind.PROSE, "c", "t", "s", parts=(yes, no))
    assert agg.verdict == "ensemble-dependent"
    assert "small: consistent" in agg.reason and "orthogonal: violated" in agg.reason
    assert Claim("5.1", Kind.PROSE, "c", "t", "s", parts=(no, no)).verdict == "violated"
    assert len(agg.all_evidence()) == 2


def test_claim_rejects_bad_fields():
    with pytest.raises(ValueError, match="alpha"):
        Claim("5.1", Kind.PROSE, "c", "t", "s", alpha=1.5)
    with pytest.raises(ValueError, match="p_value"):
        Evidence("h", 1.5, True)
    with pytest.raises(ValueError, match="kind"):
        Claim("5.1", "prose", "c", "t", "s")


# --- c* and its grid truncation ------------------------------------------------


def test_statement_c_star_equals_implied_constant_on_the_informative_grid():
    # Mutation caught: the truncation off by one (the first zero-failure eta
    # excluded, or one more point included).
    s = bounds.STATEMENTS["5.1"]
    params = dict(n=10, d=20, depth=2)
    eta = np.geomspace(1e-3, 1.0, 12)
    k = np.array([300, 250, 180, 90, 40, 9, 2, 0, 0, 0, 0, 0])
    got = s.c_star(eta, k[None, :], np.array([400]), params)[0]
    first_zero = 7
    ref = s.implied_constant(eta[: first_zero + 1], k[: first_zero + 1], 400, params)
    assert got == pytest.approx(ref.c_star, rel=1e-12)
    shorter = s.implied_constant(eta[:first_zero], k[:first_zero], 400, params)
    longer = s.implied_constant(eta[: first_zero + 2], k[: first_zero + 2], 400, params)
    assert got != pytest.approx(shorter.c_star) and got != pytest.approx(longer.c_star)


def test_constant_at_inverts_the_bound():
    s = bounds.STATEMENTS["4.1 part 2"]
    params = dict(n=10, d=10, width=32, depth=2, kappa=1.0)
    eta = np.array([0.3, 1.0, 2.0])
    q = np.array([0.2, 0.01, 1e-6])
    c = s.constant_at(eta, q, params)
    for e, qi, ci in zip(eta, q, c, strict=True):
        assert s.failure_bound(np.array([e]), ci, params).failure[0] == pytest.approx(
            qi
        )


def test_theorem_summary_reports_the_probability_not_the_failure_fraction(tmp_path):
    # Mutation caught: P(eta_ref) replaced by the failure fraction. eta_ref is
    # the group's pooled median; for the smaller configuration P(eta_ref) is
    # well above 1/2.
    spec = _spec(
        T61.replace(
            "output_activation = false", "output_activation = false\ndepth = [1, 2]"
        )
    )
    confusion = [np.linspace(0.0, 1.0, 400), np.linspace(0.0, 3.0, 400)]
    run = _store(tmp_path, spec, {"t61": [{"min_inner": -c} for c in confusion]})
    s = run.summaries[0]
    expected = float(np.mean(confusion[0] <= s.eta_ref))
    assert expected > 0.7
    assert s.p_ref == pytest.approx(expected)


# --- claims on synthetic stores --------------------------------------------------


def _store(tmp_path, spec_text, records):
    """Write per-trial records into a real results store; return the loaded run."""
    spec = mc.parse_spec(spec_text, name="synthetic")
    with ResultsStore(tmp_path) as store:
        store.set_meta({"spec_name": "synthetic", "spec_text": spec_text, "seed": "0"})
        store.add_configs((c.config_hash, c.content()) for _, c in spec.configs())
        col = {name: i for i, name in enumerate(TRIAL_COLUMNS)}
        for group, configs in spec.groups.items():
            for config, rec in zip(configs, records[group], strict=True):
                m = len(rec["min_inner"])
                base = np.full((m, len(TRIAL_COLUMNS)), np.nan)
                base[:, col["finite"]] = 1.0
                for key, values in rec.items():
                    base[:, col[key]] = values
                block = TrialBlock(np.arange(m), base, (), np.zeros((m, 0, 4)))
                store.write_block(config.config_hash, 0, block)
    return load_run(tmp_path)


def _spec(groups, trials=400):
    return f"""
title = "synthetic"
eta = {{ start = 1e-3, stop = 10.0, num = 41 }}
[defaults]
trials = {trials}
n = 10
d = 10
depth = 2
width = 8
{groups}
"""


T61 = """
[configs.t61]
theorem = "6.1"
weights = "orthogonal_linear"
activation = "identity"
output_activation = false
"""

T41_WIDTH = """
[configs.w]
theorem = "4.1"
weights = "gaussian"
kappa = 1.0
width = [4, 16, 64, 256]
"""


def _quantiles(m, scale):
    """``m`` evenly spread quantiles of Exp(scale): a fixed, tie-free sample."""
    return scale * stats.expon.ppf((np.arange(m) + 0.5) / m)


def _by_claim(claims, text, variant="raw", kind=None):
    out = [
        c
        for c in claims
        if text in c.claim and c.variant == variant and (kind is None or c.kind is kind)
    ]
    assert len(out) == 1, [c.claim for c in claims]
    return out[0]


def test_width_claims_on_confusion_that_grows_with_width(tmp_path):
    # Confusion growing like width: the prose claim is contradicted, c_q falls
    # like width^-2 (K grows like width^2): the inequality is violated.
    widths = [4, 16, 64, 256]
    recs = [
        {"min_inner": -_quantiles(400, w / 4), "min_cos": -_quantiles(400, 0.1)}
        for w in widths
    ]
    run = _store(tmp_path, _spec(T41_WIDTH), {"w": recs})
    claims = adjust(monte_carlo_claims(run))
    assert _by_claim(claims, "wider networks").verdict == "violated"
    ineq = _by_claim(claims, "one constant c serves every width")
    assert ineq.kind is Kind.INEQUALITY and ineq.verdict == "violated"
    assert "b = -3" in ineq.statistic  # c_q ~ width^-(2 + 1) here
    limit = _by_claim(claims, "approaches 1 along width")
    assert limit.verdict == "violated"
    # the normalized confusion does not move: no trend, but c_q still
    # collapses (K grows while the tail stays put)
    assert _by_claim(claims, "wider networks", "normalized").verdict == "inconclusive"
    assert _by_claim(claims, "one constant", "normalized").verdict == "violated"


def test_width_claims_on_confusion_that_falls_fast_enough(tmp_path):
    widths = [4, 16, 64, 256]
    recs = [{"min_inner": -_quantiles(400, 4.0 / w)} for w in widths]
    run = _store(tmp_path, _spec(T41_WIDTH), {"w": recs})
    claims = adjust(monte_carlo_claims(run))
    assert _by_claim(claims, "wider networks").verdict == "consistent"
    assert (
        _by_claim(claims, "one constant c serves every width").verdict == "consistent"
    )
    assert _by_claim(claims, "approaches 1 along width").verdict == "consistent"


def test_c_star_claim_threshold_is_the_collapse_factor(tmp_path):
    # c_q ~ K^-1 (tail fixed) times a falling factor: exactly at the threshold
    # the claim must not be violated (a fall of COLLAPSE_FACTOR / 2 over the sweep).
    depths = [1, 2, 4, 8]
    spec = _spec(
        """
[configs.d]
theorem = "6.1"
weights = "orthogonal_linear"
activation = "identity"
output_activation = false
depth = [1, 2, 4, 8]
""",
        trials=2000,
    )
    # Theorem 6.1's K does not depend on depth: c_q ~ 1/eta_q^2.
    span = np.log(8.0)
    small = [
        np.exp(0.5 * np.log(COLLAPSE_FACTOR / 2) * np.log(dp) / span) for dp in depths
    ]
    run = _store(
        tmp_path, spec, {"d": [{"min_inner": -_quantiles(2000, s)} for s in small]}
    )
    claim = _by_claim(
        adjust(monte_carlo_claims(run)), "one constant c serves every depth"
    )
    assert claim.verdict == "consistent", claim.statistic
    big = [
        np.exp(0.5 * np.log(COLLAPSE_FACTOR * 4) * np.log(dp) / span) for dp in depths
    ]
    run2 = _store(
        tmp_path / "b", spec, {"d": [{"min_inner": -_quantiles(2000, s)} for s in big]}
    )
    claim2 = _by_claim(
        adjust(monte_carlo_claims(run2)), "one constant c serves every depth"
    )
    assert claim2.verdict == "violated", claim2.statistic


def test_independence_is_an_equivalence(tmp_path):
    spec = _spec(
        """
[configs.d]
theorem = "6.1"
weights = "orthogonal_linear"
activation = "identity"
output_activation = false
depth = [1, 2, 4, 8]
"""
    )
    same = [{"min_inner": -_quantiles(400, 1.0)} for _ in range(4)]
    run = _store(tmp_path, spec, {"d": same})
    c = _by_claim(adjust(monte_carlo_claims(run)), "independent of depth")
    assert c.kind is Kind.PROSE and c.verdict == "consistent"
    # a fall beyond the margin is a difference (the prose fails), but the
    # theorem's inequality is untouched: c_q rises
    falling = [{"min_inner": -_quantiles(400, 1.0 / dp)} for dp in (1, 2, 4, 8)]
    run2 = _store(tmp_path / "f", spec, {"d": falling})
    claims = adjust(monte_carlo_claims(run2))
    assert _by_claim(claims, "independent of depth").verdict == "violated"
    assert (
        _by_claim(claims, "one constant c serves every depth").verdict == "consistent"
    )
    assert EQUIVALENCE_MARGIN < 0.5


def test_user_constant_claim_never_counts_against_the_theorem(tmp_path):
    recs = [{"min_inner": -_quantiles(400, w / 4)} for w in (4, 16, 64, 256)]
    run = _store(tmp_path, _spec(T41_WIDTH), {"w": recs})
    claims = collect(run, c=1.0)
    user = [c for c in claims if c.kind is Kind.USER_CONSTANT]
    assert len(user) == 1 and not user[0].counts_as_verdict
    assert math.isnan(user[0].evidence[0].p_adjusted)


def test_sgd_claims_combine_instances():
    def inst(name, p_above, p_below, runs=400):
        ev = {
            "p_above": p_above,
            "p_below": p_below,
            "worst_T": 5,
            "bound_over_mean": 2.0,
            "max_lower_over_bound": 0.5,
        }
        return {
            "name": name,
            "info": {"loss": "square", "runs": runs, "eta": 0.1, "data": "gaussian"},
            "evidence": {
                "theorem_3_1": ev,
                "theorem_3_2_derived": ev,
                "theorem_3_2_printed": ev,
            },
        }

    result = {"runs": 400, "instances": [inst("a", 0.02, 1e-6), inst("b", 0.5, 1e-4)]}
    claims = {c.claim: c for c in sgd_claims(result)}
    c31 = claims["Theorem 3.1 holds on linear regression"]
    assert c31.evidence[0].p_value == pytest.approx(0.04)  # Bonferroni over 2
    assert c31.evidence[1].p_value == pytest.approx(1e-4)  # the largest
    assert c31.verdict == "violated"
    result["instances"][0] = inst("a", 0.03, 1e-6)
    assert {c.claim: c for c in sgd_claims(result)}[
        "Theorem 3.1 holds on linear regression"
    ].verdict == "consistent"
