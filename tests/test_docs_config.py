"""docs/configuration.md and souverain.example.yaml stay true to the configuration code.

- every key of the JSON Schema is documented, and each reference table lists exactly its
  struct's keys with the schema's defaults;
- every ```yaml example in the docs, and souverain.example.yaml, is a valid configuration;
- every `souverain config check` transcript in the docs is what the command really prints;
- `souverain config check` and `souverain config schema` behave as documented.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from souverain.config import LlamaCppModel, OpenAIHTTPModel, json_schema, parse_config
from souverain.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
EXAMPLE = ROOT / "souverain.example.yaml"
SOUVERAIN = [sys.executable, "-m", "souverain"]

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
ERROR_LINE = re.compile(
    r"^souverain: configuration error: (?P<file>[^:\n]+):(?P<line>\d+): (?P<key>[^:\n]+): (?P<msg>.+)$"
)


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def fences(text: str) -> list[tuple[str, str]]:
    """(info string, body) of each fenced block, in order."""
    return [(m.group("info").strip(), m.group("body")) for m in FENCE.finditer(text)]


def schema_keys(schema: dict[str, Any]) -> set[str]:
    """Every property name in the schema's $defs, at any depth."""
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                keys.add(name)
                walk(sub)
            for key, value in node.items():
                if key != "properties":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema["$defs"])
    return keys


def env_for(text: str) -> dict[str, str]:
    """A value for every ${VAR} the text references."""
    return {name: f"test-{name.lower()}" for name in ENV_REF.findall(text)}


