"""Audit: prove the store matches its events, and show a case's history a person can follow.

``verify`` streams every event in (case_id, seq) order, a chunk of cases at
a time, so memory stays bounded however large the store. For each case it
checks that the seqs run 1..n, that every stored hash is the sha256 of the
previous hash and the event *as stored* (its columns, not an upcast form),
that the case row's ``last_hash`` and ``version`` point at the newest event,
that replaying the events through the domain gives exactly the stored
projection and snapshot, and that the case's credit-report rows are exactly
those its ``MonthEndReported`` events make. It reports every failing case,
seq and difference. Over the whole store, once all of that holds, it checks
the reports' totals and the roll rates' kept counts against the events
(``models.report_totals``, ``models.roll_rates``). ``incremental`` skips the
full check of a case whose events and rows are, byte for byte, those an
earlier incremental verify found clean (``models.checkpoints``).

``timeline`` is what ``collectflow case replay`` prints (the explaining is
``states.explain``'s): one row per event,
each charge explained (component, base, rate, days, amount, cap) and the
balances after the event, found by applying the events one by one.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from models.booking import record_hash, terms_hash
from models.borrowers import booked_terms
from models.crypto import Keyring
from models.audit_rows import RowFinding, verify_borrowers, verify_business_days
from models import checkpoints, roll_rates
from models.db import in_memory
from models.errors import StoreError
from models.findings import Finding, UnreadableEvent, VerifyReport, checked
from models.recorder import event_mac, recomputed_hash
from models.report_totals import StoredTotals
from models.sql import driver_rows, mark, rows_of
from models.store import CaseStore, event_from_row
from models.tables import (
    GENESIS_HASH,
    cases,
    PlacementRows,
    agency_commissions,
    credit_report_values,
    credit_reports,
    placements,
    events,
    loans,
    payments,
    projection_from_row,
    roll_rate_memos,
    stage_moves,
)
from states.case import CaseProjection, CaseView, CollectionCase
from states.events import (
    MonthEndReported, UnreadablePayload, canonical_json, parse_json, payload_object,
)
from states.payload_codecs import decode_schedule
from states.explain import ChargeLine, TimelineRow, describe, explain, timeline_of
from states.money import from_fen, to_fen
from states.errors import UserError
from states.loan import LoanTerms, record_value
from states.schedule import Installment
from states.policy import CollectionPolicy
from states.snapshot import SNAPSHOT_VERSION, decode_opening_event, record_of
from states.views import BALANCE_FIELDS
from states.worklist import facts_record

# Defined in the domain; importable from here as before.
__all__ = [
    "BALANCE_FIELDS",
    "ChargeLine",
    "Finding",
    "RowFinding",
    "TimelineRow",
    "VerifyReport",
    "case_view",
    "check_case",
    "describe",
    "explain",
    "rebuild_case",
    "timeline",
    "timeline_of",
    "verify",
]

VERIFY_CHUNK = 500  # cases whose events are read and checked together
_CHECKED_COLUMNS = [c for c in events.c if c.name != "recorded_at"]  # what verify checks (recorded_at is not hashed)
_EVENTS_OF_CASES = "SELECT {} FROM events WHERE case_id IN ({{}}) ORDER BY case_id, seq".format(
    ", ".join(c.name for c in _CHECKED_COLUMNS)
)
STREAM_ROWS = 5_000  # rows fetched per round trip from the server-side cursor


# --------------------------------------------------------------------------
# verify


def verify(
    engine: Engine,
    case_ids: Iterable[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
    chain_key: bytes | None = None,
    workers: int | None = None,
    keyring: Keyring | None = None,
    incremental: bool = False,
) -> VerifyReport:
    """Check the hash chains and projections of every case (or of ``case_ids``), each case's
    borrowers row against its events (``verify_borrowers``; with ``keyring``, also against its own
    ciphertext) and, for the whole store, the business-day rows (``verify_business_days``).

    ``incremental`` (needs ``chain_key``): every event and row is read again, but a case is checked
    in full (rehashed and replayed) only when a byte of it changed since an incremental verify last
    found it clean, and each case found clean now is checkpointed (``models.checkpoints``); the
    findings are a full verify's.

    ``on_progress(cases_done)`` is called after each chunk of cases (the
    total is ``len(case_ids)``, or ``store.portfolio_summary().total.cases``).

    Chunks are checked by ``workers`` processes side by side (default: one
    per core, once the store holds ``PARALLEL_MIN_CASES`` cases or more; 1:
    in this process), each on its own connection; the report is the same,
    finding for finding and in the same order, as one process gives.
    """
    whole = case_ids is None  # the reports' totals are checked against the whole store only
    report = VerifyReport(incremental=incremental, totals=StoredTotals() if whole else None)
    if incremental:
        _check_incremental(engine, chain_key)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")  # one consistent view
        with conn.begin():
            if case_ids is None:
                ids: Iterator[str] = conn.execute(  # streamed; the option on the statement, not the connection
                    select(cases.c.case_id).order_by(cases.c.case_id).execution_options(yield_per=STREAM_ROWS)
                ).scalars()
            else:
                case_ids = sorted(set(case_ids))
                ids = iter(case_ids)
            seen: list[list[str]] = []  # the chunks again, for the borrowers pass

            def chunks() -> Iterator[list[str]]:
                while chunk := list(itertools.islice(ids, VERIFY_CHUNK)):
                    seen.append(chunk)
                    yield chunk

            processes = _verify_processes(conn, workers, None if case_ids is None else len(case_ids))
            if processes > 1:
                _verify_in_processes(engine, conn, chunks(), report, chain_key, processes, on_progress, incremental)
            else:
                for chunk in chunks():
                    _verify_chunk(conn, chunk, report, chain_key, incremental)
                    _keep_checkpoints(engine, chain_key, report, report.checkpoints)
                    if on_progress is not None:
                        on_progress(report.cases_checked)
            for chunk in seen:
                verify_borrowers(conn, chunk, report, keyring)
            if report.totals is not None:
                _find_orphan_events(conn, report)
                verify_business_days(conn, report)
                if report.ok:  # totals over events that fail would only repeat their findings
                    report.findings.extend(_report_totals_findings(conn, report.totals))
    return report


PARALLEL_MIN_CASES = 4 * VERIFY_CHUNK  # below this, starting processes costs more than they save


def _check_incremental(engine: Engine, chain_key: bytes | None) -> None:
    if chain_key is None:
        raise UserError("verify --incremental needs the chain key (its checkpoints are signed with it); run verify without it")
    if in_memory(engine.url):
        raise UserError("verify --incremental keeps its checkpoints in the database: an in-memory database keeps none")


def _keep_checkpoints(engine: Engine, chain_key: bytes | None, report: VerifyReport, marks: list[tuple[str, int, str]]) -> None:
    """Write the checkpoints of a chunk's clean cases as soon as it is checked (memory stays bounded)."""
    if marks and chain_key is not None and report.checkpoint_problem is None:
        report.checkpoint_problem = checkpoints.record(engine, chain_key, marks)
    marks.clear()


