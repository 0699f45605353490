"""The CollectionCase aggregate: one loan in collection, changed only by its events.

Commands (``advance``, ``record_payment``, ``make_promise``, ``pause`` ...)
decide what happened, emit events and apply them; ``replay`` folds stored
events through the same ``apply`` and must reach the same state.

Accrual rule: accrual through business date D *includes* day D. Days are
accrued over intervals (a, b]: the start day is excluded, the end day
included. An installment due on day d accrues contract interest through d
and, if unpaid, is overdue from d + 1, so as of D it carries DPD(D) = D - d
days of penalty interest. Balances only change at due dates and payments,
so accrual between two dates is closed-form: base x rate x days / basis per
constant stretch, summed exactly as principal-days, and posted in fen as
round(exact cumulative total) - posted so far (the residue is carried).
"""

from __future__ import annotations

import calendar
import copy
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Iterable, Sequence

from states.allocation import Allocation, AllocationLine, AllocationOrder, Component, Due, allocate
from states.caps import DEFAULT_CUT_ORDER, CapSplit, apply_cap, cap_limit
from states.court_fees import litigation_costs
from states.delinquency import Bucket, bucket_for, classification_for
from states.errors import DomainError
from states.events import (
    SYSTEM,
    AccrualSegment,
    AllocatedLine,
    BorrowerDetailsAmended,
    CaseOpened,
    CasePaused,
    CaseResumed,
    CaseReviewed,
    CaseWrittenOff,
    ChargePosting,
    ChargesAccrued,
    ContactRecorded,
    ContactRefused,
    Event,
    DetailChange,
    LawsuitFiled,
    PaymentReceived,
    PersonalDataRead,
    PlacedWithAgency,
    PromiseBroken,
    PromiseKept,
    PromiseMade,
    RecalledFromAgency,
    ScheduledInstallment,
    StageChanged,
    event_from_record,
)
from states.lifecycle import COLLECTION_STAGES, InvalidTransition, Stage, StageFacts, decide, edge_exists
from states.loan import LoanTerms
from states.caps import LprTable
from states.money import ZERO, DayCount, MoneyError, money, round_fen
from states.policy import CollectionPolicy

ONE_DAY = timedelta(days=1)
EXACT = Decimal("0.000000000001")  # how finely an explanation shows an unrounded amount

CONTRACT = Component.CONTRACT_INTEREST.value
PENALTY = Component.PENALTY_INTEREST.value
COMPOUND = Component.COMPOUND_INTEREST.value
LATE_FEE = Component.LATE_FEE.value
COSTS = Component.COSTS.value
CAP = "cap"  # not a charge: the principal-days the legal cap is measured on


@dataclass
class InstallmentState:
    number: int
    due_on: date
    principal: Decimal
    scheduled_interest: Decimal
    principal_paid: Decimal = ZERO
    interest_due: Decimal = ZERO  # enforceable contract interest posted at the due date
    interest_paid: Decimal = ZERO
    late_fee_due: Decimal = ZERO
    late_fee_paid: Decimal = ZERO

    @property
    def principal_unpaid(self) -> Decimal:
        return self.principal - self.principal_paid

    @property
    def interest_unpaid(self) -> Decimal:
        return self.interest_due - self.interest_paid

    @property
    def late_fee_unpaid(self) -> Decimal:
        return self.late_fee_due - self.late_fee_paid

    @property
    def unpaid(self) -> Decimal:
        return self.principal_unpaid + self.interest_unpaid + self.late_fee_unpaid


@dataclass
class Promise:
    amount: Decimal
    promised_on: date
    holds_escalation: bool
    paid_before: Decimal  # total paid when the promise was made


@dataclass(frozen=True)
class CaseProjection:
    """The case row: what the store keeps beside the events, and what replay must reproduce."""

    case_id: str
    contract_no: str
    stage: str
    dpd: int
    bucket: str
    classification: str
    principal_outstanding: Decimal
    overdue_principal: Decimal
    contract_interest_due: Decimal
    penalty_interest: Decimal
    compound_interest: Decimal
    late_fees: Decimal
    costs: Decimal
    total_due: Decimal
    unenforceable: Decimal
    total_paid: Decimal
    overpayment: Decimal
    accrued_through: date
    reviewed_through: date
    next_review_on: date | None
    promise_until: date | None
    paused_until: date | None
    agency_id: str | None
    version: int


@dataclass(frozen=True)
class CaseView:
    """A case valued as of a date: the projection plus contract interest accrued but not yet due."""

    as_of: date
    projection: CaseProjection
    contract_interest_accrued: Decimal

    def as_dict(self) -> dict[str, object]:
        p = self.projection
        return {
            "case_id": p.case_id,
            "contract_no": p.contract_no,
            "as_of": self.as_of.isoformat(),
            "stage": p.stage,
            "dpd": p.dpd,
            "bucket": p.bucket,
            "classification": p.classification,
            "principal_outstanding": str(p.principal_outstanding),
            "overdue_principal": str(p.overdue_principal),
            "contract_interest_due": str(p.contract_interest_due),
            "contract_interest_accrued": str(self.contract_interest_accrued),
            "penalty_interest": str(p.penalty_interest),
            "compound_interest": str(p.compound_interest),
            "late_fees": str(p.late_fees),
            "costs": str(p.costs),
            "unenforceable": str(p.unenforceable),
            "total_due": str(p.total_due),
            "total_paid": str(p.total_paid),
            "overpayment": str(p.overpayment),
            "next_review_on": p.next_review_on.isoformat() if p.next_review_on else None,
        }


@dataclass
class ContactDay:
    """Per-day contact counters across the lender and all its agencies (DOMAIN.md §6)."""

    day: date | None = None
    connected: int = 0
    unanswered: dict[str, int] = field(default_factory=dict)


CONTACT_CHANNELS = ("call", "sms", "visit", "letter")
CONTACT_PARTIES = ("borrower", "guarantor", "co_borrower", "other")
CONTACT_OUTCOMES = ("connected", "no_answer", "invalid_number", "refused_to_talk")
DEBT_PARTIES = ("guarantor", "co_borrower")
MAX_CONNECTED_CALLS_A_DAY = 3
MAX_UNANSWERED_A_DAY = 6
FAILED_ATTEMPTS_BEFORE_THIRD_PARTY = 3
QUIET_HOURS = (time(22, 0), time(8, 0))


