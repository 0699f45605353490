"""Seals kept outside the database: made at the end of each close, checked by ``verify --seals``.

    seal(store, business_date)   the leaves of every case (its newest event), their Merkle
                                 root and counts, naming the store, chained to the store's
                                 previous seal, signed (Ed25519), written as two files into the
                                 seals directory: seal-<date>-<n>.json and its leaves,
                                 seal-<date>-<n>.leaves
    check_seals(engine, dir, key)  every seal of this store: its signature and chain, its leaves
                                 file, and the database against every leaf: a case or an event a
                                 seal covered that is now missing, shortened or rewritten is a
                                 finding

Stores may share a seals folder (the default, ``./collectflow-seals``, is
relative to where a command runs). Each seal names its store (the id in the
store's ``store_identity`` row) and a store reads only its own seals: those of
another store are counted and left alone, never a finding. A seal written
before seals named their store (``collectflow-seal/1``) is this store's when
the store already held events when it got its id (``owns_unnamed_seals``) and
the seal names at least one case the store holds (or names none, or its
leaves cannot be read: checked, as before, so an emptied store or a removed
leaves file still shows). Their chain is checked as written when every such
seal in the folder is this store's; seals of two stores written into one
folder before then chain into each other, so there only their signatures and
leaves are checked. The first seal naming its store chains to the store's
newest unnamed seal (or starts the chain).

The signing key never lives in the database or its data directory: it comes
from ``COLLECTFLOW_SEAL_KEY`` (base64 of the 32-byte private key, from a
secret store) or, for the embedded default, from ``<key_dir>/seal-signing.key``,
generated on first use with mode 0600 beside its public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, func, select

from models.audit import Finding
from models.errors import StoreError
from models.recorder import chain_hash, stored_canonical_json
from models.settings import Settings
from models.sql import binary_order
from models.tables import GENESIS_HASH, cases, events, payments, store_identity
from states.seals import GENESIS_SEAL, Leaf, SealBody, chain_breaks, leaves_text, merkle_root, read_leaves

SIGNING_KEY_FILE = "seal-signing.key"
PUBLIC_KEY_FILE = "seal-signing.pub"
ENV_KEY = "COLLECTFLOW_SEAL_KEY"


class SealError(StoreError):
    """No usable seal key or seals directory; the message says what to do."""


# --------------------------------------------------------------------------
# keys


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The seal signing key: COLLECTFLOW_SEAL_KEY, else the key dir's file (generated on first use)."""
    given = os.environ.get(ENV_KEY, "").strip()
    if given:
        try:
            return Ed25519PrivateKey.from_private_bytes(base64.b64decode(given, validate=True))
        except ValueError:
            raise SealError(f"{ENV_KEY}: not the base64 of a 32-byte Ed25519 private key") from None
    folder = _key_dir(settings)
    path = folder / SIGNING_KEY_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.b64encode(raw).decode() + "\n")
        (folder / PUBLIC_KEY_FILE).write_text(public_key_text(key.public_key()) + "\n", encoding="ascii")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SealError(f"seal signing key {path} is readable by group or others (mode {mode:04o}); run: chmod 600 {path}")
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text(encoding="ascii").strip()))


def public_key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def read_public_key(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip(), validate=True))
    except ValueError:
        raise SealError("the public key is not the base64 of a 32-byte Ed25519 public key") from None


def _key_dir(settings: Settings) -> Path:
    folder = settings.key_dir.resolve()
    data = settings.data_dir.resolve()
    if folder == data or data in folder.parents:
        raise SealError(f"COLLECTFLOW_KEY_DIR {folder} is inside the data directory {data}; keep keys away from the database")
    return folder


# --------------------------------------------------------------------------
# making a seal


@dataclass(frozen=True)
class Seal:
    body: SealBody
    signature: str  # base64 Ed25519 over body.canonical()
    public_key: str
    path: Path

    def as_dict(self) -> dict[str, object]:
        return {**self.body.as_dict(), "hash": self.body.digest(), "signature": self.signature, "public_key": self.public_key}


def current_leaves(engine: Engine) -> list[Leaf]:
    """Every case's newest event as the store holds it, in case-id (code-point) order."""
    query = select(cases.c.case_id, cases.c.version, cases.c.last_hash).order_by(binary_order(cases.c.case_id, engine.dialect.name))
    with engine.connect() as conn:
        return [Leaf(case_id, version, digest) for case_id, version, digest in conn.execute(query)]


@dataclass(frozen=True)
class StoreId:
    """Who the store is, for its seals (the ``store_identity`` row, migration 0018)."""

    store_id: str
    owns_unnamed_seals: bool


def read_store_id(engine: Engine) -> StoreId | None:
    """The store's id (None: its ``store_identity`` row is gone)."""
    query = select(store_identity.c.store_id, store_identity.c.owns_unnamed_seals).order_by(store_identity.c.store_id).limit(1)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else StoreId(row[0], bool(row[1]))


