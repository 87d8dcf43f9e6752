"""The verification report of a results directory: figures, report.md, report.html.

:func:`write_report` reads what ``python -m montecarlo.run`` stored in ``OUT``
(``results.sqlite`` and the experiments' JSON files), draws every applicable
figure into ``OUT/figures/`` (PNG and PDF), tests every claim the spec
supports (:mod:`figures._claims`) and writes ``OUT/report.md`` and a
self-contained ``OUT/report.html`` (images embedded as base64). Nothing is
recomputed; the same directory always gives the same report.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import importlib
import math
import pathlib
from collections.abc import Callable, Sequence

from figures._claims import (
    COLLAPSE_FACTOR,
    MIN_CONFIGS,
    MIN_TRIALS,
    RELEVANT_SHIFT,
    Claim,
    experiment_claims,
    monte_carlo_claims,
    summarize,
)
from figures._ensembles import (
    orthogonal_gaussian_pair,
    plot_confusion_vs_architecture,
    plot_cosine_kde,
    plot_orthogonal_vs_gaussian,
)
from figures._run import GroupTrials, StoredRun, load_run
from figures._style import STATEMENT_TITLES, FigureRecord, fmt_num, statement_of
from figures._theorems import plot_c_star, plot_theorem, theorem_figure_name

__all__ = ["EXPERIMENT_PLOTS", "make_figures", "write_report"]

EXPERIMENT_PLOTS: dict[str, tuple[str, str]] = {
    "sgd_check": ("figures._sgd", "plot_sgd_check"),
    "figure1": ("figures._sgd", "plot_figure1"),
    "real_data": ("figures._real_data", "plot_real_data"),
}
"""Experiment name -> (module, function) drawing its figures from its JSON dict.

