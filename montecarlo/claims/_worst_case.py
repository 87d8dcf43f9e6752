r"""Claims of the ``adversarial`` experiment: uniform statements at the worst case.

The experiment (:mod:`montecarlo._worst_case`) stores, per searched
configuration (and, for Corollary 5.1, per norm of the ball), the per-trial
statistic ``m_t = min_{i != j} G_ij`` on ``T`` held-out trials at the worst
point found and for the random ensemble on the same trials (paired). A trial
fails at ``eta`` when ``m_t < -eta``. Three kinds of rows:

- *inequality* (:func:`montecarlo.claims._monte_carlo.c_star_trend`, the one
  rule for "one constant serves every configuration along an axis"): per
  searched group, norm and numeric axis with at least
  :data:`~montecarlo.claims._monte_carlo.MIN_CONFIGS` values (the group split
  by its other axes), on the adversarial held-out values. A uniform statement
  must hold at the worst point of its class too, so a constant that collapses
  along the axis at the points found contradicts it, whatever the random
  ensemble does. For Corollary 5.1 the values are the uniform (per-draw)
  estimate: ``m_t`` minimized over the found centre's ball per held-out draw
  (the corollary's event "some ``W'`` of the ball fails").
- *observation*, per configuration: the adversarial ``c*`` beside the random
  ensemble's and their ratio, and the check that the search found a point
  at least as bad as a random one, by McNemar's exact one-sided tests
  (:func:`montecarlo.claims._tests.mcnemar`) at two levels fixed before any
  held-out draw: the found point's mean confusion on its selection draws
  (supports: the found point fails more often) and the ``eta`` at which its
  ``c*`` binds on them (contradicts: the random ensemble fails more often).
- *inequality, inconclusive*: where no held-out trial reaches the statement's
  domain (Theorem 4.1 part 1 is stated for ``eta > 4`` only), the search
  cannot test it there; the row says why.

Every ``c*`` here is recomputed at ``1 - alpha`` from the stored per-trial
values (:func:`montecarlo._adversarial.heldout_estimate`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bounds import STATEMENTS, Statement
from montecarlo._adversarial import AdversarialResult, HeldOutEstimate, heldout_estimate
from montecarlo._statements import bound_kwargs
from montecarlo.claims import _tests as t
from montecarlo.claims._claim import Claim, Evidence, Kind
from montecarlo.claims._monte_carlo import MIN_CONFIGS, MIN_TRIALS, c_star_trend

__all__ = ["FIGURE_KINDS", "figure_stem", "searched", "worst_case_claims"]

FIGURE_KINDS = ("failure", "c_star", "spectra")
"""The figures of one statement (:func:`figure_stem`)."""

SOURCE = "adversarial"


def figure_stem(kind: str, statement: str) -> str:
    """File stem of a worst-case figure, e.g. ``"worst_case_failure_5_1"``.

    Args:
        kind: One of :data:`FIGURE_KINDS`.
        statement: A key of :data:`bounds.STATEMENTS`.

    Raises:
        ValueError: On an unknown kind or statement.
    """
    if kind not in FIGURE_KINDS:
        raise ValueError(f"kind must be one of {list(FIGURE_KINDS)}, got {kind!r}")
    if statement not in STATEMENTS:
        raise ValueError(
            f"statement must be one of {list(STATEMENTS)}, got {statement!r}"
        )
    return f"worst_case_{kind}_{statement.replace('.', '_').replace(' ', '_')}"


def searched(
    result: Mapping[str, Any],
) -> list[tuple[str, AdversarialResult]]:
    """``(group, result)`` of every stored unit of ``adversarial.json``, in order.

    Raises:
        ValueError: If ``result`` lacks ``eta``, ``groups`` or ``results``.
    """
    if not isinstance(result, Mapping):
        raise ValueError(f"result must be a dict, got {type(result).__name__}")
    missing = [k for k in ("eta", "groups", "results") if k not in result]
    if missing:
        raise ValueError(
            f"result must be the adversarial experiment's JSON, missing {missing}"
        )
    return [
        (str(e["group"]), AdversarialResult.from_dict(e)) for e in result["results"]
    ]


def _fmt(x: float) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:.3g}"


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _reaches_domain(st: Statement, grid: np.ndarray, values: np.ndarray) -> bool:
    """Whether some trial fails at the first grid point of the statement's domain."""
    inside = grid[st.in_domain(grid)]
    return bool(inside.size and np.any(_finite(values) < -inside[0]))


def _where(group: str, res: AdversarialResult) -> str:
    norm = f", {res.norm} ball" if res.norm else ""
    return f"worst case found in group {group}{norm}"


