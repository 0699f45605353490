"""The snapshot as stored (v11): the v10 record packed into a list, read back to the same record."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from states.case import CollectionCase, DomainError
from states.events import canonical_json
from states.snapshot import PACKED_FIELDS, SNAPSHOT_VERSION, packed, record_of, unpacked
from tests.unit.conftest import DUE, POLICY, open_case
from tests.unit.test_case_view import collector_case, day


def stored(case: CollectionCase) -> list:
    return json.loads(canonical_json(packed(case.snapshot())))


def test_a_new_case_keeps_only_what_it_has_changed():
    case = open_case()
    row = stored(case)
    assert row[0] == SNAPSHOT_VERSION == 11
    assert len(row) == 1 + 8  # version .. computed (each component at zero); every later value is a new case's
    assert unpacked(row, case.case_id) == case.snapshot()


def test_a_case_with_a_promise_a_pause_and_contacts_reads_back_whole():
    case = collector_case()
    row = stored(case)
    assert len(row) > 1 + PACKED_FIELDS.index(("pause_reason", None))  # the pause is kept, so is all before it
    restored = CollectionCase.from_snapshot(row, case.terms)
    assert restored.snapshot() == case.snapshot()
    assert restored.view(day(12), POLICY) == case.view(day(12), POLICY)


def test_an_outsourced_case_reads_back_whole_and_goes_on_as_the_live_one():
    case = open_case()
    case.advance(DUE + timedelta(days=120), POLICY)  # placed with an agency
    assert case.agency_id is not None
    restored = CollectionCase.from_snapshot(stored(case), case.terms)
    assert restored.snapshot() == case.snapshot()
    later = DUE + timedelta(days=300)
    assert [e.canonical_json() for e in restored.advance(later, POLICY)] == [e.canonical_json() for e in case.advance(later, POLICY)]


def test_the_stored_text_is_well_under_the_records():
    case = collector_case()
    assert len(canonical_json(packed(case.snapshot()))) < 0.6 * len(canonical_json(case.snapshot()))


def test_components_are_kept_by_their_codes_and_read_back_by_name():
    case = open_case()
    case.advance(DUE + timedelta(days=40), POLICY)
    row = stored(case)
    index = 1 + [key for key, _ in PACKED_FIELDS].index("principal_days")
    assert "c" in row[index] and "contract_interest" not in row[index]
    assert unpacked(row, case.case_id)["principal_days"] == case.snapshot()["principal_days"]


def test_an_older_record_is_read_as_it_is():
    case = collector_case()
    record = {**case.snapshot(), "v": 10}  # as a v10 store keeps it
    assert record_of(record, case.case_id) is record
    assert CollectionCase.from_snapshot(record, case.terms).snapshot() == case.snapshot()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([], "version None is not 11"),
        ([10, 3, "current", [], "2024-01-01"], "version 10 is not 11"),
        ([11, 3, "current", [], "2024-01-01"], "has 4 values, not 5 to 27"),
        ([11, *range(28)], "has 28 values, not 5 to 27"),
    ],
)
def test_a_packed_row_this_code_cannot_read_is_refused_with_what_is_wrong(row, message):
    with pytest.raises(DomainError, match=message):
        unpacked(row, "case-1")


def test_a_packed_row_is_read_only_with_the_cases_opening_event():
    with pytest.raises(DomainError, match="read with the case's opening event"):
        CollectionCase.from_snapshot(stored(open_case()))


def test_only_a_current_record_is_packed():
    with pytest.raises(DomainError, match="only a version 11 record is packed, not 10"):
        packed({**open_case().snapshot(), "v": 10})
