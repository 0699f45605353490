"""Seals kept outside the database: made at the end of each close, checked by ``verify --seals``.

    seal(store, business_date)   the leaves of every case (its newest event), their Merkle
                                 root and counts, chained to the previous seal, signed
                                 (Ed25519), written as two files into the seals directory:
                                 seal-<date>-<n>.json and its leaves, seal-<date>-<n>.leaves
    check_seals(engine, dir, key)  every seal's signature and chain, every leaves file, and the
                                 database against every leaf: a case or an event a seal covered
                                 that is now missing, shortened or rewritten is a finding

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
from models.tables import GENESIS_HASH, cases, events, payments
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


def seal(engine: Engine, settings: Settings, business_date: date) -> Seal:
    """Seal the store as it is now, for ``business_date``: write the seal and its leaves; the seal."""
    key = signing_key(settings)
    folder = settings.seals_dir
    folder.mkdir(parents=True, exist_ok=True)
    leaves = current_leaves(engine)
    with engine.connect() as conn:
        event_count = conn.execute(select(func.count()).select_from(events)).scalar_one()
        payment_count = conn.execute(select(func.count()).select_from(payments)).scalar_one()
    previous = load_seals(folder)
    text = leaves_text(leaves)
    body = SealBody(
        business_date=business_date,
        sealed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        cases=len(leaves),
        events=event_count,
        payments=payment_count,
        root=merkle_root(leaves),
        leaves_sha256=hashlib.sha256(text).hexdigest(),
        previous=previous[-1].body.digest() if previous else GENESIS_SEAL,
    )
    stem = f"seal-{business_date.isoformat()}-{len(previous) + 1:06d}"
    (folder / f"{stem}.leaves").write_bytes(text)
    signature = base64.b64encode(key.sign(body.canonical())).decode()
    made = Seal(body, signature, public_key_text(key.public_key()), folder / f"{stem}.json")
    made.path.write_text(json.dumps(made.as_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return made


def load_seals(folder: Path) -> list[Seal]:
    """The seals in ``folder``, oldest first (by their sequence number)."""
    found = []
    for path in sorted(folder.glob("seal-*.json"), key=lambda p: p.stem.rsplit("-", 1)[-1]):
        data = json.loads(path.read_text(encoding="utf-8"))
        found.append(Seal(SealBody.from_dict(data), str(data["signature"]), str(data["public_key"]), path))
    return found


# --------------------------------------------------------------------------
# checking the store against the seals


def check_seals(engine: Engine, folder: Path, public_key: Ed25519PublicKey | None = None) -> tuple[list[Finding], int]:
    """Findings of the seals in ``folder`` and of the store against them; and how many seals were read.

    ``public_key`` is the trusted key (default: the one each seal names; give the key from the
    key dir or your records so that a seal re-signed with another key is caught).
    """
    if not folder.is_dir():
        raise SealError(f"--seals {folder}: no such folder of seals")
    try:
        seals = load_seals(folder)
    except (ValueError, KeyError) as exc:
        raise SealError(f"--seals {folder}: a seal file cannot be read: {exc}") from None
    findings: list[Finding] = []
    wanted: dict[str, list[tuple[int, str, date]]] = {}
    for problem in chain_breaks([s.body for s in seals]):
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
    return findings, len(seals)


def case_against_seals(engine: Engine, folder: Path, case_id: str) -> list[Finding]:
    """The findings of one case against every seal in ``folder`` that covered it (none: no seals there)."""
    if not folder.is_dir():
        return []
    marks = []
    for s in load_seals(folder):
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
