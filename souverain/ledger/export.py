"""`ledger export DIR`: the log as C2SP tlog-tiles static files.

    DIR/checkpoint                   latest checkpoint, with witness cosignatures
    DIR/tile/<L>/<N>[.p/<W>]         Merkle tree tiles for that checkpoint's size
    DIR/tile/entries/<N>[.p/<W>]     entry bundles (uint16-length-prefixed entries)
    DIR/checkpoints/<size>           every earlier checkpoint (not part of tlog-tiles:
                                     lets an offline verifier check their consistency)
    DIR/vkey                         the log's verifier key, for convenience only: an
                                     auditor should get it from the operator, not from
                                     the directory it is checking

A directory served as it is by any static web server is a tlog-tiles read endpoint.
Export again into the same directory to bring it up to date: full tiles and bundles are
immutable and are not rewritten; stale partial ones are removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from souverain.ledger.merkle import HASH_SIZE
from souverain.ledger.reader import LogReader, NotFoundError
from souverain.ledger.store.base import Store
from souverain.ledger.tiles import TILE_WIDTH, Progress, encode_bundle, tile_path, tiles_for_size


@dataclass(frozen=True, slots=True)
class ExportReport:
    size: int
    tiles: int
    bundles: int
    checkpoints: int


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def export_log(
    store: Store, directory: str | os.PathLike[str], *, vkey: str | None = None, progress: Progress | None = None
) -> ExportReport:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    reader = LogReader(store)
    size, note = reader.latest()
    tiles = bundles = 0
    plan = list(tiles_for_size(size))
    total = len(plan) + (size + TILE_WIDTH - 1) // TILE_WIDTH
    done = 0
    for level, index, width in plan:
        path = root / tile_path(level, index, width)
        if not (width == TILE_WIDTH and path.is_file() and path.stat().st_size == TILE_WIDTH * HASH_SIZE):
            tile = store.read_tile(level, index)
            if tile is None or len(tile) < width * HASH_SIZE:
                raise NotFoundError(f"tile {level}/{index} is missing from the store")
            _write(path, tile[: width * HASH_SIZE])
            tiles += 1
        if width == TILE_WIDTH:
            _drop_partials(root / tile_path(level, index, 1))
        done += 1
        if progress:
            progress(done, total)
    for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - index * TILE_WIDTH)
        path = root / tile_path("entries", index, width)
        if not (width == TILE_WIDTH and path.is_file()):
            rows = store.read_entries(index * TILE_WIDTH, index * TILE_WIDTH + width)
            if len(rows) != width:
                raise NotFoundError(f"entries of bundle {index} are missing from the store")
            _write(path, encode_bundle(data for _, data in rows))
            bundles += 1
        if width == TILE_WIDTH:
            _drop_partials(root / tile_path("entries", index, 1))
        done += 1
        if progress:
            progress(done, total)
    history = root / "checkpoints"
    count = 0
    start = 0
    while batch := store.checkpoints(start, 10_000):
        for cp_size, cp_note in batch:
            if cp_size <= size:
                _write(history / str(cp_size), cp_note.encode())
                count += 1
        start = batch[-1][0] + 1
    _write(root / "checkpoint", note.encode())
    if vkey:
        _write(root / "vkey", (vkey + "\n").encode())
    return ExportReport(size, tiles, bundles, count)


def _drop_partials(one_partial: Path) -> None:
    """Remove `<N>.p/` once tile N is full (tlog-tiles lets logs delete them)."""
    folder = one_partial.parent
    if folder.is_dir():
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
