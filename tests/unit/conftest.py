"""Unit tests: pure domain rules, no I/O. Hypothesis runs a modest number of examples with no timing checks, since
the suite shares its CPUs with servers started by the API tests."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "vmgallery-unit", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("vmgallery-unit")
