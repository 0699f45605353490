"""The credit-report deployment's flow: a closed month exported to a file, with a table artifact."""

from __future__ import annotations

import json
from datetime import date

import pytest
from prefect.artifacts import Artifact

from flows import runtime
from flows.credit_report import CreditReportRequest, credit_report
from flows.handlers.credit import ReportFormat, credit_report as month_report, render
from models.audit import verify
from tests.flows.conftest import book, close

MONTH_END = date(2026, 4, 30)


def test_the_flow_writes_the_months_file_and_a_summary_artifact(store, tmp_path):
    book(store, 40)
    assert close(MONTH_END).is_completed()
    out = tmp_path / "april.jsonl"

    result = credit_report(CreditReportRequest(month="2026-04", format="jsonl", out=str(out), as_of=MONTH_END))

    report = month_report(runtime.app(), "2026-04", MONTH_END)
    assert result == {"month": "2026-04", "as_of": "2026-04-30", "records": len(report.records), "aged_out": 0, "file": str(out)}
    assert report.records and out.read_bytes() == render(report, ReportFormat.JSONL)
    artifact = Artifact.get("credit-report")
    assert artifact is not None and "Credit report 2026-04 as of 2026-04-30" in artifact.description
    table = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert sum(int(row["records"]) for row in table) == len(report.records)
    assert verify(store.engine).ok


def test_a_month_not_closed_is_refused_before_anything_is_written(store, tmp_path):
    book(store, 5)
    assert close(date(2026, 4, 29)).is_completed()
    out = tmp_path / "april.csv"
    with pytest.raises(ValueError, match="month: 2026-04 is not closed yet"):
        credit_report(CreditReportRequest(month="2026-04", out=str(out)))
    assert not out.exists()
