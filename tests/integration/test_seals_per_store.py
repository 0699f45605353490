"""Stores that share a seals folder (the default one is relative to where a command runs) each check
only their own seals: another store's are counted in one line, never a finding, and a tampered seal
of this store is still one. Run through the console-script entry on real SQLite files.

Seals written before seals named their store (``collectflow-seal/1``) are made here as that code made
them: they stay readable, and they are checked as before for the store that wrote them."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from flows import cli, runtime
from models.db import make_engine, upgrade
from models.seals import current_leaves, load_seals, public_key_text, signing_key
from models.settings import Settings
from models.store import CaseStore
from states.seals import GENESIS_SEAL, SealBody, leaves_text, merkle_root
from tests.integration.builders import FIRST_DUE, advance, book, pay

DAY = FIRST_DUE + timedelta(days=20)


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Exit code, and stdout and stderr with their whitespace made single (Rich wraps long lines)."""
    monkeypatch.setattr(sys, "argv", ["collectflow", *args])
    with pytest.raises(SystemExit) as ended:
        cli.main()
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return ended.value.code or 0, " ".join((captured.out + captured.err).split())


class Installation:
    """A store (its SQLite file and key dir of its own) whose closes seal into a shared folder."""

    def __init__(self, root, seals, monkeypatch, revision: str = "head"):
        self.root, self.monkeypatch = root, monkeypatch
        self.settings = Settings(data_dir=root / "data", key_dir=root / "keys", seals_dir=seals, database_url=f"sqlite:///{root / 'data' / 'collectflow.db'}")
        self.engine = make_engine(self.settings.database_url)
        upgrade(self.engine, revision)
        self.store = CaseStore(self.engine)

    def use(self) -> None:
        for name in ("data_dir", "key_dir", "seals_dir", "database_url"):
            self.monkeypatch.setenv(f"COLLECTFLOW_{name.upper()}", str(getattr(self.settings, name)))
        runtime.forget()


@pytest.fixture
def make(tmp_path, monkeypatch):
    made: list[Installation] = []
    monkeypatch.delenv("COLLECTFLOW_SEAL_KEY", raising=False)
    monkeypatch.delenv("COLLECTFLOW_CHAIN_KEY", raising=False)

    def installation(name: str, revision: str = "head") -> Installation:
        made.append(Installation(tmp_path / name, tmp_path / "seals", monkeypatch, revision))
        return made[-1]

    yield installation
    runtime.forget()
    for one in made:
        one.engine.dispose()


def sealed(monkeypatch, capsys, one: Installation) -> None:
    one.use()
    code, out = run_cli(monkeypatch, capsys, "seal")
    assert code == 0 and "sealed" in out, out


def verify_seals(monkeypatch, capsys, one: Installation) -> tuple[int, str]:
    one.use()
    return run_cli(monkeypatch, capsys, "verify", "--seals", str(one.settings.seals_dir))


