"""The event recorder: the hash-chained, append-only event table. It only inserts and selects.

Each stored event carries ``hash = sha256(prev_hash + canonical JSON of the
event)``, where ``prev_hash`` is the hash of the event before it in seq order
(read off that row: it is not stored twice); the first event of a case chains
from 64 zeros, and the case row keeps the hash of its newest event
(``last_hash``). Hashes are hex text in Python, 32 bytes on disk
(``models.tables.HashBytes``). ``models.audit.verify`` recomputes all of it. Nothing here updates or deletes an event (triggers on
both databases refuse it), and the ``(case_id, seq)`` primary key turns a
second writer of the same step into an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update

from models.errors import ConcurrencyError, StoreError
from models.report_totals import ReportTotals, case_at_start
from models.sql import copy_rows, executemany_rows
from models.tables import (
    PlacementRows,
    agencies,
    agency_commissions,
    cases,
    credit_report_values,
    credit_reports,
    events,
    payments,
    placements,
)
from states.case import CollectionCase
from states.events import (
    Event,
    MonthEndReported,
    PaymentReceived,
    canonical_json,
    compose_canonical_json,
    event_from_record,
    parse_json,
)
from states.money import to_fen
from states.value_dating import COST_EVENTS


def chain_hash(prev_hash: str, canonical: str) -> str:
    """The hash of an event: sha256 of the previous event's hash followed by its canonical JSON."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def stored_canonical_json(
    *, case_id: str, seq: int, type: str, business_date: date, actor: str, schema_version: int, payload: str,
    parsed: Any = None,
) -> str:
    """The canonical JSON of an event as stored, built from its columns (what the chain hashes).

    For an event written by this code it equals ``event.canonical_json()``;
    for one stored under an older schema it is the old form, so an upcast on
    read never breaks the chain. ``parsed``: the payload already read by ``parse_json``.
    """
    return compose_canonical_json(
        case_id=case_id,
        seq=seq,
        type=type,
        business_date=business_date.isoformat(),
        actor=actor,
        schema_version=schema_version,
        payload_json=_canonical_payload(payload, parsed),
    )


def recomputed_hash(prev_hash: str, stored_hash: str, columns: Mapping[str, Any], parsed: Any = None) -> str:
    """The hash of a stored event recomputed from its columns (``stored_canonical_json``'s; others in
    ``columns``, such as its hash, are left out), chained from ``prev_hash``: first over its payload
    text as stored, which this code writes canonical already, so one hash settles it (no
    re-encoding); when that is not ``stored_hash``, over the canonical form of the payload, which
    is what the chain hashes (a text written otherwise, or an edit)."""
    as_stored = chain_hash(prev_hash, compose_canonical_json(
        case_id=columns["case_id"], seq=columns["seq"], type=columns["type"], business_date=columns["business_date"].isoformat(),
        actor=columns["actor"], schema_version=columns["schema_version"], payload_json=columns["payload"],
    ))
    if as_stored == stored_hash:
        return as_stored
    envelope = {name: columns[name] for name in ("case_id", "seq", "type", "business_date", "actor", "schema_version", "payload")}
    return chain_hash(prev_hash, stored_canonical_json(**envelope, parsed=parsed))


def _canonical_payload(payload: str, parsed: Any = None) -> str:
    """The canonical form of a stored payload text (what is hashed is the canonical form).

    Text this code wrote is canonical already: read and re-encoded by orjson it
    comes back unchanged. Any other text (spaces, an integer orjson would read as
    a float) is re-canonicalised through json, as it always was.
    """
    text = canonical_json(parse_json(payload) if parsed is None else parsed)
    if text != payload:
        text = canonical_json(json.loads(payload))
    return text


def event_from_row(row: Mapping[str, Any], parsed: Any = None) -> Event:
    """The domain event of a stored row, upcast to the current schema (``parsed``: its payload already read)."""
    return event_from_record(
        case_id=row["case_id"],
        seq=row["seq"],
        type=row["type"],
        business_date=row["business_date"],
        actor=row["actor"],
        schema_version=row["schema_version"],
        payload=parsed if isinstance(parsed, dict) else row["payload"],
    )


_EVENT_COLUMNS = tuple(events.c)
_INSERT_EVENTS_SQLITE = "INSERT INTO events ({}) VALUES ({})".format(
    ", ".join(f'"{c.name}"' for c in _EVENT_COLUMNS), ", ".join("?" * len(_EVENT_COLUMNS))
)
_COPY_EVENTS = "COPY events ({}) FROM STDIN".format(", ".join(f'"{c.name}"' for c in _EVENT_COLUMNS))  # PostgreSQL
_EVENT_BINDS = tuple((c.name, c) for c in _EVENT_COLUMNS)


