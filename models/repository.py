"""Case rows: load cases from their snapshots, save their new events and projections, quarantine.

A case's new events and its new projection are written in one transaction,
guarded by the version the change was computed from: a second writer gets a
``ConcurrencyError`` (and the ``(case_id, seq)`` primary key refuses a
duplicate step even if the guard were bypassed). Batches load and save
thousands of cases in a few statements: snapshots in one query per chunk of
ids, events and projections with executemany; no per-case ORM round trip.
The store persists what the domain decided; it makes no business decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from models.db import write_transaction
from models.errors import CaseNotFound, ConcurrencyError, DuplicatePayment, StoreError
from models.report_totals import rebuild_stage_moves
from models.recorder import check_sequence, insert_placement_rows, select_accruals, select_events
from models.recorder import event_rows as build_event_rows
from models.sql import chunks, copy_rows, executemany_rows
from models.sql import now as utc_now
from models.tables import (
    PROJECTION_COLUMNS,
    PlacementRows,
    agency_commissions,
    cases,
    credit_report_values,
    credit_reports,
    events,
    payments,
    placements,
    projection_from_row,
    projection_values,
)
from states.case import CaseProjection, CollectionCase
from states.events import CaseOpened, Event, EventError, MonthEndReported, PaymentReceived, canonical_json, event_from_record, parse_json
from states.snapshot import packed
from states.worklist import CallFacts, facts_from_record, facts_of, facts_record


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



_NO_SUCH_CASE = "no such case"

# A snapshot (v10 on) holds no terms: a case is loaded with its opening event, the loan's terms and
# schedule as booked (immutable, hash-chained), read in the same query by primary key. Nothing
# is cached across loads, so memory does not grow with the cases loaded (issue 13).
_LOAD_CASES = select(
    cases.c.case_id, cases.c.snapshot,
    events.c.type, events.c.business_date, events.c.actor, events.c.schema_version, events.c.payload,
).select_from(cases.outerjoin(events, (events.c.case_id == cases.c.case_id) & (events.c.seq == 1)))

_IMMUTABLE = ("case_id", "contract_no")
_UPDATED = tuple(name for name in (*PROJECTION_COLUMNS, "last_hash", "snapshot", "call_facts") if name not in _IMMUTABLE)
_UPDATE_CASE = (
    update(cases)
    .where(cases.c.case_id == bindparam("b_case_id"), cases.c.version == bindparam("b_expected"))
    .values({name: bindparam(name) for name in _UPDATED})
)
_UPDATE_CASE_BINDS = (*((name, cases.c[name]) for name in _UPDATED), ("b_case_id", cases.c.case_id), ("b_expected", cases.c.version))
_UPDATE_CASE_SQLITE = "UPDATE cases SET {} WHERE case_id = ? AND version = ?".format(", ".join(f'"{name}" = ?' for name in _UPDATED))
# PostgreSQL: a batch's case rows are copied into a temporary table, then one UPDATE ... FROM it
# (one statement for the batch, not one per case: the server's cost of the close, issue 13)
_CASE_UPDATES = "case_updates"
_CASE_UPDATE_COLUMNS = ("case_id", *_UPDATED)
_CREATE_CASE_UPDATES = "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {}, version AS b_expected FROM cases WITH NO DATA".format(
    _CASE_UPDATES, ", ".join(f'"{name}"' for name in _CASE_UPDATE_COLUMNS)
)
_COPY_CASE_UPDATES = "COPY {} ({}, b_expected) FROM STDIN".format(_CASE_UPDATES, ", ".join(f'"{name}"' for name in _CASE_UPDATE_COLUMNS))
_CASE_UPDATE_BINDS = (("b_case_id", cases.c.case_id), *((name, cases.c[name]) for name in _UPDATED), ("b_expected", cases.c.version))
_UPDATE_CASES_FROM = "UPDATE cases SET {} FROM {} AS u WHERE cases.case_id = u.case_id AND cases.version = u.b_expected".format(
    ", ".join(f'"{name}" = u."{name}"' for name in _UPDATED), _CASE_UPDATES
)
_UPDATE_STUCK = (
    update(cases)
    .where(cases.c.case_id == bindparam("b_case_id"))
    .values(stuck=bindparam("stuck"), stuck_on=bindparam("stuck_on"), stuck_error=bindparam("stuck_error"))
)


def case_values(case: CollectionCase, last_hash: str) -> dict[str, Any]:
    rows = case.installment_rows()
    facts = facts_record(case, rows)
    return {
        **projection_values(case.projection(rows)),
        "last_hash": last_hash,
        "snapshot": canonical_json(packed(case.snapshot())),
        "call_facts": None if facts is None else canonical_json(facts),
    }



def _update_cases_postgresql(conn: Connection, case_rows: list[dict[str, Any]]) -> int:
    """The batch's case rows by COPY into a temporary table (dropped at commit: one save a
    transaction, ``write_transaction``) and one ``UPDATE ... FROM`` it, each row only where the case
    is still at the version it was loaded at; how many were updated. Another driver than psycopg 3:
    one UPDATE a row (``executemany``)."""
    conn.exec_driver_sql(_CREATE_CASE_UPDATES)
    if not copy_rows(conn, _COPY_CASE_UPDATES, _CASE_UPDATE_BINDS, case_rows):
        return conn.execute(_UPDATE_CASE, case_rows).rowcount
    updated = conn.exec_driver_sql(_UPDATE_CASES_FROM).rowcount
    return updated


def _why_unreadable(case_id: str, exc: Exception) -> str:
    """Why a case could not be read, said once: our own errors name the case already."""
    if isinstance(exc, (EventError, StoreError)):
        return str(exc).removeprefix(f"case {case_id}: ").removeprefix(f"case {case_id} ")
    return f"{type(exc).__name__}: {exc}"


class CaseRows:
    """Loading, saving and quarantining cases (a part of ``CaseStore``)."""

    engine: Engine
    chain_key: bytes | None  # events written with it carry a MAC (``models.recorder.event_mac``)

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
            for chunk in chunks(ids):
                rows = conn.execute(_LOAD_CASES.where(cases.c.case_id.in_(chunk)))
                for case_id, snapshot, kind, business_date, actor, schema_version, payload in rows:
                    try:
                        opened = event_from_record(
                            case_id=case_id, seq=1, type=kind, business_date=business_date, actor=actor,
                            schema_version=schema_version, payload=payload,
                        )
                        if not isinstance(opened, CaseOpened):
                            raise StoreError(f"case {case_id}: its first event is a {kind}, not CaseOpened")
                        loaded[case_id] = CollectionCase.from_snapshot(parse_json(snapshot), opened)
                    except Exception:  # noqa: BLE001 - a snapshot is a cache; the events decide
                        try:
                            loaded[case_id] = CollectionCase.replay(select_events(conn, case_id), case_id)
                        except Exception as exc:  # noqa: BLE001 - reported per case
                            unreadable[case_id] = _why_unreadable(case_id, exc)
        for case_id in ids:
            if case_id not in loaded and case_id not in unreadable:
                unreadable[case_id] = _NO_SUCH_CASE
        return {case_id: loaded[case_id] for case_id in ids if case_id in loaded}, unreadable

    def call_facts(self, case_ids: Iterable[str]) -> dict[str, CallFacts]:
        """The call-list facts of these cases (those that exist), as their rows keep them, one query
        per chunk of ids; a row that keeps none (written before migration 0013) or none this code
        reads has its case loaded (``load``: a case that cannot be is refused) and its facts worked out."""
        ids = list(dict.fromkeys(case_ids))
        found: dict[str, CallFacts] = {}
        to_load: list[str] = []
        query = select(cases.c.case_id, cases.c.contract_no, cases.c.call_facts)
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                for case_id, contract_no, text in conn.execute(query.where(cases.c.case_id.in_(chunk))):
                    try:
                        found[case_id] = facts_from_record(case_id, contract_no, parse_json(text))
                    except Exception:  # noqa: BLE001 - the facts are a cache of the case; the case decides
                        to_load.append(case_id)
        if to_load:
            found.update((case_id, facts_of(case)) for case_id, case in self.load(to_load).items())
        return {case_id: found[case_id] for case_id in ids if case_id in found}

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
        read_versions: Mapping[str, int] | None = None,
    ) -> int:
        """``save`` plus the batch's quarantine, in the same transaction.

        Cases in ``stuck`` (case id -> error) are marked stuck on
        ``business_date``; cases in ``cleared`` went through and lose any
        stuck flag. Cases in ``read_versions`` (case id -> version) were read
        to decide and are not written: one that changed meanwhile refuses the
        whole save (``ConcurrencyError``).
        """
        work = [(case, new_events) for case, new_events in changes if new_events]
        given = [case.case_id for case, _ in work]
        if len(set(given)) != len(given):
            twice = sorted({case_id for case_id in given if given.count(case_id) > 1})
            raise StoreError(f"cases {', '.join(twice)}: given twice in one save; pass each case once with all its events")
        for case, new_events in work:
            if case.case_id not in expected_versions:
                raise StoreError(f"case {case.case_id}: no expected version given; pass the version it was loaded at")
            check_sequence(case, new_events, expected=expected_versions[case.case_id])
        if stuck and business_date is None:
            raise StoreError("save_batch: marking cases stuck needs the business date they got stuck on")
        if not work and not stuck and not cleared:
            return 0
        try:
            with write_transaction(self.engine) as conn:
                written = self._append(conn, work, expected_versions, read_versions)
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
        read_versions: Mapping[str, int] | None = None,
    ) -> int:
        if not work:
            return 0
        ids = sorted(case.case_id for case, _ in work)
        read = {case_id: v for case_id, v in (read_versions or {}).items() if case_id not in expected_versions}
        expected = {**read, **{i: expected_versions[i] for i in ids}}
        stored: dict[str, tuple[int, str]] = {}
        for chunk in chunks(sorted(expected)):
            query = select(cases.c.case_id, cases.c.version, cases.c.last_hash).where(cases.c.case_id.in_(chunk))
            if conn.dialect.name == "postgresql":
                # lock the rows in one order, so two writers of overlapping batches cannot deadlock
                query = query.order_by(cases.c.case_id).with_for_update()
            stored.update((case_id, (version, last_hash)) for case_id, version, last_hash in conn.execute(query))
        conflicts = [i for i in sorted(expected) if stored.get(i, (None, ""))[0] != expected[i]]
        if conflicts:
            first = conflicts[0]
            others = f"{len(conflicts) - 1} more case(s) changed too: {', '.join(conflicts[1:6])}" if len(conflicts) > 1 else ""
            raise ConcurrencyError(first, expected[first], stored.get(first, (None, ""))[0], others)
        now = utc_now()
        new_rows = build_event_rows(work, {i: stored[i][1] for i in ids}, now, self.chain_key)
        new_rows.insert(conn)
        case_rows = []
        for case, _ in work:
            row = case_values(case, new_rows.last_hashes[case.case_id])
            for name in _IMMUTABLE:
                del row[name]  # a key left in would be SET as well
            case_rows.append({**row, "b_case_id": case.case_id, "b_expected": expected_versions[case.case_id]})
        if conn.dialect.name == "sqlite":
            updated = executemany_rows(conn, _UPDATE_CASE_SQLITE, _UPDATE_CASE_BINDS, case_rows)
        else:
            updated = _update_cases_postgresql(conn, case_rows)
        if updated != len(case_rows):
            # Unreachable while the rows are locked above (FOR UPDATE on PostgreSQL,
            # BEGIN IMMEDIATE on SQLite); the version guard stays as the last line.
            new_versions = {case.case_id: case.version for case, _ in work}
            for chunk in chunks(ids):
                query = select(cases.c.case_id, cases.c.version).where(cases.c.case_id.in_(chunk))
                for case_id, version in conn.execute(query):
                    if version != new_versions[case_id]:
                        raise ConcurrencyError(case_id, expected_versions[case_id], version)
            raise ConcurrencyError(ids[0], expected_versions[ids[0]], None, "case rows changed meanwhile")
        new_rows.insert_totals(conn)
        return len(new_rows.events)

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

    def resolve_case_id(self, case_id_or_contract_no: str) -> str:
        """The case id for a case id or a contract number; a reference that names two cases is refused."""
        found, refused = self.resolve_case_ids([case_id_or_contract_no])
        if refused:
            raise next(iter(refused.values()))
        return found[case_id_or_contract_no]

    def resolve_case_ids(self, refs: Iterable[str]) -> tuple[dict[str, str], dict[str, StoreError]]:
        """Each reference (a case id or a contract number) to its case id, one query per chunk; the
        references that name no case, or two (one's id and another's contract number), with why."""
        wanted = {ref: ref.strip() for ref in dict.fromkeys(refs)}
        named: dict[str, list[tuple[str, str]]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(wanted.values()))):
                query = select(cases.c.case_id, cases.c.contract_no).where(cases.c.case_id.in_(chunk) | cases.c.contract_no.in_(chunk))
                for case_id, contract_no in conn.execute(query):
                    for key in {case_id, contract_no}:
                        named.setdefault(key, []).append((case_id, contract_no))
        found: dict[str, str] = {}
        refused: dict[str, StoreError] = {}
        for ref, key in wanted.items():
            matches = list(dict.fromkeys(named.get(key, [])))
            if not matches:
                refused[ref] = CaseNotFound(f"no case with id or contract number {ref!r}")
            elif len(matches) > 1:
                (by_id,) = [case_id for case_id, _ in matches if case_id == key]
                (by_contract,) = [case_id for case_id, contract_no in matches if contract_no == key]
                refused[ref] = StoreError(
                    f"{key!r} is both the id of case {by_id} and the contract number of case {by_contract}; "
                    f"give the case id of the one you mean"
                )
            else:
                found[ref] = matches[0][0]
        return found, refused

    def case_row(self, case_id_or_contract_no: str) -> CaseRow:
        case_id = self.resolve_case_id(case_id_or_contract_no)
        with self.engine.connect() as conn:
            row = conn.execute(select(cases).where(cases.c.case_id == case_id)).mappings().one()
        return CaseRow(projection_from_row(row), row["last_hash"], row["stuck"], row["stuck_error"], row["stuck_on"])

    def load_one(self, case_id_or_contract_no: str) -> CollectionCase:
        case_id = self.resolve_case_id(case_id_or_contract_no)
        return self.load([case_id])[case_id]

    def has_events(self, case_id: str) -> bool:
        """Whether any event is stored under ``case_id`` (a case whose row is gone still has its events)."""
        with self.engine.connect() as conn:
            return conn.execute(select(events.c.seq).where(events.c.case_id == case_id).limit(1)).first() is not None

    def events(self, case_id: str, as_of: date | None = None) -> list[Event]:
        """The case's events in order, upcast to the current schema; with ``as_of``, the history up
        to that business date (the events before the first one dated later)."""
        with self.engine.connect() as conn:
            return select_events(conn, case_id, as_of)


    def accruals_after(self, case_id: str, after_seq: int, after: date) -> list[Event]:
        """The case's accruals and payments after seq ``after_seq`` dated after ``after`` (for a value-dated payment)."""
        with self.engine.connect() as conn:
            return select_accruals(conn, case_id, after_seq, after)

    def payment_exists(self, payment_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(payments.c.payment_id).where(payments.c.payment_id == payment_id)).first() is not None

    def rebuild_projections(self, case_ids: Iterable[str]) -> int:
        """Rewrite the projection, snapshot, credit-report, placement, commission and stage-move rows of each case from its events.

        For a snapshot format this code no longer reads, or history imported
        from elsewhere. The events are untouched; returns the cases rewritten.
        """
        count = 0
        with write_transaction(self.engine) as conn:
            for case_id in case_ids:
                case_events = select_events(conn, case_id)
                if not case_events:
                    raise CaseNotFound(f"case {case_id}: no events to rebuild it from")
                case = CollectionCase.replay(case_events, case_id)
                last_hash = conn.execute(
                    select(events.c.hash).where(events.c.case_id == case_id, events.c.seq == case.version)
                ).scalar_one()
                values = {k: v for k, v in case_values(case, last_hash).items() if k not in _IMMUTABLE}
                conn.execute(update(cases).where(cases.c.case_id == case_id).values(**values))
                conn.execute(delete(credit_reports).where(credit_reports.c.case_id == case_id))
                rows = [credit_report_values(e) for e in case_events if isinstance(e, MonthEndReported)]
                if rows:
                    conn.execute(insert(credit_reports), rows)
                conn.execute(delete(agency_commissions).where(agency_commissions.c.case_id == case_id))
                conn.execute(delete(placements).where(placements.c.case_id == case_id))
                agency_rows = PlacementRows()
                agency_rows.add(case_events)
                insert_placement_rows(conn, agency_rows, check_capacity=False)  # the rows it had
                rebuild_stage_moves(conn, case_id, case_events)
                count += 1
        return count

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
                for chunk in chunks(list(wanted)):
                    query = select(payments.c.payment_id, payments.c.case_id).where(payments.c.payment_id.in_(chunk))
                    taken = conn.execute(query).first()
                    if taken is not None:
                        return DuplicatePayment(
                            f"payment {taken[0]}: already recorded on case {taken[1]}; a payment id is recorded once"
                        )
        elif "events" in message and expected_versions is not None:
            with self.engine.connect() as conn:
                for chunk in chunks(ids):
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
                for chunk in chunks(ids):
                    taken = conn.execute(select(cases.c.case_id).where(cases.c.case_id.in_(chunk))).scalar()
                    if taken is not None:
                        return StoreError(f"case {taken}: a case with this id is already booked")
        return StoreError(f"the database refused the write: {message}")

