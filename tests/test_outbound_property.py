"""Property: for any request body, every piece of text that reaches an engine was read by
the classifier first. The body is generated (any JSON in the places a request may hold
free-form JSON, and strings anywhere a string goes); the engine is a fake that keeps the
bytes it is sent; the scanner is the real one, wrapped to remember what it read."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inprocess import TWO_ROUTES

from souverain.api.app import Gateway, create_app
from souverain.auth import KeyStore
from souverain.config.loader import parse_config
from souverain.engines.fake import FakeEngine
from souverain.privacy import Finding, Scanner
from souverain.state import connect
from souverain.state.keys import SqliteKeyTable


class Reading:
    """The real scanner, remembering every text it was given."""

    def __init__(self) -> None:
        self.scanner = Scanner()
        self.read: set[str] = set()

    def scan(self, text: str, *, context: str = "") -> list[Finding]:
        self.read.add(text)
        return self.scanner.scan(text, context=context)

    def classify(self, findings: Any) -> Any:
        return self.scanner.classify(findings)


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
scalar = st.one_of(st.none(), st.booleans(), st.integers(-(10**12), 10**12), text)
json_value = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
# A JSON text inside a string (as tool-call arguments are), sometimes not JSON at all.
json_text = st.one_of(json_value.map(lambda v: json.dumps(v, ensure_ascii=False)), text)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    content = draw(
        st.one_of(
            text,
            st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": text}), min_size=1, max_size=3),
            st.lists(st.dictionaries(text, json_value, max_size=3), min_size=1, max_size=2),
        )
    )
    messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
    if draw(st.booleans()):
        messages.append(
            {
                "role": "assistant",
                "name": draw(text),
                "tool_calls": [
                    {
                        "id": draw(text),
                        "type": "function",
                        "function": {
                            "name": "f",
                            "arguments": draw(st.one_of(json_text, st.dictionaries(text, json_value, max_size=3))),
                        },
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": draw(text), "content": draw(text)})
    body: dict[str, Any] = {"model": "assistant", "messages": messages}
    if draw(st.booleans()):
        body["stop"] = draw(st.one_of(text, st.lists(text, max_size=3)))
    if draw(st.booleans()):
        body["user"] = draw(text)
    if draw(st.booleans()):
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "description": draw(text),
                    "parameters": draw(st.dictionaries(text, json_value, max_size=3)),
                },
            }
        ]
    if draw(st.booleans()):
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": "r",
                "description": draw(text),
                "schema": draw(st.dictionaries(text, json_value, max_size=3)),
            },
        }
    if draw(st.booleans()):
        body["tool_choice"] = draw(st.sampled_from(["auto", "none", "required"]))
    return body


def texts_in(node: Any) -> list[str]:
    """Every key, string and number of a JSON value, and of the JSON held in its strings,
    walked here independently of the walker under test. A string holding a JSON object
    or array stands for its contents, which are listed instead."""
    if isinstance(node, str):
        try:
            inner = json.loads(node)
        except ValueError:
            return [node]
        return texts_in(inner) if isinstance(inner, (dict, list)) else [node]
    if isinstance(node, dict):
        return [t for k, v in node.items() for t in (k, *texts_in(v))]
    if isinstance(node, list):
        return [t for v in node for t in texts_in(v)]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return [str(node)]
    return []


def _gateway(tmp_path: Path) -> tuple[Any, str, Reading, dict[str, FakeEngine]]:
    config = parse_config(TWO_ROUTES, "test.yaml", {}, base_dir=tmp_path)
    keys = KeyStore(SqliteKeyTable(connect(tmp_path)))
    token, _ = keys.create("property")
    fakes = {"assistant-onprem": FakeEngine(), "assistant-cloud": FakeEngine()}
    gateway = Gateway(config=config, keys=keys, engines=dict(fakes), state_dir=tmp_path)
    reading = Reading()
    gateway.pipeline.scanner = reading  # type: ignore[assignment]
    return create_app(gateway), token, reading, fakes


def test_every_text_sent_to_an_engine_was_read_by_the_classifier(tmp_path: Path) -> None:
    app, token, reading, fakes = _gateway(tmp_path)

    async def send(body: dict[str, Any]) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            return await client.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {token}"})

    checked = {"sent": 0}

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(bodies())
    def prop(body: dict[str, Any]) -> None:
        reading.read.clear()
        before = sum(len(f.sent) for f in fakes.values())
        response = asyncio.run(send(body))
        assert response.status_code in (200, 400, 403), response.text
        sent = [b for f in fakes.values() for b in f.sent][before:] if response.status_code == 200 else []
        for raw in sent:
            checked["sent"] += 1
            unread = [t for t in texts_in(json.loads(raw)) if t not in reading.read]
            assert not unread, f"sent without being read by the classifier: {unread!r}"

    prop()
    assert checked["sent"] > 100  # the property was exercised on bodies that were sent
