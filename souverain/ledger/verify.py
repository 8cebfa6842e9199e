"""Offline verification of a whole log: an exported directory or a live store.

What is checked, and what each failure means:
1. Every checkpoint's log signature (and witness cosignatures, against the keys given).
2. The entries are recomputed into a Merkle tree; its root at each checkpoint's size must
   be that checkpoint's root. This is the inclusion of every entry at its index (a root
   over all leaves commits to each of them); `each=True` also checks an RFC 9162 inclusion
   proof per entry against the latest checkpoint, as an outside client would.
3. Successive checkpoints must be consistent (an RFC 9162 consistency proof from the
   recomputed tree verifies between them). Two signed checkpoints that fail this, or one
   size with two roots, "cannot both be true": the log (or its key) forked.
4. The level-0 tiles are the leaf hashes the log committed to. When they reproduce the
   signed root they pinpoint tampering: an entry modified, deleted, inserted, or entries
   reordered, by index. When tiles were rewritten too, the signed checkpoints still bound
   the damage to a range of indexes.

The verifier trusts only the keys it is given. A directory's `vkey` file or a store's
recorded key is used when no key is given, with a warning, since whoever could alter the
log could alter that too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Protocol

from souverain.ledger import merkle
from souverain.ledger.checkpoint import OpenedCheckpoint, open_checkpoint
from souverain.ledger.entry import EntryError, decode_entry
from souverain.ledger.merkle import HASH_SIZE, MemoryTree
from souverain.ledger.note import NoteError, Verifier
from souverain.ledger.store.base import Store
from souverain.ledger.tiles import TILE_WIDTH, Progress, decode_bundle, tile_path, tile_width, tiles_for_size

MAX_LISTED = 20
MISSING = b"\xff" * HASH_SIZE  # stands in for a deleted store row; no leaf hashes to it


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # signature, witness, modified, deleted, inserted, reordered, range, fork, tile, entry, missing
    message: str
    index: int | None = None


@dataclass
class Report:
    size: int = 0
    entries: int = 0
    checkpoints: int = 0
    cosigned: dict[str, int] = field(default_factory=dict)  # witness -> checkpoints cosigned
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, message: str, index: int | None = None) -> None:
        """Record a problem once: the first account of (kind, index) is kept."""
        if any(
            p.kind == kind and p.index == index and (index is not None or p.message == message) for p in self.problems
        ):
            return
        self.problems.append(Problem(kind, message, index))


class Source(Protocol):
    """Where a log is read from."""

    def checkpoints(self) -> Iterator[tuple[str, str]]:
        """(label, signed note), every checkpoint available."""

    def entries(self, size: int, report: Report) -> Iterator[bytes | None]:
        """Entry bytes in index order: the first `size` and any after them. None stands
        for an index the source knows is missing (a store row deleted), so that later
        entries keep their positions."""

    def leaf_tiles(self, size: int) -> bytes | None:
        """Level-0 tile hashes for the first `size` entries, None if unavailable."""

    def tile(self, level: int, index: int, width: int) -> bytes | None: ...


class DirectorySource:
    """A C2SP tlog-tiles directory as `ledger export` writes it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def checkpoints(self) -> Iterator[tuple[str, str]]:
        latest = self.root / "checkpoint"
        if latest.is_file():
            yield "checkpoint", latest.read_text(encoding="utf-8")
        history = self.root / "checkpoints"
        if history.is_dir():
            for path in sorted(history.iterdir(), key=lambda p: (len(p.name), p.name)):
                yield f"checkpoints/{path.name}", path.read_text(encoding="utf-8")

    def _read(self, level: int | str, index: int, width: int) -> tuple[bytes | None, bool]:
        """(data, exact): exact is False when a full tile stands in for a partial one."""
        path = self.root / tile_path(level, index, width)
        if path.is_file():
            return path.read_bytes(), True
        if width < TILE_WIDTH:  # the full tile may have replaced the partial one
            full = self.root / tile_path(level, index)
            if full.is_file():
                return full.read_bytes(), False
        return None, False

    def entries(self, size: int, report: Report) -> Iterator[bytes | None]:
        for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = tile_width(0, index, size)
            data, exact = self._read("entries", index, width)
            if data is None:
                report.add(
                    "missing", f"entry bundle {tile_path('entries', index, width)} is missing", index * TILE_WIDTH
                )
                return
            try:
                bundle = decode_bundle(data)
            except ValueError as exc:
                report.add("entry", f"entry bundle {index} is malformed: {exc}", index * TILE_WIDTH)
                return
            if exact and len(bundle) != width:
                report.notes.append(f"entry bundle {index} holds {len(bundle)} entries, expected {width}")
            yield from (bundle if exact else bundle[:width])

    def leaf_tiles(self, size: int) -> bytes | None:
        out = bytearray()
        for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = tile_width(0, index, size)
            data, _ = self._read(0, index, width)
            if data is None or len(data) < width * HASH_SIZE:
                return None
            out += data[: width * HASH_SIZE]
        return bytes(out)

    def tile(self, level: int, index: int, width: int) -> bytes | None:
        data, exact = self._read(level, index, width)
        return data if data is None or exact else data[: width * HASH_SIZE]


