"""The reports' rules: rates, the DPD read from a review, the month ends compared, DPD bands, the roll matrix."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from states.reporting import (
    DPD_BANDS,
    ROLL_COLUMNS,
    ROLL_ROWS,
    DpdReading,
    Segment,
    band_label,
    dpd_band,
    dpd_from_reading,
    rate,
    roll_matrix,
    roll_month_ends,
    roll_position,
    total_of,
)


def test_a_rate_is_a_decimal_fraction_to_four_places_and_none_without_a_denominator():
    assert rate(2, 7) == Decimal("0.2857")
    assert rate(1, 8) == Decimal("0.1250")
    assert rate(5, 0) is None and rate(0, 0) is None
    assert rate(Decimal("1.5"), 2) == Decimal("0.7500")


def test_a_late_reading_grows_by_a_day_a_day_and_a_reading_of_zero_stays_zero():
    late = DpdReading(stated_on=date(2024, 5, 16), dpd=91, closed_stage=None, paid_after=False)
    assert dpd_from_reading(late, date(2024, 5, 31)) == 106
    assert dpd_from_reading(late, date(2024, 5, 16)) == 91
    paid_up = DpdReading(stated_on=date(2024, 3, 16), dpd=0, closed_stage=None, paid_after=True)
    assert not paid_up.needs_replay and dpd_from_reading(paid_up, date(2024, 3, 31)) == 0
    never_reviewed = DpdReading(stated_on=None, dpd=0, closed_stage=None, paid_after=False)
    assert dpd_from_reading(never_reviewed, date(2024, 3, 31)) == 0


def test_a_late_case_paid_after_its_reading_needs_a_replay():
    reading = DpdReading(stated_on=date(2024, 5, 31), dpd=106, closed_stage=None, paid_after=True)
    assert reading.needs_replay
    with pytest.raises(ValueError, match="needs a replay"):
        dpd_from_reading(reading, date(2024, 5, 31))


@pytest.mark.parametrize(
    "as_of, month_ends",
    [
        (date(2024, 6, 30), (date(2024, 5, 31), date(2024, 6, 30))),  # a month end: its own month
        (date(2024, 6, 29), (date(2024, 4, 30), date(2024, 5, 31))),  # mid-month: the last month ended
        (date(2024, 3, 1), (date(2024, 1, 31), date(2024, 2, 29))),  # leap February
        (date(2024, 1, 15), (date(2023, 11, 30), date(2023, 12, 31))),  # across the year
    ],
)
def test_the_roll_matrix_compares_the_last_month_end_with_the_one_before(as_of, month_ends):
    assert roll_month_ends(as_of) == month_ends


def test_the_roll_matrix_counts_one_move_per_case_and_normalises_each_row():
    moves = [("M0", "M0")] * 3 + [("M0", "M1"), ("M4", "M5"), ("M4", "settled")]
    roll = roll_matrix(moves, date(2024, 5, 31), date(2024, 6, 30))
    counts = dict(zip(ROLL_ROWS, roll.counts))
    rates = dict(zip(ROLL_ROWS, roll.rates))
    assert counts["M0"][:2] == (3, 1) and sum(counts["M0"]) == 4
    assert rates["M0"][:2] == (Decimal("0.7500"), Decimal("0.2500"))
    assert rates["M4"][ROLL_COLUMNS.index("M5")] == rates["M4"][ROLL_COLUMNS.index("settled")] == Decimal("0.5000")
    assert all(r is None for r in rates["M2"])  # no case: no rate, not 0
    assert roll.as_dict()["rates"][0][:2] == ["0.7500", "0.2500"]
    with pytest.raises(ValueError, match="roll move 'settled' -> 'M0'"):
        roll_matrix([("settled", "M0")], date(2024, 5, 31), date(2024, 6, 30))


def test_a_case_is_placed_in_the_matrix_by_bucket_unless_it_closed():
    assert roll_position(0, None) == "M0" and roll_position(95, None) == "M4" and roll_position(400, None) == "M7+"
    assert roll_position(200, "written_off") == "written_off"


def test_the_dpd_bands_cover_every_dpd_from_one_without_a_gap():
    assert [band_label(*band) for band in DPD_BANDS[:2]] == ["1-10", "11-20"]
    assert band_label(*DPD_BANDS[-1]) == "361+"
    for dpd in range(1, 800):
        first, last = DPD_BANDS[dpd_band(dpd)]
        assert first <= dpd and (last is None or dpd <= last)
    with pytest.raises(ValueError):
        dpd_band(0)


def test_a_total_sums_cases_and_balances_under_its_own_name():
    a = Segment("phone", 2, Decimal("100.00"), Decimal("10.00"), Decimal("1.00"))
    b = Segment("visit", 1, Decimal("50.50"), Decimal("5.25"), Decimal("0.00"))
    assert total_of([a, b]) == Segment("all", 3, Decimal("150.50"), Decimal("15.25"), Decimal("1.00"))
