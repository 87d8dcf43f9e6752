"""Figures 2 to 4 of the paper, small: training on real data (stored results only).

Two experiments, each drawn from its stored JSON only (nothing is recomputed).

**MLPs on the digits**: :func:`plot_real_data` reads the dict written by
``montecarlo.experiments.run_real_data`` (``real_data.json``, loaded with ``json.load``)
and draws three figures, each as PNG (130 dpi) and PDF:

- ``real_data_depth`` (Figure 2 analogue): plain MLPs of fixed width and
  several depths: training loss per epoch, minimum pairwise mini-batch
  gradient cosine per epoch, final minimum cosine against depth, and a kernel
  density estimate of the final cosines (pooled over replicates);
- ``real_data_width`` (Figure 3 analogue): the same for several widths at
  fixed depth;
- ``real_data_variants`` (Figure 4 analogue): plain / bn / skip / bn+skip MLPs
  against depth: final training loss, final minimum cosine, and loss and
  minimum-cosine curves of the deepest models.

**The paper's CNN-beta-k** (:func:`plot_real_data_cnn`, from
``real_data_cnn.json`` of :mod:`montecarlo._cnn_experiment`):

- ``real_data_cnn_depth`` (Figure 2): plain CNN-beta-k at the plan's width
  factor, one colour per depth ``beta``: (a) training loss per epoch, (b)
  minimum pairwise mini-batch gradient cosine per epoch (0 = initialization),
  (c) final minimum cosine against depth, (d) kernel density estimate of the
  final cosines (all replicates pooled);
- ``real_data_cnn_width`` (Figure 3): the same for the width factors ``k`` at
  the plan's width-sweep depth;
- ``real_data_cnn_variants`` (Figure 4): plain / bn / skip / bn+skip against
  depth: (a) final training loss (after the tuned step size), (b) final
  minimum cosine, (c) final test accuracy.

Lines are means over replicates, shaded bands span the replicates' range,
dots are single replicates. A diverged run (non-finite loss) is left out of
the lines and counted in the legend.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy.stats import gaussian_kde

__all__ = ["plot_real_data", "plot_real_data_cnn"]

_DPI = 130
_VARIANT_COLORS = {
    "plain": "tab:blue",
    "bn": "tab:orange",
    "skip": "tab:green",
    "bn+skip": "tab:red",
}


def _array(values: Sequence[float | None], length: int) -> np.ndarray:
    """Floats with ``None`` as ``nan``, padded with ``nan`` to ``length``."""
    out = np.full(length, np.nan)
    out[: len(values)] = [np.nan if v is None else v for v in values]
    return out


def _select(runs: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in runs if all(r[k] == v for k, v in match.items())]


def _curves(runs: list[dict[str, Any]], field: str, length: int) -> np.ndarray:
    return np.array([_array(r[field], length) for r in runs]).reshape(-1, length)


def _final(run: dict[str, Any], field: str) -> float:
    """Last value of a run's curve; ``nan`` if missing or the run diverged."""
    last = run[field][-1] if run.get(field) else None
    return np.nan if run["diverged"] or last is None else float(last)


def _diverged_note(runs: list[dict[str, Any]]) -> str:
    k = sum(bool(r["diverged"]) for r in runs)
    return f" ({k} of {len(runs)} diverged)" if k else ""


def _band(ax: Axes, x: np.ndarray, ys: np.ndarray, color: Any, label: str) -> None:
    """Mean line with a band over the replicates' range (``nan`` ignored)."""
    ok = ~np.all(np.isnan(ys), axis=0)
    if not ok.any():
        return
    x, ys = x[ok], ys[:, ok]
    with np.errstate(all="ignore"):
        mean = np.nanmean(ys, axis=0)
    ax.plot(x, mean, color=color, label=label, lw=1.6)
    if ys.shape[0] > 1:
        ax.fill_between(
            x, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), color=color, alpha=0.2
        )


