"""The collector's desk on a real database: the portfolio as of a date, today's call list, from the CLI too."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from typer.testing import CliRunner

from flows import runtime
from flows.bootstrap import bootstrap
from flows.handlers.worklists import case_list, call_list
from states.parse import InputError
from tests.integration.builders import FIRST_DUE, POLICY, advance, book

TODAY = date(2026, 12, 1)


@pytest.fixture
def desk(store):
    """Three cases: one paid up (current), two unpaid since FIRST_DUE, reviewed at DPD 10."""
    ids = book(store, 3)
    advance(store, ids, FIRST_DUE + timedelta(days=10))
    return bootstrap(engine=store.engine, policy=POLICY, clock=lambda: TODAY), ids


def test_the_portfolio_lists_dpd_as_of_the_date_asked_not_as_of_the_last_review(desk):
    app, ids = desk
    as_of = FIRST_DUE + timedelta(days=45)
    rows = case_list(app, as_of, stage="phone")
    assert [r["case_id"] for r in rows] == ids
    assert {(r["dpd"], r["bucket"]) for r in rows} == {(45, "M2")}
    assert case_list(app, as_of, bucket="M2") == rows
    assert case_list(app, as_of, bucket="M1") == []
    assert case_list(app, as_of, dpd_min=46) == [] and len(case_list(app, as_of, dpd_max=45)) == 3
    with pytest.raises(InputError, match="--stage: 'calling' is not one of current, overdue, phone"):
        case_list(app, as_of, stage="calling")


def test_a_snapshot_that_cannot_be_read_leaves_the_case_listed_without_its_last_contact(desk):
    from sqlalchemy import update

    from models.tables import cases

    app, ids = desk
    as_of = FIRST_DUE + timedelta(days=45)
    before = case_list(app, as_of, stage="phone")
    with app.store.engine.begin() as conn:
        conn.execute(update(cases).where(cases.c.case_id == ids[1]).values(snapshot="[12, 1]"))  # a later version's
    assert case_list(app, as_of, stage="phone") == before  # never contacted: no last contact either way


def test_the_call_list_holds_the_phone_cases_in_calling_order(desk):
    app, ids = desk
    calls = call_list(app, FIRST_DUE + timedelta(days=11))
    assert sorted(e.case_id for e in calls.entries) == ids
    priorities = [e.priority for e in calls.entries]
    assert priorities == sorted(priorities, reverse=True)
    assert call_list(app, FIRST_DUE + timedelta(days=11), limit=2).entries == calls.entries[:2]


def test_every_teams_list_comes_from_one_pass_and_is_that_teams_share_of_the_whole(store):
    from dataclasses import replace

    from flows.handlers.worklists import call_lists_by_team

    ids = book(store, 12)
    advance(store, ids, FIRST_DUE + timedelta(days=10))
    app = bootstrap(engine=store.engine, policy=replace(POLICY, teams={"north": 50, "south": 50}), clock=lambda: TODAY)
    day = FIRST_DUE + timedelta(days=11)
    reads, loads = [], []
    original_facts, original_load = app.store.call_facts, app.store.load
    app.store.call_facts = lambda case_ids: reads.append(1) or original_facts(case_ids)
    app.store.load = lambda case_ids: loads.append(1) or original_load(case_ids)
    lists = call_lists_by_team(app, day, limit=4)
    assert (len(reads), len(loads)) == (1, 0)  # the rows' facts read once, whatever the number of teams; no case loaded
    app.store.call_facts, app.store.load = original_facts, original_load
    whole = call_list(app, day)
    assert sorted(lists) == ["north", "south"]
    for name, calls in lists.items():
        alone = call_list(app, day, team=name)
        assert calls.entries == alone.entries[:4] and calls.left_out == alone.left_out
        assert alone.entries == [e for e in whole.entries if e.team == name]
    assert sum(len(call_list(app, day, team=t).entries) for t in lists) == len(whole.entries) == 12


def test_the_cli_prints_both_lists_as_json_and_csv(desk, db_url, monkeypatch):
    from flows.cli import app as cli

    _, ids = desk
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()
    runner = CliRunner()
    try:
        listed = runner.invoke(cli, ["cases", "list", "--stage", "phone", "--as-of", "2024-03-01", "--json"])
        calls = runner.invoke(cli, ["calls", "list", "--as-of", "2024-02-26", "--csv"])
        future = runner.invoke(cli, ["calls", "list", "--as-of", "2099-01-01"])
    finally:
        runtime.forget()
    assert listed.exit_code == 0, listed.output
    assert [r["case_id"] for r in json.loads(listed.stdout)] == ids
    assert calls.exit_code == 0, calls.output
    assert calls.stdout.splitlines()[0].startswith("case_id,contract_no,team,stage,dpd,bucket,overdue_total,priority")
    assert future.exit_code == 2 and "--as-of: 2099-01-01 is after today" in future.output


def test_case_schedule_and_quote_from_the_cli(desk, db_url, monkeypatch):
    from decimal import Decimal

    from flows.cli import app as cli

    _, ids = desk
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()
    try:
        plan = CliRunner().invoke(cli, ["case", "schedule", ids[0], "--json"])
        quote = CliRunner().invoke(cli, ["case", "quote", ids[0], "--on", "2024-03-01", "--json"])
    finally:
        runtime.forget()
    assert plan.exit_code == 0, plan.output
    rows = json.loads(plan.stdout)["installments"]
    assert len(rows) == 12 and sum(Decimal(r["principal"]) for r in rows) == Decimal("10001.00")
    assert rows[0]["unpaid"] == rows[0]["total"] and json.loads(plan.stdout)["plan"].startswith("computed by collectflow")
    assert "actual_days interest" in json.loads(plan.stdout)["plan"]  # the convention that computed it
    assert quote.exit_code == 0, quote.output
    assert Decimal(json.loads(quote.stdout)["principal"]) == Decimal("10001.00")


def test_a_visit_is_listed_reported_from_the_cli_and_leaves_the_list(store, db_url, monkeypatch):
    from flows.cli import app as cli
    from flows.handlers.worklists import visit_list

    ids = book(store, 1)
    advance(store, ids, FIRST_DUE + timedelta(days=31))  # enters the visit stage: a visit due a week later
    app = bootstrap(engine=store.engine, policy=POLICY, clock=lambda: TODAY)
    late = FIRST_DUE + timedelta(days=40)
    (row,) = visit_list(app, late)
    assert (row["case_id"], row["overdue"], row["failed_visits"]) == (ids[0], True, 0)
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()
    try:
        one = CliRunner().invoke(cli, ["visits", "report", ids[0], "--collectors", "op-1", "--outcome", "met", "--at", f"{late}T10:00", "--operator", "op-1"])
        two = CliRunner().invoke(cli, ["visits", "report", ids[0], "--collectors", "op-1,op-2", "--outcome", "met", "--at", f"{late}T10:00", "--operator", "op-1"])
    finally:
        runtime.forget()
    assert one.exit_code == 2 and "at least 2 collectors" in one.output
    assert two.exit_code == 0, two.output
    assert visit_list(app, late) == []
