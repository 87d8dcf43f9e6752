"""Tests of the ``tail`` experiment, its claims, figures and report section.

1. Options: every bad key is refused with one line naming it, before any work.
2. Storage: a run interrupted after any number of stored units, then resumed,
   ends with the result of an uninterrupted run; a finished run recomputes
   nothing; processes, a Dask cluster and more repetitions give the same
   units as one process; the plain ``c*`` is the sweep's.
3. The pilot's grid rule, the jackknife and the coefficient test (against
   exact identities and scipy), and claims on synthetic tails whose answer is
   known: a tail decaying slower than the bound's rate is violated, one at the
   bound's rate is consistent at the stated rate.
4. Figures and the "Tail rates" section on a small real result.
5. The experiment end to end through ``python -m montecarlo.run``.

Notation: ``P(eta) = P(statistic < -eta)``, ``R`` repetitions, the free form
``log P = a + b log N - k eta^p prod x^q_x``.
"""

import copy
import json
import math
import re

import numpy as np
import pytest
from distributed import Client, LocalCluster
from markdown_it import MarkdownIt
from scipy import stats

import bounds
import montecarlo as mc
from figures._style import fmt_num
from figures._tails import plot_tail, tail_section
from montecarlo import _tails as tl
from montecarlo._rare import RareEventEstimate, SubsetRun, SubsetSettings
from montecarlo.claims import Kind
from montecarlo.claims import _tests as t
from montecarlo.claims._tails import (
    MIN_REPETITIONS,
    can_contradict,
    contradicting_axes,
    figure_stem,
    rates,
    tail_claims,
    tail_sweeps,
)

# A tiny spec: a Theorem 4.1 width sweep and a Theorem 5.1 configuration, a
# few hundred normals per trial; 2 pilots + 6 repetitions of 120 particles.
SPEC_BODY = """
[defaults]
trials = 60
n = 4
d = 3
depth = 1
width = 4
labels = "tanh_teacher"

[configs.w]
theorem = "4.1"
weights = "gaussian"
width = [3, 6]

[configs.small]
theorem = "5.1"
weights = "small"
activation = ["tanh", "sigmoid"]

[configs.contrast]
theorem = "none"
weights = "gaussian"
"""
SPEC_HEAD = 'title = "tiny tail"\nseed = 7\n'
SPEC_HEAD += "eta = { start = 1e-4, stop = 30.0, num = 40 }\n"
SPEC = mc.parse_spec(SPEC_HEAD + SPEC_BODY, name="tiny")
PROBABILITIES = [1e-2, 1e-3, 1e-4, 1e-5]
OPTIONS = {
    "groups": ["w"],
    "eta": {"probabilities": PROBABILITIES},
    "particles": 120,
    "repetitions": 3,
}
UNITS = 2 + 2 * 3  # 2 pilots, 3 repetitions of 2 configurations
SEED = 7


def _scientific(result):
    """The result without its timings and executor (the only parts that differ)."""
    out = copy.deepcopy(result)
    for key in ("elapsed_seconds", "executor", "workers"):
        del out[key]
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    return tl.run_tail(out, OPTIONS, spec=SPEC, seed=SEED, progress=False)


