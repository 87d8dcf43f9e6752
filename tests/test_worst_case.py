"""Tests of the ``adversarial`` experiment, its claims, figures and report section.

1. Options: every bad key is refused with one line naming it, before any work.
2. Storage: a run interrupted after any number of finished units, then resumed,
   ends with the result of an uninterrupted run; a finished run recomputes
   nothing; two worker processes give the same result as one.
3. Claims on synthetic held-out values whose answer is known from the bound's
   form, and McNemar's test against scipy's exact binomial test.
4. Figures and the "Worst case found" section on a small real result.
5. The experiment end to end through ``python -m montecarlo.run``.

Notation: ``T`` held-out trials; a trial's confusion is
``max(0, -min_{i != j} G_ij)`` and it fails at ``eta`` when its ``min G <
-eta``.
"""

import copy
import json
import re

import numpy as np
import pytest
from markdown_it import MarkdownIt
from scipy import stats

import bounds
import montecarlo as mc
from figures._style import fmt_num
from figures._worst_case import plot_adversarial, worst_case_section
from montecarlo import _worst_case as wc
from montecarlo._adversarial import AdversarialResult, heldout_estimate
from montecarlo.claims import Kind
from montecarlo.claims import _tests as t
from montecarlo.claims._monte_carlo import COLLAPSE_FACTOR
from montecarlo.claims._worst_case import (
    FIGURE_KINDS,
    figure_stem,
    worst_case_claims,
)

# A tiny spec: two Theorem 5.1 depths, a Corollary 5.1 ball (one norm) and a
# Theorem 4.1 part 1 fixed dataset; four searches of a fraction of a second.
SPEC_BODY = """
[defaults]
trials = 40
n = 4
d = 3
width = 4
labels = "tanh_teacher"

[configs.small]
theorem = "5.1"
weights = "small"
depth = [1, 2]

[configs.ball]
theorem = "corollary_5.1"
weights = "ball"
r = 0.5

[configs.fixed]
theorem = "4.1"
weights = "gaussian"
fixed_data = true

[configs.part2]
theorem = "4.1"
weights = "gaussian"
"""
SPEC_HEAD = 'title = "tiny worst case"\nseed = 5\n'
SPEC_HEAD += "eta = { start = 1e-4, stop = 100.0, num = 25 }\n"
SPEC = mc.parse_spec(SPEC_HEAD + SPEC_BODY, name="tiny")
TINY = {"steps": 3, "restarts": 2, "batch": 4, "select_draws": 8, "inner_steps": 2}
OPTIONS = {
    "groups": ["small", "ball", "fixed"],
    "budget": TINY,
    "norms": ["frobenius"],
    "heldout": 30,
}
UNITS = 4  # 2 depths + 1 ball norm + 1 fixed dataset
SEED = 5


def _scientific(result):
    """The result without its timings (the only part that may differ)."""
    out = copy.deepcopy(result)
    del out["elapsed_seconds"]
    for entry in out["results"]:
        del entry["search"]["seconds"]
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    return wc.run_adversarial(out, OPTIONS, spec=SPEC, seed=SEED, progress=False)


