"""Litigation costs (DOMAIN.md section 5): every tier edge pinned, plus properties."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.court_fees import (
    ACCEPTANCE_FEE_TIERS,
    ATTORNEY_FEE_TIERS,
    DELAYED_PERFORMANCE_DAILY_RATE,
    EXECUTION_FEE_TIERS,
    PRESERVATION_FEE_TIERS,
    CourtFeeError,
    LitigationCosts,
    Procedure,
    acceptance_fee,
    attorney_fee,
    delayed_performance_interest,
    execution_fee,
    litigation_costs,
    preservation_fee,
)
from states.money import FEN

D = Decimal


def cases(*rows: tuple[str, str]) -> list:
    return [pytest.param(D(amount), D(fee), id=amount) for amount, fee in rows]


# Each edge at 1 yuan below, at, and 1 yuan above, then one point inside every tier.
ACCEPTANCE_CASES = cases(
    ("9999", "50.00"), ("10000", "50.00"), ("10001", "50.03"),  # 50.025 half-up
    ("99999", "2299.98"), ("100000", "2300.00"), ("100001", "2300.02"),
    ("199999", "4299.98"), ("200000", "4300.00"), ("200001", "4300.02"),
    ("499999", "8799.99"), ("500000", "8800.00"), ("500001", "8800.01"),
    ("999999", "13799.99"), ("1000000", "13800.00"), ("1000001", "13800.01"),
    ("1999999", "22799.99"), ("2000000", "22800.00"), ("2000001", "22800.01"),
    ("4999999", "46799.99"), ("5000000", "46800.00"), ("5000001", "46800.01"),
    ("9999999", "81799.99"), ("10000000", "81800.00"), ("10000001", "81800.01"),
    ("19999999", "141799.99"), ("20000000", "141800.00"), ("20000001", "141800.01"),
    ("0.01", "50.00"), ("5000", "50.00"), ("50000", "1050.00"), ("150000", "3300.00"),
    ("300000", "5800.00"), ("800000", "11800.00"), ("1500000", "18300.00"),
    ("3000000", "30800.00"), ("8000000", "67800.00"), ("15000000", "111800.00"),
    ("30000000", "191800.00"),
)

PRESERVATION_CASES = cases(
    ("999", "30.00"), ("1000", "30.00"), ("1001", "30.01"),
    ("99999", "1019.99"), ("100000", "1020.00"), ("100001", "1020.01"),  # 1020.005 half-up
    ("0.01", "30.00"), ("500", "30.00"), ("50000", "520.00"), ("500000", "3020.00"),
)

# 0.5 % x S + 520 reaches the 5,000 cap at S = 896,000.
PRESERVATION_CAP_CASES = cases(
    ("895998", "4999.99"), ("895999", "5000.00"),  # 4999.995 half-up
    ("896000", "5000.00"), ("896001", "5000.00"), ("1000000", "5000.00"),
    ("8960000", "5000.00"), ("1000000000", "5000.00"),
)

EXECUTION_CASES = cases(
    ("9999", "50.00"), ("10000", "50.00"), ("10001", "50.02"),  # 50.015 half-up
    ("499999", "7399.99"), ("500000", "7400.00"), ("500001", "7400.01"),
    ("4999999", "52399.99"), ("5000000", "52400.00"), ("5000001", "52400.01"),
    ("9999999", "77400.00"), ("10000000", "77400.00"), ("10000001", "77400.00"),
    ("0.01", "50.00"), ("5000", "50.00"), ("50000", "650.00"), ("1000000", "12400.00"),
    ("8000000", "67400.00"), ("20000000", "87400.00"),
)

ATTORNEY_CASES = cases(
    ("99999", "5999.94"), ("100000", "6000.00"), ("100001", "6000.05"),
    ("499999", "25999.95"), ("500000", "26000.00"), ("500001", "26000.04"),
    ("999999", "45999.96"), ("1000000", "46000.00"), ("1000001", "46000.03"),
    ("4999999", "165999.97"), ("5000000", "166000.00"), ("5000001", "166000.02"),
    ("9999999", "265999.98"), ("10000000", "266000.00"), ("10000001", "266000.01"),
    ("49999999", "665999.99"), ("50000000", "666000.00"), ("50000001", "666000.01"),
    ("50000", "3000.00"), ("300000", "16000.00"), ("800000", "38000.00"),
    ("3000000", "106000.00"), ("8000000", "226000.00"), ("20000000", "366000.00"),
    ("100000000", "916000.00"),
)

# 6 % x S passes 2,000 just above S = 33,333.33.
ATTORNEY_MINIMUM_CASES = cases(
    ("0.01", "2000.00"), ("1000", "2000.00"), ("30000", "2000.00"),
    ("33333.33", "2000.00"), ("33333.42", "2000.01"), ("40000", "2400.00"),
)


@pytest.mark.parametrize(("claim", "fee"), ACCEPTANCE_CASES)
def test_acceptance_fee_follows_the_property_case_table(claim: Decimal, fee: Decimal) -> None:
    assert acceptance_fee(claim) == fee


@pytest.mark.parametrize(("amount", "fee"), PRESERVATION_CASES)
def test_preservation_fee_follows_its_table(amount: Decimal, fee: Decimal) -> None:
    assert preservation_fee(amount) == fee


@pytest.mark.parametrize(("amount", "fee"), PRESERVATION_CAP_CASES)
def test_preservation_fee_stops_at_5000_from_896000_on(amount: Decimal, fee: Decimal) -> None:
    assert preservation_fee(amount) == fee


@pytest.mark.parametrize(("amount", "fee"), EXECUTION_CASES)
def test_execution_fee_follows_its_table(amount: Decimal, fee: Decimal) -> None:
    assert execution_fee(amount) == fee


@pytest.mark.parametrize(("claim", "fee"), ATTORNEY_CASES)
def test_attorney_fee_follows_the_cumulative_schedule(claim: Decimal, fee: Decimal) -> None:
    assert attorney_fee(claim) == fee


@pytest.mark.parametrize(("claim", "fee"), ATTORNEY_MINIMUM_CASES)
def test_attorney_fee_is_at_least_2000(claim: Decimal, fee: Decimal) -> None:
    assert attorney_fee(claim) == fee


@pytest.mark.parametrize(
    "tiers",
    [ACCEPTANCE_FEE_TIERS, PRESERVATION_FEE_TIERS, EXECUTION_FEE_TIERS, ATTORNEY_FEE_TIERS],
    ids=["acceptance", "preservation", "execution", "attorney"],
)
def test_adjacent_tiers_charge_the_same_at_their_shared_edge(tiers) -> None:
    # So a claim exactly on an edge pays the same whichever tier it is put in.
    for (edge, rate, constant), (_, next_rate, next_constant) in zip(tiers, tiers[1:]):
        assert rate * edge + constant == next_rate * edge + next_constant, edge


@pytest.mark.parametrize(
    ("claim", "full", "half"),
    [("10000", "50.00", "25.00"), ("50000", "1050.00", "525.00"), ("10001", "50.03", "25.01")],
)
@pytest.mark.parametrize("procedure", [Procedure.SUMMARY, Procedure.MEDIATION, Procedure.WITHDRAWAL])
def test_acceptance_fee_is_halved_for_summary_mediation_and_withdrawal(
    claim: str, full: str, half: str, procedure: Procedure
) -> None:
    # 10,001: the exact fee 50.025 is halved to 25.0125, then rounded once.
    assert acceptance_fee(D(claim), Procedure.ORDINARY) == D(full)
    assert acceptance_fee(D(claim), procedure) == D(half)


def test_litigation_costs_of_a_50000_claim() -> None:
    costs = litigation_costs("50000")
    assert costs == LitigationCosts(
        claim=D("50000"),
        procedure=Procedure.ORDINARY,
        acceptance=D("1050.00"),
        preservation=D("520.00"),
        execution=D("650.00"),
        attorney=D("3000.00"),
    )
    assert costs.total == D("5220.00")
    assert costs.as_dict() == {
        "claim": "50000.00",
        "procedure": "ordinary",
        "acceptance": "1050.00",
        "preservation": "520.00",
        "execution": "650.00",
        "attorney": "3000.00",
        "total": "5220.00",
    }


@pytest.mark.parametrize("claim", ["50000", 50000, D("50000"), "50,000", " 50000.00 "])
def test_litigation_costs_accepts_a_claim_as_string_int_or_decimal(claim: object) -> None:
    assert litigation_costs(claim).total == D("5220.00")


def test_litigation_costs_of_a_summary_case_halves_only_the_acceptance_fee() -> None:
    costs = litigation_costs("50000", "summary")
    assert costs.procedure is Procedure.SUMMARY
    assert costs.as_dict()["acceptance"] == "525.00"
    assert costs.as_dict()["total"] == "4695.00"


@pytest.mark.parametrize(
    ("debt", "days", "interest"),
    [
        ("100000", 30, "525.00"),
        ("100000", 0, "0.00"),
        ("100000", 1, "17.50"),
        ("2860", 10, "5.01"),  # exactly 5.005, rounded half-up
        ("12345.67", 7, "15.12"),  # 15.12344575
    ],
)
def test_delayed_performance_interest_is_0_0175_percent_a_day(debt: str, days: int, interest: str) -> None:
    assert DELAYED_PERFORMANCE_DAILY_RATE == D("0.000175")
    assert delayed_performance_interest(D(debt), days) == D(interest)


@pytest.mark.parametrize("days", [-1, 1.5, True, "30"])
def test_delayed_performance_interest_refuses_a_bad_day_count(days: object) -> None:
    with pytest.raises(CourtFeeError, match=f"days must be .*got '{days}'"):
        delayed_performance_interest(D("100000"), days)  # type: ignore[arg-type]


FEE_FUNCTIONS = [acceptance_fee, preservation_fee, execution_fee, attorney_fee, litigation_costs]
BAD_AMOUNTS = ["0", 0, D("0"), "-5", -5, D("-0.01"), "abc", "", "NaN", "inf", None, True, [50000]]


@pytest.mark.parametrize("bad", BAD_AMOUNTS, ids=repr)
@pytest.mark.parametrize("fee", FEE_FUNCTIONS, ids=lambda fee: fee.__name__)
def test_fees_refuse_an_amount_that_is_not_a_positive_number(fee, bad: object) -> None:
    with pytest.raises(CourtFeeError, match=r"must be a positive amount of yuan, got '.*'"):
        fee(bad)


@pytest.mark.parametrize("fee", FEE_FUNCTIONS, ids=lambda fee: fee.__name__)
def test_fees_refuse_a_float_amount(fee) -> None:
    with pytest.raises(CourtFeeError, match="got '50000.0', a float"):
        fee(50000.0)


def test_refusal_names_the_claim_and_the_bad_value() -> None:
    with pytest.raises(CourtFeeError) as refused:
        litigation_costs("-5")
    assert str(refused.value) == "claim must be a positive amount of yuan, got '-5'"


def test_delayed_performance_interest_refuses_a_non_positive_debt() -> None:
    with pytest.raises(CourtFeeError, match="judgment_debt must be a positive amount of yuan, got '0'"):
        delayed_performance_interest(D("0"), 30)


@pytest.mark.parametrize("procedure", ["appeal", "SUMMARY", "", None])
def test_unknown_procedure_is_refused_with_the_accepted_values(procedure: object) -> None:
    expected = f"procedure must be one of ordinary, summary, mediation, withdrawal, got '{procedure}'"
    with pytest.raises(CourtFeeError) as refused:
        litigation_costs("50000", procedure)  # type: ignore[arg-type]
    assert str(refused.value) == expected


# --- properties -------------------------------------------------------------

# Edges, each with a neighbourhood, so every tier and the caps are reached often.
EDGES = sorted(
    {edge for tiers in (ACCEPTANCE_FEE_TIERS, PRESERVATION_FEE_TIERS, EXECUTION_FEE_TIERS, ATTORNEY_FEE_TIERS)
     for edge, _, _ in tiers if edge is not None}
    | {D("896000"), D("33333.33")}
)
claims = st.one_of(
    st.decimals(min_value=D("0.01"), max_value=D("1000000000"), places=2),
    st.builds(
        lambda edge, offset: max(edge + offset, FEN),
        st.sampled_from(EDGES),
        st.decimals(min_value=D("-5"), max_value=D("5"), places=2),
    ),
)

FEES = {
    "acceptance": acceptance_fee,
    "acceptance_halved": lambda claim: acceptance_fee(claim, Procedure.SUMMARY),
    "preservation": preservation_fee,
    "execution": execution_fee,
    "attorney": attorney_fee,
}
fee_names = pytest.mark.parametrize("name", FEES)


@fee_names
@given(a=claims, b=claims)
def test_every_fee_is_non_decreasing_in_the_claim(name: str, a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert FEES[name](low) <= FEES[name](high)


@fee_names
@given(claim=claims)
def test_one_more_fen_of_claim_adds_at_most_one_fen_of_fee(name: str, claim: Decimal) -> None:
    step = FEES[name](claim + FEN) - FEES[name](claim)
    assert D("0") <= step <= FEN


@fee_names
@given(claim=claims)
def test_every_fee_has_exactly_two_decimal_places(name: str, claim: Decimal) -> None:
    assert FEES[name](claim).as_tuple().exponent == -2


@given(amount=claims)
def test_preservation_fee_is_never_above_5000(amount: Decimal) -> None:
    assert preservation_fee(amount) <= D("5000")


def cumulative(amount: Decimal, floor: str, floor_edge: str, marginal: list[tuple[str | None, str]]) -> Decimal:
    """The statute's own wording: a flat fee up to the first edge, then each rate on its slice."""
    fee, lower = D(floor), D(floor_edge)
    for upper, rate in marginal:
        top = amount if upper is None else min(amount, D(upper))
        fee += D(rate) * max(top - lower, D("0"))
        lower = top if upper is None else D(upper)
    return fee.quantize(FEN, rounding=ROUND_HALF_UP)