class CollectionCase:
    """One case. Build it with ``open`` or ``replay``; change it only through its commands."""

    def __init__(self, case_id: str):
        self.case_id = case_id
        self.version = 0
        self.stage = Stage.CURRENT
        self.contract_no = ""
        self.borrower_id = ""
        self.terms: CaseOpened | None = None
        self.installments: list[InstallmentState] = []
        self.day_count = DayCount.ACT_360
        self.cap_rate = ZERO
        self.accrued_through = date.min
        self.reviewed_through = date.min
        # exact principal-days accumulated per component since opening
        self.principal_days: dict[str, Decimal] = {CONTRACT: ZERO, PENALTY: ZERO, COMPOUND: ZERO, CAP: ZERO}
        # computed (pre-cap) postings so far, for carrying the rounding residue
        self.computed: dict[str, Decimal] = {CONTRACT: ZERO, PENALTY: ZERO, COMPOUND: ZERO}
        self.charged = ZERO  # enforceable charges so far, all components (what the cap bounds)
        self.unenforceable: dict[str, Decimal] = {}
        self.penalty_due = ZERO
        self.compound_due = ZERO
        self.costs_due = ZERO
        self.total_paid = ZERO
        self.overpayment = ZERO
        self.promise: Promise | None = None
        self.broken_in_a_row = 0
        self.paused_until: date | None = None
        self.agency_id: str | None = None
        self.placement_until: date | None = None
        self.placements = 0
        self.next_review_on: date | None = None
        self.lawsuit_filed = False
        self.contact_day = ContactDay()
        self.failed_in_a_row = 0
        self.number_invalid = False
        self._pending: list[Event] = []
        self._opened_json: str | None = None

    # ------------------------------------------------------------------
    # construction

    @classmethod
    def open(
        cls,
        case_id: str,
        terms: LoanTerms,
        lpr: LprTable,
        *,
        actor: str = SYSTEM,
        business_date: date | None = None,
    ) -> tuple[CollectionCase, list[Event]]:
        """Open a case for a booked loan. The opening event is dated at disbursement."""
        case = cls(case_id)
        case._emit(
            CaseOpened,
            business_date or terms.disbursed_on,
            actor,
            contract_no=terms.contract_no,
            borrower_id=terms.borrower_id,
            principal=terms.principal,
            annual_rate=terms.annual_rate,
            day_count=terms.day_count.value,
            repayment_method=terms.repayment_method.value,
            penalty_uplift=terms.penalty_uplift,
            compound_interest=terms.compound_interest,
            late_fee=terms.late_fee,
            late_fee_rate=terms.late_fee_rate,
            cap_regime=terms.cap_regime.value,
            cap_rate=terms.cap_rate(lpr),
            contract_date=terms.contract_date,
            disbursed_on=terms.disbursed_on,
            schedule=tuple(
                ScheduledInstallment(i.number, i.due_on, i.principal, i.interest) for i in terms.schedule
            ),
        )
        return case, case._take()

    @classmethod
    def replay(cls, events: Iterable[Event], case_id: str | None = None) -> CollectionCase:
        case: CollectionCase | None = None
        for event in events:
            if case is None:
                case = cls(case_id or event.case_id)
            case.apply(event)
        if case is None:
            raise DomainError(f"case {case_id}: no events to replay")
        return case

    # ------------------------------------------------------------------
    # snapshots: the state in plain JSON, so a batch loads without replaying history

    SNAPSHOT_VERSION = 2  # 2: the opening event is kept as its canonical JSON text

    def snapshot(self) -> dict:
        """The whole state as plain JSON values (what ``from_snapshot`` reads back).

        A snapshot is a cache of ``replay(events)``: ``verify`` checks that
        both give the same projection, so a snapshot can never hide an edit.
        """
        return {
            "v": self.SNAPSHOT_VERSION,
            "case_id": self.case_id,
            "opened": self._opened_text(),
            "version": self.version,
            "stage": self.stage.value,
            "installments": [
                [str(i.principal_paid), str(i.interest_due), str(i.interest_paid), str(i.late_fee_due), str(i.late_fee_paid)]
                for i in self.installments
            ],
            "accrued_through": self.accrued_through.isoformat(),
            "reviewed_through": self.reviewed_through.isoformat(),
            "next_review_on": _iso(self.next_review_on),
            "principal_days": {k: str(v) for k, v in self.principal_days.items()},
            "computed": {k: str(v) for k, v in self.computed.items()},
            "charged": str(self.charged),
            "unenforceable": {k: str(v) for k, v in self.unenforceable.items()},
            "dues": [str(self.penalty_due), str(self.compound_due), str(self.costs_due)],
            "total_paid": str(self.total_paid),
            "overpayment": str(self.overpayment),
            "promise": None
            if self.promise is None
            else [str(self.promise.amount), self.promise.promised_on.isoformat(), self.promise.holds_escalation, str(self.promise.paid_before)],
            "broken_in_a_row": self.broken_in_a_row,
            "paused_until": _iso(self.paused_until),
            "agency": [self.agency_id, _iso(self.placement_until), self.placements],
            "lawsuit_filed": self.lawsuit_filed,
            "contact": [_iso(self.contact_day.day), self.contact_day.connected, self.contact_day.unanswered,
                        self.failed_in_a_row, self.number_invalid],
        }

    def _opened_text(self) -> str:
        """The opening event's canonical JSON, encoded once per loaded case (it never changes)."""
        if self._opened_json is None:
            self._opened_json = self._opened.canonical_json()
        return self._opened_json

    def _clone(self) -> CollectionCase:
        """An independent copy for what-if valuation (far cheaper than deepcopy)."""
        clone = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, (list, dict)):
                setattr(clone, name, copy.copy(value))
        clone.installments = [copy.copy(i) for i in self.installments]
        clone.promise = copy.copy(self.promise)
        clone.contact_day = ContactDay(self.contact_day.day, self.contact_day.connected, dict(self.contact_day.unanswered))
        clone._pending = []
        return clone

    @classmethod
    def from_snapshot(cls, data: dict) -> CollectionCase:
        if data.get("v") != cls.SNAPSHOT_VERSION:
            raise DomainError(f"snapshot version {data.get('v')!r} is not {cls.SNAPSHOT_VERSION}; rebuild it by replay")
        opened = _opened_event(data["opened"], data["case_id"])
        case = cls(opened.case_id)
        case.apply(opened)
        case._opened_json = data["opened"]
        case.version = data["version"]
        case.stage = Stage(data["stage"])
        for inst, row in zip(case.installments, data["installments"]):
            inst.principal_paid, inst.interest_due, inst.interest_paid, inst.late_fee_due, inst.late_fee_paid = map(Decimal, row)
        case.accrued_through = date.fromisoformat(data["accrued_through"])
        case.reviewed_through = date.fromisoformat(data["reviewed_through"])
        case.next_review_on = _date(data["next_review_on"])
        case.principal_days = {k: Decimal(v) for k, v in data["principal_days"].items()}
        case.computed = {k: Decimal(v) for k, v in data["computed"].items()}
        case.charged = Decimal(data["charged"])
        case.unenforceable = {k: Decimal(v) for k, v in data["unenforceable"].items()}
        case.penalty_due, case.compound_due, case.costs_due = map(Decimal, data["dues"])
        case.total_paid = Decimal(data["total_paid"])
        case.overpayment = Decimal(data["overpayment"])
        if data["promise"] is not None:
            amount, promised_on, holds, paid_before = data["promise"]
            case.promise = Promise(Decimal(amount), date.fromisoformat(promised_on), holds, Decimal(paid_before))
        case.broken_in_a_row = data["broken_in_a_row"]
        case.paused_until = _date(data["paused_until"])
        agency, until, case.placements = data["agency"]
        case.agency_id, case.placement_until = agency, _date(until)
        case.lawsuit_filed = data["lawsuit_filed"]
        day, connected, unanswered, case.failed_in_a_row, case.number_invalid = data["contact"]
        case.contact_day = ContactDay(_date(day), connected, dict(unanswered))
        return case

    # ------------------------------------------------------------------
    # derived figures

    @property
    def penalty_rate(self) -> Decimal:
        t = self._opened
        return t.annual_rate * (1 + t.penalty_uplift)

    @property
    def _opened(self) -> CaseOpened:
        if self.terms is None:
            raise DomainError(f"case {self.case_id}: not opened")
        return self.terms

    def principal_outstanding(self) -> Decimal:
        return sum((i.principal_unpaid for i in self.installments), ZERO)

    def overdue_principal(self, as_of: date) -> Decimal:
        """Principal past its due date on day ``as_of`` (due_on < as_of)."""
        return sum((i.principal_unpaid for i in self.installments if i.due_on < as_of), ZERO)

    def principal_not_yet_due(self, day: date) -> Decimal:
        """Principal still earning contract interest on ``day`` (due_on >= day)."""
        return sum((i.principal_unpaid for i in self.installments if i.due_on >= day), ZERO)

    def overdue_interest(self, as_of: date) -> Decimal:
        return sum((i.interest_unpaid for i in self.installments if i.due_on < as_of), ZERO)

    def oldest_unpaid_due(self, as_of: date) -> date | None:
        for inst in self.installments:
            if inst.due_on < as_of and inst.unpaid > 0:
                return inst.due_on
        return None

    def dpd(self, as_of: date) -> int:
        oldest = self.oldest_unpaid_due(as_of)
        return (as_of - oldest).days if oldest else 0

    def dues(self, as_of: date) -> list[Due]:
        """Everything payable on ``as_of`` (installments due on or before it, case-level dues)."""
        dues: list[Due] = []
        oldest = self.oldest_unpaid_due(as_of + ONE_DAY) or as_of
        for component, amount in ((COSTS, self.costs_due), (PENALTY, self.penalty_due), (COMPOUND, self.compound_due)):
            if amount > 0:
                dues.append(Due(Component(component), amount, oldest))
        for inst in self.installments:
            if inst.due_on > as_of:
                break
            for component, amount in (
                (LATE_FEE, inst.late_fee_unpaid),
                (CONTRACT, inst.interest_unpaid),
                (Component.PRINCIPAL.value, inst.principal_unpaid),
            ):
                if amount > 0:
                    dues.append(Due(Component(component), amount, inst.due_on, inst.number))
        return dues

    def total_due(self, as_of: date) -> Decimal:
        """The sum of ``dues(as_of)``, without building them."""
        installments = sum((i.unpaid for i in self.installments if i.due_on <= as_of), ZERO)
        return installments + self.costs_due + self.penalty_due + self.compound_due

    def overdue_total(self, as_of: date) -> Decimal:
        """Amounts past their due date on ``as_of`` (case-level dues always count)."""
        installments = sum((i.unpaid for i in self.installments if i.due_on < as_of), ZERO)
        return installments + self.penalty_due + self.compound_due + self.costs_due

    def total_owing(self) -> Decimal:
        return (
            sum((i.unpaid for i in self.installments), ZERO)
            + self.penalty_due
            + self.compound_due
            + self.costs_due
        )

    def accrued_contract_interest(self) -> Decimal:
        """Contract interest accrued through ``accrued_through`` but not yet posted as due."""
        exact = self._exact(CONTRACT, self._opened.annual_rate)
        return round_fen(exact) - self.computed[CONTRACT]

    def _exact(self, component: str, annual_rate: Decimal) -> Decimal:
        return annual_rate * self.principal_days[component] / self.day_count.basis

    def projection(self) -> CaseProjection:
        as_of = self.accrued_through
        dpd = self.dpd(as_of)
        principal = due_principal = interest = late_fees = due_installments = ZERO
        for i in self.installments:  # one pass: this runs for every case saved
            principal += i.principal_unpaid
            interest += i.interest_unpaid
            late_fees += i.late_fee_unpaid
            if i.due_on <= as_of:
                due_principal += i.principal_unpaid
                due_installments += i.unpaid
        return CaseProjection(
            case_id=self.case_id,
            contract_no=self.contract_no,
            stage=self.stage.value,
            dpd=dpd,
            bucket=bucket_for(dpd).value,
            classification=classification_for(dpd).value,
            principal_outstanding=principal,
            overdue_principal=due_principal,
            contract_interest_due=interest,
            penalty_interest=self.penalty_due,
            compound_interest=self.compound_due,
            late_fees=late_fees,
            costs=self.costs_due,
            total_due=due_installments + self.costs_due + self.penalty_due + self.compound_due,
            unenforceable=sum(self.unenforceable.values(), ZERO),
            total_paid=self.total_paid,
            overpayment=self.overpayment,
            accrued_through=self.accrued_through,
            reviewed_through=self.reviewed_through,
            next_review_on=self.next_review_on,
            promise_until=self.promise.promised_on if self.promise else None,
            paused_until=self.paused_until,
            agency_id=self.agency_id,
            version=self.version,
        )

    def view(self, as_of: date, policy: CollectionPolicy | None = None) -> CaseView:
        """Value the case as of ``as_of`` (>= the last accrual) without changing it.

        With the policy, the reviews due before ``as_of`` run on a copy first, so the figures
        are exactly those a payment dated ``as_of`` would meet (the cap splits each posting at
        its own date, so posting dates matter). Without it, charges accrue straight to ``as_of``.
        """
        if as_of < self.accrued_through:
            raise DomainError(
                f"case {self.case_id}: view as of {as_of} is before its last accrual "
                f"{self.accrued_through}; replay its events up to that date first"
            )
        probe = self._clone()
        if policy is not None:
            probe._catch_up(as_of - ONE_DAY, policy)
        if not probe.stage.is_closed:
            probe._accrue(as_of)  # cut at due dates on the way, as the daily close would
        accrued = probe.accrued_contract_interest()
        if accrued > 0:  # what a payoff would bring forward: the part under the cap
            accrued = probe._payoff_interest_split(accrued)[1].enforceable[CONTRACT]
        return CaseView(as_of, probe.projection(), accrued)

    def _compute_next_review(self, after: date, policy: CollectionPolicy) -> date | None:
        """The earliest date after ``after`` on which anything about this case can change.

        An installment falls due (seen the day after), a stage threshold is
        reached, a promise expires, a pause or placement ends, a month-end
        posting is owed. Nothing else can move a case, so nothing else wakes it.
        """
        if self.stage.is_closed:
            return None
        candidates: list[date] = []
        for inst in self.installments:
            if inst.due_on + ONE_DAY > after:
                candidates.append(inst.due_on + ONE_DAY)
                break
        oldest = self.oldest_unpaid_due(after + ONE_DAY)
        if oldest is not None:
            for threshold in policy.stage_thresholds():
                if oldest + timedelta(days=threshold) > after:
                    candidates.append(oldest + timedelta(days=threshold))
                    break
        if self.promise is not None:
            candidates.append(self.promise.promised_on + ONE_DAY)
        if self.paused_until is not None:
            candidates.append(self.paused_until)
        if self.placement_until is not None:
            candidates.append(self.placement_until)
        if policy.month_end_posting and (oldest is not None or self.penalty_due or self.compound_due or self.costs_due):
            candidates.append(_month_end(after + ONE_DAY))
        later = [d for d in candidates if d > after]
        return min(later) if later else None

    def _wake_by(self, day: date) -> None:
        if not self.stage.is_closed:
            self.next_review_on = day if self.next_review_on is None else min(self.next_review_on, day)

    # ------------------------------------------------------------------
    # commands

    def advance(
        self,
        business_date: date,
        policy: CollectionPolicy,
        agencies: Sequence[str] | None = None,
    ) -> list[Event]:
        """Close every review due up to ``business_date``, in date order. Idempotent."""
        self._catch_up(business_date, policy, agencies)
        return self._take()

    def _catch_up(self, through: date, policy: CollectionPolicy, agencies: Sequence[str] | None = None) -> None:
        while (review_on := self.next_review_on) is not None and review_on <= through:
            self._review(review_on, policy, agencies or policy.agencies)

    def record_payment(
        self,
        amount: object,
        received_on: date,
        payment_id: str,
        policy: CollectionPolicy,
        *,
        actor: str = SYSTEM,
        channel: str = "bank_transfer",
    ) -> list[Event]:
        """Accrue to the payment date, allocate the payment line by line, then cure or settle."""
        try:
            amount = money(amount, field="payment amount")
        except MoneyError as exc:
            raise DomainError(f"case {self.case_id}: {exc}") from None
        if amount <= 0:
            raise DomainError(f"case {self.case_id}: payment amount must be positive, got {amount}")
        self._check_date(received_on, "payment")
        self._catch_up(received_on - ONE_DAY, policy)
        if self.stage.is_closed:  # checked after the catch-up, which may have closed the case
            raise DomainError(f"case {self.case_id}: is {self.stage.value}; it takes no more payments")
        self._accrue(received_on)
        if self.promise is not None and received_on > self.promise.promised_on:
            self._close_promise(received_on)  # its date has passed: judged on what was paid by then
        payoff_interest = self.accrued_contract_interest()
        # A payment that would clear all principal is a payoff: the contract interest accrued
        # so far falls due with it, or settling would forgive that interest.
        if payoff_interest > 0 and amount >= self.total_due(received_on) + self.principal_not_yet_due(received_on + ONE_DAY):
            self._post_payoff_interest(received_on, payoff_interest)
        allocation = self._allocate(amount, received_on, policy.allocation_order)
        self._emit(
            PaymentReceived,
            received_on,
            actor,
            payment_id=payment_id,
            amount=amount,
            channel=channel,
            allocation_order=policy.allocation_order.value,
            lines=tuple(AllocatedLine(l.component.value, l.amount, l.installment) for l in allocation.lines),
            overpayment=allocation.overpayment,
        )
        if self.promise is not None:
            paid = self.total_paid - self.promise.paid_before
            if paid >= self.promise.amount:
                self._emit(PromiseKept, received_on, actor, promised_on=self.promise.promised_on, paid=paid)
        self._settle_or_cure(received_on, policy, actor)
        return self._take()

    def make_promise(
        self,
        amount: object,
        promised_on: date,
        made_on: date,
        policy: CollectionPolicy,
        *,
        actor: str = SYSTEM,
    ) -> list[Event]:
        try:
            amount = money(amount, field="promised amount")
        except MoneyError as exc:
            raise DomainError(f"case {self.case_id}: {exc}") from None
        self._check_date(made_on, "promise")
        self._catch_up(made_on - ONE_DAY, policy)
        self._require_open("take a promise to pay")
        if amount <= 0:
            raise DomainError(f"case {self.case_id}: promised amount must be positive, got {amount}")
        days = (promised_on - made_on).days
        if not 0 <= days <= policy.promise_max_days:
            raise DomainError(
                f"case {self.case_id}: promise date {promised_on} must be between {made_on} and "
                f"{made_on + timedelta(days=policy.promise_max_days)} (at most {policy.promise_max_days} days ahead)"
            )
        holds = self.broken_in_a_row < policy.broken_promises_to_skip_hold
        self._emit(PromiseMade, made_on, actor, amount=amount, promised_on=promised_on, holds_escalation=holds)
        return self._take()

    def pause(self, reason: str, until: date, made_on: date, policy: CollectionPolicy, *, actor: str = SYSTEM) -> list[Event]:
        self._check_date(made_on, "pause")
        self._catch_up(made_on - ONE_DAY, policy)
        self._require_open("pause")
        if not reason.strip():
            raise DomainError(f"case {self.case_id}: a pause needs a reason (hardship, dispute, complaint ...)")
        if not made_on < until <= made_on + timedelta(days=policy.max_pause_days):
            raise DomainError(
                f"case {self.case_id}: pause until {until} must be after {made_on} and at most "
                f"{policy.max_pause_days} days ahead"
            )
        self._emit(CasePaused, made_on, actor, reason=reason, until=until)
        return self._take()

    def resume(self, made_on: date, *, actor: str = SYSTEM, reason: str = "lifted by operator") -> list[Event]:
        if self.paused_until is None:
            raise DomainError(f"case {self.case_id}: is not paused")
        self._check_date(made_on, "resume")
        self._emit(CaseResumed, made_on, actor, reason=reason)
        return self._take()

    def write_off(self, reason: str, made_on: date, policy: CollectionPolicy, *, actor: str) -> list[Event]:
        """An operator ends recovery (execution ended without recovery, or not worth pursuing)."""
        self._check_date(made_on, "write-off")
        if not reason.strip():
            raise DomainError(f"case {self.case_id}: a write-off needs a reason")
        self._catch_up(made_on - ONE_DAY, policy)
        self._require_open("write off")
        self._accrue(made_on)
        self._transition("write_off", made_on, policy, actor, reason, by_operator=True)
        return self._take()

    def record_contact(
        self,
        channel: str,
        party: str,
        outcome: str,
        contacted_at: datetime,
        *,
        actor: str,
        collectors: int = 1,
        note: str = "",
    ) -> list[Event]:
        """Record a contact attempt, or its refusal under the conduct rules (DOMAIN.md §6).

        ``contacted_at`` is the borrower's local wall time. A refused contact
        returns a ``ContactRefused`` event (also recorded) instead of raising.
        """
        for name, value, accepted in (
            ("channel", channel, CONTACT_CHANNELS),
            ("party", party, CONTACT_PARTIES),
            ("outcome", outcome, CONTACT_OUTCOMES),
        ):
            if value not in accepted:
                raise DomainError(f"case {self.case_id}: {name} {value!r} is not one of {', '.join(accepted)}")
        self._require_open("record a contact")
        day = contacted_at.date()
        self._check_date(day, "contact")
        rule = self._contact_rule_broken(channel, party, outcome, contacted_at, collectors)
        common = dict(channel=channel, party=party, contacted_at=contacted_at.isoformat(timespec="minutes"))
        if rule:
            self._emit(ContactRefused, day, actor, rule=rule, **common)
        else:
            self._emit(ContactRecorded, day, actor, outcome=outcome, collectors=collectors, note=note, **common)
        return self._take()

    def amend_borrower_details(
        self, changes: Sequence[DetailChange], on: date, *, actor: str, source: str = ""
    ) -> list[Event]:
        """Record changed contact details (masked; the store keeps the clear values encrypted)."""
        if not changes:
            raise DomainError(f"case {self.case_id}: an amendment needs at least one changed field")
        self._check_date(on, "amendment")
        self._emit(BorrowerDetailsAmended, on, actor, changes=tuple(changes), source=source)
        return self._take()

    def record_personal_data_read(self, fields: Sequence[str], on: date, *, actor: str, purpose: str) -> list[Event]:
        """Record that ``actor`` read these personal fields in the clear, and why."""
        if not fields:
            raise DomainError(f"case {self.case_id}: name the personal fields read")
        if not actor.strip() or actor == SYSTEM:
            raise DomainError(f"case {self.case_id}: personal data is read by a named operator, got {actor!r}")
        self._check_date(on, "personal data read")
        self._emit(PersonalDataRead, on, actor, fields=tuple(fields), purpose=purpose)
        return self._take()

    # ------------------------------------------------------------------
    # the daily review

    def _review(self, on: date, policy: CollectionPolicy, agencies: Sequence[str]) -> None:
        self._accrue(on)
        if self.promise is not None and on > self.promise.promised_on:
            self._close_promise(on)
        if self.paused_until is not None and on >= self.paused_until:
            self._emit(CaseResumed, on, SYSTEM, reason="pause expired")
        if self.placement_until is not None and on >= self.placement_until:
            self._emit(RecalledFromAgency, on, SYSTEM, agency_id=self.agency_id, reason="placement ended")
        if not self._settle_or_cure(on, policy, SYSTEM):
            if self.stage is Stage.CURRENT:
                self._transition("fall_overdue", on, policy, SYSTEM, "payment missed")
            while self.stage in (*COLLECTION_STAGES, Stage.LITIGATION) and (
                self._transition("escalate", on, policy, SYSTEM, "threshold reached", quiet=True, agencies=agencies)
            ):
                pass
            if self.stage in (Stage.OUTSOURCED, Stage.LITIGATION):
                self._transition("write_off", on, policy, SYSTEM, "recovery not worth pursuing", quiet=True)
            if self.stage is Stage.OUTSOURCED and self.agency_id is None:
                self._place(on, policy, agencies)  # renewed with the next agency in rotation
        self._emit(CaseReviewed, on, SYSTEM, dpd=self.dpd(on), next_review_on=self._compute_next_review(on, policy))

    def _close_promise(self, on: date) -> None:
        """The day after its date a promise is kept if paid in full by then, else broken."""
        paid = self.total_paid - self.promise.paid_before
        if paid >= self.promise.amount:
            self._emit(PromiseKept, on, SYSTEM, promised_on=self.promise.promised_on, paid=paid)
        else:
            self._emit(
                PromiseBroken,
                on,
                SYSTEM,
                promised_on=self.promise.promised_on,
                paid=paid,
                broken_in_a_row=self.broken_in_a_row + 1,
            )

    def _settle_or_cure(self, on: date, policy: CollectionPolicy, actor: str) -> bool:
        """Settle a case with nothing owing, cure one whose arrears are paid. True if it moved."""
        if self.stage.is_closed:
            return True
        if self.total_owing() == 0:
            self._recall(on, actor, "case settled")
            return self._transition("settle", on, policy, actor, "nothing left owing")
        if self.stage in COLLECTION_STAGES and self.overdue_total(on + ONE_DAY) == 0:
            self._recall(on, actor, "case cured")
            return self._transition("cure", on, policy, actor, "arrears paid")
        return False

    def _recall(self, on: date, actor: str, reason: str) -> None:
        if self.agency_id is not None:
            self._emit(RecalledFromAgency, on, actor, agency_id=self.agency_id, reason=reason)

    def _facts(self, on: date, by_operator: bool = False) -> StageFacts:
        claim = self.total_owing()
        legal_cost = ZERO
        if self.stage in (Stage.OUTSOURCED, Stage.LITIGATION) and claim > 0:
            legal_cost = litigation_costs(claim).total
        return StageFacts(
            dpd=self.dpd(on),
            promise_holds=self.promise is not None
            and self.promise.holds_escalation
            and on <= self.promise.promised_on,
            paused=self.paused_until is not None,
            placement_active=self.agency_id is not None,
            placement_ended=self.placements > 0 and self.agency_id is None,
            claim=claim,
            expected_legal_cost=legal_cost,
            overdue_total=self.overdue_total(on + ONE_DAY),
            total_owing=claim,
            by_operator=by_operator,
        )

    def _transition(
        self,
        trigger: str,
        on: date,
        policy: CollectionPolicy,
        actor: str,
        reason: str,
        *,
        quiet: bool = False,
        by_operator: bool = False,
        agencies: Sequence[str] | None = None,
    ) -> bool:
        facts = self._facts(on, by_operator)
        try:
            target = decide(self.case_id, self.stage, trigger, facts, policy)
        except InvalidTransition:
            if quiet:
                return False
            raise
        if target is None:
            return False
        if target is Stage.LITIGATION:
            self._file_lawsuit(on, policy, facts.claim)
        if target is Stage.WRITTEN_OFF:
            self._recall(on, actor, "written off")
            self._emit(CaseWrittenOff, on, actor, reason=reason, amount=facts.claim)
        self._emit(
            StageChanged,
            on,
            actor,
            from_stage=self.stage.value,
            to_stage=target.value,
            trigger=trigger,
            reason=reason,
            dpd=facts.dpd,
        )
        if target is Stage.OUTSOURCED:
            self._place(on, policy, agencies or policy.agencies)
        return True

    def _file_lawsuit(self, on: date, policy: CollectionPolicy, claim: Decimal) -> None:
        costs = litigation_costs(claim)
        lines = [("acceptance fee", costs.acceptance), ("preservation fee", costs.preservation)]
        if policy.attorney_fee_recoverable:
            lines.append(("attorney fee", costs.attorney))
        postings = tuple(ChargePosting(COSTS, amount, amount, ZERO, rule) for rule, amount in lines)
        self._emit(LawsuitFiled, on, SYSTEM, claim=claim, costs=postings)

    def _place(self, on: date, policy: CollectionPolicy, agencies: Sequence[str]) -> None:
        digest = hashlib.sha256(f"{self.case_id}:{self.placements}".encode()).digest()
        agency = agencies[int.from_bytes(digest[:4], "big") % len(agencies)]
        bucket = bucket_for(self.dpd(on))
        group = "M7+" if bucket is Bucket.M7_PLUS else "M4-M6"
        self._emit(
            PlacedWithAgency,
            on,
            SYSTEM,
            agency_id=agency,
            until=on + timedelta(days=policy.placement_days),
            commission_rate=policy.commission_rates[group],
        )

    # ------------------------------------------------------------------
    # accrual

    def _accrue(self, through: date) -> None:
        """Accrue to ``through``, cutting at every due date on the way (balances change there)."""
        stops = [i.due_on for i in self.installments if self.accrued_through < i.due_on < through]
        for stop in (*stops, through):
            accrual = self._accrual(stop)
            if accrual is not None:
                self._record(accrual)

    def _accrual(self, through: date) -> ChargesAccrued | None:
        """The charges of one stretch (accrued_through, through] with no due date inside it."""
        start = self.accrued_through
        if through <= start or self.stage.is_closed:
            return None
        t = self._opened
        days = (through - start).days
        first_day = start + ONE_DAY
        principal_days = dict(self.principal_days)
        segments: list[AccrualSegment] = []
        for component, base, rate, rule in (
            (CONTRACT, self.principal_not_yet_due(through), t.annual_rate, "contract rate on principal not yet due"),
            (PENALTY, self.overdue_principal(first_day), self.penalty_rate,
             f"contract rate x (1 + {t.penalty_uplift}) on overdue principal"),
            (COMPOUND, self.overdue_interest(first_day) if t.compound_interest else ZERO, self.penalty_rate,
             "penalty rate on overdue contract interest (the contract allows compounding)"),
            (CAP, self.principal_outstanding(), self.cap_rate, f"legal cap ({t.cap_regime}) on principal outstanding"),
        ):
            if base > 0:
                principal_days[component] += base * days
                exact = rate * base * days / self.day_count.basis
                segments.append(AccrualSegment(component, base, rate, first_day, through, days, exact.quantize(EXACT), rule))

        new: dict[str, Decimal] = {}
        rules: dict[str, tuple[str, int | None]] = {}
        for component, rate, rule in (
            (PENALTY, self.penalty_rate, "penalty interest on overdue principal"),
            (COMPOUND, self.penalty_rate, "compound interest on overdue contract interest"),
        ):
            amount = round_fen(rate * principal_days[component] / self.day_count.basis) - self.computed[component]
            if amount:
                new[component], rules[component] = amount, (rule, None)
        for inst in self.installments:
            if inst.due_on == through:
                total = round_fen(t.annual_rate * principal_days[CONTRACT] / self.day_count.basis)
                key = f"{CONTRACT}#{inst.number}"
                new[key] = total - self.computed[CONTRACT]
                rules[key] = (f"contract interest of installment {inst.number} falls due", inst.number)
            elif start <= inst.due_on < through and inst.unpaid > 0:
                fee = t.late_fee + round_fen(t.late_fee_rate * (inst.principal + inst.scheduled_interest))
                if fee > 0:
                    key = f"{LATE_FEE}#{inst.number}"
                    new[key], rules[key] = fee, (f"late fee for missed installment {inst.number}", inst.number)

        limit = cap_limit(self.cap_rate, principal_days[CAP], self.day_count)
        cut_order = [key for component in DEFAULT_CUT_ORDER for key in new if key.split("#")[0] == component]
        split = apply_cap(new, self.charged, limit, cut_order)
        postings = tuple(
            ChargePosting(
                key.split("#")[0], amount, split.enforceable[key], split.unenforceable[key], *rules[key]
            )
            for key, amount in new.items()
        )
        return self._make(
            ChargesAccrued,
            through,
            SYSTEM,
            accrued_from=start,
            through=through,
            segments=tuple(segments),
            postings=postings,
            cap_rate=self.cap_rate,
            cap_limit=limit,
            charged_before=self.charged,
        )

    def _payoff_interest_split(self, amount: Decimal) -> tuple[Decimal, CapSplit]:
        """The cap limit now, and ``amount`` of contract interest split under it."""
        limit = cap_limit(self.cap_rate, self.principal_days[CAP], self.day_count)
        return limit, apply_cap({CONTRACT: amount}, self.charged, limit, DEFAULT_CUT_ORDER)

    def _post_payoff_interest(self, on: date, amount: Decimal) -> None:
        """A payoff brings forward the contract interest accrued in the current period."""
        inst = next(i for i in self.installments if i.due_on > on)
        limit, split = self._payoff_interest_split(amount)
        self._emit(
            ChargesAccrued,
            on,
            SYSTEM,
            accrued_from=on,
            through=on,
            segments=(),
            postings=(
                ChargePosting(
                    CONTRACT,
                    amount,
                    split.enforceable[CONTRACT],
                    split.unenforceable[CONTRACT],
                    f"contract interest accrued to payoff, installment {inst.number}",
                    inst.number,
                ),
            ),
            cap_rate=self.cap_rate,
            cap_limit=limit,
            charged_before=self.charged,
        )

    def _allocate(self, amount: Decimal, on: date, order: AllocationOrder) -> Allocation:
        """Allocate to what is due; what is left pays interest brought forward by a payoff,
        then prepays principal not yet due, oldest installment first."""
        allocation = allocate(amount, self.dues(on), order)
        leftover = allocation.overpayment
        lines = list(allocation.lines)
        future = [i for i in self.installments if i.due_on > on]
        for component, unpaid in ((Component.CONTRACT_INTEREST, "interest_unpaid"), (Component.PRINCIPAL, "principal_unpaid")):
            for inst in future:
                part = min(leftover, getattr(inst, unpaid))
                if part > 0:
                    lines.append(AllocationLine(component, part, inst.number))
                    leftover -= part
        return Allocation(amount, tuple(lines), leftover)

    # ------------------------------------------------------------------
    # contact conduct

    def _contact_rule_broken(
        self, channel: str, party: str, outcome: str, at: datetime, collectors: int
    ) -> str | None:
        quiet_start, quiet_end = QUIET_HOURS
        if channel in ("call", "visit", "sms") and (at.time() >= quiet_start or at.time() < quiet_end):
            return "no contact between 22:00 and 08:00 borrower local time"
        if channel == "visit" and collectors < 2:
            return "a field visit needs at least two collectors"
        if party != "borrower" and not (self.number_invalid or self.failed_in_a_row >= FAILED_ATTEMPTS_BEFORE_THIRD_PARTY):
            return "third parties only when the borrower cannot be reached (invalid number or 3 failed attempts)"
        counts = self.contact_day if self.contact_day.day == at.date() else ContactDay(at.date())
        if channel == "call" and outcome == "connected" and counts.connected >= MAX_CONNECTED_CALLS_A_DAY:
            return f"at most {MAX_CONNECTED_CALLS_A_DAY} connected calls a day per borrower"
        if channel == "call" and outcome != "connected" and counts.unanswered.get(party, 0) >= MAX_UNANSWERED_A_DAY:
            return f"at most {MAX_UNANSWERED_A_DAY} unanswered attempts a day per number"
        return None

    # ------------------------------------------------------------------
    # event plumbing

    def _check_date(self, on: date, what: str) -> None:
        if on < self.accrued_through:
            raise DomainError(
                f"case {self.case_id}: {what} dated {on} is before the case's last closed date "
                f"{self.accrued_through}; date it {self.accrued_through} or later"
            )

    def _require_open(self, action: str) -> None:
        if self.stage.is_closed:
            raise DomainError(f"case {self.case_id}: is {self.stage.value}; cannot {action}")

    def _make(self, cls: type[Event], on: date, actor: str, **payload) -> Event:
        return cls(case_id=self.case_id, seq=self.version + 1, business_date=on, actor=actor, **payload)

    def _emit(self, cls: type[Event], on: date, actor: str, **payload) -> Event:
        return self._record(self._make(cls, on, actor, **payload))

    def _record(self, event: Event) -> Event:
        self.apply(event)
        self._pending.append(event)
        return event

    def _take(self) -> list[Event]:
        events, self._pending = self._pending, []
        return events

    # ------------------------------------------------------------------
    # apply: the only place state changes

    def apply(self, event: Event) -> None:
        if event.seq != self.version + 1:
            raise DomainError(f"case {self.case_id}: event seq {event.seq} does not follow version {self.version}")
        handler = getattr(self, f"_on_{type(event).__name__}")
        handler(event)
        self.version = event.seq

    def _on_CaseOpened(self, e: CaseOpened) -> None:
        self.terms = e
        self.contract_no = e.contract_no
        self.borrower_id = e.borrower_id
        self.day_count = DayCount(e.day_count)
        self.cap_rate = e.cap_rate
        self.installments = [InstallmentState(s.number, s.due_on, s.principal, s.interest) for s in e.schedule]
        self.accrued_through = self.reviewed_through = e.disbursed_on
        self.next_review_on = e.schedule[0].due_on + ONE_DAY

    def _on_ChargesAccrued(self, e: ChargesAccrued) -> None:
        for seg in e.segments:
            self.principal_days[seg.component] += seg.base * seg.days
        by_number = {i.number: i for i in self.installments}
        for p in e.postings:
            if p.component in self.computed:
                self.computed[p.component] += p.computed
            if p.component == CONTRACT:
                by_number[p.installment].interest_due += p.enforceable
            elif p.component == LATE_FEE:
                by_number[p.installment].late_fee_due += p.enforceable
            elif p.component == PENALTY:
                self.penalty_due += p.enforceable
            elif p.component == COMPOUND:
                self.compound_due += p.enforceable
            self.charged += p.enforceable
            if p.unenforceable:
                self.unenforceable[p.component] = self.unenforceable.get(p.component, ZERO) + p.unenforceable
        self.accrued_through = max(self.accrued_through, e.through)

    def _on_PaymentReceived(self, e: PaymentReceived) -> None:
        by_number = {i.number: i for i in self.installments}
        for line in e.lines:
            if line.component == COSTS:
                self.costs_due -= line.amount
            elif line.component == PENALTY:
                self.penalty_due -= line.amount
            elif line.component == COMPOUND:
                self.compound_due -= line.amount
            elif line.component == LATE_FEE:
                by_number[line.installment].late_fee_paid += line.amount
            elif line.component == CONTRACT:
                by_number[line.installment].interest_paid += line.amount
            elif line.component == Component.PRINCIPAL.value:
                by_number[line.installment].principal_paid += line.amount
        self.total_paid += e.amount
        self.overpayment += e.overpayment
        self._skip_review_of_paid_installments(e.business_date)

    def _skip_review_of_paid_installments(self, paid_on: date) -> None:
        """A current case paid up to date has nothing to review until its next installment.

        Its next review was the day after an installment fell due (to see it
        missed); once everything due is paid, that review could change
        nothing, so the case sleeps until the day after its next installment
        falls due. Cases in collection keep their review dates.
        """
        if (
            self.stage is not Stage.CURRENT
            or self.promise is not None
            or self.paused_until is not None
            or self.overdue_total(paid_on + ONE_DAY) > 0
        ):
            return
        upcoming = [i.due_on for i in self.installments if i.due_on > paid_on]
        if upcoming:
            self.next_review_on = upcoming[0] + ONE_DAY

    def _on_StageChanged(self, e: StageChanged) -> None:
        source, dest = Stage(e.from_stage), Stage(e.to_stage)
        if source is not self.stage or not edge_exists(e.trigger, source, dest):
            raise DomainError(
                f"case {self.case_id} seq {e.seq}: {e.trigger} {source.value} -> {dest.value} "
                f"is not in the transition table (case is {self.stage.value})"
            )
        self.stage = dest
        if dest is Stage.CURRENT or dest.is_closed:
            self.promise = None
            self.paused_until = None
        if dest.is_closed:
            self.next_review_on = None

    def _on_CaseReviewed(self, e: CaseReviewed) -> None:
        self.reviewed_through = e.business_date
        self.next_review_on = e.next_review_on

    def _on_PromiseMade(self, e: PromiseMade) -> None:
        self.promise = Promise(e.amount, e.promised_on, e.holds_escalation, self.total_paid)
        self._wake_by(e.promised_on + ONE_DAY)

    def _on_PromiseKept(self, e: PromiseKept) -> None:
        self.promise = None
        self.broken_in_a_row = 0

    def _on_PromiseBroken(self, e: PromiseBroken) -> None:
        self.promise = None
        self.broken_in_a_row = e.broken_in_a_row

    def _on_ContactRecorded(self, e: ContactRecorded) -> None:
        day = date.fromisoformat(e.contacted_at[:10])
        if self.contact_day.day != day:
            self.contact_day = ContactDay(day)
        if e.channel == "call":
            if e.outcome == "connected":
                self.contact_day.connected += 1
            else:
                self.contact_day.unanswered[e.party] = self.contact_day.unanswered.get(e.party, 0) + 1
        if e.party == "borrower":
            if e.outcome == "connected":
                self.failed_in_a_row, self.number_invalid = 0, False
            else:
                self.failed_in_a_row += 1
                self.number_invalid = self.number_invalid or e.outcome == "invalid_number"

    def _on_ContactRefused(self, e: ContactRefused) -> None:
        pass

    def _on_CasePaused(self, e: CasePaused) -> None:
        self.paused_until = e.until
        self._wake_by(e.until)

    def _on_CaseResumed(self, e: CaseResumed) -> None:
        self.paused_until = None
        self._wake_by(e.business_date + ONE_DAY)  # escalation held by the pause may now be due

    def _on_PlacedWithAgency(self, e: PlacedWithAgency) -> None:
        self.agency_id = e.agency_id
        self.placement_until = e.until
        self.placements += 1

    def _on_RecalledFromAgency(self, e: RecalledFromAgency) -> None:
        self.agency_id = None
        self.placement_until = None

    def _on_LawsuitFiled(self, e: LawsuitFiled) -> None:
        self.lawsuit_filed = True
        self.costs_due += sum((c.enforceable for c in e.costs), ZERO)

    def _on_CaseWrittenOff(self, e: CaseWrittenOff) -> None:
        pass

    def _on_BorrowerDetailsAmended(self, e: BorrowerDetailsAmended) -> None:
        if any(change.field == "phone" for change in e.changes):
            # a new number: the old one's failures say nothing about reaching the borrower now
            self.failed_in_a_row, self.number_invalid = 0, False

    def _on_PersonalDataRead(self, e: PersonalDataRead) -> None:
        pass


_OPENED_CACHE: dict[str, tuple[str, CaseOpened]] = {}
_OPENED_CACHE_SIZE = 250_000


def _opened_event(text: str, case_id: str) -> CaseOpened:
    """Decode a snapshot's opening event, reusing the last decoding of the same case.

    Decoding a schedule is the dearest part of loading a case; the opening
    event never changes, so the same text gives the same event.
    """
    hit = _OPENED_CACHE.get(case_id)
    if hit is not None and hit[0] == text:
        return hit[1]
    if len(_OPENED_CACHE) >= _OPENED_CACHE_SIZE:
        _OPENED_CACHE.clear()
    opened = event_from_record(**json.loads(text))
    _OPENED_CACHE[case_id] = (text, opened)
    return opened


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])
