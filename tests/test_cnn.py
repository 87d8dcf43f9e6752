"""The paper's CNN experiments: networks, data, one run, the plan, the experiment.

Every network test compares the module with an independent functional
forward pass or with the architecture table of the module docstring; every
statistical tolerance is derived from its sample size. The experiment runs on
the tiny ``QUICK_PLAN`` (seconds), on the bundled digits and on a synthetic
CIFAR-10 directory written here in the standard python format; an interrupted
run is resumed in a real subprocess. The full small experiment is behind
``-m slow``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from figures._real_data import plot_real_data_cnn
from montecarlo import _cnn
from montecarlo import _cnn_experiment as ce
from montecarlo._config import SpecError, load_spec, parse_spec
from montecarlo._runs import RunStore, SerialRunner, Task, run_tasks

ROOT = pathlib.Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def write_cifar10(root: pathlib.Path, per_batch: int = 24, seed: int = 0) -> None:
    """A synthetic CIFAR-10 directory in the standard python format.

    Five training files and a test file of ``per_batch`` random images each
    (pickled dicts with ``b"data"`` uint8 (N, 3072) and ``b"labels"``), and
    ``batches.meta``; protocol 2, as the original files.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)],
        }
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)]}
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))


def manual_forward(net: _cnn.CNN, x: torch.Tensor, variant: str) -> torch.Tensor:
    """The module docstring's equations with torch.nn.functional (train-mode BN)."""
    batch_norm, skip = "bn" in variant, "skip" in variant

    def norm(m: nn.Module, h: torch.Tensor) -> torch.Tensor:
        if not batch_norm:
            return h
        return F.batch_norm(h, None, None, m.weight, m.bias, training=True)

    h = F.conv2d(x, net.stem.weight, padding=1)
    for block in net.blocks:
        u = F.relu(norm(block.norm1, h))
        v = F.conv2d(u, block.conv1.weight, stride=block.conv1.stride, padding=1)
        v = F.conv2d(F.relu(norm(block.norm2, v)), block.conv2.weight, padding=1)
        if skip:
            short = (
                h
                if block.project is None
                else F.conv2d(u, block.project.weight, stride=block.project.stride)
            )
            v = v + short
        h = v
    h = F.relu(norm(net.norm, h))
    return F.linear(h.mean(dim=(2, 3)), net.head.weight, net.head.bias)


def tiny_spec(data: _cnn.ImageData, **kw) -> _cnn.RunSpec:
    base = {
        "dataset": "digits",
        "data_fingerprint": data.fingerprint,
        "test_fraction": 0.25,
        "variant": "bn+skip",
        "depth": 10,
        "width_factor": 1,
        "base_channels": 2,
        "seed": 1,
        "replicate": 0,
        "lr": 0.1,
        "epochs": 2,
        "lr_drop_epochs": (),
        "batch_size": 64,
        "pairs": 3,
        "augment": False,
        "device": "cpu",
    }
    return _cnn.RunSpec(**(base | kw))


