"""YAML in, typed structs out, with errors that name file:line:key.

The same approach as `souverain.config.loader` (compose to nodes so every value keeps its
line, convert with msgspec, map msgspec's `$.a[0].b` path back to a line), reusing its
helpers. Two differences: entries of the id-keyed tables (`hops`, `entities`, ...) are
converted one by one, because msgspec writes a dict key as `[...]` in its error path; and
pipes files take no `${VAR}` substitution, since an analysis must not depend on the
environment it runs in (two reviewers would see two different verdicts).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
import yaml

from souverain.config.loader import _MSGSPEC_AT, _PATH_STEP, _locate
from souverain.config.loader import compose as compose_yaml
from souverain.errors import ConfigError

T = TypeVar("T")
Steps = list[str | int]
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def compose(text: str, filename: str) -> tuple[yaml.Node | None, dict[str, Any]]:
    """Parse YAML into (node tree, plain Python data); duplicate keys are errors."""
    return compose_yaml(text, filename, {})


def convert(data: Any, type_: type[T], root: yaml.Node | None, filename: str, prefix: Steps = ()) -> T:  # type: ignore[assignment]
    """msgspec.convert, with errors pointing at the line; `prefix` is where `data` sits in the file."""
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        raise ConfigError(explain(str(exc), root, filename, list(prefix))) from None


def explain(message: str, root: yaml.Node | None, filename: str, prefix: Steps) -> str:
    match = _MSGSPEC_AT.match(message)
    assert match is not None
    msg, path = match.group("msg"), match.group("path") or "$"
    steps: Steps = prefix + [m.group(1) if m.group(1) else int(m.group(2)) for m in _PATH_STEP.finditer(path)]
    unknown = re.match(r"Object contains unknown field `([^`]+)`", msg)
    if unknown:
        steps.append(unknown.group(1))
        msg = "unknown key; see docs/pipes.md for the keys allowed here"
    missing = re.match(r"Object missing required field `([^`]+)`", msg)
    if missing:
        msg = f"missing required key `{missing.group(1)}`"
    return error(root, filename, steps, msg)


def error(root: yaml.Node | None, filename: str, steps: Steps, msg: str) -> str:
    """`file:line: dotted.key: msg`, the line being that of the deepest key found."""
    return f"{filename}:{_locate(root, steps)[1]}: {dotted(steps)}: {msg}"


def dotted(steps: Steps) -> str:
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _PLAIN_KEY.match(step):
            out += f".{step}"
        else:
            out += f"[{step}]"
    return out.lstrip(".") or "(top level)"


def line_of(root: yaml.Node | None, steps: Steps) -> int:
    return _locate(root, steps)[1]
