"""The demo's court work: the operator follows defaulters' cases through court, deterministically.

For each ``defaulter`` borrower of the synthetic book, the demo's operator
looks at the case every ``STEP_DAYS`` from DPD ``SUE_AT_DPD`` on (``court_days``)
and does the next thing the case is ready for (``court_step``):

- outsourced and not sued: files a lawsuit before the automatic rule's DPD 181
  (``collectflow lawsuit file``); a claim the decision rule finds not worth
  suing is refused, and the refusal is counted;
- in litigation without a judgment: enters the judgment, the money debt
  owing (costs excluded) with a performance deadline ``DEADLINE_DAYS`` ahead;
- ``EXECUTION_AFTER_DAYS`` past the deadline: records the execution, its
  outcome drawn from a hash of the case id (a third each): ``recovered``
  (the borrower pays everything: settled), ``partial`` (half the judgment
  debt is paid), ``no_assets`` (the case is written off).

Nothing here is random: the same book gives the same court work. It uses
the same commands and domain methods as the CLI and the deployments.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from flows import simulation
from states.case import CollectionCase
from states.commands import EnterJudgment, FileLawsuit, RecordExecution, RecordPayment, WriteOff
from states.events import Event
from states.lifecycle import Stage
from states.litigation import ExecutionOutcome
from states.money import round_fen

SUE_AT_DPD = 120
STEP_DAYS = 5
DEADLINE_DAYS = 15
EXECUTION_AFTER_DAYS = 20
COURT = "demo"  # the action's name in the simulation's plan
OUTCOMES = (ExecutionOutcome.RECOVERED, ExecutionOutcome.PARTIAL, ExecutionOutcome.NO_ASSETS)


def court_days(borrowers: list[simulation.Borrower], start: date, days: int) -> dict[date, list[tuple[str, object]]]:
    """The days the operator looks at each defaulter's case, from DPD 120 to the demo's end."""
    end = start + timedelta(days=days)
    plan: dict[date, list[tuple[str, object]]] = {}
    for b in borrowers:
        dues = [i.due_on for i in b.terms.schedule]
        paid = sum(len(actions) for actions in b.plan.values())  # a defaulter pays its first few installments
        if b.profile != "defaulter" or paid >= len(dues):
            continue
        day = dues[paid] + timedelta(days=SUE_AT_DPD)
        while day < end:
            if day >= start:
                plan.setdefault(day, []).append((b.case_id, COURT))
            day += timedelta(days=STEP_DAYS)
    return plan


def outcome_of(case_id: str) -> ExecutionOutcome:
    return OUTCOMES[hashlib.sha256(case_id.encode()).digest()[0] % len(OUTCOMES)]


def court_step(case: CollectionCase, day: date, policy, actor: str) -> list[Event]:
    """The next step of the case through court on ``day`` (none when it is not ready for one)."""
    ref = dict(case=case.case_id, operator=actor)
    if case.stage.is_closed:
        return []
    if case.stage is Stage.OUTSOURCED:
        return case.file_lawsuit(FileLawsuit(**ref, filed_on=day), policy)
    if case.stage is not Stage.LITIGATION:
        return []
    judgment = case.litigation.judgment
    if judgment is None:
        view = case.view(day, policy)
        debt = view.payoff - view.projection.costs  # the money debt owing, costs excluded
        cmd = EnterJudgment(**ref, amount=debt, deadline=day + timedelta(days=DEADLINE_DAYS), entered_on=day, court="demo people's court")
        return case.enter_judgment(cmd, policy)
    if case.litigation.execution is not None or day < judgment.deadline + timedelta(days=EXECUTION_AFTER_DAYS):
        return []
    outcome = outcome_of(case.case_id)
    events = case.record_execution(RecordExecution(**ref, outcome=outcome, recorded_on=day), policy)
    if outcome is ExecutionOutcome.NO_ASSETS:
        return events + case.write_off(WriteOff(**ref, reason="execution ended without recovery", made_on=day), policy)
    amount = case.view(day, policy).payoff if outcome is ExecutionOutcome.RECOVERED else round_fen(case.litigation.unpaid_debt / 2)
    payment = RecordPayment(**ref, amount=amount, received_on=day, payment_id=f"SIM-{case.case_id}-{day:%Y%m%d}-court")
    return events + case.record_payment(payment, policy)
