"""The case store: one handle on the database, made of one part per reason to change.

    recorder.py    the hash-chained event table (insert and select only)
    repository.py  case rows: load from snapshots, save events + projections, quarantine
    booking.py     loans, their opening events and the borrowers' encrypted rows
    calendar.py    business days
    batches.py     the close's batches, claimed by workers under leases
    reference.py   LPR fixings and policy versions
    queries.py     portfolio reads: due and stuck cases, summaries, the digest
    reporting.py   the reports' reads: balances by stage and due date, DPD readings, recoveries, charges
    agencies.py    the agency registry, and the placements' reads (capacity used, recovery measured)

Commands reach it through a unit of work (``models.uow``), which tracks the
version each case was loaded at; the daily close saves whole batches.
"""

from __future__ import annotations

from sqlalchemy import Engine

from models.agencies import Agencies
from models.batches import CloseBatches
from models.booking import Booking, Bookings, terms_hash
from models.calendar import BusinessDayRecord, BusinessDays
from models.queries import PortfolioSummary, Queries, StageTotals, StuckCase
from models.recorder import chain_hash, event_from_row, stored_canonical_json
from models.reference import ReferenceData
from models.reporting import Reporting
from models.repository import CaseRow, CaseRows

__all__ = [
    "Booking",
    "BusinessDayRecord",
    "CaseRow",
    "CaseStore",
    "PortfolioSummary",
    "StageTotals",
    "StuckCase",
    "chain_hash",
    "event_from_row",
    "stored_canonical_json",
    "terms_hash",
]


class CaseStore(CaseRows, Bookings, BusinessDays, CloseBatches, ReferenceData, Queries, Reporting, Agencies):
    """Loads and saves cases; every write is one transaction."""

    def __init__(self, engine: Engine, chain_key: bytes | None = None):
        self.engine = engine
        self.chain_key = chain_key  # None: events are written unkeyed (their sha256 chain only)
