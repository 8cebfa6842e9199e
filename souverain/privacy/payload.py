"""Every piece of text a payload carries, as a model will read it: scanned, and put back.

A payload is JSON-shaped: what an engine is about to send (the spine's outbound check), or
a chat request as builtins (the classify stage). No list of fields: the walk goes through
all of it, so a field that OpenAI or Mistral add later is scanned without anyone adding it.

What is scanned, each with the key it sits under as context for the detectors:
- every string value and every mapping key, at any depth;
- every number (an identifier sent as a JSON number still reaches the model);
- a string that holds JSON (tool-call arguments, a schema sent as text) is parsed and
  walked in turn, so its keys are scanned and its `\\u00a0` escapes arrive decoded; a
  string with JSON escapes that is not JSON is also scanned with the escapes decoded;
- the seams between consecutive strings, in document order (the conversation read as one
  text): a value cut in two, half in one turn or part and half in the next, is found.

What cannot be scanned is reported, not guessed at: a media or file part (`image_url`,
`input_audio`, `file`, ...: its content is somewhere the scanner cannot read), a data URL,
and a string that is mostly an encoded blob (base64 and the like).

Paths are tuples of keys and indexes from the root; `INTO_JSON` marks the step from a
string into the JSON it holds: `("messages", 1, "tool_calls", 0, "function", "arguments",
INTO_JSON, "customer", "iban")`. Findings in a string value as written can be replaced
(`replace_strings`); the rest (in keys, numbers, decoded escapes, across a seam) can only
raise the class: `PayloadScan.fixed` lists them.
"""

from __future__ import annotations

import bisect
import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Protocol

import msgspec

from souverain.privacy.findings import INTO_JSON, Finding, path_str

Path = tuple[str | int, ...]

# Content-part types whose content is not text the scanner can read.
MEDIA_TYPES = frozenset(
    {
        "image_url",
        "input_image",
        "image",
        "image_file",
        "input_audio",
        "audio",
        "file",
        "input_file",
        "video_url",
        "video",
        "document_url",
        "document",
    }
)
_DATA_URL = re.compile(r"\s*data:[a-z0-9.+-]+/[a-z0-9.+-]+(;[^,;]{1,64})*,", re.IGNORECASE)
# A run of base64 / base64url characters (hex included) long enough to be an encoding.
_BLOB = re.compile(r"[A-Za-z0-9+/_-]{64,}={0,2}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|[\"\\/bfnrt])")
# How much of each side of a seam between two strings is read as one text: beyond the
# longest identifier with its separators, then out to the next space.
SEAM = 48
# A schema's enum value between two texts ("user", "text", "tool_call"): read past it.
_TOKEN = re.compile(r"[a-z_]{1,24}")


class Scans(Protocol):
    def scan(self, text: str, *, context: str = "") -> list[Finding]: ...


@dataclass(frozen=True, slots=True)
class Piece:
    """One piece of text to scan: where it is, the text, the key it sits under, and
    whether a finding in it can be replaced where it is (a string value as written)."""

    path: Path
    text: str
    key: str
    editable: bool
    string: bool = True  # a string value (seams are read between these)


@dataclass(slots=True)
class PayloadScan:
    """What a payload holds: findings that can be replaced in place (with `path`, offsets
    into that string), findings that cannot (`fixed`), and what could not be scanned."""

    findings: list[Finding] = field(default_factory=list)
    fixed: list[Finding] = field(default_factory=list)
    unscannable: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[Finding]:
        return [*self.findings, *self.fixed]

    def where(self, limit: int = 3) -> str:
        """Where the unscannable content is, for a refusal message."""
        shown = "; ".join(self.unscannable[:limit])
        more = len(self.unscannable) - limit
        return shown + (f" and {more} more" if more > 0 else "")


def pieces(payload: Any) -> tuple[list[Piece], list[str]]:
    """Every piece of text in `payload`, in document order, and what cannot be scanned."""
    out: list[Piece] = []
    unscannable: list[str] = []
    _walk(payload, (), "", out, unscannable, depth=0)
    return out, unscannable


