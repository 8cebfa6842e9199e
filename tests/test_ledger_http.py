"""The auditor HTTP routes, mounted as the gateway will mount them, read by a client that
trusts nothing but the log's public key: it checks the checkpoint, then computes its own
proof from the tlog tiles."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ledger_fixtures import fill, open_ledger
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Mount
from starlette.testclient import TestClient

from souverain.ledger import SqliteStoreConfig, decode_entry, merkle, open_checkpoint, verify_receipt
from souverain.ledger.http import AUDIT, routes
from souverain.ledger.tiles import TileNodes, decode_bundle, tile_width

SIZE = 700


async def authorize(request: Request, scope: str) -> None:
    if scope == AUDIT and request.headers.get("authorization") != "Bearer auditor":
        raise HTTPException(403, "auditor scope required")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, TestClient, TestClient]]:
    store = SqliteStoreConfig(path=str(tmp_path / "ledger.db"))
    fill(tmp_path, store, [200, 500])
    ledger = open_ledger(tmp_path, store)
    app = Starlette(routes=[Mount("/ledger", routes=routes(ledger, authorize))])
    bare = Starlette(routes=[Mount("/ledger", routes=routes(ledger))])
    with TestClient(app) as client, TestClient(bare) as open_client:
        yield ledger, client, open_client
    asyncio.run(ledger.stop())


def test_checkpoint_and_key(served: Any) -> None:
    ledger, client, _ = served
    reply = client.get("/ledger/checkpoint")
    assert reply.status_code == 200 and reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert open_checkpoint(reply.text, ledger.verifier).size == SIZE
    assert client.get("/ledger/vkey").text.strip() == ledger.vkey


def test_a_client_builds_its_own_proof_from_tiles(served: Any) -> None:
    ledger, client, _ = served
    checkpoint = open_checkpoint(client.get("/ledger/checkpoint").text, ledger.verifier)
    size = checkpoint.size

    def fetch(level: int, index: int) -> bytes | None:
        width = tile_width(level, index, size)
        suffix = "" if width == 256 else f".p/{width}"
        reply = client.get(f"/ledger/tile/{level}/{index:03d}{suffix}")
        assert reply.status_code == 200, reply.text
        assert reply.headers["cache-control"].endswith("immutable")
        return reply.content

    bundle = client.get("/ledger/tile/entries/001", headers={"authorization": "Bearer auditor"})
    assert bundle.status_code == 200
    entries = decode_bundle(bundle.content)
    assert len(entries) == 256 and decode_entry(entries[44]).route == "route-300"
    proof = merkle.inclusion_proof(TileNodes(fetch), 300, size)
    merkle.verify_inclusion(300, size, merkle.leaf_hash(entries[44]), proof, checkpoint.root)


def test_proof_endpoints(served: Any) -> None:
    ledger, client, _ = served
    root = open_checkpoint(client.get("/ledger/checkpoint").text, ledger.verifier).root
    data = asyncio.run(ledger.entries(3, 4))[0][1]
    body = client.get("/ledger/proof/inclusion", params={"index": 3}).json()
    assert body["tree_size"] == SIZE
    merkle.verify_inclusion(3, SIZE, merkle.leaf_hash(data), [base64.b64decode(h) for h in body["hashes"]], root)
    body = client.get("/ledger/proof/consistency", params={"from": 200}).json()
    assert (body["from"], body["to"]) == (200, SIZE)
    old = open_checkpoint(asyncio.run(_checkpoint_at(ledger, 200)), ledger.verifier).root
    merkle.verify_consistency(200, SIZE, old, root, [base64.b64decode(h) for h in body["hashes"]])
    receipt = client.get("/ledger/receipt/3")
    assert receipt.status_code == 200 and receipt.text.startswith("c2sp.org/tlog-proof@v1\n")
    verify_receipt(receipt.text, data, ledger.verifier)
    assert client.get("/ledger/proof/inclusion", params={"index": "x"}).status_code == 400
    assert client.get("/ledger/proof/inclusion").status_code == 400
    assert client.get("/ledger/proof/inclusion", params={"index": SIZE}).status_code == 404
    assert client.get("/ledger/proof/consistency", params={"from": 5, "to": SIZE + 1}).status_code == 404
    assert client.get(f"/ledger/receipt/{SIZE}").status_code == 404
    assert client.get("/ledger/tile/0/009").status_code == 404  # beyond the tree
    assert client.get("/ledger/tile/0/002.p/189").status_code == 404  # wider than the tree has
    assert client.get("/ledger/tile/0/002.p/10").status_code == 200  # a prefix is fine
    assert client.get("/ledger/tile/0/2").status_code == 404  # not a tile path


async def _checkpoint_at(ledger: Any, size: int) -> str:
    from souverain.ledger.store import open_store

    store = open_store(ledger.config.store, ledger.base_dir)
    try:
        return store.checkpoint_at(size)
    finally:
        store.close()


def test_entries_need_the_audit_scope(served: Any) -> None:
    _, client, open_client = served
    assert client.get("/ledger/entries", params={"start": 0, "end": 5}).status_code == 403
    assert client.get("/ledger/tile/entries/000").status_code == 403
    reply = client.get(
        "/ledger/entries", params={"start": 298, "end": 303}, headers={"authorization": "Bearer auditor"}
    )
    assert reply.status_code == 200
    body = reply.json()
    assert [e["index"] for e in body["entries"]] == [298, 299, 300, 301, 302]
    assert body["entries"][2]["entry"]["route"] == "route-300"
    assert body["entries"][2]["entry"]["found"] == {"IBAN": 1, "EMAIL": 0}
    too_many = client.get(
        "/ledger/entries", params={"start": 0, "end": 5000}, headers={"authorization": "Bearer auditor"}
    )
    assert too_many.status_code == 400
    # Without an authorize hook, entries are not served at all; the hashes still are.
    assert open_client.get("/ledger/entries").status_code == 404
    assert open_client.get("/ledger/tile/entries/000").status_code == 404
    assert open_client.get("/ledger/checkpoint").status_code == 200
