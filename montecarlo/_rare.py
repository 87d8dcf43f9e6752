"""Rare-event estimation of the failure tail: subset simulation with elliptical slices.

Notation. A trial of a configuration draws ``D = trial_dimension(config)``
numbers; read from a vector ``u ~ N(0, I_D)`` (normals as they are, uniforms
as ``Phi(u_i)``, :mod:`montecarlo._trial`), it is a deterministic function of
``u``. Its *score* is ``S(u) = -statistic(G(u))`` for the statistic
``min_inner`` (``min_{i != j} G_ij``) or ``min_cos``; ``S = NaN`` when ``G``
is not finite and ``-inf`` when the cosine is undefined, and neither ever
fails. The trial *fails* at level ``eta`` when ``S(u) > eta``, i.e. the
statistic is below ``-eta`` (the failure event of the confusion bound), and

    P(eta) = P(S(U) > eta),   U ~ N(0, I_D).

Subset simulation (Au & Beck 2001, Prob. Eng. Mech. 16:263). Levels
``-inf = b_0 < b_1 < ...``; level ``k`` holds ``N`` particles distributed as
``N(0, I) | S > b_k``. Level 0 is ``N`` independent draws. From level ``k``,
``b_{k+1}`` is the ``(N p0 + 1)``-th largest score, the ``N_s`` particles above
it (``N p0`` without ties) are the seeds, ``p_k = N_s / N``, and ``N_s``
Markov chains started at the seeds, each leaving ``N(0, I) | S > b_{k+1}``
invariant, make the ``N`` particles of level ``k + 1`` (chain lengths
``N / N_s``, the seed first). At an ``eta`` the estimate uses the deepest
level ``k`` with ``b_k < eta``:

    P^(eta) = p_0 p_1 ... p_{k-1} * #{i : S_i^(k) > eta} / N.

The run stops at the first level whose next threshold would pass the largest
requested ``eta``, at ``max_levels``, or when no particle is above the next
threshold (a plateau of the score: the estimate is then 0 beyond it).

Moves: elliptical slice sampling (Murray, Adams & MacKay 2010, AISTATS) on
``{S > b}``. With ``nu ~ N(0, I)`` the ellipse ``u cos t + nu sin t`` is,
point by point, the preconditioned Crank-Nicolson proposal with ``rho = cos t``;
``t`` is drawn uniformly in a window ``[t_0 - w, t_0]``, ``t_0 ~ U(0, w)``,
and the window shrinks towards ``t = 0`` (the current point) after every
point outside the set, as in Neal's slice sampler (2003, Ann. Stat. 31:705).
The kernel leaves ``N(0, I) | S > b`` invariant for every fixed ``w <= 2 pi``,
never rejects, and chooses the step per state: large in wide parts of the
failure set, small in narrow ones. ``w`` is ``2 pi`` at level 1 and then
``min(2 pi, 4 median |t|)`` over the moves of the previous level (a function
of the previous level only, so every chain's kernel is fixed in advance).
Why not pCN with a tuned scale (adaptive conditional sampling, Papaioannou et
al. 2015, Prob. Eng. Mech. 41:89): at the Theorem 4.1 quick-suite shape
(``D = 1486``) the scale that keeps acceptance near 0.44 moves a chain by
about 1% of ``|u|`` per step, the chains barely leave their seeds and the
estimator becomes strongly right-skewed: at ``eta = 2.5``, where 5e7 plain
trials give ``P = 1.5e-6 +- 12%``, means of 25 to 100 repetitions were
``4.3e-7`` (``N = 1000``) and ``9.2e-7`` (``N = 4000``); elliptical slices
gave ``1.34e-6 +- 11%`` at ``N = 1000``. Why not adaptive multilevel
splitting (Cerou & Guyader 2007, Stoch. Anal. Appl. 25:417): it resamples one
(or ``k``) particles per iteration, about ``N log(1/P)`` sequential MCMC
restarts, whereas a level of subset simulation runs its ``N_s`` chains at
once, one parallel region (``prange`` over chains) per level; the two share
the MCMC and its mixing limits.

Error. A run is one *repetition*; ``R`` independent repetitions (independent
Philox keys) give estimates ``p_r``, their mean ``p_bar`` (the estimate) and
standard deviation ``s``. Each ``p_r`` is a product of level fractions, so
``log p_r`` is a sum of weakly dependent terms and ``p_r`` close to lognormal
(strongly right-skewed for ``s / p_bar`` near 1). The interval is therefore
Cox's interval for a lognormal mean (Land 1972, JASA 67:836; Zhou & Gao 1997,
Stat. Med. 16:783): with ``m``, ``v`` the mean and variance of ``log p_r``,

    exp(m + v/2 -+ h),   h = t_{R-1, (1+confidence)/2} sqrt(v/R + v^2/(2(R-1))),

``h`` being the *relative error* reported (``0.3`` = 30%). Where a repetition
estimated 0 it is the delta-method ``p_bar exp(-+h)``, ``h = t s / (p_bar
sqrt(R))``. On the closed-form case of the tests (``N = 1000``, ``R = 10``,
``P = 1e-4, 1e-7, 1e-10``, 350 estimates per level) the 95% interval covered
0.943, 0.937 and 0.949 (binomial standard error 0.012); the symmetric ``t``
interval of ``p_bar`` covered 0.931, 0.929 and 0.934, short because of the
skew. For reference,
Au & Beck's estimate of one run's coefficient of variation is
``delta^2 ~ sum_k (1 - p_k) / (N p_k) (1 + gamma_k)`` with
``gamma_k = 2 sum_{tau=1}^{L-1} (1 - tau/L) rho_k(tau)`` from the lag-``tau``
correlation ``rho_k`` of the failure indicator along the chains of length
``L = 1/p0`` (``gamma_0 = 0``); it ignores the correlation between levels, so
the repetitions, not this formula, give the interval. Bias: the estimator is
asymptotically unbiased with relative bias ``O(1/N)`` (Au & Beck 2001,
section 6; Cerou, Del Moral, Furon & Guyader 2012, Stat. Comput. 22:795): the
thresholds are quantiles of the same correlated samples whose fractions
estimate the ``p_k``, and ``E[p0 / Q_k] = 1`` for the true conditional
probability ``Q_k`` of an estimated threshold only when a level's samples are
independent; with chains, ``E[p0 / Q_k] - 1 ~ gamma_k (1 - p0) / (N p0) > 0``
per level (a Jensen term). Measured at ``N = 1000``: +0.6% per level on the
closed-form case of the tests (+6% +- 2% at ``P = 1e-10``, 1000 runs) and
+1.5% per level at the Theorem 4.1 quick-suite shape (+3.3% +- 1.5% at
``P = 8e-3`` against 5e7 plain trials). The interval ignores it: in these cases
it stays below ``h / 3`` while ``R <= N / 40`` (``b / h`` grows like
``sqrt(R / N)``); beyond, raise ``N`` (bias ``~ 1/N``) rather than ``R``.
A positive bias makes ``c*`` from the tail conservative (smaller).

Streams. Repetition ``r`` of ``(config, statistic, eta grid)`` under ``seed``
draws from the Philox key ``stream_key(seed, "<config_hash>/rare/<statistic>/
<eta grid>/<r>")``: level-0 particle ``p`` from trial index ``p``, chain ``c``
of level ``k >= 1`` from trial index ``k * 2^32 + c`` (its window positions
are uniforms of that stream). A repetition is therefore a pure function of
``(config, eta, seed, repetition, statistic, settings)``, bit-reproducible
and independent of the thread count; repetitions are independent units (a
stored chunk, a Dask task). ``fixed_data`` configurations condition on the
engine's dataset of the same seed (:func:`montecarlo._trial.fixed_data`).

Cross-check (tests): OpenTURNS' ``SubsetSampling`` (component-wise modified
Metropolis, an independent implementation) on the same score, ``D = 31``, at
``P ~ 1e-3``. It is a dev dependency only: a 63 MB wheel installing in about
2 s with ``dill`` and ``psutil``, no numpy or torch pin. It cannot be the
estimator: its generator is one global Mersenne Twister (runs are not keyed
per chain or repetition, so neither reproducible across thread counts nor
resumable per repetition), at ``D = 1486`` it allocated more than 12 GB, and
on these scores its coefficient of variation per run exceeds 1 beyond
``P ~ 1e-4`` (it stopped with "variance estimate must be >= 0" near 1e-7).
UQpy 4.2.1 pins ``numpy==1.26.4`` and ``torch~=2.2.2``: not installed.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numba as nb
import numpy as np
from scipy import stats
from threadpoolctl import threadpool_limits

from montecarlo._config import Config
from montecarlo._numba_trial import (
    STATISTICS,
    _fixed_arrays,
    _score_from_normals,
    pack_config,
)
from montecarlo._rng import _nb_normals, _nb_uniforms, stream_key
from montecarlo._trial import fixed_data, trial_dimension

__all__ = [
    "RareEventEstimate",
    "SubsetRun",
    "SubsetSettings",
    "rare_event_estimate",
    "subset_simulation",
]

_LOW32 = np.uint64(0xFFFFFFFF)
_TWO_PI = 2.0 * math.pi
_MAX_SHRINK = 200  # window halvings: 2 pi 2^-200 is far below one ulp of t
_MIN_WINDOW = 1e-6  # the window never closes (a chain must be able to move)
_MAX_POPULATION = 2**28  # particles * D: two populations of 2 GB each


@nb.njit(cache=True, parallel=True)
def _level0(keys, ints, floats, X_fixed, y_fixed, code, U, S, consumed):
    """Level 0: ``U[p]`` = the normals of trial ``p`` of ``keys``; ``S[p]`` = score."""
    for p in nb.prange(U.shape[0]):
        st = np.empty(5, dtype=np.uint64)
        st[0] = keys[0]
        st[1] = keys[1]
        st[2] = np.uint64(p) & _LOW32
        st[3] = np.uint64(0)
        st[4] = np.uint64(0)
        _nb_normals(st, U[p])
        S[p], consumed[p] = _score_from_normals(
            U[p], ints, floats, X_fixed, y_fixed, code
        )


@nb.njit(cache=True, parallel=True)
def _chains(
    keys,
    level,
    seeds_U,
    seeds_S,
    starts,
    lengths,
    threshold,
    window,
    ints,
    floats,
    X_fixed,
    y_fixed,
    code,
    U_out,
    S_out,
    angle_out,
    evaluations,
):
    """One level's elliptical-slice chains, chain ``c`` from seed ``c``, in parallel.

    Chain ``c`` fills rows ``starts[c] .. starts[c] + lengths[c] - 1`` of
    ``U_out`` / ``S_out``: its seed, then one slice move per row, drawing
    ``nu`` and the window's uniforms from trial ``level * 2^32 + c`` of
    ``keys``. ``angle_out`` gets ``|t|`` of each move (NaN on seed rows),
    ``evaluations[c]`` the chain's score evaluations.
    """
    D = seeds_U.shape[1]
    for c in nb.prange(seeds_U.shape[0]):
        st = np.empty(5, dtype=np.uint64)
        st[0] = keys[0]
        st[1] = keys[1]
        st[2] = np.uint64(c) & _LOW32
        st[3] = np.uint64(level)
        st[4] = np.uint64(0)
        u = seeds_U[c].copy()
        s = seeds_S[c]
        nu = np.empty(D)
        v = np.empty(D)
        w = np.empty(1)
        row = starts[c]
        U_out[row] = u
        S_out[row] = s
        angle_out[row] = np.nan
        count = 0
        for j in range(1, lengths[c]):
            _nb_normals(st, nu)
            _nb_uniforms(st, w)
            t = window * w[0]
            lo = t - window
            hi = t
            moved = 0.0
            for _ in range(_MAX_SHRINK):
                ct = np.cos(t)
                sn = np.sin(t)
                for i in range(D):
                    v[i] = u[i] * ct + nu[i] * sn
                sv, _n = _score_from_normals(v, ints, floats, X_fixed, y_fixed, code)
                count += 1
                if sv > threshold:
                    u[:] = v
                    s = sv
                    moved = abs(t)
                    break
                if t < 0.0:
                    lo = t
                else:
                    hi = t
                _nb_uniforms(st, w)
                t = lo + (hi - lo) * w[0]
            U_out[row + j] = u
            S_out[row + j] = s
            angle_out[row + j] = moved
        evaluations[c] = count


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _finite(x: float) -> float | None:
    """``x`` for JSON: ``None`` when it is not finite."""
    return float(x) if math.isfinite(x) else None


def _unfinite(x: float | None) -> float:
    return math.nan if x is None else float(x)


@dataclasses.dataclass(frozen=True)
class SubsetSettings:
    """The tuning of one subset-simulation run.

    Attributes:
        particles: ``N``, particles per level, an integer >= 10. Defaults to
            1000.
        p0: Level probability, ``N p0`` an integer >= 1 and ``p0 <= 0.5``.
            Defaults to 0.1.
        max_levels: Most levels after level 0, an integer >= 1 (the smallest
            resolvable probability is about ``p0^max_levels / N``). Defaults
            to 40.
    """

    particles: int = 1000
    p0: float = 0.1
    max_levels: int = 40

    def __post_init__(self) -> None:
        if not _is_int(self.particles) or self.particles < 10:
            raise ValueError(
                f"particles must be an integer >= 10, got {self.particles!r}"
            )
        if (
            not isinstance(self.p0, numbers.Real)
            or isinstance(self.p0, bool)
            or not 0 < self.p0 <= 0.5
        ):
            raise ValueError(f"p0 must be a number in (0, 0.5], got {self.p0!r}")
        if round(self.particles * self.p0) < 1:
            raise ValueError(
                f"particles * p0 must round to an integer >= 1, got "
                f"{self.particles} * {self.p0}"
            )
        if not _is_int(self.max_levels) or self.max_levels < 1:
            raise ValueError(
                f"max_levels must be an integer >= 1, got {self.max_levels!r}"
            )

    @property
    def seeds(self) -> int:
        """``N p0``: seeds (chains) per level when scores have no ties."""
        return int(round(self.particles * self.p0))

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON types."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubsetSettings:
        """The settings from :meth:`to_dict`'s output."""
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class SubsetRun:
    """One repetition of subset simulation: estimates on an ``eta`` grid.

    Attributes:
        config_hash: The configuration's content hash.
        statistic: ``"min_inner"`` or ``"min_cos"``.
        seed: Run seed.
        repetition: Repetition index.
        eta: The grid, increasing.
        estimate: ``P^(eta)`` per grid point (0 when no particle passed).
        thresholds: ``b_1, b_2, ...``, one per level after level 0.
        level_probability: ``p_0, p_1, ...`` (``N_s / N`` at each level).
        window: The slice window ``w`` of each level after level 0.
        evaluations_per_move: Mean score evaluations per move, per level.
        evaluations: Score evaluations in all (level 0 included).
        nonfinite: Level-0 particles whose Gram was not finite.
        stop: ``"reached"`` (the largest ``eta`` was passed), ``"plateau"``
            (no particle above the next threshold) or ``"max_levels"``.
        dimension: ``D``, normals per trial.
        settings: The settings used.
    """

    config_hash: str
    statistic: str
    seed: int
    repetition: int
    eta: tuple[float, ...]
    estimate: tuple[float, ...]
    thresholds: tuple[float, ...]
    level_probability: tuple[float, ...]
    window: tuple[float, ...]
    evaluations_per_move: tuple[float, ...]
    evaluations: int
    nonfinite: int
    stop: str
    dimension: int
    settings: SubsetSettings

    def to_dict(self) -> dict[str, Any]:
        """The run as plain JSON types (lists; non-finite numbers as ``None``)."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = [_finite(x) for x in value]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubsetRun:
        """The run from :meth:`to_dict`'s output."""
        values = dict(data)
        for f in dataclasses.fields(cls):
            if isinstance(values[f.name], list):
                values[f.name] = tuple(_unfinite(x) for x in values[f.name])
        values["settings"] = SubsetSettings.from_dict(values["settings"])
        return cls(**values)


