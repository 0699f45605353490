"""Agencies on a real database (SQLite and PostgreSQL): the registry and its protection, placements by the
close within capacity, commission while placed, recall, recoveries after write-off, the report, the CLI,
and the placement rows rebuilt from the events."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from flows import runtime
from flows.bootstrap import bootstrap
from flows.handlers.agencies import agency_detail, agency_report, agency_rows, deactivate_agency, register_agency
from flows.handlers.cases import advance_batch, handle
from models.db import write_transaction
from models.errors import StoreError
from models.tables import agencies, agency_changes, agency_commissions, placements
from states.agency import DeactivateAgency, RegisterAgency
from states.commands import RecallFromAgency, RecordPayment, WriteOff
from states.errors import UserError
from states.events import CommissionAccrued, PlacedWithAgency, PlacementDeferred
from tests.integration.builders import FIRST_DUE, POLICY, book

TODAY = date(2026, 12, 1)
DPD_95 = FIRST_DUE + timedelta(days=95)
RATES = "M4-M6=0.15,M7+=0.25,written_off=0.35"


@pytest.fixture
def app(store):
    return bootstrap(engine=store.engine, policy=POLICY, clock=lambda: TODAY)


def register(app, name: str, capacity: int, rates: str = RATES, active: bool = True):
    return register_agency(RegisterAgency(name=name, licence_no=f"LIC-{name}", capacity=capacity, rates=rates, operator="sup-1", active=active), app)


def placed_rows(store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(placements).order_by(placements.c.case_id, placements.c.seq)).mappings()]


def commission_rows(store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(agency_commissions).order_by(agency_commissions.c.case_id, agency_commissions.c.seq)).mappings()]


# --- the registry ----------------------------------------------------------------------------------


def test_the_registry_records_who_changed_what_and_refuses_a_second_registration(app):
    register(app, "NORTH", 10)
    with pytest.raises(StoreError, match="agency: 'NORTH' is already registered .* never edited"):
        register(app, "NORTH", 20)
    deactivate_agency(DeactivateAgency(name="NORTH", operator="sup-2"), app)
    with pytest.raises(UserError, match="already inactive"):
        deactivate_agency(DeactivateAgency(name="NORTH", operator="sup-2"), app)
    detail = agency_detail(app, "NORTH")
    assert (detail["capacity"], detail["active"], detail["rates"]["M7+"]) == (10, False, "0.25")
    assert [(c["action"], c["actor"]) for c in detail["changes"]] == [("registered", "sup-1"), ("deactivated", "sup-2")]
    with pytest.raises(StoreError, match="'SOUTH' is not on the registry; registered: NORTH"):
        agency_detail(app, "SOUTH")


def test_the_database_refuses_a_silent_edit_of_an_agency_or_its_changes(app, store):
    register(app, "NORTH", 10)
    for statement in (
        update(agencies).values(capacity=99),
        update(agencies).values(commission_rates={"M4-M6": "0.01", "M7+": "0.01", "written_off": "0.01"}),
        agencies.delete(),
        update(agency_changes).values(actor="someone-else"),
        agency_changes.delete(),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            with write_transaction(store.engine) as conn:
                conn.execute(statement)
    assert store.agency("NORTH").capacity == 10


# --- placement by the close, within capacity -------------------------------------------------------


def test_the_close_places_within_capacity_and_defers_the_rest_with_the_reason(app, store):
    ids = book(store, 8)
    register(app, "NORTH", 3)
    register(app, "SOUTH", 2)
    register(app, "IDLE", 50, active=False)
    result = advance_batch(app, ids, FIRST_DUE + timedelta(days=91))
    assert result.advanced == 8 and not result.stuck
    rows = placed_rows(store)
    held = {name: sum(1 for r in rows if r["agency_id"] == name and r["recalled_on"] is None) for name in ("NORTH", "SOUTH", "IDLE")}
    assert held == {"NORTH": 3, "SOUTH": 2, "IDLE": 0}
    deferred = [e for cid in ids for e in store.events(cid) if isinstance(e, PlacementDeferred)]
    assert len(deferred) == 3 and {e.reason for e in deferred} == {"no active agency has room"}
    assert {r["strategy"] for r in rows} <= {"best_recovery", "most_free_capacity"}
    # a second batch of the same day sees the capacity the first one took
    more = book(store, 2, start=20)
    advance_batch(app, more, FIRST_DUE + timedelta(days=91))
    assert len(placed_rows(store)) == 5
    listed = {r["agency"]: (r["placed"], r["capacity_left"]) for r in agency_rows(app, FIRST_DUE + timedelta(days=91))}
    assert listed == {"IDLE": (0, 50), "NORTH": (3, 0), "SOUTH": (2, 0)}


def test_a_placed_payment_accrues_the_commission_of_domain_section_7_and_the_report_adds_it_up(app, store):
    (case_id,) = book(store, 1)
    register(app, "NORTH", 5)
    advance_batch(app, [case_id], DPD_95)
    events = handle(RecordPayment(case=case_id, operator="op-1", amount="1000.00", received_on=DPD_95, payment_id="BANK-1"), app)
    (fee,) = [e for e in events if isinstance(e, CommissionAccrued)]
    assert (fee.agency_id, fee.commission_rate, fee.commission) == ("NORTH", Decimal("0.15"), Decimal("150.00"))
    (row,) = commission_rows(store)
    assert (row["recovered_fen"], row["commission_fen"], row["agency_id"]) == (100000, 15000, "NORTH")
    (placed,) = [e for e in store.events(case_id) if isinstance(e, PlacedWithAgency)]
    report = {(r["agency"], r["strategy"]): r for r in agency_report(app).as_dict()["rows"]}
    line = report[("NORTH", placed.strategy)]
    assert (line["cases_placed"], line["recovered"], line["commission"], line["net_recovered"]) == (1, "1000.00", "150.00", "850.00")
    assert line["balance_placed"] == str(placed.balance_placed)
    assert report[("all", "all")]["commission"] == "150.00"
    # the borrower's balance never holds the commission
    assert store.case_row(case_id).projection.total_paid == Decimal("1000.00")
    # case show gives the lender's cost of the case beside the borrower's balances
    assert store.case_commission(case_id, DPD_95) == (Decimal("150.00"), "0.15")
    assert store.case_commission(case_id, placed.business_date - timedelta(days=1)) == (Decimal("0.00"), None)


def test_recovery_is_measured_and_a_new_agency_gets_the_portfolio_average(app, store):
    ids = book(store, 2)
    register(app, "NORTH", 5)
    advance_batch(app, ids, DPD_95)
    for n, case_id in enumerate(ids):
        handle(RecordPayment(case=case_id, operator="op-1", amount="500.00", received_on=DPD_95, payment_id=f"B-{n}"), app)
    register(app, "SOUTH", 5)
    board = store.agency_board(DPD_95 + timedelta(days=1), POLICY)
    north, south = board.standing("NORTH"), board.standing("SOUTH")
    placed = sum((e.balance_placed for cid in ids for e in store.events(cid) if isinstance(e, PlacedWithAgency)), Decimal(0))
    assert north.measured_rate == (Decimal("1000.00") / placed).quantize(Decimal("0.0001"))
    assert south.measured_rate is None and board.rate_of(south) == board.portfolio_rate == north.measured_rate


def test_an_operator_recall_goes_to_another_agency(app, store):
    (case_id,) = book(store, 1)
    register(app, "NORTH", 5)
    register(app, "SOUTH", 5)
    advance_batch(app, [case_id], DPD_95)
    first = store.case_row(case_id).projection.agency_id
    events = handle(RecallFromAgency(case=case_id, operator="sup-1", reason="complaint", made_on=DPD_95 + timedelta(days=1)), app)
    assert [e.type for e in events][-2:] == ["RecalledFromAgency", "PlacedWithAgency"]
    second = store.case_row(case_id).projection.agency_id
    assert {first, second} == {"NORTH", "SOUTH"}
    rows = placed_rows(store)
    assert [(r["agency_id"], r["recall_reason"]) for r in rows] == [(first, "by operator: complaint"), (second, None)]


def test_a_written_off_case_takes_recoveries_at_the_written_off_commission(app, store):
    (case_id,) = book(store, 1)
    register(app, "NORTH", 5)
    advance_batch(app, [case_id], DPD_95)
    handle(WriteOff(case=case_id, operator="sup-1", reason="borrower emigrated", made_on=DPD_95 + timedelta(days=5)), app)
    row = store.case_row(case_id).projection
    assert row.stage == "written_off" and row.agency_id == "NORTH"
    events = handle(RecordPayment(case=case_id, operator="op-1", amount="100.00", received_on=DPD_95 + timedelta(days=10), payment_id="REC-1"), app)
    assert [e.type for e in events] == ["PaymentReceived", "CommissionAccrued"]
    assert (events[1].commission_rate, events[1].commission) == (Decimal("0.35"), Decimal("35.00"))
    assert store.case_row(case_id).projection.total_paid == Decimal("100.00")
    # the written-off placement ends at its date: the close reviews the case for it, and only for it
    until = [e for e in store.events(case_id) if isinstance(e, PlacedWithAgency)][-1].until
    assert case_id in store.due_case_ids(until)
    advance_batch(app, [case_id], until)
    assert store.case_row(case_id).projection.agency_id is None and store.case_row(case_id).projection.next_review_on is None


def test_rebuilding_from_the_events_reproduces_the_placement_and_commission_rows(app, store):
    ids = book(store, 3)
    register(app, "NORTH", 2)
    register(app, "SOUTH", 1)
    advance_batch(app, ids, DPD_95)
    handle(RecordPayment(case=ids[0], operator="op-1", amount="250.00", received_on=DPD_95, payment_id="P-1"), app)
    handle(RecallFromAgency(case=ids[0], operator="sup-1", reason="quality", made_on=DPD_95 + timedelta(days=2)), app)
    advance_batch(app, ids, DPD_95 + timedelta(days=100))  # expiries, renewals, lawsuits
    before = (placed_rows(store), commission_rows(store))
    assert before[0] and before[1]
    store.rebuild_projections(ids)
    assert (placed_rows(store), commission_rows(store)) == before


# --- the CLI on the real app -----------------------------------------------------------------------


def test_the_agency_commands_from_the_cli(store, db_url, monkeypatch):
    from flows.cli import app as cli

    (case_id,) = book(store, 1)
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()
    runner = CliRunner()
    try:
        added = runner.invoke(cli, ["agency", "add", "NORTH", "--licence", "L-1", "--capacity", "5", "--rates", RATES, "--operator", "sup-1"])
        again = runner.invoke(cli, ["agency", "add", "NORTH", "--licence", "L-1", "--capacity", "5", "--rates", RATES, "--operator", "sup-1"])
        bad = [
            runner.invoke(cli, ["agency", "add", "X", "--licence", "L", "--capacity", "0", "--rates", RATES, "--operator", "sup-1"]),
            runner.invoke(cli, ["agency", "add", "X", "--licence", "L", "--capacity", "5", "--rates", "M4-M6=0.15,M9=0.2", "--operator", "sup-1"]),
            runner.invoke(cli, ["agency", "add", "X", "--licence", "L", "--capacity", "5", "--rates", "M4-M6=abc,M7+=0.2,written_off=0.3", "--operator", "sup-1"]),
        ]
        runner.invoke(cli, ["agency", "add", "SOUTH", "--licence", "L-2", "--capacity", "5", "--rates", RATES, "--operator", "sup-1"])
        advance_batch(runtime.app(), [case_id], DPD_95)
        recall = runner.invoke(cli, ["agency", "recall", case_id, "--reason", "complaint", "--operator", "sup-1", "--on", str(DPD_95)])
        shown = runner.invoke(cli, ["agency", "show", "NORTH", "--json"])
        case_json = runner.invoke(cli, ["case", "show", case_id, "--as-of", str(DPD_95), "--json"])
        case_panel = runner.invoke(cli, ["case", "show", case_id, "--as-of", str(DPD_95)])
        listed = runner.invoke(cli, ["agency", "list", "--json"])
        report = runner.invoke(cli, ["agency", "report", "--to", str(DPD_95), "--json"])
        later = runner.invoke(cli, ["agency", "report", "--from", str(DPD_95), "--json"])
        backwards = runner.invoke(cli, ["agency", "report", "--from", "2024-06-01", "--to", "2024-05-01"])
        deactivated = runner.invoke(cli, ["agency", "deactivate", "SOUTH", "--operator", "sup-1"])
    finally:
        runtime.forget()
    assert added.exit_code == 0 and "agency NORTH: registered (active)" in added.output
    assert again.exit_code == 2 and again.output.count("\n") == 1 and "already registered" in again.output
    assert [b.exit_code for b in bad] == [2, 2, 2]
    assert "capacity: 0 must be at least 1" in bad[0].output
    assert "unknown bucket group 'M9'" in bad[1].output
    assert "'abc' is not a rate" in bad[2].output
    assert recall.exit_code == 0, recall.output
    said = " ".join(recall.output.split())  # a narrow terminal wraps the lines
    assert "recalled from agency" in said and "placed with agency" in said
    assert json.loads(shown.output)["changes"][0]["actor"] == "sup-1"
    placed_now = json.loads(case_json.output)
    assert (placed_now["agency_id"], placed_now["agency_commission_rate"], placed_now["agency_commission"]) == ("SOUTH", "0.15", "0.00")
    assert "15%" in case_panel.output and "commission" in case_panel.output, case_panel.output  # a narrow panel folds the line
    assert {r["agency"] for r in json.loads(listed.output)} == {"NORTH", "SOUTH"}
    rows = json.loads(report.output)["rows"]
    assert sum(r["cases_placed"] for r in rows if r["agency"] != "all" and r["strategy"] != "all") == 2  # placed, then re-placed
    assert [r["cases_placed"] for r in json.loads(later.output)["rows"] if r["agency"] == r["strategy"] == "all"] == [1]
    assert backwards.exit_code == 2 and "--from: 2024-06-01 is after --to 2024-05-01" in backwards.output
    assert deactivated.exit_code == 0 and "SOUTH: deactivated" in deactivated.output


def test_with_no_agency_registered_placements_rotate_over_the_policy_list_as_before(app, store):
    (case_id,) = book(store, 1)
    advance_batch(app, [case_id], FIRST_DUE + timedelta(days=91))
    (placed,) = [e for e in store.events(case_id) if isinstance(e, PlacedWithAgency)]
    assert (placed.agency_id, placed.strategy) == ("AGENCY-POOL", "rotation")
    assert [r["agency_id"] for r in placed_rows(store)] == ["AGENCY-POOL"]
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM agencies")).scalar() == 0


def test_verify_finds_a_placement_or_commission_row_that_its_events_did_not_make(app, store):
    from models.audit import verify

    (case_id,) = book(store, 1)
    register(app, "NORTH", 5)
    register(app, "SOUTH", 5)
    advance_batch(app, [case_id], DPD_95)
    handle(RecordPayment(case=case_id, operator="op-1", amount="1000.00", received_on=DPD_95, payment_id="BANK-1"), app)
    assert verify(store.engine).ok
    with write_transaction(store.engine) as conn:
        conn.execute(update(placements).values(agency_id="SOUTH" if placed_rows(store)[0]["agency_id"] == "NORTH" else "NORTH"))
        conn.execute(update(agency_commissions).values(commission_fen=1))
    problems = [f.problem for f in verify(store.engine).findings]
    assert any(p.startswith("placement row agency_id: stored") for p in problems)
    assert "commission row commission_fen: stored 1, events give 15000" in problems


def test_the_store_refuses_a_placement_beyond_capacity_made_from_a_stale_view(app, store):
    """Two writers that read the same board: the second one's placement fails at commit, retryably."""
    from models.db import is_transient
    from models.errors import ConcurrencyError
    from states.agency import AgencyBoard, AgencyStanding, parse_rates

    ids = book(store, 2)
    register(app, "NORTH", 1)
    stale = AgencyBoard(DPD_95, (AgencyStanding("NORTH", 1, 0, parse_rates(RATES)),))
    first, second = store.load(ids[:1])[ids[0]], store.load(ids[1:])[ids[1]]
    store.save([(first, first.advance(DPD_95, POLICY, stale))], expected_versions={ids[0]: 1})
    version = second.version
    with pytest.raises(ConcurrencyError, match="agency NORTH would hold 2 cases, above its capacity 1") as refused:
        store.save([(second, second.advance(DPD_95, POLICY, stale))], expected_versions={ids[1]: version})
    assert is_transient(refused.value)
    assert len(placed_rows(store)) == 1 and store.case_row(ids[1]).projection.version == version
