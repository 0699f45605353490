"""A loan book imported with what the core lending system knows beside it: the repayment plans
(``--schedules``), which win over a computed plan, and the payment history (``--payments``), booked
on its dates in the catch-up, so a seasoned loan equals one followed day by day with the same payments."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from flows.bootstrap import bootstrap
from flows.handlers.cases import advance_batch, record_payment
from flows.handlers.loans import LoanBookError
from models.audit import verify
from models.db import make_engine, upgrade
from models.store import CaseStore
from states.commands import RecordPayment
from states.events import PaymentReceived
from tests.integration.test_loanbook import POLICY, comparable, run, write_csv
from tests.loan_rows import row

D = Decimal
OPERATOR = "op-1"
DISBURSED = date(2026, 1, 15)
FIRST_DUE = date(2026, 2, 15)
BUSINESS_DATE = date(2026, 7, 10)
PLAN_COLUMNS = ["contract_no", "installment", "due_on", "principal", "interest"]


def loans(count: int = 3) -> list[dict[str, str]]:
    return [row(n, disbursed_on=DISBURSED.isoformat(), first_due_on=FIRST_DUE.isoformat()) for n in range(1, count + 1)]


def plan_rows(contract_no: str, interest_extra: str = "0") -> list[dict[str, str]]:
    """A core-system plan for a 12,000.00 loan: 1,000.00 principal a month, interest stated by the lender."""
    return [
        {"contract_no": contract_no, "installment": str(k), "due_on": due(k).isoformat(), "principal": "1000.00",
         "interest": str(D("150.00") - 10 * k + D(interest_extra))}
        for k in range(1, 13)
    ]


def due(k: int) -> date:
    """Installment k's due date: the 15th, monthly from 2026-02-15."""
    month = FIRST_DUE.month - 1 + k - 1
    return date(FIRST_DUE.year + month // 12, month % 12 + 1, 15)


HISTORY = [  # HT-000001 pays each month on time; HT-000002 pays twice, then half an installment late; HT-000003 nothing
    *({"payment_id": f"BANK-1-{k}", "contract_no": "HT-000001", "amount": "1100.16", "paid_on": due(k).isoformat(),
       "channel": "bank_transfer"} for k in range(1, 6)),
    {"payment_id": "BANK-2-1", "contract_no": "HT-000002", "amount": "1100.16", "paid_on": due(1).isoformat(), "channel": "alipay"},
    {"payment_id": "BANK-2-2", "contract_no": "HT-000002", "amount": "1100.16", "paid_on": (due(2) - timedelta(days=3)).isoformat(),
     "channel": "bank_transfer"},
    {"payment_id": "BANK-2-3", "contract_no": "HT-000002", "amount": "550.00", "paid_on": date(2026, 5, 2).isoformat(),
     "channel": "wechat_pay"},
]


# --------------------------------------------------------------------------- plans


def test_an_imported_plan_replaces_the_computed_one_and_the_case_says_so(store, tmp_path, db_url, monkeypatch):
    plan = plan_rows("HT-000001")
    report = run(store, write_csv(tmp_path / "loans.csv", loans(2)), business_date=DISBURSED,
                 schedules=write_csv(tmp_path / "plans.csv", plan, PLAN_COLUMNS))
    assert (report.booked, report.rejected_anywhere, report.schedules["used"], report.schedules["contracts"]) == (2, 0, 12, 1)
    imported, computed = store.load_one("HT-000001"), store.load_one("HT-000002")
    assert [(i.number, i.due_on, i.principal, i.scheduled_interest) for i in imported.installments] == [
        (int(r["installment"]), date.fromisoformat(r["due_on"]), D(r["principal"]), D(r["interest"])) for r in plan
    ]
    assert imported.plan_basis() == "plan as imported from the core lending system"
    assert "monthly interest" in computed.plan_basis() and computed.installments[0].scheduled_interest == D("180.00")
    # the plan's interest is what falls due: 140.00 on 2026-02-15
    advance_batch(bootstrap(engine=store.engine, policy=POLICY), [imported.case_id], FIRST_DUE + timedelta(days=1))
    assert store.load_one("HT-000001").installments[0].interest_due == D("140.00")
    assert verify(store.engine).ok
    shown = _schedule_cli(db_url, monkeypatch, "HT-000001", "HT-000002")
    assert shown[0]["plan"] == "plan as imported from the core lending system"
    assert shown[0]["installments"][0] == {"installment": 1, "due_on": "2026-02-15", "principal": "1000.00", "interest": "140.00",
                                           "total": "1140.00", "paid": "0.00", "unpaid": "1140.00"}
    assert shown[1]["plan"] == ("computed by collectflow from the contract terms (equal_installment, monthly interest, ACT/360)")


def _schedule_cli(db_url, monkeypatch, *contracts):
    import json

    from typer.testing import CliRunner

    from flows import runtime
    from flows.cli import app as cli

    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()
    try:
        results = [CliRunner().invoke(cli, ["case", "schedule", c, "--json"]) for c in contracts]
    finally:
        runtime.forget()
    for result in results:
        assert result.exit_code == 0, result.output
    return [json.loads(r.stdout) for r in results]


def test_a_bad_plan_is_refused_row_by_row_and_its_loan_is_not_booked(store, tmp_path):
    good = plan_rows("HT-000001")
    bad = plan_rows("HT-000002")
    bad[3]["installment"] = "3"  # installment 3 twice, 4 missing
    bad[6]["due_on"] = "2026-01-10"  # before disbursement and before installment 6's date
    bad[11]["principal"] = "999.99"  # the principal sums to 11,999.99
    broken = [*good, *bad, {**good[0], "contract_no": "HT-000003", "principal": "12k"},
              {**good[0], "contract_no": "HT-000099"}]
    report = run(store, write_csv(tmp_path / "loans.csv", loans(3)), business_date=DISBURSED,
                 schedules=write_csv(tmp_path / "plans.csv", broken, PLAN_COLUMNS))
    assert report.booked == 1 and report.rejected == 2  # HT-000002 and HT-000003 are not booked
    messages = "\n".join(report.rejections + report.schedules["rejections"])
    assert "row 17, column installment: '3' is given twice for contract HT-000002 (also row 16)" in messages
    assert "row 25, column installment: '4' are missing from contract HT-000002's plan" in messages
    assert "row 20, column due_on: '2026-01-10' is not after installment 6's 2026-07-15" in messages
    assert "row 26, column principal: '12k' " in messages
    assert "contract_no 'HT-000099' is not in the loan file" in messages
    assert "contract HT-000002: its rows in --schedules plans.csv are refused" in messages
    assert (tmp_path / "plans.rejects.csv").exists()
    assert store.load_one("HT-000001").plan_basis() == "plan as imported from the core lending system"
    assert store.booked_loans(["HT-000002", "HT-000003"]) == {}


def test_a_plan_whose_principal_does_not_sum_to_the_loan_is_refused(store, tmp_path):
    plan = plan_rows("HT-000001")
    plan[11]["principal"] = "999.99"
    report = run(store, write_csv(tmp_path / "loans.csv", loans(1)), business_date=DISBURSED,
                 schedules=write_csv(tmp_path / "plans.csv", plan, PLAN_COLUMNS))
    assert report.booked == 0
    assert any(
        "row 13, column principal: '999.99' makes contract HT-000001's principal sum to 11999.99, not the loan's 12000.00" in m
        for m in report.schedules["rejections"]
    ), report.schedules["rejections"]


# --------------------------------------------------------------------------- payment history


def _fresh_store(db_url: str, tmp_path, name: str) -> CaseStore:
    from tests.integration.test_loanbook import _fresh_database

    engine = make_engine(_fresh_database(db_url, tmp_path, name))
    upgrade(engine)
    return CaseStore(engine)


def test_a_seasoned_loan_imported_with_its_history_equals_one_followed_day_by_day(engine, tmp_path, db_url):
    loan_file = write_csv(tmp_path / "loans.csv", loans(3))
    history_file = write_csv(tmp_path / "history.csv", HISTORY)

    imported = _fresh_store(db_url, tmp_path, "imported")
    report = run(imported, loan_file, business_date=BUSINESS_DATE, payments=history_file, actor=OPERATOR)
    assert (report.booked, report.rejected_anywhere, report.payments["used"], report.payments["contracts"]) == (3, 0, 8, 2)

    followed = CaseStore(engine)
    run(followed, loan_file, business_date=DISBURSED, actor=OPERATOR)
    app = bootstrap(engine=followed.engine, policy=POLICY)
    ids = [followed.resolve_case_id(f"HT-{n:06d}") for n in (1, 2, 3)]
    day = DISBURSED
    while day < BUSINESS_DATE:
        day += timedelta(days=1)
        for p in (p for p in HISTORY if p["paid_on"] == day.isoformat()):  # the morning's receipts, then the close
            record_payment(RecordPayment(case=p["contract_no"], amount=p["amount"], received_on=day, payment_id=p["payment_id"],
                                         channel=p["channel"], operator=OPERATOR), app)
        advance_batch(app, ids, day)

    advance_batch(bootstrap(engine=imported.engine, policy=POLICY), ids, BUSINESS_DATE)  # the close of D changes nothing
    for contract_no in ("HT-000001", "HT-000002", "HT-000003"):
        assert comparable(imported, contract_no, BUSINESS_DATE) == comparable(followed, contract_no, BUSINESS_DATE), contract_no
    paid, late, silent = (imported.case_row(f"C-HT-{n:06d}").projection for n in (1, 2, 3))
    assert (paid.stage, paid.dpd(BUSINESS_DATE), paid.total_paid) == ("current", 0, D("5500.80"))
    assert late.stage != "current" and late.dpd(BUSINESS_DATE) == (BUSINESS_DATE - due(3)).days
    assert silent.dpd(BUSINESS_DATE) == (BUSINESS_DATE - due(1)).days
    assert len([e for e in imported.events("C-HT-000002") if isinstance(e, PaymentReceived)]) == 3
    assert verify(imported.engine).ok

    again = run(imported, loan_file, business_date=BUSINESS_DATE, payments=history_file, actor=OPERATOR)
    assert (again.booked, again.unchanged, again.rejected_anywhere, again.payments["unchanged"]) == (0, 3, 0, 8)
    imported.engine.dispose()


def test_a_refused_history_payment_keeps_its_loan_out_whole(store, tmp_path):
    history = [*HISTORY[:5], {**HISTORY[5], "amount": "-3"}, {**HISTORY[6], "paid_on": "2025-12-01"}]
    report = run(store, write_csv(tmp_path / "loans.csv", loans(2)), business_date=BUSINESS_DATE,
                 payments=write_csv(tmp_path / "history.csv", history), actor=OPERATOR)
    assert report.booked == 1 and report.rejected == 1
    assert any("row 7, column amount: '-3'" in m for m in report.payments["rejections"]), report.payments["rejections"]
    assert any("contract HT-000002: its rows in --payments history.csv are refused" in m for m in report.rejections)
    assert store.case_row("C-HT-000001").projection.total_paid == D("5500.80")


def test_a_history_dated_before_disbursement_refuses_its_loan_naming_the_dates(store, tmp_path):
    history = [{**HISTORY[0], "paid_on": "2026-01-10"}]
    report = run(store, write_csv(tmp_path / "loans.csv", loans(1)), business_date=BUSINESS_DATE,
                 payments=write_csv(tmp_path / "history.csv", history), actor=OPERATOR)
    assert report.booked == 0
    assert "its payment history is refused" in report.rejections[0] and "2026-01-10" in report.rejections[0]


def test_a_history_needs_an_operator(store, tmp_path):
    with pytest.raises(LoanBookError, match="--payments needs --operator"):
        run(store, write_csv(tmp_path / "loans.csv", loans(1)), payments=write_csv(tmp_path / "history.csv", HISTORY))


def test_a_booked_plan_is_never_changed_by_an_import(store, tmp_path):
    loan_file = write_csv(tmp_path / "loans.csv", loans(1))
    first = run(store, loan_file, business_date=DISBURSED, schedules=write_csv(tmp_path / "plans.csv", plan_rows("HT-000001"), PLAN_COLUMNS))
    assert first.booked == 1
    same = run(store, loan_file, business_date=DISBURSED, schedules=tmp_path / "plans.csv")
    assert (same.booked, same.unchanged, same.rejected_anywhere, same.schedules["unchanged"]) == (0, 1, 0, 12)
    other = run(store, loan_file, business_date=DISBURSED,
                schedules=write_csv(tmp_path / "plans2.csv", plan_rows("HT-000001", interest_extra="0.01"), PLAN_COLUMNS))
    assert other.booked == 0 and other.rejected == 1
    assert "row 2, column contract_no: 'HT-000001' is booked with another repayment plan than the schedule file's" in other.rejections[0]
    assert store.load_one("HT-000001").installments[0].scheduled_interest == D("140.00")
    assert verify(store.engine).ok
