"""The admissible ensembles of the class statements (issue 11, item 3).

Theorem 5.1 and Corollary 5.1 hold for every ``W`` with ``||W_p||_2 <= 1``,
Theorem 6.1 for arbitrary orthogonal layers, so each is run on three
ensembles: ``weights`` in {small, orthogonal, uniform_spectrum}, the ball's
``centre`` in the same three, the linear network's ``layers`` in {haar,
identity, signed_permutation}. Here: the configuration fields (validation,
and the hashes of the configurations written before them), the Theorem 6.1
Gram in closed form and its equality in distribution across the three
orthogonal ensembles, the worst-case search's start at the centre's
ensemble, and the claims aggregated per ensemble on a small run. The draws
themselves are in tests/test_samplers.py; the agreement of the backends
trial by trial in tests/test_engine.py, tests/test_cuda.py (and
tests/_cuda_sim_checks.py) and tests/test_rare.py (the from-normals path).
"""

import numpy as np
import pytest
from scipy import stats

import montecarlo as mc
import theory
from montecarlo import _adversarial
from montecarlo._config import _check_config
from montecarlo._numba_trial import run_chunk
from montecarlo._rng import PhiloxStream, stream_key
from montecarlo._trial import draw_centre, draw_data, draw_weights
from montecarlo._worst_case import selected_configs
from montecarlo.claims import Kind, monte_carlo_claims

EPS = np.finfo(np.float64).eps
LAYERS = ("haar", "identity", "signed_permutation")
CENTRES = ("small", "orthogonal", "uniform_spectrum")


def _linear(layers, **kw):
    """A Theorem 6.1 configuration with the given orthogonal layers."""
    base = dict(
        theorem="6.1",
        n=10,
        d=10,
        depth=3,
        weights="orthogonal_linear",
        layers=layers,
        activation="identity",
        output_activation=False,
        labels="tanh_teacher",
    )
    return mc.Config(**{**base, **kw})


# --- configuration fields and hashes -------------------------------------------

# Hashes of configurations as computed before ``centre`` and ``layers`` existed
# (commit 56cbaef): their stored results must stay theirs.
PINNED = [
    (dict(), "8029310cd25f65d4"),
    (
        dict(theorem="corollary_5.1", weights="ball", r=0.4, n=6, d=5, width=7),
        "e074f970f2ddc530",
    ),
    (
        dict(
            theorem="6.1",
            weights="orthogonal_linear",
            activation="identity",
            output_activation=False,
            depth=3,
            n=6,
            d=5,
        ),
        "982b92a1961a1c3e",
    ),
    (
        dict(theorem="5.1", weights="small", scale=0.5, batch_sizes=(2, 5)),
        "715cbd4a3537c2da",
    ),
]


@pytest.mark.parametrize("kw, expected", PINNED)
def test_configurations_from_before_the_new_fields_keep_their_hashes(kw, expected):
    config = mc.Config(**kw)
    assert config.config_hash == expected
    assert "centre" not in config.content() and "layers" not in config.content()


def test_the_quick_suite_keeps_its_stored_configurations():
    # Hashes of the quick suite before it ran three ensembles (commit 56cbaef).
    hashes = {c.config_hash for _, c in mc.load_spec("quick").configs()}
    before = {
        "0256f0d096e01352",  # t51_depth depth=2, weights=small
        "93181b3125d33781",  # t51_depth depth=2, weights=orthogonal
        "a1ecb8b67ec854c6",  # c51_radius r=1.0 (centre small)
        "50b240db2e2905b7",  # t61_depth depth=4 (haar)
    }
    assert before <= hashes


def test_non_default_centre_and_layers_enter_the_hash_and_round_trip():
    ball = mc.Config(theorem="corollary_5.1", weights="ball", r=1.0)
    hashes = {
        mc.Config(theorem="corollary_5.1", weights="ball", r=1.0, centre=c).config_hash
        for c in CENTRES
    }
    assert len(hashes) == 3 and ball.config_hash in hashes
    assert len({_linear(x).config_hash for x in LAYERS}) == 3
    for config in (_linear("identity"), mc.Config(weights="ball", centre="orthogonal")):
        content = config.content()
        content["batch_sizes"] = tuple(content["batch_sizes"])
        assert mc.Config(**content, trials=config.trials) == config


