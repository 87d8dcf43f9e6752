"""Benchmarks of the Gram matrix, the full Monte Carlo trial and their flop limit.

Run from the repository root::

    python benchmarks/bench.py            # full run, about 4-6 minutes
    python benchmarks/bench.py --quick    # smoke run, about 45 seconds

Everything is measured in the same run on this machine and printed as
markdown tables:

1. **Gram matrix** ``G_ij = <grad f_i, grad f_j>`` (tanh network, square
   loss) at ``(N, d, width, depth)`` sizes: ``theory.gram`` (numpy),
   the numba backend's compiled kernel, the naive route (``torch.func``
   ``vmap(grad)`` per-sample gradients ``J``, then ``J J^T`` block by block)
   and BackPACK (``BatchGrad`` per-sample gradients, then the same blockwise
   Gram) when it is installed. All on one thread.
2. **Flop limit**: the flops of one Gram as the kernel computes it (forward
   and backward GEMMs, ``2 m n k`` flops per product; the two Gram factors
   by ``dsyrk``, ``n (n + 1) k`` flops each) divided by numpy's float64 GEMM
   throughput on a ``512 x 512 x 512`` product measured in the same run.
3. **Full trial** (sampling, Gram, statistics) of the numba backend, trials
   per second on 1 and 2 threads, and the share of a trial spent drawing
   random numbers.
4. **Peak memory** of one Gram at ``(256, 784, 4096, 4)`` (measured in a
   subprocess), and the memory the naive route would need there.
5. **Targets**: each one met or missed, with the measured ratio.
6. **Worst-case search** (``montecarlo._adversarial``, issue 12) at the quick
   suite's shapes ``(N, d, width, depth) = (10, 10, 32, 2)``: one step of the
   full budget's search (forward, Gram, surrogate, backward, update and
   projection for 8 restarts x 64 draws, one torch thread) and the Philox
   draws of its batch, against one trial of the numba backend (one thread);
   then whole searches with their held-out estimates, at the quick suite's
   budget for each uniform statement and (full run) at the full budget, with
   the targets "full budget under a minute" and "quick budget a few seconds".
7. **Rare events** (``montecarlo._rare``, issue 13) at the quick suite's
   Theorem 4.1 shape ``(10, 10, 32, 2)`` (tanh, Gaussian ``kappa = 1``, sphere
   data, ``tanh_teacher`` labels): subset simulation of
   ``P(min_inner < -eta)`` near 1e-8 from repetitions (time, relative error
   of the 95% interval), and its cost against plain Monte Carlo at equal
   relative error, the plain cost extrapolated from the numba backend's
   trials per second on as many threads.

Times are the minimum over repeats (the machine may be shared: the minimum
is the least disturbed run). Depth is the number of hidden layers: weights
``W_0 .. W_depth``, the last ``1 x width``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# numba's BLAS is scipy's: load it before limiting threads, so the limit covers it
import scipy.linalg.cython_blas  # noqa: E402, F401
from threadpoolctl import threadpool_limits  # noqa: E402

SIZES = [
    (100, 100, 100, 2),
    (100, 100, 256, 4),
    (100, 100, 512, 8),
    (128, 784, 1024, 4),
]
QUICK_SIZES = [(100, 100, 100, 2), (100, 100, 256, 4)]
TRIAL_SIZES = [(100, 100, 256, 4), (128, 784, 1024, 4)]
MEMORY_SIZE = (256, 784, 4096, 4)
QUICK_MEMORY_SIZE = (256, 784, 1024, 4)
# targets: ratio the numba Gram must reach against each route, per size
SPEEDUP_TARGETS = {
    (100, 100, 256, 4): {"naive": 100.0, "backpack": 50.0},
    (128, 784, 1024, 4): {"naive": 300.0, "backpack": 120.0},
}
GRAM_LIMIT_TARGET = 1.5  # Gram time / flop limit
TRIAL_LIMIT_TARGET = 2.0  # full trial (2 threads) / flop limit, at (100, 100, 256, 4)
THREAD_SCALING_TARGET = 1.8
PEAK_MEMORY_TARGET = 2e9  # bytes


# --- helpers -----------------------------------------------------------------


def best_time(f: Callable[[], object], *, repeat: int, budget: float) -> float:
    """Minimum wall time of ``f()`` over up to ``repeat`` runs within ``budget`` s."""
    return best_time_cpu(f, repeat=repeat, budget=budget)[0]


def best_time_cpu(
    f: Callable[[], object], *, repeat: int, budget: float
) -> tuple[float, float]:
    """``(wall, cpu / wall)`` of the fastest of up to ``repeat`` runs of ``f()``.

    ``cpu`` is the process CPU time (all threads) of that run: below the
    thread count, other processes held the cores.
    """
    f()  # warm-up (compilation, caches)
    best, best_cpu = np.inf, 0.0
    start = time.perf_counter()
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        f()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, best_cpu = wall, cpu
        if time.perf_counter() - start > budget:
            break
    return best, best_cpu / best


def layer_sizes(d: int, width: int, depth: int) -> list[int]:
    """``[d, width, ..., width, 1]``: inputs, ``depth`` hidden layers, output."""
    return [d] + [width] * depth + [1]


def n_params(d: int, width: int, depth: int) -> int:
    """Number of weights ``P`` of the network."""
    ls = layer_sizes(d, width, depth)
    return sum(a * b for a, b in zip(ls[:-1], ls[1:], strict=True))


def gram_flops(n: int, d: int, width: int, depth: int) -> float:
    """Flops of one Gram as the numba kernel computes it.

    Forward ``Z_p = A_{p-1} W_p^T`` (every layer) and backward ``D_{p-1} =
    D_p W_p`` (``p >= 1``) are GEMMs, ``2 m n k`` flops each; the two Gram
    factors ``D_p D_p^T`` and ``A_{p-1} A_{p-1}^T`` of every layer are
    ``dsyrk`` calls, which form one triangle: ``n (n + 1) k`` flops each.
    """
    ls = layer_sizes(d, width, depth)
    pairs = list(zip(ls[:-1], ls[1:], strict=True))
    forward = sum(2 * n * a * b for a, b in pairs)
    backward = sum(2 * n * a * b for a, b in pairs[1:])
    factors = sum(n * (n + 1) * (a + b) for a, b in pairs)
    return float(forward + backward + factors)


def gemm_rate(threads: int) -> float:
    """numpy float64 GEMM flop/s on ``512 x 512 x 512``, ``threads`` BLAS threads."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((512, 512)), rng.standard_normal((512, 512))
    with threadpool_limits(threads):
        t = best_time(lambda: a @ b, repeat=30, budget=3.0)
    return 2 * 512**3 / t


