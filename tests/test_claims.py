"""The verdict logic and the claim tests of figures._claims, on synthetic stores
whose answer is known (a clear violation, a clear pass, too few trials)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import montecarlo as mc
from figures import load_run, verdict
from figures._claims import (
    COLLAPSE_FACTOR,
    VERDICTS,
    bound_claim,
    c_star_claims,
    experiment_claims,
    format_p,
    hodges_lehmann_ci,
    independence_claim,
    log_rate_factor,
    trend_claim,
)
from montecarlo._stats import TRIAL_COLUMNS, TrialBlock
from montecarlo._store import ResultsStore

# --- synthetic stores ---------------------------------------------------------


def _store(tmp_path, spec_text, records):
    """Write per-trial records into a real results store; return the loaded run.

    ``records[group]`` lists one dict per configuration with arrays
    ``min_inner`` and optionally ``min_cos``, ``max_norm``, ``cos01``.
    """
    spec = mc.parse_spec(spec_text, name="synthetic")
    with ResultsStore(tmp_path) as store:
        store.set_meta({"spec_name": "synthetic", "spec_text": spec_text, "seed": "0"})
        store.add_configs((c.config_hash, c.content()) for _, c in spec.configs())
        for group, configs in spec.groups.items():
            for config, rec in zip(configs, records[group], strict=True):
                m = len(rec["min_inner"])
                base = np.full((m, len(TRIAL_COLUMNS)), np.nan)
                col = {name: i for i, name in enumerate(TRIAL_COLUMNS)}
                base[:, col["finite"]] = 1.0
                for key in ("min_inner", "min_cos", "max_norm", "cos01"):
                    if key in rec:
                        base[:, col[key]] = rec[key]
                block = TrialBlock(np.arange(m), base, (), np.zeros((m, 0, 4)))
                store.write_block(config.config_hash, 0, block)
    return load_run(tmp_path)


def _spec(groups, trials=400, extra_defaults=""):
    return f"""
