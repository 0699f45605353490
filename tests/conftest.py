"""Hypothesis without deadlines; every test keeps keys and seals in a temporary folder, never in the checkout (subprocesses inherit it)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# These machines are shared and noisy: a property holds or not whatever the clock says,
# so no example has a deadline (speed is measured in benchmarks/, never in a test).
settings.register_profile("collectflow", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("collectflow")


@pytest.fixture(autouse=True, scope="session")
def keys_and_seals_away_from_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("keys-and-seals")
    os.environ.setdefault("COLLECTFLOW_KEY_DIR", str(root / "keys"))
    os.environ.setdefault("COLLECTFLOW_SEALS_DIR", str(root / "seals"))
