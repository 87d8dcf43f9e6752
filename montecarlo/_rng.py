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
from numba.core import types
from numba.extending import intrinsic

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
        c0, c1, c2, c3 = (
            (p1 >> s32) ^ c1 ^ k0,
            p1 & mask,
            (p0 >> s32) ^ c3 ^ k1,
            p0 & mask,
        )
    return c0, c1, c2, c3


def _uniform53(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    return (
        (hi >> np.uint64(5)).astype(np.float64) * 67108864.0
        + (lo >> np.uint64(6)).astype(np.float64)
    ) * (1.0 / 9007199254740992.0)


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
        trial = self._t_lo | self._t_hi << 32
        return f"PhiloxStream(key={self._key}, trial={trial}, block={self.block})"

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
    def _count(
        size: int | tuple[int, ...] | None,
    ) -> tuple[int, tuple[int, ...] | None]:
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
#
# The compiled generator is written so that LLVM vectorizes it (AVX2/AVX-512):
# the blocks of a request are produced a tile at a time by a loop whose
# iterations are independent (block b's counter is b0 + i, not a state carried
# from one block to the next), and Box-Muller uses branch-free polynomial log,
# sin and cos (fdlibm's kernels, < 1 ulp) instead of scalar libm calls, which
# would stop the vectorizer. They agree with numpy's log1p, cos and sin to a
# few ulp (tests/test_rng.py checks 1e-14).

_TILE = 256  # blocks per tile: the tile's uniforms stay in L1 cache

# fdlibm e_log.c
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_SQRT2 = 1.4142135623730951
# fdlibm k_sin.c, k_cos.c
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11
# pi/2 in two parts (fdlibm e_rem_pio2.c): the first has 33 bits, so q * _PIO2_1
# is exact for the quadrants q <= 4 of [0, 2 pi)
_INV_PIO2 = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e00
_PIO2_1T = 6.07710050650619224932e-11


@intrinsic
def _f64_bits(typingctx, x):
    """The IEEE-754 bits of a float64 as a uint64 (a bit cast, no conversion)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint64))

    return types.uint64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, x):
    """The float64 whose IEEE-754 bits are the uint64 ``x``."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.uint64), codegen


@nb.njit(cache=True, inline="always", error_model="numpy")
def _nb_log(v: float) -> float:
    """``log(v)`` for a positive normal float64 ``v`` (fdlibm, < 1 ulp), branch-free."""
    bits = _f64_bits(v)
    e = np.int64(bits >> np.uint64(52)) - 1023
    m = _bits_f64(
        (bits & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000)
    )
    big = m > _SQRT2  # reduce m to [sqrt(2)/2, sqrt(2))
    m = m * 0.5 if big else m
    k = float(e + 1) if big else float(e)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + t2 + t1) + k * _LN2_LO)) - f)


@nb.njit(cache=True, inline="always")
def _nb_sincos(theta: float) -> tuple[float, float]:
    """``(sin theta, cos theta)`` for ``theta`` in ``[0, 2 pi]``, branch-free."""
    q = np.floor(theta * _INV_PIO2 + 0.5)
    x = (theta - q * _PIO2_1) - q * _PIO2_1T
    z = x * x
    sn = x + z * x * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))))
    zz = z * z
    r = z * (_C1 + z * (_C2 + z * _C3)) + zz * zz * (_C4 + z * (_C5 + z * _C6))
    hz = 0.5 * z
    w = 1.0 - hz
    cs = w + (((1.0 - w) - hz) + z * r)
    quadrant = np.int64(q) & 3
    s_out = cs if quadrant & 1 else sn
    c_out = sn if quadrant & 1 else cs
    s_out = -s_out if quadrant & 2 else s_out
    c_out = -c_out if (quadrant == 1 or quadrant == 2) else c_out
    return s_out, c_out