SPEC_ERRORS = [
    (
        'weights = "gaussian"\ncentre = "orthogonal"',
        "configs.g.centre: applies only to weights = 'ball', got weights = 'gaussian'",
    ),
    (
        'weights = "ball"\ncentre = "haar"',
        "configs.g.centre: must be one of ['small', 'orthogonal', "
        "'uniform_spectrum'], got 'haar'",
    ),
    (
        'weights = "small"\nlayers = "identity"',
        "configs.g.layers: applies only to weights = 'orthogonal_linear', got "
        "weights = 'small'",
    ),
    (
        'weights = "orthogonal_linear"\nactivation = "identity"\n'
        'output_activation = false\nlayers = ["haar", "permutation"]',
        "configs.g.layers[1]: must be one of ['haar', 'identity', "
        "'signed_permutation'], got 'permutation'",
    ),
    (
        'theorem = "6.1"\nweights = "uniform_spectrum"',
        "configs.g: theorem = '6.1' admits weights in ['orthogonal_linear'], got "
        "weights = 'uniform_spectrum'",
    ),
]


@pytest.mark.parametrize("table, message", SPEC_ERRORS)
def test_spec_errors_name_the_key_and_the_allowed_values(table, message):
    with pytest.raises(mc.SpecError) as info:
        mc.parse_spec(f"[configs.g]\n{table}\n", name="s")
    assert info.value.problems == [message]


def test_a_default_value_given_where_it_does_not_apply_is_an_error_too():
    with pytest.raises(mc.SpecError, match=r"configs.g.layers: applies only"):
        mc.parse_spec('[configs.g]\nweights = "gaussian"\nlayers = "haar"\n')
    # A Config built in code: the fields that differ from their defaults.
    wrong = mc.Config(weights="orthogonal", centre="uniform_spectrum")
    assert _check_config(wrong, "c") == [
        "c.centre: applies only to weights = 'ball', got weights = 'orthogonal'"
    ]


def test_every_class_statement_admits_three_ensembles():
    spec = mc.parse_spec(
        """
[configs.t51]
theorem = "5.1"
weights = ["small", "orthogonal", "uniform_spectrum"]
[configs.c51]
theorem = "corollary_5.1"
weights = "ball"
centre = ["small", "orthogonal", "uniform_spectrum"]
[configs.t61]
theorem = "6.1"
weights = "orthogonal_linear"
activation = "identity"
output_activation = false
layers = ["haar", "identity", "signed_permutation"]
""",
        name="s",
    )
    assert [len(cs) for cs in spec.groups.values()] == [3, 3, 3]


# --- Theorem 6.1: G depends on the weights only through v ------------------------


@pytest.mark.parametrize("layers", LAYERS)
def test_linear_gram_is_the_closed_form_of_the_read_out_direction(layers):
    # G = 1/2 (r r^T) o (X X^T), r = gamma X v - y, v = (W_beta ... W_1)^T:
    # the fact behind the equality in distribution below. G's entries are
    # sums of beta products of O(1) numbers, each rounded through d-term
    # dot products: 8 (d + beta) EPS bounds the difference of the two
    # evaluation orders.
    config = _linear(layers)
    key = stream_key(5, config.config_hash)
    for trial in range(5):
        rng = PhiloxStream(key, trial)
        X, y = draw_data(config, rng)
        weights, gamma = draw_weights(config, rng)
        G = theory.gram(
            weights,
            X,
            y,
            activation="identity",
            loss="square",
            output_activation=False,
            gamma=gamma,
        )
        v = weights[-1][0]
        for W in reversed(weights[:-1]):
            v = v @ W
        assert abs(np.linalg.norm(v) - 1.0) <= 4 * config.d * EPS
        r = gamma * (X @ v) - y
        closed = 0.5 * np.outer(r, r) * (X @ X.T)
        tol = 8 * (config.d + config.depth) * EPS
        np.testing.assert_allclose(G, closed, rtol=0, atol=tol)


KS_TRIALS = 20_000
KS_LEVEL = 1e-4


def _records(config, seed=7):
    key = stream_key(seed, config.config_hash)
    return run_chunk(config, key, np.arange(KS_TRIALS))[0]


