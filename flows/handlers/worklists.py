"""Use cases of the collector's desk: the portfolio as of a date, and today's call list.

No rule lives here: the store selects (``models.queries``), the domain
decides who is called and in which order (``states.worklist``). The call
and visit lists read the calling cases' call-list facts (kept in each case
row: ``store.call_facts``) in chunks, not the cases themselves, so memory is
bounded by a chunk and a case costs a row, not a load.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from flows.bootstrap import App
from models.sql import chunks
from states import worklist
from states.contact import ContactDay, borrower_day
from states.delinquency import Bucket, dpd_range
from states.lifecycle import Stage
from states.parse import InputError, parse_enum
from states.worklist import CallFacts, CallListEntry, LeftOut

CALLING_STAGES = tuple(stage.value for stage in worklist.LISTED_STAGES)
LIST_COLUMNS = (
    "case_id", "contract_no", "stage", "dpd", "bucket", "overdue_total", "total_owing", "promise_due_on",
    "last_contact_at", "agency",
)


@dataclass(frozen=True)
class CallList:
    as_of: date
    team: str | None
    entries: list[CallListEntry]
    left_out: list[LeftOut]

    def as_dict(self, explain: bool = False) -> dict[str, object]:
        data: dict[str, object] = {
            "as_of": self.as_of.isoformat(),
            "team": self.team,
            "calls": [e.as_dict() for e in self.entries],
        }
        if explain:
            data["left_out"] = [e.as_dict() for e in self.left_out]
        return data


def call_list(app: App, as_of: date, *, team: str | None = None, limit: int | None = None) -> CallList:
    """Today's call list (for one team, or all), in calling order, and the cases left out with why."""
    teams = app.policy.teams
    if team is not None and team not in teams:
        raise InputError(f"--team: {team!r} is not a team of the policy; its teams are {', '.join(teams)}")
    whole = _whole_call_list(app, as_of)
    if team is None:
        return _cut(whole, limit)
    return _cut(CallList(as_of, team, [e for e in whole.entries if e.team == team], [e for e in whole.left_out if e.team == team]), limit)


def call_lists_by_team(app: App, as_of: date, *, limit: int | None = None) -> dict[str, CallList]:
    """Every team's call list of ``as_of``, from one pass over the calling cases."""
    whole = _whole_call_list(app, as_of)
    return {
        name: _cut(CallList(as_of, name, [e for e in whole.entries if e.team == name], [e for e in whole.left_out if e.team == name]), limit)
        for name in app.policy.teams
    }


def _whole_call_list(app: App, as_of: date) -> CallList:
    """Every team's calls of ``as_of`` in calling order (each entry names its team), and the cases left out."""
    entries: list[CallListEntry] = []
    left_out: list[LeftOut] = []
    several = app.store.borrowers_with_several_loans()
    for facts in _calling_facts(app):
        chosen, skipped = worklist.call_list(facts, as_of, app.policy.teams, None, _other_loans_contacts(app, several, facts, as_of))
        entries += chosen
        left_out += skipped
    entries.sort(key=worklist.calling_order)  # chunks merged: the same order as within one
    return CallList(as_of, None, entries, sorted(left_out, key=lambda e: e.case_id))


def _cut(calls: CallList, limit: int | None) -> CallList:
    return CallList(calls.as_of, calls.team, calls.entries[:limit] if limit else calls.entries, calls.left_out)


def _other_loans_contacts(app: App, several: dict[str, list[str]], cases: list[CallFacts], as_of: date) -> dict[str, ContactDay]:
    """Case id -> what the borrower's other loans counted on ``as_of``, for the cases whose borrower has several."""
    others = {case.case_id: several[case.case_id] for case in cases if case.case_id in several}
    if not others:
        return {}
    states = {case_id: facts.contact for case_id, facts in app.store.call_facts({i for ids in others.values() for i in ids}).items()}
    return {case_id: borrower_day([states[i] for i in ids if i in states], as_of) for case_id, ids in others.items()}


def _calling_facts(app: App) -> Iterator[list[CallFacts]]:
    """The call-list facts of the phone- and visit-stage cases, 2,000 at a time (their rows, not the cases)."""
    for ids in chunks(app.store.case_ids_in_stages(CALLING_STAGES), 2_000):
        yield list(app.store.call_facts(ids).values())


def case_list(
    app: App,
    as_of: date,
    *,
    stage: str | None = None,
    bucket: str | None = None,
    dpd_min: int | None = None,
    dpd_max: int | None = None,
    agency: str | None = None,
) -> list[dict[str, object]]:
    """The portfolio as of a date, one row per case (``LIST_COLUMNS``), DPD computed as of that date
    (amounts as of each case's last close)."""
    stages = () if stage is None else (_stage(stage).value,)
    if dpd_min is not None and dpd_max is not None and dpd_min > dpd_max:
        raise InputError(f"--dpd-min {dpd_min} is above --dpd-max {dpd_max}: no case can match; give a minimum at or below the maximum")
    if bucket is not None:
        first, last = dpd_range(_bucket(bucket))
        band = f"DPD {first}+" if last is None else f"DPD {first}-{last}"
        if (dpd_max is not None and dpd_max < first) or (dpd_min is not None and last is not None and dpd_min > last):
            given = " and ".join(f"{name} {value}" for name, value in (("--dpd-min", dpd_min), ("--dpd-max", dpd_max)) if value is not None)
            raise InputError(f"--bucket {bucket.strip()} ({band}) and {given}: no case can match; give a DPD range that overlaps the bucket, or one of them")
        dpd_min = first if dpd_min is None else max(dpd_min, first)
        dpd_max = last if dpd_max is None else (dpd_max if last is None else min(dpd_max, last))
    rows = []
    for listed in app.store.list_cases(as_of, stages=stages, dpd_min=dpd_min, dpd_max=dpd_max, agency=agency):
        p = listed.projection
        rows.append(
            {
                "case_id": p.case_id,
                "contract_no": p.contract_no,
                "stage": p.stage,
                "dpd": p.dpd(as_of),
                "bucket": p.bucket(as_of),
                "overdue_total": str(p.total_due),  # everything due and unpaid (case show's "total due")
                "total_owing": str(p.total_due + p.principal_outstanding - p.overdue_principal),  # and principal not yet due
                "promise_due_on": None if p.promise_until is None else p.promise_until.isoformat(),
                "last_contact_at": None if listed.last_contact_at is None else listed.last_contact_at.isoformat(timespec="minutes"),
                "agency": p.agency_id,
            }
        )
    return rows


def _stage(text: str) -> Stage:
    return parse_enum(Stage, text, "--stage")


def _bucket(text: str) -> Bucket:
    return parse_enum(Bucket, text, "--bucket")


def visit_list(app: App, as_of: date) -> list[dict[str, object]]:
    """The field visits due: visit-stage cases with a visit scheduled, the overdue ones first."""
    rows = []
    for ids in chunks(app.store.case_ids_in_stages((Stage.VISIT.value,)), 2_000):
        for case in app.store.call_facts(ids).values():
            if case.visit_due_on is None:
                continue
            rows.append({
                "case_id": case.case_id, "contract_no": case.contract_no, "due_on": case.visit_due_on.isoformat(),
                "overdue": case.visit_due_on < as_of, "dpd": case.dpd(as_of), "failed_visits": case.failed_visits,
            })
    return sorted(rows, key=lambda r: (not r["overdue"], r["due_on"], r["case_id"]))
