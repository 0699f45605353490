"""Events keep their hashes as 32 bytes, and the hash of the event before them only once.

- ``hash`` and ``mac``: 64 hex digits of text become the 32 bytes they spell
  (BLOB on SQLite, bytea on PostgreSQL); the code reads and writes them as the
  same hex text (``models.tables.HashBytes``), so every digest a seal, an
  export or ``verify`` shows is unchanged;
- ``prev_hash`` is dropped: it repeated the hash of the row before in seq
  order (``GENESIS_HASH`` for the first), which is where ``verify`` reads it
  now. What each hash covers is unchanged, byte for byte;
- ``recorded_at`` on SQLite: integer microseconds since 1970, UTC
  (``models.tables.EpochMicroseconds``), not 26 characters of text
  (PostgreSQL's timestamptz is 8 bytes already).

Nothing is converted unless every event's ``prev_hash`` is the hash of the
row before it and every hash is 64 lowercase hex digits: a mismatch is
tampering, and converting would hide it (the link it breaks would no longer
be stored). The migration then refuses, naming the first case and seq.

SQLite rebuilds the table (it cannot change a column's type), so the
append-only triggers are dropped and made again exactly as the initial
migration made them; ``models.db`` runs a migration with SQLite's foreign
keys checked in full before the commit, not row by row, since a table other
tables refer to can be rebuilt no other way. PostgreSQL alters the columns
in place (one rewrite of the table; an ALTER fires no row trigger, so its
triggers stay). Run ``VACUUM`` afterwards on SQLite to give the freed pages
back to the file system.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from models.errors import StoreError

revision: str = "0015"
down_revision: Union[str, Sequence[str], None] = "0014"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

GENESIS_HASH = "0" * 64
APPEND_ONLY = "events are append-only"  # as migration 0001 raises it
CONTENT = ("case_id", "seq", "business_date", "type", "schema_version", "actor", "payload")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SQLITE_TEXT = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format of a DATETIME on SQLite


def upgrade() -> None:
    bind = op.get_bind()
    _refuse_broken_links(bind)
    if bind.dialect.name == "sqlite":
        _rebuild_sqlite(bind, _binary_columns(), _TO_BINARY)
    else:
        op.execute(
            "ALTER TABLE events DROP COLUMN prev_hash, "
            "ALTER COLUMN hash TYPE bytea USING decode(hash, 'hex'), "
            "ALTER COLUMN mac TYPE bytea USING decode(mac, 'hex')"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _rebuild_sqlite(bind, _text_columns(), _TO_TEXT)
        return
    op.execute(
        "ALTER TABLE events ALTER COLUMN hash TYPE varchar(64) USING encode(hash, 'hex'), "
        "ALTER COLUMN mac TYPE varchar(64) USING encode(mac, 'hex'), ADD COLUMN prev_hash varchar(64)"
    )
    op.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete")
    op.execute(
        f"UPDATE events SET prev_hash = linked.before FROM ("
        f"SELECT case_id, seq, LAG(hash, 1, '{GENESIS_HASH}') OVER (PARTITION BY case_id ORDER BY seq) AS before FROM events"
        f") AS linked WHERE events.case_id = linked.case_id AND events.seq = linked.seq"
    )
    op.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete")
    op.execute("ALTER TABLE events ALTER COLUMN prev_hash SET NOT NULL")


# --------------------------------------------------------------------------
# the checks before anything is converted


def _refuse_broken_links(bind: sa.Connection) -> None:
    """Refuse, naming the first case and seq, an event whose hash or MAC is not 64 lowercase hex
    digits, or whose ``prev_hash`` is not the hash of the row before it in seq order."""
    if bind.dialect.name == "sqlite":
        malformed = "length({c}) != 64 OR {c} GLOB '*[^0-9a-f]*'"
    else:
        malformed = "{c} !~ '^[0-9a-f]{{64}}$'"
    for column in ("hash", "mac"):
        row = bind.exec_driver_sql(
            f"SELECT case_id, seq FROM events WHERE {malformed.format(c=column)} ORDER BY case_id, seq LIMIT 1"
        ).first()
        if row is not None:
            raise StoreError(
                f"migration 0015 refused: case {row[0]} seq {row[1]}: its {column} is not a sha256 digest in lowercase hex "
                f"(edited?); nothing was converted, run collectflow verify"
            )
    row = bind.exec_driver_sql(
        f"SELECT case_id, seq FROM (SELECT case_id, seq, prev_hash, "
        f"LAG(hash, 1, '{GENESIS_HASH}') OVER (PARTITION BY case_id ORDER BY seq) AS before FROM events) AS linked "
        f"WHERE prev_hash != before ORDER BY case_id, seq LIMIT 1"
    ).first()
    if row is not None:
        raise StoreError(
            f"migration 0015 refused: case {row[0]} seq {row[1]}: its prev_hash is not the hash of the event before it "
            f"(history tampered with); nothing was converted, run collectflow verify"
        )


# --------------------------------------------------------------------------
# SQLite: a new table, the rows copied over converted, the old one dropped, the triggers made again


def _binary_columns() -> list[sa.Column]:
    return [
        *_content_columns(),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("mac", sa.LargeBinary(32), nullable=True),
    ]


def _text_columns() -> list[sa.Column]:
    """The table as migrations 0001 and 0007 made it."""
    return [
        *_content_columns(),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mac", sa.String(64), nullable=True),
    ]


def _content_columns() -> list[sa.Column]:
    return [
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
    ]


# what each new column is made of, from the old row (SQL over the columns of ``events``)
_TO_BINARY = {
    "hash": "cf_hash_bytes(hash)",
    "recorded_at": "cf_epoch_microseconds(recorded_at)",
    "mac": "cf_hash_bytes(mac)",
}
_TO_TEXT = {
    "prev_hash": f"lower(hex(LAG(hash, 1, x'{GENESIS_HASH}') OVER (PARTITION BY case_id ORDER BY seq)))",
    "hash": "lower(hex(hash))",
    "recorded_at": "cf_sqlite_datetime(recorded_at)",
    "mac": "CASE WHEN mac IS NULL THEN NULL ELSE lower(hex(mac)) END",
}


def _rebuild_sqlite(bind: sa.Connection, columns: list[sa.Column], made_of: dict[str, str]) -> None:
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise StoreError("migration 0015 rebuilds the events table: run it through collectflow db upgrade (models.db.upgrade)")
    raw = bind.connection.driver_connection
    raw.create_function("cf_hash_bytes", 1, _hash_bytes, deterministic=True)
    raw.create_function("cf_epoch_microseconds", 1, _epoch_microseconds, deterministic=True)
    raw.create_function("cf_sqlite_datetime", 1, _sqlite_datetime, deterministic=True)
    for action in ("update", "delete"):
        op.execute(f"DROP TRIGGER events_refuse_{action}")
    op.create_table(
        "_events_0015",
        *columns,
        sa.PrimaryKeyConstraint("case_id", "seq", name="pk_events"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], name="fk_events_case_id_cases"),
    )
    names = [c.name for c in columns]
    values = [made_of.get(name, name) for name in names]
    op.execute(f"INSERT INTO _events_0015 ({', '.join(names)}) SELECT {', '.join(values)} FROM events ORDER BY case_id, seq")
    op.execute("DROP TABLE events")
    op.execute("ALTER TABLE _events_0015 RENAME TO events")
    for action in ("UPDATE", "DELETE"):  # exactly as migration 0001 made them
        op.execute(
            f"CREATE TRIGGER events_refuse_{action.lower()} BEFORE {action} ON events "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}: {action} refused'); END"
        )


def _hash_bytes(digest: str | None) -> bytes | None:
    return None if digest is None else bytes.fromhex(digest)  # checked to be lowercase hex before


def _epoch_microseconds(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _sqlite_datetime(microseconds: int) -> str:
    return (_EPOCH + timedelta(microseconds=microseconds)).strftime(_SQLITE_TEXT)
