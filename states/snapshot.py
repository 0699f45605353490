"""The snapshot format: a case's whole state as plain JSON values, so a batch loads without replaying.

A snapshot is a cache of ``CollectionCase.replay(events)``: ``verify`` checks
that both give the same state, so a snapshot can never hide an edit. Stored
snapshots are read back for ever, so the format only grows by versions:

- v2: the opening event is kept as its canonical JSON text;
- v3: adds ``pause_reason`` and ``last_contact`` (what ``case show`` tells a
  collector). A v2 snapshot is read when those are known to be empty (the
  case is not paused and was never contacted); otherwise it is refused, and
  the store rebuilds that case from its events;
- v4: ``contact`` keeps the counters of every day a contact may still be
  dated on (a v3 snapshot's single day is read as such);
- v6: adds ``visits`` (the field visit due, the failed visits); a v5
  snapshot predates visit scheduling: none due, none failed;
- v7: adds ``litigation`` (``states.litigation.LitigationState``: the judgment,
  delayed-performance interest, execution); a v6 snapshot predates judgments: none;
- v8: adds ``placement`` (the placement in force's event and commission rate, the
  agency last recalled from, the date a deferred placement is tried again); a v7
  snapshot of a case never placed has none of these; one placed before is refused
  (rebuilt by replay, which knows them);
- v9: ``unenforced`` replaces ``unenforceable``: the charges the cap holds back
  now, lot by lot, oldest first (``states.cap_ledger``), since a grown limit
  charges them later; ``value_dating`` adds the seq of the last
  ``ChargesReversed`` (0: none; no v8 case had one). A v8 snapshot with
  nothing above the cap reads as an empty queue; one with amounts above it
  (known per component only, not lot by lot) is refused, and the store
  rebuilds that case from its events;
- v5: adds ``credit`` (``states.credit.CreditState``). A v4 snapshot was
  written before credit reporting, when no case had been sent a notice, so
  its credit state is the empty one (and a replay of its events agrees).

- v10: no ``opened``. The loan's terms and schedule never change and are kept
  once, in the case's ``CaseOpened`` event: ``from_snapshot`` is given that
  event (the store reads it in the same query as the snapshot), so a snapshot
  holds only what changes. An installment row leaves out its trailing zero
  amounts (``[]``: nothing paid or due yet). Money stays decimal text: exact
  to the digit as the state holds it (``Decimal("0.00")`` and ``Decimal("0")``
  print differently, and a fen integer would not tell them apart), and
  ``Decimal(str)`` decodes faster than an integer scaled by a hundred. A v9
  snapshot reads as v10 (its ``opened`` text is the opening event when none
  is given).

- v11: stored packed (``packed``): a list of the v10 values in a fixed order
  (``PACKED_FIELDS``), its first item the version; no keys and no case id (the
  case row has it); the components of ``principal_days`` and ``computed`` by
  their event codes; values equal to a new case's left out from the end. Read
  back (``unpacked``) it is the v10 record again, so ``snapshot()`` and every
  reader of it are unchanged, and a stored v10 record reads as v11. About 60 %
  of a v10 snapshot's bytes were keys and a new case's values (904 -> 333
  bytes a case on a million-case store).

The domain keeps no cache: a loaded case holds its own opening event and
nothing else outlives it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from states import contact as contact_rules
from states.accrual import PERIOD_START
from states.cap_ledger import Unenforced
from states.contact import ContactDay, ContactState, LastContact
from states.credit import CreditState
from states.errors import DomainError
from states.events import CaseOpened, event_from_record, parse_json
from states.lifecycle import Stage
from states.litigation import EMPTY as EMPTY_LITIGATION
from states.litigation import ExecutionOutcome, Judgment, LitigationState
from states.money import ZERO
from states.payload_codecs import COMPONENT_NAMES, component_code
from states.vocabulary import ContactChannel, ContactOutcome, ContactParty

if TYPE_CHECKING:
    from states.case import CollectionCase

SNAPSHOT_VERSION = 11
ADDED_IN = {3: ("pause_reason", "last_contact"), 5: ("credit",), 6: ("visits",), 7: ("litigation",), 8: ("placement",), 9: ("unenforced", "value_dating")}  # keys each version added to the one before
_ZERO_TEXT = str(ZERO)  # how a zero amount of the state is written ("0.00")
_EMPTY_CONTACT = ContactState()  # immutable, so shared by every case never contacted
_NO_CREDIT = CreditState()  # and by every case never sent a credit-report notice


def decode_opening_event(text: str) -> CaseOpened:
    """The opening event from its canonical JSON text, decoded afresh."""
    opened = event_from_record(**parse_json(text))
    if not isinstance(opened, CaseOpened):
        raise DomainError(f"snapshot: the opening event is a {opened.type}, not CaseOpened")
    return opened


def snapshot(case: CollectionCase) -> dict[str, Any]:
    """The whole state of ``case`` as plain JSON values (what ``from_snapshot`` reads back)."""
    promise = case.promise
    contact = case.contact
    return {
        "v": SNAPSHOT_VERSION,
        "case_id": case.case_id,
        "version": case.version,
        "stage": case.stage.value,
        "installments": [_installment(i) for i in case.installments],
        "accrued_through": case.accrued_through.isoformat(),
        "reviewed_through": case.reviewed_through.isoformat(),
        "next_review_on": _iso(case.next_review_on),
        "principal_days": {k: str(v) for k, v in case.principal_days.items()},
        "computed": {k: str(v) for k, v in case.computed.items()},
        "charged": str(case.charged),
        "unenforced": [[lot.component, str(lot.amount), lot.installment] for lot in case.unenforced],
        "value_dating": case.last_reversal_seq,
        "dues": [str(case.penalty_due), str(case.compound_due), str(case.costs_due)],
        "total_paid": str(case.total_paid),
        "overpayment": str(case.overpayment),
        "promise": None
        if promise is None
        else [str(promise.amount), promise.promised_on.isoformat(), promise.holds_escalation, str(promise.paid_before)],
        "broken_in_a_row": case.broken_in_a_row,
        "paused_until": _iso(case.paused_until),
        "pause_reason": case.pause_reason,
        "agency": [case.agency_id, _iso(case.placement_until), case.placements],
        "lawsuit_filed": case.lawsuit_filed,
        "contact": contact_record(contact),
        "last_contact": last_contact_record(contact.last),
        "credit": [_iso(case.credit.first_report_on), _iso(case.credit.default_ended_on), _iso(case.credit.reported_through)],
        "visits": [_iso(case.visit_due_on), case.failed_visits],
        "litigation": _litigation(case.litigation),
        **({"period_starts": [[n, str(pd)] for n, pd in sorted(case.period_starts.items())]} if case.period_starts else {}),
        "placement": [
            case.placement_seq,
            None if case.commission_rate is None else str(case.commission_rate),
            case.last_agency_id,
            _iso(case.placement_retry_on),
        ],
    }


def from_snapshot(
    data: dict[str, Any],
    opened: CaseOpened | None = None,
    case_class: type[CollectionCase] | None = None,
) -> CollectionCase:
    """The case a snapshot holds, on the terms of its opening event ``opened`` (the case's first event).

    ``data`` is a ``snapshot()`` record or its ``packed`` list. A v10 or later
    snapshot holds no terms: without ``opened`` it is refused. An older one
    carries its opening event's text, read when ``opened`` is not given.
    Refuses a version it cannot read fully (rebuild it by replay).
    """
    from states.case import CollectionCase, Promise  # the case uses this module; import on use

    if isinstance(data, list):
        if opened is None:
            raise DomainError(f"a version {SNAPSHOT_VERSION} snapshot is read with the case's opening event; none was given")
        data = unpacked(data, opened.case_id)
    data = _upgraded(data)
    if opened is None:
        text = data.get("opened")
        if text is None:
            raise DomainError(f"case {data.get('case_id')}: a version {SNAPSHOT_VERSION} snapshot is read with the case's opening event; none was given")
        opened = decode_opening_event(text)
    if opened.case_id != data["case_id"] or opened.seq != 1:
        raise DomainError(f"case {data['case_id']}: the opening event given is seq {opened.seq} of case {opened.case_id}")
    case = (case_class or CollectionCase)(opened.case_id)
    case.apply(opened)
    rows = data["installments"]
    if len(rows) != len(case.installments):
        raise DomainError(f"case {case.case_id}: the snapshot has {len(rows)} installments, the schedule {len(case.installments)}")
    for inst, row in zip(case.installments, rows):
        if row:  # the amounts left out are zero (as the installment starts)
            amounts = [_money(text) for text in row]
            if len(amounts) < 5:
                amounts += [ZERO] * (5 - len(amounts))
            inst.principal_paid, inst.interest_due, inst.interest_paid, inst.late_fee_due, inst.late_fee_paid = amounts
    case.version = data["version"]
    case.stage = Stage(data["stage"])
    case.accrued_through = date.fromisoformat(data["accrued_through"])
    case.reviewed_through = date.fromisoformat(data["reviewed_through"])
    case.next_review_on = _date(data["next_review_on"])
    case.principal_days = {k: _money(v) for k, v in data["principal_days"].items()}
    case.period_starts = _read_period_starts(data.get("period_starts"), case)
    case.computed = {k: _money(v) for k, v in data["computed"].items()}
    case.charged = _money(data["charged"])
    case.unenforced = tuple(Unenforced(c, Decimal(a), i) for c, a, i in data["unenforced"])
    case.last_reversal_seq = data["value_dating"]
    case.penalty_due, case.compound_due, case.costs_due = map(_money, data["dues"])
    case.total_paid = _money(data["total_paid"])
    case.overpayment = _money(data["overpayment"])
    if data["promise"] is not None:
        amount, promised_on, holds, paid_before = data["promise"]
        case.promise = Promise(Decimal(amount), date.fromisoformat(promised_on), holds, _money(paid_before))
    case.broken_in_a_row = data["broken_in_a_row"]
    case.paused_until = _date(data["paused_until"])
    case.pause_reason = data["pause_reason"]
    agency, until, case.placements = data["agency"]
    case.agency_id, case.placement_until = agency, _date(until)
    case.lawsuit_filed = data["lawsuit_filed"]
    case.contact = read_contact(data["contact"], data["last_contact"], case.accrued_through)
    credit = data["credit"]
    case.credit = _NO_CREDIT if credit == [None, None, None] else CreditState(*map(_date, credit))
    due, case.failed_visits = data["visits"]
    case.visit_due_on = _date(due)
    case.litigation = _read_litigation(data["litigation"])
    seq, rate, case.last_agency_id, retry_on = data["placement"]
    case.placement_seq, case.placement_retry_on = seq, _date(retry_on)
    case.commission_rate = None if rate is None else Decimal(rate)
    return case


# --------------------------------------------------------------------------
# v11: the record packed for storage

_ZEROS = [_ZERO_TEXT] * 3
# (key, the value of a case that never changed it) in stored order: the most often changed first, so
# that a case's trailing unchanged values are left out; the first five are always written
PACKED_FIELDS: tuple[tuple[str, Any], ...] = (
    ("version", None), ("stage", None), ("installments", None), ("accrued_through", None), ("reviewed_through", None),
    ("next_review_on", None), ("principal_days", {}), ("computed", {}), ("charged", _ZERO_TEXT), ("dues", _ZEROS),
    ("total_paid", _ZERO_TEXT), ("overpayment", _ZERO_TEXT), ("period_starts", None), ("credit", [None, None, None]),
    ("visits", [None, 0]), ("contact", [{}, 0, False]), ("last_contact", None), ("broken_in_a_row", 0), ("promise", None),
    ("agency", [None, None, 0]), ("paused_until", None), ("pause_reason", None), ("unenforced", []), ("value_dating", 0),
    ("lawsuit_filed", False), ("litigation", None), ("placement", [None, None, None, None]),
)
_ALWAYS_WRITTEN = 5
_KEYS = tuple(key for key, _ in PACKED_FIELDS)
_DEFAULTS = tuple(default for _, default in PACKED_FIELDS)
_CODED = ("principal_days", "computed")  # by component: its code as a key


def packed(record: dict[str, Any]) -> list[Any]:
    """A ``snapshot()`` record (the current version) as stored: ``[version, value, ...]``."""
    if record.get("v") != SNAPSHOT_VERSION:
        raise DomainError(f"case {record.get('case_id')}: only a version {SNAPSHOT_VERSION} record is packed, not {record.get('v')!r}")
    row = [SNAPSHOT_VERSION]
    for key, _ in PACKED_FIELDS:
        value = record.get(key)
        row.append({component_code(name): v for name, v in value.items()} if key in _CODED else value)
    while len(row) > 1 + _ALWAYS_WRITTEN and row[-1] == PACKED_FIELDS[len(row) - 2][1]:
        row.pop()
    return row


def unpacked(row: list[Any], case_id: str) -> dict[str, Any]:
    """The record a ``packed`` list holds (values left out are a new case's; the caller reads, never
    changes, them), or a ``DomainError`` when it is not one."""
    if not row or row[0] != SNAPSHOT_VERSION:
        raise DomainError(f"case {case_id}: a packed snapshot of version {row[0] if row else None!r} is not {SNAPSHOT_VERSION}")
    given = len(row) - 1
    if not _ALWAYS_WRITTEN <= given <= len(PACKED_FIELDS):
        raise DomainError(f"case {case_id}: a packed snapshot has {given} values, not {_ALWAYS_WRITTEN} to {len(PACKED_FIELDS)}")
    record = dict(zip(_KEYS, row[1:]))
    if given < len(_KEYS):
        record.update(zip(_KEYS[given:], _DEFAULTS[given:]))
    for key in _CODED:
        record[key] = {COMPONENT_NAMES.get(code, code): value for code, value in record[key].items()}
    if record["period_starts"] is None:  # absent: not kept (``_read_period_starts``)
        del record["period_starts"]
    record["v"], record["case_id"] = SNAPSHOT_VERSION, case_id
    return record


def record_of(stored: dict[str, Any] | list[Any], case_id: str) -> dict[str, Any]:
    """A stored snapshot (parsed JSON) as a record: a ``packed`` list unpacked, an older record as it is."""
    return unpacked(stored, case_id) if isinstance(stored, list) else stored


def _read_period_starts(data: list[Any] | None, case: Any) -> dict[int, Decimal]:
    """The period starts kept (``value_dating``); a snapshot written before they were kept gives the
    latest one, the period start its principal-days hold (a reversal further back asks for a rebuild)."""
    if data is not None:
        return {n: _money(pd) for n, pd in data}
    start = case.principal_days.get(PERIOD_START, ZERO)
    if not start:
        return {}
    posted = [i.number for i in case.installments if i.due_on <= case.accrued_through]
    return {posted[-1] + 1: start} if posted else {}


def _installment(inst: Any) -> list[str]:
    """An installment's changing amounts, its trailing zero ones left out."""
    row = [str(inst.principal_paid), str(inst.interest_due), str(inst.interest_paid), str(inst.late_fee_due), str(inst.late_fee_paid)]
    while row and row[-1] == _ZERO_TEXT:
        row.pop()
    return row


def contact_record(contact: ContactState) -> list[Any]:
    """A case's contact counters as plain JSON values (``read_contact`` reads them back)."""
    return [
        {day.isoformat(): [counts.connected, dict(counts.unanswered)] for day, counts in sorted(contact.days.items())},
        contact.failed_in_a_row,
        contact.number_invalid,
    ]


def last_contact_record(last: LastContact | None) -> list[str] | None:
    return None if last is None else [last.at.isoformat(timespec="minutes"), last.channel.value, last.party.value, last.outcome.value]


def read_contact(data: list[Any], last_contact: list[Any] | None, accrued_through: date | None = None) -> ContactState:
    """The contact state of ``contact_record`` and ``last_contact_record``; the counters of days before
    ``accrued_through`` (the last closed date), if given, are forgotten."""
    days, failed_in_a_row, number_invalid = data
    if not days and not failed_in_a_row and not number_invalid and last_contact is None:
        return _EMPTY_CONTACT
    last = None
    if last_contact is not None:
        at, channel, party, outcome = last_contact
        last = LastContact(datetime.fromisoformat(at), ContactChannel(channel), ContactParty(party), ContactOutcome(outcome))
    counters = {
        date.fromisoformat(day): ContactDay(date.fromisoformat(day), connected, MappingProxyType(dict(unanswered)))
        for day, (connected, unanswered) in days.items()
    }
    state = ContactState(MappingProxyType(counters), failed_in_a_row, number_invalid, last)
    return state if accrued_through is None else contact_rules.forget_days_before(state, accrued_through)


def _litigation(state: LitigationState) -> list[Any] | None:
    if state == EMPTY_LITIGATION:
        return None
    j = state.judgment
    return [
        None if j is None else [str(j.amount), j.deadline.isoformat(), j.entered_on.isoformat()],
        str(state.paid_since_judgment), str(state.debt_days), str(state.interest_posted), str(state.interest_due),
        None if state.execution is None else state.execution.value,
    ]


def _read_litigation(data: list[Any] | None) -> LitigationState:
    if data is None:
        return EMPTY_LITIGATION
    judgment, paid, debt_days, posted, due, execution = data
    if judgment is not None:
        amount, deadline, entered_on = judgment
        judgment = Judgment(Decimal(amount), date.fromisoformat(deadline), date.fromisoformat(entered_on))
    return LitigationState(
        judgment, Decimal(paid), Decimal(debt_days), Decimal(posted), Decimal(due),
        None if execution is None else ExecutionOutcome(execution),
    )


def _upgraded(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` in the current shape, or a ``DomainError`` when what a later version added is unknown."""
    version = data.get("v")
    if version == SNAPSHOT_VERSION:
        return data
    if version == 10:  # v11 is v10 packed: the record is the same
        return {**data, "v": SNAPSHOT_VERSION}
    if version == 9:  # v10 leaves the opening event out; its installment rows read as they are
        return _upgraded({**data, "v": 10})
    if version == 8:  # written when the cap cut for good: nothing to release unless something was cut
        held = {k: v for k, v in data.pop("unenforceable", {}).items() if Decimal(v)}
        if held:
            raise DomainError(
                f"case {data.get('case_id')}: snapshot version 8 holds {', '.join(sorted(held))} above the cap "
                f"without its {ADDED_IN[9][0]} lots; rebuild it by replay"
            )
        return _upgraded({**data, "v": 9, "unenforced": [], "value_dating": 0})
    if version == 7:  # written before placements were measured: known only for a case never placed
        if data["agency"][2]:
            raise DomainError(
                f"case {data.get('case_id')}: snapshot version 7 of a case placed before lacks "
                f"{' and '.join(ADDED_IN[8])}; rebuild it by replay"
            )
        return _upgraded({**data, "v": 8, "placement": [None, None, None, None]})
    if version == 6:  # written before judgments were recorded: none is
        return _upgraded({**data, "v": 7, "litigation": None})
    if version == 5:  # written before field visits were scheduled: none is
        return _upgraded({**data, "v": 6, "visits": [None, 0]})
    if version == 4:  # written before credit reporting: nothing reported, no notice sent
        return _upgraded({**data, "v": 5, "credit": [None, None, None]})
    if version == 3:  # one day's contact counters -> the counters of every day still open
        day, connected, unanswered, failed, invalid = data["contact"]
        days = {} if day is None else {day: [connected, unanswered]}
        return _upgraded({**data, "v": 4, "contact": [days, failed, invalid]})
    if version == 2:
        contacted = data["contact"][0] is not None
        if data["paused_until"] is None and not contacted:
            return _upgraded({**data, "v": 3, "pause_reason": None, "last_contact": None})
        raise DomainError(
            f"case {data.get('case_id')}: snapshot version 2 of a paused or contacted case lacks "
            f"{' and '.join(ADDED_IN[3])}; rebuild it by replay"
        )
    raise DomainError(f"snapshot version {version!r} is not {SNAPSHOT_VERSION}; rebuild it by replay")


def _money(text: str) -> Decimal:
    """An amount of the state; a zero one is the shared ``ZERO`` (what a case that never changed it holds)."""
    return ZERO if text == _ZERO_TEXT else Decimal(text)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None