def _sweep_figure(
    runs: list[dict[str, Any]],
    values: Sequence[int],
    key: str,
    label: str,
    title: str,
    epochs: int,
    loss_field: str = "loss",
) -> Figure:
    """Loss curves, min-cosine curves, final min cosine, KDE of final cosines.

    ``loss_field`` names the runs' per-epoch training loss (MLPs: ``loss``;
    CNNs: ``train_loss``).
    """
    fig = Figure(figsize=(17, 4.2), layout="constrained")
    axes = fig.subplots(1, 4)
    colors = [_viridis(i / max(1, len(values) - 1)) for i in range(len(values))]
    finals = []
    pooled = []
    for value, color in zip(values, colors, strict=True):
        sel = _select(runs, **{key: value})
        name = f"{label} {value}{_diverged_note(sel)}"
        _band(
            axes[0],
            np.arange(1, epochs + 1),
            _curves(sel, loss_field, epochs),
            color,
            name,
        )
        _band(
            axes[1],
            np.arange(epochs + 1),
            _curves(sel, "min_cosine", epochs + 1),
            color,
            name,
        )
        finals.append([_final(r, "min_cosine") for r in sel])
        pooled.append(
            np.array(
                [
                    c
                    for r in sel
                    if not r["diverged"]
                    for c in r["cosines"][-1]
                    if c is not None
                ]
            )
        )
    axes[0].set_yscale("log")
    axes[0].set(xlabel="epoch", ylabel="training loss (mean over epoch)")
    axes[0].set_title("(a) training loss")
    axes[1].set(xlabel="epoch (0 = initialization)", ylabel="min pairwise cosine")
    axes[1].set_title("(b) min gradient cosine per epoch")
    for value, color, ys in zip(values, colors, finals, strict=True):
        axes[2].scatter([value] * len(ys), ys, color=color, s=18, zorder=3)
    with np.errstate(all="ignore"):
        means = [np.nanmean(ys) if np.any(~np.isnan(ys)) else np.nan for ys in finals]
    axes[2].plot(values, means, color="0.3", lw=1.2, label="mean over replicates")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xticks(list(values), [str(v) for v in values])
    axes[2].set(xlabel=label, ylabel="min pairwise cosine at end of training")
    axes[2].set_title(f"(c) final min cosine vs {label}")
    grid = np.linspace(-1.0, 1.0, 401)
    for value, color, cos in zip(values, colors, pooled, strict=True):
        if np.unique(cos).size >= 2:
            axes[3].plot(grid, gaussian_kde(cos)(grid), color=color, label=f"{value}")
    lo = min((c.min() for c in pooled if c.size), default=-1.0)
    hi = max((c.max() for c in pooled if c.size), default=1.0)
    pad = 0.1 * max(hi - lo, 0.1)
    axes[3].set_xlim(max(-1.0, lo - pad), min(1.0, hi + pad))
    axes[3].set(xlabel="pairwise gradient cosine at end of training", ylabel="density")
    axes[3].set_title("(d) KDE of final cosines (all replicates)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=8)
    axes[3].legend(title=label, fontsize=8)
    fig.suptitle(title)
    return fig


def _viridis(x: float) -> tuple[float, float, float, float]:
    return colormaps["viridis"](0.9 * x)


def _variants_figure(
    runs: list[dict[str, Any]],
    depths: Sequence[int],
    width: int,
    variants: Sequence[str],
    epochs: int,
) -> Figure:
    """Final loss and min cosine against depth per variant; deepest curves."""
    fig = Figure(figsize=(17, 4.2), layout="constrained")
    axes = fig.subplots(1, 4)
    deepest = max(depths)
    for variant in variants:
        color = _VARIANT_COLORS.get(variant, "k")
        for ax, field in ((axes[0], "loss"), (axes[1], "min_cosine")):
            ys = []
            for d in depths:
                sel = _select(runs, width=width, depth=d, variant=variant)
                vals = [_final(r, field) for r in sel]
                ax.scatter([d] * len(vals), vals, color=color, s=14, zorder=3)
                ys.append(np.nanmean(vals) if np.any(~np.isnan(vals)) else np.nan)
            ax.plot(depths, ys, color=color, label=variant, lw=1.6)
        sel = _select(runs, width=width, depth=deepest, variant=variant)
        diverged = sum(
            bool(r["diverged"])
            for r in _select(runs, width=width, variant=variant)
            if r["depth"] in depths
        )
        if diverged:
            axes[0].plot([], [], " ", label=f"({variant}: {diverged} run(s) diverged)")
        _band(
            axes[2],
            np.arange(1, epochs + 1),
            _curves(sel, "loss", epochs),
            color,
            variant,
        )
        _band(
            axes[3],
            np.arange(epochs + 1),
            _curves(sel, "min_cosine", epochs + 1),
            color,
            variant,
        )
    for ax in axes[:2]:
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(depths), [str(d) for d in depths])
        ax.set_xlabel("depth (hidden layers)")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("final training loss")
    axes[0].set_title("(a) final training loss vs depth")
    axes[1].set_ylabel("min pairwise cosine at end of training")
    axes[1].set_title("(b) final min cosine vs depth")
    axes[2].set_yscale("log")
    axes[2].set(xlabel="epoch", ylabel="training loss (mean over epoch)")
    axes[2].set_title(f"(c) training loss, depth {deepest}")
    axes[3].set(xlabel="epoch (0 = initialization)", ylabel="min pairwise cosine")
    axes[3].set_title(f"(d) min cosine per epoch, depth {deepest}")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"Batch norm and skip connections, MLPs of width {width} on digits "
        "(Figure 4 analogue)"
    )
    return fig


