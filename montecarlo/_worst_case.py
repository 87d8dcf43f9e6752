r"""The ``adversarial`` experiment: worst-case searches for a spec's uniform statements.

Three statements of the paper are uniform over a class (THEORY.md sections
4, 5 and 7), and random sampling alone cannot contradict them: Theorem 5.1
(*any* weights with ``||W_p||_2 <= 1``), Corollary 5.1 (*every* ``W'`` of the
ball ``B_r(W)``) and Theorem 4.1 part 1 (a *fixed but arbitrary* dataset with
``||x_i|| <= 1``). This experiment runs
:func:`montecarlo._adversarial.adversarial_cstar` on configurations of the
spec's groups: a projected search for the worst point
of the statement's constraint set, then the failure probabilities

.. math::

    \hat p(\eta) = \frac{1}{T} \#\{t < T : \min_{i \neq j} G_{ij}^{(t)} < -\eta\}

of the worst point found and of the random ensemble on the same ``T``
held-out trials (paired), with their Clopper-Pearson intervals and implied
constants ``c*`` (:func:`bounds.implied_constant`, one-sided upper limits).
For Corollary 5.1 the adversarial estimate is the corollary's event, a
``W'`` of the found centre's ball chosen per held-out draw
(:func:`montecarlo._adversarial.uniform_min_inner`); the estimate at the one
found ``W'`` is kept beside it.

Notation: ``T`` held-out trials, ``eta`` the spec's grid, a *unit* one search
of one configuration (and, for Corollary 5.1, one norm of the ball).

Options, the spec's top-level ``[adversarial]`` table::

    [adversarial]
    groups = ["t51_depth", { group = "c51_radius", r = 1.0 }]
    budget = "full"                      # "quick", "full" or a table of
                                         # SearchBudget fields (others: full)
    norms = ["operator", "frobenius"]    # Corollary 5.1's ball (default: both)
    heldout = 400                        # T (default: each configuration's trials)
    workers = 1                          # processes (default: 1)

A ``groups`` entry is a group name (every configuration of the group) or a
table ``{group = NAME, AXIS = VALUE, ...}`` keeping the configurations at
those axis values. Every selected configuration must test a uniform
statement: ``theorem = "5.1"``, ``"corollary_5.1"``, or ``"4.1"`` with
``fixed_data = true``.

Storage: every finished unit is written at once to
``OUT/adversarial/units/<run_id>.json`` (:class:`montecarlo._runs.RunStore`,
atomic), ``run_id`` a hash of the configuration's content, the statement,
the norm, the budget, the seed, ``T``, the ``eta`` grid and the confidence;
a re-run computes only the missing units. A unit is a pure function of that
content (one torch thread per search), so a resumed run ends with the results
of an uninterrupted one, whatever the interruption point and the number of
workers (only the recorded times differ). Ctrl-C or SIGTERM stop the run and
leave no worker behind (:func:`montecarlo._runs.process_runner`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import pathlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from montecarlo._adversarial import (
    FULL_BUDGET,
    NORMS,
    QUICK_BUDGET,
    SearchBudget,
    adversarial_cstar,
    statement_of,
)
from montecarlo._config import MAX_TRIALS, Config, Spec
from montecarlo._runs import (
    RunStore,
    Task,
    local_runner,
    run_tasks,
    sigterm_as_interrupt,
    spec_hash,
)

__all__ = [
    "BUDGETS",
    "CONFIDENCE",
    "OPTION_KEYS",
    "group_problems",
    "groups_option_problems",
    "option_problems",
    "run_adversarial",
    "select_group",
    "selected_configs",
]

BUDGETS: Mapping[str, SearchBudget] = {"quick": QUICK_BUDGET, "full": FULL_BUDGET}
"""Named budgets of the ``budget`` option."""

OPTION_KEYS = ("groups", "budget", "norms", "heldout", "workers")
"""Keys of the ``[adversarial]`` table."""

CONFIDENCE = 0.95
"""Level of the stored intervals and ``c*`` (the claims recompute theirs at
``1 - alpha`` from the stored per-trial values)."""

_PROTOCOL = 1  # part of every unit's hash; raise it when a unit's meaning changes
_BUDGET_FIELDS = tuple(f.name for f in dataclasses.fields(SearchBudget))


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | bool | int | float)


# --- options -------------------------------------------------------------------


def _budget_problems(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        if value not in BUDGETS:
            return [f"{path}: must be one of {list(BUDGETS)} or a table, got {value!r}"]
        return []
    if not isinstance(value, Mapping):
        return [
            f"{path}: must be one of {list(BUDGETS)} or a table of "
            f"{list(_BUDGET_FIELDS)}, got {value!r}"
        ]
    problems = []
    for key, v in value.items():
        if key not in _BUDGET_FIELDS:
            problems.append(
                f"{path}.{key}: unknown key (allowed: {list(_BUDGET_FIELDS)})"
            )
            continue
        if key == "quantiles" and not isinstance(v, list):
            problems.append(
                f"{path}.quantiles: must be a non-empty list of numbers in (0, 1), "
                f"got {v!r}"
            )
            continue
        try:
            SearchBudget(**{key: tuple(v) if key == "quantiles" else v})
        except ValueError as exc:
            text = str(exc).removeprefix("invalid SearchBudget: ")
            problems.append(f"{path}.{key}: {text.removeprefix(key + ' ')}")
    if not problems:
        try:
            _budget(value)
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
    return problems


def groups_option_problems(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or not value:
        return [
            f"{path}: must be a non-empty list of group names or tables "
            f"{{group = NAME, AXIS = VALUE}}, got {value!r}"
        ]
    problems = []
    seen: list[Any] = []
    for i, entry in enumerate(value):
        where = f"{path}[{i}]"
        if isinstance(entry, str):
            if not entry:
                problems.append(f"{where}: must be a non-empty group name, got ''")
        elif isinstance(entry, Mapping):
            name = entry.get("group")
            if not isinstance(name, str) or not name:
                problems.append(
                    f"{where}.group: must be a non-empty group name, got {name!r}"
                )
            for key, v in entry.items():
                if key != "group" and not _is_scalar(v):
                    problems.append(
                        f"{where}.{key}: must be one value of the axis {key!r} (a "
                        f"string, number or boolean), got {v!r}"
                    )
        else:
            problems.append(
                f"{where}: must be a group name or a table {{group = NAME, AXIS = "
                f"VALUE}}, got {entry!r}"
            )
        if entry in seen:
            problems.append(f"{where}: repeats groups[{seen.index(entry)}]")
        seen.append(entry)
    return problems


def option_problems(table: Any, path: str = "adversarial") -> list[str]:
    """Problems of the ``[adversarial]`` table on its own (empty if fine).

    Checks the keys, their types and ranges; whether the named groups exist
    and test uniform statements needs the spec's groups
    (:func:`group_problems`).

    Args:
        table: The parsed TOML table.
        path: The table's key path in the spec, for the messages. Defaults to
            ``"adversarial"``.

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
    if "groups" not in table:
        problems.append(f"{path}.groups: missing (the spec groups to search)")
    else:
        problems += groups_option_problems(table["groups"], f"{path}.groups")
    if "budget" in table:
        problems += _budget_problems(table["budget"], f"{path}.budget")
    if "norms" in table:
        norms = table["norms"]
        if (
            not isinstance(norms, list)
            or not norms
            or any(n not in NORMS for n in norms)
            or len(set(norms)) != len(norms)
        ):
            problems.append(
                f"{path}.norms: must be a non-empty list of distinct names from "
                f"{list(NORMS)}, got {norms!r}"
            )
    if "heldout" in table:
        T = table["heldout"]
        if not (_is_int(T) and 1 <= T <= MAX_TRIALS):
            problems.append(
                f"{path}.heldout: must be an integer in [1, {MAX_TRIALS}], got {T!r}"
            )
    if "workers" in table:
        w = table["workers"]
        if not (_is_int(w) and w >= 1):
            problems.append(f"{path}.workers: must be an integer >= 1, got {w!r}")
    return problems


