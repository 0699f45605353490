"""Cases for the store tests, built with the domain exactly as the flows build them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, text

from models.store import CaseStore
from states.caps import DEFAULT_LPR_TABLE
from states.commands import RecordPayment
from states.case import CollectionCase
from states.events import Event
from states.loan import LoanTerms
from states.policy import CollectionPolicy

POLICY = CollectionPolicy()
OPERATOR = "op-1"
DISBURSED = date(2024, 1, 15)
FIRST_DUE = date(2024, 2, 15)


def terms(n: int, **overrides) -> LoanTerms:
    values = dict(
        contract_no=f"MF-{n:06d}",
        borrower_id=f"B-{n:06d}",
        principal=Decimal("10000.00") + n,
        annual_rate=Decimal("0.18"),
        term_months=12,
        repayment_method="equal_installment",
        disbursed_on=DISBURSED,
        first_due_on=FIRST_DUE,
        # the store tests pin day-count figures; the monthly plan has tests of its own
        schedule_interest="actual_days",
    )
    values.update(overrides)
    return LoanTerms(**values)


def case_id(n: int) -> str:
    return f"CASE-{n:06d}"


def opened(n: int, **overrides) -> tuple[LoanTerms, CollectionCase, list[Event]]:
    loan = terms(n, **overrides)
    case, events = CollectionCase.open(case_id(n), loan, DEFAULT_LPR_TABLE)
    return loan, case, events


def book(store: CaseStore, count: int, start: int = 1) -> list[str]:
    store.add_cases([opened(n) for n in range(start, start + count)])
    return [case_id(n) for n in range(start, start + count)]


def advance(store: CaseStore, case_ids: list[str], business_date: date) -> int:
    """Load, advance and save the cases in one batch, as the daily close does; events written."""
    cases = store.load(case_ids)
    versions = {cid: case.version for cid, case in cases.items()}
    changes = [(case, case.advance(business_date, POLICY)) for case in cases.values()]
    return store.save(changes, expected_versions=versions)


def payment(case: CollectionCase, amount: str, on: date, payment_id: str) -> RecordPayment:
    """The command an operator gives to record this payment on ``case``."""
    return RecordPayment(case=case.case_id, operator=OPERATOR, amount=amount, received_on=on, payment_id=payment_id)


def pay(store: CaseStore, case_ref: str, amount: str, on: date, payment_id: str) -> list[Event]:
    case = store.load_one(case_ref)
    version = case.version
    events = case.record_payment(payment(case, amount, on, payment_id), POLICY)
    store.save([(case, events)], expected_versions={case.case_id: version})
    return events


# --------------------------------------------------------------------------
# an attacker with database access


def disable_event_triggers(conn: Connection) -> None:
    """Switch off every append-only trigger, as someone with direct database access (and the
    tables' owner role) could."""
    if conn.dialect.name == "sqlite":
        names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%refuse%'")).scalars().all()
        for name in names:
            conn.execute(text(f"DROP TRIGGER {name}"))
    else:
        for table in ("events", "payments", "loans", "borrowers", "business_days"):
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
