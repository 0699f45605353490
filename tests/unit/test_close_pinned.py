"""The daily close's arithmetic pinned on random portfolios (issue 13: a faster close, the same fen).

A seeded generator builds loans of every kind (plans, day counts, caps, late fees,
compound interest) and histories of operator work (payments, payoffs, value-dated
payments, promises, pauses, visits, recalls, lawsuits, judgments, executions,
write-offs) closed through the years, some day by day and some in long jumps. Every
event's canonical JSON (the bytes the hash chain covers), every refusal's words, the
final state (its accrual totals, installments, stage; not a snapshot, whose format is
not the close's) and projection, and the valuations on the way are folded into one
digest, pinned from the code before the close was optimised (main at b6fd23a; a
``ChargesAccrued`` folded in its v3 form, once its v4 form is seen to read back). A
change that moves any figure by a fen, or any byte of any payload, changes the
digest; the hypothesis properties below check, on histories the generator never
drew, that the shortcuts of the review (the figures it reads once per state, the
guards it checks before running the machine) agree with the plain computation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from states.caps import DEFAULT_LPR_TABLE, CapRegime
from states.case import CollectionCase
from states.commands import EnterJudgment, FileLawsuit, RecallFromAgency, RecordExecution, ReportVisit
from states.errors import UserError
from states.lifecycle import MACHINE, TRIGGERS, InvalidTransition, Stage, StageFacts, _Probe, decide
from states.money import ZERO
from states.money import DayCount
from states.policy import CollectionPolicy
from states.schedule import RepaymentMethod, ScheduleInterest
from tests.unit.conftest import D, as_v3_json, loan, pause_cmd, payment_cmd, promise_cmd, resume_cmd, stored, write_off_cmd

POLICIES = (
    CollectionPolicy(),
    CollectionPolicy(visit_at_dpd=20, outsource_at_dpd=45, litigation_at_dpd=60, write_off_at_dpd=120, placement_days=30,
                     litigation_min_claim=D("100")),
)
KINDS = ("advance", "advance", "pay", "pay_due", "pay_due", "pay_small", "pay_all", "backdated", "promise", "pause", "resume",
         "visit", "recall", "lawsuit", "judgment", "execution", "write_off")

# sha256 of the histories below as main wrote them before the close was optimised: taken at b6fd23a,
# then again once CaseOpened and ChargesAccrued payloads became compact (v3), on the tree before the
# optimisation was merged (the same arithmetic; the explanations read back byte for byte alike)
PINNED = {
    # re-taken when a value-dated payment stopped paying litigation costs posted after its value date: of
    # its 100 histories only case-64 changed, at that payment (valued 2025-01-05, the lawsuit filed 2025-01-12)
    (1, 100): "acf315e5a1e789bb668935accba8de0c0175cdc2d502f6b8b6a1618dbba9ca4a",
    (2, 60): "6bdd968a3fef100c716d6a79c8330e880d71dce8715c12c9fd48333c828cdee9",
    # its case-10 failed ("charge ... is negative") before a reversal gave a plan's period its start back
    (3, 40): "7740732a05cc33a9f2fe5cee2bfe6923fc7644cbff2e3fdcfb58a255f93933fc",
}


def _terms(rng: random.Random, n: int):
    disbursed = date(2023, 1, 1) + timedelta(days=rng.randrange(0, 900))
    regime = rng.choice([CapRegime.LICENSED, CapRegime.LICENSED, CapRegime.PRIVATE])
    return loan(
        principal=str(Decimal(rng.randrange(100_00, 300_000_00)) / 100),
        rate=str(Decimal(rng.choice([0, 600, 1800, 2400, 3600, rng.randrange(1, 3600)])) / 10000),
        term=rng.choice([1, 3, 6, 12, 24]),
        method=rng.choice(list(RepaymentMethod)),
        disbursed_on=disbursed,
        first_due_on=disbursed + timedelta(days=rng.randrange(1, 62)),
        day_count=rng.choice(list(DayCount)),
        compound_interest=rng.random() < 0.4,
        late_fee=rng.choice(["0", "0", "30.00", "2000.00"]),
        late_fee_rate=rng.choice(["0", "0", "0.02", "0.10"]),
        cap_regime=regime,
        contract_date=disbursed,
        contract_no=f"PIN-{n:05d}",
        schedule_interest=rng.choice(list(ScheduleInterest)),
    )


def _step(case: CollectionCase, kind: str, rng: random.Random, n: int, day: date, policy: CollectionPolicy) -> object:
    """One operator action (or a close) on ``day``; what it returned, as plain values."""
    amount = Decimal(rng.randrange(1, 3_000_000)) / 100
    if kind == "advance":
        return case.advance(day, policy)
    if kind in ("pay", "pay_due", "pay_small", "pay_all", "backdated"):
        on = day
        if kind == "pay_due":  # what is due: a borrower catching up (the case is cured)
            amount = max(case.view(max(day, case.accrued_through), policy).projection.total_due, D("0.01"))
        elif kind == "pay_small":
            amount = Decimal(rng.randrange(1, 5_000)) / 100
        elif kind == "pay_all":
            amount = max(case.view(max(day, case.accrued_through), policy).payoff, D("0.01"))
        elif kind == "backdated":
            on = day - timedelta(days=rng.randrange(1, 20))
            cmd = payment_cmd(case, amount, on, f"pay-{n}")
            cmd = dataclasses.replace(cmd, backdate_reason="bank file late")
            return case.record_payment(cmd, policy)
        return case.record_payment(payment_cmd(case, amount, on, f"pay-{n}"), policy)
    if kind == "promise":
        return case.make_promise(promise_cmd(case, amount, day + timedelta(days=rng.randrange(0, 15)), day), policy)
    if kind == "pause":
        return case.pause(pause_cmd(case, "hardship", day + timedelta(days=rng.randrange(1, 60)), day), policy)
    if kind == "resume":
        return case.resume(resume_cmd(case, day))
    if kind == "visit":
        outcome = rng.choice(["met", "not_home", "moved", "refused", "promise"])
        at = datetime(day.year, day.month, day.day, 10, 30)
        return case.report_visit(ReportVisit(case=case.case_id, operator="op-1", collectors="c1,c2", outcome=outcome,
                                             visited_at=at), policy)
    if kind == "recall":
        return case.recall(RecallFromAgency(case=case.case_id, operator="op-1", reason="review", made_on=day), policy)
    if kind == "lawsuit":
        override = rng.choice([None, "the borrower has assets"])
        return case.file_lawsuit(FileLawsuit(case=case.case_id, operator="op-1", filed_on=day, override=override), policy)
    if kind == "judgment":
        return case.enter_judgment(EnterJudgment(case=case.case_id, operator="op-1", amount=amount, entered_on=day,
                                                 deadline=day + timedelta(days=rng.randrange(0, 30))), policy)
    if kind == "execution":
        outcome = rng.choice(["recovered", "partial", "no_assets"])
        return case.record_execution(RecordExecution(case=case.case_id, operator="op-1", outcome=outcome, recorded_on=day),
                                     policy)
    if kind == "write_off":
        return case.write_off(write_off_cmd(case, "not worth pursuing", day), policy)
    raise AssertionError(kind)


def history_digest(seed: int, cases: int, observe=None) -> str:
    """The digest of ``cases`` random histories drawn from ``seed`` (see the module docstring);
    ``observe`` is given each text folded in."""
    rng = random.Random(seed)
    digest = hashlib.sha256()

    def fold(text: str) -> None:
        if observe is not None:
            observe(text)
        digest.update(text.encode())
        digest.update(b"\n")

    for n in range(cases):
        terms = _terms(rng, n)
        policy = rng.choice(POLICIES)
        case, opened = CollectionCase.open(f"case-{n}", terms, DEFAULT_LPR_TABLE)
        for e in opened:
            fold(as_v3_json(e))
        day = terms.disbursed_on
        daily = rng.random() < 0.25
        failed = False
        for k in range(rng.randrange(0, 18)):
            target = day + timedelta(days=rng.randrange(0, 80))
            while daily and day < target - timedelta(days=1):
                day += timedelta(days=1)
                for e in case.advance(day, policy):
                    fold(as_v3_json(e))
            day = target
            kind = rng.choice(KINDS)
            try:
                events = _step(case, kind, rng, k, day, policy)
            except UserError as exc:  # what its catch-up closed comes back with the next command
                fold(f"refused {kind}: {exc}")
                events = []
            except Exception as exc:  # noqa: BLE001 - a failure is pinned too; the history stops there
                fold(f"failed {kind}: {type(exc).__name__}: {exc}")
                failed = True
                break
            for e in events:
                fold(as_v3_json(e))
            if rng.random() < 0.3 and day >= case.accrued_through:
                view = case.view(day, policy)
                fold(json.dumps(view.as_dict(), sort_keys=True, default=str))
                fold(json.dumps(view.payoff_quote(), sort_keys=True))
        end = day + timedelta(days=rng.choice([30, 200, 500]))
        if failed:
            continue
        for e in case.advance(end, policy):
            fold(as_v3_json(e))
        case.collect_events()
        fold(repr((case.principal_days, case.computed, case.charged, case.unenforced, case.installments, case.stage,
                   case.next_review_on, case.litigation, case.credit)))  # the state, not a snapshot's format
        fold(repr(case.projection()))
        fold(repr(case.dues(end)))
    return digest.hexdigest()


@pytest.mark.parametrize(("seed", "cases"), sorted(PINNED))
def test_random_histories_are_byte_identical_to_the_pinned_ones(seed, cases):
    assert history_digest(seed, cases) == PINNED[seed, cases]


if __name__ == "__main__":  # print the digests (to pin them from the code before a change)
    for seed, cases in PINNED:
        print((seed, cases), history_digest(seed, cases))


# --------------------------------------------------------------------------
# the review's shortcuts against the plain computation, on histories the generator never drew

def _plain_figures(case: CollectionCase, on: date) -> list[str]:
    """The figures as the straightforward code reads them: every installment's properties, every time."""
    inst = case.installments
    dues = case.penalty_due + case.compound_due + case.costs_due + case.litigation.interest_due
    oldest = next((i.due_on for i in inst if i.due_on < on and i.unpaid > 0), None)
    return [str(v) for v in (
        sum((i.unpaid for i in inst), ZERO) + case.penalty_due + case.compound_due + case.costs_due + case.litigation.interest_due,
        sum((i.unpaid for i in inst if i.due_on < on), ZERO) + dues,
        sum((i.unpaid for i in inst if i.due_on <= on), ZERO) + case.costs_due + case.penalty_due + case.compound_due
        + case.litigation.interest_due,
        sum((i.principal_unpaid for i in inst), ZERO),
        sum((i.principal_unpaid for i in inst if i.due_on < on), ZERO),
        sum((i.principal_unpaid for i in inst if i.due_on >= on), ZERO),
        oldest,
    )]


