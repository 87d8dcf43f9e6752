"""Estimates from stored per-trial records, for any ``eta`` grid, without re-running.

A trial *fails* at level ``eta`` when its statistic falls below ``-eta``:

- ``min_inner`` (worst case, Definition 2.1): ``min_{i != j} G_ij < -eta``;
- ``min_cos`` (normalized, Section 8): the minimum pairwise cosine ``< -eta``
  (a trial with no pair of non-zero gradients cannot fail);
- ``offdiag_mean`` (averaged, Section 8): the mean off-diagonal entry ``< -eta``.

``P(eta)`` is the probability that the confusion bound holds, estimated by
the fraction of finite trials that do not fail, with an exact Clopper-Pearson
interval. Non-finite trials are counted in ``nonfinite`` and excluded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

import bounds
from bounds import informative_length
from montecarlo._config import Config, Spec
from montecarlo._statements import bound_kwargs, statement_of

__all__ = [
    "STATISTICS",
    "estimates",
    "theorem_summary",
    "ConfigSummary",
]

STATISTICS = ("min_inner", "min_cos", "offdiag_mean")


def _failures(values: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Number of ``values < -eta`` for each ``eta`` (NaN values never fail)."""
    v = np.sort(values[~np.isnan(values)])
    return np.searchsorted(v, -np.asarray(eta), side="left")


def estimates(
    df: pd.DataFrame,
    eta: Sequence[float] | np.ndarray,
    *,
    statistic: str = "min_inner",
    confidence: float = 0.95,
    by: Sequence[str] = ("config_hash", "seed"),
) -> pd.DataFrame:
    """Per configuration and ``eta``: failures, trials, estimate of ``P(eta)``, CI.

    Args:
        df: Per-trial rows from :func:`montecarlo.load_results` (the
            ``minibatch`` table works too; add ``"B"`` to ``by``).
        eta: Confusion levels, each ``>= 0``.
        statistic: One of :data:`STATISTICS`. Defaults to ``"min_inner"``.
        confidence: Two-sided confidence level of the Clopper-Pearson interval.
        by: Columns identifying a configuration.

    Returns:
        One row per group and ``eta`` with columns ``*by``, ``eta``,
        ``trials`` (finite trials), ``nonfinite``, ``failures``, ``estimate``
        (``1 - failures / trials``), ``ci_low``, ``ci_high``.

    Raises:
        ValueError: On an unknown statistic, a negative or non-finite ``eta``,
            or missing columns.
    """
    if statistic not in STATISTICS:
        raise ValueError(
            f"statistic must be one of {list(STATISTICS)}, got {statistic!r}"
        )
    eta = np.atleast_1d(np.asarray(eta, dtype=float))
    if eta.ndim != 1 or not np.all(np.isfinite(eta)) or (eta < 0).any():
        raise ValueError(f"eta must be a 1-D grid of finite numbers >= 0, got {eta!r}")
    missing = [c for c in (*by, statistic) if c not in df.columns]
    if missing:
        raise ValueError(f"df lacks the columns {missing}")
    finite_col = (
        df["finite"]
        if "finite" in df.columns
        else pd.Series(np.isfinite(df[statistic]), index=df.index)
    )
    rows = []
    for key, g in df.groupby(list(by), sort=False):
        ok = finite_col.loc[g.index].to_numpy(dtype=float) == 1.0
        vals = g[statistic].to_numpy(dtype=float)[ok]
        t = int(ok.sum())
        k = _failures(vals, eta)
        if t:
            lo, hi = bounds.clopper_pearson(t - k, t, confidence, sided="two")
        else:
            lo = hi = np.full(eta.shape, np.nan)
        key = key if isinstance(key, tuple) else (key,)
        for j, e in enumerate(eta):
            rows.append(
                (
                    *key,
                    e,
                    t,
                    int((~ok).sum()),
                    int(k[j]),
                    1 - k[j] / t if t else np.nan,
                    lo[j],
                    hi[j],
                )
            )
    cols = [
        *by,
        "eta",
        "trials",
        "nonfinite",
        "failures",
        "estimate",
        "ci_low",
        "ci_high",
    ]
    return pd.DataFrame(rows, columns=cols)


