"""Fail closed, adversarially, over real servers: personal data hidden in every string
field of the OpenAI and Mistral chat schemas (and in embeddings) must never reach a route
that the policy excludes for it, whatever happens to the allowed route.

The set-up is the one that once leaked 260 requests out of 3,000: one public model served
by two recording upstreams, `a-onprem` (allowed for personal data, priority 0) and
`c-azure-eu` (a US-parented cloud, excluded for personal data by the strict default
policy, priority 1), behind a real gateway process. The on-premises upstream is stopped,
slowed past the gateway's read timeout and restarted while thousands of requests run.

What is checked is the promise, black-box: the cloud upstream's received bodies are
searched for every canary value in any form (raw, after recursive JSON decoding, with JSON
escapes undone, with separators removed and case folded, across string boundaries, and
base64-decoded), and every personal request was either answered by the on-premises route
or refused or failed without a route (502/503/504, route `none` or `a-onprem`).

Each placement (`PLACEMENTS`) is also sent once on its own with the on-premises upstream
down, so that a failure names the field that leaks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import re
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from conftest import Server, http
from mistralai.client import Mistral
from upstreams import Upstream

# -- canaries: values the scanner detects (valid check digits), as a person would write them
EMAIL = "marie.dubois@exemple.fr"
IBAN = "FR76 3000 6000 0112 3456 7890 189"
IBAN_COMPACT = IBAN.replace(" ", "")
PHONE = "+33 6 12 34 56 78"
CARD = "4970 1012 3456 7893"  # Luhn-valid
NIR = "1 52 01 74 417 776 79"  # French social security number (NIR), valid key
STEUER_ID = "59 378 910 647"  # German tax id (IdNr), valid check digit
DNI = "73982051-K"  # Spanish DNI, valid letter
CODICE_FISCALE = "VCTVFR97L05C860U"
NAME = "Marie Dupont"

# What a media part points to or carries: unscannable, so it must be treated as personal.
IMAGE_URL = "https://files.example.org/scans/passport-7731.jpg"
DOCUMENT_URL = "https://files.example.org/contracts/contract-7731.pdf"
FILE_ID = "file-passport-7731"


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


SECRET_SENTENCE = f"Customer {NAME}, IBAN {IBAN}, e-mail {EMAIL}, phone {PHONE}"
PNG = b64(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + f"tEXt IBAN {IBAN}".encode() + b"\x00IEND")
WAV = b64(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + f"transcript: my card is {CARD}".encode())
PDF = b64(f"%PDF-1.4\n1 0 obj << >> stream\nBT (Statement for {NAME}, IBAN {IBAN}) Tj ET\nendstream".encode())
BLOB = b64(SECRET_SENTENCE)

CANARIES = (
    EMAIL,
    IBAN,
    PHONE,
    CARD,
    NIR,
    STEUER_ID,
    DNI,
    CODICE_FISCALE,
    NAME,
    IMAGE_URL,
    DOCUMENT_URL,
    FILE_ID,
    PNG,
    WAV,
    PDF,
    BLOB,
)


# -- where the canaries go -------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """One way of carrying personal data in a request. `body` is the request without
    `model` and `stream`; `mistral` says the official mistralai SDK can send it as is."""

    name: str
    body: dict[str, Any]
    endpoint: str = "chat"
    mistral: bool = False
    unscannable: bool = False  # media or an encoded blob: personal only when the caller declared no class


def user(content: Any, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **extra}


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": t, **extra}


def across_turns(name: str, asked: str, said: str, answered: str) -> Placement:
    """A value split over turns: the assistant's turn ends with its first half, the
    user's next turn starts with the rest."""
    return Placement(
        name, {"messages": [user(asked), {"role": "assistant", "content": said}, user(answered)]}, mistral=True
    )


def tool_turn(
    arguments: Any, name: str = "lookup", call_id: str = "call_1", result: str = "done"
) -> list[dict[str, Any]]:
    """A user turn, the assistant's tool call with `arguments`, and the tool's answer."""
    return [
        user("Look the customer up, please."),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": call_id, "content": result},
        user("Thanks, now summarise."),
    ]


