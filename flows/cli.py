"""The ``collectflow`` command line: the demo, the daily close, operator actions, audit.

Entry points are thin: each command parses its input, calls one use case,
and prints the result (Rich for people, ``--json`` for scripts). A mistake
in the input is reported in one line naming the bad value; a stack trace is
a bug. Prefect is imported only by the commands that run flows, so quick
commands (``fees``, ``case show``) start fast.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import Callable, Optional

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

from flows import report  # noqa: E402

app = typer.Typer(
    help="collectflow: collection of overdue microfinance loans, closed day by day with Prefect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
case_app = typer.Typer(help="Look at one case: its balances as of a date, its history explained.", no_args_is_help=True)
db_app = typer.Typer(help="Database administration.", no_args_is_help=True)
app.add_typer(case_app, name="case")
app.add_typer(db_app, name="db")
from flows.loans import borrower_app, loans_app  # noqa: E402  (the loan book and borrowers)
app.add_typer(loans_app, name="loans")
app.add_typer(borrower_app, name="borrower")

console = Console()
err = Console(stderr=True)


class UserError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from models.errors import StoreError
    from states.case import DomainError
    from states.caps import CapError
    from states.court_fees import CourtFeeError
    from states.lifecycle import InvalidTransition
    from states.loan import LoanTermsError
    from states.money import MoneyError
    from states.policy import PolicyError

    return (
        UserError,
        DomainError,
        CapError,
        CourtFeeError,
        InvalidTransition,
        LoanTermsError,
        MoneyError,
        PolicyError,
        StoreError,
    )


def friendly(fn: Callable) -> Callable:
    """Report user errors in one red line with a non-zero exit, never a traceback."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _user_errors() as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def parse_date(value: Optional[str], name: str) -> Optional[date]:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{name}: {value!r} is not a date; use YYYY-MM-DD, e.g. 2026-03-31") from None


def parse_datetime(value: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"{name}: {value!r} is not a local date and time; use YYYY-MM-DDTHH:MM, e.g. 2026-03-31T10:30") from None


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


# ---------------------------------------------------------------------------
# fees


