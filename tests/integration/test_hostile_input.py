"""Hostile input at every entry point: refused in one line naming the value, and nothing stored changes.

The CLI is run in-process through its console-script entry (``flows.cli.main``)
against a real SQLite file; the Prefect forms are the pydantic models the
flows take as parameters (what the UI submits is validated by them before a
run starts). Both build the same commands, so both must refuse the same input.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from flows import cli, runtime
from flows.bootstrap import bootstrap
from flows.handlers.cases import advance_batch
from flows.operator import ContactAttempt, Pause, Payment, PromiseToPay
from models.db import make_engine, upgrade
from models.store import CaseStore
from tests.integration.builders import FIRST_DUE, book

OVERDUE = FIRST_DUE + timedelta(days=10)
GOOD = {"amount": "100.00", "on": OVERDUE.isoformat(), "payment_id": "BANK-1", "operator": "op-li"}

bad_amounts = st.one_of(
    st.sampled_from(["12,34", "100.555", "１００", "١٠٠", "-100", "0", "abc", "1e3", "NaN", "Infinity", "", " ", "1,00,000",
                     "9999999999999999999", "100.", ".5.5", "0x10", "1_000"]),
    st.text(alphabet=st.characters(blacklist_characters="0123456789"), max_size=12),
)
bad_dates = st.one_of(
    st.sampled_from(["20261001", "2026-13-01", "2026-02-30", "9999-12-31", "2099-12-31", "01/02/2026", "", "2026-1-5", "２０２６-01-01"]),
    st.text(max_size=12),
)
bad_operators = st.sampled_from(["", " ", "system", "SYSTEM", "op li", "op\x00", "-op", "张三", "a" * 65])
bad_ids = st.sampled_from(["", "   ", "BANK\x001", "BANK 1", "B\n1", "x" * 200])


@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    """One overdue case in a real SQLite file, which the CLI uses; (case id, store)."""
    url = f"sqlite:///{tmp_path / 'collectflow.db'}"
    engine = make_engine(url)
    upgrade(engine)
    store = CaseStore(engine)
    (case_id,) = book(store, 1)
    advance_batch(bootstrap(engine=engine), [case_id], OVERDUE)
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", url)
    monkeypatch.setenv("COLLECTFLOW_DATA_DIR", str(tmp_path))
    runtime.forget()
    yield case_id, store
    runtime.forget()
    engine.dispose()


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["collectflow", *args])
    with pytest.raises(SystemExit) as ended:
        cli.main()
    captured = capsys.readouterr()
    return ended.value.code or 0, captured.err


def refused_in_one_line(code: int, err: str, *needles: str) -> None:
    """Exit 2 and one line on stderr that names the value or its field (any of ``needles``)."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert any(needle in lines[0] for needle in needles), (needles, err)


def pay_args(case_id: str, **over: str) -> list[str]:
    v = {**GOOD, **over}
    return ["pay", case_id, v["amount"], "--on", v["on"], "--payment-id", v["payment_id"], "--operator", v["operator"]]


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(amount=bad_amounts)
def test_a_bad_amount_is_refused_by_the_cli_and_the_form_alike(cli_db, monkeypatch, capsys, amount):
    case_id, store = cli_db
    before = store.digest()
    code, err = run_cli(monkeypatch, capsys, *pay_args(case_id, amount=amount))
    refused_in_one_line(code, err, "amount")
    with pytest.raises(ValidationError, match="amount"):
        Payment(case=case_id, operator="op-li", amount=amount, received_on=OVERDUE, payment_id="BANK-1")
    with pytest.raises(ValidationError, match="amount"):
        PromiseToPay(case=case_id, operator="op-li", amount=amount, promised_on=OVERDUE, made_on=OVERDUE)
    assert store.digest() == before


@SETTINGS
@given(day=bad_dates)
def test_a_bad_or_future_date_is_refused_everywhere(cli_db, monkeypatch, capsys, day):
    case_id, store = cli_db
    before = store.digest()
    code, err = run_cli(monkeypatch, capsys, *pay_args(case_id, on=day))
    refused_in_one_line(code, err, "--on:", f"dated {day.strip()} is before")  # a real but ancient date: the domain's word
    assert "received_on" not in err  # the option typed, not the field it fills
    code, err = run_cli(monkeypatch, capsys, "pause", case_id, "--reason", "hardship", "--until", "2099-12-31", "--on", day, "--operator", "op-li")
    refused_in_one_line(code, err, "--on:", "--until", f"dated {day.strip()} is before")
    assert "made_on" not in err
    assert store.digest() == before