def problem(n: int, d: int, width: int, depth: int, seed: int = 0):
    """Gaussian weights (Strategy 4.1, kappa = 1), data on the sphere, |labels| <= 1."""
    rng = np.random.default_rng(seed)
    ls = layer_sizes(d, width, depth)
    Ws = [
        rng.standard_normal((b, a)) / np.sqrt(a)
        for a, b in zip(ls[:-1], ls[1:], strict=True)
    ]
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.tanh(X @ rng.standard_normal(d) / np.sqrt(d))
    return Ws, X, y


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 1000 else f"{ms:.0f}"


def fmt_x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3g}x"


def gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.3g} GB"


# --- Gram routes -----------------------------------------------------------


def torch_routes():
    """``(naive, backpack)`` Gram builders; ``backpack`` is None if not installed."""
    import torch
    from torch.func import grad, vmap

    def naive(Ws, X, y):
        params = tuple(torch.from_numpy(W) for W in Ws)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

        def loss(params, x, t):
            a = x
            for W in params:
                a = torch.tanh(W @ a)
            return 0.5 * (a[0] - t) ** 2

        def build():
            grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, Xt, yt)
            n = X.shape[0]
            J = torch.cat([g.reshape(n, -1) for g in grads], dim=1)  # n x P
            return (J @ J.T).numpy()

        return build

    try:
        from backpack import backpack, extend
        from backpack.extensions import BatchGrad
    except ImportError:
        return naive, None

    def with_backpack(Ws, X, y):
        layers = []
        for W in Ws:
            lin = torch.nn.Linear(
                W.shape[1], W.shape[0], bias=False, dtype=torch.float64
            )
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W))
            layers += [lin, torch.nn.Tanh()]
        model = extend(torch.nn.Sequential(*layers))
        mse = extend(torch.nn.MSELoss(reduction="sum"))
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)[:, None]

        def build():
            for p in model.parameters():
                p.grad = None
            loss = 0.5 * mse(model(Xt), yt)
            with backpack(BatchGrad()), warnings.catch_warnings():
                # the inputs need no gradient: BackPACK's hooks say so, harmlessly
                warnings.filterwarnings("ignore", message="Full backward hook")
                loss.backward()
            n = X.shape[0]
            G = torch.zeros(n, n, dtype=torch.float64)
            for p in model.parameters():
                J = p.grad_batch.reshape(n, -1)
                G += J @ J.T
            return G.numpy()

        return build

    return naive, with_backpack


