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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from montecarlo._backends import DEFAULT_BACKEND, get_backend
from montecarlo._config import Config, Spec
from montecarlo._rng import stream_key
from montecarlo._stats import TrialBlock
from montecarlo._store import ResultsStore
from montecarlo._trial import fixed_data

__all__ = ["Chunk", "Progress", "Executor", "SerialExecutor", "iter_run", "run_sweep"]


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
        ValueError: Before any compute, on an invalid argument or when
            ``out_dir`` holds a run of a different spec (use ``fresh``).
    """
    seed = spec.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    get_backend(backend)
    executor = SerialExecutor() if executor is None else executor
    with ResultsStore(out_dir) as store:
        previous = store.get_meta("spec_name")
        if fresh:
            store.clear()
        elif previous is not None and previous != spec.name:
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
        progress: ``True`` shows a tqdm progress bar; a callable receives each
            :class:`Progress`.
    """
    bar = None
    last = Progress(0, 0, None)
    try:
        for last in iter_run(
            spec,
            out_dir,
            seed=seed,
            backend=backend,
            chunk_size=chunk_size,
            fresh=fresh,
            executor=executor,
        ):
            if progress is True:
                if bar is None:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=last.total, initial=last.done, unit="trial")
                else:
                    bar.update(last.last.trials.size)
            elif callable(progress):
                progress(last)
    finally:
        if bar is not None:
            bar.close()
    return last