@given(claim=claims)
def test_closed_forms_match_the_cumulative_marginal_definition(claim: Decimal) -> None:
    acceptance = cumulative(claim, "50", "10000", [
        ("100000", "0.025"), ("200000", "0.02"), ("500000", "0.015"), ("1000000", "0.01"),
        ("2000000", "0.009"), ("5000000", "0.008"), ("10000000", "0.007"), ("20000000", "0.006"),
        (None, "0.005"),
    ])
    preservation = cumulative(claim, "30", "1000", [("100000", "0.01"), (None, "0.005")])
    execution = cumulative(claim, "50", "10000", [
        ("500000", "0.015"), ("5000000", "0.01"), ("10000000", "0.005"), (None, "0.001"),
    ])
    attorney = cumulative(claim, "0", "0", [
        ("100000", "0.06"), ("500000", "0.05"), ("1000000", "0.04"), ("5000000", "0.03"),
        ("10000000", "0.02"), ("50000000", "0.01"), (None, "0.005"),
    ])
    assert acceptance_fee(claim) == acceptance
    assert preservation_fee(claim) == min(preservation, D("5000"))
    assert execution_fee(claim) == execution
    assert attorney_fee(claim) == max(attorney, D("2000"))


@given(claim=claims, procedure=st.sampled_from(Procedure))
def test_litigation_costs_total_is_the_sum_of_the_four_fees(claim: Decimal, procedure: Procedure) -> None:
    costs = litigation_costs(claim, procedure)
    assert costs.total == costs.acceptance + costs.preservation + costs.execution + costs.attorney
    assert all(value.count(".") == 1 and len(value.split(".")[1]) == 2
               for key, value in costs.as_dict().items() if key != "procedure")
