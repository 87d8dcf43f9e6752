"""The driver: plan the missing trials, run them in chunks, store each chunk.

A run is a function of its spec and seed. Each configuration's trials are the
indices ``0 .. trials-1``; the driver asks the store which are done, splits the
rest into chunks of ``chunk_size`` consecutive indices, hands the chunks to an
executor (in process, or a Dask cluster) and writes every finished chunk in
one transaction. Re-running the same command therefore resumes, and ends with
exactly the requested trials, none lost, none duplicated; since every trial
draws from its own stream, the records do not depend on the chunk size, the
thread count, the worker count or the resume point.

:func:`iter_run` is a generator that yields a :class:`Progress` after every
stored chunk; :func:`run_sweep` runs it to the end (with a progress bar).
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from montecarlo._backends import DEFAULT_BACKEND, get_backend
from montecarlo._config import MAX_SEED, Config, Spec
from montecarlo._memory import check_memory
from montecarlo._rng import stream_key
from montecarlo._stats import TrialBlock
from montecarlo._store import ResultsStore
from montecarlo._trial import fixed_data

__all__ = [
    "COMPILE_SECONDS",
    "Chunk",
    "Executor",
    "Progress",
    "SerialExecutor",
    "check_run",
    "iter_run",
    "run_sweep",
    "warm_up_kernels",
]

COMPILE_SECONDS = 20
"""About how long the numba kernels take to compile (measured on 2 idle cores)."""


@dataclasses.dataclass(frozen=True)
class Chunk:
    """A unit of work: consecutive trials of one configuration.

    Attributes:
        config: The configuration.
        config_hash: Its content hash.
        seed: Run seed.
        key: Philox key of the configuration's streams.
        trials: Trial indices.
        fixed: Shared ``(X, y)`` for ``fixed_data`` configurations, else None.
        backend: Backend name.
    """

    config: Config
    config_hash: str
    seed: int
    key: tuple[int, int]
    trials: np.ndarray
    fixed: tuple[np.ndarray, np.ndarray] | None
    backend: str


def run_chunk(chunk: Chunk) -> TrialBlock:
    """Compute one chunk (what every executor calls, in process or on a worker)."""
    base, mb = get_backend(chunk.backend).run(
        chunk.config, chunk.key, chunk.trials, chunk.fixed
    )
    return TrialBlock(chunk.trials, base, chunk.config.batch_sizes, mb)


class Executor(Protocol):
    """Runs chunks and yields ``(chunk, block)`` pairs as they finish (any order)."""

    def map_unordered(
        self, chunks: Iterable[Chunk]
    ) -> Iterator[tuple[Chunk, TrialBlock]]:
        """Run ``chunks``; yield each with its result when it finishes."""
        ...


class SerialExecutor:
    """Runs chunks one after the other in this process (numba threads inside)."""

    def map_unordered(
        self, chunks: Iterable[Chunk]
    ) -> Iterator[tuple[Chunk, TrialBlock]]:
        """Run ``chunks`` in order; yield each with its result."""
        for chunk in chunks:
            yield chunk, run_chunk(chunk)


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a run is: trials stored so far out of the total requested."""

    done: int
    total: int
    last: Chunk | None


def _spec_id(spec: Spec) -> str:
    return hashlib.sha256(spec.text.encode()).hexdigest()[:16]


def plan(
    spec: Spec,
    store: ResultsStore,
    *,
    seed: int,
    backend: str,
    chunk_size: int,
) -> tuple[list[Chunk], int, int]:
    """The chunks still to run, the trials already stored and the total requested."""
    chunks: list[Chunk] = []
    done = total = 0
    seen: set[str] = set()
    for _, config in spec.configs():
        h = config.config_hash
        if h in seen:
            continue
        seen.add(h)
        key = stream_key(seed, h)
        stored = store.done_trials(h, seed)
        missing = np.setdiff1d(np.arange(config.trials), stored)
        total += config.trials
        done += config.trials - missing.size
        fixed = fixed_data(config, key)
        # consecutive runs of missing indices, cut into chunks
        breaks = np.flatnonzero(np.diff(missing) != 1) + 1
        for run in np.split(missing, breaks):
            for start in range(0, run.size, chunk_size):
                part = run[start : start + chunk_size]
                if part.size:
                    chunks.append(Chunk(config, h, seed, key, part, fixed, backend))
    return chunks, done, total


def check_run(
    spec: Spec, *, seed: int | None, backend: str, chunk_size: int, threads: int
) -> int:
    """Check a run's arguments and that its chunks fit in memory, before any work.

    Args:
        spec: The parsed spec.
        seed: Run seed, or None for the spec's.
        backend: Backend name.
        chunk_size: Trials per chunk.
        threads: Trials computed at once in one process.

    Returns:
        The seed to use.

    Raises:
        ValueError: Naming the argument and its allowed range;
            :class:`montecarlo.SpecError` for configurations that do not fit
            in memory.
    """
    seed = spec.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(
            f"seed must be an integer in [0, 2^63 - 1 = {MAX_SEED}], got {seed!r}"
        )
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    get_backend(backend)
    check_memory(spec, threads=threads, chunk_size=chunk_size)
    return seed


