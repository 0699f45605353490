"""The ``collectflow`` command line: the demo, the daily close, the report, operator actions, audit.

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
from datetime import date
from pathlib import Path
from typing import Optional

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Local mode's temporary server takes 8-25 s to start on a small, busy machine; Prefect waits 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402
from rich.markup import escape  # noqa: E402

from flows import report  # noqa: E402
from flows.cli_common import console, current_app, err, fail, in_users_terms, parse_date, print_json, run_command  # noqa: E402
from states.commands import MakePromise, PauseCase, RecordContact, RecordPayment, ResumeCase, WriteOff  # noqa: E402
from states.commands import EnterJudgment, FileLawsuit, RecordExecution  # noqa: E402
from states.litigation import ExecutionOutcome  # noqa: E402
from states.vocabulary import (  # noqa: E402
    ContactChannel,
    ContactOutcome,
    ContactParty,
    PauseReason,
    PaymentChannel,
    accepted,
)

from sqlalchemy.exc import DatabaseError, IntegrityError, ProgrammingError  # noqa: E402
# Typer's own usage errors, made one line by CollectflowGroup: Typer 0.29 and later raise those of
# the Click it bundles, earlier releases Click's own
try:
    from typer._click.exceptions import BadParameter, MissingParameter, NoArgsIsHelpError, UsageError  # noqa: E402
except ImportError:  # pragma: no cover - Typer before 0.29
    from click.exceptions import BadParameter, MissingParameter, NoArgsIsHelpError, UsageError  # noqa: E402


class CollectflowGroup(TyperGroup):
    """The root command group: the one place a user's mistake becomes one line on stderr (exit 2).

    Every command and sub-command runs inside it, so the console script and
    ``CliRunner`` alike report a ``UserError`` (and an unreadable setting or
    file) the same way, never with a traceback; and a usage error Typer finds
    itself (a missing option, a number out of its range, an unknown option or
    command) is the same one line, not Typer's boxed usage text. Every refusal names the option
    and the command the user typed (``in_users_terms``, applied here to every command).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        groups = [self]
        while groups:
            for command in groups.pop().commands.values():
                if isinstance(command, TyperGroup):
                    groups.append(command)
                elif command.callback is not None:
                    in_users_terms(command)

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as exc:  # the root's own options: collectflow --bogus
            _usage_error(exc)

    def invoke(self, ctx):
        from pydantic import ValidationError

        from states.errors import UserError

        try:
            return super().invoke(ctx)
        except UsageError as exc:  # a sub-command's arguments, parsed here
            _usage_error(exc)
        except UserError as exc:
            fail(str(exc))
        except ValidationError as exc:  # a COLLECTFLOW_* setting that does not parse
            first = exc.errors()[0]
            where = "COLLECTFLOW_" + "_".join(str(p) for p in first["loc"]).upper()
            fail(f"{where}: {first['msg']} (got {first.get('input')!r})")
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as any command-line tool
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None
        except OSError as exc:  # a file the user named: missing, unreadable, unwritable
            fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
        except DatabaseError as exc:  # the store cannot be opened or read (not a query's mistake)
            if isinstance(exc, (IntegrityError, ProgrammingError)):
                raise
            fail(f"the database {_database_shown()} cannot be used: {str(exc.orig).strip() or type(exc.orig).__name__}")


def _usage_error(exc: UsageError) -> None:
    """Typer's usage error as one line naming the option, the value given and what is accepted.

    A command group run with nothing after it (``collectflow``, ``collectflow cases``) prints its help
    and exits 0, as ``--help`` does: asking what a group holds is no mistake (``no_args_is_help``)."""
    if isinstance(exc, NoArgsIsHelpError):
        if exc.message.strip():  # plain help is in the message; Typer's rich help is printed already
            sys.stdout.write(exc.message.rstrip("\n") + "\n")
        raise SystemExit(0)
    from states.parse import shown

    message = exc.format_message()
    if isinstance(exc, BadParameter) and not isinstance(exc, MissingParameter) and exc.param is not None:
        cause = exc.__cause__  # Typer checks a value with pydantic: the value given is in its error
        errors = cause.errors() if hasattr(cause, "errors") else []
        given = f" {shown(errors[0]['input'])} is refused:" if errors and "input" in errors[0] else ""
        name = str(exc.param_hint or exc.param.get_error_hint()).replace("'", "")
        message = f"{name}:{given} {exc.message[:1].lower()}{exc.message[1:]}"
    help_of = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
    fail(message.rstrip(".") + help_of, code=exc.exit_code)


