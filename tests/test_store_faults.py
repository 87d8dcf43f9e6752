"""Fault injection on the results store: nothing lost, nothing silently wrong.

Each fault (a truncated, garbage or bit-flipped file, the file deleted or
replaced mid-run, a second writer, a read-only directory, a full disk,
Ctrl-C) must end either in rows equal to those of an uninterrupted run, or
in a one-line error that names the problem (and leaves what is stored as it
was). Tests open the SQLite file themselves only to build what the package
must refuse (an old-format store) or to show what SQLite alone misses.
"""

import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import figures.__main__ as figures_cli
import montecarlo as mc
from montecarlo import _store, run
from montecarlo._engine import iter_run
from montecarlo._stats import TRIAL_COLUMNS, TrialBlock
from montecarlo._store import (
    DB_NAME,
    CorruptStoreError,
    OutdatedStoreError,
    ResultsStore,
    StoreError,
    StoreWriteError,
    count_trials,
    load_results,
    read_meta,
)

ROOT = Path(__file__).parents[1]
SPEC = """
title = "faults"
seed = 7
[defaults]
trials = 24
n = 6
d = 5
width = 6
[configs.g]
theorem = "4.1"
weights = "gaussian"
depth = [1, 2]
batch_sizes = [3]
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of SPEC: its directory and its rows."""
    out = tmp_path_factory.mktemp("reference")
    mc.run_sweep(mc.parse_spec(SPEC, name="faults"), out, chunk_size=5)
    return out, _rows(out)


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "faults.toml"
    path.write_text(SPEC)
    return path


def _rows(out):
    trials = load_results(out).sort_values(["config_hash", "trial"])
    mb = load_results(out, table="minibatch").sort_values(["config_hash", "trial", "B"])
    return trials.reset_index(drop=True), mb.reset_index(drop=True)


def _assert_same_rows(out, reference):
    got = _rows(out)
    pd.testing.assert_frame_equal(got[0], reference[1][0], check_exact=True)
    pd.testing.assert_frame_equal(got[1], reference[1][1], check_exact=True)


def _cli(spec_file, out, *extra):
    return ["--spec", str(spec_file), "--out", str(out), "--no-report", *extra]


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def _copy_of(reference, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / DB_NAME).write_bytes((reference[0] / DB_NAME).read_bytes())
    return out


# --- unreadable files ----------------------------------------------------------


def _truncate(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2 + 100])


def _garbage(db: Path) -> None:
    db.write_bytes(bytes(range(256)) * 40)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [(_truncate, "is truncated"), (_garbage, "is not a SQLite database")],
)
def test_unreadable_file_is_named_and_fresh_moves_it_aside(
    damage, problem, reference, spec_file, tmp_path, capsys, caplog
):
    out = _copy_of(reference, tmp_path)
    db = out / DB_NAME
    damage(db)
    broken = db.read_bytes()
    with pytest.raises(CorruptStoreError, match=problem):
        load_results(out)
    with pytest.raises(CorruptStoreError, match=problem):
        read_meta(out)
    # a resume refuses it, says how to recover, and leaves it as it was
    assert run.main(_cli(spec_file, out, "--no-progress")) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(db) in line and problem in line and "--fresh" in line
    assert db.read_bytes() == broken
    # the figures say the same in one line
    assert figures_cli.main([str(out)]) == 2
    assert problem in _one_error_line(capsys.readouterr().err)
    # --fresh moves it aside (kept, byte for byte) and starts over
    assert run.main(_cli(spec_file, out, "--no-progress", "--fresh")) == 0
    (moved,) = out.glob(f"{DB_NAME}.corrupt-*")
    assert f"moved it aside to {moved} and starting over" in caplog.text
    assert moved.read_bytes() == broken
    _assert_same_rows(out, reference)


def _flip(db: Path, old: bytes, new: bytes) -> None:
    """Replace every copy of ``old`` (live cells and stale copies in free pages)."""
    data = db.read_bytes()
    assert data.count(old) >= 1, old
    db.write_bytes(data.replace(old, new))


