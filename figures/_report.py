"""The verification report of a results directory: figures, report.md, report.html.

:func:`write_report` reads what ``python -m montecarlo.run`` stored in ``OUT``
(through :func:`montecarlo.load_run`), draws every applicable figure into
``OUT/figures/`` (PNG and PDF), takes every claim with its verdict from the
inference layer (:func:`montecarlo.claims.collect`: no test is computed
here), and writes the report once, as CommonMark with tables,
``OUT/report.md``; ``OUT/report.html`` is that text rendered by markdown-it-py
with every image embedded (self-contained). Nothing is recomputed; the same
directory always gives the same report.

Layout: a one-screen summary first (statements down, claim kinds across,
each cell the verdicts in colour with the reason of the most severe one and a
link to its rows), then the claims by kind and statement, the figures, the
configuration, the per-configuration summary and the methods.
"""

from __future__ import annotations

import base64
import html
import importlib
import math
import pathlib
import re
from collections.abc import Callable, Sequence

from figures._ensembles import (
    orthogonal_gaussian_pair,
    plot_confusion_vs_architecture,
    plot_cosine_kde,
    plot_orthogonal_vs_gaussian,
)
from figures._style import STATEMENT_TITLES, FigureRecord, fmt_num, statement_of
from figures._tails import tail_section
from figures._theorems import plot_c_star, plot_theorem, theorem_figure_name
from figures._worst_case import worst_case_section
from montecarlo._results import GroupTrials, StoredRun, load_run
from montecarlo.claims import (
    FAMILY,
    KIND_TITLES,
    VERDICTS,
    Claim,
    Kind,
    collect,
    statement_order,
    statement_title,
)
from montecarlo.claims._monte_carlo import (
    BOOTSTRAP,
    COLLAPSE_FACTOR,
    EQUIVALENCE_MARGIN,
    LIMIT_FACTOR,
    MIN_TRIALS,
    TAIL_LEVEL,
)

__all__ = ["EXPERIMENT_PLOTS", "make_figures", "write_report", "render_html"]

EXPERIMENT_PLOTS: dict[str, tuple[str, str]] = {
    "sgd_check": ("figures._sgd", "plot_sgd_check"),
    "figure1": ("figures._sgd", "plot_figure1"),
    "real_data": ("figures._real_data", "plot_real_data"),
    "real_data_cnn": ("figures._real_data", "plot_real_data_cnn"),
    "lemma_b1": ("figures._lemma_minibatch", "plot_lemma_b1"),
    "minibatch": ("figures._lemma_minibatch", "plot_minibatch"),
    "adversarial": ("figures._worst_case", "plot_adversarial"),
    "tail": ("figures._tails", "plot_tail"),
}
"""Experiment name -> (module, function) drawing its figures from its JSON dict.

Each function is called as ``f(result, out_dir) -> list[Path]``; a module that
cannot be imported is skipped with a line in the report.
"""

_COLORS = {
    "consistent": "#1a7f37",
    "violated": "#cf222e",
    "inconclusive": "#9a6700",
    "ensemble-dependent": "#8250df",
}
_SEVERITY = {"violated": 0, "ensemble-dependent": 1, "inconclusive": 2, "consistent": 3}
_KIND_SHORT = {
    Kind.INEQUALITY: "inequality",
    Kind.PROSE: "prose",
    Kind.OBSERVATION: "observation",
    Kind.USER_CONSTANT: "user constant",
}


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
        if name in EXPERIMENT_PLOTS:
            recs, skipped = _experiment_records(name, result, fig_dir)
            records += recs
            notes += skipped
    for name in run.missing_experiments:
        notes.append(
            f"{name}: listed in the spec but {name}.json is not in the directory"
        )
    return records, notes


# --- markdown helpers ------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


_MARKUP = re.compile(r"([\\`*_\[\]|])")


def _esc(text: str) -> str:
    """Plain text made CommonMark-literal: markup characters backslash-escaped,
    ``<``/``>``/``&`` as entities, line breaks as spaces (safe in table cells)."""
    text = html.escape(str(text), quote=False).replace("\n", " ")
    return _MARKUP.sub(r"\\\1", text)


