"""Booking loans: the loan rows, their new cases and opening events, and the borrowers' encrypted rows."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from models.db import write_transaction
from models.errors import StoreError, TermsConflict
from models.recorder import check_sequence
from models.recorder import event_rows as build_event_rows
from models.repository import case_values
from models.sql import chunks
from models.sql import now as utc_now
from models.tables import (
    GENESIS_HASH,
    borrowers,
    cases,
    loans,
)
from states.case import CollectionCase
from states.events import Event, canonical_json
from states.defaults import DEFAULT_TIMEZONE
from states.loan import LoanTerms
from states.money import to_fen


def terms_hash(terms: LoanTerms) -> str:
    """sha256 of the contract terms (a computed schedule is derived from them, so it is left out; a plan
    as imported is in)."""
    return record_hash(terms.record(), terms.schedule if terms.plan_imported else None)


def record_hash(record: Mapping[str, Any], plan: Sequence[Any] | None = None) -> str:
    """``terms_hash`` of terms given as ``LoanTerms.record()`` writes them and, for a plan as imported,
    its installments (``number``, ``due_on``, ``principal``, ``interest``)."""
    record = dict(record)
    # Loans booked before schedule_interest existed were all actual_days and hashed without it:
    # leaving that value out keeps their hashes (and verify) as they were.
    if record.get("schedule_interest") == "actual_days":
        del record["schedule_interest"]
    if plan is not None:  # a plan as imported is part of the contract: another plan is other terms
        record["plan"] = [[i.number, i.due_on.isoformat(), str(i.principal), str(i.interest)] for i in plan]
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()



@dataclass(frozen=True)
class Booking:
    """What ``add_cases`` did: cases booked now, and contracts already booked with the same terms."""

    booked: tuple[str, ...]
    already_booked: tuple[str, ...]



def _loan_values(terms: LoanTerms, case_id: str, hash_: str, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"case_id": case_id, "terms_hash": hash_, "booked_at": now}
    for name, plain in terms.record().items():
        if name in loans.c:  # dates as dates; the rest as the record spells it
            value = getattr(terms, name)
            values[name] = value if isinstance(value, date) else plain
        else:  # an amount: stored in fen
            values[f"{name}_fen"] = to_fen(getattr(terms, name))
    return values



class Bookings:
    """Booking and borrower rows (a part of ``CaseStore``)."""

    engine: Engine
    chain_key: bytes | None

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
            check_sequence(case, new_events, expected=0)
        hashes = {terms.contract_no: terms_hash(terms) for terms, _, _ in items}
        now = utc_now()
        try:
            with write_transaction(self.engine) as conn:
                booked_before: dict[str, str] = {}
                for chunk in chunks(sorted(hashes)):
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
                    new_rows = build_event_rows(
                        [(c, evs) for _, c, evs in fresh], {c.case_id: GENESIS_HASH for _, c, _ in fresh}, now, self.chain_key
                    )
                    conn.execute(
                        insert(cases),
                        [
                            {**case_values(c, new_rows.last_hashes[c.case_id]), "stuck": False, "stuck_error": None, "stuck_on": None}
                            for _, c, _ in fresh
                        ],
                    )
                    new_rows.insert(conn)
                    new_rows.insert_totals(conn)
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
            for chunk in chunks(sorted(set(contract_nos))):
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
                for chunk in chunks(sorted(set(values))):
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
            check_sequence(case, new_events, expected=expected_versions[case.case_id])
        try:
            with write_transaction(self.engine) as conn:
                written = self._append(conn, work, expected_versions)
                wanted = [row["contract_no"] for row in borrower_rows]
                present: set[str] = set()
                for chunk in chunks(wanted):
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

    def borrower_timezone(self, case_id_or_contract_no: str) -> str:
        """The borrower's time zone (the contact-hours rule's local time); the default when none is on file."""
        _, _, row = self.borrower_row(case_id_or_contract_no)
        return row["timezone"] if row is not None and row.get("timezone") else DEFAULT_TIMEZONE

    def borrower_case_ids(self, case_id: str) -> list[str]:
        """The borrower's other loans' cases (by ``borrower_id``, one person on all their loans), in id order."""
        same = select(loans.c.borrower_id).where(loans.c.case_id == case_id).scalar_subquery()
        query = select(loans.c.case_id).where(loans.c.borrower_id == same, loans.c.case_id != case_id).order_by(loans.c.case_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def borrowers_with_several_loans(self) -> dict[str, list[str]]:
        """Every case whose borrower has other loans: case id -> the other loans' case ids (in id order)."""
        several = select(loans.c.borrower_id).group_by(loans.c.borrower_id).having(func.count() > 1)
        query = (
            select(loans.c.borrower_id, loans.c.case_id)
            .where(loans.c.borrower_id.in_(several))
            .order_by(loans.c.borrower_id, loans.c.case_id)
        )
        by_borrower: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for borrower_id, case_id in conn.execute(query):
                by_borrower.setdefault(borrower_id, []).append(case_id)
        return {case_id: [other for other in ids if other != case_id] for ids in by_borrower.values() for case_id in ids}

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
