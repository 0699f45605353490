"""The case store: append-only, hash-chained events and the case projections beside them.

A case's new events and its new projection are written in one transaction,
guarded by the version the change was computed from: a second writer gets a
``ConcurrencyError`` (and the ``(case_id, seq)`` primary key refuses a
duplicate step even if the guard were bypassed). Batches load and save
thousands of cases in a few statements: snapshots in one query per chunk of
ids, events and projections with executemany; no per-case ORM round trip.

Each stored event carries ``hash = sha256(prev_hash + canonical JSON of the
event)``; the first event of a case chains from 64 zeros, and the case row
keeps the hash of its newest event (``last_hash``). ``models.audit.verify``
recomputes all of it.

The store persists what the domain decided; it makes no business decisions.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, bindparam, case as sql_case, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from models.db import write_transaction
from models.errors import CaseNotFound, ConcurrencyError, DuplicatePayment, StoreError, TermsConflict
from models.tables import (
    BUSINESS_DAY_STATUSES,
    GENESIS_HASH,
    PROJECTION_COLUMNS,
    borrowers,
    business_days,
    cases,
    events,
    loans,
    lpr_fixings,
    payments,
    policies,
    projection_from_row,
    projection_values,
)
from states.caps import LprTable
from states.case import CaseProjection, CollectionCase
from states.events import Event, PaymentReceived, canonical_json, compose_canonical_json, event_from_record
from states.lifecycle import Stage
from states.loan import LoanTerms
from states.money import ZERO, from_fen, to_fen
from states.policy import CollectionPolicy
from states.snapshot import decode_opening_event

CHUNK = 1000  # ids per IN (...) list: well inside SQLite's and PostgreSQL's parameter limits
CLOSED_STAGES = tuple(stage.value for stage in Stage if stage.is_closed)
T = TypeVar("T")


# --------------------------------------------------------------------------
# the hash chain


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


def terms_hash(terms: LoanTerms) -> str:
    """sha256 of the contract terms (the schedule is derived from them, so it is left out)."""
    return hashlib.sha256(canonical_json(_terms_record(terms)).encode("utf-8")).hexdigest()


def _terms_record(terms: LoanTerms) -> dict[str, Any]:
    return {
        "contract_no": terms.contract_no,
        "borrower_id": terms.borrower_id,
        "principal": str(terms.principal),
        "annual_rate": str(terms.annual_rate),
        "term_months": terms.term_months,
        "repayment_method": terms.repayment_method.value,
        "disbursed_on": terms.disbursed_on.isoformat(),
        "first_due_on": terms.first_due_on.isoformat(),
        "day_count": terms.day_count.value,
        "penalty_uplift": str(terms.penalty_uplift),
        "compound_interest": terms.compound_interest,
        "late_fee": str(terms.late_fee),
        "late_fee_rate": str(terms.late_fee_rate),
        "cap_regime": terms.cap_regime.value,
        "contract_date": terms.contract_date.isoformat(),
    }


# --------------------------------------------------------------------------
# what the store hands back


@dataclass(frozen=True)
class CaseRow:
    """A case row: the projection and the store's own columns."""

    projection: CaseProjection
    last_hash: str
    stuck: bool
    stuck_error: str | None
    stuck_on: date | None

    @property
    def case_id(self) -> str:
        return self.projection.case_id


@dataclass(frozen=True)
class StuckCase:
    case_id: str
    contract_no: str
    stage: str
    stuck_on: date | None
    error: str


@dataclass(frozen=True)
class Booking:
    """What ``add_cases`` did: cases booked now, and contracts already booked with the same terms."""

    booked: tuple[str, ...]
    already_booked: tuple[str, ...]


@dataclass(frozen=True)
class StageTotals:
    stage: str
    cases: int
    stuck: int
    principal_outstanding: Decimal
    total_due: Decimal
    unenforceable: Decimal
    total_paid: Decimal


@dataclass(frozen=True)
class PortfolioSummary:
    stages: tuple[StageTotals, ...]  # in lifecycle order, stages with no case left out
    total: StageTotals


@dataclass(frozen=True)
class BusinessDayRecord:
    business_date: date
    status: str
    started_at: datetime
    finished_at: datetime | None
    cases_advanced: int
    stuck: int


