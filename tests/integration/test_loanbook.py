"""The loan book import on SQLite and PostgreSQL: every validation rule, idempotence on the
contract number, amendments, encryption at rest, the revealed read recorded, and a loan
imported with its dues in the past equal to one followed day by day."""

from __future__ import annotations

import csv
import gzip
import json
import re
import stat
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from flows.files import FileError
from flows.handlers.loans import LoanBookError, borrower_masked, import_file, reveal
from models import borrowers as borrower_rows
from flows.bootstrap import bootstrap
from flows.handlers.cases import advance_batch, book_loans
from models.audit import case_view, verify
from models.crypto import CryptoKeyError, Keyring, load_keyring
from models.errors import StoreError
from models.tables import borrowers, cases, events, loans
from states.caps import DEFAULT_LPR_TABLE
from states.events import BorrowerDetailsAmended, PersonalDataRead
from states.loanfile import parse_row
from states.money import round_fen
from states.policy import CollectionPolicy
from tests.loan_rows import an_id, row

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "docs" / "sample-loans.csv"
POLICY = CollectionPolicy()
KEYRING = Keyring.from_secret("integration-tests-secret-key-0123456789")
TODAY = date(2026, 11, 28)
MONEY_KEYS = (
    "principal_outstanding", "overdue_principal", "contract_interest_due", "penalty_interest", "compound_interest",
    "late_fees", "costs", "unenforceable", "total_due",
)
PERSONAL = ("borrower_name", "national_id", "phone", "address", "guarantor_name", "guarantor_phone")


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(store, path, **kwargs):
    kwargs.setdefault("business_date", TODAY)
    return import_file(store, path, policy=POLICY, keyring=kwargs.pop("keyring", KEYRING), **kwargs)


