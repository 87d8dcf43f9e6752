"""Claims from the stored experiments: the SGD check and Figure 1.

The experiments store their data and, for the SGD bounds, the tests of
:mod:`montecarlo.claims._tests` computed at run time on the per-step means
and standard errors (``p_above``: the expectation exceeds the bound at some
checkpoint; ``p_below``: it is below it at every checkpoint). Here they are
combined over instances: a bound is contradicted when some instance exceeds
it (Bonferroni over instances), and supported when every instance stays
below it (intersection-union: the largest ``p_below``).

Statements: ``"3.1"`` (Theorem 3.1), ``"3.2 printed"`` and ``"3.2 derived"``
(the two readings of Theorem 3.2, THEORY.md section 3), ``"section 2"``
(orthogonal data have zero confusion) and ``"figure 1"``. Theorems 3.1 and
3.2 carry no unknown constant, so testing them on an instance tests their
inequality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from montecarlo.claims import _tests as t
from montecarlo.claims._claim import Claim, Evidence, Kind
from montecarlo.claims._lemma_minibatch import lemma_b1_claims, minibatch_claims
from montecarlo.claims._section7 import section7_claims
from montecarlo.claims._tails import tail_claims
from montecarlo.claims._worst_case import worst_case_claims

__all__ = ["MIN_RUNS", "sgd_claims", "figure1_claims", "experiment_claims"]

MIN_RUNS = 30
"""Fewest SGD runs behind a CLT interval for a decisive verdict."""

_FORMS = {
    "theorem_3_1": ("3.1", "Theorem 3.1"),
    "theorem_3_2_derived": ("3.2 derived", "derived Theorem 3.2"),
    "theorem_3_2_printed": ("3.2 printed", "printed Theorem 3.2"),
}


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "inf" if x is not None and x > 0 else "n/a"
    return f"{x:.3g}"


def _bound_claim(
    key: str, loss: str, checks: Sequence[dict], alpha: float, test: str
) -> Claim:
    """``key``'s bound holds on every instance of one loss."""
    statement, title = _FORMS[key]
    rows = [
        (c["name"], c["evidence"][key], c["info"])
        for c in checks
        if key in c["evidence"]
    ]
    claim = f"{title} holds on {loss} regression"
    if not rows:
        return Claim(
            statement=statement,
            kind=Kind.INEQUALITY,
            claim=claim,
            test=test,
            statistic="no instance checked",
            alpha=alpha,
            default_reason="not applicable to any instance",
            source="sgd_check",
        )
    p_above = min(1.0, len(rows) * min(e["p_above"] for _, e, _ in rows))
    p_below = max(e["p_below"] for _, e, _ in rows)
    worst = min(rows, key=lambda r: r[1]["p_above"])
    loose = "; ".join(
        f"{nm}: bound / mean >= {_fmt(e['bound_over_mean'])}" for nm, e, _ in rows
    )
    stat = (
        f"{len(rows)} instances; {loose}; largest lower limit / bound "
        f"{_fmt(worst[1]['max_lower_over_bound'])} ({worst[0]}, T = "
        f"{worst[1]['worst_T']})"
    )
    return Claim(
        statement=statement,
        kind=Kind.INEQUALITY,
        claim=claim,
        test=test,
        statistic=stat,
        evidence=(
            Evidence(
                "the expectation exceeds the bound on some instance", p_above, False
            ),
            Evidence(
                "the expectation is below the bound on every instance", p_below, True
            ),
        ),
        alpha=alpha,
        n_min=min(int(i["runs"]) for _, _, i in rows),
        min_trials=MIN_RUNS,
        default_reason="the bound lies inside the confidence band somewhere",
        figure=f"sgd_check_{worst[0]}",
        source="sgd_check",
    )


