"""``collectflow payments``: record a payment file (money received by the channels), case by case.

    collectflow payments import FILE --operator OP [--rejects PATH] [--date D] [--json]

The import calls ``flows.handlers.payments.import_payments`` directly, with a
progress bar (reading the file, then applying its payments); the
``ingest-payments`` deployment in ``flows.ingest_payments`` runs the same
function on a worker. Exit code 1 when rows were rejected, 2 when the file
cannot be read (the root group's one line). The payer's name is never
printed unmasked.

Prefect is not imported here, so the command starts as fast as the rest of
the CLI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import TaskProgressColumn

from flows.report import file_progress, print_file_report, yuan

payments_app = typer.Typer(
    help="Payment files: money received by the channels, each row recorded on its case (CSV or JSON Lines).",
    no_args_is_help=True,
)

console = Console()
err = Console(stderr=True)


@payments_app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="The payment file: .csv or .jsonl (JSON Lines), optionally .gz"),
    operator: str = typer.Option(..., "--operator", help="Your operator id: checked on the roster, the actor of every payment"),
    rejects: Optional[Path] = typer.Option(None, "--rejects", help="Where rejected rows go (default: beside FILE, NAME.rejects.csv)"),
    on: Optional[str] = typer.Option(None, "--date", help="The import's business date; no payment is dated after it (default: today, Asia/Shanghai)"),
    encoding: str = typer.Option("utf-8", help="The file's text encoding (e.g. gbk for a file saved by a Chinese Excel)"),
    chunk_rows: int = typer.Option(2000, min=1, help="Rows applied per transaction"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object"),
) -> None:
    """Record a payment file: each row checked, good rows applied in date order per case, bad rows to the rejects file.

    Idempotent on payment_id: the same row again records nothing; the same id with another case,
    amount or date is rejected naming both. Exit code 1 when rows were rejected.
    """
    from flows import runtime
    from flows.cli_common import parse_date
    from flows.handlers.payments import import_payments

    app = runtime.app()
    business_date = parse_date(on, "--date") or app.today()
    with file_progress(err, TaskProgressColumn()) as bar:
        task = bar.add_task(f"reading {file.name}", total=1, rows=0)

        def on_progress(stage: str, rows: int, done: int, total: int) -> None:
            bar.update(task, description=f"{stage} {file.name}", completed=done, total=max(total, 1), rows=rows)

        report = import_payments(
            app, file, business_date=business_date, operator=operator, rejects=rejects, encoding=encoding,
            chunk_rows=chunk_rows, on_progress=on_progress,
        )
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        print_payment_report(console, report)
    if report.rejected:
        raise typer.Exit(1)


def print_payment_report(out: Console, report) -> None:
    print_file_report(out, report, f"Payments of {report.source} for business date {report.business_date}", (
        ("rows read", report.rows),
        ("applied", report.applied),
        ("unchanged (recorded before, same payment)", report.unchanged),
        ("rejected", report.rejected),
        ("amount applied (yuan)", yuan(report.amount_applied)),
        ("of which above everything owed", yuan(report.overpayment)),
        ("cases cured", report.cases_cured),
        ("cases settled", report.cases_settled),
        ("events written", report.events),
    ))
