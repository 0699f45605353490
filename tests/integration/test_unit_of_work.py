"""The unit of work and the command handlers, on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from flows.bootstrap import SchemaBehind, bootstrap
from flows.handlers.cases import advance_batch, handle
from models.db import make_engine
from models.errors import ConcurrencyError, DuplicatePayment, StoreError
from states.commands import MakePromise, RecordPayment
from states.parse import InputError
from tests.integration.builders import FIRST_DUE, POLICY, book, opened

OVERDUE = FIRST_DUE + timedelta(days=10)
TODAY = date(2026, 12, 1)


@pytest.fixture
def app(store):
    return bootstrap(engine=store.engine, policy=POLICY, clock=lambda: TODAY)


@pytest.fixture
def overdue_case(store, app) -> str:
    (case_id,) = book(store, 1)
    advance_batch(app, [case_id], OVERDUE)
    return case_id


def payment(case_id: str, amount: str = "100.00", payment_id: str = "BANK-1", on: date = OVERDUE) -> RecordPayment:
    return RecordPayment(case=case_id, operator="op-li", amount=amount, received_on=on, payment_id=payment_id)


def test_leaving_the_block_without_commit_writes_nothing(store, app, overdue_case):
    before = store.digest()
    with app.uow() as uow:
        case = uow.cases.get(overdue_case)
        case.record_payment(payment(overdue_case), POLICY)
    assert store.digest() == before


def test_a_handled_command_writes_its_events_with_the_operator_as_actor(store, app, overdue_case):
    events = handle(payment(overdue_case), app)

    assert "PaymentReceived" in [e.type for e in events]
    stored = store.events(overdue_case)[-len(events):]
    assert [e.seq for e in stored] == [e.seq for e in events]
    assert {e.actor for e in stored if e.type == "PaymentReceived"} == {"op-li"}
    assert store.case_row(overdue_case).projection.version == events[-1].seq


def test_a_writer_in_between_makes_the_commit_fail_and_write_nothing(store, app, overdue_case):
    with app.uow() as uow:
        case = uow.cases.get(overdue_case)
        case.record_payment(payment(overdue_case), POLICY)
        handle(payment(overdue_case, payment_id="BANK-2"), app)  # another operator, first
        after_other = store.digest()
        with pytest.raises(ConcurrencyError, match=overdue_case):
            uow.commit()
    assert store.digest() == after_other


def test_the_same_payment_again_records_nothing_and_an_id_with_other_content_is_refused(store, app, overdue_case):
    assert handle(payment(overdue_case), app)
    digest = store.digest()

    assert handle(payment(overdue_case, payment_id="  BANK-1 "), app) == []  # trimmed: the same bank transaction
    with pytest.raises(DuplicatePayment, match=r"already recorded on case .* for 100\.00 received .*this one is 120\.00"):
        handle(payment(overdue_case, amount="120.00"), app)
    assert store.digest() == digest


def test_nothing_is_dated_after_today_in_the_lenders_time_zone(store, app, overdue_case):
    digest = store.digest()
    with pytest.raises(InputError, match="received_on: 2026-12-02 is after today"):
        handle(payment(overdue_case, on=TODAY + timedelta(days=1)), app)
    with pytest.raises(InputError, match="made_on"):
        handle(MakePromise(case=overdue_case, operator="op-li", amount="50", promised_on="2099-12-31", made_on="2099-12-30"), app)
    assert store.digest() == digest


def test_a_reference_that_is_one_cases_id_and_anothers_contract_number_is_refused(store):
    store.add_cases([opened(1, contract_no="X000001"), opened(2, contract_no="CASE-000001")])

    with pytest.raises(StoreError, match="both the id of case CASE-000001 and the contract number of case CASE-000002"):
        store.resolve_case_id("CASE-000001")
    assert store.resolve_case_id("X000001") == "CASE-000001"
    assert store.resolve_case_id("CASE-000002") == "CASE-000002"


def test_a_business_day_counts_what_every_run_of_it_advanced(store):
    day = date(2026, 3, 1)
    store.begin_business_day(day)
    store.finish_business_day(day, advanced=1750, stuck=3)  # crashed, three stuck
    store.begin_business_day(day)
    store.finish_business_day(day, advanced=1250, stuck=0)  # the rerun
    store.begin_business_day(day)
    store.finish_business_day(day, advanced=0, stuck=0)  # a concurrent run found nothing to do

    record = store.business_day(day)
    assert (record.status, record.cases_advanced, record.stuck) == ("closed", 3000, 0)


def test_a_store_that_is_not_migrated_says_so_in_one_line(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    with pytest.raises(SchemaBehind, match="has no collectflow schema yet; run: collectflow db upgrade"):
        bootstrap(engine=engine)


def test_with_a_roster_only_its_operators_act_and_a_write_off_needs_a_supervisor(store, app, overdue_case):
    from states.commands import WriteOff
    from states.operators import AddOperator, DeactivateOperator, NotAllowed
    from states.vocabulary import OperatorRole

    assert handle(payment(overdue_case, payment_id="NO-ROSTER"), app)  # no roster: any well-formed id
    store.change_roster(AddOperator("sup-1", OperatorRole.SUPERVISOR))  # the first on a roster is a supervisor
    store.change_roster(AddOperator("op-li", OperatorRole.COLLECTOR, operator="sup-1"))
    digest = store.digest()

    with pytest.raises(NotAllowed, match="'op-zhao' is not on the operator roster"):
        handle(RecordPayment(case=overdue_case, operator="op-zhao", amount="1", received_on=OVERDUE, payment_id="B-9"), app)
    with pytest.raises(NotAllowed, match="'op-li' is a collector; write-off-case needs a supervisor"):
        handle(WriteOff(case=overdue_case, operator="op-li", reason="not worth it", made_on=OVERDUE), app)
    store.change_roster(DeactivateOperator("op-li", operator="sup-1"))
    with pytest.raises(NotAllowed, match="deactivated"):
        handle(payment(overdue_case, payment_id="B-10"), app)
    assert store.digest() == digest


def test_a_payment_above_what_is_owed_is_recorded_and_said_and_expect_total_guards_a_typo(store, app, overdue_case):
    from states.errors import DomainError
    from states.explain import payment_notes

    from models.audit import case_view

    due = case_view(store, overdue_case, OVERDUE, POLICY).projection.total_due  # what case show says
    digest = store.digest()
    with pytest.raises(DomainError, match=f"expect_total 999.00 but the case owes {due}"):
        handle(RecordPayment(case=overdue_case, operator="op-li", amount="1000", received_on=OVERDUE, payment_id="B-3", expect_total="999"), app)
    assert store.digest() == digest
    assert handle(RecordPayment(case=overdue_case, operator="op-li", amount="10", received_on=OVERDUE, payment_id="B-5", expect_total=due), app)

    events = handle(payment(overdue_case, amount="20000.00", payment_id="B-4"), app)
    (paid,) = [e for e in events if e.type == "PaymentReceived"]
    notes = payment_notes(paid, store.events(overdue_case)[0])
    assert paid.overpayment > 0
    assert "prepays installment(s) 2, 3" in notes[0] and "not yet due on" in notes[0]
    assert notes[-1] == f"{paid.overpayment} is above everything owed: kept on the case as an overpayment, to refund or apply"


def test_doctor_names_a_key_beside_the_database_and_an_unsealed_close(store, tmp_path):
    from flows.handlers.doctor import checks
    from models.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "keys", seals_dir=tmp_path / "seals", database_url=str(store.engine.url))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret.key").write_text("s" * 48)
    store.begin_business_day(OVERDUE)
    store.finish_business_day(OVERDUE, advanced=0, stuck=0)
    app = bootstrap(settings, engine=store.engine, policy=POLICY, clock=lambda: TODAY)

    found = checks(app)

    assert ("ok", "the database is at the schema this code needs") in found
    assert any(level == "fail" and "sits beside the database" in message for level, message in found)
    assert any(level == "warn" and "no seals" in message and str(OVERDUE) in message for level, message in found)


def test_paying_the_payoff_quote_on_its_date_settles_the_case(store, app, overdue_case):
    from flows.handlers.cases import payoff_quote

    on = OVERDUE + timedelta(days=3)
    digest = store.digest()
    quote = payoff_quote(app, overdue_case, on)
    assert store.digest() == digest  # a quote changes nothing
    parts = ("costs", "penalty_interest", "compound_interest", "late_fees", "contract_interest_due", "contract_interest_accrued", "principal")
    assert sum(Decimal(quote[p]) for p in parts) == Decimal(quote["total"])

    handle(payment(overdue_case, amount=quote["total"], payment_id="PAYOFF-Q", on=on), app)

    row = store.case_row(overdue_case).projection
    assert row.stage == "settled" and row.overpayment == 0
    with pytest.raises(InputError, match="before the case's last closed date"):
        payoff_quote(app, overdue_case, OVERDUE)
