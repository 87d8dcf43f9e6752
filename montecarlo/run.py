"""``python -m montecarlo.run``: run a sweep spec and report, theorem by theorem.

With no arguments it runs the bundled ``quick`` suite (every theorem, a small
SGD check) on the numba backend into ``results/quick``, prints one table per
theorem (empirical probability with its confidence interval, the bound at
``c*``, and ``c*``), and writes the figures and ``report.md``/``report.html``.
Re-running the same command resumes an interrupted run; ``--fresh`` discards
stored results. ``python -m montecarlo.run --list`` shows the bundled specs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from montecarlo._config import Spec
    from montecarlo._estimates import ConfigSummary

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (documented in ``--help``)."""
    from montecarlo._backends import BACKENDS, DEFAULT_BACKEND

    p = argparse.ArgumentParser(
        prog="python -m montecarlo.run",
        description=(
            "Monte Carlo check of the gradient-confusion theorems "
            "(Sankararaman et al., ICML 2020). Runs SPEC (a bundled spec name or a "
            "TOML file), stores every trial, prints a table per theorem and writes "
            "figures and report.md/report.html into the results directory."
        ),
    )
    p.add_argument(
        "--spec",
        default="quick",
        help="bundled spec name (see --list) or path to a TOML spec (default: quick)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results directory (default: results/<spec name>); a run of the same "
        "spec there is resumed",
    )
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help="override the number of trials of every configuration",
    )
    p.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        default=DEFAULT_BACKEND,
        help=f"how trials are computed (default: {DEFAULT_BACKEND}); numpy is the "
        "slow readable reference, numba the fused parallel one, cuda the GPU one "
        "(NUMBA_ENABLE_CUDASIM=1 runs it in numba's simulator)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="run seed (default: the spec's)"
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="discard stored results in --out and start over (default: resume)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="numba threads for the trials (default: all cores)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run the chunks on a new local Dask cluster of N single-threaded "
        "worker processes (default: in this process)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the chunks on the running Dask cluster whose scheduler is at "
        "ADDRESS, e.g. tcp://10.0.0.5:8786 (from `dask scheduler` or "
        "dask-jobqueue); results are written here, by this process",
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=64,
        help="trials per chunk, the unit written atomically (default: 64)",
    )
    p.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        help="confidence level of intervals and of c* (default: 0.95)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--no-report", action="store_true", help="skip figures and report.md/html"
    )
    p.add_argument(
        "--list", action="store_true", help="list the bundled specs and exit"
    )
    return p