# --------------------------------------------------------------------------
# 1. Options
# --------------------------------------------------------------------------
BAD_OPTIONS = [
    ([1], "adversarial: must be a table"),
    ({}, "adversarial.groups: missing"),
    ({"groups": []}, "adversarial.groups: must be a non-empty list"),
    ({"groups": ["a", "a"]}, r"adversarial.groups\[1\]: repeats groups\[0\]"),
    ({"groups": [{"r": 1.0}]}, r"adversarial.groups\[0\].group: must be a non-empty"),
    (
        {"groups": [{"group": "a", "r": [1]}]},
        r"adversarial.groups\[0\].r: must be one value",
    ),
    ({"groups": [3]}, r"adversarial.groups\[0\]: must be a group name"),
    ({"groups": ["a"], "trials": 3}, "adversarial.trials: unknown key"),
    ({"groups": ["a"], "budget": "medium"}, "adversarial.budget: must be one of"),
    ({"groups": ["a"], "budget": 3}, "adversarial.budget: must be one of"),
    (
        {"groups": ["a"], "budget": {"steps": 0}},
        "adversarial.budget.steps: must be an integer >= 1, got 0",
    ),
    ({"groups": ["a"], "budget": {"stepz": 3}}, "adversarial.budget.stepz: unknown"),
    (
        {"groups": ["a"], "budget": {"lr": -1.0}},
        "adversarial.budget.lr: must be a finite number > 0, got -1.0",
    ),
    (
        {"groups": ["a"], "budget": {"quantiles": 0.5}},
        "adversarial.budget.quantiles: must be a non-empty list",
    ),
    (
        {"groups": ["a"], "budget": {"quantiles": [0.5, 1.0]}},
        r"adversarial.budget.quantiles: must be a non-empty tuple of numbers in \(0, 1",
    ),
    (
        {"groups": ["a"], "budget": {"steps": 2**40, "batch": 2**22}},
        r"adversarial.budget: .*steps \* batch must be <= 2\^61",
    ),
    ({"groups": ["a"], "norms": ["l1"]}, "adversarial.norms: must be a non-empty"),
    ({"groups": ["a"], "norms": []}, "adversarial.norms: must be a non-empty"),
    ({"groups": ["a"], "heldout": 0}, r"adversarial.heldout: must be an integer in"),
    ({"groups": ["a"], "heldout": True}, "adversarial.heldout: must be an integer"),
    ({"groups": ["a"], "workers": 0}, "adversarial.workers: must be an integer >= 1"),
]


@pytest.mark.parametrize(("table", "message"), BAD_OPTIONS)
def test_each_bad_option_is_one_line_naming_its_key(table, message):
    problems = wc.option_problems(table)
    assert len(problems) == 1, problems
    assert "\n" not in problems[0]
    assert re.match(message, problems[0]), problems[0]


def test_valid_options_have_no_problem():
    assert wc.option_problems(OPTIONS) == []
    assert wc.option_problems({"groups": ["a"], "budget": "quick"}) == []
    table = {"groups": [{"group": "small", "depth": 2}], "budget": "full"}
    assert wc.option_problems(table) == []
    assert wc.group_problems(table, SPEC.groups, SPEC.axes) == []
    assert wc.selected_configs(table, SPEC.groups, SPEC.axes) == [
        ("small", SPEC.groups["small"][1])
    ]


BAD_GROUPS = [
    (["nope"], r"adversarial.groups\[0\]: no group 'nope' in the spec"),
    ([{"group": "small", "r": 0.5}], r"groups\[0\].r: not a grid axis of group"),
    ([{"group": "small", "depth": 5}], r"groups\[0\].depth: must be one of .*\[1, 2\]"),
    (["part2"], r"groups\[0\]: group 'part2' .* must test a uniform statement"),
    (
        ["small", {"group": "small", "depth": 1}],
        r"groups\[1\]: selects group 'small' \(depth=1\) again, already selected by "
        r"adversarial.groups\[0\]",
    ),
]


@pytest.mark.parametrize(("groups", "message"), BAD_GROUPS)
def test_groups_must_exist_and_test_a_uniform_statement(groups, message, tmp_path):
    problems = wc.group_problems({"groups": groups}, SPEC.groups, SPEC.axes)
    assert len(problems) == 1, problems
    assert re.search(message, problems[0]), problems[0]
    # refused before any work: nothing is written
    with pytest.raises(ValueError, match=message):
        wc.run_adversarial(tmp_path, {"groups": groups}, spec=SPEC, seed=0)
    assert not any(tmp_path.iterdir())


def test_run_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        wc.run_adversarial(tmp_path, OPTIONS, spec=SPEC, seed=-1)
    with pytest.raises(ValueError, match="spec must be a Spec, got dict"):
        wc.run_adversarial(tmp_path, OPTIONS, spec={}, seed=0)
    with pytest.raises(ValueError, match="adversarial.heldout: must be an integer"):
        wc.run_adversarial(tmp_path, {**OPTIONS, "heldout": 0}, spec=SPEC, seed=0)


