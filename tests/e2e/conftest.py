"""Fixtures for end-to-end tests: a real Prefect server, a Prefect client and a
headless chromium.  Every test collected under tests/e2e gets the ``e2e``
marker automatically, so ``pytest -m "not e2e"`` skips the lot.

Helpers (run_cli, start_worker, deployment_run, wait_for_flow_run, ...) live
in ``tests/e2e/prefect_server.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.prefect_server import (
    CHROMIUM_PATH,
    PrefectServer,
    launch_chromium,
    prefect_client as _prefect_client,
    start_prefect_server,
)

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On failure, attach the tail of the server (and worker) logs to the report."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)  # read by the ``page`` fixture
    server = getattr(item, "funcargs", {}).get("prefect_server")
    if report.failed and isinstance(server, PrefectServer):
        report.sections.append(("prefect server / worker logs", server.debug_report()))


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real ``prefect server start`` (UI on) on a free port, isolated PREFECT_HOME
    and SQLite DB, for the whole session.

    Attributes: ``api_url`` (http://127.0.0.1:PORT/api), ``ui_url``, ``env``
    (os.environ + PREFECT_API_URL/PREFECT_HOME/... for CLI and workers),
    ``home``, ``log_path``, ``startup_seconds``; ``cli(args, cwd)``.
    Start-up takes ~20 s on the 2-core CI box (timeout 120 s, override with
    COLLECTFLOW_E2E_SERVER_TIMEOUT).
    """
    timeout = float(os.environ.get("COLLECTFLOW_E2E_SERVER_TIMEOUT", "120"))
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-server"), timeout=timeout)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefect_client(prefect_server: PrefectServer):
    """In-process ``SyncPrefectClient`` bound to the session server."""
    with _prefect_client(prefect_server.api_url) as client:
        yield client


@pytest.fixture(scope="module")  # Playwright's sync API keeps an event loop in this thread while it lives
def chromium(prefect_server: PrefectServer):
    """A headless Debian chromium driven by Playwright (sync API); skips the
    test when chromium or playwright is missing.  Never runs ``playwright install``."""
    if not Path(CHROMIUM_PATH).exists():
        reason = f"{CHROMIUM_PATH} not installed (apt-get install chromium)"
        if os.environ.get("COLLECTFLOW_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + "; COLLECTFLOW_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium, prefect_server: PrefectServer, request: pytest.FixtureRequest):
    """A fresh browser page (1400x1000); on failure a screenshot is written next to
    the server log as ``<test name>.png``."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            try:
                pg.screenshot(path=str(prefect_server.log_path.parent / f"{request.node.name}.png"),
                              full_page=True)
            except Exception:
                pass
        context.close()
