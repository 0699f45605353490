"""Work queues: who to call today, in which order, and why a case is left off the list.

The call list of a business date holds the cases a collector may and should
call that day (DOMAIN.md §2 and §6):

- cases in the ``phone`` stage, and ``visit``-stage cases not contacted for
  ``VISIT_CALL_GAP_DAYS`` (a call between visits);
- left out, each with its reason: a paused case, a case whose promise to pay
  is still running, a case whose calls for the day are used up (the limits
  count the lender and every agency together), a borrower whose number is
  known to be invalid (trace or visit instead);
- in order: broken promises first, then by priority = overdue amount x DPD
  weight (1 + DPD / 30, so a month late counts double), then cases never
  contacted before those contacted, then case id (a stable order);
- split between the policy's teams by a seeded hash of the case id, so the
  split is reproducible and a case stays with its team from day to day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from states.contact import MAX_CONNECTED_CALLS_A_DAY, MAX_UNANSWERED_A_DAY, ContactDay, ContactState, day_counts
from states.delinquency import bucket_for, days_past_due, oldest_unpaid_before, unpaid_before
from states.errors import DomainError
from states.lifecycle import Stage
from states.snapshot import contact_record, last_contact_record, read_contact
from states.vocabulary import ContactParty

ONE_DAY = timedelta(days=1)
VISIT_CALL_GAP_DAYS = 7
DPD_WEIGHT_DAYS = Decimal(30)
TEAM_SEED = "collectflow-teams-v1"  # changing it reshuffles every case between the teams


@dataclass(frozen=True)
class CallListEntry:
    """One case to call: the figures a collector sees before dialling."""

    case_id: str
    contract_no: str
    team: str
    stage: str
    dpd: int
    bucket: str
    overdue_total: Decimal
    priority: Decimal
    broken_promise: bool
    last_contact_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        return {
            "case_id": self.case_id,
            "contract_no": self.contract_no,
            "team": self.team,
            "stage": self.stage,
            "dpd": self.dpd,
            "bucket": self.bucket,
            "overdue_total": str(self.overdue_total),
            "priority": str(self.priority),
            "broken_promise": self.broken_promise,
            "last_contact_at": None if self.last_contact_at is None else self.last_contact_at.isoformat(timespec="minutes"),
        }


@dataclass(frozen=True)
class LeftOut:
    """A case that would be called but may not be today, and why."""

    case_id: str
    contract_no: str
    team: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"case_id": self.case_id, "contract_no": self.contract_no, "team": self.team, "reason": self.reason}


class PromiseTerms(NamedTuple):
    amount: Decimal
    promised_on: date


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the call list and the visit list read of a case, kept in the case row beside its
    projection (``facts_record``), so a morning list reads rows instead of loading every case.

    ``call_list`` and ``why_not_today`` take these or whole cases alike: the same attributes,
    and DPD and the overdue amount by the same functions (``states.delinquency``).
    """

    case_id: str
    contract_no: str
    stage: Stage
    paused_until: date | None
    promise: PromiseTerms | None
    broken_in_a_row: int
    contact: ContactState
    unpaid: tuple[tuple[date, Decimal], ...]  # each installment not paid in full: (due_on, unpaid), in due order
    case_dues: Decimal  # due on the case as a whole (penalty, compound, costs, delayed interest)
    visit_due_on: date | None
    failed_visits: int

    def dpd(self, as_of: date) -> int:
        return days_past_due(oldest_unpaid_before(self.unpaid, as_of), as_of)

    def overdue_total(self, as_of: date) -> Decimal:
        return unpaid_before(self.unpaid, as_of) + self.case_dues


FACTS_VERSION = 1
LISTED_STAGES = (Stage.PHONE, Stage.VISIT)  # the stages the call and visit lists read (``wants_a_call``)


def facts_record(case: Any, rows: Iterable[tuple] | None = None) -> list[Any] | None:
    """The call-list facts of a case as plain JSON values (``facts_from_record`` reads them back), or
    None for a case in a stage no list reads (the lists load such a case when they need its contacts);
    ``rows``: the case's ``installment_rows()``, if the caller has them."""
    return _record(case, rows) if case.stage in LISTED_STAGES else None


def _record(case: Any, rows: Iterable[tuple] | None = None) -> list[Any]:
    promise = case.promise
    if rows is None:
        rows = case.installment_rows()
    return [
        FACTS_VERSION,
        case.stage.value,
        _iso(case.paused_until),
        None if promise is None else [str(promise.amount), promise.promised_on.isoformat()],
        case.broken_in_a_row,
        contact_record(case.contact),
        last_contact_record(case.contact.last),
        [[due_on.isoformat(), str(unpaid)] for due_on, unpaid, *_ in rows if unpaid],
        str(case.case_dues),
        _iso(case.visit_due_on),
        case.failed_visits,
    ]