# --------------------------------------------------------------------------
# 2. Storage, resume, reproducibility
# --------------------------------------------------------------------------
def test_result_holds_every_unit_and_the_searched_axes(uninterrupted, tmp_path):
    res = uninterrupted
    assert [e["group"] for e in res["results"]] == ["small", "small", "ball", "fixed"]
    assert [e["statement"] for e in res["results"]] == [
        "5.1",
        "5.1",
        "corollary_5.1",
        "4.1 part 1",
    ]
    assert [e["norm"] for e in res["results"]] == [None, None, "frobenius", None]
    assert res["groups"]["small"]["axes"] == {"depth": [1, 2]}
    assert res["groups"]["ball"]["norms"] == ["frobenius"]
    assert res["budget"] == {**wc.FULL_BUDGET.to_dict(), **TINY}
    assert res["budget_name"] == "custom"
    assert all(e["adversarial"]["trials"] == 30 for e in res["results"])
    assert json.loads(json.dumps(res, allow_nan=False)) == res  # strict JSON


class _Interrupt:
    """``adversarial_cstar`` that raises KeyboardInterrupt at call ``stop``."""

    def __init__(self, stop):
        self.stop, self.calls = stop, 0

    def __call__(self, *args, **kwargs):
        if self.calls == self.stop:
            raise KeyboardInterrupt("simulated Ctrl-C")
        self.calls += 1
        return _REAL(*args, **kwargs)


_REAL = wc.adversarial_cstar


@pytest.mark.parametrize("stop", range(UNITS))
def test_resume_after_any_interruption_equals_an_uninterrupted_run(
    stop, uninterrupted, tmp_path, monkeypatch
):
    interrupt = _Interrupt(stop)
    monkeypatch.setattr(wc, "adversarial_cstar", interrupt)
    with pytest.raises(KeyboardInterrupt):
        wc.run_adversarial(tmp_path, OPTIONS, spec=SPEC, seed=SEED, progress=False)
    units = tmp_path / "adversarial" / "units"
    assert len(list(units.glob("*.json"))) == stop
    assert not (tmp_path / "adversarial.json").exists()
    counting = _Interrupt(UNITS + 1)  # never interrupts, counts the searches
    monkeypatch.setattr(wc, "adversarial_cstar", counting)
    resumed = wc.run_adversarial(
        tmp_path, OPTIONS, spec=SPEC, seed=SEED, progress=False
    )
    assert counting.calls == UNITS - stop  # only the missing units
    assert _scientific(resumed) == _scientific(uninterrupted)
    written = json.loads((tmp_path / "adversarial.json").read_text())
    assert _scientific(written) == _scientific(uninterrupted)


def test_a_finished_run_recomputes_nothing_and_fresh_recomputes_all(
    tmp_path, monkeypatch
):
    first = wc.run_adversarial(tmp_path, OPTIONS, spec=SPEC, seed=SEED, progress=False)
    counting = _Interrupt(UNITS + 1)
    monkeypatch.setattr(wc, "adversarial_cstar", counting)
    again = wc.run_adversarial(tmp_path, OPTIONS, spec=SPEC, seed=SEED, progress=False)
    assert counting.calls == 0
    assert _scientific(again) == _scientific(first)
    wc.run_adversarial(
        tmp_path, OPTIONS, spec=SPEC, seed=SEED, fresh=True, progress=False
    )
    assert counting.calls == UNITS


def test_the_seed_changes_the_units_and_workers_do_not(uninterrupted, tmp_path):
    two = wc.run_adversarial(
        tmp_path / "two", {**OPTIONS, "workers": 2}, spec=SPEC, seed=SEED
    )
    assert _scientific(two) | {"workers": 1} == _scientific(uninterrupted)
    other = wc.run_adversarial(
        tmp_path / "other", OPTIONS, spec=SPEC, seed=SEED + 1, progress=False
    )
    for a, b in zip(other["results"], uninterrupted["results"], strict=True):
        assert a["random"]["min_inner"] != b["random"]["min_inner"]


def test_progress_prints_one_line_per_configuration(tmp_path, capsys):
    options = {**OPTIONS, "groups": ["small"]}
    result = wc.run_adversarial(tmp_path, options, spec=SPEC, seed=SEED)
    lines = [x for x in capsys.readouterr().out.splitlines() if "c* random" in x]
    # one line per configuration, with its statement, group, label and c*
    assert sorted(x.split(":")[0] for x in lines) == [
        "[adversarial] 5.1 small depth=1",
        "[adversarial] 5.1 small depth=2",
    ]
    for entry in result["results"]:
        line = next(x for x in lines if f"depth={entry['config']['depth']}:" in x)
        assert f"adversarial {float(entry['adversarial']['c_star']):.3g}" in line


