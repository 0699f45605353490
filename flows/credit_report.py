"""The ``credit-report`` deployment: export a closed month's credit-report records from a form.

    credit_report(request)
      export-credit-report task   flows.handlers.credit: the month's records, aged as of
                                  the date, written to the file (the same file again on a
                                  retry: the export is deterministic)
      artifact                    records by status and bucket, with their overdue amounts

The form is checked as the CLI checks its options (the same parser for the
month), so a bad month is refused before the run starts.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field, field_validator

from flows import runtime
from flows.daily import _transient_only
from flows.handlers.credit import CreditReport, ReportFormat, credit_report as month_report, render
from states.credit import money_text
from states.money import ZERO
from states.parse import parse_month


class CreditReportRequest(BaseModel):
    month: str = Field(min_length=1, description="The month to export, YYYY-MM; its last day must have been closed")
    format: ReportFormat = Field(ReportFormat.CSV, description="csv (a # line, a header row, a row per record) or jsonl (a metadata object, an object per record)")
    out: str | None = Field(None, description="Where the worker writes the file (default: credit-report-YYYY-MM.csv in the data directory)")
    as_of: date | None = Field(None, description="Age records out as of this date (default: today, Asia/Shanghai)")

    @field_validator("month")
    @classmethod
    def _a_month(cls, value: str) -> str:
        parse_month(value, "month")  # an InputError (a ValueError): pydantic names the field
        return value.strip()


def summary_rows(report: CreditReport) -> list[dict[str, str]]:
    """The artifact's table: records by status and bucket, with their overdue amounts."""
    count: Counter = Counter()
    principal: dict[tuple[str, str], Decimal] = {}
    total: dict[tuple[str, str], Decimal] = {}
    for r in report.records:
        key = (r.status, r.bucket)
        count[key] += 1
        principal[key] = principal.get(key, ZERO) + r.overdue_principal
        total[key] = total.get(key, ZERO) + r.overdue_total
    return [
        {
            "status": status,
            "bucket": bucket,
            "records": str(count[(status, bucket)]),
            "overdue principal (yuan)": money_text(principal[(status, bucket)]),
            "overdue total (yuan)": money_text(total[(status, bucket)]),
        }
        for status, bucket in sorted(count)
    ]


@task(name="export-credit-report", retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=_transient_only)
def export_credit_report(request: CreditReportRequest) -> tuple[CreditReport, str]:
    app = runtime.app()
    report = month_report(app, request.month, request.as_of)
    path = Path(request.out) if request.out else app.settings.ensure_data_dir() / f"credit-report-{report.month}.{request.format.value}"
    path.write_bytes(render(report, request.format))
    return report, str(path)


@flow(name="credit-report")
def credit_report(request: CreditReportRequest) -> dict:
    """Export a closed month's credit-report records (by account) to a CSV or JSON Lines file."""
    report, path = export_credit_report(request)
    create_table_artifact(
        key="credit-report",
        table=summary_rows(report) or [{"status": "-", "bucket": "-", "records": "0"}],
        description=f"Credit report {report.month} as of {report.as_of}: {len(report.records)} records, "
        f"{report.aged_out} aged out; written to {path}",
    )
    get_run_logger().info("credit report %s: %d records (%d aged out) written to %s", report.month, len(report.records), report.aged_out, path)
    return {"month": report.month, "as_of": report.as_of.isoformat(), "records": len(report.records), "aged_out": report.aged_out, "file": path}