def _verdict(v: str) -> str:
    return f'<span class="v-{v}">{v}</span>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class _Figures:
    """Maps a claim's figure token to a drawn figure stem."""

    def __init__(self, run: StoredRun, drawn: set[str]) -> None:
        pair = orthogonal_gaussian_pair(run) if run.spec is not None else None
        self.pair = {pair[0].name, pair[1].name} if pair else set()
        self.drawn = drawn

    def stem(self, token: str | None) -> str | None:
        if token is None:
            return None
        kind, _, rest = token.partition(":")
        if kind == "trend":
            if rest in self.pair and "theorem_6_1_vs_gaussian" in self.drawn:
                stem = "theorem_6_1_vs_gaussian"
            else:
                stem = "confusion_vs_architecture"
        elif kind == "c_star":
            stem = "c_star_sweep"
        elif kind == "bound":
            stem = theorem_figure_name(rest)
        else:
            stem = token
        return stem if stem in self.drawn else None

    def link(self, token: str | None) -> str:
        stem = self.stem(token)
        return f"[{stem}](#fig-{_slug(stem)})" if stem else "—"


# --- sections --------------------------------------------------------------


def _anchor(statement: str, kind: Kind) -> str:
    return f"claims-{_slug(statement)}-{_slug(kind.value)}"


def _cell(claims: Sequence[Claim], statement: str, kind: Kind) -> str:
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    parts = [f"{_verdict(v)} {n}" for v, n in counts.items() if n]
    worst = min(claims, key=lambda c: _SEVERITY[c.verdict])
    why = ""
    if worst.verdict in ("violated", "ensemble-dependent"):
        why = f"<br>{_esc(_cut(worst.claim, 70))}"
    link = f"[rows](#{_anchor(statement, kind)})"
    return " ".join(parts) + why + f" {link}"


def _summary_section(claims: Sequence[Claim]) -> str:
    statements = [s for s in statement_order() if any(c.statement == s for c in claims)]
    statements += sorted({c.statement for c in claims} - set(statements))
    kinds = [k for k in Kind if any(c.kind is k for c in claims)]
    rows = []
    for s in statements:
        row = [_esc(statement_title(s))]
        for k in kinds:
            sel = [c for c in claims if c.statement == s and c.kind is k]
            row.append(_cell(sel, s, k) if sel else "")
        rows.append(row)
    violated = [c for c in claims if c.counts_as_verdict and c.verdict == "violated"]
    lines = [
        "## Summary\n",
        f"{len(claims)} claims. Only a claim about a theorem's *inequality* can "
        "call a theorem violated; prose claims test the paper's qualitative "
        "statements in the direction it states; observations and checks at a "
        "user-given constant are reported, not counted against the paper. "
        f"Multiplicity: {FAMILY}.\n",
        _table(["statement", *[_KIND_SHORT[k] for k in kinds]], rows),
    ]
    if violated:
        lines.append("Violated claims about the paper:\n")
        lines += [
            f"- **{_esc(statement_title(c.statement))}**: {_esc(c.claim)}. "
            f"{_esc(c.reason)}"
            for c in violated
        ]
        lines.append("")
    return "\n".join(lines)


