"""The paper's CNN-beta-k networks, their data and one training run (Section 7).

Notation (used in every docstring and variable below):

- ``beta`` (``depth``): depth in the naming of wide residual networks (WRN,
  Zagoruyko & Komodakis 2016), ``beta = 6 N + 4`` with ``N >= 1`` blocks per
  group (the paper's depths 16, 22, ..., 100 are ``N = 2, 3, ..., 16``);
- ``k`` (``width_factor``): the paper's width factor, the number of filters
  relative to the original ResNet;
- ``c`` (``base_channels``): channels of the first convolution (the WRN's 16);
  group ``g = 1, 2, 3`` has ``c k 2^(g-1)`` channels;
- ``C_in x H x W``: input channels and size; ``n_train``, ``n_test`` samples;
- ``E`` epochs of SGD with mini-batches of ``B`` samples and step size
  ``alpha`` (``lr``); ``K`` pairs of mini-batches per measurement.

**CNN-beta-k** (Section 7: "WRNs that have no skip connections or batch
normalization, with a depth beta and width factor k"), built as the
pre-activation WRN with each of the two parts optional (the four *variants*
``plain``, ``bn``, ``skip``, ``bn+skip``; ``bn+skip`` is the WRN itself)::

    h = conv3x3(x)                                       C_in -> c
    for g = 1, 2, 3, N blocks (stride 1, 2, 2 in the first block of a group):
        u = ReLU(BN(h))                                  [BN: batch norm only]
        v = conv3x3_s(u);  v = conv3x3(ReLU(BN(v)))      -> c k 2^(g-1)
        h = v + S(h, u)                                  [skip connections]
        h = v                                            [without]
    logits = Linear(mean over H, W of ReLU(BN(h)))

with the shortcut ``S(h, u) = h`` when the block keeps channels and size, else
the WRN's projection ``conv1x1_s(u)``. The plain network is thus the chain
``conv, (ReLU, conv) x 6N, ReLU, average pool, Linear``: ``6N + 2`` weight
layers (the WRN's count ``6N + 4`` includes its two projections).

Biases and initialization, as in the WRN the paper builds on [reconstructed:
the paper's Appendix A.2, with the architecture details, is not in our text]:
convolutions carry no bias (the batch-norm shift plays that role); the
read-out ``Linear`` has a bias, set to 0; batch norm starts at scale 1 and
shift 0. Every convolution and the read-out weight are drawn from the MSRA
(He et al. 2015) normal law ``N(0, 2 / fan_in)``, ``fan_in = C_in x 3 x 3`` for
a 3x3 convolution.

**Data.** ``digits``: scikit-learn's bundled 8 x 8 digits (1797 images, one
channel, 10 classes; no download), split once into training and test samples
by a fixed permutation. ``cifar10``: the standard python version of CIFAR-10
read from a local directory (``data_batch_1`` to ``data_batch_5``,
``test_batch``, ``batches.meta``: pickled dicts with ``b"data"`` uint8
``(N, 3072)``, channel-major 32 x 32 images, and ``b"labels"``); nothing is
ever downloaded. Each channel is standardized with the mean and standard
deviation of the training images (the WRN preprocessing); for CIFAR-10 the
WRN's augmentation (horizontal flips, random 32 x 32 crops of the image padded
by 4 reflected pixels) is optional.

**One run** (:func:`train_run`, the Section 7 protocol): plain SGD (no
momentum, no weight decay, no dropout), ``E`` epochs of ``floor(n_train / B)``
mini-batches in a fresh random order each epoch, step size ``alpha`` divided by
10 at the given epochs (the paper: 80 and 160 of 200); cross-entropy loss. At
initialization and after every epoch: ``K`` pairs of disjoint mini-batches of
``B`` training samples (not augmented), the cosine of each pair's gradients by
:func:`theory.torch.minibatch_confusion` with batch norm in train mode (the gradients
SGD steps along), and the test accuracy (batch norm in eval mode). Recorded per
epoch: the mean mini-batch training loss, the ``K`` cosines and their minimum,
the test accuracy. Every random draw (initialization, data order, measurement
pairs, augmentation) comes from its own generator seeded from the run's
``(seed, replicate, model)``, never from torch's global one, so a run is a
pure function of its :class:`RunSpec` (on a given device and torch build).

**Devices.** Every tensor lives on the run's ``device`` (``"cpu"``, ``"cuda"``,
``"cuda:1"``, ``"mps"``); random numbers are drawn on the CPU and moved, so the
same seed gives the same draws everywhere. GPU kernels (cuDNN) may sum in
another order than the CPU, so results agree across devices only to rounding.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import hashlib
import io
import math
import pathlib
import pickle
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from montecarlo._runs import spec_hash
from theory._torch_confusion import minibatch_confusion

__all__ = [
    "CIFAR10_FILES",
    "CNN",
    "DATASETS",
    "PROTOCOL_VERSION",
    "VARIANTS",
    "ImageData",
    "RunSpec",
    "augment_batch",
    "build_cnn",
    "check_depth",
    "load_cifar10",
    "load_data",
    "load_digits_images",
    "resolve_device",
    "run_task",
    "train_run",
]

VARIANTS = ("plain", "bn", "skip", "bn+skip")
DATASETS = ("digits", "cifar10")
CIFAR10_FILES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
)
PROTOCOL_VERSION = 1
"""Part of every run's hash; raised whenever the training protocol changes, so
stored runs of an older protocol are never mixed with new ones."""

_EVAL_CHUNK = 1000


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------


def check_depth(depth: int) -> int:
    """``N = (beta - 4) / 6``, the blocks per group of a CNN of depth ``beta``.

    Args:
        depth: ``beta``.

    Returns:
        ``N``.

    Raises:
        ValueError: unless ``depth`` is an integer ``6 N + 4`` with ``N >= 1``.
    """
    if (
        isinstance(depth, bool)
        or not isinstance(depth, int)
        or depth < 10
        or (depth - 4) % 6
    ):
        raise ValueError(
            "depth must be an integer 6 N + 4 with N >= 1 (10, 16, 22, 28, ...), "
            f"got {depth!r}"
        )
    return (depth - 4) // 6


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class _Block(nn.Module):
    """``u = ReLU(BN(h))``, ``v = conv(ReLU(BN(conv_s(u))))``, ``v [+ S(h, u)]``."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, batch_norm: bool, skip: bool
    ) -> None:
        super().__init__()
        self.norm1 = _norm(c_in, batch_norm)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm2 = _norm(c_out, batch_norm)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.skip = skip
        self.project = (
            nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)
            if skip and (c_in != c_out or stride != 1)
            else None
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        u = torch.relu(self.norm1(h))
        v = self.conv2(torch.relu(self.norm2(self.conv1(u))))
        if not self.skip:
            return v
        return v + (h if self.project is None else self.project(u))


