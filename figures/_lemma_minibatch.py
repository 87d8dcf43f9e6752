"""Figures of Lemma B.1 and of Section 8's mini-batch statement.

Reads only the dictionaries written by ``montecarlo._lemma_b1.run_lemma_b1``
(``lemma_b1.json``) and ``montecarlo._minibatch.run_minibatch``
(``minibatch.json``). Each figure is saved as PNG and PDF by
:func:`figures._style.save_figure` on an Agg canvas (no pyplot).

- ``lemma_b1``: (a) ``E[M_N] sqrt(d)`` against ``d`` for every ``N`` (flat
  means the ``d^{-1/2}`` rate), with +-2 standard errors and the exact
  ``d -> infinity`` limit (dashed); (b) ``E[M_N] sqrt(d)`` against
  ``sqrt(log N)`` for the ``d`` of the fit range, with the sub-Gaussian
  ceiling ``sqrt(2 log(N (N - 1)))`` and the limit; (c) the density of
  ``sqrt(d) <x_i, x_j>`` over independent pairs at the smallest and largest
  ``d`` against the exact law (``(1 + <x_i, x_j>)/2 ~ Beta((d-1)/2,
  (d-1)/2)``).
- ``minibatch``: (a) ``Var(X_B) / Var(X_1)`` against ``B`` per ensemble
  (median over draws, band from the 10% to the 90% quantile, log-log) with
  the slopes ``-2`` and ``-1``; (b) the mean mini-batch confusion
  ``eta_B / eta_1`` per ensemble.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np
from scipy import stats

from figures._style import new_figure, save_figure, value_colors

__all__ = ["plot_lemma_b1", "plot_minibatch"]

_ENSEMBLE_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def _check_result(result: object, experiment: str, keys: tuple[str, ...]) -> dict:
    if not isinstance(result, dict) or any(k not in result for k in keys):
        raise ValueError(
            f"result must be the dictionary of {experiment}.json with keys "
            f"{list(keys)}, got {type(result).__name__}"
        )
    return result


def plot_lemma_b1(result: dict, out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Draw ``lemma_b1`` (module docstring) from ``lemma_b1.json``.

    Args:
        result: The dictionary of ``run_lemma_b1``.
        out_dir: Target directory (created if missing).

    Returns:
        ``[png, pdf]`` paths.

    Raises:
        ValueError: If ``result`` is not that dictionary.
    """
    result = _check_result(result, "lemma_b1", ("settings", "reference", "by_d"))
    settings = result["settings"]
    ns = settings["ns"]
    rows = result["by_d"]
    dims = np.array([r["d"] for r in rows], dtype=float)
    limit = np.asarray(result["reference"]["gaussian_limit"])
    ceiling = np.asarray(result["reference"]["ceiling"])
    scaled = [np.asarray(r["max_inner"]) * math.sqrt(r["d"]) for r in rows]
    mean = np.array([y.mean(axis=0) for y in scaled])  # (len(dims), len(ns))
    se = np.array([y.std(axis=0, ddof=1) / math.sqrt(y.shape[0]) for y in scaled])

    fig = new_figure(14.0, 4.4)
    ax_d, ax_n, ax_law = fig.subplots(1, 3)
    for j, (n, color) in enumerate(zip(ns, value_colors(len(ns)), strict=True)):
        ax_d.errorbar(
            dims,
            mean[:, j],
            yerr=2 * se[:, j],
            fmt="o-",
            ms=3,
            lw=1.2,
            color=color,
            label=f"N = {n}",
        )
        ax_d.axhline(limit[j], color=color, lw=0.8, ls="--")
    ax_d.axvspan(settings["fit_min_d"], dims.max() * 1.2, color="0.9", zorder=0)
    ax_d.set_xscale("log")
    ax_d.set_xlabel("input dimension d (shaded: fit range)")
    ax_d.set_ylabel("E[max |<x_i, x_j>|] · √d")
    ax_d.set_title("(a) flat in d ⇔ rate d^(-1/2); dashed: d → ∞ limit")
    ax_d.legend(fontsize=7, ncol=2)

    s = np.sqrt(np.log(np.asarray(ns, dtype=float)))
    fit = [i for i, d in enumerate(dims) if d >= settings["fit_min_d"]]
    for i, color in zip(fit, value_colors(len(fit)), strict=True):
        ax_n.errorbar(
            s,
            mean[i],
            yerr=2 * se[i],
            fmt="o-",
            ms=3,
            lw=1.2,
            color=color,
            label=f"d = {int(dims[i])}",
        )
    ax_n.plot(s, ceiling, "k--", lw=1.2, label="ceiling √(2 log(N(N-1)))")
    ax_n.plot(s, limit, "k:", lw=1.2, label="d → ∞ limit")
    ax_n.set_xlabel("√(log N)")
    ax_n.set_ylabel("E[max |<x_i, x_j>|] · √d")
    ax_n.set_title("(b) growth in N against √(log N)")
    ax_n.legend(fontsize=7)

    for r, color in ((rows[0], "tab:blue"), (rows[-1], "tab:red")):
        h = r["pair_hist"]
        edges = np.asarray(h["edges"])
        width = np.diff(edges)
        dens = np.asarray(h["counts"]) / (h["n"] * width)
        ax_law.stairs(dens, edges, color=color, label=f"d = {r['d']}: pairs")
        a = (r["d"] - 1) / 2.0
        grid = np.linspace(edges[0], edges[-1], 400)
        tt = grid / math.sqrt(r["d"])
        exact = np.where(
            np.abs(tt) < 1,
            stats.beta.pdf((1 + tt) / 2, a, a) / (2 * math.sqrt(r["d"])),
            0.0,
        )
        ax_law.plot(grid, exact, color=color, ls="--", lw=1, label="exact Beta law")
    ax_law.set_xlabel("√d · <x_i, x_j> (independent pairs)")
    ax_law.set_ylabel("density")
    ax_law.set_title("(c) one pair against its exact law")
    ax_law.legend(fontsize=7)
    return list(save_figure(fig, pathlib.Path(out_dir), "lemma_b1"))


