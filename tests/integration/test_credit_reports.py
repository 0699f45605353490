"""Credit reports in the store and their export: rows written with their events, checked by verify,
rebuilt from the events, exported byte for byte, the same bytes twice, aged out by date, bad months refused."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from flows import runtime
from flows.bootstrap import bootstrap
from flows.cli import app as cli_app
from flows.credit_report import CreditReportRequest
from flows.handlers.credit import ReportFormat, credit_report, render
from models.audit import rebuild_case, verify
from models.tables import credit_reports
from states.parse import InputError
from tests.integration.builders import POLICY, advance, case_id, opened, pay

TODAY = date(2024, 4, 5)
THREE_MONTHS = dict(principal=Decimal("6000.00"), term_months=3, repayment_method="equal_principal")
DEFAULTED, CURED = case_id(1), case_id(2)


def due_on(store, case_ref: str, day: date) -> str:
    return str(store.load_one(case_ref).view(day, POLICY).projection.total_due)


@pytest.fixture
def reported(store):
    """Two 6,000.00 loans in three installments from 15 February 2024, closed through 1 April:
    MF-000001 never pays; MF-000002 pays its arrears on 10 March and March's installment on time."""
    store.add_cases([opened(1, **THREE_MONTHS), opened(2, **THREE_MONTHS)])
    ids = [DEFAULTED, CURED]
    advance(store, ids, date(2024, 3, 9))
    pay(store, CURED, due_on(store, CURED, date(2024, 3, 10)), date(2024, 3, 10), "BANK-1")
    advance(store, ids, date(2024, 3, 14))
    pay(store, CURED, due_on(store, CURED, date(2024, 3, 15)), date(2024, 3, 15), "BANK-2")
    advance(store, ids, date(2024, 4, 1))
    store.begin_business_day(date(2024, 4, 1))
    store.finish_business_day(date(2024, 4, 1), advanced=2, stuck=0)
    return bootstrap(engine=store.engine, policy=POLICY, clock=lambda: TODAY)


def stored_rows(store) -> list[dict]:
    with store.engine.connect() as conn:
        query = select(credit_reports).order_by(credit_reports.c.month, credit_reports.c.case_id)
        return [dict(r) for r in conn.execute(query).mappings()]


def test_each_month_end_record_is_a_row_beside_its_event(store, reported):
    rows = stored_rows(store)
    assert [(r["month"], r["account"], r["status"], r["dpd"]) for r in rows] == [
        ("2024-02", "MF-000001", "overdue", 14),
        ("2024-02", "MF-000002", "overdue", 14),
        ("2024-03", "MF-000001", "overdue", 45),
        ("2024-03", "MF-000002", "current", 0),
    ]
    for row in rows:
        (event,) = [e for e in store.events(row["case_id"]) if e.seq == row["seq"]]
        assert event.type == "MonthEndReported" and event.record.month == row["month"]
    assert [r["default_ended_on"] for r in rows if r["account"] == "MF-000002"] == [None, date(2024, 3, 10)]
    assert verify(store.engine).ok


def test_verify_catches_an_edited_or_missing_credit_report_and_rebuild_restores_it(store, reported):
    with store.engine.begin() as conn:
        conn.execute(update(credit_reports).where(credit_reports.c.month == "2024-03", credit_reports.c.case_id == DEFAULTED).values(dpd=5))
        conn.execute(delete(credit_reports).where(credit_reports.c.month == "2024-02", credit_reports.c.case_id == CURED))
    report = verify(store.engine)
    problems = [str(f) for f in report.findings]
    assert report.failing_cases == [DEFAULTED, CURED], problems
    assert any("credit report 2024-03 dpd: stored 5, event gives 45" in p for p in problems)
    assert any("credit report 2024-02: no row for its MonthEndReported event" in p for p in problems)
    rebuild_case(store, DEFAULTED, on=date(2026, 12, 1), actor="op-audit", reason="credit report rows edited")
    rebuild_case(store, CURED, on=date(2026, 12, 1), actor="op-audit", reason="credit report row deleted")
    assert verify(store.engine).ok
    assert len(stored_rows(store)) == 4