class CNN(nn.Module):
    """CNN-beta-k (module docstring), built without parameters' values.

    Use :func:`build_cnn` for an initialized network.

    Args:
        depth: ``beta = 6 N + 4``, ``N >= 1``.
        width_factor: ``k >= 1``.
        variant: one of ``VARIANTS``.
        in_channels: ``C_in >= 1``.
        num_classes: outputs (>= 2).
        base_channels: ``c >= 1``.
    """

    def __init__(
        self,
        depth: int,
        width_factor: int,
        variant: str,
        *,
        in_channels: int,
        num_classes: int,
        base_channels: int,
    ) -> None:
        super().__init__()
        blocks_per_group = check_depth(depth)
        for name, value, low in (
            ("width_factor", width_factor, 1),
            ("in_channels", in_channels, 1),
            ("num_classes", num_classes, 2),
            ("base_channels", base_channels, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        batch_norm = variant in ("bn", "bn+skip")
        skip = variant in ("skip", "bn+skip")
        self.stem = nn.Conv2d(in_channels, base_channels, 3, 1, 1, bias=False)
        blocks = []
        c = base_channels
        for g, stride in enumerate((1, 2, 2)):
            c_out = base_channels * width_factor * 2**g
            for i in range(blocks_per_group):
                blocks.append(
                    _Block(c, c_out, stride if i == 0 else 1, batch_norm, skip)
                )
                c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.norm = _norm(c, batch_norm)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm(self.blocks(self.stem(x))))
        return self.head(h.mean(dim=(2, 3)))


def build_cnn(
    depth: int,
    width_factor: int,
    variant: str,
    *,
    in_channels: int,
    num_classes: int,
    base_channels: int = 16,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> CNN:
    """CNN-beta-k with MSRA (He) initialization (module docstring).

    The weights are drawn on the CPU from ``generator`` (torch's global
    generator is never touched) and the network is then moved to ``device``.

    Args:
        depth: ``beta = 6 N + 4``, ``N >= 1``.
        width_factor: ``k >= 1``.
        variant: "plain", "bn", "skip" or "bn+skip".
        in_channels: ``C_in`` (1 for digits, 3 for CIFAR-10).
        num_classes: number of classes.
        base_channels: ``c``, channels of the first convolution. Default 16
            (the WRN's).
        generator: CPU generator of the weights; ``None`` means seed 0.
            Default None.
        device: where the network lives. Default "cpu".

    Returns:
        The network in train mode: convolution and read-out weights
        ``N(0, 2 / fan_in)``, read-out bias 0, batch norm scale 1 and shift 0.

    Raises:
        ValueError: on a bad architecture argument (named in the message).
    """
    with torch.device("meta"):
        net = CNN(
            depth,
            width_factor,
            variant,
            in_channels=in_channels,
            num_classes=num_classes,
            base_channels=base_channels,
        )
    net = net.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(0) if generator is None else generator
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(
                    m.weight, mode="fan_in", nonlinearity="relu", generator=gen
                )
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
    return net.to(device)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
    """A standardized image classification data set on one device.

    Attributes:
        name: "digits" or "cifar10".
        x_train: float32 ``(n_train, C_in, H, W)``, each channel standardized
            with the training images' mean and standard deviation.
        y_train: int64 ``(n_train,)`` labels in ``[0, classes)``.
        x_test: float32 ``(n_test, C_in, H, W)``, standardized likewise.
        y_test: int64 ``(n_test,)``.
        classes: number of classes.
        fingerprint: SHA-256 (16 hex digits) of the raw images, labels and
            split: part of every run's hash, so runs on other data never mix.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int
    fingerprint: str

    def to(self, device: str | torch.device) -> ImageData:
        """The same data on ``device``."""
        return dataclasses.replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_test=self.x_test.to(device),
            y_test=self.y_test.to(device),
        )

    def describe(self) -> dict[str, Any]:
        """Plain facts about the data for result files."""
        return {
            "name": self.name,
            "n_train": int(self.x_train.shape[0]),
            "n_test": int(self.x_test.shape[0]),
            "shape": list(self.x_train.shape[1:]),
            "classes": self.classes,
            "fingerprint": self.fingerprint,
        }


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _standardized(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: int,
    fingerprint: str,
) -> ImageData:
    """Per-channel standardization with the training images' statistics."""
    x_tr = train[0].astype(np.float64)
    mean = x_tr.mean(axis=(0, 2, 3), keepdims=True)
    std = x_tr.std(axis=(0, 2, 3), keepdims=True)
    std = np.where(std > 0, std, 1.0)

    def scale(x: np.ndarray) -> torch.Tensor:
        return torch.tensor((x.astype(np.float64) - mean) / std, dtype=torch.float32)

    return ImageData(
        name=name,
        x_train=scale(train[0]),
        y_train=torch.tensor(train[1], dtype=torch.int64),
        x_test=scale(test[0]),
        y_test=torch.tensor(test[1], dtype=torch.int64),
        classes=classes,
        fingerprint=fingerprint,
    )


def load_digits_images(test_fraction: float = 0.25, split_seed: int = 0) -> ImageData:
    """scikit-learn's bundled digits as 1 x 8 x 8 images, split train / test.

    Args:
        test_fraction: share of the 1797 images held out for the test
            accuracy, in ``(0, 0.5]``. Default 0.25 (450 test images).
        split_seed: seed of the fixed split permutation (>= 0). Default 0.

    Returns:
        The standardized data on the CPU.

    Raises:
        ValueError: if ``test_fraction`` or ``split_seed`` is out of range.
    """
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, int | float)
        or not 0 < test_fraction <= 0.5
    ):
        raise ValueError(f"test_fraction must be in (0, 0.5], got {test_fraction!r}")
    if (
        isinstance(split_seed, bool)
        or not isinstance(split_seed, int)
        or split_seed < 0
    ):
        raise ValueError(f"split_seed must be an integer >= 0, got {split_seed!r}")
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    images = X.astype(np.uint8).reshape(-1, 1, 8, 8)  # pixel values 0..16
    perm = np.random.default_rng(split_seed).permutation(len(y))
    n_test = round(test_fraction * len(y))
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return _standardized(
        "digits",
        (images[train], y[train]),
        (images[test], y[test]),
        10,
        _fingerprint(images, y, train, test),
    )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only (no arbitrary code).

    The CIFAR-10 files were written by Python 2 with numpy 1 (``numpy.core``);
    numpy 2 calls that module ``numpy._core``: both spellings are accepted, and
    ``_codecs.encode``, which protocol 2 uses for bytes written by Python 3.
    """

    _ALLOWED = {
        ("multiarray", "_reconstruct"),
        ("numeric", "_frombuffer"),
        ("", "ndarray"),
        ("", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        import importlib

        if (module, name) == ("_codecs", "encode"):  # bytes, in protocol 2
            return codecs.encode
        sub = module.removeprefix("numpy").removeprefix(".").removeprefix("_")
        sub = sub.removeprefix("core").removeprefix(".")
        if not module.startswith("numpy") or (sub, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR-10 batch holds only "
                "dicts, lists, bytes and numpy arrays"
            )
        if not sub:
            return getattr(np, name)
        try:
            return getattr(importlib.import_module(f"numpy._core.{sub}"), name)
        except ImportError:  # numpy 1.x
            return getattr(importlib.import_module(f"numpy.core.{sub}"), name)


def _read_batch(path: pathlib.Path) -> dict[bytes, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(
            f"data_dir must hold the CIFAR-10 python files {list(CIFAR10_FILES)}; "
            f"{path.name} is missing in {str(path.parent)!r}"
        ) from None
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:
        raise ValueError(
            f"{str(path)!r} is not a CIFAR-10 python pickle: {exc}"
        ) from None
    if not isinstance(obj, dict):
        raise ValueError(f"{str(path)!r} must hold a dict, got {type(obj).__name__}")
    return obj


def _images_and_labels(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _read_batch(path)
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise ValueError(
            f"{str(path)!r}: b'data' must be a uint8 array (N, 3072), got "
            f"{type(data).__name__} {getattr(data, 'dtype', '')} "
            f"{getattr(data, 'shape', '')}"
        )
    if data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"{str(path)!r}: b'data' must have 3072 columns (3 x 32 x 32), got "
            f"shape {data.shape}"
        )
    y = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if y.shape != (data.shape[0],) or (y.size and (y.min() < 0 or y.max() > 9)):
        raise ValueError(
            f"{str(path)!r}: b'labels' must hold {data.shape[0]} integers in [0, 9], "
            f"got {y.size} values" + (f" in [{y.min()}, {y.max()}]" if y.size else "")
        )
    return data.reshape(-1, 3, 32, 32), y


def load_cifar10(data_dir: str | pathlib.Path) -> ImageData:
    """CIFAR-10 from a local directory in its standard python format.

    The directory is the one the ``cifar-10-python.tar.gz`` archive unpacks to
    (``cifar-10-batches-py``): ``data_batch_1`` ... ``data_batch_5`` (training)
    and ``test_batch``, each a pickled dict with ``b"data"`` (uint8, one row of
    3072 values per image: the 1024 red, then green, then blue pixels of a
    32 x 32 image, row-major) and ``b"labels"`` (integers 0-9), and
    ``batches.meta`` (``b"label_names"``). Any number of images per file is
    accepted. Only arrays and plain containers are unpickled.

    Args:
        data_dir: the directory.

    Returns:
        The standardized data on the CPU (``n_train`` from the five training
        files, ``n_test`` from ``test_batch``).

    Raises:
        ValueError: if the directory, a file, or a file's content does not have
            this format (the message names the file).
    """
    root = pathlib.Path(data_dir)
    if not root.is_dir():
        raise ValueError(f"data_dir must be an existing directory, got {str(root)!r}")
    meta = _read_batch(root / "batches.meta")
    names = meta.get(b"label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise ValueError(
            f"{str(root / 'batches.meta')!r}: b'label_names' must list 10 names, got "
            f"{names!r}"
        )
    parts = [_images_and_labels(root / f"data_batch_{i}") for i in range(1, 6)]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = _images_and_labels(root / "test_batch")
    return _standardized(
        "cifar10",
        (x_train, y_train),
        (x_test, y_test),
        10,
        _fingerprint(x_train, y_train, x_test, y_test),
    )


def load_data(
    dataset: str,
    *,
    data_dir: str | pathlib.Path | None = None,
    test_fraction: float = 0.25,
) -> ImageData:
    """The named data set on the CPU (digits: bundled; cifar10: from ``data_dir``).

    Args:
        dataset: "digits" or "cifar10".
        data_dir: the CIFAR-10 directory (:func:`load_cifar10`). Default None.
        test_fraction: digits only (:func:`load_digits_images`). Default 0.25.

    Returns:
        The standardized data.

    Raises:
        ValueError: on an unknown ``dataset``, or ``cifar10`` without
            ``data_dir`` (or with a bad one).
    """
    if dataset == "digits":
        return load_digits_images(test_fraction)
    if dataset == "cifar10":
        if data_dir is None:
            raise ValueError(
                "dataset 'cifar10' needs data_dir (--data-dir), the directory of "
                "the CIFAR-10 python files; the package never downloads"
            )
        return load_cifar10(data_dir)
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")


@functools.lru_cache(maxsize=2)
def _data_on(
    dataset: str, data_dir: str | None, test_fraction: float, device: str
) -> ImageData:
    """Per-process cache: a worker loads its data once for all its runs."""
    return load_data(dataset, data_dir=data_dir, test_fraction=test_fraction).to(device)


def augment_batch(
    x: torch.Tensor, generator: torch.Generator, pad: int = 4
) -> torch.Tensor:
    """The WRN augmentation: random crops of the reflect-padded images, random flips.

    Each image ``x[i]`` (``C x H x W``) is padded by ``pad`` reflected pixels on
    every side; an ``H x W`` window at offset ``(dy_i, dx_i)``, uniform in
    ``{0..2 pad}^2``, is cut out and flipped left-right with probability 1/2.
    The random numbers are drawn on the CPU from ``generator`` (per batch:
    ``n`` flips, then ``n`` row offsets, then ``n`` column offsets).

    Args:
        x: float images ``(n, C, H, W)`` on any device; ``pad < min(H, W)``.
        generator: CPU generator.
        pad: pixels of padding (>= 0). Default 4.

    Returns:
        The augmented images, same shape, device and dtype.

    Raises:
        ValueError: if ``x`` is not 4-D or ``pad`` is out of range.
    """
    if x.ndim != 4:
        raise ValueError(f"x must be (n, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < min(h, w):
        raise ValueError(f"pad must be an integer in [0, {min(h, w) - 1}], got {pad!r}")
    flip = torch.rand(n, generator=generator) < 0.5
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect") if pad else x
    rows = dy[:, None] + torch.arange(h)
    cols = dx[:, None] + torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    dev = x.device
    return padded[
        torch.arange(n, device=dev)[:, None, None, None],
        torch.arange(c, device=dev)[None, :, None, None],
        rows.to(dev)[:, None, :, None],
        cols.to(dev)[:, None, None, :],
    ]


def resolve_device(device: str) -> str:
    """The device to run on: ``"auto"`` is the first of cuda, mps, cpu available.

    Args:
        device: "auto" or a torch device string ("cpu", "cuda", "cuda:1", "mps").

    Returns:
        The device string to run on.

    Raises:
        ValueError: if ``device`` is not a device string or is not available here.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be 'auto' or a torch device such as 'cpu', 'cuda', "
            f"'cuda:1', 'mps', got {device!r}"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} asked for but torch.cuda.is_available() is False "
            "(a CPU build of torch, or no driver); use device = 'cpu' or 'auto'"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} asked for but MPS is not available")
    return device