@nb.njit(cache=True)
def _nb_tile(st: np.ndarray, b0: np.uint64, count: int, ua: np.ndarray, ub: np.ndarray):
    """The uniform pairs of blocks ``b0 .. b0 + count - 1`` into ``ua``, ``ub``."""
    mask = np.uint64(_MASK)
    # every word is < 2^32; the masks tell the compiler so, and it then uses
    # 32 x 32 -> 64-bit vector multiplies throughout
    c2 = st[2] & mask
    c3 = st[3] & mask
    k00 = st[0] & mask
    k10 = st[1] & mask
    for i in range(count):
        b = b0 + np.uint64(i)
        c0 = b & mask
        c1 = (b >> np.uint64(32)) & mask
        x2 = c2
        x3 = c3
        k0 = k00
        k1 = k10
        for _ in range(10):
            p0 = c0 * np.uint64(_M0)
            p1 = x2 * np.uint64(_M1)
            n0 = (p1 >> np.uint64(32)) ^ c1 ^ k0
            n2 = (p0 >> np.uint64(32)) ^ x3 ^ k1
            c1 = p1 & mask
            x3 = p0 & mask
            c0 = n0
            x2 = n2
            k0 = (k0 + np.uint64(_W0)) & mask
            k1 = (k1 + np.uint64(_W1)) & mask
        ua[i] = _nb_u53(c0, c1)
        ub[i] = _nb_u53(x2, x3)


@nb.njit(cache=True, inline="always")
def _nb_u53(hi: np.uint64, lo: np.uint64) -> float:
    return (
        float(np.int64(hi >> np.uint64(5))) * 67108864.0
        + float(np.int64(lo >> np.uint64(6)))
    ) * (1.0 / 9007199254740992.0)


@nb.njit(cache=True, error_model="numpy")
def _nb_scaled_normals(st: np.ndarray, out: np.ndarray, scale: float) -> None:
    """Fill the flat array ``out`` with ``scale`` times standard normals.

    The normals are those of the numpy stream; the product ``z * scale`` is
    rounded once, as ``standard_normal(m) * scale`` is.
    """
    m = out.size
    blocks = (m + 1) // 2
    b0 = st[4]
    ua = np.empty(_TILE)
    ub = np.empty(_TILE)
    for start in range(0, blocks, _TILE):
        count = min(_TILE, blocks - start)
        _nb_tile(st, b0 + np.uint64(start), count, ua, ub)
        full = min(count, m // 2 - start)  # blocks whose two normals are both kept
        seg = out[2 * start : 2 * (start + full)]  # a view: vectorizable stores
        for i in range(full):
            r = np.sqrt(-2.0 * _nb_log(1.0 - ua[i]))  # 1 - u is exact
            sn, cs = _nb_sincos(_TWO_PI * ub[i])
            seg[2 * i] = (r * cs) * scale
            seg[2 * i + 1] = (r * sn) * scale
        if full < count:  # odd request: the last block keeps its first normal
            r = np.sqrt(-2.0 * _nb_log(1.0 - ua[full]))
            out[m - 1] = (r * _nb_sincos(_TWO_PI * ub[full])[1]) * scale
    st[4] = b0 + np.uint64(blocks)


@nb.njit(cache=True)
def _nb_normals(st: np.ndarray, out: np.ndarray) -> None:
    """Fill the flat array ``out`` with standard normals (same as the numpy stream)."""
    _nb_scaled_normals(st, out, 1.0)


@nb.njit(cache=True)
def _nb_uniforms(st: np.ndarray, out: np.ndarray) -> None:
    """Fill the flat array ``out`` with uniforms on [0, 1) (as the numpy stream)."""
    m = out.size
    blocks = (m + 1) // 2
    b0 = st[4]
    ua = np.empty(_TILE)
    ub = np.empty(_TILE)
    for start in range(0, blocks, _TILE):
        count = min(_TILE, blocks - start)
        _nb_tile(st, b0 + np.uint64(start), count, ua, ub)
        for i in range(count):
            j = 2 * (start + i)
            out[j] = ua[i]
            if j + 1 < m:
                out[j + 1] = ub[i]
    st[4] = b0 + np.uint64(blocks)


def _nb_state(key: tuple[int, int], trial: int) -> np.ndarray:
    """The numba stream state of ``PhiloxStream(key, trial)`` at block 0."""
    return np.array([key[0], key[1], trial & _MASK, trial >> 32, 0], dtype=np.uint64)
