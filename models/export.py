"""A case's history as a court or a regulator asks for it: self-checking, provable with a public key.

``export_case`` writes one JSON document: the case's events as stored (every
column the chain hashes, and the hashes), the timeline with every charge
explained, the payments' allocations, and the newest seal that covers the
case with the Merkle proof of the case's leaf in it. ``verify_export``
checks such a file with nothing but the file and the seal's public key:
the chain from the first event, the seal's signature, the leaf's place in
the sealed root, and the document's own digest.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, select

from models.audit import timeline
from models.errors import StoreError
from models.recorder import chain_hash, stored_canonical_json
from models.seals import own_seals, read_public_key
from models.store import CaseStore
from models.tables import GENESIS_HASH, events
from states.seals import Leaf, SealBody, inclusion_proof, read_leaves, root_from_proof

FORMAT = "collectflow-case-export/1"
HASHED = ("case_id", "seq", "type", "business_date", "actor", "schema_version", "payload")


def _digest(document: dict[str, Any]) -> str:
    body = {k: v for k, v in document.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def export_case(store: CaseStore, case_ref: str, as_of: date, seals_dir: Path | None, policy=None) -> dict[str, Any]:
    """The export document of a case through ``as_of`` (see the module docstring)."""
    case_id = store.resolve_case_id(case_ref)
    with store.engine.connect() as conn:
        rows = conn.execute(select(events).where(events.c.case_id == case_id).order_by(events.c.seq)).mappings().all()
    # the history through ``as_of``: the events before the first one dated later (a chain has no gaps;
    # the timeline below replays the same events), each event's prev_hash the hash of the row before it
    # in seq order (the store keeps it once, in that row)
    through = list(itertools.takewhile(lambda row: row["business_date"] <= as_of, rows))
    stored = [
        {**{k: (row[k].isoformat() if k == "business_date" else row[k]) for k in HASHED}, "prev_hash": prev["hash"], "hash": row["hash"]}
        for prev, row in zip([{"hash": GENESIS_HASH}, *through], through)
    ]
    document: dict[str, Any] = {
        "format": FORMAT,
        "case_id": case_id,
        "contract_no": store.case_row(case_id).projection.contract_no,
        "as_of": as_of.isoformat(),
        "events": stored,
        "timeline": [row.as_dict() for row in timeline(store, case_id, as_of, policy)],
        "seal": None,
    }
    covering = _covering_seal(store.engine, seals_dir, case_id, len(stored)) if seals_dir is not None else None
    if covering is not None:
        seal, leaves, index = covering
        document["seal"] = {
            "body": seal.body.as_dict(),
            "signature": seal.signature,
            "public_key": seal.public_key,
            "leaf": {"case_id": leaves[index].case_id, "seq": leaves[index].seq, "hash": leaves[index].hash},
            "proof": inclusion_proof(leaves, index),
        }
    document["digest"] = _digest(document)
    return document


def _covering_seal(engine: Engine, folder: Path, case_id: str, last_seq: int):
    """The newest seal of this store whose leaf of this case lies within the exported events: (seal, leaves, index)."""
    for seal in reversed(own_seals(engine, folder).own):
        path = seal.path.with_suffix(".leaves")
        if not path.exists():
            continue
        leaves = read_leaves(path.read_bytes())
        for index, leaf in enumerate(leaves):
            if leaf.case_id == case_id and leaf.seq <= last_seq:
                return seal, leaves, index
    return None


@dataclass(frozen=True)
class ExportCheck:
    problems: tuple[str, ...]
    events: int
    sealed_through: int | None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_export(document: Any, public_key: Ed25519PublicKey | None = None) -> ExportCheck:
    """Check an export with the file alone (and the trusted public key of the seals, if given).

    A file that is not an export's shape (a field missing, of another type, a date that is not one)
    is a ``StoreError`` naming what is wrong: the file is untrusted input."""
    if not isinstance(document, dict):
        raise StoreError(f"not a {FORMAT} file: its top level is a JSON {type(document).__name__}, not an object")
    if document.get("format") != FORMAT:
        raise StoreError(f"not a {FORMAT} file (format {document.get('format')!r})")
    try:
        return _checked(document, public_key)
    except KeyError as exc:
        raise StoreError(f"not a well-formed {FORMAT} file: a field is missing ({exc})") from None
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise StoreError(f"not a well-formed {FORMAT} file: {exc}") from None


def _checked(document: dict[str, Any], public_key: Ed25519PublicKey | None) -> ExportCheck:
    problems: list[str] = []
    if _digest(document) != document.get("digest"):
        problems.append("the document's digest does not match its content: edited after export")
    prev, chain = GENESIS_HASH, {}
    for n, event in enumerate(document["events"], 1):
        if event["seq"] != n:
            problems.append(f"seq {event['seq']}: expected seq {n} (an event is missing or out of order)")
        canonical = stored_canonical_json(**{**{k: event[k] for k in HASHED}, "business_date": date.fromisoformat(event["business_date"])})
        prev = chain_hash(prev, canonical)
        if prev != event["hash"]:
            problems.append(f"seq {event['seq']}: its hash is not the chain of the events before it and its content")
        chain[event["seq"]] = prev
    sealed = document.get("seal")
    sealed_through = None
    if sealed is not None:
        body = SealBody.from_dict(sealed["body"])
        key = public_key or read_public_key(sealed["public_key"])
        try:
            key.verify(base64.b64decode(sealed["signature"]), body.canonical())
        except (InvalidSignature, ValueError):
            problems.append(f"the seal of {body.business_date}: bad signature")
        leaf = Leaf(**sealed["leaf"])
        if root_from_proof(leaf, [tuple(step) for step in sealed["proof"]]) != body.root:
            problems.append(f"the case's leaf is not in the root of the seal of {body.business_date}")
        if chain.get(leaf.seq) != leaf.hash:
            problems.append(f"seq {leaf.seq}: the exported history differs from what the seal of {body.business_date} covered")
        sealed_through = leaf.seq
    return ExportCheck(tuple(problems), len(document["events"]), sealed_through)


def markdown(document: dict[str, Any]) -> str:
    """A readable rendering of an export, for people; the JSON is what proves."""
    lines = [
        f"# Case {document['case_id']} (contract {document['contract_no']}) as of {document['as_of']}",
        "",
        f"{len(document['events'])} events, hash-chained; document digest `{document['digest']}`.",
    ]
    seal = document.get("seal")
    if seal:
        lines.append(f"Sealed through seq {seal['leaf']['seq']} by the seal of {seal['body']['business_date']} (root `{seal['body']['root']}`).")
    lines += ["", "| seq | date | event | by |", "|---|---|---|---|"]
    for row in document["timeline"]:
        lines.append(f"| {row.get('seq', '')} | {row.get('business_date', '')} | {str(row.get('description', '')).replace('|', '/')} | {row.get('actor', '')} |")
        for charge in row.get("charges", []):
            lines.append(f"|  |  | {charge['text'].replace('|', '/')} |  |")
    return "\n".join(lines) + "\n"
