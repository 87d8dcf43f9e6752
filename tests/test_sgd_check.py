"""Monte Carlo checks of Theorems 3.1/3.2, their tests, Figure 1, SGD plots.

Known answers used as oracles:

- orthonormal data (linear regression): ``f_i(w_T) = f_i(w_0) (1 - alpha)^{2 N_i}``
  with ``N_i ~ Binomial(T, 1/n)``, so ``E F(w_T) = F(w_0) (1 - alpha (2 - alpha)
  / n)^T`` exactly;
- the bound formulas are recomputed here from THEORY.md section 3 (not taken
  from ``bounds``) to check which constants the check passes in;
- the printed Theorem 3.2 at ``T = 1`` is a deterministic statement about the
  initial point: on orthonormal data scaled by ``c`` with ``eta = 0`` it reads
  ``2 c^2 F / n <= rho F``, false when ``c^2 > n rho / 2``.
"""

from __future__ import annotations

import json
import math

import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import montecarlo._sgd_check as sc
from figures._sgd import plot_figure1, plot_sgd_check
from montecarlo.claims import experiment_claims
from theory.toy import make_problem, sgd

matplotlib.use("Agg")

# Monte Carlo tests assert at a false-failure rate of 1e-6 (the tests behind
# ``evidence`` are simultaneous over checkpoints).
STRICT = 1 - 1e-6
LEVEL = 1e-6


def _rho_31(alpha, n, L, mu):
    return 1 - (2 * mu / n) * (alpha - n * L * alpha**2 / 2)


@settings(max_examples=6)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(3, 8),
    d=st.integers(2, 12),
    data=st.sampled_from(["gaussian", "sphere"]),
    noise=st.sampled_from([0.0, 0.5]),
    frac=st.floats(0.05, 0.95),
)
def test_theorem_3_1_and_derived_3_2_hold_on_random_instances(
    seed, n, d, data, noise, frac
):
    rng = np.random.default_rng(seed)
    problem = make_problem(n, d, data=data, noise_std=noise, rng=rng)
    alpha = frac * 2 / (n * problem.L)
    chk = sc.check_theorems(
        problem, alpha=alpha, T=300, runs=200, rng=rng, confidence=STRICT
    )
    assert chk.evidence["theorem_3_1"].p_above > LEVEL
    assert chk.evidence["theorem_3_2_derived"].p_above > LEVEL
    # The bounds evaluated with the instance's own constants (independent
    # oracle of the formulas).
    info = chk.info
    assert info["L"] == problem.L and info["mu"] == problem.mu
    rho = _rho_31(alpha, n, problem.L, problem.mu)
    expected = rho ** chk.T.astype(float) * info["gap0"] + alpha * info["eta"] / (
        1 - rho
    )
    np.testing.assert_allclose(chk.bounds["theorem_3_1"], expected, rtol=1e-9)
    rho2 = 2 * n / (2 - n * problem.L * alpha)
    derived = rho2 * info["gap0"] / (alpha * chk.T) + rho2 * info["eta"]
    np.testing.assert_allclose(chk.bounds["theorem_3_2_derived"], derived, rtol=1e-12)
    printed = rho2 * info["gap0"] / chk.T + rho2 * info["eta"]
    np.testing.assert_allclose(chk.bounds["theorem_3_2_printed"], printed, rtol=1e-12)


def test_logistic_check_skips_theorem_3_1_and_derived_3_2_holds():
    rng = np.random.default_rng(3)
    problem = make_problem(20, 3, loss="logistic", noise_std=1.0, rng=rng)
    alpha = 1 / (20 * problem.L)
    chk = sc.check_theorems(
        problem,
        alpha=alpha,
        T=200,
        runs=100,
        rng=np.random.default_rng(4),
        confidence=STRICT,
    )
    assert "theorem_3_1" not in chk.evidence and "theorem_3_1" in chk.skipped
    assert chk.evidence["theorem_3_2_derived"].p_below < LEVEL
    # The same seed replays the same SGD runs: eta is the largest confusion
    # over every iterate, gap0 the initial gap, the curve the running minimum.
    run = sgd(problem, alpha=alpha, T=200, runs=100, rng=np.random.default_rng(4))
    assert chk.info["eta"] == run.eta.max()
    assert chk.info["gap0"] == pytest.approx(run.risk[0, 0] - problem.F_star)
    running = np.minimum.accumulate(run.grad_sq[:, :200].mean(axis=0))
    np.testing.assert_allclose(chk.grad_sq_min.mean, running[chk.T - 1], rtol=1e-12)
    np.testing.assert_allclose(
        chk.risk_gap.mean, run.risk[:, chk.T].mean(axis=0) - problem.F_star, rtol=1e-12
    )


