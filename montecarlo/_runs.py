"""Independent training runs: stored one file each; serial, in processes or on Dask.

An experiment of trained networks (:mod:`montecarlo._real_data`,
:mod:`montecarlo._cnn_experiment`) is a list of *tasks*. A task is one run
(one model, one seed, one learning rate), a pure function of its
specification, and is identified by ``run_id``, a hash of that specification
(:func:`spec_hash`). This module runs a list of tasks and keeps what is
finished:

- **store** (:class:`RunStore`): each finished run is written at once to
  ``root/<run_id>.json`` through a temporary file in the same directory and
  ``os.replace``, so a file is either complete or absent, whatever stops the
  process;
- **resume** (:func:`run_tasks`): stored runs are loaded, only the missing
  ones are computed; as a run is a pure function of its specification, a
  resumed experiment ends with the records of an uninterrupted one;
- **executors**: :class:`SerialRunner` (this process),
  :func:`process_runner` (a pool of ``spawn``-ed processes, one torch thread
  each) and :class:`DaskRunner` (one Dask task per run, on a local or remote
  cluster); results never depend on which one ran them;
- **interrupts**: Ctrl-C (SIGINT, sent to the whole foreground process group)
  and, inside :func:`sigterm_as_interrupt`, SIGTERM stop the driver with
  ``KeyboardInterrupt``. The pool's workers ignore SIGINT; the driver cancels
  what is pending and terminates and joins the workers, so no worker outlives
  the driver and the pool's semaphores are released (no ``resource_tracker``
  "leaked semaphore" warning). Runs finished before the interrupt stay stored.

What leaked before this module: a ``ProcessPoolExecutor`` whose driver was
killed by SIGTERM died without running any cleanup, its workers kept
computing as orphans, and the five semaphores of its call and result queues
were reported by the resource tracker at exit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import pathlib
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "DaskRunner",
    "Runner",
    "RunStore",
    "SerialRunner",
    "Task",
    "local_runner",
    "process_runner",
    "run_tasks",
    "sigterm_as_interrupt",
    "spec_hash",
    "torch_threads",
]


def spec_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 (16 hex digits) of a specification's canonical JSON.

    Args:
        content: plain JSON values (keys sorted in the hash, so order is free).

    Returns:
        The hex digest prefix used as ``run_id``.
    """
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunStore:
    """Finished runs, one JSON file per run under ``root``, written atomically.

    A file holds ``{"run_id", "spec", "result", "seconds"}``: the run's full
    specification (what its ``run_id`` hashes), its result and its compute time
    (kept apart from the result, which must not depend on timing).

    Args:
        root: directory of the files (created on the first save).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = pathlib.Path(root)

    def path(self, run_id: str) -> pathlib.Path:
        """The file of run ``run_id``."""
        return self.root / f"{run_id}.json"

    def load(self, run_id: str, spec: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored record of ``run_id``, or ``None`` if it is not stored.

        Args:
            run_id: the run's hash.
            spec: the specification the caller expects; a stored file with a
                different one is an error (not a cache miss), as it means two
                specifications share a hash or the file was edited.

        Returns:
            The record, or ``None``.

        Raises:
            ValueError: if the file is not valid JSON of a record or holds
                another specification (the message names the file).
        """
        path = self.path(run_id)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"stored run {str(path)!r} is not valid JSON ({exc}); delete it to "
                "recompute that run"
            ) from None
        if not isinstance(record, dict) or not {"spec", "result"} <= record.keys():
            raise ValueError(
                f"stored run {str(path)!r} lacks 'spec' or 'result'; delete it to "
                "recompute that run"
            )
        if record["spec"] != json.loads(json.dumps(spec)):
            raise ValueError(
                f"stored run {str(path)!r} holds another specification than the one "
                f"hashed to {run_id}; delete it to recompute that run"
            )
        return record

    def save(
        self,
        run_id: str,
        spec: Mapping[str, Any],
        result: Mapping[str, Any],
        seconds: float,
    ) -> pathlib.Path:
        """Write one finished run atomically (temporary file, then ``os.replace``).

        Args:
            run_id: the run's hash.
            spec: its specification (plain JSON values).
            result: its result (plain JSON values, no NaN or infinity).
            seconds: its compute time.

        Returns:
            The path written.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        record = {
            "run_id": run_id,
            "spec": dict(spec),
            "result": dict(result),
            "seconds": seconds,
        }
        text = json.dumps(record, allow_nan=False)
        fd, tmp = tempfile.mkstemp(prefix=f".{run_id}.", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, self.path(run_id))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return self.path(run_id)

    def clear(self) -> int:
        """Delete every stored run and stray temporary file; returns the runs' count."""
        if not self.root.is_dir():
            return 0
        n = 0
        for p in self.root.iterdir():
            if p.suffix == ".json" or p.name.endswith(".tmp"):
                n += p.suffix == ".json"
                p.unlink()
        return n


