"""What-if replay: a case's recorded history rerun under another collection policy.

The *inputs* of a history are what came from outside the rules: the loan
(``CaseOpened``), payments, promises to pay, contacts, pauses, an operator's
resume or write-off, amended borrower details, an operator's lawsuit, a judgment, an execution. Everything else (accruals,
reviews, escalations, placements, lawsuits, system write-offs) is what the
rules made of them. ``rerun`` feeds the same inputs, on the same dates and
in the same order, to a new case under the proposed policy and lets the
daily reviews run through the last date; an input the new rules refuse (a
promise the new policy no longer allows, a payment to a case the new rules
already closed) is listed, not forced.

``compare`` then reads both histories the same way: the stage on every date
of a window, the escalations, the penalties charged and capped, the agency
placements, the lawsuits. Nothing here touches a store: the rerun case lives
in memory and is thrown away.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from states.case import CollectionCase
from states.commands import (
    EnterJudgment,
    FileLawsuit,
    MakePromise,
    PauseCase,
    RecordContact,
    RecordExecution,
    RecordPayment,
    ResumeCase,
    WriteOff,
)
from states.errors import UserError
from states.events import (
    SYSTEM,
    BorrowerDetailsAmended,
    CaseOpened,
    CasePaused,
    CaseResumed,
    CaseWrittenOff,
    ChargesAccrued,
    ChargesReversed,
    ContactRecorded,
    Event,
    ExecutionRecorded,
    JudgmentEntered,
    LawsuitFiled,
    PaymentReceived,
    PlacedWithAgency,
    PromiseMade,
    StageChanged,
)
from states.lifecycle import Stage
from states.money import ZERO
from states.policy import CollectionPolicy
from states.value_dating import COST_EVENTS

ONE_DAY = timedelta(days=1)
PENALTIES = ("penalty_interest", "compound_interest")


@dataclass(frozen=True)
class Outcome:
    """What one history did over a window of dates, read from its events."""

    stages: tuple[str, ...]  # the stage at the end of each date of the window
    escalations: tuple[str, ...]  # "phone->visit on 2026-03-04", in order
    penalties_charged: Decimal
    capped: Decimal  # what the window added above the legal cap (net of what a grown limit released)
    placements: int
    lawsuits: int
    final_stage: str


@dataclass(frozen=True)
class CaseDifference:
    case_id: str
    actual: Outcome
    whatif: Outcome
    days_in_another_stage: int
    refused: tuple[str, ...] = field(default=())

    @property
    def differs(self) -> bool:
        return self.actual != self.whatif or bool(self.refused)

    def as_dict(self) -> dict[str, object]:
        a, w = self.actual, self.whatif
        return {
            "case_id": self.case_id,
            "final_stage": a.final_stage,
            "final_stage_whatif": w.final_stage,
            "days_in_another_stage": self.days_in_another_stage,
            "escalations": "; ".join(a.escalations),
            "escalations_whatif": "; ".join(w.escalations),
            "penalties_charged": str(a.penalties_charged),
            "penalties_charged_whatif": str(w.penalties_charged),
            "capped": str(a.capped),
            "capped_whatif": str(w.capped),
            "placements": a.placements,
            "placements_whatif": w.placements,
            "lawsuits": a.lawsuits,
            "lawsuits_whatif": w.lawsuits,
            "refused_whatif": "; ".join(self.refused),
        }


def rerun(history: Sequence[Event], policy: CollectionPolicy, through: date) -> tuple[list[Event], list[str]]:
    """The history the same inputs make under ``policy`` through ``through``, and the inputs it refused."""
    opened = history[0]
    if not isinstance(opened, CaseOpened):
        raise UserError(f"case {opened.case_id}: a history starts with CaseOpened, not {opened.type}")
    case = CollectionCase.replay([opened])
    case.collect_events()
    made: list[Event] = [opened]
    refused: list[str] = []
    for event in history[1:]:
        if event.business_date > through:
            break
        try:
            run = _input(event, case, policy, made)  # a command today's parsers refuse is refused, not a crash
            if run is None:
                continue
            run()
        except UserError as exc:
            refused.append(f"{event.type} of {event.business_date} refused: {exc}")
        made += case.collect_events()
    if not case.stage.is_closed:
        case.advance(through, policy)
    made += case.collect_events()
    return made, refused


def _input(event: Event, case: CollectionCase, policy: CollectionPolicy, made: Sequence[Event] = ()):
    """The command that re-enacts an input event (None: the rules made this event, not a person)."""
    actor = event.actor
    if isinstance(event, PaymentReceived):  # on the date it carried: a value-dated one is value-dated again if need be
        cmd = RecordPayment(case=case.case_id, operator=_operator(actor), amount=event.amount, received_on=event.received_on,
                            payment_id=event.payment_id, channel=event.channel, backdate_reason=event.backdate_reason or "")
        return lambda: case.record_payment(cmd, policy, recorded=[e for e in made if isinstance(e, (ChargesAccrued, PaymentReceived, *COST_EVENTS))])
    if isinstance(event, PromiseMade):
        cmd = MakePromise(case=case.case_id, operator=_operator(actor), amount=event.amount, promised_on=event.promised_on,
                          made_on=event.business_date)
        return lambda: case.make_promise(cmd, policy)
    if isinstance(event, ContactRecorded):
        cmd = RecordContact(case=case.case_id, operator=_operator(actor), channel=event.channel, outcome=event.outcome,
                            contacted_at=event.contacted_at, party=event.party, by=event.by, collectors=event.collectors,
                            disclosed_debt=event.disclosed_debt, asked_to_pay=event.asked_to_pay, note=event.note)
        return lambda: case.record_contact(cmd)
    if isinstance(event, CasePaused):
        cmd = PauseCase(case=case.case_id, operator=_operator(actor), reason=event.reason, until=event.until, made_on=event.business_date)
        return lambda: case.pause(cmd, policy)
    if isinstance(event, CaseResumed) and actor != SYSTEM:
        cmd = ResumeCase(case=case.case_id, operator=actor, made_on=event.business_date)
        return lambda: case.resume(cmd)
    if isinstance(event, CaseWrittenOff) and actor != SYSTEM:
        cmd = WriteOff(case=case.case_id, operator=actor, reason=event.reason, made_on=event.business_date)
        return lambda: case.write_off(cmd, policy)
    if isinstance(event, LawsuitFiled) and actor != SYSTEM:
        cmd = FileLawsuit(case=case.case_id, operator=actor, filed_on=event.business_date, override=event.override_reason or None)
        return lambda: case.file_lawsuit(cmd, policy)
    if isinstance(event, JudgmentEntered):
        cmd = EnterJudgment(case=case.case_id, operator=_operator(actor), amount=event.amount, deadline=event.deadline,
                            entered_on=event.business_date, court=event.court, case_number=event.case_number)
        return lambda: case.enter_judgment(cmd, policy)
    if isinstance(event, ExecutionRecorded):
        cmd = RecordExecution(case=case.case_id, operator=_operator(actor), outcome=event.outcome, recorded_on=event.business_date)
        return lambda: case.record_execution(cmd, policy)
    if isinstance(event, BorrowerDetailsAmended):
        return lambda: case.amend_borrower_details(event.changes, event.business_date, actor=actor, source=event.source)
    return None


def _operator(actor: str) -> str:
    """Inputs made by the system itself (the demo's, an import's) are re-enacted by a named stand-in."""
    return "whatif-replay" if actor == SYSTEM else actor


def outcome(history: Iterable[Event], start: date, end: date) -> Outcome:
    """What a history did over [start, end], read from its events."""
    changes: list[tuple[date, str]] = []
    escalations: list[str] = []
    penalties = capped = held = ZERO  # held: what lies above the cap so far (released charges leave it)
    placements = lawsuits = 0
    stage = Stage.CURRENT.value
    for event in history:
        if event.business_date > end:
            break
        if isinstance(event, StageChanged):
            changes.append((event.business_date, event.to_stage))
            stage = event.to_stage
        before = held
        if isinstance(event, ChargesAccrued):
            held += sum((p.unenforceable for p in event.postings), ZERO) - sum((lot.amount for lot in event.released), ZERO)
        elif isinstance(event, ChargesReversed):  # a value-dated payment took charges back (they are posted again)
            held = sum((lot.amount for lot in event.unenforced), ZERO)
        within = event.business_date >= start
        if not within:
            continue
        capped += held - before
        if isinstance(event, StageChanged):
            escalations.append(f"{event.from_stage}->{event.to_stage} on {event.business_date}")
        elif isinstance(event, ChargesAccrued):
            penalties += sum((p.enforceable for p in event.postings if p.component in PENALTIES), ZERO)
            penalties += sum((lot.amount for lot in event.released if lot.component in PENALTIES), ZERO)
        elif isinstance(event, ChargesReversed):
            penalties -= sum((line.amount for line in event.lines if line.component in PENALTIES), ZERO)
        elif isinstance(event, PlacedWithAgency):
            placements += 1
        elif isinstance(event, LawsuitFiled):
            lawsuits += 1
    return Outcome(_stages_by_day(changes, start, end), tuple(escalations), penalties, capped, placements, lawsuits, stage)


def _stages_by_day(changes: list[tuple[date, str]], start: date, end: date) -> tuple[str, ...]:
    stages, stage, i = [], Stage.CURRENT.value, 0
    day = start
    while i < len(changes) and changes[i][0] < start:
        stage, i = changes[i][1], i + 1
    while day <= end:
        while i < len(changes) and changes[i][0] <= day:
            stage, i = changes[i][1], i + 1
        stages.append(stage)
        day += ONE_DAY
    return tuple(stages)


def compare(history: Sequence[Event], policy: CollectionPolicy, start: date, end: date) -> CaseDifference:
    """The recorded history against the same inputs rerun under ``policy``, over [start, end]."""
    made, refused = rerun(history, policy, end)
    actual, whatif = outcome(history, start, end), outcome(made, start, end)
    apart = sum(1 for a, w in zip(actual.stages, whatif.stages) if a != w)
    return CaseDifference(history[0].case_id, actual, whatif, apart, tuple(refused))
