"""The seal's Merkle tree: every leaf's inclusion proof gives the root; any other leaf does not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.seals import GENESIS_SEAL, Leaf, SealBody, chain_breaks, inclusion_proof, merkle_root, root_from_proof
from datetime import date


@given(st.integers(min_value=1, max_value=40), st.data())
def test_every_leaf_proves_its_place_and_a_changed_leaf_does_not(count, data):
    leaves = [Leaf(f"CF{n:07d}", n + 1, f"{n:064x}") for n in range(count)]
    root = merkle_root(leaves)
    index = data.draw(st.integers(min_value=0, max_value=count - 1))
    proof = inclusion_proof(leaves, index)
    assert root_from_proof(leaves[index], proof) == root
    forged = Leaf(leaves[index].case_id, leaves[index].seq, "f" * 64)
    assert root_from_proof(forged, proof) != root


def test_seals_chain_by_the_hash_of_the_one_before():
    first = SealBody(date(2026, 1, 1), "t", 1, 2, 0, "a" * 64, "b" * 64, GENESIS_SEAL)
    second = SealBody(date(2026, 1, 2), "t", 1, 3, 0, "c" * 64, "d" * 64, first.digest())
    assert chain_breaks([first, second]) == []
    assert chain_breaks([second]) and chain_breaks([first, first])


def test_a_seal_of_before_seals_named_their_store_reads_and_hashes_as_it_was_written():
    unnamed = SealBody(date(2026, 1, 1), "t", 1, 2, 0, "a" * 64, "b" * 64, GENESIS_SEAL)
    assert unnamed.canonical() == (
        b'{"business_date":"2026-01-01","cases":1,"events":2,"format":"collectflow-seal/1","leaves_sha256":"' + b"b" * 64
        + b'","payments":0,"previous":"' + b"0" * 64 + b'","root":"' + b"a" * 64 + b'","sealed_at":"t"}'
    )  # the bytes its signature is over: unchanged
    assert SealBody.from_dict(unnamed.as_dict()) == unnamed

    named = SealBody(date(2026, 1, 2), "t", 1, 3, 0, "c" * 64, "d" * 64, unnamed.digest(), store="s1")
    assert named.as_dict()["format"] == "collectflow-seal/2" and SealBody.from_dict(named.as_dict()) == named
    assert chain_breaks([named], start=unnamed.digest()) == [] and chain_breaks([named])
    with pytest.raises(ValueError, match="names its store"):
        SealBody.from_dict({**named.as_dict(), "store": ""})
