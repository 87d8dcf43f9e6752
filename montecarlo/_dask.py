"""Dask distributed executor: chunks are tasks on a cluster, results come back here.

Runs larger than one machine send every chunk (:class:`montecarlo._engine.Chunk`)
to a Dask cluster as one task; :meth:`DaskExecutor.map_unordered` yields each
chunk with its :class:`~montecarlo._stats.TrialBlock` as soon as it finishes,
and the driver (:func:`montecarlo._engine.iter_run`) writes it to the SQLite
store in this process. Workers compute, never touch the store. Because every
trial draws from its own Philox stream, the stored records do not depend on
the number of workers, on which worker ran which chunk, or on retries.

A worker lost mid-run (killed, out of memory, node gone) is handled by the
scheduler: the tasks it held go back to the queue and run elsewhere, and the
client receives one result per task, so nothing is lost or duplicated
(duplicates are impossible anyway: the store's primary key is the trial).
A task that raises is retried ``retries`` times before the run stops; the
chunks stored until then are kept, so re-running the command resumes.

Threads: each Dask worker thread runs one chunk at a time with numba on one
thread and BLAS on one thread, so a cluster of ``N`` single-threaded workers
uses ``N`` cores. ``numba.set_num_threads`` is thread-local (it only affects
the calling thread), so it is called inside every task, in the thread that
runs the kernel; BLAS (OpenBLAS, process-wide) is limited once per worker by
the :class:`PinThreads` plugin, which also lets glibc keep freed memory (the
nanny's ``MALLOC_TRIM_THRESHOLD_`` would otherwise make every trial
page-fault its temporaries in again, about 40% slower).
"""

from __future__ import annotations

import contextlib
import ctypes
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import numba
from distributed import Client, LocalCluster, Worker, as_completed
from distributed.diagnostics.plugin import WorkerPlugin

from montecarlo._engine import Chunk, run_chunk
from montecarlo._stats import TrialBlock

__all__ = ["DaskExecutor", "PinThreads", "dask_client", "scheduler_target"]


def scheduler_target(scheduler: str, name: str = "scheduler") -> dict[str, str]:
    """How to reach a running Dask scheduler: its address or its scheduler file.

    Accepted: ``scheme://location`` with a scheme distributed knows (``tcp``,
    ``tls``, ``ws``, ``wss``, ``ucx``: ``host:port``; ``inproc``: any
    location), ``host:port`` (distributed's default scheme, ``tcp``), or the
    path of an existing scheduler file (``dask scheduler --scheduler-file``).

    Args:
        scheduler: The address or file path.
        name: Name of the argument in error messages. Defaults to
            ``"scheduler"``.

    Returns:
        ``{"address": ...}`` or ``{"scheduler_file": ...}``, keyword arguments
        of ``distributed.Client``.

    Raises:
        ValueError: Naming ``name``, the accepted forms and the value, if
            ``scheduler`` is none of them.
    """
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    if isinstance(scheduler, str) and scheduler and Path(scheduler).is_file():
        return {"scheduler_file": scheduler}
    schemes = sorted(backends)
    problem = None
    if not isinstance(scheduler, str) or not scheduler.strip():
        problem = "it is empty"
    else:
        scheme, location = parse_address(scheduler)
        if scheme not in backends:
            problem = f"unknown scheme {scheme!r}"
        elif scheme != "inproc":
            try:
                host, port = parse_host_port(location)
            except ValueError as exc:
                problem = str(exc)
            else:
                if not host or not 0 < port < 65536:
                    problem = f"host {host!r} and port {port} are not host:port"
        elif not location:
            problem = "the inproc location is empty"
    if problem is not None:
        raise ValueError(
            f"{name} must be a Dask scheduler address scheme://host:port with scheme "
            f"in {schemes} (e.g. tcp://10.0.0.5:8786) or an existing scheduler file, "
            f"got {scheduler!r} ({problem})"
        )
    return {"address": scheduler}


def _pin_numba_and_blas() -> None:
    """One numba thread for the calling thread; BLAS on one thread process-wide."""
    # numba's matrix products call scipy's BLAS: load it so that the limit
    # covers it (threadpoolctl limits the libraries loaded at call time)
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(1)
    threadpool_limits(1)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse instead of returning it to the OS.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which
    fixes glibc's thresholds low: every array above 128 KB is then mapped
    afresh and unmapped on free, and each trial page-faults its megabytes of
    temporaries in again (about 40% slower at ``(100, 100, 256, 4)``). Arrays
    up to 32 MB are served from the heap and up to 256 MB of freed memory is
    kept. Returns False where glibc's ``mallopt`` is not available.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, 32 << 20) and mallopt(_M_TRIM_THRESHOLD, 256 << 20)
    )