def sgd_claims(result: dict, *, alpha: float = 0.05) -> list[Claim]:
    """Claims of ``sgd_check.json`` (Theorems 3.1 and 3.2 on toy models)."""
    checks = result["instances"]
    runs = result["runs"]
    test = (
        f"one-sided z-tests of the Monte Carlo mean over {runs} SGD runs per instance "
        f"({runs // 2} for logistic regression; B = 1, with replacement) against the "
        "bound at every checkpoint: exceeding it somewhere (Bonferroni over "
        "checkpoints and instances), or staying below it everywhere "
        "(intersection-union); Theorem 3.2 on min_{k<T} E||grad F(w_k)||^2"
    )
    out = []
    for loss, name in (("square", "linear"), ("logistic", "logistic")):
        sel = [c for c in checks if c["info"]["loss"] == loss]
        for key in ("theorem_3_1", "theorem_3_2_derived", "theorem_3_2_printed"):
            if loss == "logistic" and key == "theorem_3_1":
                continue  # no positive PL constant: not applicable
            out.append(_bound_claim(key, name, sel, alpha, test))
    scan = result.get("scan", [])
    if scan:
        p = np.array([r["printed"]["p_above"] for r in scan])
        i = int(np.argmin(p))
        ce = scan[i]
        at_1 = [r["printed"]["p_above"] for r in scan if r["scale"] == 1.0]
        stat = (
            f"{len(scan)} cells (input scales {sorted({r['scale'] for r in scan})}, "
            f"alpha fractions {sorted({r['alpha_fraction'] for r in scan})}); "
            f"strongest: {ce['loss']} regression on {ce['data']} data (n={ce['n']}, "
            f"d={ce['d']}), scale {ce['scale']:g}, alpha = {ce['alpha_fraction']:g} "
            f"* 2/(n L), T = {ce['printed']['worst_T']}: lower limit / bound = "
            f"{_fmt(ce['printed']['max_lower_over_bound'])}"
        )
        big = max(scan, key=lambda r: r["printed"]["max_lower_over_bound"] or 0.0)
        stat += (
            "; largest lower limit / bound "
            f"{_fmt(big['printed']['max_lower_over_bound'])}"
            f" (scale {big['scale']:g}, alpha = {big['alpha_fraction']:g} * 2/(n L), "
            f"{big['data']} data)"
        )
        if at_1:
            stat += f"; at input scale 1 the smallest raw p is {min(at_1):.2g}"
        out.append(
            Claim(
                statement="3.2 printed",
                kind=Kind.INEQUALITY,
                claim="printed Theorem 3.2 holds under rescaling of the inputs",
                test=(
                    "scan over input scale and alpha: one-sided z-tests per cell as "
                    "above; Bonferroni over cells"
                ),
                statistic=stat,
                evidence=(
                    Evidence(
                        "the expectation exceeds the bound in some cell",
                        min(1.0, len(scan) * float(p[i])),
                        False,
                    ),
                ),
                alpha=alpha,
                n_min=int(result["scan_runs"]),
                min_trials=MIN_RUNS,
                default="consistent",
                default_reason="no cell exceeds the bound",
                figure="sgd_printed_scan",
                source="sgd_check",
            )
        )
    ortho = [c for c in checks if c["info"].get("data") == "orthogonal"]
    if ortho:
        max_eta = max(c["info"]["eta"] for c in ortho)
        zero = max_eta == 0.0
        out.append(
            Claim(
                statement="section 2",
                kind=Kind.PROSE,
                claim=(
                    "orthogonal data: gradient confusion is exactly 0 along SGD paths "
                    f"({', '.join(sorted({c['info']['loss'] for c in ortho}))} loss)"
                ),
                test=(
                    "exact Gram (c c^T) o (X X^T) at every iterate of every run (no "
                    "sampling error)"
                ),
                statistic=(
                    f"max eta over all iterates of {len(ortho)} instances = "
                    f"{max_eta:.3g}"
                ),
                evidence=(
                    Evidence(
                        "exact: eta = 0 at every iterate"
                        if zero
                        else "exact: eta > 0 at some iterate",
                        0.0,
                        zero,
                    ),
                ),
                alpha=alpha,
                n_min=MIN_RUNS,
                min_trials=MIN_RUNS,
                figure=f"sgd_check_{ortho[0]['name']}",
                source="sgd_check",
            )
        )
    return out


def _censored(xs: list, T: int) -> np.ndarray:
    return np.array([float(T + 1) if x is None else float(x) for x in xs])


