"""Crash-safe results store: one SQLite file per results directory.

Layout of ``results.sqlite``:

- ``meta(key, value)``: the spec's TOML text, its name, the seed;
- ``configs(config_hash, content)``: each configuration's content as JSON;
- ``trials(config_hash, seed, trial, <TRIAL_COLUMNS>)``: one row per trial,
  primary key ``(config_hash, seed, trial)``;
- ``minibatch(config_hash, seed, trial, B, <MINIBATCH_COLUMNS>)``.

Each finished chunk is written in one transaction (write-ahead log), so a
``kill -9`` at any moment loses at most the chunk in flight, and the primary
key makes a duplicate trial impossible. SQLite is embedded in Python: no
server, no extra dependency. SQLite stores NaN as NULL; it reads back as NaN.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from montecarlo._stats import MINIBATCH_COLUMNS, TRIAL_COLUMNS, TrialBlock

__all__ = ["ResultsStore", "load_results"]

DB_NAME = "results.sqlite"


class ResultsStore:
    """Per-trial records of a run directory.

    Args:
        out_dir: The results directory (created if missing).
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / DB_NAME
        self._conn = sqlite3.connect(self.path, timeout=60)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        cols = ", ".join(f"{c} REAL" for c in TRIAL_COLUMNS)
        mcols = ", ".join(f"{c} REAL" for c in MINIBATCH_COLUMNS)
        with self._conn:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS configs "
                "(config_hash TEXT PRIMARY KEY, content TEXT NOT NULL)"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS trials (config_hash TEXT NOT NULL, "
                f"seed INTEGER NOT NULL, trial INTEGER NOT NULL, {cols}, "
                "PRIMARY KEY (config_hash, seed, trial))"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS minibatch (config_hash TEXT NOT NULL, "
                "seed INTEGER NOT NULL, trial INTEGER NOT NULL, B INTEGER NOT NULL, "
                f"{mcols}, PRIMARY KEY (config_hash, seed, trial, B))"
            )

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

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
        """Write metadata values (one transaction)."""
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", items.items()
            )

    def add_configs(self, configs: Iterable[tuple[str, dict]]) -> None:
        """Record ``(config_hash, content)`` pairs (idempotent)."""
        with self._conn:
            self._conn.executemany(
                "INSERT OR IGNORE INTO configs (config_hash, content) VALUES (?, ?)",
                [(h, json.dumps(c, sort_keys=True)) for h, c in configs],
            )

    def clear(self) -> None:
        """Delete every trial and configuration (``--fresh``)."""
        with self._conn:
            for table in ("trials", "minibatch", "configs", "meta"):
                self._conn.execute(f"DELETE FROM {table}")

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
        """Write one finished chunk atomically."""
        rows = [
            (config_hash, seed, int(t), *map(_to_sql, rec))
            for t, rec in zip(block.trials, block.base, strict=True)
        ]
        mrows = [
            (config_hash, seed, int(t), int(b), *map(_to_sql, block.minibatch[i, j]))
            for i, t in enumerate(block.trials)
            for j, b in enumerate(block.batch_sizes)
        ]
        marks = ", ".join("?" * (3 + len(TRIAL_COLUMNS)))
        mmarks = ", ".join("?" * (4 + len(MINIBATCH_COLUMNS)))
        with self._conn:
            self._conn.executemany(f"INSERT INTO trials VALUES ({marks})", rows)
            if mrows:
                self._conn.executemany(
                    f"INSERT INTO minibatch VALUES ({mmarks})", mrows
                )


def _to_sql(x: float) -> float | None:
    x = float(x)
    return x if x == x else None


def load_results(path: str | Path, *, table: str = "trials") -> pd.DataFrame:
    """Per-trial results of a run as a DataFrame.

    Args:
        path: The results directory (or its ``results.sqlite``).
        table: ``"trials"`` (one row per trial) or ``"minibatch"`` (one row per
            trial and mini-batch size ``B``).

    Returns:
        One row per stored trial. Columns: ``config_hash``, ``seed``, ``trial``;
        the configuration's fields (``theorem``, ``n``, ``d``, ``depth``,
        ``width``, ``activation``, ``loss``, ``weights``, ``kappa``, ``r``, ...);
        then the statistics, documented in :data:`montecarlo.TRIAL_COLUMNS`
        (``finite``, ``min_inner``, ``min_cos``, ``offdiag_mean``,
        ``neg_pairs``, ``min_norm``, ``max_norm``, ``inner01``, ``cos01``) or,
        for ``"minibatch"``, ``B`` and :data:`montecarlo.MINIBATCH_COLUMNS`.
        Statistics of non-finite trials (``finite == 0``) are NaN.

    Raises:
        ValueError: If ``table`` is unknown or no results exist at ``path``.
    """
    if table not in ("trials", "minibatch"):
        raise ValueError(f"table must be 'trials' or 'minibatch', got {table!r}")
    p = Path(path)
    db = p if p.suffix == ".sqlite" else p / DB_NAME
    if not db.is_file():
        raise ValueError(f"path {str(path)!r} holds no results ({DB_NAME} not found)")
    conn = sqlite3.connect(db)
    try:
        df = pd.read_sql_query(
            f"SELECT * FROM {table} ORDER BY config_hash, seed, trial", conn
        )
        configs = conn.execute("SELECT config_hash, content FROM configs").fetchall()
    finally:
        conn.close()
    meta = pd.DataFrame([{"config_hash": h, **json.loads(c)} for h, c in configs])
    if meta.empty:
        return df
    meta["batch_sizes"] = meta["batch_sizes"].map(tuple)
    out = meta.merge(df, on="config_hash", how="right")
    stat_cols = list(TRIAL_COLUMNS if table == "trials" else MINIBATCH_COLUMNS)
    out[stat_cols] = out[stat_cols].astype(float)
    return out
