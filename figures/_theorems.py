"""Empirical P(bound holds) against each theorem's bound, and c* across sweeps.

Notation: ``P(eta)`` is the probability that a trial's confusion
``max(0, -min_{i != j} <grad f_i, grad f_j>)`` is at most ``eta``, estimated
from the stored trials with an exact Clopper-Pearson band; the bound is
``1 - P_fail(eta; c)`` of Theorem 4.1 (parts 1 and 2; ``c1`` term dropped),
Theorem 5.1, Corollary 5.1 or Theorem 6.1; ``c*`` is the implied constant of
:func:`montecarlo.theorem_summary` (largest ``c`` whose failure bound stays
above the one-sided Clopper-Pearson upper limit at every ``eta``).
"""

from __future__ import annotations

import math
import pathlib

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from bounds import ProbabilityBound
from figures._style import (
    AXIS_LABELS,
    STATEMENT_TITLES,
    SWEEP_AXES,
    FigureRecord,
    finite_positive,
    fmt_num,
    new_figure,
    save_figure,
    set_axis_scale,
    statement_color,
    statement_of,
    value_colors,
)
from montecarlo._config import Config
from montecarlo._estimates import estimates
from montecarlo._results import GroupTrials, StoredRun
from montecarlo._statements import bound_at
from montecarlo._statements import statement_of as _statement

__all__ = ["theorem_figure_name", "plot_theorem", "plot_c_star"]

MAX_CURVES = 6
"""Most configurations drawn in one panel (evenly spaced subset beyond that)."""

_GRID_POINTS = 240


def theorem_figure_name(statement: str) -> str:
    """File stem of a statement's figure, e.g. ``"theorem_4_1_part2"``."""
    return {
        "4.1 part 2": "theorem_4_1_part2",
        "4.1 part 1": "theorem_4_1_part1",
        "5.1": "theorem_5_1",
        "corollary_5.1": "corollary_5_1",
        "6.1": "theorem_6_1",
    }[statement]


def _subset(n: int) -> list[int]:
    if n <= MAX_CURVES:
        return list(range(n))
    return sorted({round(i * (n - 1) / (MAX_CURVES - 1)) for i in range(MAX_CURVES)})


def _in_domain(config: Config, eta: np.ndarray) -> np.ndarray:
    """Where the configuration's bound is stated (``eta > eta_min``)."""
    return _statement(config).in_domain(eta)


def _fixed_text(group: GroupTrials) -> str:
    c = group.configs[0]
    keys = [
        k for k in ("n", "d", "depth", "width", "kappa", "r") if k not in group.axes
    ]
    if c.weights == "orthogonal_linear":
        keys = [k for k in keys if k not in ("width", "kappa")]
    elif c.weights != "gaussian":
        keys = [k for k in keys if k != "kappa"]
    if statement_of(c) != "corollary_5.1":
        keys = [k for k in keys if k != "r"]
    vals = ", ".join(f"{k}={fmt_num(getattr(c, k))}" for k in keys)
    return f"{c.weights} weights, {c.activation}, {c.loss} loss; {vals}"


def _clipped(b: ProbabilityBound) -> tuple[np.ndarray, np.ndarray]:
    """``(max(0, 1 - P_fail), min(1, P_fail))`` from ``log P_fail`` (no overflow)."""
    log_fail = np.minimum(b.log_failure, 0.0)
    return -np.expm1(log_fail), np.exp(log_fail)


def _eta_range(
    run: StoredRun, group: GroupTrials, idx: list[int], c: float
) -> tuple[float, float]:
    """The ``eta`` range to show: from just below the data to where the bounds saturate.

    Left end: a third of the smallest 1% quantile of the positive confusions
    (never below the spec's grid start). Right end: three times the largest
    confusion, or further to reach the binding ``eta`` of ``c*`` and the point
    where the bound at ``c`` reaches 1/2, if those lie on the spec's grid.
    """
    spec = run.spec
    lows, highs = [], []
    for i in idx:
        config, eta = group.configs[i], group.values("eta")[i]
        pos = eta[eta > 0]
        if pos.size:
            lows.append(np.quantile(pos, 0.01) / 3)
            highs.append(3 * pos.max())
        s = run.summary(group.name, config)
        if s is not None and math.isfinite(s.binding_eta):
            highs.append(1.5 * s.binding_eta)
            lows.append(s.binding_eta / 10)
        g = spec.eta.values()
        g = g[_in_domain(config, g)]
        if g.size:
            prob, _ = _clipped(bound_at(config, g, c))
            half = g[prob >= 0.5]
            if half.size:
                highs.append(1.5 * half[0])
    lo = max(spec.eta.start, min(lows, default=spec.eta.start))
    hi = max(highs, default=spec.eta.stop)
    hi = min(
        hi,
        max(
            spec.eta.stop,
            3 * max((v.max() for v in group.values("eta") if v.size), default=0.0),
        ),
    )
    return lo, max(hi, 10 * lo)