def write_unnamed_seal(engine: Engine, settings: Settings) -> None:
    """A seal as collectflow wrote it before seals named their store: format 1, chained to the folder's newest."""
    key = signing_key(settings)
    folder = settings.seals_dir
    folder.mkdir(parents=True, exist_ok=True)
    before = load_seals(folder)
    leaves = current_leaves(engine)
    text = leaves_text(leaves)
    body = SealBody(DAY, "2026-01-01T00:00:00+00:00", len(leaves), 0, 0, merkle_root(leaves), hashlib.sha256(text).hexdigest(),
                    before[-1].body.digest() if before else GENESIS_SEAL)
    assert b'"store"' not in body.canonical() and b"collectflow-seal/1" in body.canonical()
    stem = f"seal-{DAY.isoformat()}-{len(before) + 1:06d}"
    (folder / f"{stem}.leaves").write_bytes(text)
    document = {**body.as_dict(), "hash": body.digest(), "signature": base64.b64encode(key.sign(body.canonical())).decode(),
                "public_key": public_key_text(key.public_key())}
    (folder / f"{stem}.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def edit_events_count(path) -> None:
    data = json.loads(path.read_text())
    data["events"] -= 1
    path.write_text(json.dumps(data))


def test_two_stores_sharing_a_seals_folder_each_check_only_their_own(make, monkeypatch, capsys):
    mine, theirs = make("mine"), make("theirs")  # each with keys of its own: their seals fail my key
    advance(mine.store, book(mine.store, 2), DAY)
    advance(theirs.store, book(theirs.store, 3, start=50), DAY)
    sealed(monkeypatch, capsys, mine)
    sealed(monkeypatch, capsys, theirs)
    sealed(monkeypatch, capsys, mine)  # my chain goes on past their seal

    code, out = verify_seals(monkeypatch, capsys, mine)
    assert code == 0, out
    assert "1 seal(s) in" in out and "belong to another store: not checked" in out
    assert "checked against 2 seal(s) in" in out and "0 finding(s)" in out and "bad signature" not in out

    code, out = verify_seals(monkeypatch, capsys, theirs)
    assert code == 0 and "2 seal(s) in" in out and "checked against 1 seal(s) in" in out, out

    mine.use()
    code, out = run_cli(monkeypatch, capsys, "doctor")
    assert "2 seal(s) of this store in" in out and "(1 of another store there, not this store's)" in out, out

    my_second = [s for s in load_seals(mine.settings.seals_dir) if s.body.store is not None][-1]
    edit_events_count(my_second.path)  # a tampered seal of this store is still a finding
    code, out = verify_seals(monkeypatch, capsys, mine)
    assert code == 1 and "bad signature" in out and "1 finding(s)" in out, out
    code, out = verify_seals(monkeypatch, capsys, theirs)
    assert code == 0, out


def test_a_store_deleted_and_made_again_does_not_read_the_old_ones_seals(make, monkeypatch, capsys, tmp_path):
    first = make("store")
    ids = book(first.store, 2)
    advance(first.store, ids, DAY)
    pay(first.store, ids[0], "500.00", DAY, "BANK-1")
    sealed(monkeypatch, capsys, first)
    first.engine.dispose()
    for path in (tmp_path / "store" / "data").glob("collectflow.db*"):
        path.unlink()

    again = make("store")  # the same path, the same case ids, another history (no payment)
    advance(again.store, book(again.store, 2), DAY)
    sealed(monkeypatch, capsys, again)
    code, out = verify_seals(monkeypatch, capsys, again)
    assert "history rewritten" not in out
    assert code == 0 and "1 seal(s) in" in out and "belong to another store" in out and "checked against 1 seal(s)" in out, out


def test_seals_written_before_stores_were_named_are_still_checked_for_the_store_that_wrote_them(make, monkeypatch, capsys):
    old = make("old", revision="0017")  # a store that sealed before this change
    advance(old.store, book(old.store, 2), DAY)
    other_old = make("other-old", revision="0017")  # another, sealing into the same folder then
    advance(other_old.store, book(other_old.store, 2, start=50), DAY)
    write_unnamed_seal(old.engine, old.settings)
    write_unnamed_seal(other_old.engine, other_old.settings)
    write_unnamed_seal(old.engine, old.settings)
    upgrade(old.engine)
    upgrade(other_old.engine)
    sealed(monkeypatch, capsys, old)  # names the store, chained to its newest unnamed seal
    newest = load_seals(old.settings.seals_dir)[-1]
    assert newest.body.store and newest.body.previous == load_seals(old.settings.seals_dir)[2].body.digest()

    code, out = verify_seals(monkeypatch, capsys, old)
    assert code == 0 and "checked against 3 seal(s)" in out and "1 seal(s) in" in out, out
    code, out = verify_seals(monkeypatch, capsys, other_old)
    assert code == 0 and "checked against 1 seal(s)" in out and "3 seal(s) in" in out, out

    new = make("new")  # made after: no unnamed seal is its own, whatever its case ids
    advance(new.store, book(new.store, 2), DAY)
    sealed(monkeypatch, capsys, new)
    code, out = verify_seals(monkeypatch, capsys, new)
    assert code == 0 and "checked against 1 seal(s)" in out and "4 seal(s) in" in out, out

    edit_events_count(load_seals(old.settings.seals_dir)[0].path)  # an old seal of the old store, edited
    code, out = verify_seals(monkeypatch, capsys, old)
    assert code == 1 and "bad signature" in out, out
    code, out = verify_seals(monkeypatch, capsys, new)
    assert code == 0, out
