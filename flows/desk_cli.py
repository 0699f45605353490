"""The collector's desk on the command line: the portfolio, the call and visit lists, the roster, agencies.

    collectflow cases list | calls list | visits list | visits report
    collectflow operators add | deactivate | list | history
    collectflow agency add | deactivate | list | show | recall | report

Each command parses its input, calls one use case and prints the result (as
``flows.cli``'s commands do, with its helpers from ``flows.cli_common``).
"""

from __future__ import annotations

from typing import Optional

import typer

from flows import report
from flows.cli_common import as_of_or_today, console, current_app, fail, one_output, parse_date, print_json, print_rows, run_command
from states.commands import RecallFromAgency, ReportVisit
from states.vocabulary import OperatorRole, VisitOutcome, accepted

cases_app = typer.Typer(help="The portfolio as of a date: cases by stage, bucket, DPD and agency.", no_args_is_help=True)
visits_app = typer.Typer(help="Field visits: the visits due, and a visit's report.", no_args_is_help=True)
calls_app = typer.Typer(help="Today's call list: who to call, in which order, and who may not be called today.", no_args_is_help=True)
operators_app = typer.Typer(help="The operator roster: who may act, as collector, supervisor or auditor.", no_args_is_help=True)
agency_app = typer.Typer(help="Collection agencies: the registry, recalls, and what each agency recovers at what cost.", no_args_is_help=True)


# ---------------------------------------------------------------------------
# the collector's desk


@cases_app.command("list")
def cases_list(
    stage: Optional[str] = typer.Option(None, help="Only this stage (current, overdue, phone, visit, outsourced, litigation, settled, written_off)"),
    bucket: Optional[str] = typer.Option(None, help="Only this bucket as of the date (M0 ... M6, M7+)"),
    dpd_min: Optional[int] = typer.Option(None, "--dpd-min", min=0, help="At least this many days past due"),
    dpd_max: Optional[int] = typer.Option(None, "--dpd-max", min=0, help="At most this many days past due"),
    agency: Optional[str] = typer.Option(None, help="Only cases placed with this agency"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="DPD as of this date (default: today, the lender's time zone)"),
    as_json: bool = typer.Option(False, "--json"),
    as_csv: bool = typer.Option(False, "--csv"),
) -> None:
    """The portfolio as of a date, one row per case, DPD computed as of that date."""
    from flows.handlers.worklists import LIST_COLUMNS, case_list

    one_output(json=as_json, csv=as_csv)
    day = as_of_or_today(as_of)
    rows = case_list(current_app(), day, stage=stage, bucket=bucket, dpd_min=dpd_min, dpd_max=dpd_max, agency=agency)
    print_rows(rows, LIST_COLUMNS, as_json=as_json, as_csv=as_csv, title=f"{len(rows)} case(s) as of {day}")


@calls_app.command("list")
def calls_list(
    as_of: Optional[str] = typer.Option(None, "--as-of", help="The day of the calls (default: today, the lender's time zone)"),
    team: Optional[str] = typer.Option(None, help="Only this team's share of the list (teams are policy: [teams])"),
    limit: Optional[int] = typer.Option(None, min=1, help="At most this many calls"),
    explain: bool = typer.Option(False, "--explain", help="Also list the cases left out today, each with its reason"),
    as_json: bool = typer.Option(False, "--json"),
    as_csv: bool = typer.Option(False, "--csv"),
) -> None:
    """Today's call list in calling order: broken promises first, then overdue amount x DPD weight."""
    from flows.handlers.worklists import call_list

    one_output(json=as_json, csv=as_csv)
    if explain and as_csv:
        fail("--explain and --csv: the CSV holds the calls only, without the cases left out; give --explain alone (a table) or with --json")
    day = as_of_or_today(as_of)
    calls = call_list(current_app(), day, team=team, limit=limit)
    if as_json:
        print_json(calls.as_dict(explain))
        return
    columns = ("case_id", "contract_no", "team", "stage", "dpd", "bucket", "overdue_total", "priority", "broken_promise", "last_contact_at")
    rows = [e.as_dict() for e in calls.entries]
    print_rows(rows, columns, as_json=False, as_csv=as_csv, title=f"call list {day}{' ' + team if team else ''}: {len(rows)} call(s)")
    if explain and not as_csv:
        left = [e.as_dict() for e in calls.left_out]
        console.print(report.rows_table(left, ("case_id", "contract_no", "team", "reason"), f"left out today: {len(left)}", console.width))