def comparable(result: dict) -> dict:
    """A result without what depends on the machine or the clock."""
    out = copy.deepcopy(result)
    del out["timing"]
    del out["registration"]["registered_at"]
    return out


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Runs compute on one torch thread, as in the experiment's workers (more
    threads on tiny convolutions only contend, badly so on a loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> _cnn.ImageData:
    return _cnn.load_digits_images()


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The QUICK_PLAN experiment, serially in this process."""
    out = tmp_path_factory.mktemp("cnn_quick")
    lines: list[str] = []
    torch.set_num_threads(2)
    result = ce.run_real_data_cnn(
        out, ce.QUICK_PLAN, seed=0, executor="serial", progress=False, log=lines.append
    )
    assert torch.get_num_threads() == 2  # restored after the runs' one thread
    torch.set_num_threads(1)
    return out, result, lines


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [10, 16, 22, 100])
def test_check_depth_accepts_6n_plus_4(depth):
    assert _cnn.check_depth(depth) == (depth - 4) // 6


@pytest.mark.parametrize("depth", [4, 9, 12, 15, True, 16.0, "16"])
def test_check_depth_rejects(depth):
    with pytest.raises(ValueError, match=r"depth must be an integer 6 N \+ 4"):
        _cnn.check_depth(depth)


@pytest.mark.parametrize("variant", _cnn.VARIANTS)
@pytest.mark.parametrize("depth,k", [(10, 1), (16, 2)])
def test_forward_matches_the_equations(variant, depth, k):
    net = _cnn.build_cnn(
        depth,
        k,
        variant,
        in_channels=3,
        num_classes=10,
        base_channels=4,
        generator=torch.Generator().manual_seed(depth + k),
    )
    x = torch.randn(6, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    # The same float operations in the same order: equal bit for bit.
    assert torch.equal(net(x), manual_forward(net, x, variant))


@pytest.mark.parametrize("variant", _cnn.VARIANTS)
def test_architecture_table(variant):
    """Widths c k 2^(g-1), strides 1, 2, 2, N blocks per group, projections only
    where a skip block changes channels or size, no convolution bias."""
    c, k, depth = 4, 3, 16
    n_blocks = (depth - 4) // 6
    net = _cnn.build_cnn(
        depth, k, variant, in_channels=1, num_classes=10, base_channels=c
    )
    expected, c_in = [], c
    for g, stride in enumerate((1, 2, 2)):
        for i in range(n_blocks):
            expected.append((c_in, c * k * 2**g, stride if i == 0 else 1))
            c_in = c * k * 2**g
    got = [
        (b.conv1.in_channels, b.conv1.out_channels, b.conv1.stride[0])
        for b in net.blocks
    ]
    assert got == expected
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.bias is None for m in convs)
    skip, bn = "skip" in variant, "bn" in variant
    projections = [b.project is not None for b in net.blocks]
    assert projections == [skip and (i_c != o_c or s != 1) for i_c, o_c, s in expected]
    assert len(convs) == 1 + 6 * n_blocks + sum(projections)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == (2 * 3 * n_blocks + 1 if bn else 0)
    assert net.head.in_features == 4 * c * k and net.head.bias is not None
    out = net(torch.zeros(2, 1, 8, 8))
    assert out.shape == (2, 10)


def test_he_initialization():
    """Every convolution and the read-out are N(0, 2 / fan_in); biases 0, BN (1, 0).

    The group-3 convolutions of CNN-10-4 with c = 16 hold 256 x 256 x 9 =
    589,824 weights: the sample variance's relative standard error is
    sqrt(2 / n) = 0.0018 and the mean's standard error sqrt(var / n); six
    standard errors (false-failure rate ~2e-9 each) give the tolerances.
    """
    net = _cnn.build_cnn(
        10,
        4,
        "bn+skip",
        in_channels=3,
        num_classes=10,
        base_channels=16,
        generator=torch.Generator().manual_seed(0),
    )
    w = net.blocks[-1].conv2.weight.detach().double()
    fan_in = w.shape[1] * 9
    n = w.numel()
    var = 2.0 / fan_in
    assert abs(w.var().item() / var - 1) < 6 * math.sqrt(2 / n)
    assert abs(w.mean().item()) < 6 * math.sqrt(var / n)
    stem = net.stem.weight.detach().double()  # fan_in 27, 432 weights: shape only
    assert stem.shape == (16, 3, 3, 3)
    head = net.head.weight.detach().double()
    assert abs(head.var().item() / (2.0 / head.shape[1]) - 1) < 6 * math.sqrt(
        2 / head.numel()
    )
    assert torch.all(net.head.bias == 0)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_init_is_a_function_of_the_generator_and_leaves_global_rng():
    state = torch.random.get_rng_state()

    def params(seed):
        net = _cnn.build_cnn(
            10,
            1,
            "plain",
            in_channels=1,
            num_classes=10,
            base_channels=2,
            generator=torch.Generator().manual_seed(seed),
        )
        return [p.detach().clone() for p in net.parameters()]

    a, b, c = params(5), params(5), params(6)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    assert torch.equal(state, torch.random.get_rng_state())


def test_build_cnn_validates():
    with pytest.raises(ValueError, match="width_factor must be an integer >= 1"):
        _cnn.build_cnn(10, 0, "plain", in_channels=1, num_classes=10)
    with pytest.raises(ValueError, match="variant must be one of"):
        _cnn.build_cnn(10, 1, "resnet", in_channels=1, num_classes=10)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        _cnn.build_cnn(10, 1, "plain", in_channels=1, num_classes=1)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def test_digits_split_and_standardization(digits):
    """Train and test partition the 1797 digits; the training pixels are
    standardized. The float32 rounding of values below 6 in magnitude errs by
    less than 6 * 2^-24 < 1e-6 each, so the mean and standard deviation of the
    stored pixels are within 1e-5 of 0 and 1."""
    assert digits.x_train.shape == (1348, 1, 8, 8)
    assert digits.x_test.shape == (449, 1, 8, 8)
    assert digits.x_train.abs().max() < 6
    x = digits.x_train.double()
    assert abs(x.mean().item()) < 1e-5 and abs(x.std(unbiased=False).item() - 1) < 1e-5
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    assert (
        digits.y_train.bincount(minlength=10) + digits.y_test.bincount(minlength=10)
    ).tolist() == np.bincount(y, minlength=10).tolist()
    assert _cnn.load_digits_images().fingerprint == digits.fingerprint
    assert _cnn.load_digits_images(0.2).fingerprint != digits.fingerprint
    with pytest.raises(ValueError, match="test_fraction must be in"):
        _cnn.load_digits_images(0.0)


def test_cifar10_loader_reads_the_standard_format(tmp_path):
    write_cifar10(tmp_path, per_batch=5)
    data = _cnn.load_cifar10(tmp_path)
    assert data.x_train.shape == (25, 3, 32, 32) and data.x_test.shape == (5, 3, 32, 32)
    raw = [
        pickle.loads((tmp_path / f"data_batch_{i}").read_bytes()) for i in range(1, 6)
    ]
    u8 = np.concatenate([b[b"data"] for b in raw]).astype(np.float64)
    labels = sum((b[b"labels"] for b in raw), [])
    assert data.y_train.tolist() == labels
    # Row-major channel-major layout: value 1024 c + 32 i + j is pixel (c, i, j).
    img = u8.reshape(-1, 3, 32, 32)
    mean = img.mean(axis=(0, 2, 3), keepdims=True)
    std = img.std(axis=(0, 2, 3), keepdims=True)
    expected = torch.tensor((img - mean) / std, dtype=torch.float32)
    assert torch.equal(data.x_train, expected)
    assert u8[3, 1024 * 2 + 32 * 5 + 7] == img[3, 2, 5, 7]


def test_cifar10_loader_accepts_python2_module_names(tmp_path):
    """The original files name numpy 1's ``numpy.core.multiarray``."""
    write_cifar10(tmp_path, per_batch=3)
    for name in ["test_batch", *(f"data_batch_{i}" for i in range(1, 6))]:
        path = tmp_path / name
        blob = path.read_bytes()
        assert b"numpy._core.multiarray" in blob
        path.write_bytes(
            blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        )
    assert _cnn.load_cifar10(tmp_path).x_train.shape == (15, 3, 32, 32)


