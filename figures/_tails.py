r"""Figures and the report section of the ``tail`` experiment (the bounds' rates).

Notation: ``P(eta) = P(statistic < -eta)``, the failure probability of the
confusion bound at level ``eta`` (Definition 2.1), estimated by subset
simulation from ``R`` repetitions with a lognormal interval
(:mod:`montecarlo._rare`). The statements' bounds (Theorems 4.1, 5.1, 6.1)
read

.. math::

    P(\eta) \le N^2 \exp\big(-c\, K(\eta)\big), \qquad K(\eta) = k\, \eta^2,

so on axes ``(eta^2, log P)`` a bound is a straight line of slope ``-c k``,
and a tail with the theorem's ``eta`` exponent 2 is straight too; a tail
bending upwards (exponent below 2) eventually crosses every such line.

Per statement of :data:`bounds.STATEMENTS` that was estimated, one figure
(stem :func:`montecarlo.claims._tails.figure_stem`), one panel per sweep:
``P`` against ``eta^2`` per configuration (colour: its position along the
sweep's axis) with the estimates' intervals, and the bound at the configuration's own
``c*`` from the tail (dashed, same colour; the largest constant whose bound
lies above its resolved upper limits), which touches its curve where it
binds, so the two slopes compare by eye; the panel's title gives the sweep's
``c*``, the smallest, which one constant for every configuration must obey.

Everything is read from the experiment's JSON; the report section takes the
rates' errors and tests from the inference layer
(:func:`montecarlo.claims._tails.rates`).
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from bounds import STATEMENTS
from figures._style import fmt_num, new_figure, save_figure, value_colors
from montecarlo._statements import bound_at
from montecarlo.claims._tails import (
    TailSweep,
    can_contradict,
    figure_stem,
    rates,
    tail_sweeps,
)

__all__ = ["plot_tail", "tail_section"]

_NCOLS = 3


def _by_statement(result: Mapping[str, Any]) -> dict[str, list[TailSweep]]:
    out: dict[str, list[TailSweep]] = {}
    for sweep in tail_sweeps(result):
        out.setdefault(sweep.statement, []).append(sweep)
    return {k: out[k] for k in STATEMENTS if k in out}


def _sweep_c_star(result: Mapping[str, Any], sweep: TailSweep) -> float:
    """The sweep's ``c*`` from the tail: the smallest of its configurations'."""
    values = [
        e["tail"]["c_star"]
        for e in result["estimates"]
        if e["sweep"] == sweep.name and e["tail"]["c_star"] is not None
    ]
    return min(values, default=math.inf)


def _plot_statement(
    result: Mapping[str, Any],
    statement: str,
    sweeps: list[TailSweep],
    out_dir: pathlib.Path,
) -> tuple[pathlib.Path, ...]:
    st = STATEMENTS[statement]
    ncols = min(_NCOLS, len(sweeps))
    nrows = -(-len(sweeps) // ncols)
    fig = new_figure(max(4.6 * ncols + 0.4, 7.5), 3.9 * nrows + 1.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(sweeps) :]:
        ax.set_visible(False)
    own = {e["config_hash"]: e["tail"]["c_star"] for e in result["estimates"]}
    for ax, sweep in zip(axes, sweeps, strict=False):
        c_star = _sweep_c_star(result, sweep)
        colors = value_colors(len(sweep.estimates))
        floor = 1.0
        top = 0.0
        for label, est, color in zip(
            sweep.labels, sweep.estimates, colors, strict=True
        ):
            eta = np.asarray(est.eta)
            p = np.asarray(est.estimate)
            lo, hi = np.asarray(est.ci_low), np.asarray(est.ci_high)
            ok = p > 0
            if not ok.any():
                continue
            floor = min(floor, float(lo[ok & (lo > 0)].min(initial=p[ok].min())))
            top = max(top, float(eta.max()))
            ax.errorbar(
                eta[ok] ** 2,
                p[ok],
                yerr=np.vstack([p[ok] - np.maximum(lo[ok], 0), hi[ok] - p[ok]]),
                color=color,
                marker="o",
                ms=3.5,
                lw=1.3,
                capsize=2,
                label=label,
            )
            c_own = _nan(own[est.config_object().config_hash])
            if math.isfinite(c_own) and c_own > 0:
                dense = np.linspace(0.0, 1.05 * float(eta.max()), 120)
                dense = dense[st.in_domain(dense)]
                bound = bound_at(est.config_object(), dense, c_own).failure
                ax.plot(dense**2, np.minimum(bound, 1.0), color=color, ls="--", lw=1.0)
        ax.set_yscale("log")
        ax.set_ylim(floor / 3.0, 1.5)
        ax.set_xlim(0.0, 1.08 * top**2 if top > 0 else 1.0)
        ax.grid(alpha=0.3, which="major", lw=0.5)
        ax.set_xlabel(r"$\eta^2$")
        ax.set_ylabel(r"$P(\mathrm{statistic} < -\eta)$")
        ax.set_title(
            f"{sweep.name}: c* from the tail = {fmt_num(c_star)} (smallest)",
            fontsize=9,
        )
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(
        f"{st.title}: the failure tail against η²\n(subset simulation, "
        f"{100 * result['confidence']:g}% intervals over {result['repetitions']} "
        "repetitions; dashed: the bound N² exp(−c* K(η)) at each\nconfiguration's "
        "own c* from the tail; a tail with the theorem's η exponent 2 is straight)",
        fontsize=9,
    )
    return save_figure(fig, out_dir, figure_stem(statement))


def plot_tail(
    result: Mapping[str, Any], out_dir: str | pathlib.Path
) -> list[pathlib.Path]:
    """Draw the tail figures of a ``tail`` experiment (PNG and PDF).

    Args:
        result: The experiment's JSON dict (``OUT/tail.json``).
        out_dir: Directory of the figures (created if missing).

    Returns:
        The written files, one figure per estimated statement.

    Raises:
        ValueError: If ``result`` is not the experiment's JSON.
    """
    out_dir = pathlib.Path(out_dir)
    paths: list[pathlib.Path] = []
    for statement, sweeps in _by_statement(result).items():
        paths += _plot_statement(result, statement, sweeps, out_dir)
    return paths


def _reading(sweep: TailSweep, rate: str) -> str:
    """How a rate bears on the statement (``can_contradict`` of the claims)."""
    if not can_contradict(sweep.statement, rate, sweep.axes):
        return "observation (cannot contradict for every c)"
    return "> 0; contradicted if <= 0" if rate == "c" else "contradicted if smaller"


def tail_section(result: Mapping[str, Any]) -> str:
    """The report's "Tail rates" section (CommonMark), from the JSON.

    What was estimated (the rule of the ``eta`` grid, particles,
    repetitions), then per statement and sweep a table of the measured rates
    against the theorem's (intervals and one-sided p-values from
    :func:`montecarlo.claims._tails.rates` at the stored confidence) and a
    table of ``c*`` from the tail beside the plain Monte Carlo ``c*``, with a
    link to the figure of :func:`plot_tail`.

    Args:
        result: The experiment's JSON dict (``OUT/tail.json``).

    Returns:
        The section, starting with ``## Tail rates``.

    Raises:
        ValueError: If ``result`` is not the experiment's JSON.
    """
    from figures._report import _esc, _table  # figures._report imports this module

    conf = float(result["confidence"])
    pct = f"{100 * conf:g}%"
    rule = result["eta_rule"]
    grid = (
        "levels " + ", ".join(fmt_num(e) for e in rule["levels"])
        if "levels" in rule
        else "per configuration, the levels at which a pilot run puts the failure "
        "probability at " + ", ".join(f"{q:g}" for q in rule["probabilities"])
    )
    lines = [
        "## Tail rates\n",
        _esc(
            "The bounds are exponential tails, log P(fail) <= 2 log N - c K(eta) with "
            "K = k eta^2; their content is how log P falls with eta^2, the width "
            "and d. Subset simulation resolves P far below plain Monte Carlo's "
            "reach; the free form log P = a + b log N - k eta^p prod x^q_x is "
            "fitted to the estimates with P <= "
            f"{result['max_probability']:g}, and each exponent is set against the "
            "theorem's. An upper bound allows a tail that decays faster (a larger "
            "exponent). Along an axis where the whole bound tends to 0 (the width "
            "in Theorem 4.1, d in Theorems 5.1 and 6.1), a decay exponent "
            "significantly smaller contradicts it for every constant under the "
            "fitted power law; the other rates are observations (a bounded "
            "confusion, or Theorem 4.1's c1 term, satisfies the bound for some "
            "constant whatever they are)."
        )
        + "\n",
        _esc(
            f"Statistic {result['statistic']}; eta grid: {grid}; "
            f"{result['settings']['particles']} particles per level, "
            f"{result['repetitions']} repetitions per configuration; seed "
            f"{result['seed']}. Intervals ({pct}): t with min(R - 1, fit dof) "
            "degrees of freedom on the larger of the jackknife error over "
            "repetitions and the least-squares error scaled by the lack of fit."
        )
        + "\n",
    ]
    for statement, sweeps in _by_statement(result).items():
        st = STATEMENTS[statement]
        lines.append(f"### {_esc(st.full_title)}\n")
        for sweep in sweeps:
            lines.append(f"**{_esc(sweep.name)}**\n")
            if sweep.analysis is None:
                lines.append(_esc(f"Not fitted: {sweep.analysis_error}") + "\n")
            else:
                rows = []
                for r in rates(sweep, confidence=conf):
                    p = "-"
                    if r.test is not None and not math.isnan(r.test.p_below):
                        side = r.test.p_above if r.name == "n" else r.test.p_below
                        p = f"{side:.2g}"
                    rows.append(
                        [
                            _esc(r.name),
                            fmt_num(r.value),
                            _esc(f"[{fmt_num(r.ci_low)}, {fmt_num(r.ci_high)}]"),
                            "-" if r.reference is None else fmt_num(r.reference),
                            _esc(_reading(sweep, r.name)),
                            p,
                        ]
                    )
                lines.append(
                    _table(
                        [
                            "rate",
                            "measured",
                            f"{pct} interval",
                            "theorem's",
                            "reading",
                            "p (one-sided, raw)",
                        ],
                        rows,
                    )
                )
            rows = []
            entries = [e for e in result["estimates"] if e["sweep"] == sweep.name]
            for e, est in zip(entries, sweep.estimates, strict=True):
                p = [x for x in est.estimate if x > 0]
                err = [x for x in est.relative_error if math.isfinite(x)]
                plain = e["plain"]
                rows.append(
                    [
                        _esc(e["label"]),
                        _esc(f"{fmt_num(est.eta[0])} .. {fmt_num(est.eta[-1])}"),
                        _esc(
                            f"{fmt_num(max(p, default=0.0))} .. "
                            f"{fmt_num(min(p, default=0.0))}"
                        ),
                        f"{100 * max(err, default=math.nan):.0f}%",
                        _esc(
                            f"{fmt_num(_nan(e['tail']['c_star']))} (eta = "
                            f"{fmt_num(_nan(e['tail']['binding_eta']))})"
                        ),
                        "-"
                        if plain is None
                        else _esc(
                            f"{fmt_num(_nan(plain['c_star']))} ({plain['trials']} "
                            f"trials, eta = {fmt_num(_nan(plain['binding_eta']))})"
                        ),
                    ]
                )
            lines.append(
                _table(
                    [
                        "configuration",
                        "eta",
                        "P",
                        "largest relative error",
                        "c* from the tail",
                        "plain Monte Carlo c*",
                    ],
                    rows,
                )
            )
        stem = figure_stem(statement)
        lines.append(f"Figure: [{stem}](#fig-{stem.replace('_', '-')})\n")
    return "\n".join(lines)


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)
