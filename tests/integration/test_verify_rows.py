"""verify cross-checks the rows the history depends on against the events, on SQLite and PostgreSQL:
each ``borrowers`` row against its case's opening and amendments (and, with the key, against its
own ciphertext), and the ``business_days`` rows against the closes the events show. Each tamper
is made in SQL with the append-only triggers switched off, as someone with database access could."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from flows.bootstrap import bootstrap
from flows.handlers.cases import advance_batch
from flows.handlers.loans import import_file
from models.audit import verify
from models.crypto import Keyring
from models.tables import borrowers
from states.policy import CollectionPolicy
from tests.integration.builders import FIRST_DUE, POLICY, book, disable_event_triggers
from tests.loan_rows import row

TODAY = date(2026, 11, 28)
KEYRING = Keyring.from_secret("verify-rows-tests-secret-key-0123456789")


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def tamper(store, statement: str) -> None:
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        conn.execute(text(statement))


def findings(store, keyring: Keyring | None = None) -> list[str]:
    return [str(f) for f in verify(store.engine, keyring=keyring).findings]


# --------------------------------------------------------------------------- borrowers


@pytest.fixture
def borrowed(store, tmp_path):
    """Three loans imported; HT-000002's phone then amended by an import with --amend."""
    import_file(store, write_csv(tmp_path / "a.csv", [row(n) for n in (1, 2, 3)]), business_date=TODAY, policy=CollectionPolicy(), keyring=KEYRING)
    changed = write_csv(tmp_path / "b.csv", [row(2, phone="13912345678")])
    assert import_file(store, changed, business_date=TODAY, policy=CollectionPolicy(), keyring=KEYRING, amend=True).amended == 1
    assert verify(store.engine, keyring=KEYRING).ok
    return store


def test_verify_names_a_borrowers_row_whose_borrower_id_was_edited(borrowed):
    tamper(borrowed, "UPDATE borrowers SET borrower_id = 'B999999' WHERE contract_no = 'HT-000001'")
    assert findings(borrowed) == ["case C-HT-000001 seq 1: borrowers row HT-000001: borrower_id B999999, but the case was opened for B000001"]


def test_verify_names_a_borrowers_row_whose_amended_phone_was_put_back(borrowed):
    # the old phone's ciphertext cannot be had from the event; put back the masked column the amendment replaced
    tamper(borrowed, "UPDATE borrowers SET phone_masked = '138****0002' WHERE contract_no = 'HT-000002'")
    found = findings(borrowed)
    assert len(found) == 1 and found[0].startswith("case C-HT-000002 seq ")
    assert "borrowers row HT-000002: phone_masked is 138****0002, but the newest amendment of phone recorded 139****5678" in found[0]


def test_verify_names_a_borrowers_row_whose_amendment_date_was_erased_or_invented(borrowed):
    tamper(borrowed, "UPDATE borrowers SET amended_at = NULL WHERE contract_no = 'HT-000002'")
    tamper(borrowed, "UPDATE borrowers SET amended_at = booked_at WHERE contract_no = 'HT-000003'")
    found = findings(borrowed)
    assert "case C-HT-000002: borrowers row HT-000002: amended_at is empty, but the case records an amendment of the borrower details" in found
    assert any(f.startswith("case C-HT-000003: borrowers row HT-000003: amended_at is ") and "records no amendment" in f for f in found)
    assert len(found) == 2


def test_with_the_key_verify_names_an_edited_match_hash_masked_value_or_moved_ciphertext(borrowed):
    tamper(borrowed, f"UPDATE borrowers SET national_id_hash = '{'0' * 64}' WHERE contract_no = 'HT-000001'")
    tamper(borrowed, "UPDATE borrowers SET address_masked = '上海市****' WHERE contract_no = 'HT-000003'")
    with borrowed.engine.connect() as conn:
        token = conn.execute(select(borrowers.c.phone_enc).where(borrowers.c.contract_no == "HT-000001")).scalar_one()
    tamper(borrowed, f"UPDATE borrowers SET phone_enc = '{token}' WHERE contract_no = 'HT-000002'")
    # without the key only what the events recorded can be compared: none of these three is seen
    assert findings(borrowed) == []
    found = findings(borrowed, KEYRING)
    assert found == [
        "case C-HT-000001: borrowers row HT-000001: national_id_hash is not the match hash of its national id: edited",
        "case C-HT-000002: borrowers row HT-000002: HT-000002/phone: the encrypted value fails its integrity check (altered, or moved from another row)",
        "case C-HT-000003: borrowers row HT-000003: address_masked is 上海市****, but the encrypted value masks to 北京市东城区****",
    ]


def test_with_another_key_verify_says_the_rows_are_under_a_key_it_does_not_hold(borrowed):
    other = Keyring.from_secret("another-secret-another-secret-0123")
    found = findings(borrowed, other)
    assert len(found) == 3 and all(f"under key id {KEYRING.key_id}, which is neither the active key {other.key_id}" in f for f in found)


# --------------------------------------------------------------------------- business days