@pytest.mark.parametrize(
    "damage,message",
    [
        ("missing", "test_batch is missing"),
        ("dtype", "must be a uint8 array"),
        ("columns", "must have 3072 columns"),
        ("labels", r"must hold 3 integers in \[0, 9\]"),
        ("code", "refusing to load"),
        ("meta", "must list 10 names"),
    ],
)
def test_cifar10_loader_names_the_problem(tmp_path, damage, message):
    write_cifar10(tmp_path, per_batch=3)
    test = tmp_path / "test_batch"
    batch = pickle.loads(test.read_bytes())
    if damage == "missing":
        test.unlink()
    elif damage == "dtype":
        batch[b"data"] = batch[b"data"].astype(np.float32)
    elif damage == "columns":
        batch[b"data"] = batch[b"data"][:, :100]
    elif damage == "labels":
        batch[b"labels"] = [0, 1, 10]
    elif damage == "code":
        batch = os.getcwd  # any callable: unpickling would import it
    elif damage == "meta":
        (tmp_path / "batches.meta").write_bytes(
            pickle.dumps({b"label_names": [b"a"]}, protocol=2)
        )
    if damage not in ("missing", "meta"):
        test.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=message):
        _cnn.load_cifar10(tmp_path)
    with pytest.raises(ValueError, match="must be an existing directory"):
        _cnn.load_cifar10(tmp_path / "nowhere")