# --------------------------------------------------------------------------
# 1. Options
# --------------------------------------------------------------------------
GOOD = {"groups": ["a"], "eta": [1.0]}
BAD_OPTIONS = [
    ([1], "tail: must be a table"),
    ({"eta": [1.0]}, "tail.groups: missing"),
    ({"groups": ["a"]}, "tail.eta: missing"),
    ({**GOOD, "trials": 3}, "tail.trials: unknown key"),
    ({**GOOD, "groups": []}, "tail.groups: must be a non-empty list"),
    ({**GOOD, "groups": ["a", "a"]}, r"tail.groups\[1\]: repeats groups\[0\]"),
    ({**GOOD, "eta": [1.0, 0.5]}, "tail.eta: must be a non-empty strictly increasing"),
    ({**GOOD, "eta": [0.0, 1.0]}, "tail.eta: must be a non-empty strictly increasing"),
    ({**GOOD, "eta": []}, "tail.eta: must be a non-empty strictly increasing"),
    ({**GOOD, "eta": 1.0}, "tail.eta: must be a list of levels or a table"),
    ({**GOOD, "eta": {}}, "tail.eta.probabilities: missing"),
    (
        {**GOOD, "eta": {"probabilities": [1e-2], "pilot": 3}},
        r"tail.eta.pilot: unknown key \(allowed: \['probabilities'\]\)",
    ),
    (
        {**GOOD, "eta": {"probabilities": [1e-3, 1e-2]}},
        r"tail.eta.probabilities: must be a non-empty strictly decreasing list of "
        r"numbers in \[1e-30, 0.1\], got \[0.001, 0.01\]",
    ),
    (
        {**GOOD, "eta": {"probabilities": [0.5]}},
        r"tail.eta.probabilities: .* in \[1e-30, 0.1\], got \[0.5\]",
    ),
    ({**GOOD, "statistic": "offdiag_mean"}, "tail.statistic: must be one of"),
    (
        {**GOOD, "particles": 100},
        r"tail.particles: must be an integer >= 120 .*, got 100",
    ),
    (
        {**GOOD, "particles": 400, "repetitions": 11},
        r"tail.repetitions: must be an integer in \[3, particles / 40 = 10\] .*, "
        r"got 11$",
    ),
    (
        {**GOOD, "particles": 200},
        r"tail.repetitions: must be an integer in \[3, particles / 40 = 5\] .*, "
        r"got 10 \(the default\)",
    ),
    ({**GOOD, "repetitions": 2}, r"tail.repetitions: must be an integer in \[3, "),
    ({**GOOD, "max_probability": 0}, r"tail.max_probability: must be a number in"),
    ({**GOOD, "workers": 0}, "tail.workers: must be an integer >= 1, got 0"),
    ({**GOOD, "executor": "mpi"}, "tail.executor: must be one of"),
    (
        {**GOOD, "executor": "serial", "workers": 2},
        "tail.workers: must be 1 with executor = 'serial', got 2",
    ),
]


@pytest.mark.parametrize(("table", "message"), BAD_OPTIONS)
def test_each_bad_option_is_one_line_naming_its_key(table, message):
    problems = tl.option_problems(table)
    assert len(problems) == 1, problems
    assert "\n" not in problems[0]
    assert re.match(message, problems[0]), problems[0]


def test_valid_options_have_no_problem():
    assert tl.option_problems(OPTIONS) == []
    table = {
        "groups": [{"group": "small", "activation": "tanh"}, "w"],
        "eta": [0.1, 0.2],
        "statistic": "min_cos",
        "executor": "dask",
        "workers": 2,
    }
    assert tl.option_problems(table) == []
    assert tl.group_problems(table, SPEC.groups, SPEC.axes) == []
    sweeps = tl.selected_sweeps(table, SPEC.groups, SPEC.axes)
    # a group is split by its axes outside n, d, width, depth
    assert [(s.name, s.statement, s.axes) for s in sweeps] == [
        ("small (activation=tanh)", "5.1", ()),
        ("w", "4.1 part 2", ("width",)),
    ]
    assert sweeps[1].configs == tuple(SPEC.groups["w"])


BAD_GROUPS = [
    (["nope"], r"tail.groups\[0\]: no group 'nope' in the spec"),
    ([{"group": "w", "depth": 1}], r"groups\[0\].depth: not a grid axis of group"),
    ([{"group": "w", "width": 5}], r"groups\[0\].width: must be one of .*\[3, 6\]"),
    (["contrast"], r"groups\[0\]: group 'contrast' .* has theorem = 'none'"),
    (
        ["w", {"group": "w", "width": 3}],
        r"groups\[1\]: selects group 'w' \(width=3\) again, already selected by "
        r"tail.groups\[0\]",
    ),
]


@pytest.mark.parametrize(("groups", "message"), BAD_GROUPS)
def test_groups_must_exist_and_test_a_statement(groups, message, tmp_path):
    table = {"groups": groups, "eta": [1.0]}
    problems = tl.group_problems(table, SPEC.groups, SPEC.axes)
    assert len(problems) == 1, problems
    assert re.search(message, problems[0]), problems[0]
    # refused before any work: nothing is written
    with pytest.raises(ValueError, match=message):
        tl.run_tail(tmp_path, table, spec=SPEC, seed=0)
    assert not any(tmp_path.iterdir())


