"""The unit of work: what one command (or one batch of the close) changes, written at once or not at all.

cosmicpython's shape::

    with uow:
        case = uow.cases.get(cmd.case)
        case.record_payment(cmd, policy)
        uow.commit()

``uow.cases`` remembers the version each case was loaded at; ``commit``
collects the events every loaded case produced (``case.collect_events()``)
and appends them with their new projections in one transaction, guarded by
those versions (another writer in between is a ``ConcurrencyError``, and
nothing is written). Leaving the block without ``commit`` discards every
change: the loaded cases are forgotten and nothing reaches the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from models.errors import StoreError
from models.store import CaseStore
from states.case import CollectionCase
from states.events import Event
from states.commands import RecordedPayment


class CaseRepository:
    """The cases a unit of work loaded, with the version each was loaded at."""

    def __init__(self, store: CaseStore):
        self._store = store
        self.seen: dict[str, CollectionCase] = {}
        self.versions: dict[str, int] = {}
        self.read: dict[str, int] = {}  # cases read to decide, not changed: their versions are checked on commit

    def get(self, case_ref: str) -> CollectionCase:
        """The case with this id or contract number."""
        case_id = self._store.resolve_case_id(case_ref)
        if case_id not in self.seen:
            self._track(self._store.load([case_id]))
        return self.seen[case_id]

    def get_many(self, case_ids: Iterable[str]) -> tuple[dict[str, CollectionCase], dict[str, str]]:
        """The cases that load (by id), and the ids that do not with their errors (the close quarantines them)."""
        loaded, unreadable = self._store.load_tolerant(case_ids)
        self._track(loaded)
        return loaded, unreadable

    def read_only(self, case_ids: Iterable[str]) -> list[CollectionCase]:
        """Cases a decision reads but does not change (a borrower's other loans): if any of them
        changes before the commit, the commit is refused (``ConcurrencyError``), as for a changed case."""
        loaded = self._store.load(case_ids)
        for case_id, case in loaded.items():
            self.read.setdefault(case_id, case.version)
        return list(loaded.values())

    def accruals_for_payment(self, case: CollectionCase, paid_on: date) -> list[Event]:
        """The stored events a payment dated ``paid_on`` reads to be value-dated: the accruals it may
        reverse, the payments valued after its date, the litigation costs posted after it (none when
        it is not value-dated)."""
        after = case.accruals_reversed_by(paid_on)
        return [] if after is None else self._store.accruals_after(case.case_id, *after)

    def _track(self, loaded: dict[str, CollectionCase]) -> None:
        for case_id, case in loaded.items():
            self.seen[case_id] = case
            self.versions[case_id] = case.version


class PaymentLedger:
    """Payment ids already recorded: a bank transaction is credited once."""

    def __init__(self, store: CaseStore):
        self._store = store

    def get(self, payment_id: str) -> RecordedPayment | None:
        return self._store.recorded_payment(payment_id)

    def get_many(self, payment_ids: Iterable[str]) -> dict[str, RecordedPayment]:
        """Those of these ids already recorded (a file's payments are looked up a chunk at a time)."""
        return self._store.recorded_payments(payment_ids)


class UnitOfWork:
    """One transaction's worth of case changes; see the module docstring."""

    def __init__(self, store: CaseStore):
        self.store = store
        self.payments = PaymentLedger(store)
        self.cases = CaseRepository(store)
        self._stuck: dict[str, str] = {}
        self._released: list[str] = []
        self._stuck_on: date | None = None
        self.events_written = 0

    def __enter__(self) -> UnitOfWork:
        self.cases = CaseRepository(self.store)
        self._stuck, self._released, self._stuck_on = {}, [], None
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.rollback()

    def quarantine(self, case_id: str, error: str, business_date: date) -> None:
        """Mark a case stuck on ``business_date`` with its error, in the same transaction as the rest."""
        if self._stuck_on not in (None, business_date):
            raise StoreError("one unit of work quarantines cases of one business date")
        self._stuck_on = business_date
        self._stuck[case_id] = error

    def release(self, case_id: str) -> None:
        """A case that went through: its stuck flag (if any) is cleared on commit."""
        self._released.append(case_id)

    def commit(self) -> int:
        """Write every loaded case's new events, projections and quarantine marks; the events written."""
        changes = [(case, case.collect_events()) for case in self.cases.seen.values()]
        changes = [(case, events) for case, events in changes if events]
        self.events_written = self.store.save_batch(
            changes,
            expected_versions={case.case_id: self.cases.versions[case.case_id] for case, _ in changes},
            read_versions={case_id: v for case_id, v in self.cases.read.items() if case_id not in self.cases.versions},
            stuck=self._stuck,
            business_date=self._stuck_on,
            cleared=self._released,
        )
        self.rollback()
        return self.events_written

    def rollback(self) -> None:
        """Forget what was loaded and not committed (nothing of it was written)."""
        self.cases = CaseRepository(self.store)
        self._stuck, self._released, self._stuck_on = {}, [], None
