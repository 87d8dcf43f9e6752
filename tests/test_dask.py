"""Dask distributed runs: same records as one process, no loss or duplication
when a worker dies mid-run, workers pinned to one thread, CLI flags wired.

One local cluster (2 single-threaded worker processes on 127.0.0.1) serves the
whole module; the test that kills a worker runs last. Every wait is bounded:
the executor's ``timeout`` fails a run that stalls instead of hanging.
"""

import os
import signal
import sys
import time

import numba
import numpy as np
import pandas as pd
import psutil
import pytest
from distributed import Client, LocalCluster, get_task_stream
from distributed.core import Status

import montecarlo as mc
from montecarlo import run as cli
from montecarlo._config import parse_spec
from montecarlo._dask import DaskExecutor, dask_client, run_chunk_pinned
from montecarlo._engine import Chunk, iter_run, plan
from montecarlo._store import ResultsStore

# Seconds a whole distributed run may take before the executor gives up; far
# above the few seconds these runs need, so only a hang trips it.
RUN_TIMEOUT = 120

SPEC = """
title = "dask test"
seed = 9
[defaults]
trials = 24
n = 6
d = 5
width = 6
[configs.g]
theorem = "4.1"
weights = "gaussian"
activation = "relu"
depth = [1, 3]
batch_sizes = [2, 3]
[configs.fixed]
theorem = "4.1"
weights = "gaussian"
fixed_data = true
[configs.o]
theorem = "6.1"
weights = "orthogonal_linear"
activation = "identity"
output_activation = false
depth = 2
"""

# Heavier trials for the kill test (about a millisecond each, 40 chunks of 32),
# so that chunks are still running on both workers when one of them is killed.
HEAVY = """
title = "dask kill test"
seed = 4
[defaults]
trials = 1280
n = 32
d = 32
width = 256
depth = 3
[configs.g]
theorem = "4.1"
weights = "gaussian"
"""


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as c,
    ):
        c.wait_for_workers(2, timeout=RUN_TIMEOUT)
        yield c


def _rows(out):
    df = (
        mc.load_results(out)
        .sort_values(["config_hash", "trial"])
        .reset_index(drop=True)
    )
    mb = mc.load_results(out, table="minibatch")
    return df, mb.sort_values(["config_hash", "trial", "B"]).reset_index(drop=True)


def _assert_same_rows(a, b):
    ra, rb = _rows(a), _rows(b)
    assert len(ra[0]) > 0
    pd.testing.assert_frame_equal(ra[0], rb[0], check_exact=True)
    pd.testing.assert_frame_equal(ra[1], rb[1], check_exact=True)


def test_dask_run_equals_single_process_run_row_for_row(client, tmp_path):
    spec = parse_spec(SPEC, name="dask")
    mc.run_sweep(spec, tmp_path / "serial", chunk_size=5)
    # Chunks of 2 trials: many tasks, finishing out of order on two workers.
    last = mc.run_sweep(
        spec,
        tmp_path / "dask",
        chunk_size=2,
        executor=DaskExecutor(client, timeout=RUN_TIMEOUT),
    )
    assert last.done == last.total == 4 * 24
    _assert_same_rows(tmp_path / "dask", tmp_path / "serial")


def test_workers_run_numba_and_blas_on_one_thread(client):
    # numba's thread count is per calling thread; without pinning, a worker
    # thread would use NUMBA_NUM_THREADS threads (the core count).
    config = mc.Config(n=4, d=3, width=5, trials=2)
    key = mc.samplers.stream_key(0, config.config_hash)
    chunk = Chunk(config, config.config_hash, 0, key, np.arange(2), None, "numba")
    DaskExecutor(client)  # registers the BLAS plugin
    for addr in client.nthreads():
        client.submit(run_chunk_pinned, chunk, workers=[addr], pure=False).result(
            timeout=RUN_TIMEOUT
        )
        fut = client.submit(numba.get_num_threads, workers=[addr], pure=False)
        assert fut.result(timeout=RUN_TIMEOUT) == 1

    def blas_threads():
        from threadpoolctl import threadpool_info

        return {i["internal_api"]: i["num_threads"] for i in threadpool_info()}

    for info in client.run(blas_threads).values():
        assert info and set(info.values()) == {1}, info


def _refault_pages():
    """Page faults of touching a 4 MB array allocated where one was just freed."""
    import resource

    import numpy as np

    np.ones(1 << 19).sum()  # allocate, touch, free 4 MB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(1 << 19).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc malloc tuning (Linux)"
)
def test_workers_reuse_freed_memory_instead_of_page_faulting(client):
    DaskExecutor(client)  # registers the worker plugin
    # 4 MB = 1024 pages: unmapped on free and faulted in again under the
    # nanny's MALLOC_TRIM_THRESHOLD_, reused from the heap once tuned
    for faults in client.run(_refault_pages).values():
        assert faults < 100, faults


def _attempts(client, config_hash):
    """How many times each task of a configuration was started, by task key."""

    def starts(dask_scheduler, prefix):
        counts = {}
        for key, _, finish, *_ in dask_scheduler.transition_log:
            if str(key).startswith(prefix) and finish == "processing":
                counts[key] = counts.get(key, 0) + 1
        return counts

    return client.run_on_scheduler(starts, prefix=f"montecarlo-chunk-{config_hash}-")


