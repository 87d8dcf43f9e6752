r"""Worst-case search for the uniform statements, and its held-out adversarial ``c*``.

Three statements of the paper (THEORY.md sections 4, 5 and 7) are uniform over
a class, which random sampling alone cannot contradict:

==================  ==========================================================
``"5.1"``           Theorem 5.1: *any* weights with ``||W_p||_2 <= 1`` for
                    every layer ``p`` (Assumption 1), random sphere data.
``"corollary_5.1"`` Corollary 5.1: for weights ``W`` that satisfy Assumption 1,
                    the bound holds *uniformly for all* ``W'`` in the ball
                    ``B_r(W)``, random sphere data. Read as the paper states
                    it: the probability is that of the event "for all ``W'``
                    in the ball, the confusion is at most ``eta``", so a data
                    draw fails when *some* ``W'`` of the ball fails on it
                    (:func:`uniform_min_inner` maximizes per held-out draw).
                    ``W`` is arbitrary too, so the search moves the centre
                    ``W`` (Assumption 1) and the offset ``D = W' - W`` (the
                    ball); with ``r = 0`` it is Theorem 5.1's search. ``W'``
                    itself need not satisfy Assumption 1 (the corollary asks
                    it of the centre only). The paper does not state the
                    ball's norm; a search uses one of :data:`NORMS` and says
                    which: ``"operator"`` (``||W'_p - W_p||_2 <= r`` for every
                    ``p``) or ``"frobenius"`` (``||W' - W||_F <= r`` over all
                    weights).
``"4.1 part 1"``    Theorem 4.1 part 1: a *fixed but arbitrary* dataset with
                    ``||x_i|| <= 1``, random Strategy 4.1 weights. The search
                    moves ``X``; the labels follow it, ``y = C(X)`` with the
                    configuration's labeling function ``C`` (the one drawn with
                    its fixed data), differentiably, so ``|C| <= 1`` and
                    ``||grad C|| <= 1`` keep holding. ``random_signs`` labels
                    are not a function of ``x``: they stay fixed.
==================  ==========================================================

Notation: ``n`` samples (the paper's ``N``), ``d`` input dimension, ``p`` a
layer, ``width`` the hidden width, ``beta`` = ``depth``; ``eta`` a confusion
level, ``zeta_0 = 2 sqrt(beta)``, ``kappa`` the Strategy 4.1 variance scale;
``m`` draws per step, ``R`` restarts, ``T`` held-out trials. The confusion of
one draw is ``eta(G) = max(0, -min_{i != j} G_ij)`` (Definition 2.1).

**Objective.** For a point ``theta`` (the weights, or the data) and a batch of
``m`` draws ``b`` of the random part (data, or weights), with ``G_b`` from
:func:`theory._torch_gram.gram_torch` and ``c_b = -softmin_t(G_b)`` the soft
confusion (soft minimum at temperature ``t = temperature * max_i (G_b)_ii``),
each step ascends the failure surrogate

.. math::

    \hat P(\theta) = \frac1m \sum_b \operatorname{sigmoid}\Big(
    \frac{c_b - \eta_k}{\tau_k}\Big), \qquad
    \eta_k = \operatorname{quantile}_q(c_1, \dots, c_m), \quad
    \tau_k = \tau \max(\operatorname{std}(c), |\eta_k|),

at a level ``eta_k`` re-set at every step to the batch's ``q``-quantile (held
constant in the gradient): the ascent pushes the upper tail of the confusion
distribution (above its ``q``-quantile) up, whatever the scale of ``G``, and
never saturates. Restart ``s`` uses ``q = quantiles[s % len(quantiles)]``.

**Search.** Projected ascent with Adam's moments, but one second moment per
restart (the mean square of the restart's whole gradient) instead of one per
coordinate: the step is ``lr`` times the momentum over its RMS, so it points
along the (averaged) gradient, and the fixed points of "step, then project"
are the stationary points of the constrained problem. (Per-coordinate Adam
followed by a projection stalls where the sign pattern of the gradient, not
the gradient, is normal to the set: on the closed-form instances of the tests
it stopped 10-25% short of the optimum.) The gradient is that of
``tau_k P_hat``, whose scale does not swing with ``tau_k``. The step size is
annealed by a cosine to 0 over ``steps``; after every step the point is
projected back onto the constraint set (:func:`project_spectral`,
:func:`project_operator_ball`, :func:`project_frobenius_ball`,
:func:`project_unit_rows`). The ``R`` restarts run at once, as a leading
batch dimension, on the same draws. Restart ``s`` starts from the
configuration's own ensemble drawn on the stream ``START_TRIAL_BASE + s``:
weights of its Assumption 1 ensemble (Theorem 5.1); a centre of the ensemble
``config.centre`` and a uniform point of the Frobenius ball around it, which
lies in both balls (Corollary 5.1); a data draw (Theorem 4.1 part 1).

**Streams** (Philox, :func:`montecarlo._rng.stream_key` of the seed and the
configuration, as every trial of the engine):

==============================================  ==============================
trial ``t < T`` (``T <= 2^62``)                 held-out estimation: the
                                                random part of trial ``t``,
                                                exactly the draws of the
                                                engine's trial ``t``
``SEARCH_TRIAL_BASE + k m + b``                 draw ``b`` of search step ``k``
``SELECT_TRIAL_BASE + j``                       selection draw ``j``
``START_TRIAL_BASE + s``                        start of restart ``s``
``FIXED_DATA_TRIAL = 2^64 - 1``                 the fixed data and labeling
                                                function (Theorem 4.1 part 1)
==============================================  ==============================

**Selection and estimation.** The final points of the restarts are compared on
``select_draws`` selection draws: the one with the smallest implied constant
``c*`` there (ties: the largest mean confusion) is the worst point found. Its
failure probability is then estimated on ``T`` fresh held-out draws with the
numpy reference (:func:`theory.gram`), so the estimate and its Clopper-Pearson
interval are honest: no held-out draw was seen by the search or the selection.
The held-out draws are those of the engine's trials ``0 .. T-1`` (data for the
weight searches, weights for the data search), so the random-ensemble estimate
on the same ``T`` trials (:func:`montecarlo._trial.run_trial`, the numpy
backend) is a paired comparison. For Corollary 5.1 the estimate is that of
the corollary's event: per held-out trial, :func:`uniform_min_inner` also
moves ``W'`` within the found centre's ball to fit that trial's data (a lower
bound on the event's probability); the estimate at the one found ``W'`` is
reported beside it. ``c*`` on both sides follows
:func:`montecarlo._estimates.theorem_summary`: :func:`bounds.implied_constant`
at the one-sided upper Clopper-Pearson limit, over the ``eta`` grid (Theorem
4.1 part 1: ``eta > 4`` only) up to its first point with no failure.

A search is a pure function of ``(config, eta grid, seed, budget, norm)``: the
draws come from Philox streams on the host, and on one device the torch
arithmetic is deterministic, so a rerun returns the same point (across devices,
the point may differ by rounding). The held-out estimate is a function of the
point, the seed and ``T``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

import bounds
import theory
from bounds import informative_length
from montecarlo import _samplers as samplers
from montecarlo._config import Config, _check_config, _check_value
from montecarlo._estimates import _failures
from montecarlo._rng import PhiloxStream, _uniform53, philox4x32, stream_key
from montecarlo._statements import bound_kwargs
from montecarlo._statements import statement_of as _statement
from montecarlo._stats import TRIAL_COLUMNS
from montecarlo._trial import (
    FIXED_DATA_TRIAL,
    _labeling_function,
    draw_centre,
    draw_data,
    draw_weights,
    run_trial,
)
from theory._torch_gram import (
    failure_surrogate,
    gram_torch,
    min_offdiag,
    soft_min_offdiag,
)

__all__ = [
    "NORMS",
    "SEARCH_TRIAL_BASE",
    "SELECT_TRIAL_BASE",
    "START_TRIAL_BASE",
    "STATEMENTS",
    "SWEEP_AXES",
    "AdversarialResult",
    "AscentTrace",
    "FULL_BUDGET",
    "HeldOutEstimate",
    "QUICK_BUDGET",
    "SearchBudget",
    "SearchResult",
    "adversarial_cstar",
    "adversarial_sweep",
    "heldout_estimate",
    "heldout_min_inner",
    "project_frobenius_ball",
    "project_operator_ball",
    "project_spectral",
    "project_unit_rows",
    "projected_ascent",
    "random_min_inner",
    "search",
    "soft_confusion",
    "statement_of",
    "uniform_min_inner",
]

STATEMENTS = ("5.1", "corollary_5.1", "4.1 part 1")
NORMS = ("operator", "frobenius")
SWEEP_AXES = ("n", "d", "depth", "width", "r", "kappa", "scale")

SEARCH_TRIAL_BASE = 2**62
SELECT_TRIAL_BASE = 2**62 + 2**61
START_TRIAL_BASE = 2**63
_RANGE = 2**61  # indices reserved for each of the three ranges above
_MAX_HELDOUT = 2**62
# Adam's moment decay rates (Kingma & Ba 2015); one second moment per restart
_BETA1, _BETA2 = 0.9, 0.999
_TINY = float(np.finfo(np.float64).tiny)

_CONSTRAINTS = {
    "5.1": "||W_p||_2 <= 1 for every layer p (Assumption 1)",
    ("corollary_5.1", "operator"): (
        "||W_p||_2 <= 1 and ||W'_p - W_p||_2 <= r for every layer p"
    ),
    ("corollary_5.1", "frobenius"): (
        "||W_p||_2 <= 1 for every layer p and ||W' - W||_F <= r over all weights"
    ),
    "4.1 part 1": "||x_i|| <= 1 for every sample i",
}


# --- budget ------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class SearchBudget:
    """What one search may spend, and the shape of its objective.

    Attributes:
        steps: Projected ascent steps per restart, >= 1.
        restarts: Restarts ``R`` (run together, as a batch dimension), >= 1.
        batch: Draws ``m`` of the random part per step, >= 1 (fresh draws at
            every step).
        lr: Initial step size (per coordinate, in RMS), > 0, annealed by a
            cosine to 0.
        temperature: Soft-minimum temperature relative to each draw's
            ``max_i G_ii`` (which bounds every ``|G_ij|``), > 0.
        tau: Surrogate temperature relative to ``max(std(c), |eta_k|)`` of the
            batch's soft confusions, > 0.
        quantiles: Levels ``q`` in ``(0, 1)`` of the adaptive target
            ``eta_k``; restart ``s`` uses ``quantiles[s % len(quantiles)]``.
        select_draws: Draws on which the restarts' final points are compared,
            >= 1.
        inner_steps: Corollary 5.1 only: steps of the per-trial maximization
            over the ball (:func:`uniform_min_inner`), >= 0 (0: the found
            point alone).
    """

    steps: int = 500
    restarts: int = 8
    batch: int = 64
    lr: float = 0.02
    temperature: float = 0.02
    tau: float = 0.25
    quantiles: tuple[float, ...] = (0.5, 0.9)
    select_draws: int = 256
    inner_steps: int = 50

    def __post_init__(self) -> None:
        problems = []
        for name in ("steps", "restarts", "batch", "select_draws"):
            value = getattr(self, name)
            if not (_is_int(value) and value >= 1):
                problems.append(f"{name} must be an integer >= 1, got {value!r}")
        if not (_is_int(self.inner_steps) and self.inner_steps >= 0):
            problems.append(
                f"inner_steps must be an integer >= 0, got {self.inner_steps!r}"
            )
        for name in ("lr", "temperature", "tau"):
            value = getattr(self, name)
            if not (_is_real(value) and math.isfinite(value) and value > 0):
                problems.append(f"{name} must be a finite number > 0, got {value!r}")
        q = self.quantiles
        if (
            not isinstance(q, tuple)
            or not q
            or not all(_is_real(v) and 0 < v < 1 for v in q)
        ):
            problems.append(
                f"quantiles must be a non-empty tuple of numbers in (0, 1), got {q!r}"
            )
        if not problems:
            if self.steps * self.batch > _RANGE:
                problems.append(
                    f"steps * batch must be <= 2^61 (the search's stream range), got "
                    f"{self.steps * self.batch}"
                )
            for name in ("restarts", "select_draws"):
                if getattr(self, name) > _RANGE:
                    problems.append(
                        f"{name} must be <= 2^61, got {getattr(self, name)}"
                    )
        if problems:
            raise ValueError("invalid SearchBudget: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """The budget as plain JSON types."""
        out = dataclasses.asdict(self)
        out["quantiles"] = list(self.quantiles)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchBudget:
        """The budget of :meth:`to_dict`'s output.

        Raises:
            ValueError: If a field is unknown or out of range.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(
                f"SearchBudget has the fields {sorted(fields)}, got unknown {unknown}"
            )
        values = dict(data)
        if "quantiles" in values:
            values["quantiles"] = tuple(values["quantiles"])
        return cls(**values)


