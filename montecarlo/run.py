"""``python -m montecarlo.run``: run a sweep spec and report, theorem by theorem.

With no arguments it runs the bundled ``quick`` suite (every theorem, a small
SGD check) on the numba backend into ``results/quick``, prints one table per
theorem (empirical probability with its confidence interval, the bound at
``c*``, and ``c*``), and writes the figures and ``report.md``/``report.html``.
Re-running the same command resumes an interrupted run; ``--fresh`` discards
stored results. ``python -m montecarlo.run --list`` shows the bundled specs.

Every bad input is refused before anything runs or is written, with one line
on stderr starting with ``error:`` that names the flag or spec key and its
allowed range (exit code 2). A write failure during the run says what is
kept and the command that resumes (exit code 1); Ctrl-C prints the trials
stored and that command (exit code 130).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from montecarlo._config import Spec
    from montecarlo._estimates import ConfigSummary

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``error: <message>``."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: message`` (one line) and exit with code 2."""
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (documented in ``--help``)."""
    from montecarlo._backends import BACKENDS, DEFAULT_BACKEND

    p = _Parser(
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
    p.add_argument(
        "--c",
        type=float,
        default=1.0,
        help="a constant of your choice at which the bounds are also checked "
        "(the paper fixes none: these checks are reported, never counted "
        "against a theorem; default: 1.0)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory of the CIFAR-10 python files (data_batch_1..5, test_batch, "
        "batches.meta) for a real_data_cnn plan with dataset = 'cifar10'; nothing "
        "is ever downloaded",
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
    from montecarlo._config import MAX_SEED, MAX_TRIALS

    if a.trials is not None and not 1 <= a.trials <= MAX_TRIALS:
        p.error(f"--trials must be an integer in [1, {MAX_TRIALS}], got {a.trials}")
    if a.seed is not None and not 0 <= a.seed <= MAX_SEED:
        p.error(
            f"--seed must be an integer in [0, 2^63 - 1 = {MAX_SEED}], got {a.seed}"
        )
    if a.threads is not None and not 1 <= a.threads <= (os.cpu_count() or 1):
        p.error(
            f"--threads must be an integer in [1, {os.cpu_count()}], got {a.threads}"
        )
    if a.workers is not None and a.workers < 1:
        p.error(f"--workers must be an integer >= 1, got {a.workers}")
    if a.workers is not None and a.scheduler is not None:
        p.error("--workers and --scheduler are exclusive: give one of them")
    if a.scheduler is not None:
        from montecarlo._dask import scheduler_target

        try:
            scheduler_target(a.scheduler, name="--scheduler")
        except ValueError as exc:
            p.error(str(exc))
    if a.threads is not None and (a.workers is not None or a.scheduler is not None):
        p.error(
            "--threads applies to in-process runs; Dask workers run numba on "
            "one thread each (use more workers instead)"
        )
    if a.chunk_size < 1:
        p.error(f"--chunk-size must be an integer >= 1, got {a.chunk_size}")
    if not 0 < a.confidence < 1:
        p.error(f"--confidence must be in (0, 1), got {a.confidence}")
    if not (math.isfinite(a.c) and a.c > 0):
        p.error(f"--c must be a finite number > 0, got {a.c}")


def _fmt(x: float, spec: str = ".3g") -> str:
    return (
        "-"
        if x is None or (isinstance(x, float) and math.isnan(x))
        else format(x, spec)
    )


def format_tables(summaries: Sequence[ConfigSummary], confidence: float) -> str:
    """The per-statement tables printed at the end of a run, with their legend."""
    from montecarlo._statements import statement_of

    pct = f"{100 * confidence:g}%"
    lines = []
    by_statement: dict[str, list] = {}
    for s in summaries:
        st = statement_of(s.config)
        by_statement.setdefault(
            st.full_title if st else "Contrast ensembles (no bound)", []
        ).append(s)
    head = (
        f"  {'group':<14} {'configuration':<22} {'trials':>6} {'non-fin':>7} "
        f"{'median eta':>10} {'eta_ref':>9} {'P(eta <= eta_ref) [' + pct + ' CI]':>32} "
        f"{'c*':>9} {'binds at':>9}"
    )
    for title, rows in by_statement.items():
        lines += ["", title, head, "  " + "-" * (len(head) - 2)]
        for s in rows:
            lo, hi = (_fmt(x, ".3f") for x in s.ci_ref)
            ci = f"{_fmt(s.p_ref, '.3f')} [{lo}, {hi}]"
            lines.append(
                f"  {s.group:<14.14} {s.label:<22.22} {s.trials:>6} {s.nonfinite:>7} "
                f"{_fmt(s.median_eta):>10} {_fmt(s.eta_ref):>9} {ci:>32} "
                f"{_fmt(s.c_star):>9} {_fmt(s.binding_eta):>9}"
            )
    notes = sorted({s.note for s in summaries if s.note})
    lines.append("")
    lines += [f"note: {n}" for n in notes]
    lines += [
        "eta: a trial's gradient confusion max(0, -min_{i!=j} <grad f_i, grad f_j>) "
        "(Definition 2.1); trials: finite trials; non-fin: trials whose Gram "
        "overflowed (excluded);",
        "eta_ref: the group's median eta; P(eta <= eta_ref): the probability that "
        f"the confusion bound holds at eta_ref, with its {pct} Clopper-Pearson "
        "interval;",
        "c*: the largest constant c whose bound stays above the one-sided "
        f"{pct} upper limit of the failure probability at every eta of the "
        "informative grid; binds at: the eta where it is tightest.",
    ]
    return "\n".join(lines)


def run_experiments(
    spec: Spec,
    out_dir: Path,
    seed: int,
    fresh: bool,
    data_dir: Path | None = None,
    client: object = None,
) -> dict[str, dict]:
    """Run the spec's named experiments, reusing stored JSON unless ``fresh``.

    ``client``: the run's Dask client, if any (the experiments that can use it
    map their units over it).
    """
    from montecarlo._experiments import run_experiment

    results: dict[str, dict] = {}
    for name in spec.experiments:
        path = out_dir / f"{name}.json"
        if path.is_file() and not fresh:
            results[name] = json.loads(path.read_text())
            print(f"[{name}] loaded from {path}")
            continue
        t0 = time.perf_counter()
        print(f"[{name}] running ...", flush=True)
        results[name] = run_experiment(
            name,
            out_dir,
            spec,
            seed=seed,
            fresh=fresh,
            data_dir=data_dir,
            client=client,
        )
        print(f"[{name}] done in {time.perf_counter() - t0:.1f} s")
    return results


def _resume_command(args: Sequence[str]) -> str:
    """The command that resumes this run: the same arguments without ``--fresh``."""
    kept = [x for x in args if x != "--fresh"]
    return shlex.join(["python", "-m", "montecarlo.run", *kept])


def _in_process_threads(a: argparse.Namespace) -> int:
    """Trials computed at once in this process (see ``montecarlo._engine``)."""
    if a.backend != "numba" or a.workers is not None or a.scheduler is not None:
        return 1
    import numba

    return numba.get_num_threads() if a.threads is None else a.threads


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (see the module docstring)."""
    from montecarlo._provenance import foreign_package

    foreign = foreign_package()
    if foreign is not None:
        print(f"error: {foreign}", file=sys.stderr)
        return 2
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    a = parser.parse_args(args)
    _check_args(parser, a)
    from montecarlo._config import SpecError, bundled_specs, load_spec
    from montecarlo._engine import check_run
    from montecarlo._store import (
        DB_NAME,
        StoreError,
        StoreWriteError,
        count_trials,
        directory_lock,
    )

    if a.list:
        print("\n".join(bundled_specs()))
        return 0
    try:
        spec = load_spec(a.spec)
        if a.trials is not None:
            spec = spec.with_trials(a.trials)
        seed = check_run(
            spec,
            seed=a.seed,
            backend=a.backend,
            chunk_size=a.chunk_size,
            threads=_in_process_threads(a),
        )
    except (SpecError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = a.out if a.out is not None else Path("results") / spec.name
    resume = _resume_command(args)
    try:
        with directory_lock(out):
            return _run(a, spec, out, seed)
    except StoreWriteError as exc:
        print(f"error: {exc}; resume with: {resume}", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        db = out / DB_NAME
        try:
            stored = f"{count_trials(db)} trials are" if db.is_file() else "nothing is"
        except (StoreError, ValueError) as exc:
            stored = f"an unknown number of trials ({exc}) are"
        print(
            f"interrupted: {stored} stored in {db}; resume with: {resume}",
            file=sys.stderr,
        )
        return 130


def _run(a: argparse.Namespace, spec: Spec, out: Path, seed: int) -> int:
    """Run the sweep, the experiments and the report into ``out`` (locked)."""
    import numba

    from montecarlo._engine import run_sweep
    from montecarlo._estimates import theorem_summary
    from montecarlo._store import load_results

    if a.threads is not None:
        numba.set_num_threads(a.threads)
    print(
        f"spec {spec.name!r}: {spec.title}; results in {out}; seed {seed}; "
        f"backend {a.backend}"
    )
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        client = None
        if a.workers is not None or a.scheduler is not None:
            from montecarlo._dask import dask_client

            try:
                client = stack.enter_context(
                    dask_client(workers=a.workers, scheduler=a.scheduler)
                )
            except OSError as exc:
                print(f"error: cannot reach the Dask scheduler: {exc}", file=sys.stderr)
                return 2
            print(
                f"Dask: {len(client.nthreads())} workers connected; "
                f"dashboard {client.dashboard_link}"
            )
        if spec.groups:
            from montecarlo._dask import DaskExecutor

            try:
                run_sweep(
                    spec,
                    out,
                    seed=seed,
                    backend=a.backend,
                    chunk_size=a.chunk_size,
                    fresh=a.fresh,
                    progress=not a.no_progress,
                    executor=None if client is None else DaskExecutor(client),
                )
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"Monte Carlo done in {time.perf_counter() - t0:.1f} s")
        try:
            run_experiments(
                spec, out, seed, a.fresh, data_dir=a.data_dir, client=client
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if spec.groups:
        df = load_results(out)
        summaries = theorem_summary(spec, df, seed=seed, confidence=a.confidence)
        print(format_tables(summaries, a.confidence))
    from montecarlo._results import load_run
    from montecarlo.claims import collect, summary

    claims = collect(
        load_run(out, confidence=a.confidence), c=a.c, confidence=a.confidence
    )
    print("")
    print(summary(claims))
    if not a.no_report:
        from figures import write_report

        path = write_report(out, confidence=a.confidence, c=a.c)
        print("")
        print(f"report: {path}")
        print(f"        {path.with_suffix('.html')}")
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