def test_particles_must_fit_in_memory():
    """Width 3 draws 27 numbers per trial, width 6 draws 39: at 8e6 particles
    only width 6 exceeds 2^28 = 268435456."""
    table = {"groups": ["w"], "eta": [1.0], "particles": 8_000_000}
    (problem,) = tl.group_problems(table, SPEC.groups, SPEC.axes)
    assert problem == (
        "tail.particles: particles * trial_dimension must be <= 2^28 for group "
        "'w' (width=6), got 8000000 * 39 = 312000000"
    )


def test_run_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        tl.run_tail(tmp_path, OPTIONS, spec=SPEC, seed=-1)
    with pytest.raises(ValueError, match="spec must be a Spec, got dict"):
        tl.run_tail(tmp_path, OPTIONS, spec={}, seed=0)
    with pytest.raises(ValueError, match="tail.workers: must be an integer"):
        tl.run_tail(tmp_path, {**OPTIONS, "workers": 0}, spec=SPEC, seed=0)


# --------------------------------------------------------------------------
# 2. Storage, resume, executors
# --------------------------------------------------------------------------
def test_result_holds_every_configuration_and_its_grid(uninterrupted):
    res = uninterrupted
    assert [e["label"] for e in res["estimates"]] == ["width=3", "width=6"]
    (sweep,) = res["sweeps"]
    assert sweep["statement"] == "4.1 part 2" and sweep["axes"] == ["width"]
    for e in res["estimates"]:
        est = RareEventEstimate.from_dict(e["estimate"])
        assert est.repetitions == 3
        assert est.runs[0].settings == SubsetSettings(particles=120)
        pilot = SubsetRun.from_dict(e["pilot"]["run"])
        grid, kept = tl.eta_grid_from_pilot(pilot, PROBABILITIES)
        assert est.eta == grid and e["pilot"]["probabilities"] == list(kept)
        assert pilot.settings.max_levels == tl.pilot_levels(PROBABILITIES) == 6
    assert json.loads(json.dumps(res, allow_nan=False)) == res  # strict JSON


class _Interrupt:
    """``subset_simulation`` that raises KeyboardInterrupt at call ``stop``."""

    def __init__(self, stop):
        self.stop, self.calls = stop, 0

    def __call__(self, *args, **kwargs):
        if self.calls == self.stop:
            raise KeyboardInterrupt("simulated Ctrl-C")
        self.calls += 1
        return _REAL(*args, **kwargs)


_REAL = tl.subset_simulation


@pytest.mark.parametrize("stop", [0, 1, 2, 5])
def test_resume_after_any_interruption_equals_an_uninterrupted_run(
    stop, uninterrupted, tmp_path, monkeypatch
):
    """Interrupted during the pilots (0, 1), just after them (2) or among the
    repetitions (5); the resumed run computes only the missing units."""
    monkeypatch.setattr(tl, "subset_simulation", _Interrupt(stop))
    with pytest.raises(KeyboardInterrupt):
        tl.run_tail(tmp_path, OPTIONS, spec=SPEC, seed=SEED, progress=False)
    assert len(list((tmp_path / "tail" / "units").glob("*.json"))) == stop
    assert not (tmp_path / "tail.json").exists()
    counting = _Interrupt(UNITS + 1)  # never interrupts, counts the runs
    monkeypatch.setattr(tl, "subset_simulation", counting)
    resumed = tl.run_tail(tmp_path, OPTIONS, spec=SPEC, seed=SEED, progress=False)
    assert counting.calls == UNITS - stop
    assert _scientific(resumed) == _scientific(uninterrupted)
    written = json.loads((tmp_path / "tail.json").read_text())
    assert _scientific(written) == _scientific(uninterrupted)


def test_a_finished_run_recomputes_nothing_and_fresh_recomputes_all(
    uninterrupted, tmp_path, monkeypatch
):
    tl.run_tail(tmp_path, OPTIONS, spec=SPEC, seed=SEED, progress=False)
    counting = _Interrupt(UNITS + 1)
    monkeypatch.setattr(tl, "subset_simulation", counting)
    again = tl.run_tail(tmp_path, OPTIONS, spec=SPEC, seed=SEED, progress=False)
    assert counting.calls == 0
    assert _scientific(again) == _scientific(uninterrupted)
    tl.run_tail(tmp_path, OPTIONS, spec=SPEC, seed=SEED, fresh=True, progress=False)
    assert counting.calls == UNITS


