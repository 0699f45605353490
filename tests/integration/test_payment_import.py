"""The payment file import on SQLite and PostgreSQL: rows checked, applied per case in paid_on
order a chunk a transaction, idempotent on payment_id, conflicts named, the domain's refusals
rejected with its reason, the payer's name never in the clear, the CLI's exit codes."""

from __future__ import annotations

import csv
import gzip
import json
import stat
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from flows.bootstrap import bootstrap
from flows.files import FileError
from flows.handlers.cases import advance_batch, handle
from flows.handlers.payments import PaymentImportError, import_payments
from models.audit import verify
from models.tables import cases, events, payments
from models.uow import PaymentLedger
from states.commands import RecordPayment
from states.events import PaymentReceived
from states.errors import UserError
from states.parse import InputError
from states.vocabulary import OperatorRole
from states.operators import AddOperator
from tests.integration.builders import POLICY, book

TODAY = date(2026, 12, 1)
CLOSED = date(2024, 3, 1)  # the cases are closed through 2024-02-29 (first dues 2024-02-15, unpaid)
ON = date(2024, 3, 31)  # the imports' business date
COLUMNS = ["payment_id", "contract_no", "amount", "paid_on", "channel", "currency", "payer_name"]
PAYER = "欧阳娜娜"


@pytest.fixture
def app(store):
    return bootstrap(engine=store.engine, policy=POLICY, clock=lambda: TODAY)


@pytest.fixture
def booked(store, app) -> list[str]:
    """Five overdue cases, MF-000001 .. MF-000005."""
    ids = book(store, 5)
    advance_batch(app, ids, CLOSED)
    return ids


def pay_row(n: int, payment_id: str, amount: str = "100.00", on: str = "2024-03-10", **more) -> dict[str, str]:
    return {"payment_id": payment_id, "contract_no": f"MF-{n:06d}", "amount": amount, "paid_on": on, "channel": "bank_transfer", **more}


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(app, path, **kwargs):
    kwargs.setdefault("business_date", ON)
    kwargs.setdefault("operator", "op-pay")
    return import_payments(app, path, **kwargs)


def received(store, case_id: str) -> list[PaymentReceived]:
    return [e for e in store.events(case_id) if isinstance(e, PaymentReceived)]


def database_text(store) -> str:
    parts: list[str] = []
    with store.engine.connect() as conn:
        for table in (cases, events, payments):
            for record in conn.execute(select(table)):
                parts.extend(str(value) for value in record)
    return "\n".join(parts)


# --------------------------------------------------------------------------- applying


def test_good_rows_are_applied_with_the_operator_and_summed(store, app, booked, tmp_path):
    path = write_csv(tmp_path / "pay.csv", [pay_row(n, f"TX-{n}", "250.50") for n in range(1, 6)])
    report = run(app, path)
    assert (report.rows, report.applied, report.unchanged, report.rejected) == (5, 5, 0, 0)
    assert report.amount_applied == Decimal("1252.50")
    assert report.rejects_file is None
    for case_id in booked:
        (payment,) = received(store, case_id)
        assert (payment.amount, payment.actor, payment.channel, payment.business_date) == (Decimal("250.50"), "op-pay", "bank_transfer", date(2024, 3, 10))
    assert verify(store.engine).ok


def test_the_same_file_again_applies_nothing_and_leaves_the_store_as_it_was(store, app, booked, tmp_path):
    path = write_csv(tmp_path / "pay.csv", [pay_row(n, f"TX-{n}") for n in range(1, 6)])
    first = run(app, path)
    digest = store.digest()
    second = run(app, path)
    assert (first.applied, second.applied, second.unchanged, second.rejected, second.events) == (5, 0, 5, 0, 0)
    assert store.digest() == digest
    # trimmed and respelled: the same payments
    respelled = write_csv(tmp_path / "again.csv", [pay_row(n, f"  TX-{n} ", "100") for n in range(1, 6)])
    assert run(app, respelled).unchanged == 5
    assert store.digest() == digest


