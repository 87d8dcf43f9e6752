"""Gradient confusion while training real models on real data (Figures 2 to 4, small).

A scaled-down replication of Section 7 of the paper on scikit-learn's bundled
digits (1797 images of 8 x 8 pixels, 10 classes; no download). Notation:

- ``depth``: hidden layers of width ``width`` (the paper's ``beta``);
- ``E`` epochs of SGD with mini-batches of ``B`` samples, ``K`` pairs of
  mini-batches measured at the end of every epoch (and at initialization);
- a *variant* is one of ``plain``, ``bn`` (batch norm), ``skip`` (skip
  connections) and ``bn+skip``.

Protocol (the paper's, scaled down; every choice fixed before looking at trends):

- data: all 1797 digits, each pixel standardized over the data set (constant
  pixels set to 0), cross-entropy loss on 10 classes;
- models: MLPs ``Linear(64, width)``, then ``depth - 1`` blocks
  ``h <- [h +] Linear(ReLU([BN](h)))`` (pre-activation blocks; ``h +`` with skip
  connections), then ``Linear(width, 10)(ReLU([BN](h)))``; without BN and skip
  this is the plain MLP ``Linear, ReLU, ..., Linear``. He (MSRA) normal
  initialization of every weight (fan-in, ReLU gain), zero biases;
- optimizer: plain SGD (no momentum, no weight decay), ``B = 128``, ``E`` epochs
  (last incomplete batch dropped), learning rate divided by 10 at 40% and 80%
  of the epochs (the paper: epochs 80 and 160 of 200);
- learning rate: for each model, the value of a logarithmic grid with the
  lowest final training loss in a tuning run (its own seed, no measurement),
  as the paper selects the initial learning rate per model;
- measurement: :func:`theory.minibatch_confusion` with ``K`` pairs of disjoint
  mini-batches of ``B = 128``, batch norm in train mode (the gradients SGD
  steps along), at initialization and after each epoch;
- replicates: independent seeds (initialization, data order, measurement).

Each run is a pure function of its specification; runs are spread over worker
processes (one torch thread each), and the results do not depend on how many.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import pathlib
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from theory._torch_confusion import minibatch_confusion

__all__ = ["run_real_data"]

VARIANTS = ("plain", "bn", "skip", "bn+skip")
_SIGNIFICANCE = 0.05
_PERMUTATIONS = 9999


@dataclass(frozen=True)
class _Settings:
    """Sizes of one experiment (the full one or the quick one)."""

    depths: tuple[int, ...]  # depth sweep (plain, width ``width``) and variants
    width: int  # fixed width of the depth sweep and of the variants
    widths: tuple[int, ...]  # width sweep (plain, depth ``width_depth``)
    width_depth: int
    replicates: int
    epochs: int
    batch_size: int
    pairs: int
    learning_rates: tuple[float, ...]


FULL = _Settings(
    depths=(2, 4, 8, 16),
    width=64,
    widths=(16, 32, 64, 128, 256),
    width_depth=8,
    replicates=3,
    epochs=30,
    batch_size=128,
    pairs=50,
    learning_rates=(1.0, 0.3, 0.1, 0.03, 0.01, 0.003),
)
QUICK = _Settings(
    depths=(1, 3),
    width=16,
    widths=(8, 32),
    width_depth=2,
    replicates=2,
    epochs=2,
    batch_size=128,
    pairs=4,
    learning_rates=(0.3, 0.03),
)


@dataclass(frozen=True)
class _Model:
    """One architecture: an MLP of ``depth`` hidden layers of ``width`` units."""

    width: int
    depth: int
    variant: str

    @property
    def key(self) -> str:
        return f"mlp-w{self.width}-d{self.depth}-{self.variant}"


@dataclass(frozen=True)
class _RunSpec:
    """Everything one training run depends on (picklable, plain values)."""

    model: _Model
    seed: int
    replicate: int  # -1 for the learning-rate tuning run
    lr: float
    epochs: int
    batch_size: int
    pairs: int  # 0: no measurement (tuning run)


# ---------------------------------------------------------------------------
# data and models
# ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Standardized digits (1797, 64) float32 and labels (1797,) int64."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)


class _MLP(nn.Module):
    """``Linear``, ``depth - 1`` pre-activation blocks, ``Linear`` read-out."""

    def __init__(self, d_in: int, n_out: int, model: _Model) -> None:
        super().__init__()
        bn = model.variant in ("bn", "bn+skip")
        self.skip = model.variant in ("skip", "bn+skip")
        w = model.width
        self.stem = nn.Linear(d_in, w, device="meta")
        self.blocks = nn.ModuleList(
            nn.Linear(w, w, device="meta") for _ in range(model.depth - 1)
        )
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(w, device="meta") if bn else nn.Identity()
            for _ in range(model.depth)
        )
        self.head = nn.Linear(w, n_out, device="meta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for linear, norm in zip(self.blocks, self.norms, strict=False):
            z = linear(torch.relu(norm(h)))
            h = h + z if self.skip else z
        return self.head(torch.relu(self.norms[-1](h)))


def _build(model: _Model, generator: torch.Generator) -> nn.Module:
    """The model with He (MSRA) normal weights drawn from ``generator``.

    Built on the meta device and then materialized, so the global torch RNG is
    never touched.
    """
    net = _MLP(64, 10, model).to_empty(device="cpu")
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(
                    m.weight, nonlinearity="relu", generator=generator
                )
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm1d):
                m.reset_parameters()
    return net


def _streams(spec: _RunSpec) -> tuple[torch.Generator, ...]:
    """Generators (init, data order, measurement) from (seed, replicate, model)."""
    variant = VARIANTS.index(spec.model.variant)
    ss = np.random.SeedSequence(
        [spec.seed, spec.replicate + 1, spec.model.width, spec.model.depth, variant]
    )
    return tuple(torch.Generator().manual_seed(int(s)) for s in ss.generate_state(3))


# ---------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _train(spec: _RunSpec) -> dict[str, Any]:
    """Train one model with SGD; measure confusion each epoch if ``pairs > 0``.

    Returns plain values: per-epoch mean mini-batch training loss (``E``
    entries), per-epoch minimum cosine (``E + 1`` entries, index 0 at
    initialization) and the cosines of every measurement; ``None`` where a value
    is not finite. A run whose loss becomes non-finite stops (``diverged``).
    """
    X, y = _digits()
    init, order, measure = _streams(spec)
    net = _build(spec.model, init)
    opt = torch.optim.SGD(net.parameters(), lr=spec.lr, momentum=0.0, weight_decay=0.0)
    loss_fn = nn.CrossEntropyLoss()
    n, B = X.shape[0], spec.batch_size
    drops = {int(0.4 * spec.epochs), int(0.8 * spec.epochs)} - {0}

    def measure_now() -> list[float | None]:
        res = minibatch_confusion(
            net,
            loss_fn,
            (X, y),
            pairs=spec.pairs,
            batch_size=B,
            generator=measure,
            bn_mode="train",
        )
        return [_finite_or_none(c) for c in res.cosines]

    losses: list[float | None] = []
    cosines: list[list[float | None]] = []
    if spec.pairs:
        cosines.append(measure_now())
    diverged = False
    for epoch in range(spec.epochs):
        if epoch in drops:
            for group in opt.param_groups:
                group["lr"] /= 10.0
        net.train()
        perm = torch.randperm(n, generator=order)
        total = 0.0
        for step in range(n // B):
            idx = perm[step * B : (step + 1) * B]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(X[idx]), y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach())
        mean = total / (n // B)
        losses.append(_finite_or_none(mean))
        if not math.isfinite(mean):
            diverged = True
            break
        if spec.pairs:
            cosines.append(measure_now())
    minima = [min((c for c in cs if c is not None), default=None) for cs in cosines]
    return {
        "model": spec.model.key,
        "width": spec.model.width,
        "depth": spec.model.depth,
        "variant": spec.model.variant,
        "replicate": spec.replicate,
        "lr": spec.lr,
        "diverged": diverged,
        "loss": losses,
        "min_cosine": minima,
        "cosines": cosines,
    }


def _worker_init() -> None:
    torch.set_num_threads(1)


@contextlib.contextmanager
def _runner(workers: int) -> Iterator[Callable[[list[_RunSpec]], list[dict[str, Any]]]]:
    """A map over run specs, in order; results are independent of ``workers``.

    One worker runs in this process; more start a pool of spawned processes
    (one torch thread each) that serves every call until the context ends.
    """
    if workers == 1:
        yield lambda specs: [_train(s) for s in specs]
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as ex:

        def run_all(specs: list[_RunSpec]) -> list[dict[str, Any]]:
            # Longest runs first so that no worker idles at the end.
            order = sorted(range(len(specs)), key=lambda i: -_cost(specs[i]))
            done = ex.map(_train, [specs[i] for i in order], chunksize=1)
            out: list[dict[str, Any]] = [{} for _ in specs]
            for i, result in zip(order, done, strict=True):
                out[i] = result
            return out

        yield run_all


def _cost(spec: _RunSpec) -> float:
    """Rough relative run time: layers x width x passes (batch norm ~1.6x)."""
    m = spec.model
    passes = spec.epochs * (1 + 2 * spec.pairs / 14)
    return m.depth * (m.width + 64) * passes * (1.6 if "bn" in m.variant else 1.0)


# ---------------------------------------------------------------------------
# claims
# ---------------------------------------------------------------------------


def _final(run: dict[str, Any], field: str) -> float:
    """Last finite value of a run's curve; ``nan`` if the run diverged."""
    if run["diverged"]:
        return math.inf if field == "loss" else math.nan
    if field == "cosine_std":
        values = [c for c in run["cosines"][-1] if c is not None]
        return float(np.std(values)) if len(values) > 1 else math.nan
    value = run[field][-1]
    return math.nan if value is None else float(value)


