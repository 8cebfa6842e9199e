"""Every YAML file the gateway reads, into typed structs, with errors that say `file:line: key: message`.

One loader for the three kinds of file an operator writes or the package ships: the
gateway's configuration (`config/loader.py`), pipes files and the shipped laws, criteria
and DORA tables (`sovereignty/`), and a privacy block on its own (`privacy/config.py`).

YAML is composed into nodes first, so every value keeps its line. `convert` validates with
msgspec; when that fails, msgspec names a path such as `$.models[0].n_ctx`, and the path is
walked through the node tree to the line, so an operator reads
`souverain.yaml:7: models[0].n_ctx: Expected int >= 1`. msgspec writes a key of a mapping as
`[...]`; the key at fault is found by validating again with the mapping cut down to one key
at a time.

`${VAR}` is replaced from the environment only when the caller passes one (`env`): the
configuration takes it; pipes files do not, since an analysis must not depend on the
environment it runs in, and a `${VAR}` in them is an error.

This module sits below everything that reads a file (it imports only `errors`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
import yaml

from souverain.errors import ConfigError

T = TypeVar("T")
Steps = list[str | int]

# `${VAR}`: a reference to an environment variable, replaced where the caller passes one.
ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[\.\.\.\]")
_MSGSPEC_AT = re.compile(r"^(?P<msg>.*?)(?: - at (?P<key>`key` in )?`(?P<path>\$[^`]*)`)?$", re.S)
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def compose(text: str, filename: str, env: dict[str, str] | None = None) -> tuple[yaml.Node | None, dict[str, Any]]:
    """YAML text → (node tree, for lines; plain data). Duplicate keys are errors; `${VAR}`
    is replaced from `env` (none given: any `${VAR}` is an error); the top level must be a
    mapping."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark else filename
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    data = {} if root is None else _to_python(root, filename, env or {}, "")
    if not isinstance(data, dict):
        raise ConfigError(f"{filename}:1: expected a mapping of settings at the top level")
    return root, data


def convert(
    data: Any,
    type_: type[T],
    root: yaml.Node | None,
    filename: str,
    prefix: Sequence[str | int] = (),
    *,
    hint: str = "docs/configuration.md",
) -> T:
    """`msgspec.convert`, with an error naming the line; `prefix` is where `data` sits in the
    file, `hint` where the allowed keys are documented."""
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        raise ConfigError(explain(str(exc), root, filename, list(prefix), data, type_, hint)) from None


def explain(
    message: str,
    root: yaml.Node | None,
    filename: str,
    prefix: Steps,
    data: Any = None,
    type_: Any = None,
    hint: str = "docs/configuration.md",
) -> str:
    """msgspec's validation message → `file:line: key: message`."""
    match = _MSGSPEC_AT.match(message)
    if match is None:  # the pattern's groups are all optional: it matches any text
        return error(root, filename, prefix, message)
    msg, path = match.group("msg"), match.group("path") or "$"
    if match.group("key"):
        msg = f"{msg} (as a key)"
    steps: list[str | int | None] = [
        None if m.group(0) == "[...]" else m.group(1) if m.group(1) else int(m.group(2))
        for m in _PATH_STEP.finditer(path)
    ]
    pinned = _pin_mapping_keys(steps, message, data, type_)
    unknown = re.match(r"Object contains unknown field `([^`]+)`", msg)
    if unknown:
        pinned.append(unknown.group(1))
        msg = f"unknown key; see {hint} for the keys allowed here"
    missing = re.match(r"Object missing required field `([^`]+)`", msg)
    if missing:
        msg = f"missing required key `{missing.group(1)}`"
    return error(root, filename, [*prefix, *pinned], msg)


def error(root: yaml.Node | None, filename: str, steps: Sequence[str | int], msg: str) -> str:
    """`file:line: dotted.key: msg`, the line being that of the deepest key found."""
    return f"{filename}:{line_of(root, steps)}: {dotted(steps)}: {msg}"


def dotted(steps: Sequence[str | int]) -> str:
    """["models", 0, "n_ctx"] → "models[0].n_ctx"; a key that is not a plain name is bracketed."""
    out = ""
    for step in steps:
        if isinstance(step, int) or not _PLAIN_KEY.match(step):
            out += f"[{step}]"
        else:
            out += f".{step}"
    return out.lstrip(".") or "(top level)"


def line_of(root: yaml.Node | None, steps: Sequence[str | int]) -> int:
    """The line of the deepest key along `steps` that the file has (1 for an empty file)."""
    return locate(root, steps)[1]


def locate(root: yaml.Node | None, steps: Sequence[str | int]) -> tuple[yaml.Node | None, int]:
    """The node of the deepest key along `steps` that the file has, and its line (the value
    as written, before any `${VAR}` was replaced)."""
    node, line = root, 1 if root is None else root.start_mark.line + 1
    for step in steps:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            for key_node, value_node in node.value:
                if key_node.value == step:
                    node, line = value_node, key_node.start_mark.line + 1
                    break
            else:
                return node, line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return node, line
    return node, line


def _to_python(node: yaml.Node, filename: str, env: dict[str, str], where: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in out:
                raise ConfigError(f"{filename}:{key_node.start_mark.line + 1}: {where + key}: duplicate key")
            out[key] = _to_python(value_node, filename, env, f"{where}{key}.")
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, filename, env, f"{where[:-1]}[{i}].") for i, item in enumerate(node.value)]
    value = yaml.SafeLoader(yaml.dump(None)).construct_object(node, deep=True)
    if isinstance(value, str) and "${" in value:

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    f"{filename}:{node.start_mark.line + 1}: {where[:-1]}: environment variable {name} is not set"
                )
            return env[name]

        whole = ENV_VAR.fullmatch(value)
        value = ENV_VAR.sub(substitute, value)
        if whole:
            # `port: ${PORT}` should give a number: read the value as a YAML scalar.
            try:
                typed = yaml.safe_load(value)
            except yaml.YAMLError:
                typed = value
            if isinstance(typed, (bool, int, float)):
                return typed
    return value


def _pin_mapping_keys(steps: list[str | int | None], message: str, data: Any, type_: Any) -> Steps:
    """msgspec names a value inside a mapping `[...]` (`$.privacy.tenants[...].threshold`):
    find which key by validating again with that mapping cut down to one key at a time;
    the first key that alone gives the same error is the one at fault. Without the data
    and type, the path stops before the mapping."""
    while None in steps:
        at = steps.index(None)
        container = _walk(data, steps[:at]) if type_ is not None else None
        if not isinstance(container, dict):
            return [s for s in steps[:at] if s is not None]
        for key, value in container.items():
            trial = _replace_at(data, steps[:at], {key: value})
            try:
                msgspec.convert(trial, type_)
            except msgspec.ValidationError as exc:
                if str(exc) == message:
                    steps[at], data = key, trial
                    break
        else:
            return [s for s in steps[:at] if s is not None]
    return [s for s in steps if s is not None]


def _walk(data: Any, steps: Sequence[str | int | None]) -> Any:
    for step in steps:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _replace_at(data: Any, steps: Sequence[str | int | None], value: Any) -> Any:
    """A copy of `data` with the value at `steps` replaced (only the path is copied)."""
    if not steps:
        return value
    if isinstance(data, dict):
        copy_d = dict(data)
        copy_d[steps[0]] = _replace_at(data[steps[0]], steps[1:], value)
        return copy_d
    index = steps[0]
    assert isinstance(index, int)  # a list's step is its position
    copy_l = list(data)
    copy_l[index] = _replace_at(data[index], steps[1:], value)
    return copy_l
