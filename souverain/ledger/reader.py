"""Read side of a log in a store: checkpoints, proofs, receipts, tiles and entry bundles.

Synchronous, over one store: the `Ledger` runs it on its reader thread, the CLI and the
integrator (for witnesses' consistency proofs) call it directly. Full tiles never change,
so a bounded cache of them makes repeated proofs cheap; partial tiles are read afresh.
"""

from __future__ import annotations

from collections import OrderedDict

from souverain.ledger import merkle
from souverain.ledger.checkpoint import Receipt
from souverain.ledger.merkle import HASH_SIZE
from souverain.ledger.store.base import Store
from souverain.ledger.tiles import TILE_WIDTH, TileNodes, encode_bundle, tile_width


class NotFoundError(LookupError):
    """What was asked for is not in the log (yet)."""


class LogReader:
    def __init__(self, store: Store, cache_tiles: int = 4096) -> None:
        self.store = store
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._cache_max = cache_tiles
        self.nodes = TileNodes(self._tile)

    def _tile(self, level: int, index: int) -> bytes | None:
        key = (level, index)
        tile = self._cache.get(key)
        if tile is not None:
            self._cache.move_to_end(key)
            return tile
        tile = self.store.read_tile(level, index)
        if tile is not None and len(tile) == TILE_WIDTH * HASH_SIZE:
            self._cache[key] = tile
            if len(self._cache) > self._cache_max:
                self._cache.popitem(last=False)
        return tile

    def latest(self) -> tuple[int, str]:
        latest = self.store.latest_checkpoint()
        if latest is None:
            raise NotFoundError("no checkpoint has been published yet")
        return latest

    def _size(self, size: int | None) -> int:
        tree = self.store.tree_size()
        if size is None:
            return max(tree, 0)
        if not 0 <= size <= tree:
            raise NotFoundError(f"tree size {size} is beyond the published tree ({max(tree, 0)})")
        return size

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self._size(size)
        if not 0 <= index < size:
            raise NotFoundError(f"entry {index} is not in the tree of size {size}")
        return merkle.inclusion_proof(self.nodes, index, size)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = self._size(new)
        if not 0 <= old <= new:
            raise NotFoundError(f"no consistency proof from size {old} to {new}")
        return merkle.consistency_proof(self.nodes, old, new)

    def root(self, size: int) -> bytes:
        return merkle.root(self.nodes, self._size(size))

    def receipt(self, index: int) -> str:
        """A c2sp.org/tlog-proof@v1 receipt for entry `index` against the latest checkpoint
        (with whatever cosignatures it has)."""
        size, note = self.latest()
        if not 0 <= index < size:
            raise NotFoundError(f"entry {index} is not integrated yet (tree size {size})")
        proof = merkle.inclusion_proof(self.nodes, index, size)
        return Receipt(index, tuple(proof), note).format()

    def entry(self, index: int) -> bytes:
        rows = self.store.read_entries(index, index + 1)
        if not rows:
            raise NotFoundError(f"no entry {index}")
        return rows[0][1]

    def tile(self, level: int, index: int, width: int = TILE_WIDTH) -> bytes:
        """tlog-tiles `tile/<L>/<N>[.p/<W>]`; a partial tile only once the tree needs it."""
        size = self._size(None)
        have = tile_width(level, index, size)
        if not 1 <= width <= have:  # a partial tile of a since-filled tile is its prefix
            raise NotFoundError(f"tile {level}/{index} has no {width} hashes at tree size {size}")
        tile = self._tile(level, index)
        if tile is None or len(tile) < width * HASH_SIZE:
            raise NotFoundError(f"tile {level}/{index} is missing")
        return tile[: width * HASH_SIZE]

    def bundle(self, index: int, width: int = TILE_WIDTH) -> bytes:
        """tlog-tiles `tile/entries/<N>[.p/<W>]`."""
        size = self._size(None)
        have = tile_width(0, index, size)
        if not 1 <= width <= have:
            raise NotFoundError(f"entry bundle {index} has no {width} entries at tree size {size}")
        start = index * TILE_WIDTH
        rows = self.store.read_entries(start, start + width)
        if len(rows) != width:
            raise NotFoundError(f"entry bundle {index}: entries are missing from the store")
        return encode_bundle(data for _, data in rows)
