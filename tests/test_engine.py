"""The Monte Carlo engine: backends agree, results do not depend on chunking,
threads or interruption, bad specs fail before compute, estimates are exact."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import montecarlo as mc
from montecarlo._config import parse_spec
from montecarlo._engine import iter_run
from montecarlo._store import StoreError, count_trials
from montecarlo._trial import fixed_data

SMALL = dict(n=6, d=5, depth=2, width=7, trials=6)

# Configurations as data: every ensemble, data law, labeling function, loss.
CASES = {
    "gaussian-tanh": dict(theorem="4.1", weights="gaussian", kappa=0.7),
    "gaussian-relu-logistic-signs-mb": dict(
        weights="gaussian",
        activation="relu",
        loss="logistic",
        labels="random_signs",
        batch_sizes=(2, 3),
    ),
    "orthogonal-sigmoid-ball-linear": dict(
        weights="orthogonal", activation="sigmoid", data="ball", labels="linear_teacher"
    ),
    "small-network-teacher": dict(
        theorem="5.1", weights="small", scale=0.5, labels="network_teacher"
    ),
    "ball-constant": dict(
        theorem="corollary_5.1", weights="ball", r=0.4, labels="constant"
    ),
    "orthogonal-linear": dict(
        theorem="6.1",
        weights="orthogonal_linear",
        activation="identity",
        output_activation=False,
        depth=3,
    ),
    "fixed-data": dict(theorem="4.1", weights="gaussian", fixed_data=True, depth=1),
    "linear-output": dict(weights="gaussian", output_activation=False, depth=3),
    "uniform-spectrum-relu": dict(
        theorem="5.1", weights="uniform_spectrum", scale=0.8, activation="relu"
    ),
    "ball-orthogonal-centre": dict(
        theorem="corollary_5.1", weights="ball", centre="orthogonal", r=0.4
    ),
    "ball-uniform-spectrum-centre-signs": dict(
        weights="ball",
        centre="uniform_spectrum",
        r=0.4,
        labels="random_signs",
        loss="logistic",
    ),
    "orthogonal-linear-identity": dict(
        theorem="6.1",
        weights="orthogonal_linear",
        layers="identity",
        activation="identity",
        output_activation=False,
        depth=3,
    ),
    "orthogonal-linear-signed-permutation": dict(
        theorem="6.1",
        weights="orthogonal_linear",
        layers="signed_permutation",
        activation="identity",
        output_activation=False,
        depth=3,
    ),
}


def _config(name):
    return mc.Config(**{**SMALL, **CASES[name]})


@pytest.mark.parametrize("name", list(CASES))
def test_every_pair_of_backends_gives_the_same_trials(name):
    config = _config(name)
    key = mc.samplers.stream_key(11, config.config_hash)
    fixed = fixed_data(config, key)
    trials = np.arange(config.trials)
    results = {
        b: mc.backends.get_backend(b).run(config, key, trials, fixed)
        for b in mc.backends.available_backends()
    }
    names = list(results)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for part in (0, 1):
                x, y = results[a][part], results[b][part]
                assert np.array_equal(np.isnan(x), np.isnan(y)), (
                    f"{a} vs {b}: NaN pattern"
                )
                np.testing.assert_allclose(
                    x, y, rtol=1e-9, atol=1e-12, err_msg=f"backends {a} vs {b} differ"
                )


def _spec(trials=10, extra=""):
    return parse_spec(
        f"""
