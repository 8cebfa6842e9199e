"""A request is recorded once, whenever its client goes away: one ledger entry, whose
status says what happened (200: the answer was complete when it was recorded; 499: the
client left before that), and one usage row, also after the rows are rebuilt from the
ledger (`Accounting.fill`).

The real app is driven by a hand-written ASGI client (`Client`): it lets the response's
messages through until the chosen point, where the client goes: from then on `receive`
answers `http.disconnect` and `send` never returns (a socket that no longer drains), as
uvicorn's ASGI 2.3 server does, so Starlette cancels the response. Everything else is
real: the gateway from a configuration, the OpenAI-compatible engine over HTTP to a real
local upstream (tests/upstreams.py), the SQLite ledger, the usage writer and its store.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from upstreams import Upstream, assistant_config

from souverain.api.app import Gateway, create_app
from souverain.auth import KeyStore
from souverain.config.loader import parse_config
from souverain.ledger import Ledger
from souverain.state import connect, open_accounting, usage_db
from souverain.state.keys import SqliteKeyTable

USAGE = """usage:
  currency: EUR
  prices:
    - {route: assistant, input_per_million: 1.5, output_per_million: 7.5}
"""
Message = dict[str, Any]


@pytest.fixture(scope="module")
def upstream() -> Any:
    u = Upstream("upstream")  # streams "upstream says ok" in 3-character chunks
    yield u
    u.stop()


class Client:
    """One request to an ASGI app. `leave(message)`: whether the client is gone when the
    app sends `message` (which then never arrives); `gone` may also be set from outside.
    Once it is gone, `send` never returns (`drains=False`: a socket whose buffer is full
    when the client goes) or returns at once, dropping the message (as uvicorn does on a
    closed connection)."""

    def __init__(
        self,
        body: dict[str, Any],
        headers: dict[str, str],
        leave: Callable[[Message], bool],
        *,
        drains: bool = False,
    ) -> None:
        self.body = json.dumps(body).encode()
        self.headers = [(k.encode(), v.encode()) for k, v in {"content-type": "application/json", **headers}.items()]
        self.leave = leave
        self.drains = drains
        self.gone = asyncio.Event()
        self.received: list[Message] = []  # what reached the client
        self._asked = False

    def scope(self) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},  # uvicorn's
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"gateway"), *self.headers],
            "client": ("127.0.0.1", 50000),
            "server": ("gateway", 80),
        }

    async def receive(self) -> Message:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if not self.gone.is_set() and self.leave(message):
            self.gone.set()
        if self.gone.is_set():
            if self.drains:
                return
            await asyncio.Event().wait()  # until the app cancels the send
        self.received.append(message)

    def events(self) -> list[bytes]:
        """The server-sent events' data that reached the client."""
        data = b"".join(m.get("body", b"") for m in self.received if m["type"] == "http.response.body")
        return [line[6:] for line in data.split(b"\n") if line.startswith(b"data: ")]


def data_events(count: int) -> Callable[[Message], bool]:
    """Leave when the app sends data event number `count` (from 1)."""
    seen = [0]

    def leave(message: Message) -> bool:
        seen[0] += message.get("body", b"").count(b"data: ")
        return seen[0] >= count

    return leave


def body_with(marker: bytes) -> Callable[[Message], bool]:
    return lambda message: marker in message.get("body", b"")


def never(message: Message) -> bool:
    return False