def _claims_section(claims: Sequence[Claim], figs: _Figures) -> str:
    out = ["## Claims\n"]
    number = {id(c): i for i, c in enumerate(claims, 1)}
    for kind in Kind:
        sel = [c for c in claims if c.kind is kind]
        if not sel:
            continue
        out.append(f"### {KIND_TITLES[kind]}\n")
        for st in dict.fromkeys(c.statement for c in sel):
            rows_c = [c for c in sel if c.statement == st]
            title = _esc(statement_title(st))
            out.append(f'<a id="{_anchor(st, kind)}"></a>\n\n#### {title}\n')
            rows = []
            for c in rows_c:
                rows.append(
                    [
                        f"[{number[id(c)]}](#claim-{number[id(c)]})",
                        _esc(c.claim),
                        _esc(c.ensemble or "—"),
                        _verdict(c.verdict),
                        _esc(_cut(c.reason, 160)),
                        _esc(c.p_values),
                        figs.link(c.figure),
                    ]
                )
            out.append(
                _table(
                    [
                        "#",
                        "claim",
                        "ensemble",
                        "verdict",
                        "reason",
                        "p (raw, adjusted)",
                        "figure",
                    ],
                    rows,
                )
            )
    out.append("### Claim details\n")
    for c in claims:
        i = number[id(c)]
        out.append(
            f'<a id="claim-{i}"></a>\n\n**{i}. {_esc(c.claim)}** '
            f"({_KIND_SHORT[c.kind]}, {_esc(statement_title(c.statement))}; "
            f"source: {_esc(c.source)}; "
            f"{'pre-specified' if c.prespecified else 'added after seeing data'})\n"
        )
        out.append(
            _table(
                ["", ""],
                [
                    ["test", _esc(c.test)],
                    ["statistic", _esc(c.statistic)],
                    ["p-values (raw, adjusted)", _esc(c.p_values)],
                    ["verdict", f"{_verdict(c.verdict)}: {_esc(c.reason)}"],
                    *(
                        [
                            [
                                f"ensemble {_esc(p.ensemble or '')}",
                                f"{_verdict(p.verdict)}: {_esc(p.reason)}",
                            ]
                            for p in c.parts
                        ]
                    ),
                ],
            )
        )
    return "\n".join(out)


_FIXED_KEYS = ("n", "d", "depth", "width", "kappa", "scale", "r", "data", "labels")


def _value(v: object) -> str:
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
    if c.weights not in ("small", "ball", "uniform_spectrum"):
        keys = [k for k in keys if k != "scale"]
    if c.weights != "ball":
        keys = [k for k in keys if k != "r"]
    parts = [f"{k}={_value(getattr(c, k))}" for k in keys]
    if c.weights == "ball" and "centre" not in group.axes:
        parts.append(f"centre={c.centre}")
    if c.weights == "orthogonal_linear" and "layers" not in group.axes:
        parts.append(f"layers={c.layers}")
    if c.fixed_data:
        parts.append("fixed data")
    if not c.output_activation:
        parts.append("linear output")
    return ", ".join(parts)


def _config_section(run: StoredRun) -> str:
    out = ["## Configuration\n"]
    spec = run.spec
    if spec is None:
        out.append("No Monte Carlo store in this directory: experiments only.\n")
    else:
        grid = spec.eta
        out.append(
            f"Spec `{spec.name}`: {_esc(spec.title)}. Seed {run.seed}. Confusion "
            f"grid: {grid.num} values of eta from {fmt_num(grid.start)} to "
            f"{fmt_num(grid.stop)} (geometric).\n"
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
                    f"`{g.name}`",
                    _esc(statement_title(st) if st not in (None, "mixed") else str(st)),
                    _esc(f"{c0.weights}, {c0.activation}, {c0.loss} loss"),
                    _esc(axes),
                    _esc(_fixed(g)),
                    str(len(g.configs)),
                    f"{finite} / {total - finite}",
                ]
            )
        out.append(
            _table(
                [
                    "group",
                    "statement",
                    "ensemble",
                    "swept axes",
                    "fixed",
                    "configs",
                    "trials (finite / non-finite)",
                ],
                rows,
            )
        )
    if run.groups:
        covered: dict[str, set[str]] = {}
        for g in run.groups:
            for c in g.configs:
                st = statement_of(c)
                key = statement_title(st) if st else "contrast (no bound)"
                covered.setdefault(key, set()).add(f"{c.activation} / {c.loss}")
        out.append(
            "Activations and losses covered (activation / loss), per statement:\n"
        )
        out.append(
            _table(
                ["statement", "combinations"],
                [[_esc(k), _esc(", ".join(sorted(v)))] for k, v in covered.items()],
            )
        )
    exps = sorted(set(spec.experiments if spec else ()) | set(run.experiments))
    for e in exps:
        state = "loaded" if e in run.experiments else "missing"
        out.append(f"- experiment `{e}`: `{e}.json` {state}")
    return "\n".join(out) + "\n"