def test_monte_carlo_mean_covers_closed_form_on_orthonormal_data():
    rng = np.random.default_rng(12)
    n = 8
    problem = make_problem(n, 16, data="orthogonal", noise_std=0.5, rng=rng)
    alpha = 0.5 * 2 / (n * problem.L)
    chk = sc.check_theorems(
        problem, alpha=alpha, T=400, runs=300, rng=rng, confidence=STRICT
    )
    assert chk.info["eta"] == 0.0 and chk.info["F_star"] == 0.0
    exact = chk.info["gap0"] * (1 - alpha * (2 - alpha) / n) ** chk.T
    # Simultaneous 1 - 1e-6 intervals contain the exact expectation everywhere.
    assert np.all(chk.risk_gap.lower <= exact)
    assert np.all(exact <= chk.risk_gap.upper)
    assert chk.evidence["theorem_3_1"].p_above > LEVEL


def test_printed_theorem_3_2_deterministic_counterexample():
    rng = np.random.default_rng(0)
    n, c = 10, 12.0
    problem = make_problem(n, 20, data="orthogonal", noise_std=0.3, rng=rng).rescaled(c)
    alpha = 0.5 * 2 / (n * problem.L)
    rho = 2 * n / (2 - n * problem.L * alpha)
    assert c**2 > n * rho / 2
    chk = sc.check_theorems(problem, alpha=alpha, T=20, runs=40, rng=rng)
    e = chk.evidence["theorem_3_2_printed"]
    # T = 1 is deterministic (every run starts at w_0): exceeded with p = 0.
    assert e.p_above == 0.0 and chk.T[e.worst] == 1
    # At T = 1: ||grad F(w_0)||^2 / (rho F(w_0)) = 2 c^2 / (n rho) exactly.
    ratio = chk.grad_sq_min.lower[0] / chk.bounds["theorem_3_2_printed"][0]
    assert ratio == pytest.approx(2 * c**2 / (n * rho), rel=1e-9)
    assert chk.evidence["theorem_3_2_derived"].p_below < LEVEL


def test_scan_finds_printed_violation_only_for_the_printed_form():
    rng = np.random.default_rng(1)
    base = make_problem(6, 12, data="orthogonal", noise_std=0.3, rng=rng)
    rows = sc.scan_printed_theorem_3_2(
        base, scales=(1.0, 8.0), alpha_fractions=(0.5,), T=30, runs=40, rng=rng
    )
    assert [r["scale"] for r in rows] == [1.0, 8.0]
    assert rows[1]["printed"]["p_above"] < LEVEL
    assert all(r["derived"]["p_above"] > LEVEL for r in rows)
    # Same loss trajectory, ratio grows like scale^2 at T = 1 (deterministic).
    assert (
        rows[1]["printed"]["max_lower_over_bound"]
        > rows[0]["printed"]["max_lower_over_bound"]
    )


def test_mean_ci_matches_normal_interval_and_counts_nonfinite():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3))
    x[0, 1] = np.nan
    ci = sc.mean_ci(x, confidence=0.9, comparisons=3)
    z = stats.norm.ppf(1 - 0.1 / 6)
    col = x[1:, 1]
    half = z * col.std(ddof=1) / math.sqrt(49)
    assert ci.mean[1] == pytest.approx(col.mean())
    assert ci.lower[1] == pytest.approx(col.mean() - half)
    assert ci.upper[1] == pytest.approx(col.mean() + half)
    assert ci.n_nonfinite == 1 and list(ci.n) == [50, 49, 50]
    one = sc.mean_ci(np.array([1.0]))
    assert one.lower[0] == -np.inf and one.upper[0] == np.inf


def test_mean_ci_coverage_on_exponential_samples():
    # 2000 intervals of 200 Exp(1) samples at 90%: the number that miss the
    # true mean 1 is Binomial(2000, ~0.1) (CLT on a skewed law: the actual
    # rate is within 0.1 +- 0.02); accept 100..320 (false-failure < 1e-6).
    rng = np.random.default_rng(5)
    x = rng.exponential(size=(200, 2000))
    ci = sc.mean_ci(x, confidence=0.9)
    misses = int(np.sum((ci.lower > 1) | (ci.upper < 1)))
    assert 100 <= misses <= 320


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": "limit"}, "alpha"),
        ({"alpha": "above"}, "alpha"),
        ({"T": 0}, "T"),
        ({"runs": 0}, "runs"),
        ({"w0": np.zeros(3)}, "w0"),
        ({"confidence": 1.0}, "confidence"),
    ],
)
def test_check_theorems_rejects_bad_input(kwargs, name):
    problem = make_problem(6, 5, rng=np.random.default_rng(0))
    limit = 2 / (6 * problem.L)
    args = {"alpha": 0.5 * limit, "T": 10, "runs": 40, "rng": np.random.default_rng(0)}
    args.update(kwargs)
    if args["alpha"] == "limit":
        args["alpha"] = limit
    elif args["alpha"] == "above":
        args["alpha"] = 3 * limit
    with pytest.raises(ValueError, match=rf"^{name} "):
        sc.check_theorems(problem, **args)