def test_flipped_bytes_in_a_stored_value_are_caught_by_the_chunk_checksum(
    reference, spec_file, tmp_path, capsys
):
    out = _copy_of(reference, tmp_path)
    db = out / DB_NAME
    row = reference[1][0].iloc[7]  # trial 7 of one configuration: chunk 5..9
    value = _store.struct.pack(">d", row.min_inner)  # SQLite stores REAL big-endian
    _flip(db, value, value[:4] + bytes(b ^ 0xFF for b in value[4:]))
    with sqlite3.connect(db) as conn:  # what SQLite alone says: nothing is wrong
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    chunk = f"chunk of trials 5..9 of configuration {row.config_hash} (seed 7)"
    with pytest.raises(CorruptStoreError, match=re.escape(chunk)):
        load_results(out)
    mb = load_results(out, table="minibatch")  # its own checksums still hold
    pd.testing.assert_frame_equal(
        mb.sort_values(["config_hash", "trial", "B"]).reset_index(drop=True),
        reference[1][1],
        check_exact=True,
    )
    assert figures_cli.main([str(out)]) == 2
    assert chunk in _one_error_line(capsys.readouterr().err)
    assert run.main(_cli(spec_file, out, "--no-progress")) == 2
    assert chunk in _one_error_line(capsys.readouterr().err)


def test_altered_configuration_fails_its_checksum(reference, tmp_path):
    out = _copy_of(reference, tmp_path)
    _flip(out / DB_NAME, b'"width": 6', b'"width": 7')
    with pytest.raises(CorruptStoreError, match="configuration '.*' fails its"):
        load_results(out)


def test_altered_metadata_fails_its_checksum(reference, tmp_path, capsys):
    out = _copy_of(reference, tmp_path)
    _flip(out / DB_NAME, b"seed = 7", b"seed = 8")  # in the stored spec text
    with pytest.raises(CorruptStoreError, match="run metadata .* fails its checksum"):
        read_meta(out)
    assert figures_cli.main([str(out)]) == 2
    assert "run metadata" in _one_error_line(capsys.readouterr().err)


def test_store_of_the_format_before_checksums_is_refused_by_name(tmp_path, capsys):
    with sqlite3.connect(tmp_path / DB_NAME) as conn:  # the version-1 layout
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("CREATE TABLE trials (config_hash TEXT, seed INT, trial INT)")
    with pytest.raises(OutdatedStoreError, match="before stores had per-chunk"):
        load_results(tmp_path)
    assert figures_cli.main([str(tmp_path)]) == 2
    assert "per-chunk checksums" in _one_error_line(capsys.readouterr().err)
    spec = mc.parse_spec(SPEC, name="faults")
    with pytest.raises(OutdatedStoreError, match="--fresh"):
        mc.run_sweep(spec, tmp_path)
    mc.run_sweep(spec, tmp_path, fresh=True)
    assert len(list(tmp_path.glob(f"{DB_NAME}.corrupt-*"))) == 1


# --- the file disappears or changes under a running writer -------------------------


def _stop_after_two_chunks(spec, out):
    gen = iter_run(spec, out, chunk_size=5)
    for _ in range(3):  # setup, then two chunks stored
        next(gen)
    return gen


def test_deleted_mid_run_stops_before_the_next_write_and_rescues_the_trials(
    reference, tmp_path
):
    spec = mc.parse_spec(SPEC, name="faults")
    out = tmp_path / "out"
    gen = _stop_after_two_chunks(spec, out)
    (out / DB_NAME).unlink()
    with pytest.raises(StoreWriteError, match="was deleted") as info:
        next(gen)
    message = str(info.value)
    assert "\n" not in message and "held 10 trials (10 written by this run)" in message
    (rescued,) = out.glob(f"{DB_NAME}.rescued-*")
    assert str(rescued) in message and not (out / DB_NAME).exists()
    saved = load_results(rescued).sort_values(["config_hash", "trial"])
    expected = reference[1][0]
    expected = expected[expected.config_hash.isin(saved.config_hash)]
    pd.testing.assert_frame_equal(
        saved.reset_index(drop=True),
        expected[expected.trial < 10].reset_index(drop=True),
        check_exact=True,
    )
    # the deleted file's log is left behind: the next writer moves it aside
    # rather than let SQLite replay it into a new file of the same name
    assert (out / f"{DB_NAME}-wal").exists()
    mc.run_sweep(spec, out, chunk_size=5)
    assert len(list(out.glob(f"{DB_NAME}.orphan-*-wal"))) == 1
    _assert_same_rows(out, reference)