class PinThreads(WorkerPlugin):
    """Worker plugin, in every worker (restarted ones too): BLAS on one thread,
    and glibc keeps freed memory (see :func:`_keep_freed_memory`)."""

    name = "montecarlo-pin-threads"
    idempotent = True

    def setup(self, worker: Worker) -> None:
        """Limit BLAS to one thread and tune malloc in this worker process."""
        _pin_numba_and_blas()
        _keep_freed_memory()


def run_chunk_pinned(chunk: Chunk) -> TrialBlock:
    """:func:`montecarlo._engine.run_chunk` with numba and BLAS on one thread.

    This is the function every task runs on a worker: it pins the thread it
    runs in (numba's thread count is per calling thread), then computes.
    """
    _pin_numba_and_blas()
    return run_chunk(chunk)


def _task_key(chunk: Chunk, token: str) -> str:
    first, last = int(chunk.trials[0]), int(chunk.trials[-1])
    return f"montecarlo-chunk-{chunk.config_hash}-{chunk.seed}-{first}-{last}-{token}"


class DaskExecutor:
    """Runs chunks as tasks of a Dask distributed cluster.

    Args:
        client: A connected ``distributed.Client`` (local or remote cluster).
        retries: How many times a task that raised is re-run before the run
            stops (an integer >= 0). Defaults to 3. A task lost with its
            worker is rescheduled by the scheduler without counting as a
            retry (up to the scheduler's ``allowed-failures``).
        timeout: Seconds after submission by which every chunk must be done,
            else ``TimeoutError`` (None waits forever, e.g. for workers of a
            batch queue to start). Defaults to None.

    Raises:
        ValueError: If ``retries`` is not an integer >= 0 or ``timeout`` is
            not None or a number > 0.
    """

    def __init__(
        self, client: Client, *, retries: int = 3, timeout: float | None = None
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not timeout > 0
        ):
            raise ValueError(f"timeout must be None or a number > 0, got {timeout!r}")
        self.client = client
        self.retries = retries
        self.timeout = timeout
        client.register_plugin(PinThreads())

    def map_unordered(
        self, chunks: Iterable[Chunk]
    ) -> Iterator[tuple[Chunk, TrialBlock]]:
        """Submit every chunk as a task; yield ``(chunk, block)`` as each finishes.

        Each task has a unique, readable key
        (``montecarlo-chunk-<config>-<seed>-<first>-<last>-<token>``). Finished
        results are released from the cluster once yielded. If the consumer
        stops early, a task fails after its retries or the timeout passes, the
        remaining tasks are cancelled (and the error is raised here).

        Args:
            chunks: The chunks to run.

        Yields:
            ``(chunk, block)`` in order of completion.

        Raises:
            TimeoutError: If ``timeout`` passes before every chunk is done.
            Exception: The error of a task that failed ``retries + 1`` times
                (``distributed.KilledWorker`` if its workers kept dying).
        """
        token = uuid.uuid4().hex[:12]
        pending = {}
        for chunk in chunks:
            future = self.client.submit(
                run_chunk_pinned,
                chunk,
                key=_task_key(chunk, token),
                retries=self.retries,
            )
            pending[future.key] = (future, chunk)
        try:
            futures = [f for f, _ in pending.values()]
            for future in as_completed(futures, timeout=self.timeout):
                _, chunk = pending.pop(future.key)
                block = future.result()
                future.release()
                yield chunk, block
        finally:
            if pending:
                self.client.cancel([f for f, _ in pending.values()])


@contextlib.contextmanager
def dask_client(
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    dashboard_address: str | None = "127.0.0.1:8787",
) -> Iterator[Client]:
    """A client of a new local cluster, or of an existing cluster; closed on exit.

    Args:
        workers: Start a local cluster of this many single-threaded worker
            processes (an integer >= 1), bound to 127.0.0.1. It is shut down
            on exit.
        scheduler: Address of a running scheduler to join instead, e.g.
            ``"tcp://10.0.0.5:8786"`` (from ``dask scheduler`` or
            dask-jobqueue), or its scheduler file (see
            :func:`scheduler_target`). Only the client is closed on exit, not
            the cluster.
        dashboard_address: Where the local cluster serves its dashboard
            (``"127.0.0.1:0"`` picks a free port). Defaults to
            ``"127.0.0.1:8787"``.

    Yields:
        The connected client.

    Raises:
        ValueError: Unless exactly one of ``workers`` and ``scheduler`` is
            given, or if ``workers`` is not an integer >= 1 or ``scheduler``
            is not an address or scheduler file (:func:`scheduler_target`).
    """
    if (workers is None) == (scheduler is None):
        raise ValueError(
            f"exactly one of workers and scheduler must be given, got workers="
            f"{workers!r} and scheduler={scheduler!r}"
        )
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if scheduler is not None:
        with Client(**scheduler_target(scheduler)) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=dashboard_address,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