def _figures(case: CollectionCase, on: date) -> list[str]:
    return [str(v) for v in (
        case.total_owing(), case.overdue_total(on), case.total_due(on), case.principal_outstanding(),
        case.overdue_principal(on), case.principal_not_yet_due(on), case.oldest_unpaid_due(on),
    )]


class CheckedCase(CollectionCase):
    """A case that checks, after every event, that the figures it keeps per state are the plain ones."""

    def __init__(self, case_id: str):
        super().__init__(case_id)
        self.log: list = []

    def _record(self, event):
        result = super()._record(event)
        self.log.append(event)
        for on in (self.accrued_through, self.accrued_through + timedelta(days=1), event.business_date + timedelta(days=31)):
            kept = _figures(self, on)
            assert kept == _figures(self, on) == _plain_figures(self, on), (event, on)  # the second read is the kept one
        assert self.projection() == _unkept(self).projection()
        return result


def _unkept(case: CheckedCase) -> CollectionCase:
    """The case replayed from its stored events: nothing kept from the live one."""
    return CollectionCase.replay(stored(case.log), case.case_id)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), daily=st.booleans())
def test_the_figures_kept_per_state_are_the_plain_ones_at_every_event(seed, daily):
    rng = random.Random(seed)
    terms = _terms(rng, 0)
    policy = rng.choice(POLICIES)
    case, _ = CheckedCase.open("case-h", terms, DEFAULT_LPR_TABLE)
    day = terms.disbursed_on
    for k in range(rng.randrange(1, 12)):
        target = day + timedelta(days=rng.randrange(0, 80))
        while daily and day < target - timedelta(days=1):
            day += timedelta(days=1)
            case.advance(day, policy)
        day = target
        try:
            _step(case, rng.choice(KINDS), rng, k, day, policy)
        except UserError:
            pass
        except ValueError:  # the generator's value-dated payments can meet a known failure; it stops the history
            return
    case.advance(day + timedelta(days=200), policy)
    restored = _unkept(case)  # and replayed, it goes on as the live case
    later = case.accrued_through + timedelta(days=100)
    assert [e.canonical_json() for e in restored.advance(later, policy)] == [e.canonical_json() for e in case.advance(later, policy)]