def _check_eta(eta: float | Sequence[float]) -> np.ndarray:
    etas = np.atleast_1d(np.asarray(eta, dtype=np.float64))
    if (
        etas.ndim != 1
        or etas.size == 0
        or not np.all(np.isfinite(etas))
        or (etas < 0).any()
        or (np.diff(etas) <= 0).any()
    ):
        raise ValueError(
            "eta must be a finite number >= 0 or a strictly increasing 1-D grid of "
            f"them, got {eta!r}"
        )
    return etas


def _check_common(
    config: Config, statistic: str, seed: int, settings: SubsetSettings
) -> None:
    if not isinstance(config, Config):
        raise ValueError(f"config must be a montecarlo.Config, got {config!r}")
    if statistic not in STATISTICS:
        raise ValueError(
            f"statistic must be one of {list(STATISTICS)}, got {statistic!r}"
        )
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not isinstance(settings, SubsetSettings):
        raise ValueError(f"settings must be a SubsetSettings, got {settings!r}")


def _stream(config: Config, statistic: str, etas: np.ndarray, rep: int) -> str:
    grid = ",".join(repr(float(e)) for e in etas)
    return f"{config.config_hash}/rare/{statistic}/{grid}/{rep}"


def subset_simulation(
    config: Config,
    eta: float | Sequence[float],
    *,
    seed: int,
    repetition: int,
    statistic: str = "min_inner",
    settings: SubsetSettings | None = None,
) -> SubsetRun:
    """One repetition of subset simulation of ``P(statistic < -eta)`` on a grid.

    The algorithm, its streams and its error are described in the module
    docstring. Chains run in parallel over numba's threads, BLAS limited to
    one thread meanwhile (as the numba backend does); the result does not
    depend on the thread count.

    Args:
        config: The configuration (any the engine runs).
        eta: A level ``>= 0`` or a strictly increasing grid of them; the run
            goes as deep as the largest.
        seed: Run seed, an integer >= 0.
        repetition: Repetition index, an integer in ``[0, 2^32)``.
        statistic: One of ``STATISTICS`` (``"min_inner"``, ``"min_cos"``).
            Defaults to ``"min_inner"``.
        settings: Tuning; defaults to ``SubsetSettings()``.

    Returns:
        SubsetRun with the estimate at every ``eta`` and the levels' record.

    Raises:
        ValueError: If an argument is out of range, or ``settings.particles``
            times ``trial_dimension(config)`` exceeds ``2^28`` (the particles
            would not fit in memory).
    """
    settings = SubsetSettings() if settings is None else settings
    _check_common(config, statistic, seed, settings)
    etas = _check_eta(eta)
    if not _is_int(repetition) or not 0 <= repetition < 2**32:
        raise ValueError(
            f"repetition must be an integer in [0, 2^32), got {repetition!r}"
        )
    D = trial_dimension(config)
    N = settings.particles
    if N * D > _MAX_POPULATION:
        raise ValueError(
            f"particles * trial_dimension(config) must be <= 2^28, got {N} * {D}"
        )
    keys = np.array(
        stream_key(seed, _stream(config, statistic, etas, repetition)),
        dtype=np.uint64,
    )
    fixed = _fixed_arrays(fixed_data(config, stream_key(seed, config.config_hash)))
    ints, floats, _ = pack_config(config)
    code = STATISTICS.index(statistic)
    model = (ints, floats, *fixed, code)
    with threadpool_limits(1):  # each numba thread owns a core, as the backend
        return _run(config, statistic, seed, repetition, settings, etas, keys, model, D)