def _verdict(statistic: float, p: float, sign: int) -> tuple[str, str]:
    if not math.isfinite(statistic) or not math.isfinite(p):
        return "inconclusive", "statistic undefined (constant or missing values)"
    if p >= _SIGNIFICANCE:
        return "inconclusive", f"p = {p:.3g} >= {_SIGNIFICANCE}"
    if np.sign(statistic) == sign:
        return "consistent", f"predicted sign and p = {p:.3g} < {_SIGNIFICANCE}"
    return "violated", f"opposite sign with p = {p:.3g} < {_SIGNIFICANCE}"


def _spearman(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho along ``axis`` (Pearson correlation of mid-ranks)."""
    ra = stats.rankdata(a, axis=axis)
    rb = stats.rankdata(b, axis=axis)
    ra = ra - ra.mean(axis=axis, keepdims=True)
    rb = rb - rb.mean(axis=axis, keepdims=True)
    num = (ra * rb).sum(axis=axis)
    return num / np.sqrt((ra * ra).sum(axis=axis) * (rb * rb).sum(axis=axis))


def _spearman_claim(
    claim: str,
    xs: Sequence[float],
    ys: Sequence[float],
    sign: int,
    figure: str,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Spearman rank correlation with a two-sided permutation p-value."""
    x, v = np.asarray(xs, float), np.asarray(ys, float)
    keep = ~np.isnan(v)
    x, v = x[keep], v[keep]
    dropped = int((~keep).sum())
    if x.size < 3 or np.unique(x).size < 2 or np.unique(v).size < 2:
        rho, p = math.nan, math.nan
    else:
        res = stats.permutation_test(
            (x, v),
            _spearman,
            permutation_type="pairings",
            vectorized=True,
            n_resamples=_PERMUTATIONS,
            rng=rng,
        )
        rho, p = float(res.statistic), float(res.pvalue)
    verdict, reason = _verdict(rho, p, sign)
    if dropped:
        reason += f"; {dropped} run(s) without a finite value left out"
    return {
        "claim": claim,
        "test": (
            f"Spearman rho over {x.size} runs, two-sided permutation p "
            f"({_PERMUTATIONS} resamples); predicted sign {'+' if sign > 0 else '-'}"
        ),
        "statistic": _finite_or_none(rho),
        "ci_or_p": _finite_or_none(p),
        "verdict": verdict,
        "reason": reason,
        "figure": figure,
    }


def _paired_claim(
    claim: str,
    treated: Sequence[float],
    control: Sequence[float],
    sign: int,
    figure: str,
) -> dict[str, Any]:
    """Wilcoxon signed-rank test of ``treated - control`` over matched runs."""
    diff = np.asarray(treated, float) - np.asarray(control, float)
    keep = ~np.isnan(diff)
    dropped = int((~keep).sum())
    diff = diff[keep]
    if diff.size < 2 or np.all(diff == 0):
        median, p = math.nan, math.nan
    else:
        median = float(np.median(diff))
        p = float(stats.wilcoxon(diff).pvalue)
    verdict, reason = _verdict(median, p, sign)
    if dropped:
        reason += f"; {dropped} pair(s) without a finite difference left out"
    return {
        "claim": claim,
        "test": (
            f"Wilcoxon signed-rank over {diff.size} (depth, replicate) pairs, "
            "two-sided p; statistic = median difference; predicted sign "
            f"{'+' if sign > 0 else '-'}"
        ),
        "statistic": _finite_or_none(median),
        "ci_or_p": _finite_or_none(p),
        "verdict": verdict,
        "reason": reason,
        "figure": figure,
    }


def _claims(
    runs: list[dict[str, Any]], settings: _Settings, rng: np.random.Generator
) -> list[dict[str, Any]]:
    by_key = {(r["model"], r["replicate"]): r for r in runs}

    def run(width: int, depth: int, variant: str, rep: int) -> dict[str, Any]:
        return by_key[(_Model(width, depth, variant).key, rep)]

    reps = range(settings.replicates)
    depth_runs = [
        (d, run(settings.width, d, "plain", k)) for d in settings.depths for k in reps
    ]
    width_runs = [
        (w, run(w, settings.width_depth, "plain", k))
        for w in settings.widths
        for k in reps
    ]
    rows = []
    for field, what, sign_depth in (
        ("min_cosine", "a lower final minimum gradient cosine", -1),
        ("loss", "a higher final training loss", +1),
        ("cosine_std", "final cosines spread more widely around 0", +1),
    ):
        figure = "real_data_depth"
        rows.append(
            _spearman_claim(
                f"Deeper plain MLPs (width {settings.width}) have {what}",
                [d for d, _ in depth_runs],
                [_final(r, field) for _, r in depth_runs],
                sign_depth,
                figure,
                rng,
            )
        )
    for field, what, sign_width in (
        ("min_cosine", "a higher final minimum gradient cosine", +1),
        ("loss", "a lower final training loss", -1),
        ("cosine_std", "final cosines concentrate more around 0", -1),
    ):
        rows.append(
            _spearman_claim(
                f"Wider plain MLPs (depth {settings.width_depth}) have {what}",
                [w for w, _ in width_runs],
                [_final(r, field) for _, r in width_runs],
                sign_width,
                "real_data_width",
                rng,
            )
        )
    deep = [d for d in settings.depths if d >= float(np.median(settings.depths))]
    for variant in VARIANTS[1:]:

        def matched(depths: Sequence[int], v: str = variant) -> list[tuple[Any, Any]]:
            return [
                (run(settings.width, d, v, k), run(settings.width, d, "plain", k))
                for d in depths
                for k in reps
            ]

        for depths, scope in (
            (settings.depths, "of the same depth"),
            (
                deep,
                f"of the same depth, deeper half (depth {', '.join(map(str, deep))})",
            ),
        ):
            pairs = matched(depths)
            rows.append(
                _paired_claim(
                    f"{variant} MLPs have a higher final minimum gradient cosine than "
                    f"plain MLPs {scope}",
                    [_final(a, "min_cosine") for a, _ in pairs],
                    [_final(b, "min_cosine") for _, b in pairs],
                    +1,
                    "real_data_variants",
                )
            )
        pairs = matched(settings.depths)
        rows.append(
            _paired_claim(
                f"{variant} MLPs reach a lower final training loss than plain MLPs "
                "of the same depth",
                [_final(a, "loss") for a, _ in pairs],
                [_final(b, "loss") for _, b in pairs],
                -1,
                "real_data_variants",
            )
        )
    return rows


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------


def _models(settings: _Settings) -> list[_Model]:
    models = [_Model(settings.width, d, v) for v in VARIANTS for d in settings.depths]
    models += [
        _Model(w, settings.width_depth, "plain")
        for w in settings.widths
        if _Model(w, settings.width_depth, "plain") not in models
    ]
    return models


def _select_lr(runs: list[dict[str, Any]]) -> float:
    """Learning rate of the tuning run with the lowest final training loss."""

    def final(r: dict[str, Any]) -> float:
        last = r["loss"][-1]
        return math.inf if r["diverged"] or last is None else last

    best = min(runs, key=lambda r: (final(r), r["lr"]))
    if math.isinf(final(best)):  # every rate diverged: the smallest one
        return min(r["lr"] for r in runs)
    return best["lr"]


def run_real_data(
    out_dir: pathlib.Path,
    *,
    seed: int = 0,
    quick: bool = False,
    workers: int | None = None,
) -> dict[str, Any]:
    """Train MLPs on the digits and measure gradient confusion (Figures 2 to 4).

    Models: a depth sweep of plain MLPs at fixed width, a width sweep at fixed
    depth, and the variants plain / bn / skip / bn+skip at every depth of the
    depth sweep (full run: depths 2, 4, 8, 16 at width 64; widths 16 to 256 at
    depth 8; 3 replicates; 30 epochs; ``K = 50`` pairs of ``B = 128``). The
    protocol is in the module docstring. Each trend is stated as a claim and
    tested across replicates: Spearman rank correlation with a permutation
    p-value for depth and width, Wilcoxon signed-rank test of matched
    (depth, replicate) differences for the variants (over all depths, and for
    the minimum cosine also over the deeper half of the depths, the paper's
    "deep nets"); a verdict is
    "consistent" / "violated" when ``p < 0.05`` with the predicted / opposite
    sign, else "inconclusive".

    Writes ``out_dir / "real_data.json"`` holding the returned dict (plain
    lists, floats, strings; ``None`` for non-finite values).

    Args:
        out_dir: directory for the JSON (created if missing).
        seed: master seed of all initializations, data orders and
            measurements (>= 0). Default 0.
        quick: a tiny version (seconds) for tests. Default False.
        workers: processes to spread the runs over (>= 1); ``None`` means
            ``min(2, os.cpu_count())``, or 1 when ``quick``. Results do not
            depend on it. Default None.

    Returns:
        Dict with ``settings``, ``learning_rates`` (the selected rate per
        model), ``runs`` (one dict per measured run: ``loss`` per epoch,
        ``min_cosine`` per epoch from initialization, ``cosines`` of every
        measurement), ``claims`` (rows ``claim, test, statistic, ci_or_p,
        verdict, reason, figure``), ``elapsed_seconds`` and ``workers``.

    Raises:
        ValueError: if ``seed`` is not an integer >= 0 or ``workers`` not an
            integer >= 1.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if workers is None:
        workers = 1 if quick else max(1, min(2, os.cpu_count() or 1))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    out_dir = pathlib.Path(out_dir)
    settings = QUICK if quick else FULL
    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _runner(workers) as run_all:
            models = _models(settings)
            tuning = [
                _RunSpec(m, seed, -1, lr, settings.epochs, settings.batch_size, 0)
                for m in models
                for lr in settings.learning_rates
            ]
            tuned = run_all(tuning)
            n_lr = len(settings.learning_rates)
            chosen = {
                m.key: _select_lr(tuned[i * n_lr : (i + 1) * n_lr])
                for i, m in enumerate(models)
            }
            measured = [
                _RunSpec(
                    m,
                    seed,
                    k,
                    chosen[m.key],
                    settings.epochs,
                    settings.batch_size,
                    settings.pairs,
                )
                for m in models
                for k in range(settings.replicates)
            ]
            runs = run_all(measured)
    finally:
        torch.set_num_threads(threads)
    claims = _claims(runs, settings, np.random.default_rng(seed))
    result = {
        "experiment": "real_data",
        "dataset": "sklearn.datasets.load_digits (1797 x 64, 10 classes)",
        "seed": seed,
        "quick": quick,
        "settings": asdict(settings) | {"variants": list(VARIANTS)},
        "bn_mode": "train",
        "learning_rates": chosen,
        "tuning_final_loss": {
            f"{s.model.key}@{s.lr:g}": r["loss"][-1]
            for s, r in zip(tuning, tuned, strict=True)
        },
        "runs": runs,
        "claims": claims,
        "elapsed_seconds": time.perf_counter() - started,
        "workers": workers,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "real_data.json").write_text(json.dumps(result, allow_nan=False))
    return result


def _format_claims(claims: list[dict[str, Any]]) -> str:
    lines = []
    for c in claims:
        stat = "nan" if c["statistic"] is None else f"{c['statistic']:+.3f}"
        p = "nan" if c["ci_or_p"] is None else f"{c['ci_or_p']:.3g}"
        lines.append(f"[{c['verdict']:>12}] {c['claim']}: stat {stat}, p {p}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m montecarlo._real_data OUT_DIR [--seed S] [--quick] [--figures]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--figures", action="store_true", help="also draw the figures into OUT_DIR"
    )
    args = parser.parse_args(argv)
    result = run_real_data(
        args.out_dir, seed=args.seed, quick=args.quick, workers=args.workers
    )
    print(_format_claims(result["claims"]))
    print(f"elapsed {result['elapsed_seconds']:.1f} s on {result['workers']} worker(s)")
    if args.figures:
        from figures._real_data import plot_real_data

        for path in plot_real_data(result, args.out_dir):
            print(path)


if __name__ == "__main__":
    main()