def test_load_data_needs_a_data_dir_for_cifar10():
    with pytest.raises(ValueError, match="needs data_dir"):
        _cnn.load_data("cifar10")
    with pytest.raises(ValueError, match="dataset must be one of"):
        _cnn.load_data("mnist")


def test_augment_batch_crops_and_flips():
    """Each output is one of the (2 pad + 1)^2 crops of the reflect-padded image,
    flipped or not; flips happen with probability 1/2: over n = 4000 images the
    count is within 6 standard deviations (6 sqrt(n / 4) = 190) of n / 2."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, 6, 5, generator=gen)
    pad = 2
    out = _cnn.augment_batch(x, torch.Generator().manual_seed(1), pad=pad)
    again = _cnn.augment_batch(x, torch.Generator().manual_seed(1), pad=pad)
    assert torch.equal(out, again) and out.shape == x.shape
    padded = F.pad(x, (pad,) * 4, mode="reflect")
    for i in range(x.shape[0]):
        crops = [
            padded[i, :, dy : dy + 6, dx : dx + 5]
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
        ]
        assert any(
            torch.equal(out[i], c) or torch.equal(out[i], c.flip(-1)) for c in crops
        )
    n = 4000
    plain = torch.arange(n * 4, dtype=torch.float32).reshape(n, 1, 1, 4)
    flipped = _cnn.augment_batch(plain, torch.Generator().manual_seed(2), pad=0)
    count = int((flipped[:, 0, 0, 0] > flipped[:, 0, 0, 1]).sum())
    assert abs(count - n / 2) < 6 * math.sqrt(n / 4)
    with pytest.raises(ValueError, match="pad must be an integer"):
        _cnn.augment_batch(x, gen, pad=5)


def test_resolve_device():
    assert _cnn.resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        _cnn.resolve_device("gpu0")
    if not torch.cuda.is_available():
        assert _cnn.resolve_device("auto") in ("cpu", "mps")
        with pytest.raises(ValueError, match="torch.cuda.is_available"):
            _cnn.resolve_device("cuda")


# ---------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------


def test_run_is_deterministic_complete_and_leaves_global_rng(digits):
    spec = tiny_spec(digits)
    state = torch.random.get_rng_state()
    a, b = _cnn.train_run(spec, digits), _cnn.train_run(spec, digits)
    assert torch.equal(state, torch.random.get_rng_state())
    assert a == b
    E, K = spec.epochs, spec.pairs
    assert len(a["train_loss"]) == E and a["epochs_completed"] == E
    assert len(a["min_cosine"]) == len(a["test_accuracy"]) == len(a["cosines"]) == E + 1
    assert all(len(c) == K for c in a["cosines"])
    assert a["min_cosine"] == [min(c) for c in a["cosines"]]
    assert all(-1 <= c <= 1 for cs in a["cosines"] for c in cs)
    n_test = digits.x_test.shape[0]
    assert all(
        round(acc * n_test) == pytest.approx(acc * n_test) for acc in a["test_accuracy"]
    )
    other = _cnn.train_run(tiny_spec(digits, replicate=1), digits)
    assert other["train_loss"] != a["train_loss"]


def test_measurement_does_not_change_training(digits):
    measured = _cnn.train_run(tiny_spec(digits), digits)
    silent = _cnn.train_run(tiny_spec(digits, pairs=0), digits)
    assert silent["train_loss"] == measured["train_loss"]
    assert "min_cosine" not in silent and "test_accuracy" not in silent


def test_step_size_drops_by_ten(digits):
    """A drop before epoch 0 is the tenth of the step size from the start; a drop
    before epoch 1 leaves epoch 0 alone."""
    kw = {"variant": "plain", "pairs": 0}
    base = _cnn.train_run(tiny_spec(digits, lr=0.1, **kw), digits)["train_loss"]
    tenth = _cnn.train_run(tiny_spec(digits, lr=0.1 / 10, **kw), digits)["train_loss"]
    early = _cnn.train_run(
        tiny_spec(digits, lr=0.1, lr_drop_epochs=(0,), **kw), digits
    )["train_loss"]
    late = _cnn.train_run(tiny_spec(digits, lr=0.1, lr_drop_epochs=(1,), **kw), digits)[
        "train_loss"
    ]
    assert early == tenth
    assert late[0] == base[0] and late[1] != base[1]


def test_diverged_run_stops(digits):
    res = _cnn.train_run(tiny_spec(digits, variant="plain", lr=1e6), digits)
    assert res["diverged"] and res["train_loss"][-1] is None
    assert res["epochs_completed"] == len(res["train_loss"])
    assert len(res["min_cosine"]) == res["epochs_completed"]  # init + finite epochs


def test_run_checks_its_data(digits):
    with pytest.raises(ValueError, match="fingerprint"):
        _cnn.train_run(tiny_spec(digits, data_fingerprint="0" * 16), digits)


def test_progress_lines(digits):
    lines: list[str] = []
    _cnn.train_run(tiny_spec(digits), digits, log=lines.append)
    assert len(lines) == 2
    assert lines[1].startswith("cnn-10-1-bn+skip seed 1 rep 0 lr 0.1: epoch 2/2 loss ")
    assert " min cos " in lines[1] and " test acc " in lines[1]


# ---------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------


def test_bundled_plan_prespecifies_the_papers_claims():
    plan = ce.default_plan()
    claims = {c.id: c for c in plan.claims}
    assert (claims["depth_slower"].metric, claims["depth_slower"].direction) == (
        "final_train_loss",
        "increasing",
    )
    assert claims["depth_more_confused"].direction == "decreasing"
    assert claims["width_faster"].direction == "decreasing"
    assert claims["width_less_confused"].direction == "increasing"
    bs = claims["bn_skip_less_confused"]
    assert (bs.treated, bs.control, bs.direction, bs.test) == (
        "bn+skip",
        "plain",
        "greater",
        "wilcoxon",
    )
    assert set(bs.depths) < set(plan.depths)  # the deep nets
    assert all(c.content()["prespecified"] for c in plan.claims)
    cifar = ce.parse_plan(load_spec("real_data_cnn_cifar10").options["real_data_cnn"])
    assert cifar.dataset == "cifar10" and cifar.pairs == 100
    assert cifar.batch_size == 128 and cifar.epochs == 200
    assert [c.id for c in cifar.claims] == [c.id for c in plan.claims]


def test_plan_module_names_match_the_models():
    """The plan is validated without importing torch: its copies of the names
    must be the models'."""
    assert ce._VARIANTS == _cnn.VARIANTS and ce._DATASETS == _cnn.DATASETS