def _draw_group(
    ax_p: Axes,
    ax_f: Axes,
    run: StoredRun,
    group: GroupTrials,
    c: float,
    confidence: float,
) -> None:
    idx = _subset(len(group.configs))
    lo, hi = _eta_range(run, group, idx, c)
    grid = np.geomspace(lo, hi, _GRID_POINTS)
    colors = (
        value_colors(len(idx)) if len(idx) > 1 else [statement_color(group.statement)]
    )
    t_max = 1
    for color, i in zip(colors, idx, strict=True):
        config, frame = group.configs[i], group.frames[i]
        est = estimates(frame, grid, statistic="min_inner", confidence=confidence)
        t = int(est.trials.iloc[0])
        if t == 0:
            continue
        t_max = max(t_max, t)
        s = run.summary(group.name, config)
        c_star = s.c_star if s is not None else math.nan
        label = f"{group.label(config)}  (c* = {fmt_num(c_star)})"
        p, ci_lo, ci_hi = (
            est.estimate.to_numpy(),
            est.ci_low.to_numpy(),
            est.ci_high.to_numpy(),
        )
        ax_p.plot(grid, p, color=color, lw=1.8, label=label)
        ax_p.fill_between(grid, ci_lo, ci_hi, color=color, alpha=0.18, lw=0)
        fail = 1.0 - p
        some = fail > 0
        ax_f.plot(grid, np.where(some, fail, np.nan), color=color, lw=1.8)
        ax_f.fill_between(
            grid,
            np.maximum(1.0 - ci_hi, 1e-300),
            1.0 - ci_lo,
            where=some,
            color=color,
            alpha=0.18,
            lw=0,
        )
        # no failure observed: only the upper confidence limit says something
        ax_f.plot(
            grid,
            np.where(some, np.nan, 1.0 - ci_lo),
            color=color,
            lw=0.9,
            alpha=0.7,
            ls="-.",
        )
        dom = _in_domain(config, grid)
        g = grid[dom]
        for const, style in ((c_star, "--"), (c, ":")):
            if not finite_positive(const) or not g.size:
                continue
            prob, fail_b = _clipped(bound_at(config, g, const))
            ax_p.plot(g, prob, color=color, ls=style, lw=1.5)
            ax_f.plot(g, fail_b, color=color, ls=style, lw=1.5)
        if s is not None and finite_positive(c_star) and math.isfinite(s.binding_eta):
            prob, fail_b = _clipped(bound_at(config, np.array([s.binding_eta]), c_star))
            ax_p.plot(
                [s.binding_eta],
                prob,
                "o",
                color=color,
                ms=6,
                mec="k",
                mew=0.8,
                zorder=5,
            )
            ax_f.plot(
                [s.binding_eta],
                fail_b,
                "o",
                color=color,
                ms=6,
                mec="k",
                mew=0.8,
                zorder=5,
            )
    pct = f"{100 * confidence:g}%"
    for ax in (ax_p, ax_f):
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.grid(alpha=0.3, which="major", lw=0.5)
        ax.set_xlabel(r"confusion level $\eta$")
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_ylabel(
        r"$P(\eta) = P\left(\mathrm{min}_{i\neq j}\,\langle\nabla f_i,\nabla f_j\rangle"
        r"\geq -\eta\right)$"
    )
    shown = (
        ""
        if len(idx) == len(group.configs)
        else (f" ({len(idx)} of {len(group.configs)} configurations)")
    )
    ax_p.set_title(
        f"{group.name}: P(η), {pct} Clopper–Pearson band{shown}\n{_fixed_text(group)}",
        fontsize=10,
    )
    ax_f.set_yscale("log")
    ax_f.set_ylim(0.3 / t_max, 1.5)
    ax_f.set_ylabel(r"failure probability $1 - P(\eta)$ (log scale)")
    ax_f.set_title(f"{group.name}: failure probability", fontsize=10)
    ax_p.legend(
        fontsize=8,
        loc="upper left",
        title=", ".join(group.axes) or None,
        title_fontsize=8,
    )