def test_replaced_mid_run_leaves_the_new_file_alone(reference, tmp_path):
    spec = mc.parse_spec(SPEC, name="faults")
    out = tmp_path / "out"
    gen = _stop_after_two_chunks(spec, out)
    other = tmp_path / "other.sqlite"
    other.write_bytes((reference[0] / DB_NAME).read_bytes())
    os.replace(other, out / DB_NAME)
    with pytest.raises(StoreWriteError, match="was replaced"):
        next(gen)
    gen.close()
    assert (out / DB_NAME).read_bytes() == (reference[0] / DB_NAME).read_bytes()


# --- a second writer -------------------------------------------------------------


def test_second_writer_fails_at_once_naming_the_first(spec_file, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with ResultsStore(out):
        before = sorted(p.name for p in out.iterdir())
        proc = subprocess.run(
            [sys.executable, "-m", "montecarlo.run", *_cli(spec_file, out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert sorted(p.name for p in out.iterdir()) == before
    assert proc.returncode == 2
    line = _one_error_line(proc.stderr)
    assert "is in use by another run" in line and f"process {os.getpid()} " in line
    assert count_trials(out) == 0  # the second one computed and stored nothing


def test_lock_is_reentrant_within_a_process_and_released_on_close(tmp_path):
    with _store.directory_lock(tmp_path), ResultsStore(tmp_path):
        pass
    with ResultsStore(tmp_path):  # released: can be taken again
        pass


# --- reading never writes ------------------------------------------------------------


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()
    }


def test_read_only_directory_is_read_immutably_without_writing(
    reference, tmp_path, monkeypatch
):
    out = _copy_of(reference, tmp_path)
    calls = []

    def no_write_access(path):  # what a read-only mount reports, even to root
        calls.append(Path(path))
        return False

    monkeypatch.setattr(_store, "_writable_directory", no_write_access)
    read_uri = _store._read_uri
    uris = []

    def recording(db):
        uris.append(read_uri(db))
        return uris[-1]

    monkeypatch.setattr(_store, "_read_uri", recording)
    before = _snapshot(out)
    _assert_same_rows(out, reference)
    assert read_meta(out)["spec_name"] == "faults"
    assert _snapshot(out) == before  # no journal, no lock file, no change
    assert calls and uris and all(u.endswith("?immutable=1") for u in uris)


def test_read_only_directory_with_an_unmerged_log_is_refused_not_misread(
    tmp_path, monkeypatch
):
    spec = mc.parse_spec(SPEC, name="faults")
    out = tmp_path / "out"
    gen = _stop_after_two_chunks(spec, out)  # a writer stopped before it closed
    wal = (out / f"{DB_NAME}-wal").read_bytes()
    gen.close()
    (out / f"{DB_NAME}-wal").write_bytes(wal)
    monkeypatch.setattr(_store, "_writable_directory", lambda path: False)
    with pytest.raises(StoreError, match="not yet merged.*directory is read-only"):
        load_results(out)


def test_really_read_only_directory_is_read(reference, tmp_path):
    # chattr +i makes a directory unwritable even for root (tests run as root,
    # where chmod does not stop writes); skipped where that attribute is refused
    out = _copy_of(reference, tmp_path)
    targets = [str(out / DB_NAME), str(out)]
    if subprocess.run(["chattr", "+i", *targets], capture_output=True).returncode:
        pytest.skip("chattr +i is not permitted here (needs CAP_LINUX_IMMUTABLE)")
    try:
        with pytest.raises(OSError):
            (out / "probe").touch()
        _assert_same_rows(out, reference)
        assert sorted(p.name for p in out.iterdir()) == [DB_NAME]
    finally:
        subprocess.run(["chattr", "-i", *targets], check=True)


# --- a failing write ------------------------------------------------------------------


def test_full_disk_says_what_is_kept_and_the_command_resumes(
    reference, spec_file, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "out"
    original = ResultsStore.write_block
    writes = []

    def fill_the_disk_after_two_chunks(self, config_hash, seed, block):
        if len(writes) == 2:  # SQLite's own "database or disk is full" from now on
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            self._conn.execute(f"PRAGMA max_page_count = {pages}")
        writes.append(block.trials.size)
        original(self, config_hash, seed, block)

    monkeypatch.setattr(ResultsStore, "write_block", fill_the_disk_after_two_chunks)
    args = _cli(spec_file, out, "--no-progress", "--chunk-size", "5")
    assert run.main(args) == 1
    line = _one_error_line(capsys.readouterr().err)
    match = re.fullmatch(
        rf"error: cannot write to {re.escape(str(out / DB_NAME))}: the disk is full "
        r"\(database or disk is full\); (\d+) trials are stored there and kept "
        r"\(the chunk of (\d+) trials in flight was not\); resume with: (.+)",
        line,
    )
    assert match, line
    assert int(match[1]) == count_trials(out) < 48 and int(match[2]) in (4, 5)
    command = match[3]
    assert command == shlex.join(["python", "-m", "montecarlo.run", *args])
    monkeypatch.undo()
    assert run.main(shlex.split(command)[3:]) == 0
    _assert_same_rows(out, reference)


class _FailingConnection:
    """A connection whose writes fail as SQLite's do on an I/O error."""

    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def __enter__(self):
        return self._conn.__enter__()

    def __exit__(self, *exc):
        return self._conn.__exit__(*exc)

    def executemany(self, *args):
        raise sqlite3.OperationalError("disk I/O error")


def _block(first, m=5):
    base = np.linspace(-1.0, 1.0, m * len(TRIAL_COLUMNS)).reshape(m, -1)
    return TrialBlock(np.arange(first, first + m), base, (), np.zeros((m, 0, 4)))


def test_every_float_round_trips_through_its_checksum(tmp_path):
    # SQLite keeps whole-number REALs as integers (-0.0 comes back as 0.0) and
    # NaN as NULL: the checksum is of the values as they read back
    values = [-0.0, 0.0, np.nan, np.inf, -np.inf, 4.0, -1e300, 5e-324, 2.0**63, 0.1]
    base = np.resize(values, (5, len(TRIAL_COLUMNS)))
    with ResultsStore(tmp_path) as store:
        store.write_block(
            "h", 0, TrialBlock(np.arange(5), base, (), np.zeros((5, 0, 4)))
        )
    got = load_results(tmp_path)[list(TRIAL_COLUMNS)].to_numpy()
    np.testing.assert_array_equal(got, base)  # -0.0 == 0.0; NaN where NaN


def test_failed_write_is_one_line_and_keeps_what_was_stored(tmp_path):
    with ResultsStore(tmp_path) as store:
        store.write_block("h", 0, _block(0))
        store.write_block("h", 0, _block(5))
        healthy, store._conn = store._conn, _FailingConnection(store._conn)
        with pytest.raises(StoreWriteError) as info:
            store.write_block("h", 0, _block(10))
        store._conn = healthy
    assert str(info.value) == (
        f"cannot write to {tmp_path / DB_NAME}: a write failed (disk I/O error); "
        "10 trials are stored there and kept (the chunk of 5 trials in flight was "
        "not)"
    )
    assert count_trials(tmp_path) == 10


# --- Ctrl-C ---------------------------------------------------------------------------

SIGINT_SPEC = (
    SPEC.replace("trials = 24", "trials = 3000")
    .replace("n = 6", "n = 24")
    .replace("width = 6", "width = 256")
)


def test_ctrl_c_mid_run_stores_what_finished_and_prints_the_resume_command(tmp_path):
    spec_file = tmp_path / "sigint.toml"
    spec_file.write_text(SIGINT_SPEC)
    out = tmp_path / "out"
    args = _cli(spec_file, out, "--no-progress", "--chunk-size", "20")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "montecarlo.run", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    stored = 0
    while proc.poll() is None and time.monotonic() < deadline and stored < 200:
        time.sleep(0.05)
        try:
            stored = count_trials(out)
        except (StoreError, ValueError):  # not created yet
            stored = 0
    assert proc.poll() is None, f"the run ended before Ctrl-C: {proc.stderr.read()}"
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    match = re.fullmatch(
        r"interrupted: (\d+) trials are stored in (.+); resume with: (.+)", last
    )
    assert match, err
    assert match[2] == str(out / DB_NAME)
    assert int(match[1]) == count_trials(out) and 200 <= int(match[1]) < 6000
    assert match[3] == shlex.join(["python", "-m", "montecarlo.run", *args])
    assert run.main(shlex.split(match[3])[3:]) == 0  # resume, in this process
    full = tmp_path / "full"
    mc.run_sweep(mc.parse_spec(SIGINT_SPEC, name="sigint"), full)
    _assert_same_rows(out, (full, _rows(full)))


def test_figures_of_a_directory_without_results_is_one_line(tmp_path, capsys):
    assert figures_cli.main([str(tmp_path)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"out_dir {str(tmp_path)!r} holds no results" in line
    assert list(tmp_path.iterdir()) == []  # no report of 0 claims
