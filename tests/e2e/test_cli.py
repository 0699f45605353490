"""The `collectflow` command line, run as a user runs it: a real process, a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from flows.handlers.cases import book_loans
from models.db import make_engine, upgrade
from models.store import CaseStore
from states.loan import LoanTerms


def collectflow(*args: str, db: Path | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING", "COLUMNS": "200"}
    if db is not None:
        env["COLLECTFLOW_DATABASE_URL"] = f"sqlite:///{db}"
        env["COLLECTFLOW_DATA_DIR"] = str(db.parent)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_fees_json_prints_decimal_strings_with_two_places():
    result = collectflow("fees", "50000", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "claim": "50000.00",
        "procedure": "ordinary",
        "acceptance": "1050.00",
        "preservation": "520.00",
        "execution": "650.00",
        "attorney": "3000.00",
        "total": "5220.00",
    }


def test_fees_summary_procedure_halves_the_acceptance_fee():
    result = collectflow("fees", "50000", "--procedure", "summary", "--json")
    assert json.loads(result.stdout)["acceptance"] == "525.00"


@pytest.mark.parametrize("claim", ["-5", "0", "abc", "1e999999"])
def test_fees_refuses_a_claim_that_is_not_a_positive_amount(claim):
    result = collectflow("fees", claim)
    assert result.returncode != 0
    assert "claim" in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_unknown_procedure_is_named_with_the_accepted_ones():
    result = collectflow("fees", "100", "--procedure", "appeal")
    assert result.returncode == 2
    assert "'appeal'" in result.stderr and "summary" in result.stderr


@pytest.fixture
def booked_db(tmp_path: Path) -> Path:
    """One 12-month loan booked in a real SQLite file, first installment due 2026-02-05."""
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    terms = LoanTerms(
        contract_no="HT-CLI-0001",
        borrower_id="B-CLI-1",
        principal=Decimal("12000.00"),
        annual_rate=Decimal("0.18"),
        term_months=12,
        repayment_method="equal_installment",
        disbursed_on=date(2026, 1, 5),
        first_due_on=date(2026, 2, 5),
    )
    book_loans(CaseStore(engine), [("CASE-CLI-1", terms)])
    engine.dispose()
    return db


def test_a_case_advanced_paid_and_replayed_from_the_cli_reads_as_a_timeline(booked_db: Path):
    advanced = collectflow("advance", "--date", "2026-03-10", "--json", db=booked_db)
    assert advanced.returncode == 0, advanced.stderr
    summary = json.loads(advanced.stdout)
    assert summary["state"] == "COMPLETED" and summary["advanced"] == 1

    shown = json.loads(collectflow("case", "show", "HT-CLI-0001", "--as-of", "2026-03-10", "--json", db=booked_db).stdout)
    assert (shown["stage"], shown["dpd"], shown["bucket"]) == ("visit", 33, "M2")  # DPD 31+: field visit
    for key in ("principal_outstanding", "overdue_principal", "penalty_interest", "total_due", "unenforceable"):
        assert Decimal(shown[key]).as_tuple().exponent == -2, key

    paid = collectflow(
        "pay", "CASE-CLI-1", shown["total_due"], "--on", "2026-03-10", "--payment-id", "BANK-1", "--operator", "op-7",
        db=booked_db,
    )
    assert paid.returncode == 0, paid.stderr
    assert "PaymentReceived" in paid.stdout and "current" in paid.stdout  # cured at once
    again = collectflow(
        "pay", "CASE-CLI-1", shown["total_due"], "--on", "2026-03-10", "--payment-id", "BANK-1", "--operator", "op-7",
        db=booked_db,
    )
    assert "already recorded" in again.stdout

    timeline = collectflow("case", "replay", "CASE-CLI-1", db=booked_db)
    assert timeline.returncode == 0, timeline.stderr
    text = timeline.stdout
    assert "CaseOpened" in text and "penalty_interest" in text and "by op-7" in text
    assert "overdue -> phone" in text and "phone -> visit" in text
    rows = json.loads(collectflow("case", "replay", "CASE-CLI-1", "--json", db=booked_db).stdout)
    rules = {c["rule"] for r in rows for c in r["charges"] if c.get("rule")}
    assert rules and all(f"[{rule}]" in " ".join(text.split()) for rule in rules)  # each charge names its rule
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[-1]["balances"]["stage"] == "current"

    verified = collectflow("verify", db=booked_db)
    assert verified.returncode == 0 and "verified" in verified.stdout
    first, again = (collectflow("verify", "--incremental", db=booked_db) for _ in range(2))
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert "1 cases replayed" in " ".join(first.stdout.split()), first.stdout
    assert "0 cases replayed" in " ".join(again.stdout.split()) and "1 unchanged" in " ".join(again.stdout.split()), again.stdout


def test_bad_input_is_one_line_naming_the_value_and_nothing_is_stored(booked_db: Path):
    before = collectflow("case", "replay", "CASE-CLI-1", "--json", db=booked_db).stdout
    for args, needle in (
        (("pay", "CASE-CLI-1", "12.3.4", "--on", "2026-02-05", "--payment-id", "P", "--operator", "op"), "'12.3.4'"),
        (("pay", "CASE-CLI-1", "100", "--on", "2026-13-01", "--payment-id", "P", "--operator", "op"), "'2026-13-01'"),
        (("pay", "NOPE", "100", "--on", "2026-02-05", "--payment-id", "P", "--operator", "op"), "'NOPE'"),
        (("promise", "CASE-CLI-1", "100", "--by", "2026-05-01", "--on", "2026-02-06", "--operator", "op"), "14 days"),
    ):
        result = collectflow(*args, db=booked_db)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr
    assert collectflow("case", "replay", "CASE-CLI-1", "--json", db=booked_db).stdout == before


def test_an_agencys_calls_count_against_the_lenders_daily_limit_from_the_cli(booked_db: Path):
    for name in ("acme", "beta"):  # a contact by an agency names a registered one
        added = collectflow("agency", "add", name, "--licence", f"L-{name}", "--capacity", "10",
                            "--rates", "M4-M6=0.15,M7+=0.25,written_off=0.35", "--operator", "op-7", db=booked_db)
        assert added.returncode == 0, added.stderr
    base = ("contact", "CASE-CLI-1", "--channel", "call", "--outcome", "connected", "--operator", "op-7")
    for hour, by in ((9, "lender"), (10, "agency:acme"), (11, "agency:beta")):
        done = collectflow(*base, "--at", f"2026-03-11T{hour:02d}:00", "--by", by, db=booked_db)
        assert done.returncode == 0, done.stderr
    fourth = collectflow(*base, "--at", "2026-03-11T12:00", "--by", "agency:acme", db=booked_db)
    assert fourth.returncode == 1 and "3 connected calls a day" in fourth.stdout + fourth.stderr
    wrong = collectflow(*base, "--at", "2026-03-11T12:00", "--party", "agency:acme", "--by", "agency:beta", db=booked_db)
    assert wrong.returncode == 2 and "but by is 'agency:beta'" in wrong.stderr and "Traceback" not in wrong.stderr
    rows = json.loads(collectflow("case", "replay", "CASE-CLI-1", "--json", db=booked_db).stdout)
    refused = [r for r in rows if r["type"] == "ContactRefused"]
    assert len(refused) == 1 and "agency:acme" in json.dumps(refused[0])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().split(") ", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        return "Z" not in (Path("/proc") / str(pid) / "stat").read_text().split(") ", 1)[1].split()[0]
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_a_killed_advance_leaves_no_prefect_server_behind(booked_db: Path):
    import signal
    import time

    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "COLLECTFLOW_DATABASE_URL": f"sqlite:///{booked_db}",
           "COLLECTFLOW_DATA_DIR": str(booked_db.parent)}
    env.pop("PREFECT_API_URL", None)
    cli = subprocess.Popen([sys.executable, "-m", "flows.cli", "advance", "--date", "2026-03-10"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    deadline = time.monotonic() + 120
    while server is None and time.monotonic() < deadline and cli.poll() is None:
        for child in _children(cli.pid):
            if b"uvicorn" in (Path("/proc") / str(child) / "cmdline").read_bytes():
                server = child
        time.sleep(0.2)
    assert server is not None, "the temporary Prefect server did not start"
    cli.send_signal(signal.SIGKILL)
    cli.wait(timeout=10)
    deadline = time.monotonic() + 30
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(server), "the temporary Prefect server outlived the killed command"