def tools_with(function: dict[str, Any]) -> list[dict[str, Any]]:
    base = {
        "name": "lookup",
        "description": "Look a record up.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    return [{"type": "function", "function": {**base, **function}}]


def schema_format(**json_schema: Any) -> dict[str, Any]:
    base = {"name": "answer", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}
    return {"type": "json_schema", "json_schema": {**base, **json_schema}}


ASK = [user("Summarise the file in two lines.")]
JSON_ESCAPED_CARD = CARD.replace(" ", "\\u00a0")  # as the six characters \u00a0 inside JSON text
JSON_ESCAPED_EMAIL = EMAIL.replace("@", "\\u0040")

PLACEMENTS: list[Placement] = [
    # Message content (the scanner has always looked here: these guard against regressions).
    Placement("content string", {"messages": [user(f"Please e-mail {EMAIL} today")]}, mistral=True),
    Placement(
        "system content",
        {"messages": [{"role": "system", "content": f"Le client s'appelle {NAME}, NIR {NIR}."}, *ASK]},
        mistral=True,
    ),
    Placement("text part", {"messages": [user([text(f"Pay to IBAN {IBAN}")])]}, mistral=True),
    Placement(
        "national ids in text",
        {"messages": [user(f"Mi DNI es {DNI}. Codice fiscale {CODICE_FISCALE}. Meine Steuer-ID lautet {STEUER_ID}.")]},
        mistral=True,
    ),
    Placement("message name", {"messages": [user("Hello", name=EMAIL)]}),
    Placement("tool message content", {"messages": tool_turn("{}", result=f"Customer phone {PHONE}")}),
    Placement(
        "mistral thinking part",
        {
            "messages": [
                user("Plan the payment."),
                {
                    "role": "assistant",
                    "content": [{"type": "thinking", "thinking": [text(f"The IBAN is {IBAN}")]}, text("Planned.")],
                },
                user("Go on."),
            ]
        },
    ),
    # Tool calls: values and keys, JSON string and object, names and ids.
    Placement("tool_call arguments JSON value", {"messages": tool_turn(json.dumps({"iban": IBAN_COMPACT}))}),
    Placement("tool_call arguments object value", {"messages": tool_turn({"iban": IBAN_COMPACT})}, mistral=True),
    Placement(
        "tool_call arguments JSON key", {"messages": tool_turn(json.dumps({EMAIL: "primary contact"}))}, mistral=True
    ),
    Placement("tool_call arguments object key", {"messages": tool_turn({EMAIL: "primary contact"})}, mistral=True),
    Placement(
        "tool_call arguments nested key",
        {"messages": tool_turn(json.dumps({"accounts": {IBAN_COMPACT: {"amount": 12}}}))},
    ),
    Placement("tool_call function name", {"messages": tool_turn("{}", name=IBAN_COMPACT)}),
    Placement("tool_call id", {"messages": tool_turn("{}", call_id=EMAIL)}),
    # Tool definitions.
    Placement(
        "tools description",
        {"messages": ASK, "tools": tools_with({"description": f"Find {NAME}, {EMAIL}"})},
        mistral=True,
    ),
    Placement(
        "tools parameter description",
        {
            "messages": ASK,
            "tools": tools_with(
                {
                    "parameters": {
                        "type": "object",
                        "properties": {"account": {"type": "string", "description": f"Always use IBAN {IBAN}"}},
                    }
                }
            ),
        },
        mistral=True,
    ),
    Placement(
        "tools parameter enum",
        {
            "messages": ASK,
            "tools": tools_with(
                {"parameters": {"type": "object", "properties": {"to": {"type": "string", "enum": [EMAIL, "nobody"]}}}}
            ),
        },
        mistral=True,
    ),
    Placement(
        "tools parameter default",
        {
            "messages": ASK,
            "tools": tools_with(
                {
                    "parameters": {
                        "type": "object",
                        "properties": {"phone": {"type": "string", "default": PHONE, "examples": [PHONE]}},
                    }
                }
            ),
        },
    ),
    Placement(
        "tools property name",
        {
            "messages": ASK,
            "tools": tools_with(
                {"parameters": {"type": "object", "properties": {EMAIL: {"type": "string"}}, "required": [EMAIL]}}
            ),
        },
        mistral=True,
    ),
    Placement("tools function name", {"messages": ASK, "tools": tools_with({"name": IBAN_COMPACT})}, mistral=True),
    Placement(
        "tool_choice function name",
        {
            "messages": ASK,
            "tools": tools_with({"name": IBAN_COMPACT}),
            "tool_choice": {"type": "function", "function": {"name": IBAN_COMPACT}},
        },
    ),
    # response_format.
    Placement("response_format schema name", {"messages": ASK, "response_format": schema_format(name=EMAIL)}),
    Placement(
        "response_format description",
        {"messages": ASK, "response_format": schema_format(description=f"Invoice for IBAN {IBAN}")},
        mistral=True,
    ),
    Placement(
        "response_format property description",
        {
            "messages": ASK,
            "response_format": schema_format(
                schema={"type": "object", "properties": {"a": {"type": "string", "description": f"Call {PHONE} first"}}}
            ),
        },
        mistral=True,
    ),
    Placement(
        "response_format enum",
        {
            "messages": ASK,
            "response_format": schema_format(
                schema={"type": "object", "properties": {"a": {"type": "string", "enum": [EMAIL]}}}
            ),
        },
        mistral=True,
    ),
    Placement(
        "response_format property name",
        {
            "messages": ASK,
            "response_format": schema_format(
                schema={"type": "object", "properties": {IBAN_COMPACT: {"type": "number"}}}
            ),
        },
        mistral=True,
    ),
    Placement(
        "response_format json_object schema",
        {
            "messages": ASK,
            "response_format": {
                "type": "json_object",
                "schema": {"type": "object", "properties": {"a": {"type": "string", "description": f"Mail {EMAIL}"}}},
            },
        },
    ),
    # stop, user, unknown and dialect-specific fields.
    Placement("stop string", {"messages": ASK, "stop": EMAIL}, mistral=True),
    Placement("stop list", {"messages": ASK, "stop": ["\n\n", f"IBAN {IBAN}"]}, mistral=True),
    Placement("stop name with context", {"messages": ASK, "stop": [f"je m'appelle {NAME}"]}),
    Placement("user", {"messages": ASK, "user": EMAIL}),
    Placement("metadata", {"messages": ASK, "metadata": {"customer_email": EMAIL}}, mistral=True),
    Placement(
        "prediction", {"messages": ASK, "prediction": {"type": "content", "content": f"IBAN {IBAN}"}}, mistral=True
    ),
    Placement("unknown top-level field", {"messages": ASK, "x_customer": {"iban": IBAN_COMPACT, "phone": PHONE}}),
    Placement("unknown message field", {"messages": [user("Hello", metadata={"email": EMAIL})]}),
    Placement("content part extra value", {"messages": [user([text("Hello", note=f"from {EMAIL}")])]}),
    Placement("content part extra key", {"messages": [user([text("Hello", **{EMAIL: "sender"})])]}),
    Placement("content part type", {"messages": [user([{"type": EMAIL, "text": "Hello"}])]}),
    # Split: half in one turn or part, half in the next.
    across_turns(
        "split IBAN across turns",
        "What is the customer's IBAN?",
        "The customer's IBAN is FR76 3000 6000",
        "0112 3456 7890 189, yes. Please confirm the transfer.",
    ),
    across_turns(
        "split e-mail across turns",
        "Where do I send it?",
        "Send it to marie.dubois",
        "@exemple.fr, the usual address.",
    ),
    Placement(
        "split card across text parts",
        {"messages": [user([text("Card number 4970 1012"), text(" 3456 7893, expiry 12/27")])]},
        mistral=True,
    ),
    # JSON escapes in JSON text.
    Placement("arguments JSON with \\u00a0 escapes", {"messages": tool_turn('{"card": "' + JSON_ESCAPED_CARD + '"}')}),
    Placement(
        "arguments JSON inside JSON with escapes",
        {"messages": tool_turn(json.dumps({"payload": '{"card": "' + JSON_ESCAPED_CARD + '"}'}))},
    ),
    Placement(
        "arguments broken JSON with \\u0040",
        {"messages": tool_turn('{"contact": "' + JSON_ESCAPED_EMAIL + '", "note": ')},
    ),
    Placement(
        "content JSON text with \\u0040",
        {"messages": [user('{"contact": "' + JSON_ESCAPED_EMAIL + '"}')]},
        mistral=True,
    ),
    Placement(
        "content JSON text with \\u00a0 card",
        {"messages": [user('{"payment": {"card": "' + JSON_ESCAPED_CARD + '"}}')]},
        mistral=True,
    ),
    # Text that looks like data.
    Placement(
        "text part starting with data:", {"messages": [user([text(f"data: customer IBAN {IBAN}")])]}, mistral=True
    ),
    Placement(
        "text part data URL",
        {"messages": [user([text("data:text/plain;base64," + BLOB)])]},
        mistral=True,
        unscannable=True,
    ),
    Placement("content string starting with data:", {"messages": [user(f"data: {EMAIL}")]}, mistral=True),
    # Base64-encoded text.
    Placement("base64 content", {"messages": [user(BLOB)]}, mistral=True, unscannable=True),
    Placement("base64 text part", {"messages": [user([text("decode: " + BLOB)])]}, mistral=True, unscannable=True),
    Placement("base64 in tool arguments", {"messages": tool_turn(json.dumps({"blob": BLOB}))}, unscannable=True),
    # Media and files: unscannable, so personal unless the caller declared a class.
    Placement(
        "image_url data URL",
        {
            "messages": [
                user(
                    [
                        text("What does this scan say?"),
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG}},
                    ]
                )
            ]
        },
        mistral=True,
        unscannable=True,
    ),
    Placement(
        "image_url https URL",
        {"messages": [user([text("Read this document."), {"type": "image_url", "image_url": {"url": IMAGE_URL}}])]},
        mistral=True,
        unscannable=True,
    ),
    Placement(
        "image_url as a string",
        {"messages": [user([text("Read it."), {"type": "image_url", "image_url": "data:image/png;base64," + PNG}])]},
        unscannable=True,
    ),
    Placement(
        "input_audio",
        {
            "messages": [
                user([text("Transcribe."), {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}])
            ]
        },
        mistral=True,
        unscannable=True,
    ),
    Placement(
        "file part data",
        {
            "messages": [
                user(
                    [
                        text("Summarise the statement."),
                        {
                            "type": "file",
                            "file": {"filename": "statement.pdf", "file_data": "data:application/pdf;base64," + PDF},
                        },
                    ]
                )
            ]
        },
        unscannable=True,
    ),
    Placement(
        "file part id",
        {"messages": [user([text("Summarise the file."), {"type": "file", "file": {"file_id": FILE_ID}}])]},
        unscannable=True,
    ),
    Placement(
        "document_url",
        {"messages": [user([text("Summarise."), {"type": "document_url", "document_url": DOCUMENT_URL}])]},
        mistral=True,
        unscannable=True,
    ),
    # Embeddings.
    Placement("embeddings string", {"input": f"Customer e-mail {EMAIL}"}, endpoint="embeddings"),
    Placement("embeddings list", {"input": ["hello", f"IBAN {IBAN}"]}, endpoint="embeddings"),
    Placement(
        "embeddings JSON text with \\u0040",
        {"input": '{"contact": "' + JSON_ESCAPED_EMAIL + '"}'},
        endpoint="embeddings",
    ),
    Placement("embeddings base64", {"input": BLOB}, endpoint="embeddings", unscannable=True),
]
CHAT = [p for p in PLACEMENTS if p.endpoint == "chat"]
MISTRAL = [p for p in CHAT if p.mistral]


