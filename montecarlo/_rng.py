"""Counter-based random streams keyed by (seed, configuration, trial).

A Monte Carlo run must be a function of its spec and seed alone, whatever the
chunking, thread count, worker count or resume point. Every trial therefore
draws from its own stream, addressed by a counter rather than by a mutable
state carried from trial to trial:

    block b of trial t  =  Philox4x32-10(counter = (b_lo, b_hi, t_lo, t_hi),
                                         key     = blake2b(seed, config_hash))

Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy
as 1, 2, 3", SC 2011) is a bijection of the 128-bit counter for each 64-bit
key that passes TestU01's BigCrush; it is the generator behind numpy's
``Philox``, cuRAND and JAX. One block gives four 32-bit words, which this
module turns into

- two uniforms ``u = (w0 >> 5) * 2^-27 + (w1 >> 6) * 2^-53`` in ``[0, 1)``
  (53 random bits each), used by ``random``;
- two standard normals by Box-Muller on those uniforms:
  ``r = sqrt(-2 log(1 - u_a))``, ``z = (r cos 2 pi u_b, r sin 2 pi u_b)``,
  used by ``standard_normal``.

A request for ``m`` numbers consumes ``ceil(m / 2)`` blocks; an odd request
discards the second number of its last block. The same arithmetic is written
twice, vectorized in numpy (:class:`PhiloxStream`, the reference) and
scalar in numba (the ``_nb_*`` functions used by the compiled backends), and
the two give bit-identical uniforms and normals equal to the last ulp of
``log``/``cos``.
"""

from __future__ import annotations

import hashlib

import numba as nb
import numpy as np

__all__ = ["PhiloxStream", "stream_key", "philox4x32"]

_M0 = 0xD2511F53
_M1 = 0xCD9E8D57
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
_MASK = 0xFFFFFFFF
_TWO_PI = 2.0 * np.pi


def stream_key(seed: int, config_hash: str) -> tuple[int, int]:
    """The 64-bit Philox key of one configuration of one run, as two 32-bit words.

    Args:
        seed: The run seed, an integer >= 0.
        config_hash: The configuration's content hash (hex string).

    Returns:
        ``(k0, k1)``, the low and high words of ``blake2b(seed, config_hash)``.

    Raises:
        ValueError: If ``seed`` is not an integer >= 0.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    digest = hashlib.blake2b(
        f"{int(seed)}:{config_hash}".encode(), digest_size=8
    ).digest()
    k = int.from_bytes(digest, "little")
    return k & _MASK, k >> 32


def philox4x32(
    counter: np.ndarray, key: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Philox4x32-10 on a batch of counters (numpy reference).

    Args:
        counter: ``(m, 4)`` array of 32-bit counter words (any integer dtype).
        key: The two 32-bit key words.

    Returns:
        The four output words, each an ``(m,)`` uint64 array of values < 2^32.
    """
    c = np.asarray(counter, dtype=np.uint64)
    c0, c1, c2, c3 = (c[:, i].copy() for i in range(4))
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    m0, m1, mask = np.uint64(_M0), np.uint64(_M1), np.uint64(_MASK)
    w0, w1, s32 = np.uint64(_W0), np.uint64(_W1), np.uint64(32)
    for r in range(10):
        if r:
            k0 = (k0 + w0) & mask
            k1 = (k1 + w1) & mask
        p0 = c0 * m0
        p1 = c2 * m1
        c0, c1, c2, c3 = (p1 >> s32) ^ c1 ^ k0, p1 & mask, (p0 >> s32) ^ c3 ^ k1, p0 & mask
    return c0, c1, c2, c3


