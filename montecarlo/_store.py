"""Crash-safe, verified results store: one SQLite file per results directory.

Layout of ``results.sqlite`` (``PRAGMA user_version`` = :data:`STORE_VERSION`):

- ``meta(key, value)``: the spec's TOML text, its name, the seed, and
  ``meta_sha256``, a checksum of the other rows;
- ``configs(config_hash, content)``: each configuration's content as JSON (its
  hash is the checksum: :attr:`montecarlo.Config.config_hash`);
- ``trials(config_hash, seed, trial, <TRIAL_COLUMNS>)``: one row per trial,
  primary key ``(config_hash, seed, trial)``;
- ``minibatch(config_hash, seed, trial, B, <MINIBATCH_COLUMNS>)``;
- ``chunks(config_hash, seed, first, count, trials_sha256, minibatch_sha256)``:
  one row per stored chunk (trials ``first .. first + count - 1``), written in
  the same transaction as the chunk's rows. ``trials_sha256`` is the SHA-256
  of the chunk's trial rows in trial order, each encoded as the trial index
  (``<q``, little-endian int64) then the statistics (``<d`` each, a NULL as
  the quiet NaN ``0x7FF8000000000000``, -0.0 as 0.0, as SQLite returns it);
  ``minibatch_sha256`` the same over
  its mini-batch rows in ``(trial, B)`` order, each ``<q`` trial, ``<q`` B, then
  the statistics.

SQLite has no page checksums: ``PRAGMA integrity_check`` checks structure, not
values, so flipped bits inside a stored number go unnoticed. Every read
(:func:`load_results`, :func:`read_meta`, and the writer when it resumes)
therefore checks each chunk, each configuration and the metadata against
their checksums and raises :class:`CorruptStoreError` naming what fails.
Stores written before the checksums (user_version 0) are refused with an
:class:`OutdatedStoreError` that says so; ``--fresh`` moves them aside.

Writing: each finished chunk is one transaction in write-ahead-log mode, so a
``kill -9`` loses at most the chunk in flight and the primary key makes a
duplicate trial impossible. One process writes a directory at a time: the
writer holds an exclusive ``flock`` on ``results.lock`` (which names its
process, host and start time), and a second writer fails at once naming the
holder. Before each write the writer checks that the file at the path is
still the one it opened (deleted or replaced mid-run: it stops, saving what it
wrote to a ``results.sqlite.rescued-<time>`` file). A failed write (disk full,
I/O error) raises :class:`StoreWriteError`, saying what is kept. On close the
writer merges the write-ahead log and leaves a self-contained file.

Reading never writes: the file is opened read-only, and immutable (no lock
files) where its directory is not writable, e.g. a read-only mount. Nothing
outside this module opens the SQLite file. SQLite stores NaN as NULL; it
reads back as NaN.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import logging
import os
import socket
import sqlite3
import struct
import sys
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from montecarlo._stats import MINIBATCH_COLUMNS, TRIAL_COLUMNS, TrialBlock

__all__ = [
    "CorruptStoreError",
    "DB_NAME",
    "LOCK_NAME",
    "OutdatedStoreError",
    "ResultsStore",
    "StoreError",
    "StoreWriteError",
    "count_trials",
    "directory_lock",
    "load_results",
    "read_meta",
]

DB_NAME = "results.sqlite"
LOCK_NAME = "results.lock"
STORE_VERSION = 2
"""``PRAGMA user_version`` of stores with per-chunk checksums."""

_log = logging.getLogger("montecarlo")
_TABLES = ("meta", "configs", "trials", "minibatch", "chunks")
_TRIAL_ROW = struct.Struct("<q" + "d" * len(TRIAL_COLUMNS))
_MINIBATCH_ROW = struct.Struct("<qq" + "d" * len(MINIBATCH_COLUMNS))
_META_SUM = "meta_sha256"


class StoreError(Exception):
    """A results store that cannot be used as asked; the one-line message says why."""


class CorruptStoreError(StoreError):
    """The file is not a usable store: unreadable, or values fail their checksum.

    ``--fresh`` (``ResultsStore(fresh=True)``) moves such a file aside.

    Attributes:
        problem: What is wrong, without the advice on recovery.
    """

    def __init__(self, db: Path, problem: str) -> None:
        self.problem = problem
        super().__init__(
            f"{problem}: move it aside (mv {db} {db}.bad) and rerun, or rerun with "
            "--fresh to start over (it moves the file aside)"
        )


class OutdatedStoreError(CorruptStoreError):
    """The file was written by another version of the store (no checksums, or newer)."""


class StoreWriteError(StoreError):
    """A write failed (disk full, I/O error); what was stored before is kept."""


# --- file checks --------------------------------------------------------------


def _db_path(path: str | Path) -> Path:
    p = Path(path)
    return p / DB_NAME if p.is_dir() else p


def _check_file(db: Path) -> None:
    """Refuse a file that is not a SQLite database or is shorter than it says."""
    size = db.stat().st_size
    if size == 0:  # SQLite's empty database
        return
    with open(db, "rb") as f:
        head = f.read(100)
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        raise CorruptStoreError(
            db, f"{db} is not a SQLite database (its header is missing or overwritten)"
        )
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    size_valid = pages > 0 and head[24:28] == head[92:96]
    if page < 512 or size % page or (size_valid and size < pages * page):
        expected = f"{pages * page} bytes" if size_valid else "whole pages"
        raise CorruptStoreError(
            db, f"{db} is truncated ({size} bytes; its header says {expected})"
        )


def _is_corruption(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB"


def _corrupt(db: Path, exc: sqlite3.Error) -> CorruptStoreError:
    return CorruptStoreError(db, f"{db} is corrupt ({exc})")


def _check_version(db: Path, conn: sqlite3.Connection) -> set[str]:
    """Refuse stores of another format; returns the names of the tables."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    if version == 0 and tables:
        raise OutdatedStoreError(
            db,
            f"{db} was written before stores had per-chunk checksums, so its rows "
            "cannot be verified",
        )
    if version > STORE_VERSION:
        raise OutdatedStoreError(
            db,
            f"{db} has store version {version}, newer than this package reads "
            f"({STORE_VERSION}; update gradient-confusion)",
        )
    if version == STORE_VERSION and not set(_TABLES) <= tables:
        raise CorruptStoreError(
            db, f"{db} lacks the tables {sorted(set(_TABLES) - tables)}"
        )
    return tables