def bench_gram(sizes, quick: bool) -> list[dict]:
    """One row per size: ms per Gram of every route (torch on one thread too)."""
    import torch

    naive, with_backpack = torch_routes()
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [_bench_gram_size(size, quick, naive, with_backpack) for size in sizes]
    finally:
        torch.set_num_threads(torch_threads)


def _bench_gram_size(size, quick: bool, naive, with_backpack) -> dict:
    import psutil
    from numba.typed import List

    import theory
    from montecarlo._numba_trial import gram as numba_gram

    n, d, width, depth = size
    Ws, X, y = problem(n, d, width, depth)
    P = n_params(d, width, depth)
    row = {"size": size, "P": P, "flops": gram_flops(n, d, width, depth)}
    ref = theory.gram(Ws, X, y, activation="tanh", loss="square")
    scale = np.max(np.abs(ref))
    budget = 2.0 if quick else 6.0
    row["numpy"] = best_time(
        lambda: theory.gram(Ws, X, y, activation="tanh", loss="square"),
        repeat=50,
        budget=budget,
    )
    Wl = List(Ws)
    row["numba"] = best_time(lambda: numba_gram(Wl, X, y), repeat=50, budget=budget)
    row["err_numba"] = float(np.max(np.abs(numba_gram(Wl, X, y) - ref)) / scale)
    # the naive route holds the per-sample gradients and J (n x P float64 each)
    row["naive_bytes"] = 2 * n * P * 8
    fits = row["naive_bytes"] < 0.5 * psutil.virtual_memory().available
    for name, route in (("naive", naive), ("backpack", with_backpack)):
        if route is None or not fits:
            row[name] = None
            why = (
                "not installed" if route is None else f"needs {gb(row['naive_bytes'])}"
            )
            row[f"why_{name}"] = why
            continue
        build = route(Ws, X, y)
        G = build()
        row[f"err_{name}"] = float(np.max(np.abs(G - ref)) / scale)
        row[name] = best_time(build, repeat=20, budget=budget)
        del G, build
    print(f"  gram {size}: numba {fmt_ms(row['numba'])} ms", flush=True)
    return row


# --- full trial ------------------------------------------------------------


def random_numbers_per_trial(config) -> int:
    """Random numbers one trial draws (data, labeling function, weights)."""
    from montecarlo._rng import PhiloxStream
    from montecarlo._trial import draw_data, draw_weights

    rng = PhiloxStream((1, 2), 0)
    draw_data(config, rng)
    draw_weights(config, rng)
    return 2 * rng.block  # a Philox block gives two numbers


def bench_rng() -> dict:
    """ns per standard normal: the numba stream, and numpy's Generator for scale."""
    from montecarlo._rng import _nb_normals, _nb_state

    out = np.empty(1 << 20)
    state = _nb_state((1, 2), 0)
    t = best_time(lambda: _nb_normals(state, out), repeat=20, budget=2.0)
    gen = np.random.default_rng(0)
    t_np = best_time(lambda: gen.standard_normal(out=out), repeat=20, budget=2.0)
    return {"ns_normal": t / out.size * 1e9, "ns_normal_numpy": t_np / out.size * 1e9}


def bench_trial(sizes, quick: bool) -> list[dict]:
    import numba

    import montecarlo as mc

    backend = mc.backends.get_backend("numba")
    before = numba.get_num_threads()
    threads = [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]
    rows = []
    try:
        for n, d, width, depth in sizes:
            config = mc.Config(
                theorem="4.1",
                n=n,
                d=d,
                width=width,
                depth=depth,
                activation="tanh",
                loss="square",
                labels="tanh_teacher",
                weights="gaussian",
            )
            key = mc.samplers.stream_key(0, config.config_hash)
            numba.set_num_threads(1)
            t2 = best_time(
                lambda c=config, k=key: backend.run(c, k, np.arange(2), None),
                repeat=2,
                budget=5.0,
            )
            # about 0.3 s (quick) or 1 s per measured run on one thread
            m = int(max(2, min(400, (0.3 if quick else 1.0) / (t2 / 2))))
            row = {
                "size": (n, d, width, depth),
                "flops": gram_flops(n, d, width, depth),
            }
            for t in threads:
                numba.set_num_threads(t)
                trials = np.arange(m * t)  # m trials per thread
                secs, cpu = best_time_cpu(
                    lambda c=config, k=key, tr=trials: backend.run(c, k, tr, None),
                    repeat=3 if quick else 5,
                    budget=4.0 if quick else 12.0,
                )
                row[f"tps{t}"] = trials.size / secs
                row[f"cpu{t}"] = cpu
            row["numbers"] = random_numbers_per_trial(config)
            rows.append(row)
            print(
                f"  trial {row['size']}: {row['tps1']:.3g} trials/s on 1 thread",
                flush=True,
            )
    finally:
        numba.set_num_threads(before)
    return rows