title = "test"
seed = 5
[defaults]
trials = {trials}
n = 6
d = 5
width = 6
[configs.g]
theorem = "4.1"
weights = "gaussian"
depth = [1, 3]
batch_sizes = [3]
[configs.o]
theorem = "6.1"
weights = "orthogonal_linear"
activation = "identity"
output_activation = false
depth = 2
{extra}
""",
        name="test",
    )


def _rows(out):
    df = (
        mc.load_results(out)
        .sort_values(["config_hash", "trial"])
        .reset_index(drop=True)
    )
    mb = mc.load_results(out, table="minibatch")
    return df, mb.sort_values(["config_hash", "trial", "B"]).reset_index(drop=True)


def test_results_identical_across_chunk_sizes_and_threads(tmp_path):
    spec = _spec()
    ref = None
    before = numba.get_num_threads()
    try:
        for chunk, threads in [(64, numba.config.NUMBA_NUM_THREADS), (1, 1), (3, 2)]:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            out = tmp_path / f"c{chunk}t{threads}"
            mc.run_sweep(spec, out, chunk_size=chunk)
            rows = _rows(out)
            if ref is None:
                ref = rows
            else:
                pd.testing.assert_frame_equal(rows[0], ref[0], check_exact=True)
                pd.testing.assert_frame_equal(rows[1], ref[1], check_exact=True)
    finally:
        numba.set_num_threads(before)
    assert (
        len(ref[0]) == 3 * 10
        and ref[0].groupby("config_hash").trial.nunique().eq(10).all()
    )


def test_interrupted_run_resumes_to_exactly_the_requested_trials(tmp_path):
    spec = _spec()
    full = tmp_path / "full"
    mc.run_sweep(spec, full, chunk_size=4)
    part = tmp_path / "part"
    gen = iter_run(spec, part, chunk_size=4)
    for _ in range(3):  # setup + two chunks stored, then "crash"
        next(gen)
    gen.close()
    assert len(mc.load_results(part)) == 8
    last = mc.run_sweep(spec, part, chunk_size=7)
    assert last.done == last.total == 30
    pd.testing.assert_frame_equal(_rows(part)[0], _rows(full)[0], check_exact=True)
    # more trials extend the run; the first ones are unchanged
    mc.run_sweep(spec.with_trials(12), part)
    df = _rows(part)[0]
    assert len(df) == 36 and not df.duplicated(["config_hash", "seed", "trial"]).any()
    pd.testing.assert_frame_equal(
        df[df.trial < 10].reset_index(drop=True), _rows(full)[0], check_exact=True
    )


def test_kill_9_loses_at_most_the_chunk_in_flight(tmp_path):
    spec_path = tmp_path / "k.toml"
    spec_path.write_text(_spec(trials=300).text)
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "montecarlo.run",
        "--spec",
        str(spec_path),
        "--out",
        str(out),
        "--chunk-size",
        "2",
        "--no-progress",
        "--no-report",
        "--backend",
        "numpy",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    db = out / "results.sqlite"
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                stored = count_trials(db)
            except (StoreError, ValueError):  # not created yet
                stored = 0
            if stored >= 40:
                break
        time.sleep(0.05)
    assert proc.poll() is None, (
        f"run ended before it could be killed: {proc.stderr.read()}"
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(mc.load_results(out))
    assert 40 <= partial < 900
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    ref = tmp_path / "ref"
    mc.run_sweep(_spec(trials=300), ref, backend="numpy")
    killed, full = _rows(out), _rows(ref)
    assert len(killed[0]) == 900
    pd.testing.assert_frame_equal(killed[0], full[0], check_exact=True)
    pd.testing.assert_frame_equal(killed[1], full[1], check_exact=True)


def test_out_dir_of_another_spec_is_refused_unless_fresh(tmp_path):
    mc.run_sweep(_spec(trials=2), tmp_path)
    other = dataclasses.replace(_spec(trials=2), name="other")
    with pytest.raises(ValueError, match="fresh"):
        mc.run_sweep(other, tmp_path)
    mc.run_sweep(other, tmp_path, fresh=True)
    assert len(mc.load_results(tmp_path)) == 6


def test_non_finite_trials_are_flagged_and_excluded(tmp_path):
    # Deep nets with huge weights overflow: kappa = 1e-12 multiplies every layer's
    # scale by ~1e6, so 60 layers reach ~1e360 > the float64 maximum ~1.8e308.
    spec = parse_spec(
        """