def _verify_processes(conn: Connection, workers: int | None, cases_given: int | None) -> int:
    """How many processes check the chunks: ``workers`` if given, else one per core for a store big enough."""
    if in_memory(conn.engine.url):
        return 1  # an in-memory database is not shared with other processes
    if workers is not None:
        return max(1, workers)
    count = cases_given if cases_given is not None else conn.execute(select(func.count()).select_from(cases)).scalar_one()
    return (os.cpu_count() or 1) if count >= PARALLEL_MIN_CASES else 1


def _verify_in_processes(
    engine: Engine,
    conn: Connection,
    chunks: Iterator[list[str]],
    report: VerifyReport,
    chain_key: bytes | None,
    processes: int,
    on_progress: Callable[[int], None] | None,
    incremental: bool = False,
) -> None:
    """Check the chunks in a pool of processes, merging their reports in chunk order (with the
    reports' totals their events make, when ``report.totals`` sums them).

    On PostgreSQL every worker reads the snapshot of this transaction
    (``pg_export_snapshot``), so all of them see one consistent store. At
    most two chunks per process are in flight: memory stays bounded.
    """
    snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one() if conn.dialect.name == "postgresql" else None
    url = engine.url.render_as_string(hide_password=False)
    pending: collections.deque[Future[VerifyReport]] = collections.deque()

    def merge_oldest() -> None:
        part = pending.popleft().result()
        report.cases_checked += part.cases_checked
        report.events_checked += part.events_checked
        report.cases_replayed += part.cases_replayed
        report.findings.extend(part.findings)
        if report.totals is not None and part.totals is not None:
            report.totals.merge(part.totals)
        _keep_checkpoints(engine, chain_key, report, part.checkpoints)
        if on_progress is not None:
            on_progress(report.cases_checked)

    # spawned, not forked: a fork would copy this process's open connections and threads
    with_totals = report.totals is not None
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        for chunk in chunks:
            pending.append(pool.submit(_verify_chunk_in_worker, url, chunk, chain_key, snapshot, incremental, with_totals))
            if len(pending) >= 2 * processes:
                merge_oldest()
        while pending:
            merge_oldest()


