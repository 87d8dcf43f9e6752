r"""The ``tail`` experiment: rare-event estimates of the failure tail and its rates.

Theorems 4.1, 5.1 and 6.1 (THEORY.md sections 4 to 6) bound the failure
probability of the confusion bound by an exponential tail,

.. math::

    P(\eta) = P\Big(\min_{i \neq j} G_{ij} < -\eta\Big)
    \le N^2 \exp\big(-c\, K(\eta)\big), \qquad K(\eta) = k\, \eta^2,

with ``k = (l d + l^2 beta) / (16 zeta_0^4 (beta + 2)^4)`` (Theorem 4.1 part
2), ``k = d / (16 zeta_0^4 (beta + 2)^4)`` (Theorem 5.1) and ``k = d``
(Theorem 6.1); ``N`` samples, ``d`` input dimension, ``l`` width, ``beta``
depth, ``zeta_0 = 2 sqrt(beta)``. Their content is the *rate*: how
``log P`` falls with ``eta^2``, ``l``, ``d`` and how it grows with ``N``.
Plain Monte Carlo resolves ``P`` down to about ``1e-3``; this experiment
estimates it down to ``1e-8`` and below by subset simulation
(:func:`montecarlo._rare.subset_simulation`) and fits the tail against the
theorem's form and a free form (:func:`montecarlo._tail_rates.tail_rates`).

Notation: a *sweep* is the part of a spec group at fixed values of its grid
axes other than ``n``, ``d``, ``width``, ``depth`` (e.g. one activation); its
configurations share one statement and one fit. ``R`` repetitions (independent
subset-simulation runs), ``particles`` per level, ``p0 = 0.1`` per level.

Options, the spec's top-level ``[tail]`` table::

    [tail]
    groups = ["t41_width", { group = "t51_d", d = 20 }]  # as [adversarial]
    eta = { probabilities = [1e-2, 1e-4, 1e-6, 1e-8] }  # or levels [0.5, 1.0]
    statistic = "min_inner"            # or "min_cos" (default: min_inner)
    particles = 1000                   # per level (default: 1000)
    repetitions = 20                   # R, 3 <= R <= particles / 40 (default: 10)
    max_probability = 1e-2             # the fits use p <= this (default: 1e-2)
    executor = "processes"             # "serial", "processes" or "dask"
    workers = 2                        # processes or local Dask workers (default: 1)

``eta`` is either a strictly increasing list of levels ``> 0``, the same for
every configuration, or ``{ probabilities = [q_1 > q_2 > ...] }``, each ``q``
in ``[1e-30, 0.1]``: per configuration, the levels at which its failure
probability is ``q_j``, i.e. the ``1 - q_j`` quantiles of its confusion. They
come from a *pilot*: one subset-simulation run of the configuration with
``L = ceil(log q_min / log p0) + 1`` levels, whose thresholds ``b_k`` estimate
the quantiles at ``P_k = p_1 ... p_k``; ``eta_j`` interpolates ``b`` linearly
in ``log P`` and is rounded to 4 significant digits. Targets below the
pilot's deepest ``P_L`` (a score with a plateau, e.g. a bounded confusion) and
levels ``<= 0`` are dropped for that configuration. The repetitions then run
on that grid, on streams independent of the pilot's. The rule keeps every
configuration's grid in the tail (``q_j``) whatever its confusion scale (the
confusion grows about linearly with the width in Theorem 4.1's setting), so
the cost per configuration is about the same.

``workers`` with ``executor = "processes"`` (the default when ``workers > 1``)
runs units on that many spawned processes, numba on ``cores / workers``
threads each; ``"dask"`` starts a local Dask cluster of ``workers``
single-threaded workers; a Dask client given to :func:`run_tail` (the run's
cluster) takes precedence over both. Results do not depend on the executor.

Units and storage: a *unit* is one subset-simulation run, the pilot of a
configuration or repetition ``r`` of ``(configuration, statistic, eta grid,
settings)``, stored at once in ``OUT/tail/units/<run_id>.json``
(:class:`montecarlo._runs.RunStore`), ``run_id`` a hash of that content and
the seed. A unit is a pure function of its content (Philox streams keyed by
it, independent of the thread count, :mod:`montecarlo._rare`), so a resumed
run ends with the results of an uninterrupted one whatever the interruption
point, the executor and the worker count; raising ``repetitions`` reuses the
stored ones (``R`` is not part of a unit). Ctrl-C or SIGTERM stop the run and
leave no worker behind.

Errors of the rates: the repetitions are the independent units, and the
points of one configuration's grid share them (a run's estimates at deeper
levels are products of the same level fractions), so the fits' weighted
least-squares intervals, which treat points as independent, can be too
narrow. Each fitted rate is therefore also recomputed ``R`` times with
repetition ``r`` left out of every configuration (delete-one jackknife, Efron
& Stein 1981, Ann. Stat. 9:586); :func:`montecarlo.claims._tails.rates` turns
these replicates into standard errors, intervals and tests.

``c*`` from the tail (per configuration, :func:`montecarlo._tail_rates.tail_points`):
the largest ``c`` with ``N^2 exp(-c K(eta) + B(eta)) >= U(eta)`` at every
resolved ``eta``, ``U`` the one-sided upper limit of the estimate. Beside it,
the plain Monte Carlo ``c*`` of the same configuration from the sweep's stored
trials (as :func:`montecarlo._estimates.theorem_summary` computes it), when
``OUT/results.sqlite`` holds them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import numbers
import os
import pathlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numba
import numpy as np

from bounds import informative_length
from montecarlo._config import Config, Spec
from montecarlo._numba_trial import STATISTICS
from montecarlo._rare import (
    RareEventEstimate,
    SubsetRun,
    SubsetSettings,
    subset_simulation,
)
from montecarlo._runs import (
    DaskRunner,
    Runner,
    RunStore,
    SerialRunner,
    Task,
    process_runner,
    run_tasks,
    sigterm_as_interrupt,
    spec_hash,
)
from montecarlo._statements import bound_kwargs, statement_of
from montecarlo._tail_rates import TailRateAnalysis, tail_points, tail_rates
from montecarlo._trial import trial_dimension
from montecarlo._worst_case import groups_option_problems, select_group

__all__ = [
    "CONFIDENCE",
    "EXECUTORS",
    "FIT_AXES",
    "OPTION_KEYS",
    "Sweep",
    "eta_grid_from_pilot",
    "group_problems",
    "option_problems",
    "pilot_levels",
    "run_tail",
    "selected_sweeps",
]

OPTION_KEYS = (
    "groups",
    "eta",
    "statistic",
    "particles",
    "repetitions",
    "max_probability",
    "executor",
    "workers",
)
"""Keys of the ``[tail]`` table."""

EXECUTORS = ("serial", "processes", "dask")
"""Values of the ``executor`` option."""

FIT_AXES = ("n", "d", "width", "depth")
"""Grid axes a sweep may vary (the fits' axes); the others split a group."""

CONFIDENCE = 0.95
"""Level of the stored intervals and ``c*`` (the claims recompute theirs at
``1 - alpha`` from the stored runs)."""

P0 = 0.1
"""Level probability of every run (:class:`montecarlo._rare.SubsetSettings`)."""

MIN_PROBABILITY = 1e-30
"""Smallest target probability of the ``probabilities`` rule (the pilot then
needs 31 levels of the 40 a run may take)."""

MAX_POPULATION = 2**28
"""Largest ``particles * trial_dimension`` (the limit of
:func:`montecarlo._rare.subset_simulation`)."""

BIAS_RATIO = 40
"""``repetitions <= particles / BIAS_RATIO``: the estimator's ``O(1/N)`` bias
stays below a third of the interval (:mod:`montecarlo._rare`)."""

DEFAULTS: Mapping[str, Any] = {
    "statistic": "min_inner",
    "particles": 1000,
    "repetitions": 10,
    "max_probability": 1e-2,
    "workers": 1,
}
"""Option defaults (``executor``: ``"serial"`` for one worker, else
``"processes"``)."""

_PROTOCOL = 1  # part of every unit's hash; raise it when a unit's meaning changes
_PILOT_ETA = 1e300  # a level no run passes: the pilot runs all its levels
_DIGITS = 4  # significant digits of a grid level from the pilot


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# --- options -------------------------------------------------------------------


def _eta_problems(value: Any, path: str) -> list[str]:
    if isinstance(value, list):
        ok = value and all(_is_number(v) and math.isfinite(v) for v in value)
        rising = ok and all(a < b for a, b in itertools.pairwise(value))
        if not rising or min(value) <= 0:
            return [
                f"{path}: must be a non-empty strictly increasing list of finite "
                f"levels > 0, or a table {{probabilities = [...]}}, got {value!r}"
            ]
        return []
    if not isinstance(value, Mapping):
        return [
            f"{path}: must be a list of levels or a table {{probabilities = "
            f"[...]}}, got {value!r}"
        ]
    problems = [
        f"{path}.{key}: unknown key (allowed: ['probabilities'])"
        for key in value
        if key != "probabilities"
    ]
    q = value.get("probabilities")
    if q is None:
        problems.append(f"{path}.probabilities: missing (the target probabilities)")
    elif (
        not isinstance(q, list)
        or not q
        or not all(_is_number(v) and MIN_PROBABILITY <= v <= P0 for v in q)
        or any(b >= a for a, b in itertools.pairwise(q))
    ):
        problems.append(
            f"{path}.probabilities: must be a non-empty strictly decreasing list of "
            f"numbers in [{MIN_PROBABILITY:g}, {P0:g}], got {q!r}"
        )
    return problems


def option_problems(table: Any, path: str = "tail") -> list[str]:
    """Problems of the ``[tail]`` table on its own (empty if fine).

    Checks the keys, their types and ranges; whether the named groups exist
    and fit in memory needs the spec's groups (:func:`group_problems`).

    Args:
        table: The parsed TOML table.
        path: The table's key path in the spec, for the messages. Defaults to
            ``"tail"``.

    Returns:
        One line per problem, ``path.key: message`` with the allowed range
        and the value received.
    """
    if not isinstance(table, Mapping):
        return [f"{path}: must be a table, got {table!r}"]
    problems = [
        f"{path}.{key}: unknown key (allowed: {list(OPTION_KEYS)})"
        for key in table
        if key not in OPTION_KEYS
    ]
    for key, what in (("groups", "the spec groups to estimate"), ("eta", "levels")):
        if key not in table:
            problems.append(f"{path}.{key}: missing ({what})")
    if "groups" in table:
        problems += groups_option_problems(table["groups"], f"{path}.groups")
    if "eta" in table:
        problems += _eta_problems(table["eta"], f"{path}.eta")
    if "statistic" in table and table["statistic"] not in STATISTICS:
        problems.append(
            f"{path}.statistic: must be one of {list(STATISTICS)}, got "
            f"{table['statistic']!r}"
        )
    particles = table.get("particles", DEFAULTS["particles"])
    if not (_is_int(particles) and particles >= 3 * BIAS_RATIO):
        problems.append(
            f"{path}.particles: must be an integer >= {3 * BIAS_RATIO} (3 "
            f"repetitions of at most particles / {BIAS_RATIO}), got {particles!r}"
        )
    else:
        R = table.get("repetitions", DEFAULTS["repetitions"])
        top = particles // BIAS_RATIO
        if not (_is_int(R) and 3 <= R <= top):
            given = "" if "repetitions" in table else " (the default)"
            problems.append(
                f"{path}.repetitions: must be an integer in [3, particles / "
                f"{BIAS_RATIO} = {top}] (3 for the jackknife; at most particles / "
                f"{BIAS_RATIO} so that the estimator's O(1/N) bias stays below a "
                f"third of its interval), got {R!r}{given}"
            )
    if "max_probability" in table:
        m = table["max_probability"]
        if not (_is_number(m) and 0 < m <= 1):
            problems.append(
                f"{path}.max_probability: must be a number in (0, 1], got {m!r}"
            )
    workers = table.get("workers", DEFAULTS["workers"])
    if not (_is_int(workers) and workers >= 1):
        problems.append(f"{path}.workers: must be an integer >= 1, got {workers!r}")
    if "executor" in table:
        ex = table["executor"]
        if ex not in EXECUTORS:
            problems.append(
                f"{path}.executor: must be one of {list(EXECUTORS)}, got {ex!r}"
            )
        elif ex == "serial" and _is_int(workers) and workers != 1:
            problems.append(
                f"{path}.workers: must be 1 with executor = 'serial', got {workers!r}"
            )
    return problems


def _split_key(config: Config, axes: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    return tuple((a, getattr(config, a)) for a in axes if a not in FIT_AXES)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """The selected configurations of one group at fixed non-fit axes.

    Attributes:
        group: The spec group.
        setting: ``(axis, value)`` of the group's grid axes outside
            :data:`FIT_AXES` (empty when there are none).
        statement: The statement key the configurations test.
        axes: The group's grid axes among :data:`FIT_AXES`.
        configs: The configurations, in spec order.
    """

    group: str
    setting: tuple[tuple[str, Any], ...]
    statement: str
    axes: tuple[str, ...]
    configs: tuple[Config, ...]

    @property
    def name(self) -> str:
        """``"group"`` or ``"group (axis=value, ...)"``."""
        inner = ", ".join(f"{a}={v}" for a, v in self.setting)
        return f"{self.group} ({inner})" if inner else self.group

    def label(self, config: Config) -> str:
        """The configuration's values of the sweep's axes, e.g. ``"width=32"``."""
        return config.label(self.axes) or "one configuration"


def group_problems(
    table: Mapping[str, Any],
    groups: Mapping[str, Sequence[Config]],
    axes: Mapping[str, Sequence[str]],
    path: str = "tail",
) -> list[str]:
    """Problems of the ``groups`` option against the spec's groups (empty if fine).

    Every entry must name a group of the spec, select only its grid axes at
    values it has (as ``[adversarial]``), and select configurations that test
    a statement (``theorem != "none"``), none twice, whose particles fit in
    memory (``particles * trial_dimension <= 2^28``).

    Args:
        table: The ``[tail]`` table (already checked by :func:`option_problems`).
        groups: The spec's groups (``Spec.groups``).
        axes: The spec's grid axes per group (``Spec.axes``).
        path: The table's key path, for the messages. Defaults to ``"tail"``.

    Returns:
        One line per problem (none when the table itself is invalid: those
        problems are :func:`option_problems`'s).
    """
    if option_problems(table, path):
        return []
    particles = int(table.get("particles", DEFAULTS["particles"]))
    problems = []
    taken: dict[tuple[str, str], int] = {}
    for i, entry in enumerate(table["groups"]):
        where = f"{path}.groups[{i}]"
        name, chosen, found = select_group(entry, groups, axes, where)
        problems += found
        for config in chosen:
            label = config.label(axes.get(name, ())) or "its one configuration"
            if statement_of(config) is None:
                problems.append(
                    f"{where}: group {name!r} ({label}) has theorem = 'none'; must "
                    "test a statement (theorem = '4.1', '5.1', 'corollary_5.1' or "
                    "'6.1')"
                )
                break
            size = particles * trial_dimension(config)
            if size > MAX_POPULATION:
                problems.append(
                    f"{path}.particles: particles * trial_dimension must be <= 2^28 "
                    f"for group {name!r} ({label}), got {particles} * "
                    f"{size // particles} = {size}"
                )
            key = (str(name), config.config_hash)
            if key in taken:
                problems.append(
                    f"{where}: selects group {name!r} ({label}) again, already "
                    f"selected by {path}.groups[{taken[key]}]"
                )
            taken[key] = i
    return problems


def selected_sweeps(
    table: Mapping[str, Any],
    groups: Mapping[str, Sequence[Config]],
    axes: Mapping[str, Sequence[str]],
) -> list[Sweep]:
    """The sweeps the ``groups`` option selects, in spec order.

    Raises:
        ValueError: On the problems of :func:`option_problems` and
            :func:`group_problems`, one per line.
    """
    problems = option_problems(table)
    if not problems:
        problems = group_problems(table, groups, axes)
    if problems:
        raise ValueError("\n".join(problems))
    chosen: dict[str, list[Config]] = {}
    for i, entry in enumerate(table["groups"]):
        name, configs, _ = select_group(entry, groups, axes, f"groups[{i}]")
        chosen.setdefault(str(name), []).extend(configs)
    sweeps = []
    for name, configs in chosen.items():
        group_axes = list(axes.get(name, ()))
        picked = {c.config_hash for c in configs}
        ordered = [c for c in groups[name] if c.config_hash in picked]
        split: dict[tuple, list[Config]] = {}
        for c in ordered:
            split.setdefault(_split_key(c, group_axes), []).append(c)
        for setting, members in split.items():
            sweeps.append(
                Sweep(
                    group=name,
                    setting=setting,
                    statement=statement_of(members[0]).key,
                    axes=tuple(a for a in group_axes if a in FIT_AXES),
                    configs=tuple(members),
                )
            )
    return sweeps


def _executor(options: Mapping[str, Any]) -> str:
    workers = int(options.get("workers", DEFAULTS["workers"]))
    return str(options.get("executor", "serial" if workers == 1 else "processes"))


# --- units ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Unit:
    """One subset-simulation run: a pilot or one repetition."""

    kind: str  # "pilot" or "repetition"
    config: Config
    statistic: str
    eta: tuple[float, ...]
    seed: int
    repetition: int
    settings: SubsetSettings

    def content(self) -> dict[str, Any]:
        return {
            "protocol": _PROTOCOL,
            "kind": self.kind,
            "config": self.config.content(),
            "statistic": self.statistic,
            "eta": list(self.eta),
            "seed": self.seed,
            "repetition": self.repetition,
            "settings": self.settings.to_dict(),
        }

    @property
    def run_id(self) -> str:
        return spec_hash(self.content())

    @property
    def cost(self) -> float:
        """Score evaluations times the trial's size, up to a common factor."""
        levels = self.settings.max_levels if self.kind == "pilot" else len(self.eta)
        return float(self.settings.particles * trial_dimension(self.config) * levels)


@contextlib.contextmanager
def _numba_threads(threads: int) -> Iterator[None]:
    """Numba's thread count set to ``threads`` (at most its maximum) in the block."""
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _unit_task(payload: tuple[_Unit, int]) -> dict[str, Any]:
    """One unit as a task of :mod:`montecarlo._runs` (``threads`` numba threads)."""
    unit, threads = payload
    with _numba_threads(threads):
        run = subset_simulation(
            unit.config,
            unit.eta,
            seed=unit.seed,
            repetition=unit.repetition,
            statistic=unit.statistic,
            settings=unit.settings,
        )
    return run.to_dict()


def pilot_levels(probabilities: Sequence[float]) -> int:
    """``L = ceil(log q_min / log p0) + 1``: levels of the pilot run."""
    return math.ceil(math.log(min(probabilities)) / math.log(P0) - 1e-9) + 1


def eta_grid_from_pilot(
    pilot: SubsetRun, probabilities: Sequence[float]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The levels at which a pilot run puts the failure probability at each target.

    The pilot's thresholds ``b_k`` estimate the ``1 - P_k`` quantiles of the
    score, ``P_k = p_1 ... p_k`` its level probabilities' products; ``eta``
    at a target ``q`` interpolates ``b`` linearly in ``log P`` (clamped at
    ``b_1`` above ``P_1``), rounded to 4 significant digits.

    Args:
        pilot: A run with at least one level.
        probabilities: Strictly decreasing targets in ``(0, 1)``.

    Returns:
        ``(eta, kept)``: the strictly increasing levels ``> 0`` and their
        targets; targets below the pilot's deepest ``P_k``, at levels ``<= 0``
        or equal to the previous level after rounding are dropped.
    """
    b = np.asarray(pilot.thresholds, dtype=float)
    log_P = np.cumsum(np.log(np.asarray(pilot.level_probability, dtype=float)))
    eta: list[float] = []
    kept: list[float] = []
    for q in probabilities:
        if b.size == 0 or math.log(q) < log_P[-1] - 1e-12:
            continue
        level = float(np.interp(math.log(q), log_P[::-1], b[::-1]))
        level = float(f"{level:.{_DIGITS}g}")
        if level > 0 and (not eta or level > eta[-1]):
            eta.append(level)
            kept.append(float(q))
    return tuple(eta), tuple(kept)


class _Announcing:
    """A runner that calls ``done(run_id, result)`` after each result is stored.

    :func:`montecarlo._runs.run_tasks` stores a result before it asks the
    runner for the next, so the code after ``yield`` runs once it is stored.
    """

    def __init__(self, runner: Runner, done: Callable[[str, dict], None]) -> None:
        self.runner = runner
        self.done = done

    def map_unordered(
        self,
        fn: Callable[[Any], dict[str, Any]],
        payloads: Sequence[Any],
        keys: Sequence[str],
    ) -> Iterator[tuple[int, tuple[dict[str, Any], float]]]:
        """The inner runner's results; ``done`` after each has been stored."""
        for i, out in self.runner.map_unordered(fn, payloads, keys):
            yield i, out
            self.done(keys[i], out[0])


@contextlib.contextmanager
def _runner(executor: str, workers: int, client: Any) -> Iterator[tuple[Runner, int]]:
    """``(runner, numba threads per unit)`` of the options or the given client."""
    if client is not None:
        yield DaskRunner(client, prefix="tail"), 1
    elif executor == "dask":
        from montecarlo._dask import dask_client

        with dask_client(workers=workers, dashboard_address="127.0.0.1:0") as c:
            yield DaskRunner(c, prefix="tail"), 1
    elif executor == "processes" and workers > 1:
        with process_runner(workers) as runner:
            yield runner, max(1, (os.cpu_count() or 1) // workers)
    else:
        yield SerialRunner(), numba.get_num_threads()


# --- plain Monte Carlo c* of the sweep's stored trials ---------------------------


def _plain_trials(out_dir: pathlib.Path, seed: int) -> dict[str, Any] | None:
    """Per configuration hash, its stored finite trials of ``seed`` (None: no store)."""
    from montecarlo._store import DB_NAME, load_results

    if not (out_dir / DB_NAME).is_file():
        return None
    df = load_results(out_dir)
    df = df[(df.seed == seed) & (df.finite == 1.0)]
    return {h: g for h, g in df.groupby("config_hash", sort=False)}


def _plain_constant(
    config: Config, frame: Any, grid: np.ndarray, statistic: str
) -> dict[str, Any] | None:
    """Failure counts on the informative grid and ``c*`` of a configuration's trials.

    As :func:`montecarlo._estimates.theorem_summary`: the first
    ``config.trials`` trials, the spec's grid in the statement's domain up to
    its first point without a failure.
    """
    frame = frame[frame.trial < config.trials]
    trials = len(frame)
    values = frame[statistic].to_numpy(float)
    values = np.sort(values[~np.isnan(values)])  # an undefined cosine never fails
    st = statement_of(config)
    g = grid[st.in_domain(grid)]
    k = np.searchsorted(values, -g, side="left")
    m = int(informative_length(k))
    if trials == 0 or m == 0:
        return None
    res = st.implied_constant(
        g[:m], k[:m], trials, bound_kwargs(config), confidence=CONFIDENCE
    )
    return {
        "trials": trials,
        "eta": [float(e) for e in g[:m]],
        "failures": [int(x) for x in k[:m]],
        "c_star": _json(res.c_star),
        "binding_eta": _json(res.binding_eta),
    }


def _json(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


# --- the analysis ----------------------------------------------------------------


def _fitted(
    estimates: Sequence[RareEventEstimate], max_probability: float
) -> tuple[TailRateAnalysis, dict[str, float]]:
    """The fits of ``estimates`` and their rates by name (exponents and ``c``).

    Raises:
        ValueError: As :func:`montecarlo._tail_rates.tail_rates` (too few
            resolved points).
    """
    analysis = tail_rates(
        estimates, max_probability=max_probability, confidence=CONFIDENCE
    )
    values = {e.name: e.value for e in analysis.free.exponents}
    values["c"] = analysis.theorem.c_fit
    return analysis, values


def _jackknife(
    estimates: Sequence[RareEventEstimate],
    configs: Sequence[Config],
    max_probability: float,
) -> list[dict[str, float] | None]:
    """The rates with repetition ``r`` left out of every configuration, per ``r``.

    ``None`` where the left-out fit fails (too few resolved points).
    """
    R = min(e.repetitions for e in estimates)
    out: list[dict[str, float] | None] = []
    for r in range(R):
        kept = [
            RareEventEstimate.from_runs(c, [x for x in e.runs if x.repetition != r])
            for c, e in zip(configs, estimates, strict=True)
        ]
        try:
            out.append(_fitted(kept, max_probability)[1])
        except ValueError:
            out.append(None)
    return out


def _tail_constant(est: RareEventEstimate) -> dict[str, Any]:
    """``c*`` from the tail of one configuration and the ``eta`` where it binds."""
    points = tail_points([est], confidence=CONFIDENCE)
    c = points.constant
    if not np.isfinite(c).any():
        return {"c_star": None, "binding_eta": None}
    i = int(np.argmin(c))
    return {"c_star": _json(float(c[i])), "binding_eta": float(points.eta[i])}


# --- the run -------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3g}"


@dataclasses.dataclass(frozen=True)
class _Context:
    """What every phase of a run shares."""

    configs: Mapping[str, Config]  # by hash, in run order
    labels: Mapping[str, str]  # by hash: "statement group axis=value"
    statistic: str
    seed: int
    settings: SubsetSettings
    store: RunStore
    runner: Runner
    threads: int
    log: Callable[[str], None]


def _pilot_grids(
    ctx: _Context, probabilities: Sequence[float]
) -> tuple[dict[str, tuple[float, ...]], dict[str, dict[str, Any]]]:
    """Run (or load) every configuration's pilot; ``(grids, pilots)`` by hash.

    Raises:
        ValueError: When a pilot resolves none of the targets.
    """
    settings = dataclasses.replace(ctx.settings, max_levels=pilot_levels(probabilities))
    units = {
        h: _Unit("pilot", c, ctx.statistic, (_PILOT_ETA,), ctx.seed, 0, settings)
        for h, c in ctx.configs.items()
    }
    tasks = [
        Task(u.run_id, u.content(), _unit_task, (u, ctx.threads), f"pilot {h}", u.cost)
        for h, u in units.items()
    ]
    records = run_tasks(tasks, ctx.store, ctx.runner, log=None)
    grids, pilots = {}, {}
    for h, record in zip(units, records, strict=True):
        run = SubsetRun.from_dict(record["result"])
        grid, kept = eta_grid_from_pilot(run, probabilities)
        if not grid:
            raise ValueError(
                f"tail: the pilot of {ctx.labels[h]} reached P = "
                f"{math.prod(run.level_probability):.3g} only ({run.stop}); none of "
                "eta.probabilities is resolvable there: give levels (eta = [...]) "
                "or larger probabilities"
            )
        grids[h] = grid
        pilots[h] = {"run": run.to_dict(), "probabilities": list(kept)}
        ctx.log(
            f"pilot {ctx.labels[h]}: eta = {', '.join(f'{e:g}' for e in grid)} at "
            f"P = {', '.join(f'{q:g}' for q in kept)}"
        )
    return grids, pilots


def _repetitions(
    ctx: _Context, grids: Mapping[str, tuple[float, ...]], R: int
) -> dict[str, RareEventEstimate]:
    """Run (or load) ``R`` repetitions per configuration; the estimates by hash.

    Prints one line per configuration as its last repetition is stored.
    """
    units_of = {
        h: [
            _Unit("repetition", c, ctx.statistic, grids[h], ctx.seed, r, ctx.settings)
            for r in range(R)
        ]
        for h, c in ctx.configs.items()
    }
    owner = {u.run_id: h for h, us in units_of.items() for u in us}
    waiting = {
        h: {u.run_id for u in us if ctx.store.load(u.run_id, u.content()) is None}
        for h, us in units_of.items()
    }
    started = time.perf_counter()

    def estimate(h: str) -> RareEventEstimate:
        runs = [
            SubsetRun.from_dict(ctx.store.load(u.run_id, u.content())["result"])
            for u in units_of[h]
        ]
        return RareEventEstimate.from_runs(ctx.configs[h], runs, CONFIDENCE)

    def finished(h: str, how: str) -> None:
        est = estimate(h)
        p = [x for x in est.estimate if x > 0]
        worst = max((x for x in est.relative_error if math.isfinite(x)), default=0)
        ctx.log(
            f"{ctx.labels[h]}: P = {_fmt(max(p, default=0.0))} .. "
            f"{_fmt(min(p, default=0.0))} at eta = {est.eta[0]:g} .. "
            f"{est.eta[-1]:g} (largest relative error {100 * worst:.0f}%); c* from "
            f"the tail {_fmt(_tail_constant(est)['c_star'])}; {how}"
        )

    def done(run_id: str, result: dict) -> None:
        h = owner[run_id]
        waiting[h].discard(run_id)
        if not waiting[h]:
            finished(h, f"{time.perf_counter() - started:.1f} s elapsed")

    for h, left in waiting.items():
        if not left:
            finished(h, "stored")
    tasks = [
        Task(u.run_id, u.content(), _unit_task, (u, ctx.threads), ctx.labels[h], u.cost)
        for h, us in units_of.items()
        for u in us
    ]
    run_tasks(tasks, ctx.store, _Announcing(ctx.runner, done), log=None)
    return {h: estimate(h) for h in units_of}


def _sweep_entry(
    sweep: Sweep, estimates: Mapping[str, RareEventEstimate], max_probability: float
) -> dict[str, Any]:
    """A sweep's fits and their jackknife (or why there are none), as JSON."""
    ests = [estimates[c.config_hash] for c in sweep.configs]
    info: dict[str, Any] = {
        "name": sweep.name,
        "group": sweep.group,
        "setting": dict(sweep.setting),
        "statement": sweep.statement,
        "axes": list(sweep.axes),
        "config_hashes": [c.config_hash for c in sweep.configs],
        "analysis": None,
        "analysis_error": None,
        "jackknife": None,
    }
    try:
        analysis, _ = _fitted(ests, max_probability)
    except ValueError as exc:
        info["analysis_error"] = str(exc)
    else:
        info["analysis"] = analysis.to_dict()
        info["jackknife"] = _jackknife(ests, sweep.configs, max_probability)
    return info


def run_tail(
    out_dir: str | pathlib.Path,
    options: Mapping[str, Any],
    *,
    spec: Spec,
    seed: int,
    fresh: bool = False,
    progress: bool = True,
    client: Any = None,
) -> dict[str, Any]:
    """Estimate the tail of every selected configuration; write ``OUT/tail.json``.

    Every option and group is checked before any run (module docstring). The
    pilots (``probabilities`` rule) run first, then ``R`` repetitions per
    configuration on its grid; every run is stored at once and loaded on a
    re-run. Then, per sweep, :func:`montecarlo._tail_rates.tail_rates` and its
    jackknife over repetitions.

    Args:
        out_dir: Results directory (created if missing).
        options: The spec's ``[tail]`` table.
        spec: The spec: its groups, grid axes and ``eta`` grid (of the plain
            ``c*``).
        seed: The run seed, an integer >= 0.
        fresh: Discard the stored units first. Defaults to False.
        progress: Print a line per pilot and per finished configuration.
            Defaults to True.
        client: A connected ``distributed.Client``: every unit becomes a Dask
            task on its cluster (overrides ``executor``). Defaults to None.

    Returns:
        The dict written to ``OUT/tail.json``: ``experiment``, ``seed``,
        ``statistic``, ``settings`` (of the repetitions), ``repetitions``,
        ``eta_rule`` (``{"levels": [...]}`` or ``{"probabilities": [...]}``),
        ``max_probability``, ``confidence``, ``spec_eta`` (the grid of the
        plain ``c*``), ``estimates`` (per configuration in order: ``group``,
        ``sweep``, ``label``, ``config_hash``, ``estimate``
        (:meth:`~montecarlo._rare.RareEventEstimate.to_dict`), ``pilot`` (the
        pilot run and the kept targets, or None), ``tail`` (``c*`` from the
        tail and its binding ``eta``) and ``plain`` (the sweep's failure
        counts on the informative grid, ``c*`` and binding ``eta``, or None)),
        ``sweeps`` (per sweep: ``name``, ``group``, ``setting``,
        ``statement``, ``axes``, ``config_hashes``, ``analysis``
        (:meth:`~montecarlo._tail_rates.TailRateAnalysis.to_dict`, or None),
        ``analysis_error`` (why not, or None), ``jackknife`` (per left-out
        repetition, the fitted rates by name, or None)), ``elapsed_seconds``,
        ``executor`` and ``workers``. Non-finite numbers are None.

    Raises:
        ValueError: On an invalid option, group or seed (every problem, one
            per line), before any run; when a pilot resolves none of the
            targets of a configuration.
        KeyboardInterrupt: On Ctrl-C or SIGTERM; finished units stay stored.
    """
    if not isinstance(spec, Spec):
        raise ValueError(f"spec must be a Spec, got {type(spec).__name__}")
    if not (_is_int(seed) and seed >= 0):
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    sweeps = selected_sweeps(options, spec.groups, spec.axes)
    opts = {**DEFAULTS, **options}
    R = int(opts["repetitions"])
    workers = int(opts["workers"])
    executor = "dask" if client is not None else _executor(options)
    max_probability = float(opts["max_probability"])
    rule = options["eta"]
    probabilities = None if isinstance(rule, list) else list(rule["probabilities"])
    out_dir = pathlib.Path(out_dir)
    store = RunStore(out_dir / "tail" / "units")
    if fresh:
        store.clear()
    started = time.perf_counter()

    def log(line: str) -> None:
        if progress:
            print(f"[tail] {line}", flush=True)

    members = [(s, c) for s in sweeps for c in s.configs]
    settings = SubsetSettings(particles=int(opts["particles"]), p0=P0)
    log(
        f"{len(members)} configurations, {R} repetitions of {settings.particles} "
        f"particles each ({opts['statistic']}); units stored in {store.root}"
    )
    with sigterm_as_interrupt(), _runner(executor, workers, client) as (runner, th):
        ctx = _Context(
            configs={c.config_hash: c for _, c in members},
            labels={
                c.config_hash: f"{s.statement} {s.group} {s.label(c)}"
                for s, c in members
            },
            statistic=str(opts["statistic"]),
            seed=int(seed),
            settings=settings,
            store=store,
            runner=runner,
            threads=th,
            log=log,
        )
        if probabilities is None:
            grids = {h: tuple(float(e) for e in rule) for h in ctx.configs}
            pilots: dict[str, dict[str, Any]] = {}
        else:
            grids, pilots = _pilot_grids(ctx, probabilities)
        estimates = _repetitions(ctx, grids, R)
    plain = _plain_trials(out_dir, seed)
    grid = spec.eta.values()
    entries = []
    for s, c in members:
        h = c.config_hash
        frame = None if plain is None else plain.get(h)
        entries.append(
            {
                "group": s.group,
                "sweep": s.name,
                "label": s.label(c),
                "config_hash": h,
                "estimate": estimates[h].to_dict(),
                "pilot": pilots.get(h),
                "tail": _tail_constant(estimates[h]),
                "plain": None
                if frame is None
                else _plain_constant(c, frame, grid, ctx.statistic),
            }
        )
    result = {
        "experiment": "tail",
        "seed": int(seed),
        "statistic": ctx.statistic,
        "settings": settings.to_dict(),
        "repetitions": R,
        "eta_rule": (
            {"levels": [float(e) for e in rule]}
            if probabilities is None
            else {"probabilities": [float(q) for q in probabilities]}
        ),
        "max_probability": max_probability,
        "confidence": CONFIDENCE,
        "spec_eta": [float(e) for e in grid],
        "estimates": entries,
        "sweeps": [_sweep_entry(s, estimates, max_probability) for s in sweeps],
        "elapsed_seconds": time.perf_counter() - started,
        "executor": executor,
        "workers": workers,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tail.json").write_text(json.dumps(result, allow_nan=False))
    return result