def test_a_payment_id_recorded_before_with_other_content_is_rejected_naming_both(store, app, booked, tmp_path):
    handle(RecordPayment(case="MF-000001", amount="100.00", received_on="2024-03-05", payment_id="TX-1", operator="op-7"), app)
    path = write_csv(tmp_path / "pay.csv", [pay_row(2, "TX-1", "120.00", "2024-03-06"), pay_row(1, "TX-1", "100.00", "2024-03-05")])
    report = run(app, path)
    assert (report.applied, report.unchanged, report.rejected) == (0, 1, 1)
    (message,) = report.rejections
    assert message.startswith("row 2, column payment_id: 'TX-1' is already recorded on case CASE-000001 for 100.00 received 2024-03-05")
    assert "this row is 120.00 received 2024-03-06 on case CASE-000002" in message


def test_a_payment_id_earlier_in_the_file_with_other_content_is_rejected_naming_both(store, app, booked, tmp_path):
    path = write_csv(tmp_path / "pay.csv", [pay_row(1, "TX-1"), pay_row(1, "TX-1"), pay_row(1, "TX-1", "100.01")])
    report = run(app, path)
    assert (report.applied, report.unchanged, report.rejected) == (1, 1, 1)
    assert report.rejections == [
        "row 4, column payment_id: 'TX-1' is already in this file at row 2 on case CASE-000001 for 100.00 received 2024-03-10; "
        "this row is 100.01 received 2024-03-10 on case CASE-000001; accepted: a payment id is recorded once: "
        "the same id again only with the same case, amount and date"
    ]
    assert len(received(store, "CASE-000001")) == 1


def test_one_cases_payments_are_applied_in_paid_on_order_whatever_the_file_order(store, app, booked, tmp_path):
    dates = ["2024-03-20", "2024-03-02", "2024-03-11", "2024-03-02", "2024-03-15"]
    rows = [pay_row(1, f"TX-{i}", f"{10 + i}.00", on) for i, on in enumerate(dates)]
    rows.insert(2, pay_row(2, "OTHER-1"))
    report = run(app, write_csv(tmp_path / "pay.csv", rows), chunk_rows=2)
    assert (report.applied, report.rejected) == (6, 0)  # in file order the 2nd would be before the 1st's date
    assert [(str(e.business_date), e.payment_id) for e in received(store, "CASE-000001")] == [
        ("2024-03-02", "TX-1"), ("2024-03-02", "TX-3"), ("2024-03-11", "TX-2"), ("2024-03-15", "TX-4"), ("2024-03-20", "TX-0"),
    ]
    assert report.chunks == 2  # a case's rows are never split between chunks
    assert verify(store.engine).ok


def test_a_bad_row_in_the_middle_does_not_stop_the_good_rows(store, app, booked, tmp_path):
    rows = [pay_row(n, f"TX-{n}") for n in range(1, 6)]
    rows[2]["amount"] = "100.555"
    path = write_csv(tmp_path / "pay.csv", rows)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("TX-9,MF-000001,1.00\n")  # too few values
    report = run(app, path)
    assert (report.rows, report.applied, report.rejected) == (6, 4, 2)
    assert report.rejections[0].startswith("row 4, column amount: '100.555' has more than two decimal places")
    assert report.rejections[1] == "row 7: has 3 values but the header has 7 columns"
    rejects = Path(report.rejects_file)
    assert rejects == tmp_path / "pay.rejects.csv" and stat.S_IMODE(rejects.stat().st_mode) == 0o600
    assert [r["reject_row"] for r in csv.DictReader(open(rejects, encoding="utf-8"))] == ["4", "7"]


