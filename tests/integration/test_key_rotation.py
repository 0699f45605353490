"""Personal-data key rotation on SQLite and PostgreSQL: every borrower row re-keyed in one
transaction, the old key retired and unable to read what is written now, lookups, reveal and
verify working after it, a failure mid-way leaving everything as before, a crash after the
commit finished by running it again, and every bad key directory refused in one line."""

from __future__ import annotations

import csv
import stat
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy import exc as sa_exc
from typer.testing import CliRunner

from flows.bootstrap import bootstrap
from flows.handlers.keys import rotate, status
from flows.handlers.loans import import_file, reveal
from models.audit import verify
from models.crypto import CryptoKeyError, CryptoSettings, Keyring, load_keyring
from models.keys import KeyRotationError
from models.tables import borrowers, key_rotations
from states.operators import AddOperator, NotAllowed
from states.policy import CollectionPolicy
from states.vocabulary import OperatorRole
from tests.loan_rows import row

TODAY = date(2026, 11, 28)
POLICY = CollectionPolicy()
LOANS = 5


class Boom(RuntimeError):
    """The failure a test injects."""


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.delenv("COLLECTFLOW_SECRET_KEY", raising=False)
    return CryptoSettings(data_dir=tmp_path / "data", key_dir=tmp_path / "keys", seals_dir=tmp_path / "seals")


@pytest.fixture
def app(store, settings):
    return bootstrap(settings, engine=store.engine, policy=POLICY, clock=lambda: TODAY)


@pytest.fixture
def booked(app, settings, tmp_path) -> Path:
    """Five loans imported under the key the key directory made for them; the file they came from."""
    path = tmp_path / "loans.csv"
    rows = [row(n, guarantor_name="李四", guarantor_phone=f"1399876{n:04d}") for n in range(1, LOANS + 1)]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = import_file(app.store, path, business_date=TODAY, policy=POLICY, keyring=load_keyring(settings))
    assert report.booked == LOANS
    return path


def borrower_table(store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(borrowers).order_by(borrowers.c.contract_no)).mappings()]


def rotations(store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(key_rotations)).mappings()]


def key_files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- the rotation


def test_a_rotation_rekeys_every_borrower_and_reveal_lookups_reimport_and_verify_still_work(app, settings, booked):
    old = load_keyring(settings)
    before = borrower_table(app.store)
    done = rotate(app, operator="sup-1")
    new = load_keyring(settings)

    assert (done.from_key_id, done.to_key_id, done.rows) == (old.key_id, new.key_id, LOANS) and new.key_id != old.key_id
    after = borrower_table(app.store)
    for was, now in zip(before, after):
        assert now["key_id"] == new.key_id
        assert now["national_id_hash"] != was["national_id_hash"] and now["details_hash"] != was["details_hash"]
        assert all(now[f"{n}_enc"].startswith(f"v1.{new.key_id}.") for n in ("borrower_name", "national_id", "phone", "guarantor_phone"))
        assert {k: v for k, v in now.items() if k.endswith("_masked")} == {k: v for k, v in was.items() if k.endswith("_masked")}

    # reveal, the match-hash lookup and a re-import (details hash) all work under the new key
    assert reveal(app.store, new, "HT-000003", "phone", operator="sup-1", purpose="call", on=TODAY) == row(3)["phone"]
    national_id = row(2)["national_id"]
    assert [c for c, _, _ in app.store.borrower_identities([], [new.match_hash(national_id)])] == ["HT-000002"]
    assert app.store.borrower_identities([], [old.match_hash(national_id)]) == []
    again = import_file(app.store, booked, business_date=TODAY, policy=POLICY, keyring=new)
    assert (again.booked, again.unchanged, again.rejected) == (0, LOANS, 0)
    assert verify(app.engine, keyring=new).ok

    # the old key is retired, owner-only; alone it cannot read what is stored now
    retired = settings.key_dir / "retired" / f"{old.key_id}.key"
    assert done.retired_path == retired and stat.S_IMODE(retired.stat().st_mode) == 0o600
    assert not (settings.key_dir / "secret.key.next").exists()
    alone = Keyring.from_secret(retired.read_text().strip())
    with pytest.raises(CryptoKeyError, match=f"encrypted under key id {new.key_id}, but the secret key in use has id {old.key_id}"):
        alone.decrypt(after[0]["phone_enc"], "HT-000001/phone")
    assert new.for_key(old.key_id) is not None  # the keyring still reads what the old key wrote (a backup)
    assert new.decrypt(before[0]["phone_enc"], "HT-000001/phone") == row(1)["phone"]

    (recorded,) = rotations(app.store)
    assert (recorded["from_key_id"], recorded["to_key_id"], recorded["operator"], recorded["business_date"]) == (old.key_id, new.key_id, "sup-1", TODAY)
    assert (recorded["status"], recorded["borrowers_rekeyed"]) == ("done", LOANS) and recorded["finished_at"] is not None
    shown = status(app)
    assert (shown.active.key_id, [k.key_id for k in shown.retired], shown.pending) == (new.key_id, [old.key_id], None)
    assert shown.rows_by_key == {new.key_id: LOANS} and not shown.unknown_keys


