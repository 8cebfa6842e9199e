"""The configuration loader: values, substitution, and errors that point at the line."""

from __future__ import annotations

import pytest

from souverain.config import LlamaCppModel, OpenAIHTTPModel, load_config, parse_config
from souverain.errors import ConfigError


def test_defaults_serve_the_embedded_model_with_air_gap_on() -> None:
    config = load_config(None)
    assert config.air_gap.enabled
    assert [type(m) for m in config.models] == [LlamaCppModel]


def test_whole_value_substitution_is_typed() -> None:
    text = "server:\n  port: ${PORT}\n  access_log: ${LOG}\n  host: ${HOST}\n"
    config = parse_config(text, "f.yaml", {"PORT": "9000", "LOG": "true", "HOST": "127.0.0.2"})
    assert config.server.port == 9000 and config.server.access_log is True and config.server.host == "127.0.0.2"
    embedded = parse_config("state_dir: /srv/${NAME}/state\n", "f.yaml", {"NAME": "42"})
    assert embedded.state_dir == "/srv/42/state"
    with pytest.raises(ConfigError, match=r"f.yaml:2: server.port: Expected `int`, got `str`"):
        parse_config("server:\n  port: ${PORT}\n", "f.yaml", {"PORT": "eighty"})


def test_air_gap_hosts_compare_case_insensitively() -> None:
    text = (
        "air_gap:\n  allowed_hosts: [GPU.Internal]\nmodels:\n"
        "  - name: big\n    engine: openai_http\n    base_url: http://gpu.internal:8000/v1\n"
    )
    assert isinstance(parse_config(text, "f.yaml", {}).models[0], OpenAIHTTPModel)
    with pytest.raises(ConfigError, match=r"f.yaml:6: models\[0\].base_url: air gap is on"):
        parse_config(text.replace("GPU.Internal", "other.internal"), "f.yaml", {})
    for local in ("127.0.0.1", "localhost", "[::1]", "LOCALHOST"):
        parse_config(text.replace("gpu.internal", local).replace("GPU.Internal", "x"), "f.yaml", {})


def test_errors_name_file_line_and_key() -> None:
    cases = {
        "server:\n  port: 99999\n": "f.yaml:2: server.port: Expected `int` <= 65535",
        "models:\n  - name: a\n    engine: llamacpp\n  - name: a\n    engine: llamacpp\n": "f.yaml:4: models[1].name: duplicate",
        "models: []\n": "f.yaml:1: models: at least one model",
        "server:\n  port: 1\nserver:\n  port: 2\n": "f.yaml:3: server: duplicate key",
        "models:\n  - name: a\n    engine: llamacpp\n    reasoning:\n      efforts: {huge: 5}\n": "f.yaml:5: models[0].reasoning.efforts",
        "- just\n- a list\n": "f.yaml:1: expected a mapping",
    }
    for text, expected in cases.items():
        with pytest.raises(ConfigError) as err:
            parse_config(text, "f.yaml", {})
        assert str(err.value).startswith(expected), (text, str(err.value))


def test_reasoning_defaults() -> None:
    config = parse_config("models:\n  - name: t\n    engine: llamacpp\n    reasoning: {}\n", "f.yaml", {})
    reasoning = config.models[0].reasoning
    assert (reasoning.start, reasoning.end, reasoning.open_on_start) == ("<think>", "</think>", False)
    assert reasoning.efforts["medium"] == 1024