title = "synthetic"
eta = {{ start = 1e-3, stop = 10.0, num = 41 }}
[defaults]
trials = {trials}
n = 10
d = 10
depth = 2
width = 8
{extra_defaults}
{groups}
"""


T61 = """
[configs.t61]
theorem = "6.1"
weights = "orthogonal_linear"
activation = "identity"
output_activation = false
"""


def _exp_quantiles(m):
    """``m`` evenly spread quantiles of Exp(1): a fixed, tie-free sample."""
    return stats.expon.ppf((np.arange(m) + 0.5) / m)


# --- verdict ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        # trend claims
        ((1e-6, True, 100), {}, "consistent"),
        ((1e-6, False, 100), {}, "violated"),
        ((0.3, True, 100), {}, "inconclusive"),
        ((1e-6, True, 29), {}, "inconclusive"),  # too few trials
        ((math.nan, True, 100), {}, "inconclusive"),
        ((0.049, False, 30), {}, "violated"),  # boundary: exactly min_trials
        ((0.05, False, 30), {}, "inconclusive"),  # boundary: p == alpha
        # null claims
        ((1e-6, False, 100), {"null": True}, "violated"),
        ((1e-6, True, 100), {"null": True}, "consistent"),
        ((0.5, False, 100), {"null": True}, "consistent"),
        ((0.5, False, 100), {"null": True, "powered": False}, "inconclusive"),
        ((1e-6, False, 5), {"null": True}, "inconclusive"),
        ((0.02, False, 100), {"null": True, "alpha": 0.01}, "consistent"),
        ((0.02, False, 10), {"null": True, "min_trials": 10}, "violated"),
    ],
)
def test_verdict_table(args, kwargs, expected):
    v, reason = verdict(*args, **kwargs)
    assert v == expected, reason
    assert reason


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        ((1.5, True, 10), {}, "p_value"),
        ((-0.1, True, 10), {}, "p_value"),
        ((0.5, True, -1), {}, "n_min"),
        ((0.5, True, 2.5), {}, "n_min"),
        ((0.5, True, 10), {"alpha": 0.0}, "alpha"),
        ((0.5, True, 10), {"alpha": 1.0}, "alpha"),
        ((0.5, True, 10), {"min_trials": 0}, "min_trials"),
    ],
)
def test_verdict_rejects_bad_input_naming_it(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        verdict(*args, **kwargs)


@settings(max_examples=60)
@given(
    p=st.floats(0.0, 1.0),
    ok=st.booleans(),
    n=st.integers(0, 500),
    null=st.booleans(),
    powered=st.booleans(),
)
def test_verdict_properties(p, ok, n, null, powered):
    v, _ = verdict(p, ok, n, null=null, powered=powered)
    assert v in VERDICTS
    if n < 30:
        assert v == "inconclusive"
    elif not null and p >= 0.05:
        assert v == "inconclusive"
    elif null and p >= 0.05:
        assert v == ("consistent" if powered else "inconclusive")
    else:  # significant
        assert v == ("consistent" if ok else "violated")


def test_format_p():
    assert format_p(0.0) == "p < 1e-300"
    assert format_p(3.2e-28) == "p = 3.2e-28"
    assert format_p(0.0131) == "p = 0.013"
    assert format_p(math.nan) == "p = n/a"


# --- the bound at a constant: synthetic failure counts ------------------------


@pytest.mark.parametrize(
    ("trials", "confused", "expected"),
    [
        # Theorem 6.1 at c = 1, N = d = 10: P_fail(eta = 1) = 100 e^{-10} = 0.0045,
        # while half of the trials have confusion 2: 200/400 failures at eta = 1.
        (400, 200, "violated"),
        # No trial above eta = 0.001: zero failures wherever the bound is not vacuous.
        (400, 0, "consistent"),
        # The same clear violation from 20 trials: below the 30-trial minimum.
        (20, 10, "inconclusive"),
    ],
)
def test_bound_claim_on_known_counts(tmp_path, trials, confused, expected):
    min_inner = np.full(trials, -1e-3)
    min_inner[:confused] = -2.0
    run = _store(
        tmp_path, _spec(T61, trials=trials), {"t61": [{"min_inner": min_inner}]}
    )
    claim = bound_claim(run, "6.1", 1.0, "fig")
    assert claim.verdict == expected, claim
    if expected == "violated":
        # oracle: the exact binomial tail at the binding eta, Bonferroni-adjusted
        assert "failures vs bound" in claim.statistic


def test_bound_claim_is_inconclusive_when_the_bound_is_vacuous(tmp_path):
    # c = 1e-4: N^2 exp(-c d eta^2) >= 1 for every eta <= 10 on the grid
    run = _store(tmp_path, _spec(T61), {"t61": [{"min_inner": np.full(400, -0.5)}]})
    claim = bound_claim(run, "6.1", 1e-4, None)
    assert claim.verdict == "inconclusive"
    assert "vacuous" in claim.reason


def test_bound_claim_at_c_star_is_consistent_by_construction(tmp_path):
    rng = np.random.default_rng(7)
    run = _store(
        tmp_path, _spec(T61), {"t61": [{"min_inner": -rng.exponential(0.05, 400)}]}
    )
    claim = bound_claim(run, "6.1", None, None)
    assert claim.verdict == "consistent", claim
    assert "c*_min" in claim.statistic


# --- trends, independence ----------------------------------------------------

WIDTH = """
[configs.w]
theorem = "4.1"
weights = "gaussian"
width = [4, 16, 64]
"""

DEPTH61 = T61.replace("[configs.t61]", "[configs.t61d]") + "depth = [1, 2, 4]\n"


def _trend_run(tmp_path, scale, m=400):
    base = _exp_quantiles(m)
    recs = [
        {
            "min_inner": -base * s,
            "min_cos": -np.clip(base / 10, 0, 1),
            "max_norm": np.full(m, s),
        }
        for s in scale
    ]
    return _store(tmp_path, _spec(WIDTH, trials=m), {"w": recs})


@pytest.mark.parametrize(
    ("scale", "m", "expected"),
    [
        ((1.0, 2.0, 4.0), 400, "violated"),  # confusion rises with width: predicted -
        ((4.0, 2.0, 1.0), 400, "consistent"),
        ((1.0, 1.0, 1.0), 400, "inconclusive"),  # identical samples: rho = 0, p = 1
        ((4.0, 2.0, 1.0), 20, "inconclusive"),  # too few trials
    ],
)
def test_trend_claim_known_answers(tmp_path, scale, m, expected):
    run = _trend_run(tmp_path, scale, m)
    claim = trend_claim(run.groups[0], "width", -1, "eta", "wider: lower", None)
    assert claim.verdict == expected, claim
    if expected == "violated":
        # the gradient norms rise with the confusion: the reason says so
        assert "gradient norms rise" in claim.reason


def _depth_run(tmp_path, scale, base):
    recs = [{"min_inner": -base * s} for s in scale]
    return _store(tmp_path, _spec(DEPTH61, trials=base.size), {"t61d": recs})


@pytest.mark.parametrize(
    ("scale", "m", "expected"),
    [
        # identical samples at every depth: H = 0, p = 1; with 400 trials the
        # Hodges-Lehmann 95% interval of the shift is about +-0.08 around 0,
        # +-12% of the median ln 2 (asymptotic sd 1/(sqrt(12) * 0.5 * sqrt(200)))
        ((1.0, 1.0, 1.0), 400, "consistent"),
        ((1.0, 1.3, 2.0), 400, "violated"),
        # identical samples but 30 trials: the interval is about +-42% of the
        # median, wider than the +-25% relevant shift: not powered
        ((1.0, 1.0, 1.0), 30, "inconclusive"),
        ((1.0, 1.3, 2.0), 12, "inconclusive"),  # too few trials
    ],
)
def test_independence_claim_known_answers(tmp_path, scale, m, expected):
    run = _depth_run(tmp_path, scale, _exp_quantiles(m))
    claim = independence_claim(run.groups[0], "depth", "eta", "independent", None)
    assert claim.verdict == expected, claim


# --- c* bounded away from 0 -------------------------------------------------


def _c_star_run(tmp_path, same_eta):
    """Width sweep of Theorem 4.1 part 2 with a known c* trend.

    ``same_eta``: the confusion does not depend on the width, while the
    theorem's rate k(width) grows like width^2, so c* falls like 1/k
    (violated). Otherwise eta scales like 1/sqrt(k): K(eta) = k eta^2 has
    the same law at every width, so c* is the same (consistent).
    """
    spec = mc.parse_spec(_spec(WIDTH), name="s")
    base = _exp_quantiles(400)
    ks = [math.exp(log_rate_factor(c)) for c in spec.groups["w"]]
    recs = [
        {"min_inner": -base * (1.0 if same_eta else math.sqrt(ks[0] / k))} for k in ks
    ]
    return _store(tmp_path, _spec(WIDTH), {"w": recs})


def test_c_star_claim_collapse_is_violated(tmp_path):
    run = _c_star_run(tmp_path, same_eta=True)
    claim = c_star_claims(run, run.groups[0], None)
    cs = [run.summary("w", c).c_star for c in run.groups[0].configs]
    assert cs[0] / cs[-1] >= COLLAPSE_FACTOR  # the premise of the synthetic case
    assert claim.verdict == "violated", claim


def test_c_star_claim_constant_is_consistent(tmp_path):
    run = _c_star_run(tmp_path, same_eta=False)
    claim = c_star_claims(run, run.groups[0], None)
    cs = np.array([run.summary("w", c).c_star for c in run.groups[0].configs])
    assert cs.max() / cs.min() < 2  # the premise: c* equal up to grid effects
    assert claim.verdict == "consistent", claim


def test_c_star_claim_needs_a_sweep(tmp_path):
    run = _store(tmp_path, _spec(T61), {"t61": [{"min_inner": np.full(400, -0.1)}]})
    claim = c_star_claims(run, run.groups[0], None)
    assert claim.verdict == "inconclusive"
    assert "1 configuration" in claim.reason


# --- helpers against independent oracles ------------------------------------


@settings(max_examples=40)
@given(
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=25),
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=25),
)
def test_hodges_lehmann_matches_brute_force(x, y):
    x, y = np.array(x), np.array(y)
    d = np.sort(np.subtract.outer(x, y).ravel())
    m = d.size
    z = stats.norm.ppf(0.975)
    k = int(math.floor(m / 2 - z * math.sqrt(m * (x.size + y.size + 1) / 12)))
    k = min(max(k, 1), m)
    est, lo, hi = hodges_lehmann_ci(x, y)
    tol = 1e-9 * (1 + np.abs(d).max())
    assert est == pytest.approx(np.median(d), abs=tol)
    assert lo == pytest.approx(d[k - 1], abs=tol)
    assert hi == pytest.approx(d[m - k], abs=tol)


def _closed_form_k(config):
    """The rate factor k of K(eta) = k eta^2 from THEORY.md sections 4-6."""
    b, n, d, w = config.depth, config.n, config.d, config.width
    depth_factor = 16 * b**2 * (b + 2) ** 4  # zeta_0^4 (beta + 2)^4
    if config.theorem == "4.1" and config.fixed_data:
        return w**2 * b / (64 * depth_factor)
    if config.theorem == "4.1":
        return (w * d + w**2 * b) / (16 * depth_factor)
    if config.theorem == "5.1":
        return d / (16 * depth_factor)
    if config.theorem == "corollary_5.1":
        return d / (64 * depth_factor)
    del n
    return float(d)


@settings(max_examples=40)
@given(
    theorem=st.sampled_from(["4.1a", "4.1b", "5.1", "corollary_5.1", "6.1"]),
    depth=st.integers(1, 60),
    width=st.integers(1, 2048),
    d=st.integers(1, 500),
    n=st.integers(2, 200),
    r=st.floats(0, 5),
)
def test_log_rate_factor_matches_closed_form(theorem, depth, width, d, n, r):
    kw = {
        "4.1a": dict(theorem="4.1", weights="gaussian"),
        "4.1b": dict(theorem="4.1", weights="gaussian", fixed_data=True),
        "5.1": dict(theorem="5.1", weights="small"),
        "corollary_5.1": dict(theorem="corollary_5.1", weights="ball", r=r),
        "6.1": dict(theorem="6.1", weights="orthogonal_linear"),
    }[theorem]
    config = mc.Config(n=n, d=d, depth=depth, width=width, **kw)
    # log_rate_factor differences log P_fail at c = 1 and c = 1e12 (each about
    # 2 log N <= 11 in size): its relative error is about 1e-16 * 11 / (1e12 k),
    # below 1e-9 for the smallest k reached here (~1e-13).
    assert log_rate_factor(config) == pytest.approx(
        math.log(_closed_form_k(config)), abs=1e-9
    )


def test_experiment_claims_rows():
    result = {
        "claims": [
            {
                "claim": "printed Theorem 3.2",
                "test": "t",
                "statistic": 0.123456,
                "ci_or_p": None,
                "verdict": "violated",
                "reason": "r",
                "figure": "sgd_check_x.png",
            }
        ]
    }
    (row,) = experiment_claims("sgd_check", result)
    assert (row.statistic, row.ci_or_p, row.figure, row.source) == (
        "0.123",
        "n/a",
        "sgd_check_x",
        "sgd_check",
    )
    result["claims"][0]["verdict"] = "fine"
    with pytest.raises(ValueError, match="verdict"):
        experiment_claims("sgd_check", result)
    del result["claims"][0]["reason"]
    with pytest.raises(ValueError, match="reason"):
        experiment_claims("sgd_check", result)