def select_group(
    entry: str | Mapping[str, Any],
    groups: Mapping[str, Sequence[Config]],
    axes: Mapping[str, Sequence[str]],
    where: str,
) -> tuple[str | None, list[Config], list[str]]:
    """``(group, configurations, problems)`` of one ``groups`` entry."""
    name = entry if isinstance(entry, str) else entry["group"]
    if name not in groups:
        return (
            None,
            [],
            [f"{where}: no group {name!r} in the spec (groups: {list(groups)})"],
        )
    chosen = list(groups[name])
    if isinstance(entry, str):
        return name, chosen, []
    problems = []
    for key, value in entry.items():
        if key == "group":
            continue
        if key not in axes.get(name, ()):
            problems.append(
                f"{where}.{key}: not a grid axis of group {name!r} (axes: "
                f"{list(axes.get(name, ()))})"
            )
            continue
        present = [getattr(c, key) for c in groups[name]]
        if value not in present:
            problems.append(
                f"{where}.{key}: must be one of the group's values "
                f"{sorted(set(present), key=str)}, got {value!r}"
            )
            continue
        chosen = [c for c in chosen if getattr(c, key) == value]
    return name, ([] if problems else chosen), problems


def group_problems(
    table: Mapping[str, Any],
    groups: Mapping[str, Sequence[Config]],
    axes: Mapping[str, Sequence[str]],
    path: str = "adversarial",
) -> list[str]:
    """Problems of the ``groups`` option against the spec's groups (empty if fine).

    Every entry must name a group of the spec, select only its grid axes at
    values it has, and select configurations that test a uniform statement
    (:func:`montecarlo._adversarial.statement_of`), none twice.

    Args:
        table: The ``[adversarial]`` table (already checked by
            :func:`option_problems`).
        groups: The spec's groups (``Spec.groups``).
        axes: The spec's grid axes per group (``Spec.axes``).
        path: The table's key path, for the messages. Defaults to
            ``"adversarial"``.

    Returns:
        One line per problem (none when the table itself is invalid: those
        problems are :func:`option_problems`'s).
    """
    if option_problems(table, path):
        return []
    problems = []
    taken: dict[tuple[str, str], int] = {}
    for i, entry in enumerate(table.get("groups", [])):
        where = f"{path}.groups[{i}]"
        name, chosen, found = select_group(entry, groups, axes, where)
        problems += found
        for config in chosen:
            label = config.label(axes.get(name, ())) or "its one configuration"
            try:
                statement_of(config)
            except ValueError:
                problems.append(
                    f"{where}: group {name!r} ({label}) tests theorem = "
                    f"{config.theorem!r} with fixed_data = "
                    f"{str(config.fixed_data).lower()}; must test a uniform "
                    "statement: theorem = '5.1', 'corollary_5.1', or '4.1' with "
                    "fixed_data = true"
                )
                break
            key = (name, config.config_hash)
            if key in taken:
                problems.append(
                    f"{where}: selects group {name!r} ({label}) again, already "
                    f"selected by {path}.groups[{taken[key]}]"
                )
            taken[key] = i
    return problems


