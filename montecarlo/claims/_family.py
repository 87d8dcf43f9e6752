"""Multiplicity: the report's tests in two families, each adjusted by Holm's method.

The main family is every test behind a claim that bears on the paper (kinds
*inequality* and *prose*, including the per-ensemble tests of aggregated
claims). The observations about one ensemble form a second family of their
own (they are not verdicts on the paper, but a dozen of them at 5% each would
raise false alarms). Checks at a user-given constant keep their raw p-values
(each already combines its own tests by Bonferroni).

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

from montecarlo.claims._claim import Claim, Kind

__all__ = ["holm", "adjust", "FAMILY"]

FAMILY = (
    "Holm over every test behind a claim about the paper (inequality and prose "
    "kinds, per-ensemble tests included), and separately over the observations; "
    "checks at a user-given constant keep their raw p-values"
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
    """The claims with each family's p-values Holm-adjusted (see :data:`FAMILY`).

    Args:
        claims: Every claim of one report.

    Returns:
        The same claims in the same order; those in a family carry adjusted
        p-values (``Evidence.p_adjusted``), and their verdicts use them.
    """
    families = (
        [i for i, c in enumerate(claims) if c.counts_as_verdict],
        [i for i, c in enumerate(claims) if c.kind is Kind.OBSERVATION],
    )
    out = list(claims)
    for members in families:
        raw = [e.p_value for i in members for e in claims[i].all_evidence()]
        adjusted = list(holm(raw)) if raw else []
        for i in members:
            n = len(claims[i].all_evidence())
            out[i] = _replace_evidence(claims[i], adjusted[:n])
            adjusted = adjusted[n:]
    return out
