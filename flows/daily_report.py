"""The ``daily-report`` flow: the portfolio report as Prefect artifacts, and its charts on request.

The daily close runs it at its end for the last date it closed; it also
runs on its own (a past business date, charts into a directory). The
figures are ``flows.handlers.reports.build_report``'s, computed once; the
flow only publishes them: a Markdown artifact with every table
(``portfolio-report``) and one table artifact per section
(``report-by-stage``, ``report-roll-rates`` ...).
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows import runtime
from flows.handlers.reports import build_report, report_date
from flows.report import report_markdown, report_sections


def publish_artifacts(data: dict) -> None:
    """The report as the run's artifacts: the whole of it in Markdown, each table as a table."""
    as_of = data["as_of"]
    create_markdown_artifact(key="portfolio-report", markdown=report_markdown(data), description=f"Portfolio report as of {as_of}")
    for section in report_sections(data):
        create_table_artifact(
            key=f"report-{section.key.replace('_', '-')}",
            table=section.records(),
            description=f"{section.title}. {section.note}".strip(),
        )


@flow(name="daily-report", log_prints=False)
def daily_report(business_date: date | None = None, out_dir: str | None = None) -> dict:
    """Report the portfolio as of ``business_date`` (default: the last date closed); with
    ``out_dir``, also write the charts, report.json and report.md there."""
    app = runtime.app()
    day = report_date(app.store, business_date, app.today(), field="business_date")
    data = build_report(app.store, day).as_dict()
    publish_artifacts(data)
    if out_dir:
        from flows.charts import save_report  # matplotlib is loaded only by a run that draws

        written = save_report(data, out_dir, field="out_dir")
        get_run_logger().info("report as of %s written to %s", day, written["json"].parent)
    return data