@pytest.fixture(scope="module")
def small_results(tmp_path_factory):
    """Tiny versions of both suites, run through the real entry points."""
    out = tmp_path_factory.mktemp("sgd")
    patch = pytest.MonkeyPatch()
    patch.setitem(sc._SIZES, True, {"check": (40, 60, 1), "scan": (40, 30)})
    patch.setattr(
        sc, "_FIGURE1", {"n": 12, "dims": (15, 8), "T": 300, "theorem_T": 300}
    )
    try:
        check = sc.run_sgd_check(out, seed=0, quick=True)
        fig1 = sc.run_figure1(out, seed=0, runs=3)
    finally:
        patch.undo()
    return out, check, fig1


def test_entry_points_write_json_and_claims_follow(small_results):
    out, check, fig1 = small_results
    for name, result in (("sgd_check.json", check), ("figure1.json", fig1)):
        stored = json.loads((out / name).read_text())
        assert stored == json.loads(json.dumps(result))
    claims = {c.claim: c for c in experiment_claims("sgd_check", check)}
    (ortho,) = [c for c in claims.values() if c.statement == "section 2"]
    assert ortho.verdict == "consistent"
    # linear and logistic regression on exactly orthogonal data
    assert "logistic, square loss" in ortho.claim
    assert {"Theorem 3.1 holds on linear regression"} <= set(claims)
    assert len(experiment_claims("figure1", fig1)) == 5


def test_plots_write_png_and_pdf_from_json(small_results, tmp_path):
    out, check, fig1 = small_results
    paths = plot_sgd_check(json.loads((out / "sgd_check.json").read_text()), tmp_path)
    paths += plot_figure1(json.loads((out / "figure1.json").read_text()), tmp_path)
    names = {p.name for p in paths}
    for p in paths:
        assert p.suffix in {".png", ".pdf"} and p.stat().st_size > 1000
    assert {p.with_suffix(".pdf").name for p in paths} <= names
    # Every figure named by a claim is produced by the plot functions.
    claims = experiment_claims("sgd_check", check) + experiment_claims("figure1", fig1)
    for c in claims:
        assert f"{c.figure}.png" in names


def test_plots_reject_wrong_input(tmp_path):
    with pytest.raises(ValueError, match="^result must be the dict"):
        plot_sgd_check({}, tmp_path)
    with pytest.raises(ValueError, match="^result must be the dict"):
        plot_figure1({"experiment": "sgd_check"}, tmp_path)


def test_figure1_statistics_are_consistent(small_results):
    _, _, fig1 = small_results
    block = fig1["paper_step"]
    for d, m in block["models"].items():
        assert m["d"] == int(d)
        assert len(m["steps"]) == len(m["loss"]["mean"])
        hist = m["cosines"]["end"]
        assert sum(hist["counts"]) == hist["n_pairs"]
        assert -1 <= hist["min"] <= hist["max"] <= 1
    # The under-parameterized instances (d < n) with noisy labels do not
    # interpolate; the over-parameterized ones do (F* = 0).
    assert all(block["models"]["15"]["interpolating"])
    assert not any(block["models"]["8"]["interpolating"])
    assert all(f == 0.0 for f in block["models"]["15"]["F_star"])
    theorem = fig1["theorem_step"]["models"]["15"]
    assert all(
        a < 2 / (12 * L) for a, L in zip(theorem["alpha"], theorem["L"], strict=True)
    )
    assert all(r >= 1 for r in theorem["theorem_3_1_ratio_at_T"] if r is not None)


def test_run_functions_reject_bad_seed(tmp_path):
    with pytest.raises(ValueError, match="^seed must be an integer >= 0"):
        sc.run_sgd_check(tmp_path, seed=-1)
    with pytest.raises(ValueError, match="^runs must be an integer >= 2"):
        sc.run_figure1(tmp_path, seed=0, runs=1)