def _walk(node: Any, path: Path, key: str, out: list[Piece], unscannable: list[str], depth: int) -> None:
    kind = type(node)
    if kind is str:
        _string(node, path, key, out, unscannable, depth)
    elif kind is dict or (kind is not list and isinstance(node, Mapping)):
        part = node.get("type")
        if isinstance(part, str) and part in MEDIA_TYPES:
            unscannable.append(f"{path_str(path) or 'the payload'}: a {part} part")
        for k, v in node.items():
            name = str(k)
            out.append(Piece((*path, name), name, "", editable=False, string=False))
            _walk(v, (*path, name), name, out, unscannable, depth)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            _walk(v, (*path, i), key, out, unscannable, depth)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        out.append(Piece(path, str(node), key, editable=False, string=False))


def _string(text: str, path: Path, key: str, out: list[Piece], unscannable: list[str], depth: int) -> None:
    if text[:64].lstrip()[:5].lower() == "data:" and _DATA_URL.match(text):
        unscannable.append(f"{path_str(path) or 'the payload'}: a data URL")
        return  # its content is the encoded part: nothing readable to scan
    head = text.lstrip()[:1]
    if head in ("{", "[") and depth < 8:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, (dict, list)):
            _walk(parsed, (*path, INTO_JSON), key, out, unscannable, depth + 1)
            return
    if _mostly_blob(text):
        unscannable.append(f"{path_str(path) or 'the payload'}: an encoded blob")
    out.append(Piece(path, text, key, editable=True))
    if "\\" in text and _ESCAPE.search(text):
        decoded = _ESCAPE.sub(_unescape, text)
        out.append(Piece(path, decoded, key, editable=False))


def _unescape(m: re.Match[str]) -> str:
    try:
        return str(json.loads(f'"{m.group(0)}"'))
    except ValueError:
        return m.group(0)


def _mostly_blob(text: str) -> bool:
    """An encoded run of 256 characters or more, or runs of 64 or more that make up
    half the string. Hex runs up to 128 characters are digests and ids, not blobs."""
    if len(text) < 64 or not _spaceless_window(text):
        return False
    total = 0
    for m in _BLOB.finditer(text):
        run = m.group(0)
        if len(run) <= 128 and _HEX.fullmatch(run):
            continue
        if not (any(c.isdigit() for c in run) and any(c.isupper() for c in run) and any(c.islower() for c in run)):
            continue  # a long word, a path: encodings mix all three
        if len(run) >= 256:
            return True
        total += len(run)
    return total * 2 >= len(text)


def _spaceless_window(text: str) -> bool:
    """Whether some aligned 32-character window holds no space and no line break: every
    run of 63 encoded characters holds one, and prose almost never does (cheaper than
    the blob pattern, which tries every position)."""
    for k in range(0, len(text) - 31, 32):
        window = text[k : k + 32]
        if " " not in window and "\n" not in window:
            return True
    return False


def scan_payload(scanner: Scans, payload: Any, memo: dict[tuple[str, str], list[Finding]] | None = None) -> PayloadScan:
    """Scan every piece of `payload` and the seams between its strings. `memo` (per
    request) keeps the findings of each (text, key) scanned, so that the outbound check
    pays only for text the inbound scan has not read."""
    found, unscannable = pieces(payload)
    result = PayloadScan(unscannable=unscannable)
    memo = {} if memo is None else memo
    strings: list[tuple[Piece, list[Finding]]] = []
    for piece in found:
        cache_key = (piece.text, piece.key)
        hits = memo.get(cache_key)
        if hits is None:
            hits = memo[cache_key] = scanner.scan(piece.text, context=piece.key)
        for f in hits:
            (result.findings if piece.editable else result.fixed).append(f.with_path(piece.path))
        if piece.string:
            strings.append((piece, hits))
    result.fixed.extend(_seams(scanner, strings, memo))
    return result


