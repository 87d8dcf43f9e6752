"""A claim, the evidence behind it, and the one verdict rule every claim uses.

A :class:`Claim` states which statement it tests and of what *kind* that
statement is (:class:`Kind`); only a claim about the theorem's inequality can
call a theorem violated. Its verdict comes from its :class:`Evidence`: each
piece is one hypothesis test whose rejection either supports the claim or
contradicts it. After the report's family of tests has been adjusted for
multiplicity (:func:`montecarlo.claims.adjust`), the verdict is:

1. ``inconclusive`` when the smallest sample behind the test has fewer than
   ``min_trials`` finite trials;
2. ``violated`` when a contradicting test rejects at ``alpha`` (adjusted p);
3. ``consistent`` when a supporting test rejects at ``alpha``;
4. otherwise the claim's ``default`` (``inconclusive``, or ``consistent`` for a
   claim whose null hypothesis is the claim itself, such as "the bound holds",
   when the test had the power to reject it).

A claim over several admissible ensembles (:attr:`Claim.parts`) is
``consistent`` or ``violated`` only when every ensemble says so, and
``ensemble-dependent`` when one ensemble supports it and another contradicts
it: such a verdict is a property of the ensembles, not of the theorem.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence

from bounds import STATEMENTS

__all__ = [
    "statement_title",
    "statement_order",
    "Kind",
    "KIND_TITLES",
    "VERDICTS",
    "Evidence",
    "Claim",
    "format_p",
]


class Kind(enum.Enum):
    """Which kind of statement a claim tests (decides what its verdict may say)."""

    INEQUALITY = "inequality"
    """The theorem's inequality for some constant: one ``c`` for every
    configuration, or the tail's rate. Only this kind can violate a theorem."""

    PROSE = "prose"
    """The paper's qualitative statements ("wider is easier"), tested in the
    direction the paper states; "independent of" as an equivalence."""

    OBSERVATION = "observation"
    """What one ensemble shows; reported, never a verdict on a theorem."""

    USER_CONSTANT = "user constant"
    """The bound at a constant the user chose (``c = 1``, ``--c``); the paper
    fixes none, so this is never a verdict on a theorem."""


KIND_TITLES = {
    Kind.INEQUALITY: "The theorems' inequalities (for some constant c)",
    Kind.PROSE: "The paper's qualitative statements",
    Kind.OBSERVATION: "Observations about one ensemble (not verdicts on a theorem)",
    Kind.USER_CONSTANT: "Checks at a user-given constant (not verdicts on a theorem)",
}

VERDICTS = ("consistent", "violated", "inconclusive", "ensemble-dependent")

_OTHER_TITLES = {
    "section 2": "Section 2 (orthogonal data: zero confusion)",
    "3.1": "Theorem 3.1 (SGD on smooth PL losses)",
    "3.2 derived": "Theorem 3.2, derived form (with the 1/alpha)",
    "3.2 printed": "Theorem 3.2 as printed",
    "figure 1": "Figure 1 (SGD, linear regression, d = 120 vs 80)",
    "lemma B.1": "Lemma B.1 (max |<x_i, x_j>| = O(1/sqrt(d)) on the sphere)",
    "contrast": "Contrast ensemble (no bound)",
    "section 7": "Section 7 (trained networks, Figures 2-4)",
    "section 8 mini-batch": "Section 8 (mini-batches: variance ~ 1/B^2)",
}


def statement_order() -> list[str]:
    """Every statement key in report order (the paper's order)."""
    keys = list(_OTHER_TITLES)
    return keys[:4] + list(STATEMENTS) + keys[4:]  # SGD first, then 4.1 .. 6.1


def statement_title(key: str) -> str:
    """The title of a statement key, e.g. ``"Theorem 5.1 (small weights, ...)"``."""
    if key in STATEMENTS:
        return STATEMENTS[key].full_title
    return _OTHER_TITLES.get(key, key)


def format_p(p: float) -> str:
    """``"p = 0.013"``, ``"p = 3.2e-28"``, ``"p < 1e-300"`` or ``"p = n/a"``."""
    if math.isnan(p):
        return "p = n/a"
    if p < 1e-300:
        return "p < 1e-300"
    return f"p = {p:.2g}" if p < 1e-3 else f"p = {p:.3f}"


@dataclasses.dataclass(frozen=True)
class Evidence:
    """One hypothesis test behind a claim.

    Attributes:
        hypothesis: The alternative the test accepts on rejection, in words,
            e.g. ``"confusion rises with depth (one-sided Spearman)"``.
        p_value: The raw p-value (NaN when no test was possible).
        supports: ``True`` if rejecting the null supports the claim,
            ``False`` if it contradicts it.
        p_adjusted: The p-value adjusted over the report's family (NaN until
            :func:`montecarlo.claims.adjust` has run, or when the claim is not
            in the family).
    """

    hypothesis: str
    p_value: float
    supports: bool
    p_adjusted: float = math.nan

    def __post_init__(self) -> None:
        p = float(self.p_value)
        if not (math.isnan(p) or 0.0 <= p <= 1.0):
            raise ValueError(f"p_value must be in [0, 1] or NaN, got {self.p_value!r}")

    @property
    def p(self) -> float:
        """The p-value the verdict uses: adjusted when available, else raw."""
        return self.p_value if math.isnan(self.p_adjusted) else self.p_adjusted


