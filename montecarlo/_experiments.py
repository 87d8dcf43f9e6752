"""The experiments a spec can list besides its Monte Carlo groups.

Each experiment is a function of the results directory, its options and the
run seed that writes ``OUT/<name>.json`` (and may store its own units under
``OUT/<name>/`` so that an interrupted run resumes). A spec lists them in
``experiments = [...]`` and may give each a top-level table of options named
after it, validated here before anything runs:

- ``sgd_check``: Theorems 3.1 and 3.2 on toy models (options: ``quick``);
- ``figure1``: the paper's Figure 1;
- ``real_data``: trained MLPs on the bundled digits (options: ``quick``);
- ``real_data_cnn``: the paper's CNN-beta-k, Figures 2 to 4 (options: the
  plan, :mod:`montecarlo._cnn_experiment`);
- ``lemma_b1``: Lemma B.1 on the sphere (options: ``quick``);
- ``minibatch``: the Section 8 mini-batch rates (options: ``quick``);
- ``adversarial``: the worst case found for the uniform statements (Theorem
  5.1, Corollary 5.1, Theorem 4.1 part 1) by projected search (options: the
  groups searched, the budget, the norms; :mod:`montecarlo._worst_case`);
- ``tail``: rare-event estimates of the failure tail and its rates (options:
  the groups, the levels or target probabilities, particles, repetitions;
  :mod:`montecarlo._tails`).

Heavy modules (torch) are imported only when an experiment runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["EXPERIMENTS", "option_problems", "run_experiment"]

EXPERIMENTS = (
    "sgd_check",
    "figure1",
    "real_data",
    "real_data_cnn",
    "lemma_b1",
    "minibatch",
    "adversarial",
    "tail",
)

_QUICK_DEFAULT = {
    "sgd_check": True,
    "real_data": False,
    "lemma_b1": True,
    "minibatch": True,
}


def _quick_problems(table: Any, path: str) -> list[str]:
    if not isinstance(table, Mapping):
        return [f"{path}: must be a table, got {table!r}"]
    problems = [
        f"{path}.{key}: unknown key (allowed: quick)" for key in table if key != "quick"
    ]
    if "quick" in table and not isinstance(table["quick"], bool):
        problems.append(f"{path}.quick: must be true or false, got {table['quick']!r}")
    return problems


def _cnn_problems(table: Any, path: str) -> list[str]:
    from montecarlo._cnn_experiment import plan_problems

    return plan_problems(table, path)


def _adversarial_problems(table: Any, path: str) -> list[str]:
    from montecarlo._worst_case import option_problems as problems

    return problems(table, path)


def _tail_problems(table: Any, path: str) -> list[str]:
    from montecarlo._tails import option_problems as problems

    return problems(table, path)


_OPTION_CHECKS: dict[str, Callable[[Any, str], list[str]]] = {
    "adversarial": _adversarial_problems,
    "tail": _tail_problems,
    "sgd_check": _quick_problems,
    "real_data": _quick_problems,
    "lemma_b1": _quick_problems,
    "minibatch": _quick_problems,
    "real_data_cnn": _cnn_problems,
}


def option_problems(name: str, table: Any) -> list[str]:
    """Problems of the options table of experiment ``name`` (empty if fine)."""
    check = _OPTION_CHECKS.get(name)
    if check is None:
        return [f"{name}: the experiment takes no options"]
    return check(table, name)


def run_experiment(
    name: str,
    out_dir: Path,
    spec: Any,
    *,
    seed: int,
    fresh: bool = False,
    data_dir: Path | None = None,
    client: Any = None,
) -> dict:
    """Run experiment ``name`` of ``spec`` into ``out_dir``; returns its result.

    ``client``: a Dask client when the run has one (the tail estimates map
    their repetitions over it).

    Raises:
        ValueError: On an unknown name or an option the experiment refuses.
    """
    options = spec.options.get(name, {})
    quick = bool(options.get("quick", _QUICK_DEFAULT.get(name, False)))
    if name == "sgd_check":
        from montecarlo._sgd_check import run_sgd_check

        return run_sgd_check(out_dir, seed=seed, quick=quick)
    if name == "figure1":
        from montecarlo._sgd_check import run_figure1

        return run_figure1(out_dir, seed=seed)
    if name == "real_data":
        from montecarlo._real_data import run_real_data

        return run_real_data(out_dir, seed=seed, quick=quick, fresh=fresh)
    if name == "real_data_cnn":
        from montecarlo._cnn_experiment import run_real_data_cnn

        return run_real_data_cnn(
            out_dir, options or None, seed=seed, data_dir=data_dir, fresh=fresh
        )
    if name == "lemma_b1":
        from montecarlo._lemma_b1 import run_lemma_b1

        return run_lemma_b1(out_dir, seed=seed, quick=quick)
    if name == "minibatch":
        from montecarlo._minibatch import run_minibatch

        return run_minibatch(out_dir, seed=seed, quick=quick)
    if name == "adversarial":
        from montecarlo._worst_case import run_adversarial

        return run_adversarial(out_dir, options, spec=spec, seed=seed, fresh=fresh)
    if name == "tail":
        from montecarlo._tails import run_tail

        return run_tail(
            out_dir, options, spec=spec, seed=seed, fresh=fresh, client=client
        )
    raise ValueError(f"name must be one of {list(EXPERIMENTS)}, got {name!r}")