def selected_configs(
    table: Mapping[str, Any],
    groups: Mapping[str, Sequence[Config]],
    axes: Mapping[str, Sequence[str]],
) -> list[tuple[str, Config]]:
    """The ``(group, configuration)`` pairs the ``groups`` option selects, in order.

    Raises:
        ValueError: On the problems of :func:`option_problems` and
            :func:`group_problems`, one per line.
    """
    problems = option_problems(table)
    if not problems:
        problems = group_problems(table, groups, axes)
    if problems:
        raise ValueError("\n".join(problems))
    out = []
    for i, entry in enumerate(table["groups"]):
        name, chosen, _ = select_group(entry, groups, axes, f"groups[{i}]")
        out += [(str(name), c) for c in chosen]
    return out


def _budget(value: str | Mapping[str, Any]) -> SearchBudget:
    """The :class:`SearchBudget` of the ``budget`` option (fields default to full)."""
    if isinstance(value, str):
        return BUDGETS[value]
    return SearchBudget.from_dict({**FULL_BUDGET.to_dict(), **value})


# --- units ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Unit:
    """One search: a configuration, the ball's norm, and what fixes its result."""

    config: Config
    norm: str | None
    budget: SearchBudget
    seed: int
    heldout: int
    eta: tuple[float, ...]

    def content(self) -> dict[str, Any]:
        return {
            "protocol": _PROTOCOL,
            "config": self.config.content(),
            "statement": statement_of(self.config),
            "norm": self.norm,
            "budget": self.budget.to_dict(),
            "seed": self.seed,
            "heldout": self.heldout,
            "eta": list(self.eta),
            "confidence": CONFIDENCE,
        }

    @property
    def run_id(self) -> str:
        return spec_hash(self.content())


def _fmt(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.3g}"


def _unit_task(payload: tuple[_Unit, str | None]) -> dict[str, Any]:
    """One unit as a task of :mod:`montecarlo._runs`; prints its line if asked."""
    unit, label = payload
    result = adversarial_cstar(
        unit.config,
        np.asarray(unit.eta),
        unit.seed,
        unit.budget,
        norm=unit.norm,
        trials=unit.heldout,
        confidence=CONFIDENCE,
        threads=1,
    )
    if label is not None:
        c_rand, c_adv = result.random.c_star, result.adversarial.c_star
        ratio = c_adv / c_rand if c_rand > 0 and math.isfinite(c_rand) else math.nan
        print(
            f"[adversarial] {label}: c* random {_fmt(c_rand)}, adversarial "
            f"{_fmt(c_adv)} (ratio {_fmt(ratio)}; search {result.search.seconds:.1f} "
            "s)",
            flush=True,
        )
    return result.to_dict()


