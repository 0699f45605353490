"""The daily-report flow: run by the close at its end, publishing the report as artifacts; charts on request."""

from __future__ import annotations

import json

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.sorting import ArtifactSort

from flows import daily_report as daily_report_module
from flows.daily_report import daily_report
from flows.handlers.reports import build_report
from flows.report import report_sections
from tests.flows.conftest import FIRST_DAY, book, close, days

pytestmark = pytest.mark.slow


def latest_artifact(key: str):
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC, limit=1
        )
        (run,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[artifact.flow_run_id])))
        flow = client.read_flow(run.flow_id)
    return artifact, run, flow.name


def test_the_close_ends_with_the_daily_report_publishing_its_tables_and_markdown(store):
    book(store, 60)
    for day in days(FIRST_DAY, 3):
        assert close(day).is_completed()
    last = FIRST_DAY.replace(day=3)

    data = build_report(store, last).as_dict()
    markdown, run, flow_name = latest_artifact("portfolio-report")
    assert flow_name == "daily-report" and run.parameters["business_date"] == last.isoformat()
    assert run.parent_task_run_id is not None  # a subflow of the close
    assert markdown.data.startswith(f"# Portfolio report as of {last}")
    for section in report_sections(data):
        table, _run, _name = latest_artifact(f"report-{section.key.replace('_', '-')}")
        rows = table.data if isinstance(table.data, list) else json.loads(table.data)
        assert rows == section.records(), section.key
    funnel = {f["stage"]: f["cases"] for f in data["funnel"]}
    assert funnel["booked"] == 60 and funnel["overdue"] > 0


def test_the_flow_writes_the_charts_into_out_dir(store, tmp_path):
    book(store, 40)
    assert close(FIRST_DAY).is_completed()

    data = daily_report(business_date=FIRST_DAY, out_dir=str(tmp_path / "report"))

    assert data == build_report(store, FIRST_DAY).as_dict()
    assert json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8")) == data
    for name in ("stage-funnel.png", "roll-rates.png", "recovery-by-agency.png", "dpd-distribution.png"):
        assert (tmp_path / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_report_that_fails_leaves_the_close_as_it_was(store, monkeypatch):
    book(store, 40)

    def broken(store, as_of):
        raise RuntimeError("report bug")

    monkeypatch.setattr(daily_report_module, "build_report", broken)
    state = close(FIRST_DAY)

    assert state.is_completed(), state.message
    assert state.result()["advanced"] > 0
    assert store.business_day(FIRST_DAY).status == "closed"