FULL_BUDGET = SearchBudget()
"""The full budget: 8 restarts x 500 steps x 64 draws, 50 inner steps (see
``benchmarks/bench.py`` for its time at the quick suite's shapes)."""

QUICK_BUDGET = SearchBudget(
    steps=60, restarts=2, batch=16, select_draws=64, inner_steps=10
)
"""The quick suite's budget: 2 restarts x 60 steps x 16 draws, 10 inner steps
(a second or two)."""


# --- projections ---------------------------------------------------------------


def _check_tensors(name: str, tensors: object) -> list[torch.Tensor]:
    if isinstance(tensors, torch.Tensor) or not isinstance(tensors, Sequence):
        raise ValueError(
            f"{name} must be a list of tensors [W_0, ..., W_beta], got "
            f"{type(tensors).__name__}"
        )
    out = list(tensors)
    if not out or not all(
        isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() >= 2
        for t in out
    ):
        raise ValueError(
            f"{name} must be a non-empty list of floating tensors of shape "
            f"[..., rows, cols]"
        )
    return out


def _check_radius(r: object) -> float:
    if not (_is_real(r) and math.isfinite(r) and r >= 0):
        raise ValueError(f"r must be a finite number >= 0, got {r!r}")
    return float(r)


def _clip_singular_values(W: torch.Tensor, bound: float) -> torch.Tensor:
    """``U diag(min(s, bound)) V^T``; matrices already inside are returned as is."""
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    clipped = (U * S.clamp(max=bound)[..., None, :]) @ Vh
    outside = (S.amax(dim=-1) > bound)[..., None, None]
    return torch.where(outside, clipped, W)


def project_spectral(
    weights: Sequence[torch.Tensor], bound: float = 1.0
) -> list[torch.Tensor]:
    r"""Euclidean projection onto ``{W : ||W_p||_2 <= bound for every p}``.

    Layer by layer, the nearest matrix (in Frobenius norm) of operator norm at
    most ``bound`` is ``U diag(min(s_i, bound)) V^T`` for the SVD
    ``W_p = U diag(s) V^T`` (the singular values are clipped). Layers already
    inside are returned unchanged (bit for bit). Leading dimensions are a batch.

    Args:
        weights: ``[W_0, ..., W_beta]``, each of shape ``[..., rows, cols]``.
        bound: The operator-norm bound, finite and >= 0. Defaults to 1.0
            (Assumption 1).

    Returns:
        The projected layers (new tensors, no gradient).

    Raises:
        ValueError: If ``weights`` is not a list of floating tensors or
            ``bound`` is not a finite number >= 0.
    """
    Ws = _check_tensors("weights", weights)
    if not (_is_real(bound) and math.isfinite(bound) and bound >= 0):
        raise ValueError(f"bound must be a finite number >= 0, got {bound!r}")
    with torch.no_grad():
        return [_clip_singular_values(W, float(bound)) for W in Ws]


def _check_centre(weights: list[torch.Tensor], centre: object) -> list[torch.Tensor]:
    C = _check_tensors("centre", centre)
    if len(C) != len(weights) or any(
        c.shape[-2:] != w.shape[-2:] for c, w in zip(C, weights, strict=True)
    ):
        raise ValueError(
            "centre must have the layers' shapes of weights, got "
            f"{[tuple(c.shape) for c in C]} and {[tuple(w.shape) for w in weights]}"
        )
    return C


def project_operator_ball(
    weights: Sequence[torch.Tensor], centre: Sequence[torch.Tensor], r: float
) -> list[torch.Tensor]:
    r"""Projection onto the per-layer operator-norm ball ``||W'_p - W_p||_2 <= r``.

    The ball of Corollary 5.1 read in the operator norm of every layer: the
    set is a product over layers, so each layer is projected on its own, by
    clipping the singular values of ``W'_p - W_p`` at ``r`` (see
    :func:`project_spectral`).

    Args:
        weights: ``[W'_0, ..., W'_beta]``, each ``[..., rows, cols]``.
        centre: ``[W_0, ..., W_beta]`` of the same layer shapes (broadcast
            against ``weights``' leading dimensions).
        r: The radius, finite and >= 0.

    Returns:
        The projected layers (new tensors, no gradient).

    Raises:
        ValueError: If the layers do not match or ``r`` is not >= 0.
    """
    Ws = _check_tensors("weights", weights)
    C = _check_centre(Ws, centre)
    r = _check_radius(r)
    with torch.no_grad():
        return [c + _clip_singular_values(w - c, r) for w, c in zip(Ws, C, strict=True)]