class StoreSource:
    """A live store (SQLite or PostgreSQL), read in index order."""

    def __init__(self, store: Store, chunk: int = 10_000) -> None:
        self.store = store
        self.chunk = chunk

    def checkpoints(self) -> Iterator[tuple[str, str]]:
        start = 0
        while batch := self.store.checkpoints(start, 10_000):
            for size, note in batch:
                yield f"stored checkpoint {size}", note
            start = batch[-1][0] + 1

    def entries(self, size: int, report: Report) -> Iterator[bytes | None]:
        expected = 0
        end = max(size, self.store.sequenced_size())
        while expected < end:
            rows = self.store.read_entries(expected, expected + self.chunk)
            if not rows:
                report.add("deleted", f"entries {expected}..{end - 1} are missing from the store", expected)
                return
            for index, data in rows:
                for gone in range(expected, index):
                    report.add("deleted", f"entry {gone} is missing from the store (deleted)", gone)
                    yield None
                expected = index
                yield data
                expected += 1

    def leaf_tiles(self, size: int) -> bytes | None:
        out = bytearray()
        for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = tile_width(0, index, size)
            data = self.store.read_tile(0, index)
            if data is None or len(data) < width * HASH_SIZE:
                return None
            out += data[: width * HASH_SIZE]
        return bytes(out)

    def tile(self, level: int, index: int, width: int) -> bytes | None:
        data = self.store.read_tile(level, index)
        return data[: width * HASH_SIZE] if data is not None and len(data) >= width * HASH_SIZE else None


def _hash_at(buf: bytes | bytearray, i: int) -> bytes:
    return bytes(buf[i * HASH_SIZE : (i + 1) * HASH_SIZE])


def _classify(h: bytes, t: bytes, report: Report) -> None:
    """Say how the recomputed leaf hashes `h` differ from the committed ones `t`."""
    n_h, n_t = len(h) // HASH_SIZE, len(t) // HASH_SIZE
    p = 0
    while p < n_t and p < n_h and _hash_at(h, p) == _hash_at(t, p):
        p += 1
    if p == n_t:
        return  # t is a prefix of h: anything after is not yet integrated
    if p + 1 <= n_h and h[(p + 1) * HASH_SIZE : (n_t + 1) * HASH_SIZE] == t[p * HASH_SIZE :] and n_h >= n_t + 1:
        report.add("inserted", f"an entry was inserted at index {p}: entries after it are shifted by one", p)
        return
    if h[p * HASH_SIZE : (n_t - 1) * HASH_SIZE] == t[(p + 1) * HASH_SIZE :] and (p < n_t - 1 or n_h <= p):
        report.add("deleted", f"entry {p} was deleted: entries after it are shifted by one", p)
        return
    changed = [k for k in range(p, n_t) if k >= n_h or _hash_at(h, k) != _hash_at(t, k)]
    theirs = {_hash_at(t, k): k for k in changed}
    moved = [k for k in changed if k < n_h and _hash_at(h, k) in theirs]
    changed = [k for k in changed if not any(p.kind == "deleted" and p.index == k for p in report.problems)]
    for k in changed[:MAX_LISTED]:
        if k >= n_h:
            report.add("deleted", f"entry {k} is missing", k)
        elif k in moved:
            report.add(
                "reordered", f"entry {k} holds what was committed at index {theirs[_hash_at(h, k)]} (reordered)", k
            )
        else:
            report.add("modified", f"entry {k} was modified: its hash is not the one committed", k)
    if len(changed) > MAX_LISTED:
        report.add("modified", f"... and {len(changed) - MAX_LISTED} more entries differ")


