"""Monte Carlo checks of Theorems 3.1 and 3.2, and the Figure 1 experiment.

Notation: ``n`` samples (the paper's ``N``), ``d`` input dimension, ``R``
independent SGD runs, ``alpha`` step, ``T`` steps, ``eta`` the gradient
confusion along the path (Definition 2.1), ``L``/``mu`` the per-sample
smoothness/PL constants, ``F*`` the optimal risk (all from
:class:`theory.toy.ToyProblem`).

What is compared (THEORY.md section 3):

- Theorem 3.1: ``E[F(w_T) - F*]`` against ``bounds.theorem_3_1`` at the
  instance's own ``L``, ``mu``, ``eta``, ``gap0 = F(w_0) - F*``;
- Theorem 3.2: ``min_{k=1..T} E||grad F(w_k)||^2`` against
  ``bounds.theorem_3_2`` in its ``"printed"`` and ``"derived"`` forms. The
  paper's iterates ``w_1, ..., w_T`` start at the initial point (this reading
  is ours: the telescoping proof sums from the initial iterate), so the
  minimum runs over our SGD steps ``0..T-1`` and ``gap1 = F(w_0) - F*``.

``eta`` is the largest exact confusion ``max(0, -min_{i != j} G_ij)`` over
every iterate of every run (SGD records all steps), which is what the
theorems assume along the path.

Statistics: the expectation at each step is estimated by the mean over ``R``
runs with a normal (CLT) interval. Intervals are simultaneous over all the
steps that enter a verdict (Bonferroni), so a curve of ``K`` checkpoints is
declared violated with probability at most ``1 - confidence`` when the bound
holds. For Theorem 3.2, ``min_k`` of the lower (upper) limits is a lower (upper)
limit of ``min_k E||grad F(w_k)||^2`` on the same event.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

import bounds
from montecarlo.claims._tests import MeanAbove, mean_above, running_min_above
from theory._sgd import ToyProblem, make_problem, sgd

__all__ = [
    "MeanCI",
    "TheoremCheck",
    "check_theorems",
    "figure1_experiment",
    "mean_ci",
    "run_figure1",
    "run_sgd_check",
    "scan_printed_theorem_3_2",
]

MIN_RUNS = 30
"""Fewer runs give an ``"inconclusive"`` verdict (CLT intervals unreliable)."""


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_confidence(confidence: float) -> float:
    if not (isinstance(confidence, float | int) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    return float(confidence)


def _floats(a: np.ndarray) -> list[float | None]:
    """JSON-safe list: non-finite values become ``None`` (JSON ``null``)."""
    values = np.asarray(a, dtype=np.float64).ravel()
    return [float(v) if math.isfinite(v) else None for v in values]


def _jsonable(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class MeanCI:
    """Per-column means of Monte Carlo samples with simultaneous normal intervals.

    Attributes:
        mean: column means over the finite samples, shape ``[K]``.
        se: standard errors ``s / sqrt(m)`` of the means, shape ``[K]``.
        lower: lower confidence limits, shape ``[K]``.
        upper: upper confidence limits, shape ``[K]``.
        n: number of finite samples per column, shape ``[K]``.
        n_nonfinite: number of non-finite samples (excluded), all columns.
        confidence: simultaneous confidence level over the ``comparisons``.
        comparisons: number of intervals the level is shared by (Bonferroni).
    """

    mean: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n: np.ndarray
    n_nonfinite: int
    confidence: float
    comparisons: int

    def __repr__(self) -> str:
        return (
            f"MeanCI(K={self.mean.size}, n={int(self.n.min()) if self.n.size else 0}, "
            f"confidence={self.confidence}, comparisons={self.comparisons}, "
            f"n_nonfinite={self.n_nonfinite})"
        )


def mean_ci(
    samples: np.ndarray, *, confidence: float = 0.95, comparisons: int = 1
) -> MeanCI:
    """Column means with normal (CLT) intervals, Bonferroni-corrected.

    Each interval is ``mean +- z s / sqrt(m)`` with ``s`` the sample standard
    deviation, ``m`` the number of finite samples in the column and
    ``z = Phi^{-1}(1 - (1 - confidence) / (2 comparisons))``, so that
    ``comparisons`` intervals hold together with probability at least
    ``confidence`` (asymptotically in ``m``). Columns with fewer than two
    finite samples get infinite limits.

    Args:
        samples: shape ``[R, K]`` (runs by columns) or ``[R]``.
        confidence: simultaneous level in ``(0, 1)``. Default 0.95.
        comparisons: number of intervals sharing the level, ``>= 1``. Default 1.

    Returns:
        A :class:`MeanCI`.

    Raises:
        ValueError: on a ``samples`` array that is not 1-D or 2-D or has no
            rows, or ``confidence``/``comparisons`` out of range.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(
            f"samples must have shape [R] or [R, K] with R >= 1, got shape {x.shape}"
        )
    confidence = _check_confidence(confidence)
    comparisons = _check_int("comparisons", comparisons, 1)
    finite = np.isfinite(x)
    m = finite.sum(axis=0)
    xf = np.where(finite, x, 0.0)
    safe_m = np.maximum(m, 1)
    mean = xf.sum(axis=0) / safe_m
    var = (np.where(finite, x - mean, 0.0) ** 2).sum(axis=0) / np.maximum(m - 1, 1)
    z = float(stats.norm.ppf(1.0 - (1.0 - confidence) / (2.0 * comparisons)))
    se = np.sqrt(var / safe_m)
    half = z * se
    ok = m >= 2
    lower = np.where(ok, mean - half, -np.inf)
    upper = np.where(ok, mean + half, np.inf)
    mean = np.where(m >= 1, mean, np.nan)
    return MeanCI(
        mean=mean,
        se=np.where(ok, se, np.inf),
        lower=lower,
        upper=upper,
        n=m,
        n_nonfinite=int((~finite).sum()),
        confidence=confidence,
        comparisons=comparisons,
    )