def _seams(
    scanner: Scans, strings: list[tuple[Piece, list[Finding]]], memo: dict[tuple[str, str], list[Finding]]
) -> Iterator[Finding]:
    """Findings that cross the seam between two strings read one after the other, tokens
    (`user`, `text`: the values a schema puts between two turns or two parts) left out.
    Each seam is read twice (the halves joined as they are, and with a space), all seams
    in one text. A finding that only extends one already found on either side (an e-mail
    address run into the next word) is that one, not a new one."""
    if len(strings) < 2:
        return
    # Seams between the strings that are not tokens, in order: a token between two turns
    # or two parts is read past, and a token's own seams are nobody's text.
    texts = [i for i, (piece, _) in enumerate(strings) if not _TOKEN.fullmatch(piece.text)]
    pairs = list(pairwise(texts))
    parts: list[str] = []
    # snippet start, join (end of the left half), start of the right half, snippet end, the two strings
    joins: list[tuple[int, int, int, int, int, int]] = []
    pos = 0
    for i, j in pairs:
        left, right = _tail(strings[i][0].text), _head(strings[j][0].text)
        if not left or not right:
            continue
        for glue in ("", " "):
            snippet = left + glue + right
            parts.append(snippet)
            joins.append((pos, pos + len(left), pos + len(left) + len(glue), pos + len(snippet), i, j))
            pos += len(snippet) + 2
    if not parts:
        return
    text = "\n\n".join(parts)
    key = (text, "\x00seams")
    hits = memo.get(key)
    if hits is None:
        hits = memo[key] = scanner.scan(text)
    starts = [j[0] for j in joins]
    seen: set[tuple[str, str]] = set()
    for f in hits:
        k = bisect.bisect_right(starts, f.start) - 1
        if k < 0:
            continue
        start, join, right_at, end, i, j = joins[k]
        if not (f.start < join < f.end <= end) or (f.type, f.value) in seen:
            continue
        a, a_hits = strings[i]
        b, b_hits = strings[j]
        # Where the finding's halves sit in the two strings, to tell a new finding from
        # a known one run across the seam.
        a_from = len(a.text) - (join - f.start)
        b_to = f.end - right_at
        if any(h.type == f.type and h.end > a_from for h in a_hits) or any(
            h.type == f.type and h.start < b_to for h in b_hits
        ):
            continue
        seen.add((f.type, f.value))
        yield Finding(f.type, 0, 0, f.confidence, f.validator, f.value, (*b.path, "seam"))


def _tail(text: str) -> str:
    """The end of `text`, about `SEAM` characters, cut where no value is cut in two."""
    if len(text) <= SEAM:
        return text
    start, lower = len(text) - SEAM, max(0, len(text) - SEAM - 40)
    while start > lower and not _cut(text, start - 1):
        start -= 1
    return text[start:]


def _head(text: str) -> str:
    """The start of `text`, about `SEAM` characters, cut where no value is cut in two."""
    if len(text) <= SEAM:
        return text
    end, upper = SEAM, min(len(text), SEAM + 40)
    while end < upper and not _cut(text, end):
        end += 1
    return text[:end]


def _cut(text: str, i: int) -> bool:
    """Whether the space at `i` ends a value: not one between the digit groups of an
    IBAN, a card or a phone number ("FR76 3000 6000")."""
    if not text[i].isspace():
        return False
    before = text[i - 1] if i > 0 else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    return not (before.isalnum() and after.isdigit())


# -- putting text back ---------------------------------------------------------------
def to_builtins(payload: Any) -> Any:
    if isinstance(payload, msgspec.Struct):
        return msgspec.to_builtins(payload)
    return copy.deepcopy(payload)


def replace_strings(payload: Any, new: Mapping[Path, str]) -> Any:
    """A copy of `payload` with the strings at the given paths replaced (a struct comes
    back as the same struct type); the payload passed in is never modified. A path that
    steps into a JSON string edits the parsed JSON, which is then serialised again."""
    raw = to_builtins(payload)
    raw = _replace(raw, {tuple(p): v for p, v in new.items()})
    if isinstance(payload, msgspec.Struct):
        return msgspec.convert(raw, type(payload))
    return raw


def _replace(node: Any, new: Mapping[Path, str]) -> Any:
    if () in new:
        return new[()]
    nested: dict[Path, dict[Path, str]] = {}
    for path, value in new.items():
        if INTO_JSON in path:
            step = path.index(INTO_JSON)
            nested.setdefault(path[:step], {})[path[step + 1 :]] = value
        else:
            _set(node, path, value)
    for at, inner in nested.items():
        dumped = json.dumps(_replace(json.loads(_get(node, at)), inner), ensure_ascii=False)
        if at:
            _set(node, at, dumped)
        else:
            node = dumped
    return node


def _get(node: Any, path: Path) -> Any:
    for key in path:
        node = node[key]
    return node


def _set(node: Any, path: Path, value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


__all__ = [
    "INTO_JSON",
    "MEDIA_TYPES",
    "PayloadScan",
    "Piece",
    "pieces",
    "replace_strings",
    "scan_payload",
    "to_builtins",
]