_WORKER_ENGINES: dict[str, Engine] = {}  # one engine per database in each worker process


@contextlib.contextmanager
def _worker_transaction(url: str, snapshot: str | None) -> Iterator[Connection]:
    """A read transaction of a worker process (on PostgreSQL, in the exported ``snapshot``)."""
    from models.db import make_engine

    engine = _WORKER_ENGINES.get(url)
    if engine is None:
        engine = _WORKER_ENGINES[url] = make_engine(url)
    with engine.connect() as conn:
        if snapshot is not None:
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            if snapshot is not None:
                conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            yield conn


def _verify_chunk_in_worker(
    url: str, chunk: list[str], chain_key: bytes | None, snapshot: str | None, incremental: bool, with_totals: bool
) -> VerifyReport:
    part = VerifyReport(totals=StoredTotals() if with_totals else None)
    with _worker_transaction(url, snapshot) as conn:
        _verify_chunk(conn, chunk, part, chain_key, incremental)
    return part


def _verify_chunk(
    conn: Connection, chunk: Sequence[str], report: VerifyReport, chain_key: bytes | None = None, incremental: bool = False
) -> None:
    # the rows beside the events, read through the driver as the events are (the same dicts as mappings)
    rows = {row["case_id"]: row for row in rows_of(conn, cases, "case_id", chunk)}
    reports: dict[str, list[Mapping[str, Any]]] = {}
    loan_rows = {row["case_id"]: row for row in rows_of(conn, loans, "case_id", chunk)}
    for report_row in rows_of(conn, credit_reports, "case_id", chunk):
        reports.setdefault(report_row["case_id"], []).append(report_row)
    stream = driver_rows(
        conn, _EVENTS_OF_CASES.format(", ".join([mark(conn)] * len(chunk))), _CHECKED_COLUMNS, chunk, yield_per=STREAM_ROWS
    )
    agency_rows: dict[str, tuple[list, list]] = {}
    for table, n in ((placements, 0), (agency_commissions, 1)):
        for agency_row in rows_of(conn, table, "case_id", chunk):
            agency_rows.setdefault(agency_row["case_id"], ([], []))[n].append(agency_row)
    paid: dict[str, dict[str, tuple[int, int]]] = {}
    received: dict[str, list[tuple[int, date, int]]] = {}  # the reports' totals read when payments came in
    for payment in rows_of(conn, payments, "case_id", chunk):
        paid.setdefault(payment["case_id"], {})[payment["payment_id"]] = (payment["seq"], payment["amount_fen"])
        received.setdefault(payment["case_id"], []).append((payment["seq"], payment["received_on"], payment["amount_fen"]))
    totals = report.totals
    marks = checkpoints.read(conn, chunk) if incremental and chain_key is not None else None  # ``verify`` refuses no key
    seen: set[str] = set()
    for case_id, case_events in itertools.groupby(stream, key=lambda r: r["case_id"]):
        history = list(case_events)
        seen.add(case_id)
        report.events_checked += len(history)
        row, payment_rows = rows.get(case_id), paid.pop(case_id, {})
        if totals is not None and totals.problem is None:
            try:
                totals.add_case(history, received.get(case_id, ()))
            except (ValueError, LookupError, TypeError, ArithmeticError, AttributeError) as exc:  # the case's own check names the event
                totals.problem = f"case {case_id}: {type(exc).__name__}: {exc}"
        digest = ""
        if marks is not None:
            digest = checkpoints.case_digest(_compared_rows(
                history, row, loan_rows.get(case_id), reports.get(case_id, []), agency_rows.get(case_id, ([], [])), payment_rows
            ))
            if checkpoints.holds(chain_key, marks.get(case_id), case_id, history[-1]["seq"], digest):
                continue  # checked clean before, and not a byte of its events or rows has changed since
        report.cases_replayed += 1
        found = _case_findings(
            case_id, row, history, chain_key, reports.get(case_id, []), loan_rows.get(case_id), payment_rows, agency_rows.get(case_id, ([], []))
        )
        report.findings.extend(found)
        if marks is not None and not found:
            report.checkpoints.append((case_id, history[-1]["seq"], digest))
    if totals is not None:
        totals.compare_moves(conn, chunk)
    for case_id, rows_left in paid.items():  # payment rows of a case with no events at all
        report.findings.extend(check_payments(case_id, [], rows_left))
    for case_id in chunk:
        report.cases_checked += 1
        if case_id not in seen:
            if case_id in rows:
                report.findings.append(Finding(case_id, None, "the case has no events"))
            else:
                report.findings.append(Finding(case_id, None, "no such case"))


