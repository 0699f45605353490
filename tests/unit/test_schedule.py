"""Repayment schedules: due dates, the three methods, the monthly plan and interest on actual days, and validation."""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.money import FEN, DayCount
from states.schedule import (
    RepaymentMethod,
    ScheduleError,
    ScheduleInterest,
    build_schedule,
    contract_interest_exact,
    due_dates,
)

D = Decimal
DISBURSED = date(2024, 1, 15)
FIRST_DUE = date(2024, 2, 15)  # a 31-day first period


MONTHLY, ACTUAL_DAYS = ScheduleInterest.MONTHLY, ScheduleInterest.ACTUAL_DAYS


def schedule(method, principal="12000.00", rate="0.18", term=12, day_count=DayCount.ACT_360, interest=MONTHLY, **dates):
    return build_schedule(
        D(principal),
        D(rate),
        term,
        method,
        dates.get("disbursed_on", DISBURSED),
        dates.get("first_due_on", FIRST_DUE),
        day_count,
        interest,
    )


def round_half_up(value: Fraction) -> Decimal:
    return (D(value.numerator) / D(value.denominator)).quantize(FEN, rounding=ROUND_HALF_UP)


def exact_total_interest(installments, principal, rate, disbursed_on, basis) -> Fraction:
    """Independent check: outstanding principal x rate x actual days / basis, as exact fractions."""
    total, outstanding, start = Fraction(0), Fraction(principal), disbursed_on
    for installment in installments:
        total += outstanding * Fraction(rate) * (installment.due_on - start).days / basis
        outstanding -= Fraction(installment.principal)
        start = installment.due_on
    return total


# --- due dates -------------------------------------------------------------


def test_due_dates_are_monthly_on_the_first_due_day():
    assert due_dates(date(2024, 1, 15), 3) == (date(2024, 1, 15), date(2024, 2, 15), date(2024, 3, 15))


def test_due_dates_clamp_to_month_end_and_return_to_the_original_day():
    assert due_dates(date(2027, 1, 31), 4) == (
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
        date(2027, 4, 30),
    )


def test_due_dates_fall_on_february_29_in_a_leap_year():
    assert due_dates(date(2028, 1, 31), 2)[1] == date(2028, 2, 29)
    assert due_dates(date(2027, 11, 30), 4)[3] == date(2028, 2, 29)


def test_due_dates_cross_the_year_end():
    assert due_dates(date(2024, 11, 30), 3) == (date(2024, 11, 30), date(2024, 12, 30), date(2025, 1, 30))


# --- equal installment -------------------------------------------------------


def test_equal_installment_pays_the_standard_annuity_amount():
    installments = schedule(RepaymentMethod.EQUAL_INSTALLMENT)
    assert len(installments) == 12
    assert {i.amount for i in installments[:-1]} == {D("1100.16")}


def test_equal_installment_last_payment_absorbs_rounding():
    installments = schedule(RepaymentMethod.EQUAL_INSTALLMENT)
    paid_before = sum(i.principal for i in installments[:-1])
    assert installments[-1].principal == D("12000.00") - paid_before
    assert sum(i.principal for i in installments) == D("12000.00")


def test_equal_installment_principal_is_payment_minus_interest():
    first = schedule(RepaymentMethod.EQUAL_INSTALLMENT)[0]
    assert first.interest == D("180.00")  # Jan 15 -> Feb 15 is one month: 12,000.00 x 18 % / 12
    assert first.principal == D("920.16")  # 1,100.16 - 180.00


def test_the_contract_plan_of_120000_at_18_percent_over_12_months():
    """DOMAIN.md §3: 120,000.00 at 18 % over 12 months -> 11,001.60 a month; interest 1,800.00 then 1,661.98."""
    installments = schedule(
        RepaymentMethod.EQUAL_INSTALLMENT, principal="120000.00",
        disbursed_on=date(2026, 1, 15), first_due_on=date(2026, 2, 15),
    )
    # r = 0.015; 120,000 x r x 1.015^12 / (1.015^12 - 1) = 11,001.60 (1.015^12 = 1.195618...)
    assert {i.amount for i in installments} == {D("11001.60")}  # the last one too, as it happens
    # 1: 120,000.00 x 0.015 = 1,800.00, principal 9,201.60; 2: 110,798.40 x 0.015 = 1,661.976 -> 1,661.98
    assert [(i.interest, i.principal) for i in installments[:2]] == [(D("1800.00"), D("9201.60")), (D("1661.98"), D("9339.62"))]
    assert sum(i.principal for i in installments) == D("120000.00")


def test_a_first_period_that_is_not_one_month_accrues_by_the_day_count():
    # Jan 15 -> Feb 20 is 36 days: 12,000.00 x 18 % x 36 / 360 = 216.00; then a month on 11,115.84 at 1.5 %
    installments = schedule(RepaymentMethod.EQUAL_INSTALLMENT, first_due_on=date(2024, 2, 20))
    assert installments[0].interest == D("216.00")
    assert installments[0].principal == D("884.16")  # 1,100.16 - 216.00
    assert installments[1].interest == D("166.74")  # 11,115.84 x 0.015 = 166.7376