# --- peak memory -----------------------------------------------------------


def peak_memory_child(route: str, size: tuple[int, int, int, int]) -> None:
    """In a fresh process: the memory one Gram adds to its inputs (printed as JSON).

    Two measures: the peak resident set size above the RSS before the call
    (``VmHWM`` after resetting it, so the parent's footprint does not count),
    and ``tracemalloc``'s peak (numpy's and numba's allocations are traced).
    """
    import tracemalloc

    n, d, width, depth = size
    rng = np.random.default_rng(0)
    ls = layer_sizes(d, width, depth)
    Ws = []
    for a, b in zip(ls[:-1], ls[1:], strict=True):
        W = np.empty((b, a))
        rng.standard_normal(out=W)  # in place: no temporary inflates the baseline
        W *= 1.0 / np.sqrt(a)
        Ws.append(W)
    X = np.empty((n, d))
    rng.standard_normal(out=X)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.tanh(X[:, 0])
    # a medium problem first: compiled code loaded, BLAS buffers allocated
    small = problem(64, 64, 512, depth)
    if route == "numba":
        from numba.typed import List

        from montecarlo._numba_trial import gram as numba_gram

        numba_gram(List(small[0]), small[1], small[2])
        Wl = List(Ws)

        def run():
            return numba_gram(Wl, X, y)
    else:
        import theory

        theory.gram(*small, activation="tanh", loss="square")

        def run():
            return theory.gram(Ws, X, y, activation="tanh", loss="square")

    def status(field: str) -> int:  # bytes, from /proc/self/status
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith(field + ":"))
        return int(line.split()[1]) * 1024

    rss0 = status("VmRSS")
    try:  # reset the high-water mark VmHWM to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # then VmHWM >= the true peak: the measure is an upper bound
    tracemalloc.start()
    t0 = time.perf_counter()
    G = run()
    secs = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    result = {
        "route": route,
        "extra_rss": max(0, status("VmHWM") - rss0),
        "tracemalloc_peak": traced,
        "inputs": sum(W.nbytes for W in Ws) + X.nbytes + y.nbytes,
        "output": G.nbytes,
        "seconds": secs,
    }
    print(json.dumps(result))


def bench_memory(size) -> list[dict]:
    out = []
    for route in ("numpy", "numba"):
        cmd = [
            sys.executable,
            __file__,
            "--peak-memory-child",
            route,
            *(str(v) for v in size),
        ]
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=600, check=True
        )
        out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return out


# --- worst-case search ------------------------------------------------------

FULL_SEARCH_TARGET = 60.0  # s, one configuration at the full budget (issue 12)
QUICK_SEARCH_TARGET = 5.0  # s, one configuration at the quick suite's budget
SEARCH_TRIALS = 400  # held-out trials, as the quick suite's configurations


def search_cases() -> dict:
    """The quick suite's configuration of each uniform statement (and norm)."""
    import montecarlo as mc

    spec = mc.load_spec("quick")

    def pick(group, **fields):
        return next(
            c
            for c in spec.groups[group]
            if all(getattr(c, k) == v for k, v in fields.items())
        )

    return {
        "Theorem 5.1": (pick("t51_depth", depth=2), None),
        "Corollary 5.1, operator": (pick("c51_radius", r=1.0), "operator"),
        "Corollary 5.1, Frobenius": (pick("c51_radius", r=1.0), "frobenius"),
        "Theorem 4.1 part 1": (pick("t41_fixed"), None),
    }