def test_plan_problems_are_all_named():
    table = copy.deepcopy(ce.QUICK_PLAN)
    table["depths"] = [10, 12]
    table["colour"] = "red"
    del table["epochs"]
    table["claims"] = [
        {
            "id": "a",
            "statement": "s",
            "axis": "depth",
            "metric": "final_min_cosine",
            "direction": "greater",
        },
        {
            "id": "a",
            "statement": "s",
            "axis": "variant",
            "metric": "final_train_loss",
            "direction": "less",
            "treated": "bn",
            "control": "plain",
            "depths": [28],
        },
        {
            "id": "c",
            "statement": "s",
            "axis": "width_factor",
            "metric": "loss",
            "direction": "decreasing",
            "test": "wilcoxon",
        },
    ]
    problems = "\n".join(ce.plan_problems(table))
    for expected in (
        "real_data_cnn.depths: depths must be 6 N + 4",
        "real_data_cnn.colour: unknown key",
        "real_data_cnn.epochs: required",
        "claims[0].direction: for axis 'depth' must be one of",
        "claims: ids must be unique",
        "claims[1].treated: must be one of the plan's variants",
        "claims[1].depths: must be a list of the plan's depths",
        "claims[2].metric: must be one of",
        "claims[2].test: axis 'width_factor' is tested by 'spearman'",
    ):
        assert expected in problems
    with pytest.raises(ValueError, match="problem"):
        ce.parse_plan(table)


def test_spec_table_is_validated_at_load():
    text = (ROOT / "montecarlo/specs/real_data_cnn.toml").read_text()
    assert parse_spec(text).options["real_data_cnn"]["dataset"] == "digits"
    with pytest.raises(SpecError, match="not in experiments"):
        parse_spec(text.replace('experiments = ["real_data_cnn"]', "experiments = []"))
    with pytest.raises(SpecError, match=r"real_data_cnn.batch_size: must be <= 674"):
        parse_spec(text.replace("batch_size = 32 ", "batch_size = 700 "))


