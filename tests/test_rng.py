"""Philox streams: known answers, numpy/numba agreement, distribution, independence."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from montecarlo._rng import _nb_normals, _nb_state, _nb_uniforms, philox4x32
from montecarlo.samplers import PhiloxStream, stream_key

# Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter, key, output.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (
        (0xFFFFFFFF,) * 4,
        (0xFFFFFFFF,) * 2,
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]

# Two-sided false-failure rate of every statistical assertion below.
ALPHA = 1e-6


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_philox_known_answers(counter, key, expected):
    out = philox4x32(np.array([counter]), key)
    assert tuple(int(w[0]) for w in out) == expected


@given(
    seed=st.integers(0, 2**40),
    trial=st.integers(0, 2**64 - 1),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4),
)
def test_numba_stream_replays_numpy_stream(seed, trial, sizes):
    key = stream_key(seed, "cfg")
    ref = PhiloxStream(key, trial)
    state = _nb_state(key, trial)
    for i, m in enumerate(sizes):
        if i % 2:
            a = ref.random(m)
            b = np.empty(m)
            _nb_uniforms(state, b)
            assert np.array_equal(a, b)  # integer arithmetic: bit-identical
        else:
            a = ref.standard_normal(m)
            b = np.empty(m)
            _nb_normals(state, b)
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)
    assert int(state[4]) == ref.block == sum((m + 1) // 2 for m in sizes)


def test_stream_shapes_and_scalars():
    s = PhiloxStream(stream_key(0, "x"), 3)
    assert s.standard_normal((2, 3)).shape == (2, 3)
    assert isinstance(s.random(), float)
    assert isinstance(s.standard_normal(), float)
    u = PhiloxStream(stream_key(0, "x"), 3).random(10_000)
    assert u.min() >= 0.0 and u.max() < 1.0


def test_distributions_match_scipy():
    z = PhiloxStream(stream_key(1, "dist"), 0).standard_normal(200_000)
    u = PhiloxStream(stream_key(1, "dist"), 1).random(200_000)
    assert stats.kstest(z, "norm").pvalue > ALPHA
    assert stats.kstest(u, "uniform").pvalue > ALPHA


def test_streams_of_different_trials_and_seeds_are_uncorrelated():
    m = 100_000
    a = PhiloxStream(stream_key(7, "c"), 0).standard_normal(m)
    b = PhiloxStream(stream_key(7, "c"), 1).standard_normal(m)
    c = PhiloxStream(stream_key(8, "c"), 0).standard_normal(m)
    # The sample correlation of independent normals is ~N(0, 1/m).
    z = stats.norm.isf(ALPHA / 2)
    for x, y in ((a, b), (a, c), (b, c)):
        assert abs(np.corrcoef(x, y)[0, 1]) < z / np.sqrt(m)
    assert not np.array_equal(a, b)


def test_stream_key_validates_seed():
    with pytest.raises(ValueError, match="seed"):
        stream_key(-1, "c")
    with pytest.raises(ValueError, match="seed"):
        stream_key(True, "c")
    assert stream_key(1, "a") != stream_key(1, "b") != stream_key(2, "a")