def bench_search(quick: bool) -> dict:
    """One search step and one numba trial at (10, 10, 32, 2); whole searches."""
    import numba
    import torch

    import montecarlo as mc
    from montecarlo import _adversarial as adv
    from theory._torch_gram import gram_torch

    cases = search_cases()
    config, _ = cases["Theorem 5.1"]
    key = mc.samplers.stream_key(0, config.config_hash)
    backend = mc.backends.get_backend("numba")
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        trials = np.arange(400)
        trial = (
            best_time(
                lambda: backend.run(config, key, trials, None), repeat=5, budget=4.0
            )
            / trials.size
        )
    finally:
        numba.set_num_threads(before)

    budget = adv.FULL_BUDGET
    R, m, steps = budget.restarts, budget.batch, 20
    indices = adv.SEARCH_TRIAL_BASE + np.arange(m)
    X, y = (torch.from_numpy(a) for a in adv._data_batch(config, key, indices))
    start, _ = adv._start_weights(config, key, R)
    start = [torch.from_numpy(W) for W in start]
    net = dict(activation=config.activation, loss=config.loss)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ascent = best_time(
            lambda: adv.projected_ascent(
                start,
                lambda p, k: gram_torch([W[:, None] for W in p], X, y, **net),
                adv.project_spectral,
                dataclasses.replace(budget, steps=steps),
            ),
            repeat=3,
            budget=10.0,
        )
    finally:
        torch.set_num_threads(threads)
    draws = best_time(
        lambda: adv._data_batch(config, key, indices), repeat=10, budget=3.0
    )
    row = {"trial": trial, "step": ascent / steps, "draws": draws, "grams": R * m}
    eta = mc.load_spec("quick").eta.values()
    runs = [("quick", adv.QUICK_BUDGET)] + ([] if quick else [("full", budget)])
    row["searches"] = []
    for label, b in runs:
        for name, (cfg, norm) in cases.items():
            if label == "full" and name == "Corollary 5.1, Frobenius":
                continue  # same cost as the operator norm
            c0, t0 = time.process_time(), time.perf_counter()
            res = adv.adversarial_cstar(
                cfg, eta, 2020, b, norm=norm, trials=SEARCH_TRIALS
            )
            secs, cpu = time.perf_counter() - t0, time.process_time() - c0
            row["searches"].append(
                {
                    "budget": label,
                    "case": name,
                    "seconds": secs,
                    "cpu": cpu,
                    "search": res.search.seconds,
                    "c_adv": res.adversarial.c_star,
                    "c_rand": res.random.c_star,
                }
            )
            print(f"  search {name} ({label} budget): {secs:.1f} s", flush=True)
    return row


def report_search(row: dict) -> str:
    """The search section: step vs trial, whole searches, targets."""
    lines = []
    add = lines.append
    per_gram = row["step"] / row["grams"]
    add(
        "Worst-case search at (N, d, width, depth) = (10, 10, 32, 2), one thread "
        "(torch for the search, numba for the trial)"
    )
    add("")
    add("| quantity | time | / one numba trial |")
    add("|---|---|---|")
    add(
        "| one numba trial (draws, Gram, statistics) | "
        f"{row['trial'] * 1e6:.0f} us | 1x |"
    )
    add(
        f"| one search step, {row['grams']} Grams (forward, Gram, backward, "
        f"update, projection) | {fmt_ms(row['step'])} ms | "
        f"{row['step'] / row['trial']:.0f}x |"
    )
    add(
        f"| the same step per Gram | {per_gram * 1e6:.0f} us | "
        f"{per_gram / row['trial']:.2f}x |"
    )
    add(
        f"| Philox draws of the step's {row['grams'] // 8} data sets (numpy) | "
        f"{fmt_ms(row['draws'])} ms | {row['draws'] / row['trial']:.0f}x |"
    )
    add("")
    add(
        f"Whole searches with held-out estimates ({SEARCH_TRIALS} trials each side; "
        "c* of Theorem 5.1's form, adversarial vs random ensemble)"
    )
    add("")
    add(
        "| statement | budget | total (CPU) | of which search | c* adversarial | "
        "c* random |"
    )
    add("|---|---|---|---|---|---|")
    for r in row["searches"]:
        add(
            f"| {r['case']} | {r['budget']} | {r['seconds']:.1f} s "
            f"({r['cpu']:.1f} s) | {r['search']:.1f} s | {r['c_adv']:.3g} | "
            f"{r['c_rand']:.3g} |"
        )
    add("")
    add("| target | measured | |")
    add("|---|---|---|")
    for label, goal in (("quick", QUICK_SEARCH_TARGET), ("full", FULL_SEARCH_TARGET)):
        times = [r["seconds"] for r in row["searches"] if r["budget"] == label]
        if not times:
            add(f"| {label}-budget search <= {goal:g} s | not measured | - |")
            continue
        worst = max(times)
        ok = "met" if worst <= goal else "MISSED"
        add(
            f"| {label}-budget search with estimates <= {goal:g} s (slowest, wall) | "
            f"{worst:.1f} s | {ok} |"
        )
    return "\n".join(lines)


