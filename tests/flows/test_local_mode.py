"""Prefect's local mode as the CLI runs it: no flow-run heartbeats when no server outlives the command."""

from __future__ import annotations

from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)

from flows.local_server import local_mode_heartbeats_off


def test_without_an_api_url_a_commands_flow_runs_send_no_heartbeats_and_the_setting_comes_back():
    with temporary_settings(updates={PREFECT_API_URL: None, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 180}):
        with local_mode_heartbeats_off():
            assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 180


def test_against_a_server_the_heartbeats_stay_as_configured():
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api", PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 180}):
        with local_mode_heartbeats_off():
            assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 180
