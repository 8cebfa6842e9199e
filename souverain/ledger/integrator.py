"""The integrator: folds sequenced entries into the tree and publishes signed checkpoints.

It is the only writer of tiles and checkpoints. Each `step` reads the entries sequenced
since the last checkpoint, extends the tiles, signs a checkpoint for the new size and
stores tiles and checkpoint in one transaction (`Store.publish`, which refuses if another
integrator moved the tree meanwhile). A gap in the indexes stops it: it never signs a tree
over a missing entry. After publishing it asks the configured witnesses to cosign and
stores their cosignatures on the checkpoint.

A crash at any point leaves either the old tree or the new one: the tiles in memory are
rebuilt from the store whenever the stored size is not the one they describe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from souverain.ledger import merkle
from souverain.ledger.checkpoint import Checkpoint, sign_checkpoint
from souverain.ledger.note import Signer, merge_signatures
from souverain.ledger.reader import LogReader
from souverain.ledger.store.base import Store, StoreError
from souverain.ledger.tiles import TileBuilder
from souverain.ledger.witness import WitnessClient, WitnessError

log = logging.getLogger("souverain.ledger")


class IntegrityError(StoreError):
    """The store breaks an invariant the integrator relies on (a missing entry)."""


class Integrator:
    def __init__(
        self,
        store: Store,
        signer: Signer,
        origin: str,
        *,
        max_batch: int = 65_536,
        witnesses: Sequence[WitnessClient] = (),
    ) -> None:
        self.store = store
        self.signer = signer
        self.origin = origin
        self.max_batch = max_batch
        self.witnesses = list(witnesses)
        self._builder: TileBuilder | None = None
        self._reader = LogReader(store)

    def _sign(self, size: int, root: bytes) -> str:
        return sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)

    def step(self) -> int | None:
        """Integrate up to `max_batch` entries; the new tree size, or None if nothing new."""
        store = self.store
        size = store.tree_size()
        if size < 0:
            store.publish(-1, 0, {}, self._sign(0, merkle.EMPTY_ROOT))
            self._cosign(0)
            size = 0
        end = min(store.sequenced_size(), size + self.max_batch)
        if end <= size:
            return None
        if self._builder is None or self._builder.size != size:
            self._builder = TileBuilder(size, store.read_tile)
        rows = store.read_entries(size, end)
        for offset, (index, _) in enumerate(rows):
            if index != size + offset:
                self._builder = None
                raise IntegrityError(f"entry {size + offset} is missing from the store; not signing over a gap")
        if len(rows) != end - size:
            self._builder = None
            raise IntegrityError(f"entry {size + len(rows)} is missing from the store; not signing over a gap")
        builder = self._builder
        try:
            tiles = builder.append(merkle.leaf_hash(data) for _, data in rows)
            store.publish(size, end, tiles, self._sign(end, builder.root()))
        except BaseException:
            self._builder = None  # memory is ahead of the store: rebuild next time
            raise
        self._cosign(end)
        return end

    def run_until_idle(self) -> int:
        """Integrate everything sequenced now; the tree size."""
        while self.step() is not None:
            pass
        return self.store.tree_size()

    def _cosign(self, size: int) -> None:
        if not self.witnesses:
            return
        note = self.store.checkpoint_at(size)
        if note is None:
            return
        for witness in self.witnesses:
            try:
                sigs = witness.cosign(note, size, lambda old: self._reader.consistency_proof(old, size))
            except WitnessError as exc:
                log.warning("witness %s did not cosign checkpoint %d: %s", witness.url, size, exc)
                continue
            note = merge_signatures(note, sigs)
        self.store.replace_checkpoint(size, note)
