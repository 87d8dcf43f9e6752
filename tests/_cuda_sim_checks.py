"""CUDA checks that need numba's CUDA target: run by tests/test_cuda.py in a
subprocess with ``NUMBA_ENABLE_CUDASIM=1`` (numba reads it at import), or on a
real GPU. Not collected by a plain ``pytest`` run (no ``test_`` prefix).

Sizes are tiny: the simulator runs every CUDA thread in Python.
"""

import numba
import numpy as np
import pytest
import torch
from numba import cuda
from scipy import stats

import montecarlo as mc
from montecarlo import _cuda
from montecarlo._backends import CudaBackend, NumpyBackend
from montecarlo._config import parse_spec
from montecarlo._trial import fixed_data

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)
SMALL = dict(n=6, d=5, depth=2, width=7, trials=5)

# One case per random path: every ensemble, data law and labeling function,
# fixed data and mini-batches.
CASES = {
    "gaussian-sphere-tanh": dict(weights="gaussian", kappa=0.7),
    "orthogonal-ball-linear": dict(
        weights="orthogonal", activation="sigmoid", data="ball", labels="linear_teacher"
    ),
    "small-network-teacher-mb": dict(
        weights="small", scale=0.5, labels="network_teacher", batch_sizes=(2, 3)
    ),
    "ball-random-signs-logistic": dict(
        weights="ball", r=0.4, labels="random_signs", loss="logistic", activation="relu"
    ),
    "orthogonal-linear-constant": dict(
        weights="orthogonal_linear",
        activation="identity",
        output_activation=False,
        labels="constant",
        depth=3,
    ),
    "fixed-data": dict(weights="gaussian", fixed_data=True, depth=1),
    "uniform-spectrum": dict(weights="uniform_spectrum", scale=0.8, width=3),
    "ball-uniform-spectrum-centre": dict(
        weights="ball", centre="uniform_spectrum", r=0.4, labels="random_signs"
    ),
    "orthogonal-linear-signed-permutation": dict(
        weights="orthogonal_linear",
        layers="signed_permutation",
        activation="identity",
        output_activation=False,
        depth=3,
    ),
    "orthogonal-linear-identity-fixed-data": dict(
        weights="orthogonal_linear",
        layers="identity",
        activation="identity",
        output_activation=False,
        fixed_data=True,
        labels="constant",
    ),
}


def _config(**kw):
    return mc.Config(**{**SMALL, **kw})


def test_the_simulator_or_a_gpu_is_on():
    assert cuda.is_available()
    assert "cuda" in mc.backends.available_backends()


@pytest.mark.parametrize("name", list(CASES))
def test_device_draws_equal_the_host_stream(name):
    config = _config(**CASES[name])
    plan = _cuda.draw_plan(config)
    key = mc.samplers.stream_key(3, config.config_hash)
    # Trial indices whose high word is non-zero exercise both counter words.
    trials = np.array([0, 1, 2**32 + 5, 2**64 - 2], dtype=np.uint64)
    dev = _cuda.device_draws(plan, key, trials).copy_to_host()
    host = _cuda.host_draws(plan, key, trials)
    uniform = np.zeros(plan.total, dtype=bool)
    for req, start in zip(plan.requests, plan.offsets, strict=True):
        uniform[start : start + req.count] = req.kind == "uniform"
    # Uniforms are integer arithmetic and one exact float conversion: equal bits.
    np.testing.assert_array_equal(dev[:, uniform], host[:, uniform])
    # Normals: log1p, cos and sin of the device and of numpy are each within
    # 2 ulp (CUDA libdevice's documented maximum for double cos/sin, 1 for
    # log1p), so |z| <= 10 differs by at most ~5 ulp * 10 * 2.2e-16 ~ 1e-14.
    np.testing.assert_allclose(dev[:, ~uniform], host[:, ~uniform], rtol=0, atol=1e-13)
    assert np.all(np.isfinite(dev))


@pytest.mark.parametrize("name", list(CASES))
def test_device_mode_gives_the_numpy_trials(name):
    config = _config(**CASES[name])
    key = mc.samplers.stream_key(11, config.config_hash)
    fixed = fixed_data(config, key)
    trials = np.arange(config.trials)
    ref = NumpyBackend().run(config, key, trials, fixed)
    got = CudaBackend().run(config, key, trials, fixed)
    for part in (0, 1):
        assert np.array_equal(np.isnan(ref[part]), np.isnan(got[part]))
        # Float tolerance: the two differ only by the order of float operations
        # (LAPACK vs torch QR and matmul), ~1e-16 relative per operation.
        np.testing.assert_allclose(got[part], ref[part], rtol=1e-9, atol=1e-12)


def test_device_mode_has_the_numpy_distribution():
    # Two-sample KS test between the device-RNG backend and the numpy
    # backend on independent seeds: both samples are i.i.d. from the law of
    # min_inner, so the p-value is uniform and p < 1e-6 has probability 1e-6.
    config = _config(weights="gaussian", trials=200)
    trials = np.arange(config.trials)
    h = config.config_hash
    dev = CudaBackend().run(config, mc.samplers.stream_key(101, h), trials, None)
    ref = NumpyBackend().run(config, mc.samplers.stream_key(202, h), trials, None)
    x, y = dev[0][:, 1], ref[0][:, 1]
    assert not np.array_equal(x, y)  # independent seeds, not the same trials
    assert stats.ks_2samp(x, y).pvalue > 1e-6


def test_a_sweep_on_the_cuda_backend_stores_the_numpy_results(tmp_path):
    spec = parse_spec(
        """
seed = 4
[defaults]
trials = 4
n = 6
d = 4
width = 5
[configs.g]
weights = "gaussian"
depth = [1, 2]
batch_sizes = [3]
""",
        name="sim",
    )
    for backend in ("cuda", "numpy"):
        mc.run_sweep(spec, tmp_path / backend, backend=backend, chunk_size=3)
    cols = ["config_hash", "trial"]
    a = mc.load_results(tmp_path / "cuda").sort_values(cols).reset_index(drop=True)
    b = mc.load_results(tmp_path / "numpy").sort_values(cols).reset_index(drop=True)
    assert len(a) == len(b) == 8
    for col in mc.backends.TRIAL_COLUMNS:
        np.testing.assert_allclose(a[col], b[col], rtol=1e-9, atol=1e-12, err_msg=col)


@pytest.mark.skipif(
    SIMULATOR or not torch.cuda.is_available(),
    reason="needs a real GPU with a CUDA build of torch",
)
def test_draws_reach_torch_without_a_copy():
    config = _config()
    plan = _cuda.draw_plan(config)
    draws = _cuda.device_draws(plan, (1, 2), np.arange(3))
    tensor = _cuda._to_torch(draws, torch.device("cuda"))
    assert tensor.device.type == "cuda"
    assert tensor.data_ptr() == draws.device_ctypes_pointer.value
