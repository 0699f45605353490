"""Shared builders for the aggregate tests: a loan, an opened case, and a case that remembers
its state at every version (for replay and snapshot checks)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Iterable

from states.caps import DEFAULT_LPR_TABLE, CapRegime
from states.case import CollectionCase
from states.commands import MakePromise, PauseCase, RecordContact, RecordPayment, ResumeCase, WriteOff
from states.events import ChargesAccrued, Event, StageChanged, canonical_json, compose_canonical_json, event_from_record
from states.loan import LoanTerms
from states.money import DayCount
from states.payload_codecs import _EXACT_EXP, _scaled
from states.policy import CollectionPolicy
from states.schedule import RepaymentMethod, ScheduleInterest

D = Decimal
POLICY = CollectionPolicy()
DAY = timedelta(days=1)

# The default loan: one installment, interest first, so the whole 10,000.00 falls due at once.
# Its plan is on actual days: the accrual, cap and payment tests pin day-count figures (what
# they are about is the same under the monthly plan, which tests/unit/test_plan_accrual.py holds).
DISBURSED = date(2024, 2, 1)
DUE = date(2024, 3, 1)  # DUE + 30 = 2024-03-31, a month-end, so a review posts on it


def loan(
    principal: str = "10000.00",
    rate: str = "0.18",
    term: int = 1,
    method: RepaymentMethod = RepaymentMethod.INTEREST_FIRST,
    disbursed_on: date = DISBURSED,
    first_due_on: date = DUE,
    *,
    day_count: DayCount = DayCount.ACT_360,
    compound_interest: bool = False,
    late_fee: str = "0",
    late_fee_rate: str = "0",
    cap_regime: CapRegime = CapRegime.LICENSED,
    contract_date: date | None = None,
    contract_no: str = "HT-0001",
    schedule_interest: ScheduleInterest = ScheduleInterest.ACTUAL_DAYS,
) -> LoanTerms:
    return LoanTerms(
        contract_no=contract_no,
        borrower_id="BR-0001",
        principal=D(principal),
        annual_rate=D(rate),
        term_months=term,
        repayment_method=method,
        disbursed_on=disbursed_on,
        first_due_on=first_due_on,
        day_count=day_count,
        compound_interest=compound_interest,
        late_fee=D(late_fee),
        late_fee_rate=D(late_fee_rate),
        cap_regime=cap_regime,
        contract_date=contract_date,
        schedule_interest=schedule_interest,
    )


class TracedCase(CollectionCase):
    """A CollectionCase that keeps every event it emits and its own state after each one."""

    def __init__(self, case_id: str):
        super().__init__(case_id)
        self.log: list[Event] = []
        self.states: list[tuple[int, object, dict]] = []  # (version, projection, snapshot)

    keep_states = True

    def _record(self, event: Event) -> Event:
        result = super()._record(event)
        self.log.append(event)
        if self.keep_states:
            self.states.append((self.version, self.projection(), self.snapshot()))
        return result


class LoggedCase(TracedCase):
    """A TracedCase that keeps only its events (cheaper, for checks over the history)."""

    keep_states = False


def open_case(case_id: str = "case-1", terms: LoanTerms | None = None, **loan_kw) -> TracedCase:
    case, _events = TracedCase.open(case_id, terms or loan(**loan_kw), DEFAULT_LPR_TABLE)
    return case


def plain_case(case_id: str = "case-1", terms: LoanTerms | None = None, **loan_kw) -> CollectionCase:
    case, _events = CollectionCase.open(case_id, terms or loan(**loan_kw), DEFAULT_LPR_TABLE)
    return case


# Commands as an operator gives them, for the case at hand (the operator defaults to "op-1").


def payment_cmd(case, amount, received_on, payment_id, *, operator="op-1", channel="bank_transfer") -> RecordPayment:
    return RecordPayment(
        case=case.case_id, operator=operator, amount=amount, received_on=received_on, payment_id=payment_id, channel=channel
    )


def promise_cmd(case, amount, promised_on, made_on, *, operator="op-1") -> MakePromise:
    return MakePromise(case=case.case_id, operator=operator, amount=amount, promised_on=promised_on, made_on=made_on)


def contact_cmd(
    case, channel, party, outcome, contacted_at, *, operator="op-1", collectors=1, note="", by="lender",
    disclosed_debt=False, asked_to_pay=False,
) -> RecordContact:
    return RecordContact(
        case=case.case_id, operator=operator, channel=channel, party=party, outcome=outcome,
        contacted_at=contacted_at, collectors=collectors, note=note, by=by,
        disclosed_debt=disclosed_debt, asked_to_pay=asked_to_pay,
    )


def pause_cmd(case, reason, until, made_on, *, operator="op-1") -> PauseCase:
    return PauseCase(case=case.case_id, operator=operator, reason=reason, until=until, made_on=made_on)


def resume_cmd(case, made_on, *, operator="op-1") -> ResumeCase:
    return ResumeCase(case=case.case_id, operator=operator, made_on=made_on)


def write_off_cmd(case, reason, made_on, *, operator="op-1") -> WriteOff:
    return WriteOff(case=case.case_id, operator=operator, reason=reason, made_on=made_on)


def stored(events: Iterable[Event]) -> list[Event]:
    """The events as the store gives them back: through their record form and canonical JSON."""
    return [event_from_record(**json.loads(e.canonical_json())) for e in events]


def charges_v3_record(event: ChargesAccrued) -> dict:
    """The record ChargesAccrued v3 (the release before v4) stored for ``event``: the same payload
    with ``through`` and every segment's ``exact`` written out, and no day-count basis."""
    record = json.loads(event.canonical_json())
    record["schema_version"] = 3
    payload = record["payload"]
    payload.pop("b", None)
    payload["t"] = event.through.isoformat()
    rows = []
    for s, row in zip(event.segments, payload["s"], strict=True):
        rule = row[4] if len(row) in (5, 7) else row[5]
        dates = row[-2:] if len(row) in (7, 8) else []
        rows.append([*row[:4], _scaled(s.exact, _EXACT_EXP), rule, *dates])
    payload["s"] = rows
    return record


def as_v3_json(event: Event) -> str:
    """The canonical JSON of ``event`` with a ``ChargesAccrued`` in its v3 form (what the pinned digests
    fold: v4 leaves out only what the rest of the event gives), once its v4 form is seen to read back."""
    if not isinstance(event, ChargesAccrued):
        return event.canonical_json()
    assert event_from_record(**json.loads(event.canonical_json())) == event
    record = charges_v3_record(event)
    return compose_canonical_json(**{k: v for k, v in record.items() if k != "payload"}, payload_json=canonical_json(record["payload"]))


def of_type(events: Iterable[Event], kind: type[Event]) -> list:
    return [e for e in events if isinstance(e, kind)]


def stage_path(events: Iterable[Event]) -> list[tuple[date, str, int]]:
    return [(e.business_date, e.to_stage, e.dpd) for e in events if isinstance(e, StageChanged)]


def posted(events: Iterable[Event], component: str, field: str = "enforceable") -> Decimal:
    """Sum of one component's postings over the ChargesAccrued events.

    A release (a charge held above the cap, let through later) counts as enforceable
    and no longer unenforceable: the sums are what is charged and held back now."""
    total = D("0.00")
    for e in events:
        if isinstance(e, ChargesAccrued):
            total += sum((getattr(p, field) for p in e.postings if p.component == component), D("0.00"))
            if field in ("enforceable", "unenforceable"):
                released = sum((lot.amount for lot in e.released if lot.component == component), D("0.00"))
                total += released if field == "enforceable" else -released
    return total