def test_two_rotations_keep_both_old_keys_and_verify_names_a_row_restored_from_before(app, settings, booked):
    first = load_keyring(settings)
    original = borrower_table(app.store)[0]
    rotate(app, operator="sup-1")
    rotate(app, operator="sup-2")
    now = load_keyring(settings)
    assert len({first.key_id, *now.retired, now.key_id}) == 3 and first.key_id in now.retired
    assert verify(app.engine, keyring=now).ok
    # an attacker restores a borrower row from a backup taken before the rotations: the database refuses it
    restore = {k: original[k] for k in original if k.endswith("_enc") or k in ("key_id", "details_hash")}
    with pytest.raises(sa_exc.IntegrityError, match="retired key"):
        with app.engine.begin() as conn:
            conn.execute(borrowers.update().where(borrowers.c.contract_no == "HT-000001").values(**restore))
    from tests.integration.builders import disable_event_triggers

    with app.engine.begin() as conn:  # ... and with the triggers off, verify names it
        disable_event_triggers(conn)
        conn.execute(borrowers.update().where(borrowers.c.contract_no == "HT-000001").values(**restore))
    found = [str(f) for f in verify(app.engine, keyring=now).findings]
    assert any("borrowers row HT-000001: still under the retired key " + first.key_id in f for f in found), found


def test_a_failure_mid_rotation_leaves_every_row_key_and_record_as_before(app, settings, booked):
    old = load_keyring(settings)
    before, files = borrower_table(app.store), key_files(settings.key_dir)

    def fail_after_two(stage: str, rows: int) -> None:
        if stage == "rekeyed" and rows >= 2:
            raise Boom("the disk filled up")

    from models.keys import rotate_keys

    with pytest.raises(Boom):
        rotate_keys(app.engine, settings, operator="sup-1", on=TODAY, chunk_rows=2, fault=fail_after_two)
    assert borrower_table(app.store) == before  # two rows were re-keyed inside the transaction: rolled back
    assert rotations(app.store) == []
    assert key_files(settings.key_dir) == files  # no new key left behind, nothing retired
    assert load_keyring(settings).key_id == old.key_id
    assert reveal(app.store, load_keyring(settings), "HT-000001", "name", operator="sup-1", purpose="x", on=TODAY) == "张伟"
    assert verify(app.engine, keyring=old).ok
    assert rotate(app, operator="sup-1").rows == LOANS  # and the next attempt goes through


def test_a_crash_after_the_commit_reads_both_keys_refuses_the_old_one_and_is_finished_by_rotating_again(app, settings, booked, tmp_path):
    old = load_keyring(settings)

    def crash_before_the_files(stage: str, rows: int) -> None:
        if stage == "committed":
            raise Boom("killed")

    with pytest.raises(Boom):
        rotate(app, operator="sup-1", fault=crash_before_the_files)
    pending = settings.key_dir / "secret.key.next"
    assert pending.exists() and load_keyring(settings).key_id == old.key_id  # the file is not promoted yet
    reading = load_keyring(settings)
    new_id = Keyring.from_secret(pending.read_text().strip()).key_id
    assert reading.for_key(new_id) is not None
    assert reveal(app.store, reading, "HT-000004", "phone", operator="sup-1", purpose="x", on=TODAY) == row(4)["phone"]
    shown = status(app)
    assert shown.pending is not None and shown.pending.key_id == new_id and shown.pending_committed
    from flows.handlers.doctor import checks

    assert ("warn", f"{pending}: a key rotation was interrupted; run collectflow keys rotate to finish it") in checks(app)
    # a worker still on the old key cannot book a borrower under it
    extra = tmp_path / "extra.csv"
    with open(extra, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(row(9)))
        writer.writeheader()
        writer.writerow(row(9))
    with pytest.raises(Exception, match="retired key"):
        import_file(app.store, extra, business_date=TODAY, policy=POLICY, keyring=old)

    done = rotate(app, operator="sup-1")
    assert done.finished_only and done.to_key_id == new_id and load_keyring(settings).key_id == new_id
    assert not pending.exists() and (settings.key_dir / "retired" / f"{old.key_id}.key").exists()
    assert len(rotations(app.store)) == 1
    assert verify(app.engine, keyring=load_keyring(settings)).ok


