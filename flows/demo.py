"""The demo: a synthetic loan book run day by day through the real daily close.

Each simulated day, loans disbursed that day are booked, borrowers pay,
miss, promise and pay off as their profile says (``flows.simulation``), and
then ``close_business_day`` closes the date exactly as the scheduled
deployment does. The result is what a collections manager looks at; the
run ends with the portfolio report and its charts in the data directory's
``report/`` folder (the ``daily-report`` flow).

Loans are booked through ``flows.handlers.loans``, as an imported loan book is:
each borrower's name, national id, phone and address are stored encrypted
with the data directory's key and shown only masked.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Callable

from prefect import flow, get_run_logger, task

from flows import demo_court, runtime, simulation
from flows.daily import close_business_day
from flows.daily_report import daily_report
from flows.handlers import loans
from models.crypto import load_keyring
from flows.handlers.agencies import agency_report, register_agency
from flows.handlers.cases import BatchResult, run_commands
from flows.handlers.cases import book_loans as book_bare_loans
from states.case import CollectionCase
from states.agency import RegisterAgency
from states.commands import MakePromise, RecordContact, RecordPayment, ReportVisit
from states.lifecycle import Stage
from states.vocabulary import ContactOutcome, VisitOutcome
from states.loanfile import LoanRecord

DEMO_ACTOR = "collector-demo"
DEMO_SUPERVISOR = "supervisor-demo"
#: The demo's agencies: name, licence, capacity per 10,000 loans, commission rates by bucket group,
#: and (the simulation's, not the system's) the chance per 1,000 that it collects on a placed case on a day.
DEMO_AGENCIES = (
    ("HUABEI-RECOVERY", "JR-110-2024-017", 250, "M4-M6=0.15,M7+=0.25,written_off=0.35", 12),
    ("JIANGNAN-CREDIT", "JR-320-2023-042", 160, "M4-M6=0.12,M7+=0.22,written_off=0.30", 8),
    ("LINGNAN-ASSET", "JR-440-2025-003", 100, "M4-M6=0.18,M7+=0.28,written_off=0.40", 18),
)
AGENCY_SKILL = {name: per_mille for name, _licence, _capacity, _rates, per_mille in DEMO_AGENCIES}


def register_demo_agencies(app, size: int) -> None:
    """Three agencies of uneven size and price, so placements show the strategies and capacity at work."""
    for name, licence, per_10k, rates, _skill in DEMO_AGENCIES:
        capacity = max(3, size * per_10k // 10_000)
        register_agency(RegisterAgency(name=name, licence_no=licence, capacity=capacity, rates=rates, operator=DEMO_SUPERVISOR), app)


#: The demo's collectors: per mille of the phone-stage cases called each day, of the visit-stage
#: cases visited (when a visit is due), and the outcomes a seeded draw picks from (the simulation's
#: odds, not the system's).
CALLS_PER_MILLE, VISITS_PER_MILLE = 60, 200
CALL_OUTCOMES = (*[ContactOutcome.CONNECTED] * 4, *[ContactOutcome.NO_ANSWER] * 4, ContactOutcome.REFUSED_TO_TALK,
                 ContactOutcome.INVALID_NUMBER)
VISIT_OUTCOMES = (VisitOutcome.MET, VisitOutcome.MET, VisitOutcome.NOT_HOME, VisitOutcome.NOT_HOME, VisitOutcome.PROMISE,
                  VisitOutcome.REFUSED, VisitOutcome.MOVED)
DEMO_VISITORS = "collector-demo,collector-field-2"


@dataclass(frozen=True)
class DeskAction:
    """A collector's call or visit on a day; ``draw`` (a seeded hash) picks its time and outcome."""

    kind: str  # "call" or "visit"
    draw: int


