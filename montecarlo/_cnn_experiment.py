"""The paper's CNN experiments (Section 7, Figures 2 to 4): plan, runs, claim data.

An experiment is fixed by a *plan*, the ``[real_data_cnn]`` table of a spec
(``montecarlo/specs/real_data_cnn.toml``: digits, small; and
``real_data_cnn_cifar10.toml``: CIFAR-10 at the paper's scale), read and
validated before any run. Notation as in :mod:`montecarlo._cnn` (``beta``
depth, ``k`` width factor, ``c`` base channels, ``E``, ``B``, ``K``,
``alpha``); ``R`` replicates. The models:

- **depth sweep** (Figure 2): CNN-beta-k at ``k = width_factor`` for every
  ``beta`` in ``depths``, and **batch norm and skip connections** (Figure 4):
  the same depths for every variant in ``variants``;
- **width sweep** (Figure 3): plain CNN-beta-k at ``beta = width_depth`` for
  every ``k`` in ``width_factors``.

Protocol (Section 7): for each model, one *tuning run* per step size of the
logarithmic grid ``learning_rates`` (its own seed, ``E`` epochs, no
measurement); the step size whose run ends with the lowest final training
loss is kept (the smallest one if every run diverged); then ``R`` measured
runs at that step size, each measuring ``K`` pairs of mini-batches of ``B``
(gradient cosines) and the test accuracy at initialization and after every
epoch. Every run is an independent task (:mod:`montecarlo._runs`): serially,
in local processes or as a Dask task; each is stored on completion under
``OUT/real_data_cnn/runs/<run_id>.json`` and a re-run resumes.

**Pre-specified claims.** The plan lists the claims to test and their
directions (the paper's: deeper is slower and more confused, wider is faster
and less confused, batch norm with skip connections lowers the confusion of
deep networks). Before the first run their list is registered in
``OUT/real_data_cnn/registration.json`` (with the time); a later run with
other claims in the same directory is refused (the claims would no longer be
pre-specified), unless ``fresh``. The result records them with
``"prespecified": true`` and, per claim, the arrays its test needs; this
module computes no verdict (the inference layer does).

Metrics of a measured run, after its last epoch: ``final_train_loss`` (mean
mini-batch loss of the last epoch), ``final_min_cosine`` (minimum of the
``K`` cosines), ``final_test_accuracy``. A run whose loss became non-finite
(*diverged*) has trained worst: its ``final_train_loss`` is missing and ranks
above every finite loss (``missing: "worst"``), its other metrics are missing
and the run is left out (``missing: "drop"``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import os
import pathlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

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

__all__ = [
    "AXES",
    "EXECUTORS",
    "METRICS",
    "NAME",
    "QUICK_PLAN",
    "Plan",
    "PrespecifiedClaim",
    "claim_data",
    "default_plan",
    "main",
    "parse_plan",
    "plan_problems",
    "run_real_data_cnn",
]

NAME = "real_data_cnn"
SCHEMA_VERSION = 1
_VARIANTS = ("plain", "bn", "skip", "bn+skip")  # = montecarlo._cnn.VARIANTS
_DATASETS = ("digits", "cifar10")  # = montecarlo._cnn.DATASETS
METRICS = {
    "final_train_loss": ("train_loss", "worst"),
    "final_min_cosine": ("min_cosine", "drop"),
    "final_test_accuracy": ("test_accuracy", "drop"),
}
"""Metric -> (curve of a run it is the last value of, rule for a diverged run)."""
AXES = {
    "depth": ("spearman", ("increasing", "decreasing")),
    "width_factor": ("spearman", ("increasing", "decreasing")),
    "variant": ("wilcoxon", ("greater", "less")),
}
"""Claim axis -> (its test, its allowed directions)."""
EXECUTORS = ("serial", "processes", "dask")


# ---------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PrespecifiedClaim:
    """One claim fixed in the plan before any run.

    Attributes:
        id: unique name, e.g. ``"depth_slower"``.
        statement: the claim in words (the paper's).
        axis: ``"depth"`` or ``"width_factor"`` (a trend over the sweep's runs)
            or ``"variant"`` (``treated`` against ``control``, matched by depth
            and replicate).
        metric: a key of :data:`METRICS`.
        direction: ``"increasing"`` / ``"decreasing"`` (the metric along the
            axis) or ``"greater"`` / ``"less"`` (treated minus control).
        test: ``"spearman"`` (one-sided rank correlation of metric with axis
            over runs) or ``"wilcoxon"`` (one-sided signed-rank test of the
            matched differences); fixed by the axis.
        variant: whose runs a depth trend uses (a width trend: ``"plain"``).
        treated: variant axis: the variant claimed to differ.
        control: variant axis: the variant it is compared with.
        depths: variant axis: depths of the matched pairs (the paper's "deep
            nets"); empty means every depth of the plan.
        figure: the paper's panel.
    """

    id: str
    statement: str
    axis: str
    metric: str
    direction: str
    test: str
    variant: str = "plain"
    treated: str = ""
    control: str = ""
    depths: tuple[int, ...] = ()
    figure: str = ""

    def content(self) -> dict[str, Any]:
        """Plain JSON values, with ``"prespecified": true``."""
        out = dataclasses.asdict(self)
        out["depths"] = list(self.depths)
        out["missing"] = METRICS[self.metric][1]
        out["prespecified"] = True
        return out


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated ``[real_data_cnn]`` table (keys as in the spec).

    Attributes:
        dataset: "digits" or "cifar10".
        device: "cpu", "cuda", "cuda:N", "mps" or "auto".
        base_channels: ``c`` (the WRN's 16).
        depths: ``beta`` of the depth sweep and of every variant.
        width_factor: ``k`` of the depth sweep and of the variants.
        width_factors: ``k`` of the width sweep.
        width_depth: ``beta`` of the width sweep.
        variants: variants at every depth (must include "plain").
        replicates: ``R`` measured runs per model.
        epochs: ``E``.
        batch_size: ``B``.
        pairs: ``K``.
        learning_rates: the step-size grid (logarithmic).
        lr_drops: fractions of ``E`` at which ``alpha`` is divided by 10.
        augment: WRN augmentation (CIFAR-10 only).
        test_fraction: digits: held-out share.
        claims: the pre-specified claims.
    """

    dataset: str
    device: str
    base_channels: int
    depths: tuple[int, ...]
    width_factor: int
    width_factors: tuple[int, ...]
    width_depth: int
    variants: tuple[str, ...]
    replicates: int
    epochs: int
    batch_size: int
    pairs: int
    learning_rates: tuple[float, ...]
    lr_drops: tuple[float, ...]
    augment: bool
    test_fraction: float
    claims: tuple[PrespecifiedClaim, ...]

    @property
    def lr_drop_epochs(self) -> tuple[int, ...]:
        """0-based epochs before which ``alpha`` is divided by 10 (0 dropped)."""
        return tuple(sorted({int(f * self.epochs) for f in self.lr_drops} - {0}))

    def models(self) -> list[tuple[str, int, int]]:
        """``(variant, depth, k)`` of every model, without duplicates."""
        out = [(v, d, self.width_factor) for v in self.variants for d in self.depths]
        out += [("plain", self.width_depth, k) for k in self.width_factors]
        return list(dict.fromkeys(out))

    def content(self) -> dict[str, Any]:
        """Plain JSON values (claims included)."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        out["claims"] = [c.content() for c in self.claims]
        out["lr_drop_epochs"] = list(self.lr_drop_epochs)
        return out


_FIELD_TYPES: dict[str, tuple[str, Any]] = {
    # key: (kind, default); kind: str | int | float | bool | ints | floats | strs
    "dataset": ("str", "digits"),
    "device": ("str", "cpu"),
    "base_channels": ("int", 16),
    "depths": ("ints", None),
    "width_factor": ("int", None),
    "width_factors": ("ints", None),
    "width_depth": ("int", None),
    "variants": ("strs", _VARIANTS),
    "replicates": ("int", None),
    "epochs": ("int", None),
    "batch_size": ("int", 128),
    "pairs": ("int", 100),
    "learning_rates": ("floats", None),
    "lr_drops": ("floats", (0.4, 0.8)),
    "augment": ("bool", False),
    "test_fraction": ("float", 0.25),
}
_CLAIM_KEYS = {f.name for f in dataclasses.fields(PrespecifiedClaim)}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _check_field(key: str, kind: str, value: Any, path: str) -> list[str]:
    where = f"{path}.{key}"
    if kind == "str" and not isinstance(value, str):
        return [f"{where}: must be a string, got {value!r}"]
    if kind == "int" and not (_is_int(value) and value >= 1):
        return [f"{where}: must be an integer >= 1, got {value!r}"]
    if kind == "float" and not _is_num(value):
        return [f"{where}: must be a finite number, got {value!r}"]
    if kind == "bool" and not isinstance(value, bool):
        return [f"{where}: must be true or false, got {value!r}"]
    if kind in ("ints", "floats", "strs"):
        ok = {"ints": lambda v: _is_int(v) and v >= 1, "floats": _is_num}.get(
            kind, lambda v: isinstance(v, str)
        )
        what = {
            "ints": "integers >= 1",
            "floats": "finite numbers",
            "strs": "strings",
        }[kind]
        if not isinstance(value, list) or not value or not all(ok(v) for v in value):
            return [f"{where}: must be a non-empty list of {what}, got {value!r}"]
        if len(set(value)) != len(value):
            return [f"{where}: must not repeat a value, got {value!r}"]
    return []


def _claim_problems(
    doc: Any, i: int, path: str, values: Mapping[str, Any]
) -> list[str]:
    where = f"{path}.claims[{i}]"
    if not isinstance(doc, Mapping):
        return [f"{where}: must be a table, got {doc!r}"]
    problems = [
        f"{where}.{k}: unknown key (allowed: {sorted(_CLAIM_KEYS)})"
        for k in doc
        if k not in _CLAIM_KEYS
    ]
    for key in ("id", "statement", "axis", "metric", "direction"):
        if not isinstance(doc.get(key), str) or not doc.get(key):
            problems.append(f"{where}.{key}: must be a non-empty string")
    if problems:
        return problems
    axis, metric, direction = doc["axis"], doc["metric"], doc["direction"]
    if axis not in AXES:
        return [f"{where}.axis: must be one of {list(AXES)}, got {axis!r}"]
    test, directions = AXES[axis]
    if metric not in METRICS:
        problems.append(
            f"{where}.metric: must be one of {list(METRICS)}, got {metric!r}"
        )
    if direction not in directions:
        problems.append(
            f"{where}.direction: for axis {axis!r} must be one of {list(directions)}, "
            f"got {direction!r}"
        )
    if doc.get("test", test) != test:
        problems.append(
            f"{where}.test: axis {axis!r} is tested by {test!r}, got {doc['test']!r}"
        )
    for key in ("figure", "variant", "treated", "control"):
        if key in doc and not isinstance(doc[key], str):
            problems.append(f"{where}.{key}: must be a string, got {doc[key]!r}")
    variants = values.get("variants") or []
    if axis == "depth" and doc.get("variant", "plain") not in variants:
        problems.append(
            f"{where}.variant: must be one of the plan's variants {variants}, got "
            f"{doc.get('variant', 'plain')!r}"
        )
    if axis == "width_factor" and doc.get("variant", "plain") != "plain":
        problems.append(
            f"{where}.variant: the width sweep has plain networks only, got "
            f"{doc['variant']!r}"
        )
    if axis == "variant":
        for key in ("treated", "control"):
            if doc.get(key) not in variants:
                problems.append(
                    f"{where}.{key}: must be one of the plan's variants {variants}, "
                    f"got {doc.get(key)!r}"
                )
        if doc.get("treated") == doc.get("control"):
            problems.append(f"{where}: treated and control must differ")
        depths = doc.get("depths", [])
        plan_depths = values.get("depths") or []
        if not isinstance(depths, list) or any(d not in plan_depths for d in depths):
            problems.append(
                f"{where}.depths: must be a list of the plan's depths {plan_depths}, "
                f"got {depths!r}"
            )
    elif "depths" in doc or "treated" in doc or "control" in doc:
        problems.append(f"{where}: depths, treated, control belong to axis 'variant'")
    return problems


def plan_problems(table: Any, path: str = NAME) -> list[str]:
    """Every problem of a ``[real_data_cnn]`` table, each as ``key.path: message``.

    Checks types and ranges, the depths (``6 N + 4``), the variants, the
    batch size against the data, and each claim's axis, metric, direction,
    test and references to the plan's variants and depths. Imports no torch.

    Args:
        table: the parsed TOML table.
        path: key path of the table in messages. Default "real_data_cnn".

    Returns:
        The problems (empty if the table is valid).
    """
    if not isinstance(table, Mapping):
        return [f"{path}: must be a table, got {table!r}"]
    allowed = {*_FIELD_TYPES, "claims"}
    problems = [
        f"{path}.{k}: unknown key (allowed: {sorted(allowed)})"
        for k in table
        if k not in allowed
    ]
    values: dict[str, Any] = {}
    for key, (kind, default) in _FIELD_TYPES.items():
        if key not in table:
            if default is None:
                problems.append(f"{path}.{key}: required")
            else:
                values[key] = list(default) if isinstance(default, tuple) else default
            continue
        found = _check_field(key, kind, table[key], path)
        problems += found
        if not found:
            values[key] = table[key]
    if values.get("dataset") not in (None, *_DATASETS):
        problems.append(
            f"{path}.dataset: must be one of {list(_DATASETS)}, got "
            f"{values['dataset']!r}"
        )
    for key in ("depths", "width_depth"):
        ds = values.get(key)
        for d in ds if isinstance(ds, list) else [] if ds is None else [ds]:
            if d < 10 or (d - 4) % 6:
                problems.append(
                    f"{path}.{key}: depths must be 6 N + 4 with N >= 1 (10, 16, 22, "
                    f"...), got {d}"
                )
    bad = [v for v in values.get("variants") or [] if v not in _VARIANTS]
    if bad:
        problems.append(f"{path}.variants: must be among {list(_VARIANTS)}, got {bad}")
    elif values.get("variants") and "plain" not in values["variants"]:
        problems.append(f"{path}.variants: must include 'plain' (the depth sweep)")
    if any(lr <= 0 for lr in values.get("learning_rates") or []):
        problems.append(
            f"{path}.learning_rates: must be > 0, got {values['learning_rates']}"
        )
    if any(not 0 < f < 1 for f in values.get("lr_drops") or []):
        problems.append(
            f"{path}.lr_drops: fractions of the epochs in (0, 1), got "
            f"{values['lr_drops']}"
        )
    if "test_fraction" in values and not 0 < values["test_fraction"] <= 0.5:
        problems.append(
            f"{path}.test_fraction: must be in (0, 0.5], got {values['test_fraction']}"
        )
    if values.get("augment") and values.get("dataset") == "digits":
        problems.append(f"{path}.augment: flips and crops are for cifar10, not digits")
    if values.get("dataset") == "digits" and "batch_size" in values:
        # the digits hold 1797 images (montecarlo._cnn.load_digits_images)
        n_train = 1797 - round(values.get("test_fraction", 0.25) * 1797)
        if values["batch_size"] > n_train // 2:
            problems.append(
                f"{path}.batch_size: must be <= {n_train // 2} (half the digits' "
                f"training samples, as measured pairs are disjoint), got "
                f"{values['batch_size']}"
            )
    if values.get("device") is not None and not values["device"]:
        problems.append(f"{path}.device: must be a non-empty string")
    claims = table.get("claims", [])
    if not isinstance(claims, list):
        problems.append(f"{path}.claims: must be an array of tables, got {claims!r}")
        claims = []
    ids = [c.get("id") for c in claims if isinstance(c, Mapping)]
    if len(set(ids)) != len(ids):
        problems.append(f"{path}.claims: ids must be unique, got {ids}")
    for i, c in enumerate(claims):
        problems += _claim_problems(c, i, path, values)
    return problems


def parse_plan(table: Mapping[str, Any], path: str = NAME) -> Plan:
    """The :class:`Plan` of a ``[real_data_cnn]`` table.

    Args:
        table: the parsed TOML table.
        path: key path of the table in messages. Default "real_data_cnn".

    Returns:
        The validated plan.

    Raises:
        ValueError: listing every problem (:func:`plan_problems`).
    """
    problems = plan_problems(table, path)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ValueError(f"{len(problems)} problem(s) in [{path}]:\n{lines}")
    values = {k: table.get(k, default) for k, (_, default) in _FIELD_TYPES.items()}
    for key, (kind, _) in _FIELD_TYPES.items():
        if kind in ("ints", "strs"):
            values[key] = tuple(values[key])
        elif kind == "floats":
            values[key] = tuple(float(v) for v in values[key])
        elif kind == "float":
            values[key] = float(values[key])
    claims = []
    for c in table.get("claims", []):
        c = dict(c)
        c.setdefault("test", AXES[c["axis"]][0])
        c["depths"] = tuple(c.get("depths", ()))
        claims.append(PrespecifiedClaim(**c))
    return Plan(**values, claims=tuple(claims))


def default_plan() -> Plan:
    """The plan of the bundled spec ``real_data_cnn`` (digits, small scale)."""
    from montecarlo._config import load_spec

    return parse_plan(load_spec(NAME).options[NAME])


QUICK_PLAN: dict[str, Any] = {
    "dataset": "digits",
    "base_channels": 2,
    "depths": [10, 16],
    "width_factor": 1,
    "width_factors": [1, 2],
    "width_depth": 10,
    "variants": ["plain", "bn+skip"],
    "replicates": 2,
    "epochs": 2,
    "batch_size": 64,
    "pairs": 3,
    "learning_rates": [0.1, 0.01],
    "claims": [
        {
            "id": "depth_slower",
            "statement": "Deeper CNNs end with a higher training loss",
            "axis": "depth",
            "metric": "final_train_loss",
            "direction": "increasing",
        },
        {
            "id": "width_less_confused",
            "statement": "Wider CNNs end with a higher minimum gradient cosine",
            "axis": "width_factor",
            "metric": "final_min_cosine",
            "direction": "increasing",
        },
        {
            "id": "bn_skip_less_confused",
            "statement": "BN + skip raise the final minimum cosine of deep CNNs",
            "axis": "variant",
            "metric": "final_min_cosine",
            "direction": "greater",
            "treated": "bn+skip",
            "control": "plain",
            "depths": [16],
        },
    ],
}
"""A tiny plan (seconds) for tests and for trying the pipeline."""


# ---------------------------------------------------------------------------
# claim data: the arrays each claim's test needs
# ---------------------------------------------------------------------------


def _final(run: Mapping[str, Any], metric: str) -> float | None:
    curve = run.get(METRICS[metric][0]) or []
    if run["diverged"] or not curve:
        return None
    return curve[-1]


def claim_data(
    plan: Plan, runs: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per claim, the arrays its test needs (no test is run here).

    - trend (``axis`` depth or width_factor, ``test = "spearman"``): ``x`` (the
      axis value of each run), ``y`` (its metric), ``replicate``, ``run_id``,
      ``diverged``; one entry per measured run of the sweep;
    - paired (``axis = "variant"``, ``test = "wilcoxon"``): ``treated``,
      ``control`` (the metric of the two runs of one (depth, replicate)),
      ``depth``, ``replicate``, ``treated_run_id``, ``control_run_id``,
      ``treated_diverged``, ``control_diverged``; the difference tested is
      ``treated - control``.

    Missing values are ``None``; each claim's ``missing`` rule says how to use
    them (``"worst"``: rank a diverged run's loss above every finite one;
    ``"drop"``: leave the run, or the pair, out).

    Args:
        plan: the plan.
        runs: the measured runs' results (each with ``run_id``).

    Returns:
        ``{claim id: arrays}``.

    Raises:
        ValueError: if a run the plan needs is missing from ``runs``.
    """
    by_key = {
        (r["variant"], r["depth"], r["width_factor"], r["replicate"]): r for r in runs
    }

    def run(variant: str, depth: int, k: int, rep: int) -> Mapping[str, Any]:
        try:
            return by_key[(variant, depth, k, rep)]
        except KeyError:
            raise ValueError(
                f"runs lack replicate {rep} of cnn-{depth}-{k}-{variant}"
            ) from None

    reps = range(plan.replicates)
    out: dict[str, dict[str, Any]] = {}
    for c in plan.claims:
        if c.axis in ("depth", "width_factor"):
            if c.axis == "depth":
                sel = [
                    (d, run(c.variant, d, plan.width_factor, k))
                    for d in plan.depths
                    for k in reps
                ]
            else:
                sel = [
                    (w, run("plain", plan.width_depth, w, k))
                    for w in plan.width_factors
                    for k in reps
                ]
            out[c.id] = {
                "x": [x for x, _ in sel],
                "y": [_final(r, c.metric) for _, r in sel],
                "replicate": [r["replicate"] for _, r in sel],
                "run_id": [r["run_id"] for _, r in sel],
                "diverged": [r["diverged"] for _, r in sel],
            }
        else:
            depths = c.depths or plan.depths
            pairs = [
                (
                    d,
                    k,
                    run(c.treated, d, plan.width_factor, k),
                    run(c.control, d, plan.width_factor, k),
                )
                for d in depths
                for k in reps
            ]
            out[c.id] = {
                "treated": [_final(t, c.metric) for _, _, t, _ in pairs],
                "control": [_final(b, c.metric) for _, _, _, b in pairs],
                "depth": [d for d, _, _, _ in pairs],
                "replicate": [k for _, k, _, _ in pairs],
                "treated_run_id": [t["run_id"] for _, _, t, _ in pairs],
                "control_run_id": [b["run_id"] for _, _, _, b in pairs],
                "treated_diverged": [t["diverged"] for _, _, t, _ in pairs],
                "control_diverged": [b["diverged"] for _, _, _, b in pairs],
            }
    return out


# ---------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------


def _select_lr(tuning: Sequence[Mapping[str, Any]]) -> float:
    """Step size of the tuning run with the lowest final training loss.

    Ties go to the smaller step size; if every run diverged, the smallest.
    """

    def final(r: Mapping[str, Any]) -> float:
        last = r["train_loss"][-1] if r["train_loss"] else None
        return math.inf if r["diverged"] or last is None else last

    best = min(tuning, key=lambda r: (final(r), r["lr"]))
    if math.isinf(final(best)):
        return min(r["lr"] for r in tuning)
    return best["lr"]


def _cost(
    plan: Plan, variant: str, depth: int, k: int, measured: bool, n_train: int
) -> float:
    """Relative compute time: depth x (1 + k^2), data passes, batch norm ~1.4x."""
    passes = plan.epochs * (
        1 + (2 * plan.pairs * plan.batch_size / n_train if measured else 0)
    )
    bn = 1.4 if "bn" in variant else 1.0
    return depth * (1 + k * k) * passes * bn


@contextlib.contextmanager
def _runner(
    executor: str, workers: int, scheduler: str | None
) -> Iterator[tuple[Runner, str]]:
    if executor == "serial" or (executor == "processes" and workers == 1):
        yield SerialRunner(), "serial (this process)"
    elif executor == "processes":
        with process_runner(workers) as runner:
            yield runner, f"{workers} local processes"
    else:
        from montecarlo._dask import dask_client

        kwargs = (
            {"scheduler": scheduler}
            if scheduler is not None
            else {"workers": workers, "dashboard_address": "127.0.0.1:0"}
        )
        with dask_client(**kwargs) as client:
            yield (
                DaskRunner(client, prefix=NAME),
                f"Dask, {len(client.nthreads())} workers",
            )


def _register(
    root: pathlib.Path, plan: Plan, seed: int, fresh: bool, store: RunStore
) -> dict[str, Any]:
    """Register the claims before any run; refuse changed claims on resume."""
    path = root / "registration.json"
    claims = [c.content() for c in plan.claims]
    digest = spec_hash({"claims": claims, "seed": seed})
    if fresh:
        store.clear()
        path.unlink(missing_ok=True)
    if path.is_file():
        reg = json.loads(path.read_text())
        if reg.get("claims_sha256") != digest:
            raise ValueError(
                f"the claims or seed of this plan differ from those registered in "
                f"{str(path)!r} before the stored runs were computed; pre-specified "
                "claims cannot change after runs exist: use fresh (--fresh) or "
                "another output directory"
            )
        return reg
    reg = {
        "registered_at": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"
        ),
        "claims_sha256": digest,
        "seed": seed,
        "claims": claims,
        "source": f"the [{NAME}] table of the spec, read before any run",
    }
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(reg, indent=1))
    os.replace(tmp, path)
    return reg


def _summary_lines(
    plan: Plan, runs: Sequence[Mapping[str, Any]], lrs: Mapping[str, float]
) -> list[str]:
    """One line per model: step size and mean final metrics over replicates."""
    lines = [
        f"{'model':<22} {'lr':>7} {'final loss':>11} {'min cos':>8} {'test acc':>8} "
        f"{'diverged':>8}"
    ]
    for v, d, k in plan.models():
        model = f"cnn-{d}-{k}-{v}"
        sel = [r for r in runs if r["model"] == model]

        def mean(metric: str, sel: list = sel) -> str:
            vals = [x for x in (_final(r, metric) for r in sel) if x is not None]
            return f"{sum(vals) / len(vals):.4g}" if vals else "-"

        lines.append(
            f"{model:<22} {lrs[model]:>7g} {mean('final_train_loss'):>11} "
            f"{mean('final_min_cosine'):>8} {mean('final_test_accuracy'):>8} "
            f"{sum(r['diverged'] for r in sel):>4}/{len(sel)}"
        )
    return lines


def run_real_data_cnn(
    out_dir: str | os.PathLike[str],
    plan: Plan | Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    executor: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    fresh: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run the CNN experiment of a plan (module docstring) and write its JSON.

    Stores each finished run in ``out_dir/real_data_cnn/runs/`` at once (a
    re-run resumes and ends with the same result) and writes
    ``out_dir/real_data_cnn.json`` holding the returned dict.

    Args:
        out_dir: results directory (created if missing).
        plan: a :class:`Plan`, a ``[real_data_cnn]`` table, or ``None`` for the
            bundled digits plan (:func:`default_plan`). Default None.
        seed: master seed (>= 0) of every initialization, data order,
            augmentation and measurement. Default 0.
        data_dir: directory of the CIFAR-10 python files (plans with
            ``dataset = "cifar10"``; it must exist at the same path on Dask
            workers). Default None.
        executor: "serial" (this process), "processes" (a pool of ``workers``
            spawned processes) or "dask" (one Dask task per run: a local
            cluster of ``workers`` processes, or the cluster at ``scheduler``).
            Results do not depend on it. Default "processes".
        workers: processes or local Dask workers (>= 1); ``None`` means
            ``min(2, os.cpu_count())``. Default None.
        scheduler: address of a running Dask scheduler (executor "dask" only),
            e.g. ``"tcp://10.0.0.5:8786"``. Default None.
        fresh: discard stored runs and the claims' registration first.
            Default False.
        progress: print one line per finished epoch of every run (from the
            process running it). Default True.
        log: called with the driver's lines (plan, each stored run, summary);
            ``None`` for silence. Default ``print``.

    Returns:
        A dict of plain values: ``experiment``, ``schema``, ``seed``, ``data``
        (name, sizes, fingerprint), ``device``, ``plan`` (every setting and the
        claims), ``registration`` (when the claims were registered),
        ``prespecified_claims`` (one dict per claim: ``id``, ``statement``,
        ``axis``, ``metric``, ``direction``, ``test``, ``variant``,
        ``treated``, ``control``, ``depths``, ``figure``, ``missing``,
        ``prespecified``), ``claim_data`` (:func:`claim_data`), ``models``
        (per model: the step-size grid's final tuning losses and the chosen
        step size), ``runs`` (every measured run: ``run_id``, ``model``,
        ``variant``, ``depth``, ``width_factor``, ``replicate``, ``lr``,
        ``diverged``, ``epochs_completed``, ``train_loss`` per epoch,
        ``min_cosine``, ``test_accuracy`` and ``cosines`` from initialization),
        ``metrics`` (one row of final metrics per measured run) and ``timing``
        (the only entry that depends on the machine).

    Raises:
        ValueError: on a bad argument or plan (named in the message), a
            missing or malformed CIFAR-10 directory, or claims that differ
            from those registered in ``out_dir``.
        KeyboardInterrupt: on Ctrl-C or SIGTERM; the finished runs stay stored
            and no worker process is left behind.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    if workers is None:
        workers = max(1, min(2, os.cpu_count() or 1))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if scheduler is not None and executor != "dask":
        raise ValueError(
            f"scheduler is for executor 'dask', got executor {executor!r} with "
            f"scheduler {scheduler!r}"
        )
    if plan is None:
        plan = default_plan()
    elif not isinstance(plan, Plan):
        plan = parse_plan(plan)
    from montecarlo import _cnn

    say = log if log is not None else (lambda line: None)
    started = time.perf_counter()
    device = _cnn.resolve_device(plan.device)
    data_dir_s = None if data_dir is None else str(pathlib.Path(data_dir).resolve())
    data = _cnn.load_data(
        plan.dataset, data_dir=data_dir_s, test_fraction=plan.test_fraction
    )
    if 2 * plan.batch_size > data.x_train.shape[0]:
        raise ValueError(
            f"batch_size must be <= {data.x_train.shape[0] // 2} (half the "
            f"{data.x_train.shape[0]} training samples, as measured pairs are "
            f"disjoint), got {plan.batch_size}"
        )
    out = pathlib.Path(out_dir)
    root = out / NAME
    store = RunStore(root / "runs")
    registration = _register(root, plan, seed, fresh, store)

    def spec(variant: str, depth: int, k: int, rep: int, lr: float) -> Any:
        return _cnn.RunSpec(
            dataset=plan.dataset,
            data_fingerprint=data.fingerprint,
            test_fraction=plan.test_fraction if plan.dataset == "digits" else 0.0,
            variant=variant,
            depth=depth,
            width_factor=k,
            base_channels=plan.base_channels,
            seed=seed,
            replicate=rep,
            lr=lr,
            epochs=plan.epochs,
            lr_drop_epochs=plan.lr_drop_epochs,
            batch_size=plan.batch_size,
            pairs=plan.pairs if rep >= 0 else 0,
            augment=plan.augment,
            device=device,
        )

    def task(s: Any) -> Task:
        label = f"{s.model} " + (
            f"tuning lr {s.lr:g}" if s.replicate < 0 else f"replicate {s.replicate}"
        )
        return Task(
            run_id=s.run_id,
            spec=s.content(),
            fn=_cnn.run_task,
            payload=(s, data_dir_s, progress),
            label=label,
            cost=_cost(
                plan,
                s.variant,
                s.depth,
                s.width_factor,
                s.replicate >= 0,
                data.x_train.shape[0],
            ),
        )

    models = plan.models()
    n_tuning = len(models) * len(plan.learning_rates)
    n_measured = len(models) * plan.replicates
    say(
        f"[{NAME}] {plan.dataset} ({data.x_train.shape[0]} training, "
        f"{data.x_test.shape[0]} test images) on {device}: {len(models)} models, "
        f"{n_tuning} tuning runs, {n_measured} measured runs of {plan.epochs} "
        f"epochs (B = {plan.batch_size}, K = {plan.pairs}); runs stored in "
        f"{store.root}"
    )

    def prefixed(line: str) -> None:
        say(f"[{NAME}] {line}")

    with (
        sigterm_as_interrupt(),
        _runner(executor, workers, scheduler) as (
            runner,
            how,
        ),
    ):
        say(f"[{NAME}] executor: {how}")
        tuning_specs = [
            spec(v, d, k, -1, lr) for v, d, k in models for lr in plan.learning_rates
        ]
        prefixed(f"step-size tuning: {len(tuning_specs)} runs")
        tuned = run_tasks([task(s) for s in tuning_specs], store, runner, log=prefixed)
        n_lr = len(plan.learning_rates)
        lrs: dict[str, float] = {}
        model_rows = []
        for i, (v, d, k) in enumerate(models):
            results = [r["result"] for r in tuned[i * n_lr : (i + 1) * n_lr]]
            chosen = _select_lr(results)
            lrs[f"cnn-{d}-{k}-{v}"] = chosen
            model_rows.append(
                {
                    "model": f"cnn-{d}-{k}-{v}",
                    "variant": v,
                    "depth": d,
                    "width_factor": k,
                    "lr": chosen,
                    "tuning_lr": [r["lr"] for r in results],
                    "tuning_final_train_loss": [
                        None if r["diverged"] else r["train_loss"][-1] for r in results
                    ],
                }
            )
        measured_specs = [
            spec(v, d, k, rep, lrs[f"cnn-{d}-{k}-{v}"])
            for v, d, k in models
            for rep in range(plan.replicates)
        ]
        prefixed(f"measured runs: {len(measured_specs)}")
        measured = run_tasks(
            [task(s) for s in measured_specs], store, runner, log=prefixed
        )
    runs = [{"run_id": r["run_id"], **r["result"]} for r in measured]
    for line in _summary_lines(plan, runs, lrs):
        prefixed(line)
    result = {
        "experiment": NAME,
        "schema": SCHEMA_VERSION,
        "seed": seed,
        "data": data.describe()
        | {
            "source": (
                "sklearn.datasets.load_digits (bundled)"
                if plan.dataset == "digits"
                else "CIFAR-10 python files in --data-dir"
            )
        },
        "device": device,
        "plan": plan.content(),
        "registration": registration,
        "prespecified_claims": [c.content() for c in plan.claims],
        "claim_data": claim_data(plan, runs),
        "models": model_rows,
        "runs": runs,
        "metrics": [
            {
                k: r[k]
                for k in (
                    "run_id",
                    "model",
                    "variant",
                    "depth",
                    "width_factor",
                    "replicate",
                    "lr",
                    "diverged",
                )
            }
            | {m: _final(r, m) for m in METRICS}
            for r in runs
        ],
        "timing": {
            "elapsed_seconds": time.perf_counter() - started,
            "run_seconds": sum(r["seconds"] for r in tuned + measured),
            "executor": how,
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{NAME}.json.tmp"
    tmp.write_text(json.dumps(result, allow_nan=False))
    os.replace(tmp, out / f"{NAME}.json")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m montecarlo._cnn_experiment OUT [options]``; returns the exit code."""
    p = argparse.ArgumentParser(
        prog="python -m montecarlo._cnn_experiment",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("out_dir", type=pathlib.Path)
    p.add_argument(
        "--spec",
        default=NAME,
        help=f"bundled spec name or TOML path holding a [{NAME}] table "
        f"(default: {NAME})",
    )
    p.add_argument("--quick", action="store_true", help="the tiny QUICK_PLAN instead")
    p.add_argument("--seed", type=int, default=None, help="default: the spec's")
    p.add_argument("--data-dir", type=pathlib.Path, default=None)
    p.add_argument("--executor", choices=EXECUTORS, default="processes")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--scheduler", default=None)
    p.add_argument("--fresh", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--figures", action="store_true", help="also draw the figures")
    a = p.parse_args(argv)
    from montecarlo._config import load_spec

    if a.quick:
        plan: Plan | Mapping[str, Any] = QUICK_PLAN
        seed = 0 if a.seed is None else a.seed
    else:
        spec = load_spec(a.spec)
        if NAME not in spec.options:
            p.error(f"spec {a.spec!r} has no [{NAME}] table")
        plan, seed = spec.options[NAME], spec.seed if a.seed is None else a.seed
    result = run_real_data_cnn(
        a.out_dir,
        plan,
        seed=seed,
        data_dir=a.data_dir,
        executor=a.executor,
        workers=a.workers,
        scheduler=a.scheduler,
        fresh=a.fresh,
        progress=not a.no_progress,
    )
    print(f"[{NAME}] done in {result['timing']['elapsed_seconds']:.1f} s")
    if a.figures:
        from figures._real_data import plot_real_data_cnn

        for path in plot_real_data_cnn(result, a.out_dir / "figures"):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