def _check_args(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    if a.trials is not None and a.trials < 1:
        p.error(f"--trials must be an integer >= 1, got {a.trials}")
    if a.seed is not None and a.seed < 0:
        p.error(f"--seed must be an integer >= 0, got {a.seed}")
    if a.threads is not None and not 1 <= a.threads <= (os.cpu_count() or 1):
        p.error(
            f"--threads must be an integer in [1, {os.cpu_count()}], got {a.threads}"
        )
    if a.workers is not None and a.workers < 1:
        p.error(f"--workers must be an integer >= 1, got {a.workers}")
    if a.workers is not None and a.scheduler is not None:
        p.error("--workers and --scheduler are exclusive: give one of them")
    if a.scheduler is not None and not a.scheduler.strip():
        p.error("--scheduler must be a non-empty address, got ''")
    if a.threads is not None and (a.workers is not None or a.scheduler is not None):
        p.error(
            "--threads applies to in-process runs; Dask workers run numba on "
            "one thread each (use more workers instead)"
        )
    if a.chunk_size < 1:
        p.error(f"--chunk-size must be an integer >= 1, got {a.chunk_size}")
    if not 0 < a.confidence < 1:
        p.error(f"--confidence must be in (0, 1), got {a.confidence}")


def _fmt(x: float, spec: str = ".3g") -> str:
    return (
        "-"
        if x is None or (isinstance(x, float) and math.isnan(x))
        else format(x, spec)
    )


def format_tables(summaries: Sequence[ConfigSummary], confidence: float) -> str:
    """The per-theorem tables printed at the end of a run."""
    names = {
        "4.1": "Theorem 4.1 (Gaussian init, Strategy 4.1)",
        "5.1": "Theorem 5.1 (small weights, Assumption 1)",
        "corollary_5.1": (
            "Corollary 5.1 (uniform point of the ball B_r around small weights)"
        ),
        "6.1": "Theorem 6.1 (orthogonal linear network)",
        "none": "Contrasts (no bound)",
    }
    pct = f"{100 * confidence:g}%"
    lines = []
    by_theorem: dict[str, list] = {}
    for s in summaries:
        t = s.config.theorem
        if t == "4.1" and s.config.fixed_data:
            t = "4.1 part 1"
        by_theorem.setdefault(t, []).append(s)
    for t, rows in by_theorem.items():
        lines.append("")
        lines.append(names.get(t, f"Theorem {t} (fixed data)"))
        head = (
            f"  {'group':<14} {'config':<22} {'T':>5} {'nonfin':>6} {'med eta':>9} "
            f"{'eta_ref':>9} {'P(eta_ref) [' + pct + ' CI]':>26} {'c*':>9} "
            f"{'eta_bind':>9} {'P(bind)':>8} {'bound@c*':>9}"
        )
        lines.append(head)
        lines.append("  " + "-" * (len(head) - 2))
        for s in rows:
            lo, hi = (_fmt(x, ".3f") for x in s.ci_ref)
            ci = f"{_fmt(s.p_ref, '.3f')} [{lo}, {hi}]"
            lines.append(
                f"  {s.group:<14.14} {s.label:<22.22} {s.trials:>5} {s.nonfinite:>6} "
                f"{_fmt(s.median_eta):>9} {_fmt(s.eta_ref):>9} {ci:>26} "
                f"{_fmt(s.c_star):>9} {_fmt(s.binding_eta):>9} "
                f"{_fmt(s.p_binding, '.3f'):>8} {_fmt(s.bound_at_c_star, '.3f'):>9}"
            )
    notes = sorted({s.note for s in summaries if s.note})
    if notes:
        lines.append("")
        lines += [f"note: {n}" for n in notes]
    lines.append("")
    lines.append(
        "P(eta) = fraction of trials with min_{i!=j} <grad f_i, grad f_j> >= -eta; "
        "c* = largest constant whose failure bound stays above the one-sided "
        f"{pct} Clopper-Pearson upper limit at every eta of the grid; bound@c* is "
        "the theorem's probability bound at c* at the binding eta."
    )
    return "\n".join(lines)


def run_experiments(
    spec: Spec, out_dir: Path, seed: int, fresh: bool
) -> dict[str, dict]:
    """Run the spec's named experiments, reusing stored JSON unless ``fresh``."""
    results: dict[str, dict] = {}
    for name in spec.experiments:
        path = out_dir / f"{name}.json"
        if path.is_file() and not fresh:
            results[name] = json.loads(path.read_text())
            print(f"[{name}] loaded from {path}")
            continue
        t0 = time.perf_counter()
        print(f"[{name}] running ...", flush=True)
        if name == "sgd_check":
            from montecarlo._sgd_check import run_sgd_check

            results[name] = run_sgd_check(out_dir, seed=seed, quick=True)
        elif name == "figure1":
            from montecarlo._sgd_check import run_figure1

            results[name] = run_figure1(out_dir, seed=seed)
        elif name == "real_data":
            from montecarlo._real_data import run_real_data

            results[name] = run_real_data(out_dir, seed=seed, quick=False)
        print(f"[{name}] done in {time.perf_counter() - t0:.1f} s")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    a = parser.parse_args(argv)
    _check_args(parser, a)
    from montecarlo._config import SpecError, bundled_specs, load_spec

    if a.list:
        print("\n".join(bundled_specs()))
        return 0
    try:
        spec = load_spec(a.spec)
        if a.trials is not None:
            spec = spec.with_trials(a.trials)
    except (SpecError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import numba

    from montecarlo._engine import run_sweep
    from montecarlo._estimates import theorem_summary
    from montecarlo._store import load_results

    if a.threads is not None:
        numba.set_num_threads(a.threads)
    out = a.out if a.out is not None else Path("results") / spec.name
    seed = spec.seed if a.seed is None else a.seed
    print(
        f"spec {spec.name!r}: {spec.title}; results in {out}; seed {seed}; "
        f"backend {a.backend}"
    )
    t0 = time.perf_counter()
    if spec.groups:
        with contextlib.ExitStack() as stack:
            executor = None
            if a.workers is not None or a.scheduler is not None:
                from montecarlo._dask import DaskExecutor, dask_client

                try:
                    client = stack.enter_context(
                        dask_client(workers=a.workers, scheduler=a.scheduler)
                    )
                except OSError as exc:
                    print(
                        f"error: cannot reach the Dask scheduler: {exc}",
                        file=sys.stderr,
                    )
                    return 2
                print(
                    f"Dask: {len(client.nthreads())} workers connected; "
                    f"dashboard {client.dashboard_link}"
                )
                executor = DaskExecutor(client)
            try:
                run_sweep(
                    spec,
                    out,
                    seed=seed,
                    backend=a.backend,
                    chunk_size=a.chunk_size,
                    fresh=a.fresh,
                    progress=not a.no_progress,
                    executor=executor,
                )
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        print(f"Monte Carlo done in {time.perf_counter() - t0:.1f} s")
    else:
        out.mkdir(parents=True, exist_ok=True)
    experiments = run_experiments(spec, out, seed, a.fresh)
    if spec.groups:
        df = load_results(out)
        summaries = theorem_summary(spec, df, seed=seed, confidence=a.confidence)
        print(format_tables(summaries, a.confidence))
    for name, res in experiments.items():
        for row in res.get("claims", []):
            print(
                f"[{name}] {row['claim']}: {row['verdict']} "
                f"({row['statistic']}; {row['ci_or_p']})"
            )
    if not a.no_report:
        try:
            from figures import write_report
        except ImportError:
            write_report = None
        if write_report is not None:
            path = write_report(out, confidence=a.confidence)
            print(f"report: {path}")
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
