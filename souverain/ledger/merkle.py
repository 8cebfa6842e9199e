"""RFC 6962 / RFC 9162 Merkle tree hashing, proof generation and proof verification.

The bytes are those of RFC 6962 §2.1 (unchanged in RFC 9162): SHA-256, leaf prefix 0x00,
interior prefix 0x01, the left-full tree shape. Verification follows transparency-dev/merkle
(`proof/verify.go`) rather than the RFC pseudo-code, because its JSON test vectors encode two
stricter rules that the RFC leaves open: leaf hashes must be 32 bytes, and a consistency
proof from the empty tree is rejected.

Generation works over any `NodeSource`: a function giving the hash of the complete subtree
at (level, index), i.e. MTH(D[index * 2**level : (index + 1) * 2**level]). The store's tiles,
an in-memory tree and a verifier's recomputed tree all provide one, so one implementation
of PATH and PROOF (RFC 9162 §2.1.3.1, §2.1.4.1) serves them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeSource = Callable[[int, int], bytes]
"""(level, index) -> hash of the complete subtree of 2**level leaves starting at index * 2**level."""


class ProofError(ValueError):
    """A proof does not verify, or its inputs are malformed; the message says which."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes | bytearray, right: bytes | bytearray) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def subtree_root(hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of sibling hashes at one level (any count; left-full shape)."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# -- verification (transparency-dev/merkle proof/verify.go) ----------------------------


def _check_hashes(proof: Sequence[bytes]) -> None:
    for h in proof:
        if len(h) != HASH_SIZE:
            raise ProofError(f"proof hash of {len(h)} bytes, expected {HASH_SIZE}")


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion proof's length into the inner part and the right border."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for leaf hash `leaf` at `index` in a tree of `size`."""
    if index < 0 or index >= size:
        raise ProofError(f"index {index} is beyond tree size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"leaf hash of {len(leaf)} bytes, expected {HASH_SIZE}")
    _check_hashes(proof)
    inner, border = _decompose(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, expected {inner + border}")
    return _chain_border_right(_chain_inner(leaf, proof[:inner], index), proof[inner:])


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf hash `leaf` at `index` under `root`."""
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError(f"inclusion proof for index {index} does not lead to the root of size {size}")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Raise ProofError unless `proof` shows the tree (size1, root1) is a prefix of (size2, root2)."""
    _check_hashes(proof)
    if size2 < size1:
        raise ProofError(f"size2 {size2} is smaller than size1 {size1}")
    if size1 == 0:
        # Even 0 -> 0: the vectors reject it. (tlog-witness treats an old size of 0 on its
        # own terms; see witness.py.)
        raise ProofError("consistency proof from the empty tree is meaningless")
    if size1 == size2:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError(f"two different roots for tree size {size1}")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = proof[0], 1
    if len(proof) != start + inner + border:
        raise ProofError(f"consistency proof has {len(proof)} hashes, expected {start + inner + border}")
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if hash1 != root1:
        raise ProofError(f"consistency proof does not lead to the root of size {size1}")
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if hash2 != root2:
        raise ProofError(f"consistency proof does not lead to the root of size {size2}")


# -- generation over complete-subtree nodes ---------------------------------------------


def _split(n: int) -> int:
    """k in RFC 9162: the largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_root(nodes: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for the ranges the RFC recursion visits (start aligned to the
    largest power of two not above end - start): fold its complete subtrees right to left."""
    if end <= start:
        return EMPTY_ROOT
    parts: list[bytes] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start & ((1 << level) - 1):  # defensive: keep pieces aligned
            level -= 1
        parts.append(nodes(level, start >> level))
        start += 1 << level
    root = parts[-1]
    for h in reversed(parts[:-1]):
        root = node_hash(h, root)
    return root


def root(nodes: NodeSource, size: int) -> bytes:
    return range_root(nodes, 0, size)


def inclusion_proof(nodes: NodeSource, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]), leaf sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not below tree size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(range_root(nodes, start + k, end))
            end = start + k
        else:
            path.append(range_root(nodes, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(nodes: NodeSource, size1: int, size2: int) -> list[bytes]:
    """PROOF(size1, D[size2]); empty when size1 is 0 or equal to size2."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"cannot prove consistency from size {size1} to {size2}")
    if size1 == 0 or size1 == size2:
        return []
    proof: list[bytes] = []
    start, end, complete = 0, size2, True
    while size1 != end:
        k = _split(end - start)
        if size1 <= start + k:
            proof.append(range_root(nodes, start + k, end))
            end = start + k
        else:
            proof.append(range_root(nodes, start, start + k))
            start += k
            complete = False
    if not complete:
        proof.append(range_root(nodes, start, end))
    proof.reverse()
    return proof


class MemoryTree:
    """A whole tree in memory: every level of complete-subtree hashes.

    Used by the offline verifier (which recomputes the tree from the entries) and by tests.
    Level 0 is one `bytearray` of 32-byte leaf hashes, so a million entries take 32 MB.
    """

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]

    @classmethod
    def from_leaf_hashes(cls, leaves: bytes) -> MemoryTree:
        """Build every level at once from concatenated leaf hashes (much faster than
        appending one by one: a million leaves take about a second)."""
        tree = cls()
        tree._levels = [bytearray(leaves)]
        level = leaves
        while len(level) >= 2 * HASH_SIZE:
            step = 2 * HASH_SIZE
            level = b"".join(
                node_hash(level[i : i + HASH_SIZE], level[i + HASH_SIZE : i + step])
                for i in range(0, len(level) - step + 1, step)
            )
            tree._levels.append(bytearray(level))
        return tree

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def append_leaf_hash(self, h: bytes) -> None:
        levels = self._levels
        levels[0] += h
        level = 0
        # Each time a level gains an even count, its last pair completes a node above.
        while (len(levels[level]) // HASH_SIZE) % 2 == 0:
            buf = levels[level]
            parent = node_hash(buf[-2 * HASH_SIZE : -HASH_SIZE], buf[-HASH_SIZE:])
            level += 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += parent

    def append(self, data: bytes) -> None:
        self.append_leaf_hash(leaf_hash(data))

    def node(self, level: int, index: int) -> bytes:
        buf = self._levels[level] if level < len(self._levels) else b""
        if (index + 1) * HASH_SIZE > len(buf):
            raise KeyError(f"no complete subtree at level {level} index {index}")
        return bytes(buf[index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def leaf_hashes(self) -> bytes:
        return bytes(self._levels[0])

    def root(self, size: int | None = None) -> bytes:
        return root(self.node, self.size if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self.node, index, self.size if size is None else size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return consistency_proof(self.node, size1, self.size if size2 is None else size2)
