"""Claims of the trained-network experiments (Section 7, Figures 2 to 4).

Both experiments (the MLPs on the bundled digits, ``real_data``, and the
paper's CNN-beta-k, ``real_data_cnn``) store their claims before any run
(``prespecified_claims``: ``id``, ``statement``, ``axis``, ``metric``,
``direction``, ``test``, ``missing``, ``figure``, ``prespecified``) and, per
claim, the arrays its test needs (``claim_data``). Here each becomes a
:class:`~montecarlo.claims.Claim` of kind *prose* (statement
``"section 7"``), tested in the stated direction:

- ``test = "spearman"`` (a sweep of depth or width): Spearman's rho of the
  axis with the per-run metric, one-sided permutation p-values both ways
  (:func:`~montecarlo.claims.tests.trend_permutation`);
- ``test = "wilcoxon"`` (a variant against plain at equal depth and seed):
  Wilcoxon signed-rank tests of ``treated - control``, one-sided both ways.

Missing values follow the claim's rule: ``"worst"`` ranks a run that
diverged above every finite value (a diverged training loss is the worst
loss), ``"drop"`` leaves the run (or the pair) out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from montecarlo.claims import _tests as t
from montecarlo.claims._claim import Claim, Evidence, Kind

__all__ = ["section7_claims", "MIN_RUNS"]

MIN_RUNS = 6
"""Fewest runs (or pairs) for a decisive verdict."""

_FIGURE = {
    "depth": "depth",
    "width": "width",
    "width_factor": "width",
    "variant": "variants",
}
"""Claim axis -> suffix of the experiment's figure (``real_data_cnn_depth``)."""


def _fill(values: Sequence[float | None], rule: str) -> np.ndarray:
    """``None`` -> above every finite value (``"worst"``) or NaN (``"drop"``)."""
    v = np.array([math.nan if x is None else float(x) for x in values])
    if rule == "worst":
        finite = v[np.isfinite(v)]
        top = (finite.max() + 1.0 + abs(finite.max())) if finite.size else 1.0
        v = np.where(np.isnan(v), top, v)
    return v


def _claim(spec: dict, data: dict, alpha: float, source: str) -> Claim:
    rule = spec.get("missing", "drop")
    sign = +1 if spec["direction"] in ("increasing", "greater") else -1
    base = dict(
        statement="section 7",
        kind=Kind.PROSE,
        claim=spec["statement"],
        alpha=alpha,
        min_trials=MIN_RUNS,
        figure=f"{source}_{_FIGURE[spec['axis']]}",
        source=source,
        prespecified=bool(spec.get("prespecified", True)),
        variant="-",
    )
    metric = spec["metric"].replace("_", " ")
    if spec["test"] == "spearman":
        x = np.asarray(data["x"], dtype=float)
        y = _fill(data["y"], rule)
        keep = ~np.isnan(y)
        tr = t.trend_permutation(x[keep], y[keep])
        p_sup, p_con = tr.p_for(sign)
        axis = spec["axis"].replace("_", " ")
        stat = f"rho = {tr.rho:+.3f} over {int(keep.sum())} runs"
        means = {
            float(a): float(np.mean(y[keep][x[keep] == a])) for a in np.unique(x[keep])
        }
        stat += "; mean " + ", ".join(
            f"{v:.3g} ({axis} {a:g})" for a, v in means.items()
        )
        if (~keep).any():
            stat += f"; {int((~keep).sum())} run(s) without a value left out"
        way = "rises" if sign > 0 else "falls"
        return Claim(
            **base,
            test=(
                f"Spearman rho of {axis} with the per-run {metric}, one-sided "
                "permutation p-values (9999 resamples)"
            ),
            statistic=stat,
            evidence=(
                Evidence(f"the {metric} {way} with {axis}", p_sup, True),
                Evidence(f"the {metric} moves the other way", p_con, False),
            ),
            n_min=int(keep.sum()),
            default_reason="no significant trend either way",
        )
    treated = _fill(data["treated"], rule)
    control = _fill(data["control"], rule)
    diff = treated - control
    keep = ~np.isnan(diff)
    p_up, p_down = t.paired(diff[keep])
    p_sup, p_con = (p_up, p_down) if sign > 0 else (p_down, p_up)
    med = float(np.median(diff[keep])) if keep.any() else math.nan
    return Claim(
        **base,
        test=(
            f"Wilcoxon signed-rank tests of {spec['treated']} - {spec['control']} "
            f"on the per-run {metric} over (depth, seed) pairs, one-sided both ways"
        ),
        statistic=(
            f"median difference {med:+.3g} over {int(keep.sum())} pairs "
            f"({int((diff[keep] > 0).sum())} positive)"
        ),
        evidence=(
            Evidence("the difference has the stated sign", p_sup, True),
            Evidence("the difference has the opposite sign", p_con, False),
        ),
        n_min=int(keep.sum()),
        default_reason="no significant difference either way",
    )


def section7_claims(result: dict, *, alpha: float = 0.05, source: str) -> list[Claim]:
    """The claims of a trained-network experiment's JSON (see the module docstring)."""
    data = result["claim_data"]
    return [
        _claim(spec, data[spec["id"]], alpha, source)
        for spec in result["prespecified_claims"]
    ]
