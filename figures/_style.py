"""Shared plotting conventions: saving, colours, axis labels, statement names.

Every figure is a :class:`matplotlib.figure.Figure` drawn on an Agg canvas (no
pyplot, no global state) and saved as PNG (:data:`DPI`) and PDF by
:func:`save_figure`. Notation as in the paper: ``N`` samples, ``d`` input
dimension, ``width`` = l, ``depth`` = beta, confusion level ``eta``.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from bounds import STATEMENTS as BOUND_STATEMENTS
from montecarlo._config import Config
from montecarlo._statements import statement_of as _statement_of

__all__ = [
    "DPI",
    "FigureRecord",
    "STATEMENTS",
    "STATEMENT_TITLES",
    "AXIS_LABELS",
    "SWEEP_AXES",
    "new_figure",
    "save_figure",
    "statement_of",
    "statement_color",
    "value_colors",
    "set_axis_scale",
    "fmt_num",
    "finite_positive",
]

DPI = 130

STATEMENTS = tuple(BOUND_STATEMENTS)
"""The probability bounds, in report order (Theorem 4.1 has two parts)."""

STATEMENT_TITLES = {
    **{k: s.full_title for k, s in BOUND_STATEMENTS.items()},
    None: "no bound (contrast ensemble)",
}

_STATEMENT_COLORS = {
    "4.1 part 2": "tab:blue",
    "4.1 part 1": "tab:cyan",
    "5.1": "tab:orange",
    "corollary_5.1": "tab:green",
    "6.1": "tab:red",
    None: "tab:purple",
}

SWEEP_AXES = ("depth", "width", "d", "r", "n")
"""Grid axes the theory makes predictions about, in display order."""

AXIS_LABELS = {
    "depth": "depth β (hidden layers)",
    "width": "width l (units per hidden layer)",
    "d": "input dimension d",
    "r": "ball radius r (operator-norm units)",
    "n": "number of samples N",
}


@dataclasses.dataclass(frozen=True)
class FigureRecord:
    """A written figure and what the report says about it.

    Attributes:
        name: File stem inside the figures directory, e.g. ``"c_star_sweep"``.
        title: One-line title for the report.
        caption: What the figure shows and how to read it.
        paths: The written files (PNG first, then PDF).
    """

    name: str
    title: str
    caption: str
    paths: tuple[pathlib.Path, ...]


def new_figure(width: float, height: float) -> Figure:
    """A figure with constrained layout on its own Agg canvas (no pyplot)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(
    fig: Figure, out_dir: pathlib.Path, name: str
) -> tuple[pathlib.Path, ...]:
    """Write ``fig`` as ``out_dir/name.png`` (:data:`DPI`) and ``out_dir/name.pdf``.

    Args:
        fig: The figure.
        out_dir: Target directory (created if missing).
        name: File stem.

    Returns:
        ``(png_path, pdf_path)``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / f"{name}.png", out_dir / f"{name}.pdf")
    for ax in fig.axes:
        # minor ticks of log axes carry no labels here; skip formatting them
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                axis.set_minor_formatter(NullFormatter())
    fig.savefig(paths[0], dpi=DPI)
    # the constrained layout is solved once (for the PNG) and reused for the PDF
    fig.set_layout_engine("none")
    fig.savefig(paths[1], dpi=DPI)
    return paths


def statement_of(config: Config) -> str | None:
    """The key of the statement a configuration tests, or ``None`` (no bound)."""
    st = _statement_of(config)
    return None if st is None else st.key


def statement_color(statement: str | None) -> str:
    """The colour of a statement in every figure."""
    return _STATEMENT_COLORS[statement]


def value_colors(count: int) -> list[tuple[float, float, float, float]]:
    """``count`` colours along viridis (dark = small axis value, yellow = large)."""
    cmap = colormaps["viridis"]
    return [cmap(0.88 * i / max(1, count - 1)) for i in range(count)]


def set_axis_scale(ax: Axes, axis: str, values: Sequence[float]) -> None:
    """Log scale (base 2 for depth/width) with ticks at the grid values.

    ``r`` (which may be 0) keeps a linear scale.
    """
    values = sorted({float(v) for v in values})
    if axis == "r" or min(values) <= 0:
        ax.set_xscale("linear")
    else:
        ax.set_xscale("log", base=2 if axis in ("depth", "width") else 10)
        lo, hi = min(values), max(values)
        pad = (hi / lo) ** 0.08 if hi > lo else 1.5
        ax.set_xlim(lo / pad, hi * pad)
    ax.xaxis.set_major_locator(FixedLocator(values))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([fmt_num(v) for v in values])


def fmt_num(x: float, digits: int = 3) -> str:
    """Compact number: integers plainly, others with ``digits`` significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.{digits}g}"


def finite_positive(x: float) -> bool:
    """``0 < x < inf`` (a usable constant)."""
    return bool(np.isfinite(x) and x > 0)
