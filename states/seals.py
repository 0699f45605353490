"""Portfolio seals: what a daily close commits to, so history cannot be rewritten unseen.

A seal commits to every case's newest event as the store held it at the end
of a close: the leaves are ``(case id, last seq, last hash)`` in case-id
order (code-point order), the root is a Merkle tree over them (RFC 6962's
shape: leaf hash ``sha256(0x00 || leaf)``, node hash ``sha256(0x01 || left
|| right)``, an odd node carried up). The seal's body adds the counts
(cases, events, payments), the business date and the previous seal's hash,
so seals form a chain; the body's canonical JSON is what gets signed
(``models.seals`` signs with Ed25519, with a key kept away from the database).

A seal names the store it belongs to (``store``: the id the store keeps in
its database, format ``collectflow-seal/2``), so that stores sharing a seals
folder each check and chain only their own. Seals written before that
(``collectflow-seal/1``) name no store; their bytes, signature and hash are
unchanged, and ``models.seals`` decides which store they belong to.

Someone with write access to the database can recompute every sha256 of a
rewritten history, but not the leaves of a seal already written outside it,
nor its signature: ``verify --seals`` finds any case or event that a seal
covered and that is now missing, shortened, reordered or rewritten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

SEAL_FORMAT = "collectflow-seal/2"  # names its store
UNNAMED_SEAL_FORMAT = "collectflow-seal/1"  # before seals named their store: read and checked as written
GENESIS_SEAL = "0" * 64


@dataclass(frozen=True)
class Leaf:
    """One case as a seal saw it: its newest event."""

    case_id: str
    seq: int
    hash: str

    def encoded(self) -> bytes:
        return f"{self.case_id}\x1f{self.seq}\x1f{self.hash}".encode("utf-8")


@dataclass(frozen=True)
class SealBody:
    """What a seal states; ``canonical()`` is what is signed and chained."""

    business_date: date
    sealed_at: str  # ISO UTC timestamp, for people; not part of any rule
    cases: int
    events: int
    payments: int
    root: str
    leaves_sha256: str  # of the leaves file kept beside the seal
    previous: str  # the previous seal's hash (of the same store), or GENESIS_SEAL
    store: str | None = None  # the store's id; None: a seal of before seals named their store

    def as_dict(self) -> dict[str, object]:
        named = {} if self.store is None else {"store": self.store}
        return {
            "format": UNNAMED_SEAL_FORMAT if self.store is None else SEAL_FORMAT,
            **named,
            "business_date": self.business_date.isoformat(),
            "sealed_at": self.sealed_at,
            "cases": self.cases,
            "events": self.events,
            "payments": self.payments,
            "root": self.root,
            "leaves_sha256": self.leaves_sha256,
            "previous": self.previous,
        }

    def canonical(self) -> bytes:
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":")).encode("utf-8")

    def digest(self) -> str:
        """The seal's hash: what the next seal names as ``previous``."""
        return hashlib.sha256(self.canonical()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SealBody:
        kind = data.get("format")
        if kind not in (SEAL_FORMAT, UNNAMED_SEAL_FORMAT):
            raise ValueError(f"not a {SEAL_FORMAT} (or {UNNAMED_SEAL_FORMAT}) seal: format {kind!r}")
        store = data.get("store") if kind == SEAL_FORMAT else None
        if kind == SEAL_FORMAT and (not isinstance(store, str) or not store):
            raise ValueError(f"a {SEAL_FORMAT} seal names its store: got {store!r}")
        return cls(
            business_date=date.fromisoformat(str(data["business_date"])),
            sealed_at=str(data["sealed_at"]),
            cases=int(data["cases"]),  # type: ignore[arg-type]
            events=int(data["events"]),  # type: ignore[arg-type]
            payments=int(data["payments"]),  # type: ignore[arg-type]
            root=str(data["root"]),
            leaves_sha256=str(data["leaves_sha256"]),
            previous=str(data["previous"]),
            store=store,
        )


def merkle_root(leaves: Iterable[Leaf]) -> str:
    """The Merkle root over the leaves, in the order given (sha256 of nothing for no leaf)."""
    level = [hashlib.sha256(b"\x00" + leaf.encoded()).digest() for leaf in leaves]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        paired = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])  # an odd node is carried up unchanged
        level = paired
    return level[0].hex()


def leaves_text(leaves: Sequence[Leaf]) -> bytes:
    """The leaves file: one ``case_id<TAB>seq<TAB>hash`` line per leaf, in order."""
    return "".join(f"{leaf.case_id}\t{leaf.seq}\t{leaf.hash}\n" for leaf in leaves).encode("utf-8")


def read_leaves(text: bytes) -> list[Leaf]:
    leaves = []
    for number, line in enumerate(text.decode("utf-8").splitlines(), 1):
        try:
            case_id, seq, digest = line.split("\t")
            leaves.append(Leaf(case_id, int(seq), digest))
        except ValueError:
            raise ValueError(f"leaves line {number} is not case_id<TAB>seq<TAB>hash") from None
    return leaves


def chain_breaks(bodies: Sequence[SealBody], start: str = GENESIS_SEAL) -> list[str]:
    """Where a sequence of seals, oldest first, does not chain (each must name the one before; the
    first must name ``start``)."""
    problems = []
    previous = start
    for body in bodies:
        if body.previous != previous:
            problems.append(f"seal of {body.business_date}: names previous seal {body.previous[:12]}, the one before it is {previous[:12]}")
        previous = body.digest()
    return problems


def inclusion_proof(leaves: Sequence[Leaf], index: int) -> list[tuple[str, str]]:
    """The sibling hashes that take leaf ``index`` up to the root: ("L"|"R", hex) from the bottom."""
    level = [hashlib.sha256(b"\x00" + leaf.encoded()).digest() for leaf in leaves]
    proof: list[tuple[str, str]] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(("L" if sibling < index else "R", level[sibling].hex()))
        paired = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level, index = paired, index // 2
    return proof


def root_from_proof(leaf: Leaf, proof: Sequence[tuple[str, str]]) -> str:
    """The root a leaf and its inclusion proof give (equal to the seal's root when the leaf is in it)."""
    node = hashlib.sha256(b"\x00" + leaf.encoded()).digest()
    for side, sibling in proof:
        other = bytes.fromhex(sibling)
        node = hashlib.sha256(b"\x01" + (other + node if side == "L" else node + other)).digest()
    return node.hex()