facts = st.builds(
    StageFacts,
    dpd=st.integers(0, 800),
    promise_holds=st.booleans(),
    paused=st.booleans(),
    placement_active=st.booleans(),
    placement_ended=st.booleans(),
    claim=st.integers(0, 2_000_000_00).map(lambda fen: Decimal(fen) / 100),
    expected_legal_cost=st.integers(0, 50_000_00).map(lambda fen: Decimal(fen) / 100),
    overdue_total=st.integers(0, 1_000_000_00).map(lambda fen: Decimal(fen) / 100),
    total_owing=st.integers(0, 2_000_000_00).map(lambda fen: Decimal(fen) / 100),
    by_operator=st.booleans(),
    failed_visits=st.integers(0, 4),
    execution_failed=st.booleans(),
)


def _machine_decides(stage: Stage, trigger: str, facts: StageFacts, policy: CollectionPolicy) -> Stage | None:
    """The machine alone, as ``decide`` ran it before it checked the guards first."""
    event = MACHINE.events.get(trigger)
    if event is None or stage.name not in event.transitions:
        raise InvalidTransition("c", stage, trigger)
    probe = _Probe(stage)
    return probe.state if event.trigger(probe, facts=facts, policy=policy) else None


@settings(max_examples=300, deadline=None)
@given(facts=facts, policy=st.sampled_from(POLICIES))
def test_decide_moves_exactly_where_the_machine_alone_moves(facts, policy):
    for trigger in TRIGGERS:
        for stage in Stage:
            try:
                expected = _machine_decides(stage, trigger, facts, policy)
            except InvalidTransition:
                with pytest.raises(InvalidTransition):
                    decide("c", stage, trigger, facts, policy)
                continue
            assert decide("c", stage, trigger, facts, policy) is expected, (trigger, stage)