def test_the_identity_columns_change_only_inside_a_recorded_rotation_and_rotations_are_never_erased(app, settings, booked):
    with pytest.raises(sa_exc.IntegrityError, match="append-only"):
        with app.engine.begin() as conn:
            conn.execute(borrowers.update().values(national_id_hash="0" * 64))
    with pytest.raises(sa_exc.IntegrityError, match="append-only"):
        with app.engine.begin() as conn:  # a rotation to another key does not open it either
            conn.execute(key_rotations.insert().values(
                from_key_id="a", to_key_id="b", operator="x", business_date=TODAY, started_at=datetime.now(timezone.utc), status="running", borrowers_rekeyed=0,
            ))
            conn.execute(borrowers.update().values(national_id_hash="0" * 64))
    rotate(app, operator="sup-1")
    for statement in ("DELETE FROM key_rotations", "UPDATE key_rotations SET operator = 'someone else'", "UPDATE key_rotations SET status = 'running'"):
        with pytest.raises(sa_exc.IntegrityError, match="append-only"):
            with app.engine.begin() as conn:
                conn.execute(text(statement))
    assert [r["operator"] for r in rotations(app.store)] == ["sup-1"]


def test_a_rotation_needs_a_supervisor_when_the_roster_is_in_use(app, booked):
    app.store.change_roster(AddOperator("sup-1", OperatorRole.SUPERVISOR))  # the first on a roster is a supervisor
    app.store.change_roster(AddOperator("col-1", OperatorRole.COLLECTOR, operator="sup-1"))
    with pytest.raises(NotAllowed, match="rotate-keys needs a supervisor"):
        rotate(app, operator="col-1")
    with pytest.raises(Exception, match="is not on the operator roster"):
        rotate(app, operator="nobody")


# --------------------------------------------------------------------------- bad input, one line


def test_a_row_under_an_unknown_key_stops_the_rotation_before_anything_changes(app, settings, booked):
    with app.engine.begin() as conn:
        conn.execute(borrowers.update().where(borrowers.c.contract_no == "HT-000002").values(key_id="deadbeef"))
    before = borrower_table(app.store)
    with pytest.raises(KeyRotationError, match=r"borrower row HT-000002 \(and 0 more\) is under key id deadbeef, which is neither"):
        rotate(app, operator="sup-1")
    assert borrower_table(app.store) == before and rotations(app.store) == []
    assert not (settings.key_dir / "secret.key.next").exists()
    assert status(app).unknown_keys == {"deadbeef": 1}