# --- rare events -------------------------------------------------------------

RARE_CONFIG = dict(
    theorem="4.1",
    n=10,
    d=10,
    width=32,
    depth=2,
    activation="tanh",
    loss="square",
    weights="gaussian",
    kappa=1.0,
    data="sphere",
    labels="tanh_teacher",
)
RARE_ETA = 3.3  # P(min_inner < -eta) is about 1e-8 at RARE_CONFIG
RARE_PARTICLES = 2000
RARE_REPETITIONS = 50  # expected relative error about 0.23 (R <= N / 40: bias small)
RARE_TIME_TARGET = 120.0  # s, on 2 cores
RARE_ERROR_TARGET = 0.3  # relative half-width of the 95% interval
RARE_RATIO_TARGET = 1000.0  # plain Monte Carlo cost / rare-event cost


def plain_trials_for(
    p: float, relative_error: float, confidence: float = 0.95
) -> float:
    """Plain trials whose ``confidence`` interval of ``p`` has this relative error.

    Normal approximation of the binomial: ``T = z^2 (1 - p) / (p h^2)``,
    ``z`` the two-sided normal quantile and ``h`` the relative half-width.
    """
    from scipy import stats

    z = stats.norm.ppf(0.5 + confidence / 2)
    return float(z**2 * (1.0 - p) / (p * relative_error**2))


def bench_rare(quick: bool) -> dict:
    """Plain trials per second and a rare-event estimate near 1e-8, 2 threads."""
    import numba

    from montecarlo._backends import get_backend
    from montecarlo._config import Config
    from montecarlo._rare import SubsetSettings, rare_event_estimate
    from montecarlo._rng import stream_key

    config = Config(**RARE_CONFIG)
    backend = get_backend("numba")
    before = numba.get_num_threads()
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(threads)
    try:
        key = stream_key(0, config.config_hash)
        trials = np.arange(20_000 if quick else 100_000)
        secs = best_time(
            lambda: backend.run(config, key, trials, None), repeat=3, budget=10.0
        )
        settings = SubsetSettings(particles=RARE_PARTICLES)
        reps = 4 if quick else RARE_REPETITIONS
        rare_event_estimate(  # warm-up: compilation
            config, 1.0, seed=1, repetitions=2, settings=SubsetSettings(particles=50)
        )
        c0, t0 = time.process_time(), time.perf_counter()
        est = rare_event_estimate(
            config, RARE_ETA, seed=0, repetitions=reps, settings=settings
        )
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        numba.set_num_threads(before)
    p, h = est.estimate[0], est.relative_error[0]
    tps = trials.size / secs
    plain = plain_trials_for(p, h)
    row = {
        "threads": threads,
        "tps": tps,
        "p": p,
        "ci": (est.ci_low[0], est.ci_high[0]),
        "error": h,
        "seconds": seconds,
        "cpu": cpu / seconds,
        "repetitions": reps,
        "evaluations": est.evaluations,
        "plain_trials": plain,
        "plain_seconds": plain / tps,
        "quick": quick,
    }
    print(f"  rare event: P = {p:.3g} +- {100 * h:.0f}% in {seconds:.1f} s", flush=True)
    return row


