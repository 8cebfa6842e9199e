"""A new user's first start: no configuration file, one admin key printed once, and a curl
command that works as pasted."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from conftest import MODEL, Server, http


def test_first_start_prints_a_working_curl(start_server) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed on this machine")
    server: Server = start_server(None)  # no --config: the built-in defaults
    output = server.log.read_text()
    assert "air gap on" in output
    assert output.count(server.key) == 2  # the key line and the curl command
    command = re.search(r"(curl .*?)\n\n", output, re.S).group(1)
    assert MODEL in command
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["choices"][0]["message"]["content"]
    assert reply["usage"]["completion_tokens"] > 0


def test_restart_keeps_keys_and_prints_none(start_server, tmp_path) -> None:
    first: Server = start_server(None)
    key = first.key
    first.stop()
    again = Server(first.tmp, None, {"SOUVERAIN_STATE_DIR": str(first.state)})
    try:
        again.wait_ready()
        assert again.key == ""  # nothing printed: a key already exists
        assert "First start" not in again.log.read_text()
        listed = again.cli("keys", "list", "--json")
        assert len(json.loads(listed.stdout)) == 1
        assert http.get(f"{again.url}/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    finally:
        again.stop()