def plot_theorem(
    run: StoredRun,
    statement: str,
    out_dir: pathlib.Path,
    *,
    c: float = 1.0,
    confidence: float = 0.95,
) -> FigureRecord | None:
    """Empirical ``P(eta)`` against the bound at ``c*`` and at ``c``, per group.

    One row per spec group testing ``statement``: left, ``P(eta)`` with its
    Clopper-Pearson band (solid, shaded), the bound at the configuration's
    ``c*`` (dashed; the dot marks the binding ``eta``) and at ``c`` (dotted),
    vacuous parts drawn at 0; right, the failure probability ``1 - P(eta)``
    on a log axis, the bound's failure probability capped at 1.

    Args:
        run: The stored run.
        statement: ``"4.1 part 2"``, ``"4.1 part 1"``, ``"5.1"``,
            ``"corollary_5.1"`` or ``"6.1"``.
        out_dir: Directory for the PNG and PDF.
        c: The user-given constant. Defaults to ``1.0``.
        confidence: Level of the band. Defaults to ``0.95``.

    Returns:
        The written figure, or ``None`` when no group tests ``statement``.
    """
    groups = [g for g in run.groups if g.uniform and g.statement == statement]
    if not groups:
        return None
    fig = new_figure(14.5, 4.3 * len(groups) + 0.9)
    axes = fig.subplots(len(groups), 2, squeeze=False)
    for (ax_p, ax_f), group in zip(axes, groups, strict=True):
        _draw_group(ax_p, ax_f, run, group, c, confidence)
    pct = f"{100 * confidence:g}%"
    proxies = [
        Line2D(
            [], [], color="0.2", lw=1.8, label=f"Monte Carlo estimate (band: {pct} CI)"
        ),
        Line2D(
            [],
            [],
            color="0.2",
            lw=0.9,
            ls="-.",
            label=f"no failure seen: upper {pct} CI limit",
        ),
        Line2D(
            [],
            [],
            color="0.2",
            ls="--",
            lw=1.5,
            label="bound at the configuration's c*",
        ),
        Line2D(
            [], [], color="0.2", ls="", marker="o", mec="k", label="η where c* binds"
        ),
        Line2D(
            [],
            [],
            color="0.2",
            ls=":",
            lw=1.5,
            label=f"bound at c = {fmt_num(c)} (0 / 1 where vacuous)",
        ),
    ]
    axes[0][1].legend(handles=proxies, fontsize=8, loc="lower left")
    extra = " — c1 term dropped (c1 → ∞)" if statement.startswith("4.1") else ""
    fig.suptitle(
        f"{STATEMENT_TITLES[statement]}: empirical P(confusion ≤ η) vs. the "
        f"bound{extra}",
        fontsize=12,
    )
    name = theorem_figure_name(statement)
    paths = save_figure(fig, out_dir, name)
    caption = (
        f"{STATEMENT_TITLES[statement]}. Left: the Monte Carlo estimate of P(η), the "
        "probability that every pairwise gradient inner product is at least −η, with "
        f"its {pct} Clopper–Pearson band, against the theorem's lower bound at each "
        "configuration's implied constant c* (dashed; the dot marks where c* binds) "
        f"and at the user-given c = {fmt_num(c)} (dotted; drawn at 0 where vacuous). "
        "Right: the same as failure probability 1 − P(η) on a log axis (the bound "
        "capped at 1). A bound above the band's upper edge on the left (below the "
        "band on the right) would contradict the data."
    )
    return FigureRecord(
        name, f"{STATEMENT_TITLES[statement]}: P(η) vs. bound", caption, paths
    )


