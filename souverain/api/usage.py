"""`GET /admin/usage`: the usage report over HTTP, for an API key with the `admin` scope
(docs/usage.md, "Reading the usage"). Query parameters as `souverain usage`'s options:
`by`, `since`, `until`, `tenant`, `format` (json or csv). `GET /admin/usage/costs`: the
cost case, as `souverain usage costs`."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from souverain.errors import InvalidRequest
from souverain.usage.costs import CostQuery
from souverain.usage.costs import render as render_costs
from souverain.usage.report import Query, QueryError, render


async def usage_report(request: Request) -> Response:
    gw = request.app.state.gateway
    gw.pipeline.authenticate(request.headers.get("authorization"), "admin")
    accounting = gw.accounting
    q = request.query_params
    try:
        query = Query.parse(q.get("by"), q.get("since"), q.get("until"), q.get("tenant"), q.get("format"))
    except QueryError as exc:
        raise InvalidRequest(str(exc)) from None
    if query.format == "table":
        query = Query(query.by, query.since, query.until, query.tenant, "json")

    def read() -> str:
        db = accounting.open_db()
        try:
            return render(query, query.run(db), accounting.currency)
        finally:
            db.close()

    body = await asyncio.to_thread(read)
    media = "text/csv; charset=utf-8" if query.format == "csv" else "application/json"
    return Response(body, media_type=media)


async def usage_costs(request: Request) -> Response:
    """`GET /admin/usage/costs`: the cost case (`souverain usage costs`); `since`, `until`,
    `route`, `against`, `format` (json, the default, or html)."""
    gw = request.app.state.gateway
    gw.pipeline.authenticate(request.headers.get("authorization"), "admin")
    accounting = gw.accounting
    q = request.query_params
    try:
        query = CostQuery.parse(
            q.get("since"), q.get("until"), q.get("route"), q.get("against"), q.get("format") or "json"
        )
        if query.format == "table":
            raise QueryError("unknown format 'table'; json or html")
        query.routes(accounting.config)
    except QueryError as exc:
        raise InvalidRequest(str(exc)) from None
    ledger = accounting.ledger

    def read() -> str:
        db = accounting.open_db()
        try:
            return render_costs(query.run(accounting.config, db, ledger.open_store if ledger else None), query.format)
        finally:
            db.close()

    body = await asyncio.to_thread(read)
    media = "text/html; charset=utf-8" if query.format == "html" else "application/json"
    return Response(body, media_type=media)
