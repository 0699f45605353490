"""Process-wide wiring for flows and the CLI: settings, one engine, the store, the policy.

Prefect tasks of a flow run share these per process, so a batch never pays
for a new engine or a policy file read.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

# No network here, and none is needed: keep Prefect from phoning home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from models.db import make_engine, upgrade  # noqa: E402
from models.service import load_policy  # noqa: E402
from models.settings import Settings, get_settings  # noqa: E402
from models.store import CaseStore  # noqa: E402
from states.policy import CollectionPolicy  # noqa: E402


@lru_cache(maxsize=4)
def _store_for(url: str) -> CaseStore:
    engine = make_engine(url)
    upgrade(engine)
    return CaseStore(engine)


def settings() -> Settings:
    return get_settings()


def store() -> CaseStore:
    """The case store of the configured database, migrated to head on first use."""
    return _store_for(settings().database_url)


def policy() -> CollectionPolicy:
    return load_policy(settings().policy_file)


def today() -> date:
    """Today in the lender's timezone (Asia/Shanghai by default): the latest business date to close."""
    return datetime.now(ZoneInfo(settings().timezone)).date()
