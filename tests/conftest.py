"""Hypothesis profiles: "ci" (default, a few minutes on 2 cores) and "thorough".

    HYPOTHESIS_PROFILE=thorough python -m pytest
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