# ---------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything one run depends on (plain values; hashed into ``run_id``).

    Attributes:
        dataset: "digits" or "cifar10".
        data_fingerprint: :attr:`ImageData.fingerprint` of the data.
        test_fraction: digits' held-out share (part of the data's identity).
        variant: "plain", "bn", "skip" or "bn+skip".
        depth: ``beta``.
        width_factor: ``k``.
        base_channels: ``c``.
        seed: master seed of the experiment.
        replicate: replicate index (>= 0), or -1 for a step-size tuning run.
        lr: initial step size ``alpha``.
        epochs: ``E``.
        lr_drop_epochs: epochs (0-based, before which) ``alpha`` is divided by 10.
        batch_size: ``B`` (training and measurement).
        pairs: ``K`` mini-batch pairs per measurement; 0 for no measurement and
            no test accuracy (tuning runs).
        augment: WRN augmentation of the training mini-batches.
        device: where the run computes.
        protocol: :data:`PROTOCOL_VERSION`.
    """

    dataset: str
    data_fingerprint: str
    test_fraction: float
    variant: str
    depth: int
    width_factor: int
    base_channels: int
    seed: int
    replicate: int
    lr: float
    epochs: int
    lr_drop_epochs: tuple[int, ...]
    batch_size: int
    pairs: int
    augment: bool
    device: str
    protocol: int = PROTOCOL_VERSION

    @property
    def model(self) -> str:
        """The paper's name of the network plus its variant, e.g. ``cnn-16-2-bn``."""
        return f"cnn-{self.depth}-{self.width_factor}-{self.variant}"

    def content(self) -> dict[str, Any]:
        """The fields as plain JSON values."""
        out = dataclasses.asdict(self)
        out["lr_drop_epochs"] = list(self.lr_drop_epochs)
        return out

    @property
    def run_id(self) -> str:
        """Hash of :meth:`content` (16 hex digits)."""
        return spec_hash(self.content())


