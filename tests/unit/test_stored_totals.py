"""The reports' totals two ways agree to the fen: what the writer sums from the domain's events
(``ReportTotals.add``, in the appending transaction) and what ``verify`` sums from the payloads as
stored (``StoredTotals.add_case``), on the random histories of ``test_close_pinned`` (payments,
back-dated ones, cures, lawsuits, judgments, executions, write-offs), with ``ChargesAccrued`` stored
as this release writes it and as v3 (the release before) wrote it.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import orjson
import pytest

from models.report_totals import ReportTotals, StoredTotals
from states.caps import DEFAULT_LPR_TABLE
from states.case import CollectionCase
from states.errors import UserError
from states.events import ChargesAccrued, Event, PaymentReceived
from states.lifecycle import Stage
from states.money import to_fen
from tests.unit.conftest import charges_v3_record
from tests.unit.test_close_pinned import KINDS, POLICIES, _step, _terms


def history(rng: random.Random, n: int) -> list[Event]:
    """One random case's events, as ``test_close_pinned`` draws them."""
    terms = _terms(rng, n)
    policy = rng.choice(POLICIES)
    case, made = CollectionCase.open(f"case-{n}", terms, DEFAULT_LPR_TABLE)
    made = list(made)
    day = terms.disbursed_on
    for k in range(rng.randrange(0, 18)):
        day += timedelta(days=rng.randrange(0, 80))
        try:
            made += _step(case, rng.choice(KINDS), rng, k, day, policy)
        except UserError:
            pass
        except Exception:  # noqa: BLE001 - a history the pinned test records as failed stops there
            return made
    return made + list(case.advance(day + timedelta(days=rng.choice([30, 200, 500])), policy))


def stored_rows(events: list[Event], v3: bool) -> list[dict]:
    """The events rows as the store keeps them (``ChargesAccrued`` as v3 wrote it, if ``v3``)."""
    rows = []
    for event in events:
        record = charges_v3_record(event) if v3 and isinstance(event, ChargesAccrued) else json.loads(event.canonical_json())
        record["business_date"] = date.fromisoformat(record["business_date"])
        record["payload"] = orjson.dumps(record["payload"]).decode()
        rows.append(record)
    return rows


@pytest.mark.parametrize("seed", [5, 6, 7, 8])
def test_the_stored_payloads_sum_to_what_the_writer_summed(seed):
    rng = random.Random(seed)
    writer, read, read_v3 = ReportTotals(), StoredTotals(), StoredTotals()
    paid_cases = released = 0
    for n in range(25):
        events = history(rng, n)
        writer.add(events, (Stage.CURRENT.value, None))  # the whole history, from the opening
        paid = [(e.seq, e.received_on, to_fen(e.amount)) for e in events if isinstance(e, PaymentReceived)]
        read.add_case(stored_rows(events, v3=False), paid)
        read_v3.add_case(stored_rows(events, v3=True), paid)
        paid_cases += bool(paid)
        released += sum(bool(e.released) for e in events if isinstance(e, ChargesAccrued))
    assert paid_cases and released and writer.recoveries and writer.moves and writer.charges  # the histories exercise them
    for made in (read.made, read_v3.made):
        assert made.charges == writer.charges
        assert made.counts == writer.counts
        assert made.moves == writer.moves
        assert made.recoveries == writer.recoveries