def run_adversarial(
    out_dir: str | pathlib.Path,
    options: Mapping[str, Any],
    *,
    spec: Spec,
    seed: int,
    fresh: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Search every selected configuration's worst case; write ``OUT/adversarial.json``.

    Every option and group is checked before any search (see the module
    docstring). One unit per configuration (and, for Corollary 5.1, per norm)
    is computed by :func:`montecarlo._adversarial.adversarial_cstar` on the
    spec's ``eta`` grid, stored at once, and loaded on a re-run.

    Args:
        out_dir: Results directory (created if missing).
        options: The spec's ``[adversarial]`` table.
        spec: The spec: its groups, grid axes and ``eta`` grid.
        seed: The run seed, an integer >= 0.
        fresh: Discard the stored units first. Defaults to False.
        progress: Print one line per finished unit. Defaults to True.

    Returns:
        The dict written to ``OUT/adversarial.json``: ``seed``, ``budget``
        (its fields) and ``budget_name``, ``norms``, ``heldout`` (the option,
        or None), ``confidence``, ``eta``, ``groups`` (per searched group: its
        statement, its axes and, per axis, the values of the searched
        configurations in order, their hashes, and the norms searched),
        ``results`` (per unit, in order: ``group`` and
        :meth:`montecarlo._adversarial.AdversarialResult.to_dict`),
        ``elapsed_seconds`` and ``workers``. Non-finite floats are the strings
        ``"inf"``, ``"-inf"``, ``"nan"``.

    Raises:
        ValueError: On an invalid option, group or seed (every problem, one
            per line), before any search.
        KeyboardInterrupt: On Ctrl-C or SIGTERM; finished units stay stored.
    """
    if not isinstance(spec, Spec):
        raise ValueError(f"spec must be a Spec, got {type(spec).__name__}")
    if not (_is_int(seed) and seed >= 0):
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    selected = selected_configs(options, spec.groups, spec.axes)
    budget = _budget(options.get("budget", "full"))
    norms = list(options.get("norms", NORMS))
    workers = int(options.get("workers", 1))
    grid = tuple(float(e) for e in spec.eta.values())
    out_dir = pathlib.Path(out_dir)
    store = RunStore(out_dir / "adversarial" / "units")
    if fresh:
        store.clear()
    started = time.perf_counter()

    entries: list[tuple[str, _Unit]] = []
    for group, config in selected:
        statement = statement_of(config)
        T = int(options.get("heldout", config.trials))
        for norm in norms if statement == "corollary_5.1" else [None]:
            entries.append((group, _Unit(config, norm, budget, int(seed), T, grid)))
    tasks: dict[str, Task] = {}
    for group, unit in entries:
        label = (
            f"{statement_of(unit.config)} {group} "
            f"{unit.config.label(spec.axes.get(group, ())) or '(one configuration)'}"
            + (f", {unit.norm} ball" if unit.norm else "")
        )
        # Gram evaluations (search, then held-out) times the layers' size
        b = unit.budget
        inner = b.inner_steps if unit.norm else 0
        grams = b.steps * b.restarts * b.batch + unit.heldout * (1 + inner)
        cost = float(grams * unit.config.depth * unit.config.width)
        tasks.setdefault(
            unit.run_id,
            Task(
                unit.run_id,
                unit.content(),
                _unit_task,
                (unit, label if progress else None),
                label,
                cost,
            ),
        )

    def log(line: str) -> None:
        if progress:
            print(f"[adversarial] {line}", flush=True)

    log(
        f"{len(tasks)} searches ({budget.restarts} restarts x {budget.steps} steps x "
        f"{budget.batch} draws); stored in {store.root}"
    )
    with sigterm_as_interrupt(), local_runner(workers) as runner:
        records = run_tasks(list(tasks.values()), store, runner, log=log)
    by_id = {r["run_id"]: r["result"] for r in records}

    searched: dict[str, dict[str, Any]] = {}
    for group, unit in entries:
        info = searched.setdefault(
            group,
            {
                "statement": statement_of(unit.config),
                "axes": {a: [] for a in spec.axes.get(group, ())},
                "config_hashes": [],
                "norms": [],
            },
        )
        if unit.config.config_hash not in info["config_hashes"]:
            info["config_hashes"].append(unit.config.config_hash)
            for a in info["axes"]:
                info["axes"][a].append(getattr(unit.config, a))
        if unit.norm is not None and unit.norm not in info["norms"]:
            info["norms"].append(unit.norm)
    budget_name = next((name for name, b in BUDGETS.items() if b == budget), "custom")
    result = {
        "experiment": "adversarial",
        "seed": int(seed),
        "budget": budget.to_dict(),
        "budget_name": budget_name,
        "norms": norms,
        "heldout": options.get("heldout"),
        "confidence": CONFIDENCE,
        "eta": list(grid),
        "groups": searched,
        "results": [{"group": group, **by_id[unit.run_id]} for group, unit in entries],
        "elapsed_seconds": time.perf_counter() - started,
        "workers": workers,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "adversarial.json").write_text(json.dumps(result, allow_nan=False))
    return result
