r"""Figures and the report section of the ``adversarial`` experiment (worst case found).

Notation: a held-out trial's confusion is ``max(0, -min_{i != j} G_ij)``
(Definition 2.1); its failure probability at level ``eta`` is

.. math::

    \hat p(\eta) = \frac1T \#\{t < T : \min_{i \neq j} G^{(t)}_{ij} < -\eta\},

estimated on the ``T`` held-out trials with a two-sided Clopper-Pearson band,
at the worst point found and for the random ensemble on the same trials.
``c*`` is the implied constant (:func:`bounds.implied_constant`), ``W_p`` a
layer of the found weights, ``X`` the found data (Theorem 4.1 part 1). For
Corollary 5.1 "adversarial" is the corollary's event (a ``W'`` of the found
centre's ball per held-out draw) and "found W'" the one point found.

Per statement of :data:`bounds.STATEMENTS` that was searched, three figures
(stems from :func:`montecarlo.claims._worst_case.figure_stem`):

- ``worst_case_failure_*``: ``p(eta)`` of the random ensemble and of the
  worst case found, one panel per configuration (and norm);
- ``worst_case_c_star_*``: ``c*`` random vs adversarial along each swept axis;
- ``worst_case_spectra_*``: the singular values of every found layer ``W_p``
  (and of the ball's centre), or of the found data ``X`` with its row norms.

Everything is read from the experiment's JSON; nothing is recomputed.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bounds import STATEMENTS
from figures._style import (
    AXIS_LABELS,
    fmt_num,
    new_figure,
    save_figure,
    set_axis_scale,
    statement_color,
    value_colors,
)
from montecarlo._adversarial import AdversarialResult, HeldOutEstimate
from montecarlo.claims._worst_case import figure_stem, searched

__all__ = ["plot_adversarial", "worst_case_section"]

_RANDOM = "0.35"  # the random ensemble's colour in every panel
_NCOLS = 4


def _panels(
    count: int, width: float = 3.6, height: float = 3.0
) -> tuple[Figure, list[Axes]]:
    ncols = min(_NCOLS, count)
    nrows = -(-count // ncols)
    fig = new_figure(max(width * ncols + 0.4, 8.0), height * nrows + 1.1)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, list(axes[:count])


def _label(group: str, res: AdversarialResult, axes: Sequence[str]) -> str:
    norm = f", {res.norm}" if res.norm else ""
    return f"{group}{norm}: {res.config.label(axes) or 'one configuration'}"


def _curve(
    ax: Axes, est: HeldOutEstimate, color: str, ls: str, name: str, floor: float
) -> None:
    """``p(eta)`` where positive, and its two-sided Clopper-Pearson band."""
    eta, p = est.eta, est.p_fail
    ax.plot(
        eta,
        np.where(p > 0, p, np.nan),
        color=color,
        ls=ls,
        lw=1.6,
        label=f"{name} (c* = {fmt_num(est.c_star)})",
    )
    ax.fill_between(
        eta, np.maximum(est.ci_low, floor), est.ci_high, color=color, alpha=0.15, lw=0
    )


def _plot_failure(
    statement: str,
    items: list[tuple[str, AdversarialResult]],
    axes_of: Mapping[str, Sequence[str]],
    out_dir: pathlib.Path,
) -> tuple[pathlib.Path, ...]:
    st = STATEMENTS[statement]
    fig, axes = _panels(len(items))
    color = statement_color(statement)
    for ax, (group, res) in zip(axes, items, strict=True):
        T = max(res.adversarial.trials, res.random.trials)
        floor = 0.3 / T
        _curve(ax, res.random, _RANDOM, "--", "random ensemble", floor)
        _curve(ax, res.adversarial, color, "-", "worst case found", floor)
        if res.fixed_point is not None:
            p = res.fixed_point.p_fail
            ax.plot(
                res.fixed_point.eta,
                np.where(p > 0, p, np.nan),
                color=color,
                ls=":",
                lw=1.3,
                label=f"the one found W' (c* = {fmt_num(res.fixed_point.c_star)})",
            )
        if st.eta_min > 0:
            ax.axvspan(res.random.eta[0], st.eta_min, color="0.9", lw=0, zorder=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(floor, 1.5)
        ax.grid(alpha=0.3, which="major", lw=0.5)
        ax.set_xlabel(r"confusion level $\eta$")
        ax.set_ylabel(r"$P(\mathrm{confusion} > \eta)$")
        ax.set_title(_label(group, res, axes_of[group]), fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    confidence = items[0][1].adversarial.confidence
    fig.suptitle(
        f"{st.title}: failure probability, random ensemble vs worst case found\n"
        f"({100 * confidence:g}% Clopper–Pearson bands, held-out trials"
        + (f"; grey: outside the domain η > {st.eta_min:g}" if st.eta_min else "")
        + ")",
        fontsize=10,
    )
    return save_figure(fig, out_dir, figure_stem("failure", statement))


def _numeric(values: Sequence[Any]) -> bool:
    return len(set(values)) >= 2 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def _plot_c_star(
    statement: str,
    items: list[tuple[str, AdversarialResult]],
    axes_of: Mapping[str, Sequence[str]],
    out_dir: pathlib.Path,
) -> tuple[pathlib.Path, ...]:
    st = STATEMENTS[statement]
    color = statement_color(statement)
    panels: list[tuple[str, str | None, str | None]] = []  # (group, norm, axis)
    singles: list[tuple[str, AdversarialResult]] = []
    for group in dict.fromkeys(g for g, _ in items):
        for norm in dict.fromkeys(r.norm for g, r in items if g == group):
            rows = [(g, r) for g, r in items if g == group and r.norm == norm]
            axes = [
                a
                for a in axes_of[group]
                if _numeric([getattr(r.config, a) for _, r in rows])
            ]
            panels += [(group, norm, a) for a in axes]
            if not axes:
                singles += rows
    fig, axes = _panels(len(panels) + (1 if singles else 0), 4.2, 3.3)
    sides = (
        ("random", _RANDOM, "--", "o", "random ensemble"),
        ("adversarial", color, "-", "s", "worst case found"),
        ("fixed_point", color, ":", "^", "the one found W'"),
    )
    for ax, (group, norm, axis) in zip(axes, panels, strict=False):
        rows = [r for g, r in items if g == group and r.norm == norm]
        x = np.array([float(getattr(r.config, axis)) for r in rows])
        order = np.argsort(x, kind="stable")
        for side, c, ls, marker, name in sides:
            ests = [getattr(r, side) for r in rows]
            if any(e is None for e in ests):
                continue
            y = np.array([e.c_star for e in ests])[order]
            ok = np.isfinite(y) & (y > 0)
            ax.plot(x[order][ok], y[ok], color=c, ls=ls, marker=marker, label=name)
        set_axis_scale(ax, axis, x)
        ax.set_xlabel(AXIS_LABELS.get(axis, axis))
        ax.set_title(f"{group}" + (f", {norm} ball" if norm else ""), fontsize=9)
    if singles:
        ax = axes[-1]
        for side, c, _, marker, name in sides:
            ys = [getattr(r, side) for _, r in singles]
            ax.plot(
                [k for k, e in enumerate(ys) if e is not None],
                [e.c_star for e in ys if e is not None],
                ls="none",
                marker=marker,
                color=c,
                ms=8,
                label=name,
            )
        ax.set_xticks(
            range(len(singles)),
            [_label(g, r, axes_of[g]) for g, r in singles],
            fontsize=7,
            rotation=15,
        )
        ax.set_xlim(-0.7, len(singles) - 0.3)
        ax.set_title("configurations without a swept axis", fontsize=9)
    for ax in axes:
        ax.set_yscale("log")
        ax.set_ylabel("implied constant c* (log scale)")
        ax.grid(alpha=0.3, which="major", lw=0.5)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(
        f"{st.title}: c* of the random ensemble and of the worst case found\n"
        "(a universal constant must lie below every adversarial c*)",
        fontsize=10,
    )
    return save_figure(fig, out_dir, figure_stem("c_star", statement))


def _plot_spectra(
    statement: str,
    items: list[tuple[str, AdversarialResult]],
    axes_of: Mapping[str, Sequence[str]],
    out_dir: pathlib.Path,
) -> tuple[pathlib.Path, ...]:
    st = STATEMENTS[statement]
    fig, axes = _panels(len(items))
    for ax, (group, res) in zip(axes, items, strict=True):
        found = res.search
        if found.weights is not None:
            spectra = found.spectra()
            colors = value_colors(len(spectra))
            for p, (W, s, c) in enumerate(
                zip(found.weights, spectra, colors, strict=True)
            ):
                k = np.arange(1, s.size + 1)
                ax.plot(
                    k,
                    s,
                    color=c,
                    marker=".",
                    lw=1.3,
                    label=f"W_{p} ({W.shape[0]}x{W.shape[1]})",
                )
            if found.centre is not None:
                for C, c in zip(found.centre, colors, strict=True):
                    s = np.linalg.svd(C, compute_uv=False)
                    ax.plot(np.arange(1, s.size + 1), s, color=c, ls=":", lw=1.0)
            ax.axhline(1.0, color="0.4", ls="--", lw=0.9)
            ax.set_xlabel("index i")
            ax.set_ylabel(r"singular value $s_i(W_p)$")
            ax.set_xscale("log")
            ax.set_yscale("log")
            # at least a decade around 1: clipped spectra sit at 1 to rounding
            values = np.concatenate(spectra)
            values = values[values > 0]
            ax.set_ylim(
                min(0.3, 0.7 * values.min(initial=1.0)),
                max(2.0, 1.4 * values.max(initial=1.0)),
            )
        else:
            X = found.X
            s = np.linalg.svd(X, compute_uv=False)
            norms = np.sort(np.linalg.norm(X, axis=1))[::-1]
            ax.plot(
                np.arange(1, s.size + 1), s, marker=".", label="singular values of X"
            )
            ax.plot(
                np.arange(1, norms.size + 1),
                norms,
                marker="x",
                ls="--",
                label="row norms ||x_i|| (sorted)",
            )
            ax.axhline(1.0, color="0.4", ls="--", lw=0.9)
            ax.set_xlabel("index i")
            ax.set_ylabel("value")
        ax.grid(alpha=0.3, which="major", lw=0.5)
        ax.set_title(_label(group, res, axes_of[group]), fontsize=9)
        ax.legend(fontsize=7, loc="best")
    what = (
        "found data X (rows in the unit ball)"
        if items[0][1].search.weights is None
        else "found weights, per layer (dotted: the ball's centre; dashed: "
        "operator norm 1)"
    )
    fig.suptitle(f"{st.title}: spectra of the worst case found\n{what}", fontsize=10)
    return save_figure(fig, out_dir, figure_stem("spectra", statement))


def _by_statement(
    result: Mapping[str, Any],
) -> dict[str, list[tuple[str, AdversarialResult]]]:
    out: dict[str, list[tuple[str, AdversarialResult]]] = {}
    for group, res in searched(result):
        out.setdefault(res.statement, []).append((group, res))
    return {k: out[k] for k in STATEMENTS if k in out}


def plot_adversarial(
    result: Mapping[str, Any], out_dir: str | pathlib.Path
) -> list[pathlib.Path]:
    """Draw the worst-case figures of an ``adversarial`` experiment (PNG and PDF).

    Args:
        result: The experiment's JSON dict (``OUT/adversarial.json``).
        out_dir: Directory of the figures (created if missing).

    Returns:
        The written files, three figures per searched statement (see the
        module docstring).

    Raises:
        ValueError: If ``result`` is not the experiment's JSON.
    """
    out_dir = pathlib.Path(out_dir)
    axes_of = {g: list(info["axes"]) for g, info in result["groups"].items()}
    paths: list[pathlib.Path] = []
    for statement, items in _by_statement(result).items():
        for draw in (_plot_failure, _plot_c_star, _plot_spectra):
            paths += draw(statement, items, axes_of, out_dir)
    return paths


def _link(stem: str) -> str:
    return f"[{stem}](#fig-{stem.replace('_', '-')})"


def worst_case_section(result: Mapping[str, Any]) -> str:
    """The report's "Worst case found" section (CommonMark), from the JSON.

    What was searched (the constraint set of each statement, the groups and
    norms), the budget and the held-out trials, then one table row per
    searched configuration and norm: ``c*`` of the random ensemble and of the
    worst case found, their ratio, and the failure counts at the found
    point's mean confusion; links to the figures of :func:`plot_adversarial`.

    Args:
        result: The experiment's JSON dict (``OUT/adversarial.json``).

    Returns:
        The section, starting with ``## Worst case found``.

    Raises:
        ValueError: If ``result`` is not the experiment's JSON.
    """
    from figures._report import _esc, _table  # figures._report imports this module

    by_statement = _by_statement(result)
    axes_of = {g: list(info["axes"]) for g, info in result["groups"].items()}
    b = result["budget"]
    held = result["heldout"]
    lines = [
        "## Worst case found\n",
        _esc(
            "Random sampling cannot contradict a statement quantified over a class "
            "(any weights with ||W_p||_2 <= 1, every W' of the ball, an arbitrary "
            "dataset); a projected search for the worst point of the class can. "
            "Each search optimizes a smooth surrogate of the failure probability on "
            "its own draws, selects the worst of its restarts on separate draws, and "
            "is then estimated on held-out draws (the random ensemble on the very "
            "same draws), so every number below is an honest Monte Carlo estimate "
            "at the point found."
        )
        + "\n",
        _esc(
            f"Budget ({result['budget_name']}): {b['restarts']} restarts x "
            f"{b['steps']} steps x {b['batch']} draws per step, selection on "
            f"{b['select_draws']} draws, Corollary 5.1's per-draw maximization over "
            f"the ball {b['inner_steps']} steps; step size {b['lr']:g}, "
            f"temperatures {b['temperature']:g} and {b['tau']:g}, quantiles "
            f"{', '.join(f'{q:g}' for q in b['quantiles'])}. Held-out trials: "
            + (f"{held}" if held is not None else "each configuration's trials")
            + f"; seed {result['seed']}; c* at confidence {result['confidence']:g}."
        )
        + "\n",
    ]
    for statement, items in by_statement.items():
        st = STATEMENTS[statement]
        groups = list(dict.fromkeys(g for g, _ in items))
        norms = list(dict.fromkeys(r.norm for _, r in items if r.norm))
        constraint = "; ".join(dict.fromkeys(r.search.constraint for _, r in items))
        lines.append(f"### {_esc(st.full_title)}\n")
        lines.append(
            _esc(
                f"Searched: {constraint}; groups {', '.join(groups)}"
                + (f"; ball norms {', '.join(norms)}" if norms else "")
                + "."
                + (
                    " Adversarial: the corollary's event, a W' of the found "
                    "centre's ball chosen per held-out draw; the one found W' is "
                    "shown beside it."
                    if statement == "corollary_5.1"
                    else ""
                )
            )
            + "\n"
        )
        rows = []
        untestable = []
        for group, res in items:
            c_r, c_a = res.random.c_star, res.adversarial.c_star
            ratio = c_a / c_r if c_r > 0 and math.isfinite(c_r) else math.nan
            found = res.search
            eta = float(found.select_confusion[found.restart])
            k_a = int(np.sum(res.adversarial.min_inner < -eta))
            k_r = int(np.sum(res.random.min_inner < -eta))
            inside = res.adversarial.eta[st.in_domain(res.adversarial.eta)]
            if st.eta_min > 0 and not (
                inside.size and np.any(res.adversarial.min_inner < -inside[0])
            ):
                where = res.config.label(axes_of[group]) or "one configuration"
                norm = f", {res.norm} ball" if res.norm else ""
                untestable.append(f"{group} ({where}{norm})")
            rows.append(
                [
                    _esc(group),
                    _esc(res.norm or "-"),
                    _esc(res.config.label(axes_of[group]) or "-"),
                    str(res.adversarial.trials),
                    fmt_num(c_r),
                    fmt_num(c_a),
                    fmt_num(ratio),
                    "-" if res.fixed_point is None else fmt_num(res.fixed_point.c_star),
                    _esc(f"{fmt_num(eta)}: {k_a} vs {k_r}"),
                ]
            )
        lines.append(
            _table(
                [
                    _esc(h)
                    for h in (
                        "group",
                        "norm",
                        "configuration",
                        "held-out trials",
                        "c* random",
                        "c* adversarial",
                        "ratio",
                        "c* at the found W'",
                        "eta: failures adversarial vs random",
                    )
                ],
                rows,
            )
        )
        notes = [
            "eta: the found point's mean confusion on its selection draws (fixed "
            "before any held-out draw)."
        ]
        if untestable:
            notes.append(
                f"No held-out trial has confusion above {st.eta_min:g} (the domain "
                f"of {st.title}) in {', '.join(untestable)}: there both c* reflect "
                "the trial count only, and these shapes cannot test the bound."
            )
        lines.append(" ".join(_esc(n) for n in notes) + "\n")
        lines.append(
            "Figures: "
            + ", ".join(
                _link(figure_stem(k, statement))
                for k in ("failure", "c_star", "spectra")
            )
            + "\n"
        )
    return "\n".join(lines)
