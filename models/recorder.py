"""The event recorder: the hash-chained, append-only event table. It only inserts and selects.

Each stored event carries ``hash = sha256(prev_hash + canonical JSON of the
event)``; the first event of a case chains from 64 zeros, and the case row
keeps the hash of its newest event (``last_hash``). ``models.audit.verify``
recomputes all of it. Nothing here updates or deletes an event (triggers on
both databases refuse it), and the ``(case_id, seq)`` primary key turns a
second writer of the same step into an error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from models.errors import StoreError
from models.tables import (
    events,
)
from states.case import CollectionCase
from states.events import (
    Event,
    PaymentReceived,
    canonical_json,
    compose_canonical_json,
    event_from_record,
)
from states.money import to_fen


def chain_hash(prev_hash: str, canonical: str) -> str:
    """The hash of an event: sha256 of the previous event's hash followed by its canonical JSON."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def stored_canonical_json(
    *, case_id: str, seq: int, type: str, business_date: date, actor: str, schema_version: int, payload: str
) -> str:
    """The canonical JSON of an event as stored, built from its columns (what the chain hashes).

    For an event written by this code it equals ``event.canonical_json()``;
    for one stored under an older schema it is the old form, so an upcast on
    read never breaks the chain.
    """
    return compose_canonical_json(
        case_id=case_id,
        seq=seq,
        type=type,
        business_date=business_date.isoformat(),
        actor=actor,
        schema_version=schema_version,
        payload_json=canonical_json(json.loads(payload)),  # re-canonicalised: what is hashed is the canonical form
    )


def event_from_row(row: Mapping[str, Any]) -> Event:
    """The domain event of a stored row, upcast to the current schema."""
    return event_from_record(
        case_id=row["case_id"],
        seq=row["seq"],
        type=row["type"],
        business_date=row["business_date"],
        actor=row["actor"],
        schema_version=row["schema_version"],
        payload=row["payload"],
    )


def event_rows(
    work: Sequence[tuple[CollectionCase, list[Event]]],
    prev_hashes: Mapping[str, str],
    now: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """Rows for the events (chained from each case's ``prev_hashes``), their payments, and the new last hashes."""
    event_rows: list[dict[str, Any]] = []
    payment_rows: list[dict[str, Any]] = []
    last_hashes: dict[str, str] = {}
    for case, new_events in work:
        prev = prev_hashes[case.case_id]
        for event in new_events:
            payload_json = event.payload_json()
            current = chain_hash(prev, event.canonical_json_with(payload_json))
            event_rows.append(
                {
                    "case_id": event.case_id,
                    "seq": event.seq,
                    "business_date": event.business_date,
                    "type": event.type,
                    "schema_version": event.schema_version,
                    "actor": event.actor,
                    "payload": payload_json,
                    "prev_hash": prev,
                    "hash": current,
                    "recorded_at": now,
                }
            )
            if isinstance(event, PaymentReceived):
                payment_rows.append(
                    {
                        "payment_id": event.payment_id,
                        "case_id": event.case_id,
                        "seq": event.seq,
                        "amount_fen": to_fen(event.amount),
                        "received_on": event.business_date,
                    }
                )
            prev = current
        last_hashes[case.case_id] = prev
    return event_rows, payment_rows, last_hashes


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



def select_events(conn: Connection, case_id: str, as_of: date | None = None) -> list[Event]:
    """A case's events in order, upcast to the current schema; with ``as_of``, those up to that date."""
    result: list[Event] = []
    rows = conn.execute(select(events).where(events.c.case_id == case_id).order_by(events.c.seq)).mappings()
    for row in rows:
        if as_of is not None and row["business_date"] > as_of:
            break
        result.append(event_from_row(row))
    return result