def _case_findings(
    case_id: str,
    row: Mapping[str, Any] | None,
    history: list[Mapping[str, Any]],
    chain_key: bytes | None,
    credit_rows: Sequence[Mapping[str, Any]],
    loan_row: Mapping[str, Any] | None,
    payment_rows: Mapping[str, tuple[int, int]],
    agency_rows: tuple[list, list],
) -> list[Finding]:
    """Everything wrong with one case: its chain and replay, its MACs, and the rows beside its events."""
    found = check_case(case_id, row, history, credit_rows)
    if chain_key is not None:
        found.extend(check_macs(case_id, history, chain_key))
    if any(isinstance(finding, UnreadableEvent) for finding in found):
        return found  # the checks below read the events: the unreadable one is the finding
    if loan_row is not None:
        found.extend(checked(case_id, "loans row", check_terms, case_id, history, loan_row))
    found.extend(checked(case_id, "payments rows", check_payments, case_id, history, payment_rows))
    found.extend(checked(case_id, "agency rows", check_placements, case_id, history, *agency_rows))
    return found


def _compared_rows(
    history: list[dict[str, Any]],
    row: Mapping[str, Any] | None,
    loan_row: Mapping[str, Any] | None,
    credit_rows: Sequence[Mapping[str, Any]],
    agency_rows: tuple[list, list],
    payment_rows: Mapping[str, tuple[int, int]],
) -> tuple:
    """Everything a case's full check reads, as plain values (``models.checkpoints``): its events
    (every column checked, MACs included) and the rows compared with them."""
    return (
        history,
        None if row is None else tuple(row[name] for name in checkpoints.COMPARED_COLUMNS),
        None if loan_row is None else tuple(loan_row.values()),
        [tuple(r.values()) for r in credit_rows],
        [[tuple(r.values()) for r in rows] for rows in agency_rows],
        sorted(payment_rows.items()),
    )