def facts_from_record(case_id: str, contract_no: str, record: list[Any]) -> CallFacts:
    """The facts ``facts_record`` wrote; refuses a version this code does not know (or none)."""
    if not record or record[0] != FACTS_VERSION:
        raise DomainError(f"case {case_id}: call-list facts of version {record[0] if record else None!r}; this code reads version {FACTS_VERSION}")
    _, stage, paused_until, promise, broken, contact, last, unpaid, case_dues, visit_due_on, failed_visits = record
    return CallFacts(
        case_id,
        contract_no,
        Stage(stage),
        _date(paused_until),
        None if promise is None else PromiseTerms(Decimal(promise[0]), date.fromisoformat(promise[1])),
        broken,
        read_contact(contact, last),
        tuple((date.fromisoformat(due_on), Decimal(amount)) for due_on, amount in unpaid),
        Decimal(case_dues),
        _date(visit_due_on),
        failed_visits,
    )


def facts_of(case: Any) -> CallFacts:
    """A loaded case's call-list facts, in any stage (as its row keeps them in a listed stage)."""
    return facts_from_record(case.case_id, case.contract_no, _record(case))


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _date(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def team_for(case_id: str, teams: Mapping[str, int]) -> str:
    """The team a case belongs to: teams take shares (percent, summing to 100) of a seeded hash."""
    digest = hashlib.sha256(f"{TEAM_SEED}:{case_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % 10_000  # 0.00 .. 99.99 %
    reached = 0
    for name, share in teams.items():
        reached += share * 100
        if point < reached:
            return name
    return next(reversed(teams))


def call_priority(overdue_total: Decimal, dpd: int) -> Decimal:
    """Overdue amount x DPD weight: the larger and the older the arrears, the sooner the call."""
    return (overdue_total * (1 + Decimal(dpd) / DPD_WEIGHT_DAYS)).quantize(Decimal("0.01"))


def wants_a_call(case, as_of: date) -> bool:
    """A case the call list is for: in the phone stage, or in the visit stage and not contacted lately."""
    if case.stage is Stage.PHONE:
        return True
    if case.stage is Stage.VISIT:
        last = case.contact.last
        return last is None or (as_of - last.at.date()).days >= VISIT_CALL_GAP_DAYS
    return False


def why_not_today(case, as_of: date, elsewhere: ContactDay | None = None) -> str | None:
    """Why a case that wants a call may not be called on ``as_of`` (None: call it); ``elsewhere``:
    what the borrower's other loans counted that day (``contact.borrower_day``)."""
    if case.paused_until is not None and case.paused_until > as_of:
        return f"paused until {case.paused_until}"
    if case.promise is not None and case.promise.promised_on >= as_of:
        return f"promise to pay {case.promise.amount} by {case.promise.promised_on} still running"
    if case.contact.number_invalid:
        return "the borrower's number is invalid: trace a new one or visit"
    counts = day_counts(case.contact, as_of, elsewhere)
    across = " (with the borrower's other loans)" if elsewhere is not None and (elsewhere.connected or elsewhere.unanswered) else ""
    if counts.connected >= MAX_CONNECTED_CALLS_A_DAY:
        return f"{MAX_CONNECTED_CALLS_A_DAY} connected calls already today{across}"
    if counts.unanswered.get(ContactParty.BORROWER.value, 0) >= MAX_UNANSWERED_A_DAY:
        return f"{MAX_UNANSWERED_A_DAY} unanswered attempts already today{across}"
    return None


def calling_order(entry: CallListEntry) -> tuple:
    """The call list's order: broken promises first, then priority, then the never contacted, then case id."""
    return (not entry.broken_promise, -entry.priority, entry.last_contact_at is not None, entry.case_id)


def call_list(
    cases: Iterable,  # loaded cases or their ``CallFacts``
    as_of: date,
    teams: Mapping[str, int],
    team: str | None = None,
    elsewhere: Mapping[str, ContactDay] | None = None,
) -> tuple[list[CallListEntry], list[LeftOut]]:
    """The call list of ``as_of`` (in calling order) and the cases left out of it, for one team or all;
    ``elsewhere``: case id -> what that borrower's other loans counted on ``as_of``."""
    entries: list[CallListEntry] = []
    left_out: list[LeftOut] = []
    for case in cases:
        if case.stage.is_closed or not wants_a_call(case, as_of):
            continue
        own_team = team_for(case.case_id, teams)
        if team is not None and own_team != team:
            continue
        reason = why_not_today(case, as_of, (elsewhere or {}).get(case.case_id))
        if reason is not None:
            left_out.append(LeftOut(case.case_id, case.contract_no, own_team, reason))
            continue
        dpd = case.dpd(as_of)
        overdue = case.overdue_total(as_of + ONE_DAY)
        last = case.contact.last
        entries.append(
            CallListEntry(
                case.case_id, case.contract_no, own_team, case.stage.value, dpd, bucket_for(dpd).value, overdue,
                call_priority(overdue, dpd), case.broken_in_a_row > 0, None if last is None else last.at,
            )
        )
    entries.sort(key=calling_order)
    left_out.sort(key=lambda e: e.case_id)
    return entries, left_out