def test_a_month_end_first_due_date_is_one_month_after_a_month_end_disbursement():
    # Jan 31 -> Feb 29 (2024) is one calendar month: 180.00, not 29 days of interest
    installments = schedule(RepaymentMethod.INTEREST_FIRST, disbursed_on=date(2024, 1, 31), first_due_on=date(2024, 2, 29))
    assert installments[0].interest == D("180.00")


def test_actual_days_is_the_day_count_on_each_period():
    installments = schedule(RepaymentMethod.EQUAL_INSTALLMENT, interest=ACTUAL_DAYS)
    assert (installments[0].interest, installments[0].principal) == (D("186.00"), D("914.16"))  # 12,000 x 18 % x 31 / 360


def test_equal_installment_at_zero_rate_splits_principal_evenly():
    installments = schedule(RepaymentMethod.EQUAL_INSTALLMENT, principal="100.00", rate="0", term=3)
    assert [i.principal for i in installments] == [D("33.33"), D("33.33"), D("33.34")]
    assert all(i.interest == 0 for i in installments)


def test_equal_installment_clamps_principal_to_zero_when_interest_exceeds_the_payment():
    # A 62-day first period at 35 % on a long term: the first period's interest exceeds the level payment.
    installments = schedule(
        RepaymentMethod.EQUAL_INSTALLMENT,
        rate="0.35",
        term=360,
        disbursed_on=date(2024, 1, 1),
        first_due_on=date(2024, 3, 3),
    )
    assert installments[0].interest > installments[1].amount
    assert installments[0].principal == 0
    assert sum(i.principal for i in installments) == D("12000.00")


# --- equal principal and interest first ---------------------------------------


def test_equal_principal_repays_the_same_principal_each_month():
    installments = schedule(RepaymentMethod.EQUAL_PRINCIPAL)
    assert [i.principal for i in installments] == [D("1000.00")] * 12


def test_equal_principal_interest_falls_with_the_balance():
    installments = schedule(RepaymentMethod.EQUAL_PRINCIPAL)
    assert installments[1].interest == D("165.00")  # 11,000.00 x 18 % / 12
    assert installments[-1].interest == D("15.00")  # 1,000.00 x 18 % / 12
    # on actual days, period 2 runs Feb 15 -> Mar 15 (29 days in 2024) on 11,000.00
    by_days = schedule(RepaymentMethod.EQUAL_PRINCIPAL, interest=ACTUAL_DAYS)
    assert (by_days[1].interest, by_days[-1].interest) == (D("159.50"), D("15.50"))  # 1,000.00 x 18 % x 31 / 360


def test_equal_principal_last_installment_absorbs_rounding():
    installments = schedule(RepaymentMethod.EQUAL_PRINCIPAL, principal="100.00", term=3)
    assert [i.principal for i in installments] == [D("33.33"), D("33.33"), D("33.34")]


def test_interest_first_repays_all_principal_at_the_end():
    installments = schedule(RepaymentMethod.INTEREST_FIRST)
    assert [i.principal for i in installments[:-1]] == [D("0.00")] * 11
    assert installments[-1].principal == D("12000.00")
    # Interest each month is the full balance x 18 % / 12, whatever the month's length.
    assert [i.interest for i in installments[:3]] == [D("180.00")] * 3
    # On actual days: the full balance over that month's days (31, 29, 31 in 2024).
    by_days = schedule(RepaymentMethod.INTEREST_FIRST, interest=ACTUAL_DAYS)
    assert [i.interest for i in by_days[:3]] == [D("186.00"), D("174.00"), D("186.00")]


def test_method_may_be_given_by_its_value():
    assert schedule("interest_first") == schedule(RepaymentMethod.INTEREST_FIRST)


# --- interest on actual days ---------------------------------------------------


def test_first_period_interest_is_principal_times_rate_times_days_over_360():
    # 10,000.00 x 18 % x 17 / 360 = 85.00
    first = schedule(
        RepaymentMethod.INTEREST_FIRST,
        principal="10000.00",
        disbursed_on=date(2024, 3, 1),
        first_due_on=date(2024, 3, 18),
    )[0]
    assert first.interest == D("85.00")


def test_first_period_interest_rounds_half_up():
    # 1.00 x 18 % x 10 / 360 = 0.005 exactly: half a fen rounds up.
    first = schedule(
        RepaymentMethod.INTEREST_FIRST,
        principal="1.00",
        disbursed_on=date(2024, 3, 1),
        first_due_on=date(2024, 3, 11),
    )[0]
    assert first.interest == D("0.01")


def test_act_365_uses_a_365_day_year():
    first = schedule(RepaymentMethod.INTEREST_FIRST, day_count=DayCount.ACT_365, interest=ACTUAL_DAYS)[0]
    assert first.interest == D("183.45")  # 12,000.00 x 18 % x 31 / 365 = 183.452...
    assert contract_interest_exact(D("12000.00") * 31, D("0.18"), DayCount.ACT_365) == D(66960) / D(365)