def _report_totals_findings(conn: Connection, totals: StoredTotals) -> list[Finding]:
    """The reports' totals tables against what the events make (``totals``, summed as the cases
    were checked) and the roll rates' kept counts; reported once everything else verifies (the
    events they are checked against hold)."""
    found: list[Finding] = []
    for table, key, problem in totals.differences(conn):
        if table != events.name:
            problem = f"{problem} (collectflow db rebuild-totals refills the totals from the events)"
        if table == stage_moves.name and key:
            case_id, move = key.split(" ", 1)
            found.append(Finding(case_id, None, f"stage_moves {move}: {problem}"))
        else:
            found.append(RowFinding(f"{table} {key}".rstrip(), None, problem))
    for key, problem in roll_rates.differences(conn):
        found.append(RowFinding(f"{roll_rate_memos.name} {key}", None, f"{problem} (collectflow db rebuild-totals drops it)"))
    return found


def _find_orphan_events(conn: Connection, report: VerifyReport) -> None:
    query = (
        select(events.c.case_id, func.count())
        .where(~select(cases.c.case_id).where(cases.c.case_id == events.c.case_id).exists())
        .group_by(events.c.case_id)
    )
    for case_id, count in conn.execute(query):
        report.findings.append(Finding(case_id, None, f"{count} events but no case row"))


def check_terms(case_id: str, history: Sequence[Mapping[str, Any]], loan_row: Mapping[str, Any]) -> list[Finding]:
    """The ``loans`` row still holds the terms the case was opened with (its ``CaseOpened``) and its own hash."""
    if not history or history[0]["type"] != "CaseOpened":
        return []
    opened = parse_json(history[0]["payload"])
    booked = booked_terms(loan_row)
    findings = []
    for name, value in booked.items():
        if name in opened and _plain_term(opened[name]) != _plain_term(value):
            findings.append(Finding(case_id, 1, f"loans row {name}: {_plain_term(value)}, but the case was opened with {opened[name]}"))
    plan = decode_schedule(opened["schedule"]) if opened.get("plan_imported") else None  # the case's own plan
    if record_hash({name: record_value(value) for name, value in booked.items()}, plan) == loan_row["terms_hash"]:
        return findings  # the row holds the terms its hash was made of: no need to rebuild them (and a schedule)
    try:  # which it is: terms no longer valid, or edited
        terms = LoanTerms.from_record(booked)
        if plan is not None:
            terms = terms.with_plan(tuple(Installment(i.number, i.due_on, i.principal, i.interest) for i in plan))
        rehashed = terms_hash(terms)
    except UserError as exc:
        return [*findings, Finding(case_id, 1, f"loans row does not hold valid terms: {exc}")]
    if rehashed != loan_row["terms_hash"]:
        findings.append(Finding(case_id, 1, "loans row terms do not match its terms hash: edited"))
    return findings


