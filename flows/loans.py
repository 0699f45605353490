"""``collectflow loans`` and ``collectflow borrower``: load the loan book, look at a borrower.

    collectflow loans import FILE [--schedules PLANS] [--payments HISTORY] [--amend] [--rejects PATH]
                                  [--date D] [--operator OP] [--json]
    collectflow borrower show CASE [--json]                       masked, as any screen shows it
    collectflow borrower reveal CASE --operator OP [--field phone] [--purpose TEXT]

The import calls ``flows.handlers.loans.import_file`` directly, with a progress
bar (the ``import-loans`` deployment in ``flows.import_loans`` runs the same
function on a worker). ``reveal`` prints one clear value and records who read
what as a ``PersonalDataRead`` event on the case, before printing it.
Nothing here prints a personal value unless asked through ``reveal``.

Prefect is not imported here, so these commands start as fast as the rest
of the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import DownloadColumn
from rich.table import Table

from flows.report import file_progress, print_file_report

loans_app = typer.Typer(help="The loan book: import contracts and their borrowers (CSV or JSON Lines).", no_args_is_help=True)
borrower_app = typer.Typer(
    help="A case's borrower: the details masked, or one clear value with the read recorded.", no_args_is_help=True
)

console = Console()
err = Console(stderr=True)


def _date(value: Optional[str], name: str):
    from flows.cli_common import parse_date

    return parse_date(value, name)


def _today():
    from flows import runtime

    return runtime.today()


def _store():
    from flows import runtime

    return runtime.store()


# --------------------------------------------------------------------------
# loans import


@loans_app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="The loan file: .csv or .jsonl (JSON Lines), optionally .gz"),
    schedules: Optional[Path] = typer.Option(
        None, "--schedules", help="The core system's repayment plans (contract_no, installment, due_on, principal, interest), used instead of computing them"
    ),
    payments: Optional[Path] = typer.Option(
        None, "--payments", help="The loans' payment history, in the payment file's format: booked on its dates as the loans catch up (needs --operator)"
    ),
    amend: bool = typer.Option(False, "--amend", help="Record changed contact details of booked contracts (never financial terms)"),
    rejects: Optional[Path] = typer.Option(None, "--rejects", help="Where rejected rows go (default: beside FILE, NAME.rejects.csv)"),
    on: Optional[str] = typer.Option(None, "--date", help="The import's business date (default: today, Asia/Shanghai)"),
    operator: Optional[str] = typer.Option(None, "--operator", help="Your operator id, a supervisor on the roster: the actor of the opening and amendment events (default: system, only while the operator roster is empty)"),
    encoding: str = typer.Option("utf-8", help="The file's text encoding (e.g. gbk for a file saved by a Chinese Excel)"),
    chunk_rows: int = typer.Option(2000, min=1, help="Rows booked per transaction"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object"),
) -> None:
    """Import loans and their borrowers: each row checked, good rows booked, bad rows to the rejects file.

    Idempotent on contract_no: the same row again books nothing; a changed row is refused
    unless --amend is given, and then only contact details change. Exit code 1 when rows were rejected.
    """
    from flows import runtime
    from models.crypto import load_keyring
    from flows.handlers.loans import import_file

    business_date = _date(on, "--date") or _today()
    store, keyring = _store(), load_keyring()
    with file_progress(err, DownloadColumn()) as bar:
        task = bar.add_task(f"importing {file.name}", total=max(file.stat().st_size if file.exists() else 1, 1), rows=0)
        report = import_file(
            store,
            file,
            business_date=business_date,
            policy=runtime.policy(),
            keyring=keyring,
            amend=amend,
            rejects=rejects,
            actor="system" if operator is None else operator,
            encoding=encoding,
            chunk_rows=chunk_rows,
            today=_today(),
            on_progress=lambda rows, done, total: bar.update(task, completed=done, total=max(total, 1), rows=rows),
            schedules=schedules,
            payments=payments,
        )
    if as_json:
        sys.stdout.write(_json(report.as_dict()) + "\n")
    else:
        print_import_report(console, report)
    if report.rejected_anywhere:
        raise typer.Exit(1)


def _json(data: object) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, indent=2)


def print_import_report(out: Console, report) -> None:
    print_file_report(out, report, f"Import of {report.source} for business date {report.business_date}", (
        ("rows read", report.rows),
        ("booked (new contracts)", report.booked),
        ("unchanged (booked before, same row)", report.unchanged),
        ("amended (contact details)", report.amended),
        ("rejected", report.rejected),
        ("events written", report.events),
    ))
    for option, side in (("--schedules", report.schedules), ("--payments", report.payments)):
        if side:
            out.print(
                f"{option} {side['source']}: {side['rows']} rows, {side['used']} booked (contracts: {side['contracts']}), "
                f"{side['unchanged']} unchanged, {side['rejected']} rejected"
                + (f" (to {side['rejects_file']})" if side["rejects_file"] else ""),
                highlight=False,
            )
            for message in side["rejections"][:10]:
                out.print(f"  {message}", highlight=False, markup=False)


# --------------------------------------------------------------------------
# borrower show / reveal


@borrower_app.command("show")
def borrower_show(
    case: str = typer.Argument(..., help="Case id or contract number"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The case's borrower, masked (138****1234): what every report and screen shows."""
    from flows.handlers.loans import borrower_masked

    details = borrower_masked(_store(), case)
    if as_json:
        sys.stdout.write(_json(details) + "\n")
        return
    table = Table(title=f"borrower of case {details['case_id']} ({details['contract_no']})", show_header=False)
    for key, value in details.items():
        if key not in ("case_id", "contract_no"):
            table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    console.print(table)


@borrower_app.command("reveal")
def borrower_reveal(
    case: str = typer.Argument(..., help="Case id or contract number"),
    operator: str = typer.Option(..., "--operator", help="Your operator id: recorded with the read"),
    field: str = typer.Option("phone", "--field", help="phone, name, national_id, address, guarantor_name or guarantor_phone"),
    purpose: str = typer.Option("collection contact", "--purpose", help="Why you need the clear value (recorded)"),
    on: Optional[str] = typer.Option(None, "--date", help="Business date of the read (default: today)"),
) -> None:
    """Print one clear personal value. The read is recorded first, as a PersonalDataRead event."""
    from models.crypto import load_keyring
    from flows.handlers.loans import reveal

    store = _store()
    value = reveal(
        store, load_keyring(), case, field, operator=operator, purpose=purpose, on=_date(on, "--date") or _today(), today=_today()
    )
    err.print(f"[dim]read of {field} recorded on case {store.resolve_case_id(case)} by {operator}[/]", highlight=False)
    sys.stdout.write(value + "\n")