@visits_app.command("list")
def visits_list(
    as_of: Optional[str] = typer.Option(None, "--as-of", help="The day (default: today, the lender's time zone)"),
    as_json: bool = typer.Option(False, "--json"),
    as_csv: bool = typer.Option(False, "--csv"),
) -> None:
    """The field visits due, the overdue ones first (a visit not reported by its date is overdue)."""
    from flows.handlers.worklists import visit_list

    one_output(json=as_json, csv=as_csv)
    day = as_of_or_today(as_of)
    rows = visit_list(current_app(), day)
    columns = ("case_id", "contract_no", "due_on", "overdue", "dpd", "failed_visits")
    print_rows(rows, columns, as_json=as_json, as_csv=as_csv, title=f"field visits as of {day}: {len(rows)}")


@visits_app.command("report")
def visit_report(
    case: str = typer.Argument(..., help=ReportVisit.help("case")),
    collectors: str = typer.Option(..., "--collectors", help=ReportVisit.help("collectors")),
    outcome: str = typer.Option(..., "--outcome", help=f"{ReportVisit.help('outcome')}: {accepted(VisitOutcome)}"),
    at: str = typer.Option(..., "--at", help=ReportVisit.help("visited_at")),
    operator: str = typer.Option(..., "--operator", help=ReportVisit.help("operator")),
    note: str = typer.Option("", help=ReportVisit.help("note")),
) -> None:
    """Report a field visit (two collectors at least); a failed one schedules the next and counts toward outsourcing."""
    run_command(ReportVisit(case=case, collectors=collectors, outcome=outcome, visited_at=at, operator=operator, note=note))


# ---------------------------------------------------------------------------
# the operator roster


ACTING_OPERATOR_HELP = "Your operator id, an active supervisor on the roster: recorded with the change (not needed while no one on the roster is active)"


@operators_app.command("add")
def operators_add(
    operator_id: str = typer.Argument(..., help="The operator id (letters, digits and . _ @ -)"),
    role: str = typer.Option(..., help=f"What the operator may do: {accepted(OperatorRole)}"),
    operator: Optional[str] = typer.Option(None, "--operator", help=ACTING_OPERATOR_HELP),
) -> None:
    """Put an operator on the roster, change its role or reactivate it. The first one is a supervisor; once
    anyone on the roster is active, only its operators may act, and only an active supervisor changes it."""
    from flows.handlers.roster import change_roster
    from states.operators import AddOperator

    change = change_roster(AddOperator(operator_id, role, operator), current_app())
    _said(change)


@operators_app.command("deactivate")
def operators_deactivate(
    operator_id: str = typer.Argument(..., help="The operator id"),
    operator: Optional[str] = typer.Option(None, "--operator", help=ACTING_OPERATOR_HELP),
) -> None:
    """Take an operator off duty: its id stays in the history, it may no longer act (the last active supervisor stays)."""
    from flows.handlers.roster import change_roster
    from states.operators import DeactivateOperator

    _said(change_roster(DeactivateOperator(operator_id, operator), current_app()))


def _said(change) -> None:
    """One line for a roster change: the operator, its role (before -> after), what and by whom."""
    from states.events import SYSTEM
    from states.operators import ChangeKind

    role = change.role_after.value
    moved = change.role_before is not None and change.role_before is not change.role_after
    what = f"{change.role_before.value} -> {role}" if moved else role
    if change.change is ChangeKind.DEACTIVATED:
        what = f"{role}, deactivated"
    by = "" if change.actor == SYSTEM else f" by {change.actor}"
    done = "" if change.change is ChangeKind.DEACTIVATED else f" ({change.change.value.replace('_', ' ')}{by})"
    console.print(f"operator {change.operator_id}: {what}{done if done else by}", highlight=False)
    if change.actor == SYSTEM:
        console.print("the roster is in use now: its changes need --operator (an active supervisor)", highlight=False)


@operators_app.command("list")
def operators_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """The roster (empty: no roster in use, any well-formed operator id may act)."""
    from flows.handlers.roster import roster as roster_of

    rows = [{"operator": o.operator_id, "role": o.role.value, "active": o.active} for o in roster_of(current_app())]
    if as_json:
        print_json(rows)
    elif not rows:
        console.print("no operator roster: any well-formed operator id may act (add one with: collectflow operators add ID --role supervisor)")
    else:
        for row in rows:
            console.print(f"{row['operator']}  {row['role']}{'' if row['active'] else '  (deactivated)'}", highlight=False)