@dataclass(frozen=True, eq=False)
class TheoremCheck:
    """Monte Carlo check of Theorems 3.1 and 3.2 on one instance.

    Attributes:
        name: label of the instance.
        info: instance description and exact constants (``n``, ``d``, ``loss``,
            ``L``, ``mu``, ``F_star``, ``eta``, ``gap0``, ``alpha``,
            ``alpha_max = 2/(n L)``, ``runs``, ``T_max``, ``confidence``).
        T: checkpoints, shape ``[K]``.
        risk_gap: :class:`MeanCI` of ``F(w_T) - F*`` at the checkpoints.
        grad_sq_min: running minimum over ``k < T`` of the mean, lower and
            upper limits of ``E||grad F(w_k)||^2`` (a :class:`MeanCI`).
        bounds: bound values at ``T`` per key (``"theorem_3_1"``,
            ``"theorem_3_2_printed"``, ``"theorem_3_2_derived"``).
        evidence: per key, the tests of the bound
            (:class:`montecarlo.claims.tests.MeanAbove`: ``p_above``, the
            p-value that the expectation exceeds the bound at some checkpoint;
            ``p_below``, that it is below it at every checkpoint).
        looseness: per key, ``{T: bound / empirical mean}`` at a few ``T``.
        skipped: per key not checked, the reason.
    """

    name: str
    info: dict
    T: np.ndarray
    risk_gap: MeanCI
    grad_sq_min: MeanCI
    bounds: dict[str, np.ndarray]
    evidence: dict[str, MeanAbove]
    looseness: dict[str, dict[int, float]]
    skipped: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        v = ", ".join(
            f"{k}: p_above={e.p_above:.2g}, p_below={e.p_below:.2g}"
            for k, e in self.evidence.items()
        )
        return f"TheoremCheck({self.name!r}, {v})"

    def to_dict(self) -> dict:
        """JSON-ready dictionary (plain lists and floats; ``None`` for non-finite)."""

        def ci(c: MeanCI) -> dict:
            return {
                "mean": _floats(c.mean),
                "lower": _floats(c.lower),
                "upper": _floats(c.upper),
                "n_nonfinite": c.n_nonfinite,
                "comparisons": c.comparisons,
            }

        return {
            "name": self.name,
            "info": self.info,
            "T": [int(t) for t in self.T],
            "risk_gap": ci(self.risk_gap),
            "grad_sq_min": ci(self.grad_sq_min),
            "bounds": {k: _floats(v) for k, v in self.bounds.items()},
            "evidence": {
                k: {
                    "p_above": e.p_above,
                    "p_below": e.p_below,
                    "worst_T": int(self.T[e.worst]),
                    "bound_over_mean": _jsonable(e.ratio),
                    "max_lower_over_bound": _jsonable(
                        _max_ratio(self._estimate(k).lower, self.bounds[k])
                    ),
                }
                for k, e in self.evidence.items()
            },
            "looseness": {
                k: {str(t): _jsonable(r) for t, r in v.items()}
                for k, v in self.looseness.items()
            },
            "skipped": dict(self.skipped),
        }

    def _estimate(self, key: str) -> MeanCI:
        return self.risk_gap if key == "theorem_3_1" else self.grad_sq_min


