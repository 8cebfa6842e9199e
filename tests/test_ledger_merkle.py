"""RFC 6962 / 9162 hashing and proofs: the transparency-dev vectors, known answers, and
proofs generated over tiles, checked against an independent naive implementation."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from souverain.ledger import merkle
from souverain.ledger.tiles import (
    TileBuilder,
    TileNodes,
    decode_bundle,
    encode_bundle,
    encode_index,
    parse_tile_path,
    tile_path,
    tiles_for_size,
)

# transparency-dev's RFC 6962 test vectors (Apache-2.0), copied into the repository so
# that the suite needs nothing outside it.
VECTORS = Path(__file__).resolve().parent / "data" / "merkle-test-vectors"


def _b(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _vectors(kind: str) -> list[Path]:
    files = sorted((VECTORS / kind).glob("*.json")) + sorted(VECTORS.glob(f"{kind}-*.json"))
    return files


def test_vectors_are_present() -> None:
    # If the vectors were missing the parametrised tests below would silently be empty.
    assert len(_vectors("inclusion")) >= 98 and len(_vectors("consistency")) >= 98, VECTORS


@pytest.mark.parametrize("path", _vectors("inclusion"), ids=lambda p: p.stem)
def test_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b(h) for h in v["proof"] or []]
    try:
        merkle.verify_inclusion(v["leafIdx"], v["treeSize"], _b(v["leafHash"]), proof, _b(v["root"]))
        failed = False
    except merkle.ProofError:
        failed = True
    assert failed == v["wantErr"], v["desc"]


@pytest.mark.parametrize("path", _vectors("consistency"), ids=lambda p: p.stem)
def test_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b(h) for h in v["proof"] or []]
    try:
        merkle.verify_consistency(v["size1"], v["size2"], _b(v["root1"]), _b(v["root2"]), proof)
        failed = False
    except merkle.ProofError:
        failed = True
    assert failed == v["wantErr"], v["desc"]


def test_known_answers() -> None:
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle.leaf_hash(b"L123456").hex() == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert (
        merkle.node_hash(b"N123", b"N456").hex() == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )
    leaves = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
    roots = ["6e340b9c", "fac54203", "aeb6bcfe", "d37ee418", "4e3bbb1f", "76e67dad", "ddb89be4", "5dc9da79"]
    tree = merkle.MemoryTree()
    for leaf, root in zip(leaves, roots, strict=True):
        tree.append(bytes.fromhex(leaf))
        assert tree.root().hex().startswith(root), tree.size
    assert tree.root().hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def _naive_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 written out literally, to check the fast paths against."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _naive_root(leaves[:k]) + _naive_root(leaves[k:])).digest()


def test_generated_proofs_verify_for_every_pair_up_to_64() -> None:
    data = [i.to_bytes(2, "big") for i in range(64)]
    tree = merkle.MemoryTree()
    for n in range(1, 65):
        tree.append(data[n - 1])
        root = _naive_root(data[:n])
        assert tree.root() == root
        for i in range(n):
            merkle.verify_inclusion(i, n, merkle.leaf_hash(data[i]), tree.inclusion_proof(i, n), root)
        for m in range(1, n + 1):
            merkle.verify_consistency(m, n, _naive_root(data[:m]), root, tree.consistency_proof(m, n))


def test_wrong_proofs_fail() -> None:
    tree = merkle.MemoryTree()
    for i in range(13):
        tree.append(bytes([i]))
    root = tree.root()
    proof = tree.inclusion_proof(5)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(6, 13, merkle.leaf_hash(bytes([5])), proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(5, 13, merkle.leaf_hash(bytes([6])), proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(5, 13, merkle.leaf_hash(bytes([5])), proof[:-1], root)
    consistency = tree.consistency_proof(7)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(7, 13, tree.root(6), root, consistency)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(7, 13, tree.root(7), tree.root(12), consistency)


def test_bulk_tree_equals_incremental_tree() -> None:
    hashes = [merkle.leaf_hash(str(i).encode()) for i in range(1000)]
    one = merkle.MemoryTree()
    for h in hashes:
        one.append_leaf_hash(h)
    bulk = merkle.MemoryTree.from_leaf_hashes(b"".join(hashes))
    for n in (1, 2, 255, 256, 257, 999, 1000):
        assert one.root(n) == bulk.root(n) == _naive_root([str(i).encode() for i in range(n)])


def test_tile_paths() -> None:
    assert encode_index(1234067) == "x001/x234/067"
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(1, 0, 17) == "tile/1/000.p/17"
    assert tile_path("entries", 5, 3) == "tile/entries/005.p/3"
    assert parse_tile_path("tile/0/x001/x234/067") == (0, 1234067, 256)
    assert parse_tile_path("tile/entries/000.p/3") == (None, 0, 3)
    for bad in (
        "tile/0/1234",
        "tile/0/x001/234/067",
        "tile/64/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/00/000",
    ):
        with pytest.raises(ValueError):
            parse_tile_path(bad)


def test_tiles_for_spec_example_size_70000() -> None:
    # tlog-tiles: 273 full level-0 tiles, one of width 112, one full level-1 tile, one of
    # width 17, and one level-2 tile of width 1.
    tiles = list(tiles_for_size(70000))
    level0 = [w for level, _, w in tiles if level == 0]
    assert level0.count(256) == 273 and level0[-1] == 112 and len(level0) == 274
    assert [w for level, _, w in tiles if level == 1] == [256, 17]
    assert [w for level, _, w in tiles if level == 2] == [1]
    assert [w for level, _, w in tiles_for_size(256)] == [256, 1]


def test_entry_bundles_round_trip_and_limit() -> None:
    entries = [b"", b"a", bytes(65535)]
    assert decode_bundle(encode_bundle(entries)) == entries
    with pytest.raises(ValueError):
        encode_bundle([bytes(65536)])
    with pytest.raises(ValueError):
        decode_bundle(b"\x00\x05abc")


@settings(max_examples=25, deadline=None, database=None)
@given(st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=6))
def test_tile_builder_matches_memory_tree(batches: list[int]) -> None:
    """However appends are split into batches, tiles give the same roots and proofs."""
    stored: dict[tuple[int, int], bytes] = {}
    reference = merkle.MemoryTree()
    builder = TileBuilder(0, lambda level, index: stored.get((level, index)))
    n = 0
    rng = random.Random(n)
    for count in batches:
        hashes = [merkle.leaf_hash(str(n + i).encode()) for i in range(count)]
        for h in hashes:
            reference.append_leaf_hash(h)
        stored.update(builder.append(hashes))
        n += count
        assert builder.root() == reference.root()
        # A builder rebuilt from the stored tiles agrees (what a restarted integrator does).
        builder = TileBuilder(n, lambda level, index: stored.get((level, index)))
        assert builder.root() == reference.root()
    assert sorted(stored) == sorted((level, index) for level, index, _ in tiles_for_size(n))
    nodes = TileNodes(lambda level, index: stored.get((level, index)))
    for i in rng.sample(range(n), min(n, 20)):
        assert merkle.inclusion_proof(nodes, i, n) == reference.inclusion_proof(i)
    for m in rng.sample(range(1, n + 1), min(n, 20)):
        assert merkle.consistency_proof(nodes, m, n) == reference.consistency_proof(m)