def _details_section(run: StoredRun, confidence: float) -> str:
    if not run.summaries:
        return ""
    pct = f"{100 * confidence:g}%"
    rows = []
    for s in run.summaries:
        st = statement_of(s.config)
        rows.append(
            [
                f"`{s.group}`",
                _esc(s.label),
                _esc(statement_title(st) if st else "none"),
                str(s.trials),
                str(s.nonfinite),
                fmt_num(s.median_eta),
                fmt_num(s.eta_ref),
                f"{s.p_ref:.3f} [{s.ci_ref[0]:.3f}, {s.ci_ref[1]:.3f}]"
                if not math.isnan(s.p_ref)
                else "n/a",
                fmt_num(s.c_star),
                fmt_num(s.binding_eta),
            ]
        )
    return (
        "## Per-configuration summary\n\n"
        "eta_ref is the group's median confusion; P(eta_ref) the fraction of trials "
        f"with confusion <= eta_ref, with its {pct} Clopper-Pearson interval; c* the "
        "largest constant whose failure bound stays above the one-sided upper "
        "limit of the failure probability at every eta of the informative grid, "
        "binding at eta_bind.\n\n"
        + _table(
            [
                "group",
                "configuration",
                "statement",
                "trials",
                "non-finite",
                "median confusion",
                "eta_ref",
                f"P(eta_ref) [{pct} CI]",
                "c*",
                "eta_bind",
            ],
            rows,
        )
    )


def _methods_section(confidence: float, c: float) -> str:
    alpha = 1 - confidence
    items = [
        "Confusion of a trial: max(0, -min_{i!=j} <grad f_i, grad f_j>) "
        "(Definition 2.1); normalized: the same with cosines; averaged: with the "
        "mean over pairs (Section 8). Non-finite trials are counted and excluded.",
        f"Verdicts (montecarlo.claims): every test at alpha = {alpha:.3g} after "
        f"adjustment; {FAMILY}. A claim is violated when a test contradicting it "
        "rejects, consistent when a test supporting it rejects, else its default "
        f"(usually inconclusive). Fewer than {MIN_TRIALS} finite trials in the "
        "smallest sample: inconclusive.",
        "Inequality (one constant for every configuration): at the tail level "
        f"q = {TAIL_LEVEL:g}, c_q = (2 log N + B - log q) / K(eta_q) bounds every "
        "admissible constant; log c_q is fitted linearly in log(axis), with the "
        f"slope's standard error from {BOOTSTRAP} bootstrap replicates; violated "
        f"when c_q falls significantly faster than {COLLAPSE_FACTOR:g}x over the "
        "sweep, so that under the fitted power law every admissible constant "
        "tends to 0 along the axis.",
        "Prose: one-sided Spearman tests in the stated direction and against it; "
        "'independent of' as an equivalence (two one-sided Mann-Whitney tests of "
        f"|shift| < {EQUIVALENCE_MARGIN:g} x the reference median); along axes "
        "where the bound tends to 1, whether the failure probability at the "
        f"reference level falls at least {LIMIT_FACTOR:g}x (Wald test of the log "
        "ratio), not only whether it moves the right way.",
        "Class statements (Theorems 5.1, 6.1, Corollary 5.1): one verdict per "
        "admissible ensemble; the aggregate is ensemble-dependent when they "
        "disagree.",
        f"User-given constant c = {fmt_num(c)}: exact one-sided binomial tests of "
        "the bound at every configuration and non-vacuous eta, Bonferroni; the "
        "paper fixes no constant, so these rows are never verdicts on a theorem.",
    ]
    return "## Methods\n\n" + "\n".join(f"- {_esc(i)}" for i in items) + "\n"


