"""The CUDA backend: same trials as the numpy reference.

In this process (no GPU here, no simulator): the torch trials on the CPU with
the host Philox stream (``rng="host"``) against the numpy backend, the draw
plan against the samplers' own calls, argument checks, and the draw kernel's
types on the real CUDA target. The kernel itself runs in a subprocess under
numba's CUDA simulator (``tests/_cuda_sim_checks.py``), and on a real GPU when
there is one.
"""

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import cuda

import montecarlo as mc
from montecarlo import _cuda
from montecarlo._backends import CudaBackend, NumpyBackend
from montecarlo._trial import draw_data, draw_weights, fixed_data

ROOT = Path(__file__).parents[1]
CHECKS = Path(__file__).with_name("_cuda_sim_checks.py")
REAL_GPU = cuda.is_available() and not numba.config.ENABLE_CUDASIM

SMALL = dict(n=6, d=5, depth=2, width=7, trials=6)

# Configurations as data: every ensemble, data law, labeling function, loss,
# activation, read-out, fixed data, mini-batch sizes, rectangular layers both
# ways, and overflowing (non-finite) trials.
CASES = {
    "gaussian-tanh": dict(weights="gaussian", kappa=0.7),
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
    "orthogonal-narrow": dict(weights="orthogonal", width=3, d=8, depth=3),
    "small-network-teacher": dict(weights="small", scale=0.5, labels="network_teacher"),
    "small-ball-data-tanh-teacher": dict(weights="small", data="ball", width=9),
    "ball-constant": dict(weights="ball", r=0.4, labels="constant"),
    "ball-ball-data-signs-logistic": dict(
        weights="ball",
        r=2.0,
        data="ball",
        labels="random_signs",
        loss="logistic",
        label_value=-0.5,
        batch_sizes=(3,),
    ),
    "orthogonal-linear": dict(
        weights="orthogonal_linear",
        activation="identity",
        output_activation=False,
        depth=3,
        batch_sizes=(2,),
    ),
    "orthogonal-linear-depth-1": dict(
        weights="orthogonal_linear",
        activation="identity",
        output_activation=False,
        depth=1,
        labels="constant",
    ),
    "fixed-data": dict(weights="gaussian", fixed_data=True, depth=1),
    "fixed-ball-data-signs": dict(
        weights="orthogonal", fixed_data=True, data="ball", labels="random_signs"
    ),
    "linear-output": dict(weights="gaussian", output_activation=False, depth=3),
    "uniform-spectrum-relu": dict(
        weights="uniform_spectrum", scale=0.8, activation="relu", width=3, d=8
    ),
    "ball-orthogonal-centre": dict(weights="ball", centre="orthogonal", r=0.4),
    "ball-uniform-spectrum-centre-signs": dict(
        weights="ball",
        centre="uniform_spectrum",
        r=0.4,
        labels="random_signs",
        loss="logistic",
    ),
    "orthogonal-linear-identity": dict(
        weights="orthogonal_linear",
        layers="identity",
        activation="identity",
        output_activation=False,
        depth=3,
    ),
    "orthogonal-linear-signed-permutation": dict(
        weights="orthogonal_linear",
        layers="signed_permutation",
        activation="identity",
        output_activation=False,
        depth=3,
        batch_sizes=(2,),
    ),
    "orthogonal-linear-identity-fixed-data": dict(
        weights="orthogonal_linear",
        layers="identity",
        activation="identity",
        output_activation=False,
        fixed_data=True,
        labels="constant",
    ),
    "identity-constant-mb": dict(
        weights="gaussian",
        activation="identity",
        labels="constant",
        n=8,
        batch_sizes=(2, 4),
    ),
    # kappa = 1e-12 scales every layer by ~1e6: 60 linear layers overflow float64.
    "overflow": dict(
        weights="gaussian",
        activation="identity",
        output_activation=False,
        labels="constant",
        kappa=1e-12,
        width=4,
        depth=60,
        batch_sizes=(3,),
    ),
}


def _config(**kw):
    return mc.Config(**{**SMALL, **kw})


def _assert_same_records(got, ref):
    for part in (0, 1):
        x, y = got[part], ref[part]
        assert x.shape == y.shape
        assert np.array_equal(np.isnan(x), np.isnan(y)), "NaN pattern differs"
        # Float tolerance: torch and numpy differ only by the order of float
        # operations (LAPACK QR, matmul blocking), ~1e-16 relative each.
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)


def _run_both(config, seed=11):
    key = mc.samplers.stream_key(seed, config.config_hash)
    fixed = fixed_data(config, key)
    trials = np.arange(config.trials)
    ref = NumpyBackend().run(config, key, trials, fixed)
    got = CudaBackend(rng="host", device="cpu").run(config, key, trials, fixed)
    return got, ref


@pytest.mark.parametrize("name", list(CASES))
def test_host_mode_gives_the_numpy_trials(name):
    got, ref = _run_both(_config(**CASES[name]))
    _assert_same_records(got, ref)
    if name == "overflow":
        assert (ref[0][:, 0] == 0).any(), "expected non-finite trials"