DAYS = [FIRST_DUE + timedelta(days=n) for n in range(1, 5)]
CASES = ["CASE-000001", "CASE-000002", "CASE-000003"]  # builders.case_id(1..3)  # four closes, the day after the first due date on


@pytest.fixture
def closed(store):
    """Three cases closed day by day over four business days, as the daily close records them
    (reviewed at DPD 1 and DPD 4, the stage thresholds; nothing is due in between)."""
    app = bootstrap(engine=store.engine, policy=POLICY, clock=lambda: TODAY)
    ids = book(store, 3)
    for day in DAYS:
        store.begin_business_day(day)
        result = advance_batch(app, ids, day)
        store.finish_business_day(day, advanced=result.advanced, stuck=len(result.stuck))
    assert [store.business_day(d).cases_advanced for d in DAYS] == [3, 0, 0, 3]
    assert verify(store.engine).ok
    return store


def test_verify_names_the_day_after_a_deleted_business_day(closed):
    tamper(closed, f"DELETE FROM business_days WHERE business_date = '{DAYS[1].isoformat()}'")
    assert findings(closed) == [f"business_days {DAYS[2]}: was closed after {DAYS[1]}, whose row is missing (deleted?)"]


def test_a_date_skipped_by_an_explicit_close_is_no_gap_but_one_closed_in_between_afterwards_is_out_of_order(closed):
    app = bootstrap(engine=closed.engine, policy=POLICY, clock=lambda: TODAY)

    def close(day: date) -> None:  # advance --date DAY: that date only
        closed.begin_business_day(day)
        result = advance_batch(app, CASES, day)
        closed.finish_business_day(day, advanced=result.advanced, stuck=len(result.stuck))

    later, between = DAYS[-1] + timedelta(days=40), DAYS[-1] + timedelta(days=20)
    close(later)
    assert findings(closed) == []  # the skipped dates were reviewed by the later close, in order
    close(between)
    assert findings(closed) == [f"business_days {later}: was closed after {DAYS[-1]}, but {between} lies between: a date closed out of order"]


def test_verify_names_a_business_day_whose_advanced_count_was_inflated(closed):
    tamper(closed, f"UPDATE business_days SET cases_advanced = 40 WHERE business_date = '{DAYS[3].isoformat()}'")
    tamper(closed, f"UPDATE business_days SET cases_advanced = 1 WHERE business_date = '{DAYS[2].isoformat()}'")
    assert findings(closed) == [
        f"business_days {DAYS[2]}: says 1 case(s) advanced, but the events show 0 reviewed by then since the date before",
        f"business_days {DAYS[3]}: says 40 case(s) advanced, but the events show 3 reviewed by then since the date before",
    ]


def test_verify_names_a_business_day_marked_closed_with_stuck_cases(closed):
    tamper(closed, f"UPDATE business_days SET stuck = 2 WHERE business_date = '{DAYS[0].isoformat()}'")
    assert findings(closed) == [f"business_days {DAYS[0]}: closed with 2 stuck case(s): a close with stuck cases is failed"]


def test_verify_names_a_date_closed_while_an_earlier_one_is_still_running(closed):
    tamper(closed, f"UPDATE business_days SET status = 'running', finished_at = NULL WHERE business_date = '{DAYS[1].isoformat()}'")
    assert findings(closed) == [
        f"business_days {DAYS[2]}: closed, but the earlier date {DAYS[1]} is still running: dates close in order",
        f"business_days {DAYS[3]}: closed, but the earlier date {DAYS[1]} is still running: dates close in order",
    ]


def test_verify_names_a_business_day_closed_before_it_started(closed):
    tamper(closed, f"UPDATE business_days SET finished_at = started_at - INTERVAL '1 hour' WHERE business_date = '{DAYS[3].isoformat()}'"
           if closed.engine.dialect.name == "postgresql" else
           f"UPDATE business_days SET finished_at = '2000-01-01 00:00:00.000000' WHERE business_date = '{DAYS[3].isoformat()}'")
    (found,) = findings(closed)
    assert found.startswith(f"business_days {DAYS[3]}: closed, but finished at ")


def test_a_failed_date_whose_stuck_cases_a_later_close_advanced_is_no_finding(closed):
    tamper(closed, f"UPDATE business_days SET status = 'failed', stuck = 1 WHERE business_date = '{DAYS[1].isoformat()}'")
    assert findings(closed) == []


def test_the_verify_command_names_the_row_and_exits_1(closed, db_url, monkeypatch):
    from typer.testing import CliRunner

    from flows import runtime
    from flows.cli import app

    tamper(closed, f"DELETE FROM business_days WHERE business_date = '{DAYS[2].isoformat()}'")
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()
    try:
        outcome = CliRunner().invoke(app, ["verify"])
    finally:
        runtime.forget()
    assert outcome.exit_code == 1
    assert f"business_days {DAYS[3]}: was closed after {DAYS[2]}, whose row is missing (deleted?)" in " ".join(outcome.output.split())