@dataclasses.dataclass(frozen=True)
class Claim:
    """One row of the report: a statement, the test of it, and its verdict.

    Attributes:
        statement: The statement the claim is about: a key of
            :data:`bounds.STATEMENTS` (``"4.1 part 2"``, ...), or another
            statement of the paper (``"3.1"``, ``"3.2 printed"``,
            ``"3.2 derived"``, ``"figure 1"``, ``"section 7"``, ...).
        kind: What kind of statement this is (:class:`Kind`).
        claim: The claim in words.
        test: The test procedure, in words.
        statistic: Effect sizes and estimates, in words and numbers.
        evidence: The hypothesis tests that decide the verdict.
        alpha: Level of every test (family-wise after adjustment).
        n_min: Finite trials (or runs) in the smallest sample behind the test.
        min_trials: Fewest ``n_min`` for a decisive verdict.
        default: Verdict when no test rejects (``"inconclusive"`` or
            ``"consistent"``).
        default_reason: Why, when the default applies.
        figure: Stem of the figure that shows the claim, or ``None``.
        source: ``"Monte Carlo"`` or the experiment's name.
        ensemble: The weight ensemble the claim was tested on, or ``None``.
        variant: ``"raw"`` (Definition 2.1), ``"normalized"`` or
            ``"averaged"`` (Section 8), or ``"-"`` where it does not apply.
        parts: Per-ensemble claims that this claim aggregates (see the
            module docstring); their evidence is the claim's evidence.
        prespecified: Whether the claim and its direction were fixed before
            the data were seen.
    """

    statement: str
    kind: Kind
    claim: str
    test: str
    statistic: str
    evidence: tuple[Evidence, ...] = ()
    alpha: float = 0.05
    n_min: int = 0
    min_trials: int = 30
    default: str = "inconclusive"
    default_reason: str = "no test rejects"
    figure: str | None = None
    source: str = "Monte Carlo"
    ensemble: str | None = None
    variant: str = "raw"
    parts: tuple[Claim, ...] = ()
    prespecified: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.kind, Kind):
            raise ValueError(f"kind must be a Kind, got {self.kind!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.default not in ("inconclusive", "consistent"):
            raise ValueError(
                f"default must be 'inconclusive' or 'consistent', got {self.default!r}"
            )
        if self.parts and self.evidence:
            raise ValueError("a claim with parts takes its evidence from the parts")

    @classmethod
    def over_ensembles(cls, parts: Sequence[Claim]) -> Claim:
        """One claim over several admissible ensembles (see the module docstring).

        Args:
            parts: The same claim tested on each ensemble (their ``ensemble``
                set); they become observations, and the aggregate's verdict is
                the theorem's only when they agree.
        """
        first = parts[0]
        return cls(
            statement=first.statement,
            kind=first.kind,
            claim=first.claim,
            test=f"{first.test}; per admissible ensemble",
            statistic=" | ".join(f"{p.ensemble}: {p.statistic}" for p in parts),
            alpha=first.alpha,
            figure=first.figure,
            source=first.source,
            variant=first.variant,
            ensemble="every admissible ensemble",
            parts=tuple(dataclasses.replace(p, kind=Kind.OBSERVATION) for p in parts),
        )

    @property
    def counts_as_verdict(self) -> bool:
        """Whether the verdict bears on the paper (inequality or prose kinds)."""
        return self.kind in (Kind.INEQUALITY, Kind.PROSE)

    def all_evidence(self) -> tuple[Evidence, ...]:
        """The claim's evidence, or that of all its parts."""
        if self.parts:
            return tuple(e for part in self.parts for e in part.all_evidence())
        return self.evidence

    def _decide(self) -> tuple[str, str]:
        if self.parts:
            verdicts = [p.verdict for p in self.parts]
            names = ", ".join(
                f"{p.ensemble}: {v}" for p, v in zip(self.parts, verdicts, strict=True)
            )
            if "consistent" in verdicts and "violated" in verdicts:
                return "ensemble-dependent", (
                    f"the verdict depends on the admissible ensemble ({names}): a "
                    "property of the ensembles, not of the theorem"
                )
            if all(v == verdicts[0] for v in verdicts):
                return verdicts[0], f"the same in every admissible ensemble ({names})"
            return "inconclusive", f"not decided in every ensemble ({names})"
        if self.n_min < self.min_trials:
            return "inconclusive", (
                f"too few trials: the smallest sample has {self.n_min}, the test "
                f"needs >= {self.min_trials}"
            )
        against = [e for e in self.evidence if not e.supports and e.p < self.alpha]
        if against:
            e = min(against, key=lambda e: e.p)
            return (
                "violated",
                f"rejected at {self.alpha:g}: {e.hypothesis} ({self._p(e)})",
            )
        support = [e for e in self.evidence if e.supports and e.p < self.alpha]
        if support:
            e = min(support, key=lambda e: e.p)
            return (
                "consistent",
                f"significant at {self.alpha:g}: {e.hypothesis} ({self._p(e)})",
            )
        if not self.evidence:
            return self.default, self.default_reason
        if all(math.isnan(e.p) for e in self.evidence):
            return "inconclusive", "no test possible (empty or constant sample)"
        return self.default, self.default_reason

    @staticmethod
    def _p(e: Evidence) -> str:
        if math.isnan(e.p_adjusted):
            return format_p(e.p_value)
        return f"adjusted {format_p(e.p_adjusted)}, raw {format_p(e.p_value)}"

    @property
    def verdict(self) -> str:
        """One of :data:`VERDICTS` (see the module docstring for the rule)."""
        return self._decide()[0]

    @property
    def reason(self) -> str:
        """Why the verdict is what it is, in one sentence."""
        return self._decide()[1]

    @property
    def p_values(self) -> str:
        """Raw and adjusted p-values of the evidence, side by side."""
        parts = []
        for e in self.all_evidence():
            raw = format_p(e.p_value)
            adj = (
                ""
                if math.isnan(e.p_adjusted)
                else f" (adj. {format_p(e.p_adjusted)[2:]})"
            )
            parts.append(f"{raw}{adj}")
        return "; ".join(parts) if parts else "n/a"
