"""Multiplicity: one family of tests per report, adjusted by Holm's method.

The family is every test behind a claim that bears on the paper (kinds
*inequality* and *prose*, including the per-ensemble tests of aggregated
claims). Observations about one ensemble and checks at a user-given constant
are reported with their raw p-values and stay outside the family: they are
not verdicts on the paper.

Holm (1979), step-down: with the ``m`` p-values sorted,
``p_(1) <= ... <= p_(m)``, the adjusted values are

    p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)),

which controls the family-wise error rate at ``alpha`` under any dependence
between the tests (the same guarantee as Bonferroni, uniformly more powerful).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from montecarlo.claims._claim import Claim

__all__ = ["holm", "adjust", "FAMILY"]

FAMILY = (
    "every test behind a claim about the paper (inequality and prose kinds, "
    "per-ensemble tests included), Holm-adjusted; observations and checks at a "
    "user-given constant keep their raw p-values"
)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN, outside ``m``).

    Args:
        p_values: Raw p-values in ``[0, 1]`` (NaN for "no test").

    Returns:
        Adjusted p-values, same order and shape.

    Raises:
        ValueError: If a p-value lies outside ``[0, 1]``.
    """
    p = np.asarray(p_values, dtype=float)
    ok = ~np.isnan(p)
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise ValueError(f"p_values must be in [0, 1] or NaN, got {p_values!r}")
    out = np.full(p.shape, math.nan)
    vals = p[ok]
    m = vals.size
    if m == 0:
        return out
    order = np.argsort(vals, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * vals[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    out[ok] = adjusted
    return out


def _replace_evidence(claim: Claim, values: list[float]) -> Claim:
    """``claim`` with its (or its parts') evidence given adjusted p-values."""
    if claim.parts:
        parts = []
        for part in claim.parts:
            n = len(part.all_evidence())
            parts.append(_replace_evidence(part, values[:n]))
            values = values[n:]
        return dataclasses.replace(claim, parts=tuple(parts))
    evidence = tuple(
        dataclasses.replace(e, p_adjusted=float(v))
        for e, v in zip(claim.evidence, values, strict=True)
    )
    return dataclasses.replace(claim, evidence=evidence)


def adjust(claims: Sequence[Claim]) -> list[Claim]:
    """The claims with the family's p-values Holm-adjusted (see :data:`FAMILY`).

    Args:
        claims: Every claim of one report.

    Returns:
        The same claims in the same order; those in the family carry adjusted
        p-values (``Evidence.p_adjusted``), and their verdicts use them.
    """
    raw: list[float] = []
    for c in claims:
        if c.counts_as_verdict:
            raw += [e.p_value for e in c.all_evidence()]
    adjusted = list(holm(raw)) if raw else []
    out = []
    for c in claims:
        if c.counts_as_verdict:
            n = len(c.all_evidence())
            out.append(_replace_evidence(c, adjusted[:n]))
            adjusted = adjusted[n:]
        else:
            out.append(c)
    return out