Each function is called as ``f(result, out_dir) -> list[Path]``; a module that
cannot be imported is skipped with a line in the report.
"""


def _check_args(out_dir: object, confidence: float, c: float) -> pathlib.Path:
    out = pathlib.Path(out_dir)
    if not out.is_dir():
        raise ValueError(
            f"out_dir must be an existing results directory, got {str(out)!r}"
        )
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not (0.0 < confidence < 1.0)
    ):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    if (
        isinstance(c, bool)
        or not isinstance(c, int | float)
        or not (math.isfinite(c) and c > 0)
    ):
        raise ValueError(f"c must be a finite number > 0, got {c!r}")
    return out


def _experiment_records(
    name: str, result: dict, fig_dir: pathlib.Path
) -> tuple[list[FigureRecord], list[str]]:
    module_name, func_name = EXPERIMENT_PLOTS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return [], [f"{name}: plots skipped, {module_name} is not available ({exc})"]
    func: Callable = getattr(module, func_name)
    paths = [pathlib.Path(p) for p in func(result, fig_dir)]
    stems: dict[str, list[pathlib.Path]] = {}
    for p in paths:
        stems.setdefault(p.stem, []).append(p)
    records = []
    for stem, ps in stems.items():
        ps.sort(key=lambda p: p.suffix != ".png")
        records.append(
            FigureRecord(
                stem,
                f"{name}: {stem.replace('_', ' ')}",
                f"Drawn by {module_name}.{func_name} from {name}.json (see the claims "
                "that link here).",
                tuple(ps),
            )
        )
    return records, []


def make_figures(
    run: StoredRun, fig_dir: pathlib.Path, *, c: float = 1.0, confidence: float = 0.95
) -> tuple[list[FigureRecord], list[str]]:
    """Draw every figure the stored run supports.

    Args:
        run: The stored run.
        fig_dir: Target directory (created if missing).
        c: User-given constant for the bound curves. Defaults to ``1.0``.
        confidence: Level of bands and intervals. Defaults to ``0.95``.

    Returns:
        ``(records, notes)``: the written figures in report order, and one
        line per figure not drawn and why.
    """
    records: list[FigureRecord] = []
    notes: list[str] = []

    def add(rec: FigureRecord | None, what: str) -> None:
        if rec is None:
            notes.append(f"{what}: not drawn (the spec has nothing to show)")
        else:
            records.append(rec)

    if run.spec is None:
        notes.append(
            "Monte Carlo figures: not drawn (no results.sqlite in the directory)"
        )
    else:
        for st in run.statements():
            add(
                plot_theorem(run, st, fig_dir, c=c, confidence=confidence),
                STATEMENT_TITLES[st],
            )
        add(plot_c_star(run, fig_dir, c=c), "c* across the sweeps")
        add(
            plot_confusion_vs_architecture(run, fig_dir, confidence=confidence),
            "confusion vs. architecture (no group sweeps depth, width, d, r or N)",
        )
        for axis in ("depth", "width"):
            add(
                plot_cosine_kde(run, axis, fig_dir),
                f"cosine densities per {axis} (no group sweeps {axis})",
            )
        add(
            plot_orthogonal_vs_gaussian(run, fig_dir),
            "Theorem 6.1 vs. Gaussian (needs a Theorem 6.1 group and a Gaussian linear "
            "group sweeping the same depths)",
        )
    for name, result in run.experiments.items():
        recs, skipped = _experiment_records(name, result, fig_dir)
        records += recs
        notes += skipped
    for name in run.missing_experiments:
        notes.append(
            f"{name}: listed in the spec but {name}.json is not in the directory"
        )
    return records, notes


# --- a small document model rendered to Markdown and HTML -----------------


@dataclasses.dataclass(frozen=True)
class _Link:
    text: str
    figure: str  # figure stem


@dataclasses.dataclass(frozen=True)
class _Verdict:
    value: str


_Cell = str | _Link | _Verdict


def _md_cell(cell: _Cell) -> str:
    if isinstance(cell, _Link):
        return f"[{cell.text}](figures/{cell.figure}.png)"
    if isinstance(cell, _Verdict):
        return f"**{cell.value}**"
    return cell.replace("|", "\\|").replace("\n", " ")


_COLORS = {"consistent": "#1a7f37", "violated": "#cf222e", "inconclusive": "#9a6700"}


def _html_cell(cell: _Cell) -> str:
    if isinstance(cell, _Link):
        return f'<a href="#fig-{html.escape(cell.figure)}">{html.escape(cell.text)}</a>'
    if isinstance(cell, _Verdict):
        color = _COLORS.get(cell.value, "#000")
        return f'<b style="color:{color}">{html.escape(cell.value)}</b>'
    return html.escape(cell)


class _Doc:
    """Blocks rendered to both formats side by side."""

    def __init__(self) -> None:
        self.md: list[str] = []
        self.html: list[str] = []

    def heading(self, level: int, text: str) -> None:
        self.md.append(f"{'#' * level} {text}\n")
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(self, *cells: _Cell) -> None:
        self.md.append("".join(_md_cell(c) for c in cells) + "\n")
        self.html.append("<p>" + "".join(_html_cell(c) for c in cells) + "</p>")

    def bullets(self, items: Sequence[str]) -> None:
        self.md.append("\n".join(f"- {i}" for i in items) + "\n")
        self.html.append(
            "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"
        )

    def table(self, header: Sequence[str], rows: Sequence[Sequence[_Cell]]) -> None:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
        ]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        self.md.append("\n".join(lines) + "\n")
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>"
            for row in rows
        )
        self.html.append(
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    def figure(self, rec: FigureRecord) -> None:
        png = next(p for p in rec.paths if p.suffix == ".png")
        others = [p for p in rec.paths if p.suffix != ".png"]
        links = " ".join(f"[{p.suffix[1:].upper()}](figures/{p.name})" for p in others)
        self.md.append(
            f'<a id="fig-{rec.name}"></a>\n\n### {rec.title}\n\n'
            f"![{rec.title}](figures/{png.name})\n\n{rec.caption} {links}\n"
        )
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        self.html.append(
            f'<figure id="fig-{html.escape(rec.name)}">'
            f"<h3>{html.escape(rec.title)}</h3>"
            f'<img alt="{html.escape(rec.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(rec.caption)} (file: figures/"
            f"{html.escape(png.name)})</figcaption></figure>"
        )

    def render_html(self, title: str) -> str:
        style = (
            "body{font-family:system-ui,sans-serif;max-width:1500px;margin:2em auto;"
            "padding:0 1em;line-height:1.45;color:#1f2328}"
            "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}"
            "th,td{border:1px solid #d0d7de;padding:4px 6px;vertical-align:top;"
            "text-align:left}th{background:#f6f8fa}"
            "img{max-width:100%;border:1px solid #d0d7de}"
            "figure{margin:2em 0}figcaption{font-size:0.9em;color:#57606a}"
        )
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{style}</style></head><body>\n"
            + "\n".join(self.html)
            + "\n</body></html>\n"
        )


# --- report sections -------------------------------------------------------

_FIXED_KEYS = ("n", "d", "depth", "width", "kappa", "scale", "r", "data", "labels")


def _value(v: object) -> str:
    """A configuration value as text (numbers compact, strings and flags as is)."""
    if isinstance(v, bool | str):
        return str(v)
    return fmt_num(v)


def _fixed(group: GroupTrials) -> str:
    c = group.configs[0]
    keys = [k for k in _FIXED_KEYS if k not in group.axes]
    if c.weights == "orthogonal_linear":
        keys = [k for k in keys if k not in ("width", "kappa", "scale")]
    if c.weights != "gaussian":
        keys = [k for k in keys if k != "kappa"]
    if c.weights not in ("small", "ball"):
        keys = [k for k in keys if k != "scale"]
    if c.weights != "ball":
        keys = [k for k in keys if k != "r"]
    parts = [f"{k}={_value(getattr(c, k))}" for k in keys]
    if c.fixed_data:
        parts.append("fixed data")
    if not c.output_activation:
        parts.append("linear output")
    return ", ".join(parts)


def _config_section(doc: _Doc, run: StoredRun) -> None:
    doc.heading(2, "Configuration")
    spec = run.spec
    if spec is None:
        doc.para(
            "No Monte Carlo store (results.sqlite) in this directory: experiments only."
        )
    else:
        grid = spec.eta
        doc.para(
            f"Spec {spec.name!r}: {spec.title}. Seed {run.seed}. Confusion grid: "
            f"{grid.num} values of eta from {fmt_num(grid.start)} to "
            f"{fmt_num(grid.stop)} (geometric)."
        )
        rows = []
        for g in run.groups:
            c0 = g.configs[0]
            st = statement_of(c0) if g.uniform else "mixed"
            axes = (
                "; ".join(
                    f"{a} = {', '.join(_value(v) for v in g.axis_values(a))}"
                    for a in g.axes
                )
                or "none"
            )
            finite = sum(int((f.finite == 1.0).sum()) for f in g.frames)
            total = sum(len(f) for f in g.frames)
            rows.append(
                [
                    g.name,
                    STATEMENT_TITLES.get(st, st).split(" (")[0]
                    if st != "mixed"
                    else "mixed",
                    f"{c0.weights}, {c0.activation}, {c0.loss} loss",
                    axes,
                    _fixed(g),
                    str(len(g.configs)),
                    f"{finite} / {total - finite}",
                ]
            )
        doc.table(
            [
                "group",
                "theorem",
                "ensemble",
                "swept axes",
                "fixed",
                "configs",
                "trials (finite / non-finite)",
            ],
            rows,
        )
        missing = [n for n in spec.groups if n not in {g.name for g in run.groups}]
        if missing:
            doc.para(f"Groups of the spec without stored trials: {', '.join(missing)}.")
    listed = set(spec.experiments) if spec is not None else set()
    exps = sorted(listed | set(run.experiments))
    if exps:
        doc.bullets(
            [
                f"experiment {e}: "
                + (
                    "results loaded from " + f"{e}.json"
                    if e in run.experiments
                    else f"{e}.json missing"
                )
                for e in exps
            ]
        )


def _claims_section(doc: _Doc, claims: Sequence[Claim], drawn: set[str]) -> None:
    doc.heading(2, "Claims")
    counts = summarize(claims)
    doc.para(
        f"{len(claims)} claims: {counts['consistent']} consistent, "
        f"{counts['violated']} violated, {counts['inconclusive']} inconclusive. Each "
        "row names its test; the verdict rules are under Methods."
    )
    violated = [(i, cl) for i, cl in enumerate(claims, 1) if cl.verdict == "violated"]
    if violated:
        doc.para("Violated claims (details in the table):")
        doc.bullets([f"#{i} {cl.claim}: {cl.reason}" for i, cl in violated])
    rows = []
    for i, cl in enumerate(claims, 1):
        if cl.figure is None:
            fig: _Cell = "—"
        elif cl.figure in drawn:
            fig = _Link(cl.figure, cl.figure)
        else:
            fig = f"{cl.figure} (not drawn)"
        rows.append(
            [
                str(i),
                cl.claim,
                cl.source,
                cl.test,
                cl.statistic,
                cl.ci_or_p,
                _Verdict(cl.verdict),
                cl.reason,
                fig,
            ]
        )
    doc.table(
        [
            "#",
            "claim",
            "source",
            "test",
            "statistic",
            "p-value or CI",
            "verdict",
            "reason",
            "figure",
        ],
        rows,
    )


def _details_section(doc: _Doc, run: StoredRun, confidence: float) -> None:
    if not run.summaries:
        return
    doc.heading(2, "Per-configuration summary")
    pct = f"{100 * confidence:g}%"
    doc.para(
        "eta_ref is the group's median confusion; P(eta_ref) is the fraction of "
        f"trials with confusion <= eta_ref, with its {pct} Clopper-Pearson interval; "
        "c* is the implied constant, binding at eta_bind, where the bound at c* "
        "equals the one-sided upper limit of the failure probability."
    )
    rows = []
    for s in run.summaries:
        st = statement_of(s.config)
        rows.append(
            [
                s.group,
                s.label,
                STATEMENT_TITLES[st].split(" (")[0] if st else "none",
                str(s.trials),
                str(s.nonfinite),
                fmt_num(s.median_eta),
                fmt_num(s.eta_ref),
                f"{s.p_ref:.3f} [{s.ci_ref[0]:.3f}, {s.ci_ref[1]:.3f}]"
                if not math.isnan(s.p_ref)
                else "n/a",
                fmt_num(s.c_star),
                fmt_num(s.binding_eta),
                fmt_num(s.bound_at_c_star),
            ]
        )
    doc.table(
        [
            "group",
            "config",
            "theorem",
            "trials",
            "non-finite",
            "median eta",
            "eta_ref",
            f"P(eta_ref) [{pct} CI]",
            "c*",
            "eta_bind",
            "bound at c*",
        ],
        rows,
    )
    notes = sorted({s.note for s in run.summaries if s.note})
    if notes:
        doc.bullets(notes)


def _methods_section(doc: _Doc, confidence: float, c: float) -> None:
    alpha = 1 - confidence
    doc.heading(2, "Methods")
    doc.bullets(
        [
            "Confusion of a trial: eta = max(0, -min_{i!=j} <grad f_i, grad f_j>) "
            "(Definition 2.1); normalized confusion: max(0, -min_{i!=j} cos(grad f_i, "
            "grad f_j)) (Section 8). Non-finite trials are counted and excluded.",
            "Verdicts: a trend claim is consistent when its test is significant at "
            f"alpha = {alpha:.3g} in the predicted direction, violated when "
            "significant the other way, inconclusive otherwise. A null claim (no "
            "effect, bound holds) is violated when rejected, consistent when not "
            "rejected and the sample had the power to see a relevant departure, "
            f"inconclusive otherwise. Any test with fewer than {MIN_TRIALS} finite "
            "trials in its smallest sample is inconclusive.",
            "Trend tests: Spearman rank correlation between the swept axis and the "
            "per-trial statistic over all trials of the group (pooled over other "
            "axes), two-sided.",
            "Independence tests: Kruskal-Wallis across the axis values; power from "
            "the Hodges-Lehmann 95% interval of the shift between the largest and "
            "the smallest axis value, which must lie within "
            f"+-{100 * RELEVANT_SHIFT:.0f}% of the median.",
            "c* bounded away from 0: c* per configuration from "
            "montecarlo.theorem_summary (one-sided Clopper-Pearson upper limit of "
            "the failure probability). Under a theorem, P(K(eta) > z) <= N^2 exp(-c "
            "z) with one c for all configurations, where K(eta) = k eta^2 is the "
            "bound's exponent; so c* falling along an axis shows as the per-trial "
            "log K(eta) rising. Violated when that Spearman trend is significant, "
            f"rising, and c* falls >= {COLLAPSE_FACTOR:g}x from the smallest to the "
            f"largest axis value; inconclusive with fewer than {MIN_CONFIGS} "
            "configurations.",
            "Bound at a constant: at every configuration and every eta of the spec's "
            "grid where the bound is not vacuous, the exact one-sided binomial test "
            "of H0: P(failure) <= bound's failure probability, Bonferroni over all "
            "such tests. Rows at c*_min (the largest single constant consistent with "
            f"every configuration) and at the user-given c = {fmt_num(c)}. Theorem "
            "4.1 is evaluated with its beta exp(-c1 kappa^2 l^2) term dropped (c1 -> "
            "inf).",
            "Each row is tested on its own at the stated level; there is no "
            "multiplicity correction across rows.",
        ]
    )


def write_report(
    out_dir: str | pathlib.Path, *, confidence: float = 0.95, c: float = 1.0
) -> pathlib.Path:
    """Draw every figure and write ``report.md`` / ``report.html`` of a results dir.

    Args:
        out_dir: A results directory of ``python -m montecarlo.run`` (with
            ``results.sqlite`` and/or experiment JSON files).
        confidence: Level of every interval and test (``alpha = 1 -
            confidence``) and of ``c*``. Defaults to ``0.95``.
        c: User-given constant for the bound curves and the "bound holds at c"
            claims. Defaults to ``1.0``.

    Returns:
        Path of ``report.md``.

    Raises:
        ValueError: If ``out_dir`` is not a directory, ``confidence`` is not in
            ``(0, 1)`` or ``c`` is not a finite number ``> 0``.
    """
    out = _check_args(out_dir, confidence, c)
    run = load_run(out, confidence=confidence)
    fig_dir = out / "figures"
    records, notes = make_figures(run, fig_dir, c=c, confidence=confidence)
    drawn = {r.name for r in records}
    pair = orthogonal_gaussian_pair(run) if run.spec is not None else None
    pair_names = {pair[0].name, pair[1].name} if pair else set()

    def figure_for(kind: str, group: GroupTrials | None) -> str | None:
        if kind == "trend":
            if (
                group is not None
                and group.name in pair_names
                and ("theorem_6_1_vs_gaussian" in drawn)
            ):
                return "theorem_6_1_vs_gaussian"
            return "confusion_vs_architecture"
        if kind == "c_star":
            return "c_star_sweep"
        return theorem_figure_name(kind.removeprefix("bound:"))

    claims = monte_carlo_claims(run, figure_for, c=c, confidence=confidence)
    for name, result in run.experiments.items():
        claims += experiment_claims(name, result)

    doc = _Doc()
    title = (
        f"Gradient confusion verification report: {run.spec.title}"
        if run.spec is not None
        else "Gradient confusion verification report"
    )
    doc.heading(1, title)
    doc.para(
        "Generated from the stored results of this directory, nothing recomputed "
        f"(regenerate with `python -m figures {out}`); confidence {confidence:g}, "
        f"user-given constant c = {fmt_num(c)}. Figures are in figures/ as PNG and PDF."
    )
    _config_section(doc, run)
    _claims_section(doc, claims, drawn)
    doc.heading(2, "Figures")
    for rec in records:
        doc.figure(rec)
    _details_section(doc, run, confidence)
    _methods_section(doc, confidence, c)
    if notes:
        doc.heading(2, "Not drawn")
        doc.bullets(notes)
    md_path = out / "report.md"
    md_path.write_text("\n".join(doc.md))
    (out / "report.html").write_text(doc.render_html(title))
    return md_path
