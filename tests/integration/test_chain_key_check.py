"""A chain key other than the store's is refused before it writes: what it wrote would read as forged for good."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import update

from flows.bootstrap import bootstrap
from flows.handlers.doctor import checks
from models.crypto import CryptoKeyError, load_chain_key
from models.settings import Settings
from models.store import CaseStore
from models.tables import events
from tests.integration.builders import advance, book, disable_event_triggers


def settings(tmp_path, keys: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", key_dir=tmp_path / keys, seals_dir=tmp_path / "seals")


def test_a_key_dir_without_the_stores_key_is_refused_in_one_line_and_doctor_says_why(store: CaseStore, tmp_path):
    ours = settings(tmp_path, "keys")
    keyed = CaseStore(store.engine, chain_key=load_chain_key(ours))
    advance(keyed, book(keyed, 3), date(2024, 4, 1))
    assert bootstrap(ours, engine=store.engine).store.chain_key == keyed.chain_key  # the store's own key: fine
    empty = settings(tmp_path, "empty-keys")  # a new chain.key is generated there, not the store's
    with pytest.raises(CryptoKeyError, match="the chain key is not the one this store's events were written with"):
        bootstrap(empty, engine=store.engine)
    doctor = checks(bootstrap(empty, engine=store.engine, require_schema=False))
    assert [m for level, m in doctor if level == "fail" and "chain key" in m]
    assert ("ok", "chain key: the store's events are keyed with it (or none is keyed yet)") in checks(bootstrap(ours, engine=store.engine))


def test_an_edited_mac_is_verifys_finding_not_a_wrong_key(store: CaseStore, tmp_path):
    ours = settings(tmp_path, "keys")
    keyed = CaseStore(store.engine, chain_key=load_chain_key(ours))
    ids = book(keyed, 3)
    advance(keyed, ids, date(2024, 4, 1))
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        conn.execute(update(events).where(events.c.case_id == ids[0], events.c.mac.is_not(None)).values(mac="0" * 64))
    bootstrap(ours, engine=store.engine)  # two of the three sampled MACs hold: the key is the store's


def test_an_unkeyed_store_takes_any_key(store: CaseStore, tmp_path):
    advance(store, book(store, 2), date(2024, 4, 1))  # written without a chain key
    bootstrap(settings(tmp_path, "any-keys"), engine=store.engine)