def test_interest_residue_is_carried_between_installments():
    # 10.00 x 18 % x 31 / 360 = 0.155 exactly: posted as 0.16, then the residue is carried.
    installments = schedule(
        RepaymentMethod.INTEREST_FIRST,
        principal="10.00",
        term=2,
        interest=ACTUAL_DAYS,
        disbursed_on=date(2024, 1, 1),
        first_due_on=date(2024, 2, 1),
    )
    # Period 2 accrues 10 x 0.18 x 29 / 360 = 0.145. Rounding each period alone would post
    # 0.16 + 0.15 = 0.31; carrying the residue posts the rounded total 0.300 -> 0.16 + 0.14.
    assert [i.interest for i in installments] == [D("0.16"), D("0.14")]


# --- validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("principal", "0", r"principal .* got 0"),
        ("principal", "-5.00", r"principal .* got -5.00"),
        ("principal", "10.005", r"principal .*whole fen.* got 10.005"),
        ("principal", 12000.0, r"principal: 12000.0 is a float"),
        ("rate", "1.8", r"annual_rate must be a fraction such as 0.18, got 1.8"),
        ("rate", "18", r"annual_rate must be a fraction such as 0.18, got 18"),
        ("rate", "1", r"annual_rate .* got 1"),
        ("rate", "-0.01", r"annual_rate .* got -0.01"),
        ("term", 0, r"term_months must be a whole number from 1 to 360, got 0"),
        ("term", 361, r"term_months .* got 361"),
        ("method", "balloon", r"method must be one of equal_installment, equal_principal, interest_first, got 'balloon'"),
    ],
)
def test_bad_terms_are_refused_naming_the_field_and_value(field, value, message):
    args = {"principal": D("12000.00"), "rate": D("0.18"), "term": 12, "method": RepaymentMethod.EQUAL_INSTALLMENT}
    args[field] = D(value) if isinstance(value, str) and field in ("principal", "rate") else value
    with pytest.raises(ScheduleError, match=message):
        build_schedule(args["principal"], args["rate"], args["term"], args["method"], DISBURSED, FIRST_DUE)


@pytest.mark.parametrize("first_due_on", [DISBURSED, DISBURSED - timedelta(days=1), DISBURSED + timedelta(days=63)])
def test_first_due_date_must_follow_disbursement_within_62_days(first_due_on):
    with pytest.raises(ScheduleError, match=rf"first_due_on .* after disbursed_on \(2024-01-15\), got {first_due_on}"):
        schedule(RepaymentMethod.EQUAL_INSTALLMENT, first_due_on=first_due_on)


def test_first_due_date_62_days_after_disbursement_is_accepted():
    assert schedule(RepaymentMethod.EQUAL_INSTALLMENT, first_due_on=DISBURSED + timedelta(days=62))


def test_due_dates_refuse_a_bad_term():
    with pytest.raises(ScheduleError, match="term_months"):
        due_dates(FIRST_DUE, 0)


# --- properties ------------------------------------------------------------------

principals = st.integers(min_value=1, max_value=1_000_000_000).map(lambda fen: D(fen) / 100)
rates = st.decimals(min_value=0, max_value=D("0.36"), places=4)
terms = st.integers(min_value=1, max_value=60)
methods = st.sampled_from(RepaymentMethod)
day_counts = st.sampled_from(DayCount)
first_periods = st.integers(min_value=1, max_value=62)
disbursements = st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))


conventions = st.sampled_from(ScheduleInterest)


@given(principals, rates, terms, methods, day_counts, disbursements, first_periods, conventions)
def test_schedule_properties_hold_for_any_loan(principal, rate, term, method, day_count, disbursed_on, first_period, convention):
    first_due_on = disbursed_on + timedelta(days=first_period)
    installments = build_schedule(principal, rate, term, method, disbursed_on, first_due_on, day_count, convention)

    assert [i.number for i in installments] == list(range(1, term + 1))
    assert sum(i.principal for i in installments) == principal
    for i in installments:
        for amount in (i.principal, i.interest):
            assert amount >= 0
            assert amount == amount.quantize(FEN)
    dates = [disbursed_on] + [i.due_on for i in installments]
    assert all(earlier < later for earlier, later in zip(dates, dates[1:]))

    if convention is ACTUAL_DAYS:
        exact = exact_total_interest(installments, principal, rate, disbursed_on, day_count.basis)
        assert sum(i.interest for i in installments) == round_half_up(exact)
        return
    # monthly: each period's interest on its own, rounded; a month is balance x rate / 12, an odd first period by days
    outstanding, start = Fraction(principal), disbursed_on
    for i in installments:
        month = i.number > 1 or due_dates(start, 2)[1] == i.due_on  # the first period: one calendar month?
        expected = outstanding * Fraction(rate) / 12 if month else outstanding * Fraction(rate) * (i.due_on - start).days / day_count.basis
        assert i.interest == round_half_up(expected)
        outstanding -= Fraction(i.principal)
        start = i.due_on
