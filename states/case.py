"""The CollectionCase aggregate: one loan in collection, changed only by its events.

Commands (``advance``, ``record_payment``, ``make_promise``, ``pause`` ...)
take a typed, already validated command (``states.commands``), decide what
happened under the collection rules, emit events and apply them; ``replay``
folds stored events through the same ``apply`` and must reach the same state.
``apply`` is the only place state changes.

Every command returns the events it produced; the case also keeps them until
``collect_events()`` drains them, so a unit of work can gather what a case
did. The rules live beside it: accrual and the cap in ``states.accrual``,
contact conduct in ``states.contact``, credit reporting in ``states.credit``, the snapshot format in
``states.snapshot``, what is read of a case in ``states.views``.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Iterable, Sequence

from states import accrual, contact, credit, litigation, value_dating
from states import snapshot as snapshot_format
from states.accrual import ONE_DAY, Balances, Totals
from states.agency import AgencyBoard
from states.caps import LprTable
from states.case_litigation import Agencies, CourtAndAgencies
from states.case_state import CaseState, InstallmentState, Promise
from states.commands import (
    CaseCommand,
    MakePromise,
    PauseCase,
    RecordContact,
    RecordPayment,
    ReportVisit,
    ResumeCase,
    WriteOff,
)
from states.court_fees import DELAYED_PERFORMANCE_DAILY_RATE
from states.defaults import DEFAULT_TIMEZONE
from states.errors import DomainError
from states.events import (
    SYSTEM,
    AllocatedLine,
    BorrowerDetailsAmended,
    CaseOpened,
    CaseRebuilt,
    VisitReported,
    VisitScheduled,
    CasePaused,
    CaseResumed,
    CaseReviewed,
    CaseWrittenOff,
    ChargePosting,
    ChargesAccrued,
    ChargesReversed,
    ContactRecorded,
    ContactRefused,
    CreditReportNoticeSent,
    DelayedPerformanceInterestAccrued,
    DetailChange,
    Event,
    MonthEndReported,
    PaymentReceived,
    PersonalDataRead,
    PromiseBroken,
    PromiseKept,
    PromiseMade,
    ScheduledInstallment,
    StageChanged,
)
from states.lifecycle import COLLECTION_STAGES, InvalidTransition, Stage, decide
from states.loan import LoanTerms
from states.money import ZERO, month_end
from states.policy import CollectionPolicy
from states.views import CaseProjection, CaseView

# Callers import these from here; they are defined beside the code they belong to.
__all__ = ["CaseProjection", "CaseView", "CollectionCase", "DomainError", "InstallmentState", "Promise"]

_ESCALATING = (*COLLECTION_STAGES, Stage.LITIGATION)  # the stages a review tries to escalate
_WRITTEN_OFF_FROM = (Stage.OUTSOURCED, Stage.LITIGATION)  # the stages a review may write off



class CollectionCase(CourtAndAgencies, CaseState):
    """One case. Build it with ``open`` or ``replay``; change it only through its commands."""

    # The agencies in view while a command runs (given to it; see ``_catch_up``): not state.
    _agencies: Agencies | None = None

    # ------------------------------------------------------------------
    # construction and snapshots

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
            schedule_interest=terms.schedule_interest.value,
            plan_imported=terms.plan_imported,
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

    SNAPSHOT_VERSION = snapshot_format.SNAPSHOT_VERSION

    def snapshot(self) -> dict:
        """The whole state as plain JSON values (the format is ``states.snapshot``'s)."""
        return snapshot_format.snapshot(self)

    @classmethod
    def from_snapshot(cls, data: dict, opened: CaseOpened | None = None) -> CollectionCase:
        """The case a snapshot holds, on the terms of its opening event (``states.snapshot``)."""
        case = snapshot_format.from_snapshot(data, opened, cls)
        case._forget_figures()  # its state was set from the snapshot, not by apply
        return case

    def _clone(self) -> CollectionCase:
        """An independent copy for what-if valuation (far cheaper than deepcopy)."""
        clone = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, (list, dict)):
                setattr(clone, name, copy.copy(value))
        clone.installments = [copy.copy(i) for i in self.installments]
        clone.promise = copy.copy(self.promise)  # the contact state is immutable: shared
        clone._pending, clone._returned = [], 0
        return clone

    def view(self, as_of: date, policy: CollectionPolicy | None = None) -> CaseView:
        """Value the case as of ``as_of`` (>= the last accrual) without changing it."""
        return self.valuation(as_of, policy)[0]

    def valuation(self, as_of: date, policy: CollectionPolicy | None = None) -> tuple[CaseView, list[Event]]:
        """The case valued as of ``as_of``, and the events a close through that date would record.

        With the policy, the reviews due before ``as_of`` run on a copy first, so the figures
        are exactly those a payment dated ``as_of`` would meet (the stages they reach, and the
        costs a lawsuit posts, depend on them). Without it, charges accrue straight to ``as_of``.
        Nothing is applied to this case.
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
        # a written-off case accrues nothing more: what it owes is what was due at the write-off
        accrued = ZERO if probe.stage.is_closed else probe.accrued_contract_interest()
        if accrued > 0:  # what a payoff would bring forward: the part under the cap
            upcoming = next((i.number for i in probe.installments if i.due_on > as_of), None)
            (posting,) = accrual.payoff_interest(probe._opened, probe.day_count, probe._totals(), accrued, upcoming).postings
            accrued = posting.enforceable
        view = CaseView(
            as_of,
            probe.projection(),
            accrued,
            promise_amount=probe.promise.amount if probe.promise else None,
            pause_reason=probe.pause_reason,
            placement_until=probe.placement_until,
            last_contact=probe.contact.last,
        )
        return view, probe.collect_events()

    # ------------------------------------------------------------------
    # commands

    def advance(
        self,
        business_date: date,
        policy: CollectionPolicy,
        agencies: Agencies | None = None,
    ) -> list[Event]:
        """Close every review due up to ``business_date``, in date order. Idempotent.

        ``agencies`` is what a placement chooses from (an ``AgencyBoard`` for the
        date, or agency ids in rotation; by default the policy's list).
        """
        self._catch_up(business_date, policy, agencies)
        return self._take()

    def _catch_up(self, through: date, policy: CollectionPolicy, agencies: Agencies | None = None) -> None:
        self._agencies = policy.agencies if agencies is None else agencies
        while (review_on := self.next_review_on) is not None and review_on <= through:
            self._review(review_on, policy)

    def accruals_reversed_by(self, paid_on: date) -> tuple[int, date] | None:
        """For a payment dated ``paid_on``: the stored events its value-dating reads (the
        ``ChargesAccrued`` and ``PaymentReceived`` after seq n dated after d, as ``(n, d)``, and the
        events that posted litigation costs after d: ``value_dating.COST_EVENTS``), or ``None``
        when it is not value-dated."""
        if paid_on >= self.accrued_through:
            return None
        return self.last_reversal_seq, paid_on

    def record_payment(
        self, cmd: RecordPayment, policy: CollectionPolicy, agencies: Agencies | None = None, *, recorded: Iterable[Event] = ()
    ) -> list[Event]:
        """Accrue to the payment date, allocate the payment line by line, then cure or settle.

        A payment dated before the case's last accrual L is *value-dated*: recorded on L,
        it is applied as of its date v. The charges posted after v are reversed
        (``ChargesReversed``), the payment is allocated as of v, and the case is accrued
        again through L. v is never before the value date of a payment already recorded, so
        no payment is ever allocated again. ``recorded`` are the stored events
        ``accruals_reversed_by`` names (the accruals to reverse, the later-valued payments).

        A written-off case stays collectable: what it receives is a recovery, allocated as
        usual. While placed, the agency's commission accrues on what was received.
        """
        self._addressed(cmd)
        paid_on, amount, actor = cmd.received_on, cmd.amount, cmd.operator
        value_dating.check_backdating(self.case_id, paid_on, self.accrued_through, policy.backdating_days, cmd.backdate_reason)
        disbursed_on = self._opened.disbursed_on
        if paid_on < disbursed_on:
            raise DomainError(
                f"case {self.case_id}: payment dated {paid_on} is before the loan was disbursed on {disbursed_on}; "
                f"date it {disbursed_on} or later"
            )
        self._catch_up(paid_on - ONE_DAY, policy, agencies)
        if self.stage is Stage.SETTLED:  # checked after the catch-up, which may have settled the case
            raise DomainError(f"case {self.case_id}: is {self.stage.value}; it takes no more payments")
        recorded_on = max(paid_on, self.accrued_through)
        on = paid_on
        later_costs = ZERO  # litigation costs posted after the value date: not owed on it
        if paid_on < self.accrued_through:
            known = [*recorded, *self._pending]  # the pending ones are not stored yet
            on = value_dating.value_date(paid_on, known, self.last_reversal_seq)
            on = max(on, litigation.value_dating_floor(self.litigation, self.accrued_through))
            if self.stage.is_closed:  # a written-off case accrues nothing again: its recovery is applied as of the last accrual
                on = self.accrued_through
            later_costs = value_dating.costs_posted_after(on, known)
        if on < self.accrued_through:
            self._reverse_charges_after(on, [e for e in known if isinstance(e, ChargesAccrued)], recorded_on, cmd.payment_id)
        self._accrue(on, dated=recorded_on)
        owed = self.total_due(on) - later_costs
        if cmd.expect_total is not None and cmd.expect_total != owed:
            raise DomainError(
                f"case {self.case_id}: expect_total {cmd.expect_total} but the case owes {owed} "
                f"on {on}; nothing recorded (check the amount, or leave out expect_total)"
            )
        if self.promise is not None and on > self.promise.promised_on:
            self._close_promise(recorded_on)  # its date has passed: judged on what was paid by then
        payoff_interest = ZERO if self.stage.is_closed else self.accrued_contract_interest()
        # A payment that would clear all principal is a payoff: the contract interest accrued
        # so far falls due with it, or settling would forgive that interest.
        if payoff_interest > 0 and amount >= owed + self.principal_not_yet_due(on + ONE_DAY):
            self._post_payoff_interest(on, payoff_interest, dated=recorded_on)
        allocation = self._allocate(amount, on, policy.allocation_order, costs_held_back=later_costs)
        self._emit(
            PaymentReceived,
            recorded_on,
            actor,
            payment_id=cmd.payment_id,
            amount=amount,
            channel=cmd.channel.value,
            allocation_order=policy.allocation_order.value,
            lines=tuple(AllocatedLine(l.component.value, l.amount, l.installment) for l in allocation.lines),
            overpayment=allocation.overpayment,
            value_date=on if on != recorded_on else None,
            paid_on=paid_on if paid_on != recorded_on else None,
            backdate_reason=cmd.backdate_reason or None,
        )
        self._accrue_commission(recorded_on, actor, cmd.payment_id, amount - allocation.overpayment)
        if self.promise is not None:
            paid = self.total_paid - self.promise.paid_before
            if paid >= self.promise.amount:
                self._emit(PromiseKept, recorded_on, actor, promised_on=self.promise.promised_on, paid=paid)
        self._accrue(recorded_on, dated=recorded_on)  # a value-dated payment: the days after it again
        self._settle_or_cure(recorded_on, policy, actor)
        return self._take()

    def _reverse_charges_after(self, on: date, accruals: Iterable[ChargesAccrued], recorded_on: date, payment_id: str) -> None:
        """Take back the charges posted after ``on``, back to the last accrual on or before it."""
        effective = value_dating.in_effect_after(on, accruals, self.last_reversal_seq)
        back = value_dating.reversal(self.case_id, self._totals(), self.accrued_through, effective)
        totals = back.totals
        if accrual.follows_plan(self._opened):  # its period starts where the value date's period started
            due_on = {i.number: i.due_on for i in self.installments}
            totals = value_dating.with_period_start(self.case_id, back, effective, due_on, self.period_starts)
        self._emit(
            ChargesReversed, recorded_on, SYSTEM, value_date=on, reversed_seqs=back.reversed_seqs,
            accrued_through=back.accrued_through, lines=back.lines, totals=totals, charged=back.charged,
            unenforced=back.unenforced, payment_id=payment_id,
        )

    def make_promise(self, cmd: MakePromise, policy: CollectionPolicy, agencies: Agencies | None = None) -> list[Event]:
        self._addressed(cmd)
        made_on, promised_on = cmd.made_on, cmd.promised_on
        self._check_date(made_on, "promise", "made_on")
        self._catch_up(made_on - ONE_DAY, policy, agencies)
        self._require_open("take a promise to pay")
        if not 0 <= (promised_on - made_on).days <= policy.promise_max_days:
            raise DomainError(
                f"promised_on: {promised_on} must be between {made_on} and "
                f"{made_on + timedelta(days=policy.promise_max_days)} for case {self.case_id} "
                f"(a promise to pay is at most {policy.promise_max_days} days ahead)"
            )
        holds = self.broken_in_a_row < policy.broken_promises_to_skip_hold
        self._emit(PromiseMade, made_on, cmd.operator, amount=cmd.amount, promised_on=promised_on, holds_escalation=holds)
        return self._take()

    def pause(self, cmd: PauseCase, policy: CollectionPolicy, agencies: Agencies | None = None) -> list[Event]:
        self._addressed(cmd)
        made_on, until = cmd.made_on, cmd.until
        self._check_date(made_on, "pause", "made_on")
        self._catch_up(made_on - ONE_DAY, policy, agencies)
        self._require_open("pause")
        if not made_on < until <= made_on + timedelta(days=policy.max_pause_days):
            raise DomainError(
                f"until: {until} must be after {made_on} and no later than "
                f"{made_on + timedelta(days=policy.max_pause_days)} for case {self.case_id} "
                f"(a pause is at most {policy.max_pause_days} days)"
            )
        self._emit(CasePaused, made_on, cmd.operator, reason=cmd.reason.value, until=until)
        return self._take()

    def resume(self, cmd: ResumeCase) -> list[Event]:
        self._addressed(cmd)
        if self.paused_until is None:
            raise DomainError(f"case {self.case_id}: is not paused")
        self._check_date(cmd.made_on, "resume", "made_on")
        self._emit(CaseResumed, cmd.made_on, cmd.operator, reason="lifted by operator")
        return self._take()

    def write_off(self, cmd: WriteOff, policy: CollectionPolicy, agencies: Agencies | None = None) -> list[Event]:
        """An operator ends recovery (execution ended without recovery, or not worth pursuing)."""
        self._addressed(cmd)
        made_on = cmd.made_on
        self._check_date(made_on, "write-off", "made_on")
        self._catch_up(made_on - ONE_DAY, policy, agencies)
        self._require_open("write off")
        if self.stage is Stage.LITIGATION and (refusal := litigation.write_off_refusal(self.litigation)):
            raise DomainError(f"case {self.case_id}: not written off: {refusal}")
        self._accrue(made_on)
        self._transition("write_off", made_on, policy, cmd.operator, cmd.reason, by_operator=True)
        return self._take()

    def record_contact(
        self, cmd: RecordContact, timezone: str = DEFAULT_TIMEZONE, elsewhere: Sequence[contact.ContactState] = ()
    ) -> list[Event]:
        """Record a contact attempt, or its refusal under the conduct rules (DOMAIN.md §6).

        ``contacted_at`` is the borrower's local wall time, or a time with a UTC
        offset, read in the borrower's ``timezone`` first. ``elsewhere``: the
        contact states of the borrower's other loans, whose calls that day count
        against the same caps. A refused contact returns a ``ContactRefused``
        event (also recorded) instead of raising.
        """
        self._addressed(cmd)
        self._require_open("record a contact")
        at = contact.local_time(cmd.contacted_at, timezone)
        self._check_date(at.date(), "contact", "contacted_at")
        rule = contact.rule_broken(
            self.contact, cmd.channel, cmd.party, cmd.outcome, at, cmd.collectors,
            disclosed_debt=cmd.disclosed_debt, asked_to_pay=cmd.asked_to_pay,
            elsewhere=contact.borrower_day(elsewhere, at.date()) if elsewhere else None,
        )
        common = dict(
            channel=cmd.channel.value, party=cmd.party.value, by=cmd.by, contacted_at=at.isoformat(timespec="minutes"),
            disclosed_debt=cmd.disclosed_debt, asked_to_pay=cmd.asked_to_pay,
        )
        if rule:
            self._emit(ContactRefused, at.date(), cmd.operator, rule=rule, **common)
        else:
            self._emit(
                ContactRecorded, at.date(), cmd.operator, outcome=cmd.outcome.value, collectors=cmd.collectors,
                note=cmd.note, **common,
            )
        return self._take()

    def amend_borrower_details(
        self, changes: Sequence[DetailChange], on: date, *, actor: str, source: str = ""
    ) -> list[Event]:
        """Record changed contact details (masked; the store keeps the clear values encrypted)."""
        if not changes:
            raise DomainError(f"case {self.case_id}: an amendment needs at least one changed field")
        self._check_date(on, "amendment", "business_date")
        self._emit(BorrowerDetailsAmended, on, actor, changes=tuple(changes), source=source)
        return self._take()

    def record_personal_data_read(self, fields: Sequence[str], on: date, *, actor: str, purpose: str) -> list[Event]:
        """Record that ``actor`` read these personal fields in the clear, and why."""
        if not fields:
            raise DomainError(f"case {self.case_id}: name the personal fields read")
        if not actor.strip() or actor == SYSTEM:
            raise DomainError(f"case {self.case_id}: personal data is read by a named operator, got {actor!r}")
        self._check_date(on, "personal data read", "date")
        self._emit(PersonalDataRead, on, actor, fields=tuple(fields), purpose=purpose)
        return self._take()

    def report_visit(
        self, cmd: ReportVisit, policy: CollectionPolicy, agencies: Agencies | None = None, timezone: str = DEFAULT_TIMEZONE
    ) -> list[Event]:
        """Record a field visit by two collectors or more (DOMAIN.md §6); a failed one schedules the next.

        ``visited_at`` is the borrower's local wall time, or a time with a UTC offset, read in the
        borrower's ``timezone`` first (as a contact's)."""
        self._addressed(cmd)
        at = contact.local_time(cmd.visited_at, timezone)
        self._check_date(at.date(), "visit", "visited_at")
        self._catch_up(at.date() - ONE_DAY, policy, agencies)
        self._require_open("report a visit")
        collectors = tuple(cmd.collectors.split(","))
        if len(collectors) < contact.COLLECTORS_ON_A_VISIT:
            raise DomainError(
                f"collectors: a field visit needs at least {contact.COLLECTORS_ON_A_VISIT} collectors, got {', '.join(collectors)} (case {self.case_id})"
            )
        if contact.in_quiet_hours(at):
            raise DomainError(f"visited_at: no visit between 22:00 and 08:00 borrower local time, got {at:%H:%M} (case {self.case_id})")
        self._emit(VisitReported, at.date(), cmd.operator, collectors=collectors, outcome=cmd.outcome.value,
                   visited_at=at.isoformat(timespec="minutes"), note=cmd.note)
        if cmd.outcome.failed and self.stage is Stage.VISIT:
            self._emit(VisitScheduled, at.date(), SYSTEM, due_on=at.date() + timedelta(days=policy.visit_due_days))
        return self._take()

    def record_rebuild(self, on: date, *, actor: str, reason: str) -> list[Event]:
        """Record that ``actor`` rebuilt this case's row from its events, and why."""
        if actor == SYSTEM:
            raise DomainError(f"case {self.case_id}: a rebuild is recorded with the operator who ran it")
        self._emit(CaseRebuilt, max(on, self.accrued_through), actor, reason=reason)
        return self._take()

    def collect_events(self) -> list[Event]:
        """Every event recorded since the last collection, in order, and forget them."""
        events, self._pending, self._returned = self._pending, [], 0
        return events

    # ------------------------------------------------------------------
    # the daily review

    def _review(self, on: date, policy: CollectionPolicy) -> None:
        if self.stage.is_closed:  # a written-off case placed for recovery: only its placement can end
            self._end_placement(on)
            self._emit(CaseReviewed, on, SYSTEM, dpd=self.dpd(on), next_review_on=self._compute_next_review(on, policy))
            return
        self._accrue(on)
        if self.promise is not None and on > self.promise.promised_on:
            self._close_promise(on)
        if self.paused_until is not None and on >= self.paused_until:
            self._emit(CaseResumed, on, SYSTEM, reason="pause expired")
        self._end_placement(on)
        if not self._settle_or_cure(on, policy, SYSTEM):
            if self.stage is Stage.CURRENT:
                self._transition("fall_overdue", on, policy, SYSTEM, "payment missed")
            while self.stage in _ESCALATING and (
                self._transition("escalate", on, policy, SYSTEM, "threshold reached", quiet=True)
            ):
                pass
            if self.stage in _WRITTEN_OFF_FROM:
                self._transition("write_off", on, policy, SYSTEM, "recovery not worth pursuing", quiet=True)
            if self.stage is Stage.OUTSOURCED and self.agency_id is None and self._placement_due(on):
                self._place(on, policy)  # renewed with another agency
        self._report_credit(on, policy)
        self._emit(CaseReviewed, on, SYSTEM, dpd=self.dpd(on), next_review_on=self._compute_next_review(on, policy))

    def _close_promise(self, on: date) -> None:
        """The day after its date a promise is kept if paid in full by then, else broken."""
        paid = self.total_paid - self.promise.paid_before
        if paid >= self.promise.amount:
            self._emit(PromiseKept, on, SYSTEM, promised_on=self.promise.promised_on, paid=paid)
        else:
            self._emit(
                PromiseBroken, on, SYSTEM, promised_on=self.promise.promised_on, paid=paid,
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
        override: tuple[str, str] = ("", ""),
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
            self._file_lawsuit(on, policy, facts.claim, actor, override)
        if target is Stage.WRITTEN_OFF:
            self._recall(on, actor, "written off")
            self._emit(CaseWrittenOff, on, actor, reason=reason, amount=facts.claim)
        self._emit(
            StageChanged, on, actor, from_stage=self.stage.value, to_stage=target.value, trigger=trigger,
            reason=reason, dpd=facts.dpd,
        )
        if target is Stage.OUTSOURCED:
            self._place(on, policy)
        if target is Stage.VISIT:
            self._emit(VisitScheduled, on, SYSTEM, due_on=on + timedelta(days=policy.visit_due_days))
        if target.is_closed:
            self._report_month(on)  # a closed case never changes again: its month-end record is known now
        if target is Stage.WRITTEN_OFF and isinstance(self._agencies, AgencyBoard):
            self._place(on, policy)  # a written-off case stays collectable, at the written-off rate
        return True

    # ------------------------------------------------------------------
    # credit reporting (the rules are in states.credit)

    def _report_credit(self, on: date, policy: CollectionPolicy) -> None:
        """At a review: the pre-notice when the case is first found in default; on a month end, its record."""
        if credit.notice_due(self.credit, self.stage):
            days = policy.credit_report_notice_days
            self._emit(CreditReportNoticeSent, on, SYSTEM, notice_days=days, first_report_on=credit.first_report_on(on, days))
        if on == month_end(on):
            self._report_month(on)

    def _report_month(self, on: date) -> None:
        """The record of ``on``'s month, if the case owes one, with its figures as of the month end."""
        end = month_end(on)
        if credit.record_owed(end, self.stage, self.credit):
            record = credit.month_end_record(
                self.contract_no, end, self.stage, self.dpd(end), self.overdue_principal(end), self.overdue_total(end)
            )
            self._emit(MonthEndReported, on, SYSTEM, month_end=end, record=record, default_ended_on=self.credit.default_ended_on)

    # ------------------------------------------------------------------
    # accrual (the arithmetic is in states.accrual)

    def _accrue(self, through: date, *, dated: date | None = None) -> None:
        """Accrue to ``through``, cutting at every due date on the way (balances change there).

        The events are dated ``through``, or ``dated`` when a value-dated payment re-posts past days."""
        stops = [i.due_on for i in self.installments if self.accrued_through < i.due_on < through]
        for stop in (*stops, through):
            start = self.accrued_through
            if stop <= start or self.stage.is_closed:
                continue
            first_day = start + ONE_DAY
            balances = Balances(
                self.principal_not_yet_due(stop),
                self.overdue_principal(first_day),
                self.overdue_interest(first_day),
                self.principal_outstanding(),
            )
            charges = accrual.stretch_charges(
                self._opened, self.day_count, balances, self.installments, self._totals(), start, stop
            )
            self._emit_charges(start, stop, charges, dated)
            self._accrue_delayed_interest(start, stop)

    def _accrue_delayed_interest(self, start: date, through: date) -> None:
        """Delayed-performance interest over (start, through], outside the cap (``states.litigation``)."""
        stretch = litigation.delayed_interest(self.litigation, start, through)
        if stretch is not None:
            posting = ChargePosting(litigation.DELAYED_INTEREST, stretch.amount, stretch.amount, ZERO, litigation.DELAYED_INTEREST_RULE)
            self._emit(
                DelayedPerformanceInterestAccrued, through, SYSTEM, accrued_from=start, through=through, base=stretch.base,
                daily_rate=DELAYED_PERFORMANCE_DAILY_RATE, start=stretch.start, days=stretch.days, exact=stretch.exact,
                postings=(posting,),
            )

    def _post_payoff_interest(self, on: date, amount: Decimal, *, dated: date | None = None) -> None:
        """A payoff brings forward the contract interest accrued in the current period."""
        upcoming = next(i for i in self.installments if i.due_on > on)
        charges = accrual.payoff_interest(self._opened, self.day_count, self._totals(), amount, upcoming.number)
        self._emit_charges(on, on, charges, dated)

    def _totals(self) -> Totals:
        return Totals(self.principal_days, self.computed, self.charged, self.unenforced)

    def _emit_charges(self, start: date, through: date, charges: accrual.Charges, dated: date | None = None) -> None:
        self._emit(
            ChargesAccrued, max(through, dated or through), SYSTEM, accrued_from=start, through=through, segments=charges.segments,
            postings=charges.postings, cap_rate=self.cap_rate, cap_limit=charges.cap_limit, charged_before=self.charged,
            released=charges.released,
        )

    # ------------------------------------------------------------------
    # event plumbing

    def _addressed(self, cmd: CaseCommand) -> None:
        if cmd.case not in (self.case_id, self.contract_no):
            raise DomainError(f"case {self.case_id}: the command is for case {cmd.case!r}")

    def _check_date(self, on: date, what: str, field: str) -> None:
        """Nothing is dated before the case's last close; the refusal names the command's ``field`` that gave ``on``."""
        if on < self.accrued_through:
            raise DomainError(
                f"{field}: {what} dated {on} is before the case's last closed date "
                f"{self.accrued_through}; date it {self.accrued_through} or later (case {self.case_id})"
            )

    def _require_open(self, action: str) -> None:
        if self.stage.is_closed:
            raise DomainError(f"case {self.case_id}: is {self.stage.value}; cannot {action}")

    def _emit(self, cls: type[Event], on: date, actor: str, **payload: Any) -> Event:
        event = cls(case_id=self.case_id, seq=self.version + 1, business_date=on, actor=actor, **payload)
        return self._record(event)

    def _record(self, event: Event) -> Event:
        self.apply(event)
        self._pending.append(event)
        return event

    def _take(self) -> list[Event]:
        """The events recorded since a command last returned (they stay pending until collected).

        A command the rules refuse may already have closed the reviews it
        caught up on; those events happened all the same, and the next
        command returns them with its own.
        """
        events = self._pending[self._returned:]
        self._returned = len(self._pending)
        self._let_go_of_rows()
        return events
