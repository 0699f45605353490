"""What people read: Rich tables and panels for the CLI and the demo, the portfolio report's tables.

Presentation only: every figure shown here was computed by the domain or
the store.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

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


def case_panel(view, stuck: str | None = None, lender: dict | None = None) -> Panel:
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
        ("agency", d.get("agency_id") and f"{d['agency_id']} until {d['placement_until']}"
         + (f" at {float(lender['agency_commission_rate']):.0%} commission" if lender and lender.get("agency_commission_rate") else "")),
        ("commission paid", lender and lender["agency_commission"] != "0.00" and f"{yuan(lender['agency_commission'])} (the lender's cost)"),
        ("last contact", d.get("last_contact_at") and f"{d['last_contact_at']} {d['last_contact_channel']} "
         f"{d['last_contact_party']}: {d['last_contact_outcome']}"),
        ("stuck", stuck and f"[red]{escape(stuck)}[/]"),
    ]
    for label, text in pending:
        table.add_row(label, text or "-")
    return Panel(table, title=f"case {d['case_id']} ({d['contract_no']}) as of {d['as_of']}")


def rows_table(rows: list[dict], columns, title: str, width: int | None = None) -> Table | Group:
    """A list of records as a table; where the terminal is too narrow for one row per line,
    one block per record (``name  value`` lines), so no value is ever cut."""
    cells = [["-" if row.get(c) is None else str(row[c]) for c in columns] for row in rows]
    needed = sum(max([len(c.replace("_", " ")), *(len(r[i]) for r in cells)]) + 3 for i, c in enumerate(columns)) + 1
    if width is not None and needed > width and rows:
        blocks: list[Table | str] = [f"[bold]{escape(title)}[/]"]
        for values in cells:
            block = Table(show_header=False, box=None, padding=(0, 1))
            block.add_column(style="dim")
            block.add_column(overflow="fold")
            for column, value in zip(columns, values):
                block.add_row(column.replace("_", " "), escape(value))
            blocks += [block, ""]
        return Group(*blocks)
    table = Table(title=title, title_justify="left")
    for column in columns:
        justify = "right" if column in MONEY_COLUMNS or column == "dpd" else "left"
        table.add_column(column.replace("_", " "), justify=justify, overflow="fold")  # wrap a value, never cut it
    for values in cells:
        table.add_row(*(escape(v) for v in values))
    return table


MONEY_COLUMNS = frozenset({"overdue_total", "total_owing", "priority", "total_due", "recovered", "commission", "cases", "rate"})
def file_progress(console: Console, *columns) -> Progress:
    """The progress bar of a file import, on stderr: ``columns`` after the bar, then rows and time.

    Drawn only on a terminal: elsewhere (a pipe, a log file) it would leave an empty line before
    what the import prints on stderr, a refusal's one line included."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        *columns,
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
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