@operators_app.command("history")
def operators_history(
    operator_id: Optional[str] = typer.Argument(None, help="Only this operator's changes"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every change of the roster, oldest first: whose, what, the role before and after, by whom, when (UTC)."""
    from flows.handlers.roster import HISTORY_COLUMNS, history

    rows = history(current_app(), operator_id)
    if not rows and not as_json:
        console.print("no roster change recorded (add the first operator with: collectflow operators add ID --role supervisor)")
        return
    print_rows(rows, HISTORY_COLUMNS, as_json=as_json, as_csv=False, title=f"{len(rows)} roster change(s)")


# ---------------------------------------------------------------------------
# agencies (DOMAIN.md §7)


@agency_app.command("add")
def agency_add(
    name: str = typer.Argument(..., help="The agency's name (letters, digits and . _ -): how placements name it"),
    licence: str = typer.Option(..., "--licence", help="The agency's licence number"),
    capacity: str = typer.Option(..., "--capacity", help="Cases it may hold at once (a positive whole number)"),
    rates: str = typer.Option(..., "--rates", help="Commission by bucket group at placement, e.g. M4-M6=0.15,M7+=0.25,written_off=0.35"),
    operator: str = typer.Option(..., "--operator", help="Your operator id: recorded with the change"),
    inactive: bool = typer.Option(False, "--inactive", help="Register it without taking placements yet"),
) -> None:
    """Register an agency. An agency is never edited afterwards; it may be deactivated."""
    from flows.handlers.agencies import register_agency
    from states.agency import RegisterAgency, rates_text

    agency = register_agency(
        RegisterAgency(name=name, licence_no=licence, capacity=capacity, rates=rates, operator=operator, active=not inactive), current_app()
    )
    state = "active" if agency.active else "inactive"
    console.print(f"agency {agency.name}: registered ({state}), licence {agency.licence_no}, capacity {agency.capacity}, {rates_text(agency.rates)}", highlight=False)


@agency_app.command("deactivate")
def agency_deactivate(
    name: str = typer.Argument(..., help="The agency's name"),
    operator: str = typer.Option(..., "--operator", help="Your operator id: recorded with the change"),
) -> None:
    """Take an agency off new placements; what it holds stays with it until recalled."""
    from flows.handlers.agencies import deactivate_agency
    from states.agency import DeactivateAgency

    agency = deactivate_agency(DeactivateAgency(name=name, operator=operator), current_app())
    console.print(f"agency {agency.name}: deactivated", highlight=False)


@agency_app.command("list")
def agency_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """The registry: each agency's capacity, what it holds now, its measured recovery rate and rates."""
    from flows.handlers.agencies import LIST_COLUMNS, agency_rows

    rows = agency_rows(current_app())
    if as_json:
        print_json(rows)
    elif not rows:
        console.print("no agency registered: placements rotate over the policy's agency list (register one with: collectflow agency add NAME ...)")
    else:
        print_rows(rows, LIST_COLUMNS, as_json=False, as_csv=False, title=f"{len(rows)} agencies")


@agency_app.command("show")
def agency_show(
    name: str = typer.Argument(..., help="The agency's name"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One agency: registry entry, what it holds, every change (who, when), its performance."""
    from flows.handlers.agencies import REPORT_COLUMNS, agency_detail

    detail = agency_detail(current_app(), name)
    if as_json:
        print_json(detail)
        return
    for key in ("agency", "licence_no", "active", "capacity", "placed", "capacity_left", "measured_rate", "rate_used"):
        console.print(f"{key.replace('_', ' ')}: {detail[key]}", highlight=False)
    console.print("rates: " + ", ".join(f"{g} {r}" for g, r in detail["rates"].items()), highlight=False)
    for change in detail["changes"]:
        console.print(f"{change['recorded_at']}  {change['action']} by {change['actor']}", highlight=False)
    if detail["performance"]:
        print_rows(detail["performance"], REPORT_COLUMNS, as_json=False, as_csv=False, title=f"performance of {detail['agency']}")


@agency_app.command("recall")
def agency_recall(
    case: str = typer.Argument(..., help=RecallFromAgency.help("case")),
    reason: str = typer.Option(..., "--reason", help=RecallFromAgency.help("reason")),
    operator: str = typer.Option(..., "--operator", help=RecallFromAgency.help("operator")),
    on: Optional[str] = typer.Option(None, "--on", help=RecallFromAgency.help("made_on") + "; default: today"),
) -> None:
    """Recall a case from its agency; it goes to another agency (or is tried again when none has room)."""
    made_on = on or current_app().today().isoformat()
    run_command(RecallFromAgency(case=case, operator=operator, reason=reason, made_on=made_on))


@agency_app.command("report")
def agency_report(
    start: Optional[str] = typer.Option(None, "--from", help="First placement date counted (default: the first)"),
    end: Optional[str] = typer.Option(None, "--to", help="Last placement date counted, and recoveries up to it (default: today)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Per agency and strategy: cases placed, balance placed, recovered, recovery rate, commission, net recovered."""
    from flows.handlers.agencies import REPORT_COLUMNS, agency_report as report_of

    result = report_of(current_app(), parse_date(start, "--from"), parse_date(end, "--to"))
    if as_json:
        print_json(result.as_dict())
        return
    period = f"{result.start or 'first placement'} .. {result.end}"
    if not result.rows:
        console.print(f"no placement made in {period}", highlight=False)
        return
    print_rows(result.table(), REPORT_COLUMNS, as_json=False, as_csv=False, title=f"agencies, placements {period}")