def count(store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def database_text(store) -> str:
    """Every value of every table, as text: what someone with a copy of the database could read."""
    parts: list[str] = []
    with store.engine.connect() as conn:
        for table in (loans, cases, events, borrowers):
            for record in conn.execute(select(table)):
                parts.extend(str(value) for value in record)
    return "\n".join(parts)


# --------------------------------------------------------------------------- the sample file


def test_the_readme_sample_books_seventeen_loans_and_rejects_three_rows_naming_each_problem(store, tmp_path):
    sample = tmp_path / "sample-loans.csv"
    sample.write_bytes(SAMPLE.read_bytes())
    report = run(store, sample)
    assert (report.rows, report.booked, report.unchanged, report.rejected) == (20, 17, 0, 3)
    messages = "\n".join(report.rejections)
    assert "row 7, column annual_rate: '1.8' is 1 or more" in messages and "0.18 for 18 %" in messages
    assert "row 13, column national_id: '3301*********5432' has 17 characters, not 18" in messages
    assert "row 13, column phone: '' is missing (required)" in messages
    assert "row 19, column repayment_method: 'balloon' is not one of equal_installment, equal_principal, interest_first" in messages
    assert "row 19, column first_due_on: '2026-09-15' is not after disbursed_on 2026-10-15" in messages
    assert "33010619880715432" not in messages  # the bad id itself is shown masked

    rejects = Path(report.rejects_file)
    assert rejects == tmp_path / "sample-loans.rejects.csv"
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    rejected = list(csv.DictReader(open(rejects, encoding="utf-8")))
    assert [r["contract_no"] for r in rejected] == ["HT2026-0018", "HT2026-0019", "HT2026-0020"]
    assert [r["reject_row"] for r in rejected] == ["7", "13", "19"]

    # fixed in the rejects file and imported again: the extra columns are ignored
    fixes = {"HT2026-0018": {"annual_rate": "0.18"},
             "HT2026-0019": {"national_id": an_id("33010619880715432"[:17]), "phone": "13700001234"},
             "HT2026-0020": {"repayment_method": "equal_installment", "first_due_on": "2026-11-15"}}
    for r in rejected:
        r.update(fixes[r["contract_no"]])
    fixed = write_csv(tmp_path / "fixed.csv", rejected)
    again = run(store, fixed)
    assert (again.booked, again.rejected, again.ignored_columns) == (3, 0, [])
    assert verify(store.engine).ok


def test_importing_the_same_file_again_books_nothing(store, tmp_path):
    path = write_csv(tmp_path / "loans.csv", [row(n) for n in range(1, 6)])
    first = run(store, path)
    digest = store.digest()
    second = run(store, path)
    assert (first.booked, second.booked, second.unchanged) == (5, 0, 5)
    assert store.digest() == digest
    # the same loans spelled differently are the same loans
    respelled = write_csv(tmp_path / "respelled.csv", [row(n, principal="12000", annual_rate="0.180", phone="+86 138-1234-" + f"{n:04d}") for n in range(1, 6)])
    assert run(store, respelled).unchanged == 5
    assert store.digest() == digest


def test_json_lines_books_the_same_loans_as_csv(store, tmp_path):
    lines = []
    for n in (1, 2):
        values: dict = row(n)
        values.update(principal=12000, annual_rate=0.18, term_months=12, compound_interest=False, address=None)
        lines.append(json.dumps(values, ensure_ascii=False))
    lines.insert(1, "{not json")
    lines.append("[1, 2]")
    path = tmp_path / "loans.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run(store, path)
    assert (report.booked, report.rejected) == (2, 2)
    assert report.rejections[0].startswith("row 2: is not JSON")
    assert report.rejections[1] == "row 4: is not a JSON object {...}"
    assert store.booked_loans(["HT-000001"])["HT-000001"][0]["annual_rate"] == "0.18"
    rejected = [json.loads(line) for line in Path(report.rejects_file).read_text(encoding="utf-8").splitlines()]
    assert rejected[0] == {"line": "{not json", "reject_row": 2, "reject_reason": report.rejections[0]}
    # gzipped, the same file books nothing new
    zipped = tmp_path / "loans.jsonl.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    assert run(store, zipped, rejects=tmp_path / "r.jsonl").unchanged == 2


# --------------------------------------------------------------------------- a file that cannot be read


def test_a_file_that_cannot_be_read_is_refused_whole(store, tmp_path):
    with pytest.raises(FileError, match="use .csv or .jsonl"):
        run(store, write_csv(tmp_path / "loans.xlsx", [row()]))
    with pytest.raises(FileError, match="lacks the required column.s. phone"):
        r = row()
        del r["phone"]
        run(store, write_csv(tmp_path / "nophone.csv", [r]))
    with pytest.raises(FileError, match="the file is empty"):
        (tmp_path / "empty.csv").write_text("", encoding="utf-8")
        run(store, tmp_path / "empty.csv")
    gbk = tmp_path / "gbk.csv"
    with open(gbk, "w", newline="", encoding="gbk") as handle:
        writer = csv.DictWriter(handle, list(row()))
        writer.writeheader()
        writer.writerow(row())
    wrong = run(store, gbk)  # read as UTF-8: each row is refused, naming the way out
    assert (wrong.booked, wrong.rejected) == (0, 1) and "--encoding gbk" in wrong.rejections[0]
    assert count(store, loans) == 0
    assert run(store, gbk, encoding="gbk").booked == 1  # as the message says


def test_a_row_with_too_many_values_is_rejected(store, tmp_path):
    path = write_csv(tmp_path / "loans.csv", [row(1)])
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(",".join(row(2).values()) + ",extra\n")
    report = run(store, path)
    assert report.rejections == ["row 3: has 13 values but the header has 12 columns"]


# --------------------------------------------------------------------------- changed rows


def test_a_changed_financial_term_is_refused_even_with_amend(store, tmp_path):
    run(store, write_csv(tmp_path / "a.csv", [row(1)]))
    digest = store.digest()
    for amend in (False, True):
        report = run(store, write_csv(tmp_path / "b.csv", [row(1, annual_rate="0.2", principal="15000")]), amend=amend)
        assert report.rejected == 1 and report.amended == 0
        message = report.rejections[0]
        assert "column principal: '15000.00' differs from the booked 12000.00" in message
        assert "column annual_rate: '0.2' differs from the booked 0.18" in message
        assert "never changed by an import" in message and "new contract_no" in message
    assert store.digest() == digest


def test_changed_contact_details_are_refused_then_amended_with_an_event(store, tmp_path):
    run(store, write_csv(tmp_path / "a.csv", [row(1)]))
    changed = write_csv(tmp_path / "b.csv", [row(1, phone="13998765432", address="上海市浦东新区世纪大道100号")])
    digest = store.digest()
    refused = run(store, changed)
    assert refused.rejected == 1 and store.digest() == digest
    assert "column phone: '139****5432' differs from the booked 138****0001" in refused.rejections[0]
    assert "--amend" in refused.rejections[0]

    amended = run(store, changed, amend=True, actor="op-5")
    assert (amended.amended, amended.rejected) == (1, 0)
    event = store.events("C-HT-000001")[-1]
    assert isinstance(event, BorrowerDetailsAmended) and event.actor == "op-5"
    assert [(c.field, c.before, c.after) for c in event.changes] == [
        ("phone", "138****0001", "139****5432"),
        ("address", "北京市东城区****", "上海市浦东新****"),
    ]
    assert event.source == "b.csv row 2"
    assert reveal(store, KEYRING, "HT-000001", "phone", operator="op-5", purpose="call", on=TODAY) == "13998765432"
    assert run(store, changed, amend=True).unchanged == 1  # amending again changes nothing
    assert verify(store.engine).ok


def test_the_national_id_of_a_booked_loan_never_changes(store, tmp_path):
    run(store, write_csv(tmp_path / "a.csv", [row(1)]))
    report = run(store, write_csv(tmp_path / "b.csv", [row(1, national_id=an_id("31010119851111123"))]), amend=True)
    assert report.rejected == 1
    assert "column national_id: '3101**********" in report.rejections[0] and "never changes" in report.rejections[0]


def test_one_borrower_id_is_one_person_and_one_person_has_one_borrower_id(store, tmp_path):
    run(store, write_csv(tmp_path / "a.csv", [row(1)]))
    same_person_other_loan = row(2, borrower_id="B000001", national_id=row(1)["national_id"])
    other_person_same_id = row(3, borrower_id="B000001")
    same_id_other_borrower_id = row(4, national_id=row(1)["national_id"])
    report = run(store, write_csv(tmp_path / "b.csv", [same_person_other_loan, other_person_same_id, same_id_other_borrower_id]))
    assert report.booked == 1
    assert "row 3, column national_id" in report.rejections[0] and "borrower_id B000001 on contract HT-000001" in report.rejections[0]
    assert "row 4, column borrower_id: 'B000004' is not the borrower_id B000001" in report.rejections[1]


def test_a_contract_twice_in_one_file_is_booked_once(store, tmp_path):
    path = write_csv(tmp_path / "a.csv", [row(1), row(2), row(1), row(1, principal="9000")])
    report = run(store, path)
    assert (report.booked, report.unchanged, report.rejected) == (2, 1, 1)
    assert "row 5, column principal" in report.rejections[0]


def test_a_chunk_is_booked_whole_or_not_at_all(store, tmp_path, monkeypatch):
    real = borrower_rows.borrower_row

    def broken(keyring, record, match_hash):
        values = real(keyring, record, match_hash)
        if record.contract_no == "HT-000004":
            values["phone_enc"] = None  # the database refuses the row
        return values

    monkeypatch.setattr(borrower_rows, "borrower_row", broken)
    with pytest.raises(StoreError):
        run(store, write_csv(tmp_path / "a.csv", [row(n) for n in range(1, 8)]), chunk_rows=3)
    # the first chunk (1-3) committed; the chunk holding the bad row left nothing behind
    assert [count(store, t) for t in (loans, cases, borrowers)] == [3, 3, 3]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events).where(events.c.case_id == "C-HT-000004")).scalar() == 0
    monkeypatch.undo()
    assert run(store, write_csv(tmp_path / "a.csv", [row(n) for n in range(1, 8)])).booked == 4  # a rerun repairs it


