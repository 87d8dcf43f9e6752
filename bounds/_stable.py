"""Log-space primitives used by every probability bound.

All bounds are of the form ``1 - P_fail`` with ``P_fail`` a sum of
exponentials whose exponents easily reach ``-1e6`` or ``+1e20``; they are
therefore carried as ``log P_fail``. The two operations below are the only
places where ``1 - exp(x)`` or ``exp(a) - exp(b)`` appear, written with
``expm1`` / ``log1p`` so that neither overflow nor the cancellation in
``1 - (1 - 1e-300)`` can occur.
"""

import numpy as np

_LOG_HALF = -np.log(2.0)


def log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate over the whole range.

    Uses ``log(-expm1(x))`` for ``x > -log 2`` and ``log1p(-exp(x))``
    otherwise (Maechler, "Accurately computing log(1 - exp(-|a|))", 2012).
    ``x = 0`` gives ``-inf``; ``x = -inf`` gives ``0``.

    Args:
        x: Array of values ``<= 0`` (positive entries give NaN; callers mask
            them out first).

    Returns:
        ``log(1 - exp(x))`` elementwise, float64, same shape as ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    near = x > _LOG_HALF
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            near,
            np.log(-np.expm1(np.where(near, x, -1.0))),
            np.log1p(-np.exp(np.where(near, -1.0, x))),
        )


def log_sub_exp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``log(exp(a) - exp(b))`` for ``a >= b``; ``-inf`` where ``a == b``.

    Args:
        a: Log of the larger term (may be ``-inf`` only together with ``b``).
        b: Log of the smaller term (may be ``-inf``).

    Returns:
        ``a + log1mexp(b - a)`` elementwise, with ``-inf`` where both are ``-inf``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    both_zero = np.isneginf(a) & np.isneginf(b)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_zero, -np.inf, b - a)
    return np.where(both_zero, -np.inf, a + log1mexp(diff))