# --- checksums ----------------------------------------------------------------


def _digest(rows: Iterable[Sequence], packer: struct.Struct, keys: int) -> str:
    """SHA-256 of rows: ``keys`` leading integers, then floats as SQLite keeps them.

    None (NULL, a NaN) is encoded as the quiet NaN and -0.0 as 0.0: SQLite
    stores a whole-number REAL as an integer, so -0.0 reads back as 0.0.
    """
    h = hashlib.sha256()
    nan = float("nan")
    for r in rows:
        values = (nan if x is None else x + 0.0 for x in r[keys:])  # -0.0 + 0.0 = 0.0
        h.update(packer.pack(*r[:keys], *values))
    return h.hexdigest()


def _meta_digest(items: dict[str, str]) -> str:
    body = {k: v for k, v in items.items() if k != _META_SUM}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _config_digest(content: dict) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _verify_meta(db: Path, items: dict[str, str]) -> dict[str, str]:
    if items and items.get(_META_SUM) != _meta_digest(items):
        raise CorruptStoreError(
            db,
            f"{db}: the run metadata (spec, seed) fails its checksum (the file was "
            "altered after it was written)",
        )
    return {k: v for k, v in items.items() if k != _META_SUM}


def _verify_configs(db: Path, rows: list[tuple[str, str]]) -> dict[str, dict]:
    out = {}
    for h, text in rows:
        try:
            content = json.loads(text)
            ok = _config_digest(content) == h
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise CorruptStoreError(
                db,
                f"{db}: configuration {h!r} fails its checksum (its stored content "
                "does not hash to its key: the file was altered after it was written)",
            )
        out[h] = content
    return out


