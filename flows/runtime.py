"""The process's App: built on first use from the settings, replaceable by a test (``use``).

Prefect tasks of a flow run share it per process, so a batch never pays for
a new engine or a policy file read. A changed database URL (a test pointing
the flows at its own file) builds a new one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

# No network here, and none is needed: keep Prefect from phoning home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Local mode's temporary server takes 8-25 s to start on a small, busy machine; Prefect waits 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from flows.bootstrap import App, bootstrap  # noqa: E402
from models.settings import Settings, get_settings  # noqa: E402
from models.store import CaseStore  # noqa: E402
from states.policy import CollectionPolicy  # noqa: E402

_apps: dict[str, App] = {}
_override: list[App] = []


def app() -> App:
    """The App in use: the one a test installed with ``use``, else the settings' (built once per database URL)."""
    if _override:
        return _override[-1]
    current = get_settings()
    built = _apps.get(current.database_url)
    if built is None:
        built = _apps[current.database_url] = bootstrap(current)
    return built


@contextmanager
def use(installed: App) -> Iterator[App]:
    """Run the flows of this process against ``installed`` for the ``with`` block."""
    _override.append(installed)
    try:
        yield installed
    finally:
        _override.remove(installed)


def forget() -> None:
    """Drop the Apps built so far (their engines are disposed); the next ``app()`` builds anew."""
    for built in _apps.values():
        built.engine.dispose()
    _apps.clear()


def settings() -> Settings:
    return app().settings


def store() -> CaseStore:
    return app().store


def policy() -> CollectionPolicy:
    return app().policy


def today() -> date:
    """Today in the lender's timezone (Asia/Shanghai by default): the latest business date to close."""
    return app().today()