# --------------------------------------------------------------------------
# 3. Claims
# --------------------------------------------------------------------------
def test_mcnemar_is_the_exact_binomial_test_of_the_discordant_pairs():
    """Given b + c discordant pairs, b ~ Bin(b + c, 1/2) under p_A = p_B: the
    one-sided p-values are scipy's exact binomial tests (the same tail sum,
    so equal to a few rounding errors)."""
    rng = np.random.default_rng(3)
    a = rng.random(200) < 0.3
    b = rng.random(200) < 0.2
    res = t.mcnemar(a, b)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(b & ~a))
    assert (res.only_a, res.only_b) == (only_a, only_b)
    assert (res.failures_a, res.failures_b, res.trials) == (a.sum(), b.sum(), 200)
    n = only_a + only_b
    for k, p in ((only_a, res.p_a_more), (only_b, res.p_b_more)):
        ref = stats.binomtest(k, n, 0.5, alternative="greater").pvalue
        assert p == pytest.approx(ref, rel=8 * np.finfo(float).eps * n)
    # three discordant pairs all one way: p = 1/8 exactly
    assert t.mcnemar(np.ones(3, bool), np.zeros(3, bool)).p_a_more == 0.125
    assert t.mcnemar(np.zeros(3, bool), np.zeros(3, bool)).p_b_more == 1.0
    with pytest.raises(ValueError, match="boolean 1-D arrays of one length"):
        t.mcnemar(np.ones(3), np.zeros(3, bool))


T_SYN = 400
WIDTHS = (8, 16, 32)


def _synthetic(template, statement, adversarial, random, fixed_point=None, **over):
    """An adversarial.json with one group sweeping ``width``, which no bound of
    Theorem 5.1 or Corollary 5.1 involves (their parameters are n, d, depth
    and r): one configuration per width, with the given held-out values."""
    entries = []
    for j, w in enumerate(WIDTHS):
        e = copy.deepcopy(template)
        e["config"]["width"] = w
        e["group"] = "g"
        e["adversarial"]["min_inner"] = list(adversarial[j])
        e["random"]["min_inner"] = list(random[j])
        if fixed_point is not None:
            e["fixed_point"]["min_inner"] = list(fixed_point[j])
        found = e["search"]
        found["select_confusion"][found["restart"]] = over.get("bulk", 1.0)
        found["select_binding_eta"][found["restart"]] = over.get("bind", 2.0)
        entries.append(e)
    return {
        "eta": list(np.geomspace(1e-3, 1e3, 61)),
        "groups": {
            "g": {
                "statement": statement,
                "axes": {"width": list(WIDTHS)},
                "config_hashes": [],
                "norms": [template["norm"]] if template["norm"] else [],
            }
        },
        "results": entries,
    }


def _exponential(scales, seed):
    """``min G = -c`` with confusion ``c ~ scale Exp(1)``, ``T_SYN`` per scale."""
    rng = np.random.default_rng(seed)
    return [-s * rng.exponential(size=T_SYN) for s in scales]


# Confusion scales along the width sweep. Flat: one distribution, so c_q is
# constant up to sampling and the fitted slope is ~0, far above the collapse
# slope b_10 = -log(10) / log(32 / 8) = -1.66. Collapsing: scale x30 per
# doubling, so the tail quantile eta_q grows 900x over the sweep and c_q ~ 1 /
# eta_q^2 falls ~8e5x (slope -2 log(30) / log(2) = -9.8), far past 10x.
FLAT = (1.0, 1.0, 1.0)
COLLAPSING = (1.0, 30.0, 900.0)


def _trend(claims):
    (claim,) = [c for c in claims if c.kind is Kind.INEQUALITY]
    return claim


@pytest.mark.parametrize(
    ("scales", "verdict"), [(FLAT, "consistent"), (COLLAPSING, "violated")]
)
def test_c_star_trend_of_the_worst_case_found(uninterrupted, scales, verdict):
    template = uninterrupted["results"][0]  # Theorem 5.1
    result = _synthetic(template, "5.1", _exponential(scales, 1), _exponential(FLAT, 2))
    claim = _trend(worst_case_claims(result, alpha=0.05))
    assert claim.statement == "5.1" and claim.source == "adversarial"
    assert claim.claim.startswith("one constant c serves every width in the worst")
    assert claim.verdict == verdict, claim.reason
    assert f"{COLLAPSE_FACTOR:g}x" in claim.test
    assert claim.figure == figure_stem("c_star", "5.1")