def figure1_claims(result: dict, *, alpha: float = 0.05) -> list[Claim]:
    """Claims of ``figure1.json``: over-parameterized is faster and less confused."""
    dims = result["settings"]["dims"]
    eps = result["settings"]["claim_threshold"]
    key = f"{eps:g}"
    out = []
    for block_name, label in (
        ("paper_step", ""),
        ("theorem_step", " at the theorems' step"),
        ("noise_free", " (ablation: noise-free labels)"),
    ):
        block = result[block_name]
        big, small = (block["models"][str(d)] for d in dims)
        T = block["T"]
        a = _censored(big["iterations_to"][key]["gap"], T)
        b = _censored(small["iterations_to"][key]["gap"], T)
        p_gt, p_lt = t.two_sample(a, b)

        def summary(xs: list, d: int) -> str:
            hit = [x for x in xs if x is not None]
            med = f"median {np.median(hit):.0f}" if hit else "none"
            return f"d={d}: {len(hit)}/{len(xs)} runs, {med}"

        out.append(
            Claim(
                statement="figure 1",
                kind=Kind.PROSE,
                claim=(
                    f"Figure 1{label}: the over-parameterized model (d={dims[0]}) "
                    f"converges faster than d={dims[1]}"
                ),
                test=(
                    "one-sided Mann-Whitney tests on per-run iterations to reach "
                    f"F - F* <= {eps:g} (F(w_0) - F*) (not reached: censored at "
                    f"T + 1), alpha = {block['alpha_label']}, T = {T}"
                ),
                statistic=(
                    summary(big["iterations_to"][key]["gap"], dims[0])
                    + "; "
                    + summary(small["iterations_to"][key]["gap"], dims[1])
                ),
                evidence=(
                    Evidence(f"d={dims[0]} needs fewer iterations", p_lt, True),
                    Evidence(f"d={dims[0]} needs more iterations", p_gt, False),
                ),
                alpha=alpha,
                n_min=min(a.size, b.size),
                min_trials=5,
                default_reason="no significant difference",
                figure=block["figure"].removesuffix(".png"),
                source="figure1",
            )
        )
    big, small = (result["paper_step"]["models"][str(d)] for d in dims)
    for which, text in (
        ("eta_path", "along the whole path"),
        ("eta_final", "at the last iterate"),
    ):
        p_gt, p_lt = t.two_sample(big[which], small[which])
        out.append(
            Claim(
                statement="figure 1",
                kind=Kind.PROSE,
                claim=(
                    f"Figure 1: the over-parameterized model (d={dims[0]}) has lower "
                    f"gradient confusion than d={dims[1]} {text}"
                ),
                test=(
                    "one-sided Mann-Whitney tests on per-run eta = max(0, -min_{i!=j} "
                    f"G_ij) {text}"
                ),
                statistic=(
                    f"median eta: d={dims[0]} {np.median(big[which]):.3g}, "
                    f"d={dims[1]} {np.median(small[which]):.3g}"
                ),
                evidence=(
                    Evidence(f"d={dims[0]} is less confused", p_lt, True),
                    Evidence(f"d={dims[0]} is more confused", p_gt, False),
                ),
                alpha=alpha,
                n_min=len(big[which]),
                min_trials=5,
                default_reason="no significant difference",
                figure="figure1",
                source="figure1",
            )
        )
    return out


def experiment_claims(name: str, result: dict, *, alpha: float = 0.05) -> list[Claim]:
    """The claims of a stored experiment ``name`` (its JSON ``result``).

    Raises:
        ValueError: On an experiment without claims.
    """
    if name == "sgd_check":
        return sgd_claims(result, alpha=alpha)
    if name == "figure1":
        return figure1_claims(result, alpha=alpha)
    if name in ("real_data", "real_data_cnn"):
        return section7_claims(result, alpha=alpha, source=name)
    if name == "lemma_b1":
        return lemma_b1_claims(result, alpha=alpha)
    if name == "minibatch":
        return minibatch_claims(result, alpha=alpha)
    if name == "adversarial":
        return worst_case_claims(result, alpha=alpha)
    if name == "tail":
        return tail_claims(result, alpha=alpha)
    raise ValueError(
        "name must be one of sgd_check, figure1, real_data, real_data_cnn, "
        f"lemma_b1, minibatch, adversarial, tail, got {name!r}"
    )