def _plain_term(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def check_macs(case_id: str, history: Sequence[Mapping[str, Any]], chain_key: bytes) -> list[Finding]:
    """The keyed chain: each MAC matches its event's hash under the chain key, and once a case has keyed
    events its newest event is keyed (what a forger who recomputed every sha256, but has not the key,
    cannot get right).

    Only the newest event of each write carries a MAC (``models.recorder.event_mac``); its hash chains
    every event before it, so an edit anywhere fails the first MAC at or after it. Events before a
    case's first MAC were written before MACs existed and are checked by their sha256 chain only.
    """
    last_good = 0  # the seq of the newest MAC that matched (0: none yet)
    keyed = False
    for event in history:
        if event["mac"] is None:
            continue
        keyed = True
        if event["mac"] != event_mac(chain_key, event["hash"]):
            edited = f"seq {last_good + 1}" if last_good + 1 == event["seq"] else f"seq {last_good + 1} to {event['seq']}"
            return [Finding(case_id, event["seq"], f"its MAC does not match its hash under the chain key: an event in {edited} was forged or edited")]
        last_good = event["seq"]
    if keyed and history[-1]["mac"] is None:
        return [Finding(case_id, last_good + 1, "no MAC after keyed events: written without the chain key (forged?)")]
    return []


def check_payments(
    case_id: str, history: Sequence[Mapping[str, Any]], rows: Mapping[str, tuple[int, int]]
) -> list[Finding]:
    """Every ``PaymentReceived`` has its ``payments`` row (same id, seq, amount) and every row its event:
    a deleted row would free a bank transaction id to be credited twice."""
    findings = []
    recorded = {}
    for event in history:
        if event["type"] == "PaymentReceived":
            payload = parse_json(event["payload"])
            recorded[payload["payment_id"]] = (event["seq"], to_fen(Decimal(payload["amount"])))
    for payment_id, (seq, amount) in sorted(recorded.items()):
        if payment_id not in rows:
            findings.append(Finding(case_id, seq, f"payment {payment_id}: its payments row is missing (deleted?)"))
        elif rows[payment_id] != (seq, amount):
            findings.append(Finding(case_id, seq, f"payment {payment_id}: its payments row says seq {rows[payment_id][0]}, {from_fen(rows[payment_id][1])}"))
    for payment_id in sorted(set(rows) - set(recorded)):
        findings.append(Finding(case_id, rows[payment_id][0], f"payment {payment_id}: a payments row with no PaymentReceived event"))
    return findings


def check_case(
    case_id: str,
    row: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]],
    credit_rows: Sequence[Mapping[str, Any]] | None = None,
) -> list[Finding]:
    """Everything wrong with one case: its stored events (in seq order) against its case row
    (and, when given, its credit-report rows)."""
    findings: list[Finding] = []

    def found(seq: int | None, problem: str) -> None:
        findings.append(Finding(case_id, seq, problem))

    # each hash chains from the stored hash of the row before it in seq order (GENESIS_HASH for the first)
    expected_seq, prev_hash = 1, GENESIS_HASH
    payloads = []  # each payload read once, for the hash and the replay
    unreadable = False
    for event in history:
        seq = event["seq"]
        if seq != expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
            gap = f"seq {missing} missing" if seq > expected_seq else "out of order"
            found(seq, f"expected seq {expected_seq}, found {seq} ({gap})")
        try:
            payloads.append(payload_object(event["payload"]))
        except UnreadablePayload as exc:
            findings.append(UnreadableEvent(case_id, seq, f"{exc}: edited"))
            unreadable = True
        else:
            recomputed = recomputed_hash(prev_hash, event["hash"], event, payloads[-1])
            if recomputed != event["hash"] and seq != expected_seq:
                found(seq, f"hash {event['hash'][:12]}… does not link to the event before it ({prev_hash[:12]}…)")
            elif recomputed != event["hash"]:
                found(seq, f"hash does not match the stored event (stored {event['hash'][:12]}…, recomputed {recomputed[:12]}…): edited")
        expected_seq, prev_hash = seq + 1, event["hash"]

    if row is None:
        found(None, "events but no case row")
        return findings
    newest = history[-1]
    if row["last_hash"] != newest["hash"]:
        found(None, f"case row last_hash {row['last_hash'][:12]}… is not the hash of its newest event seq {newest['seq']}")
    if row["version"] != newest["seq"]:
        found(None, f"case row version {row['version']} but the newest event is seq {newest['seq']}")
    if unreadable:  # nothing to replay
        return findings

    try:
        replayed = CollectionCase.replay((event_from_row(e, p) for e, p in zip(history, payloads)), case_id)
    except Exception as exc:  # noqa: BLE001 - any failure to replay is a finding
        found(getattr(exc, "seq", None), f"replay fails: {type(exc).__name__}: {exc}")
        return findings
    for name, stored, computed in _projection_differences(projection_from_row(row), replayed.projection()):
        found(None, f"projection {name}: stored {stored}, replay gives {computed}")
    if row.get("call_facts") is not None and _stored_json(row["call_facts"]) != parse_json(canonical_json(facts_record(replayed))):
        # NULL is no finding: a case no list reads, or a row written before 0013
        found(None, "call-list facts differ from replay (the call and visit lists read them): rebuild the case")
    if credit_rows is not None:
        for seq, problem in _credit_report_differences(history, credit_rows):
            found(seq, problem)
    try:
        stored_snapshot = parse_json(row["snapshot"])
    except ValueError as exc:
        found(None, f"snapshot is not JSON: {exc}")
        return findings
    try:
        stored_snapshot = record_of(stored_snapshot, case_id)
    except Exception as exc:  # noqa: BLE001 - an unreadable snapshot is a finding
        found(None, f"snapshot cannot be read back: {exc}")
        return findings
    replayed_snapshot = parse_json(canonical_json(replayed.snapshot()))
    kept_starts = "period_starts" in stored_snapshot
    if stored_snapshot.get("v") != SNAPSHOT_VERSION:  # an older version: what it holds, read back as a load reads it, must be the replay
        try:
            stored_snapshot = parse_json(canonical_json(CollectionCase.from_snapshot(stored_snapshot, replayed.terms).snapshot()))
        except Exception as exc:  # noqa: BLE001 - an unreadable snapshot is a finding
            found(None, f"snapshot version {stored_snapshot.get('v')!r} cannot be read back: {exc}")
            return findings
    if stored_snapshot.get("opened") != replayed_snapshot.get("opened"):
        # an opening event stored under an older schema is kept as written: compare what it reads as
        stored_snapshot["opened"] = _opened_as_read(stored_snapshot.get("opened"))
        replayed_snapshot["opened"] = _opened_as_read(replayed_snapshot.get("opened"))
    if not kept_starts and "period_starts" in replayed_snapshot:
        # written before the period starts were kept: it reads as the latest start alone, which must be the replay's
        replayed_starts = {n: pd for n, pd in replayed_snapshot["period_starts"]}
        if all(replayed_starts.get(n) == pd for n, pd in stored_snapshot.get("period_starts", [])):
            stored_snapshot["period_starts"] = replayed_snapshot["period_starts"]
    differing = sorted(k for k in stored_snapshot.keys() | replayed_snapshot.keys() if stored_snapshot.get(k) != replayed_snapshot.get(k))
    if differing:
        found(None, f"snapshot differs from replay in: {', '.join(differing)}")
    return findings