# --------------------------------------------------------------------------- personal data at rest


def test_personal_data_is_stored_only_encrypted_and_masked(store, tmp_path):
    sample = tmp_path / "sample.csv"
    sample.write_bytes(SAMPLE.read_bytes())
    run(store, sample)
    clear = [r[k] for r in csv.DictReader(open(SAMPLE, encoding="utf-8")) for k in PERSONAL if r[k]]
    dump = database_text(store)
    assert clear and not [value for value in clear if value in dump]
    with store.engine.connect() as conn:
        row_ = conn.execute(select(borrowers).where(borrowers.c.contract_no == "HT2026-0002")).mappings().one()
    assert row_["phone_masked"] == "182****8415" and row_["phone_enc"].startswith(f"v1.{KEYRING.key_id}.")
    # the keyed hash finds a person by national id without decrypting
    found = store.borrower_identities([], [KEYRING.match_hash("510102198204267802")])
    assert found == [("HT2026-0002", "B00010554", KEYRING.match_hash("510102198204267802"))]


def test_a_ciphertext_moved_to_another_row_or_a_wrong_key_is_refused(store, tmp_path):
    run(store, write_csv(tmp_path / "a.csv", [row(1), row(2)]))
    with pytest.raises(CryptoKeyError, match="encrypted under key id .* but the secret key in use has id"):
        reveal(store, Keyring.from_secret("another-secret-another-secret-0123"), "HT-000001", "phone", operator="op", purpose="x", on=TODAY)
    with store.engine.begin() as conn:
        token = conn.execute(select(borrowers.c.phone_enc).where(borrowers.c.contract_no == "HT-000002")).scalar_one()
        conn.execute(borrowers.update().where(borrowers.c.contract_no == "HT-000001").values(phone_enc=token))
    with pytest.raises(CryptoKeyError, match="integrity check"):
        reveal(store, KEYRING, "HT-000001", "phone", operator="op", purpose="x", on=TODAY)
    assert not any(isinstance(e, PersonalDataRead) for e in store.events("C-HT-000001"))  # nothing was read