def test_more_repetitions_reuse_the_stored_ones(tmp_path, monkeypatch):
    """R is not part of a unit: 3 then 4 repetitions equals 4 at once."""
    three = {**OPTIONS, "particles": 160}  # R <= particles / 40 = 4
    four = {**three, "repetitions": 4}
    direct = tl.run_tail(
        tmp_path / "direct", four, spec=SPEC, seed=SEED, progress=False
    )
    tl.run_tail(tmp_path / "grown", three, spec=SPEC, seed=SEED, progress=False)
    counting = _Interrupt(UNITS + 1)
    monkeypatch.setattr(tl, "subset_simulation", counting)
    grown = tl.run_tail(tmp_path / "grown", four, spec=SPEC, seed=SEED, progress=False)
    assert counting.calls == 2  # one more repetition of each configuration
    assert _scientific(grown) == _scientific(direct)


def test_processes_equal_serial_and_the_seed_changes_the_runs(uninterrupted, tmp_path):
    two = tl.run_tail(tmp_path / "two", {**OPTIONS, "workers": 2}, spec=SPEC, seed=SEED)
    assert two["executor"] == "processes"
    assert _scientific(two) == _scientific(uninterrupted)
    other = tl.run_tail(
        tmp_path / "other", OPTIONS, spec=SPEC, seed=SEED + 1, progress=False
    )
    for a, b in zip(other["estimates"], uninterrupted["estimates"], strict=True):
        assert a["estimate"]["estimate"] != b["estimate"]["estimate"]


def test_dask_tasks_equal_serial(uninterrupted, tmp_path):
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        res = tl.run_tail(
            tmp_path, OPTIONS, spec=SPEC, seed=SEED, progress=False, client=client
        )
        keys = {k for k in client.run_on_scheduler(_task_keys) if "tail-" in k}
    assert res["executor"] == "dask"
    assert _scientific(res) == _scientific(uninterrupted)
    assert len(keys) == UNITS  # one Dask task per unit


def _task_keys(dask_scheduler):
    return [str(e[0]) for e in dask_scheduler.transition_log]


def test_progress_prints_one_line_per_configuration(tmp_path, capsys):
    result = tl.run_tail(tmp_path, OPTIONS, spec=SPEC, seed=SEED)
    lines = capsys.readouterr().out.splitlines()
    done = [x for x in lines if "c* from the tail" in x]
    assert sorted(x.split(":")[0] for x in done) == [
        "[tail] 4.1 part 2 w width=3",
        "[tail] 4.1 part 2 w width=6",
    ]
    assert sum(x.startswith("[tail] pilot 4.1 part 2 w width=") for x in lines) == 2
    for entry in result["estimates"]:
        line = next(x for x in done if f"width={entry['label'][6:]}:" in x)
        assert f"c* from the tail {entry['tail']['c_star']:.3g};" in line


def test_plain_c_star_is_the_sweeps(tmp_path):
    """With the sweep's trials stored, the plain c* is theorem_summary's."""
    mc.run_sweep(SPEC, tmp_path, seed=SEED, backend="numba")
    res = tl.run_tail(tmp_path, OPTIONS, spec=SPEC, seed=SEED, progress=False)
    df = mc.load_results(tmp_path)
    summaries = {
        s.config.config_hash: s
        for s in mc.theorem_summary(SPEC, df, seed=SEED, confidence=tl.CONFIDENCE)
    }
    for e in res["estimates"]:
        s = summaries[e["config_hash"]]
        assert e["plain"]["c_star"] == pytest.approx(s.c_star, rel=1e-12)
        assert e["plain"]["binding_eta"] == s.binding_eta
        assert e["plain"]["trials"] == s.trials == 60


# --------------------------------------------------------------------------
# 3. The grid rule, the statistical primitives and the claims
# --------------------------------------------------------------------------
def _pilot(thresholds, probabilities):
    return SubsetRun(
        config_hash="x",
        statistic="min_inner",
        seed=0,
        repetition=0,
        eta=(1e300,),
        estimate=(0.0,),
        thresholds=tuple(thresholds),
        level_probability=tuple(probabilities),
        window=(),
        evaluations_per_move=(),
        evaluations=0,
        nonfinite=0,
        stop="max_levels",
        dimension=1,
        settings=SubsetSettings(),
    )