# ---------------------------------------------------------------------------
# runs: store, resume, executors
# ---------------------------------------------------------------------------


def _square(payload):
    return {"value": payload * payload}


def test_run_store_atomic_roundtrip_and_checks(tmp_path):
    store = RunStore(tmp_path / "runs")
    spec = {"a": 1, "b": [1, 2]}
    path = store.save("abc", spec, {"x": [1.5, None]}, 0.25)
    assert path.name == "abc.json" and not list(store.root.glob("*.tmp"))
    assert store.load("abc", spec)["result"] == {"x": [1.5, None]}
    assert store.load("missing", spec) is None
    with pytest.raises(ValueError, match="another specification"):
        store.load("abc", {"a": 2})
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        store.load("abc", spec)
    assert store.clear() == 1 and not list(store.root.iterdir())


def test_run_tasks_resumes_without_recomputing(tmp_path):
    store = RunStore(tmp_path)
    tasks = [Task(f"id{i}", {"i": i}, _square, i, f"task {i}") for i in range(4)]
    first = run_tasks(tasks[:2], store, SerialRunner(), log=None)
    lines: list[str] = []
    all_ = run_tasks(tasks, store, SerialRunner(), log=lines.append)
    assert lines[0].startswith("2 of 4 runs loaded")
    assert sum("stored" in line for line in lines) == 2
    assert [r["result"]["value"] for r in all_] == [0, 1, 4, 9]
    assert all_[:2] == first
    with pytest.raises(ValueError, match="distinct run_id"):
        run_tasks([tasks[0], tasks[0]], store, SerialRunner(), log=None)


def test_dask_runner_gives_the_serial_results(tmp_path, digits):
    """Three CNN runs as Dask tasks (an in-process cluster) equal serial runs."""
    from distributed import Client

    from montecarlo._runs import DaskRunner

    specs = [tiny_spec(digits, replicate=r, epochs=1) for r in range(3)]
    tasks = [
        Task(s.run_id, s.content(), _cnn.run_task, (s, None, False), s.model)
        for s in specs
    ]
    serial = run_tasks(tasks, RunStore(tmp_path / "serial"), SerialRunner(), log=None)
    threads = torch.get_num_threads()
    try:
        with Client(
            processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
        ) as client:
            dask = run_tasks(
                tasks, RunStore(tmp_path / "dask"), DaskRunner(client), log=None
            )
    finally:
        torch.set_num_threads(threads)
    assert [r["result"] for r in dask] == [r["result"] for r in serial]


# ---------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------


def test_quick_experiment_result(quick):
    out, result, lines = quick
    assert json.loads((out / "real_data_cnn.json").read_text()) == result
    plan = ce.parse_plan(ce.QUICK_PLAN)
    R = plan.replicates
    assert len(result["runs"]) == len(plan.models()) * R == len(result["metrics"])
    assert len(list((out / "real_data_cnn" / "runs").glob("*.json"))) == len(
        plan.models()
    ) * (R + len(plan.learning_rates))
    assert [c["id"] for c in result["prespecified_claims"]] == [
        c["id"] for c in ce.QUICK_PLAN["claims"]
    ]
    assert all(c["prespecified"] for c in result["prespecified_claims"])
    assert result["registration"]["claims"] == result["prespecified_claims"]
    for row in result["models"]:  # the chosen step size has the lowest final loss
        losses = [math.inf if x is None else x for x in row["tuning_final_train_loss"]]
        assert row["lr"] == row["tuning_lr"][int(np.argmin(losses))]
        runs = [r for r in result["runs"] if r["model"] == row["model"]]
        assert {r["lr"] for r in runs} == {row["lr"]}
    assert any(line.startswith("[real_data_cnn] cnn-10-1-plain") for line in lines)