def run_cli(*args: str, cwd: Path, unset: set[str] = frozenset()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in unset and not k.startswith("SOUVERAIN_")}
    return subprocess.run([*SOUVERAIN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


# -- (1) every key is documented ------------------------------------------------------

SCHEMA_KEYS = sorted(schema_keys(json_schema()))


def test_schema_walk_finds_nested_keys() -> None:
    # Guards the walk itself: keys of nested structs and of both model engines.
    for key in ("host", "allowed_hosts", "n_ctx", "base_url", "flavor", "engine"):
        assert key in SCHEMA_KEYS


@pytest.mark.parametrize("key", SCHEMA_KEYS)
def test_every_schema_key_is_documented(key: str) -> None:
    assert f"`{key}`" in doc_text(), f"configuration key {key!r} is not documented in {DOC.name}"


def reference_tables(text: str) -> dict[str, list[list[str]]]:
    """Rows (cells) of each table that follows a `<!-- schema: StructName -->` marker."""
    tables: dict[str, list[list[str]]] = {}
    for match in re.finditer(r"<!-- schema: (\w+) -->\n((?:\|.*\n)+)", text):
        rows = [line.strip().strip("|").split(" | ") for line in match.group(2).splitlines()]
        assert match.group(1) not in tables, f"two tables for {match.group(1)}"
        tables[match.group(1)] = [[c.strip() for c in row] for row in rows[2:]]  # skip header, rule
    return tables


def test_reference_tables_list_each_struct_with_its_defaults() -> None:
    schema = json_schema()
    tables = reference_tables(doc_text())
    assert set(tables) == set(schema["$defs"]), "one reference table per struct in the schema"
    for struct, rows in tables.items():
        definition = schema["$defs"][struct]
        documented = [re.fullmatch(r"`([^`]+)`", row[0]).group(1) for row in rows]
        assert documented == list(definition["properties"]), f"{struct}: table keys differ from the schema"
        for row, key in zip(rows, documented, strict=True):
            prop, default_cell = definition["properties"][key], row[2]
            if key in definition.get("required", []):
                assert default_cell == "required", f"{struct}.{key} is required"
            elif "default" not in prop:
                continue  # nested structs and lists built by a factory carry no default
            elif prop["default"] is None:
                assert default_cell.startswith("unset"), f"{struct}.{key} defaults to unset"
            else:
                shown = re.match(r"`([^`]*)`", default_cell)
                assert shown, f"{struct}.{key}: default cell {default_cell!r} shows no value"
                assert yaml.safe_load(shown.group(1)) == prop["default"], f"{struct}.{key}: wrong default"


# -- (2) YAML examples in the docs are valid -------------------------------------------


def yaml_examples(text: str) -> list[str]:
    return [body for info, body in fences(text) if info == "yaml"]


def test_docs_have_yaml_examples() -> None:
    assert len(yaml_examples(doc_text())) >= 3


@pytest.mark.parametrize("index", range(len(yaml_examples(doc_text()))))
def test_yaml_example_validates(index: int) -> None:
    text = yaml_examples(doc_text())[index]
    parse_config(text, "doc", env_for(text))


def test_yaml_example_needs_the_env_it_references() -> None:
    # The substitution is real: without the variables, the examples that use them fail.
    using_env = [t for t in yaml_examples(doc_text()) if ENV_REF.search(t)]
    assert using_env
    for text in using_env:
        with pytest.raises(ConfigError, match="environment variable .* is not set"):
            parse_config(text, "doc", {})


def test_complete_example_sets_every_key() -> None:
    section = doc_text().split("## A complete example", 1)[1]
    text = yaml_examples(section)[0]
    used: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            used.update(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(text))
    assert set(SCHEMA_KEYS) - used == set()
    config = parse_config(text, "doc", env_for(text))
    engines = {type(m) for m in config.models}
    assert engines == {LlamaCppModel, OpenAIHTTPModel}


# -- (3) souverain.example.yaml --------------------------------------------------------


def test_example_file_validates() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    config = parse_config(text, str(EXAMPLE), {})
    assert [(type(m), m.name) for m in config.models] == [(LlamaCppModel, "smollm2-135m-instruct")]
    assert config.models[0].path is None  # the embedded model: the bundled GGUF
    assert config.air_gap.enabled


def test_example_file_vllm_model_validates_once_uncommented() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("#- engine: openai_http"))
    uncommented = lines[:start] + [re.sub(r"^(\s*)#", r"\1", line) for line in lines[start:]]
    text = "\n".join(uncommented) + "\n"
    config = parse_config(text, "uncommented", env_for(text))
    vllm = config.models[-1]
    assert isinstance(vllm, OpenAIHTTPModel) and vllm.flavor == "vllm"
    assert len(config.models) == 2


# -- (4) config check ------------------------------------------------------------------

BROKEN = [
    ("server:\n  port: 70000\n", 2, "server.port", "Expected `int` <= 65535"),
    ("server:\n  hots: 0.0.0.0\n", 2, "server.hots", "unknown key"),
    ("models:\n  - engine: llamacpp\n    name: a\n    n_ctx: 10\n", 4, "models[0].n_ctx", "Expected `int` >= 64"),
    (
        "models:\n  - engine: openai_http\n    name: big\n    base_url: http://gpu.example.org:8000/v1\n",
        4,
        "models[0].base_url",
        "air gap is on",
    ),
    (
        "models:\n  - engine: openai_http\n    name: big\n    base_url: http://localhost/v1\n"
        "    api_key: ${SOUVERAIN_TEST_UNSET_KEY}\n",
        5,
        "models[0].api_key",
        "environment variable SOUVERAIN_TEST_UNSET_KEY is not set",
    ),
]


@pytest.mark.parametrize(("content", "line", "key", "message"), BROKEN)
def test_config_check_reports_file_line_key_message(
    tmp_path: Path, content: str, line: int, key: str, message: str
) -> None:
    (tmp_path / "broken.yaml").write_text(content)
    result = run_cli("config", "check", "broken.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    error = ERROR_LINE.match(result.stderr.strip())
    assert error, result.stderr
    assert (error["file"], int(error["line"]), error["key"]) == ("broken.yaml", line, key)
    assert message in error["msg"]


def test_config_check_accepts_a_valid_file(tmp_path: Path) -> None:
    result = run_cli("config", "check", str(EXAMPLE), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{EXAMPLE}: valid (1 model(s); air gap on)"
    assert result.stderr == ""


def check_transcripts(text: str) -> list[tuple[str, str, list[str]]]:
    """(file name, file content, expected output lines) for each documented
    `$ souverain config check NAME` whose file is the fenced block just before it."""
    blocks = fences(text)
    found = []
    for (_, content), (info, body) in pairwise(blocks):
        lines = body.splitlines()
        command = re.fullmatch(r"\$ souverain config check (\S+)", lines[0]) if lines else None
        if info == "console" and command:
            found.append((command.group(1), content, lines[1:]))
    return found


TRANSCRIPTS = check_transcripts(doc_text())


def test_docs_show_check_transcripts() -> None:
    assert len(TRANSCRIPTS) >= 5
    assert any(not out[0].startswith("souverain: configuration error") for _, _, out in TRANSCRIPTS)


@pytest.mark.parametrize(("name", "content", "expected"), TRANSCRIPTS, ids=[t[0] for t in TRANSCRIPTS])
def test_documented_check_output_is_real(tmp_path: Path, name: str, content: str, expected: list[str]) -> None:
    (tmp_path / name).write_text(content)
    result = run_cli("config", "check", name, cwd=tmp_path, unset=set(ENV_REF.findall(content)))
    failing = expected[0].startswith("souverain: configuration error")
    assert result.returncode == (2 if failing else 0)
    assert (result.stderr if failing else result.stdout).splitlines() == expected


# -- (5) config schema -----------------------------------------------------------------


def test_config_schema_prints_the_json_schema(tmp_path: Path) -> None:
    result = run_cli("config", "schema", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema == json.loads(json.dumps(json_schema()))
    assert {"Config", "ServerConfig", "AirGapConfig", "LlamaCppModel", "OpenAIHTTPModel"} <= set(schema["$defs"])
    assert schema["$ref"] == "#/$defs/Config"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