def _uniform53(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    return ((hi >> np.uint64(5)).astype(np.float64) * 67108864.0
            + (lo >> np.uint64(6)).astype(np.float64)) * (1.0 / 9007199254740992.0)


class PhiloxStream:
    """The random stream of one trial: ``standard_normal`` and ``random`` only.

    It offers exactly the two ``numpy.random.Generator`` methods the samplers
    use, so any sampler in :mod:`montecarlo` runs on it unchanged, and the
    numba backend replays the same draws in compiled code.

    Args:
        key: Philox key words from :func:`stream_key`.
        trial: Trial index, an integer in ``[0, 2^64)``.
    """

    __slots__ = ("_key", "_t_lo", "_t_hi", "block")

    def __init__(self, key: tuple[int, int], trial: int) -> None:
        if trial < 0 or trial >= 2**64:
            raise ValueError(f"trial must be an integer in [0, 2^64), got {trial}")
        self._key = (int(key[0]), int(key[1]))
        self._t_lo, self._t_hi = int(trial) & _MASK, int(trial) >> 32
        self.block = 0

    def __repr__(self) -> str:
        return f"PhiloxStream(key={self._key}, trial={self._t_lo | self._t_hi << 32}, block={self.block})"

    def _blocks(self, m: int) -> tuple[np.ndarray, ...]:
        b = np.arange(self.block, self.block + m, dtype=np.uint64)
        ctr = np.empty((m, 4), dtype=np.uint64)
        ctr[:, 0] = b & np.uint64(_MASK)
        ctr[:, 1] = b >> np.uint64(32)
        ctr[:, 2] = self._t_lo
        ctr[:, 3] = self._t_hi
        self.block += m
        return philox4x32(ctr, self._key)

    @staticmethod
    def _count(size: int | tuple[int, ...] | None) -> tuple[int, tuple[int, ...] | None]:
        if size is None:
            return 1, None
        shape = (size,) if isinstance(size, int | np.integer) else tuple(size)
        return int(np.prod(shape, dtype=np.int64)), shape

    def random(self, size: int | tuple[int, ...] | None = None) -> float | np.ndarray:
        """Uniforms on ``[0, 1)`` with 53 random bits, C order."""
        m, shape = self._count(size)
        x0, x1, x2, x3 = self._blocks((m + 1) // 2)
        u = np.empty(2 * len(x0))
        u[0::2] = _uniform53(x0, x1)
        u[1::2] = _uniform53(x2, x3)
        return float(u[0]) if shape is None else u[:m].reshape(shape)

    def standard_normal(
        self, size: int | tuple[int, ...] | None = None
    ) -> float | np.ndarray:
        """Standard normals by Box-Muller, C order."""
        m, shape = self._count(size)
        x0, x1, x2, x3 = self._blocks((m + 1) // 2)
        r = np.sqrt(-2.0 * np.log1p(-_uniform53(x0, x1)))
        theta = _TWO_PI * _uniform53(x2, x3)
        z = np.empty(2 * len(x0))
        z[0::2] = r * np.cos(theta)
        z[1::2] = r * np.sin(theta)
        return float(z[0]) if shape is None else z[:m].reshape(shape)


# --- numba twin ---------------------------------------------------------------
# A stream state is a uint64 array [k0, k1, trial_lo, trial_hi, block].


@nb.njit(cache=True, inline="always")
def _nb_block(st: np.ndarray) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:
    mask = np.uint64(_MASK)
    b = st[4]
    c0 = b & mask
    c1 = b >> np.uint64(32)
    c2 = st[2]
    c3 = st[3]
    k0 = st[0]
    k1 = st[1]
    for r in range(10):
        if r:
            k0 = (k0 + np.uint64(_W0)) & mask
            k1 = (k1 + np.uint64(_W1)) & mask
        p0 = c0 * np.uint64(_M0)
        p1 = c2 * np.uint64(_M1)
        n0 = (p1 >> np.uint64(32)) ^ c1 ^ k0
        n2 = (p0 >> np.uint64(32)) ^ c3 ^ k1
        c1 = p1 & mask
        c3 = p0 & mask
        c0 = n0
        c2 = n2
    st[4] = b + np.uint64(1)
    return c0, c1, c2, c3


@nb.njit(cache=True, inline="always")
def _nb_u53(hi: np.uint64, lo: np.uint64) -> float:
    return (
        float(hi >> np.uint64(5)) * 67108864.0 + float(lo >> np.uint64(6))
    ) * (1.0 / 9007199254740992.0)


@nb.njit(cache=True)
def _nb_normals(st: np.ndarray, out: np.ndarray) -> None:
    """Fill the flat array ``out`` with standard normals (same as the numpy stream)."""
    m = out.size
    for i in range(0, m, 2):
        x0, x1, x2, x3 = _nb_block(st)
        r = np.sqrt(-2.0 * np.log1p(-_nb_u53(x0, x1)))
        theta = _TWO_PI * _nb_u53(x2, x3)
        out[i] = r * np.cos(theta)
        if i + 1 < m:
            out[i + 1] = r * np.sin(theta)


@nb.njit(cache=True)
def _nb_uniforms(st: np.ndarray, out: np.ndarray) -> None:
    """Fill the flat array ``out`` with uniforms on [0, 1) (same as the numpy stream)."""
    m = out.size
    for i in range(0, m, 2):
        x0, x1, x2, x3 = _nb_block(st)
        out[i] = _nb_u53(x0, x1)
        if i + 1 < m:
            out[i + 1] = _nb_u53(x2, x3)


def _nb_state(key: tuple[int, int], trial: int) -> np.ndarray:
    """The numba stream state of ``PhiloxStream(key, trial)`` at block 0."""
    return np.array(
        [key[0], key[1], trial & _MASK, trial >> 32, 0], dtype=np.uint64
    )