def test_every_bad_key_directory_is_one_line_on_the_command_line(db_url, tmp_path, monkeypatch):
    from flows import runtime
    from flows.cli import app as cli
    from models.db import make_engine, upgrade

    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    keys = tmp_path / "keys"
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("COLLECTFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLLECTFLOW_KEY_DIR", str(keys))
    monkeypatch.delenv("COLLECTFLOW_SECRET_KEY", raising=False)
    monkeypatch.setenv("COLLECTFLOW_CHAIN_KEY", "c" * 40)  # so nothing else makes the key directory
    runner = CliRunner()

    def run(*args: str):
        runtime.forget()
        try:
            return runner.invoke(cli, list(args))
        finally:
            runtime.forget()

    outcomes = {}
    outcomes["no dir"] = run("keys", "rotate", "--operator", "sup-1")
    keys.mkdir(mode=0o700)
    outcomes["no key"] = run("keys", "status")
    (keys / "secret.key").write_text("k" * 48 + "\n")
    (keys / "secret.key").chmod(0o600)
    keys.chmod(0o755)
    outcomes["open dir"] = run("keys", "rotate", "--operator", "sup-1")
    keys.chmod(0o700)
    (keys / "secret.key").chmod(0o644)
    outcomes["open key"] = run("keys", "rotate", "--operator", "sup-1")
    (keys / "secret.key").chmod(0o600)
    (keys / "retired").mkdir(mode=0o700)
    (keys / "retired" / "0badc0de.key").write_text("r" * 48 + "\n")
    (keys / "retired" / "0badc0de.key").chmod(0o600)
    outcomes["misnamed"] = run("keys", "status")
    (keys / "retired" / "0badc0de.key").unlink()
    monkeypatch.setenv("COLLECTFLOW_SECRET_KEY", "e" * 40)
    outcomes["env"] = run("keys", "rotate", "--operator", "sup-1")
    monkeypatch.delenv("COLLECTFLOW_SECRET_KEY")
    outcomes["bad operator"] = run("keys", "rotate", "--operator", "")
    outcomes["future"] = run("keys", "rotate", "--operator", "sup-1", "--date", "2999-01-01")
    expected = {
        "no dir": f"no key directory {keys} (COLLECTFLOW_KEY_DIR): nothing to rotate",
        "no key": f"no personal data key in {keys} (secret.key): nothing to rotate",
        "open dir": f"key directory {keys} is open to group or others (mode 0755); run: chmod 700 {keys}",
        "open key": f"run: chmod 600 {keys / 'secret.key'}",
        "misnamed": f"holds key id {Keyring.from_secret('r' * 48).key_id}, not 0badc0de",
        "env": "COLLECTFLOW_SECRET_KEY is set: the active key comes from the environment",
        "bad operator": "operator",
        "future": "2999-01-01",
    }
    for name, outcome in outcomes.items():
        lines = outcome.output.strip().splitlines()
        assert outcome.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (name, outcome.output)
        assert expected[name] in lines[0], (name, lines[0])
        assert "Traceback" not in outcome.output
    ok = run("keys", "rotate", "--operator", "sup-1")
    assert ok.exit_code == 0 and "re-keyed from" in ok.output, ok.output
    shown = run("keys", "status", "--json")
    assert shown.exit_code == 0 and '"retired"' in shown.stdout


KILLED_MID_ROTATION = """
import os, signal, sys
from datetime import date
from pathlib import Path
from models.crypto import CryptoSettings
from models.db import make_engine
from models.keys import rotate_keys

def die(stage, rows):
    if stage == "rekeyed" and rows >= 2:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback by us: the database's own recovery

root = Path(sys.argv[2])
settings = CryptoSettings(data_dir=root / "data", key_dir=root / "keys", seals_dir=root / "seals")
rotate_keys(make_engine(sys.argv[1]), settings, operator="sup-1", on=date(2026, 11, 28), chunk_rows=2, fault=die)
"""


def test_a_rotation_killed_mid_transaction_leaves_the_old_key_valid_and_is_redone_by_rotating_again(app, settings, booked, db_url, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    old = load_keyring(settings)
    before = borrower_table(app.store)
    app.engine.dispose()  # SQLite: nothing of ours holds the file while the child writes
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("COLLECTFLOW_SECRET_KEY", None)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_MID_ROTATION, db_url, str(tmp_path)], env=env, cwd=Path(__file__).resolve().parents[2],
        capture_output=True, text=True, timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert borrower_table(app.store) == before and rotations(app.store) == []
    assert (settings.key_dir / "secret.key.next").exists()  # the new key was made, never used for committed data
    reading = load_keyring(settings)
    assert reading.key_id == old.key_id
    assert reveal(app.store, reading, "HT-000005", "phone", operator="sup-1", purpose="x", on=TODAY) == row(5)["phone"]
    shown = status(app)
    assert shown.pending is not None and not shown.pending_committed
    assert verify(app.engine, keyring=reading).ok

    done = rotate(app, operator="sup-1")
    assert not done.finished_only and done.rows == LOANS and done.to_key_id == shown.pending.key_id
    assert verify(app.engine, keyring=load_keyring(settings)).ok and status(app).pending is None
