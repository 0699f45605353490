"""One case on the command line: its balances, plan, payoff, history explained, export and rebuild.

    collectflow case show | schedule | quote | replay | export | rebuild

Each command parses its input, calls one use case and prints the result (as
``flows.cli``'s commands do, with its helpers from ``flows.cli_common``).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Optional

import typer

from flows import report
from flows.cli_common import console, current_app, iso, parse_date, print_json
from states.parse import InputError

case_app = typer.Typer(help="Look at one case: its balances as of a date, its history explained.", no_args_is_help=True)


def _as_of(text: Optional[str]) -> Optional[date]:
    """``--as-of``, if given; never after today in the lender's time zone (nothing has happened yet)."""
    from flows.handlers.cases import check_not_in_future

    day = parse_date(text, "--as-of")
    if day is not None:
        check_not_in_future({"--as-of": day}, current_app().today())
    return day


@case_app.command("show")
def case_show(
    case: str = typer.Argument(..., help="Case id or contract number"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Value the case as of this date (default: the last closed business date)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Stage, DPD, bucket, class and every balance as of a date (accrued but not yet posted included),
    with what a collector needs: a pending promise, a pause, the agency, the last contact, stuck or not."""
    from models.audit import case_view

    store = current_app().store
    view = case_view(store, case, _as_of(as_of) or store.last_closed_business_date(), current_app().policy)
    row = store.case_row(view.projection.case_id)
    stuck = f"since {row.stuck_on}: {row.stuck_error}" if row.stuck else None
    commission, rate = store.case_commission(view.projection.case_id, view.as_of)
    lender = {"agency_commission": str(commission), "agency_commission_rate": rate}  # the lender's cost, not the borrower's
    if as_json:
        print_json({**view.as_dict(), **lender, "stuck": row.stuck, "stuck_on": iso(row.stuck_on), "stuck_error": row.stuck_error})
    else:
        console.print(report.case_panel(view, stuck, lender))


@case_app.command("schedule")
def case_schedule(case: str = typer.Argument(..., help="Case id or contract number"), as_json: bool = typer.Option(False, "--json")) -> None:
    """The repayment plan: one row per installment with what it has had paid (interest and principal),
    and whether collectflow computed it (by which convention) or it is the plan as imported."""
    loaded = current_app().store.load_one(case)
    basis = loaded.plan_basis()
    rows = loaded.plan()
    if as_json:
        print_json({"case_id": loaded.case_id, "contract_no": loaded.contract_no, "plan": basis, "installments": rows})
        return
    columns = ("installment", "due_on", "principal", "interest", "total", "paid", "unpaid")
    console.print(report.rows_table(rows, columns, f"plan of {loaded.case_id} ({loaded.contract_no}): {basis}", console.width))


@case_app.command("quote")
def case_quote(
    case: str = typer.Argument(..., help="Case id or contract number"),
    on: Optional[str] = typer.Option(None, "--on", help="The day of the payoff (default: today, the lender's time zone)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """What it takes to settle the case on a date: each component, the cap applied. Changes nothing;
    a payment of the total on that date settles the case."""
    from flows.handlers.cases import payoff_quote

    app_ = current_app()
    quote = payoff_quote(app_, case, parse_date(on, "--on") or app_.today())
    if as_json:
        print_json(quote)
    else:
        rows = [{"component": k.replace("_", " "), "yuan": v} for k, v in quote.items() if k not in ("case_id", "contract_no", "on")]
        console.print(report.rows_table(rows, ("component", "yuan"), f"payoff of {quote['case_id']} ({quote['contract_no']}) on {quote['on']}", console.width))


@case_app.command("replay")
def case_replay(
    case: str = typer.Argument(..., help="Case id or contract number"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Stop at this business date"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The case's history, one line per event, every charge explained, with running balances."""
    from models.audit import timeline

    store = current_app().store
    case_id = store.resolve_case_id(case)
    day = _as_of(as_of)
    rows = timeline(store, case_id, day, current_app().policy)
    if not rows:
        raise InputError(f"--as-of: {day} is before case {case_id}'s first event; give a later date, or leave --as-of out")
    if as_json:
        print_json([row.as_dict() for row in rows])
    else:
        report.print_timeline(console, rows)


@case_app.command("export")
def case_export(
    case: str = typer.Argument(..., help="Case id or contract number"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="History through this date (default: the last closed business date)"),
    out: Path = typer.Option(..., "--out", help="The JSON file to write (a readable FILE.md is written beside it)"),
) -> None:
    """Export a case's history for a court or a regulator: events with their hashes, every charge
    explained, the allocations, and the seal that covers them; check it with verify-export."""
    from models.export import export_case, markdown

    app_ = current_app()
    day = _as_of(as_of) or app_.store.last_closed_business_date() or app_.today()
    document = export_case(app_.store, case, day, app_.settings.seals_dir, app_.policy)
    if not document["events"]:
        raise InputError(f"--as-of: {day} is before case {document['case_id']}'s first event: nothing to export")
    out.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(document), encoding="utf-8")
    sealed = document["seal"]
    note = f"sealed through seq {sealed['leaf']['seq']}" if sealed else "no seal covers it yet"
    console.print(f"case {document['case_id']}: {len(document['events'])} events through {day} ({note}): {out}", highlight=False, soft_wrap=True)


@case_app.command("rebuild")
def case_rebuild(
    case: str = typer.Argument(..., help="Case id or contract number"),
    operator: str = typer.Option(..., "--operator", help="Your operator id, a supervisor on the roster: recorded with the rebuild"),
    reason: str = typer.Option(..., "--reason", help="Why the row is rebuilt (recorded)"),
) -> None:
    """Rebuild a case's snapshot and projection from its events: the fix for a corrupt row.

    Refused when the events fail their chain or a seal that covered the case; the rebuild is
    recorded as a CaseRebuilt event. Once the operator roster is in use, it needs a supervisor on it."""
    from flows.handlers.cases import rebuild_case

    case_id = rebuild_case(current_app(), case, operator=operator, reason=reason)
    console.print(f"case {case_id}: snapshot and projection rebuilt from its events")