def plot_c_star(
    run: StoredRun, out_dir: pathlib.Path, *, c: float = 1.0
) -> FigureRecord | None:
    """``c*`` against each swept axis (depth, width, d, r, N), per group.

    One panel per axis that some bounded group sweeps, log ``c*`` axis, one
    line per group in its statement's colour; horizontal dotted lines mark
    each statement's smallest ``c*`` (a universal constant must lie below
    it); the grey dashed line is the user-given ``c``; groups without a
    grid axis appear in a last panel. Configurations with ``c* = inf`` are
    drawn as triangles at the top edge.

    Returns:
        The written figure, or ``None`` when no configuration has a ``c*``.
    """
    bounded = [g for g in run.groups if g.uniform and g.statement is not None]
    if not bounded:
        return None
    c_of = {}
    for g in bounded:
        for config in g.configs:
            s = run.summary(g.name, config)
            c_of[(g.name, config.config_hash)] = s.c_star if s is not None else math.nan
    values = np.array(list(c_of.values()))
    finite = values[np.isfinite(values) & (values > 0)]
    if not finite.size:
        return None
    panels = [a for a in SWEEP_AXES if any(a in g.axes for g in bounded)]
    singles = [g for g in bounded if not any(a in g.axes for a in SWEEP_AXES)]
    n_panels = len(panels) + (1 if singles else 0)
    ncols = min(3, n_panels)
    nrows = -(-n_panels // ncols)
    fig = new_figure(max(5.0 * ncols + 0.6, 9.0), 4.3 * nrows + 1.2)
    grid_axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in grid_axes[n_panels:]:
        ax.set_visible(False)
    axes = grid_axes[:n_panels]
    lo, hi = finite.min() / 8, finite.max() * 8
    top = hi
    mins = {}
    for g in bounded:
        vals = [c_of[(g.name, x.config_hash)] for x in g.configs]
        good = [v for v in vals if np.isfinite(v) and v > 0]
        if good:
            mins[g.statement] = min(mins.get(g.statement, np.inf), min(good))
    markers = "osD^v<>"
    for ax, axis in zip(axes, panels, strict=False):
        used = set()
        for k, g in enumerate(g for g in bounded if axis in g.axes):
            xs = [float(getattr(x, axis)) for x in g.configs]
            ys = [c_of[(g.name, x.config_hash)] for x in g.configs]
            order = np.argsort(xs)
            xs, ys = np.array(xs)[order], np.array(ys)[order]
            color = statement_color(g.statement)
            short = STATEMENT_TITLES[g.statement].split(" (")[0]
            ok = np.isfinite(ys) & (ys > 0)
            ax.plot(
                xs[ok],
                ys[ok],
                marker=markers[k % len(markers)],
                color=color,
                lw=1.6,
                label=f"{g.name} ({short})",
            )
            inf = np.isinf(ys)
            if inf.any():
                ax.plot(xs[inf], np.full(inf.sum(), top), "^", color=color, ms=8)
            used.add(g.statement)
            set_axis_scale(ax, axis, xs)
        for st in sorted(used, key=str):
            if st in mins:
                ax.axhline(mins[st], color=statement_color(st), ls=":", lw=1.2)
        ax.set_xlabel(AXIS_LABELS[axis])
        ax.set_title(f"c* vs. {axis}", fontsize=10)
    if singles:
        ax = axes[-1]
        names = []
        for k, g in enumerate(singles):
            ys = [c_of[(g.name, x.config_hash)] for x in g.configs]
            ax.plot(
                [k] * len(ys),
                ys,
                "o",
                color=statement_color(g.statement),
                ms=8,
                label=f"{g.name} ({STATEMENT_TITLES[g.statement].split(' (')[0]})",
            )
            names.append(g.name)
        ax.set_xticks(range(len(singles)), names)
        ax.set_xlim(-0.7, len(singles) - 0.3)
        ax.set_xlabel("group without a swept axis")
        ax.set_title("c* of single configurations", fontsize=10)
    for ax in axes:
        ax.set_yscale("log")
        ax.set_ylim(min(lo, c / 3), max(hi, c * 3))
        ax.axhline(c, color="0.45", ls="--", lw=1.0)
        ax.grid(alpha=0.3, which="major", lw=0.5)
        ax.set_ylabel("implied constant c* (log scale)")
        ax.legend(fontsize=8, loc="best")
    proxies = [
        Line2D([], [], color="0.3", ls=":", label="smallest c* of the theorem"),
        Line2D([], [], color="0.45", ls="--", label=f"user-given c = {fmt_num(c)}"),
    ]
    fig.legend(handles=proxies, loc="outside lower center", ncols=2, fontsize=9)
    fig.suptitle(
        "Implied constant c* per configuration\n(a universal constant needs c* "
        "bounded away from 0 across every sweep)",
        fontsize=12,
    )
    paths = save_figure(fig, out_dir, "c_star_sweep")
    caption = (
        "The implied constant c* of every configuration (the largest c whose failure "
        "bound stays above the one-sided Clopper–Pearson upper limit of the observed "
        "failure frequency at every η) against each swept axis. A theorem with a "
        "universal constant predicts c* bounded away from 0 along every sweep; a c* "
        "that keeps falling along an axis means no single constant can serve all "
        "configurations. Dotted lines: the smallest c* of each theorem (any universal "
        "constant must lie below it); dashed grey: the user-given c."
    )
    return FigureRecord("c_star_sweep", "c* across the sweeps", caption, paths)
