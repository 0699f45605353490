"""A case in court and with agencies: the operator's litigation and recall commands, and the steps
the review takes to file, place and recall (the rules are in ``states.litigation`` and
``states.agency``; the events they record are applied by ``states.case_state``).

``CourtAndAgencies`` is part of ``CollectionCase`` (``states.case``), whose plumbing it uses
(``_emit``, ``_catch_up``, ``_accrue``, ``_transition``); it holds no state of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from states import agency as agency_rules
from states import litigation
from states.accrual import ONE_DAY
from states.agency import AgencyBoard
from states.case_state import COSTS
from states.commands import EnterJudgment, FileLawsuit, RecallFromAgency, RecordExecution
from states.court_fees import litigation_costs
from states.delinquency import bucket_for
from states.errors import DomainError
from states.events import (
    SYSTEM,
    ChargePosting,
    CommissionAccrued,
    Event,
    ExecutionRecorded,
    JudgmentEntered,
    LawsuitFiled,
    PlacedWithAgency,
    PlacementDeferred,
    RecalledFromAgency,
)
from states.lifecycle import COLLECTION_STAGES, Stage
from states.money import ZERO
from states.policy import CollectionPolicy

#: What a placement chooses from: the registry's board for the business date, or (no registry in
#: use) the policy's list of agency ids in rotation.
Agencies = AgencyBoard | Sequence[str]


class CourtAndAgencies:
    """The litigation and agency part of ``CollectionCase``."""

    # ------------------------------------------------------------------
    # the operator's commands

    def file_lawsuit(self, cmd: FileLawsuit, policy: CollectionPolicy) -> list[Event]:
        """An operator files outside the automatic rule (from any collection stage); refused when
        suing is not worth it, unless the command gives an override reason, recorded with the lawsuit."""
        self._addressed(cmd)
        on = cmd.filed_on
        self._check_date(on, "lawsuit", "filed_on")
        self._catch_up(on - ONE_DAY, policy)
        self._require_open("file a lawsuit")
        if self.stage is Stage.LITIGATION:
            raise DomainError(f"case {self.case_id}: a lawsuit is already filed (the case is in litigation)")
        if self.stage not in COLLECTION_STAGES:
            raise DomainError(f"case {self.case_id}: is {self.stage.value}; a lawsuit is filed from a collection stage ({', '.join(s.value for s in COLLECTION_STAGES)})")
        if self.paused_until is not None:
            raise DomainError(f"case {self.case_id}: is paused until {self.paused_until} ({self.pause_reason}); resume it before filing")
        self._accrue(on)
        claim = self.total_owing()
        refusal = litigation.not_worth_suing(claim, litigation.expected_legal_cost(claim), policy)
        if refusal and cmd.override is None:
            raise DomainError(
                f"case {self.case_id}: lawsuit not filed: {refusal}; give an override reason (--override REASON) to file anyway; it is recorded"
            )
        self._recall(on, cmd.operator, "lawsuit filed")
        override = (refusal, cmd.override) if refusal else ("", "")
        self._transition("file_lawsuit", on, policy, cmd.operator, cmd.override or "filed by an operator", by_operator=True, override=override)
        return self._take()

    def enter_judgment(self, cmd: EnterJudgment, policy: CollectionPolicy) -> list[Event]:
        """Record the judgment; delayed-performance interest runs from the day after its deadline."""
        self._addressed(cmd)
        on = cmd.entered_on
        self._check_date(on, "judgment", "entered_on")
        self._catch_up(on - ONE_DAY, policy)
        self._require_open("enter a judgment")
        refusal = litigation.judgment_refusal(self.stage is Stage.LITIGATION, self.litigation, cmd.amount)
        if refusal:
            raise DomainError(f"case {self.case_id}: judgment not entered: {refusal}")
        self._accrue(on)
        self._emit(JudgmentEntered, on, cmd.operator, amount=cmd.amount, deadline=cmd.deadline, court=cmd.court, case_number=cmd.case_number)
        return self._take()

    def record_execution(self, cmd: RecordExecution, policy: CollectionPolicy) -> list[Event]:
        """Record how execution ended and post the execution fee (DOMAIN.md §5) as a cost."""
        self._addressed(cmd)
        on = cmd.recorded_on
        self._check_date(on, "execution", "recorded_on")
        self._catch_up(on - ONE_DAY, policy)
        self._require_open("record an execution")
        refusal = litigation.execution_refusal(self.stage is Stage.LITIGATION, self.litigation, on)
        if refusal:
            raise DomainError(f"case {self.case_id}: execution not recorded: {refusal}")
        self._accrue(on)  # delayed-performance interest posted through that day first
        fee, rule = litigation.execution_costs(self.litigation)
        self._emit(
            ExecutionRecorded, on, cmd.operator, outcome=cmd.outcome.value, judgment_debt=self.litigation.unpaid_debt,
            costs=(ChargePosting(COSTS, fee, fee, ZERO, rule),),
        )
        return self._take()

    def recall(self, cmd: RecallFromAgency, policy: CollectionPolicy, agencies: Agencies | None = None) -> list[Event]:
        """An operator recalls the case from its agency; an outsourced or written-off case goes to
        another agency at once (or is tried again later when none has room)."""
        self._addressed(cmd)
        made_on = cmd.made_on
        self._check_date(made_on, "recall", "made_on")
        self._catch_up(made_on - ONE_DAY, policy, agencies)
        if self.agency_id is None:
            raise DomainError(f"case {self.case_id}: is not placed with an agency; nothing to recall")
        self._recall(made_on, cmd.operator, f"by operator: {cmd.reason}")
        if self.stage is Stage.OUTSOURCED or (self.stage is Stage.WRITTEN_OFF and isinstance(self._agencies, AgencyBoard)):
            self._place(made_on, policy)
        return self._take()

    # ------------------------------------------------------------------
    # the steps the review and the commands take

    def _recall(self, on: date, actor: str, reason: str) -> None:
        if self.agency_id is not None:
            recalled = self._emit(RecalledFromAgency, on, actor, agency_id=self.agency_id, reason=reason)
            if isinstance(self._agencies, AgencyBoard):
                self._agencies = self._agencies.after([recalled])

    def _end_placement(self, on: date) -> None:
        """A placement ends on its date unless renewed (it is renewed by placing the case again)."""
        if self.placement_until is not None and on >= self.placement_until:
            self._recall(on, SYSTEM, "placement ended")

    def _placement_due(self, on: date) -> bool:
        """An unplaced outsourced case is placed at a review, unless a deferred placement's retry date is ahead."""
        return self.placement_retry_on is None or on >= self.placement_retry_on

    def _accrue_commission(self, on: date, actor: str, payment_id: str, recovered: Decimal) -> None:
        """While placed, the agency earns its commission on what was received (the lender's cost)."""
        if self.agency_id is None or self.commission_rate is None or recovered <= 0:
            return
        self._emit(
            CommissionAccrued, on, actor, agency_id=self.agency_id, payment_id=payment_id, placed_seq=self.placement_seq,
            recovered=recovered, commission_rate=self.commission_rate,
            commission=agency_rules.commission(recovered, self.commission_rate),
        )

    def _file_lawsuit(self, on: date, policy: CollectionPolicy, claim: Decimal, actor: str, override: tuple[str, str]) -> None:
        """Post the filing costs; ``override``: the rule's refusal an operator filed against, and why."""
        costs = litigation_costs(claim)
        lines = [("acceptance fee", costs.acceptance), ("preservation fee", costs.preservation)]
        if policy.attorney_fee_recoverable:
            lines.append(("attorney fee", costs.attorney))
        postings = tuple(ChargePosting(COSTS, amount, amount, ZERO, rule) for rule, amount in lines)
        overridden, reason = override
        self._emit(LawsuitFiled, on, actor, claim=claim, costs=postings, overridden=overridden, override_reason=reason)

    def _place(self, on: date, policy: CollectionPolicy) -> None:
        """Place the case with an agency (DOMAIN.md §7): the board's choice, or the policy's rotation.

        With a registry (an ``AgencyBoard``) the case's strategy chooses among the active
        agencies with room, another than the last where it can; none with room defers the
        placement by ``placement_retry_days``. Without one, a hash of the case id and its
        placements picks from the agency ids at the policy's rates (the rule before the registry).
        """
        agencies = policy.agencies if self._agencies is None else self._agencies
        dpd = self.dpd(on)
        bucket = bucket_for(dpd)
        group = agency_rules.rate_group(bucket, self.stage is Stage.WRITTEN_OFF)
        if isinstance(agencies, AgencyBoard):
            choice = agencies.choose(self.case_id, group, avoid=self.last_agency_id)
            if choice is None:
                retry_on = on + timedelta(days=policy.placement_retry_days)
                self._emit(PlacementDeferred, on, SYSTEM, reason="no active agency has room", retry_on=retry_on)
                return
            agency, strategy, rate = choice.agency, choice.strategy, choice.commission_rate
        else:
            digest = hashlib.sha256(f"{self.case_id}:{self.placements}".encode()).digest()
            agency = agencies[int.from_bytes(digest[:4], "big") % len(agencies)]
            strategy, rate = agency_rules.ROTATION, policy.commission_rates[group]
        placed = self._emit(
            PlacedWithAgency, on, SYSTEM, agency_id=agency, until=on + timedelta(days=policy.placement_days),
            commission_rate=rate, strategy=strategy, bucket=bucket.value, rate_group=group,
            balance_placed=self.total_owing(),
        )
        if isinstance(agencies, AgencyBoard):
            self._agencies = agencies.after([placed])
