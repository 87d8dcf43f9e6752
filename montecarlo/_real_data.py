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
- measurement: :func:`theory.torch.minibatch_confusion` with ``K`` pairs of disjoint
  mini-batches of ``B = 128``, batch norm in train mode (the gradients SGD
  steps along), at initialization and after each epoch;
- replicates: independent seeds (initialization, data order, measurement).

Each run is a pure function of its specification; runs are spread over worker
processes (one torch thread each), and the results do not depend on how many.
Every finished run is stored at once in ``OUT/real_data/runs/<run_id>.json``
(:mod:`montecarlo._runs`), so a re-run resumes; each epoch prints one progress
line, and Ctrl-C or SIGTERM leave no worker process or semaphore behind.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from montecarlo._runs import (
    RunStore,
    Task,
    local_runner,
    run_tasks,
    sigterm_as_interrupt,
    spec_hash,
)
from theory._torch_confusion import minibatch_confusion

__all__ = ["run_real_data"]

VARIANTS = ("plain", "bn", "skip", "bn+skip")
_PROTOCOL = 1  # part of every run's hash; raise it when the protocol changes


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

    def content(self) -> dict[str, Any]:
        """Plain JSON values: what ``run_id`` hashes."""
        return {"experiment": "real_data", "protocol": _PROTOCOL} | asdict(self)

    @property
    def run_id(self) -> str:
        return spec_hash(self.content())


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