def iter_run(
    spec: Spec,
    out_dir: str | Path,
    *,
    seed: int | None = None,
    backend: str = DEFAULT_BACKEND,
    chunk_size: int = 64,
    fresh: bool = False,
    executor: Executor | None = None,
) -> Iterator[Progress]:
    """Run (or resume) the Monte Carlo part of ``spec``, yielding progress.

    Args:
        spec: The parsed spec.
        out_dir: Results directory; resumed if it holds a run of the same spec.
        seed: Run seed; defaults to the spec's.
        backend: Backend name (see :mod:`montecarlo._backends`).
        chunk_size: Trials per chunk (a chunk is the unit written atomically).
        fresh: Discard stored results first.
        executor: Where chunks run; defaults to :class:`SerialExecutor`.

    Yields:
        Progress after setup and after each stored chunk.

    Raises:
        ValueError: Before anything is written, on an invalid argument, on a
            configuration whose chunks cannot fit in memory
            (:class:`montecarlo.SpecError`), or when ``out_dir`` holds a run
            of a different spec (use ``fresh``).
        montecarlo._store.StoreError: If ``out_dir`` cannot be used (another
            process writes it, not writable, an unusable store unless
            ``fresh``), or a write fails during the run (the message says what
            is kept).
    """
    seed = check_run(
        spec,
        seed=seed,
        backend=backend,
        chunk_size=chunk_size,
        threads=_threads(backend, executor),
    )
    executor = SerialExecutor() if executor is None else executor
    with ResultsStore(out_dir, fresh=fresh) as store:
        previous = store.get_meta("spec_name")
        if not fresh and previous is not None and previous != spec.name:
            raise ValueError(
                f"out_dir {str(out_dir)!r} holds a run of spec {previous!r}, not "
                f"{spec.name!r}: pass fresh=True (--fresh) to discard it, or choose "
                "another out_dir"
            )
        store.set_meta(
            {
                "spec_name": spec.name,
                "spec_text": spec.text,
                "spec_id": _spec_id(spec),
                "seed": str(seed),
            }
        )
        store.add_configs((c.config_hash, c.content()) for _, c in spec.configs())
        chunks, done, total = plan(
            spec, store, seed=seed, backend=backend, chunk_size=chunk_size
        )
        yield Progress(done, total, None)
        for chunk, block in executor.map_unordered(chunks):
            store.write_block(chunk.config_hash, chunk.seed, block)
            done += chunk.trials.size
            yield Progress(done, total, chunk)


def _in_process(executor: Executor | None) -> bool:
    return executor is None or isinstance(executor, SerialExecutor)


def _threads(backend: str, executor: Executor | None) -> int:
    """Trials computed at once in one process (numba threads run one each)."""
    if backend == "numba" and _in_process(executor):
        import numba

        return numba.get_num_threads()
    return 1


def warm_up_kernels() -> None:
    """Load, or compile once, the numba kernels, announcing a compilation on stderr.

    Compiling takes about :data:`COMPILE_SECONDS`; cached kernels load in a
    fraction of a second (:mod:`montecarlo._kernel_cache` says which).
    """
    from montecarlo._kernel_cache import kernels_compiled, mark_kernels_compiled

    if kernels_compiled():
        get_backend("numba").warm_up()
        return
    print(
        f"compiling kernels (once per install, about {COMPILE_SECONDS} s) ...",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.perf_counter()
    get_backend("numba").warm_up()
    mark_kernels_compiled()
    print(f"kernels compiled in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def run_sweep(
    spec: Spec,
    out_dir: str | Path,
    *,
    seed: int | None = None,
    backend: str = DEFAULT_BACKEND,
    chunk_size: int = 64,
    fresh: bool = False,
    executor: Executor | None = None,
    progress: bool | Callable[[Progress], None] = False,
) -> Progress:
    """Run :func:`iter_run` to the end; returns the final progress.

    Args:
        spec, out_dir, seed, backend, chunk_size, fresh, executor: As in
            :func:`iter_run`.
        progress: ``True`` shows a tqdm progress bar (after loading, or
            compiling, the numba kernels of an in-process run, so that its
            rate is the run's); a callable receives each :class:`Progress`.

    Returns:
        The last :class:`Progress`.

    Raises:
        ValueError, montecarlo._store.StoreError: As :func:`iter_run`.
    """
    bar = None
    last = Progress(0, 0, None)
    runs = iter_run(
        spec,
        out_dir,
        seed=seed,
        backend=backend,
        chunk_size=chunk_size,
        fresh=fresh,
        executor=executor,
    )
    try:
        for last in runs:
            if progress is True:
                if last.last is None:  # setup: nothing computed yet
                    if last.done == last.total:
                        print(
                            f"all {last.total} trials already stored",
                            file=sys.stderr,
                        )
                        continue
                    if backend == "numba" and _in_process(executor):
                        warm_up_kernels()
                    from tqdm.auto import tqdm

                    bar = tqdm(total=last.total, initial=last.done, unit="trial")
                else:
                    bar.update(last.last.trials.size)
            elif callable(progress):
                progress(last)
    finally:
        runs.close()  # the store is closed now, whatever stopped the loop
        if bar is not None:
            bar.close()
    return last