def project_frobenius_ball(
    weights: Sequence[torch.Tensor], centre: Sequence[torch.Tensor], r: float
) -> list[torch.Tensor]:
    r"""Projection onto the Frobenius ball ``||W' - W||_F <= r`` over all weights.

    The ball of Corollary 5.1 in the Euclidean norm of all weights
    concatenated: with ``D = W' - W`` and ``||D||_F^2 = sum_p ||D_p||_F^2``,
    a point outside is moved radially, ``W + D r / ||D||_F``. Points inside
    are returned unchanged (bit for bit).

    Args:
        weights: ``[W'_0, ..., W'_beta]``, each ``[..., rows, cols]`` with the
            same leading (batch) dimensions.
        centre: ``[W_0, ..., W_beta]``, same layer shapes (broadcast).
        r: The radius, finite and >= 0.

    Returns:
        The projected layers (new tensors, no gradient).

    Raises:
        ValueError: If the layers do not match or ``r`` is not >= 0.
    """
    Ws = _check_tensors("weights", weights)
    C = _check_centre(Ws, centre)
    r = _check_radius(r)
    with torch.no_grad():
        D = [w - c for w, c in zip(Ws, C, strict=True)]
        norm = torch.sqrt(sum((d * d).sum(dim=(-2, -1)) for d in D))
        outside = norm > r  # then norm > 0
        factor = torch.where(outside, r / torch.where(outside, norm, 1.0), 1.0)
        return [
            torch.where(outside[..., None, None], c + d * factor[..., None, None], w)
            for w, c, d in zip(Ws, C, D, strict=True)
        ]


def project_unit_rows(X: torch.Tensor) -> torch.Tensor:
    """Projection of every row onto the unit ball, ``x_i / max(1, ||x_i||)``.

    The data set of Section 1 and Theorem 4.1 part 1 (``||x_i|| <= 1``). Rows
    already inside are returned unchanged (bit for bit).

    Args:
        X: ``[..., n, d]``, floating.

    Returns:
        The projected data (a new tensor, no gradient).

    Raises:
        ValueError: If ``X`` is not a floating tensor with at least 2 dimensions.
    """
    if not (isinstance(X, torch.Tensor) and X.is_floating_point() and X.dim() >= 2):
        raise ValueError(
            f"X must be a floating tensor of shape [..., n, d], got "
            f"{type(X).__name__} {getattr(X, 'shape', '')}"
        )
    with torch.no_grad():
        norm = torch.linalg.vector_norm(X, dim=-1, keepdim=True)
        outside = norm > 1.0
        return torch.where(outside, X / torch.where(outside, norm, 1.0), X)


# --- the ascent ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AscentTrace:
    """The end point and history of :func:`projected_ascent`.

    Attributes:
        params: The final (projected) point of every restart, detached; each
            tensor has the leading restart dimension ``R``.
        confusion: ``(steps, R)``: mean soft confusion ``c`` of the step's
            batch, per restart, before the step.
        objective: ``(steps, R)``: the surrogate ``P_hat`` of the step, per
            restart, before the step.
    """

    params: list[torch.Tensor]
    confusion: np.ndarray
    objective: np.ndarray


def soft_confusion(G: torch.Tensor, temperature: float) -> torch.Tensor:
    """``c = -softmin_t(G)`` with ``t = temperature * max_i G_ii`` per matrix.

    Args:
        G: ``[..., n, n]`` Gram matrices.
        temperature: Relative temperature, > 0.

    Returns:
        ``[...]``, the soft confusion of each matrix (``>= -min G``).
    """
    scale = torch.diagonal(G, dim1=-2, dim2=-1).amax(dim=-1).detach()
    t = temperature * scale.clamp_min(torch.finfo(G.dtype).tiny)
    return -soft_min_offdiag(G, t)