def _database_shown() -> str:
    from models.db import database_url
    from models.settings import get_settings

    try:
        return database_url(get_settings().database_url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for the message
        return "(configured)"


app = typer.Typer(
    cls=CollectflowGroup,
    help="collectflow: collection of overdue microfinance loans, closed day by day with Prefect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database administration.", no_args_is_help=True)
from flows.case_cli import case_app  # noqa: E402  (one case: its views and its rebuild)
app.add_typer(case_app, name="case")
app.add_typer(db_app, name="db")
from flows.desk_cli import agency_app, calls_app, cases_app, operators_app, visits_app  # noqa: E402  (the desk)
app.add_typer(cases_app, name="cases")
app.add_typer(visits_app, name="visits")
app.add_typer(calls_app, name="calls")
lawsuit_app = typer.Typer(help="Litigation: file a lawsuit, record the judgment, record the execution.", no_args_is_help=True)
app.add_typer(lawsuit_app, name="lawsuit")
app.add_typer(operators_app, name="operators")
app.add_typer(agency_app, name="agency")
from flows.loans import borrower_app, loans_app  # noqa: E402  (the loan book and borrowers)
app.add_typer(loans_app, name="loans")
app.add_typer(borrower_app, name="borrower")
from flows.payments import payments_app  # noqa: E402  (payment files)
app.add_typer(payments_app, name="payments")
from flows.keys import keys_app  # noqa: E402  (personal-data key rotation)
app.add_typer(keys_app, name="keys")



def main() -> None:
    """The console script."""
    app()


# ---------------------------------------------------------------------------
# fees


@app.command(context_settings={"ignore_unknown_options": True})  # so "fees -5" reaches the check below
def fees(
    claim: str = typer.Argument(..., help="Amount claimed in court, yuan (e.g. 50000 or 50000.00)"),
    procedure: str = typer.Option("ordinary", help="ordinary, summary, mediation or withdrawal"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object of decimal strings"),
) -> None:
    """Litigation costs of suing for CLAIM yuan: acceptance, preservation, execution, attorney fees."""
    from states.court_fees import Procedure, litigation_costs
    from states.parse import parse_enum, parse_money

    # read as every other command reads an amount (12,34, １００, 1e5 and 12.345 are refused, not guessed at)
    costs = litigation_costs(parse_money(claim, "claim"), parse_enum(Procedure, procedure, "--procedure"))
    if as_json:
        print_json(costs.as_dict())
    else:
        console.print(report.fees_table(costs))


# ---------------------------------------------------------------------------
# database


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the configured database (COLLECTFLOW_DATABASE_URL) to the latest schema."""
    from models.db import make_engine, upgrade
    from models.settings import get_settings

    url = get_settings().database_url
    upgrade(make_engine(url))
    console.print(f"database at head: {report.redact_url(url)}")


@db_app.command("rebuild-totals")
def db_rebuild_totals() -> None:
    """Refill the report's totals (daily charges, event counts, stage moves) from the events: the
    repair when verify finds them differing. The events are untouched; run it with no close running."""
    events = current_app().store.rebuild_report_totals()
    console.print(f"report totals refilled from {events:,} events")


# ---------------------------------------------------------------------------
# the daily close and the demo


@app.command()
def advance(
    on: Optional[str] = typer.Option(None, "--date", help="Business date to close (YYYY-MM-DD); default: every date since the last close up to today"),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Cases per batch (one Prefect task each)"),
    as_json: bool = typer.Option(False, "--json"),
    worker: bool = typer.Option(
        False, "--worker", help="Join the close of --date (default: the dates being closed now) as an extra worker: claim and close batches until none is left; no Prefect server needed"
    ),
) -> None:
    """Run the daily close flow (advance-portfolio) in Prefect's local mode, or help a running close (--worker)."""
    from flows.daily import advance_portfolio, dates_to_close

    from flows.local_server import die_with_this_process, local_mode_heartbeats_off

    business_date = parse_date(on, "--date")
    app = current_app()  # refuse a future date, or one before the last close, before Prefect starts
    dates_to_close(None if worker else app.store.last_closed_business_date(), business_date, app.today())
    if worker:
        _help_close(business_date, as_json)
        return
    die_with_this_process()  # a killed advance leaves no Prefect server behind
    with local_mode_heartbeats_off():
        state = advance_portfolio(business_date=business_date, batch_size=batch_size, return_state=True)
    data = state.result(raise_on_failure=False)
    summary = getattr(data, "summary", data)  # a failed run carries StuckCases(summary)
    summary = summary if isinstance(summary, dict) else {}
    if as_json:
        print_json({"state": state.type.value, "message": state.message, **summary})
    else:
        console.print(report.close_summary(summary, state.type.value, state.message))
    if not state.is_completed():
        raise typer.Exit(1)


def _help_close(business_date: Optional[date], as_json: bool) -> None:
    """The extra worker of ``advance --worker``: the same batch handler the flow's tasks call.

    With no close to join it did nothing: it says so on stderr (after the JSON, with --json) and exits 1."""
    import time

    from flows.handlers.close import work_day

    app_ = current_app()
    dates = [business_date] if business_date else []
    deadline = time.monotonic() + app_.settings.join_seconds
    while not dates and time.monotonic() < deadline:
        dates = app_.store.dates_being_closed()
        time.sleep(0 if dates else 0.5)
    done = []
    for day in dates:
        mine = work_day(app_, day)
        if mine is not None:
            done.append({"business_date": day.isoformat(), "advanced": mine.advanced, "events": mine.events, "stuck": len(mine.stuck)})
    if as_json:
        print_json({"role": "worker", "dates": done})
    for row in [] if as_json else done:
        console.print(f"helped close {row['business_date']}: {row['advanced']} cases advanced by this worker, {row['events']} events, {row['stuck']} stuck")
    if not done:
        waited = f"{app_.settings.join_seconds:g} s (COLLECTFLOW_JOIN_SECONDS)"
        what = f"the close of {business_date}" if business_date else "a close"
        sys.stderr.write(f"no close to join: waited {waited} for {what} to be planned; start the daily close first\n")
        raise typer.Exit(1)


MAX_DEMO_LOANS = 1_000_000


@app.command()
def demo(
    size: int = typer.Option(10_000, min=10, help="Loans in the synthetic book"),
    days: int = typer.Option(180, min=1, help="Business days to close"),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same book and figures"),
    start: str = typer.Option("2026-01-01", help="First business date"),
    data_dir: Path = typer.Option(Path("collectflow-data"), help="Where the demo database is written"),
) -> None:
    """Seed a synthetic loan book and close DAYS business days through the real daily flow."""
    import time

    from datetime import timedelta

    from flows.bootstrap import lender_clock
    from models.settings import get_settings
    from states.parse import InputError

    first = parse_date(start, "--start")
    if size > MAX_DEMO_LOANS:
        raise InputError(f"--size: at most {MAX_DEMO_LOANS:,} loans in a demo, got {size:,}")
    today, last = lender_clock(get_settings().timezone)(), first + timedelta(days=days - 1)
    if last > today:  # refused before anything is written: the close refuses a day after today
        raise InputError(
            f"--start {first} and --days {days} would close up to {last}, after today ({today} in the lender's time zone); "
            f"start on {today - timedelta(days=days - 1)} or earlier, or close fewer days"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = (data_dir / "demo.db").resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    os.environ["COLLECTFLOW_DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["COLLECTFLOW_DATA_DIR"] = str(data_dir.resolve())
    from models.db import upgrade

    upgrade(os.environ["COLLECTFLOW_DATABASE_URL"])  # a new demo database, at the current schema

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # the progress bar tells the story

    from flows import demo as demo_flow
    from flows import runtime
    from flows.local_server import die_with_this_process, local_mode_heartbeats_off

    die_with_this_process()  # a killed demo leaves no Prefect server behind
    console.print(f"[bold]collectflow demo[/]: {size:,} loans, {days} business days from {first}, seed {seed}")
    console.print("Starting Prefect in local mode (a temporary server; 10-30 s on a small machine) ...")
    began = time.monotonic()
    with report.progress(console) as bar, local_mode_heartbeats_off():
        task_id = bar.add_task("closing business days", total=days)
        result = demo_flow.run_demo(
            size=size, days=days, start=first, seed=seed, on_day_closed=lambda n, _total: bar.update(task_id, completed=n)
        )
    elapsed = time.monotonic() - began
    store = runtime.store()
    printout, tries = report.demo_report(result, store, elapsed, db_path, console.width)
    console.print(printout)
    for line in tries:  # soft-wrapped: a long path stays one line to copy
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    from models.seals import seal

    sealed = seal(store.engine, runtime.settings(), date.fromisoformat(result["end"]))
    console.print(f"Sealed {sealed.body.cases:,} cases and {sealed.body.events:,} events: {sealed.path}", highlight=False, soft_wrap=True)
    console.print(f"  .venv/bin/collectflow verify --seals {sealed.path.parent}    # nothing rewritten since", highlight=False, soft_wrap=True, markup=False)


@app.command("report")
def report_command(
    as_of: Optional[str] = typer.Option(None, "--as-of", help="A closed business date (YYYY-MM-DD); default: the last date the close ran for"),
    out: Optional[Path] = typer.Option(None, "--out", help="Directory for the charts, report.json and report.md (created if missing); default: DATA_DIR/reports/DATE"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object"),
) -> None:
    """The portfolio report: stages, buckets, roll rates, cure, promises, recovery, charges, costs, stuck cases; with PNG charts."""
    from flows.charts import save_report
    from flows.handlers.reports import build_report, report_date

    current = current_app()
    day = report_date(current.store, parse_date(as_of, "--as-of"), current.today())
    data = build_report(current.store, day).as_dict()
    written = save_report(data, out if out is not None else current.settings.data_dir / "reports" / day.isoformat())
    if as_json:
        print_json(data)
        return
    console.print(report.portfolio_report(data))
    console.print(f"charts, report.json and report.md written to {written['json'].parent.resolve()}", highlight=False, soft_wrap=True)


@app.command()
def serve(
    replace: bool = typer.Option(
        False, "--replace", help="Take over deployments of the same names that `prefect deploy` registered for workers"
    ),
) -> None:
    """Serve the deployments (daily close at 02:00 Asia/Shanghai, retry-case, operator actions).

    Uses the Prefect server at PREFECT_API_URL; without one, starts a local
    server on 127.0.0.1:4200 (UI included) while it runs. Runs until interrupted.
    Refuses a server that has the same deployments from `prefect deploy`.
    """
    from flows.deployments import serve_all

    serve_all(log=console.print, replace=replace)


# ---------------------------------------------------------------------------
# operator actions: each builds its command (validated there) and calls the one handler


NEGATIVE_OK = {"ignore_unknown_options": True}  # so "pay CASE -100" reaches the amount check, not "no such option"


@app.command(context_settings=NEGATIVE_OK)
def pay(
    case: str = typer.Argument(..., help=RecordPayment.help("case")),
    amount: str = typer.Argument(..., help=RecordPayment.help("amount")),
    on: str = typer.Option(..., "--on", help=RecordPayment.help("received_on")),
    payment_id: str = typer.Option(..., "--payment-id", help=RecordPayment.help("payment_id")),
    operator: str = typer.Option(..., "--operator", help=RecordPayment.help("operator")),
    channel: str = typer.Option("bank_transfer", help=f"{RecordPayment.help('channel')}: {accepted(PaymentChannel)}"),
    expect_total: Optional[str] = typer.Option(None, "--expect-total", help=RecordPayment.help("expect_total")),
    backdate_reason: str = typer.Option("", "--backdate-reason", help=RecordPayment.help("backdate_reason")),
) -> None:
    """Record a payment; it is allocated line by line (costs, interest, principal). A payment dated
    before the case's last closed date is value-dated (applied as of its date)."""
    from states.explain import payment_notes

    events = run_command(
        RecordPayment(
            case=case, amount=amount, received_on=on, payment_id=payment_id, operator=operator, channel=channel,
            expect_total=expect_total, backdate_reason=backdate_reason,
        )
    )
    for e in events:
        if e.type == "PaymentReceived":
            for note in payment_notes(e, current_app().store.events(e.case_id)[0]):
                console.print(f"[yellow]note:[/] {note}", highlight=False)


@app.command(context_settings=NEGATIVE_OK)
def promise(
    case: str = typer.Argument(..., help=MakePromise.help("case")),
    amount: str = typer.Argument(..., help=MakePromise.help("amount")),
    by: str = typer.Option(..., "--by", help=MakePromise.help("promised_on")),
    on: str = typer.Option(..., "--on", help=MakePromise.help("made_on")),
    operator: str = typer.Option(..., "--operator", help=MakePromise.help("operator")),
) -> None:
    """Record a promise to pay; it holds escalation until its date."""
    run_command(MakePromise(case=case, amount=amount, promised_on=by, made_on=on, operator=operator))


@app.command()
def contact(
    case: str = typer.Argument(..., help=RecordContact.help("case")),
    channel: str = typer.Option(..., help=f"{RecordContact.help('channel')}: {accepted(ContactChannel)}"),
    outcome: str = typer.Option(..., help=f"{RecordContact.help('outcome')}: {accepted(ContactOutcome)}"),
    at: str = typer.Option(..., "--at", help=RecordContact.help("contacted_at")),
    operator: str = typer.Option(..., "--operator", help=RecordContact.help("operator")),
    party: str = typer.Option("borrower", help=f"{RecordContact.help('party')}: {accepted(ContactParty)}"),
    by: str = typer.Option("lender", "--by", help=RecordContact.help("by")),
    disclosed_debt: bool = typer.Option(False, "--disclosed-debt", help=RecordContact.help("disclosed_debt")),
    asked_to_pay: bool = typer.Option(False, "--asked-to-pay", help=RecordContact.help("asked_to_pay")),
    collectors: str = typer.Option("1", help=RecordContact.help("collectors")),
    note: str = typer.Option("", help=RecordContact.help("note")),
) -> None:
    """Record a contact attempt; one that breaks the conduct rules is refused and the refusal recorded."""
    events = run_command(
        RecordContact(
            case=case, channel=channel, outcome=outcome, contacted_at=at, operator=operator,
            party=party, by=by, disclosed_debt=disclosed_debt, asked_to_pay=asked_to_pay, collectors=collectors, note=note,
        )
    )
    if any(e.type == "ContactRefused" for e in events):
        raise typer.Exit(1)


@app.command()
def pause(
    case: str = typer.Argument(..., help=PauseCase.help("case")),
    reason: str = typer.Option(..., help=f"{PauseCase.help('reason')}: {accepted(PauseReason)}"),
    until: str = typer.Option(..., help=PauseCase.help("until")),
    on: str = typer.Option(..., "--on", help=PauseCase.help("made_on")),
    operator: str = typer.Option(..., "--operator", help=PauseCase.help("operator")),
) -> None:
    """Pause escalation (not accrual) until a date."""
    run_command(PauseCase(case=case, reason=reason, until=until, made_on=on, operator=operator))


@app.command()
def resume(
    case: str = typer.Argument(..., help=ResumeCase.help("case")),
    on: str = typer.Option(..., "--on", help=ResumeCase.help("made_on")),
    operator: str = typer.Option(..., "--operator", help=ResumeCase.help("operator")),
) -> None:
    """Lift a pause."""
    run_command(ResumeCase(case=case, made_on=on, operator=operator))


@app.command("write-off")
def write_off(
    case: str = typer.Argument(..., help=WriteOff.help("case")),
    reason: str = typer.Option(..., help=WriteOff.help("reason")),
    on: str = typer.Option(..., "--on", help=WriteOff.help("made_on")),
    operator: str = typer.Option(..., "--operator", help=WriteOff.help("operator")),
) -> None:
    """Write a case off (from outsourced; from litigation once execution ended without recovery)."""
    run_command(WriteOff(case=case, reason=reason, made_on=on, operator=operator))


@lawsuit_app.command("file")
def lawsuit_file(
    case: str = typer.Argument(..., help=FileLawsuit.help("case")),
    on: str = typer.Option(..., "--on", help=FileLawsuit.help("filed_on")),
    operator: str = typer.Option(..., "--operator", help=FileLawsuit.help("operator")),
    override: Optional[str] = typer.Option(None, "--override", help=FileLawsuit.help("override")),
) -> None:
    """File a lawsuit outside the automatic rule; refused with the reason when suing is not worth it, unless --override."""
    run_command(FileLawsuit(case=case, filed_on=on, operator=operator, override=override))


@lawsuit_app.command("judgment", context_settings=NEGATIVE_OK)
def lawsuit_judgment(
    case: str = typer.Argument(..., help=EnterJudgment.help("case")),
    amount: str = typer.Option(..., "--amount", help=EnterJudgment.help("amount")),
    deadline: str = typer.Option(..., "--deadline", help=EnterJudgment.help("deadline")),
    on: str = typer.Option(..., "--on", help=EnterJudgment.help("entered_on")),
    operator: str = typer.Option(..., "--operator", help=EnterJudgment.help("operator")),
    court: str = typer.Option("", "--court", help=EnterJudgment.help("court")),
    case_number: str = typer.Option("", "--case-number", help=EnterJudgment.help("case_number")),
) -> None:
    """Record the judgment; from the day after the deadline the unpaid judgment debt bears delayed-performance interest."""
    run_command(EnterJudgment(case=case, amount=amount, deadline=deadline, entered_on=on, operator=operator, court=court, case_number=case_number))


@lawsuit_app.command("execution")
def lawsuit_execution(
    case: str = typer.Argument(..., help=RecordExecution.help("case")),
    outcome: str = typer.Option(..., "--outcome", help=f"{RecordExecution.help('outcome')}: {accepted(ExecutionOutcome)}"),
    on: str = typer.Option(..., "--on", help=RecordExecution.help("recorded_on")),
    operator: str = typer.Option(..., "--operator", help=RecordExecution.help("operator")),
) -> None:
    """Record how execution ended and post the execution fee as a cost; no_assets allows the write-off."""
    run_command(RecordExecution(case=case, outcome=outcome, recorded_on=on, operator=operator))


@app.command("retry-case")
def retry_case(
    case: str = typer.Argument(..., help="Case id or contract number"),
    on: Optional[str] = typer.Option(None, "--date", help="Date to advance to; default: the date it got stuck on, else the last closed date"),
) -> None:
    """Advance one (stuck) case: to --date, else the date it got stuck on, else the last closed date."""
    from flows.handlers.cases import retry_case as retry

    case_id, day, result = retry(current_app(), case, parse_date(on, "--date"))
    if day is None:
        fail("no business date has been closed yet; give --date")
    if result.stuck:
        fail(f"still stuck: {result.stuck[case_id]}", code=1)
    console.print(f"case {case_id}: advanced to {day} ({result.events} events)")


# ---------------------------------------------------------------------------
# audit (one case's views: flows.case_cli)


@app.command("verify-export")
def verify_export_command(
    file: Path = typer.Argument(..., help="A file written by collectflow case export"),
    public_key: Optional[Path] = typer.Option(None, "--public-key", help="The trusted seal public key file (default: the one the file names)"),
) -> None:
    """Check a case export with the file alone: its chain, its seal's signature and Merkle proof, its digest."""
    from models.export import verify_export
    from models.seals import read_public_key

    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        fail(f"{file}: not JSON ({exc})")
    key = read_public_key(public_key.read_text(encoding="ascii")) if public_key else None
    checked = verify_export(document, key)
    for problem in checked.problems:
        console.print(f"[red]{escape(problem)}[/]", highlight=False)
    sealed = f", sealed through seq {checked.sealed_through}" if checked.sealed_through else ", no seal in the file"
    trust = "" if public_key else " (the seal's key as the file names it: give --public-key to trust your own copy)"
    console.print(f"{file}: {checked.events} events{sealed}: {'ok' if checked.ok else 'NOT ok'}{trust}", highlight=False, soft_wrap=True)
    if not checked.ok:
        raise typer.Exit(1)


@app.command()
def verify(
    cases: Optional[list[str]] = typer.Argument(None, help="Case ids or contract numbers (default: every case)"),
    seals: Optional[Path] = typer.Option(None, "--seals", help="Also check the store against the signed seals in this folder"),
    public_key: Optional[Path] = typer.Option(None, "--public-key", help="The trusted seal public key file (default: the key dir's)"),
    incremental: bool = typer.Option(
        False, "--incremental",
        help="The same findings, but replay only the cases changed since an incremental verify last found them clean",
    ),
) -> None:
    """Check every hash chain and that replay reproduces every stored projection; with --seals,
    that nothing a seal covered was deleted, shortened or rewritten since."""
    from models.audit import verify as run_verify
    from models.crypto import configured_keyring
    from models.errors import CaseNotFound

    store = current_app().store
    keyring = configured_keyring()  # with it, each borrowers row is also checked against its own ciphertext
    if seals is not None and not seals.is_dir():  # before the long pass, not after it
        fail(f"--seals {seals}: {'a file, not a folder' if seals.exists() else 'no such folder'}; give the folder the closes write their seals to (COLLECTFLOW_SEALS_DIR)")
    if public_key is not None and not public_key.is_file():
        fail(f"--public-key {public_key}: no such file; give the seals' public key file (seal-signing.pub in the key dir)")

    def case_id(ref: str) -> str:
        try:
            return store.resolve_case_id(ref)
        except CaseNotFound:  # a case whose row is gone: verify reports what is left of it
            if not store.has_events(ref.strip()):
                raise  # nothing stored under it at all: a mistyped reference, not a finding
            return ref.strip()

    ids = [case_id(ref) for ref in cases or ()]
    with report.progress(console) as bar:
        task_id = bar.add_task("verifying", total=None)
        outcome = run_verify(
            store.engine, ids or None, on_progress=lambda n: bar.update(task_id, completed=n), chain_key=store.chain_key,
            keyring=keyring, incremental=incremental,
        )
    report.print_verify(console, outcome)
    if keyring is None:
        console.print("[dim]no personal data key configured: borrowers rows checked against the events only, not against their ciphertext[/]")
    ok = outcome.ok
    if seals is None:
        console.print("[dim]history checked against itself only; give --seals DIR to check it against the signed seals[/]")
    else:
        from models.seals import check_store_seals, read_public_key

        key = read_public_key(public_key.read_text(encoding="ascii")) if public_key else _trusted_key()
        checked = check_store_seals(store.engine, seals, key)
        for finding in checked.findings:
            console.print(f"[red]{escape(str(finding))}[/]", highlight=False)
        if checked.others:
            console.print(f"[dim]{checked.others} seal(s) in {seals} belong to another store: not checked[/]", highlight=False)
        console.print(f"checked against {checked.checked} seal(s) in {seals}: {len(checked.findings)} finding(s)", highlight=False)
        ok = ok and not checked.findings
    if not ok:
        raise typer.Exit(1)


def _trusted_key():
    """The public key of the key dir (the one the closes sign with), if it is there."""
    from models.seals import PUBLIC_KEY_FILE, read_public_key

    path = current_app().settings.key_dir / PUBLIC_KEY_FILE
    return read_public_key(path.read_text(encoding="ascii")) if path.exists() else None


@app.command()
def whatif(
    policy: Path = typer.Option(..., "--policy", help="The proposed collection policy (TOML, as docs/policy.example.toml)"),
    start: Optional[str] = typer.Option(None, "--from", help="First date compared (default: 30 days before --to)"),
    end: Optional[str] = typer.Option(None, "--to", help="Last date compared (default: the last closed business date)"),
    cases: Optional[int] = typer.Option(None, "--cases", min=1, help="Only the first N cases (by id)"),
    sample: Optional[str] = typer.Option(None, "--sample", help="Only a reproducible sample of P percent of the cases"),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the per-case differences here (.csv or .json)"),
    as_json: bool = typer.Option(False, "--json", help="Print the totals as one JSON object"),
) -> None:
    """Rerun the recorded history under a proposed policy and report what would have differed.

    Payments, promises, contacts, pauses and operator actions are replayed on their dates; the
    rules decide the rest. Nothing in the store changes."""
    from flows.bootstrap import load_policy
    from flows.handlers.whatif import whatif as run_whatif
    from states.parse import parse_decimal

    result = run_whatif(
        current_app(), load_policy(policy), start=parse_date(start, "--from"), end=parse_date(end, "--to"), cases=cases,
        sample=None if sample is None else parse_decimal(sample, "--sample"),
    )
    totals = result.totals()
    if out is not None:
        rows = [d.as_dict() for d in result.differences if d.differs]
        if out.suffix.lower() == ".json":
            out.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        elif out.suffix.lower() == ".csv":
            import csv

            with out.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, list(rows[0]) if rows else ["case_id"])
                writer.writeheader()
                writer.writerows(rows)
        else:
            fail(f"--out {out}: give a .csv or .json file name")
    if as_json:
        print_json(totals)
    else:
        console.print(report.rows_table([{"figure": k.replace("_", " "), "value": v} for k, v in totals.items()], ("figure", "value"), f"what if {policy.name}", console.width))
        if out is not None:
            console.print(f"per-case differences: {out}", highlight=False, soft_wrap=True)


@app.command()
def doctor() -> None:
    """Check this installation: the schema, where the keys are and who may read them, the seals."""
    from flows.bootstrap import bootstrap
    from flows.handlers.doctor import checks

    results = checks(bootstrap(require_schema=False, make_keys=False))  # a diagnostic writes nothing
    colours = {"ok": "green", "warn": "yellow", "fail": "red"}
    for level, message in results:
        console.print(f"[{colours[level]}]{level:4}[/] {escape(message)}", highlight=False, soft_wrap=True)
    if any(level == "fail" for level, _ in results):
        raise typer.Exit(1)


@app.command("seal")
def seal_command(on: Optional[str] = typer.Option(None, "--date", help="The business date the seal is for (default: the last closed one)")) -> None:
    """Seal the store now: a signed Merkle root over every case's newest event, written to the seals dir."""
    from models.seals import seal

    from states.parse import InputError

    app_ = current_app()
    given = parse_date(on, "--date")
    if given is not None:
        record = app_.store.business_day(given)
        if record is None or record.status != "closed":
            last = app_.store.last_closed_business_date()
            raise InputError(
                f"--date: {given} is not a closed business date (the last close was {last or 'never'}); "
                "a seal is of a closed date, or leave --date out"
            )
    day = given or app_.store.last_closed_business_date() or app_.today()
    made = seal(app_.engine, app_.settings, day)
    console.print(f"sealed {made.body.cases} cases, {made.body.events} events for {day}: {made.path}", highlight=False)
@app.command("credit-report")
def credit_report(
    month: str = typer.Option(..., "--month", help="The month to export, YYYY-MM; its last day must have been closed"),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the file here (default: standard output)"),
    file_format: str = typer.Option("csv", "--format", help="csv (a # line, a header row, one row per record) or jsonl (a metadata object, one object per record)"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Age records out as of this date (default: today in the lender's time zone)"),
) -> None:
    """Export a closed month's credit-report records, by account: the same month and date give the same bytes."""
    from flows.handlers.credit import ReportFormat, credit_report as month_report, render
    from states.parse import parse_enum

    fmt = parse_enum(ReportFormat, file_format, "--format")
    report = month_report(current_app(), month, parse_date(as_of, "--as-of"), field="--month")
    data = render(report, fmt)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        out.write_bytes(data)
        err.print(f"{report.month}: {len(report.records)} records ({report.aged_out} aged out) written to {out}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    main()
