"""How a chunk of trials is computed: numpy (reference), numba (default), cuda.

Public ``montecarlo.backends`` API; see ``montecarlo/_backends.py``.
"""

from montecarlo._backends import (
    BACKENDS,
    DEFAULT_BACKEND,
    Backend,
    available_backends,
    get_backend,
)
from montecarlo._stats import MINIBATCH_COLUMNS, TRIAL_COLUMNS

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "MINIBATCH_COLUMNS",
    "TRIAL_COLUMNS",
    "Backend",
    "available_backends",
    "get_backend",
]