def plot_minibatch(result: dict, out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Draw ``minibatch`` (module docstring) from ``minibatch.json``.

    Args:
        result: The dictionary of ``run_minibatch``.
        out_dir: Target directory (created if missing).

    Returns:
        ``[png, pdf]`` paths.

    Raises:
        ValueError: If ``result`` is not that dictionary.
    """
    result = _check_result(result, "minibatch", ("settings", "ensembles"))
    bs = np.asarray(result["settings"]["batch_sizes"], dtype=float)
    fig = new_figure(10.5, 4.4)
    ax_var, ax_eta = fig.subplots(1, 2)
    for ens, color in zip(result["ensembles"], _ENSEMBLE_COLORS, strict=False):
        var = np.asarray(ens["variance"], dtype=float)
        if var.size == 0:
            continue
        rel = var / var[:, :1]
        lo, med, hi = np.quantile(rel, [0.1, 0.5, 0.9], axis=0)
        slope = np.mean([x for x in ens["exponent"] if x is not None])
        ax_var.plot(
            bs,
            med,
            "o-",
            ms=3,
            color=color,
            label=f"{ens['name']} (mean exponent {slope:.2f})",
        )
        ax_var.fill_between(bs, lo, hi, color=color, alpha=0.2, lw=0)
        eta = np.asarray(ens["eta"], dtype=float).mean(axis=0)
        if eta[0] > 0:
            ax_eta.plot(bs, eta / eta[0], "o-", ms=3, color=color, label=ens["name"])
    ax_var.plot(bs, bs**-2.0, color="0.4", ls="--", lw=1, label="B^-2")
    ax_var.plot(bs, bs**-1.0, color="0.4", ls=":", lw=1, label="B^-1")
    ax_var.set_xscale("log", base=2)
    ax_var.set_yscale("log")
    ax_var.set_xlabel("mini-batch size B")
    ax_var.set_ylabel("Var(X_B) / Var(X_1) (exact, per draw)")
    ax_var.set_title("(a) variance of <g_S0, g_S1>: median, 10-90%")
    ax_var.legend(fontsize=7)
    ax_eta.set_xscale("log", base=2)
    ax_eta.set_xlabel("mini-batch size B")
    ax_eta.set_ylabel("mean η_B / mean η_1")
    ax_eta.set_title("(b) confusion of one epoch's batches")
    ax_eta.legend(fontsize=7)
    return list(save_figure(fig, pathlib.Path(out_dir), "minibatch"))