@dataclass(frozen=True)
class Task:
    """One run to compute.

    Attributes:
        run_id: hash of ``spec`` (:func:`spec_hash`).
        spec: the run's full specification as plain JSON values (stored with it).
        fn: a module-level function (picklable by reference) computing the run:
            ``fn(payload) -> result`` (a dict of plain JSON values).
        payload: its picklable argument (the specification plus what does not
            change the result, such as whether to print progress).
        label: a short human name for progress lines.
        cost: relative compute time; longer runs start first so that no worker
            idles at the end.
    """

    run_id: str
    spec: Mapping[str, Any]
    fn: Callable[[Any], dict[str, Any]]
    payload: Any
    label: str
    cost: float = 1.0


def _timed(fn: Callable[[Any], dict[str, Any]], payload: Any) -> tuple[dict, float]:
    started = time.perf_counter()
    result = fn(payload)
    return result, time.perf_counter() - started


class Runner(Protocol):
    """Runs ``fn(payload)`` for each payload; yields ``(index, (result, seconds))``."""

    def map_unordered(
        self,
        fn: Callable[[Any], dict[str, Any]],
        payloads: Sequence[Any],
        keys: Sequence[str],
    ) -> Iterator[tuple[int, tuple[dict[str, Any], float]]]:
        """Yield each payload's index with its result and seconds, as they finish."""
        ...


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch intra-op threads set to ``n`` inside the block, restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SerialRunner:
    """Runs every task in this process, in order, with one torch thread."""

    def map_unordered(
        self,
        fn: Callable[[Any], dict[str, Any]],
        payloads: Sequence[Any],
        keys: Sequence[str],
    ) -> Iterator[tuple[int, tuple[dict[str, Any], float]]]:
        """Yield ``(index, (result, seconds))`` for each payload, in order."""
        with torch_threads(1):
            for i, payload in enumerate(payloads):
                yield i, _timed(fn, payload)


def _worker_init() -> None:
    """Pool worker start-up: ignore SIGINT (the driver decides), one torch thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)


def _indexed(
    args: tuple[int, Callable[[Any], dict[str, Any]], Any],
) -> tuple[int, tuple[dict[str, Any], float]]:
    i, fn, payload = args
    return i, _timed(fn, payload)


class _PoolRunner:
    """Runs on a pool of spawned processes, started on the first run to compute
    (a re-run whose runs are all stored starts none)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: Any = None

    def map_unordered(
        self,
        fn: Callable[[Any], dict[str, Any]],
        payloads: Sequence[Any],
        keys: Sequence[str],
    ) -> Iterator[tuple[int, tuple[dict[str, Any], float]]]:
        if not payloads:
            return
        if self.pool is None:
            ctx = multiprocessing.get_context("spawn")
            self.pool = ctx.Pool(self.workers, initializer=_worker_init)
        jobs = [(i, fn, p) for i, p in enumerate(payloads)]
        yield from self.pool.imap_unordered(_indexed, jobs, chunksize=1)


@contextlib.contextmanager
def local_runner(workers: int) -> Iterator[Runner]:
    """This process for one worker, else :func:`process_runner` of ``workers``.

    Args:
        workers: number of processes (an integer >= 1).

    Yields:
        A :class:`Runner`.
    """
    if workers == 1:
        yield SerialRunner()
        return
    with process_runner(workers) as runner:
        yield runner


