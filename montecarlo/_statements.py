"""Which statement of the paper a configuration tests, and its bound's parameters.

The one place that maps a :class:`montecarlo.Config` to an entry of
:data:`bounds.STATEMENTS`:

- ``theorem = "4.1"``: part 1 when the data are fixed (``fixed_data``), else
  part 2; the bound's width is the largest hidden width;
- ``"5.1"``, ``"corollary_5.1"``, ``"6.1"``: the statement of that name;
- ``"none"``: no statement (a contrast ensemble).

The weight ensembles each statement's hypothesis class admits are
:data:`montecarlo._config.ADMISSIBLE_WEIGHTS`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bounds import STATEMENTS, ProbabilityBound, Statement
from montecarlo._config import Config

__all__ = ["statement_of", "bound_kwargs", "bound_at"]


def statement_of(config: Config) -> Statement | None:
    """The statement ``config`` tests (``None`` for ``theorem = "none"``)."""
    if config.theorem == "none":
        return None
    if config.theorem == "4.1":
        return STATEMENTS["4.1 part 1" if config.fixed_data else "4.1 part 2"]
    return STATEMENTS[config.theorem]


def bound_kwargs(config: Config) -> Mapping[str, object]:
    """The parameters of ``config``'s bound (``n, d, width, depth, ...``).

    Raises:
        ValueError: If the configuration tests no statement.
    """
    st = statement_of(config)
    if st is None:
        raise ValueError(
            f"config must test a theorem, got theorem = {config.theorem!r}"
        )
    values = {
        "n": config.n,
        "d": config.d,
        "width": config.max_width,
        "depth": config.depth,
        "kappa": config.kappa,
        "r": config.r,
    }
    return {p: values[p] for p in st.params}


def bound_at(config: Config, eta: np.ndarray, c: float) -> ProbabilityBound:
    """``config``'s probability bound at constant ``c`` (Theorem 4.1: ``c1 -> inf``)."""
    st = statement_of(config)
    if st is None:
        raise ValueError(
            f"config must test a theorem, got theorem = {config.theorem!r}"
        )
    return st.failure_bound(eta, c, bound_kwargs(config))