def report_rare(row: dict) -> str:
    """The rare-event section: the estimate, its cost, the ratio, targets."""
    lines = []
    add = lines.append
    size = ", ".join(str(RARE_CONFIG[k]) for k in ("n", "d", "width", "depth"))
    lo, hi = row["ci"]
    ratio = row["plain_seconds"] / row["seconds"]
    add(
        f"Rare events at (N, d, width, depth) = ({size}), Theorem 4.1 (tanh, "
        f"Gaussian kappa = 1, sphere data): P(min_inner < -{RARE_ETA:g}), "
        f"{row['threads']} threads"
    )
    add("")
    add("| route | estimate (95% interval) | relative error | cost | time |")
    add("|---|---|---|---|---|")
    add(
        f"| subset simulation, N = {RARE_PARTICLES}, {row['repetitions']} "
        f"repetitions | {row['p']:.3g} ({lo:.3g}, {hi:.3g}) | "
        f"{100 * row['error']:.0f}% | {row['evaluations']:,} trials | "
        f"{row['seconds']:.1f} s (CPU {row['cpu']:.2f}) |"
    )
    add(
        f"| plain Monte Carlo at equal relative error (extrapolated: "
        f"{row['tps']:,.0f} trials/s) | - | {100 * row['error']:.0f}% | "
        f"{row['plain_trials']:.3g} trials | {row['plain_seconds']:.3g} s |"
    )
    add("")
    add("| target | measured | |")
    add("|---|---|---|")
    if row["quick"]:
        add("| rare-event targets | not measured (quick: 4 repetitions) | - |")
        return "\n".join(lines)
    for name, value, goal, higher in (
        (f"relative error at {row['p']:.2g} <=", row["error"], RARE_ERROR_TARGET, 0),
        ("time on 2 cores, s <=", row["seconds"], RARE_TIME_TARGET, 0),
        ("cost ratio vs plain Monte Carlo >=", ratio, RARE_RATIO_TARGET, 1),
    ):
        ok = value >= goal if higher else value <= goal
        add(f"| {name} {goal:g} | {value:.3g} | {'met' if ok else 'MISSED'} |")
    return "\n".join(lines)


# --- report ----------------------------------------------------------------


def environment() -> str:
    import numba
    import torch

    try:
        from importlib.metadata import version

        bp = version("backpack-for-pytorch")
    except ImportError:
        bp = "not installed"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores; numpy {np.__version__}, "
        f"numba {numba.__version__}, torch {torch.__version__}, backpack {bp}; "
        f"load average {load}"
    )