def _verify_rows(
    db: Path,
    rows: list[tuple],
    chunks: list[tuple],
    table: str,
) -> None:
    """Check ``rows`` (sorted by hash, seed, trial[, B]) against the chunk table."""
    packer, keys, which = (
        (_TRIAL_ROW, 1, 0) if table == "trials" else (_MINIBATCH_ROW, 2, 1)
    )
    groups: dict[tuple, tuple[list[tuple], list[int]]] = {}
    for r in rows:
        group, trials = groups.setdefault((r[0], r[1]), ([], []))
        group.append(r)
        trials.append(r[2])
    covered = 0
    for h, seed, first, count, *sums in chunks:
        group, trials = groups.get((h, seed), ([], []))
        part = group[bisect_left(trials, first) : bisect_left(trials, first + count)]
        covered += len(part)
        try:
            ok = _digest((r[2:] for r in part), packer, keys) == sums[which]
        except (struct.error, TypeError):  # a cell whose type was altered
            ok = False
        if table == "trials" and len(part) != count:
            ok = False
        if not ok:
            raise CorruptStoreError(
                db,
                f"{db}: the chunk of trials {first}..{first + count - 1} of "
                f"configuration {h} (seed {seed}) fails its checksum in table "
                f"{table!r} (stored values were altered after they were written)",
            )
    if covered != len(rows):
        chunked = {(c[0], c[1], t) for c in chunks for t in range(c[2], c[2] + c[3])}
        stray = next(r for r in rows if (r[0], r[1], r[2]) not in chunked)
        raise CorruptStoreError(
            db,
            f"{db}: table {table!r} holds trial {stray[2]} of configuration "
            f"{stray[0]} (seed {stray[1]}), which no stored chunk lists (the file "
            "was altered after it was written)",
        )


# --- reading ------------------------------------------------------------------


def _writable_directory(path: Path) -> bool:
    """Whether files can be created in ``path`` (False on a read-only mount)."""
    return os.access(path, os.W_OK)


