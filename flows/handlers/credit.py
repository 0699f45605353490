"""The credit-report export: a closed month's records, aged as of a date, as a file (DOMAIN.md §8).

    credit_report(app, month, as_of)  the month's records: refuses a month that is not
                                      YYYY-MM, not over, or not closed (one line each);
                                      the aging rule is states.credit's, by date
    render(report, fmt)               the file's bytes, CSV or JSON Lines

The records are the ``credit_reports`` rows, each the projection of a
``MonthEndReported`` event (``verify`` checks them against the events). The
file is deterministic: records by account, money as decimal strings with two
places, no timestamp, so the same month and date give the same bytes.

- **CSV**: a first line ``# collectflow credit report v1; ...`` (the month,
  the as-of date, the counts, the columns and units), then a header row of
  the column names, then one row per record (UTF-8, ``\\n`` line ends).
- **JSON Lines**: a first metadata object (``"format": "collectflow-credit-report"``,
  the version, month, as-of date, counts, columns, units), then one object
  per record with the columns as keys, in column order.

No Prefect here: the CLI and the ``credit-report`` deployment both call these.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from flows.bootstrap import App
from flows.handlers.cases import check_not_in_future
from states import credit
from states.credit import EXPORT_COLUMNS, CreditRecord
from states.parse import InputError, parse_month

FORMAT_VERSION = 1
MONEY = "money in yuan as decimal strings with two places"


class ReportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True)
class CreditReport:
    """The records of one month exported as of a date, by account, and how many aged out."""

    month: str
    as_of: date
    records: tuple[CreditRecord, ...]
    aged_out: int


def credit_report(app: App, month: object, as_of: date | None = None, *, field: str = "month") -> CreditReport:
    """The month's records as exported on ``as_of`` (default: today in the lender's time zone)."""
    last_day = parse_month(month, field)
    name = credit.month_of(last_day)
    today = app.today()
    if last_day.replace(day=1) > today:
        raise InputError(f"{field}: {name} is in the future (today is {today} in the lender's time zone)")
    if last_day > today:
        raise InputError(f"{field}: {name} is not over yet: its records are made on its last day, {last_day}")
    as_of = as_of or today
    check_not_in_future({"as_of": as_of}, today)
    if as_of < last_day:
        raise InputError(f"as_of: {as_of} is before the end of {name} ({last_day}); records are aged as of a later date")
    closed = app.store.last_closed_business_date()
    if closed is None or closed < last_day:
        raise InputError(
            f"{field}: {name} is not closed yet: its last day {last_day} has not been closed "
            f"(last closed business date: {closed or 'none'}); run the daily close (collectflow advance) first"
        )
    records = app.store.credit_records(name)
    first = app.store.first_run_business_date()
    if not records and first is not None and last_day < first:  # never made: not an empty month
        raise InputError(
            f"{field}: {name} ended before the first closed business date {first}: no month-end records were made for it; "
            f"give {credit.month_of(first)} or later"
        )
    kept, aged = credit.exported(records, app.store.credit_default_endings(name), as_of)
    return CreditReport(name, as_of, tuple(kept), aged)


def render(report: CreditReport, fmt: ReportFormat) -> bytes:
    """The export file of ``report`` (see the module docstring for both formats)."""
    rows = [record.as_row() for record in report.records]
    if fmt is ReportFormat.JSONL:
        meta = {
            "format": "collectflow-credit-report",
            "version": FORMAT_VERSION,
            "month": report.month,
            "as_of": report.as_of.isoformat(),
            "records": len(rows),
            "aged_out": report.aged_out,
            "columns": list(EXPORT_COLUMNS),
            "money": MONEY,
        }
        lines = [meta, *rows]
        return "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines).encode()
    text = io.StringIO()
    text.write(
        f"# collectflow credit report v{FORMAT_VERSION}; month {report.month}; as of {report.as_of}; "
        f"{len(rows)} records, {report.aged_out} aged out; columns: {', '.join(EXPORT_COLUMNS)}; {MONEY}\n"
    )
    writer = csv.DictWriter(text, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()