def desk_work(store, day: date, seed: int) -> list[tuple[str, object]]:
    """The demo's collectors at work on ``day``: a seeded share of the phone-stage cases called, of
    the visit-stage cases visited. The conduct rules and the visit schedule decide what is recorded."""
    actions: list[tuple[str, object]] = []
    for stage, kind, per_mille in ((Stage.PHONE, "call", CALLS_PER_MILLE), (Stage.VISIT, "visit", VISITS_PER_MILLE)):
        for case_id in store.case_ids_in_stages((stage.value,)):
            draw = int.from_bytes(hashlib.sha256(f"{seed}:{kind}:{case_id}:{day}".encode()).digest()[:4], "big")
            if draw % 1000 < per_mille:
                actions.append((case_id, DeskAction(kind, draw // 1000)))
    return actions


def _desk(action: DeskAction, day: date, policy):
    at = datetime.combine(day, time(9 + action.draw % 12, action.draw % 60))  # 09:00-20:59, local time

    def call(case: CollectionCase):
        if case.stage not in (Stage.PHONE, Stage.VISIT):
            return []
        outcome = CALL_OUTCOMES[action.draw % len(CALL_OUTCOMES)]
        return case.record_contact(RecordContact(case=case.case_id, operator=DEMO_ACTOR, channel="call", outcome=outcome, contacted_at=at))

    def visit(case: CollectionCase):
        if case.stage is not Stage.VISIT or case.visit_due_on is None or case.visit_due_on > day:
            return []
        outcome = VISIT_OUTCOMES[action.draw % len(VISIT_OUTCOMES)]
        cmd = ReportVisit(case=case.case_id, operator=DEMO_ACTOR, collectors=DEMO_VISITORS, outcome=outcome, visited_at=at)
        return case.report_visit(cmd, policy)

    return call if action.kind == "call" else visit


def _command(action: object, day: date, policy, n: int):
    """Turn a borrower's planned action into a domain command for ``day``."""
    if isinstance(action, DeskAction):
        return _desk(action, day, policy)
    if action == demo_court.COURT:
        return lambda case: demo_court.court_step(case, day, policy, DEMO_ACTOR)
    if action == "agency_collects":
        return _agency_collects(day, policy, n)
    if action == "pay":

        def pay(case: CollectionCase):
            amount = case.view(max(day, case.accrued_through)).projection.total_due
            if amount <= 0 or case.stage is Stage.SETTLED:  # a written-off case still takes recoveries
                return []
            payment_id = f"SIM-{case.case_id}-{day:%Y%m%d}-{n}"
            cmd = RecordPayment(case=case.case_id, operator=DEMO_ACTOR, amount=amount, received_on=day, payment_id=payment_id)
            return case.record_payment(cmd, policy)

        return pay
    if action == "payoff":

        def payoff(case: CollectionCase):
            if case.stage.is_closed:
                return []
            amount = case.view(max(day, case.accrued_through)).payoff
            payment_id = f"SIM-{case.case_id}-{day:%Y%m%d}-payoff"
            cmd = RecordPayment(case=case.case_id, operator=DEMO_ACTOR, amount=amount, received_on=day, payment_id=payment_id)
            return case.record_payment(cmd, policy)

        return payoff
    _kind, promised_on = action

    def promise(case: CollectionCase):
        if case.stage.is_closed:
            return []
        amount = case.view(max(day, case.accrued_through)).projection.total_due
        if amount <= 0:
            return []
        cmd = MakePromise(case=case.case_id, operator=DEMO_ACTOR, amount=amount, promised_on=promised_on, made_on=day)
        return case.make_promise(cmd, policy)

    return promise


def agency_collections(placed: dict[str, str], day: date, seed: int) -> list[tuple[str, object]]:
    """The simulated agencies' work of a day: each collects on a placed case with its own chance
    (a seeded hash of the case and the day), a third of what is due, paid through the agency channel."""
    actions = []
    for case_id, agency in sorted(placed.items()):
        digest = hashlib.sha256(f"{seed}:{case_id}:{day}".encode()).digest()
        if int.from_bytes(digest[:4], "big") % 1000 < AGENCY_SKILL.get(agency, 0):
            actions.append((case_id, "agency_collects"))
    return actions


def _agency_collects(day: date, policy, n: int):
    def collect(case: CollectionCase):
        if case.agency_id is None or case.stage is Stage.SETTLED:
            return []
        due = case.view(max(day, case.accrued_through)).projection.total_due
        amount = (due / 3).quantize(Decimal("0.01"))
        if amount <= 0:
            return []
        cmd = RecordPayment(
            case=case.case_id, operator=DEMO_ACTOR, amount=amount, received_on=day,
            payment_id=f"AGY-{case.case_id}-{day:%Y%m%d}-{n}", channel="agency",
        )
        return case.record_payment(cmd, policy)

    return collect


def book_loans(store, day: date, book: list, policy) -> None:
    """Book loans on ``day``: ``LoanRecord``s with their borrowers through the loan book (encrypted),
    bare ``(case_id, terms)`` pairs as they are (the flow tests book those)."""
    bare = [item for item in book if isinstance(item, tuple)]
    records = [item for item in book if isinstance(item, LoanRecord)]
    if bare:
        book_bare_loans(store, bare)
    if records:
        report = loans.book_records(
            store, records, business_date=day, policy=policy, keyring=load_keyring(), source="demo"
        )
        if report.rejected:  # the synthetic book is valid by construction: this is a bug
            raise RuntimeError(f"demo: {report.rejected} loans refused, first: {report.rejections[0]}")


def demo_records(borrowers: list[simulation.Borrower]) -> list[LoanRecord]:
    return [LoanRecord(n, b.terms, b.person, b.case_id) for n, b in enumerate(borrowers, 1)]


@task(name="simulate-day", task_run_name="borrowers act on {day}")
def simulate_day(day: date, book: list, actions: list[tuple[str, object]], seed: int = 7) -> dict:
    """Book the day's new loans, then let the borrowers and the agencies act (before the day is closed)."""
    app = runtime.app()
    if book:
        book_loans(app.store, day, book, app.policy)
    actions = [*actions, *agency_collections(app.store.placed_case_ids(), day, seed), *desk_work(app.store, day, seed)]
    commands = [(case_id, _command(action, day, app.policy, n)) for n, (case_id, action) in enumerate(actions)]
    result = run_commands(app, day, commands) if commands else BatchResult(day)
    data = result.as_dict()
    data["booked"] = len(book)
    data["promises"] = sum(1 for _cid, a in actions if isinstance(a, tuple))
    return data


@task(name="book-seasoned-loans", task_run_name="book {count} seasoned loans with their history")
def book_seasoned(book: list, history: list[tuple[date, list[tuple[str, object]]]], count: int) -> dict:
    """Book the loans disbursed before the first business date, each on its disbursement day, and
    replay what their borrowers did day by day: the history a lender brings when it adopts collectflow."""
    store = runtime.store()
    policy = runtime.policy()
    by_day: dict[date, list] = {}
    for record in book:
        by_day.setdefault(record.terms.disbursed_on, []).append(record)
    actions_on = dict(history)
    total = BatchResult(date.min)
    for day in sorted(by_day.keys() | actions_on.keys()):
        if day in by_day:
            book_loans(store, day, by_day[day], policy)
        commands = [(case_id, _command(action, day, policy, n)) for n, (case_id, action) in enumerate(actions_on.get(day, []))]
        if commands:
            total.merge(run_commands(runtime.app(), day, commands))
    return total.as_dict()


@flow(name="demo", log_prints=False)
def run_demo(
    size: int = 10_000,
    days: int = 180,
    start: date = date(2026, 1, 1),
    seed: int = 7,
    on_day_closed: Callable[[int, int], None] | None = None,
) -> dict:
    """A book of ``size`` synthetic loans (half seasoned, half new) closed for ``days`` business days.

    ``on_day_closed(n, days)`` is called after each close (the CLI drives its progress bar with it).
    """
    logger = get_run_logger()
    register_demo_agencies(runtime.app(), size)
    borrowers = simulation.make_portfolio(size, start, seed)
    by_day = simulation.index_by_day(borrowers)
    for day, steps in demo_court.court_days(borrowers, start, days).items():  # the operator's court work
        by_day.setdefault(day, []).extend(steps)
    to_book: dict[date, list] = {}
    for record in demo_records(borrowers):
        to_book.setdefault(max(record.terms.disbursed_on, start), []).append(record)
    history = sorted((day, actions) for day, actions in by_day.items() if day < start)
    seasoned = to_book.pop(start, [])
    command_total = BatchResult.from_dict(book_seasoned(seasoned, history, len(seasoned)))
    close_total = BatchResult(start)
    booked = len(seasoned)
    promises = sum(1 for _day, actions in history for _cid, a in actions if isinstance(a, tuple))
    for n in range(days):
        day = start + timedelta(days=n)
        acted = simulate_day(day, to_book.get(day, []), by_day.get(day, []), seed)
        booked += acted.pop("booked")
        promises += acted.pop("promises")
        command_total.merge(BatchResult.from_dict(acted))
        close_total.merge(close_business_day(day))
        if n % 30 == 29:
            logger.info("demo: closed %s (%d/%d days)", day, n + 1, days)
        if on_day_closed is not None:
            on_day_closed(n + 1, days)
    profiles = Counter(b.profile for b in borrowers)
    end = start + timedelta(days=days - 1)
    report_dir = runtime.settings().data_dir / "report"
    daily_report(business_date=end, out_dir=str(report_dir))
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "days": days,
        "booked": booked,
        "profiles": dict(profiles),
        "promises": promises,
        "close": close_total.as_dict(),
        "commands": command_total.as_dict(),
        "report_dir": str(report_dir.resolve()),
        "agencies": agency_report(runtime.app(), None, end).as_dict(),
    }