@st.composite
def configs(draw):
    weights = draw(st.sampled_from(mc._config.WEIGHT_NAMES))
    n = draw(st.integers(2, 8))
    divisors = [b for b in range(1, n) if n % b == 0 and n // b >= 2]
    kw = dict(
        n=n,
        d=draw(st.integers(1, 6)),
        width=draw(st.integers(1, 6)),
        depth=draw(st.integers(1, 3)),
        weights=weights,
        data=draw(st.sampled_from(mc._config.DATA_NAMES)),
        fixed_data=draw(st.booleans()),
        kappa=draw(st.sampled_from([0.5, 1.0])),
        scale=draw(st.sampled_from([0.3, 1.0])),
        r=draw(st.sampled_from([0.0, 0.7])),
        teacher_width=draw(st.integers(1, 4)),
        batch_sizes=tuple(sorted(draw(st.sets(st.sampled_from(divisors))))),
        trials=3,
    )
    if weights == "ball":
        kw["centre"] = draw(st.sampled_from(mc._config.CENTRE_NAMES))
    if weights == "orthogonal_linear":
        kw.update(activation="identity", loss="square", output_activation=False)
        kw["layers"] = draw(st.sampled_from(mc._config.LAYER_NAMES))
        kw["labels"] = draw(st.sampled_from(mc._config.LABEL_NAMES))
    else:
        kw["activation"] = draw(st.sampled_from(mc._config.ACTIVATION_NAMES))
        kw["output_activation"] = draw(st.booleans())
        kw["loss"] = draw(st.sampled_from(mc._config.LOSS_NAMES))
        labels = ("random_signs", "constant") if kw["loss"] == "logistic" else None
        kw["labels"] = draw(st.sampled_from(labels or mc._config.LABEL_NAMES))
    return mc.Config(**kw)


@settings(max_examples=50)  # ~50 ms an example
@given(config=configs(), seed=st.integers(0, 2**20))
def test_host_mode_matches_numpy_on_random_configurations(config, seed):
    got, ref = _run_both(config, seed)
    _assert_same_records(got, ref)


class _Recorder:
    """A NormalSource that logs every call the samplers make."""

    def __init__(self, rng):
        self.rng = rng
        self.calls = []

    def standard_normal(self, size):
        self.calls.append(("normal", _shape(size)))
        return self.rng.standard_normal(size)

    def random(self, size=None):
        self.calls.append(("uniform", _shape(size)))
        return self.rng.random(size)


def _shape(size):
    """The shape a call draws: ``None`` is one number, an int a vector."""
    if size is None:
        return (1,)
    return (int(size),) if np.ndim(size) == 0 else tuple(int(s) for s in size)


@pytest.mark.parametrize("name", list(CASES))
def test_draw_plan_is_the_samplers_sequence_of_calls(name):
    config = _config(**CASES[name])
    rec = _Recorder(mc.samplers.PhiloxStream((5, 6), 0))
    if not config.fixed_data:
        draw_data(config, rec)
    draw_weights(config, rec)
    plan = _cuda.draw_plan(config)
    assert [(r.kind, r.shape) for r in plan.requests] == rec.calls
    # Each request starts where the stream stands after the previous ones.
    stream = mc.samplers.PhiloxStream((5, 6), 0)
    for req, block in zip(plan.requests, plan.blocks, strict=True):
        assert stream.block == block
        (stream.standard_normal if req.kind == "normal" else stream.random)(req.count)
    assert stream.block == plan.n_blocks


def test_host_draws_hold_the_samplers_numbers_at_the_plan_offsets():
    config = _config(weights="ball", r=0.3, data="ball", labels="network_teacher")
    plan = _cuda.draw_plan(config)
    key = (123, 456)
    trials = [7, 2**40]
    buf = _cuda.host_draws(plan, key, np.array(trials))
    for row, t in zip(buf, trials, strict=True):
        stream = mc.samplers.PhiloxStream(key, t)
        X, _ = draw_data(config, stream)
        draw_weights(config, stream)
        assert stream.block == plan.n_blocks
        # sphere.unit_ball's formula, applied to the buffer's "X" and "radius"
        i, j = plan.index("X"), plan.index("radius")
        z = row[plan.offsets[i] : plan.offsets[i] + X.size].reshape(X.shape)
        u = row[plan.offsets[j] : plan.offsets[j] + config.n]
        radius = u ** (1.0 / config.d)
        expected = z / np.linalg.norm(z, axis=1, keepdims=True) * radius[:, None]
        np.testing.assert_array_equal(X, expected)


def test_batching_does_not_change_the_records():
    config = _config(weights="orthogonal", batch_sizes=(3,), trials=7)
    key = mc.samplers.stream_key(1, config.config_hash)
    trials = np.arange(7)
    whole = _cuda.run_chunk(config, key, trials, rng="host", device="cpu")
    one_by_one = _cuda.run_chunk(
        config, key, trials, rng="host", device="cpu", max_bytes=1
    )
    _assert_same_records(one_by_one, whole)


def test_bad_arguments_raise_before_any_work():
    config = _config()
    key = mc.samplers.stream_key(0, config.config_hash)
    with pytest.raises(ValueError, match=r"rng must be one of .*, got 'gpu'"):
        CudaBackend(rng="gpu")
    with pytest.raises(ValueError, match="device must be None or a torch device"):
        CudaBackend(rng="host", device="not-a-device")
    with pytest.raises(ValueError, match="max_bytes must be an integer >= 1, got 0"):
        _cuda.run_chunk(config, key, [0], rng="host", max_bytes=0)
    with pytest.raises(ValueError, match="at least 2 mini-batches, got B = 6"):
        _cuda.run_chunk(_config(batch_sizes=(6,)), key, [0], rng="host")
    with pytest.raises(ValueError, match="fixed must be the shared"):
        _cuda.run_chunk(_config(fixed_data=True), key, [0], rng="host")


@pytest.mark.skipif(cuda.is_available(), reason="numba sees a CUDA device here")
def test_without_a_device_cuda_is_not_listed_and_refuses_device_draws(tmp_path):
    assert "cuda" in mc.backends.BACKENDS
    assert "cuda" not in mc.backends.available_backends()
    with pytest.raises(ValueError, match="NUMBA_ENABLE_CUDASIM=1"):
        mc.backends.get_backend("cuda")
    spec = mc.parse_spec("[configs.a]\ntrials = 2\nn = 4\nd = 3\nwidth = 3", name="a")
    with pytest.raises(ValueError, match="rng='device' needs a CUDA device"):
        mc.run_sweep(spec, tmp_path, backend="cuda")
    assert not (tmp_path / "results.sqlite").exists()


@pytest.mark.skipif(
    numba.config.ENABLE_CUDASIM or REAL_GPU,
    reason="the simulator has no types; a real GPU compiles and runs the kernel",
)
def test_draw_kernel_types_as_unsigned_64_bit_on_the_cuda_target(monkeypatch):
    # The simulator runs the kernel as Python with numpy scalars, so it cannot
    # catch numba's typing rules (uint64 mixed with int64 becomes float64).
    # Type and lower the kernel for the real CUDA target (LLVM IR, no driver
    # or NVVM needed), with a compute capability in place of a device.
    from types import SimpleNamespace

    from numba import types
    from numba.cuda import compiler, dispatcher

    monkeypatch.setattr(
        dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=cc)
    )
    cc = (5, 0)
    u64 = types.Array(types.uint64, 1, "C")
    i64 = types.Array(types.int64, 1, "C")
    out = types.Array(types.float64, 2, "C")
    cres = compiler.compile_cuda(
        _cuda._draw_kernel.py_func,
        types.void,
        (u64, u64, u64) + (i64,) * 5 + (out,),
        cc=cc,
    )
    kernel_types = cres.type_annotation.typemap
    for var in ("x0", "x1", "x2", "x3", "bb"):
        assert kernel_types[var] == types.uint64, var
    for var in ("u0", "u1", "v0", "v1"):
        assert kernel_types[var] == types.float64, var
    (philox,) = _cuda._philox.overloads.values()
    for var, ty in philox.type_annotation.typemap.items():
        if var[0] in "cknp" and not var.startswith("$"):
            assert ty == types.uint64, (var, ty)
    ir = cres.library.get_llvm_str()
    assert ir.count(" mul i64 ") == 20  # 10 rounds x 2 integer products


