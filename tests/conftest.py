"""Hypothesis without deadlines (derandomized under CI); every test keeps keys and seals in a temporary folder, never in the checkout (subprocesses inherit it)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# These machines are shared and noisy: a property holds or not whatever the clock says,
# so no example has a deadline (speed is measured in benchmarks/, never in a test).
# Under CI (COLLECTFLOW_REQUIRE_SERVICES, set by .ci/run) the examples are derandomized: the same
# examples on every run, so a submission is judged on its code, not on a draw. A search for new
# counter-examples is a run of its own: HYPOTHESIS_PROFILE=explore (random, 1,000 examples where a test sets no number of its own).
settings.register_profile(
    "collectflow", deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=bool(os.environ.get("COLLECTFLOW_REQUIRE_SERVICES")),
)
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=1_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "collectflow"))


@pytest.fixture(autouse=True, scope="session")
def keys_and_seals_away_from_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("keys-and-seals")
    os.environ.setdefault("COLLECTFLOW_KEY_DIR", str(root / "keys"))
    os.environ.setdefault("COLLECTFLOW_SEALS_DIR", str(root / "seals"))
