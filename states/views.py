"""What is read of a case: its projection (the case row) and its view as of a date.

``BALANCE_FIELDS`` is the one list of a case's balances, in the order people
read them; the timeline, the audit and the reports all take it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from states.contact import LastContact
from states.delinquency import bucket_for, classification_for, days_past_due

# The amounts owed, paid and set aside, leg by leg (each a Decimal of the projection).
AMOUNT_FIELDS = (
    "principal_outstanding",
    "overdue_principal",
    "contract_interest_due",
    "penalty_interest",
    "compound_interest",
    "late_fees",
    "costs",
    "delayed_interest",
    "total_due",
    "unenforceable",
    "total_paid",
    "overpayment",
)
BALANCE_FIELDS = ("stage", "dpd", *AMOUNT_FIELDS)  # what each timeline row shows after its event


@dataclass(frozen=True)
class CaseProjection:
    """The case row: what the store keeps beside the events, and what replay must reproduce."""

    case_id: str
    contract_no: str
    stage: str
    # The due date of the oldest installment not paid in full (None: nothing left to pay). Unlike a
    # DPD it never goes stale with the calendar: DPD, bucket and class are computed as of a date.
    oldest_unpaid_due_on: date | None
    principal_outstanding: Decimal
    overdue_principal: Decimal
    contract_interest_due: Decimal
    penalty_interest: Decimal
    compound_interest: Decimal
    late_fees: Decimal
    costs: Decimal
    delayed_interest: Decimal  # delayed-performance interest due after a judgment (outside the cap)
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

    def dpd(self, as_of: date) -> int:
        """Days past due as of ``as_of`` (the case's figures otherwise as projected)."""
        return days_past_due(self.oldest_unpaid_due_on, as_of)

    def bucket(self, as_of: date) -> str:
        return bucket_for(self.dpd(as_of)).value

    def classification(self, as_of: date) -> str:
        return classification_for(self.dpd(as_of)).value


@dataclass(frozen=True)
class CaseView:
    """A case valued as of a date: the projection, contract interest accrued but not yet due,
    and what a collector needs before calling (the promise, the pause, the agency, the last contact)."""

    as_of: date
    projection: CaseProjection
    contract_interest_accrued: Decimal
    promise_amount: Decimal | None = None  # pending promise to pay, due by ``projection.promise_until``
    pause_reason: str | None = None  # paused until ``projection.paused_until``
    placement_until: date | None = None  # placed with ``projection.agency_id`` until then
    last_contact: LastContact | None = None

    @property
    def payoff(self) -> Decimal:
        """What settles the loan on ``as_of``: all that is due, the principal not yet due, and the
        contract interest accrued so far (a payoff brings it forward)."""
        p = self.projection
        return p.total_due + p.principal_outstanding - p.overdue_principal + self.contract_interest_accrued

    def payoff_quote(self) -> dict[str, str]:
        """What settles the loan on ``as_of``, component by component (costs first, as a payment is
        allocated), with what the legal cap keeps out; ``total`` is ``payoff``."""
        p = self.projection
        parts = {
            "costs": p.costs,
            "delayed_performance_interest": p.delayed_interest,
            "penalty_interest": p.penalty_interest,
            "compound_interest": p.compound_interest,
            "late_fees": p.late_fees,
            "contract_interest_due": p.contract_interest_due,
            "contract_interest_accrued": self.contract_interest_accrued,
            "principal": p.principal_outstanding,
        }
        return {
            "case_id": p.case_id,
            "contract_no": p.contract_no,
            "on": self.as_of.isoformat(),
            **{name: str(amount) for name, amount in parts.items()},
            "unenforceable_not_charged": str(p.unenforceable),
            "total": str(self.payoff),
        }

    def as_dict(self) -> dict[str, object]:
        p = self.projection
        amounts: dict[str, str] = {}
        for name in AMOUNT_FIELDS:
            amounts[name] = str(getattr(p, name))
            if name == "contract_interest_due":  # what has accrued is read beside what is already due
                amounts["contract_interest_accrued"] = str(self.contract_interest_accrued)
        last = self.last_contact
        return {
            "case_id": p.case_id,
            "contract_no": p.contract_no,
            "as_of": self.as_of.isoformat(),
            "stage": p.stage,
            "dpd": p.dpd(self.as_of),
            "bucket": p.bucket(self.as_of),
            "classification": p.classification(self.as_of),
            **amounts,
            "next_review_on": _iso(p.next_review_on),
            "promise_amount": None if self.promise_amount is None else str(self.promise_amount),
            "promise_until": _iso(p.promise_until),
            "pause_reason": self.pause_reason,
            "paused_until": _iso(p.paused_until),
            "agency_id": p.agency_id,
            "placement_until": _iso(self.placement_until),
            "last_contact_at": None if last is None else last.at.isoformat(timespec="minutes"),
            "last_contact_channel": None if last is None else last.channel.value,
            "last_contact_party": None if last is None else last.party.value,
            "last_contact_outcome": None if last is None else last.outcome.value,
        }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