def report(gemm: dict, grams, rng, trials, memory, mem_size, quick: bool) -> str:
    lines = []
    add = lines.append
    add(
        f"GEMM 512^3 float64 (numpy): {gemm[1] / 1e9:.1f} GFLOP/s on 1 thread, "
        f"{gemm[2] / 1e9:.1f} GFLOP/s on 2 threads"
    )
    add("")
    add(
        "Gram matrix, one thread (ms; speed-up of the numba kernel in brackets; "
        "limit = kernel flops / 1-thread GEMM rate)"
    )
    add("")
    add(
        "| N, d, width, depth | P | numpy | numba | naive vmap | BackPACK | "
        "flop limit | numba / limit |"
    )
    add("|---|---|---|---|---|---|---|---|")
    for r in grams:
        limit = r["flops"] / gemm[1]

        def vs(name, r=r):
            if r.get(name) is None:
                return f"not run ({r[f'why_{name}']})"
            return f"{fmt_ms(r[name])} ({r[name] / r['numba']:.0f}x)"

        add(
            f"| {', '.join(map(str, r['size']))} | {r['P']:,} | {fmt_ms(r['numpy'])} | "
            f"{fmt_ms(r['numba'])} | {vs('naive')} | {vs('backpack')} | "
            f"{fmt_ms(limit)} | {r['numba'] / limit:.2f}x |"
        )
    add("")
    add(
        f"Random numbers: {rng['ns_normal']:.2f} ns per normal (Philox4x32-10 + "
        f"Box-Muller, compiled); numpy Generator.standard_normal: "
        f"{rng['ns_normal_numpy']:.2f} ns"
    )
    add("")
    add(
        "Full trial, numba backend (sampling, Gram, statistics); limit = Gram flops "
        "/ GEMM rate on as many threads; CPU = process CPU time / wall time of the "
        "run (below the thread count: other processes held the cores)"
    )
    add("")
    add(
        "| N, d, width, depth | trials/s 1 thread | trials/s 2 threads (CPU) | "
        "2 / 1 threads | normals per trial | RNG share (1 thread) | "
        "trial / limit (1 thread) | trial / limit (2 threads) |"
    )
    add("|---|---|---|---|---|---|---|---|")
    for r in trials:
        rng_share = r["numbers"] * rng["ns_normal"] * 1e-9 * r["tps1"]
        two = r.get("tps2")
        tps2 = "-" if two is None else f"{two:.1f} ({r['cpu2']:.2f})"
        scaling = "-" if two is None else f"{two / r['tps1']:.2f}x"
        limit1 = gemm[1] / r["flops"] / r["tps1"]
        limit2 = "-" if two is None else f"{gemm[2] / r['flops'] / two:.2f}x"
        add(
            f"| {', '.join(map(str, r['size']))} | {r['tps1']:.1f} | {tps2} | "
            f"{scaling} | {r['numbers']:,} | {100 * rng_share:.0f}% | "
            f"{limit1:.2f}x | {limit2} |"
        )
    add("")
    n, d, width, depth = mem_size
    naive = n * n_params(d, width, depth) * 8
    add(
        f"Peak memory of one Gram at (N, d, width, depth) = {mem_size}"
        f"{' (quick: reduced size)' if quick else ''}: weights and data "
        f"{gb(memory[0]['inputs'])}; the naive route would need J = N x P float64 "
        f"= {gb(naive)} (not run)"
    )
    add("")
    add("| route | extra peak RSS | tracemalloc peak | time |")
    add("|---|---|---|---|")
    for m in memory:
        add(
            f"| {m['route']} | {gb(m['extra_rss'])} | {gb(m['tracemalloc_peak'])} | "
            f"{m['seconds']:.2f} s |"
        )
    add("")
    add("Targets")
    add("")
    add("| target | measured | |")
    add("|---|---|---|")

    def target(name, value, goal, higher_is_better=True):
        if value is None:
            add(f"| {name} | not measured | - |")
            return
        ok = value >= goal if higher_is_better else value <= goal
        sign = ">=" if higher_is_better else "<="
        add(f"| {name} {sign} {goal:g} | {value:.3g} | {'met' if ok else 'MISSED'} |")

    by_size = {r["size"]: r for r in grams}
    for size, goals in SPEEDUP_TARGETS.items():
        r = by_size.get(size)
        for route, goal in goals.items():
            ratio = None if r is None or r.get(route) is None else r[route] / r["numba"]
            target(f"Gram speed-up vs {route} at {size}", ratio, goal)
    for size in SPEEDUP_TARGETS:
        r = by_size.get(size)
        ratio = None if r is None else r["numba"] / (r["flops"] / gemm[1])
        target(f"Gram / flop limit at {size}", ratio, GRAM_LIMIT_TARGET, False)
    t = {r["size"]: r for r in trials}.get((100, 100, 256, 4))
    ratio = None if t is None or "tps2" not in t else gemm[2] / t["flops"] / t["tps2"]
    target(
        "full trial (2 threads) / flop limit at (100, 100, 256, 4)",
        ratio,
        TRIAL_LIMIT_TARGET,
        False,
    )
    ratio = None if t is None or "tps2" not in t else t["tps2"] / t["tps1"]
    target(
        "2 threads / 1 thread, full trial at (100, 100, 256, 4)",
        ratio,
        THREAD_SCALING_TARGET,
    )
    peak = max(m["extra_rss"] for m in memory) / 1e9
    target(
        f"peak memory of one Gram at {mem_size}, GB",
        peak,
        PEAK_MEMORY_TARGET / 1e9,
        False,
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print the tables; returns the exit code."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (~45 s): two small sizes, reduced memory case, "
        "quick-budget searches only",
    )
    p.add_argument(
        "--peak-memory-child",
        nargs=5,
        metavar=("ROUTE", "N", "D", "W", "DEPTH"),
        help=argparse.SUPPRESS,
    )
    a = p.parse_args(argv)
    if a.peak_memory_child:
        route, *size = a.peak_memory_child
        peak_memory_child(route, tuple(int(v) for v in size))
        return 0
    t0 = time.perf_counter()
    print(environment(), flush=True)
    gemm = {1: gemm_rate(1), 2: gemm_rate(2)}
    with threadpool_limits(1):
        grams = bench_gram(QUICK_SIZES if a.quick else SIZES, a.quick)
        rng = bench_rng()
    trials = bench_trial(TRIAL_SIZES[:1] if a.quick else TRIAL_SIZES, a.quick)
    mem_size = QUICK_MEMORY_SIZE if a.quick else MEMORY_SIZE
    memory = bench_memory(mem_size)
    search = bench_search(a.quick)
    rare = bench_rare(a.quick)
    print()
    print(report(gemm, grams, rng, trials, memory, mem_size, a.quick))
    print()
    print(report_search(search))
    print()
    print(report_rare(rare))
    print(f"\n(benchmark run took {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
