"""Shared test configuration.

Hypothesis profiles (pick one with CVCOURSE_HYPOTHESIS_PROFILE):
    default      the normal run: enough examples to cover the parameter space, no deadline
                 (numba's first call compiles or loads from cache, which is not a test failure)
    boundscheck  the second pass of `make test` under NUMBA_BOUNDSCHECK=1: fewer examples,
                 since it only needs to show that no valid input reaches out of bounds
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.register_profile(
    "boundscheck",
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.load_profile(os.environ.get("CVCOURSE_HYPOTHESIS_PROFILE", "default"))
