"""Every claim of a results directory, adjusted, ordered, and summarized.

:func:`collect` is what the command line and the report call: the Monte Carlo
claims of the stored trials and the claims of every stored experiment, in the
paper's order of statements, Holm-adjusted over the family of
:data:`montecarlo.claims.FAMILY`. :func:`summary` is the console's end-of-run
text: the claims grouped by kind, with counts and the one-line reason of
every violated (or ensemble-dependent) claim.
"""

from __future__ import annotations

from collections.abc import Sequence

from montecarlo._results import StoredRun
from montecarlo.claims._claim import (
    KIND_TITLES,
    VERDICTS,
    Claim,
    Kind,
    statement_order,
    statement_title,
)
from montecarlo.claims._experiments import experiment_claims
from montecarlo.claims._family import FAMILY, adjust
from montecarlo.claims._monte_carlo import monte_carlo_claims

__all__ = ["collect", "summary", "by_kind"]


def collect(run: StoredRun, *, c: float = 1.0, confidence: float = 0.95) -> list[Claim]:
    """Every claim of ``run``, in statement order, Holm-adjusted.

    Args:
        run: The stored run (:func:`montecarlo.load_run`).
        c: The user-given constant of the *user constant* claims.
        confidence: ``1 - alpha`` of every test (family-wise).
    """
    alpha = 1.0 - confidence
    claims = monte_carlo_claims(run, c=c, confidence=confidence)
    for name, result in run.experiments.items():
        claims += experiment_claims(name, result, alpha=alpha)
    order = {k: i for i, k in enumerate(statement_order())}
    claims.sort(key=lambda cl: order.get(cl.statement, len(order)))
    return adjust(claims)


def by_kind(claims: Sequence[Claim]) -> dict[Kind, list[Claim]]:
    """The claims grouped by kind, in :class:`Kind` order."""
    return {k: [c for c in claims if c.kind is k] for k in Kind}


def summary(claims: Sequence[Claim], *, width: int = 110) -> str:
    """The console summary: per kind, verdict counts and the notable claims.

    Under each kind, the violated and ensemble-dependent claims, grouped by
    statement, each with its one-line reason.
    """

    def cut(text: str, n: int) -> str:
        return text if len(text) <= n else text[: n - 3] + "..."

    lines = [f"{len(claims)} claims; multiplicity: {FAMILY}."]
    for kind, group in by_kind(claims).items():
        if not group:
            continue
        counts = {v: sum(c.verdict == v for c in group) for v in VERDICTS}
        shown = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        lines += ["", f"{KIND_TITLES[kind]}: {shown}"]
        notable = [c for c in group if c.verdict in ("violated", "ensemble-dependent")]
        for statement in dict.fromkeys(c.statement for c in notable):
            lines.append(f"  {cut(statement_title(statement), width - 2)}")
            for c in notable:
                if c.statement == statement:
                    lines.append(f"    {c.verdict.upper()}: {cut(c.claim, width - 24)}")
                    lines.append(f"      {cut(c.reason, width - 6)}")
    return "\n".join(lines)