[defaults]
trials = 20
[configs.overflow]
weights = "gaussian"
activation = "identity"
output_activation = false
labels = "constant"
kappa = 1e-12
width = 4
depth = [2, 60]
""",
        name="overflow",
    )
    mc.run_sweep(spec, tmp_path)
    df = mc.load_results(tmp_path)
    deep = df[df.depth == 60]
    assert (deep.finite == 0).sum() > 0, "expected overflowing trials"
    assert deep.loc[deep.finite == 0, "min_inner"].isna().all()
    est = mc.estimates(deep, [0.1])
    bad = int((deep.finite == 0).sum())
    assert est.nonfinite.iloc[0] == bad and est.trials.iloc[0] == 20 - bad
    assert (df[df.depth == 2].finite == 1).all()


def test_estimates_match_brute_force_and_scipy():
    rng = np.random.default_rng(3)
    vals = rng.normal(-0.2, 0.3, size=57)
    vals[[4, 9]] = np.nan  # non-finite trials
    # exact ties: G_ij = 0 (dead ReLU units) holds at eta = 0; -0.1 holds at eta = 0.1
    vals[[0, 1, 2]] = [0.0, -0.0, -0.1]
    df = pd.DataFrame(
        {
            "config_hash": "h",
            "seed": 0,
            "trial": np.arange(57),
            "finite": np.where(np.isnan(vals), 0.0, 1.0),
            "min_inner": vals,
        }
    )
    eta = np.array([0.0, 0.1, 0.5, 2.0])
    est = mc.estimates(df, eta, confidence=0.9)
    ok = vals[~np.isnan(vals)]
    for row, e in zip(est.itertuples(), eta, strict=True):
        k = int((ok < -e).sum())
        assert row.failures == k and row.trials == 55 and row.nonfinite == 2
        ci = stats.binomtest(55 - k, 55).proportion_ci(0.9, method="exact")
        assert row.ci_low == pytest.approx(ci.low) and row.ci_high == pytest.approx(
            ci.high
        )
        assert row.estimate == pytest.approx(1 - k / 55)
    with pytest.raises(ValueError, match="statistic"):
        mc.estimates(df, eta, statistic="max")
    with pytest.raises(ValueError, match="eta"):
        mc.estimates(df, [-1.0])


def test_spec_errors_are_reported_all_at_once_with_key_paths():
    text = """
title = 3
bogus = 1
[defaults]
n = 1
[configs.a]
width = [8, 0]
activation = "softplus"
weights = "gaussian"
kappa = -1
batch_sizes = [4]
colour = "red"
"""
    with pytest.raises(mc.SpecError) as info:
        parse_spec(text)
    msg = str(info.value)
    for fragment in (
        "title: must be a string",
        "bogus: unknown key",
        "defaults.n: must be an integer >= 2, got 1",
        "configs.a.width[1]: must be an integer >= 1, got 0",
        "configs.a.activation: must be one of",
        "configs.a.kappa: must be a finite number > 0",
        "configs.a.colour: unknown key",
    ):
        assert fragment in msg, fragment
    with pytest.raises(mc.SpecError, match=r"batch_sizes: 4 does not divide n = 6"):
        parse_spec("[configs.a]\nn = 6\nbatch_sizes = [4]")
    with pytest.raises(mc.SpecError, match="orthogonal_linear"):
        parse_spec("[configs.a]\nweights = 'orthogonal_linear'")


def test_config_hash_ignores_trials_only():
    a = mc.Config()
    assert a.config_hash == dataclasses.replace(a, trials=999).config_hash
    for field, value in [
        ("width", 33),
        ("kappa", 0.5),
        ("activation", "relu"),
        ("batch_sizes", (2,)),
        ("fixed_data", True),
    ]:
        assert dataclasses.replace(a, **{field: value}).config_hash != a.config_hash


def test_bundled_specs_parse():
    names = mc._config.bundled_specs()
    assert "quick" in names
    for name in names:
        spec = mc.load_spec(name)
        assert spec.configs() or spec.experiments
