"""What a case owes and has been owed, read from its state (``CaseState``'s figures).

Every figure is computed from the state and never changes it: the
installments' rows (worked out once per state and kept until an installment
changes: ``_rows``), principal and interest past due, DPD, the dues payable on
a date, the overdue amount, what settles the loan, the plan, the accrued
contract interest and the projection the case row keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from states import accrual, cap_ledger
from states.accrual import COMPOUND, CONTRACT, LATE_FEE, ONE_DAY, PENALTY, PERIOD_START
from states.allocation import Component, Due
from states.delinquency import days_past_due, oldest_unpaid_before, unpaid_before
from states.errors import DomainError
from states.events import CaseOpened
from states.money import ZERO, round_fen
from states.views import CaseProjection

if TYPE_CHECKING:
    from states.case_state import InstallmentState

COSTS = Component.COSTS.value
PRINCIPAL = Component.PRINCIPAL.value
_OWING = "owing"  # the key of a figure kept per state (``total_owing``)
Row = tuple[date, Decimal, Decimal, Decimal, Decimal]  # (due_on, unpaid, principal_unpaid, interest_unpaid, late_fee_unpaid)


class CaseFigures:
    """The figures of ``CaseState`` (a mixin: the state's attributes are set by ``CaseState.__init__``)."""

    installments: list[InstallmentState]
    _kept_rows: tuple[Row, ...] | None
    _figures: dict | None

    @property
    def unenforceable(self) -> dict[str, Decimal]:
        """What the cap holds back now, per component (charged later if the limit grows)."""
        return cap_ledger.totals_by_component(self.unenforced)

    @property
    def penalty_rate(self) -> Decimal:
        return accrual.penalty_rate(self._opened.annual_rate, self._opened.penalty_uplift)

    @property
    def _opened(self) -> CaseOpened:
        if self.terms is None:
            raise DomainError(f"case {self.case_id}: not opened")
        return self.terms

    def _rows(self) -> tuple[tuple[date, Decimal, Decimal, Decimal, Decimal], ...]:
        """``(due_on, unpaid, principal_unpaid, interest_unpaid, late_fee_unpaid)`` of every installment, in order.

        A review reads these figures dozens of times (dues, DPD, the guards' facts, the next
        review, the projection saved), and an installment changes only where a handler
        charges it (``_charge``) or pays it (``_on_PaymentReceived``), or opens the case:
        they are worked out once and kept until then (``_installments_changed``).
        """
        rows = self._kept_rows
        if rows is None:
            rows = self._kept_rows = tuple([i.row() for i in self.installments])
        return rows

    def _installments_changed(self) -> None:
        """An installment's figures changed: what ``_rows`` kept is worked out again."""
        self._kept_rows = None

    def _let_go_of_rows(self) -> None:
        """A command is done: what ``_rows`` kept is let go (a batch holds thousands of cases until it
        is saved; kept, the rows' Decimals would cost ~6 KB a case)."""
        self._kept_rows = None

    def _forget_figures(self) -> None:
        """The state was set other than by ``apply`` (a snapshot read back): work the figures out again."""
        self._figures = {}
        self._kept_rows = None

    def principal_outstanding(self) -> Decimal:
        return sum((principal for _, _, principal, _, _ in self._rows()), ZERO)

    def overdue_principal(self, as_of: date) -> Decimal:
        """Principal past its due date on day ``as_of`` (due_on < as_of)."""
        return sum((principal for due_on, _, principal, _, _ in self._rows() if due_on < as_of), ZERO)

    def principal_not_yet_due(self, day: date) -> Decimal:
        """Principal still earning contract interest on ``day`` (due_on >= day)."""
        return sum((principal for due_on, _, principal, _, _ in self._rows() if due_on >= day), ZERO)

    def overdue_interest(self, as_of: date) -> Decimal:
        """Contract interest past its due date on ``as_of`` and unpaid: what compound interest accrues on.

        It counts the contract interest the cap holds back for now: the contract computes it, only
        the total of the charges is capped, and so the compound interest does not depend on the
        days the case was reviewed on (a held-back amount is charged, later, on whichever review).
        """
        held = ZERO
        if self.unenforced:
            overdue = {i.number for i in self.installments if i.due_on < as_of}
            held = sum((lot.amount for lot in self.unenforced if lot.component == CONTRACT and lot.installment in overdue), ZERO)
        return sum((interest for due_on, _, _, interest, _ in self._rows() if due_on < as_of), ZERO) + held

    def oldest_unpaid_due(self, as_of: date) -> date | None:
        return oldest_unpaid_before(self._rows(), as_of)

    def dpd(self, as_of: date) -> int:
        return days_past_due(self.oldest_unpaid_due(as_of), as_of)

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
                (PRINCIPAL, inst.principal_unpaid),
            ):
                if amount > 0:
                    dues.append(Due(Component(component), amount, inst.due_on, inst.number))
        return dues

    def total_due(self, as_of: date) -> Decimal:
        """The sum of ``dues(as_of)``, without building them."""
        installments = sum((unpaid for due_on, unpaid, _, _, _ in self._rows() if due_on <= as_of), ZERO)
        return installments + self.costs_due + self.penalty_due + self.compound_due + self.litigation.interest_due

    def overdue_total(self, as_of: date) -> Decimal:
        """Amounts past their due date on ``as_of`` (case-level dues always count)."""
        figures = self._figures
        if figures is not None and (overdue := figures.get(as_of)) is not None:  # kept by its date
            return overdue
        overdue = unpaid_before(self._rows(), as_of) + self.case_dues
        if figures is not None:
            figures[as_of] = overdue
        return overdue

    @property
    def case_dues(self) -> Decimal:
        """What is due on the case as a whole, outside its installments: penalty and compound
        interest, litigation costs, delayed-performance interest (always past due once charged)."""
        return self.penalty_due + self.compound_due + self.costs_due + self.litigation.interest_due

    def total_owing(self) -> Decimal:
        figures = self._figures
        if figures is not None and (owing := figures.get(_OWING)) is not None:
            return owing
        owing = sum((unpaid for _, unpaid, _, _, _ in self._rows()), ZERO) + self.penalty_due + self.compound_due + self.costs_due
        owing += self.litigation.interest_due
        if figures is not None:
            figures[_OWING] = owing
        return owing

    def plan(self) -> list[dict[str, object]]:
        """The repayment plan as the contract states it, with what each installment has had paid."""
        rows = []
        for i in self.installments:
            total = i.principal + i.scheduled_interest
            paid = i.principal_paid + i.interest_paid
            rows.append({
                "installment": i.number, "due_on": i.due_on.isoformat(), "principal": str(i.principal),
                "interest": str(i.scheduled_interest), "total": str(total), "paid": str(paid), "unpaid": str(total - paid),
            })
        return rows

    def plan_basis(self) -> str:
        """Where the plan comes from: as imported, or computed (by which convention)."""
        terms = self._opened
        if terms.plan_imported:
            return "plan as imported from the core lending system"
        return (
            f"computed by collectflow from the contract terms ({terms.repayment_method}, "
            f"{terms.schedule_interest} interest, {terms.day_count})"
        )

    def accrued_contract_interest(self) -> Decimal:
        """Contract interest accrued through ``accrued_through`` but not yet posted as due."""
        if accrual.follows_plan(self._opened):  # the plan's interest for the days of the period so far
            upcoming = next((i for i in self.installments if i.due_on > self.accrued_through), None)
            if upcoming is None:
                return ZERO
            so_far = self.principal_days[CONTRACT] - self.principal_days.get(PERIOD_START, ZERO)
            return accrual.plan_interest(self._opened, upcoming.number, so_far)
        exact = self._opened.annual_rate * self.principal_days[CONTRACT] / self.day_count.basis
        return round_fen(exact) - self.computed[CONTRACT]

    def installment_rows(self) -> Sequence[tuple[date, Decimal, Decimal, Decimal, Decimal]]:
        """``_rows`` as they stand, not kept: what a save reads once for the projection and the call-list facts."""
        return self._kept_rows or [i.row() for i in self.installments]  # for every case saved, after its command: not kept

    def projection(self, rows: Sequence[tuple[date, Decimal, Decimal, Decimal, Decimal]] | None = None) -> CaseProjection:
        """The case row's figures; ``rows``: ``installment_rows()`` if the caller has them already."""
        as_of = self.accrued_through
        oldest_unpaid: date | None = None
        principal = due_principal = interest = late_fees = due_installments = ZERO
        if rows is None:
            rows = self.installment_rows()
        for due_on, unpaid, principal_unpaid, interest_unpaid, late_fee_unpaid in rows:
            if oldest_unpaid is None and unpaid > 0:
                oldest_unpaid = due_on
            principal += principal_unpaid
            interest += interest_unpaid
            late_fees += late_fee_unpaid
            if due_on <= as_of:
                due_principal += principal_unpaid
                due_installments += unpaid
        return CaseProjection(
            case_id=self.case_id,
            contract_no=self.contract_no,
            stage=self.stage.value,
            oldest_unpaid_due_on=oldest_unpaid,
            principal_outstanding=principal,
            overdue_principal=due_principal,
            contract_interest_due=interest,
            penalty_interest=self.penalty_due,
            compound_interest=self.compound_due,
            late_fees=late_fees,
            costs=self.costs_due,
            delayed_interest=self.litigation.interest_due,
            total_due=due_installments + self.costs_due + self.penalty_due + self.compound_due + self.litigation.interest_due,
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
