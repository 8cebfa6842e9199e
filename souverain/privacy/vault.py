"""Reversible pseudonymisation: placeholders out, original values back in.

    new_request, vault = pseudonymise(request)      # before dispatch
    answer = vault.restore(model_text)              # after, whole text
    r = vault.restorer(); r.feed(chunk)...; r.flush()   # after, streaming

Placeholders look like `[PERSON_1]`, `[IBAN_2]`, `[FR_NIR_1]`: the type tells the model
what kind of thing was there, the number keeps different values apart. The same value
gets the same placeholder everywhere in the request (compared on a canonical form:
case and separators ignored, so "DE89 3704..." and "de8937..." are one IBAN), and a
placeholder that already occurs in the request's own text is never issued.

The `Vault` lives in memory for one request and is never serialised, logged or sent
(`repr()` shows only its size). The `Restorer` turns a stream of text chunks back into
original text. It holds back only a suffix that could still become one of *this vault's*
placeholders (a `[` followed by a prefix of one), so text flows through unchanged
otherwise, and a placeholder split across any number of chunks is restored whole.
Placeholders the model invents (`[PERSON_9]` when there were two) are left as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from souverain.privacy import ids
from souverain.privacy.findings import Finding
from souverain.privacy.payload import pieces, replace_strings, scan_payload, to_builtins
from souverain.privacy.scanner import Scanner, default_scanner

PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*_[0-9]+\]")


def canonical(type_: str, value: str) -> str:
    """The form under which two spellings of one value are the same value."""
    if type_ in ("PERSON", "DENYLIST") or type_ not in _COMPACT_TYPES:
        return " ".join(value.split()).casefold()
    return re.sub(r"[\s.\-/_()]", "", value).casefold()


_COMPACT_TYPES = (
    frozenset({"IBAN", "CARD", "PHONE", "VAT", "BIC", "PASSPORT", "ID_CARD", "IP_ADDRESS", "EMAIL"}) | ids.TYPES
)


class Vault:
    """placeholder <-> original value, for one request, in memory only."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._by_key: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._reserved = frozenset(reserved)
        self._prefixes: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<Vault: {len(self)} value(s)>"

    def __contains__(self, placeholder: object) -> bool:
        return placeholder in self._values

    @property
    def placeholders(self) -> list[str]:
        return list(self._values)

    def placeholder(self, type_: str, value: str) -> str:
        """The placeholder for `value` (issuing a new one the first time it is seen)."""
        key = (type_, canonical(type_, value))
        existing = self._by_key.get(key)
        if existing is not None:
            return existing
        label = re.sub(r"[^A-Z0-9_]", "_", type_.upper()) or "PII"
        if not label[0].isalpha():
            label = "PII_" + label
        n = self._counters.get(label, 0)
        while True:
            n += 1
            token = f"[{label}_{n}]"
            if token not in self._reserved:
                break
        self._counters[label] = n
        self._by_key[key] = token
        self._values[token] = value
        self._prefixes = frozenset()  # rebuilt on the next restore
        return token

    def value(self, placeholder: str) -> str | None:
        return self._values.get(placeholder)

    def prefixes(self) -> frozenset[str]:
        """Every proper prefix of every placeholder issued (what a stream must hold back)."""
        if not self._prefixes and self._values:
            self._prefixes = frozenset(p[:i] for p in self._values for i in range(1, len(p)))
        return self._prefixes

    # -- restoring -------------------------------------------------------------------
    def restore(self, text: str, *, json_escape: bool = False) -> str:
        r = self.restorer(json_escape=json_escape)
        return r.feed(text) + r.flush()

    def restore_json(self, node: Any) -> Any:
        """Restore every string (keys included) of a JSON-like value."""
        if isinstance(node, str):
            return self.restore(node)
        if isinstance(node, Mapping):
            return {self.restore(k) if isinstance(k, str) else k: self.restore_json(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.restore_json(v) for v in node]
        return node

    def restorer(self, *, json_escape: bool = False) -> Restorer:
        return Restorer(self, json_escape=json_escape)

    def restore_stream(self, chunks: Iterable[str], *, json_escape: bool = False) -> Iterator[str]:
        r = self.restorer(json_escape=json_escape)
        for chunk in chunks:
            out = r.feed(chunk)
            if out:
                yield out
        tail = r.flush()
        if tail:
            yield tail


class Restorer:
    """Streaming restore: `feed(chunk)` returns the text that is safe to emit now;
    `flush()` returns what was held back at the end of the stream.

    With `json_escape=True` restored values are escaped for the inside of a JSON string
    (for streamed tool-call arguments)."""

    def __init__(self, vault: Vault, *, json_escape: bool = False) -> None:
        self._vault = vault
        self._held = ""
        self._json = json_escape

    def feed(self, chunk: str) -> str:
        buf = self._held + chunk
        if "[" not in buf:
            self._held = ""
            return buf
        out = []
        pos = 0
        for m in PLACEHOLDER.finditer(buf):
            value = self._vault.value(m.group(0))
            if value is None:
                continue
            out.append(buf[pos : m.start()])
            out.append(json.dumps(value, ensure_ascii=False)[1:-1] if self._json else value)
            pos = m.end()
        tail = buf[pos:]
        # Only the last "[" can start a placeholder still to come: a placeholder holds
        # no "[" after its first character.
        cut = tail.rfind("[")
        if cut != -1 and tail[cut:] in self._vault.prefixes():
            out.append(tail[:cut])
            self._held = tail[cut:]
        else:
            out.append(tail)
            self._held = ""
        return "".join(out)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def pseudonymise(
    request: Any, scanner: Scanner | None = None, findings: list[Finding] | None = None
) -> tuple[Any, Vault]:
    """Replace the personal data of a `ChatRequest` (or any JSON-shaped payload) with
    placeholders. Returns the new request (same type) and the vault to restore with.
    Only findings in string values as written can be replaced; the others (in keys,
    numbers, across a seam: `PayloadScan.fixed`) stay, and the outbound check sees them."""
    scanner = scanner or default_scanner()
    raw = to_builtins(request)
    found, _ = pieces(raw)
    strings = {p.path: p.text for p in found if p.editable}
    if findings is None:
        findings = scan_payload(scanner, raw).findings
    reserved = {m.group(0) for p in found for m in PLACEHOLDER.finditer(p.text)}
    vault = Vault(reserved)
    by_path: dict[tuple[str | int, ...], list[Finding]] = {}
    for f in findings:
        text = strings.get(f.path)
        if text is not None and text[f.start : f.end] == f.value:
            by_path.setdefault(f.path, []).append(f)
    # Issue placeholders in reading order, so [PERSON_1] is the first person mentioned.
    new: dict[tuple[str | int, ...], str] = {}
    for path, text in strings.items():
        fs = sorted(by_path.get(path, ()), key=lambda f: f.start)
        if not fs:
            continue
        pieces_, pos = [], 0
        for f in fs:
            if f.start < pos:
                continue
            pieces_.append(text[pos : f.start])
            pieces_.append(vault.placeholder(f.type, f.value))
            pos = f.end
        pieces_.append(text[pos:])
        new[path] = "".join(pieces_)
    if not new:
        return request, vault
    return replace_strings(request, new), vault
