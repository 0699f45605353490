"""What people read: Rich tables and panels for the CLI and the demo.

Presentation only: every figure shown here was computed by the domain or
the store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from rich.console import Console, Group
from rich.panel import Panel
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from states.events import Event
from states.explain import describe
from states.views import BALANCE_FIELDS

def yuan(value: object) -> str:
    return f"{Decimal(str(value)):,.2f}"


def redact_url(url: str) -> str:
    return re.sub(r"//([^:/@]+):([^@]+)@", r"//\1:***@", url)


def fees_table(costs) -> Table:
    table = Table(title=f"Litigation costs of a claim of {yuan(costs.claim)} yuan ({costs.procedure.value} procedure)")
    table.add_column("fee")
    table.add_column("yuan", justify="right")
    for name, value in (
        ("case acceptance", costs.acceptance),
        ("property preservation", costs.preservation),
        ("execution", costs.execution),
        ("attorney", costs.attorney),
    ):
        table.add_row(name, yuan(value))
    table.add_row("[bold]total[/]", f"[bold]{yuan(costs.total)}[/]")
    return table


def close_summary(summary: dict, state: str, message: str | None) -> Panel:
    table = Table(show_header=False, box=None)
    for key in ("advanced", "events", "charges_posted", "penalties_posted", "unenforceable", "recovered"):
        if key in summary:
            table.add_row(key.replace("_", " "), str(summary[key]))
    for move, n in sorted(summary.get("transitions", {}).items()):
        table.add_row(f"stage {move}", str(n))
    stuck = summary.get("stuck", {})
    table.add_row("stuck cases", str(len(stuck)))
    colour = "green" if state == "COMPLETED" else "red"
    body = [table] + ([f"[red]{message}[/]"] if message and state != "COMPLETED" else [])
    return Panel(Group(*body), title=f"daily close: [{colour}]{state}[/]")


def event_line(e: Event) -> str:
    """One event as the CLI prints it after an operator action: the one description (``states.explain``)."""
    return f"{e.case_id} #{e.seq} {e.business_date} [bold]{e.type}[/] {escape(describe(e))} (by {e.actor})"


def case_panel(view, stuck: str | None = None) -> Panel:
    """A case as a collector reads it before calling: stage, balances, and what is pending on it."""
    d = view.as_dict()
    table = Table(show_header=False, box=None)
    table.add_row("stage", f"[bold]{d['stage']}[/]")
    table.add_row("days past due", f"{d['dpd']} ({d['bucket']}, {d['classification'].replace('_', ' ')})")
    amounts = [k for k in BALANCE_FIELDS if k not in ("stage", "dpd")]
    accrued_after = amounts.index("contract_interest_due") + 1  # shown beside the interest already due
    for key in [*amounts[:accrued_after], "contract_interest_accrued", *amounts[accrued_after:]]:
        table.add_row(key.replace("_", " "), yuan(d[key]))
    table.add_row("next review", str(d["next_review_on"]))
    pending = [
        ("promise to pay", d.get("promise_amount") and f"{yuan(d['promise_amount'])} by {d['promise_until']}"),
        ("paused", d.get("paused_until") and f"{d['pause_reason']} until {d['paused_until']}"),
        ("agency", d.get("agency_id") and f"{d['agency_id']} until {d['placement_until']}"),
        ("last contact", d.get("last_contact_at") and f"{d['last_contact_at']} {d['last_contact_channel']} "
         f"{d['last_contact_party']}: {d['last_contact_outcome']}"),
        ("stuck", stuck and f"[red]{escape(stuck)}[/]"),
    ]
    for label, text in pending:
        table.add_row(label, text or "-")
    return Panel(table, title=f"case {d['case_id']} ({d['contract_no']}) as of {d['as_of']}")


def file_progress(console: Console, *columns) -> Progress:
    """The progress bar of a file import, on stderr: ``columns`` after the bar, then rows and time."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        *columns,
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def print_file_report(out: Console, report, title: str, figures: Sequence[tuple[str, object]]) -> None:
    """An import's figures as a table, then the columns not used and the first rejections (masked)."""
    table = Table(title=title, show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, value in figures:
        table.add_row(label, value if isinstance(value, str) else f"{value:,}")
    table.add_row("time", f"{report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s)")
    out.print(table)
    if report.ignored_columns:
        out.print(f"columns not used: {', '.join(report.ignored_columns)}", highlight=False)
    if report.rejected:
        out.print(f"[bold red]{report.rejected:,} row(s) rejected[/]; written to {report.rejects_file} "
                  "(owner-only: it holds the rows as given). Fix them there and import that file again:")
        for message in report.rejections[:10]:
            out.print(f"  {message}", highlight=False, soft_wrap=True)
        if report.rejected > 10:
            out.print(f"  ... and {report.rejected - 10:,} more in the rejects file")


def progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _rate(numerator: int, denominator: int) -> str:
    return f"{100 * numerator / denominator:.1f} %" if denominator else "n/a"


def demo_report(result: dict, store, elapsed: float, db_path: Path) -> Group:
    close, commands = result["close"], result["commands"]
    moves: dict[str, int] = {}
    for source in (close["transitions"], commands["transitions"]):
        for move, n in source.items():
            moves[move] = moves.get(move, 0) + n
    summary = store.portfolio_summary()

    stages = Table(title=f"Portfolio by stage on {result['end']}")
    for col in ("stage", "cases", "principal outstanding", "total due", "unenforceable"):
        stages.add_column(col, justify="left" if col == "stage" else "right")
    for row in (*summary.stages, summary.total):
        stages.add_row(
            row.stage if row is not summary.total else "[bold]all[/]",
            f"{row.cases:,}",
            yuan(row.principal_outstanding),
            yuan(row.total_due),
            yuan(row.unenforceable),
        )

    went_overdue = moves.get("current->overdue", 0)
    cured = sum(n for move, n in moves.items() if move.endswith("->current"))
    flow = Table(title="Cure and roll rates over the run (moves between stages; a case can move more than once)")
    flow.add_column("movement")
    flow.add_column("moves", justify="right")
    flow.add_column("rate", justify="right")
    flow.add_row("fell overdue (current -> overdue)", f"{went_overdue:,}", "")
    flow.add_row("cured (back to current)", f"{cured:,}", _rate(cured, went_overdue))
    for source, target in (("overdue", "phone"), ("phone", "visit"), ("visit", "outsourced"), ("outsourced", "litigation")):
        entered = sum(n for move, n in moves.items() if move.endswith(f"->{source}"))
        rolled = moves.get(f"{source}->{target}", 0)
        flow.add_row(f"rolled {source} -> {target}", f"{rolled:,}", _rate(rolled, entered))
    flow.add_row("settled", f"{sum(n for m, n in moves.items() if m.endswith('->settled')):,}", "")
    flow.add_row("written off", f"{sum(n for m, n in moves.items() if m.endswith('->written_off')):,}", "")

    money = Table(title="Money")
    money.add_column("figure")
    money.add_column("yuan", justify="right")
    recovered = Decimal(commands["recovered"]) + Decimal(close["recovered"])
    money.add_row("payments received (allocated)", yuan(recovered))
    money.add_row("charges posted (interest, penalties, fees)", yuan(Decimal(close["charges_posted"]) + Decimal(commands["charges_posted"])))
    money.add_row("penalty and compound interest posted", yuan(Decimal(close["penalties_posted"]) + Decimal(commands["penalties_posted"])))
    money.add_row("above the legal cap (unenforceable, never charged)", yuan(Decimal(close["unenforceable"]) + Decimal(commands["unenforceable"])))

    stuck = close["stuck"]
    example = store.example_case_ids()
    lines = [
        f"[bold]{result['booked']:,}[/] loans booked ({', '.join(f'{k} {v}' for k, v in sorted(result['profiles'].items()))}); "
        f"{result['days']} business days closed {result['start']} .. {result['end']}; "
        f"{result['promises']:,} promises to pay taken.",
        f"stuck cases: [bold]{len(stuck)}[/]" + (f" ({', '.join(sorted(stuck)[:5])})" if stuck else ""),
        f"wall time: [bold]{elapsed:.0f} s[/]; database: [bold]{db_path}[/]",
        "",
        "Try, on this database:",
    ]
    lines.append(f"  export COLLECTFLOW_DATABASE_URL=sqlite:///{db_path}")
    for label, case_id in example.items():
        lines.append(f"  .venv/bin/collectflow case replay {case_id}    # a case now in {label}")
    lines.append("  .venv/bin/collectflow case show CASE --as-of 2026-03-31")
    lines.append("  .venv/bin/collectflow verify")
    return Group(stages, flow, money, *lines)


def print_timeline(console: Console, rows) -> None:
    """One block per event: what happened, the balances after it, each charge explained beneath."""
    for row in rows:
        b = row.balances
        actor = "" if row.actor == "system" else f" [cyan]by {row.actor}[/]"
        console.print(
            f"[bold]#{row.seq:<4}[/] {row.business_date}  [bold]{row.type}[/]{actor}  "
            f"[dim]-> {b['stage']}, DPD {b['dpd']}, due {yuan(b['total_due'])}, principal {yuan(b['principal_outstanding'])}[/]",
            highlight=False,
        )
        if row.description:
            console.print(f"       {row.description}", highlight=False, soft_wrap=False)
        for charge in row.charges:
            console.print(f"         [dim]{charge.text()}[/]", highlight=False)
    if rows:
        last = rows[-1].balances
        console.print(
            f"\nafter #{rows[-1].seq}: principal {yuan(last['principal_outstanding'])}, contract interest due "
            f"{yuan(last['contract_interest_due'])}, penalty {yuan(last['penalty_interest'])}, compound "
            f"{yuan(last['compound_interest'])}, late fees {yuan(last['late_fees'])}, costs {yuan(last['costs'])}; "
            f"total due {yuan(last['total_due'])}; above the cap (never charged) {yuan(last['unenforceable'])}; "
            f"paid {yuan(last['total_paid'])}",
            highlight=False,
        )


def print_verify(console: Console, outcome) -> None:
    if outcome.ok:
        console.print(
            f"[green]verified[/]: {outcome.cases_checked:,} cases, {outcome.events_checked:,} events; "
            "every hash chain intact and every projection reproduced by replay"
        )
        return
    console.print(f"[red]verification failed[/] for {len(outcome.failing_cases)} case(s):")
    for finding in outcome.findings:
        console.print(f"  {finding}")