def test_the_grid_interpolates_the_pilot_thresholds_in_log_p():
    """b_k at P_k = 10^-k: a target between two levels sits at the linear
    interpolation in log P; beyond the deepest level, at or below 0, or equal
    after rounding to 4 digits, a target is dropped."""
    pilot = _pilot([-0.5, 1.0, 2.0, 3.0], [0.1] * 4)
    q = [1e-1, 1e-2, 10**-2.5, 1e-4, 1e-5]
    assert tl.eta_grid_from_pilot(pilot, q) == ((1.0, 1.5, 3.0), (1e-2, 10**-2.5, 1e-4))
    tied = _pilot([1.0, 1.00001, 2.0], [0.1, 0.1, 0.1])
    assert tl.eta_grid_from_pilot(tied, [1e-1, 1e-2]) == ((1.0,), (1e-1,))
    assert tl.pilot_levels([1e-2, 1e-8]) == 9
    assert tl.pilot_levels([1e-30]) == 31


@pytest.mark.parametrize("n", [2, 7, 40])
def test_jackknife_of_the_mean_is_the_standard_error(n):
    """For the sample mean the jackknife variance is exactly s^2 / n."""
    x = np.random.default_rng(n).standard_normal(n)
    left_out = (x.sum() - x) / (n - 1)
    jk = t.jackknife(x.mean(), left_out)
    assert jk.se == pytest.approx(x.std(ddof=1) / math.sqrt(n), rel=1e-12)
    assert (jk.replicates, jk.dof) == (n, n - 1)
    with pytest.raises(ValueError, match="at least 2 values"):
        t.jackknife(0.0, [1.0])


@pytest.mark.parametrize("reference", [0.0, 1.3])
def test_coefficient_test_is_scipys_slope_test(reference):
    """The one-sided t-tests of a regression slope against ``reference`` are
    linregress's tests of the slope of ``y - reference x`` against 0."""
    rng = np.random.default_rng(4)
    x = np.linspace(0, 1, 12)
    y = 1.2 * x + 0.3 * rng.standard_normal(12)
    fit = stats.linregress(x, y)
    res = t.coefficient_test(fit.slope, fit.stderr, 10, reference)
    for side, alternative in (("p_below", "less"), ("p_above", "greater")):
        want = stats.linregress(x, y - reference * x, alternative=alternative).pvalue
        assert getattr(res, side) == pytest.approx(want, rel=1e-9)
    assert math.isnan(t.coefficient_test(1.0, 0.0, 3, 0.0).p_below)
    with pytest.raises(ValueError, match="dof must be an integer >= 1"):
        t.coefficient_test(1.0, 1.0, 0, 0.0)


# Synthetic Theorem 5.1 tails along d (no c1 term, so every decay exponent
# is an inequality): log P = 2 log N - 3 - 0.02 d^q eta^p on a grid where P
# runs from 5e-3 to 1e-8, R = 20 repetitions whose log estimates carry a
# random walk along the grid (the dependence of subset-simulation levels).
SYN_D = (5, 10, 20, 40)
SYN_R = 20
SYN_STEP = 0.15  # standard deviation of each random-walk step of log p_r


def _synthetic_result(p, q, seed, statement="5.1", n=10, nd=SYN_D):
    rng = np.random.default_rng(seed)
    theorem = {"5.1": dict(theorem="5.1", weights="small")}[statement]
    entries, configs = [], []
    for d in nd:
        config = mc.Config(n=n, d=d, depth=2, width=8, **theorem)
        scale = 0.02 * d**q
        top = 2 * math.log(n) - 3.0
        eta = np.linspace(
            ((top - math.log(5e-3)) / scale) ** (1 / p),
            ((top - math.log(1e-8)) / scale) ** (1 / p),
            8,
        )
        log_p = top - scale * eta**p
        walk = np.cumsum(SYN_STEP * rng.standard_normal((SYN_R, eta.size)), axis=1)
        steps = np.arange(1, eta.size + 1)
        E = np.exp(log_p[None, :] + walk - steps * SYN_STEP**2 / 2)  # mean: P
        runs = [
            SubsetRun(
                config.config_hash, "min_inner", 0, r, tuple(eta), tuple(E[r]),
                (), (), (), (), 0, 0, "reached", 1, SubsetSettings(),
            )
            for r in range(SYN_R)
        ]  # fmt: skip
        est = RareEventEstimate.from_runs(config, runs)
        configs.append(config)
        entries.append(
            {
                "group": "g",
                "sweep": "g",
                "label": f"d={d}",
                "config_hash": config.config_hash,
                "estimate": est.to_dict(),
                "pilot": None,
                "tail": tl._tail_constant(est),
                "plain": None,
            }
        )
    sweep = tl.Sweep("g", (), statement, ("d",), tuple(configs))
    ests = {
        e["config_hash"]: RareEventEstimate.from_dict(e["estimate"]) for e in entries
    }
    return {
        "sweeps": [tl._sweep_entry(sweep, ests, 1e-2)],
        "estimates": entries,
        "confidence": tl.CONFIDENCE,
        "max_probability": 1e-2,
    }


