"""The digits experiment (Figures 2 to 4, small): pipeline, statistics, figures.

Also: every finished run is stored and a re-run resumes (the interrupt and
subprocess checks of the shared runner are in ``tests/test_cnn.py``).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from figures._real_data import plot_real_data
from montecarlo import _real_data as rd
from montecarlo._real_data import run_real_data
from montecarlo.claims import VERDICTS, experiment_claims
from montecarlo.claims._section7 import section7_claims


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("real_data")
    threads = torch.get_num_threads()
    result = run_real_data(out, seed=3, quick=True, progress=False)
    assert torch.get_num_threads() == threads  # restored
    return out, result


def test_quick_run_writes_json_and_claims(quick):
    out, result = quick
    loaded = json.loads((out / "real_data.json").read_text())
    assert loaded == json.loads(json.dumps(result))  # the JSON is the result
    s = rd.QUICK
    models = len(rd._models(s))
    assert len(loaded["runs"]) == models * s.replicates
    for run in loaded["runs"]:
        assert len(run["loss"]) == s.epochs
        assert len(run["min_cosine"]) == s.epochs + 1
        assert all(len(c) == s.pairs for c in run["cosines"])
        assert run["lr"] in s.learning_rates
        cos = [c for cs in run["cosines"] for c in cs if c is not None]
        assert all(-1.0 <= c <= 1.0 for c in cos)
    # 15 claims with their directions and data, turned into rows by the
    # inference layer (only the two "deeper half" ones were not pre-specified)
    specs = loaded["prespecified_claims"]
    assert len(specs) == 15 and set(loaded["claim_data"]) == {c["id"] for c in specs}
    assert sum(not c["prespecified"] for c in specs) == 3
    rows = experiment_claims("real_data", loaded)
    assert len(rows) == 15
    for row in rows:
        assert row.verdict in VERDICTS and row.statement == "section 7"
        assert row.figure in (
            "real_data_depth",
            "real_data_width",
            "real_data_variants",
        )


def test_runs_are_stored_and_a_rerun_resumes(quick, capsys):
    out, result = quick
    s = rd.QUICK
    stored = list((out / "real_data" / "runs").glob("*.json"))
    models = len(rd._models(s))
    assert len(stored) == models * (len(s.learning_rates) + s.replicates)
    capsys.readouterr()
    again = run_real_data(out, seed=3, quick=True, progress=True)
    printed = capsys.readouterr().out
    n = models * s.replicates
    assert f"[real_data] {n} of {n} runs loaded" in printed
    assert "stored:" not in printed and "epoch" not in printed  # nothing recomputed
    for key in set(result) - {"elapsed_seconds"}:
        assert again[key] == result[key], key
    fresh = run_real_data(out, seed=3, quick=True, progress=True, fresh=True)
    printed = capsys.readouterr().out
    assert "runs loaded" not in printed and "epoch 1/" in printed
    assert fresh["runs"] == result["runs"]


def test_epoch_progress_lines():
    spec = rd._RunSpec(rd._Model(8, 2, "plain"), 1, 0, 0.1, 2, 128, 3)
    lines: list[str] = []
    rd._train(spec, lines.append)
    assert [line.split(":")[0] for line in lines] == [
        "mlp-w8-d2-plain rep 0 lr 0.1"
    ] * 2
    assert "epoch 2/2 loss " in lines[1] and " min cos " in lines[1]


def test_figures_from_json(quick, tmp_path):
    out, _ = quick
    loaded = json.loads((out / "real_data.json").read_text())
    paths = plot_real_data(loaded, tmp_path)
    names = {p.name for p in paths}
    for stem in ("real_data_depth", "real_data_width", "real_data_variants"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    for p in paths:
        assert p.stat().st_size > 1000
    with pytest.raises(ValueError, match="result"):
        plot_real_data({"runs": []}, tmp_path)


def test_run_is_deterministic_and_leaves_global_rng_alone():
    spec = rd._RunSpec(rd._Model(8, 2, "bn+skip"), 1, 0, 0.1, 2, 128, 3)
    state = torch.random.get_rng_state()
    a, b = rd._train(spec), rd._train(spec)
    assert torch.equal(state, torch.random.get_rng_state())
    assert a == b
    other = rd._train(rd._RunSpec(spec.model, 1, 1, 0.1, 2, 128, 3))
    assert other["loss"] != a["loss"]


def test_he_initialization_variance():
    """Weights of a width-256 layer are N(0, 2 / fan_in): the sample variance of
    256 * 256 entries has relative standard error sqrt(2 / 65536) = 0.0055;
    6 standard errors (false-failure rate ~2e-9) give the tolerance 0.033."""
    net = rd._build(rd._Model(256, 2, "plain"), torch.Generator().manual_seed(0))
    w = net.blocks[0].weight.detach().numpy()
    assert abs(w.var() / (2.0 / 256) - 1.0) < 6 * math.sqrt(2.0 / w.size)
    assert np.all(net.blocks[0].bias.detach().numpy() == 0)


def _result(spec: dict, data: dict) -> dict:
    return {
        "prespecified_claims": [{"id": "c", "statement": "s", **spec}],
        "claim_data": {"c": data},
    }


def test_section7_trend_and_paired_claims():
    x = [1, 1, 2, 2, 3, 3, 4, 4]
    up = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    trend = {
        "axis": "depth",
        "metric": "final_min_cosine",
        "test": "spearman",
        "missing": "drop",
    }
    (row,) = section7_claims(
        _result({**trend, "direction": "increasing"}, {"x": x, "y": up}), source="t"
    )
    assert f"rho = {stats.spearmanr(x, up).statistic:+.3f}" in row.statistic
    # Exact one-sided p: the 2^4 tie orderings reaching the observed rho out of
    # 8! = 40320, about 4e-4; the estimate with 9999 resamples is far below 0.01.
    assert row.verdict == "consistent" and row.evidence[0].p_value < 0.01
    (down,) = section7_claims(
        _result({**trend, "direction": "decreasing"}, {"x": x, "y": up}), source="t"
    )
    assert down.verdict == "violated"
    (flat,) = section7_claims(
        _result({**trend, "direction": "decreasing"}, {"x": x, "y": [0.5] * 8}),
        source="t",
    )
    assert flat.verdict == "inconclusive"
    paired = {
        "axis": "variant",
        "metric": "final_train_loss",
        "test": "wilcoxon",
        "treated": "bn",
        "control": "plain",
        "missing": "worst",
    }
    (p,) = section7_claims(
        _result(
            {**paired, "direction": "greater"},
            {"treated": [1.0 + i for i in range(10)], "control": [0.0] * 10},
        ),
        source="t",
    )
    # All 10 differences positive: exact one-sided p = 1 / 2^10.
    assert (
        p.evidence[0].p_value == pytest.approx(1 / 1024) and p.verdict == "consistent"
    )
    # a diverged treated run (None) ranks worst under "worst": a positive difference
    (q,) = section7_claims(
        _result(
            {**paired, "direction": "greater"},
            {"treated": [None] * 8, "control": [0.0] * 8},
        ),
        source="t",
    )
    assert "8 positive" in q.statistic


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        run_real_data(tmp_path, seed=-1, quick=True)
    with pytest.raises(ValueError, match="workers"):
        run_real_data(tmp_path, quick=True, workers=0)
