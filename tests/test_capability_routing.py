"""A capability one route's upstream lacks: the gateway passes that route over before
anything is sent to it, and refuses (400, naming the model and the capability) only
when no allowed route can honour the request.

Two recording upstreams serve `assistant`: on-premises first, declared as a
llama-cpp-python server (no `n` > 1, no reasoning controls); the cloud route second, an
OpenAI-flavoured server. Nothing here carries personal data, so both routes are allowed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Server, http
from upstreams import Upstream, two_routes


@pytest.fixture(scope="module")
def gateway_pair(upstreams: tuple[Upstream, Upstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    onprem, cloud = upstreams  # conftest: the two recording upstreams
    config = two_routes(
        f"http://127.0.0.1:{onprem.port}/v1",
        f"http://127.0.0.1:{cloud.port}/v1",
        onprem="    flavor: llama-cpp-python\n",
    )
    server = Server(tmp_path_factory.mktemp("capabilities"), config)
    server.wait_ready()
    yield server
    server.stop()


def ask(**extra: Any) -> dict[str, Any]:
    return {"model": "assistant", "messages": [{"role": "user", "content": "What is the capital of France?"}], **extra}


def test_route_that_cannot_is_passed_over(gateway_pair: Server, upstreams: tuple[Upstream, Upstream]) -> None:
    onprem, cloud = upstreams
    before = len(onprem.received), len(cloud.received)
    plain = http.post(f"{gateway_pair.url}/v1/chat/completions", json=ask(), headers=gateway_pair.headers())
    assert plain.status_code == 200 and plain.headers["x-souverain-route"] == "a-onprem"
    two = http.post(f"{gateway_pair.url}/v1/chat/completions", json=ask(n=2), headers=gateway_pair.headers())
    assert two.status_code == 200, two.text
    assert two.headers["x-souverain-route"] == "c-azure-eu"
    assert len(onprem.received) == before[0] + 1  # the plain request only: n=2 never reached it
    assert json.loads(cloud.received[-1])["n"] == 2


def test_no_route_can_is_a_400_naming_the_capability(
    gateway_pair: Server, upstreams: tuple[Upstream, Upstream]
) -> None:
    onprem, cloud = upstreams
    before = len(onprem.received), len(cloud.received)
    for dialect in ("openai", "mistral"):
        response = http.post(
            f"{gateway_pair.url}/v1/chat/completions",
            json=ask(reasoning_budget_tokens=64),
            headers={**gateway_pair.headers(), "x-souverain-dialect": dialect},
        )
        assert response.status_code == 400
        error = response.json() if dialect == "mistral" else response.json()["error"]
        assert error["code"] == "reasoning_budget_unsupported" and error["param"] == "reasoning_budget_tokens"
        assert "'assistant-onprem'" in error["message"] and "llama-cpp-python" in error["message"]
        if dialect == "mistral":
            assert error["object"] == "error"
    assert (len(onprem.received), len(cloud.received)) == before  # nothing was sent anywhere