# -- finding canaries in what the cloud received ------------------------------------------
_SEPARATORS = re.compile(r"[\s\u00a0\u00ad\u200b-\u200d\u2060\ufeff.\-\u2010-\u2015/()]+")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def squash(s: str) -> str:
    """Separators (spaces, NBSP, dashes, dots...) removed, compatibility forms folded, case folded."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", s)).casefold()


SQUASHED = {squash(c): c for c in CANARIES}


def _decoded_base64(s: str) -> Iterator[str]:
    for run in _BASE64.findall(s):
        for offset in range(4):
            chunk = run[offset:].rstrip("=")
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    yield decode(chunk + "==").decode("latin-1")
                except (binascii.Error, ValueError):
                    pass


def forms(raw: bytes) -> list[str]:
    """Every form a canary could take in a body: the raw text; every string and key at any
    depth, JSON strings that hold JSON decoded in turn; JSON escapes undone where the JSON
    does not parse; the base64-decoded runs of all of these; and string values joined (a
    value split over two strings)."""
    text = raw.decode("utf-8", "replace")
    out = [text, _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)]
    values: list[str] = []

    def walk(node: Any, depth: int = 0) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                out.append(str(k))
                walk(v, depth)
        elif isinstance(node, list):
            for v in node:
                walk(v, depth)
        elif isinstance(node, str):
            values.append(node)
            out.append(node)
            out.append(_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), node))
            if depth < 8 and node.strip()[:1] in ("{", "[", '"'):
                try:
                    walk(json.loads(node), depth + 1)
                except ValueError:
                    pass

    try:
        walk(json.loads(raw))
    except ValueError:
        pass
    out += [d for s in list(out) for d in _decoded_base64(s)]
    # A value cut in two: each string joined to each of the next few (a `role` or a
    # `type` may sit between the halves), and all of them joined.
    out += [values[i] + values[j] for i in range(len(values)) for j in range(i + 1, min(i + 5, len(values)))]
    out.append("".join(values))
    return out


def canaries_in(raw: bytes) -> set[str]:
    squashed = [squash(f) for f in forms(raw)]
    return {original for needle, original in SQUASHED.items() if any(needle in s for s in squashed)}


def test_the_search_finds_every_canary_in_every_placement_as_sent() -> None:
    """The check below is only as good as this search: each placement's body, as a client
    sends it, must show a canary to it (else a leak of that placement would go unseen),
    and a public body must show none (else the check could not tell them apart)."""
    for p in PLACEMENTS:
        assert canaries_in(json.dumps(p.body).encode()), p.name
        assert canaries_in(json.dumps(p.body, ensure_ascii=False).encode()), p.name
    assert canaries_in(json.dumps(public_body(123)).encode()) == set()
    assert canaries_in(json.dumps({"input": ["Tell me a fact", "number 42"]}).encode()) == set()


# -- the gateway ---------------------------------------------------------------------------
def tagged(p: Placement, tag: str, stream: bool = False) -> dict[str, Any]:
    """The placement's request for model `assistant`; a chat request carries `tag` in a
    system message of its own, so that a leaked body names its request."""
    body = copy.deepcopy(p.body)
    body["model"] = "assistant"
    if p.endpoint == "chat":
        body["messages"] = [{"role": "system", "content": f"Ticket {tag}."}, *body["messages"]]
        body["stream"] = stream
    return body


def public_body(i: int, stream: bool = False) -> dict[str, Any]:
    return {
        "model": "assistant",
        "stream": stream,
        "messages": [{"role": "system", "content": f"Ticket P{i:05d}."}, user(f"Tell me a fact, number {i}")],
    }


def path(p: Placement) -> str:
    return "/v1/chat/completions" if p.endpoint == "chat" else "/v1/embeddings"


def leaked(cloud: Upstream, since: int) -> dict[str, set[str]]:
    """Canaries found in what the cloud received after index `since`, by the ticket of the
    request that carried them (embeddings requests carry none: they are labelled as such)."""
    out: dict[str, set[str]] = {}
    for n, raw in enumerate(cloud.received[since:]):
        found = canaries_in(raw)
        if found:
            ticket = re.search(rb"Ticket (T\d+)", raw)
            kind = "embeddings" if b'"input"' in raw else "chat"
            label = ticket.group(1).decode() if ticket else f"untagged {kind} request #{n}"
            out.setdefault(label, set()).update(found)
    return out


def wait_for_onprem(server: Server, timeout: float = 15) -> None:
    """Until a personal request is answered on-premises again (breaker closed)."""
    deadline = time.monotonic() + timeout
    while True:
        r = http.post(
            f"{server.url}/v1/chat/completions", json=tagged(PLACEMENTS[0], "T-wait"), headers=server.headers()
        )
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200 and r.headers["x-souverain-route"] == "a-onprem", r.text


# -- one request per placement --------------------------------------------------------------
@pytest.fixture(scope="module")
def forwarded(routed: Server, upstreams) -> dict[str, bool]:
    """Each placement sent once with the on-premises route up: whether its canary reached
    that route. The gateway may drop a field it does not know (`metadata`, `prediction`):
    then nothing personal leaves with it, and the rest may go to the cloud; a field it
    forwards anywhere must be classified, and the request kept off the cloud."""
    onprem, cloud = upstreams
    wait_for_onprem(routed)
    out, bad = {}, {}
    for p in PLACEMENTS:
        before = len(onprem.received)
        r = http.post(f"{routed.url}{path(p)}", json=tagged(p, "T-valid"), headers=routed.headers())
        if r.status_code != 200 or r.headers.get("x-souverain-route") != "a-onprem":
            bad[p.name] = (r.status_code, r.headers.get("x-souverain-route"), r.text[:200])
        out[p.name] = any(canaries_in(raw) for raw in onprem.received[before:])
    assert not bad, f"placements the allowed route did not serve: {bad}"
    return out


def test_every_placement_is_a_request_the_allowed_route_serves(forwarded: dict[str, bool]) -> None:
    """With the on-premises route up, each placement's request is valid and goes there (the
    fixture checks it): so the refusals below are about the data, not a malformed request.
    And most placements do carry their canary out of the gateway: else the test would be
    about fields nobody sends."""
    dropped = sorted(name for name, sent in forwarded.items() if not sent)
    print(f"fields the gateway does not forward: {dropped}")
    assert len(dropped) <= 6, dropped


@pytest.fixture(scope="class")
def onprem_down(routed: Server, upstreams) -> Iterator[None]:
    onprem, cloud = upstreams
    onprem.stop()
    yield
    onprem.start()
    wait_for_onprem(routed)


@pytest.mark.usefixtures("onprem_down")
class TestEachPlacementWithTheAllowedRouteDown:
    """The on-premises upstream is stopped for the whole class; every personal request must
    be refused or fail, and the cloud must receive nothing of it."""

    def test_public_requests_do_use_the_cloud(self, routed: Server, upstreams) -> None:
        """The control: the excluded route is up and taken for public data, so a placement
        that passes below was kept from it, not merely never offered to it."""
        onprem, cloud = upstreams
        before = len(cloud.received)
        r = http.post(f"{routed.url}/v1/chat/completions", json=public_body(1), headers=routed.headers())
        assert r.status_code == 200 and r.headers["x-souverain-route"] == "c-azure-eu", r.text
        assert len(cloud.received) == before + 1

    @pytest.mark.parametrize("placement", PLACEMENTS, ids=[p.name for p in PLACEMENTS])
    def test_placement(self, routed: Server, upstreams, forwarded: dict[str, bool], placement: Placement) -> None:
        onprem, cloud = upstreams
        before = len(cloud.received)
        r = http.post(f"{routed.url}{path(placement)}", json=tagged(placement, "T-one"), headers=routed.headers())
        assert not leaked(cloud, before), (
            f"{placement.name}: the excluded route c-azure-eu received {leaked(cloud, before)}"
        )
        outcome = (r.status_code, r.headers.get("x-souverain-route"), r.text[:300])
        if forwarded[placement.name]:
            # Refused or failed, never rerouted (not even without the field).
            assert r.status_code in (502, 503, 504) and outcome[1] in ("none", "a-onprem"), outcome
        else:
            assert r.status_code in (200, 502, 503, 504), outcome


# -- thousands of requests while the allowed route fails ----------------------------------
TOTAL = 3000
CONCURRENCY = 16


def load_placement(i: int) -> Placement:
    """The placement of odd request `i` of the load: the chat placements in turn, and
    every tenth personal request an embeddings one."""
    embeddings = [p for p in PLACEMENTS if p.endpoint == "embeddings"]
    return CHAT[(i // 2) % len(CHAT)] if i % 20 != 1 else embeddings[(i // 20) % len(embeddings)]


@dataclass
class Outcome:
    ticket: str
    kind: str  # "public" or the placement's name
    client: str
    status: int
    route: str
    declared_public: bool = False


def test_under_fault_injection_no_canary_reaches_the_excluded_route(
    routed: Server, upstreams, forwarded: dict[str, bool]
) -> None:
    onprem, cloud = upstreams
    wait_for_onprem(routed)
    cloud_before = len(cloud.received)
    outcomes: list[Outcome] = []
    done = 0
    finished = threading.Event()
    phases: list[str] = []

    async def load() -> None:
        nonlocal done
        mistral_headers: dict[str, httpx.Headers] = {}

        async def keep_headers(response: httpx.Response) -> None:
            mistral_headers[response.request.headers["x-test-ticket"]] = response.headers

        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with (
            httpx.AsyncClient(timeout=60, limits=limits, headers=routed.headers()) as client,
            httpx.AsyncClient(timeout=60, limits=limits, event_hooks={"response": [keep_headers]}) as mistral_http,
            openai.AsyncOpenAI(base_url=f"{routed.url}/v1", api_key=routed.key, max_retries=0, timeout=60) as oai,
        ):
            mistral = Mistral(api_key=routed.key, server_url=routed.url, async_client=mistral_http, timeout_ms=60_000)
            sem = asyncio.Semaphore(CONCURRENCY)

            async def via_httpx(p: Placement | None, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
                url = f"{routed.url}{path(p) if p else '/v1/chat/completions'}"
                async with client.stream("POST", url, json=body, headers=headers) as r:
                    await r.aread()
                    return r.status_code, r.headers.get("x-souverain-route", "")

            async def via_openai(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
                body = dict(body)
                known = {
                    k: body.pop(k)
                    for k in (
                        "model",
                        "messages",
                        "stream",
                        "stop",
                        "tools",
                        "tool_choice",
                        "response_format",
                        "user",
                        "metadata",
                        "prediction",
                    )
                    if k in body
                }
                try:
                    raw = await oai.chat.completions.with_raw_response.create(
                        **known, extra_body=body or None, extra_headers=headers
                    )
                    parsed = raw.parse()  # the raw (legacy) response parses synchronously
                    if known.get("stream"):
                        async for _ in parsed:
                            pass
                    return raw.status_code, raw.headers.get("x-souverain-route", "")
                except openai.APIStatusError as exc:
                    return exc.status_code, exc.response.headers.get("x-souverain-route", "")

            async def via_mistral(body: dict[str, Any], headers: dict[str, str], ticket: str) -> tuple[int, str]:
                body = dict(body)
                stream = body.pop("stream")
                headers = {**headers, "x-test-ticket": ticket}
                try:
                    if stream:
                        events = await mistral.chat.stream_async(**body, http_headers=headers)
                        async for _ in events:
                            pass
                    else:
                        await mistral.chat.complete_async(**body, http_headers=headers)
                except Exception as exc:  # the SDK's error types; the status is in the kept headers
                    status = getattr(exc, "status_code", None) or getattr(
                        getattr(exc, "raw_response", None), "status_code", None
                    )
                    if status is None:
                        raise
                    kept = mistral_headers.get(ticket, httpx.Headers())
                    return int(status), kept.get("x-souverain-route", "")
                kept = mistral_headers[ticket]
                return 200, kept.get("x-souverain-route", "")

            async def one(i: int) -> None:
                nonlocal done
                stream = i % 3 == 0
                headers: dict[str, str] = {}
                declared_public = False
                if i % 2 == 0:
                    p: Placement | None = None
                    body = public_body(i, stream)
                    client_name = {0: "openai", 1: "mistral"}.get(i // 2 % 5, "httpx")
                else:
                    p = load_placement(i)
                    body = tagged(p, f"T{i:05d}", stream and p.endpoint == "chat")
                    if p.endpoint == "embeddings":
                        client_name = "httpx"
                    elif i % 7 == 0 and p.mistral:
                        client_name = "mistral"
                    elif i % 5 == 0:
                        client_name = "openai"
                    else:
                        client_name = "httpx"
                    # The caller claims the data is public: a declaration can only raise the
                    # class, never lower what the scanner finds (unscannable content excepted:
                    # there the declaration is what the caller vouches for).
                    if i % 9 == 0 and not p.unscannable:
                        headers["x-souverain-data-class"] = "public"
                        declared_public = True
                async with sem:
                    if client_name == "openai":
                        status, route = await via_openai(body, headers)
                    elif client_name == "mistral":
                        status, route = await via_mistral(body, headers, f"T{i:05d}")
                    else:
                        status, route = await via_httpx(p, body, headers)
                outcomes.append(
                    Outcome(f"T{i:05d}", p.name if p else "public", client_name, status, route, declared_public)
                )
                done += 1

            try:
                await asyncio.gather(*(one(i) for i in range(TOTAL)))
            finally:
                finished.set()

    def chaos() -> None:
        # Driven by progress, not the clock, so that every phase overlaps the load however
        # fast this machine is: stop the allowed upstream, restart it, slow it past the
        # gateway's read timeout (0.5 s), heal it; three times.
        steps = [
            ("stop", onprem.stop),
            ("start", onprem.start),
            ("slow", lambda: setattr(onprem, "delay", 1.0)),
            ("heal", lambda: setattr(onprem, "delay", 0.0)),
        ]
        marks = [int(TOTAL * (k + 1) / 14) for k in range(12)]
        for k, mark in enumerate(marks):
            while done < mark and not finished.is_set():
                time.sleep(0.01)
            if finished.is_set():
                break
            name, action = steps[k % 4]
            action()
            phases.append(name)
        onprem.delay = 0.0
        if phases.count("stop") > phases.count("start"):
            onprem.start()

    started = time.monotonic()
    chaos_thread = threading.Thread(target=chaos)
    chaos_thread.start()
    try:
        asyncio.run(load())
    finally:
        finished.set()
        chaos_thread.join()
    elapsed = time.monotonic() - started

    statuses = Counter(o.status for o in outcomes)
    print(
        f"{TOTAL} requests in {elapsed:.1f} s; statuses {dict(statuses)}; phases {phases}; "
        f"clients {dict(Counter(o.client for o in outcomes))}"
    )
    assert len(outcomes) == TOTAL
    assert phases.count("stop") >= 3 and phases.count("slow") >= 3, f"the chaos did not overlap the load: {phases}"

    # 1. Nothing personal reached the excluded route, in any form.
    leaks = leaked(cloud, cloud_before)
    by_ticket = {o.ticket: o for o in outcomes}
    by_placement = Counter(
        f"{by_ticket[t].kind}{' (declared public)' if by_ticket[t].declared_public else ''}"
        if t in by_ticket
        else t.partition(" #")[0]
        for t in leaks
    )
    assert not leaks, f"{len(leaks)} requests carried canaries to c-azure-eu, by placement: {dict(by_placement)}"

    # 2. Every personal request was answered on-premises, or refused/failed without a route.
    #    (A placement whose field the gateway does not forward carries nothing personal
    #    out of it: see `forwarded`; its leaks are caught by 1.)
    personal = [o for o in outcomes if o.kind != "public" and forwarded[o.kind]]
    wrong = Counter(
        (o.kind, o.client, o.declared_public, o.status, o.route)
        for o in personal
        if not (
            (o.status == 200 and o.route == "a-onprem")
            or (o.status in (502, 503, 504) and o.route in ("none", "a-onprem"))
        )
    )
    assert not wrong, f"personal requests answered otherwise: {dict(wrong)}"
    assert any(o.status == 200 for o in personal), "no personal request was ever served"
    assert any(o.status == 503 for o in personal), (
        f"the chaos never left personal data without a route: {dict(statuses)}"
    )

    # 3. No 500s, nothing but answers and route failures.
    assert set(statuses) <= {200, 502, 503, 504}, dict(statuses)

    # 4. Not vacuous: public requests did reach the cloud.
    public_on_cloud = [o for o in outcomes if o.kind == "public" and o.status == 200 and o.route == "c-azure-eu"]
    assert public_on_cloud, "no public request used the cloud route: the test proves nothing"
    assert any(re.search(rb"Ticket P\d+", raw) for raw in cloud.received[cloud_before:])