@SETTINGS
@given(operator=bad_operators)
def test_a_nameless_or_reserved_operator_is_refused(cli_db, monkeypatch, capsys, operator):
    case_id, store = cli_db
    before = store.digest()
    code, err = run_cli(monkeypatch, capsys, *pay_args(case_id, operator=operator))
    refused_in_one_line(code, err, "operator")
    with pytest.raises(ValidationError, match="operator"):
        Pause(case=case_id, operator=operator, reason="hardship", until=OVERDUE + timedelta(days=3), made_on=OVERDUE)
    assert store.digest() == before


@SETTINGS
@given(payment_id=bad_ids)
def test_a_bad_payment_id_is_refused(cli_db, monkeypatch, capsys, payment_id):
    case_id, store = cli_db
    before = store.digest()
    code, err = run_cli(monkeypatch, capsys, *pay_args(case_id, payment_id=payment_id))
    refused_in_one_line(code, err, "--payment-id:")
    assert store.digest() == before


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--channel", "bitcoin"], "'bitcoin' is not one of bank_transfer"),
    ],
)
def test_a_word_outside_a_vocabulary_is_refused_naming_the_accepted_ones(cli_db, monkeypatch, capsys, args, needle):
    case_id, store = cli_db
    before = store.digest()
    code, err = run_cli(monkeypatch, capsys, *pay_args(case_id), *args)
    refused_in_one_line(code, err, needle)
    code, err = run_cli(monkeypatch, capsys, "pause", case_id, "--reason", "because", "--until", "2026-12-20", "--on", OVERDUE.isoformat(), "--operator", "op-li")
    refused_in_one_line(code, err, "'because' is not one of hardship, dispute, complaint")
    with pytest.raises(ValidationError, match="outcome"):
        ContactAttempt(case=case_id, operator="op-li", channel="call", outcome="shouted", contacted_at="2026-03-02T10:30")
    assert store.digest() == before


def test_a_contact_time_without_its_time_of_day_is_refused(cli_db, monkeypatch, capsys):
    case_id, store = cli_db
    before = store.digest()
    code, err = run_cli(monkeypatch, capsys, "contact", case_id, "--channel", "call", "--outcome", "connected", "--at", "2026-07-01", "--operator", "op-li")
    refused_in_one_line(code, err, "--at: '2026-07-01' is not a date and time")
    assert store.digest() == before


def test_a_policy_file_that_does_not_exist_is_one_line(cli_db, monkeypatch, capsys, tmp_path):
    case_id, _ = cli_db
    monkeypatch.setenv("COLLECTFLOW_POLICY_FILE", str(tmp_path / "nonexistent.toml"))
    runtime.forget()
    code, err = run_cli(monkeypatch, capsys, "case", "show", case_id)
    refused_in_one_line(code, err, "nonexistent.toml")


def test_an_error_line_is_never_wrapped_even_with_a_path_over_a_hundred_characters(cli_db, monkeypatch, capsys, tmp_path):
    long_dir = tmp_path / ("a-long-folder-name-" * 6)
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("COLLECTFLOW_POLICY_FILE", str(long_dir / "policy.toml"))
    runtime.forget()
    code, err = run_cli(monkeypatch, capsys, "case", "show", cli_db[0])
    refused_in_one_line(code, err, str(long_dir / "policy.toml"))
    assert len(str(long_dir)) > 100


def test_a_valid_payment_through_the_cli_is_recorded_once(cli_db, monkeypatch, capsys):
    case_id, store = cli_db
    code, out = run_cli(monkeypatch, capsys, *pay_args(case_id, amount="1,234.50"))
    assert code == 0
    assert [e.amount for e in store.events(case_id) if e.type == "PaymentReceived"] == [Decimal("1234.50")]


def _truncated(path):
    good = path.with_name("good.db")
    engine = make_engine(f"sqlite:///{good}")
    upgrade(engine)
    engine.dispose()
    path.write_bytes(good.read_bytes()[:3000])


UNUSABLE = {
    "truncated": (_truncated, "database disk image is malformed"),
    "text": (lambda path: path.write_text("not a database\n"), "file is not a database"),
    "a folder": (lambda path: path.mkdir(), "unable to open database file"),
}


@pytest.mark.parametrize("make", UNUSABLE.values(), ids=UNUSABLE.keys())
@pytest.mark.parametrize("command", [["cases", "list"], ["doctor"], ["db", "upgrade"], ["verify"]], ids=" ".join)
def test_a_database_file_that_cannot_be_used_is_one_line_on_every_command(tmp_path, monkeypatch, capsys, make, command):
    maker, reason = make
    path = tmp_path / "store.db"
    maker(path)
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("COLLECTFLOW_DATA_DIR", str(tmp_path))
    runtime.forget()
    try:
        code, err = run_cli(monkeypatch, capsys, *command)
    finally:
        runtime.forget()
    refused_in_one_line(code, err, f"the database sqlite:///{path} cannot be used: {reason}")