def _run(config, statistic, seed, repetition, settings, etas, keys, model, D):
    """The levels of :func:`subset_simulation` (BLAS limited by the caller)."""
    N = settings.particles
    U = np.empty((N, D))
    S = np.empty(N)
    consumed = np.empty(N, dtype=np.uint64)
    _level0(keys, *model, U, S, consumed)
    if not np.all(consumed == D):
        raise RuntimeError(
            f"the compiled trial drew {int(consumed.max())} numbers, "
            f"trial_dimension(config) = {D}"
        )
    nonfinite = int(np.isnan(S).sum())
    estimate = np.zeros(etas.shape)
    pending = np.ones(etas.shape, dtype=bool)
    log_p = 0.0
    thresholds: list[float] = []
    probs: list[float] = []
    windows: list[float] = []
    per_move: list[float] = []
    window = _TWO_PI
    evaluations = N
    stop = "max_levels"
    for level in range(settings.max_levels + 1):
        scores = np.where(np.isnan(S), -np.inf, S)
        b_next = float(np.sort(scores)[N - settings.seeds - 1])
        seeds = np.flatnonzero(scores > b_next)
        if b_next >= etas[-1]:
            stop = "reached"
        elif seeds.size == 0:
            stop = "plateau"
        final = stop != "max_levels" or level == settings.max_levels
        resolve = pending & ((etas < b_next) | final)
        if resolve.any():
            counts = (scores[:, None] > etas[None, resolve]).sum(axis=0)
            estimate[resolve] = math.exp(log_p) * counts / N
            pending &= ~resolve
        if final:
            break
        log_p += math.log(seeds.size / N)
        thresholds.append(b_next)
        probs.append(seeds.size / N)
        n_s = seeds.size
        lengths = np.full(n_s, N // n_s, dtype=np.int64)
        lengths[: N % n_s] += 1
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        U_new = np.empty((N, D))
        S_new = np.empty(N)
        angles = np.empty(N)
        count = np.zeros(n_s, dtype=np.int64)
        _chains(
            keys,
            level + 1,
            np.ascontiguousarray(U[seeds]),
            S[seeds].copy(),
            starts,
            lengths,
            b_next,
            window,
            *model,
            U_new,
            S_new,
            angles,
            count,
        )
        windows.append(window)
        moves = N - n_s
        per_move.append(float(count.sum() / moves) if moves else math.nan)
        evaluations += int(count.sum())
        if moves:
            typical = 4.0 * float(np.nanmedian(angles))
            window = min(_TWO_PI, max(typical, _MIN_WINDOW))
        U, S = U_new, S_new
    return SubsetRun(
        config_hash=config.config_hash,
        statistic=statistic,
        seed=int(seed),
        repetition=int(repetition),
        eta=tuple(float(e) for e in etas),
        estimate=tuple(float(e) for e in estimate),
        thresholds=tuple(thresholds),
        level_probability=tuple(probs),
        window=tuple(windows),
        evaluations_per_move=tuple(per_move),
        evaluations=evaluations,
        nonfinite=nonfinite,
        stop=stop,
        dimension=D,
        settings=settings,
    )


_FLOAT_FIELDS = (
    "eta",
    "estimate",
    "std",
    "log_center",
    "log_se",
    "relative_error",
    "ci_low",
    "ci_high",
)


@dataclasses.dataclass(frozen=True)
class RareEventEstimate:
    """``P(statistic < -eta)`` on a grid from independent repetitions, with intervals.

    Attributes:
        config: The configuration's content (``Config.content()``).
        statistic: ``"min_inner"`` or ``"min_cos"``.
        seed: Run seed.
        eta: The grid.
        estimate: ``p_bar``, the mean of the repetitions' estimates, per ``eta``.
        std: ``s``, their sample standard deviation.
        log_center: Centre of the interval on the log scale, ``m + v/2``
            (``log p_bar`` where a repetition estimated 0; ``-inf`` where
            ``p_bar = 0``).
        log_se: Standard error of ``log_center`` (NaN where ``p_bar = 0``).
        relative_error: ``h = t log_se``, the interval's half-width on the
            log scale (NaN where ``p_bar = 0``).
        ci_low: ``exp(log_center - h)`` (0 where ``p_bar = 0``).
        ci_high: ``exp(log_center + h)`` (NaN where ``p_bar = 0``: not resolved).
        confidence: Two-sided level of the interval.
        runs: The repetitions, in repetition order.
    """

    config: Mapping[str, Any]
    statistic: str
    seed: int
    eta: tuple[float, ...]
    estimate: tuple[float, ...]
    std: tuple[float, ...]
    log_center: tuple[float, ...]
    log_se: tuple[float, ...]
    relative_error: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    confidence: float
    runs: tuple[SubsetRun, ...]

    @property
    def repetitions(self) -> int:
        """``R``, the number of repetitions."""
        return len(self.runs)

    @property
    def evaluations(self) -> int:
        """Score evaluations of all repetitions."""
        return sum(r.evaluations for r in self.runs)

    @property
    def log_estimate(self) -> np.ndarray:
        """``log p_bar`` per ``eta`` (``-inf`` where ``p_bar = 0``)."""
        with np.errstate(divide="ignore"):
            return np.log(np.asarray(self.estimate))

    @classmethod
    def from_runs(
        cls, config: Config, runs: Sequence[SubsetRun], confidence: float = 0.95
    ) -> RareEventEstimate:
        """Combine repetitions of one ``(config, statistic, eta, seed, settings)``.

        Args:
            config: The configuration the runs belong to.
            runs: At least two runs differing only in ``repetition``.
            confidence: Two-sided level in ``(0, 1)``. Defaults to 0.95.

        Raises:
            ValueError: If fewer than two runs are given, they disagree on
                anything but the repetition index, repeat an index, or do not
                belong to ``config``, or ``confidence`` is out of range.
        """
        runs = sorted(runs, key=lambda r: r.repetition)
        if len(runs) < 2:
            raise ValueError(f"runs must hold at least 2 repetitions, got {len(runs)}")
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
        first = runs[0]
        same = ("config_hash", "statistic", "seed", "eta", "settings")
        for r in runs:
            for name in same:
                if getattr(r, name) != getattr(first, name):
                    raise ValueError(
                        f"runs must share {name}: repetition {r.repetition} has "
                        f"{getattr(r, name)!r}, repetition {first.repetition} "
                        f"{getattr(first, name)!r}"
                    )
        if len({r.repetition for r in runs}) != len(runs):
            raise ValueError("runs must have distinct repetition indices")
        if first.config_hash != config.config_hash:
            raise ValueError(
                f"runs are of configuration {first.config_hash}, config is "
                f"{config.config_hash}"
            )
        E = np.array([r.estimate for r in runs])
        R = E.shape[0]
        mean = E.mean(axis=0)
        std = E.std(axis=0, ddof=1)
        t = stats.t.ppf(0.5 + confidence / 2, R - 1)
        positive = mean > 0
        lognormal = (E > 0).all(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            L = np.log(np.where(E > 0, E, 1.0))
            v = L.var(axis=0, ddof=1)
            center = np.where(lognormal, L.mean(axis=0) + v / 2, np.log(mean))
            se = np.where(
                lognormal,
                np.sqrt(v / R + v**2 / (2 * (R - 1))),
                np.where(positive, std / (mean * math.sqrt(R)), np.nan),
            )
        h = t * se
        low = np.where(positive, np.exp(center - h), 0.0)
        high = np.where(positive, np.exp(center + h), np.nan)
        return cls(
            config=config.content(),
            statistic=first.statistic,
            seed=first.seed,
            eta=first.eta,
            estimate=tuple(float(x) for x in mean),
            std=tuple(float(x) for x in std),
            log_center=tuple(float(x) for x in center),
            log_se=tuple(float(x) for x in se),
            relative_error=tuple(float(x) for x in h),
            ci_low=tuple(float(x) for x in low),
            ci_high=tuple(float(x) for x in high),
            confidence=float(confidence),
            runs=tuple(runs),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; non-finite numbers become ``None``."""
        out: dict[str, Any] = {
            "config": dict(self.config),
            "statistic": self.statistic,
            "seed": self.seed,
            "confidence": self.confidence,
            "runs": [r.to_dict() for r in self.runs],
        }
        for name in _FLOAT_FIELDS:
            out[name] = [_finite(x) for x in getattr(self, name)]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RareEventEstimate:
        """The estimate from :meth:`to_dict`'s output."""
        values = dict(data)
        for name in _FLOAT_FIELDS:
            values[name] = tuple(_unfinite(x) for x in values[name])
        values["runs"] = tuple(SubsetRun.from_dict(r) for r in values["runs"])
        values["config"] = dict(values["config"])
        return cls(**values)

    def config_object(self) -> Config:
        """The :class:`Config` of ``config`` (``trials`` at its default)."""
        content = dict(self.config)
        content["batch_sizes"] = tuple(content["batch_sizes"])
        return Config(**content)


def rare_event_estimate(
    config: Config,
    eta: float | Sequence[float],
    *,
    seed: int,
    repetitions: int,
    statistic: str = "min_inner",
    settings: SubsetSettings | None = None,
    confidence: float = 0.95,
) -> RareEventEstimate:
    """``R`` repetitions of :func:`subset_simulation` (indices ``0 .. R-1``), combined.

    Args:
        config: The configuration.
        eta: A level ``>= 0`` or a strictly increasing grid.
        seed: Run seed, an integer >= 0.
        repetitions: ``R``, an integer >= 2.
        statistic: One of ``STATISTICS``. Defaults to ``"min_inner"``.
        settings: Tuning; defaults to ``SubsetSettings()``.
        confidence: Two-sided level of the interval. Defaults to 0.95.

    Returns:
        RareEventEstimate with the mean, its interval and the runs.

    Raises:
        ValueError: If an argument is out of range.
    """
    settings = SubsetSettings() if settings is None else settings
    _check_common(config, statistic, seed, settings)
    _check_eta(eta)
    if not _is_int(repetitions) or repetitions < 2:
        raise ValueError(f"repetitions must be an integer >= 2, got {repetitions!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    runs = [
        subset_simulation(
            config, eta, seed=seed, repetition=r, statistic=statistic, settings=settings
        )
        for r in range(repetitions)
    ]
    return RareEventEstimate.from_runs(config, runs, confidence)