# --------------------------------------------------------------------------


class CaseStore:
    """Loads and saves cases; every write is one transaction."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # ------------------------------------------------------------------
    # booking

    def add_cases(
        self,
        items: Sequence[tuple[LoanTerms, CollectionCase, list[Event]]],
        *,
        borrower_rows: Sequence[Mapping[str, Any]] = (),
    ) -> Booking:
        """Book loans with their new cases and opening events, all in one transaction.

        Re-importing a contract with the same terms is a no-op (listed in
        ``already_booked``); the same contract number with other terms is a
        ``TermsConflict``. ``borrower_rows`` (``borrowers`` table rows, from
        ``models.loanbook``) are written with the loans booked now.
        """
        items = list(items)
        seen: set[str] = set()
        for terms, case, new_events in items:
            if case.contract_no != terms.contract_no:
                raise StoreError(
                    f"case {case.case_id}: opened for contract {case.contract_no!r}, booked with terms of {terms.contract_no!r}"
                )
            if terms.contract_no in seen:
                raise TermsConflict(f"contract {terms.contract_no}: given twice in one import")
            seen.add(terms.contract_no)
            _check_sequence(case, new_events, expected=0)
        hashes = {terms.contract_no: terms_hash(terms) for terms, _, _ in items}
        now = _now()
        try:
            with write_transaction(self.engine) as conn:
                booked_before: dict[str, str] = {}
                for chunk in _chunks(sorted(hashes)):
                    rows = conn.execute(
                        select(loans.c.contract_no, loans.c.terms_hash).where(loans.c.contract_no.in_(chunk))
                    )
                    booked_before.update((contract_no, stored) for contract_no, stored in rows)
                fresh: list[tuple[LoanTerms, CollectionCase, list[Event]]] = []
                already: list[str] = []
                for terms, case, new_events in items:
                    stored_hash = booked_before.get(terms.contract_no)
                    if stored_hash is None:
                        fresh.append((terms, case, new_events))
                    elif stored_hash == hashes[terms.contract_no]:
                        already.append(terms.contract_no)
                    else:
                        raise TermsConflict(
                            f"contract {terms.contract_no}: already booked with different terms; "
                            f"a booked contract is never changed by a re-import"
                        )
                if fresh:
                    conn.execute(insert(loans), [_loan_values(t, c.case_id, hashes[t.contract_no], now) for t, c, _ in fresh])
                    event_rows, payment_rows, last_hashes = _event_rows(
                        [(c, evs) for _, c, evs in fresh], {c.case_id: GENESIS_HASH for _, c, _ in fresh}, now
                    )
                    conn.execute(
                        insert(cases),
                        [
                            {**_case_values(c, last_hashes[c.case_id]), "stuck": False, "stuck_error": None, "stuck_on": None}
                            for _, c, _ in fresh
                        ],
                    )
                    conn.execute(insert(events), event_rows)
                    if payment_rows:
                        conn.execute(insert(payments), payment_rows)
                    booked_now = {t.contract_no for t, _, _ in fresh}
                    rows = [row for row in borrower_rows if row["contract_no"] in booked_now]
                    if rows:
                        conn.execute(insert(borrowers), rows)
        except IntegrityError as exc:
            raise self._explain_integrity_error(exc, [(c, evs) for _, c, evs in items]) from exc
        return Booking(tuple(c.case_id for _, c, _ in fresh), tuple(already))

    # ------------------------------------------------------------------
    # borrowers (personal data: encrypted and masked columns only; see models.loanbook)

    def booked_loans(self, contract_nos: Sequence[str]) -> dict[str, tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
        """For the contracts already booked: (loan row, borrower row or None), by contract number."""
        found: dict[str, tuple[Mapping[str, Any], Mapping[str, Any] | None]] = {}
        query = select(loans, borrowers).join_from(loans, borrowers, loans.c.contract_no == borrowers.c.contract_no, isouter=True)
        loan_keys, borrower_keys = list(loans.c.keys()), list(borrowers.c.keys())
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(set(contract_nos))):
                for row in conn.execute(query.where(loans.c.contract_no.in_(chunk))):
                    values = tuple(row)
                    loan = dict(zip(loan_keys, values[: len(loan_keys)]))
                    borrower = dict(zip(borrower_keys, values[len(loan_keys) :]))
                    found[loan["contract_no"]] = (loan, borrower if borrower["contract_no"] is not None else None)
        return found

    def borrower_identities(
        self, borrower_ids: Sequence[str], national_id_hashes: Sequence[str]
    ) -> list[tuple[str, str, str]]:
        """(contract_no, borrower_id, national_id_hash) of every booked borrower with one of these ids or hashes."""
        found: set[tuple[str, str, str]] = set()
        columns = select(borrowers.c.contract_no, borrowers.c.borrower_id, borrowers.c.national_id_hash)
        with self.engine.connect() as conn:
            for column, values in ((borrowers.c.borrower_id, borrower_ids), (borrowers.c.national_id_hash, national_id_hashes)):
                for chunk in _chunks(sorted(set(values))):
                    found.update(tuple(row) for row in conn.execute(columns.where(column.in_(chunk))))
        return sorted(found)

    def amend_borrowers(
        self,
        changes: Sequence[tuple[CollectionCase, list[Event]]],
        *,
        expected_versions: Mapping[str, int],
        borrower_rows: Sequence[Mapping[str, Any]],
    ) -> int:
        """Append the amendment events and write the borrowers' new rows, in one transaction.

        A row whose contract has no borrower row yet (a loan booked without
        personal data) is inserted; otherwise it replaces the stored one.
        """
        work = [(case, new_events) for case, new_events in changes if new_events]
        for case, new_events in work:
            _check_sequence(case, new_events, expected=expected_versions[case.case_id])
        try:
            with write_transaction(self.engine) as conn:
                written = self._append(conn, work, expected_versions)
                wanted = [row["contract_no"] for row in borrower_rows]
                present: set[str] = set()
                for chunk in _chunks(wanted):
                    present.update(conn.execute(select(borrowers.c.contract_no).where(borrowers.c.contract_no.in_(chunk))).scalars())
                updates = [
                    {**{k: v for k, v in row.items() if k not in ("contract_no", "booked_at")}, "b_contract_no": row["contract_no"]}
                    for row in borrower_rows
                    if row["contract_no"] in present
                ]
                if updates:
                    statement = (
                        update(borrowers)
                        .where(borrowers.c.contract_no == bindparam("b_contract_no"))
                        .values({k: bindparam(k) for k in updates[0] if k != "b_contract_no"})
                    )
                    conn.execute(statement, updates)
                inserts = [row for row in borrower_rows if row["contract_no"] not in present]
                if inserts:
                    conn.execute(insert(borrowers), inserts)
        except IntegrityError as exc:
            raise self._explain_integrity_error(exc, work, expected_versions) from exc
        return written

    def borrower_row(self, case_id_or_contract_no: str) -> tuple[str, str, Mapping[str, Any] | None]:
        """(case id, contract number, borrower row or None) of a case."""
        case_id = self.resolve_case_id(case_id_or_contract_no)
        query = (
            select(cases.c.contract_no, borrowers)
            .join_from(cases, borrowers, cases.c.contract_no == borrowers.c.contract_no, isouter=True)
            .where(cases.c.case_id == case_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
        contract_no, values = row[0], dict(zip(borrowers.c.keys(), tuple(row)[1:]))
        return case_id, contract_no, values if values["contract_no"] is not None else None

    # ------------------------------------------------------------------
    # the batch path

    def due_case_ids(self, business_date: date, limit: int | None = None) -> list[str]:
        """Cases with something due by ``business_date``, not closed, ordered by case id.

        Stuck cases are included: every close (and every retry of a failed
        one) tries them again, so a stuck case keeps its run Failed, visibly,
        until the fix lands; then it goes through exactly once.
        """
        query = (
            select(cases.c.case_id)
            .where(
                cases.c.next_review_on <= business_date,
                cases.c.stage.not_in(CLOSED_STAGES),
            )
            .order_by(cases.c.case_id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def load(self, case_ids: Iterable[str]) -> dict[str, CollectionCase]:
        """The cases, rebuilt from their snapshots (one query per chunk of ids, no replay)."""
        loaded, unreadable = self.load_tolerant(case_ids)
        if unreadable:
            case_id, error = next(iter(unreadable.items()))
            more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
            if error == _NO_SUCH_CASE:
                raise CaseNotFound(f"case {case_id}: no such case{more}")
            raise StoreError(f"case {case_id}: cannot be loaded: {error}{more}")
        return loaded

    def load_tolerant(self, case_ids: Iterable[str]) -> tuple[dict[str, CollectionCase], dict[str, str]]:
        """Like ``load``, but a case that cannot be read is returned in the second dict with its error.

        A snapshot this code cannot read (an older snapshot version, say) is
        replaced by a replay of the case's events; only a case whose events
        do not replay either is unreadable.
        """
        ids = list(dict.fromkeys(case_ids))
        loaded: dict[str, CollectionCase] = {}
        unreadable: dict[str, str] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(ids):
                rows = conn.execute(select(cases.c.case_id, cases.c.snapshot).where(cases.c.case_id.in_(chunk)))
                for case_id, snapshot in rows:
                    try:
                        loaded[case_id] = CollectionCase.from_snapshot(json.loads(snapshot), _decode_opened)
                    except Exception:  # noqa: BLE001 - a snapshot is a cache; the events decide
                        try:
                            loaded[case_id] = CollectionCase.replay(self._events(conn, case_id), case_id)
                        except Exception as exc:  # noqa: BLE001 - reported per case
                            unreadable[case_id] = f"{type(exc).__name__}: {exc}"
        for case_id in ids:
            if case_id not in loaded and case_id not in unreadable:
                unreadable[case_id] = _NO_SUCH_CASE
        return {case_id: loaded[case_id] for case_id in ids if case_id in loaded}, unreadable

    def save(
        self,
        changes: Sequence[tuple[CollectionCase, list[Event]]],
        *,
        expected_versions: Mapping[str, int],
    ) -> int:
        """Append each case's new events and update its projection, all in one transaction.

        ``expected_versions[case_id]`` is the version the case was loaded at;
        if the stored version differs, nothing is written and
        ``ConcurrencyError`` names the case. Returns the number of events written.
        """
        return self.save_batch(changes, expected_versions=expected_versions)

    def save_batch(
        self,
        changes: Sequence[tuple[CollectionCase, list[Event]]],
        *,
        expected_versions: Mapping[str, int],
        stuck: Mapping[str, str] | None = None,
        business_date: date | None = None,
        cleared: Sequence[str] = (),
    ) -> int:
        """``save`` plus the batch's quarantine, in the same transaction.

        Cases in ``stuck`` (case id -> error) are marked stuck on
        ``business_date``; cases in ``cleared`` went through and lose any
        stuck flag.
        """
        work = [(case, new_events) for case, new_events in changes if new_events]
        given = [case.case_id for case, _ in work]
        if len(set(given)) != len(given):
            twice = sorted({case_id for case_id in given if given.count(case_id) > 1})
            raise StoreError(f"cases {', '.join(twice)}: given twice in one save; pass each case once with all its events")
        for case, new_events in work:
            if case.case_id not in expected_versions:
                raise StoreError(f"case {case.case_id}: no expected version given; pass the version it was loaded at")
            _check_sequence(case, new_events, expected=expected_versions[case.case_id])
        if stuck and business_date is None:
            raise StoreError("save_batch: marking cases stuck needs the business date they got stuck on")
        if not work and not stuck and not cleared:
            return 0
        try:
            with write_transaction(self.engine) as conn:
                written = self._append(conn, work, expected_versions)
                if cleared:
                    self._set_stuck(conn, [(case_id, None, None) for case_id in cleared])
                if stuck:
                    self._set_stuck(conn, [(case_id, business_date, error) for case_id, error in stuck.items()])
        except IntegrityError as exc:
            raise self._explain_integrity_error(exc, work, expected_versions) from exc
        return written

    def _append(
        self,
        conn: Connection,
        work: Sequence[tuple[CollectionCase, list[Event]]],
        expected_versions: Mapping[str, int],
    ) -> int:
        if not work:
            return 0
        ids = sorted(case.case_id for case, _ in work)
        stored: dict[str, tuple[int, str]] = {}
        for chunk in _chunks(ids):
            query = select(cases.c.case_id, cases.c.version, cases.c.last_hash).where(cases.c.case_id.in_(chunk))
            if conn.dialect.name == "postgresql":
                # lock the rows in one order, so two writers of overlapping batches cannot deadlock
                query = query.order_by(cases.c.case_id).with_for_update()
            stored.update((case_id, (version, last_hash)) for case_id, version, last_hash in conn.execute(query))
        conflicts = [i for i in ids if stored.get(i, (None, ""))[0] != expected_versions[i]]
        if conflicts:
            first = conflicts[0]
            others = f"{len(conflicts) - 1} more case(s) changed too: {', '.join(conflicts[1:6])}" if len(conflicts) > 1 else ""
            raise ConcurrencyError(first, expected_versions[first], stored.get(first, (None, ""))[0], others)
        now = _now()
        event_rows, payment_rows, last_hashes = _event_rows(work, {i: stored[i][1] for i in ids}, now)
        conn.execute(insert(events), event_rows)
        if payment_rows:
            conn.execute(insert(payments), payment_rows)
        case_rows = []
        for case, _ in work:
            row = _case_values(case, last_hashes[case.case_id])
            for name in _IMMUTABLE:
                del row[name]  # a key left in would be SET as well
            case_rows.append({**row, "b_case_id": case.case_id, "b_expected": expected_versions[case.case_id]})
        result = conn.execute(_UPDATE_CASE, case_rows)
        if result.rowcount != len(case_rows):
            # Unreachable while the rows are locked above (FOR UPDATE on PostgreSQL,
            # BEGIN IMMEDIATE on SQLite); the version guard stays as the last line.
            new_versions = {case.case_id: case.version for case, _ in work}
            for chunk in _chunks(ids):
                query = select(cases.c.case_id, cases.c.version).where(cases.c.case_id.in_(chunk))
                for case_id, version in conn.execute(query):
                    if version != new_versions[case_id]:
                        raise ConcurrencyError(case_id, expected_versions[case_id], version)
            raise ConcurrencyError(ids[0], expected_versions[ids[0]], None, "case rows changed meanwhile")
        return len(event_rows)

    # ------------------------------------------------------------------
    # stuck cases

    def mark_stuck(self, case_id: str, business_date: date, error: str) -> None:
        with write_transaction(self.engine) as conn:
            if not self._set_stuck(conn, [(case_id, business_date, error)]):
                raise CaseNotFound(f"case {case_id}: no such case to mark stuck")

    def clear_stuck(self, case_id: str) -> None:
        with write_transaction(self.engine) as conn:
            if not self._set_stuck(conn, [(case_id, None, None)]):
                raise CaseNotFound(f"case {case_id}: no such case")

    def _set_stuck(self, conn: Connection, marks: Sequence[tuple[str, date | None, str | None]]) -> int:
        rows = [
            {"b_case_id": case_id, "stuck": error is not None, "stuck_on": on, "stuck_error": error}
            for case_id, on, error in marks
        ]
        return conn.execute(_UPDATE_STUCK, rows).rowcount

    def stuck_cases(self) -> list[StuckCase]:
        query = (
            select(cases.c.case_id, cases.c.contract_no, cases.c.stage, cases.c.stuck_on, cases.c.stuck_error)
            .where(cases.c.stuck.is_(True))
            .order_by(cases.c.stuck_on, cases.c.case_id)
        )
        with self.engine.connect() as conn:
            return [StuckCase(*row) for row in conn.execute(query)]

    # ------------------------------------------------------------------
    # one case

    def resolve_case_id(self, case_id_or_contract_no: str) -> str:
        """The case id for a case id or a contract number (a case id wins if both match)."""
        ref = case_id_or_contract_no.strip()
        query = select(cases.c.case_id).where((cases.c.case_id == ref) | (cases.c.contract_no == ref))
        with self.engine.connect() as conn:
            found = list(conn.execute(query).scalars())
        if not found:
            raise CaseNotFound(f"no case with id or contract number {case_id_or_contract_no!r}")
        return ref if ref in found else found[0]

    def case_row(self, case_id_or_contract_no: str) -> CaseRow:
        case_id = self.resolve_case_id(case_id_or_contract_no)
        with self.engine.connect() as conn:
            row = conn.execute(select(cases).where(cases.c.case_id == case_id)).mappings().one()
        return CaseRow(projection_from_row(row), row["last_hash"], row["stuck"], row["stuck_error"], row["stuck_on"])

    def load_one(self, case_id_or_contract_no: str) -> CollectionCase:
        case_id = self.resolve_case_id(case_id_or_contract_no)
        return self.load([case_id])[case_id]

    def events(self, case_id: str, as_of: date | None = None) -> list[Event]:
        """The case's events in order, upcast to the current schema; with ``as_of``, the history up
        to that business date (the events before the first one dated later)."""
        with self.engine.connect() as conn:
            return self._events(conn, case_id, as_of)

    def _events(self, conn: Connection, case_id: str, as_of: date | None = None) -> list[Event]:
        result: list[Event] = []
        rows = conn.execute(select(events).where(events.c.case_id == case_id).order_by(events.c.seq)).mappings()
        for row in rows:
            if as_of is not None and row["business_date"] > as_of:
                break
            result.append(event_from_row(row))
        return result

    def payment_exists(self, payment_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(payments.c.payment_id).where(payments.c.payment_id == payment_id)).first() is not None

    def rebuild_projections(self, case_ids: Iterable[str]) -> int:
        """Rewrite the projection and snapshot of each case from a replay of its events.

        For a snapshot format this code no longer reads, or history imported
        from elsewhere. The events are untouched; returns the cases rewritten.
        """
        count = 0
        with write_transaction(self.engine) as conn:
            for case_id in case_ids:
                case_events = self._events(conn, case_id)
                if not case_events:
                    raise CaseNotFound(f"case {case_id}: no events to rebuild it from")
                case = CollectionCase.replay(case_events, case_id)
                last_hash = conn.execute(
                    select(events.c.hash).where(events.c.case_id == case_id, events.c.seq == case.version)
                ).scalar_one()
                values = {k: v for k, v in _case_values(case, last_hash).items() if k not in _IMMUTABLE}
                conn.execute(update(cases).where(cases.c.case_id == case_id).values(**values))
                count += 1
        return count

    # ------------------------------------------------------------------
    # business days

    def record_business_day(
        self,
        business_date: date,
        status: str,
        *,
        cases_advanced: int | None = None,
        stuck: int | None = None,
    ) -> None:
        """Record that the close of ``business_date`` is running, closed or failed."""
        if status not in BUSINESS_DAY_STATUSES:
            raise StoreError(f"business day status {status!r} is not one of running, closed, failed")
        now = _now()
        values: dict[str, Any] = {"status": status}
        if status == "running":
            values.update(started_at=now, finished_at=None)
        else:
            values["finished_at"] = now
        if cases_advanced is not None:
            values["cases_advanced"] = cases_advanced
        if stuck is not None:
            values["stuck"] = stuck
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(business_days).where(business_days.c.business_date == business_date).values(**values)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(business_days).values(
                        business_date=business_date,
                        started_at=now,
                        cases_advanced=cases_advanced or 0,
                        stuck=stuck or 0,
                        **{k: v for k, v in values.items() if k not in ("started_at", "cases_advanced", "stuck")},
                    )
                )

    def begin_business_day(self, business_date: date) -> None:
        self.record_business_day(business_date, "running")

    def finish_business_day(self, business_date: date, *, advanced: int, stuck: int) -> None:
        """Closed when no case got stuck; failed otherwise (its stuck cases wait for a fix)."""
        status = "failed" if stuck else "closed"
        self.record_business_day(business_date, status, cases_advanced=advanced, stuck=stuck)

    def business_day(self, business_date: date) -> BusinessDayRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(business_days).where(business_days.c.business_date == business_date)).first()
        return None if row is None else BusinessDayRecord(*row)

    def last_closed_business_date(self) -> date | None:
        query = select(func.max(business_days.c.business_date)).where(business_days.c.status == "closed")
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    # ------------------------------------------------------------------
    # reference data

    def lpr_table(self) -> LprTable:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(lpr_fixings.c.effective_from, lpr_fixings.c.rate_percent).order_by(lpr_fixings.c.effective_from)
            )
            return LprTable.from_rows(rows.tuples())

    def save_policy(self, policy: CollectionPolicy) -> int:
        """The version number of ``policy``: the stored one if an equal policy was saved before."""
        fingerprint = policy.fingerprint()
        with write_transaction(self.engine) as conn:
            version = conn.execute(select(policies.c.version).where(policies.c.fingerprint == fingerprint)).scalar()
            if version is not None:
                return version
            version = (conn.execute(select(func.max(policies.c.version))).scalar() or 0) + 1
            conn.execute(
                insert(policies).values(version=version, fingerprint=fingerprint, body=policy.as_dict(), created_at=_now())
            )
            return version

    def stored_policy(self, version: int | None = None) -> CollectionPolicy:
        """A saved policy by version (default: the newest)."""
        query = select(policies.c.body)
        query = query.where(policies.c.version == version) if version is not None else query.order_by(policies.c.version.desc())
        with self.engine.connect() as conn:
            body = conn.execute(query.limit(1)).scalar()
        if body is None:
            raise StoreError(f"no stored policy{' version ' + str(version) if version is not None else ''}")
        return CollectionPolicy.from_mapping(body)

    # ------------------------------------------------------------------
    # reports and checks

    def portfolio_summary(self) -> PortfolioSummary:
        """Case counts and balances by stage."""
        sums = [
            func.sum(cases.c.principal_outstanding_fen),
            func.sum(cases.c.total_due_fen),
            func.sum(cases.c.unenforceable_fen),
            func.sum(cases.c.total_paid_fen),
        ]
        query = select(
            cases.c.stage, func.count(), func.sum(sql_case((cases.c.stuck.is_(True), 1), else_=0)), *sums
        ).group_by(cases.c.stage)
        with self.engine.connect() as conn:
            rows = {row[0]: row for row in conn.execute(query)}
        order = [stage.value for stage in Stage] + sorted(set(rows) - {stage.value for stage in Stage})
        stages = tuple(
            StageTotals(stage, int(r[1]), int(r[2]), *(from_fen(int(v or 0)) for v in r[3:]))
            for stage in order
            if (r := rows.get(stage)) is not None
        )
        total = StageTotals(
            "all",
            sum(s.cases for s in stages),
            sum(s.stuck for s in stages),
            sum((s.principal_outstanding for s in stages), ZERO),
            sum((s.total_due for s in stages), ZERO),
            sum((s.unenforceable for s in stages), ZERO),
            sum((s.total_paid for s in stages), ZERO),
        )
        return PortfolioSummary(stages, total)

    def example_case_ids(self) -> dict[str, str]:
        """One case per stage (the one with the longest history), for people to try `case replay` on."""
        examples: dict[str, str] = {}
        with self.engine.connect() as conn:
            for stage in Stage:
                row = conn.execute(
                    select(cases.c.case_id)
                    .where(cases.c.stage == stage.value)
                    .order_by(cases.c.version.desc(), cases.c.case_id)
                    .limit(1)
                ).first()
                if row is not None:
                    examples[stage.value] = row[0]
        return examples

    def digest(self) -> str:
        """sha256 over every event hash in (case_id, seq) order, then every case row in case_id order.

        Equal digests mean equal histories and projections; a daily close run
        twice must leave it unchanged.
        """
        digest = hashlib.sha256()
        case_order = _binary_order(cases.c.case_id, self.dialect)
        with self.engine.connect() as conn:
            event_hashes = conn.execution_options(yield_per=10_000).execute(
                select(events.c.hash).order_by(_binary_order(events.c.case_id, self.dialect), events.c.seq)
            )
            for (event_hash,) in event_hashes:
                digest.update(event_hash.encode())
            rows = conn.execution_options(yield_per=2_000).execute(select(cases).order_by(case_order)).mappings()
            for row in rows:
                digest.update(canonical_json({k: _plain(v) for k, v in row.items()}).encode())
        return digest.hexdigest()

    # ------------------------------------------------------------------

    def _explain_integrity_error(
        self,
        exc: IntegrityError,
        work: Sequence[tuple[CollectionCase, list[Event]]],
        expected_versions: Mapping[str, int] | None = None,
    ) -> StoreError:
        """Turn a refused INSERT into an error naming the case or payment (after the rollback)."""
        message = str(exc.orig)
        ids = [case.case_id for case, _ in work]
        if "payment" in message:
            wanted: dict[str, str] = {}
            for case, new_events in work:
                for event in new_events:
                    if isinstance(event, PaymentReceived):
                        if event.payment_id in wanted:
                            return DuplicatePayment(
                                f"payment {event.payment_id}: given twice (cases {wanted[event.payment_id]} "
                                f"and {case.case_id}); a payment id is recorded once"
                            )
                        wanted[event.payment_id] = case.case_id
            with self.engine.connect() as conn:
                for chunk in _chunks(list(wanted)):
                    query = select(payments.c.payment_id, payments.c.case_id).where(payments.c.payment_id.in_(chunk))
                    taken = conn.execute(query).first()
                    if taken is not None:
                        return DuplicatePayment(
                            f"payment {taken[0]}: already recorded on case {taken[1]}; a payment id is recorded once"
                        )
        elif "events" in message and expected_versions is not None:
            with self.engine.connect() as conn:
                for chunk in _chunks(ids):
                    query = (
                        select(events.c.case_id, func.max(events.c.seq))
                        .where(events.c.case_id.in_(chunk))
                        .group_by(events.c.case_id)
                    )
                    for case_id, last_seq in conn.execute(query):
                        expected = expected_versions[case_id]
                        if last_seq != expected:
                            return ConcurrencyError(
                                case_id, expected, last_seq, f"event seq {expected + 1} is already stored"
                            )
        elif "cases" in message or "loans" in message:
            with self.engine.connect() as conn:
                for chunk in _chunks(ids):
                    taken = conn.execute(select(cases.c.case_id).where(cases.c.case_id.in_(chunk))).scalar()
                    if taken is not None:
                        return StoreError(f"case {taken}: a case with this id is already booked")
        return StoreError(f"the database refused the write: {message}")


_NO_SUCH_CASE = "no such case"

# A case's opening event never changes and decoding its schedule is the dearest part of a load:
# decode each opening text once, keeping the most recently used ones, so a daily close that
# loads the same cases day after day does not decode them again, and memory stays bounded.
OPENED_CACHE_SIZE = 250_000
_decode_opened = functools.lru_cache(maxsize=OPENED_CACHE_SIZE)(decode_opening_event)

_IMMUTABLE = ("case_id", "contract_no")
_UPDATED = tuple(name for name in (*PROJECTION_COLUMNS, "last_hash", "snapshot") if name not in _IMMUTABLE)
_UPDATE_CASE = (
    update(cases)
    .where(cases.c.case_id == bindparam("b_case_id"), cases.c.version == bindparam("b_expected"))
    .values({name: bindparam(name) for name in _UPDATED})
)
_UPDATE_STUCK = (
    update(cases)
    .where(cases.c.case_id == bindparam("b_case_id"))
    .values(stuck=bindparam("stuck"), stuck_on=bindparam("stuck_on"), stuck_error=bindparam("stuck_error"))
)


def _case_values(case: CollectionCase, last_hash: str) -> dict[str, Any]:
    return {
        **projection_values(case.projection()),
        "last_hash": last_hash,
        "snapshot": canonical_json(case.snapshot()),
    }


def _loan_values(terms: LoanTerms, case_id: str, hash_: str, now: datetime) -> dict[str, Any]:
    return {
        "contract_no": terms.contract_no,
        "case_id": case_id,
        "borrower_id": terms.borrower_id,
        "principal_fen": to_fen(terms.principal),
        "annual_rate": str(terms.annual_rate),
        "term_months": terms.term_months,
        "repayment_method": terms.repayment_method.value,
        "disbursed_on": terms.disbursed_on,
        "first_due_on": terms.first_due_on,
        "day_count": terms.day_count.value,
        "penalty_uplift": str(terms.penalty_uplift),
        "compound_interest": terms.compound_interest,
        "late_fee_fen": to_fen(terms.late_fee),
        "late_fee_rate": str(terms.late_fee_rate),
        "cap_regime": terms.cap_regime.value,
        "contract_date": terms.contract_date,
        "terms_hash": hash_,
        "booked_at": now,
    }


def _event_rows(
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


def _check_sequence(case: CollectionCase, new_events: Sequence[Event], *, expected: int) -> None:
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


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[list[T]]:
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _binary_order(column: ColumnElement, dialect: str) -> ColumnElement:
    """Order by code point on both databases (PostgreSQL would use the locale's collation)."""
    return column.collate("C") if dialect == "postgresql" else column


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _now() -> datetime:
    return datetime.now(timezone.utc)
