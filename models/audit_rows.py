"""verify, beside the events: the ``borrowers`` rows and the ``business_days`` rows.

``verify_borrowers`` checks each case's borrower row against its
``CaseOpened`` and ``BorrowerDetailsAmended`` events (and, with the key, its
ciphertexts against their masks and digest); ``verify_business_days`` checks
the business-day rows against the cases the events show reviewed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, select

from models.borrowers import details_hash, stored_details
from models.crypto import CryptoKeyError, Keyring
from models.findings import Finding, VerifyReport, checked
from models.tables import borrowers, business_days, cases, events
from states import borrower as personal
from states.events import SYSTEM, BorrowerDetailsAmended, CaseOpened, CaseReviewed, UnreadablePayload, payload_object
from states.loanfile import PERSONAL


@dataclass(frozen=True)
class RowFinding(Finding):
    """Something wrong with a row that is not one case's (a business day): ``case_id`` names the row."""

    def __str__(self) -> str:
        return f"{self.case_id}: {self.problem}"


def verify_borrowers(conn: Connection, chunk: Sequence[str], report: VerifyReport, keyring: Keyring | None = None) -> None:
    """Each case's ``borrowers`` row against its ``CaseOpened`` and ``BorrowerDetailsAmended`` events
    (``check_borrower``)."""
    query = (
        select(cases.c.case_id, borrowers)
        .join_from(cases, borrowers, cases.c.contract_no == borrowers.c.contract_no)
        .where(cases.c.case_id.in_(chunk))
    )
    keys = ["case_id", *borrowers.c.keys()]
    rows = {values[0]: dict(zip(keys, values)) for values in conn.execute(query)}
    if not rows:
        return
    recorded: dict[str, list[Mapping[str, Any]]] = {}
    history = (
        select(events.c.case_id, events.c.seq, events.c.type, events.c.payload)
        .where(events.c.case_id.in_(list(rows)), events.c.type.in_([CaseOpened.type, BorrowerDetailsAmended.type]))
        .order_by(events.c.case_id, events.c.seq)
    )
    for event in conn.execute(history).mappings():
        recorded.setdefault(event["case_id"], []).append(event)
    for case_id in sorted(rows):
        report.findings.extend(checked(case_id, "borrowers row", check_borrower, case_id, rows[case_id], recorded.get(case_id, []), keyring))


def check_borrower(
    case_id: str, row: Mapping[str, Any], recorded: Sequence[Mapping[str, Any]], keyring: Keyring | None = None
) -> list[Finding]:
    """What the events say about the borrower, against the ``borrowers`` row:

    - the borrower id is the one the case was opened for (``CaseOpened``);
    - each contact detail an amendment changed shows (masked) what the newest amendment of it
      recorded, and ``amended_at`` is set exactly when there was an amendment;
    - with the keyring: every value decrypts under the key the row names, its masked column is
      its mask, and the national id's match hash and the details hash are those of the clear
      values under that key; a row under a retired key is named too.

    The opening records no digest of the contact details (``CaseOpened`` holds none), so an
    edit of a detail never amended is caught only with the keyring (docs/decisions.md, attacks).
    """
    findings: list[Finding] = []

    def found(seq: int | None, problem: str) -> None:
        findings.append(Finding(case_id, seq, f"borrowers row {row['contract_no']}: {problem}"))

    newest: dict[str, tuple[int, str | None]] = {}
    amended = False
    for event in recorded:
        try:
            payload = payload_object(event["payload"])
        except UnreadablePayload:
            continue  # verify's check of the case's events reports it
        if event["type"] == CaseOpened.type:
            if payload.get("borrower_id") != row["borrower_id"]:
                found(event["seq"], f"borrower_id {row['borrower_id']}, but the case was opened for {payload.get('borrower_id')}")
            if payload.get("contract_no") != row["contract_no"]:
                found(event["seq"], f"the case was opened for contract {payload.get('contract_no')}")
        else:
            amended = True
            for change in payload["changes"]:
                newest[change["field"]] = (event["seq"], change["after"])
    for name, (seq, after) in sorted(newest.items()):
        column = name if name == "timezone" else f"{name}_masked"
        if column in row and row[column] != after:
            found(seq, f"{column} is {row[column]}, but the newest amendment of {name} recorded {after}")
    if amended and row["amended_at"] is None:
        found(None, "amended_at is empty, but the case records an amendment of the borrower details")
    elif not amended and row["amended_at"] is not None:
        found(None, f"amended_at is {row['amended_at']}, but the case records no amendment of the borrower details")
    if keyring is not None:
        findings.extend(Finding(case_id, None, f"borrowers row {row['contract_no']}: {p}") for p in _ciphertext_problems(row, keyring))
    return findings