def test_reveal_records_who_read_what_and_show_stays_masked(store, tmp_path):
    run(store, write_csv(tmp_path / "a.csv", [row(1, guarantor_name="李四", guarantor_phone="13998765432")]))
    assert borrower_masked(store, "HT-000001")["phone"] == "138****0001"
    assert reveal(store, KEYRING, "C-HT-000001", "name", operator="collector-7", purpose="call list", on=TODAY) == "张伟"
    assert reveal(store, KEYRING, "HT-000001", "guarantor_phone", operator="collector-7", purpose="call list", on=TODAY) == "13998765432"
    reads = [e for e in store.events("C-HT-000001") if isinstance(e, PersonalDataRead)]
    assert [(e.actor, e.fields, e.purpose) for e in reads] == [
        ("collector-7", ("name",), "call list"), ("collector-7", ("guarantor_phone",), "call list"),
    ]
    with pytest.raises(LoanBookError, match="no address on file"):
        run(store, write_csv(tmp_path / "b.csv", [row(2, address="")]))
        reveal(store, KEYRING, "HT-000002", "address", operator="op", purpose="x", on=TODAY)
    assert verify(store.engine).ok


def test_a_read_dated_before_the_cases_last_closed_date_is_refused_not_redated(store, tmp_path):
    run(store, write_csv(tmp_path / "a.csv", [row(1)]))
    closed = store.load_one("HT-000001").accrued_through
    with pytest.raises(LoanBookError, match=f"personal data read dated 2020-01-01 is before the case's last closed date {closed}"):
        reveal(store, KEYRING, "HT-000001", "phone", operator="op-5", purpose="call", on=date(2020, 1, 1))
    assert not any(isinstance(e, PersonalDataRead) for e in store.events("C-HT-000001"))


def test_a_loan_booked_without_borrower_details_gets_them_by_amendment(store, tmp_path):
    terms = parse_row(row(1), 2, TODAY, DEFAULT_LPR_TABLE).terms
    book_loans(store, [("C-HT-000001", terms)])
    path = write_csv(tmp_path / "a.csv", [row(1)])
    assert "differs from the booked nothing" in run(store, path).rejections[0]
    report = run(store, path, amend=True)
    assert report.amended == 1
    assert borrower_masked(store, "HT-000001")["national_id"] == "1101**********" + row(1)["national_id"][-4:]