def test_a_key_dir_without_the_stores_chain_key_writes_nothing(cli_db, monkeypatch, capsys, tmp_path_factory):
    case_id, store = cli_db
    before = store.digest()
    monkeypatch.setenv("COLLECTFLOW_KEY_DIR", str(tmp_path_factory.mktemp("an-empty-key-dir")))  # not inside the data dir
    runtime.forget()
    code, err = run_cli(monkeypatch, capsys, *pay_args(case_id))
    refused_in_one_line(code, err, "the chain key is not the one this store's events were written with")
    assert store.digest() == before


def test_a_time_with_a_utc_offset_after_today_in_the_lenders_zone_is_refused(cli_db, monkeypatch, capsys):
    case_id, store = cli_db
    before = store.digest()
    today = runtime.app().today()
    late = f"{today.isoformat()}T23:30-10:00"  # today in Honolulu, tomorrow (or later) in the lender's zone
    code, err = run_cli(monkeypatch, capsys, "contact", case_id, "--channel", "call", "--outcome", "no_answer", "--at", late, "--operator", "op-li")
    refused_in_one_line(code, err, "is after today")
    assert store.digest() == before


def test_a_seal_of_a_date_never_closed_and_a_demo_past_today_are_refused_before_writing(cli_db, monkeypatch, capsys, tmp_path):
    code, err = run_cli(monkeypatch, capsys, "seal", "--date", "2027-01-01")
    refused_in_one_line(code, err, "--date: 2027-01-01 is not a closed business date")
    code, err = run_cli(monkeypatch, capsys, "demo", "--size", "10", "--days", "5", "--start", "2099-01-01", "--data-dir", str(tmp_path / "demo"))
    refused_in_one_line(code, err, "after today")
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("content", [b"[]", b'{"format": "collectflow-case-export/1", "events": null}',
                                     b'{"format": "collectflow-case-export/1", "events": [{"seq": 1}]}'])
def test_an_export_of_the_wrong_shape_is_one_line(tmp_path, monkeypatch, capsys, content):
    path = tmp_path / "case.json"
    path.write_bytes(content)
    code, err = run_cli(monkeypatch, capsys, "verify-export", str(path))
    refused_in_one_line(code, err, "collectflow-case-export/1 file")