def _ciphertext_problems(row: Mapping[str, Any], keyring: Keyring) -> list[str]:
    key_id, contract_no = row["key_id"], row["contract_no"]
    under = keyring.for_key(key_id)
    if under is None:
        return [f"under key id {key_id}, which is neither the active key {keyring.key_id} nor a retired one"]
    problems = [] if key_id == keyring.key_id else [f"still under the retired key {key_id}, not the active key {keyring.key_id} (restored from before a rotation?)"]
    for name in PERSONAL:
        token = row[f"{name}_enc"]
        if token is not None and token.split(".")[1:2] != [key_id]:
            problems.append(f"{name} is encrypted under another key than the row's key_id {key_id}")
    try:
        details = stored_details(under, contract_no, row)
    except CryptoKeyError as exc:
        return [*problems, str(exc)]
    for name, value in details.personal().items():
        if row[f"{name}_masked"] != personal.mask(name, value):
            problems.append(f"{name}_masked is {row[f'{name}_masked']}, but the encrypted value masks to {personal.mask(name, value)}")
    if row["national_id_hash"] != under.match_hash(details.national_id):
        problems.append("national_id_hash is not the match hash of its national id: edited")
    if row["details_hash"] != details_hash(under, details):
        problems.append("details_hash is not the digest of its details: edited")
    return problems


def verify_business_days(conn: Connection, report: VerifyReport) -> None:
    """The ``business_days`` rows against the events (``check_business_days``)."""
    days = conn.execute(select(business_days).order_by(business_days.c.business_date)).mappings().all()
    if not days:
        return
    by_date = conn.execute(  # one pass over the events: the cases the system reviewed, per date
        select(events.c.business_date, func.count(func.distinct(events.c.case_id)))
        .where(events.c.type == CaseReviewed.type, events.c.actor == SYSTEM, events.c.business_date <= days[-1]["business_date"])
        .group_by(events.c.business_date)
    ).all()
    counts = iter(sorted(by_date))
    pending = next(counts, None)
    reviewed: dict[date, int] = {}
    for row in days:  # reviewed since the date before, up to this one: what this close could have advanced
        day, total = row["business_date"], 0
        while pending is not None and pending[0] <= day:
            total += pending[1]
            pending = next(counts, None)
        reviewed[day] = total
    report.findings.extend(check_business_days(days, reviewed))


def check_business_days(days: Sequence[Mapping[str, Any]], reviewed: Mapping[date, int]) -> list[Finding]:
    """What is wrong with the business-day rows (in date order), given how many cases the events
    show reviewed by the system after the row before and up to each date:

    - each row follows the date that was closed before it when it was first recorded
      (``previous_business_date``): a row missing in between was deleted, one found in between
      was closed out of order. A date skipped by an explicit ``advance --date`` is no gap: the
      close of the later date reviews each skipped date in order;
    - no date closed after an earlier one still running (dates close in order; a failed date
      stays failed when a later close advanced its stuck cases);
    - a closed date has no stuck case, and finished after it started;
    - no more cases advanced than the events show reviewed since the date before (each advance
      records a ``CaseReviewed`` dated on or before its date). An upper bound only: imports and
      commands review cases too, so fewer advanced than reviewed is no finding.
    """
    findings: list[Finding] = []

    def found(day: date, problem: str) -> None:
        findings.append(RowFinding(f"business_days {day.isoformat()}", None, problem))

    open_before: date | None = None
    for before, row in zip([None, *days[:-1]], days):
        day = row["business_date"]
        followed = row.get("previous_business_date")
        if followed is not None and (before is None or before["business_date"] < followed):
            found(day, f"was closed after {followed.isoformat()}, whose row is missing (deleted?)")
        elif followed is not None and before["business_date"] > followed:
            found(day, f"was closed after {followed.isoformat()}, but {before['business_date'].isoformat()} lies between: a date closed out of order")
        if row["status"] == "closed":
            if open_before is not None:
                found(day, f"closed, but the earlier date {open_before.isoformat()} is still running: dates close in order")
            if row["stuck"]:
                found(day, f"closed with {row['stuck']} stuck case(s): a close with stuck cases is failed")
            if row["finished_at"] is None or row["finished_at"] < row["started_at"]:
                found(day, f"closed, but finished at {row['finished_at']} (started {row['started_at']})")
        elif row["status"] == "running" and open_before is None:
            open_before = day
        if row["cases_advanced"] > reviewed.get(day, 0):
            found(day, f"says {row['cases_advanced']} case(s) advanced, but the events show {reviewed.get(day, 0)} reviewed by then since the date before")
    return findings