@dataclass
class EventRows:
    """The rows a batch of new events makes: the events, the projections of single events, the new last hashes."""

    events: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    credit_reports: list[dict[str, Any]] = field(default_factory=list)
    agencies: PlacementRows = field(default_factory=PlacementRows)
    totals: ReportTotals = field(default_factory=ReportTotals)  # the reports' daily sums and stage moves
    last_hashes: dict[str, str] = field(default_factory=dict)

    def insert(self, conn: Connection) -> None:
        """Insert them all (inside the caller's transaction, with the case rows)."""
        if conn.dialect.name == "sqlite" and self.events:
            executemany_rows(conn, _INSERT_EVENTS_SQLITE, _EVENT_BINDS, self.events)
        elif self.events and not (conn.dialect.name == "postgresql" and copy_rows(conn, _COPY_EVENTS, _EVENT_BINDS, self.events)):
            conn.execute(insert(events), self.events)
        if self.payments:
            conn.execute(insert(payments), self.payments)
        if self.credit_reports:
            conn.execute(insert(credit_reports), self.credit_reports)
        insert_placement_rows(conn, self.agencies)

    def insert_totals(self, conn: Connection) -> None:
        """Add the events to the reports' totals: the caller's last write before its commit (the
        daily rows are shared by every writer of a date; ``models.report_totals``)."""
        self.totals.insert(conn)


_RECALL = (
    update(placements)
    .where(placements.c.case_id == bindparam("b_case_id"), placements.c.recalled_on.is_(None))
    .values(recalled_on=bindparam("recalled_on"), recall_reason=bindparam("recall_reason"))
)


def insert_placement_rows(conn: Connection, rows: PlacementRows, *, check_capacity: bool = True) -> None:
    """Recalls of earlier placements first, then the new placements and commissions.

    The last line of defence of an agency's capacity (the domain's board is the first):
    the registered agencies that got a placement are locked, then counted; two writers
    placing with one agency at once are serialized, and the one that would go beyond
    the capacity fails with a ``ConcurrencyError`` (its retry reads a fresh board).
    """
    if rows.recalls:
        conn.execute(_RECALL, rows.recalls)
    if rows.placements:
        conn.execute(insert(placements), rows.placements)
        if check_capacity:
            _check_capacity(conn, sorted({r["agency_id"] for r in rows.placements}), rows.placements[0]["case_id"])
    if rows.commissions:
        conn.execute(insert(agency_commissions), rows.commissions)


def _check_capacity(conn: Connection, names: list[str], case_id: str) -> None:
    locked = select(agencies.c.agency_id, agencies.c.capacity).where(agencies.c.agency_id.in_(names)).order_by(agencies.c.agency_id)
    if conn.dialect.name == "postgresql":
        locked = locked.with_for_update()
    capacity = {name: cap for name, cap in conn.execute(locked)}
    if not capacity:
        return
    held = select(placements.c.agency_id, func.count()).where(
        placements.c.recalled_on.is_(None), placements.c.agency_id.in_(list(capacity))
    ).group_by(placements.c.agency_id)
    for agency, count in conn.execute(held):
        if count > capacity[agency]:
            raise ConcurrencyError(case_id, None, None, f"agency {agency} would hold {count} cases, above its capacity {capacity[agency]}; retry with a fresh view of the agencies")


def event_mac(chain_key: bytes, event_hash: str) -> str:
    """The keyed seal of one event: HMAC-SHA256 of its chain hash under the chain key.

    The sha256 chain stays publicly checkable (seals and case exports rely on
    it); the MAC is what someone who can recompute every sha256 cannot forge
    without the chain key, which is kept away from the database. Only the
    newest event of each write carries one: its hash chains every event
    before it, so one MAC keys them all (``models.audit.check_macs``).
    """
    return hmac.new(chain_key, event_hash.encode("ascii"), hashlib.sha256).hexdigest()


def chain_key_mismatch(conn: Connection, chain_key: bytes, sample: int = 3) -> str | None:
    """Why ``chain_key`` is not the key this store's events were keyed with, or None (it is, or no
    event is keyed yet): the MACs of the newest events of the first cases that carry one, when all
    of them fail. A wrong key fails every MAC; an edited event fails its own only (``verify`` names it)."""
    keyed = _keyed_newest_events(conn, sample)
    if not keyed or any(hmac.compare_digest(mac, event_mac(chain_key, hash_)) for _, _, hash_, mac in keyed):
        return None
    checked = ", ".join(f"{case_id} seq {seq}" for case_id, seq, _, _ in keyed)
    return (
        f"the chain key is not the one this store's events were written with (the MACs of {checked} fail under it); "
        f"give the store's key (COLLECTFLOW_KEY_DIR or COLLECTFLOW_CHAIN_KEY): events written under another would read as forged"
    )