def seal(engine: Engine, settings: Settings, business_date: date) -> Seal:
    """Seal the store as it is now, for ``business_date``: write the seal and its leaves; the seal."""
    key = signing_key(settings)
    identity = read_store_id(engine)
    if identity is None:
        raise SealError(
            "this store has no store id (its store_identity row is gone), and a seal names its store: "
            "restore the row from a backup of the database; verify --seals checks only the seals that name it"
        )
    folder = settings.seals_dir
    folder.mkdir(parents=True, exist_ok=True)
    leaves = current_leaves(engine)
    with engine.connect() as conn:
        event_count = conn.execute(select(func.count()).select_from(events)).scalar_one()
        payment_count = conn.execute(select(func.count()).select_from(payments)).scalar_one()
    in_folder = load_seals(folder)
    named = [s for s in in_folder if s.body.store == identity.store_id]
    # the store's previous seal; only its first named seal needs to know which unnamed ones are its own
    previous = named[-1:] or store_seals(engine, in_folder, identity).own[-1:]
    text = leaves_text(leaves)
    body = SealBody(
        business_date=business_date,
        sealed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        cases=len(leaves),
        events=event_count,
        payments=payment_count,
        root=merkle_root(leaves),
        leaves_sha256=hashlib.sha256(text).hexdigest(),
        previous=previous[0].body.digest() if previous else GENESIS_SEAL,
        store=identity.store_id,
    )
    stem = f"seal-{business_date.isoformat()}-{len(in_folder) + 1:06d}"  # numbered across the folder: names never collide
    (folder / f"{stem}.leaves").write_bytes(text)
    signature = base64.b64encode(key.sign(body.canonical())).decode()
    made = Seal(body, signature, public_key_text(key.public_key()), folder / f"{stem}.json")
    made.path.write_text(json.dumps(made.as_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return made


def load_seals(folder: Path) -> list[Seal]:
    """The seals in ``folder``, of every store, oldest first (by their sequence number)."""
    found = []
    for path in sorted(folder.glob("seal-*.json"), key=lambda p: p.stem.rsplit("-", 1)[-1]):
        data = json.loads(path.read_text(encoding="utf-8"))
        found.append(Seal(SealBody.from_dict(data), str(data["signature"]), str(data["public_key"]), path))
    return found


@dataclass(frozen=True)
class StoreSeals:
    """The seals of a folder as one store sees them."""

    own: list[Seal]  # this store's, oldest first: the unnamed ones it owns, then those that name it
    others: int  # seals of another store (or unnamed and not this store's): left alone
    unnamed_chain: bool  # every unnamed seal in the folder is this store's: their chain is checked as written

    def chain_breaks(self) -> list[str]:
        unnamed = [s.body for s in self.own if s.body.store is None]
        named = [s.body for s in self.own if s.body.store is not None]
        found = chain_breaks(unnamed) if self.unnamed_chain else []
        return found + chain_breaks(named, unnamed[-1].digest() if unnamed else GENESIS_SEAL)


def store_seals(engine: Engine, seals: list[Seal], identity: StoreId | None) -> StoreSeals:
    """Which of ``seals`` (a folder's, oldest first) are this store's (module docstring)."""
    if identity is None:  # its row is gone: no seal can be told to be its own
        return StoreSeals([], len(seals), False)
    named = [s for s in seals if s.body.store == identity.store_id]
    unnamed = [s for s in seals if s.body.store is None]
    owned = [s for s in unnamed if identity.owns_unnamed_seals and _names_a_case_of(engine, s)]
    own_paths = {s.path for s in owned + named}
    return StoreSeals([s for s in seals if s.path in own_paths], len(seals) - len(own_paths), len(owned) == len(unnamed))


def _names_a_case_of(engine: Engine, s: Seal) -> bool:
    """Whether an unnamed seal is this store's: it names a case the store holds, or names none, or its
    leaves cannot be read (then it is checked, and its missing or changed leaves are the finding)."""
    leaves_path = s.path.with_suffix(".leaves")
    try:
        text = leaves_path.read_bytes()
        if hashlib.sha256(text).hexdigest() != s.body.leaves_sha256:
            return True
        ids = [leaf.case_id for leaf in read_leaves(text)]
    except (OSError, ValueError):
        return True
    if not ids:
        return True
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            if conn.execute(select(cases.c.case_id).where(cases.c.case_id.in_(ids[start : start + 500])).limit(1)).first():
                return True
    return False


# --------------------------------------------------------------------------
# checking the store against the seals


@dataclass(frozen=True)
class SealCheck:
    findings: list[Finding]
    checked: int  # this store's seals, read and checked
    others: int  # seals of another store in the folder, left alone


def check_seals(engine: Engine, folder: Path, public_key: Ed25519PublicKey | None = None) -> tuple[list[Finding], int]:
    """Findings of this store's seals in ``folder`` and of the store against them; and how many were read."""
    checked = check_store_seals(engine, folder, public_key)
    return checked.findings, checked.checked


def check_store_seals(engine: Engine, folder: Path, public_key: Ed25519PublicKey | None = None) -> SealCheck:
    """Findings of this store's seals in ``folder`` and of the store against them; how many seals
    were checked, and how many of another store were left alone.

    ``public_key`` is the trusted key (default: the one each seal names; give the key from the
    key dir or your records so that a seal re-signed with another key is caught).
    """
    if not folder.is_dir():
        raise SealError(f"--seals {folder}: no such folder of seals")
    try:
        ours = store_seals(engine, load_seals(folder), read_store_id(engine))
    except (ValueError, KeyError) as exc:
        raise SealError(f"--seals {folder}: a seal file cannot be read: {exc}") from None
    seals = ours.own
    findings: list[Finding] = []
    wanted: dict[str, list[tuple[int, str, date]]] = {}
    for problem in ours.chain_breaks():
        findings.append(Finding("(seals)", None, problem))
    for s in seals:
        key = public_key or read_public_key(s.public_key)
        try:
            key.verify(base64.b64decode(s.signature), s.body.canonical())
        except (InvalidSignature, ValueError):
            findings.append(Finding("(seals)", None, f"seal of {s.body.business_date} ({s.path.name}): bad signature"))
            continue
        leaves_path = s.path.with_suffix(".leaves")
        text = leaves_path.read_bytes() if leaves_path.exists() else b""
        if hashlib.sha256(text).hexdigest() != s.body.leaves_sha256:
            findings.append(Finding("(seals)", None, f"seal of {s.body.business_date}: its leaves file {leaves_path.name} is missing or changed"))
            continue
        leaves = read_leaves(text)
        if merkle_root(leaves) != s.body.root or len(leaves) != s.body.cases:
            findings.append(Finding("(seals)", None, f"seal of {s.body.business_date}: its leaves do not give its root"))
            continue
        for leaf in leaves:
            wanted.setdefault(leaf.case_id, []).append((leaf.seq, leaf.hash, s.body.business_date))
    findings += _store_against(engine, wanted)
    return SealCheck(findings, len(seals), ours.others)


def own_seals(engine: Engine, folder: Path) -> StoreSeals:
    """This store's seals in ``folder`` (none when there is no such folder)."""
    if not folder.is_dir():
        return StoreSeals([], 0, True)
    return store_seals(engine, load_seals(folder), read_store_id(engine))


def case_against_seals(engine: Engine, folder: Path, case_id: str) -> list[Finding]:
    """The findings of one case against every seal of this store in ``folder`` that covered it (none: no seals there)."""
    marks = []
    for s in own_seals(engine, folder).own:
        leaves_path = s.path.with_suffix(".leaves")
        if leaves_path.exists():
            marks += [(leaf.seq, leaf.hash, s.body.business_date) for leaf in read_leaves(leaves_path.read_bytes()) if leaf.case_id == case_id]
    return _store_against(engine, {case_id: marks}) if marks else []


def _store_against(engine: Engine, wanted: dict[str, list[tuple[int, str, date]]]) -> list[Finding]:
    """Recompute every sealed case's chain from the events as stored (one pass over the event
    table, in case and seq order) and compare it with each seal at each sealed seq."""
    findings: list[Finding] = []
    chains: dict[str, dict[int, str]] = {}
    query = select(events).order_by(binary_order(events.c.case_id, engine.dialect.name), events.c.seq)
    with engine.connect() as conn:
        current, prev, expected_seq, needed, marked = None, GENESIS_HASH, 1, 0, frozenset()
        for row in conn.execution_options(yield_per=5_000).execute(query).mappings():
            case_id = row["case_id"]
            if case_id != current:
                current, prev, expected_seq = case_id, GENESIS_HASH, 1
                marked = frozenset(seq for seq, _, _ in wanted.get(case_id, ()))
                needed = max(marked, default=0)
            if row["seq"] > needed or row["seq"] != expected_seq:
                continue  # past what any seal covered, or after a gap (nothing from there on chains)
            prev = chain_hash(prev, stored_canonical_json(
                case_id=case_id, seq=row["seq"], type=row["type"], business_date=row["business_date"],
                actor=row["actor"], schema_version=row["schema_version"], payload=row["payload"],
            ))
            if row["seq"] in marked:  # keep only what a seal is compared with: memory ~ the seals' leaves
                chains.setdefault(case_id, {})[row["seq"]] = prev
            expected_seq += 1
    for case_id in sorted(wanted):
        chain = chains.get(case_id, {})
        for seq, expected, sealed_on in sorted(set(wanted[case_id])):
            found = chain.get(seq)
            if found is None:
                findings.append(Finding(case_id, seq, f"sealed on {sealed_on} but the event is gone (history deleted or shortened)"))
            elif found != expected:
                findings.append(Finding(case_id, seq, f"differs from the seal of {sealed_on}: history rewritten (even if its hashes were recomputed)"))
    return findings