def _check_names():
    tree = ast.parse(CHECKS.read_text())
    funcs = [f for f in tree.body if isinstance(f, ast.FunctionDef)]
    return [f.name for f in funcs if f.name.startswith("test_")]


@pytest.fixture(scope="module", params=["simulator", "gpu"])
def kernel_checks(request, tmp_path_factory):
    """Run tests/_cuda_sim_checks.py once per mode; its results by check name."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if request.param == "simulator":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    elif not REAL_GPU:
        pytest.skip("no CUDA device here")
    else:
        env.pop("NUMBA_ENABLE_CUDASIM", None)
    report = tmp_path_factory.mktemp(request.param) / "junit.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(CHECKS),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout[-20000:] + proc.stderr[-5000:]
    results: dict[str, list[str]] = {}
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            outcome = "passed"
            for tag in ("failure", "error", "skipped"):
                if case.find(tag) is not None:
                    outcome = tag
            results.setdefault(case.get("name").split("[")[0], []).append(outcome)
    return results, output


@pytest.mark.parametrize("check", _check_names())
def test_cuda_kernel_checks(kernel_checks, check):
    results, output = kernel_checks
    outcomes = results.get(check)
    assert outcomes, f"{check} did not run:\n{output}"
    assert "failure" not in outcomes and "error" not in outcomes, output
    if check != "test_draws_reach_torch_without_a_copy":  # the one hardware-only check
        assert set(outcomes) == {"passed"}, outcomes
