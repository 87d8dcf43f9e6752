"""Shared test configuration.

Hypothesis profiles (``HYPOTHESIS_PROFILE`` selects one):

- ``ci`` (default): derandomized, a fixed example sequence, so the suite
  cannot flake;
- ``explore``: randomized, 20 times more examples and Hypothesis's example
  database, to search further before a release
  (``HYPOTHESIS_PROFILE=explore python -m pytest``).

Every Monte Carlo test fixes its own seed and derives its tolerance from the
sample size.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore",
    derandomize=False,
    deadline=None,
    max_examples=1000,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