def _stored_json(text: str) -> Any:
    """A stored JSON column read back, or the text itself if it is not JSON (then simply a difference)."""
    try:
        return parse_json(text)
    except ValueError:
        return text


def _opened_as_read(text: Any) -> Any:
    """A snapshot's opening event as this code reads it (upcast), or the text itself if it cannot be read."""
    try:
        return decode_opening_event(text).canonical_json()
    except Exception:  # noqa: BLE001 - an unreadable one is then simply a difference
        return text


def check_placements(
    case_id: str, history: Sequence[Mapping[str, Any]], placement_rows: Sequence[Mapping[str, Any]],
    commission_rows: Sequence[Mapping[str, Any]],
) -> list[Finding]:
    """The case's ``placements`` and ``agency_commissions`` rows are exactly those its events make."""
    made = PlacementRows()
    made.add(event_from_row(e) for e in history if e["type"] in ("PlacedWithAgency", "RecalledFromAgency", "CommissionAccrued"))
    findings = []
    for what, want_rows, have_rows in (("placement", made.placements, placement_rows), ("commission", made.commissions, commission_rows)):
        want = {r["seq"]: r for r in want_rows}
        have = {r["seq"]: dict(r) for r in have_rows}
        for seq in sorted(want.keys() | have.keys()):
            if seq not in have:
                findings.append(Finding(case_id, seq, f"{what} row missing for its event (deleted?)"))
            elif seq not in want:
                findings.append(Finding(case_id, seq, f"a {what} row that no event made"))
            else:
                for column, value in want[seq].items():
                    if have[seq][column] != value:
                        findings.append(Finding(case_id, seq, f"{what} row {column}: stored {have[seq][column]}, events give {value}"))
    return findings