def test_the_three_orthogonal_ensembles_agree_in_distribution():
    # Two-sample KS of min_inner and min_cos (columns 1, 2 of the record)
    # between Haar layers and each other ensemble, independent streams (the
    # configurations' hashes differ). Under the theorem's fact every p-value
    # is uniform: 4 tests at KS_LEVEL fail together with probability
    # <= 4e-4.
    haar = _records(_linear("haar"))
    for layers in ("identity", "signed_permutation"):
        other = _records(_linear(layers))
        for column, name in ((1, "min_inner"), (2, "min_cos")):
            p = stats.ks_2samp(haar[:, column], other[:, column]).pvalue
            assert p > KS_LEVEL, (layers, name, p)


def test_the_distribution_check_separates_gamma_off_by_two_layers():
    # Power: the same test at the same level rejects identity layers at
    # depth 5 (gamma = 1/sqrt(10)) against Haar layers at depth 3 (gamma =
    # 1/sqrt(6)): a gamma off by two layers would fail the test above.
    haar = _records(_linear("haar"))
    other = _records(_linear("identity", depth=5))
    assert stats.ks_2samp(haar[:, 1], other[:, 1]).pvalue < KS_LEVEL


# --- the worst-case search starts at the centre's ensemble ---------------------


@pytest.mark.parametrize("centre", CENTRES)
def test_the_search_starts_from_the_configured_centre(centre):
    config = mc.Config(
        theorem="corollary_5.1", weights="ball", centre=centre, r=0.5, d=4, width=5
    )
    key = stream_key(3, config.config_hash)
    _, centres = _adversarial._start_weights(config, key, 2)
    for s in range(2):
        rng = PhiloxStream(key, _adversarial.START_TRIAL_BASE + s)
        for layer, expected in zip(centres, draw_centre(config, rng), strict=True):
            np.testing.assert_array_equal(layer[s], expected)


def test_only_the_ball_has_a_centre():
    with pytest.raises(ValueError, match="weights = 'ball' to have a centre, got"):
        draw_centre(mc.Config(weights="small"), PhiloxStream((1, 2), 0))


def test_the_quick_suite_searches_one_ensemble_per_statement():
    spec = mc.load_spec("quick")
    chosen = selected_configs(spec.options["adversarial"], spec.groups, spec.axes)
    by_group = {g: c for g, c in chosen}
    assert len(chosen) == len(by_group) == 3
    assert by_group["t51_depth"].weights == "small"
    assert (by_group["c51_radius"].centre, by_group["c51_radius"].r) == ("small", 1.0)


# --- claims: one per ensemble, aggregated ----------------------------------------


def test_claims_aggregate_over_the_three_ensembles_of_each_statement(tmp_path):
    spec = mc.parse_spec(
        """
seed = 3
[defaults]
trials = 40
n = 6
d = 5
width = 6
[configs.t51]
theorem = "5.1"
weights = ["small", "orthogonal", "uniform_spectrum"]
depth = [1, 3]
[configs.c51]
theorem = "corollary_5.1"
weights = "ball"
centre = ["small", "orthogonal", "uniform_spectrum"]
r = [0.0, 1.0]
[configs.t61]
theorem = "6.1"
weights = "orthogonal_linear"
activation = "identity"
output_activation = false
layers = ["haar", "identity", "signed_permutation"]
depth = [1, 3]
""",
        name="ensembles",
    )
    mc.run_sweep(spec, tmp_path, backend="numba", progress=False)
    claims = monte_carlo_claims(mc.load_run(tmp_path))
    expected = {
        "5.1": set(CENTRES),
        "corollary_5.1": {f"ball/{c}" for c in CENTRES},
        "6.1": {f"orthogonal_linear/{x}" for x in LAYERS},
    }
    for statement, ensembles in expected.items():
        verdicts = [
            c
            for c in claims
            if c.statement == statement and c.kind in (Kind.PROSE, Kind.INEQUALITY)
        ]
        assert verdicts, statement
        for claim in verdicts:
            assert {p.ensemble for p in claim.parts} == ensembles, claim.claim
            assert claim.ensemble == "every admissible ensemble"
