"""C2SP tlog-tiles (v0.1.0): tile paths, entry bundles, and the tree kept as tiles.

A tile at level L holds up to 256 consecutive hashes of tree level 8L; full tiles are
immutable, the rightmost tile of each level grows. The store keeps exactly these tiles, so
the read API and `ledger export` serve them as they are, and the integrator needs only the
rightmost tile of each level in memory to extend the tree and compute its root.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from souverain.ledger import merkle
from souverain.ledger.merkle import HASH_SIZE, subtree_root

TILE_WIDTH = 256
TILE_HEIGHT = 8
MAX_ENTRY_SIZE = 0xFFFF  # entry bundles use uint16 length prefixes

TileKey = tuple[int, int]  # (level, index)
TileReader = Callable[[int, int], bytes | None]
"""(level, index) -> the stored tile (full or partial), or None."""
Progress = Callable[[int, int], None]
"""progress(done, total): called as a command reads or writes the log's entries."""

_PATH = re.compile(r"^tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?$")


def encode_index(n: int) -> str:
    """1234067 -> 'x001/x234/067'."""
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """`tile/<L>/<N>[.p/<W>]`; level "entries" gives an entry bundle path."""
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{encode_index(index)}{suffix}"


def parse_tile_path(path: str) -> tuple[int | None, int, int]:
    """(level or None for entries, index, width) from a tile path; ValueError if invalid."""
    m = _PATH.match(path)
    if not m:
        raise ValueError(f"not a tile path: {path!r}")
    level = None if m.group(1) == "entries" else int(m.group(1))
    if level is not None and level > 63:
        raise ValueError("tile level above 63")
    groups = m.group(2).split("/")
    if len(groups) > 1 and groups[0] == "x000":
        raise ValueError("tile index has a leading zero group")
    index = int("".join(g.lstrip("x") for g in groups))
    width = int(m.group(3)) if m.group(3) else TILE_WIDTH
    if width > 255 and m.group(3):
        raise ValueError("partial tile width above 255")
    return level, index, width


def tile_width(level: int, index: int, size: int) -> int:
    """How many hashes tile (level, index) holds in a tree of `size`: 0..256."""
    hashes_at_level: int = size // (TILE_WIDTH**level)
    return max(0, min(TILE_WIDTH, hashes_at_level - index * TILE_WIDTH))


def tiles_for_size(size: int) -> Iterator[tuple[int, int, int]]:
    """Every (level, index, width) tile a tree of `size` has, level 0 first."""
    level = 0
    while count := size // (TILE_WIDTH**level):
        for index in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
            yield level, index, tile_width(level, index, size)
        level += 1


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"entry of {len(entry)} bytes; an entry bundle allows {MAX_ENTRY_SIZE}")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_bundle(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise ValueError("entry bundle ends inside a length prefix")
        n = int.from_bytes(data[pos : pos + 2], "big")
        if pos + 2 + n > len(data):
            raise ValueError("entry bundle ends inside an entry")
        out.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out


def _hashes(tile: bytes, start: int, count: int) -> list[bytes]:
    return [tile[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(start, start + count)]


class TileNodes:
    """A merkle.NodeSource over tiles: node (level, index) for tree level 8L+k is the root
    of 2**k consecutive hashes in a tile of level L."""

    def __init__(self, read: TileReader) -> None:
        self._read = read

    def __call__(self, level: int, index: int) -> bytes:
        tile_level, k = divmod(level, TILE_HEIGHT)
        first = index << k
        tile_index, offset = divmod(first, TILE_WIDTH)
        tile = self._read(tile_level, tile_index)
        if tile is None or len(tile) < (offset + (1 << k)) * HASH_SIZE:
            raise KeyError(f"tile {tile_level}/{tile_index} lacks the hashes of node {level}/{index}")
        return subtree_root(_hashes(tile, offset, 1 << k))


class TileBuilder:
    """Extends a tree held as tiles. Holds the rightmost tile of each level; `append` adds
    leaf hashes and returns the tiles it changed, ready to be stored in one transaction."""

    def __init__(self, size: int, read: TileReader) -> None:
        self.size = size
        self._edge: dict[int, bytearray] = {}
        level = 0
        while count := size // (TILE_WIDTH**level):
            index, width = divmod(count, TILE_WIDTH)
            if width:
                tile = read(level, index)
                if tile is None or len(tile) < width * HASH_SIZE:
                    raise ValueError(f"tile {level}/{index} is missing or shorter than {width} hashes")
                self._edge[level] = bytearray(tile[: width * HASH_SIZE])
            level += 1

    def append(self, leaf_hashes: Iterable[bytes]) -> dict[TileKey, bytes]:
        out: dict[TileKey, bytes | None] = {}
        for h in leaf_hashes:
            level, carry, position = 0, h, self.size
            while True:
                tile = self._edge.setdefault(level, bytearray())
                tile += carry
                key = (level, position // TILE_WIDTH)
                if len(tile) < TILE_WIDTH * HASH_SIZE:
                    out[key] = None  # still partial: taken from the edge below
                    break
                # A full tile: its root is the next hash one level up; a new edge tile starts.
                full = out[key] = bytes(tile)
                carry = subtree_root(_hashes(full, 0, TILE_WIDTH))
                self._edge[level] = bytearray()
                position //= TILE_WIDTH
                level += 1
            self.size += 1
        return {key: value if value is not None else bytes(self._edge[key[0]]) for key, value in out.items()}

    def edge(self, level: int, index: int) -> bytes | None:
        """The rightmost tile at `level`, if `index` names it."""
        tile = self._edge.get(level)
        if not tile or index != (self.size // (TILE_WIDTH**level)) // TILE_WIDTH:
            return None
        return bytes(tile)

    def root(self) -> bytes:
        """Root of the tree; every node it needs lies in the edge tiles."""
        return merkle.root(TileNodes(self.edge), self.size)
