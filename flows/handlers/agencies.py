"""Use cases of the agency registry: register, deactivate, list, show, recall, and the agency report.

The rules are ``states.agency``'s; the registry and the placement reads are
``models.agencies``'. A registry change is checked for its operator like
every command (a supervisor once a roster is in use) and recorded with who
and when. The recall is a case command (``RecallFromAgency``), run by the
same handler as the others (``flows.handlers.cases.handle``). No Prefect here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flows.bootstrap import App
from flows.handlers.cases import check_not_in_future, check_operator, handle
from states.agency import ALL, Agency, DeactivateAgency, Performance, RegisterAgency, performance, recovery_rate, rates_text
from states.commands import RecallFromAgency
from states.events import Event
from states.parse import InputError

REPORT_COLUMNS = (
    "agency", "strategy", "cases_placed", "balance_placed", "recovered", "recovery_rate", "commission", "net_recovered",
)
LIST_COLUMNS = ("agency", "licence_no", "active", "capacity", "placed", "capacity_left", "measured_rate", "rates")


def register_agency(cmd: RegisterAgency, app: App) -> Agency:
    check_operator(app.store, cmd.operator, cmd.action)
    return app.store.add_agency(cmd.agency(), cmd.operator)


def deactivate_agency(cmd: DeactivateAgency, app: App) -> Agency:
    check_operator(app.store, cmd.operator, cmd.action)
    return app.store.deactivate_agency(cmd.name, cmd.operator)


def recall(cmd: RecallFromAgency, app: App) -> list[Event]:
    return handle(cmd, app)


def _row(agency: Agency, placed: dict[str, int], window: dict, portfolio: Any) -> dict[str, Any]:
    held = placed.get(agency.name, 0)
    measured = recovery_rate(window[agency.name][1], window[agency.name][0]) if agency.name in window else None
    return {
        "agency": agency.name,
        "licence_no": agency.licence_no,
        "active": agency.active,
        "capacity": agency.capacity,
        "placed": held,
        "capacity_left": max(agency.capacity - held, 0),
        "measured_rate": None if measured is None else str(measured),
        "rate_used": str(measured if measured is not None else portfolio),
        "rates": rates_text(agency.rates),
    }


def agency_rows(app: App, as_of: date | None = None) -> list[dict[str, Any]]:
    """Every registered agency with what it holds now and the recovery rate it measured up to ``as_of``
    (default: the last closed business date, else today)."""
    day = as_of or app.store.last_closed_business_date() or app.today()
    store = app.store
    placed = store.placed_counts()
    window = store.measured(day - timedelta(days=app.policy.agency_measure_days), day + timedelta(days=1))
    total = [sum(v[i] for v in window.values()) for i in (0, 1)] if window else [0, 0]
    portfolio = recovery_rate(total[1], total[0]) or 0
    return [_row(a, placed, window, portfolio) for a in store.agencies()]


def agency_detail(app: App, name: str, as_of: date | None = None) -> dict[str, Any]:
    """One agency: its registry entry, what it holds, its changes (who, when), its performance."""
    from states.agency import parse_agency_name

    name = parse_agency_name(name, "NAME")
    agency = app.store.agency(name)
    (row,) = [r for r in agency_rows(app, as_of) if r["agency"] == name]
    figures = [p for p in app.store.placement_figures(None, as_of) if p.agency == name]
    return {
        **row,
        "changes": app.store.agency_changes(name),
        "performance": [p.as_dict() for p in performance(figures) if p.agency == name],
        "rates": {g: str(r) for g, r in agency.rates.items()},
    }


@dataclass(frozen=True)
class AgencyReport:
    """The agency report of a period: per agency and strategy, then totals (``ALL``)."""

    start: date | None
    end: date
    rows: tuple[Performance, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": None if self.start is None else self.start.isoformat(),
            "to": self.end.isoformat(),
            "basis": "placements made in the period, with what they recovered and the commission on it up to its end",
            "rows": [r.as_dict() for r in self.rows],
        }

    def table(self) -> list[dict[str, Any]]:
        return [{k: ("" if v is None else v) for k, v in r.as_dict().items()} for r in self.rows]


def agency_report(app: App, start: date | None = None, end: date | None = None) -> AgencyReport:
    """Placements made from ``start`` to ``end`` (default: all of them, up to today) by agency and
    strategy: cases placed, balance placed, recovered, recovery rate, commission, net recovered."""
    today = app.today()
    end = end or today
    check_not_in_future({"--to": end}, today)
    if start is not None and start > end:
        raise InputError(f"--from: {start} is after --to {end}; give a period that starts before it ends")
    rows = performance(app.store.placement_figures(start, end))
    return AgencyReport(start, end, rows)


__all__ = [
    "ALL", "AgencyReport", "LIST_COLUMNS", "REPORT_COLUMNS", "agency_detail", "agency_report", "agency_rows",
    "deactivate_agency", "recall", "register_agency",
]
