"""SGD figures: Theorems 3.1/3.2 against Monte Carlo, and Figure 1 of the paper.

Reads only the dictionaries written by ``montecarlo.sgd.run_sgd_check``
(``sgd_check.json``) and ``montecarlo.sgd.run_figure1`` (``figure1.json``), as
loaded by ``json.load`` (``None`` stands for a non-finite value). Each figure
is saved as PNG (130 dpi) and PDF.

- ``sgd_check_<instance>``: left, ``E[F(w_T) - F*]`` (mean and simultaneous
  confidence band) with the Theorem 3.1 bound; right,
  ``min_{k <= T} E||grad F(w_k)||^2`` with the printed and derived Theorem 3.2
  bounds; log-log axes.
- ``sgd_printed_scan``: largest ratio (lower confidence limit / bound) over
  ``T`` for both forms of Theorem 3.2 against the input scale, one line per
  step fraction ``alpha / (2/(n L))``; above 1 means violated.
- ``figure1``, ``figure1_theorem_step``, ``figure1_noise_free``: training loss
  ``F(w_k)`` and suboptimality ``F(w_k) - F*`` for ``d = 120`` and ``d = 80``
  (mean over runs, band from the 10% to the 90% quantile, log y), and the
  histogram of the cosine similarities of all gradient pairs pooled along the
  path (solid) and at ``w_T`` (dashed).
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_figure1", "plot_sgd_check"]

_DPI = 130
_BOUND_STYLE = {
    "theorem_3_1": ("Theorem 3.1 bound", "tab:red", "-"),
    "theorem_3_2_printed": ("Theorem 3.2, printed", "tab:red", "--"),
    "theorem_3_2_derived": ("Theorem 3.2, derived", "tab:purple", "-."),
}
_D_COLORS = ("tab:blue", "tab:orange")


def _arr(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _positive(a: np.ndarray) -> np.ndarray:
    """Values ``> 0`` kept, others ``nan`` (for log axes)."""
    return np.where(a > 0, a, np.nan)


def _save(fig: Figure, out_dir: pathlib.Path, stem: str) -> list[pathlib.Path]:
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    # Constrained layout is solved once (it costs a full draw) and then frozen
    # for the two renderings.
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    fig.savefig(paths[0], dpi=_DPI)
    fig.savefig(paths[1])
    return paths


def _ci_band(ax: Axes, x: np.ndarray, ci: dict, color: str, label: str) -> None:
    mean = _positive(_arr(ci["mean"]))
    lower, upper = _arr(ci["lower"]), _arr(ci["upper"])
    # On a log axis a non-positive lower limit is drawn at the bottom of the
    # mean's range (the band then reaches the frame).
    floor = np.nanmin(mean) / 10 if np.any(np.isfinite(mean)) else 1e-300
    lower = np.where(lower > 0, lower, floor)
    ax.plot(x, mean, "o-", ms=2.5, lw=1.4, color=color, label=label)
    ax.fill_between(x, lower, _positive(upper), color=color, alpha=0.25, lw=0)


def _verdict_suffix(entry: dict, key: str) -> str:
    """``" [bound/mean >= 1.01]"``: how loose the bound is on this instance."""
    e = entry["evidence"].get(key)
    ratio = None if e is None else e["bound_over_mean"]
    return "" if ratio is None else f" [bound/mean ≥ {ratio:.3g}]"


def _instance_figure(entry: dict, out_dir: pathlib.Path) -> list[pathlib.Path]:
    info = entry["info"]
    T = np.array(entry["T"], dtype=np.float64)
    conf = f"{info['confidence']:.0%}"
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)

    _ci_band(
        ax1,
        T,
        entry["risk_gap"],
        "tab:blue",
        rf"Monte Carlo mean, {conf} simultaneous CI",
    )
    if "theorem_3_1" in entry["bounds"]:
        label, color, ls = _BOUND_STYLE["theorem_3_1"]
        ax1.plot(
            T,
            _positive(_arr(entry["bounds"]["theorem_3_1"])),
            ls=ls,
            color=color,
            lw=1.8,
            label=label + _verdict_suffix(entry, "theorem_3_1"),
        )
    else:
        reason = entry["skipped"].get("theorem_3_1", "")
        ax1.text(
            0.03,
            0.14,
            "Theorem 3.1 " + reason.replace(": ", ":\n"),
            transform=ax1.transAxes,
            ha="left",
            va="bottom",
            fontsize=8,
        )
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel(r"steps $T$")
    ax1.set_ylabel(r"$E[F(w_T) - F^*]$")
    ax1.set_title(
        "Theorem 3.1 (linear convergence)"
        if "theorem_3_1" in entry["bounds"]
        else "optimality gap (no Theorem 3.1 bound)"
    )
    ax1.legend(fontsize=8, loc="lower left")

    _ci_band(
        ax2,
        T,
        entry["grad_sq_min"],
        "tab:green",
        rf"Monte Carlo, {conf} simultaneous CI",
    )
    for key in ("theorem_3_2_printed", "theorem_3_2_derived"):
        if key in entry["bounds"]:
            label, color, ls = _BOUND_STYLE[key]
            ax2.plot(
                T,
                _positive(_arr(entry["bounds"][key])),
                ls=ls,
                color=color,
                lw=1.8,
                label=label + _verdict_suffix(entry, key),
            )
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel(r"steps $T$")
    ax2.set_ylabel(r"$\min_{k=1..T}\ E\|\nabla F(w_k)\|^2$")
    ax2.set_title("Theorem 3.2 (stationarity)")
    ax2.legend(fontsize=8, loc="lower left")
    fig.suptitle(
        f"{entry['name']}: {info['loss']} loss, n={info['n']}, d={info['d']}, "
        rf"$L$={info['L']:.3g}, $\mu$={info['mu']:.3g}, $\eta$={info['eta']:.3g}, "
        rf"$F^*$={info['F_star']:.3g}, $\alpha$={info['alpha']:.3g} "
        rf"(= {info['alpha'] / info['alpha_max']:.2g}$\cdot 2/(nL)$), "
        f"{info['runs']} runs",
        fontsize=9,
    )
    return _save(fig, out_dir, f"sgd_check_{entry['name']}")


def _scan_figure(scan: list[dict], out_dir: pathlib.Path) -> list[pathlib.Path]:
    groups: dict[tuple, list[dict]] = {}
    for row in scan:
        groups.setdefault((row["loss"], row["data"], row["n"], row["d"]), []).append(
            row
        )
    fig = Figure(figsize=(5.2 * len(groups), 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(groups)))
    for ax, ((loss, data, n, d), rows) in zip(axes, groups.items(), strict=True):
        fracs = sorted({r["alpha_fraction"] for r in rows})
        colors = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")
        for i, frac in enumerate(fracs):
            sel = sorted(
                (r for r in rows if r["alpha_fraction"] == frac),
                key=lambda r: r["scale"],
            )
            scales = [r["scale"] for r in sel]
            for form, ls, marker in (("printed", "-", "o"), ("derived", ":", "s")):
                ratio = _arr([r[form]["max_lower_over_bound"] for r in sel])
                ax.plot(
                    scales,
                    _positive(ratio),
                    ls=ls,
                    marker=marker,
                    color=colors[i % len(colors)],
                    label=rf"{form}, $\alpha$ = {frac:g}$\cdot 2/(nL)$",
                )
        ax.axhline(1.0, color="k", lw=1.0)
        ax.annotate(
            "violated above this line",
            xy=(0.02, 1.0),
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=8,
        )
        finite = [
            v
            for r in rows
            for v in (
                r["printed"]["max_lower_over_bound"],
                r["derived"]["max_lower_over_bound"],
            )
            if v is not None and v > 0
        ]
        if finite:
            ax.set_ylim(min(min(finite), 1.0) / 3, max(max(finite), 1.0) * 5)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(r"input scale $c$ ($X \to cX$)")
        ax.set_ylabel(r"$\max_T$ (lower CI of $\min_k E\|\nabla F\|^2$) / bound")
        ax.set_title(f"{loss} loss, {data} data, n={n}, d={d}", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8)
    fig.suptitle("Theorem 3.2 under rescaling and step size", fontsize=11)
    return _save(fig, out_dir, "sgd_printed_scan")


def plot_sgd_check(result: dict, out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Figures of the Theorem 3.1/3.2 check, from the stored result alone.

    Args:
        result: the dictionary returned by ``montecarlo.sgd.run_sgd_check`` (or
            loaded from ``sgd_check.json``).
        out_dir: directory for the files (created if missing).

    Returns:
        Paths of the written PNG and PDF files: one pair per instance
        (``sgd_check_<name>``) and one for the scan (``sgd_printed_scan``) when
        the result has a scan.

    Raises:
        ValueError: if ``result`` has no ``instances``.
    """
    if not isinstance(result, dict) or not result.get("instances"):
        raise ValueError(
            "result must be the dict of montecarlo.sgd.run_sgd_check with a non-empty "
            "'instances' list"
        )
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[pathlib.Path] = []
    for entry in result["instances"]:
        paths += _instance_figure(entry, out_dir)
    if result.get("scan"):
        paths += _scan_figure(result["scan"], out_dir)
    return paths