@pytest.mark.parametrize(
    ("uniform", "at_found", "verdict"),
    [(COLLAPSING, FLAT, "violated"), (FLAT, COLLAPSING, "consistent")],
)
def test_corollary_trend_uses_the_uniform_per_draw_estimate(
    uninterrupted, uniform, at_found, verdict
):
    template = uninterrupted["results"][2]  # Corollary 5.1, Frobenius ball
    result = _synthetic(
        template,
        "corollary_5.1",
        _exponential(uniform, 3),
        _exponential(FLAT, 4),
        fixed_point=_exponential(at_found, 5),
    )
    claim = _trend(worst_case_claims(result, alpha=0.05))
    assert claim.verdict == verdict, claim.reason
    assert "frobenius ball" in claim.claim
    assert "uniform (per-draw) estimate" in claim.test


@pytest.mark.parametrize(
    ("adversarial", "random", "verdict"),
    [(3.0, 0.5, "consistent"), (0.5, 3.0, "violated")],
)
def test_the_search_check_on_paired_trials(uninterrupted, adversarial, random, verdict):
    """Every trial of one side has confusion 3, every trial of the other 0.5;
    levels: the found point's mean confusion 1 (supports when the found point
    fails more) and its binding eta 2 (contradicts when the random ensemble
    fails more). All 400 pairs are discordant one way: p = 2^-400."""
    template = uninterrupted["results"][0]
    full = [np.full(T_SYN, -adversarial)] * 3
    other = [np.full(T_SYN, -random)] * 3
    claims = worst_case_claims(_synthetic(template, "5.1", full, other), alpha=0.05)
    rows = [c for c in claims if c.kind is Kind.OBSERVATION]
    assert len(rows) == len(WIDTHS)
    for row in rows:
        assert row.verdict == verdict, row.reason
        assert row.n_min == T_SYN
        assert min(e.p_value for e in row.evidence) == pytest.approx(2.0**-T_SYN)
        assert row.figure == figure_stem("failure", "5.1")


def test_observation_row_shows_both_c_star_and_their_ratio(uninterrupted):
    entry = uninterrupted["results"][0]
    result = {**uninterrupted, "results": [entry]}
    result["groups"] = {"small": {**uninterrupted["groups"]["small"]}}
    (row,) = [
        c for c in worst_case_claims(result, alpha=0.05) if c.kind is Kind.OBSERVATION
    ]
    found = AdversarialResult.from_dict(entry)
    est = {
        side: heldout_estimate(
            found.config, getattr(found, side).min_inner, uninterrupted["eta"]
        ).c_star
        for side in ("random", "adversarial")
    }
    assert f"c* random {est['random']:.3g}" in row.statistic
    assert f"adversarial {est['adversarial']:.3g}" in row.statistic
    assert f"ratio {est['adversarial'] / est['random']:.3g}" in row.statistic


@pytest.mark.parametrize(("confusion", "untestable"), [(3.0, True), (6.0, False)])
def test_theorem_4_1_part_1_outside_its_domain_is_inconclusive(
    uninterrupted, confusion, untestable
):
    """Theorem 4.1 part 1 is stated for eta > 4: with every held-out confusion
    at 3 nothing fails there, and the row says why; at 6 the trend is tested."""
    template = uninterrupted["results"][3]
    values = [np.full(T_SYN, -confusion)] * 3
    result = _synthetic(template, "4.1 part 1", values, values)
    result["groups"]["g"]["axes"] = {"depth": [2, 3, 4]}
    for e, depth in zip(result["results"], (2, 3, 4), strict=True):
        e["config"]["depth"] = depth
    claims = worst_case_claims(result, alpha=0.05)
    (row,) = [c for c in claims if c.kind is Kind.INEQUALITY]
    domain = "inside its domain eta > 4" in row.claim
    assert domain == untestable
    if untestable:
        assert row.verdict == "inconclusive"
        assert "no held-out trial of the worst case found has confusion above" in (
            row.reason
        )
        assert all(
            "reflect the trial count only" in c.statistic
            for c in claims
            if c.kind is Kind.OBSERVATION
        )
    else:
        assert row.claim.startswith("one constant c serves every depth")


