"""The state of a collection case, and ``apply``: how each event changes it.

``CaseState`` holds what a case's events have made of it (installments paid
and owed, charges, the stage, the promise, pause, placement and contact
state) and what is read from that: dues, days past due, the projection,
the facts the stage guards look at, the next date anything can change, how
a payment would be allocated. ``apply`` dispatches each event through a
table built once from the ``_on_<EventType>`` handlers, and refuses an event
type it has no handler for. Nothing else changes the state;
``states.case`` decides which events happen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Callable

from states import accrual, cap_ledger, contact, credit, litigation, value_dating
from states.accrual import CAP, COMPOUND, CONTRACT, LATE_FEE, ONE_DAY, PENALTY, PERIOD_START
from states.allocation import Allocation, AllocationLine, AllocationOrder, Component, allocate
from states.court_fees import litigation_costs
from states.errors import DomainError
from states.events import (
    EVENT_TYPES,
    BorrowerDetailsAmended,
    CaseOpened,
    CasePaused,
    CaseResumed,
    CaseReviewed,
    CaseWrittenOff,
    ChargesAccrued,
    ChargesReversed,
    ContactRecorded,
    ContactRefused,
    CreditReportNoticeSent,
    DelayedPerformanceInterestAccrued,
    ExecutionRecorded,
    JudgmentEntered,
    VisitReported,
    VisitScheduled,
    Event,
    LawsuitFiled,
    MonthEndReported,
    PaymentReceived,
    PersonalDataRead,
    CaseRebuilt,
    CommissionAccrued,
    PlacedWithAgency,
    PlacementDeferred,
    PromiseBroken,
    PromiseKept,
    PromiseMade,
    RecalledFromAgency,
    StageChanged,
)
from states.lifecycle import Stage, StageFacts, edge_exists
from states.money import ZERO, DayCount, month_end
from states.policy import CollectionPolicy
from states.vocabulary import VisitOutcome
from states.case_figures import CaseFigures

COSTS = Component.COSTS.value
PRINCIPAL = Component.PRINCIPAL.value


@dataclass(slots=True)
class InstallmentState:
    """One installment's figures. Changed only by ``CaseState``'s handlers, through ``_charge`` and
    ``_on_PaymentReceived`` (and by a snapshot read back), which drop what ``CaseState._rows`` keeps."""

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

    def row(self) -> tuple[date, Decimal, Decimal, Decimal, Decimal]:
        """``(due_on, unpaid, principal_unpaid, interest_unpaid, late_fee_unpaid)``, worked out in one go
        (the properties above, each difference taken once)."""
        principal = self.principal - self.principal_paid
        interest = self.interest_due - self.interest_paid
        late_fee = self.late_fee_due - self.late_fee_paid
        return self.due_on, principal + interest + late_fee, principal, interest, late_fee


@dataclass
class Promise:
    amount: Decimal
    promised_on: date
    holds_escalation: bool
    paid_before: Decimal  # total paid when the promise was made


class CaseState(CaseFigures):
    """A case's state, folded from its events: ``apply`` is the only place it changes.

    The balances it derives (dues, DPD, the projection) are read from here
    (``CaseFigures``); what happens to a case is decided by ``CollectionCase``'s commands.
    """

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
        self.unenforced: tuple[cap_ledger.Unenforced, ...] = ()  # held above the cap, oldest first
        self.penalty_due = ZERO
        self.compound_due = ZERO
        self.costs_due = ZERO
        self.total_paid = ZERO
        self.overpayment = ZERO
        self.last_reversal_seq = 0  # the last ChargesReversed: the accruals before it are no longer in effect
        self.promise: Promise | None = None
        self.visit_due_on: date | None = None  # the field visit scheduled, not reported yet
        self.failed_visits = 0
        self.broken_in_a_row = 0
        self.paused_until: date | None = None
        self.pause_reason: str | None = None
        self.agency_id: str | None = None
        self.placement_until: date | None = None
        self.placements = 0
        self.placement_seq: int | None = None  # the PlacedWithAgency event of the placement in force
        self.commission_rate: Decimal | None = None  # its rate (the bucket group's at placement)
        self.last_agency_id: str | None = None  # the agency of the last placement recalled
        self.placement_retry_on: date | None = None  # no agency had room: tried again then
        self.next_review_on: date | None = None
        self.lawsuit_filed = False
        self.litigation = litigation.EMPTY  # the judgment, delayed-performance interest, execution
        self.contact = contact.ContactState()
        self.credit = credit.CreditState()
        # a plan-following case's contract principal-days at its last period starts (installment -> them),
        # what a value-dated payment going back across a due date restores (``value_dating``)
        self.period_starts: dict[int, Decimal] = {}
        self._pending: list[Event] = []  # emitted, not yet collected
        self._returned = 0  # how many of them a command has already returned
        # What the figures below read of this state, worked out once per state (see ``total_owing``);
        # None while ``apply`` changes the state, when nothing is kept.
        self._figures: dict[Any, Any] | None = {}
        self._kept_rows: tuple[tuple[date, Decimal, Decimal, Decimal, Decimal], ...] | None = None  # see ``_rows``

    # ------------------------------------------------------------------
    # what the rules read (computed from the state, never changing it)

    def _compute_next_review(self, after: date, policy: CollectionPolicy) -> date | None:
        """The earliest date after ``after`` on which anything about this case can change.

        An installment falls due (seen the day after), a stage threshold is
        reached, a promise expires, a pause or placement ends, a month-end
        posting or credit-report record is owed. Nothing else can move a case,
        so nothing else wakes it.
        """
        if self.stage.is_closed:
            return self.placement_until  # a written-off case placed for recovery wakes only to end it
        candidates: list[date] = []
        for inst in self.installments:
            if inst.due_on + ONE_DAY > after:
                candidates.append(inst.due_on + ONE_DAY)
                break
        oldest = self.oldest_unpaid_due(after + ONE_DAY)
        if oldest is not None:
            for threshold in _threshold_days(policy):
                if oldest + threshold > after:
                    candidates.append(oldest + threshold)
                    break
        if self.promise is not None:
            candidates.append(self.promise.promised_on + ONE_DAY)
        if self.paused_until is not None:
            candidates.append(self.paused_until)
        if self.visit_due_on is not None and self.stage is _VISIT:
            candidates.append(self.visit_due_on + ONE_DAY)  # overdue from then: it counts toward outsourcing
        if self.placement_until is not None:
            candidates.append(self.placement_until)
        if self.placement_retry_on is not None and self.stage is _OUTSOURCED and self.agency_id is None:
            candidates.append(self.placement_retry_on)
        running = self.litigation.unpaid_debt > 0  # delayed-performance interest is posted like every other charge
        if policy.month_end_posting and (oldest is not None or self.penalty_due or self.compound_due or self.costs_due or running):
            candidates.append(month_end(after + ONE_DAY))
        delayed_from = litigation.next_review_on(self.litigation, after)
        if delayed_from is not None:
            candidates.append(delayed_from)
        report_on = credit.next_record_on(after, self.stage, self.credit)
        if report_on is not None:
            candidates.append(report_on)
        later = [d for d in candidates if d > after]
        return min(later) if later else None

    def _facts(self, on: date, by_operator: bool = False) -> StageFacts:
        claim = self.total_owing()
        legal_cost = ZERO
        if self.stage in _SUED_OR_SUABLE and claim > 0:
            legal_cost = litigation_costs(claim).total
        return StageFacts(
            dpd=self.dpd(on),
            promise_holds=self.promise is not None and self.promise.holds_escalation and on <= self.promise.promised_on,
            paused=self.paused_until is not None,
            placement_active=self.agency_id is not None,
            placement_ended=self.placements > 0 and self.agency_id is None,
            claim=claim,
            expected_legal_cost=legal_cost,
            overdue_total=self.overdue_total(on + ONE_DAY),
            total_owing=claim,
            by_operator=by_operator,
            failed_visits=self.failed_visits + (1 if self.visit_due_on is not None and self.visit_due_on < on else 0),
            execution_failed=litigation.execution_failed(self.litigation),
        )

    def _allocate(self, amount: Decimal, on: date, order: AllocationOrder, costs_held_back: Decimal = ZERO) -> Allocation:
        """Allocate to what is due; what is left pays interest brought forward by a payoff,
        then prepays principal not yet due, oldest installment first. ``costs_held_back``: the
        litigation costs posted after ``on`` (a value-dated payment), not allocated against."""
        dues = self.dues(on)
        if costs_held_back:
            dues = [d if d.component != COSTS else replace(d, amount=d.amount - costs_held_back) for d in dues]
        allocation = allocate(amount, dues, order)
        leftover = allocation.overpayment
        lines = list(allocation.lines)
        future = [i for i in self.installments if i.due_on > on]
        for component, unpaid in ((Component.CONTRACT_INTEREST, "interest_unpaid"), (Component.PRINCIPAL, "principal_unpaid")):
            for inst in future:
                part = min(leftover, getattr(inst, unpaid))
                if part > 0:
                    lines.append(AllocationLine(component, part, inst.number))
                    leftover -= part
        delayed = min(leftover, self.litigation.interest_due)  # paid last (states.litigation)
        if delayed > 0:
            lines.append(AllocationLine(Component.DELAYED_PERFORMANCE_INTEREST, delayed))
            leftover -= delayed
        return Allocation(amount, tuple(lines), leftover)

    def _wake_by(self, day: date) -> None:
        if not self.stage.is_closed:
            self.next_review_on = day if self.next_review_on is None else min(self.next_review_on, day)

    # ------------------------------------------------------------------
    # apply: the only place state changes

    def apply(self, event: Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise DomainError(f"case {self.case_id}: no handler for event type {event.type!r}; this code cannot apply it")
        if event.seq != self.version + 1:
            raise DomainError(f"case {self.case_id}: event seq {event.seq} does not follow version {self.version}")
        self._figures = None  # nothing is kept of a state while it changes
        handler(self, event)
        self.version = event.seq
        self._figures = {}

    def _on_CaseOpened(self, e: CaseOpened) -> None:
        self.terms = e
        self.contract_no = e.contract_no
        self.borrower_id = e.borrower_id
        self.day_count = DayCount(e.day_count)
        self.cap_rate = e.cap_rate
        self.installments = [InstallmentState(s.number, s.due_on, s.principal, s.interest) for s in e.schedule]
        self._installments_changed()
        self.accrued_through = self.reviewed_through = e.disbursed_on
        self.next_review_on = e.schedule[0].due_on + ONE_DAY

    def _on_ChargesAccrued(self, e: ChargesAccrued) -> None:
        for seg in e.segments:
            self.principal_days[seg.component] += seg.base * seg.days
        for lot in e.released:  # held back earlier, charged now that the limit has grown
            self._charge(lot.component, lot.installment, lot.amount)
        for p in e.postings:
            if p.component in self.computed:
                self.computed[p.component] += p.computed
            self._charge(p.component, p.installment, p.enforceable)
            if p.component == CONTRACT and p.installment is not None and accrual.follows_plan(self._opened) \
                    and self._installment(p.installment).due_on == e.through:
                self.principal_days[PERIOD_START] = self.principal_days[CONTRACT]  # the next period starts
                self.period_starts = value_dating.after_period_start(self.period_starts, p.installment + 1, self.principal_days[CONTRACT])
        cut = [cap_ledger.Unenforced(p.component, p.unenforceable, p.installment) for p in e.postings if p.unenforceable]
        self.unenforced = cap_ledger.after_posting(self.unenforced, e.released, cut)
        self.accrued_through = max(self.accrued_through, e.through)
        self.contact = contact.forget_days_before(self.contact, self.accrued_through)

    def _charge(self, component: str, installment: int | None, amount: Decimal) -> None:
        """Add an enforceable charge to what is due."""
        if component == CONTRACT:
            self._installment(installment).interest_due += amount
            self._installments_changed()
        elif component == LATE_FEE:
            self._installment(installment).late_fee_due += amount
            self._installments_changed()
        elif component == PENALTY:
            self.penalty_due += amount
        elif component == COMPOUND:
            self.compound_due += amount
        self.charged += amount

    def _installment(self, number: int | None) -> InstallmentState:
        for inst in self.installments:
            if inst.number == number:
                return inst
        raise DomainError(f"case {self.case_id}: no installment {number}")

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
            elif line.component == PRINCIPAL:
                by_number[line.installment].principal_paid += line.amount
        self._installments_changed()
        self.litigation = litigation.after_payment(self.litigation, ((line.component, line.amount) for line in e.lines))
        self.total_paid += e.amount
        self.overpayment += e.overpayment
        if e.valued_on < e.business_date:  # value-dated: the next review decides on the corrected balances
            self._wake_by(e.business_date + ONE_DAY)
        self._skip_review_of_paid_installments(e.business_date)

    def _on_ChargesReversed(self, e: ChargesReversed) -> None:
        for line in e.lines:
            self._charge(line.component, line.installment, -line.amount)
        for inst in self.installments:
            if min(inst.interest_unpaid, inst.late_fee_unpaid) < 0:
                raise DomainError(f"case {self.case_id} seq {e.seq}: reverses charges of installment {inst.number} already paid")
        if min(self.penalty_due, self.compound_due) < 0:
            raise DomainError(f"case {self.case_id} seq {e.seq}: reverses penalty or compound interest already paid")
        for total in e.totals:
            self.principal_days[total.component] = total.principal_days
            if total.component in self.computed:
                self.computed[total.component] = total.computed
        self.period_starts = value_dating.before_due_dates_after(
            self.period_starts, {i.number: i.due_on for i in self.installments}, e.accrued_through
        )
        self.charged = e.charged
        self.unenforced = tuple(e.unenforced)
        self.accrued_through = e.accrued_through
        self.last_reversal_seq = e.seq

    def _skip_review_of_paid_installments(self, paid_on: date) -> None:
        """A current case paid up to date has nothing to review until its next installment.

        Its next review was the day after an installment fell due (to see it
        missed); once everything due is paid, that review could change
        nothing, so the case sleeps until the day after its next installment
        falls due, or until a month-end credit record it owes. Cases in
        collection keep their review dates.
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
            report_on = credit.next_record_on(self.reviewed_through, self.stage, self.credit)
            self.next_review_on = min(upcoming[0] + ONE_DAY, report_on or date.max)

    def _on_StageChanged(self, e: StageChanged) -> None:
        source, dest = Stage(e.from_stage), Stage(e.to_stage)
        if source is not self.stage or not edge_exists(e.trigger, source, dest):
            raise DomainError(
                f"case {self.case_id} seq {e.seq}: {e.trigger} {source.value} -> {dest.value} "
                f"is not in the transition table (case is {self.stage.value})"
            )
        self.stage = dest
        self.credit = credit.after_stage_change(self.credit, source, dest, e.business_date)
        if dest is Stage.CURRENT or dest.is_closed:
            self.promise = None
            self.paused_until = self.pause_reason = None
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
        self.contact = contact.after_contact(self.contact, e)

    def _on_ContactRefused(self, e: ContactRefused) -> None:
        pass  # a refused contact did not take place: it counts towards no limit

    def _on_CasePaused(self, e: CasePaused) -> None:
        self.paused_until, self.pause_reason = e.until, e.reason
        self._wake_by(e.until)

    def _on_CaseResumed(self, e: CaseResumed) -> None:
        self.paused_until = self.pause_reason = None
        self._wake_by(e.business_date + ONE_DAY)  # escalation held by the pause may now be due

    def _on_PlacedWithAgency(self, e: PlacedWithAgency) -> None:
        self.agency_id = e.agency_id
        self.placement_until = e.until
        self.placements += 1
        self.placement_seq, self.commission_rate, self.placement_retry_on = e.seq, e.commission_rate, None
        if self.stage.is_closed:  # a written-off case placed for recovery is reviewed only to end it
            self.next_review_on = e.until

    def _on_RecalledFromAgency(self, e: RecalledFromAgency) -> None:
        self.last_agency_id = self.agency_id
        self.agency_id = None
        self.placement_until = None
        self.placement_seq = self.commission_rate = None

    def _on_PlacementDeferred(self, e: PlacementDeferred) -> None:
        self.placement_retry_on = e.retry_on
        self._wake_by(e.retry_on)

    def _on_CommissionAccrued(self, e: CommissionAccrued) -> None:
        pass  # the lender's cost: never in the borrower's balance (the store projects it for the reports)

    def _on_LawsuitFiled(self, e: LawsuitFiled) -> None:
        self.lawsuit_filed = True
        self.costs_due += sum((c.enforceable for c in e.costs), ZERO)

    def _on_JudgmentEntered(self, e: JudgmentEntered) -> None:
        self.litigation = litigation.after_judgment(self.litigation, e.amount, e.deadline, e.business_date)
        self._wake_by(e.deadline + ONE_DAY)  # delayed-performance interest runs from then

    def _on_DelayedPerformanceInterestAccrued(self, e: DelayedPerformanceInterestAccrued) -> None:
        posted = sum((p.enforceable for p in e.postings), ZERO)
        self.litigation = litigation.after_delayed_interest(self.litigation, e.base, e.days, posted)

    def _on_ExecutionRecorded(self, e: ExecutionRecorded) -> None:
        self.litigation = litigation.after_execution(self.litigation, litigation.ExecutionOutcome(e.outcome))
        self.costs_due += sum((c.enforceable for c in e.costs), ZERO)

    def _on_CaseWrittenOff(self, e: CaseWrittenOff) -> None:
        pass  # the stage change that follows closes the case

    def _on_BorrowerDetailsAmended(self, e: BorrowerDetailsAmended) -> None:
        if any(change.field == "phone" for change in e.changes):
            self.contact = contact.after_new_number(self.contact)

    def _on_PersonalDataRead(self, e: PersonalDataRead) -> None:
        pass  # recorded for the audit trail; the case's figures do not change

    def _on_CaseRebuilt(self, e: CaseRebuilt) -> None:
        pass  # recorded for the audit trail: the row was rewritten from these very events

    def _on_VisitScheduled(self, e: VisitScheduled) -> None:
        self.visit_due_on = e.due_on

    def _on_VisitReported(self, e: VisitReported) -> None:
        self.visit_due_on = None
        if VisitOutcome(e.outcome).failed:
            self.failed_visits += 1
        self._wake_by(e.business_date + ONE_DAY)  # a failed visit may let the case go to an agency

    def _on_CreditReportNoticeSent(self, e: CreditReportNoticeSent) -> None:
        self.credit = credit.after_notice(self.credit, e.first_report_on)

    def _on_MonthEndReported(self, e: MonthEndReported) -> None:
        self.credit = credit.after_report(self.credit, e.month_end)