@contextlib.contextmanager
def process_runner(workers: int) -> Iterator[Runner]:
    """A pool of ``workers`` spawned processes (one torch thread each).

    ``spawn`` starts each worker as a fresh interpreter (no inherited torch or
    OpenMP state, as ``fork`` would give); the pool starts with the first run
    to compute. Workers ignore SIGINT. On leaving the block normally the pool
    is closed and joined; on any exception (an error in a run,
    ``KeyboardInterrupt`` from Ctrl-C or :func:`sigterm_as_interrupt`) pending
    runs are dropped and the workers are terminated and joined before the
    exception propagates, so none outlives the driver and the pool's
    semaphores are released.

    Args:
        workers: number of processes (an integer >= 1).

    Yields:
        A :class:`Runner` over the pool.

    Raises:
        ValueError: if ``workers`` is not an integer >= 1.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    runner = _PoolRunner(workers)
    clean = False
    try:
        yield runner
        clean = True
    finally:
        if runner.pool is not None:
            if clean:
                runner.pool.close()
            else:
                runner.pool.terminate()
            runner.pool.join()


def _pinned(
    fn: Callable[[Any], dict[str, Any]], payload: Any
) -> tuple[dict[str, Any], float]:
    """A Dask task: one torch thread in this worker, then the run."""
    import torch

    torch.set_num_threads(1)
    return _timed(fn, payload)


class DaskRunner:
    """Runs every task as one task of a Dask distributed cluster.

    Each run is submitted with a readable key (``<prefix>-<run_id>-<token>``)
    and retried ``retries`` times if it raises; a run lost with its worker is
    rescheduled by the scheduler. Results come back to this process, which
    stores them: workers never write. Workers need this package and, for
    CIFAR-10, the data directory at the same path.

    Args:
        client: a connected ``distributed.Client``
            (:func:`montecarlo._dask.dask_client` starts a local cluster bound
            to 127.0.0.1, or joins one).
        prefix: first part of every task key. Default "run".
        retries: re-runs of a task that raised (an integer >= 0). Default 1.

    Raises:
        ValueError: if ``retries`` is not an integer >= 0.
    """

    def __init__(self, client: Any, *, prefix: str = "run", retries: int = 1) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
        self.client = client
        self.prefix = prefix
        self.retries = retries

    def map_unordered(
        self,
        fn: Callable[[Any], dict[str, Any]],
        payloads: Sequence[Any],
        keys: Sequence[str],
    ) -> Iterator[tuple[int, tuple[dict[str, Any], float]]]:
        """Submit every payload; yield ``(index, (result, seconds))`` as each ends.

        Pending tasks are cancelled if the consumer stops early or a task fails
        after its retries (the error is raised here).
        """
        from distributed import as_completed

        token = uuid.uuid4().hex[:8]
        index = {}
        for i, (payload, key) in enumerate(zip(payloads, keys, strict=True)):
            future = self.client.submit(
                _pinned,
                fn,
                payload,
                key=f"{self.prefix}-{key}-{token}",
                pure=False,
                retries=self.retries,
            )
            index[future.key] = (i, future)
        try:
            for future in as_completed([f for _, f in index.values()]):
                i, _ = index.pop(future.key)
                out = future.result()
                future.release()
                yield i, out
        finally:
            if index:
                self.client.cancel([f for _, f in index.values()])


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does.

    So ``kill PID`` unwinds the driver through its ``finally`` clauses (pool
    terminated and joined, semaphores released) instead of ending it on the
    spot. Outside the main thread (where signal handlers cannot be set) the
    block runs unchanged. The previous handler is restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_tasks(
    tasks: Sequence[Task],
    store: RunStore,
    runner: Runner,
    *,
    log: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """Records of every task: loaded from ``store`` or computed and stored at once.

    Missing runs are computed longest first (by ``cost``); each is saved the
    moment it finishes, so an interruption loses only the runs in progress.

    Args:
        tasks: the runs (distinct ``run_id``).
        store: where finished runs live.
        runner: how missing runs are computed.
        log: called with one line per event (runs loaded, each run finished);
            ``None`` for silence. Default ``print``.

    Returns:
        One stored record (``{"run_id", "spec", "result", "seconds"}``) per task,
        in the order of ``tasks``.

    Raises:
        ValueError: if two tasks share a ``run_id``, or a stored file is invalid.
    """
    ids = [t.run_id for t in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError("tasks must have distinct run_id values")
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for t in tasks:
        record = store.load(t.run_id, t.spec)
        if record is None:
            todo.append(t)
        else:
            records[t.run_id] = record
    if log is not None and records:
        log(f"{len(records)} of {len(tasks)} runs loaded from {store.root}")
    todo.sort(key=lambda t: -t.cost)
    if todo:
        started = time.perf_counter()
        for fn in dict.fromkeys(t.fn for t in todo):  # one map per function
            group = [t for t in todo if t.fn is fn]
            stream = runner.map_unordered(
                fn, [t.payload for t in group], [t.run_id for t in group]
            )
            for i, (result, seconds) in stream:
                t = group[i]
                store.save(t.run_id, t.spec, result, seconds)
                records[t.run_id] = store.load(t.run_id, t.spec) or {}
                if log is not None:
                    done = sum(r in records for r in ids)
                    log(
                        f"run {done}/{len(tasks)} stored: {t.label} ({seconds:.1f} s; "
                        f"{time.perf_counter() - started:.0f} s elapsed)"
                    )
    return [records[i] for i in ids]