def _max_ratio(lower: np.ndarray, bound: np.ndarray) -> float:
    """``max_T lower / bound`` (how far the lower limits exceed the bound)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(bound > 0, lower / bound, np.inf)
    return float(np.max(np.where(np.isnan(r), -np.inf, r)))


def _looseness(T: np.ndarray, bound: np.ndarray, mean: np.ndarray) -> dict[int, float]:
    """``bound / mean`` at checkpoints near ``T_max^q`` for ``q = 0, 1/3, 2/3, 1``."""
    t_max = int(T[-1])
    targets = [q * math.log(t_max) for q in (0, 1 / 3, 2 / 3, 1)]
    picks = sorted({int(np.argmin(np.abs(np.log(T) - t))) for t in targets})
    out = {}
    for i in picks:
        out[int(T[i])] = float(bound[i] / mean[i]) if mean[i] > 0 else math.inf
    return out


def check_theorems(
    problem: ToyProblem,
    *,
    alpha: float,
    T: int,
    runs: int,
    rng: np.random.Generator,
    w0: np.ndarray | None = None,
    confidence: float = 0.95,
    n_checkpoints: int = 40,
    name: str = "instance",
) -> TheoremCheck:
    """Monte Carlo over SGD's sampling against Theorems 3.1 and 3.2 (both forms).

    Runs ``R`` SGD runs with ``B = 1`` and sampling with replacement (the
    theorems' setting), records every step, takes ``eta`` as the largest
    exact confusion met on any run's path, and compares

    - ``E[F(w_T) - F*]`` with ``bounds.theorem_3_1`` at ``K`` log-spaced
      ``T`` (only for the square loss with ``mu > 0``: the logistic loss has
      no positive PL constant);
    - ``min_{k=1..T} E||grad F(w_k)||^2`` (paper's indexing, i.e. our steps
      ``0..T-1``) with ``bounds.theorem_3_2`` in both forms.

    Intervals are simultaneous over the ``K`` checkpoints (Theorem 3.1) and over
    all ``T`` steps (Theorem 3.2) at level ``confidence``.

    Args:
        problem: the instance.
        alpha: step size, ``0 < alpha < 2/(n L)``.
        T: largest number of SGD steps, ``>= 1``.
        runs: number of independent runs ``R``, ``>= 1``.
        rng: random generator for SGD's sampling.
        w0: initial weights, shape ``[d]``. Default zeros.
        confidence: simultaneous confidence level. Default 0.95.
        n_checkpoints: number of log-spaced checkpoints ``K``, ``>= 1``. Default 40.
        name: label of the instance. Default ``"instance"``.

    Returns:
        A :class:`TheoremCheck`.

    Raises:
        ValueError: on ``alpha`` outside ``(0, 2/(n L))``, ``T < 1``,
            ``runs < 1``, a ``w0`` not of shape ``[d]`` or other arguments out
            of range.
    """
    if not isinstance(problem, ToyProblem):
        raise ValueError(
            f"problem must be a theory.toy.ToyProblem, got {type(problem).__name__}"
        )
    T = _check_int("T", T, 1)
    runs = _check_int("runs", runs, 1)
    n_checkpoints = _check_int("n_checkpoints", n_checkpoints, 1)
    confidence = _check_confidence(confidence)
    n, L, mu = problem.n, problem.L, problem.mu
    limit = 2.0 / (n * L)
    if not (isinstance(alpha, float | int) and 0.0 < alpha < limit):
        raise ValueError(
            f"alpha must satisfy 0 < alpha < 2/(n L) = {limit:.6g}, got {alpha!r}"
        )
    if w0 is not None and np.shape(w0) != (problem.d,):
        raise ValueError(
            f"w0 must have shape [d] = ({problem.d},), got shape {np.shape(w0)}"
        )
    alpha = float(alpha)

    run = sgd(problem, w0, alpha=alpha, T=T, runs=runs, rng=rng)
    F_star = problem.F_star
    eta = float(run.eta.max())
    gap0 = max(0.0, float(run.risk[0, 0] - F_star))
    grid = np.unique(np.round(np.geomspace(1, T, n_checkpoints)).astype(np.int64))

    risk_gap = mean_ci(
        run.risk[:, grid] - F_star, confidence=confidence, comparisons=grid.size
    )
    g = mean_ci(run.grad_sq[:, :T], confidence=confidence, comparisons=T)
    running = MeanCI(
        mean=np.minimum.accumulate(g.mean)[grid - 1],
        se=np.full(grid.size, np.nan),
        lower=np.minimum.accumulate(g.lower)[grid - 1],
        upper=np.minimum.accumulate(g.upper)[grid - 1],
        n=g.n[grid - 1],
        n_nonfinite=g.n_nonfinite,
        confidence=confidence,
        comparisons=T,
    )

    bound_values: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    if problem.loss == "square" and mu > 0:
        bound_values["theorem_3_1"] = np.asarray(
            bounds.theorem_3_1(grid, alpha=alpha, n=n, L=L, mu=mu, eta=eta, gap0=gap0)
        )
    else:
        skipped["theorem_3_1"] = (
            "not applicable: no positive per-sample PL constant (mu = 0)"
        )
    for form in ("printed", "derived"):
        bound_values[f"theorem_3_2_{form}"] = np.asarray(
            bounds.theorem_3_2(
                grid, alpha=alpha, n=n, L=L, eta=eta, gap1=gap0, form=form
            )
        )

    evidence: dict[str, MeanAbove] = {}
    looseness: dict[str, dict[int, float]] = {}
    for key, bound in bound_values.items():
        if key == "theorem_3_1":
            evidence[key] = mean_above(risk_gap.mean, risk_gap.se, bound)
            looseness[key] = _looseness(grid, bound, risk_gap.mean)
        else:
            evidence[key] = running_min_above(grid, g.mean, g.se, bound)
            looseness[key] = _looseness(grid, bound, running.mean)

    info = {
        "n": n,
        "d": problem.d,
        "loss": problem.loss,
        "L": L,
        "mu": mu,
        "F_star": F_star,
        "interpolating": bool(problem.interpolating),
        "eta": eta,
        "gap0": gap0,
        "alpha": alpha,
        "alpha_max": limit,
        "runs": runs,
        "T_max": T,
        "confidence": confidence,
    }
    return TheoremCheck(
        name=name,
        info=info,
        T=grid,
        risk_gap=risk_gap,
        grad_sq_min=running,
        bounds=bound_values,
        evidence=evidence,
        looseness=looseness,
        skipped=skipped,
    )


def scan_printed_theorem_3_2(
    base: ToyProblem,
    *,
    scales: Sequence[float],
    alpha_fractions: Sequence[float],
    T: int,
    runs: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> list[dict]:
    """Systematic search for violations of Theorem 3.2 over scaling and step size.

    For every ``scale`` and ``alpha = fraction * 2/(n L)`` (``L`` of the
    rescaled problem ``base.rescaled(scale)``), runs :func:`check_theorems`
    and records the tests of both forms (``p_above``, the p-value that the
    expectation exceeds the bound at some checkpoint, and where). The
    loss trajectory is the same for every scale at equal ``fraction``
    (``w -> w / scale``), so a form that changes verdict with ``scale`` is not
    invariant under reparametrization.

    Args:
        base: the unscaled instance.
        scales: input scales, each ``> 0``.
        alpha_fractions: ``alpha / (2/(n L))``, each in ``(0, 1)``.
        T: largest number of steps, ``>= 1``.
        runs: runs per cell, ``>= 1``.
        rng: random generator.
        confidence: simultaneous level per cell. Default 0.95.

    Returns:
        One dict per cell: ``scale``, ``alpha_fraction``, ``alpha``, ``eta``,
        ``L`` and, per form, ``p_above``, ``worst_T`` and
        ``max_lower_over_bound`` (the largest lower confidence limit / bound).

    Raises:
        ValueError: on an empty grid, a scale ``<= 0`` or a fraction outside
            ``(0, 1)``.
    """
    if not scales or any(not (s > 0 and math.isfinite(s)) for s in scales):
        raise ValueError(f"scales must be non-empty and positive, got {scales!r}")
    if not alpha_fractions or any(not 0 < f < 1 for f in alpha_fractions):
        raise ValueError(
            f"alpha_fractions must be non-empty with values in (0, 1), got "
            f"{alpha_fractions!r}"
        )
    T = _check_int("T", T, 1)
    runs = _check_int("runs", runs, 1)
    rows = []
    for scale in scales:
        problem = base.rescaled(float(scale))
        for frac in alpha_fractions:
            alpha = float(frac) * 2.0 / (problem.n * problem.L)
            chk = check_theorems(
                problem,
                alpha=alpha,
                T=T,
                runs=runs,
                rng=rng,
                confidence=confidence,
                n_checkpoints=30,
                name=f"scale={scale:g},frac={frac:g}",
            )
            row = {
                "scale": float(scale),
                "alpha_fraction": float(frac),
                "alpha": alpha,
                "L": problem.L,
                "eta": chk.info["eta"],
            }
            for form in ("printed", "derived"):
                key = f"theorem_3_2_{form}"
                e = chk.evidence[key]
                row[form] = {
                    "p_above": e.p_above,
                    "worst_T": int(chk.T[e.worst]),
                    "max_lower_over_bound": _jsonable(
                        _max_ratio(chk.grad_sq_min.lower, chk.bounds[key])
                    ),
                }
            rows.append(row)
    return rows


# --------------------------------------------------------------------------
# The suite run by ``python -m montecarlo.run`` (quick and full).

_SETTINGS = (
    # name, loss, data, n, d, noise_std, scale, alpha / (2/(n L))
    ("linreg_orthogonal", "square", "orthogonal", 10, 20, 0.3, 1.0, 0.5),
    ("linreg_gaussian_interpolating", "square", "gaussian", 10, 30, 0.3, 1.0, 0.5),
    ("linreg_sphere_noninterpolating", "square", "sphere", 20, 5, 0.5, 1.0, 0.5),
    ("logreg_gaussian", "logistic", "gaussian", 40, 4, 1.0, 1.0, 0.5),
    ("logreg_orthogonal", "logistic", "orthogonal", 10, 20, 1.0, 1.0, 0.5),
    ("linreg_orthogonal_scale4", "square", "orthogonal", 10, 20, 0.3, 4.0, 0.5),
)


# Sizes of the suite: (runs, T, data draws per setting) and (runs, T) per scan
# cell, for the quick and the full run.
_SIZES = {
    True: {"check": (400, 2000, 1), "scan": (50, 2000)},
    False: {"check": (1000, 4000, 5), "scan": (200, 4000)},
}

# Figure 1 reproduction (arguments of figure1_experiment besides rng and runs).
_FIGURE1 = {"n": 100, "dims": (120, 80), "T": 20_000, "theorem_T": 200_000}


def run_sgd_check(out_dir: pathlib.Path, *, seed: int, quick: bool = True) -> dict:
    """The SGD part of the verification suite: Theorems 3.1/3.2 on toy models.

    Instances (each with its exact ``L``, ``mu``, ``F*`` and path ``eta``, step
    ``alpha = 0.5 * 2/(n L)``): linear regression on exactly orthogonal data
    (``eta = 0``), on Gaussian data with ``d > n`` (interpolating) and on
    sphere data with ``d < n`` and label noise (non-interpolating), logistic
    regression on noisy Gaussian data and on exactly orthogonal data (zero
    confusion, Section 2), and the orthogonal instance with inputs scaled by
    4. Then a scan of the printed Theorem 3.2 over input
    scale and ``alpha`` on orthogonal and Gaussian data (and logistic data in
    the full run). ``quick=False`` uses more runs, longer horizons and five
    data draws per setting (Monte Carlo over data as well).

    Writes ``out_dir / "sgd_check.json"`` and returns the same dictionary,
    from which :func:`montecarlo.claims.experiment_claims` builds the claims.

    Args:
        out_dir: directory for the JSON file (created if missing).
        seed: seed of the single random generator behind everything.
        quick: small suite (< 30 s on one core). Default ``True``.

    Returns:
        Dictionary with ``seed``, ``quick``, ``runs``, ``T_max``, ``draws``,
        ``confidence``, ``instances`` (one :meth:`TheoremCheck.to_dict` each)
        and ``scan``.

    Raises:
        ValueError: if ``seed`` is not a non-negative integer.
    """
    seed = _check_int("seed", seed, 0)
    out_dir = pathlib.Path(out_dir)
    rng = np.random.default_rng(seed)
    runs, T, draws = _SIZES[bool(quick)]["check"]
    confidence = 0.95

    checks: list[dict] = []
    for name, loss, data, n, d, noise, scale, frac in _SETTINGS:
        for draw in range(draws):
            problem = make_problem(
                n, d, loss=loss, data=data, noise_std=noise, scale=scale, rng=rng
            )
            alpha = frac * 2.0 / (problem.n * problem.L)
            label = name if draws == 1 else f"{name}_draw{draw}"
            chk = check_theorems(
                problem,
                alpha=alpha,
                T=T,
                runs=runs if loss == "square" else runs // 2,
                rng=rng,
                confidence=confidence,
                name=label,
            )
            entry = chk.to_dict()
            entry["info"].update(
                {"setting": name, "data": data, "noise_std": noise, "scale": scale}
            )
            checks.append(entry)

    scan_runs, scan_T = _SIZES[bool(quick)]["scan"]
    scan = []
    scan_specs = [
        ("square", "orthogonal", 10, 20, 0.3),
        ("square", "gaussian", 10, 30, 0.3),
    ]
    if not quick:
        scan_specs.append(("logistic", "gaussian", 40, 4, 1.0))
    for loss, data, n, d, noise in scan_specs:
        base = make_problem(n, d, loss=loss, data=data, noise_std=noise, rng=rng)
        rows = scan_printed_theorem_3_2(
            base,
            scales=(0.5, 1.0, 2.0, 4.0),
            alpha_fractions=(0.02, 0.2, 0.9),
            T=scan_T,
            runs=scan_runs,
            rng=rng,
            confidence=confidence,
        )
        for row in rows:
            row.update({"loss": loss, "data": data, "n": n, "d": d, "noise_std": noise})
        scan.extend(rows)

    result = {
        "experiment": "sgd_check",
        "seed": seed,
        "quick": quick,
        "runs": runs,
        "T_max": T,
        "draws": draws,
        "confidence": confidence,
        "instances": checks,
        "scan_runs": scan_runs,
        "scan": scan,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1, allow_nan=False)
    (out_dir / "sgd_check.json").write_text(text)
    return result


# --------------------------------------------------------------------------
# Figure 1 of the paper.

_COS_BINS = np.linspace(-1.0, 1.0, 201)


class _CosineAccumulator:
    """Histogram, mean, min and negative fraction of pooled cosine similarities."""

    def __init__(self) -> None:
        self.counts = np.zeros(_COS_BINS.size - 1, dtype=np.int64)
        self.total = 0.0
        self.total_sq = 0.0
        self.n = 0
        self.negative = 0
        self.min = math.inf
        self.max = -math.inf

    def add(self, cos: np.ndarray) -> None:
        c = cos[np.isfinite(cos)]
        if c.size == 0:
            return
        self.counts += np.histogram(c, bins=_COS_BINS)[0]
        self.total += float(c.sum())
        self.total_sq += float(c @ c)
        self.n += c.size
        self.negative += int((c < 0).sum())
        self.min = min(self.min, float(c.min()))
        self.max = max(self.max, float(c.max()))

    def to_dict(self) -> dict:
        return {
            "bin_edges": _floats(_COS_BINS),
            "counts": [int(v) for v in self.counts],
            "n_pairs": self.n,
            "mean": self.total / self.n if self.n else None,
            "std": math.sqrt(
                max(0.0, self.total_sq / self.n - self.total**2 / self.n**2)
            )
            if self.n
            else None,
            "min": _jsonable(self.min),
            "max": _jsonable(self.max),
            "fraction_negative": self.negative / self.n if self.n else None,
        }


def _first_crossing(steps: np.ndarray, curves: np.ndarray, levels: np.ndarray) -> list:
    """Per run, the first recorded step with ``curve <= level`` (``None`` if never)."""
    out = []
    for curve, level in zip(curves, levels, strict=True):
        hit = np.flatnonzero(curve <= level)
        out.append(int(steps[hit[0]]) if hit.size else None)
    return out


def _figure1_model(
    problems: list[ToyProblem],
    *,
    alpha: float | np.ndarray,
    T: int,
    record_every: int,
    thresholds: Sequence[float],
    rng: np.random.Generator,
    with_bound: bool,
) -> dict:
    """SGD on one list of instances (one per run) and every Figure 1 statistic."""
    run = sgd(
        problems,
        alpha=alpha,
        T=T,
        rng=rng,
        record_every=record_every,
        keep_weights=True,
    )
    steps = run.steps
    F_star = np.array([p.F_star for p in problems])
    loss = run.risk
    gap = np.maximum(loss - F_star[:, None], 0.0)

    def band(a: np.ndarray) -> dict:
        q10, q50, q90 = np.quantile(a, [0.1, 0.5, 0.9], axis=0)
        return {
            "mean": _floats(a.mean(axis=0)),
            "median": _floats(q50),
            "q10": _floats(q10),
            "q90": _floats(q90),
        }

    crossings = {}
    for eps in thresholds:
        crossings[f"{eps:g}"] = {
            "loss": _first_crossing(steps, loss, eps * loss[:, 0]),
            "gap": _first_crossing(steps, gap, eps * gap[:, 0]),
        }
    cos_init, cos_end, cos_path = (
        _CosineAccumulator(),
        _CosineAccumulator(),
        _CosineAccumulator(),
    )
    stride = max(1, steps.size // 50)
    for r, p in enumerate(problems):
        cos_init.add(p.cosines(run.weights[r, 0]))
        cos_end.add(p.cosines(run.weights[r, -1]))
        for k in range(0, steps.size, stride):
            cos_path.add(p.cosines(run.weights[r, k]))
    out = {
        "d": problems[0].d,
        "alpha": _floats(run.alpha),
        "F_star": _floats(F_star),
        "interpolating": [bool(p.interpolating) for p in problems],
        "L": [p.L for p in problems],
        "mu": [p.mu for p in problems],
        "steps": [int(s) for s in steps],
        "loss": band(loss),
        "gap": band(gap),
        "eta_curve": band(run.eta),
        "eta_path": _floats(run.eta.max(axis=1)),
        "eta_final": _floats(run.eta[:, -1]),
        "final_loss": _floats(loss[:, -1]),
        "final_gap": _floats(gap[:, -1]),
        "iterations_to": crossings,
        "cosines": {
            "init": cos_init.to_dict(),
            "end": cos_end.to_dict(),
            "path": cos_path.to_dict(),
        },
    }
    if with_bound:
        ratios, values = [], []
        for r, p in enumerate(problems):
            b = float(
                bounds.theorem_3_1(
                    T,
                    alpha=float(run.alpha[r]),
                    n=p.n,
                    L=p.L,
                    mu=p.mu,
                    eta=float(run.eta[r].max()),
                    gap0=float(gap[r, 0]),
                )
            )
            values.append(b)
            ratios.append(b / gap[r, -1] if gap[r, -1] > 0 else math.inf)
        out["theorem_3_1_at_T"] = _floats(np.array(values))
        out["theorem_3_1_ratio_at_T"] = _floats(np.array(ratios))
    return out


def figure1_experiment(
    *,
    rng: np.random.Generator,
    runs: int = 10,
    n: int = 100,
    dims: tuple[int, int] = (120, 80),
    noise_std: float = 0.5,
    alpha: float = 0.5,
    T: int = 20_000,
    theorem_T: int = 200_000,
    record_points: int = 500,
    thresholds: Sequence[float] = (1e-1, 1e-2, 1e-3),
) -> dict:
    """Figure 1 of the paper: SGD on linear regression, ``d = 120`` versus ``d = 80``.

    Each run draws its own instance (``n`` Gaussian inputs with ``N(0, 1/d)``
    entries, planted labels with noise ``noise_std``, ``w_0 = 0``) and runs SGD
    with ``B = 1`` and sampling with replacement, all runs of one ``d`` advanced
    together. Three blocks:

    - ``paper_step``: constant ``alpha`` for ``T`` steps. The paper prints no
      step size; ``alpha = 0.5`` (``alpha E||x||^2 = 0.5``) is our choice, far
      above the theorems' limit ``2/(n L)`` (about ``0.014`` here), so no bound
      applies there;
    - ``theorem_step``: ``alpha = 1/(n L)`` per instance (the step that makes
      Theorem 3.1's rate fastest, inside the limit) for ``theorem_T`` steps,
      with the Theorem 3.1 bound at ``T`` per run;
    - ``noise_free``: the paper step with noise-free planted labels (an
      ablation: then ``d = 80`` interpolates as well).

    Statistics per ``d``: loss and suboptimality curves (mean, median, 10% and
    90% quantiles over runs), iterations to reach ``eps`` times the initial
    value, the confusion ``eta`` along the path, and histograms of the
    cosine similarities of all gradient pairs at ``w_0``, at ``w_T`` and
    pooled along the path.

    Args:
        rng: random generator.
        runs: independent runs per ``d``, ``>= 2``. Default 10.
        n: samples, ``>= 2``. Default 100.
        dims: (over-parameterized, under-parameterized) ``d``. Default (120, 80).
        noise_std: label noise. Default 0.5.
        alpha: the paper-step size. Default 0.5.
        T: steps at the paper step, ``>= 1``. Default 20000.
        theorem_T: steps at the theorem step, ``>= 1``. Default 200000.
        record_points: about how many steps to record. Default 500.
        thresholds: relative loss levels ``eps``. Default (0.1, 0.01, 0.001).

    Returns:
        JSON-ready dictionary with ``settings`` and the three blocks.

    Raises:
        ValueError: on arguments out of range.
    """
    runs = _check_int("runs", runs, 2)
    n = _check_int("n", n, 2)
    T = _check_int("T", T, 1)
    theorem_T = _check_int("theorem_T", theorem_T, 1)
    record_points = _check_int("record_points", record_points, 1)
    if len(dims) != 2 or any(not isinstance(d, int) or d < 1 for d in dims):
        raise ValueError(f"dims must be two integers >= 1, got {dims!r}")
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha}")
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std}")
    if not thresholds or any(not 0 < e < 1 for e in thresholds):
        raise ValueError(f"thresholds must lie in (0, 1), got {thresholds!r}")

    instances = {
        d: [make_problem(n, d, noise_std=noise_std, rng=rng) for _ in range(runs)]
        for d in dims
    }
    clean = {
        d: [make_problem(n, d, noise_std=0.0, rng=rng) for _ in range(runs)]
        for d in dims
    }
    blocks = {}
    for key, T_b, probs, alpha_label, figure in (
        ("paper_step", T, instances, f"{alpha:g}", "figure1.png"),
        ("theorem_step", theorem_T, instances, "1/(n L)", "figure1_theorem_step.png"),
        ("noise_free", T, clean, f"{alpha:g}", "figure1_noise_free.png"),
    ):
        models = {}
        for d in dims:
            step = (
                np.array([1.0 / (n * p.L) for p in probs[d]])
                if key == "theorem_step"
                else alpha
            )
            models[str(d)] = _figure1_model(
                probs[d],
                alpha=step,
                T=T_b,
                record_every=max(1, T_b // record_points),
                thresholds=thresholds,
                rng=rng,
                with_bound=key == "theorem_step",
            )
        blocks[key] = {
            "T": T_b,
            "alpha_label": alpha_label,
            "noise_std": 0.0 if key == "noise_free" else noise_std,
            "figure": figure,
            "models": models,
        }

    eps = 1e-2 if 1e-2 in thresholds else thresholds[len(thresholds) // 2]
    return {
        "experiment": "figure1",
        "settings": {
            "runs": runs,
            "n": n,
            "dims": list(dims),
            "noise_std": noise_std,
            "alpha": alpha,
            "T": T,
            "theorem_T": theorem_T,
            "thresholds": [float(e) for e in thresholds],
            "claim_threshold": float(eps),
        },
        **blocks,
    }


def run_figure1(out_dir: pathlib.Path, *, seed: int, runs: int = 10) -> dict:
    """Full Figure 1 reproduction (see :func:`figure1_experiment`).

    Writes ``out_dir / "figure1.json"`` and returns the same dictionary.

    Args:
        out_dir: directory for the JSON file (created if missing).
        seed: seed of the random generator.
        runs: independent runs (instances) per ``d``, ``>= 2``. Default 10
            (the paper averages 3).

    Returns:
        The dictionary of :func:`figure1_experiment` plus ``seed``.

    Raises:
        ValueError: on a negative ``seed`` or ``runs < 2``.
    """
    seed = _check_int("seed", seed, 0)
    runs = _check_int("runs", runs, 2)
    result = figure1_experiment(rng=np.random.default_rng(seed), runs=runs, **_FIGURE1)
    result["seed"] = seed
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "figure1.json").write_text(json.dumps(result, allow_nan=False))
    return result
