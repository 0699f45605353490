"""The legal cap: regimes, LPR fixings, the time-weighted limit and the split of new charges."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.caps import (
    DEFAULT_CUT_ORDER,
    DEFAULT_LPR_ROWS,
    LICENSED_CAP_RATE,
    CapError,
    CapRegime,
    LprFixing,
    LprTable,
    annual_cap_rate,
    apply_cap,
    cap_limit,
)
from states.money import DayCount

D = Decimal
LPR = LprTable.from_rows(DEFAULT_LPR_ROWS)


# --- LPR table -------------------------------------------------------------------------


def test_default_rows_are_the_thirteen_fixings_of_the_domain():
    assert len(DEFAULT_LPR_ROWS) == 13
    assert len(LPR) == 13
    assert DEFAULT_LPR_ROWS[0] == ("2019-08-20", "4.25")
    assert DEFAULT_LPR_ROWS[-1] == ("2025-05-20", "3.00")


def test_rows_in_percent_become_fractions():
    fixings = list(LPR)
    assert fixings[0] == LprFixing(date(2019, 8, 20), D("0.0425"))
    assert fixings[4] == LprFixing(date(2020, 4, 20), D("0.0385"))


PREVIOUS_AND_NEW = list(
    zip(
        [None] + [D(percent) / 100 for _, percent in DEFAULT_LPR_ROWS[:-1]],
        DEFAULT_LPR_ROWS,
    )
)


@pytest.mark.parametrize(("previous", "row"), PREVIOUS_AND_NEW, ids=[r[0] for _, r in PREVIOUS_AND_NEW])
def test_fixing_takes_effect_on_its_date_and_not_the_day_before(previous, row):
    effective, percent = row
    day = date.fromisoformat(effective)
    assert LPR.rate_on(day) == D(percent) / 100
    if previous is None:
        with pytest.raises(CapError):
            LPR.rate_on(day - timedelta(days=1))
    else:
        assert LPR.rate_on(day - timedelta(days=1)) == previous


def test_last_fixing_stays_in_force():
    assert LPR.rate_on(date(2030, 1, 1)) == D("0.03")


def test_day_before_first_fixing_is_refused_naming_both_dates():
    with pytest.raises(CapError, match="2019-08-19.*2019-08-20"):
        LPR.rate_on(date(2019, 8, 19))


def test_rows_are_sorted_whatever_order_they_come_in():
    table = LprTable.from_rows(reversed(DEFAULT_LPR_ROWS))
    assert table == LPR
    assert [f.effective_from for f in table] == sorted(f.effective_from for f in table)


def test_a_later_fixing_is_added_as_data():
    table = LprTable.from_rows([*DEFAULT_LPR_ROWS, ("2026-01-20", "2.90")])
    assert table.rate_on(date(2026, 1, 20)) == D("0.029")
    assert table.rate_on(date(2026, 1, 19)) == D("0.03")


def test_duplicate_dates_are_refused():
    with pytest.raises(CapError, match="two fixings effective from 2019-08-20"):
        LprTable.from_rows([("2019-08-20", "4.25"), ("2019-08-20", "4.20")])


@pytest.mark.parametrize("percent", ["0", "-1.5"])
def test_non_positive_rates_are_refused(percent):
    with pytest.raises(CapError, match="rate must be positive"):
        LprTable.from_rows([("2019-08-20", percent)])


def test_a_percentage_given_as_a_fraction_is_refused():
    with pytest.raises(CapError, match="0.0385 for 3.85 %"):
        LprTable([LprFixing(date(2020, 4, 20), D("3.85"))])


def test_bad_rows_are_refused_naming_the_value():
    with pytest.raises(CapError, match="'20-08-2019' is not a date"):
        LprTable.from_rows([("20-08-2019", "4.25")])
    with pytest.raises(CapError, match="'four' is not a number"):
        LprTable.from_rows([("2019-08-20", "four")])
    with pytest.raises(CapError, match="at least one fixing"):
        LprTable.from_rows([])


def test_table_cannot_be_changed():
    with pytest.raises(AttributeError):
        LPR._fixings = ()  # type: ignore[misc]


# --- Annual cap rate -------------------------------------------------------------------


def test_licensed_cap_is_24_percent():
    assert LICENSED_CAP_RATE == D("0.24")
    assert annual_cap_rate(CapRegime.LICENSED, date(2025, 6, 1), LPR) == D("0.24")


@pytest.mark.parametrize(
    ("contract_date", "cap"),
    [
        (date(2020, 5, 1), D("0.1540")),  # 4 x 3.85 %
        (date(2025, 6, 1), D("0.1200")),  # 4 x 3.00 %
        (date(2019, 8, 20), D("0.1700")),  # 4 x 4.25 %
    ],
)
def test_private_cap_is_four_times_the_lpr_on_the_contract_date(contract_date, cap):
    assert annual_cap_rate(CapRegime.PRIVATE, contract_date, LPR) == cap


def test_private_cap_before_the_first_fixing_is_refused_with_a_hint():
    with pytest.raises(CapError, match="2019-08-01.*2019-08-20.*legacy_2015"):
        annual_cap_rate(CapRegime.PRIVATE, date(2019, 8, 1), LPR)


def test_legacy_2015_cap_is_24_percent_for_contracts_before_2020_08_20():
    assert annual_cap_rate(CapRegime.LEGACY_2015, date(2020, 8, 19), LPR) == D("0.24")
    assert annual_cap_rate(CapRegime.LEGACY_2015, date(2016, 3, 1), LPR) == D("0.24")


@pytest.mark.parametrize("contract_date", [date(2020, 8, 20), date(2023, 1, 1)])
def test_legacy_2015_is_refused_from_2020_08_20(contract_date):
    with pytest.raises(CapError, match=f"legacy_2015.*2020-08-20.*{contract_date.isoformat()}"):
        annual_cap_rate(CapRegime.LEGACY_2015, contract_date, LPR)


def test_regime_given_as_text_is_accepted_and_unknown_text_refused():
    assert annual_cap_rate("private", date(2025, 6, 1), LPR) == D("0.12")
    with pytest.raises(CapError, match="'usury'.*licensed, private, legacy_2015"):
        annual_cap_rate("usury", date(2025, 6, 1), LPR)


# --- Cap limit -------------------------------------------------------------------------


def test_cap_limit_of_10000_for_360_days_at_24_percent_act_360_is_2400():
    principal_days = D("10000.00") * 360
    assert cap_limit(D("0.24"), principal_days, DayCount.ACT_360) == D("2400.00")


def test_cap_limit_act_365_uses_a_365_day_year():
    principal_days = D("10000.00") * 365
    assert cap_limit(D("0.24"), principal_days, DayCount.ACT_365) == D("2400.00")


def test_cap_limit_is_floored_to_the_fen():
    # 0.154 x 1000 x 1 / 360 = 0.42777...: floor, never round up past the law.
    assert cap_limit(D("0.154"), D("1000"), DayCount.ACT_360) == D("0.42")


def test_cap_limit_refuses_negative_inputs():
    with pytest.raises(CapError, match="outstanding_principal_days.*-1"):
        cap_limit(D("0.24"), D("-1"), DayCount.ACT_360)
    with pytest.raises(CapError, match="cap_rate.*-0.24"):
        cap_limit(D("-0.24"), D("1"), DayCount.ACT_360)


# --- Splitting new charges -------------------------------------------------------------


def charges(**amounts: str) -> dict[str, Decimal]:
    return {name: D(value) for name, value in amounts.items()}


def test_charges_within_headroom_are_all_enforceable():
    new = charges(contract_interest="100.00", penalty_interest="50.00")
    split = apply_cap(new, D("1000.00"), D("2400.00"), DEFAULT_CUT_ORDER)
    assert split.enforceable == new
    assert split.unenforceable == charges(contract_interest="0", penalty_interest="0")


def test_excess_is_cut_from_late_fee_first_then_compound_then_penalty():
    new = charges(
        contract_interest="100.00",
        penalty_interest="80.00",
        compound_interest="30.00",
        late_fee="20.00",
    )
    # headroom 2400.00 - 2290.00 = 110.00; new 230.00; excess 120.00:
    # late fee 20.00, compound 30.00, then 70.00 of the 80.00 penalty.
    split = apply_cap(new, D("2290.00"), D("2400.00"), DEFAULT_CUT_ORDER)
    assert split.unenforceable == charges(
        contract_interest="0", penalty_interest="70.00", compound_interest="30.00", late_fee="20.00"
    )
    assert split.enforceable == charges(
        contract_interest="100.00", penalty_interest="10.00", compound_interest="0", late_fee="0"
    )
    assert split.total_enforceable == D("110.00")
    assert split.total_unenforceable == D("120.00")


def test_excess_smaller_than_the_late_fee_cuts_only_the_late_fee():
    new = charges(penalty_interest="80.00", late_fee="20.00")
    split = apply_cap(new, D("2395.00"), D("2400.00"), DEFAULT_CUT_ORDER)
    assert split.unenforceable == charges(penalty_interest="75.00", late_fee="20.00")
    split = apply_cap(new, D("2300.00"), D("2400.00"), DEFAULT_CUT_ORDER)
    assert split.unenforceable == charges(penalty_interest="0", late_fee="0")
    split = apply_cap(new, D("2310.00"), D("2400.00"), DEFAULT_CUT_ORDER)
    assert split.unenforceable == charges(penalty_interest="0", late_fee="10.00")


def test_nothing_is_enforceable_once_charges_already_exceed_the_limit():
    new = charges(contract_interest="5.00")
    split = apply_cap(new, D("2500.00"), D("2400.00"), DEFAULT_CUT_ORDER)
    assert split.enforceable == charges(contract_interest="0")
    assert split.unenforceable == new


def test_a_charge_outside_the_cut_order_is_refused():
    with pytest.raises(CapError, match="'other_fee' is not in the cut order"):
        apply_cap(charges(other_fee="1.00"), D("0"), D("10.00"), DEFAULT_CUT_ORDER)


def test_negative_or_fractional_fen_charges_are_refused():
    with pytest.raises(CapError, match="late_fee: must not be negative"):
        apply_cap(charges(late_fee="-1.00"), D("0"), D("10.00"), DEFAULT_CUT_ORDER)
    with pytest.raises(CapError, match="late_fee: 1.005 is not a whole number of fen"):
        apply_cap(charges(late_fee="1.005"), D("0"), D("10.00"), DEFAULT_CUT_ORDER)


fen = st.integers(min_value=0, max_value=10_000_000).map(lambda n: D(n) / 100)
new_charge_maps = st.dictionaries(st.sampled_from(DEFAULT_CUT_ORDER), fen)


@given(new=new_charge_maps, charged_so_far=fen, limit=fen, cut_order=st.permutations(DEFAULT_CUT_ORDER))
def test_apply_cap_never_charges_above_the_limit_and_loses_nothing(new, charged_so_far, limit, cut_order):
    split = apply_cap(new, charged_so_far, limit, cut_order)

    assert set(split.enforceable) == set(split.unenforceable) == set(new)
    for name, amount in new.items():
        assert split.enforceable[name] + split.unenforceable[name] == amount
        assert split.enforceable[name] >= 0
        assert split.unenforceable[name] >= 0
    assert charged_so_far + split.total_enforceable <= max(limit, charged_so_far)
    # Nothing is cut that the cap allows.
    headroom = max(D(0), limit - charged_so_far)
    assert split.total_enforceable == min(sum(new.values(), D(0)), headroom)
    # A component is cut only after every component before it in the cut order is cut entirely.
    present = [name for name in cut_order if name in new]
    for index, name in enumerate(present):
        if split.unenforceable[name] > 0:
            assert all(split.enforceable[earlier] == 0 for earlier in present[:index])
