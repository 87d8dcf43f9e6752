"""A results directory as stored: spec, trials per group, experiment JSONs.

The read side of a run, shared by the claims (:mod:`montecarlo.claims`) and
the figures; it reads the store only through :mod:`montecarlo._store`.

Reads only what ``python -m montecarlo.run`` wrote into ``OUT``:
``results.sqlite`` (through the read API of :mod:`montecarlo._store`, which
verifies every value against its checksum and never writes) and the
experiments' ``<name>.json`` files. Nothing is recomputed. The trials of a
configuration are those of the stored seed with index below the spec's
``trials`` (the selection of
:func:`montecarlo.theorem_summary`), so every figure and claim uses the same
sample as the run's printed tables.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pandas as pd

from bounds import STATEMENTS
from montecarlo._config import EXPERIMENTS, Config, Spec, parse_spec
from montecarlo._estimates import ConfigSummary, theorem_summary
from montecarlo._statements import statement_of
from montecarlo._store import DB_NAME, load_results, read_meta

__all__ = ["EXPERIMENT_NAMES", "GroupTrials", "StoredRun", "load_run"]

EXPERIMENT_NAMES = EXPERIMENTS
"""Experiments whose ``<name>.json`` a results directory may hold."""


@dataclasses.dataclass(frozen=True)
class GroupTrials:
    """The stored trials of one spec group.

    Attributes:
        name: Group name in the spec, e.g. ``"t41_width"``.
        axes: The group's grid axes (keys given as lists in the spec).
        configs: Configurations with at least one stored trial, in spec order.
        frames: One DataFrame of trials per configuration (finite and not),
            with the extra columns ``eta`` = ``max(0, -min_inner)`` (the
            trial's confusion) and ``eta_cos`` = ``max(0, -min_cos)`` (its
            normalized confusion); NaN for non-finite trials.
    """

    name: str
    axes: tuple[str, ...]
    configs: tuple[Config, ...]
    frames: tuple[pd.DataFrame, ...]

    @property
    def statement(self) -> str | None:
        """The group's statement key (``None`` if none or if configurations differ)."""
        found = {_key(c) for c in self.configs}
        return found.pop() if len(found) == 1 else None

    @property
    def uniform(self) -> bool:
        """Whether every configuration tests the same statement."""
        return len({_key(c) for c in self.configs}) == 1

    def axis_values(self, axis: str) -> list[float]:
        """Sorted distinct values of ``axis`` over the configurations."""
        return sorted({getattr(c, axis) for c in self.configs})

    def label(self, config: Config) -> str:
        """Short label of a configuration: its grid values, e.g. ``"width=64"``."""
        return config.label(self.axes) if self.axes else "(single)"

    def values(self, column: str) -> list[np.ndarray]:
        """Per configuration, the finite trials' values of ``column`` (NaN dropped)."""
        out = []
        for f in self.frames:
            v = f.loc[f.finite == 1.0, column].to_numpy(float)
            out.append(v[~np.isnan(v)])
        return out


@dataclasses.dataclass(frozen=True)
class StoredRun:
    """Everything the figures and the report read from a results directory.

    Attributes:
        out_dir: The results directory.
        spec: The stored spec (``None`` when there is no Monte Carlo store).
        seed: The stored run seed (``None`` without a store).
        groups: Groups with stored trials, in spec order.
        summaries: :func:`montecarlo.theorem_summary` of the stored trials.
        experiments: Experiment name -> its loaded JSON.
        missing_experiments: Experiments the spec lists whose JSON is absent.
    """

    out_dir: pathlib.Path
    spec: Spec | None
    seed: int | None
    groups: tuple[GroupTrials, ...]
    summaries: tuple[ConfigSummary, ...]
    experiments: dict[str, dict]
    missing_experiments: tuple[str, ...]

    def summary(self, group: str, config: Config) -> ConfigSummary | None:
        """The :class:`ConfigSummary` of ``config`` in ``group``."""
        for s in self.summaries:
            if s.group == group and s.config.config_hash == config.config_hash:
                return s
        return None

    def statements(self) -> list[str]:
        """Statement keys with stored trials, in :data:`bounds.STATEMENTS` order."""
        present = {_key(c) for g in self.groups for c in g.configs}
        return [s for s in STATEMENTS if s in present]