def _read_uri(db: Path) -> str:
    """``mode=ro``, or ``immutable=1`` where the directory is not writable."""
    uri = "file:" + quote(str(db.resolve()))
    if _writable_directory(db.parent):
        return uri + "?mode=ro"
    wal = db.with_name(db.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise StoreError(
            f"{db} has writes not yet merged into it ({wal}: its writer was stopped "
            "before it closed) and its directory is read-only: copy the directory "
            "to a writable place and read it there"
        )
    return uri + "?immutable=1"


@contextlib.contextmanager
def _reading(path: str | Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A read-only connection to a verified-format store; errors named."""
    db = _db_path(path)
    if not db.is_file():
        raise ValueError(f"path {str(path)!r} holds no results ({DB_NAME} not found)")
    _check_file(db)
    try:
        conn = sqlite3.connect(_read_uri(db), uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {db} for reading: {exc}") from None
    try:
        if not _check_version(db, conn):
            raise ValueError(f"path {str(path)!r} holds no results ({db} is empty)")
        yield db, conn
    except sqlite3.Error as exc:
        if _is_corruption(exc):
            raise _corrupt(db, exc) from None
        raise StoreError(f"cannot read {db}: {exc}") from None
    finally:
        conn.close()


def read_meta(path: str | Path) -> dict[str, str]:
    """The run metadata of a store (``spec_name``, ``spec_text``, ``seed``, ...).

    Args:
        path: The results directory (or its ``results.sqlite``).

    Returns:
        Key -> value; empty for a store that was never given a spec.

    Raises:
        ValueError: If no store exists at ``path``.
        StoreError: If the file is unreadable, from an older format or fails
            its checksum (:class:`CorruptStoreError`).
    """
    with _reading(path) as (db, conn):
        return _verify_meta(db, dict(conn.execute("SELECT key, value FROM meta")))


def count_trials(path: str | Path) -> int:
    """The number of trial rows stored (unverified; for progress messages).

    Args:
        path: The results directory (or its ``results.sqlite``).

    Returns:
        The row count of the ``trials`` table.

    Raises:
        ValueError: If no store exists at ``path``.
        StoreError: If the file is unreadable or from an older format.
    """
    with _reading(path) as (_, conn):
        return conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]


def load_results(path: str | Path, *, table: str = "trials") -> pd.DataFrame:
    """Per-trial results of a run as a DataFrame, verified against their checksums.

    Args:
        path: The results directory (or its ``results.sqlite``, or a moved-aside
            copy of it).
        table: ``"trials"`` (one row per trial) or ``"minibatch"`` (one row per
            trial and mini-batch size ``B``).

    Returns:
        One row per stored trial. Columns: ``config_hash``, ``seed``, ``trial``;
        the configuration's fields (``theorem``, ``n``, ``d``, ``depth``,
        ``width``, ``activation``, ``loss``, ``weights``, ``kappa``, ``r``, ...);
        then the statistics, documented in :data:`montecarlo.backends.TRIAL_COLUMNS`
        (``finite``, ``min_inner``, ``min_cos``, ``offdiag_mean``,
        ``neg_pairs``, ``min_norm``, ``max_norm``, ``inner01``, ``cos01``) or,
        for ``"minibatch"``, ``B`` and :data:`montecarlo.backends.MINIBATCH_COLUMNS`.
        Statistics of non-finite trials (``finite == 0``) are NaN.

    Raises:
        ValueError: If ``table`` is unknown or no results exist at ``path``.
        StoreError: If the file is unreadable or from an older format;
            :class:`CorruptStoreError` naming the chunk or configuration whose
            stored values fail their checksum.
    """
    if table not in ("trials", "minibatch"):
        raise ValueError(f"table must be 'trials' or 'minibatch', got {table!r}")
    cols = TRIAL_COLUMNS if table == "trials" else ("B", *MINIBATCH_COLUMNS)
    order = "config_hash, seed, trial" + (", B" if table == "minibatch" else "")
    with _reading(path) as (db, conn):
        rows = conn.execute(
            f"SELECT config_hash, seed, trial, {', '.join(cols)} FROM {table} "
            f"ORDER BY {order}"
        ).fetchall()
        chunks = conn.execute("SELECT * FROM chunks").fetchall()
        configs = _verify_configs(
            db, conn.execute("SELECT config_hash, content FROM configs").fetchall()
        )
    _verify_rows(db, rows, chunks, table)
    df = pd.DataFrame(rows, columns=["config_hash", "seed", "trial", *cols])
    stat_cols = list(TRIAL_COLUMNS if table == "trials" else MINIBATCH_COLUMNS)
    df[stat_cols] = df[stat_cols].astype(float)
    meta = pd.DataFrame([{"config_hash": h, **c} for h, c in configs.items()])
    if meta.empty:
        return df
    meta["batch_sizes"] = meta["batch_sizes"].map(tuple)
    return meta.merge(df, on="config_hash", how="right")


# --- the directory lock -------------------------------------------------------

_HELD: dict[Path, list] = {}  # resolved directory -> [fd, depth], this process


def _timestamp() -> str:
    return datetime.datetime.now().strftime("%Y%m%dT%H%M%S")


@contextlib.contextmanager
def directory_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold the exclusive writer lock of a results directory (re-entrant per process).

    Creates the directory if missing; the lock file ``results.lock`` says who
    holds it (process id, host, start time, command).

    Args:
        out_dir: The results directory.

    Yields:
        The directory as a ``Path``.

    Raises:
        StoreError: If the directory cannot be created or written, or another
            process holds the lock (the message names it).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(
            f"results directory {out} exists and is not a directory"
        ) from None
    except OSError as exc:
        raise StoreError(
            f"cannot create results directory {out}: {exc.strerror}; "
            "choose a writable --out"
        ) from None
    key = out.resolve()
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield out
        finally:
            _HELD[key][1] -= 1
        return
    path = out / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(
            f"cannot write to results directory {out}: {exc.strerror}; "
            "choose a writable --out"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
            raise StoreError(
                f"results directory {out} is in use by another run "
                f"({holder or 'process unknown'}; lock {path}): wait for it to "
                "finish or stop it, or choose another --out"
            ) from None
        who = (
            f"process {os.getpid()} on {socket.gethostname()} since "
            f"{datetime.datetime.now().isoformat(timespec='seconds')}: "
            f"{' '.join(sys.argv)}"
        ).replace("\n", " ")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, who.encode() + b"\n", 0)
        except OSError as exc:
            raise StoreError(
                f"cannot write to results directory {out}: {exc.strerror}; "
                "free space or choose another --out"
            ) from None
        _HELD[key] = [fd, 1]
        try:
            yield out
        finally:
            del _HELD[key]
            with contextlib.suppress(OSError):  # the lock is released either way
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing releases the flock


# --- writing ------------------------------------------------------------------


def _move_aside(db: Path, why: str) -> Path:
    """Rename ``db`` (and its -wal/-shm) to ``<name>.<why>-<time>``; returns it."""
    target = db.with_name(f"{db.name}.{why}-{_timestamp()}")
    for suffix in ("", "-wal", "-shm"):
        src = db.with_name(db.name + suffix)
        if src.exists():
            src.rename(target.with_name(target.name + suffix))
    return target


def _to_sql(x: float) -> float | None:
    x = float(x)
    return x if x == x else None


class ResultsStore:
    """The writer of a results directory (see the module docstring).

    Args:
        out_dir: The results directory (created if missing).
        fresh: Discard what is stored: rows are deleted, or, if the file is
            unusable (corrupt, truncated, older format), it is moved aside to
            ``results.sqlite.corrupt-<time>`` (logged) and a new one started.

    Raises:
        StoreError: If the directory is locked by another process or not
            writable, or (unless ``fresh``) the existing file is unusable:
            :class:`CorruptStoreError` when it is corrupt or fails a checksum.
    """

    def __init__(self, out_dir: str | Path, *, fresh: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / DB_NAME
        self._exit = contextlib.ExitStack()
        self._conn: sqlite3.Connection | None = None
        with self._exit:
            self._exit.enter_context(directory_lock(self.out_dir))
            self._conn = self._open(fresh)
            st = os.stat(self.path)
            self._identity = (st.st_dev, st.st_ino)
            (self._stored,) = self._conn.execute(
                "SELECT COUNT(*) FROM trials"
            ).fetchone()
            self._written = 0
            self._exit = self._exit.pop_all()

    def _open(self, fresh: bool) -> sqlite3.Connection:
        db = self.path
        conn = None
        if db.exists():
            try:
                conn = self._connect_existing(verify=not fresh)
            except CorruptStoreError as exc:
                if not fresh:
                    raise
                moved = _move_aside(db, "corrupt")
                _log.warning(
                    "%s; moved it aside to %s and starting over (--fresh)",
                    exc.problem,
                    moved,
                )
            else:
                if fresh:
                    with conn:
                        for table in _TABLES:
                            conn.execute(f"DELETE FROM {table}")
        elif any(db.with_name(db.name + s).exists() for s in ("-wal", "-shm")):
            moved = _move_aside(db, "orphan")  # a log without its database
            _log.warning("moved the orphan write-ahead log of %s to %s*", db, moved)
        if conn is None:
            conn = self._connect()
        try:
            with conn:
                self._create_tables(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreWriteError(f"cannot write to {db}: {exc}") from None
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=60)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            if _is_corruption(exc):
                raise _corrupt(self.path, exc) from None
            raise StoreError(
                f"cannot open {self.path} for writing: {exc}; choose a writable --out"
            ) from None
        return conn

    def _connect_existing(self, *, verify: bool) -> sqlite3.Connection:
        _check_file(self.path)
        conn = self._connect()
        try:
            check = conn.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise CorruptStoreError(
                    self.path,
                    f"{self.path} is corrupt (integrity check: {check[0][0]})",
                )
            _check_version(self.path, conn)
            if verify and conn.execute("PRAGMA user_version").fetchone()[0]:
                self._verify_all(conn)
        except sqlite3.Error as exc:
            conn.close()
            if _is_corruption(exc):
                raise _corrupt(self.path, exc) from None
            raise StoreError(f"cannot read {self.path}: {exc}") from None
        except StoreError:
            conn.close()
            raise
        return conn

    def _verify_all(self, conn: sqlite3.Connection) -> None:
        _verify_meta(self.path, dict(conn.execute("SELECT key, value FROM meta")))
        _verify_configs(
            self.path, conn.execute("SELECT config_hash, content FROM configs")
        )
        chunks = conn.execute("SELECT * FROM chunks").fetchall()
        for table, cols, order in (
            ("trials", TRIAL_COLUMNS, "trial"),
            ("minibatch", ("B", *MINIBATCH_COLUMNS), "trial, B"),
        ):
            rows = conn.execute(
                f"SELECT config_hash, seed, trial, {', '.join(cols)} FROM {table} "
                f"ORDER BY config_hash, seed, {order}"
            ).fetchall()
            _verify_rows(self.path, rows, chunks, table)

    @staticmethod
    def _create_tables(conn: sqlite3.Connection) -> None:
        cols = ", ".join(f"{c} REAL" for c in TRIAL_COLUMNS)
        mcols = ", ".join(f"{c} REAL" for c in MINIBATCH_COLUMNS)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS configs "
            "(config_hash TEXT PRIMARY KEY, content TEXT NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS trials (config_hash TEXT NOT NULL, "
            f"seed INTEGER NOT NULL, trial INTEGER NOT NULL, {cols}, "
            "PRIMARY KEY (config_hash, seed, trial))"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS minibatch (config_hash TEXT NOT NULL, "
            "seed INTEGER NOT NULL, trial INTEGER NOT NULL, B INTEGER NOT NULL, "
            f"{mcols}, PRIMARY KEY (config_hash, seed, trial, B))"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS chunks (config_hash TEXT NOT NULL, "
            "seed INTEGER NOT NULL, first INTEGER NOT NULL, count INTEGER NOT NULL, "
            "trials_sha256 TEXT NOT NULL, minibatch_sha256 TEXT NOT NULL, "
            "PRIMARY KEY (config_hash, seed, first))"
        )
        conn.execute(f"PRAGMA user_version = {STORE_VERSION}")

    def close(self) -> None:
        """Merge the write-ahead log into the file, close it, release the lock.

        A failed merge is logged, not raised: the rows are safe in the log,
        which the next writer merges.
        """
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with self._exit:
            what = self._replacement()
            try:
                if what is None:
                    conn.execute("PRAGMA busy_timeout = 5000")
                    mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
                    if mode != "delete":
                        _log.warning(
                            "%s: write-ahead log kept (a reader held the file); the "
                            "next run merges it",
                            self.path,
                        )
            except sqlite3.Error as exc:
                _log.warning(
                    "%s: could not merge the write-ahead log on close (%s); the rows "
                    "are safe in %s-wal and the next run merges them",
                    self.path,
                    exc,
                    self.path,
                )
            finally:
                conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- metadata ---------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A metadata value, or None."""
        row = self._conn.execute(
            "SELECT value FROM meta WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else row[0]

    def set_meta(self, items: dict[str, str]) -> None:
        """Write metadata values and the metadata checksum (one transaction)."""
        self._check_same_file()
        with self._writing(0):
            self._conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", items.items()
            )
            current = dict(self._conn.execute("SELECT key, value FROM meta"))
            self._conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (_META_SUM, _meta_digest(current)),
            )

    def add_configs(self, configs: Iterable[tuple[str, dict]]) -> None:
        """Record ``(config_hash, content)`` pairs (idempotent)."""
        self._check_same_file()
        with self._writing(0):
            self._conn.executemany(
                "INSERT OR IGNORE INTO configs (config_hash, content) VALUES (?, ?)",
                [(h, json.dumps(c, sort_keys=True)) for h, c in configs],
            )

    # --- trials -----------------------------------------------------------
    def done_trials(self, config_hash: str, seed: int) -> np.ndarray:
        """Sorted trial indices already stored for a configuration and seed."""
        rows = self._conn.execute(
            "SELECT trial FROM trials WHERE config_hash = ? AND seed = ? "
            "ORDER BY trial",
            (config_hash, seed),
        ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def write_block(self, config_hash: str, seed: int, block: TrialBlock) -> None:
        """Write one finished chunk and its checksums atomically.

        Raises:
            ValueError: If the block's trials are not consecutive indices.
            StoreWriteError: If the write fails, or the file was deleted or
                replaced since it was opened (what it held is saved aside).
        """
        trials = np.asarray(block.trials, dtype=np.int64)
        if trials.size == 0:
            return
        first = int(trials[0])
        if not np.array_equal(trials, np.arange(first, first + trials.size)):
            raise ValueError(
                f"block.trials must be consecutive indices, got {trials.tolist()}"
            )
        rows = [
            (int(t), *map(_to_sql, rec))
            for t, rec in zip(trials, block.base, strict=True)
        ]
        mrows = [
            (int(t), int(b), *map(_to_sql, block.minibatch[i, j]))
            for i, t in enumerate(trials)
            for j, b in enumerate(block.batch_sizes)
        ]
        chunk = (
            config_hash,
            seed,
            first,
            len(rows),
            _digest(rows, _TRIAL_ROW, 1),
            _digest(mrows, _MINIBATCH_ROW, 2),
        )
        marks = ", ".join("?" * (3 + len(TRIAL_COLUMNS)))
        mmarks = ", ".join("?" * (4 + len(MINIBATCH_COLUMNS)))
        self._check_same_file()
        with self._writing(len(rows)):
            self._conn.executemany(
                f"INSERT INTO trials VALUES ({marks})",
                [(config_hash, seed, *r) for r in rows],
            )
            if mrows:
                self._conn.executemany(
                    f"INSERT INTO minibatch VALUES ({mmarks})",
                    [(config_hash, seed, *r) for r in mrows],
                )
            self._conn.execute("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)", chunk)
        self._stored += len(rows)
        self._written += len(rows)

    @contextlib.contextmanager
    def _writing(self, trials: int) -> Iterator[None]:
        """One transaction; a failure becomes a one-line :class:`StoreWriteError`."""
        try:
            with self._conn:
                yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as exc:
            if _is_corruption(exc):
                raise _corrupt(self.path, exc) from None
            self._raise_write_error(exc, trials)

    def _raise_write_error(self, exc: sqlite3.DatabaseError, trials: int) -> None:
        name = getattr(exc, "sqlite_errorname", "")
        what = {
            "SQLITE_FULL": "the disk is full",
            "SQLITE_READONLY": "the file became read-only",
        }.get(name, "a write failed")
        lost = f" (the chunk of {trials} trials in flight was not)" if trials else ""
        raise StoreWriteError(
            f"cannot write to {self.path}: {what} ({exc}); {self._stored} trials "
            f"are stored there and kept{lost}"
        ) from None

    def _replacement(self) -> str | None:
        """``"deleted"`` or ``"replaced"`` if the path no longer names the open file."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "deleted"
        return None if (st.st_dev, st.st_ino) == self._identity else "replaced"

    def _check_same_file(self) -> None:
        what = self._replacement()
        if what is None:
            return
        rescued = self.path.with_name(f"{DB_NAME}.rescued-{_timestamp()}")
        try:
            with contextlib.closing(sqlite3.connect(rescued)) as target:
                self._conn.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")  # self-contained
            where = (
                f"they are saved in {rescued} (move it back to {DB_NAME} to keep them)"
            )
        except (sqlite3.Error, OSError) as exc:
            where = f"they could not be saved ({exc})"
        raise StoreWriteError(
            f"{self.path} was {what} while this run was writing to it: the open "
            f"file held {self._stored} trials ({self._written} written by this run), "
            f"{where}; nothing more was written"
        )