@dataclasses.dataclass(frozen=True)
class ConfigSummary:
    """What the Monte Carlo says about one configuration against its theorem.

    Attributes:
        group: Spec group name.
        label: The configuration's grid values, e.g. ``"width=64"``.
        config: The configuration.
        trials: Finite trials used.
        nonfinite: Trials with a non-finite Gram (excluded).
        median_eta: Median over trials of the trial's confusion ``max(0, -min_inner)``.
        eta_ref: The group's reference level (median of the pooled confusion).
        p_ref, ci_ref: ``P(eta_ref)`` and its Clopper-Pearson interval.
        c_star: The implied constant (``nan`` where the theorem has none).
        binding_eta: The ``eta`` at which ``c_star`` binds.
        p_binding: Empirical ``P`` at the binding ``eta``.
        bound_at_c_star: The theorem's probability bound at ``c_star`` there.
        note: Plain-language remark (dropped terms, no constant, ...).
    """

    group: str
    label: str
    config: Config
    trials: int
    nonfinite: int
    median_eta: float
    eta_ref: float
    p_ref: float
    ci_ref: tuple[float, float]
    c_star: float
    binding_eta: float
    p_binding: float
    bound_at_c_star: float
    note: str


def theorem_summary(
    spec: Spec, df: pd.DataFrame, *, seed: int, confidence: float = 0.95
) -> list[ConfigSummary]:
    """One :class:`ConfigSummary` per configuration of ``spec`` with stored trials.

    Uses the first ``config.trials`` trials of ``seed``; ``c*`` from
    :func:`bounds.implied_constant` with the one-sided Clopper-Pearson upper
    limit at ``confidence``, over the spec's ``eta`` grid (Theorem 4.1 part 1
    only on its domain ``eta > 4``) up to its first point at which no trial
    fails (see :func:`_informative`).
    """
    grid = spec.eta.values()
    out: list[ConfigSummary] = []
    for group, configs in spec.groups.items():
        rows = []
        for config in configs:
            sub = df[(df.config_hash == config.config_hash) & (df.seed == seed)]
            sub = sub[sub.trial < config.trials]
            if len(sub):
                rows.append((config, sub))
        if not rows:
            continue
        pooled = np.concatenate([r[1].min_inner.to_numpy(float) for r in rows])
        pooled = np.maximum(0.0, -pooled[np.isfinite(pooled)])
        eta_ref = float(np.median(pooled)) if pooled.size else math.nan
        axes = spec.axes.get(group, [])
        for config, sub in rows:
            ok = sub.finite.to_numpy(float) == 1.0
            vals = sub.min_inner.to_numpy(float)[ok]
            t = int(ok.sum())
            conf_eta = np.maximum(0.0, -vals)
            if t and math.isfinite(eta_ref):
                k = int(_failures(vals, np.array([eta_ref]))[0])
                lo, hi = bounds.clopper_pearson(t - k, t, confidence, sided="two")
                p_ref, ci_ref = 1 - k / t, (float(lo), float(hi))
            else:
                p_ref, ci_ref = math.nan, (math.nan, math.nan)
            c_star = b_eta = p_bind = bound = math.nan
            note = ""
            st = statement_of(config)
            if st is None:
                note = "no probability bound for this configuration"
            elif t == 0:
                note = "no finite trials"
            else:
                params = bound_kwargs(config)
                g = grid[st.in_domain(grid)]
                k = _failures(vals, g)
                g, k = g[: informative_length(k)], k[: informative_length(k)]
                if g.size == 0:
                    note = f"{st.title} needs eta > {st.eta_min:g}: the grid has none"
                else:
                    res = st.implied_constant(g, k, t, params, confidence=confidence)
                    c_star = res.c_star
                    note = " ".join(res.notes)
                    if res.binding_index is not None:
                        b_eta = res.binding_eta
                        p_bind = 1 - k[res.binding_index] / t
                        if 0 < c_star < math.inf:
                            # far from the binding eta the bound is hugely vacuous
                            # (-inf): expected, not worth a warning
                            with np.errstate(over="ignore"):
                                prob = np.atleast_1d(res.bound().probability)
                            bound = float(prob[res.binding_index])
            out.append(
                ConfigSummary(
                    group=group,
                    label=config.label(axes) if axes else "(single)",
                    config=config,
                    trials=t,
                    nonfinite=int((~ok).sum()),
                    median_eta=float(np.median(conf_eta)) if t else math.nan,
                    eta_ref=eta_ref,
                    p_ref=p_ref,
                    ci_ref=ci_ref,
                    c_star=c_star,
                    binding_eta=b_eta,
                    p_binding=p_bind,
                    bound_at_c_star=bound,
                    note=note,
                )
            )
    return out