def test_the_key_file_is_made_once_owner_only_and_refused_when_others_can_read_it(tmp_path, monkeypatch):
    monkeypatch.delenv("COLLECTFLOW_SECRET_KEY", raising=False)
    monkeypatch.setenv("COLLECTFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLLECTFLOW_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.delenv("COLLECTFLOW_DATABASE_URL", raising=False)
    first = load_keyring()
    key = tmp_path / "keys" / "secret.key"  # never beside the database
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and not (tmp_path / "data" / "secret.key").exists()
    assert load_keyring().key_id == first.key_id  # generated once
    key.chmod(0o644)
    with pytest.raises(CryptoKeyError, match="chmod 600"):
        load_keyring()
    key.chmod(0o600)
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", "postgresql://cf@db/cf")
    assert load_keyring().key_id == first.key_id  # a key file mounted from a secret store: used, never made
    key.unlink()
    with pytest.raises(CryptoKeyError, match="PostgreSQL case store needs it"):
        load_keyring()
    assert not key.exists()
    monkeypatch.setenv("COLLECTFLOW_SECRET_KEY", "x" * 40)
    assert load_keyring().key_id == Keyring.from_secret("x" * 40).key_id
    monkeypatch.setenv("COLLECTFLOW_SECRET_KEY", "short")
    with pytest.raises(CryptoKeyError, match="at least 32"):
        load_keyring()


def test_a_key_left_beside_the_database_is_refused_with_the_command_to_move_it(tmp_path, monkeypatch):
    monkeypatch.delenv("COLLECTFLOW_SECRET_KEY", raising=False)
    monkeypatch.delenv("COLLECTFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLLECTFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLLECTFLOW_KEY_DIR", str(tmp_path / "keys"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret.key").write_text("s" * 48)
    with pytest.raises(CryptoKeyError, match="sits in the data directory, beside the database; move it"):
        load_keyring()
    monkeypatch.setenv("COLLECTFLOW_KEY_DIR", str(tmp_path / "data" / "keys"))
    with pytest.raises(CryptoKeyError, match="inside the data directory"):
        load_keyring()


# --------------------------------------------------------------------------- dues in the past


LOANS = [  # (method, day count, compound, late fee, principal, rate) on month-end due dates
    ("equal_installment", "ACT/360", False, "0", "12000.00", "0.18"),
    ("equal_principal", "ACT/365", True, "30", "30000.00", "0.2399"),
    ("interest_first", "ACT/360", True, "50", "8000.00", "0.22"),
]
DISBURSED = date(2023, 11, 30)
FIRST_DUE = date(2023, 12, 31)  # then 2024-01-31, 2024-02-29 (leap), 2024-03-31 ...
CHECKPOINTS = [date(2024, 1, 15), date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 1), date(2024, 3, 31), date(2024, 6, 30), date(2024, 12, 31), date(2025, 2, 28)]


def past_rows() -> list[dict[str, str]]:
    return [
        row(n, repayment_method=m, day_count=dc, compound_interest=str(c).lower(), late_fee=fee, principal=p,
            annual_rate=r, disbursed_on=DISBURSED.isoformat(), first_due_on=FIRST_DUE.isoformat(), term_months="12")
        for n, (m, dc, c, fee, p, r) in enumerate(LOANS, 1)
    ]


def comparable(store, contract_no: str, as_of: date) -> dict:
    view = case_view(store, contract_no, as_of, POLICY).as_dict()
    history = [(e.seq, e.type, e.business_date, e.payload()) for e in store.events(store.resolve_case_id(contract_no))]
    return {**view, "history": history}


def test_a_loan_imported_with_its_dues_in_the_past_equals_one_followed_day_by_day(engine, tmp_path, db_url):
    """Three ways to reach each checkpoint D (month ends, 29 February 2024): booked at
    disbursement and closed every day to D; imported on D (caught up at import); imported
    at disbursement and closed once for D (``collectflow advance --date D``)."""
    from models.db import make_engine, upgrade
    from models.store import CaseStore

    followed = CaseStore(engine)
    path = write_csv(tmp_path / "past.csv", past_rows())
    assert run(followed, path, business_date=DISBURSED).booked == 3
    ids = [followed.resolve_case_id(f"HT-{n:06d}") for n in (1, 2, 3)]
    day = DISBURSED
    stages_seen: set[str] = set()
    for checkpoint in CHECKPOINTS:
        while day < checkpoint:
            day += timedelta(days=1)
            advance_batch(bootstrap(engine=followed.engine, policy=POLICY), ids, day)
        stages_seen |= {followed.case_row(i).projection.stage for i in ids}
        for way in ("imported on D", "imported before, closed once"):
            other_url = _fresh_database(db_url, tmp_path, f"{checkpoint}-{way[:8]}")
            other_engine = make_engine(other_url)
            upgrade(other_engine)
            other = CaseStore(other_engine)
            try:
                if way == "imported on D":
                    run(other, path, business_date=checkpoint)
                else:
                    run(other, path, business_date=DISBURSED)
                    advance_batch(bootstrap(engine=other.engine, policy=POLICY), ids, checkpoint)  # collectflow advance --date D
                advance_batch(bootstrap(engine=other.engine, policy=POLICY), ids, checkpoint)  # a close of D after it changes nothing
                for contract_no in ("HT-000001", "HT-000002", "HT-000003"):
                    assert comparable(other, contract_no, checkpoint) == comparable(followed, contract_no, checkpoint), (
                        f"{contract_no} {way} at {checkpoint}"
                    )
                assert verify(other.engine).ok
            finally:
                other_engine.dispose()
    assert {"phone", "visit", "outsourced"} <= stages_seen, stages_seen  # the checkpoints cross the stages
    # over a year unpaid: every case went past visits
    assert {followed.case_row(i).projection.stage for i in ids} <= {"outsourced", "litigation", "written_off"}


def _fresh_database(db_url: str, tmp_path: Path, name: str) -> str:
    """Another empty database beside the fixture's: a SQLite file, or a new PostgreSQL schema."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / (re.sub(r'[^0-9a-z-]', '', name) + '.db')}"
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


@pytest.mark.parametrize("as_of", [date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30), date(2025, 2, 28), date(2025, 3, 31)])
def test_accrual_through_a_date_includes_that_date(store, tmp_path, as_of):
    """As of D, principal overdue since its due date d carries DPD(D) = D - d days of penalty
    interest: 10,000 at 12 % x 1.5 / 360 = 5.00 a day, at month ends and in a leap year (the
    rate keeps every charge under the 24 % cap)."""
    due = date(2024, 1, 31)
    loan = row(1, principal="10000.00", annual_rate="0.12", term_months="1", repayment_method="interest_first",
               disbursed_on="2024-01-01", first_due_on=due.isoformat())
    run(store, write_csv(tmp_path / "one.csv", [loan]), business_date=as_of)
    view = case_view(store, "HT-000001", as_of, POLICY)
    dpd = (as_of - due).days
    assert view.projection.dpd(view.as_of) == dpd
    exact = Decimal("10000.00") * Decimal("0.12") * Decimal("1.5") / 360 * dpd
    assert view.projection.penalty_interest == round_fen(exact) == Decimal("5.00") * dpd
    assert view.projection.unenforceable == 0
    if as_of == date(2024, 3, 31):
        assert dpd == 60  # 29 days of February 2024, 31 of March


# --------------------------------------------------------------------------- case show


def test_case_show_takes_a_contract_number_and_prints_every_balance_with_two_places(store, tmp_path, db_url, monkeypatch):
    from flows import runtime
    from flows.cli import app

    run(store, write_csv(tmp_path / "a.csv", past_rows()), business_date=date(2024, 4, 30))
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()
    try:
        result = CliRunner().invoke(app, ["case", "show", "HT-000002", "--as-of", "2024-05-31", "--json"])
    finally:
        runtime.forget()
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert {"case_id", "contract_no", "stage", "dpd", "bucket", "classification", *MONEY_KEYS} <= set(shown)
    assert (shown["case_id"], shown["contract_no"], shown["as_of"]) == ("C-HT-000002", "HT-000002", "2024-05-31")
    for key in MONEY_KEYS:
        assert re.fullmatch(r"-?\d+\.\d\d", shown[key]), (key, shown[key])


# --------------------------------------------------------------------------- the README


def test_the_loans_import_command_reports_masked_and_exits_1_on_rejects(db_url, tmp_path, monkeypatch):
    from flows import runtime
    from flows.cli import app

    sample = tmp_path / "sample-loans.csv"
    sample.write_bytes(SAMPLE.read_bytes())
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("COLLECTFLOW_SECRET_KEY", "cli-test-secret-cli-test-secret-0123")
    runtime.forget()
    runner = CliRunner()
    try:
        behind = runner.invoke(app, ["loans", "import", str(sample)])
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        first = runner.invoke(app, ["loans", "import", str(sample), "--date", "2026-11-28", "--operator", "op-1"])
        again = runner.invoke(app, ["loans", "import", str(sample), "--date", "2026-11-28", "--json"])
        missing = runner.invoke(app, ["loans", "import", str(tmp_path / "nope.csv")])
        shown = runner.invoke(app, ["borrower", "show", "HT2026-0002", "--json"])
    finally:
        runtime.forget()
    # a SQLite file not there yet is not created by the import; a PostgreSQL schema is there, empty
    never = "there is no database at" if db_url.startswith("sqlite") else "has no collectflow schema yet; run:"
    assert behind.exit_code == 2 and never in behind.output and "collectflow db upgrade" in behind.output
    assert first.exit_code == 1 and "17" in first.output and "3 row(s) rejected" in first.output
    assert "row 13, column national_id: '3301*********5432'" in first.output
    report = json.loads(again.stdout)
    assert (report["booked"], report["unchanged"], report["rejected"]) == (0, 17, 3)
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert json.loads(shown.stdout)["phone"] == "182****8415"
    clear = [r[k] for r in csv.DictReader(open(SAMPLE, encoding="utf-8")) for k in PERSONAL if r[k]]
    output = first.output + again.output + shown.output
    assert not [value for value in clear if value in output]


# --------------------------------------------------------------------------- hostile files


@pytest.mark.parametrize("encoding", ["nosuchcodec", "rot13", ""])
def test_an_encoding_that_is_not_a_text_encoding_is_one_line(store, tmp_path, encoding):
    from flows.files import FileError

    path = write_csv(tmp_path / "a.csv", [row(1)])
    with pytest.raises(FileError, match=f"--encoding {encoding!r} is not a text encoding"):
        run(store, path, encoding=encoding)
    assert count(store, loans) == 0


def test_a_bad_byte_rejects_its_own_row_and_the_good_rows_are_booked(store, tmp_path):
    path = write_csv(tmp_path / "a.csv", [row(n) for n in range(1, 41)])
    lines = path.read_bytes().split(b"\n")
    lines[30] = lines[30].replace("张伟".encode(), b"\xff\xfe")  # row 31 of the file (the header is row 1)
    path.write_bytes(b"\n".join(lines))

    report = run(store, path)

    assert (report.booked, report.rejected) == (39, 1)
    assert report.rejections[0].startswith("row 31: has bytes that are not utf-8 text in column(s) borrower_name")


def test_a_field_of_200000_characters_rejects_its_row_only(store, tmp_path):
    rows = [row(n) for n in range(1, 11)]
    rows[4]["address"] = "长" * 200_000
    report = run(store, write_csv(tmp_path / "a.csv", rows))
    assert (report.booked, report.rejected) == (9, 1)
    assert "row 6, column address" in report.rejections[0]


def test_a_corrupt_gzip_file_is_one_line(store, tmp_path):
    import gzip

    from flows.files import FileError

    path = tmp_path / "a.csv.gz"
    path.write_bytes(gzip.compress(write_csv(tmp_path / "a.csv", [row(n) for n in range(1, 200)]).read_bytes())[:900])
    with pytest.raises(FileError, match="a.csv.gz: not a readable gzip file"):
        run(store, path)
