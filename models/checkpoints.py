"""Checkpoints of ``verify --incremental``: a case checked clean is not replayed again until a
byte of what its check read changes.

A full verify replays every case from its first event; on a store of a
million cases that is most of an hour, though on a given day only the cases
the close reviewed have changed. So an incremental verify keeps, per case it
found clean, a checkpoint (``verified_cases``): the seq of the case's newest
event and an HMAC under the chain key of that seq and of a digest of
everything the case's check read: every column of its events that verify
checks (payload, hash, MAC ...), the case row but its stuck flags (a
quarantine sets them without an event), and its loans, payment, placement,
commission and credit-report rows, with a fingerprint of the code that
replays and compares. The digest itself is not stored: it is worked out
again from the rows.

On the next incremental verify a case whose checkpoint's MAC is the one of
its newest seq and of the digest of its rows now is not checked again: its
events and rows are, byte for byte, those a full check found clean, by the
same code (a new release of the rules, which might replay differently,
changes the fingerprint: every case is checked again). Anything else (a new
event, a row edited, a checkpoint deleted, copied from another case or made
without the key) sends the case to the full check, whose findings are exactly
a full verify's; a case it finds clean gets a new checkpoint. A checkpoint is
only ever a reason to skip work, never a finding: tampering with one costs a
replay, nothing more. Without the chain key a checkpoint could be made by
whoever can edit the rows, so incremental verify needs the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import InternalError, OperationalError, ProgrammingError

from models.db import write_transaction
from models.sql import chunks
from models.tables import cases, verified_cases

log = logging.getLogger(__name__)

# the case row's columns a replay is compared with: all but the stuck flags, which a quarantine sets
COMPARED_COLUMNS = tuple(c.name for c in cases.c if not c.name.startswith("stuck"))
_PACKAGES = ("states", "models")  # the code that replays the events and compares the rows


@cache
def fingerprint() -> bytes:
    """A digest of the source of the code that replays and compares (``states`` and ``models``):
    a checkpoint made by other code is not trusted."""
    from importlib.metadata import PackageNotFoundError, version

    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    try:
        digest.update(version("collectflow").encode())
    except PackageNotFoundError:
        pass
    for package in _PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


def case_digest(compared: Any) -> str:
    """The digest of what a case's check reads (``compared``: plain values in a fixed order, hashed
    as orjson writes them: a tenth of ``repr``'s cost), with the code's fingerprint."""
    return hashlib.sha256(fingerprint() + orjson.dumps(compared, default=repr)).hexdigest()


def checkpoint_mac(chain_key: bytes, case_id: str, version: int, digest: str) -> str:
    return hmac.new(chain_key, f"{case_id}\n{version}\n{digest}".encode("utf-8"), hashlib.sha256).hexdigest()


def read(conn: Connection, case_ids: Sequence[str]) -> dict[str, str]:
    """The MACs of the checkpoints of ``case_ids`` that exist, by case."""
    query = select(verified_cases.c.case_id, verified_cases.c.mac).where(verified_cases.c.case_id.in_(case_ids))
    return {case_id: mac for case_id, mac in conn.execute(query)}


def holds(chain_key: bytes, stored_mac: str | None, case_id: str, version: int, digest: str) -> bool:
    """Whether ``stored_mac`` is a checkpoint's of this case at ``version`` with rows of this digest
    (the digest itself is not stored: a MAC over another version or other rows cannot match)."""
    return stored_mac is not None and hmac.compare_digest(stored_mac, checkpoint_mac(chain_key, case_id, version, digest))


def record(engine: Engine, chain_key: bytes, marks: Iterable[tuple[str, int, str]]) -> str | None:
    """Keep ``(case_id, version, digest)`` as the cases' checkpoints, replacing older ones; None, or
    why they could not be written (a read-only file or role: the verify itself stands)."""
    rows = [
        {"case_id": case_id, "version": version, "mac": checkpoint_mac(chain_key, case_id, version, digest)}
        for case_id, version, digest in marks
    ]
    if not rows:
        return None
    try:
        with write_transaction(engine) as conn:
            for chunk in chunks([row["case_id"] for row in rows]):
                conn.execute(verified_cases.delete().where(verified_cases.c.case_id.in_(chunk)))
            conn.execute(insert(verified_cases), rows)
    except (OperationalError, ProgrammingError, InternalError) as exc:  # read-only file, role or standby
        log.info("verify checkpoints not kept (%s)", exc.orig)
        return f"checkpoints not kept ({exc.orig}); the next incremental verify replays these cases again"
    return None