_VISIT, _OUTSOURCED = Stage.VISIT, Stage.OUTSOURCED  # looked up once: a member read off its Enum class costs a call
_SUED_OR_SUABLE = (Stage.OUTSOURCED, Stage.LITIGATION)  # where the guards weigh the expected legal cost
_THRESHOLDS: tuple[CollectionPolicy, tuple[timedelta, ...]] | None = None


def _threshold_days(policy: CollectionPolicy) -> tuple[timedelta, ...]:
    """``policy.stage_thresholds()`` as days, kept for the policy last asked about (a close runs one policy)."""
    global _THRESHOLDS
    kept = _THRESHOLDS
    if kept is not None and kept[0] is policy:
        return kept[1]
    days = tuple(timedelta(days=threshold) for threshold in policy.stage_thresholds())
    _THRESHOLDS = (policy, days)
    return days


def _handlers() -> dict[type[Event], Callable[[CaseState, Any], None]]:
    """The apply table, built once: ``_on_<EventType>`` handles that type."""
    table = {}
    for name, handler in vars(CaseState).items():
        if name.startswith("_on_"):
            if name[4:] not in EVENT_TYPES:
                raise TypeError(f"CaseState.{name} handles no known event type")
            table[EVENT_TYPES[name[4:]]] = handler
    return table


_HANDLERS = _handlers()