def gateway_run(
    tmp_path: Path, upstream: Upstream, scenario: Callable[[Gateway, str], Awaitable[None]]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Run `scenario(gateway, token)` on a gateway serving `assistant` from `upstream`,
    then let every background task finish; the ledger's entries, and the usage totals
    after the rows are rebuilt from the ledger. Also checks that the gateway's request
    counter (/metrics) counted each entry once, with its status."""

    async def main() -> tuple[list[dict[str, Any]], dict[str, int]]:
        config = parse_config(assistant_config(upstream, rest=USAGE), "test.yaml", {}, base_dir=tmp_path)
        keys = KeyStore(SqliteKeyTable(connect(tmp_path)))
        token, _ = keys.create("test")
        ledger = Ledger.open(config.ledger, state_dir=tmp_path)
        accounting = open_accounting(config, tmp_path, ledger)
        gateway = Gateway(config=config, keys=keys, ledger=ledger, accounting=accounting, state_dir=tmp_path)
        await ledger.start()
        accounting.start()
        try:
            await scenario(gateway, token)
            # Whatever the garbage collector finalises later (an iterator the response
            # left open) must not record the request again: let it happen now.
            for _ in range(3):
                gc.collect()
                await asyncio.sleep(0)
                while gateway._background:
                    await asyncio.wait(list(gateway._background))
            await asyncio.to_thread(accounting.stop)  # writes the queued rows
            db = usage_db(config, tmp_path)()
            try:
                accounting.fill(db, before=time.time() + 3600)  # every entry: none too recent
                (totals,) = db.totals([]) or [{"requests": 0}]
            finally:
                db.close()
            entries = [{**json.loads(row), "idx": idx} for idx, row in await ledger.entries(0, 1000)]
            counted = Counter(
                sample.labels["status"]
                for metric in gateway.metrics.requests.collect()
                for sample in metric.samples
                if sample.name.endswith("_total")
                for _ in range(int(sample.value))
            )
            assert counted == Counter(str(e["status"]) for e in entries), counted
            return entries, totals
        finally:
            for engine in gateway.engines.values():
                await engine.close()
            await ledger.stop()
            keys.close()

    return asyncio.run(main())


def chat(stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "assistant", "messages": [{"role": "user", "content": "Say hello"}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


DIALECTS = {"openai": {}, "mistral": {"x-souverain-dialect": "mistral"}}

# Where the client goes, and what its request's one entry must then say.
STREAM_POINTS: dict[str, tuple[Callable[[], Callable[[Message], bool]], int]] = {
    # Starlette cancels the response as it sends the status line: no event was started.
    "before the first event": (lambda: lambda m: m["type"] == "http.response.start", 499),
    "mid-stream": (lambda: data_events(2), 499),
    # The entry was handed to the ledger: the answer was complete, and is recorded so.
    "while the chunk with the ledger index is sent": (lambda: body_with(b"ledger_index"), 200),
    "while [DONE] is sent": (lambda: body_with(b"[DONE]"), 200),
}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("point", STREAM_POINTS)
def test_a_stream_the_client_leaves_is_recorded_once(
    tmp_path: Path, upstream: Upstream, point: str, dialect: str
) -> None:
    make_leave, status = STREAM_POINTS[point]
    leave = make_leave()
    clients: list[Client] = []

    async def scenario(gateway: Gateway, token: str) -> None:
        client = Client(chat(stream=True), {"authorization": f"Bearer {token}", **DIALECTS[dialect]}, leave)
        clients.append(client)
        await create_app(gateway)(client.scope(), client.receive, client.send)

    entries, usage = gateway_run(tmp_path, upstream, scenario)
    decision = "cancelled" if status == 499 else "allowed"
    assert [(e["status"], e["decision"]) for e in entries] == [(status, decision)]
    (entry,) = entries
    assert usage["requests"] == 1 and usage["refused"] == int(status == 499)
    events = clients[0].events()
    if status == 200:  # the whole answer, counted once
        assert entry["prompt_tokens"] == 3 and entry["completion_tokens"] == 2
        assert usage["input_tokens"] == 3 and usage["output_tokens"] == 2 and usage["cost_micros"] > 0
    if point == "while [DONE] is sent":
        final = json.loads(events[-1])
        assert final["souverain"]["ledger_index"] == entry["idx"] and b"[DONE]" not in events
    if point == "mid-stream":
        assert len(events) == 1  # one event reached the client before it left


def test_a_stream_whose_client_leaves_while_its_entry_is_written_is_recorded_once(
    tmp_path: Path, upstream: Upstream
) -> None:
    """The client goes while the entry is on its way to the ledger (the relay waits for it
    before the final chunk): that entry stands, and nothing else is recorded."""

    async def scenario(gateway: Gateway, token: str) -> None:
        client = Client(chat(stream=True), {"authorization": f"Bearer {token}"}, never)
        leave_while_appending(gateway, client.gone.set)
        await create_app(gateway)(client.scope(), client.receive, client.send)
        assert not [e for e in client.events() if b"ledger_index" in e]  # it never got there

    entries, usage = gateway_run(tmp_path, upstream, scenario)
    assert [(e["status"], e["decision"]) for e in entries] == [(200, "allowed")]
    assert usage["requests"] == 1 and usage["refused"] == 0 and usage["output_tokens"] == 2


def leave_while_appending(gateway: Gateway, leave: Callable[[], None]) -> None:
    """Call `leave` once the request's entry has been handed to the (real) ledger."""
    ledger = gateway.ledger
    assert ledger is not None
    append = ledger.append

    async def appending(*args: Any, **kwargs: Any) -> int:
        handed = asyncio.ensure_future(append(*args, **kwargs))
        await asyncio.sleep(0)  # the sequencer has it
        leave()
        return await handed

    ledger.append = appending  # type: ignore[method-assign]


def test_a_plain_answer_whose_task_is_cancelled_while_its_entry_is_written_is_recorded_once(
    tmp_path: Path, upstream: Upstream
) -> None:
    """Without a stream nothing watches the client once the upstream has answered, but the
    request's task can still be cancelled as it records (a server shutting down)."""

    async def scenario(gateway: Gateway, token: str) -> None:
        client = Client(chat(stream=False), {"authorization": f"Bearer {token}"}, never)
        task = asyncio.ensure_future(create_app(gateway)(client.scope(), client.receive, client.send))
        leave_while_appending(gateway, task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await task

    entries, usage = gateway_run(tmp_path, upstream, scenario)
    assert [(e["status"], e["decision"]) for e in entries] == [(200, "allowed")]
    assert usage["requests"] == 1 and usage["output_tokens"] == 2


def test_a_plain_answer_whose_client_leaves_as_it_is_sent_is_recorded_once(tmp_path: Path, upstream: Upstream) -> None:
    async def scenario(gateway: Gateway, token: str) -> None:
        leave = body_with(b"upstream says ok")
        client = Client(chat(stream=False), {"authorization": f"Bearer {token}"}, leave, drains=True)
        await create_app(gateway)(client.scope(), client.receive, client.send)

    entries, usage = gateway_run(tmp_path, upstream, scenario)
    assert [(e["status"], e["decision"]) for e in entries] == [(200, "allowed")]
    assert usage["requests"] == 1