def test_what_the_domain_refuses_is_rejected_with_its_reason(store, app, booked, tmp_path):
    rows = [
        pay_row(1, "PAYOFF", "20000.00", "2024-03-05"),  # settles CASE-000001
        pay_row(1, "LATE", "10.00", "2024-03-06"),  # ... which then takes no more payments
        pay_row(2, "EARLY", "10.00", "2024-02-20"),  # before the last closed date: value-dated, applied
        pay_row(9, "NOBODY", "10.00"),
        pay_row(3, "GOOD", "10.00"),
    ]
    report = run(app, write_csv(tmp_path / "pay.csv", rows))
    assert (report.applied, report.rejected, report.cases_settled) == (3, 2, 1)
    messages = "\n".join(report.rejections)
    assert "row 3: case CASE-000001: is settled; it takes no more payments" in messages
    assert "row 5, column contract_no: 'MF-000009' is refused: no case with id or contract number 'MF-000009'" in messages
    assert report.overpayment > 0 and report.amount_applied == Decimal("20020.00")
    (early,) = [e for e in store.events("CASE-000002") if isinstance(e, PaymentReceived)]
    assert (early.received_on, early.valued_on, early.business_date) == (date(2024, 2, 20), date(2024, 2, 20), date(2024, 2, 29))
    assert verify(store.engine).ok  # the projection equals the replay of the value-dated history


def test_a_payment_that_clears_the_arrears_cures_the_case(store, app, booked, tmp_path):
    report = run(app, write_csv(tmp_path / "pay.csv", [pay_row(1, "CURE", "3000.00", "2024-03-05")]))
    assert (report.applied, report.cases_cured, report.cases_settled) == (1, 1, 0)
    assert store.case_row("CASE-000001").projection.stage == "current"


def test_a_chunk_whose_commit_fails_is_applied_again_row_by_row(store, app, booked, tmp_path, monkeypatch):
    # another writer records TX-3 after the import looked the ids up: the chunk's commit fails on the key
    rows = [pay_row(n, f"TX-{n}") for n in range(1, 6)]
    handle(RecordPayment(case="MF-000004", amount="55.00", received_on="2024-03-10", payment_id="TX-3", operator="op-7"), app)
    monkeypatch.setattr(PaymentLedger, "get_many", lambda self, ids: {})
    report = run(app, write_csv(tmp_path / "pay.csv", rows))
    assert (report.applied, report.rejected, report.chunks_retried) == (4, 1, 1)
    assert "row 4: payment_id: 'TX-3' is already recorded on case CASE-000004 for 55.00" in report.rejections[0]
    assert [len(received(store, c)) for c in booked] == [1, 1, 0, 2, 1]
    assert verify(store.engine).ok


def test_json_lines_gzipped_are_read_as_csv_is(store, app, booked, tmp_path):
    path = tmp_path / "pay.jsonl.gz"
    lines = [json.dumps({**pay_row(n, f"TX-{n}"), "amount": 100}) for n in range(1, 4)] + ["[1, 2]"]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    report = run(app, path)
    assert (report.applied, report.rejected) == (3, 1)
    assert report.rejections == ["row 4: is not a JSON object {...}"]
    assert Path(report.rejects_file).name == "pay.rejects.jsonl"


# --------------------------------------------------------------------------- personal data


def test_the_payers_name_is_masked_in_every_message_and_nowhere_clear_in_the_database(store, app, booked, tmp_path):
    rows = [
        pay_row(1, "TX-1", payer_name=PAYER),
        pay_row(2, "TX-2", "0", payer_name=PAYER),
        pay_row(3, "TX-3", payer_name=PAYER + "\x01"),
        pay_row(4, "TX-4", on="2024-02-01", payer_name=PAYER),  # value-dated
    ]
    report = run(app, write_csv(tmp_path / "pay.csv", rows))
    assert (report.applied, report.rejected) == (2, 2)
    shown = json.dumps(report.as_dict(), ensure_ascii=False)
    assert "column payer_name: '欧****'" in shown
    assert PAYER not in shown and "阳娜" not in shown
    assert PAYER not in database_text(store)
    assert PAYER in Path(report.rejects_file).read_text(encoding="utf-8")  # as given, owner-only


# --------------------------------------------------------------------------- who and when