def _values_words(res: AdversarialResult) -> str:
    if res.statement == "corollary_5.1":
        return (
            "the uniform (per-draw) estimate: min_{i != j} G_ij minimized over the "
            "found centre's ball per held-out draw"
        )
    return "min_{i != j} G_ij at the worst point found, per held-out draw"


def _trend_claims(
    group: str,
    items: list[AdversarialResult],
    axes: Sequence[str],
    grid: np.ndarray,
    alpha: float,
) -> list[Claim]:
    """``c_star_trend`` along each numeric axis, the group split by its other axes."""
    first = items[0]
    st = STATEMENTS[first.statement]
    out = []
    for axis in axes:
        values = [getattr(r.config, axis) for r in items]
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            continue
        rest = [a for a in axes if a != axis]
        sweeps: dict[tuple, list[AdversarialResult]] = {}
        for r in items:
            sweeps.setdefault(tuple(getattr(r.config, a) for a in rest), []).append(r)
        for fixed, sweep in sweeps.items():
            if len({float(getattr(r.config, axis)) for r in sweep}) < MIN_CONFIGS:
                continue
            setting = "".join(f", {a}={v}" for a, v in zip(rest, fixed, strict=True))
            norm = f", {first.norm} ball" if first.norm else ""
            out.append(
                c_star_trend(
                    statement=st,
                    axis=axis,
                    x=np.array([float(getattr(r.config, axis)) for r in sweep]),
                    values=[_finite(r.adversarial.min_inner) for r in sweep],
                    params=[bound_kwargs(r.config) for r in sweep],
                    keys=[
                        f"{r.config.config_hash}|{r.norm}|adversarial" for r in sweep
                    ],
                    grid=grid,
                    alpha=alpha,
                    confidence=1.0 - alpha,
                    claim=(
                        f"one constant c serves every {axis} in the worst case found "
                        f"({st.title}{norm}{setting})"
                    ),
                    where=(f"{_where(group, first)}{setting}, {_values_words(first)}"),
                    figure=figure_stem("c_star", st.key),
                    ensemble="worst case found" + norm,
                )
            )
    return [dataclasses.replace(claim, source=SOURCE) for claim in out]


def _domain_claim(
    group: str, items: list[AdversarialResult], grid: np.ndarray, alpha: float
) -> Claim:
    """The search cannot test the statement in its domain: an inconclusive row."""
    first = items[0]
    st = STATEMENTS[first.statement]
    inside = grid[st.in_domain(grid)]

    def largest(est: HeldOutEstimate) -> float:
        v = _finite(est.min_inner)
        return float(np.max(np.maximum(0.0, -v))) if v.size else math.nan

    adv = max(largest(r.adversarial) for r in items)
    rand = max(largest(r.random) for r in items)
    if inside.size == 0:
        why = (
            f"the eta grid has no point above {st.eta_min:g}, where {st.title} is "
            "stated: extend the grid"
        )
    else:
        why = (
            f"no held-out trial of the worst case found has confusion above "
            f"{_fmt(float(inside[0]))} (the first grid point of the domain eta > "
            f"{st.eta_min:g}, where {st.title} is stated), so at these shapes "
            "neither the search nor the random ensemble can test the bound; "
            "larger confusions need e.g. smaller kappa, more depth or width"
        )
    return Claim(
        statement=st.key,
        kind=Kind.INEQUALITY,
        claim=(
            f"the worst-case search tests {st.title} inside its domain eta > "
            f"{st.eta_min:g} ({_where(group, first)})"
        ),
        test=(
            f"{len(items)} configuration(s), {first.adversarial.trials} held-out "
            "trials each: failures at the domain's grid points"
        ),
        statistic=(
            f"largest confusion max(0, -min_{{i != j}} G_ij) on the held-out "
            f"trials: {_fmt(adv)} at the worst case found, {_fmt(rand)} for the "
            "random ensemble"
        ),
        alpha=alpha,
        n_min=min(r.adversarial.trials for r in items),
        min_trials=MIN_TRIALS,
        default_reason=why,
        figure=figure_stem("failure", st.key),
        source=SOURCE,
        ensemble="worst case found",
    )


