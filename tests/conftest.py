"""Shared test configuration.

Hypothesis runs derandomized (a fixed example sequence) so the suite cannot
flake; every Monte Carlo test fixes its own seed and derives its tolerance
from the sample size.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")
