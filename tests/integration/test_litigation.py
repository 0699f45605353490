"""A lawsuit followed to execution from the CLI on a real database: filing (and its refusal), the
judgment, delayed-performance interest on the case row, execution, the write-off it allows,
every bad input one line, and verify replaying what was stored."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from flows import runtime
from models.audit import verify
from states.court_fees import execution_fee, litigation_costs
from tests.integration.builders import FIRST_DUE, advance, book, opened

OUTSOURCED_ON = FIRST_DUE + timedelta(days=100)  # DPD 100: placed with an agency, not yet sued by the rule


@pytest.fixture
def cli(store, db_url, monkeypatch):
    """``cli(*args)``: the collectflow command line on the test's database; its result."""
    from flows.cli import app

    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, [str(a) for a in args])
    runtime.forget()


@pytest.fixture
def outsourced(store):
    """Two cases unpaid since FIRST_DUE, outsourced: a 10,001.00 loan and a 3,000.00 one."""
    big = book(store, 1)[0]
    store.add_cases([opened(2, principal=Decimal("3000.00"))])
    small = "CASE-000002"
    advance(store, [big, small], OUTSOURCED_ON)
    assert {store.case_row(c).projection.stage for c in (big, small)} == {"outsourced"}
    return big, small


def words(result) -> str:
    """The output with Rich's line wrapping undone."""
    return " ".join(result.output.split())


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_a_lawsuit_followed_to_execution_and_write_off_from_the_cli(store, cli, outsourced):
    big, _small = outsourced
    on = OUTSOURCED_ON
    deadline = on + timedelta(days=20)
    paid_up_to = deadline + timedelta(days=30)

    filed = cli("lawsuit", "file", big, "--on", on, "--operator", "op-lawyer")
    assert filed.exit_code == 0, filed.output
    assert "lawsuit filed" in words(filed) and "outsourced -> litigation" in words(filed)
    row = store.case_row(big).projection
    (lawsuit,) = [e for e in store.events(big) if e.type == "LawsuitFiled"]
    costs = litigation_costs(lawsuit.claim)
    assert row.stage == "litigation" and lawsuit.actor == "op-lawyer" and row.agency_id is None
    assert row.costs == costs.acceptance + costs.preservation + costs.attorney  # acceptance, preservation, attorney

    refused = one_line_error(cli("write-off", big, "--reason", "gone", "--on", on, "--operator", "op-lawyer"))
    assert "not written off: no judgment is entered yet" in refused

    judged = cli(
        "lawsuit", "judgment", big, "--amount", "10000.00", "--deadline", deadline, "--on", on + timedelta(days=5),
        "--operator", "op-lawyer", "--court", "Pudong People's Court", "--case-number", "(2024)沪0115民初123号",
    )
    assert judged.exit_code == 0, judged.output
    assert "judgment entered (Pudong People's Court, (2024)沪0115民初123号)" in words(judged)

    shown = cli("case", "show", big, "--as-of", paid_up_to, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["delayed_interest"] == "52.50"  # 10,000 x 0.0175 % x 30 days

    executed = cli("lawsuit", "execution", big, "--outcome", "no_assets", "--on", paid_up_to, "--operator", "op-lawyer")
    assert executed.exit_code == 0, executed.output
    assert f"execution fee {execution_fee(Decimal('10000.00'))}" in words(executed)
    assert store.case_row(big).projection.delayed_interest == Decimal("52.50")

    replay = cli("case", "replay", big, "--json")
    rows = json.loads(replay.stdout)
    delayed = [r for r in rows if r["type"] == "DelayedPerformanceInterestAccrued"]
    assert sum(Decimal(c["amount"]) for r in delayed for c in r["charges"] if c["kind"] == "posting") == Decimal("52.50")
    assert all("a day" in r["charges"][0]["text"] for r in delayed)

    written = cli("write-off", big, "--reason", "execution ended without recovery", "--on", paid_up_to, "--operator", "op-lawyer")
    assert written.exit_code == 0, written.output
    assert store.case_row(big).projection.stage == "written_off"
    assert verify(store.engine).ok  # replay reproduces every stored projection


def test_a_small_claim_is_refused_with_its_reason_and_filed_with_a_recorded_override(store, cli, outsourced):
    _big, small = outsourced
    refused = one_line_error(cli("lawsuit", "file", small, "--on", OUTSOURCED_ON, "--operator", "op-lawyer"))
    assert "lawsuit not filed: the claim" in refused and "below the policy's minimum claim 5000" in refused
    assert store.case_row(small).projection.stage == "outsourced"

    filed = cli("lawsuit", "file", small, "--on", OUTSOURCED_ON, "--operator", "op-lawyer", "--override", "guarantor owns a flat")
    assert filed.exit_code == 0, filed.output
    assert "filed against the rule" in words(filed) and "guarantor owns a flat" in words(filed)
    (lawsuit,) = [e for e in store.events(small) if e.type == "LawsuitFiled"]
    assert lawsuit.override_reason == "guarantor owns a flat" and lawsuit.actor == "op-lawyer"
    assert verify(store.engine).ok


@pytest.mark.parametrize(
    "args, message",
    [
        (("lawsuit", "judgment", "CASE-000001", "--amount", "ten", "--deadline", "2024-06-10", "--on", "2024-06-01", "--operator", "op-1"), "amount"),
        (("lawsuit", "judgment", "CASE-000001", "--amount", "-5", "--deadline", "2024-06-10", "--on", "2024-06-01", "--operator", "op-1"), "amount"),
        (("lawsuit", "judgment", "CASE-000001", "--amount", "100", "--deadline", "2024-13-10", "--on", "2024-06-01", "--operator", "op-1"), "deadline"),
        (("lawsuit", "judgment", "CASE-000001", "--amount", "100", "--deadline", "2024-06-10", "--on", "2024-06-01", "--operator", "op-1"), "no lawsuit is pending"),
        (("lawsuit", "execution", "CASE-000001", "--outcome", "lost", "--on", "2024-06-01", "--operator", "op-1"), "outcome"),
        (("lawsuit", "execution", "CASE-000001", "--outcome", "partial", "--on", "2024-06-01", "--operator", "op-1"), "no judgment is entered"),
        (("lawsuit", "file", "CASE-000001", "--on", "2099-01-01", "--operator", "op-1"), "after today"),
        (("lawsuit", "file", "NO-SUCH-CASE", "--on", "2024-06-01", "--operator", "op-1"), "NO-SUCH-CASE"),
    ],
)
def test_every_bad_lawsuit_input_is_one_line_naming_it(store, cli, outsourced, args, message):
    before = {c: len(store.events(c)) for c in outsourced}
    assert message in one_line_error(cli(*args))
    assert {c: len(store.events(c)) for c in outsourced} == before  # nothing half-written


def test_a_late_bank_file_valued_before_the_lawsuit_leaves_its_costs_due(store, outsourced):
    """Through the handler, on a real store: a payment valued before the filing (the store hands the
    case its LawsuitFiled with the accruals) pays what was owed then, not the court's costs."""
    from flows.bootstrap import bootstrap
    from flows.handlers.cases import handle
    from states.commands import FileLawsuit, RecordPayment
    from states.events import PaymentReceived
    from tests.integration.builders import POLICY

    big, _ = outsourced
    filed_on = OUTSOURCED_ON + timedelta(days=1)
    app = bootstrap(engine=store.engine, policy=POLICY, clock=lambda: filed_on + timedelta(days=3))
    handle(FileLawsuit(case=big, operator="op-lawyer", filed_on=filed_on), app)
    costs = store.case_row(big).projection.costs
    assert costs > 0
    advance(store, [big], filed_on + timedelta(days=2))
    events = handle(RecordPayment(case=big, operator="op-1", amount=Decimal("300.00"), received_on=OUTSOURCED_ON, payment_id="LATE-1"), app)
    (paid,) = [e for e in events if isinstance(e, PaymentReceived)]
    assert paid.value_date == OUTSOURCED_ON and "costs" not in {line.component for line in paid.lines}
    assert store.case_row(big).projection.costs == costs  # still owed in full
    assert verify(store.engine).ok


def test_a_judgment_deadline_before_the_judgment_or_more_than_a_year_after_it_is_one_line_from_the_cli_and_the_form(store, cli, outsourced):
    from pydantic import ValidationError

    from flows.operator import Judgment

    big, _ = outsourced
    on = OUTSOURCED_ON + timedelta(days=5)
    assert cli("lawsuit", "file", big, "--on", OUTSOURCED_ON, "--operator", "op-lawyer").exit_code == 0
    before = len(store.events(big))
    for deadline, message in (
        ("2099-12-31", f"--deadline: 2099-12-31 is more than one year after the judgment date {on}"),
        (on - timedelta(days=1), f"--deadline: {on - timedelta(days=1)} is before the judgment date {on}"),
    ):
        line = one_line_error(cli("lawsuit", "judgment", big, "--amount", "10000.00", "--deadline", deadline, "--on", on, "--operator", "op-lawyer"))
        assert line.startswith(f"error: {message}"), line
        with pytest.raises(ValidationError, match=message.lstrip("-")):
            Judgment(case=big, operator="op-lawyer", amount="10000.00", deadline=deadline, entered_on=on)
    assert len(store.events(big)) == before  # nothing written
