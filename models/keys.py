"""Personal-data key rotation: a new key, every borrower row re-keyed in one transaction, the old key retired.

The key directory (``COLLECTFLOW_KEY_DIR``, never the data directory)::

    secret.key              the active key: everything is encrypted and hashed under it
    secret.key.next         a rotation's new key: made before the re-key, promoted after its commit
    retired/<key id>.key    each retired key, kept so that what was written under it (a backup,
                            an old export) stays readable; nothing live is under it any more

``rotate_keys`` does, in this order, so that a crash at any point leaves a
readable store and a key directory that ``keys rotate`` (run again) finishes:

1. writes a new random secret to ``secret.key.next`` (mode 0600, fsynced);
2. in ONE transaction: records the rotation (``key_rotations``, running),
   decrypts every ``borrowers`` row with the key its ``key_id`` names and
   writes it back under the new key (each value re-encrypted, the national
   id's match hash and the details hash recomputed, ``key_id`` changed),
   marks the rotation done. A failure here rolls all of it back: the old key
   is still the one every row is under, and ``secret.key.next`` is removed;
3. copies the old secret to ``retired/<old id>.key``, then renames
   ``secret.key.next`` over ``secret.key`` (atomic), and fsyncs the folder.

Between 2 and 3 the loader reads both keys (``models.crypto.readable_keys``)
and the database refuses a borrower row written under the retired key
(migration 0011), so a worker still on the old key cannot write match hashes
nobody could look up; ``keys rotate`` again promotes the file.

The rotation is recorded in ``key_rotations`` (operator, business date,
started and finished, rows re-keyed), which is append-only like the events.
The chain key and the seal signing key are not rotated here (see
docs/decisions.md).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, select, text, update

from models import borrowers as borrower_rows
from models.crypto import (
    KEY_FILE,
    NEXT_KEY_FILE,
    RETIRED_DIR,
    CryptoKeyError,
    Keyring,
    existing_key_secret,
    readable_keys,
)
from models.db import write_transaction
from models.settings import Settings
from models.tables import borrowers, key_rotations
from states.loanfile import PERSONAL

REKEY_CHUNK = 1_000  # borrower rows read and written back per round trip (all in one transaction)
SECRET_ENV = "COLLECTFLOW_SECRET_KEY"


class KeyRotationError(CryptoKeyError):
    """A rotation that cannot start or finish; the message names the file or row and what to do."""


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    path: Path
    since: datetime | None  # when it became active (or was retired): the rotation's time, else the file's


@dataclass(frozen=True)
class KeyStatus:
    active: KeyInfo
    retired: tuple[KeyInfo, ...]
    pending: KeyInfo | None  # secret.key.next: a rotation started, or committed and not yet promoted
    pending_committed: bool  # the database already holds every row under the pending key
    rows_by_key: Mapping[str, int]  # borrower rows by the key id they are under
    rotations: tuple[Mapping[str, Any], ...]

    @property
    def unknown_keys(self) -> dict[str, int]:
        known = {self.active.key_id, *(k.key_id for k in self.retired), *([self.pending.key_id] if self.pending else [])}
        return {key_id: n for key_id, n in self.rows_by_key.items() if key_id not in known}


@dataclass(frozen=True)
class Rotation:
    rotation_id: int
    from_key_id: str
    to_key_id: str
    rows: int
    retired_path: Path
    finished_only: bool = False  # an interrupted rotation's commit was found; only the files were promoted


# --------------------------------------------------------------------------
# the key directory


def key_directory(settings: Settings) -> Path:
    """The key directory a rotation works in, checked: it exists, only its owner may enter it,
    it holds the active key, and the key does not come from the environment instead."""
    if os.environ.get(SECRET_ENV, "").strip():
        raise KeyRotationError(
            f"{SECRET_ENV} is set: the active key comes from the environment, so keys rotate cannot replace it; "
            f"unset it and mount the key file as {settings.key_dir / KEY_FILE}"
        )
    folder = settings.key_dir
    data = settings.data_dir.resolve()
    if folder.resolve() == data or data in folder.resolve().parents:
        raise KeyRotationError(f"COLLECTFLOW_KEY_DIR {folder} is inside the data directory {data}; keep keys away from the database")
    if not folder.exists():
        raise KeyRotationError(f"no key directory {folder} (COLLECTFLOW_KEY_DIR): nothing to rotate; set it to the folder holding {KEY_FILE}")
    if not folder.is_dir():
        raise KeyRotationError(f"COLLECTFLOW_KEY_DIR {folder} is not a directory")
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o077:
        raise KeyRotationError(f"key directory {folder} is open to group or others (mode {mode:04o}); run: chmod 700 {folder}")
    if not (folder / KEY_FILE).exists():
        raise KeyRotationError(f"no personal data key in {folder} ({KEY_FILE}): nothing to rotate")
    return folder


def key_status(engine: Engine, settings: Settings) -> KeyStatus:
    folder = key_directory(settings)
    with engine.connect() as conn:
        rotations = tuple(dict(r) for r in conn.execute(select(key_rotations).order_by(key_rotations.c.rotation_id)).mappings())
        rows_by_key = dict(conn.execute(select(borrowers.c.key_id, func.count()).group_by(borrowers.c.key_id)).all())
    done = [r for r in rotations if r["status"] == "done"]
    active_path = folder / KEY_FILE
    active = Keyring.from_secret(existing_key_secret(active_path))
    became = {r["to_key_id"]: r["finished_at"] for r in done}
    retired_on = {r["from_key_id"]: r["finished_at"] for r in done}
    retired = tuple(
        KeyInfo(k.key_id, folder / RETIRED_DIR / f"{k.key_id}.key", retired_on.get(k.key_id) or _mtime(folder / RETIRED_DIR / f"{k.key_id}.key"))
        for k in readable_keys(folder)
        if (folder / RETIRED_DIR / f"{k.key_id}.key").exists() and k.key_id != active.key_id
    )
    pending = None
    next_path = folder / NEXT_KEY_FILE
    if next_path.exists():
        pending_key = Keyring.from_secret(existing_key_secret(next_path))
        pending = KeyInfo(pending_key.key_id, next_path, _mtime(next_path))
    return KeyStatus(
        active=KeyInfo(active.key_id, active_path, became.get(active.key_id) or _mtime(active_path)),
        retired=retired,
        pending=pending,
        pending_committed=pending is not None and pending.key_id in became,
        rows_by_key=rows_by_key,
        rotations=rotations,
    )


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


# --------------------------------------------------------------------------
# rotate


def rotate_keys(
    engine: Engine,
    settings: Settings,
    *,
    operator: str,
    on: date,
    chunk_rows: int = REKEY_CHUNK,
    fault: Callable[[str, int], None] | None = None,
) -> Rotation:
    """Rotate the personal-data key (the module docstring gives the steps and the crash story).

    ``fault(stage, rows_done)`` is a test seam, called with ``"rekeyed"`` after each chunk of rows
    is written (inside the transaction) and with ``"committed"`` after the commit, before the
    key files are promoted.
    """
    folder = key_directory(settings)
    active_path, next_path = folder / KEY_FILE, folder / NEXT_KEY_FILE
    old_secret = existing_key_secret(active_path)
    old = Keyring.from_secret(old_secret).with_retired(readable_keys(folder))
    made_now = not next_path.exists()
    new_secret = _new_key_file(next_path) if made_now else existing_key_secret(next_path)
    new = Keyring.from_secret(new_secret)
    if new.key_id in old.retired and new.key_id != old.key_id and made_now:  # 2**-32: never, but never silently
        next_path.unlink()
        raise KeyRotationError(f"the new key's id {new.key_id} is already a retired key's; run keys rotate again")
    with engine.connect() as conn:
        committed = conn.execute(
            select(key_rotations.c.rotation_id, func.coalesce(key_rotations.c.borrowers_rekeyed, 0))
            .where(key_rotations.c.status == "done", key_rotations.c.to_key_id == new.key_id)
        ).first()
    if committed is not None:  # an interrupted rotation committed: only the files are left to promote
        retired_path = _promote(folder, old_secret, old.key_id, next_path, active_path)
        return Rotation(committed[0], old.key_id, new.key_id, committed[1], retired_path, finished_only=True)
    try:
        rotation_id, rows = rekey_borrowers(engine, old, new, operator=operator, on=on, chunk_rows=chunk_rows, fault=fault)
    except BaseException:
        next_path.unlink(missing_ok=True)  # rolled back: nothing was written under the new key
        raise
    if fault is not None:
        fault("committed", rows)
    retired_path = _promote(folder, old_secret, old.key_id, next_path, active_path)
    return Rotation(rotation_id, old.key_id, new.key_id, rows, retired_path)


def rekey_borrowers(
    engine: Engine,
    old: Keyring,
    new: Keyring,
    *,
    operator: str,
    on: date,
    chunk_rows: int = REKEY_CHUNK,
    fault: Callable[[str, int], None] | None = None,
) -> tuple[int, int]:
    """Every ``borrowers`` row re-encrypted and re-hashed under ``new``, in one transaction, with its
    ``key_rotations`` row (running, then done). Returns (rotation id, rows re-keyed).

    ``old`` must be able to read every row (the active key and the retired ones): a row under a
    key nobody holds is refused before anything is written.
    """
    columns = [f"{name}_enc" for name in PERSONAL]
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":  # no booking or amendment slips in under the old key meanwhile
            conn.execute(text("LOCK TABLE borrowers IN SHARE ROW EXCLUSIVE MODE"))
        unknown = conn.execute(
            select(borrowers.c.key_id, func.min(borrowers.c.contract_no), func.count())
            .where(borrowers.c.key_id.not_in([old.key_id, *old.retired]))
            .group_by(borrowers.c.key_id)
        ).first()
        if unknown is not None:
            key_id, contract_no, count = unknown
            raise KeyRotationError(
                f"borrower row {contract_no} (and {count - 1} more) is under key id {key_id}, which is neither the active "
                f"key {old.key_id} nor a retired one; put that key in retired/{key_id}.key first. Nothing was changed"
            )
        running = conn.execute(select(key_rotations.c.rotation_id).where(key_rotations.c.status == "running")).first()
        if running is not None:  # only a hand-made row can be left running: a rotation's own commits it done
            raise KeyRotationError(f"key rotation {running[0]} is recorded as running; it was not made by keys rotate. Nothing was changed")
        rotation_id = conn.execute(
            insert(key_rotations).values(
                from_key_id=old.key_id, to_key_id=new.key_id, operator=operator, business_date=on,
                started_at=datetime.now(timezone.utc), status="running", borrowers_rekeyed=0,
            ).returning(key_rotations.c.rotation_id)
        ).scalar_one()
        statement = (
            update(borrowers)
            .where(borrowers.c.contract_no == bindparam("b_contract_no"))
            .values({c: bindparam(c) for c in [*columns, "national_id_hash", "details_hash", "key_id"]})
        )
        done, after = 0, ""
        while True:
            chunk = conn.execute(
                select(borrowers).where(borrowers.c.contract_no > after).order_by(borrowers.c.contract_no).limit(chunk_rows)
            ).mappings().all()
            if not chunk:
                break
            conn.execute(statement, [_rekeyed(old, new, row) for row in chunk])
            done += len(chunk)
            after = chunk[-1]["contract_no"]
            if fault is not None:
                fault("rekeyed", done)
        conn.execute(
            update(key_rotations)
            .where(key_rotations.c.rotation_id == rotation_id)
            .values(status="done", finished_at=datetime.now(timezone.utc), borrowers_rekeyed=done)
        )
    return rotation_id, done


def _rekeyed(old: Keyring, new: Keyring, row: Mapping[str, Any]) -> dict[str, Any]:
    contract_no = row["contract_no"]
    details = borrower_rows.stored_details(old, contract_no, row)
    values: dict[str, Any] = {
        f"{name}_enc": None if value is None else new.encrypt(value, f"{contract_no}/{name}")
        for name, value in details.personal().items()
    }
    return {
        **values,
        "national_id_hash": new.match_hash(details.national_id),
        "details_hash": borrower_rows.details_hash(new, details),
        "key_id": new.key_id,
        "b_contract_no": contract_no,
    }


def _new_key_file(path: Path) -> str:
    import secrets

    secret = secrets.token_urlsafe(48)
    _write_key(path, secret)
    return secret


def _write_key(path: Path, secret: str) -> None:
    """``secret`` into a new owner-only file, on disk before this returns."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _promote(folder: Path, old_secret: str, old_id: str, next_path: Path, active_path: Path) -> Path:
    """Keep the old key as retired, then make the new key the active one (one rename)."""
    retired = folder / RETIRED_DIR
    retired.mkdir(mode=0o700, exist_ok=True)
    kept = retired / f"{old_id}.key"
    if not kept.exists():
        _write_key(kept, old_secret)
    elif existing_key_secret(kept) != old_secret:
        raise KeyRotationError(f"retired key file {kept} exists and holds another secret; move it aside and run keys rotate again")
    os.replace(next_path, active_path)
    _fsync_dir(folder)
    return kept
