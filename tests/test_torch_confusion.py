"""Confusion of torch models: per-sample Gram (vmap, factored), Section 7 protocol.

Oracles are deliberately naive: per-sample gradients by autograd, one sample at
a time, stacked and multiplied; ``theory.gram`` (numpy) for the paper's MLP.

Tolerances: float64 routes differ from the oracle only by rounding in
reassociated sums, ``|error| <= gamma_k sum |terms|`` with
``gamma_k = k eps / (1 - k eps)``, ``eps = 2.2e-16``, ``k`` <= a few hundred
(parameters per inner product), i.e. ~1e-13 relative; the tests use 1e-10 (the
specified bound). float32 tolerances are derived from float32 epsilon below.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import theory
from theory.torch import minibatch_confusion, per_sample_gram, torch_mlp

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
EPS32 = float(np.finfo(np.float32).eps)


def rel_err(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Max-abs error relative to the largest entry of the reference ``b``."""
    a = torch.as_tensor(a).detach().cpu().double()
    b = torch.as_tensor(b).detach().cpu().double()
    return float((a - b).abs().max() / b.abs().max())


def naive_gram(model: nn.Module, loss_fn, X, y) -> torch.Tensor:
    """Oracle: autograd on one sample at a time, then explicit inner products."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(X.shape[0]):
        g = torch.autograd.grad(loss_fn(model(X[i : i + 1]), y[i : i + 1]), params)
        rows.append(torch.cat([t.reshape(-1) for t in g]))
    J = torch.stack(rows)
    return J @ J.T


def naive_gram_batch_coupled(model: nn.Module, loss_fn, X, y) -> torch.Tensor:
    """Oracle for train-mode BN: forward all samples, gradient of row i's loss."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(X.shape[0]):
        out = model(X)
        g = torch.autograd.grad(loss_fn(out[i : i + 1], y[i : i + 1]), params)
        rows.append(torch.cat([t.reshape(-1) for t in g]))
    J = torch.stack(rows)
    return J @ J.T


# --- test cases as data -----------------------------------------------------


def _mlp(gen: torch.Generator, dtype, device) -> nn.Module:
    return nn.Sequential(
        nn.Linear(6, 9),
        nn.Tanh(),
        nn.Linear(9, 7, bias=False),
        nn.ReLU(),
        nn.Linear(7, 3),
    ).to(dtype=dtype, device=device)


def _cnn(gen: torch.Generator, dtype, device) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(3, 4, 3),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 3),
    ).to(dtype=dtype, device=device)


def _bn(gen: torch.Generator, dtype, device) -> nn.Module:
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 5 * 5, 8),
        nn.BatchNorm1d(8),
        nn.Sigmoid(),
        nn.Linear(8, 3),
    ).to(dtype=dtype, device=device)
    with torch.no_grad():  # non-trivial running statistics and affine maps
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=gen))
                m.bias.copy_(torch.randn(m.num_features, generator=gen))
    return net


CASES = {
    # name: (model factory, input shape per sample)
    "mlp": (_mlp, (6,)),
    "cnn": (_cnn, (1, 5, 5)),
    "bn": (_bn, (1, 5, 5)),
}