def _rows(result):
    """``{rate: (kind, verdict)}`` of the exponent rows of a synthetic result."""
    out = {}
    for c in tail_claims(result, alpha=0.05):
        if "decays in" in c.claim:
            name = c.claim.split("decays in ")[1].split(" at least")[0]
            out[name] = (c.kind, c.verdict)
    return out


D_ROW = "the input dimension d"


@pytest.mark.parametrize(
    ("p", "q", "rows"),
    [
        # d exponent 0.5, far below the theorem's 1: violated
        (2.0, 0.5, {"eta": "consistent", D_ROW: "violated"}),
        # eta exponent 1: a bounded statistic, an observation only
        (1.0, 1.0, {"eta": "violated", D_ROW: "consistent"}),
    ],
)
def test_a_tail_slower_than_the_bound(p, q, rows):
    result = _synthetic_result(p, q, seed=1)
    assert _rows(result) == {
        "eta": (Kind.OBSERVATION, rows["eta"]),
        D_ROW: (Kind.INEQUALITY, rows[D_ROW]),
    }
    claims = tail_claims(result, alpha=0.05)
    c_row = next(c for c in claims if "its rate c > 0" in c.claim)
    assert c_row.kind is Kind.INEQUALITY and c_row.verdict == "consistent"
    assert all(c.figure == figure_stem("5.1") for c in claims)


def test_a_tail_at_the_bound_rate_is_consistent_at_the_stated_rate():
    """At exactly the theorem's exponents (2 in eta, 1 in d) each exponent's
    test rejects with probability at most alpha = 0.05: over 30 independent
    sweeps, rejections of either row stay below the binomial quantile at 1e-3
    of 2 x 30 trials at 0.05 (a union bound over the rows). And the jackknife
    error matches the exponents' spread over the sweeps: with ``s`` their
    standard deviation over 30 sweeps, ``s / sd ~ sqrt(chi2_29 / 29)``, so
    the mean jackknife error over ``s`` lies in the 99.9% range of ``1 /
    sqrt(chi2_29 / 29)`` (a jackknife without its (n - 1) factor, 4.4 times
    too small, or a dropped square root fails it)."""
    sweeps = [_synthetic_result(2.0, 1.0, seed=100 + i) for i in range(30)]
    false = sum(v == "violated" for s in sweeps for _, v in _rows(s).values())
    assert false <= stats.binom.ppf(1 - 1e-3, 60, 0.05)
    rows = [r for s in sweeps for r in rates(tail_sweeps(s)[0], confidence=0.95)]
    chi = stats.chi2.ppf([0.9995, 0.0005], 29) / 29
    low, high = 1 / np.sqrt(chi)
    for name in ("eta", "d"):
        found = [r for r in rows if r.name == name]
        spread = np.std([r.value for r in found], ddof=1)
        ratio = np.mean([r.se_jackknife for r in found]) / spread
        assert low <= ratio <= high, (name, ratio, low, high)


def test_which_rates_can_contradict_which_theorem():
    """Exponents along the axes where the whole bound tends to 0, and c there."""
    assert contradicting_axes("4.1 part 2") == ("width",)
    assert contradicting_axes("5.1") == contradicting_axes("6.1") == ("d",)
    assert can_contradict("5.1", "d", ("d",)) and can_contradict("5.1", "c", ("d",))
    assert not any(can_contradict("5.1", r, ("d",)) for r in ("eta", "n", "depth"))
    assert not can_contradict("5.1", "c", ("depth",))
    assert can_contradict("4.1 part 2", "width", ("width",))
    assert can_contradict("4.1 part 2", "c", ("width",))
    assert not can_contradict("4.1 part 2", "c", ("depth",))
    assert not any(can_contradict("4.1 part 2", r, ("width",)) for r in ("eta", "d"))
    assert not can_contradict("6.1", "n", ("n",))