def demo_report(result: dict, store, elapsed: float, db_path: Path, width: int | None = None) -> tuple[Group, list[str]]:
    """The demo's printout, and the commands to try on its database (printed unwrapped, to copy)."""
    close, commands = result["close"], result["commands"]
    moves: dict[str, int] = {}
    for source in (close["transitions"], commands["transitions"]):
        for move, n in source.items():
            moves[move] = moves.get(move, 0) + n
    summary = store.portfolio_summary()

    stages = Table(title=f"Portfolio by stage on {result['end']}")
    for col in ("stage", "cases", "principal outstanding", "total due", "unenforceable"):
        stages.add_column(col, justify="left" if col == "stage" else "right", overflow="fold")  # never cut a figure
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

    court = Table(title="Litigation (lawsuits filed by the close's rule and by the operator, judgments, executions)")
    court.add_column("figure")
    court.add_column("value", justify="right")
    counts = Counter(close.get("litigation", {})) + Counter(commands.get("litigation", {}))
    refused = sum(1 for message in commands["stuck"].values() if "lawsuit not filed" in message)
    court.add_row("lawsuits filed", f"{counts['LawsuitFiled']:,}")
    court.add_row("filings refused (not worth suing)", f"{refused:,}")
    court.add_row("judgments entered", f"{counts['JudgmentEntered']:,}")
    for outcome in ("recovered", "partial", "no_assets"):
        court.add_row(f"executions ended {outcome}", f"{counts['execution ' + outcome]:,}")
    delayed = Decimal(close.get("delayed_interest_posted", "0")) + Decimal(commands.get("delayed_interest_posted", "0"))
    court.add_row("delayed-performance interest posted (yuan)", yuan(delayed))
    # the desk's work over the run, counted from the events
    kinds = (
        ("ContactRecorded", "contacts recorded (lender and agencies)"),
        ("ContactRefused", "contacts refused by the conduct rules"),
        ("PromiseMade", "promises to pay made"),
        ("PromiseKept", "promises kept"),
        ("PromiseBroken", "promises broken"),
        ("VisitScheduled", "field visits scheduled"),
        ("VisitReported", "field visits reported"),
        ("CreditReportNoticeSent", "credit-bureau pre-notices sent"),
        ("MonthEndReported", "month-end credit-report records"),
    )
    counted = store.event_counts(tuple(kind for kind, _ in kinds), date.fromisoformat(result["end"]))
    work = Table(title="The collector's desk over the run")
    work.add_column("figure", overflow="fold")
    work.add_column("count", justify="right")
    for kind, label in kinds:
        work.add_row(label, f"{counted[kind]:,}")

    # per agency and per strategy (the totals; `collectflow agency report` has every pair): a table,
    # or one block per row where the terminal is too narrow for it
    placed_rows = [
        {
            "agency": row["agency"], "strategy": row["strategy"], "cases": f"{row['cases_placed']:,}",
            "recovered": yuan(Decimal(row["recovered"])), "rate": _rate_text(row["recovery_rate"]),
            "commission": yuan(Decimal(row["commission"])),
        }
        for row in result.get("agencies", {}).get("rows", [])
        if row["agency"] == "all" or row["strategy"] == "all"
    ]
    placed = rows_table(
        placed_rows, ("agency", "strategy", "cases", "recovered", "rate", "commission"),
        "Placements by agency and by strategy (commission: the lender's cost; detail: agency report)", width,
    )

    stuck = close["stuck"]
    example = store.example_case_ids()
    lines = [
        f"[bold]{result['booked']:,}[/] loans booked ({', '.join(f'{k} {v}' for k, v in sorted(result['profiles'].items()))}); "
        f"{result['days']} business days closed {result['start']} .. {result['end']}; "
        f"{result['promises']:,} promises to pay taken.",
        f"stuck cases: [bold]{len(stuck)}[/]" + (f" ({', '.join(sorted(stuck)[:5])})" if stuck else ""),
        f"wall time: [bold]{elapsed:.0f} s[/]; database: [bold]{db_path}[/]",
        *([f"report and charts: [bold]{result['report_dir']}[/] (report.md, report.json, 4 PNG charts)"] if result.get("report_dir") else []),
        "",
        "Try, on this database:",
    ]
    tries = [f"  export COLLECTFLOW_DATABASE_URL=sqlite:///{db_path}"]
    for label, case_id in example.items():
        tries.append(f"  .venv/bin/collectflow case replay {case_id}    # a case now in {label}")
    tries.append(f"  .venv/bin/collectflow calls list --as-of {result['end']} --limit 20")
    tries.append(f"  .venv/bin/collectflow case show CASE --as-of {result['end']}")
    tries.append(f"  .venv/bin/collectflow agency report --to {result['end']}")
    tries.append("  .venv/bin/collectflow verify")
    return Group(stages, flow, money, work, court, *((placed,) if result.get("agencies") else ()), *lines), tries


def _rate_text(rate: str | None) -> str:
    return "-" if rate is None else f"{Decimal(rate) * 100:.1f} %"


def print_timeline(console: Console, rows) -> None:
    """One block per event: what happened, the balances after it, each charge explained beneath."""
    for row in rows:
        b = row.balances
        actor = "" if row.actor == "system" else f" [cyan]by {escape(row.actor)}[/]"
        console.print(
            f"[bold]#{row.seq:<4}[/] {row.business_date}  [bold]{row.type}[/]{actor}  "
            f"[dim]-> {b['stage']}, DPD {b['dpd']}, due {yuan(b['total_due'])}, principal {yuan(b['principal_outstanding'])}[/]",
            highlight=False,
        )
        if row.description:
            console.print(f"       {escape(row.description)}", highlight=False, soft_wrap=False)
        for charge in row.charges:  # a charge's text names its rule in brackets: text, not markup
            console.print(f"         [dim]{escape(charge.text())}[/]", highlight=False)
    if rows:
        last = rows[-1].balances
        console.print(
            f"\nafter #{rows[-1].seq}: principal {yuan(last['principal_outstanding'])}, contract interest due "
            f"{yuan(last['contract_interest_due'])}, penalty {yuan(last['penalty_interest'])}, compound "
            f"{yuan(last['compound_interest'])}, late fees {yuan(last['late_fees'])}, costs {yuan(last['costs'])}, "
            f"delayed-performance interest {yuan(last['delayed_interest'])}; "
            f"total due {yuan(last['total_due'])}; above the cap (never charged) {yuan(last['unenforceable'])}; "
            f"paid {yuan(last['total_paid'])}",
            highlight=False,
        )