def _streams(spec: RunSpec) -> tuple[torch.Generator, ...]:
    """CPU generators (init, data order, measurement, augmentation) of a run.

    Seeded from ``(seed, replicate, depth, k, c, variant)`` (not from the step
    size: the tuning runs of a model share its initialization and data order).
    """
    ss = np.random.SeedSequence(
        [
            spec.seed,
            spec.replicate + 1,
            spec.depth,
            spec.width_factor,
            spec.base_channels,
            VARIANTS.index(spec.variant),
        ]
    )
    return tuple(torch.Generator().manual_seed(int(s)) for s in ss.generate_state(4))


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@torch.no_grad()
def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` classified as ``y``, in eval mode (mode restored)."""
    was_training = net.training
    net.eval()
    correct = torch.zeros((), dtype=torch.int64, device=y.device)
    for a in range(0, x.shape[0], _EVAL_CHUNK):
        pred = net(x[a : a + _EVAL_CHUNK]).argmax(dim=1)
        correct += (pred == y[a : a + _EVAL_CHUNK]).sum()
    net.train(was_training)
    return int(correct) / x.shape[0]


def train_run(
    spec: RunSpec, data: ImageData, *, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Train one CNN with SGD and measure it every epoch (module docstring).

    Args:
        spec: the run.
        data: the data set named by ``spec`` (its fingerprint must match), on
            ``spec.device``.
        log: called with one line per finished epoch (model, epoch, training
            loss, minimum cosine, test accuracy, elapsed seconds); ``None`` for
            silence. Default None.

    Returns:
        Plain values: ``model``, ``variant``, ``depth``, ``width_factor``,
        ``replicate``, ``lr``; ``train_loss`` (one mean mini-batch loss per
        epoch); with ``pairs > 0`` also ``min_cosine``, ``test_accuracy`` and
        ``cosines`` (``K`` values), each with one entry at initialization and
        one per epoch; ``diverged`` and ``epochs_completed``: a run whose
        training loss becomes non-finite stops after that epoch. Non-finite
        values are ``None``.

    Raises:
        ValueError: if ``data`` is not the data set of ``spec``, or ``B`` is
            larger than half the training samples when measuring.
    """
    if data.fingerprint != spec.data_fingerprint:
        raise ValueError(
            f"data has fingerprint {data.fingerprint}, but the run was specified on "
            f"{spec.data_fingerprint} ({spec.dataset})"
        )
    n, B = data.x_train.shape[0], spec.batch_size
    steps = n // B
    if steps < 1:
        raise ValueError(f"batch_size must be <= {n} (training samples), got {B}")
    init, order, measure, aug = _streams(spec)
    net = build_cnn(
        spec.depth,
        spec.width_factor,
        spec.variant,
        in_channels=data.x_train.shape[1],
        num_classes=data.classes,
        base_channels=spec.base_channels,
        generator=init,
        device=spec.device,
    )
    opt = torch.optim.SGD(net.parameters(), lr=spec.lr, momentum=0.0, weight_decay=0.0)
    loss_fn = nn.CrossEntropyLoss()
    measuring = spec.pairs > 0
    losses: list[float | None] = []
    cosines: list[list[float | None]] = []
    accuracy: list[float] = []
    started = time.perf_counter()

    def measure_now() -> None:
        res = minibatch_confusion(
            net,
            loss_fn,
            (data.x_train, data.y_train),
            pairs=spec.pairs,
            batch_size=B,
            generator=measure,
            bn_mode="train",
        )
        cosines.append([_finite_or_none(c) for c in res.cosines])
        accuracy.append(_accuracy(net, data.x_test, data.y_test))

    def minimum(cs: list[float | None]) -> float | None:
        return min((c for c in cs if c is not None), default=None)

    if measuring:
        measure_now()
    diverged = False
    for epoch in range(spec.epochs):
        if epoch in spec.lr_drop_epochs:
            for group in opt.param_groups:
                group["lr"] /= 10.0
        net.train()
        perm = torch.randperm(n, generator=order)
        total = torch.zeros((), dtype=torch.float64, device=data.x_train.device)
        for step in range(steps):
            idx = perm[step * B : (step + 1) * B].to(data.x_train.device)
            x = data.x_train[idx]
            if spec.augment:
                x = augment_batch(x, aug)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), data.y_train[idx])
            loss.backward()
            opt.step()
            total += loss.detach()
        mean = float(total) / steps
        losses.append(_finite_or_none(mean))
        diverged = not math.isfinite(mean)
        if measuring and not diverged:
            measure_now()
        if log is not None:
            line = f"{spec.model} "
            line += (
                f"tuning lr {spec.lr:g}"
                if spec.replicate < 0
                else f"seed {spec.seed} rep {spec.replicate} lr {spec.lr:g}"
            )
            line += f": epoch {epoch + 1}/{spec.epochs} loss {mean:.4g}"
            if measuring and not diverged:
                low = minimum(cosines[-1])
                line += (
                    f" min cos {math.nan if low is None else low:+.3f}"
                    f" test acc {accuracy[-1]:.3f}"
                )
            log(line + f" ({time.perf_counter() - started:.1f} s)")
        if diverged:
            break
    out: dict[str, Any] = {
        "model": spec.model,
        "variant": spec.variant,
        "depth": spec.depth,
        "width_factor": spec.width_factor,
        "replicate": spec.replicate,
        "lr": spec.lr,
        "diverged": diverged,
        "epochs_completed": len(losses),
        "train_loss": losses,
    }
    if measuring:
        out["min_cosine"] = [minimum(cs) for cs in cosines]
        out["test_accuracy"] = accuracy
        out["cosines"] = cosines
    return out


def run_task(payload: tuple[RunSpec, str | None, bool]) -> dict[str, Any]:
    """One run as a task of :mod:`montecarlo._runs` (any process or Dask worker).

    Args:
        payload: ``(spec, data_dir, progress)``; the data set is loaded (once
            per process) from ``data_dir`` for CIFAR-10; with ``progress`` each
            epoch prints one line (flushed) to this process's stdout.

    Returns:
        :func:`train_run`'s result.
    """
    spec, data_dir, progress = payload
    data = _data_on(spec.dataset, data_dir, spec.test_fraction, spec.device)
    log = (lambda line: print(f"  {line}", flush=True)) if progress else None
    return train_run(spec, data, log=log)