def test_failing_task_is_retried_then_raised(client):
    config = mc.Config(n=4, d=2, width=3, trials=2)
    key = mc.samplers.stream_key(0, config.config_hash)
    bad = Chunk(config, config.config_hash, 0, key, np.arange(2), None, "no-such")
    executor = DaskExecutor(client, retries=2, timeout=RUN_TIMEOUT)
    with pytest.raises(ValueError, match="backend must be one of"):
        list(executor.map_unordered([bad]))
    # the first attempt and two retries
    assert list(_attempts(client, config.config_hash).values()) == [3]


def test_bad_executor_arguments_fail_before_any_work(client):
    with pytest.raises(ValueError, match="retries must be an integer >= 0, got -1"):
        DaskExecutor(client, retries=-1)
    with pytest.raises(ValueError, match="timeout must be None or a number > 0"):
        DaskExecutor(client, timeout=0)
    with pytest.raises(ValueError, match="exactly one of workers and scheduler"):
        with dask_client():
            pass
    with pytest.raises(ValueError, match="workers must be an integer >= 1, got 0"):
        with dask_client(workers=0):
            pass


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "--workers must be an integer >= 1, got 0"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "exclusive"),
        (["--workers", "2", "--threads", "1"], "--threads applies to in-process"),
        (["--scheduler", " "], "--scheduler must be a Dask scheduler address"),
    ],
)
def test_cli_rejects_bad_dask_flags(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--no-report", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_scheduler_flag_runs_on_the_cluster_and_leaves_it_up(client, tmp_path):
    spec_path = tmp_path / "s.toml"
    spec_path.write_text(SPEC)
    argv = [
        "--spec",
        str(spec_path),
        "--no-report",
        "--no-progress",
        "--chunk-size",
        "7",
    ]
    with get_task_stream(client) as ts:
        code = cli.main(
            [
                *argv,
                "--out",
                str(tmp_path / "dask"),
                "--scheduler",
                client.scheduler.address,
            ]
        )
    assert code == 0
    ran = [t for t in ts.data if str(t["key"]).startswith("montecarlo-chunk-")]
    assert len(ran) == 4 * 4  # 4 configurations x ceil(24 / 7) chunks, on the cluster
    assert len(client.nthreads()) == 2  # the user's cluster is not shut down
    assert cli.main([*argv, "--out", str(tmp_path / "serial")]) == 0
    _assert_same_rows(tmp_path / "dask", tmp_path / "serial")


def test_cli_workers_flag_starts_and_closes_a_local_cluster(
    tmp_path, capsys, monkeypatch
):
    ran, clients = [], []
    original = DaskExecutor.map_unordered

    def spy(self, chunks):  # record what went through the executor, and its client
        clients.append(self.client)
        for chunk, block in original(self, chunks):
            ran.append(chunk)
            yield chunk, block

    monkeypatch.setattr(DaskExecutor, "map_unordered", spy)
    spec_path = tmp_path / "s.toml"
    spec_path.write_text(SPEC)
    argv = ["--spec", str(spec_path), "--no-report", "--no-progress"]
    assert cli.main([*argv, "--out", str(tmp_path / "dask"), "--workers", "1"]) == 0
    assert "Dask: 1 workers connected" in capsys.readouterr().out
    assert sum(c.trials.size for c in ran) == 4 * 24
    (client,) = clients
    assert client.status == "closed" and client.cluster.status == Status.closed
    mc.run_sweep(parse_spec(SPEC, name="s"), tmp_path / "serial")
    _assert_same_rows(tmp_path / "dask", tmp_path / "serial")


def test_worker_killed_mid_run_loses_and_duplicates_nothing(client, tmp_path):
    spec = parse_spec(HEAVY, name="heavy")
    out = tmp_path / "dask"
    executor = DaskExecutor(client, timeout=RUN_TIMEOUT)
    with ResultsStore(tmp_path / "plan") as store:
        n_chunks = len(
            plan(spec, store, seed=spec.seed, backend="numba", chunk_size=32)[0]
        )
    gen = iter_run(spec, out, chunk_size=32, executor=executor)
    pids = client.run(os.getpid)
    victim = None
    next(gen)  # setup: tasks not submitted yet
    stored_chunks = 0
    deadline = time.monotonic() + RUN_TIMEOUT
    for _ in gen:
        stored_chunks += 1
        if stored_chunks >= 2:
            # kill a worker that is computing chunks right now
            busy = {a: k for a, k in client.processing().items() if k}
            assert busy, "no chunk in flight: the run is too short to test a kill"
            victim = next(iter(busy))
            os.kill(pids[victim], signal.SIGKILL)
            break
        assert time.monotonic() < deadline
    assert victim is not None
    assert stored_chunks < n_chunks
    rest = list(gen)  # the rest of the run, with one worker lost
    stored_chunks += len(rest)
    progress = rest[-1]
    assert (
        not psutil.pid_exists(pids[victim])
        or psutil.Process(pids[victim]).status() == psutil.STATUS_ZOMBIE
    )
    assert progress.done == progress.total == 1280
    # the chunks the victim held were started again elsewhere
    (config_hash,) = {c.config_hash for _, c in spec.configs()}
    assert max(_attempts(client, config_hash).values()) >= 2
    assert stored_chunks == n_chunks  # one stored block per chunk, none twice
    df = mc.load_results(out)
    assert len(df) == 1280 and not df.duplicated(["config_hash", "seed", "trial"]).any()
    mc.run_sweep(spec, tmp_path / "serial", chunk_size=64)
    _assert_same_rows(out, tmp_path / "serial")