def _row_quantiles(values: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Row ``s`` of ``values`` ``[R, m]`` at its own level ``q[s]`` (linear
    interpolation between order statistics, as :func:`torch.quantile`)."""
    m = values.shape[-1]
    ordered = values.sort(dim=-1).values
    pos = q * (m - 1)
    lo = pos.floor().long().clamp(max=m - 1)
    hi = pos.ceil().long().clamp(max=m - 1)
    frac = pos - lo.to(pos.dtype)
    low = ordered.gather(-1, lo[:, None])[:, 0]
    high = ordered.gather(-1, hi[:, None])[:, 0]
    return low + frac * (high - low)


def projected_ascent(
    start: Sequence[torch.Tensor],
    gram_fn: Callable[[list[torch.Tensor], int], torch.Tensor],
    project: Callable[[list[torch.Tensor]], list[torch.Tensor]],
    budget: SearchBudget,
) -> AscentTrace:
    r"""Projected ascent on the adaptive failure surrogate, all restarts at once.

    At step ``k`` (``0 <= k < steps``): ``G = gram_fn(params, k)`` of shape
    ``[R, m, n, n]``; soft confusions ``c = -softmin(G)`` (:func:`soft_confusion`);
    per restart the level ``eta_k`` (the batch's ``q``-quantile of ``c``) and
    ``tau_k = tau * max(std(c), |eta_k|)``, both held constant in the gradient;
    ``P_hat = failure_surrogate(-c, eta_k, tau_k)`` and ``g`` the gradient of
    ``tau_k P_hat``. With Adam's rates ``(0.9, 0.999)`` and bias corrections,
    per restart: momentum ``M <- 0.9 M + 0.1 g``, one second moment
    ``V <- 0.999 V + 0.001 mean(g^2)`` over all the restart's coordinates,
    step ``lr_k M_hat / sqrt(V_hat)`` with ``lr_k = lr (1 + cos(pi k /
    steps)) / 2``; then the projection. The restarts do not interact.

    Args:
        start: The start of every restart, tensors with leading dimension
            ``R = budget.restarts`` (already inside the constraint set).
        gram_fn: ``(params, k) -> G`` of shape ``[R, m, n, n]``, differentiable
            in ``params``; it draws step ``k``'s batch.
        project: The projection onto the constraint set, applied to the list
            of parameters after every step.
        budget: Steps, restarts, step size, temperatures and quantiles.

    Returns:
        :class:`AscentTrace` with the final points and the history.

    Raises:
        ValueError: If ``start`` is not a list of floating tensors with leading
            dimension ``budget.restarts``, or ``gram_fn`` returns another shape.
    """
    if not isinstance(budget, SearchBudget):
        raise ValueError(f"budget must be a SearchBudget, got {type(budget).__name__}")
    R = budget.restarts
    if (
        isinstance(start, torch.Tensor)
        or not isinstance(start, Sequence)
        or not start
        or not all(
            isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() >= 1
            for t in start
        )
        or any(t.shape[0] != R for t in start)
    ):
        raise ValueError(
            f"start must be a non-empty list of floating tensors with leading "
            f"dimension budget.restarts = {R}"
        )
    like = start[0]
    params = [t.detach().clone() for t in start]
    momentum = [torch.zeros_like(t) for t in params]
    second = torch.zeros(R, dtype=like.dtype, device=like.device)
    size = sum(t[0].numel() for t in params)
    q = torch.tensor(
        [budget.quantiles[s % len(budget.quantiles)] for s in range(R)],
        dtype=like.dtype,
        device=like.device,
    )
    confusion = np.empty((budget.steps, R))
    objective = np.empty((budget.steps, R))
    for k in range(budget.steps):
        for p in params:
            p.requires_grad_(True)
        G = gram_fn(params, k)
        if G.dim() != 4 or G.shape[0] != R:
            raise ValueError(
                f"gram_fn must return G of shape [R, m, n, n] with R = {R}, got "
                f"{tuple(G.shape)}"
            )
        c = soft_confusion(G, budget.temperature)
        cd = c.detach()
        eta = _row_quantiles(cd, q)
        spread = torch.maximum(cd.std(dim=-1, correction=0), eta.abs())
        tau = budget.tau * spread.clamp_min(torch.finfo(cd.dtype).tiny)
        obj = failure_surrogate(-c, eta, tau)
        # tau_k P_hat: the same ascent direction at every step, at the scale of
        # grad c whatever tau_k (a 1 / tau_k factor would swing with the batch's
        # spread and leave the running second moment stale).
        grads = torch.autograd.grad((tau * obj).sum(), params)
        with torch.no_grad():
            params = [p.detach() for p in params]
            lr = budget.lr * 0.5 * (1.0 + math.cos(math.pi * k / budget.steps))
            square = sum((g * g).reshape(R, -1).sum(dim=1) for g in grads) / size
            second.mul_(_BETA2).add_((1 - _BETA2) * square)
            rms = torch.sqrt(second / (1 - _BETA2 ** (k + 1)))
            scale = lr / ((1 - _BETA1 ** (k + 1)) * rms.clamp_min(_TINY))
            for p, m, g in zip(params, momentum, grads, strict=True):
                m.mul_(_BETA1).add_((1 - _BETA1) * g)
                p.add_(m * scale.reshape((R,) + (1,) * (p.dim() - 1)))
            params = [p.contiguous() for p in project(params)]
        confusion[k] = cd.mean(dim=-1).cpu().numpy()
        objective[k] = obj.detach().cpu().numpy()
    return AscentTrace(params=params, confusion=confusion, objective=objective)


# --- configurations, draws and labels -----------------------------------------


def statement_of(config: Config) -> str:
    """The uniform statement a configuration's search addresses.

    Args:
        config: A configuration with ``theorem = "5.1"`` (an Assumption 1
            ensemble), ``"corollary_5.1"`` (``weights = "ball"``) or ``"4.1"``
            with ``fixed_data = true``.

    Returns:
        One of :data:`STATEMENTS`.

    Raises:
        ValueError: If ``config`` is not a :class:`Config`, is inconsistent
            (the spec rules of :mod:`montecarlo._config`), or tests another
            statement.
    """
    if not isinstance(config, Config):
        raise ValueError(f"config must be a Config, got {type(config).__name__}")
    problems = _check_config(config, "config")
    if problems:
        raise ValueError("inconsistent config: " + "; ".join(problems))
    if config.theorem in ("5.1", "corollary_5.1"):
        return config.theorem
    if config.theorem == "4.1" and config.fixed_data:
        return "4.1 part 1"
    raise ValueError(
        "config must test a uniform statement: theorem = '5.1', 'corollary_5.1', or "
        f"'4.1' with fixed_data = true; got theorem = {config.theorem!r}, "
        f"fixed_data = {config.fixed_data}"
    )


def _check_norm(statement: str, norm: object) -> str | None:
    if statement == "corollary_5.1":
        if norm not in NORMS:
            raise ValueError(
                f"norm must be one of {list(NORMS)} for Corollary 5.1 (the paper does "
                f"not state the ball's norm), got {norm!r}"
            )
        return str(norm)
    if norm is not None:
        raise ValueError(
            f"norm must be None for statement {statement!r} (only Corollary 5.1 has "
            f"a ball), got {norm!r}"
        )
    return None


def _check_eta(eta: object) -> np.ndarray:
    grid = np.atleast_1d(np.asarray(eta, dtype=np.float64))
    if (
        grid.ndim != 1
        or grid.size == 0
        or not np.all(np.isfinite(grid))
        or (grid < 0).any()
        or (np.diff(grid) <= 0).any()
    ):
        raise ValueError(
            f"eta must be a non-empty increasing 1-D grid of finite numbers >= 0, "
            f"got {eta!r}"
        )
    return grid


def _check_seed(seed: object) -> int:
    if not (_is_int(seed) and seed >= 0):
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def _check_confidence(confidence: object) -> float:
    if not (_is_real(confidence) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    return float(confidence)


class _Recorder:
    """A :class:`~montecarlo._samplers.NormalSource` that records its requests.

    It returns placeholders (ones, halves) so that a sampler runs to the end;
    the requests ``(kind, size)`` of a draw depend on the configuration only.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []

    def standard_normal(self, size: Any = None) -> Any:
        self.requests.append(("normal", size))
        return 1.0 if size is None else np.ones(size)

    def random(self, size: Any = None) -> Any:
        self.requests.append(("uniform", size))
        return 0.5 if size is None else np.full(size, 0.5)


def _philox_batch(
    key: tuple[int, int], trials: np.ndarray, requests: list[tuple[str, Any]]
) -> list[np.ndarray]:
    """Per request, ``(m, count)``: what ``PhiloxStream(key, t)`` draws, every ``t``.

    The arithmetic of :class:`montecarlo._rng.PhiloxStream` (a request of
    ``count`` numbers takes the next ``ceil(count / 2)`` blocks; uniforms
    ``u53``, normals by Box-Muller), for all trials in one Philox call.
    Vectorized ``log1p``/``cos``/``sin`` may differ from the one-trial path
    by an ulp, so the held-out trials keep :class:`PhiloxStream` itself.
    """
    t = np.asarray(trials, dtype=np.uint64)
    mask, shift = np.uint64(0xFFFFFFFF), np.uint64(32)
    out, block = [], 0
    for kind, size in requests:
        count = 1 if size is None else int(np.prod(size, dtype=np.int64))
        nb = (count + 1) // 2
        b = np.arange(block, block + nb, dtype=np.uint64)
        ctr = np.empty((t.size, nb, 4), dtype=np.uint64)
        ctr[..., 0] = b & mask
        ctr[..., 1] = b >> shift
        ctr[..., 2] = (t & mask)[:, None]
        ctr[..., 3] = (t >> shift)[:, None]
        x0, x1, x2, x3 = philox4x32(ctr.reshape(-1, 4), key)
        ua, ub = _uniform53(x0, x1), _uniform53(x2, x3)
        if kind == "normal":
            radius = np.sqrt(-2.0 * np.log1p(-ua))
            theta = 2.0 * np.pi * ub
            ua, ub = radius * np.cos(theta), radius * np.sin(theta)
        values = np.empty((t.size, 2 * nb))
        values[:, 0::2] = ua.reshape(t.size, nb)
        values[:, 1::2] = ub.reshape(t.size, nb)
        out.append(values[:, :count])
        block += nb
    return out


class _Replay:
    """Serves the numbers of trial ``i`` of :func:`_philox_batch`, in order."""

    def __init__(self, draws: list[np.ndarray], i: int) -> None:
        self._draws, self._i, self._next = draws, i, 0

    def _take(self, size: Any) -> Any:
        values = self._draws[self._next][self._i]
        self._next += 1
        return float(values[0]) if size is None else values.reshape(size)

    def standard_normal(self, size: Any = None) -> Any:
        return self._take(size)

    def random(self, size: Any = None) -> Any:
        return self._take(size)


def _batched(
    draw: Callable[[samplers.NormalSource], Any],
    key: tuple[int, int],
    indices: np.ndarray,
) -> list[Any]:
    """``draw(rng)`` on the streams ``indices``, with the Philox work batched."""
    recorder = _Recorder()
    draw(recorder)
    draws = _philox_batch(key, indices, recorder.requests)
    return [draw(_Replay(draws, i)) for i in range(len(indices))]


def _data_batch(
    config: Config, key: tuple[int, int], indices: np.ndarray, *, exact: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(X (m, n, d), y (m, n))``: the data of the streams ``indices``.

    ``exact``: one :class:`PhiloxStream` per trial (the engine's very draws,
    for held-out trials); else batched (:func:`_batched`, for the search).
    """
    if exact:
        draws = [draw_data(config, PhiloxStream(key, int(t))) for t in indices]
    else:
        draws = _batched(lambda rng: draw_data(config, rng), key, indices)
    return np.stack([X for X, _ in draws]), np.stack([y for _, y in draws])


def _weight_batch(
    config: Config, key: tuple[int, int], indices: np.ndarray
) -> list[np.ndarray]:
    """Per layer ``(m, l_p, l_{p-1})``: the weights of the streams ``indices``."""
    draws = _batched(lambda rng: draw_weights(config, rng)[0], key, indices)
    return [np.stack(layer) for layer in zip(*draws, strict=True)]


def _start_weights(
    config: Config, key: tuple[int, int], restarts: int
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Restart starts (and centres, for the ball): the ensemble's own draws."""
    starts, centres = [], []
    for s in range(restarts):
        rng = PhiloxStream(key, START_TRIAL_BASE + s)
        if config.weights == "ball":  # the centre's ensemble, then the ball
            centre = draw_centre(config, rng)
            starts.append(samplers.ball_around(rng, centre, config.r))
            centres.append(centre)
        else:  # the configuration's own ensemble (Assumption 1's, or Gaussian)
            starts.append(draw_weights(config, rng)[0])
    stack = [np.stack(layer) for layer in zip(*starts, strict=True)]
    if config.weights != "ball":
        return stack, None
    return stack, [np.stack(layer) for layer in zip(*centres, strict=True)]


def _start_data(config: Config, key: tuple[int, int], restarts: int) -> np.ndarray:
    """``(R, n, d)``: restart ``s`` starts at the data drawn on its stream."""
    draw = samplers.sphere if config.data == "sphere" else samplers.unit_ball
    return np.stack(
        [
            draw(PhiloxStream(key, START_TRIAL_BASE + s), config.n, config.d)
            for s in range(restarts)
        ]
    )


LabelTwin = Callable[[torch.Tensor], torch.Tensor]


def _label_twin(config: Config, rng: samplers.NormalSource) -> LabelTwin | None:
    """A torch twin of the labeling function ``_labeling_function(config, rng)``.

    Draws exactly what :func:`montecarlo._trial._labeling_function` draws, in
    the same order, and computes the same ``C`` (see :mod:`theory._labels`);
    ``None`` for ``random_signs``, whose labels do not depend on ``x``.
    """
    name, d = config.labels, config.d
    if name == "random_signs":
        return None
    if name == "constant":
        value = float(config.label_value)
        return lambda X: torch.full(X.shape[:-1], value, dtype=X.dtype, device=X.device)
    if name in ("linear_teacher", "tanh_teacher"):
        z = np.asarray(rng.standard_normal(d), dtype=np.float64)
        v = z / np.linalg.norm(z)
        if name == "linear_teacher":
            return lambda X: X @ torch.as_tensor(v, dtype=X.dtype, device=X.device)
        return lambda X: torch.tanh(
            X @ torch.as_tensor(v, dtype=X.dtype, device=X.device)
        )
    # network_teacher (default tanh): C(x) = a^T tanh(U x) / S, S = ||a|| ||U||_2
    U = np.asarray(rng.standard_normal((config.teacher_width, d)), dtype=np.float64)
    a = np.asarray(rng.standard_normal(config.teacher_width), dtype=np.float64)
    coef = a / (np.linalg.norm(a) * np.linalg.norm(U, 2))

    def network(X: torch.Tensor) -> torch.Tensor:
        Ut = torch.as_tensor(U, dtype=X.dtype, device=X.device)
        return torch.tanh(X @ Ut.mT) @ torch.as_tensor(
            coef, dtype=X.dtype, device=X.device
        )

    return network


def _fixed_labels(
    config: Config, key: tuple[int, int]
) -> tuple[Callable[[np.ndarray], np.ndarray], LabelTwin | None, np.ndarray]:
    """The fixed dataset's labeling function ``C``: numpy, torch twin, and ``y_0``.

    Both are drawn on the :data:`FIXED_DATA_TRIAL` stream right after the fixed
    data ``X_0``, as :func:`montecarlo._trial.fixed_data` draws them.
    """
    draw = samplers.sphere if config.data == "sphere" else samplers.unit_ball
    rng = PhiloxStream(key, FIXED_DATA_TRIAL)
    X0 = draw(rng, config.n, config.d)
    C = _labeling_function(config, rng)
    y0 = np.asarray(C(X0), dtype=np.float64)
    twin_rng = PhiloxStream(key, FIXED_DATA_TRIAL)
    draw(twin_rng, config.n, config.d)
    return C, _label_twin(config, twin_rng), y0


def _t(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(array, dtype=torch.float64, device=device)


def _net_kwargs(config: Config) -> dict[str, Any]:
    return dict(
        activation=config.activation,
        loss=config.loss,
        output_activation=config.output_activation,
        gamma=config.gamma,
    )


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch intra-op threads (None: leave it), then restore."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_threads(threads: object) -> int | None:
    if threads is not None and not (_is_int(threads) and threads >= 1):
        raise ValueError(f"threads must be None or an integer >= 1, got {threads!r}")
    return None if threads is None else int(threads)


# --- results -------------------------------------------------------------------


def _encode(value: Any) -> Any:
    """Plain JSON types; non-finite floats as the strings "inf", "-inf", "nan"."""
    if isinstance(value, np.ndarray):
        return _encode(value.tolist())
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    return value


def _float(value: Any) -> float:
    return float(value)


def _array(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _arrays(value: Any) -> list[np.ndarray] | None:
    return None if value is None else [_array(v) for v in value]


@dataclasses.dataclass(frozen=True, eq=False)
class SearchResult:
    """The worst point a search found, and how it got there.

    Attributes:
        statement: One of :data:`STATEMENTS`.
        norm: ``"operator"`` or ``"frobenius"`` for Corollary 5.1, else None.
        constraint: The constraint set searched, in words.
        config_hash: The configuration's content hash.
        seed: The run seed.
        budget: The budget spent.
        restart: The selected restart.
        weights: The found weights ``[W_0, ..., W_beta]`` (weight searches),
            else None.
        centre: The centre ``W`` of the ball (Corollary 5.1), else None.
        X: The found data ``(n, d)`` (Theorem 4.1 part 1), else None.
        y: Its labels ``C(X)`` (Theorem 4.1 part 1), else None.
        select_c_star: ``(R,)``: each restart's ``c*`` on the selection draws.
        select_binding_eta: ``(R,)``: the ``eta`` at which each restart's ``c*``
            binds on the selection draws (``nan`` if none): the level at which
            the found point claims to be worst, fixed before any held-out draw.
        select_confusion: ``(R,)``: each restart's mean confusion
            ``max(0, -min G)`` on the selection draws.
        trace_confusion: ``(steps, R)``: mean soft confusion per step.
        trace_objective: ``(steps, R)``: the surrogate per step.
        seconds: Wall time of the search.
    """

    statement: str
    norm: str | None
    constraint: str
    config_hash: str
    seed: int
    budget: SearchBudget
    restart: int
    weights: list[np.ndarray] | None
    centre: list[np.ndarray] | None
    X: np.ndarray | None
    y: np.ndarray | None
    select_c_star: np.ndarray
    select_binding_eta: np.ndarray
    select_confusion: np.ndarray
    trace_confusion: np.ndarray
    trace_objective: np.ndarray
    seconds: float

    def spectra(self) -> list[np.ndarray] | None:
        """Singular values of every found layer (descending), or None for data."""
        if self.weights is None:
            return None
        return [np.linalg.svd(W, compute_uv=False) for W in self.weights]

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON types (non-finite floats as strings)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["budget"] = self.budget.to_dict()
        return _encode(out)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchResult:
        """The result of :meth:`to_dict`'s output."""
        return cls(
            statement=data["statement"],
            norm=data["norm"],
            constraint=data["constraint"],
            config_hash=data["config_hash"],
            seed=int(data["seed"]),
            budget=SearchBudget.from_dict(data["budget"]),
            restart=int(data["restart"]),
            weights=_arrays(data["weights"]),
            centre=_arrays(data["centre"]),
            X=None if data["X"] is None else _array(data["X"]),
            y=None if data["y"] is None else _array(data["y"]),
            select_c_star=_array(data["select_c_star"]),
            select_binding_eta=_array(data["select_binding_eta"]),
            select_confusion=_array(data["select_confusion"]),
            trace_confusion=_array(data["trace_confusion"]),
            trace_objective=_array(data["trace_objective"]),
            seconds=_float(data["seconds"]),
        )


@dataclasses.dataclass(frozen=True, eq=False)
class HeldOutEstimate:
    """Failure probabilities and ``c*`` of one point (or ensemble) on held-out draws.

    Attributes:
        trials: Finite held-out trials ``T``.
        nonfinite: Trials with a non-finite Gram matrix (excluded).
        min_inner: ``(T + nonfinite,)``: ``min_{i != j} G_ij`` per trial, in
            trial order (NaN where non-finite).
        eta: The full ``eta`` grid.
        failures: Failures ``k(eta) = #{min_inner < -eta}`` on the grid.
        p_fail: ``k / T``, the estimated failure probability.
        ci_low: Lower two-sided Clopper-Pearson limit of the failure probability.
        ci_high: Upper two-sided Clopper-Pearson limit.
        confidence: Confidence level of the limits and of ``c*``.
        c_star: The implied constant (one-sided upper limits), ``nan`` if the
            grid has no point in the statement's domain.
        binding_eta: The ``eta`` at which ``c*`` binds (``nan`` if none).
        cstar_eta: The grid points ``c*`` was computed on (domain, then up to
            the first point with no failure).
        notes: Remarks of :func:`bounds.implied_constant`, or why there is no
            ``c*``.
    """

    trials: int
    nonfinite: int
    min_inner: np.ndarray
    eta: np.ndarray
    failures: np.ndarray
    p_fail: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    confidence: float
    c_star: float
    binding_eta: float
    cstar_eta: np.ndarray
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON types (non-finite floats as strings)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return _encode(out)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeldOutEstimate:
        """The estimate of :meth:`to_dict`'s output."""
        return cls(
            trials=int(data["trials"]),
            nonfinite=int(data["nonfinite"]),
            min_inner=_array(data["min_inner"]),
            eta=_array(data["eta"]),
            failures=np.asarray(data["failures"], dtype=np.int64),
            p_fail=_array(data["p_fail"]),
            ci_low=_array(data["ci_low"]),
            ci_high=_array(data["ci_high"]),
            confidence=_float(data["confidence"]),
            c_star=_float(data["c_star"]),
            binding_eta=_float(data["binding_eta"]),
            cstar_eta=_array(data["cstar_eta"]),
            notes=tuple(data["notes"]),
        )


@dataclasses.dataclass(frozen=True, eq=False)
class AdversarialResult:
    """Adversarial and random-ensemble estimates of one configuration.

    Attributes:
        config: The configuration (its ``trials`` field is not used: ``T`` is
            in the estimates).
        statement: One of :data:`STATEMENTS`.
        norm: The ball's norm (Corollary 5.1), else None.
        search: The search and the worst point found.
        adversarial: Held-out estimate of the statement's failure event at the
            worst point found: at the found point (Theorem 5.1, Theorem 4.1
            part 1), or for some ``W'`` of the found centre's ball chosen per
            trial (Corollary 5.1, :func:`uniform_min_inner`).
        random: The random ensemble's estimate on the same held-out trials.
        fixed_point: Corollary 5.1 only: the estimate at the one found ``W'``
            (:func:`heldout_min_inner`); None otherwise.
    """

    config: Config
    statement: str
    norm: str | None
    search: SearchResult
    adversarial: HeldOutEstimate
    random: HeldOutEstimate
    fixed_point: HeldOutEstimate | None

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON types (non-finite floats as strings)."""
        config = dataclasses.asdict(self.config)
        config["batch_sizes"] = list(self.config.batch_sizes)
        return _encode(
            {
                "config": config,
                "config_hash": self.config.config_hash,
                "statement": self.statement,
                "norm": self.norm,
                "search": self.search.to_dict(),
                "adversarial": self.adversarial.to_dict(),
                "random": self.random.to_dict(),
                "fixed_point": None
                if self.fixed_point is None
                else self.fixed_point.to_dict(),
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdversarialResult:
        """The result of :meth:`to_dict`'s output."""
        config = dict(data["config"])
        config["batch_sizes"] = tuple(config["batch_sizes"])
        return cls(
            config=Config(**config),
            statement=data["statement"],
            norm=data["norm"],
            search=SearchResult.from_dict(data["search"]),
            adversarial=HeldOutEstimate.from_dict(data["adversarial"]),
            random=HeldOutEstimate.from_dict(data["random"]),
            fixed_point=None
            if data["fixed_point"] is None
            else HeldOutEstimate.from_dict(data["fixed_point"]),
        )


# --- c* ------------------------------------------------------------------------


def _c_star(
    config: Config, grid: np.ndarray, values: np.ndarray, confidence: float
) -> tuple[float, float, np.ndarray, tuple[str, ...]]:
    """``(c*, binding eta, grid used, notes)`` of finite ``min_inner`` values.

    The rule of :func:`montecarlo._estimates.theorem_summary`: the statement's
    domain (``eta > 4`` for Theorem 4.1 part 1), then the grid up to its first
    point with no failure (:func:`bounds.informative_length`).
    """
    st = _statement(config)
    g = grid[st.in_domain(grid)]
    if g.size:
        g = g[: informative_length(_failures(values, g))]
    if g.size == 0:
        return (
            math.nan,
            math.nan,
            g,
            (f"{st.title} needs eta > {st.eta_min:g}: the grid has none",),
        )
    k = _failures(values, g)
    params = bound_kwargs(config)
    res = st.implied_constant(g, k, values.size, params, confidence=confidence)
    return res.c_star, res.binding_eta, g, res.notes


def heldout_estimate(
    config: Config,
    min_inner: np.ndarray,
    eta: np.ndarray | Sequence[float],
    *,
    confidence: float = 0.95,
) -> HeldOutEstimate:
    """Failure probabilities, their intervals and ``c*`` from per-trial minima.

    Args:
        config: The configuration (its statement and bound parameters).
        min_inner: ``min_{i != j} G_ij`` per held-out trial (NaN or inf for a
            non-finite Gram: counted, excluded); at least one finite.
        eta: The ``eta`` grid: increasing, finite, >= 0.
        confidence: Level of the two-sided intervals and of ``c*``'s one-sided
            upper limits, in (0, 1). Defaults to 0.95.

    Returns:
        :class:`HeldOutEstimate`.

    Raises:
        ValueError: If ``config`` tests no uniform statement, the grid or the
            confidence is invalid, or no trial is finite.
    """
    statement_of(config)
    grid = _check_eta(eta)
    confidence = _check_confidence(confidence)
    values = np.asarray(min_inner, dtype=np.float64).reshape(-1)
    finite = np.isfinite(values)
    T = int(finite.sum())
    if T == 0:
        raise ValueError(
            f"min_inner must have at least one finite trial, got {values.size} "
            "non-finite ones"
        )
    k = _failures(values[finite], grid)
    lo, hi = bounds.clopper_pearson(k, T, confidence, sided="two")
    c_star, binding, used, notes = _c_star(config, grid, values[finite], confidence)
    return HeldOutEstimate(
        trials=T,
        nonfinite=int(values.size - T),
        min_inner=np.where(finite, values, np.nan),
        eta=grid,
        failures=np.asarray(k, dtype=np.int64),
        p_fail=k / T,
        ci_low=np.asarray(lo, dtype=np.float64),
        ci_high=np.asarray(hi, dtype=np.float64),
        confidence=confidence,
        c_star=float(c_star),
        binding_eta=float(binding),
        cstar_eta=used,
        notes=tuple(notes),
    )


# --- the search ------------------------------------------------------------------


def _min_inner_at(
    config: Config, weights: list[np.ndarray], X: np.ndarray, y: np.ndarray
) -> float:
    """``min_{i != j} G_ij`` by :func:`theory.gram` (NaN for a non-finite ``G``)."""
    # Labels of rows projected onto the unit ball: |y| <= 1 up to one rounding.
    G = theory.gram(weights, X, y, label_bound=None, **_net_kwargs(config))
    return theory.confusion.min_inner(G) if np.all(np.isfinite(G)) else math.nan


def search(
    config: Config,
    eta: np.ndarray | Sequence[float],
    seed: int,
    budget: SearchBudget = FULL_BUDGET,
    *,
    norm: str | None = None,
    confidence: float = 0.95,
    device: str | torch.device = "cpu",
    threads: int | None = 1,
) -> SearchResult:
    """Search the constraint set of ``config``'s uniform statement for its worst point.

    See the module docstring for the objective, the streams, the starts and
    the selection. The weights (Theorem 5.1, Corollary 5.1) or the data
    (Theorem 4.1 part 1) move; the other part is drawn fresh at every step.

    Args:
        config: A configuration of a uniform statement (:func:`statement_of`).
        eta: The ``eta`` grid of the selection's ``c*`` (increasing, >= 0).
        seed: The run seed, an integer >= 0.
        budget: The budget. Defaults to :data:`FULL_BUDGET`.
        norm: The ball's norm for Corollary 5.1 (one of :data:`NORMS`); None
            otherwise.
        confidence: Level of the selection's ``c*``. Defaults to 0.95.
        device: torch device of the search. Defaults to ``"cpu"``.
        threads: torch intra-op threads during the search, restored after;
            None leaves torch's setting. Defaults to 1: at the paper's small
            shapes one thread is the fastest, and on shared cores several
            threads spin at every small operation (measured 4-8x slower).

    Returns:
        :class:`SearchResult` with the selected point.

    Raises:
        ValueError: If an argument is out of range (see :func:`statement_of`).
    """
    statement = statement_of(config)
    norm = _check_norm(statement, norm)
    grid = _check_eta(eta)
    seed = _check_seed(seed)
    confidence = _check_confidence(confidence)
    if not isinstance(budget, SearchBudget):
        raise ValueError(f"budget must be a SearchBudget, got {type(budget).__name__}")
    threads = _check_threads(threads)
    device = torch.device(device)
    with _torch_threads(threads):
        return _search(config, statement, norm, grid, seed, budget, confidence, device)


def _search(
    config: Config,
    statement: str,
    norm: str | None,
    grid: np.ndarray,
    seed: int,
    budget: SearchBudget,
    confidence: float,
    device: torch.device,
) -> SearchResult:
    """:func:`search` on validated arguments."""
    t0 = time.perf_counter()
    key = stream_key(seed, config.config_hash)
    net = _net_kwargs(config)
    R, m = budget.restarts, budget.batch
    L = config.depth + 1  # weight matrices

    if statement == "4.1 part 1":
        labels_np, twin, y0 = _fixed_labels(config, key)
        y0_t = _t(y0, device)

        def labels(X: torch.Tensor) -> torch.Tensor:
            return y0_t.expand(X.shape[:-1]) if twin is None else twin(X)

        def gram_at(params: list[torch.Tensor], indices: np.ndarray) -> torch.Tensor:
            Ws = [_t(W, device) for W in _weight_batch(config, key, indices)]
            X = params[0][:, None]  # [R, 1, n, d] against m weight draws
            return gram_torch(Ws, X, labels(X), **net)

        start = [_t(_start_data(config, key, R), device)]
    else:
        # Theorem 5.1: params = [W_0 .. W_beta]; Corollary 5.1: the centre and the
        # offset, [W_0 .. W_beta, D_0 .. D_beta], and W' = W + D.
        start_np, centre_np = _start_weights(config, key, R)
        if centre_np is None:
            start = [_t(W, device) for W in start_np]
        else:
            start = [_t(C, device) for C in centre_np] + [
                _t(W - C, device) for W, C in zip(start_np, centre_np, strict=True)
            ]

        def gram_at(params: list[torch.Tensor], indices: np.ndarray) -> torch.Tensor:
            X, y = _data_batch(config, key, indices)
            Ws = _point(params, L)
            # [R, 1, l, l'] against m data draws
            return gram_torch(
                [W[:, None] for W in Ws], _t(X, device), _t(y, device), **net
            )

    def project(params: list[torch.Tensor]) -> list[torch.Tensor]:
        if statement == "4.1 part 1":
            return [project_unit_rows(params[0])]
        if statement == "5.1":
            return project_spectral(params)
        return project_spectral(params[:L]) + _project_offset(
            params[L:], norm, config.r
        )

    trace = projected_ascent(
        start,
        lambda params, k: gram_at(params, SEARCH_TRIAL_BASE + k * m + np.arange(m)),
        project,
        budget,
    )
    with torch.no_grad():
        G = gram_at(trace.params, SELECT_TRIAL_BASE + np.arange(budget.select_draws))
        sel = min_offdiag(G).cpu().numpy()  # [R, select_draws]
    c_sel = np.full(R, np.inf)
    eta_sel = np.full(R, np.nan)
    conf_sel = np.full(R, -np.inf)
    for s in range(R):
        finite = sel[s][np.isfinite(sel[s])]
        if finite.size:
            conf_sel[s] = np.mean(np.maximum(0.0, -finite))
            c_sel[s], eta_sel[s] = _c_star(config, grid, finite, confidence)[:2]
    order = np.lexsort((-conf_sel, np.where(np.isnan(c_sel), np.inf, c_sel)))
    best = int(order[0])
    point = [p[best].cpu().numpy() for p in trace.params]
    weights = centre = X = y = None
    if statement == "4.1 part 1":
        X = point[0]
        y = y0 if config.labels == "random_signs" else labels_np(X)
        y = np.asarray(y, dtype=np.float64)
    elif statement == "5.1":
        weights = point
    else:
        centre = point[:L]
        weights = [C + D for C, D in zip(centre, point[L:], strict=True)]
    return SearchResult(
        statement=statement,
        norm=norm,
        constraint=_CONSTRAINTS[(statement, norm) if norm else statement],
        config_hash=config.config_hash,
        seed=seed,
        budget=budget,
        restart=best,
        weights=weights,
        centre=centre,
        X=X,
        y=y,
        select_c_star=c_sel,
        select_binding_eta=eta_sel,
        select_confusion=conf_sel,
        trace_confusion=trace.confusion,
        trace_objective=trace.objective,
        seconds=time.perf_counter() - t0,
    )


def _point(params: list[torch.Tensor], L: int) -> list[torch.Tensor]:
    """The weights ``W'``: the parameters (Theorem 5.1) or ``W + D`` (Corollary 5.1)."""
    if len(params) == L:
        return params
    return [W + D for W, D in zip(params[:L], params[L:], strict=True)]


def _project_offset(
    offsets: list[torch.Tensor], norm: str | None, r: float
) -> list[torch.Tensor]:
    """Project offsets ``D = W' - W`` onto the ball of radius ``r`` around 0."""
    zeros = [torch.zeros_like(D[:1]) for D in offsets]
    if norm == "operator":
        return project_operator_ball(offsets, zeros, r)
    return project_frobenius_ball(offsets, zeros, r)


def heldout_min_inner(config: Config, found: SearchResult, trials: int) -> np.ndarray:
    """``min_{i != j} G_ij`` at the found point on held-out trials ``0 .. T-1``.

    Numpy reference (:func:`theory.gram`): trial ``t`` draws the random part
    from the stream of the engine's trial ``t`` (the data for a weight search,
    the weights for the data search) and uses the found point for the rest.

    Args:
        config: The configuration searched.
        found: The search's result (its seed gives the streams).
        trials: ``T``, an integer in ``[1, 2^62]``.

    Returns:
        ``(T,)`` float64, NaN where the Gram matrix is not finite.

    Raises:
        ValueError: If ``trials`` is out of range or ``found`` belongs to
            another configuration.
    """
    if not (_is_int(trials) and 1 <= trials <= _MAX_HELDOUT):
        raise ValueError(f"trials must be an integer in [1, 2^62], got {trials!r}")
    if not isinstance(found, SearchResult) or found.config_hash != config.config_hash:
        raise ValueError(
            "found must be the SearchResult of this configuration (config_hash "
            f"{config.config_hash})"
        )
    key = stream_key(found.seed, config.config_hash)
    out = np.empty(trials)
    for t in range(trials):
        rng = PhiloxStream(key, t)
        if found.weights is not None:
            X, y = draw_data(config, rng)
            weights = found.weights
        else:
            X, y = found.X, found.y
            weights = draw_weights(config, rng)[0]
        out[t] = _min_inner_at(config, weights, X, y)
    return out


_INNER_CHUNK = 1024  # held-out trials per batched inner maximization


def uniform_min_inner(
    config: Config,
    found: SearchResult,
    trials: int,
    budget: SearchBudget = FULL_BUDGET,
    *,
    device: str | torch.device = "cpu",
    threads: int | None = 1,
) -> np.ndarray:
    r"""Corollary 5.1's event on held-out trials ``0 .. T-1``, per trial.

    The corollary's bound holds *uniformly for all* ``W'`` in ``B_r(W)`` with
    probability at least its bound: trial ``t`` (data ``X_t``) fails at
    ``eta`` when some ``W'`` in the ball has
    ``min_{i != j} G_ij(W'; X_t) < -eta``. Per trial, a projected ascent
    (:func:`projected_ascent`, ``budget.inner_steps`` steps, all trials at
    once as restarts, one draw each: the trial's own data) moves the offset
    ``D_t = W'_t - W`` within the ball from the found offset, maximizing the
    trial's soft confusion; the centre ``W`` stays. The trial's value is the
    smaller ``min G`` of the found ``W'`` and of ``W + D_t``, both computed by
    :func:`theory.gram` at points of the ball: an upper bound on
    ``inf_{W'} min G``, so the failure frequency it gives is a *lower* bound
    on the event's probability (conservative for a violation). The trials
    are independent (the maximization of trial ``t`` sees only ``X_t``), so
    the count is binomial.

    Args:
        config: A Corollary 5.1 configuration.
        found: Its :class:`SearchResult` (centre, found ``W'``, seed, norm).
        trials: ``T``, an integer in ``[1, 2^62]``.
        budget: ``inner_steps``, ``lr``, ``temperature`` and ``tau`` of the
            maximization. Defaults to :data:`FULL_BUDGET`.
        device: torch device of the maximization. Defaults to ``"cpu"``.
        threads: torch intra-op threads (see :func:`search`). Defaults to 1.

    Returns:
        ``(T,)`` float64, NaN where both Gram matrices are non-finite.

    Raises:
        ValueError: If ``config`` is not a Corollary 5.1 configuration, or an
            argument is out of range.
    """
    if statement_of(config) != "corollary_5.1":
        raise ValueError(
            f"config must test Corollary 5.1, got theorem = {config.theorem!r}"
        )
    if not isinstance(budget, SearchBudget):
        raise ValueError(f"budget must be a SearchBudget, got {type(budget).__name__}")
    threads = _check_threads(threads)
    fixed = heldout_min_inner(config, found, trials)
    if budget.inner_steps == 0:
        return fixed
    device = torch.device(device)
    key = stream_key(found.seed, config.config_hash)
    net = _net_kwargs(config)
    centre = [_t(C, device) for C in found.centre]
    offset = [W - C for W, C in zip(found.weights, found.centre, strict=True)]
    inner = np.empty(trials)
    with _torch_threads(threads):
        for lo in range(0, trials, _INNER_CHUNK):
            idx = np.arange(lo, min(trials, lo + _INNER_CHUNK))
            X, y = _data_batch(config, key, idx, exact=True)
            Xt, yt = _t(X, device)[:, None], _t(y, device)[:, None]
            start = [
                _t(np.broadcast_to(D, (idx.size, *D.shape)).copy(), device)
                for D in offset
            ]
            steps = dataclasses.replace(
                budget, steps=budget.inner_steps, restarts=idx.size, batch=1
            )
            trace = projected_ascent(
                start,
                lambda p, k, Xt=Xt, yt=yt: gram_torch(
                    [(C + D)[:, None] for C, D in zip(centre, p, strict=True)],
                    Xt,
                    yt,
                    **net,
                ),
                lambda p: _project_offset(p, found.norm, config.r),
                steps,
            )
            D_t = [D.cpu().numpy() for D in trace.params]
            for j, t in enumerate(idx):
                weights = [C + D[j] for C, D in zip(found.centre, D_t, strict=True)]
                inner[t] = _min_inner_at(config, weights, X[j], y[j])
    return np.fmin(fixed, inner)


def random_min_inner(config: Config, seed: int, trials: int) -> np.ndarray:
    """``min_{i != j} G_ij`` of the random ensemble on trials ``0 .. T-1``.

    The numpy backend's trials (:func:`montecarlo._trial.run_trial`): the same
    values a stored run of ``config`` with this seed holds, to float tolerance.

    Args:
        config: The configuration.
        seed: The run seed, an integer >= 0.
        trials: ``T``, an integer in ``[1, 2^62]``.

    Returns:
        ``(T,)`` float64, NaN where the Gram matrix is not finite.

    Raises:
        ValueError: If ``seed`` or ``trials`` is out of range.
    """
    seed = _check_seed(seed)
    if not (_is_int(trials) and 1 <= trials <= _MAX_HELDOUT):
        raise ValueError(f"trials must be an integer in [1, 2^62], got {trials!r}")
    key = stream_key(seed, config.config_hash)
    fixed = None
    if config.fixed_data:
        fixed = draw_data(config, PhiloxStream(key, FIXED_DATA_TRIAL))
    col_finite = TRIAL_COLUMNS.index("finite")
    col_min = TRIAL_COLUMNS.index("min_inner")
    out = np.empty(trials)
    for t in range(trials):
        base, _ = run_trial(config, key, t, fixed)
        out[t] = base[col_min] if base[col_finite] == 1.0 else math.nan
    return out


def adversarial_cstar(
    config: Config,
    eta: np.ndarray | Sequence[float],
    seed: int,
    budget: SearchBudget = FULL_BUDGET,
    *,
    norm: str | None = None,
    trials: int | None = None,
    confidence: float = 0.95,
    device: str | torch.device = "cpu",
    threads: int | None = 1,
) -> AdversarialResult:
    """Search, then estimate the worst point and the random ensemble on held-out draws.

    Args:
        config: A configuration of a uniform statement (:func:`statement_of`).
        eta: The ``eta`` grid (increasing, finite, >= 0).
        seed: The run seed, an integer >= 0.
        budget: The search budget. Defaults to :data:`FULL_BUDGET`.
        norm: The ball's norm for Corollary 5.1, else None.
        trials: Held-out trials ``T`` (both sides); defaults to ``config.trials``.
        confidence: Level of the intervals and of ``c*``. Defaults to 0.95.
        device: torch device of the search. Defaults to ``"cpu"``.
        threads: torch intra-op threads during the search (see :func:`search`).
            Defaults to 1.

    Returns:
        :class:`AdversarialResult`.

    Raises:
        ValueError: If an argument is out of range.
    """
    T = config.trials if trials is None else trials
    if not (_is_int(T) and 1 <= T <= _MAX_HELDOUT):
        raise ValueError(f"trials must be an integer in [1, 2^62], got {T!r}")
    found = search(
        config,
        eta,
        seed,
        budget,
        norm=norm,
        confidence=confidence,
        device=device,
        threads=threads,
    )

    def estimate(values: np.ndarray) -> HeldOutEstimate:
        return heldout_estimate(config, values, eta, confidence=confidence)

    fixed = estimate(heldout_min_inner(config, found, T))
    if found.statement == "corollary_5.1":
        event = uniform_min_inner(
            config, found, T, budget, device=device, threads=threads
        )
        adversarial, fixed_point = estimate(event), fixed
    else:
        adversarial, fixed_point = fixed, None
    return AdversarialResult(
        config=config,
        statement=found.statement,
        norm=found.norm,
        search=found,
        adversarial=adversarial,
        random=estimate(random_min_inner(config, seed, T)),
        fixed_point=fixed_point,
    )


def adversarial_sweep(
    config: Config,
    axis: str,
    values: Sequence[Any],
    eta: np.ndarray | Sequence[float],
    seed: int,
    budget: SearchBudget = FULL_BUDGET,
    *,
    norm: str | None = None,
    trials: int | None = None,
    confidence: float = 0.95,
    device: str | torch.device = "cpu",
    threads: int | None = 1,
) -> list[AdversarialResult]:
    """:func:`adversarial_cstar` along one axis of a sweep, one result per value.

    Every configuration is ``dataclasses.replace(config, **{axis: value})``
    and has its own streams (its content hash), as in a spec's grid.

    Args:
        config: The base configuration.
        axis: The field to vary, one of :data:`SWEEP_AXES`.
        values: Its values (each valid for the field, e.g. ``depth >= 1``).
        eta: The ``eta`` grid.
        seed: The run seed.
        budget: The search budget. Defaults to :data:`FULL_BUDGET`.
        norm: The ball's norm for Corollary 5.1, else None.
        trials: Held-out trials per configuration; defaults to ``config.trials``.
        confidence: Level of the intervals and of ``c*``. Defaults to 0.95.
        device: torch device of the searches. Defaults to ``"cpu"``.
        threads: torch intra-op threads during the searches (see
            :func:`search`). Defaults to 1.

    Returns:
        One :class:`AdversarialResult` per value, in order.

    Raises:
        ValueError: If ``axis`` is unknown, a value is invalid, or a
            configuration does not test a uniform statement; all before any
            search.
    """
    if axis not in SWEEP_AXES:
        raise ValueError(f"axis must be one of {list(SWEEP_AXES)}, got {axis!r}")
    if (
        isinstance(values, str | bytes)
        or not isinstance(values, Sequence)
        or not values
    ):
        raise ValueError(f"values must be a non-empty sequence, got {values!r}")
    problems = [
        p for i, v in enumerate(values) for p in _check_value(axis, v, f"values[{i}]")
    ]
    if problems:
        raise ValueError("; ".join(problems))
    configs = [dataclasses.replace(config, **{axis: v}) for v in values]
    for c in configs:
        _check_norm(statement_of(c), norm)
    return [
        adversarial_cstar(
            c,
            eta,
            seed,
            budget,
            norm=norm,
            trials=trials,
            confidence=confidence,
            device=device,
            threads=threads,
        )
        for c in configs
    ]