def _key(config: Config) -> str | None:
    st = statement_of(config)
    return None if st is None else st.key


def load_run(out_dir: str | pathlib.Path, *, confidence: float = 0.95) -> StoredRun:
    """Load a results directory written by ``python -m montecarlo.run``.

    Args:
        out_dir: The results directory.
        confidence: Confidence level for :func:`montecarlo.theorem_summary`
            (``c*`` and intervals). Defaults to ``0.95``.

    Returns:
        The :class:`StoredRun`; without ``results.sqlite`` it holds only the
        experiments.

    Raises:
        ValueError: If ``out_dir`` is not a directory, holds neither a store
            nor an experiment's JSON, or its store lacks the spec text (not
            written by ``montecarlo.run``).
        montecarlo._store.StoreError: If the store is unreadable, from an
            older format, or fails a checksum (``CorruptStoreError``, naming
            the chunk).
    """
    out = pathlib.Path(out_dir)
    if not out.is_dir():
        raise ValueError(
            f"out_dir must be an existing results directory, got {str(out)!r}"
        )
    db = out / DB_NAME
    if not db.is_file() and not any(
        (out / f"{name}.json").is_file() for name in EXPERIMENT_NAMES
    ):
        raise ValueError(
            f"out_dir {str(out)!r} holds no results (neither {DB_NAME} nor any of "
            f"{', '.join(f'{n}.json' for n in EXPERIMENT_NAMES)}): run python -m "
            f"montecarlo.run --out {out} first"
        )
    spec = seed = None
    groups: list[GroupTrials] = []
    summaries: list[ConfigSummary] = []
    if db.is_file():
        meta = read_meta(db)
        if "spec_text" not in meta or "seed" not in meta:
            raise ValueError(
                f"{str(db)!r} has no stored spec (meta keys 'spec_text' and 'seed'); "
                "was it written by python -m montecarlo.run?"
            )
        spec = parse_spec(
            meta["spec_text"], name=meta.get("spec_name", "spec"), source=str(db)
        )
        seed = int(meta["seed"])
        df = load_results(out)
        if len(df):
            df = df[df.seed == seed]
            df = df.assign(
                eta=np.maximum(0.0, -df.min_inner.to_numpy(float)),
                eta_cos=np.maximum(0.0, -df.min_cos.to_numpy(float)),
            )
            by_hash = dict(tuple(df.groupby("config_hash", sort=False)))
            for name, configs in spec.groups.items():
                kept, frames = [], []
                for config in configs:
                    frame = by_hash.get(config.config_hash)
                    if frame is None:
                        continue
                    frame = frame[frame.trial < config.trials]
                    if len(frame):
                        kept.append(config)
                        frames.append(frame.reset_index(drop=True))
                if kept:
                    groups.append(
                        GroupTrials(
                            name,
                            tuple(spec.axes.get(name, ())),
                            tuple(kept),
                            tuple(frames),
                        )
                    )
            summaries = theorem_summary(spec, df, seed=seed, confidence=confidence)
    experiments: dict[str, dict] = {}
    for name in EXPERIMENT_NAMES:
        path = out / f"{name}.json"
        if path.is_file():
            experiments[name] = json.loads(path.read_text())
    listed = spec.experiments if spec is not None else ()
    missing = tuple(e for e in listed if e not in experiments)
    return StoredRun(
        out_dir=out,
        spec=spec,
        seed=seed,
        groups=tuple(groups),
        summaries=tuple(summaries),
        experiments=experiments,
        missing_experiments=missing,
    )
