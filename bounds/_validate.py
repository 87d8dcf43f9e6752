"""Argument checks shared by the bounds.

Every check runs before any arithmetic and raises ``ValueError`` whose message
names the argument, the allowed range and the value received.
"""

import math
import numbers
from collections.abc import Sequence

import numpy as np


def _show(value: object) -> str:
    """Short printable form of a received value for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def integer(name: str, value: object, *, minimum: int) -> int:
    """An integer scalar ``>= minimum`` (``bool`` and floats are refused).

    Args:
        name: Argument name used in the error message.
        value: The received value.
        minimum: Smallest allowed value.

    Returns:
        The value as a Python ``int``.

    Raises:
        ValueError: If ``value`` is not an integer or is below ``minimum``.
    """
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {_show(value)}")
    return int(value)


def real(
    name: str,
    value: object,
    *,
    lower: float | None = None,
    lower_open: bool = False,
    upper: float | None = None,
    upper_open: bool = False,
    range_text: str | None = None,
) -> float:
    """A finite real scalar inside an interval.

    Args:
        name: Argument name used in the error message.
        value: The received value.
        lower: Lower end of the allowed interval, or ``None`` for no lower end.
            Defaults to ``None``.
        lower_open: Whether ``lower`` itself is excluded. Defaults to ``False``.
        upper: Upper end, or ``None``. Defaults to ``None``.
        upper_open: Whether ``upper`` itself is excluded. Defaults to ``False``.
        range_text: Wording of the allowed range in the message; built from
            the interval when ``None``. Defaults to ``None``.

    Returns:
        The value as a Python ``float``.

    Raises:
        ValueError: If ``value`` is not a finite real number inside the interval.
    """
    text = range_text or _interval_text(lower, lower_open, upper, upper_open)
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number {text}, got {_show(value)}")
    x = float(value)
    if not np.isfinite(x) or not _inside(
        np.array(x), lower, lower_open, upper, upper_open
    ):
        raise ValueError(f"{name} must be a finite number {text}, got {_show(value)}")
    return x


def real_array(
    name: str,
    value: object,
    *,
    lower: float | None = None,
    lower_open: bool = False,
    range_text: str | None = None,
) -> np.ndarray:
    """A float64 array (any shape, 0-d for a scalar) of finite values ``> lower``.

    Args:
        name: Argument name used in the error message.
        value: Scalar or array-like of real numbers.
        lower: Lower end of the allowed interval, or ``None``. Defaults to ``None``.
        lower_open: Whether ``lower`` itself is excluded. Defaults to ``False``.
        range_text: Wording of the allowed range; built from the interval when
            ``None``. Defaults to ``None``.

    Returns:
        A new read-only float64 array.

    Raises:
        ValueError: If the input is empty, not real, not finite or out of range.
    """
    text = range_text or _interval_text(lower, lower_open, None, False)
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        raise ValueError(
            f"{name} must be a non-empty array of finite numbers {text}, "
            f"got {_show(value)}"
        )
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr) | ~_inside(arr, lower, lower_open, None, False)
    if bad.any():
        first = arr[bad].flat[0]
        raise ValueError(f"{name} must contain finite numbers {text}, got {first!r}")
    arr.setflags(write=False)
    return arr


def integer_array(name: str, value: object, *, minimum: int) -> np.ndarray:
    """An int64 array (any shape, 0-d for a scalar) of integers ``>= minimum``.

    Args:
        name: Argument name used in the error message.
        value: Scalar or array-like of integers (integer dtype; floats refused).
        minimum: Smallest allowed value.

    Returns:
        A new read-only int64 array.

    Raises:
        ValueError: If the input is empty, of a non-integer dtype, or below
            ``minimum``.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or arr.size == 0:
        raise ValueError(
            f"{name} must be a non-empty array of integers >= {minimum}, "
            f"got {_show(value)}"
        )
    arr = arr.astype(np.int64)
    if (arr < minimum).any():
        first = arr[arr < minimum].flat[0]
        raise ValueError(f"{name} must contain integers >= {minimum}, got {first}")
    arr.setflags(write=False)
    return arr