CSV_MARCH = (
    "# collectflow credit report v1; month 2024-03; as of 2024-04-05; 2 records, 0 aged out; "
    "columns: account, month, dpd, bucket, overdue_principal, overdue_total, classification, status; "
    "money in yuan as decimal strings with two places\n"
    "account,month,dpd,bucket,overdue_principal,overdue_total,classification,status\n"
    # 2,000 + 93.00 and 2,000 + 58.00 of interest, 67.50 + 24.00 of penalty (2,000 x 27 % / 360 x 45 and x 16)
    "MF-000001,2024-03,45,M2,4000.00,4242.50,special_mention,overdue\n"
    "MF-000002,2024-03,0,M0,0.00,0.00,normal,current\n"
)
JSONL_MARCH = (
    '{"format":"collectflow-credit-report","version":1,"month":"2024-03","as_of":"2024-04-05","records":2,"aged_out":0,'
    '"columns":["account","month","dpd","bucket","overdue_principal","overdue_total","classification","status"],'
    '"money":"money in yuan as decimal strings with two places"}\n'
    '{"account":"MF-000001","month":"2024-03","dpd":45,"bucket":"M2","overdue_principal":"4000.00",'
    '"overdue_total":"4242.50","classification":"special_mention","status":"overdue"}\n'
    '{"account":"MF-000002","month":"2024-03","dpd":0,"bucket":"M0","overdue_principal":"0.00",'
    '"overdue_total":"0.00","classification":"normal","status":"current"}\n'
)


def test_the_export_is_pinned_byte_for_byte_in_both_formats(reported):
    report = credit_report(reported, "2024-03")
    assert render(report, ReportFormat.CSV) == CSV_MARCH.encode()
    assert render(report, ReportFormat.JSONL) == JSONL_MARCH.encode()


def test_the_same_month_twice_gives_the_same_bytes_through_the_cli(reported, tmp_path):
    runner = CliRunner()
    with runtime.use(reported):
        first = runner.invoke(cli_app, ["credit-report", "--month", "2024-03", "--out", str(tmp_path / "a.csv")])
        second = runner.invoke(cli_app, ["credit-report", "--month", "2024-03", "--out", str(tmp_path / "b.csv")])
        printed = runner.invoke(cli_app, ["credit-report", "--month", "2024-03", "--format", "jsonl"])
    assert first.exit_code == second.exit_code == printed.exit_code == 0, first.output
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes() == CSV_MARCH.encode()
    assert "2024-03: 2 records (0 aged out) written to" in first.stderr
    assert printed.stdout_bytes == JSONL_MARCH.encode()


def test_records_age_out_five_years_after_their_default_ended(store, reported):
    later = bootstrap(engine=store.engine, policy=POLICY, clock=lambda: date(2030, 1, 1))
    kept = credit_report(later, "2024-03", date(2029, 3, 10))  # MF-000002 was cured on 10 March 2024
    assert [r.account for r in kept.records] == ["MF-000001", "MF-000002"] and kept.aged_out == 0
    aged = credit_report(later, "2024-02", date(2029, 3, 11))  # February's record belongs to the same default
    assert [r.account for r in aged.records] == ["MF-000001"] and aged.aged_out == 1
    assert b"1 records, 1 aged out" in render(aged, ReportFormat.CSV)
    assert len(stored_rows(store)) == 4  # aged out of the export, not deleted


@pytest.mark.parametrize(
    "month, message",
    [
        ("2024-3", "--month: '2024-3' is not a month; use YYYY-MM, e.g. 2026-03"),
        ("2024-13", "--month: '2024-13' is not a month"),
        ("2024-05", "--month: 2024-05 is in the future (today is 2024-04-05 in the lender's time zone)"),
        ("2024-04", "--month: 2024-04 is not over yet: its records are made on its last day, 2024-04-30"),
    ],
)
def test_a_bad_month_is_one_clear_line(reported, month, message):
    with runtime.use(reported):
        result = CliRunner().invoke(cli_app, ["credit-report", "--month", month])
    (line,) = result.stderr.splitlines()
    assert result.exit_code == 2 and line.startswith(f"error: {message}") and result.stdout == ""


def test_a_month_not_closed_yet_is_refused(store, reported):
    at_may_end = bootstrap(engine=store.engine, policy=POLICY, clock=lambda: date(2024, 6, 3))
    with pytest.raises(InputError, match=r"month: 2024-05 is not closed yet: its last day 2024-05-31 has not been closed \(last closed business date: 2024-04-01\)"):
        credit_report(at_may_end, "2024-05")


def test_the_form_refuses_what_the_cli_refuses():
    with pytest.raises(ValueError, match="month: '2024-13' is not a month"):
        CreditReportRequest(month="2024-13")
    assert CreditReportRequest(month=" 2024-03 ").month == "2024-03"
    assert CreditReportRequest(month="2024-03").format is ReportFormat.CSV
