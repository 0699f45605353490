"""The payment file's row rules (``states.paymentfile``): each column's check names the row, the
column, the value (the payer's name masked) and what is accepted; a good row is the RecordPayment
command ``collectflow pay`` would build from the same values."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from states.commands import RecordedPayment, RecordPayment
from states.parse import InputError
from states.paymentfile import COLUMNS, REQUIRED, RowRejected, parse_row, repeat_refused
from states.vocabulary import PaymentChannel

BUSINESS_DATE = date(2026, 3, 31)


def row(**overrides) -> dict[str, object]:
    values = {
        "payment_id": "ALI-20260301-0001",
        "contract_no": "HT-000001",
        "amount": "1500.00",
        "paid_on": "2026-03-01",
        "channel": "alipay",
    }
    values.update(overrides)
    return values


def problems(**overrides) -> str:
    with pytest.raises(RowRejected) as rejected:
        parse_row(row(**overrides), 7, BUSINESS_DATE, "op-1")
    return str(rejected.value)


RULES = [
    ("payment_id", "ALI 0001", "contains spaces; an id is one word"),
    ("payment_id", "X" * 129, "is refused: 129 characters is more than the 128 accepted"),
    ("payment_id", "", "is missing (required)"),
    ("contract_no", "", "is missing (required)"),
    ("contract_no", "HT 1", "contains spaces"),
    ("amount", "0", "must be a positive amount"),
    ("amount", "-100", "must be a positive amount"),
    ("amount", "100.555", "has more than two decimal places"),
    ("amount", "12,34", "is not a number"),
    ("amount", "１００", "is not a number"),
    ("amount", "1e3", "is not a number"),
    ("paid_on", "2026-02-30", "is not a date; use YYYY-MM-DD"),
    ("paid_on", "01/03/2026", "is not a date"),
    ("paid_on", "2026-04-01", "is after the import's business date 2026-03-31"),
    ("channel", "paypal", "is not one of bank_transfer, alipay, wechat_pay, cash, agency"),
    ("channel", "", "is missing (required)"),
    ("currency", "USD", "is not CNY; collectflow books yuan only"),
]


@pytest.mark.parametrize("column, value, problem", RULES)
def test_each_rule_names_row_column_value_and_what_is_accepted(column, value, problem):
    message = problems(**{column: value})
    shown = value if len(value) < 50 else value[:20]
    assert f"row 7, column {column}: {shown!r}"[:40] in message
    assert problem in message
    assert "; accepted: " in message


def test_every_problem_of_a_row_is_listed():
    message = problems(amount="abc", paid_on="yesterday", channel="card")
    assert [c for c in ("amount", "paid_on", "channel") if f"column {c}:" in message] == ["amount", "paid_on", "channel"]


def test_a_json_value_that_is_a_list_or_a_float_is_refused():
    assert "is a list, not a single value" in problems(amount=[100])
    assert "is a float" in problems(amount=100.5)


def test_a_good_row_is_the_command_pay_would_build():
    parsed = parse_row(row(payment_id="  ALI-1 ", amount="1,500", currency="cny", payer_name="张三"), 2, BUSINESS_DATE, "op-1")
    cli = RecordPayment(case="HT-000001", amount="1,500", received_on="2026-03-01", payment_id="ALI-1", channel="alipay", operator="op-1")
    assert parsed.command == cli
    assert (parsed.row, parsed.command.amount, parsed.command.channel) == (2, Decimal("1500.00"), PaymentChannel.ALIPAY)
    assert "张三" not in repr(parsed)  # the payer's name is not kept


def test_a_row_refused_is_refused_as_the_command_refuses_it():
    for column, field, value in (("amount", "amount", "100.555"), ("paid_on", "received_on", "2026-13-01"), ("channel", "channel", "cheque")):
        with pytest.raises(InputError) as by_command:
            RecordPayment(**{**dict(case="HT-1", amount="1", received_on="2026-03-01", payment_id="P", operator="op-1"), field: value})
        reason = str(by_command.value).removeprefix(f"{field}: {value!r} ")
        assert reason in problems(**{column: value})


def test_the_payers_name_is_masked_in_every_message():
    message = problems(payer_name="张三丰\x07", amount="0")
    assert "column payer_name: '张***'" in message and "contains control characters" in message
    assert "三丰" not in message
    long_name = "欧阳" * 60
    message = problems(payer_name=long_name)
    assert "column payer_name: '欧" in message and "has 120 characters, more than 100" in message
    assert "欧阳欧" not in message


def test_the_columns_are_documented_with_what_each_accepts():
    assert REQUIRED == ("payment_id", "contract_no", "amount", "paid_on", "channel")
    assert {c.name for c in COLUMNS} == {*REQUIRED, "currency", "payer_name", "backdate_reason"}
    assert all(c.accepted for c in COLUMNS)


def test_a_payment_id_seen_with_other_content_names_both():
    earlier = RecordedPayment("P-1", "C-HT-1", Decimal("100.00"), date(2026, 3, 1))
    this = RecordedPayment("P-1", "C-HT-2", Decimal("120.00"), date(2026, 3, 2))
    assert earlier.repeated_by(RecordedPayment("P-1", "C-HT-1", Decimal("100.0"), date(2026, 3, 1)))
    assert not earlier.repeated_by(this)
    message = str(repeat_refused(9, earlier, this, "is already in this file at row 3"))
    assert message.startswith("row 9, column payment_id: 'P-1' is already in this file at row 3 on case C-HT-1 for 100.00 received 2026-03-01")
    assert "this row is 120.00 received 2026-03-02 on case C-HT-2" in message
