"""Every string a chat request carries, with where it sits, and the way to put new ones back.

Walked: each message's `content` (a string, or every string leaf of every content part
except its `type`, inline `data:` URLs and media references such as `image_url`), its
`name`, each tool call's
`function.arguments` (a JSON string is parsed and its string leaves walked; an object is
walked as is; a string that is not JSON is scanned as text), each tool's `description`
and the string leaves of its `parameters`, and the request's `user`.

A path is a tuple of keys and indexes from the request's root. Inside a JSON-string
arguments value the path goes on into the parsed JSON:
`("messages", 1, "tool_calls", 0, "function", "arguments", "customer", "iban")`. The
JSON key a leaf sits under is handed to the detectors as context ("bsn": "123456782").
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from souverain.chat import ChatRequest

Path = tuple[str | int, ...]
_ARGS = "arguments"
# Content-part fields that are references or media, not text: rewriting them would break
# the request (an image URL with digits in it), and what they point to is not scanned.
_PART_SKIP = ("type", "image_url", "input_audio", "file", "image", "audio", "video_url")


def to_builtins(request: ChatRequest | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(request, msgspec.Struct):
        return msgspec.to_builtins(request)
    return dict(request)


def iter_strings(request: ChatRequest | Mapping[str, Any]) -> Iterator[tuple[Path, str, str]]:
    """Yield (path, text, key) for each string to scan; `key` is the JSON key or ''."""
    raw = to_builtins(request)
    for i, msg in enumerate(raw.get("messages") or ()):
        if not isinstance(msg, Mapping):
            continue
        base: Path = ("messages", i)
        content = msg.get("content")
        if isinstance(content, str):
            yield (*base, "content"), content, ""
        elif isinstance(content, list):
            for j, part in enumerate(content):
                yield from _leaves(part, (*base, "content", j), "", skip_keys=_PART_SKIP)
        if isinstance(msg.get("name"), str):
            yield (*base, "name"), msg["name"], "name"
        for k, call in enumerate(msg.get("tool_calls") or ()):
            fn = call.get("function") if isinstance(call, Mapping) else None
            if not isinstance(fn, Mapping):
                continue
            args = fn.get(_ARGS)
            path: Path = (*base, "tool_calls", k, "function", _ARGS)
            if isinstance(args, str):
                parsed = _json(args)
                if isinstance(parsed, (dict, list)):
                    yield from _leaves(parsed, path, "")
                else:
                    yield path, args, ""
            elif isinstance(args, (dict, list)):
                yield from _leaves(args, path, "")
    for i, tool in enumerate(raw.get("tools") or ()):
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(fn, Mapping):
            continue
        if isinstance(fn.get("description"), str):
            yield ("tools", i, "function", "description"), fn["description"], "description"
        if isinstance(fn.get("parameters"), (dict, list)):
            yield from _leaves(fn["parameters"], ("tools", i, "function", "parameters"), "", skip_keys=("type",))
    if isinstance(raw.get("user"), str):
        yield ("user",), raw["user"], "user"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _leaves(node: Any, path: Path, key: str, skip_keys: tuple[str, ...] = ()) -> Iterator[tuple[Path, str, str]]:
    if isinstance(node, str):
        if not node.startswith("data:"):
            yield path, node, key
    elif isinstance(node, Mapping):
        for k, v in node.items():
            if k in skip_keys:
                continue
            yield from _leaves(v, (*path, k), str(k), skip_keys)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i), key, skip_keys)


def replace_strings(request: ChatRequest | Mapping[str, Any], new: Mapping[Path, str]) -> Any:
    """A copy of `request` with the strings at the given paths replaced (same type back);
    the request passed in is never modified."""
    raw = to_builtins(request) if isinstance(request, msgspec.Struct) else copy.deepcopy(dict(request))
    # Arguments that were JSON strings: edit the parsed JSON, then serialise it again.
    parsed_args: dict[Path, Any] = {}
    for path, value in new.items():
        args_at = _args_prefix(path, raw)
        if args_at is not None:
            if args_at not in parsed_args:
                parsed_args[args_at] = _json(_get(raw, args_at))
            if len(path) > len(args_at):
                _set(parsed_args[args_at], path[len(args_at):], value)
            else:
                parsed_args[args_at] = value  # plain-text arguments
        else:
            _set(raw, path, value)
    for args_at, obj in parsed_args.items():
        _set(raw, args_at, obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False))
    if isinstance(request, msgspec.Struct):
        return msgspec.convert(raw, type(request))
    return raw


def _args_prefix(path: Path, raw: dict[str, Any]) -> Path | None:
    """The path of the arguments string, when `path` is at or inside a JSON-string arguments."""
    if len(path) >= 6 and path[0] == "messages" and path[2] == "tool_calls" and path[5] == _ARGS:
        prefix = path[:6]
        if isinstance(_get(raw, prefix), str):
            return prefix
    return None


def _get(node: Any, path: Path) -> Any:
    for key in path:
        node = node[key]
    return node


def _set(node: Any, path: Path, value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