def _density(hist: dict) -> tuple[np.ndarray, np.ndarray]:
    edges = np.array(hist["bin_edges"], dtype=np.float64)
    counts = np.array(hist["counts"], dtype=np.float64)
    total = counts.sum()
    dens = counts / (total * np.diff(edges)) if total > 0 else counts
    return edges, dens


def _figure1_block(
    block: dict, title: str, out_dir: pathlib.Path, stem: str
) -> list[pathlib.Path]:
    fig = Figure(figsize=(12, 8), layout="constrained")
    (ax_loss, ax_gap), (ax_cos, ax_eta) = fig.subplots(2, 2)
    lo, hi, top = 1.0, -1.0, 0.0
    for (d, m), color in zip(block["models"].items(), _D_COLORS, strict=False):
        steps = np.array(m["steps"], dtype=np.float64)
        interp = "interpolating" if all(m["interpolating"]) else "not interpolating"
        for ax, key in ((ax_loss, "loss"), (ax_gap, "gap"), (ax_eta, "eta_curve")):
            band = m[key]
            ax.plot(
                steps,
                _positive(_arr(band["mean"])),
                color=color,
                lw=1.5,
                label=f"d = {d} ({interp})",
            )
            ax.fill_between(
                steps,
                _positive(_arr(band["q10"])),
                _positive(_arr(band["q90"])),
                color=color,
                alpha=0.2,
                lw=0,
            )
        f_star = np.median(_arr(m["F_star"]))
        if f_star > 0:
            ax_loss.axhline(
                f_star, color=color, ls=":", lw=1.2, label=rf"median $F^*$, d = {d}"
            )
        for which, ls in (("path", "-"), ("end", "--")):
            hist = m["cosines"][which]
            edges, dens = _density(hist)
            where = "pooled along path" if which == "path" else "at $w_T$"
            ax_cos.stairs(
                dens,
                edges,
                color=color,
                ls=ls,
                lw=1.4,
                label=f"d = {d}, {where} (mean {hist['mean']:.3f}, "
                f"min {hist['min']:.2f})",
            )
            top = max(top, float(dens.max()) if dens.size else 0.0)
            if hist["min"] is not None:
                lo, hi = min(lo, hist["min"]), max(hi, hist["max"])
    for ax, ylabel in (
        (ax_loss, r"training loss $F(w_k)$"),
        (ax_gap, r"$F(w_k) - F^*$"),
        (ax_eta, r"confusion $\eta(w_k)$"),
    ):
        ax.set_yscale("log")
        ax.set_xlabel(r"iteration $k$")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    ax_loss.set_title("training loss (mean, 10-90% band over runs)", fontsize=10)
    ax_gap.set_title("suboptimality", fontsize=10)
    ax_eta.set_title(
        r"confusion $\eta = \max(0, -\min G_{ij})$ ($i \neq j$) along the path",
        fontsize=10,
    )
    pad = 0.05
    ax_cos.set_xlim(max(-1.0, lo - pad), min(1.0, hi + pad))
    ax_cos.set_xlabel(r"$\cos(\nabla f_i, \nabla f_j)$, all pairs $i<j$")
    ax_cos.set_ylabel("density")
    ax_cos.set_title("pairwise gradient cosine similarities", fontsize=10)
    ax_cos.set_ylim(0, 1.45 * top if top > 0 else 1.0)
    ax_cos.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=11)
    return _save(fig, out_dir, stem)