def _figures_section(records: Sequence[FigureRecord]) -> str:
    out = ["## Figures\n"]
    for rec in records:
        png = next(p for p in rec.paths if p.suffix == ".png")
        others = " ".join(
            f"[{p.suffix[1:].upper()}](figures/{p.name})"
            for p in rec.paths
            if p.suffix != ".png"
        )
        out.append(
            f'<a id="fig-{_slug(rec.name)}"></a>\n\n### {_esc(rec.title)}\n\n'
            f"![{_esc(rec.title)}](figures/{png.name})\n\n{_esc(rec.caption)} "
            f"{others}\n"
        )
    return "\n".join(out)


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1500px;margin:2em auto;"
    "padding:0 1em;line-height:1.45;color:#1f2328}"
    "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}"
    "th,td{border:1px solid #d0d7de;padding:4px 6px;vertical-align:top;"
    "text-align:left}th{background:#f6f8fa}"
    "img{max-width:100%;border:1px solid #d0d7de}"
    "code{background:#f6f8fa;padding:0 3px;border-radius:3px}"
    + "".join(f".v-{v}{{color:{c};font-weight:600}}" for v, c in _COLORS.items())
)


def render_html(markdown: str, base: pathlib.Path, title: str) -> str:
    """``markdown`` as a self-contained HTML page (CommonMark + tables).

    Rendered by markdown-it-py; every image whose file exists under ``base``
    is embedded as a base64 data URI.
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    tokens = md.parse(markdown)
    for tok in tokens:
        for child in tok.children or ():
            if child.type == "image":
                src = str(child.attrGet("src") or "")
                path = base / src
                if src and path.is_file():
                    data = base64.b64encode(path.read_bytes()).decode("ascii")
                    child.attrSet("src", f"data:image/png;base64,{data}")
    body = md.renderer.render(tokens, md.options, {})
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}</body></html>\n"
    )


def write_report(
    out_dir: str | pathlib.Path, *, confidence: float = 0.95, c: float = 1.0
) -> pathlib.Path:
    """Draw every figure and write ``report.md`` / ``report.html`` of a results dir.

    Args:
        out_dir: A results directory of ``python -m montecarlo.run``.
        confidence: ``1 - alpha`` of every test (family-wise) and the level of
            ``c*`` and of the bands. Defaults to ``0.95``.
        c: User-given constant for the bound curves and the user-constant
            claims. Defaults to ``1.0``.

    Returns:
        Path of ``report.md``.

    Raises:
        ValueError: If ``out_dir`` is not a directory, ``confidence`` is not in
            ``(0, 1)`` or ``c`` is not a finite number ``> 0``.
    """
    out = _check_args(out_dir, confidence, c)
    run = load_run(out, confidence=confidence)
    records, notes = make_figures(run, out / "figures", c=c, confidence=confidence)
    figs = _Figures(run, {r.name for r in records})
    claims = collect(run, c=c, confidence=confidence)
    title = (
        f"Gradient confusion verification report: {run.spec.title}"
        if run.spec is not None
        else "Gradient confusion verification report"
    )
    parts = [
        f"# {_esc(title)}\n",
        "Generated from the stored results of this directory, nothing recomputed "
        f"(regenerate with `python -m figures {out}`); confidence {confidence:g}, "
        f"user-given constant c = {fmt_num(c)}.\n",
        _summary_section(claims),
        _claims_section(claims, figs),
        worst_case_section(run.experiments["adversarial"])
        if "adversarial" in run.experiments
        else "",
        tail_section(run.experiments["tail"]) if "tail" in run.experiments else "",
        _figures_section(records),
        _config_section(run),
        _details_section(run, confidence),
        _methods_section(confidence, c),
    ]
    if notes:
        parts.append("## Not drawn\n\n" + "\n".join(f"- {_esc(n)}" for n in notes))
    text = "\n".join(p for p in parts if p) + "\n"
    md_path = out / "report.md"
    md_path.write_text(text)
    (out / "report.html").write_text(render_html(text, out, title))
    return md_path
