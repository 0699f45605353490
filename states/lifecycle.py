"""The case lifecycle: stages, the transition table, its guards, one shared machine.

The table below *is* the escalation policy of DOMAIN.md §2. One
``transitions.Machine`` is built at import with ``model=None`` and shared by
every case in the process (a machine per case costs ~0.5 ms and ~14 KiB).
The machine decides; it never mutates a case directly: ``decide`` runs a
trigger on a throw-away probe holding only the current stage, and the
aggregate records the outcome as a ``StageChanged`` event. Replaying that
event checks the edge against the same table. Most reviews move a case
nowhere: ``decide`` first asks the trigger's edges' guards (the machine's own
conditions, from the same table) and runs the machine only when one edge's
guards all say yes.
"""

from __future__ import annotations

from states.errors import UserError

from decimal import Decimal
from enum import Enum
from typing import NamedTuple

from transitions import Machine, MachineError

from states.litigation import not_worth_suing
from states.policy import CollectionPolicy


class Stage(str, Enum):
    CURRENT = "current"
    OVERDUE = "overdue"
    PHONE = "phone"
    VISIT = "visit"
    OUTSOURCED = "outsourced"
    LITIGATION = "litigation"
    SETTLED = "settled"
    WRITTEN_OFF = "written_off"

    @property
    def is_closed(self) -> bool:
        return self in _CLOSED_STAGES


_CLOSED_STAGES = (Stage.SETTLED, Stage.WRITTEN_OFF)  # built once: a member looked up on its class costs a call
COLLECTION_STAGES = (Stage.OVERDUE, Stage.PHONE, Stage.VISIT, Stage.OUTSOURCED)
OPEN_STAGES = (Stage.CURRENT, *COLLECTION_STAGES, Stage.LITIGATION)


class StageFacts(NamedTuple):
    """What the guards may look at, computed by the aggregate for one business date.

    A named tuple (immutable): the aggregate builds one each time it asks the
    guards, and a frozen dataclass of twelve fields costs ~10x more to build.
    """

    dpd: int
    promise_holds: bool  # a promise to pay is pending and allowed to hold escalation
    paused: bool
    placement_active: bool
    placement_ended: bool  # placed with an agency before, and recalled without full recovery
    claim: Decimal  # everything owing if sued today
    expected_legal_cost: Decimal
    overdue_total: Decimal  # every amount past its due date, penalties and fees included
    total_owing: Decimal  # overdue_total + principal not yet due
    by_operator: bool = False
    failed_visits: int = 0  # reported failed field visits, and one more while a scheduled visit is overdue
    execution_failed: bool = False  # execution of the judgment ended without recovery (states.litigation)


# Guards: named, so the table reads like the policy.
def dpd_past_due(f: StageFacts, p: CollectionPolicy) -> bool:
    return f.dpd >= p.overdue_at_dpd


def grace_over(f: StageFacts, p: CollectionPolicy) -> bool:
    return f.dpd >= p.phone_at_dpd


def visit_threshold_reached(f: StageFacts, p: CollectionPolicy) -> bool:
    return f.dpd >= p.visit_at_dpd


def outsourcing_threshold_reached(f: StageFacts, p: CollectionPolicy) -> bool:
    """DPD 91, or earlier (from the visit DPD) once enough field visits failed or went overdue."""
    return f.dpd >= p.outsource_at_dpd or (f.failed_visits >= p.failed_visits_to_outsource and f.dpd >= p.visit_at_dpd)


def no_promise_pending(f: StageFacts, p: CollectionPolicy) -> bool:
    return not f.promise_holds


def not_paused(f: StageFacts, p: CollectionPolicy) -> bool:
    return not f.paused


def litigation_worth_it(f: StageFacts, p: CollectionPolicy) -> bool:
    return (
        f.placement_ended
        and f.dpd >= p.litigation_at_dpd
        and not_worth_suing(f.claim, f.expected_legal_cost, p) is None
    )


def filed_by_operator(f: StageFacts, p: CollectionPolicy) -> bool:
    """An operator files outside the automatic rule (the case has checked the rule, or its override)."""
    return f.by_operator


def execution_ended_without_recovery(f: StageFacts, p: CollectionPolicy) -> bool:
    """A case in litigation is written off by an operator, once execution ended without recovery."""
    return f.by_operator and f.execution_failed


def recovery_ended(f: StageFacts, p: CollectionPolicy) -> bool:
    """Written off by an operator, or automatically once litigation is not worth it at DPD >= 361."""
    return f.by_operator or (
        not f.placement_active and f.dpd >= p.write_off_at_dpd and not litigation_worth_it(f, p)
    )


def arrears_paid(f: StageFacts, p: CollectionPolicy) -> bool:
    return f.dpd == 0 and f.overdue_total == 0