def test_claim_data_are_the_runs_final_values(quick):
    _, result, _ = quick
    runs = {r["run_id"]: r for r in result["runs"]}
    data = result["claim_data"]
    depth = data["depth_slower"]
    assert depth["x"] == [10, 10, 16, 16]
    for x, y, rid in zip(depth["x"], depth["y"], depth["run_id"], strict=True):
        r = runs[rid]
        assert (r["depth"], r["variant"], r["width_factor"]) == (x, "plain", 1)
        assert y == r["train_loss"][-1]
    width = data["width_less_confused"]
    assert width["x"] == [1, 1, 2, 2]
    for x, y, rid in zip(width["x"], width["y"], width["run_id"], strict=True):
        assert (runs[rid]["depth"], runs[rid]["width_factor"]) == (10, x)
        assert y == min(runs[rid]["cosines"][-1])
    paired = data["bn_skip_less_confused"]
    assert paired["depth"] == [16, 16] and paired["replicate"] == [0, 1]
    for t, c, tid, cid, rep in zip(
        paired["treated"],
        paired["control"],
        paired["treated_run_id"],
        paired["control_run_id"],
        paired["replicate"],
        strict=True,
    ):
        assert runs[tid]["variant"] == "bn+skip" and runs[cid]["variant"] == "plain"
        assert runs[tid]["replicate"] == runs[cid]["replicate"] == rep
        assert (t, c) == (runs[tid]["min_cosine"][-1], runs[cid]["min_cosine"][-1])
    diverged = {**runs[depth["run_id"][0]], "diverged": True}
    assert ce._final(diverged, "final_train_loss") is None


def test_rerun_resumes_and_refuses_changed_claims(quick, tmp_path):
    out, result, _ = quick
    lines: list[str] = []
    again = ce.run_real_data_cnn(
        out, ce.QUICK_PLAN, seed=0, executor="serial", progress=False, log=lines.append
    )
    assert comparable(again) == comparable(result)
    assert any("10 of 10 runs loaded" in line for line in lines)
    assert not any("stored:" in line for line in lines)
    changed = copy.deepcopy(ce.QUICK_PLAN)
    changed["claims"][0]["direction"] = "decreasing"
    with pytest.raises(ValueError, match="pre-specified claims cannot change"):
        ce.run_real_data_cnn(out, changed, seed=0, executor="serial", log=None)
    with pytest.raises(ValueError, match="pre-specified claims cannot change"):
        ce.run_real_data_cnn(out, ce.QUICK_PLAN, seed=1, executor="serial", log=None)


def test_experiment_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        ce.run_real_data_cnn(tmp_path, ce.QUICK_PLAN, seed=-1)
    with pytest.raises(ValueError, match="executor must be one of"):
        ce.run_real_data_cnn(tmp_path, ce.QUICK_PLAN, executor="threads")
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        ce.run_real_data_cnn(tmp_path, ce.QUICK_PLAN, workers=0)
    with pytest.raises(ValueError, match="scheduler is for executor 'dask'"):
        ce.run_real_data_cnn(tmp_path, ce.QUICK_PLAN, scheduler="tcp://x:1")
    cifar = ce.QUICK_PLAN | {"dataset": "cifar10"}
    with pytest.raises(ValueError, match="--data-dir"):
        ce.run_real_data_cnn(tmp_path, cifar, executor="serial", log=None)


def test_cifar10_experiment_on_a_synthetic_directory(tmp_path):
    """The CIFAR-10 path end to end: 120 training images, augmentation on."""
    write_cifar10(tmp_path / "cifar", per_batch=24)
    plan = ce.QUICK_PLAN | {
        "dataset": "cifar10",
        "augment": True,
        "batch_size": 32,
        "depths": [10],
        "width_factors": [1],
        "variants": ["plain", "bn+skip"],
        "replicates": 1,
        "epochs": 1,
        "learning_rates": [0.01],
        "claims": [ce.QUICK_PLAN["claims"][2] | {"depths": [10]}],
    }
    result = ce.run_real_data_cnn(
        tmp_path / "out",
        plan,
        data_dir=tmp_path / "cifar",
        executor="serial",
        progress=False,
        log=None,
    )
    assert result["data"]["name"] == "cifar10"
    assert (result["data"]["n_train"], result["data"]["n_test"]) == (120, 24)
    assert result["data"]["shape"] == [3, 32, 32]
    assert len(result["runs"]) == 2
    spec = json.loads(
        (
            tmp_path / "out/real_data_cnn/runs" / f"{result['runs'][0]['run_id']}.json"
        ).read_text()
    )["spec"]
    assert spec["augment"] and spec["dataset"] == "cifar10"
    assert len(result["claim_data"]["bn_skip_less_confused"]["treated"]) == 1


