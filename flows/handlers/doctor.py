"""``collectflow doctor``: what an operator should fix before trusting this installation.

Each check gives ``ok``, ``warn`` or ``fail`` and one line saying why and
what to do: the schema, where the keys are (never beside the database, never
readable by others), whether the last close was sealed. A diagnostic writes
nothing: a key not made yet is reported, never generated (the App it is given
is bootstrapped with ``make_keys=False``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from flows.bootstrap import App, SchemaBehind, check_schema
from models.recorder import chain_key_mismatch, store_is_keyed
from models.crypto import CHAIN_KEY_ENV, CHAIN_KEY_FILE, KEY_FILE, NEXT_KEY_FILE, RETIRED_DIR
from models.seals import ENV_KEY, SIGNING_KEY_FILE, own_seals


def checks(app: App) -> list[tuple[str, str]]:
    settings = app.settings
    found: list[tuple[str, str]] = []
    try:
        check_schema(app.engine)
        found.append(("ok", "the database is at the schema this code needs"))
        schema_ok = True
    except SchemaBehind as exc:
        found.append(("fail", str(exc)))
        schema_ok = False
    data = settings.data_dir.resolve()
    beside = data / KEY_FILE
    if beside.exists():
        found.append(("fail", f"a personal data key sits beside the database: {beside}; move it to {settings.key_dir / KEY_FILE}"))
    keys = settings.key_dir.resolve()
    if keys == data or data in keys.parents:
        found.append(("fail", f"the key directory {keys} is inside the data directory {data}: a backup of the data would carry its keys"))
    for name, env in ((KEY_FILE, "COLLECTFLOW_SECRET_KEY"), (CHAIN_KEY_FILE, CHAIN_KEY_ENV), (SIGNING_KEY_FILE, ENV_KEY)):
        path = keys / name
        if os.environ.get(env, "").strip():
            found.append(("ok", f"{name}: from {env} (a secret store), not a file"))
        elif path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            level = "fail" if mode & 0o077 else "ok"
            found.append((level, f"{name}: {path} (mode {mode:04o}{'; run chmod 600 ' + str(path) if level == 'fail' else ''})"))
        elif name == CHAIN_KEY_FILE:
            found.append(_missing_chain_key(app, path, schema_ok))
        else:
            found.append(("warn", f"{name}: not made yet; it is generated into {path} on first use (or set {env})"))
    found.extend(_rotation(keys))
    if schema_ok:
        if app.store.chain_key is not None:
            found.append(_chain_key(app))
        found.append(_seals(app, settings.seals_dir))  # both read the store: not without its schema
    return found


def _chain_key(app: App) -> tuple[str, str]:
    """Whether the chain key is the one the store's events were keyed with."""
    with app.engine.connect() as conn:
        problem = chain_key_mismatch(conn, app.store.chain_key)
    return ("fail", problem) if problem else ("ok", "chain key: the store's events are keyed with it (or none is keyed yet)")


def _missing_chain_key(app: App, path: Path, schema_ok: bool) -> tuple[str, str]:
    """No chain key: a fault when the store's events are keyed (its key is elsewhere), else not made yet."""
    where = f"{CHAIN_KEY_FILE}: no such file {path} and {CHAIN_KEY_ENV} is not set"
    if schema_ok:
        with app.engine.connect() as conn:
            keyed = store_is_keyed(conn)
        if keyed:
            return ("fail", f"{where}, but this store's events carry MACs under a chain key: point COLLECTFLOW_KEY_DIR "
                            f"at the folder that holds its {CHAIN_KEY_FILE}, or set {CHAIN_KEY_ENV} (a new key would read them as forged)")
    return ("warn", f"{where}: not made yet; the next collectflow command that opens the store (a close, an import, a "
                    f"payment; not doctor) generates it there")


def _rotation(keys: Path) -> list[tuple[str, str]]:
    """A key rotation left half-way, and retired keys others may read."""
    found = []
    if (keys / NEXT_KEY_FILE).exists():
        found.append(("warn", f"{keys / NEXT_KEY_FILE}: a key rotation was interrupted; run collectflow keys rotate to finish it"))
    retired = keys / RETIRED_DIR
    for path in sorted(retired.glob("*.key")) if retired.is_dir() else ():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            found.append(("fail", f"retired key {path} is readable by group or others (mode {mode:04o}); run chmod 600 {path}"))
    return found


def _seals(app: App, folder: Path) -> tuple[str, str]:
    last_closed = app.store.last_closed_business_date()
    if not folder.is_dir():
        return ("warn" if last_closed else "ok", f"no seals in {folder} yet" + (f" though {last_closed} was closed" if last_closed else ""))
    ours = own_seals(app.engine, folder)
    others = f" ({ours.others} of another store there, not this store's)" if ours.others else ""
    if not ours.own:
        return ("warn" if last_closed else "ok", f"no seals of this store in {folder}{others}")
    newest = ours.own[-1].body.business_date
    if last_closed and newest < last_closed:
        return ("warn", f"the newest seal is of {newest}, the last close of {last_closed}: run collectflow seal{others}")
    return ("ok", f"{len(ours.own)} seal(s) of this store in {folder}, the newest of {newest}{others}; check with collectflow verify --seals {folder}")