def nothing_owing(f: StageFacts, p: CollectionPolicy) -> bool:
    return f.total_owing == 0


S = Stage

# trigger, source(s), destination, guards
TRANSITIONS: tuple[tuple[str, Stage | tuple[Stage, ...], Stage, tuple], ...] = (
    ("fall_overdue", S.CURRENT, S.OVERDUE, (dpd_past_due,)),
    ("escalate", S.OVERDUE, S.PHONE, (grace_over, not_paused)),
    ("escalate", S.PHONE, S.VISIT, (visit_threshold_reached, not_paused, no_promise_pending)),
    ("escalate", S.VISIT, S.OUTSOURCED, (outsourcing_threshold_reached, not_paused, no_promise_pending)),
    ("escalate", S.OUTSOURCED, S.LITIGATION, (litigation_worth_it, not_paused, no_promise_pending)),
    ("file_lawsuit", COLLECTION_STAGES, S.LITIGATION, (filed_by_operator, not_paused)),
    ("cure", COLLECTION_STAGES, S.CURRENT, (arrears_paid,)),
    ("settle", OPEN_STAGES, S.SETTLED, (nothing_owing,)),
    ("write_off", S.OUTSOURCED, S.WRITTEN_OFF, (recovery_ended,)),
    ("write_off", S.LITIGATION, S.WRITTEN_OFF, (execution_ended_without_recovery,)),
)

TRIGGERS = tuple(dict.fromkeys(t[0] for t in TRANSITIONS))


class InvalidTransition(UserError):
    """A trigger that the transition table does not allow from the case's stage."""

    def __init__(self, case_id: str, stage: Stage, trigger: str):
        self.case_id, self.stage, self.trigger = case_id, stage, trigger
        allowed = [t for t, src, _dst, _g in TRANSITIONS if stage in _as_tuple(src)]
        super().__init__(
            f"case {case_id}: cannot {trigger!r} from stage {stage.value!r}"
            f" (allowed from {stage.value}: {', '.join(allowed) or 'nothing'})"
        )


def _as_tuple(src: Stage | tuple[Stage, ...]) -> tuple[Stage, ...]:
    return src if isinstance(src, tuple) else (src,)


def _guard(fn):
    def check(event_data) -> bool:
        return fn(event_data.kwargs["facts"], event_data.kwargs["policy"])

    check.__name__ = fn.__name__
    return check


def _build_machine() -> Machine:
    table = [
        {"trigger": trigger, "source": list(_as_tuple(src)), "dest": dst, "conditions": [_guard(g) for g in guards]}
        for trigger, src, dst, guards in TRANSITIONS
    ]
    return Machine(
        model=None,
        states=Stage,
        transitions=table,
        initial=Stage.CURRENT,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )


MACHINE = _build_machine()


def _guards_by_edge() -> dict[tuple[str, Stage], tuple[tuple, ...]]:
    """(trigger, source stage) -> the guards of each of its edges, in table order.

    The machine's conditions, read from the same table: with them ``decide`` sees,
    without running the machine, that no edge can fire (a case is reviewed on many
    days on which it moves nowhere).
    """
    table: dict[tuple[str, Stage], tuple[tuple, ...]] = {}
    for trigger, src, _dst, guards in TRANSITIONS:
        for stage in _as_tuple(src):
            table[trigger, stage] = (*table.get((trigger, stage), ()), guards)
    return table


_GUARDS = _guards_by_edge()


class _Probe:
    """The smallest model transitions can act on: just a stage."""

    __slots__ = ("state",)

    def __init__(self, stage: Stage):
        self.state = stage


def decide(case_id: str, stage: Stage, trigger: str, facts: StageFacts, policy: CollectionPolicy) -> Stage | None:
    """The stage ``trigger`` leads to from ``stage`` given the facts, or None when a guard says no.

    Raises ``InvalidTransition`` when the table has no such edge from this stage.
    """
    edges = _GUARDS.get((trigger, stage))  # the machine's edges for the trigger from this stage
    if edges is None:
        raise InvalidTransition(case_id, stage, trigger)
    for guards in edges:
        if all(guard(facts, policy) for guard in guards):
            break
    else:
        return None  # every edge has a guard that says no: the machine would not move
    probe = _Probe(stage)
    try:
        moved = MACHINE.events[trigger].trigger(probe, facts=facts, policy=policy)
    except MachineError:
        raise InvalidTransition(case_id, stage, trigger) from None
    return probe.state if moved else None


def edge_exists(trigger: str, source: Stage, dest: Stage) -> bool:
    return any(
        t == trigger and source in _as_tuple(src) and dst == dest for t, src, dst, _g in TRANSITIONS
    )
