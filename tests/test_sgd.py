"""Toy SGD models (theory._sgd): exact quantities against independent oracles.

Oracles: torch autograd with one backward pass per sample (gradients, Gram),
``numpy.linalg.eigvalsh`` of the per-sample Hessians (``L``, ``mu``),
``numpy.linalg.lstsq`` and ``scipy.optimize.minimize`` (``F*``), a plain Python
replay of SGD from the drawn indices, and the exact decoupling of SGD on
orthogonal data (Section 2 of the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

import theory
from theory.toy import ToyProblem, make_data, make_problem, sgd


@dataclass(frozen=True)
class Case:
    loss: str
    data: str
    n: int
    d: int
    noise_std: float
    seed: int

    def make_id(self) -> str:
        return f"{self.loss}-{self.data}-n{self.n}-d{self.d}-noise{self.noise_std}"

    def problem(self) -> ToyProblem:
        rng = np.random.default_rng(self.seed)
        return make_problem(
            self.n,
            self.d,
            loss=self.loss,
            data=self.data,
            noise_std=self.noise_std,
            rng=rng,
        )


CASES = [
    Case("square", "gaussian", 6, 10, 0.3, 0),  # interpolating, d > n
    Case("square", "gaussian", 12, 4, 0.5, 1),  # not interpolating, d < n
    Case("square", "sphere", 8, 8, 0.0, 2),
    Case("square", "gaussian", 12, 4, 0.0, 7),  # d < n but labels realizable
    Case("square", "orthogonal", 5, 9, 0.2, 3),
]
NON_SEPARABLE = Case("logistic", "gaussian", 30, 3, 1.0, 4)
SEPARABLE = [
    Case("logistic", "gaussian", 5, 10, 0.0, 5),
    Case("logistic", "orthogonal", 4, 4, 0.0, 6),
]
CASES += [NON_SEPARABLE, *SEPARABLE]
IDS = [c.make_id() for c in CASES]


def _torch_sample_grads(problem: ToyProblem, w: np.ndarray) -> np.ndarray:
    """Naive oracle: one autograd backward pass per sample."""
    X = torch.tensor(problem.X)
    y = torch.tensor(problem.y)
    grads = []
    for i in range(problem.n):
        wt = torch.tensor(w, requires_grad=True)
        m = X[i] @ wt
        if problem.loss == "square":
            f = 0.5 * (m - y[i]) ** 2
        else:
            f = torch.nn.functional.softplus(-y[i] * m)
        f.backward()
        grads.append(wt.grad.numpy().copy())
    return np.array(grads)


@settings(max_examples=15)
@given(
    case=st.sampled_from(CASES),
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(0.1, 3.0),
)
def test_gradients_gram_risk_match_autograd(case: Case, seed: int, scale: float):
    problem = case.problem()
    w = scale * np.random.default_rng(seed).standard_normal(problem.d)
    G_oracle = _torch_sample_grads(problem, w)
    # float64 round-off only: relative 1e-12 of the largest entry.
    np.testing.assert_allclose(
        problem.sample_gradients(w), G_oracle, rtol=1e-12, atol=1e-13
    )
    np.testing.assert_allclose(
        problem.grad_risk(w), G_oracle.mean(axis=0), rtol=1e-12, atol=1e-13
    )
    gram = G_oracle @ G_oracle.T
    np.testing.assert_allclose(problem.gram(w), gram, rtol=1e-11, atol=1e-13)
    off = gram[~np.eye(problem.n, dtype=bool)]
    assert problem.confusion(w) == pytest.approx(max(0.0, -off.min()), abs=1e-12)
    X, y = torch.tensor(problem.X), torch.tensor(problem.y)
    m = X @ torch.tensor(w)
    f = (
        0.5 * (m - y) ** 2
        if case.loss == "square"
        else torch.nn.functional.softplus(-y * m)
    )
    assert problem.risk(w) == pytest.approx(float(f.mean()), rel=1e-13, abs=1e-15)
    norms = np.linalg.norm(G_oracle, axis=1)
    iu, ju = np.triu_indices(problem.n, 1)
    cos = gram[iu, ju] / (norms[iu] * norms[ju])
    np.testing.assert_allclose(problem.cosines(w), cos, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gram_agrees_with_theory_gram(case: Case):
    problem = case.problem()
    w = np.random.default_rng(case.seed + 100).standard_normal(problem.d)
    G = theory.gram(
        [w[None, :]],
        problem.X,
        problem.y,
        activation="identity",
        loss=case.loss,
        output_activation=False,
        label_bound=None,
    )
    np.testing.assert_allclose(problem.gram(w), G, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_smoothness_and_pl_constants_from_hessian_eigenvalues(case: Case):
    problem = case.problem()
    # The Hessian of f_i is h''(m) x_i x_i^T with sup h'' = 1 (square) or 1/4
    # (logistic); its top eigenvalue is computed by eigvalsh, not by norms.
    h2 = 1.0 if case.loss == "square" else 0.25
    tops = [np.linalg.eigvalsh(h2 * np.outer(x, x))[-1] for x in problem.X]
    assert problem.L == pytest.approx(max(tops), rel=1e-12)
    if case.loss == "square":
        assert problem.mu == pytest.approx(min(tops), rel=1e-12)
        # PL with mu = min ||x_i||^2 holds at random points and is tight for
        # the sample of smallest norm: 1/2 ||grad f_i||^2 = ||x_i||^2 f_i.
        rng = np.random.default_rng(case.seed)
        for _ in range(5):
            w = rng.standard_normal(problem.d)
            lhs = 0.5 * np.sum(problem.sample_gradients(w) ** 2, axis=1)
            rhs = problem.mu * problem.sample_losses(w)
            assert np.all(lhs >= rhs * (1 - 1e-12))
            i = int(np.argmin(np.sum(problem.X**2, axis=1)))
            assert lhs[i] == pytest.approx(rhs[i], rel=1e-12)
    else:
        assert problem.mu == 0.0


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.loss == "square"], ids=lambda c: c.make_id()
)
def test_least_squares_optimum_matches_lstsq(case: Case):
    problem = case.problem()
    w, *_ = np.linalg.lstsq(problem.X, problem.y, rcond=None)
    F_lstsq = float(np.mean(0.5 * (problem.X @ w - problem.y) ** 2))
    # Different algorithms (SVD projection vs LAPACK gelsd): round-off level.
    assert problem.F_star == pytest.approx(F_lstsq, rel=1e-9, abs=1e-14)
    assert problem.risk(problem.w_star) == pytest.approx(F_lstsq, rel=1e-9, abs=1e-14)
    # Interpolation: d >= n (rank n) or labels realizable (no noise).
    assert problem.interpolating == (case.d >= case.n or case.noise_std == 0)
    if problem.interpolating:
        assert problem.F_star == 0.0
    elif case.noise_std > 0:
        assert problem.F_star > 0.0


def test_logistic_optimum_matches_bfgs_and_separable_is_zero():
    problem = NON_SEPARABLE.problem()
    assert not problem.interpolating
    res = optimize.minimize(
        problem.risk,
        np.zeros(problem.d),
        jac=problem.grad_risk,
        method="BFGS",
        options={"gtol": 1e-12},
    )
    assert problem.F_star == pytest.approx(res.fun, rel=1e-10)
    assert problem.F_star <= res.fun + 1e-15
    assert np.linalg.norm(problem.grad_risk(problem.w_star)) < 1e-12
    for case in SEPARABLE:
        sep = case.problem()
        assert sep.F_star == 0.0 and sep.w_star is None and sep.interpolating
        # Along a separating direction the risk tends to 0 = F*.
        w = np.linalg.lstsq(sep.X, sep.y, rcond=None)[0]
        assert np.all(sep.y * (sep.X @ w) > 0)
        assert sep.risk(50 * w) < 1e-6 * sep.risk(w)


def test_orthogonal_data_is_exactly_orthogonal():
    X = make_data(7, 15, kind="orthogonal", rng=np.random.default_rng(0))
    K = X @ X.T
    assert np.all(K[~np.eye(7, dtype=bool)] == 0.0)
    np.testing.assert_allclose(np.diag(K), 1.0, rtol=1e-15)


@pytest.mark.parametrize("loss", ["square", "logistic"])
def test_orthogonal_data_zero_confusion_and_decoupled_sgd(loss: str):
    rng = np.random.default_rng(11)
    problem = make_problem(6, 12, loss=loss, data="orthogonal", noise_std=0.3, rng=rng)
    w0 = rng.standard_normal(problem.d)
    alpha = 0.3
    run = sgd(
        problem,
        w0,
        alpha=alpha,
        T=200,
        runs=3,
        rng=rng,
        keep_weights=True,
        keep_indices=True,
    )
    # Confusion exactly 0 at every iterate of every run (not just small).
    assert np.all(run.eta == 0.0)
    # The supports of the x_i are disjoint, so a step on f_i leaves every
    # weight outside supp(x_i) bit-for-bit unchanged (w - alpha c * 0.0 == w
    # exactly on every CPU). The coordinates u_i = x_i^T w go through BLAS,
    # whose summation order varies by CPU, so they are compared with a
    # tolerance: only the sampled one moves, by a GD step on f_i alone
    # (||x_i|| = 1): u_i <- u_i - alpha h'(u_i, y_i).
    support = problem.X != 0.0  # [n, d]
    U = run.weights @ problem.X.T  # [R, T+1, n]
    for r in range(3):
        for k in range(200):
            i = run.indices[r, k, 0]
            du = U[r, k + 1] - U[r, k]
            outside = ~support[i]
            assert np.array_equal(
                run.weights[r, k + 1, outside], run.weights[r, k, outside]
            )
            u = U[r, k, i]
            c = (
                u - problem.y[i]
                if loss == "square"
                else -problem.y[i] / (1 + np.exp(problem.y[i] * u))
            )
            assert U[r, k + 1, i] == pytest.approx(u - alpha * c, rel=1e-12, abs=1e-14)
            if c != 0:
                assert du[i] != 0.0


def _replay(problems, w0, alpha, indices):
    """Plain Python SGD from the recorded indices (the oracle for sgd())."""
    out = []
    for r, idx_r in enumerate(indices):
        p = problems[r] if len(problems) > 1 else problems[0]
        w = w0.copy()
        for batch in idx_r:
            batch = batch[batch >= 0]
            g = np.zeros_like(w)
            for i in batch:
                m = p.X[i] @ w
                if p.loss == "square":
                    g += (m - p.y[i]) * p.X[i]
                else:
                    g += -p.y[i] / (1 + np.exp(p.y[i] * m)) * p.X[i]
            w = w - alpha * g / len(batch)
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize("replacement", [True, False])
@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("independent", [False, True])
def test_vectorized_sgd_equals_replay(replacement, batch_size, independent):
    rng = np.random.default_rng(5)
    if independent:
        problems = [
            make_problem(7, 4, loss="logistic", noise_std=0.5, rng=rng)
            for _ in range(4)
        ]
        target = problems
    else:
        problems = [make_problem(7, 4, noise_std=0.5, rng=rng)]
        target = problems[0]
    w0 = rng.standard_normal(4)
    run = sgd(
        target,
        w0,
        alpha=0.2,
        T=40,
        runs=4,
        rng=rng,
        batch_size=batch_size,
        replacement=replacement,
        keep_indices=True,
        keep_weights=True,
    )
    np.testing.assert_allclose(
        run.w_final, _replay(problems, w0, 0.2, run.indices), rtol=1e-12, atol=1e-14
    )
    # Recorded quantities equal the problem's own methods at the recorded w_k.
    for r in range(4):
        p = problems[r] if independent else problems[0]
        W = run.weights[r]
        np.testing.assert_allclose(run.risk[r], p.risk(W), rtol=1e-12)
        g = p.grad_risk(W)
        np.testing.assert_allclose(run.grad_sq[r], np.sum(g * g, axis=1), rtol=1e-12)
        np.testing.assert_allclose(run.eta[r], p.confusion(W), rtol=1e-12, atol=1e-15)
    if not replacement:
        # Each epoch (ceil(7 / B) steps) visits every sample exactly once.
        per_epoch = -(-7 // batch_size)
        for r in range(4):
            for e in range(40 // per_epoch):
                chunk = run.indices[r, e * per_epoch : (e + 1) * per_epoch].ravel()
                assert sorted(chunk[chunk >= 0]) == list(range(7))


def test_sampling_with_replacement_is_uniform():
    problem = make_problem(5, 3, rng=np.random.default_rng(0))
    run = sgd(
        problem,
        alpha=0.1,
        T=2000,
        runs=5,
        rng=np.random.default_rng(1),
        keep_indices=True,
        track_eta=False,
    )
    counts = np.bincount(run.indices.ravel(), minlength=5)
    # Chi-square goodness of fit to the uniform law; false-failure rate 1e-6.
    assert stats.chisquare(counts).pvalue > 1e-6


def test_sgd_is_reproducible_from_the_seed():
    problem = make_problem(8, 5, noise_std=0.5, rng=np.random.default_rng(0))
    runs = [
        sgd(problem, alpha=0.1, T=100, runs=3, rng=np.random.default_rng(seed))
        for seed in (7, 7, 8)
    ]
    np.testing.assert_array_equal(runs[0].risk, runs[1].risk)
    np.testing.assert_array_equal(runs[0].w_final, runs[1].w_final)
    assert not np.array_equal(runs[0].risk, runs[2].risk)
    assert runs[0].steps[0] == 0 and runs[0].steps[-1] == 100


def test_recording_schedule_keeps_first_and_last_step():
    problem = make_problem(8, 5, rng=np.random.default_rng(0))
    run = sgd(problem, alpha=0.1, T=23, rng=np.random.default_rng(0), record_every=5)
    assert list(run.steps) == [0, 5, 10, 15, 20, 23]
    assert run.risk[0, 0] == pytest.approx(float(problem.risk(np.zeros(5))))


def test_rescaling_keeps_the_loss_trajectory():
    base = make_problem(6, 9, noise_std=0.3, rng=np.random.default_rng(3))
    big = base.rescaled(3.0)
    assert big.L == pytest.approx(9 * base.L)
    a = sgd(base, alpha=0.09, T=50, runs=2, rng=np.random.default_rng(4))
    b = sgd(big, alpha=0.01, T=50, runs=2, rng=np.random.default_rng(4))
    np.testing.assert_allclose(a.risk, b.risk, rtol=1e-10)
    np.testing.assert_allclose(b.grad_sq, 9 * a.grad_sq, rtol=1e-10)
    np.testing.assert_allclose(b.eta, 9 * a.eta, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"alpha": np.ones(3)}, "alpha"),
        ({"T": 0}, "T"),
        ({"T": 2.5}, "T"),
        ({"runs": 0}, "runs"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 9, "replacement": False}, "batch_size"),
        ({"record_every": 0}, "record_every"),
        ({"w0": np.zeros(4)}, "w0"),
        ({"rng": 0}, "rng"),
    ],
)
def test_sgd_rejects_bad_input(kwargs, name):
    problem = make_problem(8, 5, rng=np.random.default_rng(0))
    args = {"alpha": 0.1, "T": 10, "rng": np.random.default_rng(0), "runs": 2}
    args.update(kwargs)
    w0 = args.pop("w0", None)
    with pytest.raises(ValueError, match=rf"^{name} "):
        sgd(problem, w0, **args)


def test_problem_and_data_reject_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="^y must have shape"):
        ToyProblem(np.ones((3, 2)), np.ones(4))
    with pytest.raises(ValueError, match="^X must be a 2-D"):
        ToyProblem(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="^y must take values in"):
        ToyProblem(np.ones((3, 2)), np.array([1.0, 0.0, -1.0]), "logistic")
    with pytest.raises(ValueError, match="^loss must be one of"):
        ToyProblem(np.ones((3, 2)), np.ones(3), "hinge")
    with pytest.raises(ValueError, match="^kind='orthogonal' needs n <= d"):
        make_data(5, 3, kind="orthogonal", rng=rng)
    with pytest.raises(ValueError, match="^kind must be one of"):
        make_data(5, 3, kind="uniform", rng=rng)
    with pytest.raises(ValueError, match="^n must be an integer >= 1"):
        make_data(0, 3, kind="sphere", rng=rng)
    with pytest.raises(ValueError, match="^noise_std must be"):
        make_problem(5, 3, noise_std=-1.0, rng=rng)
    with pytest.raises(ValueError, match="^scale must be"):
        make_problem(5, 3, scale=0.0, rng=rng)
    with pytest.raises(ValueError, match="^W must have shape"):
        make_problem(5, 3, rng=rng).risk(np.zeros(4))
    p1 = make_problem(5, 3, rng=rng)
    p2 = make_problem(5, 4, rng=rng)
    with pytest.raises(ValueError, match="^problem: all problems must share"):
        sgd([p1, p2], alpha=0.1, T=5, rng=rng)
    with pytest.raises(ValueError, match="^runs must equal the number of problems"):
        sgd([p1, p1], alpha=0.1, T=5, runs=3, rng=rng)