def print_verify(console: Console, outcome) -> None:
    if outcome.checkpoint_problem:
        console.print(f"[yellow]{escape(outcome.checkpoint_problem)}[/]", highlight=False)
    unchanged = outcome.cases_checked - outcome.cases_replayed
    if outcome.ok and outcome.incremental:
        console.print(
            f"[green]verified[/]: {outcome.cases_checked:,} cases, {outcome.events_checked:,} events; {outcome.cases_replayed:,} "
            f"cases replayed, every hash chain intact and every projection reproduced; {unchanged:,} unchanged, byte for "
            "byte, since an earlier verify found them so"
        )
        return
    if outcome.ok:
        console.print(
            f"[green]verified[/]: {outcome.cases_checked:,} cases, {outcome.events_checked:,} events; "
            "every hash chain intact and every projection reproduced by replay"
        )
        return
    console.print(f"[red]verification failed[/] for {len(outcome.failing_cases)} case(s):")
    for finding in outcome.findings:
        console.print(f"  {escape(str(finding))}", highlight=False)


# ---------------------------------------------------------------------------
# the portfolio report: one list of sections, drawn as Rich tables, Markdown and Prefect table artifacts


@dataclass(frozen=True)
class Section:
    """One table of the portfolio report: a title, its columns (the first one left-aligned, the
    others right-aligned figures), its rows of text, and a note printed under it."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""

    def records(self) -> list[dict[str, str]]:
        """The rows as a Prefect table artifact takes them: one dict per row, keyed by column."""
        return [dict(zip(self.columns, row)) for row in self.rows]


def _percent(fraction: str | None, places: int = 1) -> str:
    return "-" if fraction is None else f"{100 * Decimal(fraction):.{places}f} %"


def roll_cell(cases: int, fraction: str | None) -> str:
    """A roll-rate cell: '.' for no case, '<1' for a few cases that round to 0 %, else whole percent."""
    if cases == 0:
        return "."
    percent = 100 * Decimal(fraction)
    return "<1" if percent < Decimal("0.5") else f"{percent:.0f}"


def _share(part: str, whole: str) -> str:
    return "-" if Decimal(whole) == 0 else f"{100 * Decimal(part) / Decimal(whole):.1f} %"


def _segments(key: str, title: str, segments: list[dict], total: dict | None = None, note: str = "") -> Section:
    rows = [(s["name"], f"{s['cases']:,}", yuan(s["principal_outstanding"]), yuan(s["total_due"])) for s in segments]
    if total is not None:
        rows.append(("all", f"{total['cases']:,}", yuan(total["principal_outstanding"]), yuan(total["total_due"])))
    return Section(key, title, ("stage" if key == "by_stage" else "bucket", "cases", "principal", "total due"), tuple(rows), note)


def report_sections(data: dict) -> list[Section]:
    """The portfolio report (``PortfolioReport.as_dict()``) as its tables, in reading order."""
    as_of = data["as_of"]
    roll = data["roll_rates"]
    short = {"settled": "set", "written_off": "w/o"}
    roll_columns = tuple(short.get(c, c) for c in roll["columns"])
    recovery = data["recovery"]
    cure, promises, costs = data["cure"], data["promises"], data["costs"]
    sections = [
        _segments(
            "by_stage", f"Cases by stage ({as_of})", data["by_stage"], data["total"],
            note="Stage and balances as the case rows stand after the last close.",
        ),
        _segments("by_bucket", f"Open cases by bucket, DPD as of {as_of}", data["by_bucket"]),
        Section(
            "roll_rates",
            f"Roll rates {roll['from_month_end']} -> {roll['to_month_end']}, % of row",
            ("from", *roll_columns, "cases"),
            tuple(
                (row, *(roll_cell(n, r) for n, r in zip(counts, rates)), f"{sum(counts):,}")
                for row, counts, rates in zip(roll["rows"], roll["counts"], roll["rates"])
            ),
            note="Row: bucket at the end of month M-1; column: bucket (or settled, written off) "
            "at the end of month M; '.' no case.",
        ),
        Section(
            "outcomes",
            f"Collection outcomes up to {as_of}",
            ("figure", "value"),
            (
                *((f"reached {f['stage']}" if f["stage"] != "booked" else "loans booked", f"{f['cases']:,}") for f in data["funnel"]),
                ("cured (back to current)", f"{cure['cured']:,} of {cure['in_collection']:,}"),
                ("cure rate", _percent(cure["rate"])),
                ("promises made", f"{promises['made']:,}"),
                ("promises kept / broken", f"{promises['kept']:,} / {promises['broken']:,}"),
                ("promise kept rate", _percent(promises["kept_rate"])),
            ),
        ),
        Section(
            "recovery_by_stage",
            f"Recovery by stage, up to {as_of}",
            ("stage", "yuan", "share"),
            tuple((a["name"], yuan(a["amount"]), _share(a["amount"], recovery["total"])) for a in recovery["by_stage"])
            + (("all", yuan(recovery["total"]), _share(recovery["total"], recovery["total"])),),
            note=f"Payments received while the case was in the stage; {yuan(recovery['overpayment'])} of them "
            "is overpayment held on the cases.",
        ),
        Section(
            "recovery_by_agency",
            f"Recovery by agency, up to {as_of}",
            ("agency", "yuan", "share"),
            tuple((a["name"], yuan(a["amount"]), _share(a["amount"], recovery["total"])) for a in recovery["by_agency"]),
            note="Payments received while the case was placed with the agency; 'in house': not placed.",
        ),
        Section(
            "charges",
            f"Charges posted up to {as_of}",
            ("component", "charged", "above cap"),
            tuple((c["component"].replace("_", " "), yuan(c["charged"]), yuan(c["unenforceable"])) for c in data["charges"]),
            note="Above cap: accrued beyond the legal cap, recorded as unenforceable and never charged.",
        ),
        Section(
            "costs",
            "Costs",
            ("cost", "yuan"),
            (("litigation costs", yuan(costs["litigation"])), ("agency commission", yuan(costs["agency_commission"]))),
            note=f"Agency commission: {costs['agency_commission_note']}.",
        ),
        Section(
            "dpd_distribution",
            f"Open cases by DPD as of {as_of}",
            ("DPD", "cases"),
            (("0", f"{data['dpd_distribution']['dpd_zero']:,}"),)
            + tuple((b["band"], f"{b['cases']:,}") for b in data["dpd_distribution"]["bands"] if b["cases"]),
            note="Bands with no case left out.",
        ),
        Section(
            "stuck",
            f"Stuck cases ({len(data['stuck'])})",
            ("case", "stage", "since", "error"),
            tuple((s["case_id"], s["stage"], s["stuck_on"] or "-", s["error"] or "") for s in data["stuck"][:STUCK_SHOWN]),
            note=f"The first {STUCK_SHOWN} shown." if len(data["stuck"]) > STUCK_SHOWN else "",
        ),
    ]
    return sections


STUCK_SHOWN = 20


def section_table(section: Section) -> Table:
    """A section as a Rich table that stays readable at 60 columns: no vertical rules, one space
    between columns, figures never wrapped (text columns wrap instead)."""
    table = Table(
        title=section.title, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, title_justify="left",
        min_width=min(len(section.title), 60),
    )
    for n, column in enumerate(section.columns):
        figure = n > 0 and section.key != "stuck"
        table.add_column(column, justify="right" if figure else "left", no_wrap=figure, overflow="fold")
    for row in section.rows:
        table.add_row(*(escape(cell) for cell in row))
    if not section.rows:
        table.add_row("none", *("" for _ in section.columns[1:]))
    return table


def portfolio_report(data: dict) -> Group:
    """The whole report for the terminal."""
    parts: list = []
    for section in report_sections(data):
        parts.append(section_table(section))
        if section.note:
            parts.append(Text(section.note, style="dim"))
        parts.append(Text(""))
    return Group(*parts)


def _markdown_cell(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def report_markdown(data: dict) -> str:
    """The whole report as Markdown (the flow's artifact, and report.md beside the charts)."""
    lines = [f"# Portfolio report as of {data['as_of']}", ""]
    for section in report_sections(data):
        lines += [f"## {section.title}", ""]
        lines.append("| " + " | ".join(section.columns) + " |")
        lines.append("|" + "|".join(":---" if n == 0 else "---:" for n in range(len(section.columns))) + "|")
        lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in section.rows]
        if section.note:
            lines += ["", section.note]
        lines.append("")
    return "\n".join(lines)
