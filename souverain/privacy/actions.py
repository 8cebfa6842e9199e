"""One-way actions on findings: mask, redact, hash (pseudonymise is in vault.py).

    mask(text, findings)        "DE89 **** **** **** **30 00": keeps separators and the last 4 characters
    redact(text, findings)      "[IBAN]": the type only
    hash_values(text, findings, key=b"tenant secret")
                                "[IBAN:3f0c9a1b27e4]": HMAC-SHA256 of the canonical value, so the
                                same value gives the same tag (joins still work) and nobody
                                without the key can test a guess
    apply(request, action, scanner)   the same on every string of a chat request

All take findings from `Scanner.scan` on the same text (offsets into it) and never
touch text outside a finding.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import Any

from souverain.privacy.findings import Finding
from souverain.privacy.payload import pieces, replace_strings, scan_payload, to_builtins
from souverain.privacy.scanner import Scanner, default_scanner
from souverain.privacy.vault import canonical

ACTIONS = ("mask", "redact", "hash")


def _replace(text: str, findings: Iterable[Finding], fn: Callable[[Finding], str]) -> str:
    out, pos = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < pos:
            continue  # overlapping findings are resolved by the scanner; be safe anyway
        out.append(text[pos : f.start])
        out.append(fn(f))
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def _mask_value(f: Finding) -> str:
    alnum = [i for i, c in enumerate(f.value) if c.isalnum()]
    keep = (
        set(alnum[-4:]) if len(alnum) >= 8 and f.type not in ("PERSON", "EMAIL", "HEALTH", "DATE_OF_BIRTH") else set()
    )
    return "".join(c if (not c.isalnum() or i in keep) else "*" for i, c in enumerate(f.value))


def mask(text: str, findings: Iterable[Finding]) -> str:
    return _replace(text, findings, _mask_value)


def redact(text: str, findings: Iterable[Finding]) -> str:
    return _replace(text, findings, lambda f: f"[{f.type}]")


def hash_values(text: str, findings: Iterable[Finding], key: bytes) -> str:
    if not key:
        raise ValueError("hashing needs a key: an unkeyed hash of a phone number is reversed by trying them all")

    def tag(f: Finding) -> str:
        digest = hmac.new(key, canonical(f.type, f.value).encode(), hashlib.sha256).hexdigest()
        return f"[{f.type}:{digest[:12]}]"

    return _replace(text, findings, tag)


def apply(request: Any, action: str, scanner: Scanner | None = None, *, key: bytes = b"") -> Any:
    """`action` ("mask", "redact" or "hash") on every string of a chat request."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    scanner = scanner or default_scanner()
    raw = to_builtins(request)
    findings = scan_payload(scanner, raw).findings
    by_path: dict[tuple[str | int, ...], list[Finding]] = {}
    for f in findings:
        by_path.setdefault(f.path, []).append(f)
    new = {}
    for piece in pieces(raw)[0]:
        fs = by_path.get(piece.path)
        if not fs or not piece.editable:
            continue
        if action == "mask":
            new[piece.path] = mask(piece.text, fs)
        elif action == "redact":
            new[piece.path] = redact(piece.text, fs)
        else:
            new[piece.path] = hash_values(piece.text, fs, key)
    return replace_strings(request, new) if new else request