def count_array(name: str, value: object, *, minimum: int) -> np.ndarray:
    """Integers ``>= minimum`` of any size (Python ints beyond int64 too), as float64.

    For counts that only enter the arithmetic as floats (the number of SGD
    steps ``T``): ``10**30`` is accepted and becomes ``1e30``; beyond the
    float range, ``inf``.

    Args:
        name: Argument name used in the error message.
        value: An integer, an integer array, or a (nested) list of integers.
        minimum: Smallest allowed value.

    Returns:
        A new read-only float64 array of the shape of ``value``.

    Raises:
        ValueError: If the input is empty, holds a non-integer (floats and
            ``bool`` included) or a value below ``minimum``.
    """
    arr = np.asarray(value)
    if arr.dtype.kind == "O":  # Python ints beyond the int64 range
        items = list(arr.flat)
        if items and all(
            isinstance(x, numbers.Integral) and not isinstance(x, bool | np.bool_)
            for x in items
        ):
            low = min(items)
            if low < minimum:
                raise ValueError(
                    f"{name} must contain integers >= {minimum}, got {low}"
                )
            out = np.array([int_as_float(int(x)) for x in items]).reshape(arr.shape)
            out.setflags(write=False)
            return out
    elif arr.dtype.kind in "iu" and arr.size:
        if (arr < minimum).any():
            first = arr[arr < minimum].flat[0]
            raise ValueError(f"{name} must contain integers >= {minimum}, got {first}")
        out = arr.astype(np.float64)
        out.setflags(write=False)
        return out
    raise ValueError(
        f"{name} must be a non-empty array of integers >= {minimum} (any size), "
        f"got {_show(value)}"
    )


def int_as_float(x: int) -> float:
    """A validated integer as a float: ``inf`` beyond the float range.

    Args:
        x: An integer of any size.

    Returns:
        The nearest float, or ``inf`` where ``float(x)`` would raise
        ``OverflowError`` (about ``x >= 1.8e308``).
    """
    try:
        return float(x)
    except OverflowError:
        return math.inf


def width_value(value: object) -> int:
    """The width ``l``: an integer ``>= 1`` or a sequence of hidden widths.

    Args:
        value: An integer, or a non-empty sequence of integers (the hidden
            layer widths ``l_0, ..., l_{depth-1}``), of which the maximum is
            taken.

    Returns:
        ``l = max_p l_p`` as a Python ``int``.

    Raises:
        ValueError: If the value (or any entry) is not an integer ``>= 1``.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
        if len(value) == 0:
            raise ValueError(
                "width must be an integer >= 1 or a non-empty sequence of them, "
                f"got {_show(value)}"
            )
        return max(integer("width", w, minimum=1) for w in value)
    return integer("width", value, minimum=1)


def choice(name: str, value: object, allowed: Sequence[object]) -> object:
    """One of a fixed set of values.

    Args:
        name: Argument name used in the error message.
        value: The received value.
        allowed: The allowed values.

    Returns:
        The value unchanged.

    Raises:
        ValueError: If ``value`` is not in ``allowed``.
    """
    if isinstance(value, bool | np.bool_) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}, got {_show(value)}")
    return value


def _inside(
    x: np.ndarray,
    lower: float | None,
    lower_open: bool,
    upper: float | None,
    upper_open: bool,
) -> np.ndarray:
    ok = np.ones(x.shape, dtype=bool)
    if lower is not None:
        ok &= x > lower if lower_open else x >= lower
    if upper is not None:
        ok &= x < upper if upper_open else x <= upper
    return ok


def _interval_text(
    lower: float | None, lower_open: bool, upper: float | None, upper_open: bool
) -> str:
    parts = []
    if lower is not None:
        parts.append(f"{'>' if lower_open else '>='} {lower:g}")
    if upper is not None:
        parts.append(f"{'<' if upper_open else '<='} {upper:g}")
    return " and ".join(parts) if parts else "(any real)"