def test_claims_of_a_real_run(uninterrupted):
    """A width sweep of Theorem 4.1 with 3 repetitions: rows of the right kinds,
    inconclusive below MIN_REPETITIONS, and c* from the tail as stored."""
    claims = tail_claims(uninterrupted, alpha=0.05)
    kinds = {c.claim.split(":")[0].split(" (")[0]: c.kind for c in claims}
    assert kinds == {
        "the tail decays in eta at least as fast as the bound": Kind.OBSERVATION,
        "the tail decays in the width at least as fast as the bound": Kind.INEQUALITY,
        "the tail falls with the theorem's K(eta)": Kind.INEQUALITY,
        "c* from the tail beside the plain Monte Carlo c*": Kind.OBSERVATION,
    }
    assert MIN_REPETITIONS > 3
    assert all(c.verdict == "inconclusive" for c in claims)
    (star,) = [c for c in claims if c.claim.startswith("c* from the tail")]
    c_min = min(e["tail"]["c_star"] for e in uninterrupted["estimates"])
    assert star.statistic.startswith(f"c* from the tail {c_min:.3g} (smallest")
    with pytest.raises(ValueError, match=r"missing \['sweeps', 'estimates'"):
        tail_claims({"confidence": 0.95})
    with pytest.raises(ValueError, match="alpha must be a number in"):
        tail_claims(uninterrupted, alpha=1.5)


# --------------------------------------------------------------------------
# 4. Figures and the report section
# --------------------------------------------------------------------------
def test_figure_per_statement(uninterrupted, tmp_path):
    paths = plot_tail(uninterrupted, tmp_path)
    assert sorted(p.name for p in paths) == [
        "tail_rates_4_1_part_2.pdf",
        "tail_rates_4_1_part_2.png",
    ]
    for p in paths:
        magic = b"\x89PNG\r\n\x1a\n" if p.suffix == ".png" else b"%PDF-"
        assert p.read_bytes().startswith(magic)


def test_markdown_section(uninterrupted):
    text = tail_section(uninterrupted)
    assert text.startswith("## Tail rates\n")
    title = bounds.STATEMENTS["4.1 part 2"].full_title
    assert f"### {title}" in text
    (sweep,) = tail_sweeps(uninterrupted)
    found = {r.name: r for r in rates(sweep, confidence=0.95)}
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    rate_rows = [r for r in rows if r.split("|")[1].strip() in found]
    assert len(rate_rows) == len(found) == 3  # eta, width, c
    for row in rate_rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        r = found[cells[0]]
        assert cells[1:4] == [
            fmt_num(r.value),
            f"\\[{fmt_num(r.ci_low)}, {fmt_num(r.ci_high)}\\]",
            fmt_num(r.reference),
        ]
    config_rows = [r for r in rows if r.startswith("| width=")]
    assert len(config_rows) == 2
    for row, e in zip(config_rows, uninterrupted["estimates"], strict=True):
        assert f"{fmt_num(e['tail']['c_star'])} (eta = " in row
    stem = figure_stem("4.1 part 2")
    assert f"[{stem}](#fig-{stem.replace('_', '-')})" in text
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert html.count("<table>") == 2


# --------------------------------------------------------------------------
# 5. End to end through python -m montecarlo.run
# --------------------------------------------------------------------------
def test_end_to_end_through_the_command_line(tmp_path, capsys):
    """The registered experiment through montecarlo.run, claims and report."""
    from montecarlo import run

    table = '\n[tail]\ngroups = ["w"]\neta = { probabilities = [1e-2, 1e-3, 1e-4] }\n'
    table += "particles = 120\nrepetitions = 3\n"
    path = tmp_path / "tiny.toml"
    path.write_text(SPEC_HEAD + 'experiments = ["tail"]\n' + SPEC_BODY + table)
    out = tmp_path / "out"
    assert run.main(["--spec", str(path), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("[tail] 4.1 part 2 w width=") == 2
    result = json.loads((out / "tail.json").read_text())
    assert [e["plain"]["trials"] for e in result["estimates"]] == [60, 60]
    md = (out / "report.md").read_text()
    stem = figure_stem("4.1 part 2").replace("_", "-")
    assert f"(#fig-{stem})" in md  # a claim links the figure
    assert f'<a id="fig-{stem}"></a>' in md  # it is drawn
    assert "the tail decays in the width at least as fast as the bound" in md