def test_claims_refuse_what_is_not_the_experiment():
    with pytest.raises(ValueError, match=r"missing \['eta', 'groups'\]"):
        worst_case_claims({"results": []})
    with pytest.raises(ValueError, match="alpha must be a number in"):
        worst_case_claims({"eta": [], "groups": {}, "results": []}, alpha=1.5)
    with pytest.raises(ValueError, match="kind must be one of"):
        figure_stem("trend", "5.1")


# --------------------------------------------------------------------------
# 4. Figures and the report section
# --------------------------------------------------------------------------
STATEMENTS_SEARCHED = ("4.1 part 1", "5.1", "corollary_5.1")


def test_figures_per_statement(uninterrupted, tmp_path):
    paths = plot_adversarial(uninterrupted, tmp_path)
    stems = {figure_stem(k, s) for k in FIGURE_KINDS for s in STATEMENTS_SEARCHED}
    assert {p.stem for p in paths} == stems
    assert sorted(p.suffix for p in paths) == [".pdf"] * 9 + [".png"] * 9
    for p in paths:
        magic = b"\x89PNG\r\n\x1a\n" if p.suffix == ".png" else b"%PDF-"
        assert p.read_bytes().startswith(magic)


def test_markdown_section(uninterrupted):
    text = worst_case_section(uninterrupted)
    assert text.startswith("## Worst case found\n")
    for key in STATEMENTS_SEARCHED:
        assert f"### {bounds.STATEMENTS[key].full_title}".replace("_", "\\_") in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    data = [r for r in rows if not r.startswith("| group")]
    assert len(data) == UNITS
    order = list(bounds.STATEMENTS)  # one table per statement, in report order
    entries = sorted(
        uninterrupted["results"], key=lambda e: order.index(e["statement"])
    )
    for row, entry in zip(data, entries, strict=True):
        assert row.startswith(f"| {entry['group']} | {entry['norm'] or '-'} |")
        cells = [c.strip() for c in row.strip("|").split("|")]
        c_rand = float(entry["random"]["c_star"])
        c_adv = float(entry["adversarial"]["c_star"])
        assert cells[4:7] == [
            fmt_num(c_rand),
            fmt_num(c_adv),
            fmt_num(c_adv / c_rand),
        ]
    links = set(re.findall(r"\[(worst_case_\w+)\]\(#fig-([\w-]+)\)", text))
    stems = {figure_stem(k, s) for k in FIGURE_KINDS for s in STATEMENTS_SEARCHED}
    assert links == {(s, s.replace("_", "-")) for s in stems}
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert html.count("<table>") == len(STATEMENTS_SEARCHED)
    assert "budget (custom): 2 restarts x 3 steps x 4 draws" in html.lower()


# --------------------------------------------------------------------------
# 5. End to end through python -m montecarlo.run
# --------------------------------------------------------------------------
def test_end_to_end_through_the_command_line(tmp_path, capsys):
    """The registered experiment through montecarlo.run, claims and report."""
    from montecarlo import run

    table = "\n[adversarial]\n" + 'groups = ["small", "fixed"]\nbudget = "quick"\n'
    table += "heldout = 40\n"
    path = tmp_path / "tiny.toml"
    path.write_text(SPEC_HEAD + 'experiments = ["adversarial"]\n' + SPEC_BODY + table)
    out = tmp_path / "out"
    args = ["--spec", str(path), "--out", str(out), "--backend", "numpy"]
    assert run.main([*args, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("[adversarial] 5.1 small depth=") == 2
    result = json.loads((out / "adversarial.json").read_text())
    assert result["budget_name"] == "quick" and len(result["results"]) == 3
    md = (out / "report.md").read_text()
    for stem in ("worst_case_failure_5_1", "worst_case_failure_4_1_part_1"):
        assert f"(#fig-{stem.replace('_', '-')})" in md  # a claim links it
        assert f'<a id="fig-{stem.replace("_", "-")}"></a>' in md  # it is drawn
    assert "the worst case found fails at least as often" in md
    assert "inside its domain eta &gt; 4" in md