def test_a_policy_file_that_is_not_utf8_is_one_line(cli_db, monkeypatch, capsys, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_bytes(b"\xff\xfe\x00bad")
    code, err = run_cli(monkeypatch, capsys, "whatif", "--policy", str(policy))
    refused_in_one_line(code, err, "not UTF-8 text")


def test_verify_of_a_case_never_stored_is_a_mistyped_reference_not_a_finding(cli_db, monkeypatch, capsys):
    code, err = run_cli(monkeypatch, capsys, "verify", "CF9999999")
    refused_in_one_line(code, err, "no case with id or contract number 'CF9999999'")


def test_verify_refuses_a_seals_folder_or_key_file_that_is_not_there_before_checking_anything(cli_db, monkeypatch, capsys, tmp_path):
    (tmp_path / "a-file").write_text("x")
    for args, needle in (
        (["--seals", str(tmp_path / "nowhere")], "nowhere: no such folder"),
        (["--seals", str(tmp_path / "a-file")], "a-file: a file, not a folder"),
        (["--seals", str(tmp_path), "--public-key", str(tmp_path / "none.pub")], "none.pub: no such file"),
    ):
        monkeypatch.setattr(sys, "argv", ["collectflow", "verify", *args])
        with pytest.raises(SystemExit) as ended:
            cli.main()
        captured = capsys.readouterr()
        refused_in_one_line(ended.value.code, captured.err, needle)
        assert "verified" not in captured.out  # refused before the pass over the store, not after it


@pytest.mark.parametrize("command", [["case", "show"], ["case", "replay"], ["case", "export", "--out", "case.json"]], ids=" ".join)
def test_a_case_viewed_as_of_a_day_after_today_or_before_it_opened_is_one_line(cli_db, monkeypatch, capsys, tmp_path, command):
    case_id, _ = cli_db
    monkeypatch.chdir(tmp_path)
    tomorrow = (runtime.app().today() + timedelta(days=1)).isoformat()
    code, err = run_cli(monkeypatch, capsys, *command[:2], case_id, *command[2:], "--as-of", tomorrow)
    refused_in_one_line(code, err, "is after today")
    if command[1] != "show":  # show values the case on any day it existed; before it, no events to replay
        code, err = run_cli(monkeypatch, capsys, *command[:2], case_id, *command[2:], "--as-of", "2020-01-01")
        refused_in_one_line(code, err, "--as-of: 2020-01-01 is before case")
    assert not (tmp_path / "case.json").exists()


def test_retry_case_to_a_date_the_case_is_past_already_is_refused(cli_db, monkeypatch, capsys):
    case_id, store = cli_db
    before = store.digest()
    code, err = run_cli(monkeypatch, capsys, "retry-case", case_id, "--date", "2024-01-01")
    refused_in_one_line(code, err, "2024-01-01 is before case")
    assert store.digest() == before


@pytest.mark.parametrize(
    "args, needles",
    [
        (["cases", "list", "--dpd-min", "50", "--dpd-max", "10"], ("--dpd-min 50", "--dpd-max 10")),
        (["cases", "list", "--bucket", "M1", "--dpd-min", "50"], ("--bucket M1", "--dpd-min 50")),
        (["cases", "list", "--bucket", "M7+", "--dpd-max", "90"], ("--bucket M7+", "--dpd-max 90")),
        (["cases", "list", "--json", "--csv"], ("--json", "--csv")),
        (["calls", "list", "--json", "--csv"], ("--json", "--csv")),
        (["calls", "list", "--explain", "--csv"], ("--explain", "--csv")),
        (["visits", "list", "--json", "--csv"], ("--json", "--csv")),
        (["agency", "report", "--from", "2024-03-01", "--to", "2024-02-01"], ("--from", "--to")),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_list_filters_that_contradict_each_other_are_refused_naming_both(cli_db, monkeypatch, capsys, args, needles):
    code, err = run_cli(monkeypatch, capsys, *args)
    refused_in_one_line(code, err, needles[0])
    assert all(needle in err for needle in needles), err
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "args, needles",
    [
        (["cases", "list", "--dpd-min", "-1"], ("--dpd-min: '-1' is refused", "greater than or equal to 0")),
        (["calls", "list", "--limit", "zero"], ("--limit: 'zero' is refused", "integer")),
        (["advance", "--batch-size", "0"], ("--batch-size: '0' is refused", "greater than or equal to 1")),
        (["pay", "CASE-000001", "100.00", "--payment-id", "BANK-1", "--operator", "op-li"], ("Missing option '--on'",)),
        (["cases", "list", "--dpd-mn", "3"], ("--dpd-mn", "--dpd-min")),
        (["cases", "lst"], ("No such command 'lst'",)),
        (["--no-such-option"], ("--no-such-option",)),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_a_usage_error_typer_finds_itself_is_one_line_too(cli_db, monkeypatch, capsys, args, needles):
    case_id, store = cli_db
    before = store.digest()
    code, err = run_cli(monkeypatch, capsys, *args)
    refused_in_one_line(code, err, needles[0])
    assert all(needle in err for needle in needles), err
    assert "╭" not in err and "Usage:" not in err
    assert store.digest() == before


@pytest.mark.parametrize(
    "args, needle, field",
    [
        (["promise", "{case}", "100.00", "--by", "2026-13-01", "--on", OVERDUE.isoformat(), "--operator", "op-li"], "--by: '2026-13-01'", "promised_on"),
        (["promise", "{case}", "100.00", "--by", OVERDUE.isoformat(), "--on", "2099-12-31", "--operator", "op-li"], "--on: 2099-12-31 is after today", "made_on"),
        (["contact", "{case}", "--channel", "call", "--outcome", "connected", "--at", "2099-12-31T10:00", "--operator", "op-li"],
         "--at: 2099-12-31 is after today", "contacted_at"),
        (["retry-case", "{case}", "--date", "2099-12-31"], "--date: 2099-12-31 is after today", "business_date"),
        (["retry-case", "{case}", "--date", "2024-01-01"], "--date: 2024-01-01 is before case", "business_date"),
        (["visits", "report", "{case}", "--collectors", "op-a,op-b", "--outcome", "met", "--at", "2026-07-01", "--operator", "op-li"],
         "--at: '2026-07-01'", "visited_at"),
    ],
    ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else "",
)
def test_a_refusal_names_the_option_typed_not_the_field_it_fills(cli_db, monkeypatch, capsys, args, needle, field):
    case_id, store = cli_db
    before = store.digest()
    code, err = run_cli(monkeypatch, capsys, *(a.replace("{case}", case_id) for a in args))
    refused_in_one_line(code, err, needle)
    assert field not in err
    assert store.digest() == before


@pytest.mark.parametrize("claim", ["12,34", "１００", "1e5", "12.345", "0x10", "1_000", "NaN", "-5"])
def test_fees_reads_a_claim_as_every_other_command_reads_an_amount(monkeypatch, capsys, claim):
    code, err = run_cli(monkeypatch, capsys, "fees", claim)
    refused_in_one_line(code, err, f"claim: {claim!r}")
    code, err = run_cli(monkeypatch, capsys, "pay", "CASE-1", claim, "--on", "2026-01-05", "--payment-id", "P-1", "--operator", "op-li")
    refused_in_one_line(code, err, f"amount: {claim!r}")  # the same refusal, before any database is opened



@pytest.mark.parametrize(
    "command",
    [["cases", "list"], ["calls", "list"], ["case", "show", "CF0000001"], ["verify"], ["doctor"], ["report"], ["agency", "list"]],
    ids=" ".join,
)
def test_a_database_path_that_does_not_exist_is_one_line_and_nothing_is_created(tmp_path, monkeypatch, capsys, command):
    path = tmp_path / "no-such-folder" / "store.db"
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("COLLECTFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLLECTFLOW_KEY_DIR", str(tmp_path / "keys"))
    runtime.forget()
    try:
        code, err = run_cli(monkeypatch, capsys, *command)
    finally:
        runtime.forget()
    refused_in_one_line(code, err, f"there is no database at {path}")
    assert "collectflow db upgrade" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no folder, no empty file, no key


def test_db_upgrade_still_creates_the_database_its_url_names(tmp_path, monkeypatch, capsys):
    path = tmp_path / "new-folder" / "store.db"
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", f"sqlite:///{path}")
    runtime.forget()
    try:
        code, err = run_cli(monkeypatch, capsys, "db", "upgrade")
    finally:
        runtime.forget()
    assert code == 0, err
    assert path.exists()


def test_a_report_or_credit_export_of_a_date_before_the_first_close_is_refused_and_writes_nothing(cli_db, monkeypatch, capsys, tmp_path):
    _, store = cli_db
    out = tmp_path / "credit.csv"
    code, err = run_cli(monkeypatch, capsys, "report", "--as-of", OVERDUE.isoformat(), "--out", str(tmp_path / "r1"))
    refused_in_one_line(code, err, f"--as-of: {OVERDUE} has not been closed: no business date has been closed yet")
    store.begin_business_day(OVERDUE)
    store.finish_business_day(OVERDUE, advanced=1, stuck=0)
    before = (OVERDUE - timedelta(days=40)).isoformat()
    code, err = run_cli(monkeypatch, capsys, "report", "--as-of", before, "--out", str(tmp_path / "r2"))
    refused_in_one_line(code, err, f"--as-of: {before} is before the first closed business date {OVERDUE}")
    month = f"{OVERDUE - timedelta(days=40):%Y-%m}"
    code, err = run_cli(monkeypatch, capsys, "credit-report", "--month", month, "--out", str(out))
    refused_in_one_line(code, err, f"--month: {month} ended before the first closed business date {OVERDUE}")
    assert not out.exists() and not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_a_close_of_a_date_before_the_last_closed_one_is_refused_and_writes_nothing(cli_db, monkeypatch, capsys):
    _, store = cli_db
    store.begin_business_day(OVERDUE)
    store.finish_business_day(OVERDUE, advanced=1, stuck=0)
    before, earlier = store.digest(), OVERDUE - timedelta(days=3)
    code, err = run_cli(monkeypatch, capsys, "advance", "--date", earlier.isoformat())
    refused_in_one_line(
        code, err,
        f"--date: {earlier} is before the last closed business date {OVERDUE}; days close in order: "
        f"give {OVERDUE} (closed again, its stuck cases retried) or a later date",
    )
    assert store.digest() == before and store.last_closed_business_date() == OVERDUE


def test_a_case_retried_to_a_date_after_the_last_close_is_refused_and_writes_nothing(cli_db, monkeypatch, capsys):
    case_id, store = cli_db
    store.begin_business_day(OVERDUE)
    store.finish_business_day(OVERDUE, advanced=1, stuck=0)
    before, later = store.digest(), OVERDUE + timedelta(days=5)
    code, err = run_cli(monkeypatch, capsys, "retry-case", case_id, "--date", later.isoformat())
    refused_in_one_line(
        code, err,
        f"--date: {later} is after the last business date closed, {OVERDUE}: a case is retried up to a date the close ran for, "
        f"not ahead of the book; close {later} first (collectflow advance), or give {OVERDUE} or earlier",
    )
    assert store.digest() == before


def test_deactivating_an_operator_twice_says_it_is_already_inactive(cli_db, monkeypatch, capsys):
    _, store = cli_db
    assert run_cli(monkeypatch, capsys, "operators", "add", "sup-1", "--role", "supervisor")[0] == 0
    assert run_cli(monkeypatch, capsys, "operators", "add", "op-li", "--role", "collector", "--operator", "sup-1")[0] == 0
    assert run_cli(monkeypatch, capsys, "operators", "deactivate", "op-li", "--operator", "sup-1")[0] == 0
    before = store.digest(), store.operator_changes()
    code, err = run_cli(monkeypatch, capsys, "operators", "deactivate", "op-li", "--operator", "sup-1")
    refused_in_one_line(code, err, "operator 'op-li' is already inactive; nothing to change")
    assert (store.digest(), store.operator_changes()) == before
    assert [(o.operator_id, o.active) for o in store.operators()] == [("op-li", False), ("sup-1", True)]


AGENCY_RATES = "M4-M6=0.15,M7+=0.25,written_off=0.35"


def add_agency(monkeypatch, capsys, name: str, licence: str) -> tuple[int, str]:
    return run_cli(monkeypatch, capsys, "agency", "add", name, "--licence", licence, "--capacity", "5", "--rates", AGENCY_RATES, "--operator", "sup-1")


def test_a_contact_by_an_agency_that_is_not_registered_is_refused_naming_it(cli_db, monkeypatch, capsys):
    case_id, store = cli_db
    contact = ["contact", case_id, "--channel", "call", "--outcome", "no_answer", "--operator", "op-li"]
    before = store.digest()
    code, err = run_cli(monkeypatch, capsys, *contact, "--at", f"{OVERDUE}T10:00", "--by", "agency:acme")
    refused_in_one_line(code, err, "--by: agency 'acme' is not registered")
    assert "AGENCY-POOL" in err and "collectflow agency list" in err  # no registry: the policy's rotation list
    assert store.digest() == before
    assert add_agency(monkeypatch, capsys, "ACME", "L-1")[0] == 0
    for by in (["--by", "agency:acme"], ["--by", "agency:AGENCY-POOL"], ["--party", "agency:beta"]):
        code, err = run_cli(monkeypatch, capsys, *contact, "--at", f"{OVERDUE}T10:00", *by)
        refused_in_one_line(code, err, "is not registered (registered: ACME); list agencies with: collectflow agency list")
    assert store.digest() == before
    code, err = run_cli(monkeypatch, capsys, *contact, "--at", f"{OVERDUE}T10:00", "--by", "agency:ACME")
    assert code == 0, err
    assert [e.by for e in store.events(case_id) if e.type == "ContactRecorded"] == ["agency:ACME"]


def test_an_agency_is_not_registered_with_another_ones_licence_or_its_name_in_other_letters(cli_db, monkeypatch, capsys):
    _, store = cli_db
    assert add_agency(monkeypatch, capsys, "NORTH", "JR-110-2024-017")[0] == 0
    code, err = add_agency(monkeypatch, capsys, "north", "JR-320-2023-042")
    refused_in_one_line(code, err, "agency: 'north' differs only in letter case from 'NORTH', already registered")
    code, err = add_agency(monkeypatch, capsys, "SOUTH", "jr-110-2024-017")
    refused_in_one_line(code, err, "--licence: 'jr-110-2024-017' is already the licence of agency 'NORTH'")
    assert [(a.name, a.licence_no) for a in store.agencies()] == [("NORTH", "JR-110-2024-017")]
    assert add_agency(monkeypatch, capsys, "SOUTH", "JR-320-2023-042")[0] == 0


@pytest.mark.parametrize("args", [[], ["--json"], ["--date", OVERDUE.isoformat()], ["--date", OVERDUE.isoformat(), "--json"]], ids=" ".join)
def test_a_worker_with_no_close_to_join_says_so_on_stderr_and_exits_1(cli_db, monkeypatch, capsys, args):
    _, store = cli_db
    before = store.digest()
    monkeypatch.setenv("COLLECTFLOW_JOIN_SECONDS", "0")
    runtime.forget()
    monkeypatch.setattr(sys, "argv", ["collectflow", "advance", "--worker", *args])
    with pytest.raises(SystemExit) as ended:
        cli.main()
    out, err = capsys.readouterr()
    assert ended.value.code == 1, err
    assert err.startswith("no close to join: waited 0 s (COLLECTFLOW_JOIN_SECONDS)") and len(err.splitlines()) == 1, err
    assert (json.loads(out) == {"role": "worker", "dates": []}) if "--json" in args else out == "", out
    assert store.digest() == before


@pytest.mark.parametrize("channel, outcome", [("visit", "invalid_number"), ("sms", "busy"), ("letter", "refused_to_talk")])
def test_a_contact_outcome_its_channel_cannot_have_is_refused_by_the_cli_and_the_form_alike(cli_db, monkeypatch, capsys, channel, outcome):
    case_id, store = cli_db
    before = store.digest()
    at = f"{OVERDUE}T10:00"
    code, err = run_cli(monkeypatch, capsys, "contact", case_id, "--channel", channel, "--outcome", outcome, "--at", at,
                        "--collectors", "2", "--operator", "op-li")
    refused_in_one_line(code, err, f"--outcome: '{outcome}' is not an outcome of channel '{channel}', which takes connected, promise_to_pay")
    with pytest.raises(ValidationError, match=f"'{outcome}' is not an outcome of channel '{channel}'"):
        ContactAttempt(case=case_id, operator="op-li", channel=channel, outcome=outcome, contacted_at=at, collectors=2)
    assert store.digest() == before


def test_the_demos_collectors_only_record_outcomes_a_call_can_have():
    from flows.demo import CALL_OUTCOMES
    from states.vocabulary import CHANNEL_OUTCOMES, ContactChannel

    assert set(CALL_OUTCOMES) <= set(CHANNEL_OUTCOMES[ContactChannel.CALL])  # the demo's contacts are all calls (flows/demo.py)


@pytest.mark.parametrize("command", [["payments", "import", "{file}", "--operator", "op-li"], ["loans", "import", "{file}"]], ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("content", [None, "a,b\n1,2\n"], ids=["missing", "no required columns"])
def test_an_import_refused_prints_its_one_line_and_nothing_else_on_stderr(cli_db, monkeypatch, capsys, tmp_path, command, content):
    _, store = cli_db
    before = store.digest()
    path = tmp_path / "book.csv"
    if content is not None:
        path.write_text(content)
    code, err = run_cli(monkeypatch, capsys, *(a.replace("{file}", str(path)) for a in command))
    refused_in_one_line(code, err, "book.csv")
    assert err.count("\n") == 1 and err.startswith("error: "), repr(err)  # no empty line left by the progress bar
    assert store.digest() == before


def roster(monkeypatch, capsys) -> None:
    """A roster in use: supervisor sup-1, collector op-li, and col1, a collector deactivated."""
    assert run_cli(monkeypatch, capsys, "operators", "add", "sup-1", "--role", "supervisor")[0] == 0  # the first needs no --operator
    for operator, role in (("op-li", "collector"), ("col1", "collector")):
        assert run_cli(monkeypatch, capsys, "operators", "add", operator, "--role", role, "--operator", "sup-1")[0] == 0
    assert run_cli(monkeypatch, capsys, "operators", "deactivate", "col1", "--operator", "sup-1")[0] == 0


def test_loans_import_needs_an_active_supervisor_once_the_roster_is_in_use(cli_db, monkeypatch, capsys, tmp_path):
    from tests.integration.test_loanbook import SAMPLE

    _, store = cli_db
    roster(monkeypatch, capsys)
    path = tmp_path / "book.csv"
    path.write_text("".join(SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:2]), encoding="utf-8")
    before = store.digest()
    for operator, needle in (([], "--operator: none given"), (["--operator", "col1"], "--operator: 'col1' is deactivated"),
                          (["--operator", "op-zhao"], "--operator: 'op-zhao' is not on"), (["--operator", "op-li"], "--operator: 'op-li' is a collector")):
        code, err = run_cli(monkeypatch, capsys, "loans", "import", str(path), *operator)
        refused_in_one_line(code, err, needle)
        assert "collectflow loans import needs a" in err and "supervisor" in err and "import-loans" not in err, err
        assert store.digest() == before and not (tmp_path / "book.rejects.csv").exists()
    code, err = run_cli(monkeypatch, capsys, "loans", "import", str(path), "--operator", "sup-1")
    assert code == 0, err
    assert store.events(store.resolve_case_id("HT2026-0001"))[0].actor == "sup-1"  # the opening; catch-up reviews are the system's


def test_case_rebuild_needs_an_active_supervisor_once_the_roster_is_in_use(cli_db, monkeypatch, capsys):
    case_id, store = cli_db
    roster(monkeypatch, capsys)
    before = store.digest()
    for operator, needle in (("col1", "--operator: 'col1' is deactivated"), ("op-zhao", "--operator: 'op-zhao' is not on"),
                             ("op-li", "--operator: 'op-li' is a collector")):
        code, err = run_cli(monkeypatch, capsys, "case", "rebuild", case_id, "--operator", operator, "--reason", "corrupt row")
        refused_in_one_line(code, err, needle)
        assert "collectflow case rebuild needs a" in err and "supervisor" in err and "rebuild-case" not in err, err
        assert store.digest() == before
    assert not [e for e in store.events(case_id) if e.type == "CaseRebuilt"]
    code, err = run_cli(monkeypatch, capsys, "case", "rebuild", case_id, "--operator", "sup-1", "--reason", "corrupt row")
    assert code == 0, err
    assert [e.actor for e in store.events(case_id) if e.type == "CaseRebuilt"] == ["sup-1"]


def refused_with(code: int, err: str, line: str) -> None:
    """Exit 2 and exactly this one line on stderr."""
    assert code == 2, err
    assert err.splitlines() == [line], err


def test_a_refusal_made_after_parsing_names_the_option_typed_not_the_field_it_fills(cli_db, monkeypatch, capsys):
    """The domain and the handlers refuse a value by its field (``business_date``, ``promised_on``);
    the CLI says which option the user gave it with, for every command alike."""
    case_id, store = cli_db
    before = store.digest()
    today = runtime.app().today()
    closed = store.load_one(case_id).accrued_through
    future = f"2099-12-31 is after today ({today} in the lender's time zone); nothing is dated in the future"
    at = ["contact", case_id, "--channel", "call", "--outcome", "connected", "--operator", "op-li"]
    visit = ["visits", "report", case_id, "--outcome", "met", "--operator", "op-li"]
    for args, line in (
        (["advance", "--date", "2099-12-31"], f"error: --date: {future}"),
        (["credit-report", "--month", "2024-02", "--as-of", "2099-12-31"], f"error: --as-of: {future}"),
        (["credit-report", "--month", "2024-02", "--as-of", "2024-02-01"],
         "error: --as-of: 2024-02-01 is before the end of 2024-02 (2024-02-29); records are aged as of a later date"),
        (["promise", case_id, "100.00", "--by", "2024-04-01", "--on", OVERDUE.isoformat(), "--operator", "op-li"],
         f"error: --by: 2024-04-01 must be between {OVERDUE} and 2024-03-10 for case {case_id} (a promise to pay is at most 14 days ahead)"),
        (["pause", case_id, "--reason", "hardship", "--until", "2024-02-01", "--on", OVERDUE.isoformat(), "--operator", "op-li"],
         f"error: --until: 2024-02-01 must be after {OVERDUE} and no later than 2024-04-25 for case {case_id} (a pause is at most 60 days)"),
        ([*at, "--at", "2024-01-05T10:00"],
         f"error: --at: contact dated 2024-01-05 is before the case's last closed date {closed}; date it {closed} or later (case {case_id})"),
        ([*visit, "--collectors", "op-a,op-b", "--at", "2024-01-05T10:00"],
         f"error: --at: visit dated 2024-01-05 is before the case's last closed date {closed}; date it {closed} or later (case {case_id})"),
        ([*visit, "--collectors", "op-a,op-b", "--at", f"{OVERDUE}T23:30"],
         f"error: --at: no visit between 22:00 and 08:00 borrower local time, got 23:30 (case {case_id})"),
        ([*visit, "--collectors", "op-a", "--at", f"{OVERDUE}T10:00"],
         f"error: --collectors: a field visit needs at least 2 collectors, got op-a (case {case_id})"),
        (["promise", case_id, "100.00", "--by", OVERDUE.isoformat(), "--on", "2024-01-05", "--operator", "op-li"],
         f"error: --on: promise dated 2024-01-05 is before the case's last closed date {closed}; date it {closed} or later (case {case_id})"),
    ):
        code, err = run_cli(monkeypatch, capsys, *args)
        refused_with(code, err, line)
    assert store.digest() == before


def test_a_permission_refusal_names_the_command_typed_not_its_deployment(cli_db, monkeypatch, capsys):
    case_id, store = cli_db
    roster(monkeypatch, capsys)
    before = store.digest()
    code, err = run_cli(monkeypatch, capsys, "write-off", case_id, "--reason", "not worth it", "--on", OVERDUE.isoformat(), "--operator", "op-li")
    refused_with(code, err, "error: --operator: 'op-li' is a collector; collectflow write-off needs a supervisor")
    code, err = run_cli(monkeypatch, capsys, "lawsuit", "file", case_id, "--on", OVERDUE.isoformat(), "--operator", "col1")
    refused_with(code, err, "error: --operator: 'col1' is deactivated on the operator roster; collectflow lawsuit file needs an active supervisor on the operator roster")
    assert store.digest() == before


@pytest.mark.parametrize("group", [[], ["cases"], ["operators"], ["db"], ["case"], ["lawsuit"], ["loans"]], ids=lambda g: " ".join(g) or "collectflow")
def test_a_command_group_run_with_nothing_after_it_prints_its_help_and_exits_0(monkeypatch, capsys, group):
    monkeypatch.setattr(sys, "argv", ["collectflow", *group])
    with pytest.raises(SystemExit) as ended:
        cli.main()
    out, err = capsys.readouterr()
    assert (ended.value.code or 0) == 0, (out, err)
    assert err == ""
    assert "Usage: " in out and f"{' '.join(group)} [OPTIONS] COMMAND [ARGS]..." in out and "Commands" in out