@app.command(context_settings={"ignore_unknown_options": True})  # so "fees -5" reaches the check below
@friendly
def fees(
    claim: str = typer.Argument(..., help="Amount claimed in court, yuan (e.g. 50000 or 50000.00)"),
    procedure: str = typer.Option("ordinary", help="ordinary, summary, mediation or withdrawal"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object of decimal strings"),
) -> None:
    """Litigation costs of suing for CLAIM yuan: acceptance, preservation, execution, attorney fees."""
    from states.court_fees import litigation_costs

    costs = litigation_costs(claim, procedure)
    if as_json:
        print_json(costs.as_dict())
    else:
        console.print(report.fees_table(costs))


# ---------------------------------------------------------------------------
# database


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Bring the configured database (COLLECTFLOW_DATABASE_URL) to the latest schema."""
    from models.db import make_engine, upgrade
    from models.settings import get_settings

    url = get_settings().database_url
    upgrade(make_engine(url))
    console.print(f"database at head: {report.redact_url(url)}")


# ---------------------------------------------------------------------------
# the daily close and the demo


@app.command()
@friendly
def advance(
    on: Optional[str] = typer.Option(None, "--date", help="Business date to close (YYYY-MM-DD); default: every date since the last close up to today"),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Cases per batch (one Prefect task each)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run the daily close flow (advance-portfolio) in Prefect's local mode."""
    from flows.daily import advance_portfolio

    state = advance_portfolio(business_date=parse_date(on, "--date"), batch_size=batch_size, return_state=True)
    data = state.result(raise_on_failure=False)
    summary = getattr(data, "summary", data)  # a failed run carries StuckCases(summary)
    summary = summary if isinstance(summary, dict) else {}
    if as_json:
        print_json({"state": state.type.value, "message": state.message, **summary})
    else:
        console.print(report.close_summary(summary, state.type.value, state.message))
    if not state.is_completed():
        raise typer.Exit(1)


@app.command()
@friendly
def demo(
    size: int = typer.Option(10_000, min=10, help="Loans in the synthetic book"),
    days: int = typer.Option(180, min=1, help="Business days to close"),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same book and figures"),
    start: str = typer.Option("2026-01-01", help="First business date"),
    data_dir: Path = typer.Option(Path("collectflow-data"), help="Where the demo database is written"),
) -> None:
    """Seed a synthetic loan book and close DAYS business days through the real daily flow."""
    import time

    first = parse_date(start, "--start")
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = (data_dir / "demo.db").resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    os.environ["COLLECTFLOW_DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["COLLECTFLOW_DATA_DIR"] = str(data_dir.resolve())

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # the progress bar tells the story

    from flows import demo as demo_flow
    from flows import runtime

    console.print(f"[bold]collectflow demo[/]: {size:,} loans, {days} business days from {first}, seed {seed}")
    console.print("Starting Prefect in local mode (a temporary server; 10-30 s on a small machine) ...")
    began = time.monotonic()
    with report.progress(console) as bar:
        task_id = bar.add_task("closing business days", total=days)
        demo_flow.ON_DAY_CLOSED = lambda n, _total: bar.update(task_id, completed=n)
        result = demo_flow.run_demo(size=size, days=days, start=first, seed=seed)
    elapsed = time.monotonic() - began
    store = runtime.store()
    console.print(report.demo_report(result, store, elapsed, db_path))


@app.command()
@friendly
def serve() -> None:
    """Serve the deployments (daily close at 02:00 Asia/Shanghai, retry-case, operator actions).

    Uses the Prefect server at PREFECT_API_URL; without one, starts a local
    server on 127.0.0.1:4200 (UI included) while it runs. Runs until interrupted.
    """
    from flows.deployments import serve_all

    serve_all(log=console.print)


# ---------------------------------------------------------------------------
# operator actions


def _store():
    from flows import runtime

    return runtime.store()


def _policy():
    from flows import runtime

    return runtime.policy()


def _show_events(events, what: str) -> None:
    if not events:
        console.print(f"nothing recorded: this {what} was already recorded")
        return
    for e in events:
        console.print(report.event_line(e))


@app.command()
@friendly
def pay(
    case: str = typer.Argument(..., help="Case id or contract number"),
    amount: str = typer.Argument(..., help="Amount received, yuan"),
    on: str = typer.Option(..., "--on", help="Date received (YYYY-MM-DD)"),
    payment_id: str = typer.Option(..., "--payment-id", help="The bank's or channel's transaction id"),
    operator: str = typer.Option(..., "--operator", help="Your operator id"),
    channel: str = typer.Option("bank_transfer", help="bank_transfer, alipay, wechat_pay, cash, agency"),
) -> None:
    """Record a payment; it is allocated line by line (costs, interest, principal)."""
    from models import service

    events = service.record_payment(
        _store(), case, amount, parse_date(on, "--on"), payment_id, _policy(), actor=operator, channel=channel
    )
    _show_events(events, "payment")


@app.command()
@friendly
def promise(
    case: str = typer.Argument(...),
    amount: str = typer.Argument(..., help="Amount promised, yuan"),
    by: str = typer.Option(..., "--by", help="Date the borrower promises to pay by (at most 14 days ahead)"),
    on: str = typer.Option(..., "--on", help="Date the promise was made"),
    operator: str = typer.Option(..., "--operator"),
) -> None:
    """Record a promise to pay; it holds escalation until its date."""
    from models import service

    events = service.make_promise(
        _store(), case, amount, parse_date(by, "--by"), parse_date(on, "--on"), _policy(), actor=operator
    )
    _show_events(events, "promise")


@app.command()
@friendly
def contact(
    case: str = typer.Argument(...),
    channel: str = typer.Option(..., help="call, sms, visit or letter"),
    outcome: str = typer.Option(..., help="connected, no_answer, invalid_number or refused_to_talk"),
    at: str = typer.Option(..., "--at", help="Borrower's local time, YYYY-MM-DDTHH:MM"),
    operator: str = typer.Option(..., "--operator"),
    party: str = typer.Option("borrower", help="borrower, guarantor, co_borrower or other"),
    collectors: int = typer.Option(1, min=1, help="Collectors present (visits need 2)"),
    note: str = typer.Option(""),
) -> None:
    """Record a contact attempt; one that breaks the conduct rules is refused and the refusal recorded."""
    from models import service

    events = service.record_contact(
        _store(), case, channel, party, outcome, parse_datetime(at, "--at"), actor=operator, collectors=collectors, note=note
    )
    _show_events(events, "contact")
    if any(e.type == "ContactRefused" for e in events):
        raise typer.Exit(1)


@app.command()
@friendly
def pause(
    case: str = typer.Argument(...),
    reason: str = typer.Option(..., help="hardship, dispute or complaint"),
    until: str = typer.Option(..., help="Date the pause ends"),
    on: str = typer.Option(..., "--on"),
    operator: str = typer.Option(..., "--operator"),
) -> None:
    """Pause escalation (not accrual) until a date."""
    from models import service

    events = service.pause_case(
        _store(), case, reason, parse_date(until, "--until"), parse_date(on, "--on"), _policy(), actor=operator
    )
    _show_events(events, "pause")


@app.command()
@friendly
def resume(
    case: str = typer.Argument(...),
    on: str = typer.Option(..., "--on"),
    operator: str = typer.Option(..., "--operator"),
) -> None:
    """Lift a pause."""
    from models import service

    _show_events(service.resume_case(_store(), case, parse_date(on, "--on"), actor=operator), "resume")


@app.command("write-off")
@friendly
def write_off(
    case: str = typer.Argument(...),
    reason: str = typer.Option(..., help="Why recovery ended"),
    on: str = typer.Option(..., "--on"),
    operator: str = typer.Option(..., "--operator"),
) -> None:
    """Write a case off (from outsourced or litigation)."""
    from models import service

    events = service.write_off_case(_store(), case, reason, parse_date(on, "--on"), _policy(), actor=operator)
    _show_events(events, "write-off")


@app.command("retry-case")
@friendly
def retry_case(
    case: str = typer.Argument(...),
    on: Optional[str] = typer.Option(None, "--date", help="Date to advance to; default: the date it got stuck on, else the last closed date"),
) -> None:
    """Advance one (stuck) case: to --date, else the date it got stuck on, else the last closed date."""
    from models import service

    case_id, day, result = service.retry_case(_store(), case, parse_date(on, "--date"), _policy())
    if day is None:
        raise UserError("no business date has been closed yet; give --date")
    if result.stuck:
        err.print(f"[bold red]still stuck:[/] {result.stuck[case_id]}", highlight=False)
        raise typer.Exit(1)
    console.print(f"case {case_id}: advanced to {day} ({result.events} events)")


# ---------------------------------------------------------------------------
# case views and audit


@case_app.command("show")
@friendly
def case_show(
    case: str = typer.Argument(..., help="Case id or contract number"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Value the case as of this date (default: the last closed business date)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Stage, DPD, bucket, class and every balance as of a date (accrued but not yet posted included)."""
    from models.audit import case_view

    store = _store()
    view = case_view(store, case, parse_date(as_of, "--as-of") or store.last_closed_business_date(), _policy())
    if as_json:
        print_json(view.as_dict())
    else:
        console.print(report.case_panel(view))


@case_app.command("replay")
@friendly
def case_replay(
    case: str = typer.Argument(..., help="Case id or contract number"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Stop at this business date"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The case's history, one line per event, every charge explained, with running balances."""
    from models.audit import timeline

    store = _store()
    rows = timeline(store, store.resolve_case_id(case), parse_date(as_of, "--as-of"))
    if as_json:
        print_json([row.as_dict() for row in rows])
    else:
        report.print_timeline(console, rows)


@case_app.command("rebuild")
@friendly
def case_rebuild(case: str = typer.Argument(..., help="Case id or contract number")) -> None:
    """Rebuild a case's snapshot and projection from its (verified) events: the fix for a corrupt row."""
    from models.audit import rebuild_case

    store = _store()
    case_id = store.resolve_case_id(case)
    rebuild_case(store, case_id)
    console.print(f"case {case_id}: snapshot and projection rebuilt from its events")


@app.command()
@friendly
def verify(cases: Optional[list[str]] = typer.Argument(None, help="Case ids (default: every case)")) -> None:
    """Check every hash chain and that replay reproduces every stored projection."""
    from models.audit import verify as run_verify

    store = _store()
    with report.progress(console) as bar:
        task_id = bar.add_task("verifying", total=None)
        outcome = run_verify(store.engine, cases or None, on_progress=lambda n: bar.update(task_id, completed=n))
    report.print_verify(console, outcome)
    if not outcome.ok:
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()