def test_the_operator_is_checked_on_the_roster_and_the_date_never_after_today(store, app, booked, tmp_path):
    path = write_csv(tmp_path / "pay.csv", [pay_row(1, "TX-1")])
    with pytest.raises(InputError, match="operator: 'system' is reserved"):
        run(app, path, operator="system")
    with pytest.raises(InputError, match="business_date: 2026-12-02 is after today"):
        run(app, path, business_date=date(2026, 12, 2))
    store.change_roster(AddOperator("sup-1", OperatorRole.SUPERVISOR))  # the first on a roster is a supervisor
    store.change_roster(AddOperator("op-audit", OperatorRole.AUDITOR, operator="sup-1"))
    with pytest.raises(UserError, match="'op-pay' is not on the operator roster"):
        run(app, path)
    with pytest.raises(UserError, match="'op-audit' is an auditor; record-payment needs a collector or supervisor"):
        run(app, path, operator="op-audit")
    assert received(store, "CASE-000001") == []


def test_a_file_that_cannot_be_read_is_refused_whole(store, app, booked, tmp_path):
    digest = store.digest()
    (tmp_path / "pay.xlsx").write_text("x")
    with pytest.raises(FileError, match="pay.xlsx: .xlsx is not a payment file extension"):
        run(app, tmp_path / "pay.xlsx")
    (tmp_path / "short.csv").write_text("payment_id,contract_no,amount\nTX-1,MF-000001,10\n")
    with pytest.raises(FileError, match="lacks the required column\\(s\\) paid_on, channel"):
        run(app, tmp_path / "short.csv")
    with pytest.raises(FileError, match="no such file"):
        run(app, tmp_path / "none.csv")
    path = write_csv(tmp_path / "pay.csv", [pay_row(1, "TX-1")])
    with pytest.raises(PaymentImportError, match="that is the file being imported"):
        run(app, path, rejects=path)
    assert store.digest() == digest


# --------------------------------------------------------------------------- the command line


def test_the_payments_import_command_exits_0_1_and_2(store, booked, db_url, tmp_path, monkeypatch):
    from flows import runtime
    from flows.cli import app as cli

    good = write_csv(tmp_path / "good.csv", [pay_row(n, f"TX-{n}", payer_name=PAYER) for n in range(1, 4)])
    bad = write_csv(tmp_path / "bad.csv", [pay_row(4, "TX-4"), pay_row(5, "TX-5", "-1", payer_name=PAYER + "1" * 200)])
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()
    runner = CliRunner()
    try:
        first = runner.invoke(cli, ["payments", "import", str(good), "--operator", "op-1", "--date", "2024-03-31"])
        again = runner.invoke(cli, ["payments", "import", str(good), "--operator", "op-1", "--date", "2024-03-31", "--json"])
        rejected = runner.invoke(cli, ["payments", "import", str(bad), "--operator", "op-1", "--date", "2024-03-31"])
        missing = runner.invoke(cli, ["payments", "import", str(tmp_path / "nope.csv"), "--operator", "op-1"])
        future = runner.invoke(cli, ["payments", "import", str(good), "--operator", "op-1", "--date", "2999-01-01"])
    finally:
        runtime.forget()
    assert first.exit_code == 0, first.output
    assert "applied" in first.output and "300.00" in first.output
    assert again.exit_code == 0 and json.loads(again.stdout)["unchanged"] == 3
    assert rejected.exit_code == 1 and "1 row(s) rejected" in rejected.output
    assert "row 3, column amount: '-1' must be a positive amount" in rejected.output
    assert missing.exit_code == 2 and "error: " in missing.output and "no such file" in missing.output
    assert future.exit_code == 2 and "is after today" in future.output
    assert PAYER not in first.output + again.output + rejected.output


# --------------------------------------------------------------------------- value-dated


