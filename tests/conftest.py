"""Every test keeps keys and seals in a temporary folder, never in the checkout (subprocesses inherit it)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def keys_and_seals_away_from_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("keys-and-seals")
    os.environ.setdefault("COLLECTFLOW_KEY_DIR", str(root / "keys"))
    os.environ.setdefault("COLLECTFLOW_SEALS_DIR", str(root / "seals"))