def store_is_keyed(conn: Connection) -> bool:
    """Whether the store's events carry MACs under a chain key (the newest events of its first cases, as
    ``chain_key_mismatch`` samples them)."""
    return bool(_keyed_newest_events(conn, 1))


def _keyed_newest_events(conn: Connection, sample: int) -> list:
    first = select(cases.c.case_id, cases.c.version).order_by(cases.c.case_id).limit(100).subquery()
    query = (
        select(events.c.case_id, events.c.seq, events.c.hash, events.c.mac)
        .join(first, and_(events.c.case_id == first.c.case_id, events.c.seq == first.c.version))
        .where(events.c.mac.is_not(None))
        .limit(sample)
    )
    return list(conn.execute(query).all())


def event_rows(
    work: Sequence[tuple[CollectionCase, list[Event]]],
    prev_hashes: Mapping[str, str],
    now: datetime,
    chain_key: bytes | None = None,
) -> EventRows:
    """Rows for the events (chained from each case's ``prev_hashes``), their payments and credit
    reports, and the new last hashes."""
    rows = EventRows()
    for case, new_events in work:
        prev = prev_hashes[case.case_id]
        head = new_events[-1] if new_events else None
        for event in new_events:
            payload_json = event.payload_json()
            current = chain_hash(prev, event.canonical_json_with(payload_json))
            rows.events.append(
                {
                    "case_id": event.case_id,
                    "seq": event.seq,
                    "business_date": event.business_date,
                    "type": event.type,
                    "schema_version": event.schema_version,
                    "actor": event.actor,
                    "payload": payload_json,
                    "hash": current,
                    # the head of the write only: its hash chains every event before it
                    "mac": None if chain_key is None or event is not head else event_mac(chain_key, current),
                    "recorded_at": now,
                }
            )
            if isinstance(event, PaymentReceived):
                rows.payments.append(
                    {
                        "payment_id": event.payment_id,
                        "case_id": event.case_id,
                        "seq": event.seq,
                        "amount_fen": to_fen(event.amount),
                        "received_on": event.received_on,  # the date it carried (a value-dated one: before)
                    }
                )
            elif isinstance(event, MonthEndReported):
                rows.credit_reports.append(credit_report_values(event))
            prev = current
        rows.agencies.add(new_events)
        rows.totals.add(new_events, case_at_start(case.stage.value, case.agency_id, new_events))
        rows.last_hashes[case.case_id] = prev
    return rows


def check_sequence(case: CollectionCase, new_events: Sequence[Event], *, expected: int) -> None:
    """The events must continue the stored history exactly and bring the case to its version."""
    seqs = [event.seq for event in new_events]
    wanted = list(range(expected + 1, expected + 1 + len(new_events)))
    if seqs != wanted or case.version != expected + len(new_events):
        raise StoreError(
            f"case {case.case_id}: events with seq {seqs} do not take version {expected} "
            f"to the case's version {case.version}"
        )
    for event in new_events:
        if event.case_id != case.case_id:
            raise StoreError(f"case {case.case_id}: event seq {event.seq} belongs to case {event.case_id}")



def select_accruals(conn: Connection, case_id: str, after_seq: int, after: date) -> list[Event]:
    """What a value-dated payment reads (``states.value_dating``), in order: a case's ``ChargesAccrued``
    and ``PaymentReceived`` events after seq ``after_seq`` dated after ``after``, and every event that
    posted litigation costs dated after ``after`` (those are not owed on the value date)."""
    costs = tuple(cls.type for cls in COST_EVENTS)
    query = (
        select(events)
        .where(
            events.c.case_id == case_id,
            events.c.business_date > after,
            or_(
                and_(events.c.type.in_(("ChargesAccrued", "PaymentReceived")), events.c.seq > after_seq),
                events.c.type.in_(costs),
            ),
        )
        .order_by(events.c.seq)
    )
    return [event_from_row(row) for row in conn.execute(query).mappings()]


def select_events(conn: Connection, case_id: str, as_of: date | None = None) -> list[Event]:
    """A case's events in order, upcast to the current schema; with ``as_of``, those up to that date."""
    result: list[Event] = []
    rows = conn.execute(select(events).where(events.c.case_id == case_id).order_by(events.c.seq)).mappings()
    for row in rows:
        if as_of is not None and row["business_date"] > as_of:
            break
        result.append(event_from_row(row))
    return result