def plot_figure1(result: dict, out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Figure 1 of the paper from the stored result alone.

    Args:
        result: the dictionary returned by ``montecarlo.sgd.run_figure1`` (or loaded
            from ``figure1.json``).
        out_dir: directory for the files (created if missing).

    Returns:
        Paths of the written PNG and PDF files (``figure1``,
        ``figure1_theorem_step``, ``figure1_noise_free``; blocks missing from
        ``result`` are skipped).

    Raises:
        ValueError: if ``result`` has none of the three blocks.
    """
    names = ("paper_step", "theorem_step", "noise_free")
    if not isinstance(result, dict) or not any(k in result for k in names):
        raise ValueError(
            f"result must be the dict of montecarlo.sgd.run_figure1 with one of {names}"
        )
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = result.get("settings", {})
    runs, n = s.get("runs", "?"), s.get("n", "?")
    paths: list[pathlib.Path] = []
    for key in names:
        if key not in result:
            continue
        block = result[key]
        step = (
            r"$\alpha = 1/(nL)$ per instance (inside $\alpha < 2/(nL)$)"
            if key == "theorem_step"
            else rf"$\alpha$ = {block['alpha_label']} (above $2/(nL)$)"
        )
        title = (
            f"Linear regression, n = {n} Gaussian samples, SGD with mini-batch 1, "
            f"{step}, label noise {block['noise_std']:g}, {runs} runs"
        )
        stem = block["figure"].removesuffix(".png")
        paths += _figure1_block(block, title, out_dir, stem)
    return paths