def _credit_report_differences(
    history: Sequence[Mapping[str, Any]], credit_rows: Sequence[Mapping[str, Any]]
) -> list[tuple[int | None, str]]:
    """How the stored credit-report rows differ from those the case's ``MonthEndReported`` events make."""
    made = {
        values["month"]: values
        for values in (credit_report_values(event_from_row(e)) for e in history if e["type"] == MonthEndReported.type)
    }
    stored = {r["month"]: r for r in credit_rows}
    problems: list[tuple[int | None, str]] = []
    for month in sorted(made.keys() | stored.keys()):
        want, have = made.get(month), stored.get(month)
        if have is None:
            problems.append((want["seq"], f"credit report {month}: no row for its MonthEndReported event"))
        elif want is None:
            problems.append((None, f"credit report {month}: a row that no MonthEndReported event made"))
        else:
            for column, value in want.items():
                if have[column] != value:
                    problems.append((want["seq"], f"credit report {month} {column}: stored {have[column]}, event gives {value}"))
    return problems


def _projection_differences(stored: CaseProjection, replayed: CaseProjection) -> list[tuple[str, Any, Any]]:
    return [
        (f.name, getattr(stored, f.name), getattr(replayed, f.name))
        for f in dataclasses.fields(CaseProjection)
        if getattr(stored, f.name) != getattr(replayed, f.name)
    ]


def rebuild_case(store: CaseStore, case_id: str, *, on: date, actor: str, reason: str, seals: Path | None = None) -> None:
    """Rewrite a case's projection and snapshot from its events (the fix for a corrupt case row),
    then record a ``CaseRebuilt`` event naming who and why.

    Refused when the events themselves fail: their hash chain, or (given the seals directory)
    any seal that covered the case: a rebuild must never launder a rewritten history.
    """
    from models.seals import case_against_seals

    case_id = store.resolve_case_id(case_id)
    with store.engine.connect() as conn:
        history = conn.execute(select(events).where(events.c.case_id == case_id).order_by(events.c.seq)).mappings().all()
    broken = [f for f in check_case(case_id, None, history) if f.seq is not None]
    if seals is not None:
        broken += case_against_seals(store.engine, seals, case_id)
    if broken:
        raise StoreError(f"case {case_id}: not rebuilt, its events fail: {broken[0].problem} (seq {broken[0].seq}); run collectflow verify")
    store.rebuild_projections([case_id])
    case = store.load_one(case_id)
    version = case.version
    store.save([(case, case.record_rebuild(on, actor=actor, reason=reason))], expected_versions={case_id: version})


# --------------------------------------------------------------------------
# timeline


def timeline(
    store: CaseStore, case_id: str, as_of: date | None = None, policy: CollectionPolicy | None = None
) -> list[TimelineRow]:
    """The case's history to ``as_of`` (default: all of it), one explained row per event.

    With ``as_of``, a last row values the case on that date when charges have
    accrued since the last event (the figures ``case_view`` gives, with the same policy).
    """
    case_id = store.resolve_case_id(case_id)
    return timeline_of(store.events(case_id, as_of), as_of, policy)


def case_view(store: CaseStore, case_ref: str, as_of: date | None = None, policy=None) -> CaseView:
    """A case valued as of a date: replayed up to that date if it lies in the past,
    then accrued (and, given the policy, reviewed) through it without storing anything."""
    case_id = store.resolve_case_id(case_ref)
    case = store.load_one(case_id)
    if as_of is None:
        as_of = case.accrued_through
    elif as_of < case.accrued_through:
        case = CollectionCase.replay(store.events(case_id, as_of), case_id)
    return case.view(max(as_of, case.accrued_through), policy)