def test_two_rows_dated_before_the_close_are_both_value_dated_in_one_unit_of_work(store, app, booked, tmp_path):
    """The cases are closed through 2024-02-29; yesterday's and the day before's receipts come in."""
    rows = [pay_row(1, "VD-1", "300.00", "2024-02-20"), pay_row(1, "VD-2", "200.00", "2024-02-25")]
    report = run(app, write_csv(tmp_path / "pay.csv", rows))
    assert (report.applied, report.rejected) == (2, 0)
    history = store.events("CASE-000001")
    reversals = [e for e in history if e.type == "ChargesReversed"]
    assert [r.value_date for r in reversals] == [date(2024, 2, 20), date(2024, 2, 25)]
    first, second = received(store, "CASE-000001")
    assert (first.valued_on, second.valued_on) == (date(2024, 2, 20), date(2024, 2, 25))
    assert all(e.business_date <= date(2024, 2, 29) for e in history)
    assert verify(store.engine).ok
    # the same file again: the payments table keeps the dates given, so nothing new
    again = run(app, write_csv(tmp_path / "again.csv", rows))
    assert (again.applied, again.unchanged) == (0, 2)


def test_collectflow_pay_value_dates_a_payment_before_the_last_closed_date(store, app, booked):
    from flows import runtime
    from flows.cli import app as cli

    with runtime.use(app):
        result = CliRunner().invoke(
            cli, ["pay", "MF-000002", "100.00", "--on", "2024-02-22", "--payment-id", "CLI-VD", "--operator", "op-1"]
        )
    assert result.exit_code == 0, result.output
    assert "value-dated: applied as of 2024-02-22" in result.output
    (payment,) = received(store, "CASE-000002")
    assert (payment.value_date, payment.business_date) == (date(2024, 2, 22), date(2024, 2, 29))


# --------------------------------------------------------------------------- the back-dating window


def test_collectflow_pay_beyond_the_window_is_refused_in_one_line_and_stores_nothing(store, app, booked):
    from flows import runtime
    from flows.cli import app as cli

    digest = store.digest()
    args = ["pay", "MF-000003", "100.00", "--on", "2024-01-20", "--payment-id", "CLI-OLD", "--operator", "op-1"]
    with runtime.use(app):
        refused = CliRunner().invoke(cli, args)
        assert store.digest() == digest
        given = CliRunner().invoke(cli, [*args, "--backdate-reason", "cash desk batch found in the safe"])
    assert refused.exit_code == 2, refused.output  # the CLI's exit code for every refused input
    lines = [line for line in refused.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in refused.output
    assert "2024-01-20 is 40 days before the case's last closed date 2024-02-29" in lines[0]
    assert "back-dating window of 31 days" in lines[0] and "--backdate-reason" in lines[0]
    assert given.exit_code == 0, given.output
    (payment,) = received(store, "CASE-000003")
    assert payment.backdate_reason == "cash desk batch found in the safe" and payment.value_date == date(2024, 1, 20)
    assert verify(store.engine).ok


def test_a_file_row_beyond_the_window_is_rejected_unless_it_gives_a_reason(store, app, booked, tmp_path):
    digest = store.digest()
    report = run(app, write_csv(tmp_path / "old.csv", [pay_row(4, "OLD-1", "50.00", "2024-01-20")]))
    assert (report.applied, report.rejected) == (0, 1)
    assert report.rejections[0].startswith("row 2: case CASE-000004: payment dated 2024-01-20 is 40 days before")
    assert "window of 31 days" in report.rejections[0]
    assert "the row's backdate_reason column" in report.rejections[0] and "--backdate-reason" not in report.rejections[0]
    assert store.digest() == digest  # nothing stored, not even the reviews the row would have caught up on

    columns = [*COLUMNS, "backdate_reason"]
    path = tmp_path / "old-with-reason.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, restval="")
        writer.writeheader()
        writer.writerow({**pay_row(4, "OLD-1", "50.00", "2024-01-20"), "backdate_reason": "agency remittance late"})
    report = run(app, path)
    assert (report.applied, report.rejected) == (1, 0)
    (payment,) = received(store, "CASE-000004")
    assert payment.backdate_reason == "agency remittance late"
