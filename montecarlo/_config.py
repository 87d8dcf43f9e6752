"""Configurations and sweep specs.

A *configuration* fixes everything one Monte Carlo trial draws from: the data
distribution, the labeling function, the network (``n`` samples, input
dimension ``d``, ``depth`` = beta hidden layers of ``width`` units, activation,
loss) and the weight ensemble. A *spec* is a TOML file naming groups of
configurations; list-valued keys of a group (or of ``[defaults]``, shared by every
group) are grid axes, expanded as a Cartesian product::

    title = "Theorem 4.1: width sweep"
    eta = { start = 1e-4, stop = 10.0, num = 41 }   # grid for tables and c*

    [defaults]
    trials = 400
    n = 10

    [configs.width]
    theorem = "4.1"
    weights = "gaussian"
    kappa = 1.0
    width = [8, 32, 128]

    experiments = ["sgd_check"]   # (top level) non-Monte-Carlo experiments

Every configuration is keyed by a hash of its content (all fields but
``trials``), so editing a spec never mixes results and raising ``trials``
extends a run. All spec errors (unknown key, wrong type, invalid value) are
collected with their key path and raised together as :class:`SpecError`
before any compute.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Collection, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from montecarlo._experiments import EXPERIMENTS, option_problems
from montecarlo._samplers import LINEAR_LAYERS

__all__ = [
    "Config",
    "Spec",
    "SpecError",
    "EtaGrid",
    "load_spec",
    "parse_spec",
    "bundled_specs",
    "ACTIVATION_NAMES",
    "LOSS_NAMES",
    "DATA_NAMES",
    "LABEL_NAMES",
    "WEIGHT_NAMES",
    "CENTRE_NAMES",
    "LAYER_NAMES",
    "ADMISSIBLE_WEIGHTS",
    "THEOREMS",
    "EXPERIMENTS",
    "MAX_SEED",
    "MAX_TRIALS",
]

ACTIVATION_NAMES = ("relu", "tanh", "sigmoid", "identity")
LOSS_NAMES = ("square", "logistic")
DATA_NAMES = ("sphere", "ball")
LABEL_NAMES = (
    "constant",
    "linear_teacher",
    "tanh_teacher",
    "network_teacher",
    "random_signs",
)
WEIGHT_NAMES = (
    "gaussian",
    "orthogonal",
    "small",
    "ball",
    "orthogonal_linear",
    "uniform_spectrum",
)
CENTRE_NAMES = ("small", "orthogonal", "uniform_spectrum")
"""Ensembles of the centre of the ``ball`` ensemble (``Config.centre``): the
Assumption 1 ensembles of Theorem 5.1."""
LAYER_NAMES = LINEAR_LAYERS
"""Orthogonal layers of the ``orthogonal_linear`` network (``Config.layers``)."""
THEOREMS = ("4.1", "5.1", "6.1", "corollary_5.1", "none")
ADMISSIBLE_WEIGHTS = {
    "4.1": ("gaussian",),
    "5.1": ("small", "orthogonal", "uniform_spectrum"),
    "corollary_5.1": ("ball",),
    "6.1": ("orthogonal_linear",),
}
"""Weight ensembles inside each statement's hypothesis class: Strategy 4.1 for
Theorem 4.1; every ensemble with all ``||W_p||_2 <= 1`` (Assumption 1) for
Theorem 5.1 (Gaussian layers rescaled to norm ``scale``, Haar orthogonal
layers, Haar singular vectors with uniform singular values in ``[0, scale)``);
a point of the ball around weights of any of these (``centre``, one of
:data:`CENTRE_NAMES`) for Corollary 5.1; orthogonal layers (``layers``, one of
:data:`LAYER_NAMES`) for Theorem 6.1."""

_APPLIES_TO = {"centre": "ball", "layers": "orthogonal_linear"}
"""The fields that only one weight ensemble reads, and that ensemble."""

MAX_SEED = 2**63 - 1
"""Largest run seed: the store keeps it as a SQLite INTEGER (signed 64-bit)."""
MAX_TRIALS = 10**7
"""Most trials of one configuration: the store holds about 150 bytes per trial
(1.5 GB at this limit) and planning a run holds the indices in memory."""


class SpecError(ValueError):
    """Every problem found in a spec, each as ``key.path: message``.

    One problem is one line (``source: key.path: message``); several are
    listed one per line under a count.
    """

    def __init__(self, problems: Sequence[str], source: str = "spec") -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            super().__init__(f"{source}: {self.problems[0]}")
            return
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problems in {source}:\n{lines}")


@dataclasses.dataclass(frozen=True)
class Config:
    """One configuration of the Monte Carlo.

    Attributes:
        theorem: The statement this configuration tests: ``"4.1"`` (Gaussian
            Strategy 4.1; part 1 when ``fixed_data``, else part 2),
            ``"5.1"`` (small weights, Assumption 1), ``"corollary_5.1"``
            (a uniform point of the ball of radius ``r`` around small weights),
            ``"6.1"`` (orthogonal linear network) or ``"none"``.
        n: Number of samples ``N`` (>= 2).
        d: Input dimension (>= 1).
        depth: ``beta``, the number of hidden layers (>= 1); for
            ``orthogonal_linear`` the number of weight matrices.
        width: Hidden width ``l`` (every hidden layer; ignored by
            ``orthogonal_linear``, whose layers are ``d x d``).
        activation: ``sigma``, one of ``ACTIVATION_NAMES``.
        loss: One of ``LOSS_NAMES``.
        output_activation: Apply ``sigma`` at the output (the paper's default).
        data: ``"sphere"`` (uniform on S^{d-1}) or ``"ball"`` (uniform in B^d).
        labels: Labeling function, one of ``LABEL_NAMES``.
        label_value: The value of the ``constant`` labeling function.
        teacher_width: Hidden width of the ``network_teacher``.
        weights: Weight ensemble, one of ``WEIGHT_NAMES``.
        centre: Ensemble of the centre of the ``ball`` ensemble, one of
            ``CENTRE_NAMES`` (only with ``weights = "ball"``).
        layers: Orthogonal layers of ``orthogonal_linear``, one of
            ``LAYER_NAMES``: ``"haar"`` (Haar layers, a uniform unit
            read-out), ``"identity"`` (every ``W_p = I``, read-out ``e_1``) or
            ``"signed_permutation"`` (uniformly random signed permutation
            layers, a random signed coordinate read-out); only with
            ``weights = "orthogonal_linear"``.
        kappa: Strategy 4.1 variance parameter (``gaussian``).
        scale: Operator norm of each layer for ``small``, its bound for
            ``uniform_spectrum``, and the same for the centre of ``ball``.
        r: Radius of the ``ball`` ensemble (Corollary 5.1).
        fixed_data: Draw the data (and labels) once per configuration and
            reuse them in every trial (Theorem 4.1 part 1).
        batch_sizes: Mini-batch sizes ``B`` whose Gram statistics are recorded
            too (each must divide ``n`` and be at most ``n / 2``).
        trials: Number of Monte Carlo trials (not part of the content hash).

    ``centre`` and ``layers`` enter the content (and so the hash) only when
    they differ from their defaults, so the configurations written before
    they existed keep their hashes and stored results.
    """

    theorem: str = "none"
    n: int = 10
    d: int = 10
    depth: int = 2
    width: int = 32
    activation: str = "tanh"
    loss: str = "square"
    output_activation: bool = True
    data: str = "sphere"
    labels: str = "tanh_teacher"
    label_value: float = 1.0
    teacher_width: int = 16
    weights: str = "gaussian"
    centre: str = "small"
    layers: str = "haar"
    kappa: float = 1.0
    scale: float = 1.0
    r: float = 0.0
    fixed_data: bool = False
    batch_sizes: tuple[int, ...] = ()
    trials: int = 200

    @property
    def config_hash(self) -> str:
        """SHA-256 (16 hex digits) of the canonical content, ``trials`` excluded."""
        content = self.content()
        text = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def content(self) -> dict[str, Any]:
        """All fields but ``trials``, as plain JSON types.

        ``centre`` and ``layers`` are left out at their defaults (``"small"``,
        ``"haar"``): the content, and the hash, of every configuration
        written before these fields existed are unchanged.
        """
        out = dataclasses.asdict(self)
        del out["trials"]
        for key in _APPLIES_TO:
            if out[key] == _FIELDS[key].default:
                del out[key]
        out["batch_sizes"] = list(self.batch_sizes)
        return out

    @property
    def widths(self) -> list[int]:
        """Hidden widths ``[l_0, ..., l_{beta-1}]``."""
        return [self.width] * self.depth

    @property
    def gamma(self) -> float:
        """Output scale ``gamma``: ``1/sqrt(2 beta)`` [reconstructed] or 1.

        ``1/sqrt(2 beta)`` for ``orthogonal_linear`` (THEORY.md section 6), else 1.
        """
        return (
            1.0 / math.sqrt(2 * self.depth)
            if self.weights == "orthogonal_linear"
            else 1.0
        )

    @property
    def max_width(self) -> int:
        """``l = max_p l_p`` of Theorem 4.1."""
        return self.d if self.weights == "orthogonal_linear" else self.width

    def label(self, keys: Sequence[str]) -> str:
        """A short human label from the given fields, e.g. ``"width=64, depth=2"``."""
        return ", ".join(f"{k}={getattr(self, k)}" for k in keys)


_DEFAULTS = Config()
_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_GRID_KEYS = tuple(k for k in _FIELDS if k not in ("batch_sizes",))


def _check_value(key: str, value: Any, path: str) -> list[str]:
    """Problems with one scalar value of field ``key`` (empty if fine)."""

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def is_num(v: Any) -> bool:
        return (is_int(v) or isinstance(v, float)) and math.isfinite(v)

    choices = {
        "theorem": THEOREMS,
        "activation": ACTIVATION_NAMES,
        "loss": LOSS_NAMES,
        "data": DATA_NAMES,
        "labels": LABEL_NAMES,
        "weights": WEIGHT_NAMES,
        "centre": CENTRE_NAMES,
        "layers": LAYER_NAMES,
    }
    minimum = {"n": 2, "d": 1, "depth": 1, "width": 1, "teacher_width": 1}
    if key in choices:
        if value not in choices[key]:
            return [f"{path}: must be one of {list(choices[key])}, got {value!r}"]
    elif key in minimum:
        if not is_int(value) or value < minimum[key]:
            return [
                f"{path}: must be an integer >= {minimum[key]}, got {value!r}"
                + _float_hint(value)
            ]
    elif key == "trials":
        if not is_int(value) or not 1 <= value <= MAX_TRIALS:
            return [
                f"{path}: must be an integer in [1, {MAX_TRIALS}], got {value!r}"
                + _float_hint(value)
            ]
    elif key in ("output_activation", "fixed_data"):
        if not isinstance(value, bool):
            return [f"{path}: must be true or false, got {value!r}"]
    elif key == "kappa":
        if not is_num(value) or value <= 0:
            return [f"{path}: must be a finite number > 0, got {value!r}"]
    elif key == "scale":
        if not is_num(value) or not 0 < value <= 1:
            return [f"{path}: must be a number in (0, 1], got {value!r}"]
    elif key == "r":
        if not is_num(value) or value < 0:
            return [f"{path}: must be a finite number >= 0, got {value!r}"]
    elif key == "label_value":
        if not is_num(value) or abs(value) > 1:
            return [f"{path}: must be a number in [-1, 1], got {value!r}"]
    return []


def _float_hint(value: Any) -> str:
    """A note for whole numbers written as floats (TOML's ``1e13`` is a float)."""
    if isinstance(value, float) and value.is_integer():
        return " (a float: write the integer without a decimal point or exponent)"
    return ""


def _check_batch_sizes(value: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        return [f"{path}: must be a list of integers >= 1, got {value!r}"]
    bad = [b for b in value if not isinstance(b, int) or isinstance(b, bool) or b < 1]
    if bad:
        return [f"{path}: must be a list of integers >= 1, got {value!r}"]
    return []


def _check_config(
    cfg: Config, path: str, given: Collection[str] | None = None
) -> list[str]:
    """Cross-field problems of one expanded configuration.

    Args:
        cfg: The configuration.
        path: Its key path, for the messages.
        given: The keys the spec sets for it; None: the fields that differ
            from their defaults. ``centre`` or ``layers`` given with another
            weight ensemble than the one that reads it is a problem.
    """
    if given is None:
        given = [k for k in _APPLIES_TO if getattr(cfg, k) != getattr(_DEFAULTS, k)]
    problems = [
        f"{path}.{key}: applies only to weights = {owner!r}, got weights = "
        f"{cfg.weights!r}"
        for key, owner in _APPLIES_TO.items()
        if key in given and cfg.weights != owner
    ]
    problems += [
        f"{path}.batch_sizes: {b} does not divide n = {cfg.n}"
        if cfg.n % b
        else f"{path}.batch_sizes: {b} leaves a single mini-batch of n = {cfg.n} "
        f"samples (a mini-batch size must be at most n / 2 = {cfg.n // 2})"
        for b in cfg.batch_sizes
        if cfg.n % b or 2 * b > cfg.n
    ]
    if cfg.weights == "orthogonal_linear":
        if (cfg.activation, cfg.loss, cfg.output_activation) != (
            "identity",
            "square",
            False,
        ):
            problems.append(
                f"{path}: weights = 'orthogonal_linear' is the linear network of "
                "Theorem 6.1: it needs activation = 'identity', loss = 'square', "
                "output_activation = false"
            )
    if cfg.loss == "logistic" and cfg.labels not in ("random_signs", "constant"):
        problems.append(
            f"{path}: loss = 'logistic' needs labels in {{'random_signs', 'constant'}}"
            f" (+-1 labels), got labels = {cfg.labels!r}"
        )
    expected = ADMISSIBLE_WEIGHTS.get(cfg.theorem)
    if expected and cfg.weights not in expected:
        problems.append(
            f"{path}: theorem = {cfg.theorem!r} admits weights in "
            f"{list(expected)}, got weights = {cfg.weights!r}"
        )
    if cfg.fixed_data and cfg.theorem not in ("4.1", "none"):
        problems.append(
            f"{path}: fixed_data = true is Theorem 4.1 part 1; "
            f"theorem = {cfg.theorem!r}"
            " is about fresh sphere data"
        )
    if cfg.theorem in ("5.1", "6.1", "corollary_5.1") or (
        cfg.theorem == "4.1" and not cfg.fixed_data
    ):
        if cfg.data != "sphere":
            problems.append(
                f"{path}: theorem = {cfg.theorem!r} assumes data = 'sphere', "
                f"got {cfg.data!r}"
            )
    return problems


@dataclasses.dataclass(frozen=True)
class EtaGrid:
    """Geometric grid of confusion levels ``eta`` for tables and ``c*``."""

    start: float = 1e-4
    stop: float = 10.0
    num: int = 41

    def values(self) -> np.ndarray:
        """The grid, ``num`` points geometrically spaced from ``start`` to ``stop``."""
        return np.geomspace(self.start, self.stop, self.num)


@dataclasses.dataclass(frozen=True)
class Spec:
    """A parsed, validated sweep spec.

    Attributes:
        name: File stem, e.g. ``"quick"``.
        title: Human title.
        groups: Group name -> expanded configurations, in spec order.
        axes: Group name -> the grid axes (keys given as lists).
        eta: The ``eta`` grid.
        experiments: Named non-Monte-Carlo experiments to run too.
        seed: Default seed (the CLI's ``--seed`` overrides it).
        text: The TOML source.
        options: Experiment name -> its options table, validated
            (:mod:`montecarlo._experiments`; e.g. ``[real_data_cnn]``, the CNN
            experiment's plan).
    """

    name: str
    title: str
    groups: dict[str, list[Config]]
    axes: dict[str, list[str]]
    eta: EtaGrid
    experiments: tuple[str, ...]
    seed: int
    text: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def configs(self) -> list[tuple[str, Config]]:
        """All ``(group, config)`` pairs in spec order."""
        return [(g, c) for g, cs in self.groups.items() for c in cs]

    def with_trials(self, trials: int) -> Spec:
        """The same spec with every configuration's ``trials`` replaced.

        Raises:
            ValueError: If ``trials`` is not an integer in ``[1, MAX_TRIALS]``.
        """
        if (
            isinstance(trials, bool)
            or not isinstance(trials, int)
            or not 1 <= trials <= MAX_TRIALS
        ):
            raise ValueError(
                f"trials must be an integer in [1, {MAX_TRIALS}], got {trials!r}"
            )
        groups = {
            g: [dataclasses.replace(c, trials=trials) for c in cs]
            for g, cs in self.groups.items()
        }
        return dataclasses.replace(self, groups=groups)


def parse_spec(text: str, name: str = "spec", source: str = "spec") -> Spec:
    """Parse and validate a TOML spec; :class:`SpecError` lists every problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([f"not valid TOML: {exc}"], source) from None
    problems: list[str] = []
    top_keys = {"title", "seed", "eta", "defaults", "configs", "experiments"}
    top_keys |= set(EXPERIMENTS)  # an experiment's options table
    for key in doc:
        if key not in top_keys:
            problems.append(f"{key}: unknown key (allowed: {sorted(top_keys)})")
    title = doc.get("title", name)
    if not isinstance(title, str):
        problems.append(f"title: must be a string, got {title!r}")
    seed = doc.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        problems.append(
            f"seed: must be an integer in [0, 2^63 - 1 = {MAX_SEED}], got {seed!r}"
            + _float_hint(seed)
        )
        seed = 0
    eta = EtaGrid()
    eta_doc = doc.get("eta", {})
    if not isinstance(eta_doc, Mapping):
        problems.append(f"eta: must be a table {{start, stop, num}}, got {eta_doc!r}")
    else:
        for key in eta_doc:
            if key not in ("start", "stop", "num"):
                problems.append(f"eta.{key}: unknown key (allowed: start, stop, num)")
        start, stop, num = (
            eta_doc.get("start", eta.start),
            eta_doc.get("stop", eta.stop),
            eta_doc.get("num", eta.num),
        )
        ok = True
        for key, v in (("start", start), ("stop", stop)):
            if not isinstance(v, int | float) or isinstance(v, bool) or not v > 0:
                problems.append(f"eta.{key}: must be a number > 0, got {v!r}")
                ok = False
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            problems.append(f"eta.num: must be an integer >= 1, got {num!r}")
            ok = False
        if ok and not start < stop:
            problems.append(f"eta: start ({start}) must be < stop ({stop})")
        if ok:
            eta = EtaGrid(float(start), float(stop), int(num))
    experiments = doc.get("experiments", [])
    if not isinstance(experiments, list):
        problems.append(f"experiments: must be a list, got {experiments!r}")
        experiments = []
    for i, e in enumerate(experiments):
        if e not in EXPERIMENTS:
            problems.append(
                f"experiments[{i}]: must be one of {list(EXPERIMENTS)}, got {e!r}"
            )
    options: dict[str, Any] = {}
    for experiment in EXPERIMENTS:
        if experiment in doc:
            if experiment not in experiments:
                problems.append(f"{experiment}: the experiment is not in experiments")
            problems += option_problems(experiment, doc[experiment])
            options[experiment] = doc[experiment]
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, Mapping):
        problems.append(f"defaults: must be a table, got {defaults!r}")
        defaults = {}
    defaults_problems = _check_table(defaults, "defaults", allow_lists=True)
    problems += defaults_problems
    groups: dict[str, list[Config]] = {}
    axes: dict[str, list[str]] = {}
    configs_doc = doc.get("configs", {})
    if not isinstance(configs_doc, Mapping):
        problems.append(
            f"configs: must be a table of named groups, got {configs_doc!r}"
        )
        configs_doc = {}
    if not configs_doc and not experiments:
        problems.append(
            "configs: a spec needs at least one configuration group or experiment"
        )
    for gname, table in configs_doc.items():
        path = f"configs.{gname}"
        if not isinstance(table, Mapping):
            problems.append(f"{path}: must be a table, got {table!r}")
            continue
        group_problems = _check_table(table, path, allow_lists=True)
        problems += group_problems
        if group_problems or defaults_problems:  # expand only valid tables
            continue
        merged = {**defaults, **table}
        grid = [
            k for k, v in merged.items() if k != "batch_sizes" and isinstance(v, list)
        ]
        axes[gname] = grid
        expanded = []
        for combo in itertools.product(*(merged[k] for k in grid)):
            values = {**merged, **dict(zip(grid, combo, strict=True))}
            if "batch_sizes" in values:
                values["batch_sizes"] = tuple(values["batch_sizes"])
            cfg = Config(**values)
            label = ", ".join(f"{k}={v}" for k, v in zip(grid, combo, strict=True))
            problems += _check_config(
                cfg, f"{path}[{label}]" if label else path, given=values
            )
            expanded.append(cfg)
        groups[gname] = expanded
    if "adversarial" in options:
        from montecarlo._worst_case import group_problems

        problems += group_problems(options["adversarial"], groups, axes)
    if "tail" in options:
        from montecarlo._tails import group_problems as tail_group_problems

        problems += tail_group_problems(options["tail"], groups, axes)
    if problems:
        raise SpecError(problems, source)
    return Spec(
        name=name,
        title=title,
        groups=groups,
        axes=axes,
        eta=eta,
        experiments=tuple(experiments),
        seed=seed,
        text=text,
        options=options,
    )


def _check_table(
    table: Mapping[str, Any], path: str, *, allow_lists: bool
) -> list[str]:
    """Problems of one table (``defaults`` or a group); lists are grid axes."""
    problems = []
    for key, value in table.items():
        kpath = f"{path}.{key}"
        if key not in _FIELDS:
            problems.append(f"{kpath}: unknown key (allowed: {sorted(_FIELDS)})")
        elif key == "batch_sizes":
            problems += _check_batch_sizes(value, kpath)
        elif isinstance(value, list):
            if not allow_lists:
                problems.append(f"{kpath}: grids (lists) belong in a configs group")
            elif not value:
                problems.append(f"{kpath}: a grid axis must not be empty")
            else:
                for i, v in enumerate(value):
                    problems += _check_value(key, v, f"{kpath}[{i}]")
        else:
            problems += _check_value(key, value, kpath)
    return problems


def bundled_specs() -> list[str]:
    """Names of the specs shipped with the package (``montecarlo/specs/*.toml``)."""
    root = resources.files("montecarlo") / "specs"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_spec(spec: str | Path) -> Spec:
    """Load a spec by bundled name (e.g. ``"quick"``) or from a TOML file path.

    Raises:
        SpecError: Listing every problem in the spec.
        ValueError: If ``spec`` names neither a bundled spec nor a readable
            file (a directory is named as such).
    """
    path = Path(spec)
    if path.is_dir():
        raise ValueError(
            f"spec must be a TOML file or a bundled spec name, got {str(path)!r}, "
            "which is a directory"
        )
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ValueError(f"spec file {str(path)!r} does not exist")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"spec file {str(path)!r} cannot be read: {exc}") from None
        return parse_spec(text, name=path.stem, source=str(path))
    names = bundled_specs()
    if str(spec) not in names:
        raise ValueError(
            f"spec must be a bundled spec name {names} or a path to a .toml file, "
            f"got {str(spec)!r}"
        )
    res = resources.files("montecarlo") / "specs" / f"{spec}.toml"
    return parse_spec(res.read_text(), name=str(spec), source=f"bundled spec {spec!r}")
