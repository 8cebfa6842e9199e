"""Bad input gets a clear error in OpenAI's shape and the right status; the server keeps serving."""

from __future__ import annotations

import httpx
import openai
import pytest
from conftest import MODEL, Server, http

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def post(
    server: Server, body: bytes | dict, key: str | None = None, path: str = "/v1/chat/completions"
) -> httpx.Response:
    headers = server.headers(key)
    if isinstance(body, dict):
        return http.post(f"{server.url}{path}", json=body, headers=headers, timeout=60)
    return http.post(f"{server.url}{path}", content=body, headers=headers, timeout=60)


def assert_error(response: httpx.Response, status: int, code: str | None = None, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


@pytest.fixture(autouse=True)
def still_serving(gateway: Server):
    yield
    assert gateway.alive()
    ok = post(gateway, CHAT)
    assert ok.status_code == 200, ok.text


def test_malformed_json(gateway: Server) -> None:
    error = assert_error(post(gateway, b'{"model": "x", "messages": ['), 400, code="invalid_json")
    assert "not valid JSON" in error["message"]


def test_body_not_an_object(gateway: Server) -> None:
    assert_error(post(gateway, b"[1, 2]"), 400)


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 5}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": "hello"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"stream": "yes"}, "stream"),
        ({"model": 42}, "model"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
    ],
)
def test_wrong_types_name_the_field(gateway: Server, patch: dict, param: str) -> None:
    error = assert_error(post(gateway, {**CHAT, **patch}), 400, param=param)
    assert param in error["message"]


def test_missing_model_field(gateway: Server) -> None:
    error = assert_error(post(gateway, {"messages": CHAT["messages"]}), 400)
    assert "model" in error["message"]


def test_unknown_model(gateway: Server) -> None:
    assert_error(post(gateway, {**CHAT, "model": "gpt-17"}), 404, code="model_not_found", param="model")


def test_unsupported_content_part(gateway: Server) -> None:
    body = {**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}
    assert_error(post(gateway, body), 400, code="unsupported_content")


def test_body_over_the_limit(gateway: Server) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 70_000}]}
    error = assert_error(post(gateway, big), 413, code="request_too_large")
    assert "65536" in error["message"]


def test_body_over_the_limit_without_content_length(gateway: Server) -> None:
    def chunks():
        for _ in range(20):
            yield b"x" * 8192

    response = http.post(f"{gateway.url}/v1/chat/completions", content=chunks(), headers=gateway.headers())
    assert_error(response, 413)


def test_missing_key(gateway: Server) -> None:
    response = http.post(f"{gateway.url}/v1/chat/completions", json=CHAT)
    assert_error(response, 401, code="invalid_api_key")


def test_wrong_key(gateway: Server) -> None:
    forged = gateway.key[:-4] + ("AAAA" if not gateway.key.endswith("AAAA") else "BBBB")
    assert_error(post(gateway, CHAT, key=forged), 401, code="invalid_api_key")
    assert_error(post(gateway, CHAT, key="not-even-a-key"), 401)


def test_revoked_key_stops_working_at_once(gateway: Server) -> None:
    created = gateway.cli("keys", "create", "--name", "short-lived")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert post(gateway, CHAT, key=key).status_code == 200
    key_id = key.split("-")[2]
    revoked = gateway.cli("keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert_error(post(gateway, CHAT, key=key), 401, code="revoked_api_key")
    # The SDK maps it to its own exception type.
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_unknown_path_and_method(gateway: Server) -> None:
    assert_error(http.get(f"{gateway.url}/v1/nothing-here"), 404)
    assert_error(http.get(f"{gateway.url}/v1/chat/completions", headers=gateway.headers()), 405)


def test_embeddings_bad_input(gateway: Server) -> None:
    assert_error(post(gateway, {"model": MODEL, "input": []}, path="/v1/embeddings"), 400, param="input")
    assert_error(post(gateway, {"model": MODEL, "input": [[1, 2, 3]]}, path="/v1/embeddings"), 400, param="input")
    assert_error(post(gateway, {"model": MODEL}, path="/v1/embeddings"), 400)