def test_figures_from_the_stored_json(quick, tmp_path):
    out, _, _ = quick
    loaded = json.loads((out / "real_data_cnn.json").read_text())
    paths = plot_real_data_cnn(loaded, tmp_path)
    names = {p.name for p in paths}
    for stem in (
        "real_data_cnn_depth",
        "real_data_cnn_width",
        "real_data_cnn_variants",
    ):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    assert all(p.stat().st_size > 1000 for p in paths)
    with pytest.raises(ValueError, match="run_real_data_cnn"):
        plot_real_data_cnn({"runs": []}, tmp_path)


# ---------------------------------------------------------------------------
# interrupts: a real subprocess
# ---------------------------------------------------------------------------


def _cli(out: pathlib.Path, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "montecarlo._cnn_experiment",
        str(out),
        "--quick",
        "--workers",
        str(workers),
        "--no-progress",
    ]


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _interrupt_after_first_runs(out: pathlib.Path, sig: int, group: bool) -> str:
    """Start the quick experiment, send ``sig`` once two runs are stored."""
    runs = out / "real_data_cnn" / "runs"
    proc = subprocess.Popen(
        _cli(out, workers=2),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 300
        while not runs.is_dir() or len(list(runs.glob("*.json"))) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no run stored within 300 s"
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        if group:
            os.killpg(proc.pid, sig)  # Ctrl-C: the whole foreground group
        else:
            proc.send_signal(sig)  # kill PID: the driver only
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    for _ in range(100):  # workers are joined before the driver exits
        if _group_gone(proc.pid):
            break
        time.sleep(0.05)
    assert _group_gone(proc.pid), "a worker outlived the interrupted driver"
    assert "leaked semaphore" not in err and "resource_tracker" not in err, err
    assert not list(runs.glob("*.tmp"))
    return err


def _resume(out: pathlib.Path) -> dict:
    """Finish the run in a new process (serially: no pool start-up to wait for)."""
    done = subprocess.run(
        _cli(out, workers=1), capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "leaked semaphore" not in done.stderr, done.stderr
    loaded = [line for line in done.stdout.splitlines() if "runs loaded" in line]
    assert loaded and not loaded[0].split("] ")[1].startswith("0 of"), done.stdout
    return json.loads((out / "real_data_cnn.json").read_text())


def test_ctrl_c_leaves_nothing_behind_and_resume_equals_uninterrupted(quick, tmp_path):
    _, uninterrupted, _ = quick
    err = _interrupt_after_first_runs(tmp_path, signal.SIGINT, group=True)
    assert "KeyboardInterrupt" in err
    resumed = _resume(tmp_path)
    assert comparable(resumed) == comparable(uninterrupted)


@pytest.mark.slow
def test_sigterm_to_the_driver_leaves_nothing_behind(quick, tmp_path):
    _, uninterrupted, _ = quick
    err = _interrupt_after_first_runs(tmp_path, signal.SIGTERM, group=False)
    assert "terminated by signal" in err
    assert comparable(_resume(tmp_path)) == comparable(uninterrupted)


@pytest.mark.slow
def test_quick_experiment_on_a_local_dask_cluster(quick, tmp_path):
    """Every run a task of a two-process Dask cluster: the serial result."""
    _, serial, _ = quick
    result = ce.run_real_data_cnn(
        tmp_path, ce.QUICK_PLAN, seed=0, executor="dask", workers=2, progress=False
    )
    assert result["timing"]["executor"].startswith("Dask, 2 workers")
    assert comparable(result) == comparable(serial)


# ---------------------------------------------------------------------------
# the full small experiment (minutes)
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_full_small_experiment_on_two_processes(tmp_path):
    """The bundled digits plan end to end; the quick twin above checks the same
    code paths in seconds."""
    result = ce.run_real_data_cnn(tmp_path, seed=0, workers=2, progress=False)
    plan = ce.default_plan()
    assert len(result["runs"]) == len(plan.models()) * plan.replicates
    assert set(result["claim_data"]) == {c.id for c in plan.claims}
    assert len(plot_real_data_cnn(result, tmp_path / "figures")) == 6