def _comparison_claim(
    group: str,
    res: AdversarialResult,
    axes: Sequence[str],
    grid: np.ndarray,
    alpha: float,
) -> Claim:
    """Adversarial ``c*`` beside the random one; McNemar's tests of the search."""
    st = STATEMENTS[res.statement]
    conf = 1.0 - alpha

    def estimate(est: HeldOutEstimate) -> HeldOutEstimate:
        return heldout_estimate(res.config, est.min_inner, grid, confidence=conf)

    adv, rand = estimate(res.adversarial), estimate(res.random)
    a, r = res.adversarial.min_inner, res.random.min_inner
    paired = np.isfinite(a) & np.isfinite(r)
    found = res.search
    eta_bulk = float(found.select_confusion[found.restart])
    eta_bind = float(found.select_binding_eta[found.restart])
    bulk = t.mcnemar(a[paired] < -eta_bulk, r[paired] < -eta_bulk)
    label = res.config.label(axes) or "its one configuration"
    norm = f", {res.norm} ball" if res.norm else ""
    ratio = adv.c_star / rand.c_star if rand.c_star > 0 else math.nan
    stat = (
        f"c* random {_fmt(rand.c_star)}, adversarial {_fmt(adv.c_star)} (ratio "
        f"{_fmt(ratio)}; binds at eta = {_fmt(adv.binding_eta)})"
    )
    if res.fixed_point is not None:
        stat += f"; at the one found W': c* {_fmt(estimate(res.fixed_point).c_star)}"
    if not _reaches_domain(st, grid, a):
        stat += (
            f"; no held-out trial fails inside the domain eta > {st.eta_min:g}: "
            "both c* reflect the trial count only"
        )
    stat += (
        f"; at eta = {_fmt(eta_bulk)} (the found point's mean confusion on its "
        f"selection draws): failures adversarial {bulk.failures_a}/{bulk.trials}, "
        f"random {bulk.failures_b}/{bulk.trials} (discordant {bulk.only_a} vs "
        f"{bulk.only_b})"
    )
    evidence = [
        Evidence(
            f"the worst case found fails more often than the random ensemble at "
            f"eta = {_fmt(eta_bulk)} (McNemar, exact)",
            bulk.p_a_more,
            True,
        )
    ]
    if math.isfinite(eta_bind):
        bind = t.mcnemar(a[paired] < -eta_bind, r[paired] < -eta_bind)
        stat += (
            f"; at eta = {_fmt(eta_bind)} (where its c* binds on the selection "
            f"draws): failures adversarial {bind.failures_a}, random "
            f"{bind.failures_b} (discordant {bind.only_a} vs {bind.only_b})"
        )
        evidence.append(
            Evidence(
                f"the random ensemble fails more often than the worst case found at "
                f"eta = {_fmt(eta_bind)} (McNemar, exact)",
                bind.p_b_more,
                False,
            )
        )
    return Claim(
        statement=st.key,
        kind=Kind.OBSERVATION,
        claim=(
            f"the worst case found fails at least as often as the random ensemble "
            f"({st.title}{norm}; group {group}, {label})"
        ),
        test=(
            f"McNemar's exact one-sided tests on {int(paired.sum())} paired held-out "
            f"trials ({_values_words(res)}; random ensemble: the same draws), at "
            "levels fixed on the search's selection draws"
        ),
        statistic=stat,
        evidence=tuple(evidence),
        alpha=alpha,
        n_min=int(paired.sum()),
        min_trials=MIN_TRIALS,
        default_reason="neither side fails significantly more often",
        figure=figure_stem("failure", st.key),
        source=SOURCE,
        ensemble="worst case found" + norm,
    )


def worst_case_claims(result: Mapping[str, Any], *, alpha: float = 0.05) -> list[Claim]:
    """Every claim of a stored ``adversarial`` experiment (before adjustment).

    Args:
        result: The experiment's JSON dict (``OUT/adversarial.json``).
        alpha: Level of every test; ``c*`` at ``1 - alpha``. Defaults to 0.05.

    Returns:
        Per searched group and norm: the ``c*`` trend claims (or the
        inconclusive row when no trial reaches the statement's domain), then
        one observation per configuration.

    Raises:
        ValueError: If ``alpha`` is not in ``(0, 1)`` or ``result`` is not the
            experiment's JSON.
    """
    if not (isinstance(alpha, float | int) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    entries = searched(result)
    grid = np.asarray(result["eta"], dtype=float)
    out: list[Claim] = []
    for group, info in result["groups"].items():
        axes = list(info["axes"])
        for norm in info["norms"] or [None]:
            items = [r for g, r in entries if g == group and r.norm == norm]
            if not items:
                continue
            st = STATEMENTS[items[0].statement]
            if not any(
                _reaches_domain(st, grid, r.adversarial.min_inner) for r in items
            ):
                out.append(_domain_claim(group, items, grid, alpha))
            else:
                out += _trend_claims(group, items, axes, grid, alpha)
            out += [_comparison_claim(group, r, axes, grid, alpha) for r in items]
    return out
