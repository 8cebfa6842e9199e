"""The ledger's HTTP read API for auditors, as Starlette routes to mount (e.g. at /ledger).

    GET /checkpoint                      latest signed checkpoint (text/plain, C2SP note)
    GET /vkey                            the log's verifier key
    GET /tile/<L>/<N>[.p/<W>]            tlog-tiles Merkle tiles
    GET /tile/entries/<N>[.p/<W>]        tlog-tiles entry bundles          (audit scope)
    GET /proof/inclusion?index=I[&size=N]      {"index", "tree_size", "hashes": [base64]}
    GET /proof/consistency?from=M[&to=N]        {"from", "to", "hashes": [base64]}
    GET /receipt/<I>                     c2sp.org/tlog-proof@v1 receipt for entry I
    GET /entries?start=S&end=E           decoded entries, at most 1000      (audit scope)

Checkpoints, tiles and proofs reveal only hashes and sizes; entries name tenants, keys and
routes, so they need the `ledger:audit` scope. `authorize(request, scope)` is the gateway's
check: it raises to refuse, and returns the one tenant whose entries the caller may read,
or None for every tenant. A caller limited to one tenant gets only that tenant's entries
from /entries, and no entry bundles (a bundle holds every tenant's entries). Without an
`authorize`, the audit routes are not mounted at all, and the read routes
(`ledger:read`) are open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from souverain.ledger.checkpoint import Checkpoint
from souverain.ledger.entry import EntryError, decode_entry
from souverain.ledger.ledger import Ledger
from souverain.ledger.note import b64, parse_note
from souverain.ledger.reader import NotFoundError
from souverain.ledger.tiles import parse_tile_path

READ = "ledger:read"
AUDIT = "ledger:audit"
MAX_ENTRIES = 1000
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}

# (request, scope) -> the only tenant the caller may read entries of, or None for all.
Authorize = Callable[[Request, str], Awaitable[str | None]]


def _error(status: int, message: str, code: str, type_: str = "invalid_request_error") -> Response:
    body = msgspec.json.encode({"error": {"message": message, "type": type_, "code": code}})
    return Response(body, status_code=status, media_type="application/json")


def _json(data: object) -> Response:
    return Response(msgspec.json.encode(data), media_type="application/json", headers={"Cache-Control": "no-store"})


def _int(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 19:
        raise ValueError(f"query parameter {name!r} must be a non-negative integer")
    return int(raw)


def routes(ledger: Ledger, authorize: Authorize | None = None) -> list[Route]:
    async def allow(request: Request, scope: str) -> str | None:
        return await authorize(request, scope) if authorize is not None else None

    async def _latest_size() -> int:
        return Checkpoint.parse(parse_note(await ledger.checkpoint()).text).size

    async def checkpoint(request: Request) -> Response:
        await allow(request, READ)
        try:
            note = await ledger.checkpoint()
        except NotFoundError as exc:
            return _error(404, str(exc), "not_found")
        return PlainTextResponse(note, headers={"Cache-Control": "public, max-age=1"})

    async def vkey(request: Request) -> Response:
        await allow(request, READ)
        return PlainTextResponse(ledger.vkey + "\n")

    async def tile(request: Request) -> Response:
        try:
            level, index, width = parse_tile_path("tile/" + request.path_params["path"])
        except ValueError as exc:
            return _error(404, str(exc), "not_found")
        if level is None and authorize is None:
            return _error(404, "entry bundles are not served here", "not_found")
        if await allow(request, READ if level is not None else AUDIT) is not None:
            message = "entry bundles hold every tenant's entries: they need the auditor:all scope"
            return _error(403, message, "insufficient_scope", "permission_error")
        try:
            data = await (ledger.tile(level, index, width) if level is not None else ledger.bundle(index, width))
        except NotFoundError as exc:
            return _error(404, str(exc), "not_found")
        return Response(data, media_type="application/octet-stream", headers=IMMUTABLE)

    async def _proof(
        request: Request,
        first: str,
        second: str,
        prove: Callable[[int, int | None], Awaitable[list[bytes]]],
        names: tuple[str, str],
    ) -> Response:
        """A proof between two tree positions: `first` is required, `second` defaults to
        the latest checkpoint's size."""
        await allow(request, READ)
        try:
            a, b = _int(request, first), _int(request, second)
            if a is None:
                raise ValueError(f"query parameter '{first}' is required")
            if b is None:
                b = await _latest_size()
            hashes = await prove(a, b)
        except ValueError as exc:
            return _error(400, str(exc), "invalid_parameter")
        except NotFoundError as exc:
            return _error(404, str(exc), "not_found")
        return _json({names[0]: a, names[1]: b, "hashes": [b64(h) for h in hashes]})

    async def inclusion(request: Request) -> Response:
        return await _proof(request, "index", "size", ledger.inclusion_proof, ("index", "tree_size"))

    async def consistency(request: Request) -> Response:
        return await _proof(request, "from", "to", ledger.consistency_proof, ("from", "to"))

    async def receipt(request: Request) -> Response:
        await allow(request, READ)
        raw = request.path_params["index"]
        if not raw.isdigit() or len(raw) > 19:
            return _error(400, "index must be a non-negative integer", "invalid_parameter")
        try:
            text = await ledger.receipt(int(raw))
        except NotFoundError as exc:
            return _error(404, str(exc), "not_found")
        return PlainTextResponse(text, headers={"Cache-Control": "no-store"})

    async def entries(request: Request) -> Response:
        tenant = await allow(request, AUDIT)
        try:
            start = _int(request, "start", 0) or 0
            end = _int(request, "end", start + 100)
            assert end is not None
            if end < start or end - start > MAX_ENTRIES:
                raise ValueError(f"ask for 0 to {MAX_ENTRIES} entries: start <= end <= start + {MAX_ENTRIES}")
        except ValueError as exc:
            return _error(400, str(exc), "invalid_parameter")
        rows = await ledger.entries(start, end)
        out = []
        for index, data in rows:
            try:
                entry = decode_entry(data)
            except EntryError:
                if tenant is None:
                    out.append({"index": index, "invalid": b64(data)})
                continue
            if tenant is None or entry.tenant == tenant:
                out.append({"index": index, "entry": entry})
        return _json({"start": start, "end": end, "entries": out})

    table = [
        Route("/checkpoint", checkpoint, methods=["GET"]),
        Route("/vkey", vkey, methods=["GET"]),
        Route("/tile/{path:path}", tile, methods=["GET"]),
        Route("/proof/inclusion", inclusion, methods=["GET"]),
        Route("/proof/consistency", consistency, methods=["GET"]),
        Route("/receipt/{index}", receipt, methods=["GET"]),
    ]
    if authorize is not None:
        table.append(Route("/entries", entries, methods=["GET"]))
    return table
