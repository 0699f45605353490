"""``collectflow doctor`` is a diagnostic: it reports a key not made yet, and writes nothing (no key,
no key folder, no data folder, no database). Run through the console-script entry on a real SQLite file."""

from __future__ import annotations

import sys
from datetime import date

import pytest

from flows import cli, runtime
from models.crypto import load_chain_key
from models.db import make_engine, upgrade
from models.settings import Settings
from models.store import CaseStore
from tests.integration.builders import advance, book


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["collectflow", *args])
    with pytest.raises(SystemExit) as ended:
        cli.main()
    captured = capsys.readouterr()
    return ended.value.code or 0, " ".join(captured.out.split()), captured.err


def files_under(root) -> list[str]:
    """Every path under ``root`` but SQLite's own -wal/-shm files (opening a WAL database makes them)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.name.endswith(("-wal", "-shm")))


@pytest.fixture
def installation(tmp_path, monkeypatch):
    """A SQLite store in tmp_path/db; the key, data and seals folders configured but not there yet."""
    url = f"sqlite:///{tmp_path / 'db' / 'collectflow.db'}"
    engine = make_engine(url)
    upgrade(engine)
    for name, value in (("DATABASE_URL", url), ("DATA_DIR", tmp_path / "data"), ("KEY_DIR", tmp_path / "keys"), ("SEALS_DIR", tmp_path / "seals")):
        monkeypatch.setenv(f"COLLECTFLOW_{name}", str(value))
    for name in ("COLLECTFLOW_CHAIN_KEY", "COLLECTFLOW_SEAL_KEY", "COLLECTFLOW_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    runtime.forget()
    yield engine
    runtime.forget()
    engine.dispose()


def test_doctor_reports_a_chain_key_not_made_yet_and_creates_no_file(installation, tmp_path, monkeypatch, capsys):
    advance(CaseStore(installation), book(CaseStore(installation), 2), date(2024, 4, 1))  # events without a MAC
    before = files_under(tmp_path)

    code, out, err = run_cli(monkeypatch, capsys, "doctor")

    assert code == 0 and "Traceback" not in err, err
    assert files_under(tmp_path) == before  # no keys/, no chain.key, no seal key, no data/, no seals/
    assert not (tmp_path / "keys").exists() and not (tmp_path / "data").exists()
    assert f"chain.key: no such file {tmp_path / 'keys' / 'chain.key'} and COLLECTFLOW_CHAIN_KEY is not set: not made yet" in out
    assert "generates it there" in out and out.count("chain.key:") == 1


def test_doctor_fails_in_one_line_when_the_stores_events_are_keyed_and_its_chain_key_is_not_there(installation, tmp_path, monkeypatch, capsys):
    elsewhere = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "the-real-keys", seals_dir=tmp_path / "seals")
    keyed = CaseStore(installation, chain_key=load_chain_key(elsewhere))
    advance(keyed, book(keyed, 2), date(2024, 4, 1))
    before = files_under(tmp_path)

    code, out, err = run_cli(monkeypatch, capsys, "doctor")

    assert code == 1 and "Traceback" not in err, err
    assert files_under(tmp_path) == before
    missing = [line for line in out.split("fail ")[1:] if "chain.key" in line]
    assert len(missing) == 1 and "this store's events carry MACs under a chain key" in missing[0], out
    assert "COLLECTFLOW_KEY_DIR" in missing[0] and str(tmp_path / "keys" / "chain.key") in missing[0]


def test_the_first_command_that_opens_the_store_still_makes_the_chain_key(installation, tmp_path, monkeypatch, capsys):
    run_cli(monkeypatch, capsys, "doctor")
    assert not (tmp_path / "keys" / "chain.key").exists()
    runtime.forget()
    code, _, err = run_cli(monkeypatch, capsys, "seal")
    assert code == 0, err
    assert (tmp_path / "keys" / "chain.key").exists() and (tmp_path / "keys" / "seal-signing.key").exists()
    runtime.forget()
    code, out, err = run_cli(monkeypatch, capsys, "doctor")
    assert code == 0, err
    assert "chain key: the store's events are keyed with it (or none is keyed yet)" in out