def make_case(name: str, n: int, dtype=torch.float64, device="cpu", seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    factory, shape = CASES[name]
    with torch.random.fork_rng(devices=[]):  # module init uses the global RNG
        torch.manual_seed(seed)
        model = factory(gen, dtype, device)
    X = torch.randn((n, *shape), generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=gen)
    return model, X.to(dtype=dtype, device=device), y.to(device)


# --- vmap route -------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(CASES))
def test_vmap_equals_naive_loop_float64(name, device):
    model, X, y = make_case(name, 13, device=device)
    model.eval()
    loss_fn = nn.CrossEntropyLoss()
    G = per_sample_gram(model, loss_fn, (X, y), method="vmap", bn_mode="eval")
    assert G.dtype == torch.float64 and G.device.type == device
    assert G.shape == (13, 13)
    assert rel_err(G, naive_gram(model, loss_fn, X, y)) < 1e-10


def test_batchnorm_train_mode_is_batch_coupled_and_restores_model():
    """Train-mode BN: rows of the Jacobian of per-sample losses of one forward
    over all n samples; the model's modes and running statistics are restored."""
    model, X, y = make_case("bn", 11)
    model.eval()  # the measurement must switch BN to train mode by itself
    buffers = [b.clone() for b in model.buffers()]
    loss_fn = nn.CrossEntropyLoss()
    G = per_sample_gram(model, loss_fn, (X, y), bn_mode="train", chunk_size=4)
    assert not model.training
    for before, after in zip(buffers, model.buffers(), strict=True):
        assert torch.equal(before, after)
    model.train()
    oracle = naive_gram_batch_coupled(model, loss_fn, X, y)
    assert rel_err(G, oracle) < 1e-10
    # The mode matters: eval mode gives a different Gram for this model.
    G_eval = per_sample_gram(model, loss_fn, (X, y), bn_mode="eval")
    assert rel_err(G_eval, G) > 1e-3
    assert model.training  # restored to the mode it had


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
@pytest.mark.parametrize("chunk", [2, 3, 7])
def test_chunked_equals_unchunked(chunk, bn_mode):
    model, X, y = make_case("bn", 10)
    loss_fn = nn.CrossEntropyLoss()
    full = per_sample_gram(model, loss_fn, (X, y), bn_mode=bn_mode, chunk_size=10)
    G = per_sample_gram(model, loss_fn, (X, y), bn_mode=bn_mode, chunk_size=chunk)
    assert torch.equal(G, G.T)
    assert rel_err(G, full) < 1e-12


def test_max_samples_and_data_forms_agree():
    model, X, y = make_case("cnn", 20)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    ref = per_sample_gram(model, loss_fn, (X, y), max_samples=12)
    assert ref.shape == (12, 12)
    ds = TensorDataset(X, y)
    for data in (ds, DataLoader(ds, batch_size=5, shuffle=True)):
        G = per_sample_gram(model, loss_fn, data, max_samples=12)
        assert rel_err(G, ref) < 1e-12


def test_data_cast_to_model_dtype_and_gradients_untouched():
    model, X, y = make_case("mlp", 8, dtype=torch.float32)
    G = per_sample_gram(model, nn.CrossEntropyLoss(), (X.double(), y), method="vmap")
    assert G.dtype == torch.float32
    assert all(p.grad is None for p in model.parameters())


# --- factored route ---------------------------------------------------------


def theory_weights(rng: np.random.Generator, d: int, widths: list[int]):
    """He-scaled theory-style weights [W_0 (l_0, d), ..., W_beta (1, l_{beta-1})]."""
    dims = [d, *widths, 1]
    return [
        rng.standard_normal((dims[p + 1], dims[p])) * math.sqrt(2.0 / dims[p])
        for p in range(len(dims) - 1)
    ]


TORCH_LOSSES = {
    "square": lambda o, t: 0.5 * ((t - o.squeeze(-1)) ** 2).sum(),
    "logistic": lambda o, t: nn.functional.softplus(-t * o.squeeze(-1)).sum(),
}


@settings(max_examples=25)
@given(
    activation=st.sampled_from(["relu", "tanh", "sigmoid", "identity"]),
    loss=st.sampled_from(["square", "logistic"]),
    output_activation=st.booleans(),
    widths=st.lists(st.integers(1, 8), min_size=0, max_size=3),
    d=st.integers(1, 6),
    n=st.integers(2, 9),
    seed=st.integers(0, 2**32 - 1),
)
def test_factored_equals_theory_gram_and_vmap(
    activation, loss, output_activation, widths, d, n, seed
):
    rng = np.random.default_rng(seed)
    weights = theory_weights(rng, d, widths)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = rng.uniform(-1.0, 1.0, n)
    G_np = theory.gram(
        weights,
        X,
        y,
        activation=activation,
        loss=loss,
        output_activation=output_activation,
    )
    model = torch_mlp(
        weights, activation=activation, output_activation=output_activation
    )
    data = (torch.tensor(X), torch.tensor(y))
    G_f = per_sample_gram(model, TORCH_LOSSES[loss], data, method="factored")
    G_v = per_sample_gram(model, TORCH_LOSSES[loss], data, method="vmap")
    assert isinstance(G_f, torch.Tensor) and G_f.dtype == torch.float64
    if np.abs(G_np).max() == 0:  # e.g. all ReLU units dead: every route gives 0
        assert G_f.abs().max() == 0 and G_v.abs().max() == 0
        return
    assert rel_err(G_f, G_np) < 1e-10
    assert rel_err(G_v, G_np) < 1e-10


@pytest.mark.parametrize("device", DEVICES)
def test_factored_with_bias_and_flatten_equals_vmap(device):
    gen = torch.Generator().manual_seed(3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = nn.Sequential(
            nn.Tanh(),  # on the 4-D input, below the first Linear
            nn.Flatten(),
            nn.Linear(12, 10),
            nn.Sigmoid(),
            nn.Flatten(),  # a no-op on 2-D activations
            nn.Identity(),
            nn.Linear(10, 6, bias=False),
            nn.ReLU(),
            nn.Linear(6, 4),
        ).to(dtype=torch.float64, device=device)
    X = torch.randn(15, 3, 2, 2, generator=gen, dtype=torch.float64).to(device)
    y = torch.randint(0, 4, (15,), generator=gen).to(device)
    loss_fn = nn.CrossEntropyLoss()
    G_f = per_sample_gram(model, loss_fn, (X, y), method="factored")
    assert G_f.device.type == device
    assert rel_err(G_f, per_sample_gram(model, loss_fn, (X, y), method="vmap")) < 1e-10
    assert rel_err(G_f, naive_gram(model, loss_fn, X, y)) < 1e-10


def test_factored_relu_derivative_at_zero_follows_torch():
    """A pre-activation exactly 0 with a nonzero input: torch's ReLU backward
    uses the derivative 0 there, and so must the factored route."""
    model = nn.Sequential(
        nn.Linear(3, 2, bias=False), nn.ReLU(), nn.Linear(2, 2)
    ).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0, 0.0], [0.5, 0.2, 1.0]]))
    X = torch.tensor([[1.0, 1.0, 0.0], [2.0, -1.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([0, 1])
    loss_fn = nn.CrossEntropyLoss()
    G_f = per_sample_gram(model, loss_fn, (X, y), method="factored")
    assert rel_err(G_f, naive_gram(model, loss_fn, X, y)) < 1e-12


def test_factored_skips_frozen_parameters():
    model, X, y = make_case("mlp", 10)
    model[0].weight.requires_grad_(False)
    model[4].bias.requires_grad_(False)
    loss_fn = nn.CrossEntropyLoss()
    G_f = per_sample_gram(model, loss_fn, (X, y), method="factored")
    G_v = per_sample_gram(model, loss_fn, (X, y), method="vmap")
    oracle = naive_gram(model, loss_fn, X, y)
    assert rel_err(G_f, oracle) < 1e-10
    assert rel_err(G_v, oracle) < 1e-10


@pytest.mark.parametrize("device", DEVICES)
def test_factored_float32(device):
    """float32 factored route against float64 ``theory.gram``.

    Each stage (L forward products, L backward products, two Gram factors per
    layer) is an inner product of length <= k and adds a relative rounding error
    of at most gamma_k ~ k eps32 to the magnitudes involved, so
    |G32 - G64| / max|G| <= (2 L + 2) k eps32 up to the ratio of sum |terms| to
    max|G|; a factor 4 covers that ratio for these He-scaled random nets.
    """
    rng = np.random.default_rng(7)
    widths, d, n = [16, 16, 16], 10, 30
    weights = theory_weights(rng, d, widths)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = rng.uniform(-1.0, 1.0, n)
    G64 = theory.gram(weights, X, y, activation="tanh", loss="square")
    model = torch_mlp(weights, activation="tanh", dtype=torch.float32, device=device)
    data = (torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    G32 = per_sample_gram(model, TORCH_LOSSES["square"], data, method="factored")
    G32v = per_sample_gram(model, TORCH_LOSSES["square"], data, method="vmap")
    assert G32.dtype == torch.float32 and G32v.dtype == torch.float32
    L, k = len(weights), max(widths + [d])
    tol = 4 * (2 * L + 2) * k * EPS32
    assert rel_err(G32, G64) < tol
    assert rel_err(G32v, G64) < tol


def test_auto_dispatch():
    model, X, y = make_case("mlp", 9)
    loss_fn = nn.CrossEntropyLoss()
    G = per_sample_gram(model, loss_fn, (X, y), method="auto")
    assert rel_err(G, per_sample_gram(model, loss_fn, (X, y), method="factored")) == 0
    cnn, Xc, yc = make_case("cnn", 9)
    G = per_sample_gram(cnn, loss_fn, (Xc, yc), method="auto")
    assert rel_err(G, per_sample_gram(cnn, loss_fn, (Xc, yc), method="vmap")) == 0


# --- the Section 7 protocol -------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_minibatch_confusion_range_and_reproducible(device):
    model, X, y = make_case("bn", 40, device=device)
    loss_fn = nn.CrossEntropyLoss()
    a = minibatch_confusion(model, loss_fn, (X, y), pairs=12, batch_size=8, generator=5)
    b = minibatch_confusion(
        model,
        loss_fn,
        (X, y),
        pairs=12,
        batch_size=8,
        generator=torch.Generator().manual_seed(5),
    )
    c = minibatch_confusion(model, loss_fn, (X, y), pairs=12, batch_size=8, generator=6)
    assert a.cosines.shape == (12,)
    assert np.all(np.abs(a.cosines) <= 1.0)
    np.testing.assert_array_equal(a.cosines, b.cosines)
    assert not np.array_equal(a.cosines, c.cosines)
    assert a.minimum == a.cosines.min() and a.eta == max(0.0, -a.minimum)


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_minibatch_confusion_one_pair_explicit(bn_mode):
    """n = 4, B = 2, disjoint: the pair is a split {S, complement}; check against
    the explicit cosine of that split (the split is identified by trying all)."""
    model, X, y = make_case("bn", 4)
    loss_fn = nn.CrossEntropyLoss()
    params = list(model.parameters())
    model.train(bn_mode == "train")

    def grad_of(idx):
        g = torch.autograd.grad(loss_fn(model(X[idx]), y[idx]), params)
        return torch.cat([t.reshape(-1) for t in g])

    explicit = {}
    for S in ([0, 1], [0, 2], [0, 3]):
        T = [i for i in range(4) if i not in S]
        u, v = grad_of(S), grad_of(T)
        explicit[tuple(S)] = float(u @ v / (u.norm() * v.norm()))
    model.eval()
    res = minibatch_confusion(
        model, loss_fn, (X, y), pairs=20, batch_size=2, bn_mode=bn_mode
    )
    values = np.array(list(explicit.values()))
    # Every measured cosine is one of the three explicit splits (to rounding).
    dist = np.abs(res.cosines[:, None] - values[None, :]).min(axis=1)
    assert dist.max() < 1e-12
    assert not model.training


def test_minibatch_confusion_single_samples_match_gram():
    """B = 1 on two samples: the cosine is G_01 / sqrt(G_00 G_11)."""
    model, X, y = make_case("cnn", 2)
    loss_fn = nn.CrossEntropyLoss()
    G = naive_gram(model, loss_fn, X, y)
    res = minibatch_confusion(model, loss_fn, (X, y), pairs=3, batch_size=1)
    expected = float(G[0, 1] / torch.sqrt(G[0, 0] * G[1, 1]))
    np.testing.assert_allclose(res.cosines, expected, rtol=0, atol=1e-13)


def test_minibatch_confusion_not_disjoint_and_dataloader():
    model, X, y = make_case("mlp", 10)
    loss_fn = nn.CrossEntropyLoss()
    res = minibatch_confusion(
        model, loss_fn, (X, y), pairs=5, batch_size=10, disjoint=False
    )
    # Two batches of all 10 samples are the same set: cosine 1.
    np.testing.assert_allclose(res.cosines, 1.0, atol=1e-14)
    loader = DataLoader(TensorDataset(X, y), batch_size=3, shuffle=True)
    a = minibatch_confusion(model, loss_fn, loader, pairs=6, batch_size=3)
    b = minibatch_confusion(model, loss_fn, (X, y), pairs=6, batch_size=3)
    np.testing.assert_allclose(a.cosines, b.cosines, rtol=0, atol=1e-14)


def test_density_is_a_kde():
    model, X, y = make_case("mlp", 30)
    res = minibatch_confusion(
        model, nn.CrossEntropyLoss(), (X, y), pairs=40, batch_size=5
    )
    grid = np.linspace(-3.0, 3.0, 6001)
    dens = res.density(grid)
    assert np.all(dens >= 0)
    # Mass outside [-3, 3] is negligible for cosines in [-1, 1] with Scott's
    # bandwidth (< 1 for this sample); the trapezoid rule on 6001 points errs
    # by O(h^2): 1e-3 is loose for both.
    assert abs(np.trapezoid(dens, grid) - 1.0) < 1e-3
    assert "minimum" in repr(res)


def test_zero_gradient_gives_undefined_cosine():
    model = nn.Sequential(nn.Linear(3, 2, bias=False)).double()
    with torch.no_grad():
        model[0].weight.zero_()
    X = torch.zeros(6, 3, dtype=torch.float64)
    y = torch.zeros(6, dtype=torch.int64)
    res = minibatch_confusion(
        model, nn.CrossEntropyLoss(), (X, y), pairs=2, batch_size=2
    )
    assert res.undefined == 2 and math.isnan(res.minimum)
    with pytest.raises(ValueError, match="two distinct"):
        res.density([0.0])


# --- bad input --------------------------------------------------------------


def _ok():
    model, X, y = make_case("mlp", 10)
    return model, nn.CrossEntropyLoss(), (X, y)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"pairs": 0}, "pairs"),
        ({"pairs": 2.5}, "pairs"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 11, "disjoint": False}, "batch_size"),
        ({"batch_size": 6}, "batch_size"),  # disjoint pairs need 2 B <= n
        ({"bn_mode": "training"}, "bn_mode"),
        ({"generator": -1}, "generator"),
        ({"generator": "seed"}, "generator"),
    ],
)
def test_minibatch_confusion_bad_input(kwargs, name):
    model, loss_fn, data = _ok()
    with pytest.raises(ValueError, match=name):
        minibatch_confusion(model, loss_fn, data, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"method": "jacobian"}, "method"),
        ({"bn_mode": "inference"}, "bn_mode"),
        ({"max_samples": 0}, "max_samples"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_per_sample_gram_bad_input(kwargs, name):
    model, loss_fn, data = _ok()
    with pytest.raises(ValueError, match=name):
        per_sample_gram(model, loss_fn, data, **kwargs)


def test_bad_model_data_and_loss():
    model, loss_fn, (X, y) = _ok()
    with pytest.raises(ValueError, match="instantiate"):
        per_sample_gram(nn.Linear, loss_fn, (X, y))
    with pytest.raises(ValueError, match="model"):
        per_sample_gram(nn.ReLU(), loss_fn, (X, y))
    with pytest.raises(ValueError, match="data"):
        per_sample_gram(model, loss_fn, X)
    with pytest.raises(ValueError, match="data"):
        per_sample_gram(model, loss_fn, (X, y[:3]))
    with pytest.raises(ValueError, match="loss_fn"):
        per_sample_gram(model, "cross_entropy", (X, y))
    with pytest.raises(ValueError, match="scalar"):
        per_sample_gram(model, nn.CrossEntropyLoss(reduction="none"), (X, y))
    with pytest.raises(ValueError, match="scalar"):
        minibatch_confusion(
            model, nn.CrossEntropyLoss(reduction="none"), (X, y), batch_size=2
        )
    cnn, Xc, yc = make_case("cnn", 5)
    with pytest.raises(ValueError, match="method='factored'"):
        per_sample_gram(cnn, loss_fn, (Xc, yc), method="factored")


def test_torch_mlp_bad_input():
    with pytest.raises(ValueError, match="activation"):
        torch_mlp([np.ones((2, 3))], activation="gelu")
    with pytest.raises(ValueError, match="weights"):
        torch_mlp([], activation="relu")
    with pytest.raises(ValueError, match=r"weights\[1\]"):
        torch_mlp([np.ones((2, 3)), np.ones((1, 4))], activation="relu")
