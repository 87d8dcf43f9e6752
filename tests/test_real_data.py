"""The digits experiment (Figures 2 to 4, small): pipeline, statistics, figures."""

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

CLAIM_KEYS = {"claim", "test", "statistic", "ci_or_p", "verdict", "reason", "figure"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("real_data")
    threads = torch.get_num_threads()
    result = run_real_data(out, seed=3, quick=True)
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
    assert loaded["elapsed_seconds"] < 30.0
    claims = loaded["claims"]
    assert len(claims) == 15
    for row in claims:
        assert set(row) == CLAIM_KEYS
        assert row["verdict"] in ("consistent", "violated", "inconclusive")
        assert row["figure"] in (
            "real_data_depth",
            "real_data_width",
            "real_data_variants",
        )


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


def test_spearman_and_paired_claims():
    rng = np.random.default_rng(0)
    x = [1, 1, 2, 2, 3, 3, 4, 4]
    up = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    row = rd._spearman_claim("c", x, up, +1, "f", rng)
    assert row["statistic"] == pytest.approx(stats.spearmanr(x, up).statistic)
    # Exact two-sided p: the 2 * 2^4 orderings of the ties-broken pairs that
    # reach |rho| >= observed out of 8! = 40320, about 8e-4; the Monte Carlo
    # estimate with 9999 resamples is far below 0.01.
    assert row["verdict"] == "consistent" and row["ci_or_p"] < 0.01
    assert rd._spearman_claim("c", x, up, -1, "f", rng)["verdict"] == "violated"
    flat = rd._spearman_claim("c", x, [0.5] * 8, -1, "f", rng)
    assert flat["verdict"] == "inconclusive" and flat["statistic"] is None
    paired = rd._paired_claim("c", [1.0 + i for i in range(10)], [0.0] * 10, +1, "f")
    # All 10 differences positive: exact two-sided p = 2 / 2^10.
    assert paired["ci_or_p"] == pytest.approx(2 / 1024)
    assert paired["verdict"] == "consistent"
    nan_pair = rd._paired_claim("c", [math.nan, 1.0, 2.0], [0.0, 0.0, 0.0], +1, "f")
    assert "left out" in nan_pair["reason"]


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        run_real_data(tmp_path, seed=-1, quick=True)
    with pytest.raises(ValueError, match="workers"):
        run_real_data(tmp_path, quick=True, workers=0)