def _train(spec: _RunSpec, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train one model with SGD; measure confusion each epoch if ``pairs > 0``.

    Returns plain values: per-epoch mean mini-batch training loss (``E``
    entries), per-epoch minimum cosine (``E + 1`` entries, index 0 at
    initialization) and the cosines of every measurement; ``None`` where a value
    is not finite. A run whose loss becomes non-finite stops (``diverged``).
    ``log`` receives one line per finished epoch.
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
    started = time.perf_counter()
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
        elif spec.pairs:
            cosines.append(measure_now())
        if log is not None:
            line = f"{spec.model.key} " + (
                f"tuning lr {spec.lr:g}"
                if spec.replicate < 0
                else f"rep {spec.replicate} lr {spec.lr:g}"
            )
            line += f": epoch {epoch + 1}/{spec.epochs} loss {mean:.4g}"
            if spec.pairs and not diverged:
                low = min((c for c in cosines[-1] if c is not None), default=math.nan)
                line += f" min cos {low:+.3f}"
            log(line + f" ({time.perf_counter() - started:.1f} s)")
        if diverged:
            break
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


def _task(payload: tuple[_RunSpec, bool]) -> dict[str, Any]:
    """One run as a task of :mod:`montecarlo._runs` (prints its epochs if asked)."""
    spec, progress = payload
    log = (lambda line: print(f"  {line}", flush=True)) if progress else None
    return _train(spec, log)


def _cost(spec: _RunSpec) -> float:
    """Rough relative run time: layers x width x passes (batch norm ~1.6x)."""
    m = spec.model
    passes = spec.epochs * (1 + 2 * spec.pairs / 14)
    return m.depth * (m.width + 64) * passes * (1.6 if "bn" in m.variant else 1.0)


# ---------------------------------------------------------------------------
# claims
# ---------------------------------------------------------------------------


def _final(run: dict[str, Any], field: str) -> float | None:
    """Last value of a run's curve; ``None`` if the run diverged or has none."""
    if run["diverged"]:
        return None
    if field == "cosine_std":
        values = [c for c in run["cosines"][-1] if c is not None]
        return float(np.std(values)) if len(values) > 1 else None
    value = run[field][-1]
    return None if value is None else float(value)


_METRICS = {
    "loss": "final_train_loss",
    "min_cosine": "final_min_cosine",
    "cosine_std": "final_cosine_spread",
}


def _claims(
    runs: list[dict[str, Any]], settings: _Settings
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The claims with their directions, and per claim the arrays its test needs.

    The same schema as the CNN experiment (:mod:`montecarlo._cnn_experiment`),
    turned into claim rows by :mod:`montecarlo.claims` (no test is run
    here). A diverged run has no final value (``None``); its training loss
    ranks worst (``missing = "worst"``), its other metrics are left out.
    The "deeper half" comparisons of the variants' minimum cosine were added
    after a first run and are marked so (``prespecified = False``).
    """
    by_key = {(r["model"], r["replicate"]): r for r in runs}

    def run(width: int, depth: int, variant: str, rep: int) -> dict[str, Any]:
        return by_key[(_Model(width, depth, variant).key, rep)]

    reps = range(settings.replicates)
    specs: list[dict[str, Any]] = []
    data: dict[str, dict[str, Any]] = {}

    def add(spec: dict[str, Any], arrays: dict[str, Any]) -> None:
        spec.setdefault("prespecified", True)
        spec["missing"] = "worst" if spec["metric"] == "final_train_loss" else "drop"
        specs.append(spec)
        data[spec["id"]] = arrays

    sweeps = (
        (
            "depth",
            settings.depths,
            lambda d, k: run(settings.width, d, "plain", k),
            f"plain MLPs (width {settings.width})",
        ),
        (
            "width",
            settings.widths,
            lambda w, k: run(w, settings.width_depth, "plain", k),
            f"plain MLPs (depth {settings.width_depth})",
        ),
    )
    words = {
        ("depth", "min_cosine"): (
            "decreasing",
            "Deeper {who} end with a lower minimum gradient cosine",
        ),
        ("depth", "loss"): (
            "increasing",
            "Deeper {who} end with a higher training loss",
        ),
        ("depth", "cosine_std"): (
            "increasing",
            "Deeper {who} end with cosines spread more widely around 0",
        ),
        ("width", "min_cosine"): (
            "increasing",
            "Wider {who} end with a higher minimum gradient cosine",
        ),
        ("width", "loss"): ("decreasing", "Wider {who} end with a lower training loss"),
        ("width", "cosine_std"): (
            "decreasing",
            "Wider {who} end with cosines concentrated more around 0",
        ),
    }
    for axis, values, get, who in sweeps:
        sel = [(v, get(v, k)) for v in values for k in reps]
        for field in ("min_cosine", "loss", "cosine_std"):
            direction, text = words[(axis, field)]
            add(
                {
                    "id": f"{axis}_{field}",
                    "statement": text.format(who=who),
                    "axis": axis,
                    "metric": _METRICS[field],
                    "direction": direction,
                    "test": "spearman",
                },
                {"x": [v for v, _ in sel], "y": [_final(r, field) for _, r in sel]},
            )
    deep = [d for d in settings.depths if d >= float(np.median(settings.depths))]
    for variant in VARIANTS[1:]:
        for depths, scope, pre in (
            (settings.depths, "", True),
            (deep, f", deeper half (depth {', '.join(map(str, deep))})", False),
        ):
            pairs = [
                (run(settings.width, d, variant, k), run(settings.width, d, "plain", k))
                for d in depths
                for k in reps
            ]
            add(
                {
                    "id": f"{variant}_min_cosine{'' if pre else '_deep'}",
                    "statement": f"{variant} MLPs end with a higher minimum gradient "
                    f"cosine than plain MLPs of the same depth{scope}",
                    "axis": "variant",
                    "metric": "final_min_cosine",
                    "direction": "greater",
                    "test": "wilcoxon",
                    "treated": variant,
                    "control": "plain",
                    "prespecified": pre,
                },
                {
                    "treated": [_final(a, "min_cosine") for a, _ in pairs],
                    "control": [_final(b, "min_cosine") for _, b in pairs],
                },
            )
        pairs = [
            (run(settings.width, d, variant, k), run(settings.width, d, "plain", k))
            for d in settings.depths
            for k in reps
        ]
        add(
            {
                "id": f"{variant}_loss",
                "statement": f"{variant} MLPs reach a lower final "
                "training loss than plain MLPs of the same depth",
                "axis": "variant",
                "metric": "final_train_loss",
                "direction": "less",
                "test": "wilcoxon",
                "treated": variant,
                "control": "plain",
            },
            {
                "treated": [_final(a, "loss") for a, _ in pairs],
                "control": [_final(b, "loss") for _, b in pairs],
            },
        )
    return specs, data


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
    fresh: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train MLPs on the digits and measure gradient confusion (Figures 2 to 4).

    Models: a depth sweep of plain MLPs at fixed width, a width sweep at fixed
    depth, and the variants plain / bn / skip / bn+skip at every depth of the
    depth sweep (full run: depths 2, 4, 8, 16 at width 64; widths 16 to 256 at
    depth 8; 3 replicates; 30 epochs; ``K = 50`` pairs of ``B = 128``). The
    protocol is in the module docstring. Each trend is stated as a claim
    (Spearman across replicates for depth and width; Wilcoxon signed-rank of
    matched (depth, replicate) differences for the variants, over all depths
    and, for the minimum cosine, over the deeper half too) and tested by
    :mod:`montecarlo.claims`.

    Writes ``out_dir / "real_data.json"`` holding the returned dict (plain
    lists, floats, strings; ``None`` for non-finite values). Each finished run
    is stored at once in ``out_dir / "real_data" / "runs"``; a re-run computes
    only the missing runs and returns the same result (but ``elapsed_seconds``).

    Args:
        out_dir: directory for the JSON (created if missing).
        seed: master seed of all initializations, data orders and
            measurements (>= 0). Default 0.
        quick: a tiny version (seconds) for tests. Default False.
        workers: processes to spread the runs over (>= 1); ``None`` means
            ``min(2, os.cpu_count())``, or 1 when ``quick``. Results do not
            depend on it. Default None.
        fresh: discard the stored runs first. Default False.
        progress: print one line per finished epoch of every run (from the
            process running it) and one per stored run. Default True.

    Returns:
        Dict with ``settings``, ``learning_rates`` (the selected rate per
        model), ``runs`` (one dict per measured run: ``loss`` per epoch,
        ``min_cosine`` per epoch from initialization, ``cosines`` of every
        measurement), ``prespecified_claims`` and ``claim_data`` (the claims
        with their directions and the arrays their tests need, turned into
        rows by :mod:`montecarlo.claims`), ``elapsed_seconds`` and ``workers``.

    Raises:
        ValueError: if ``seed`` is not an integer >= 0 or ``workers`` not an
            integer >= 1.
        KeyboardInterrupt: on Ctrl-C or SIGTERM; finished runs stay stored and
            no worker process is left behind.
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
    store = RunStore(out_dir / "real_data" / "runs")
    if fresh:
        store.clear()

    def log(line: str) -> None:
        if progress:
            print(f"[real_data] {line}", flush=True)

    def task(spec: _RunSpec) -> Task:
        label = f"{spec.model.key} " + (
            f"tuning lr {spec.lr:g}" if spec.replicate < 0 else f"rep {spec.replicate}"
        )
        return Task(
            spec.run_id, spec.content(), _task, (spec, progress), label, _cost(spec)
        )

    with sigterm_as_interrupt(), local_runner(workers) as runner:
        models = _models(settings)
        tuning = [
            _RunSpec(m, seed, -1, lr, settings.epochs, settings.batch_size, 0)
            for m in models
            for lr in settings.learning_rates
        ]
        log(f"step-size tuning: {len(tuning)} runs; stored in {store.root}")
        tuned = [
            r["result"]
            for r in run_tasks([task(s) for s in tuning], store, runner, log=log)
        ]
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
        log(f"measured runs: {len(measured)}")
        runs = [
            r["result"]
            for r in run_tasks([task(s) for s in measured], store, runner, log=log)
        ]
    specs, data = _claims(runs, settings)
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
        "prespecified_claims": specs,
        "claim_data": data,
        "elapsed_seconds": time.perf_counter() - started,
        "workers": workers,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "real_data.json").write_text(json.dumps(result, allow_nan=False))
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m montecarlo._real_data OUT_DIR [--seed S] [--quick] [--figures]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--fresh", action="store_true", help="discard stored runs (default: resume)"
    )
    parser.add_argument(
        "--figures", action="store_true", help="also draw the figures into OUT_DIR"
    )
    args = parser.parse_args(argv)
    result = run_real_data(
        args.out_dir,
        seed=args.seed,
        quick=args.quick,
        workers=args.workers,
        fresh=args.fresh,
    )
    from montecarlo.claims._section7 import section7_claims

    for c in section7_claims(result, source="real_data"):
        print(f"[{c.verdict:>12}] {c.claim}: {c.statistic}")
    print(f"elapsed {result['elapsed_seconds']:.1f} s on {result['workers']} worker(s)")
    if args.figures:
        from figures._real_data import plot_real_data

        for path in plot_real_data(result, args.out_dir):
            print(path)


if __name__ == "__main__":
    main()