def plot_real_data(
    result: dict[str, Any], out_dir: str | pathlib.Path
) -> list[pathlib.Path]:
    """Draw the Figure 2, 3 and 4 analogues of the digits experiment.

    Args:
        result: the dict of ``montecarlo.experiments.run_real_data`` or loaded from
            its ``real_data.json``.
        out_dir: directory for the files (created if missing).

    Returns:
        Paths of the written files: ``real_data_depth``, ``real_data_width``
        and ``real_data_variants``, each ``.png`` and ``.pdf``.

    Raises:
        ValueError: if ``result`` lacks the ``settings`` or ``runs`` entries.
    """
    if not isinstance(result, dict) or not {"settings", "runs"} <= result.keys():
        raise ValueError(
            "result must be the dict of run_real_data (with 'settings' and 'runs'), "
            f"got keys {sorted(result) if isinstance(result, dict) else type(result)}"
        )
    s, runs = result["settings"], result["runs"]
    epochs = int(s["epochs"])
    figures = {
        "real_data_depth": _sweep_figure(
            _select(runs, width=s["width"], variant="plain"),
            s["depths"],
            "depth",
            "depth",
            f"Depth, plain MLPs of width {s['width']} on digits (Figure 2 analogue)",
            epochs,
        ),
        "real_data_width": _sweep_figure(
            _select(runs, depth=s["width_depth"], variant="plain"),
            s["widths"],
            "width",
            "width",
            f"Width, plain MLPs of depth {s['width_depth']} on digits "
            "(Figure 3 analogue)",
            epochs,
        ),
        "real_data_variants": _variants_figure(
            runs, s["depths"], s["width"], s["variants"], epochs
        ),
    }
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        for ext in ("png", "pdf"):
            path = out / f"{name}.{ext}"
            fig.savefig(path, dpi=_DPI)
            paths.append(path)
    return paths


def _cnn_variants_figure(
    runs: list[dict[str, Any]],
    depths: Sequence[int],
    width_factor: int,
    variants: Sequence[str],
) -> Figure:
    """Figure 4: final training loss, minimum cosine, test accuracy vs depth."""
    fig = Figure(figsize=(13.5, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (
        ("train_loss", "final training loss", "(a) training loss"),
        ("min_cosine", "min pairwise cosine at end of training", "(b) minimum cosine"),
        ("test_accuracy", "test accuracy at end of training", "(c) test accuracy"),
    )
    for variant in variants:
        color = _VARIANT_COLORS.get(variant, "k")
        sel_all = _select(runs, width_factor=width_factor, variant=variant)
        diverged = sum(bool(r["diverged"]) for r in sel_all if r["depth"] in depths)
        label = variant + (f" ({diverged} diverged)" if diverged else "")
        for ax, (field, _, _) in zip(axes, panels, strict=True):
            means = []
            for d in depths:
                vals = [_final(r, field) for r in _select(sel_all, depth=d)]
                ax.scatter([d] * len(vals), vals, color=color, s=14, zorder=3)
                finite = [v for v in vals if not np.isnan(v)]
                means.append(np.mean(finite) if finite else np.nan)
            ax.plot(depths, means, color=color, lw=1.6, label=label)
    for ax, (_, ylabel, title) in zip(axes, panels, strict=True):
        ax.set_xticks(list(depths), [str(d) for d in depths])
        ax.set(xlabel="depth beta", ylabel=ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Batch norm and skip connections, CNN-beta-{width_factor} (Figure 4 analogue)"
    )
    return fig


def plot_real_data_cnn(
    result: dict[str, Any], out_dir: str | pathlib.Path
) -> list[pathlib.Path]:
    """Draw Figures 2, 3 and 4 of the CNN experiment from its stored result.

    Args:
        result: the dict returned by ``montecarlo._cnn_experiment.run_real_data_cnn``
            or loaded from its ``real_data_cnn.json``.
        out_dir: directory for the files (created if missing).

    Returns:
        Paths of the written files: ``real_data_cnn_depth``,
        ``real_data_cnn_width`` and ``real_data_cnn_variants``, each ``.png``
        and ``.pdf``.

    Raises:
        ValueError: if ``result`` is not a CNN experiment's result (it needs
            ``experiment == "real_data_cnn"``, ``plan``, ``data`` and ``runs``).
    """
    if (
        not isinstance(result, dict)
        or result.get("experiment") != "real_data_cnn"
        or not {"plan", "data", "runs"} <= result.keys()
    ):
        raise ValueError(
            "result must be the dict of run_real_data_cnn (experiment "
            "'real_data_cnn' with 'plan', 'data' and 'runs'), got keys "
            f"{sorted(result) if isinstance(result, dict) else type(result)}"
        )
    plan, runs, data = result["plan"], result["runs"], result["data"]
    epochs = int(plan["epochs"])
    where = f"on {data['name']}"
    k, beta = plan["width_factor"], plan["width_depth"]
    figures = {
        "real_data_cnn_depth": _sweep_figure(
            _select(runs, width_factor=k, variant="plain"),
            plan["depths"],
            "depth",
            "depth beta",
            f"Depth, plain CNN-beta-{k} {where} (Figure 2 analogue)",
            epochs,
            loss_field="train_loss",
        ),
        "real_data_cnn_width": _sweep_figure(
            _select(runs, depth=beta, variant="plain"),
            plan["width_factors"],
            "width_factor",
            "width factor k",
            f"Width, plain CNN-{beta}-k {where} (Figure 3 analogue)",
            epochs,
            loss_field="train_loss",
        ),
        "real_data_cnn_variants": _cnn_variants_figure(
            runs, plan["depths"], k, plan["variants"]
        ),
    }
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        for ext in ("png", "pdf"):
            path = out / f"{name}.{ext}"
            fig.savefig(path, dpi=_DPI)
            paths.append(path)
    return paths