def verify(
    source: Source,
    log: Verifier,
    *,
    origin: str | None = None,
    witnesses: Sequence[Verifier] = (),
    quorum: int = 0,
    extra_checkpoints: Sequence[tuple[str, str]] = (),
    each: bool = False,
    progress: Progress | None = None,
) -> Report:
    report = Report()
    # 1. checkpoints and signatures
    opened: list[tuple[str, OpenedCheckpoint]] = []
    for label, note in [*source.checkpoints(), *extra_checkpoints]:
        try:
            cp = open_checkpoint(note, log, origin=origin, witnesses=witnesses)
        except NoteError as exc:
            report.add("signature", f"{label}: {exc}")
            continue
        opened.append((label, cp))
        for name in cp.cosigners:
            report.cosigned[name] = report.cosigned.get(name, 0) + 1
    report.checkpoints = len(opened)
    if not opened:
        report.add("signature", "no checkpoint with a valid log signature")
        return report
    opened.sort(key=lambda item: item[1].size)
    latest = opened[-1][1]
    size = report.size = latest.size
    if quorum and len(latest.cosigners) < quorum:
        report.add(
            "witness",
            f"latest checkpoint (size {size}) has {len(latest.cosigners)} known cosignatures; policy needs {quorum}",
        )

    # 2. entries -> leaf hashes
    leaves = bytearray()
    total = max(size, 1)
    for i, data in enumerate(source.entries(size, report)):
        if data is None:
            leaves += MISSING
            continue
        leaves += merkle.leaf_hash(data)
        try:
            decode_entry(data)
        except EntryError as exc:
            report.add("entry", f"entry {i} is not a valid ledger entry: {exc}", i)
        if progress and i % 4096 == 4095:
            progress(i + 1, total)
    report.entries = len(leaves) // HASH_SIZE
    if progress:
        progress(report.entries, total)
    if report.entries > size:
        report.notes.append(f"{report.entries - size} entries after the latest checkpoint are not integrated yet")
    h_tree = MemoryTree.from_leaf_hashes(bytes(leaves[: size * HASH_SIZE]))
    committed = source.leaf_tiles(size)
    t_tree = MemoryTree.from_leaf_hashes(committed) if committed is not None else None
    tiles_good = t_tree is not None and t_tree.root() == latest.root
    if committed is None:
        report.notes.append("level-0 tiles unavailable: tampering is located by checkpoint ranges only")
    elif not tiles_good:
        report.add("tile", f"the level-0 tiles do not reproduce the root of the latest checkpoint (size {size})")

    # 3. each checkpoint's root against the entries; pinpoint with trusted tiles
    def h_root(n: int) -> bytes | None:
        return h_tree.root(n) if n <= h_tree.size else None

    for label, cp in opened:
        if cp.size == 0 and cp.root != merkle.EMPTY_ROOT:
            report.add("fork", f"{label}: a checkpoint of size 0 must have the empty tree's root", 0)
    entries_match = {cp.size: h_root(cp.size) == cp.root for _, cp in opened if cp.size > 0}
    if not all(entries_match.values()):
        if tiles_good and committed is not None:
            _classify(bytes(leaves), committed, report)
        good = [s for s, ok in entries_match.items() if ok]
        bad = sorted(s for s, ok in entries_match.items() if not ok)
        first_bad = bad[0]
        last_good = max((s for s in good if s < first_bad), default=0)
        if not any(p.kind in ("modified", "deleted", "inserted", "reordered") for p in report.problems) and (
            not good or max(good) < first_bad
        ):
            report.add(
                "range",
                f"entries {last_good}..{first_bad - 1} do not match the signed checkpoint of size {first_bad}: "
                "one or more were modified, deleted, inserted or reordered",
                last_good,
            )

    # 4. consistency of successive checkpoints, against the tree that matches the latest
    reference = t_tree if tiles_good else (h_tree if entries_match.get(size) else None)
    for (la, a), (lb, b) in pairwise(opened):
        if a.size == b.size:
            if a.root != b.root:
                report.add("fork", f"{la} and {lb} cannot both be true: size {a.size} with two different roots", a.size)
            continue
        if reference is None or a.size == 0:
            continue
        try:
            merkle.verify_consistency(a.size, b.size, a.root, b.root, reference.consistency_proof(a.size, b.size))
        except merkle.ProofError:
            if reference.root(b.size) == b.root:
                report.add(
                    "fork",
                    f"{la} (size {a.size}) and {lb} (size {b.size}) cannot both be true: no consistency proof exists",
                    a.size,
                )

    # 5. higher tiles, and per-entry inclusion proofs
    if reference is not None:
        for level, index, width in tiles_for_size(size):
            if level == 0:
                continue
            data = source.tile(level, index, width)
            expect = b"".join(reference.node(8 * level, index * TILE_WIDTH + j) for j in range(width))
            if data != expect:
                report.add("tile", f"tile {tile_path(level, index, width)} does not match the tree", None)
    if each and reference is not None:
        for i in range(min(size, h_tree.size)):
            try:
                merkle.verify_inclusion(i, size, _hash_at(leaves, i), reference.inclusion_proof(i, size), latest.root)
            except merkle.ProofError:
                report.add("modified", f"entry {i} has no valid inclusion proof in checkpoint {size}", i)
            if progress and i % 4096 == 4095:
                progress(i + 1, size)
    report.problems.sort(key=lambda p: (p.index is None, p.index or 0, p.kind))
    return report
