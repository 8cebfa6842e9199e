"""C2SP signed notes (signed-note/v1.0.0) with Ed25519 log keys and cosignature/v1.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
`— <name> base64(key id || signature)`. The signature covers the text including its final
newline. Key ids are the first four bytes of SHA-256(name || "\\n" || type || public key),
type 0x01 for an Ed25519 log key and 0x04 for an Ed25519 cosignature (tlog-cosignature).

Signing is delegated to a `sign` function so that the private key may stay in a key
provider (a file for development, an HSM through PKCS#11): this module only ever holds
public keys. Verification follows the signed-note rules: unknown (name, id) pairs are
ignored; a known key whose signature fails rejects the whole note; at least one known key
must verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
EM_DASH = "\u2014"
MAX_SIGNATURES = 100  # signed-note: verifiers must accept at least 16
_NAME = re.compile(r"^[^\s+]+$")


class NoteError(ValueError):
    """A note is malformed or does not verify; the message says why."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError(f"not standard base64: {text[:40]!r}") from None


def check_key_name(name: str) -> str:
    if not name or not _NAME.match(name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


class Signer(Protocol):
    """Makes one signature line's payload (after the 4-byte key id) for a note text."""

    name: str
    key_id: bytes

    def sign(self, text: bytes) -> bytes: ...


class Verifier(Protocol):
    name: str
    key_id: bytes

    def verify(self, text: bytes, signature: bytes) -> bool: ...


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes  # what follows the key id

    def line(self) -> str:
        return f"{EM_DASH} {self.name} {b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True, slots=True)
class Note:
    text: str  # ends with "\n"
    signatures: tuple[Signature, ...]

    def format(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


# -- Ed25519 log keys ---------------------------------------------------------------------


class _NamedKey:
    """A key name with an Ed25519 public key, for the signature algorithm `alg`: the name,
    key id and vkey that every signer and verifier below has."""

    alg: ClassVar[int]

    def __init__(self, name: str, public_key: bytes) -> None:
        self.name = check_key_name(name)
        self.public_key = public_key
        self.key_id = key_id(name, self.alg, public_key)

    @property
    def vkey(self) -> str:
        return format_vkey(self.name, self.alg, self.public_key)


class _PublicKey(_NamedKey):
    """A verifier's key: checked to be an Ed25519 public key."""

    def __init__(self, name: str, public_key: bytes) -> None:
        if len(public_key) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes")
        super().__init__(name, public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)


class Ed25519Signer(_NamedKey):
    """A signed-note signer whose private operation is `sign` (e.g. an HSM call)."""

    alg = ALG_ED25519

    def __init__(self, name: str, public_key: bytes, sign: Callable[[bytes], bytes]) -> None:
        super().__init__(name, public_key)
        self._sign = sign

    def sign(self, text: bytes) -> bytes:
        return self._sign(text)

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        return self.verifier().vkey  # checks the key, as a verifier's does


class Ed25519Verifier(_PublicKey):
    alg = ALG_ED25519

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            self._key.verify(signature, text)
        except InvalidSignature:
            return False
        return True


def format_vkey(name: str, alg: int, public_key: bytes) -> str:
    return f"{check_key_name(name)}+{key_id(name, alg, public_key).hex()}+{b64(bytes([alg]) + public_key)}"


def parse_vkey(vkey: str) -> tuple[str, int, bytes]:
    """(name, algorithm, public key) from `<name>+<hex id>+<base64(alg || key)>`."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3 or len(parts[1]) != 8:
        raise NoteError(f"not a verifier key: {vkey[:60]!r}")
    name, hex_id, blob = parts
    raw = unb64(blob)
    if not raw:
        raise NoteError("verifier key has no key material")
    alg, public_key = raw[0], raw[1:]
    if key_id(check_key_name(name), alg, public_key).hex() != hex_id.lower():
        raise NoteError(f"verifier key for {name!r}: key id does not match the key")
    return name, alg, public_key


def verifier_from_vkey(vkey: str) -> Ed25519Verifier | CosignatureVerifier:
    """An Ed25519 log verifier (type 0x01) or cosignature/v1 verifier (type 0x04)."""
    name, alg, public_key = parse_vkey(vkey)
    if alg == ALG_ED25519:
        return Ed25519Verifier(name, public_key)
    if alg == ALG_COSIGNATURE_V1:
        return CosignatureVerifier(name, public_key)
    raise NoteError(f"verifier key for {name!r}: unsupported signature type 0x{alg:02x}")


def parse_skey(skey: str) -> tuple[str, bytes]:
    """(name, 32-byte seed) from Go's `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`."""
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError("not a signer key (PRIVATE+KEY+...)")
    name, hex_id, blob = parts[2], parts[3], unb64(parts[4])
    if len(blob) != 33 or blob[0] != ALG_ED25519:
        raise NoteError("signer key is not an Ed25519 key")
    seed = blob[1:]
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    if key_id(check_key_name(name), ALG_ED25519, public).hex() != hex_id.lower():
        raise NoteError(f"signer key for {name!r}: key id does not match the key")
    return name, seed


def format_skey(name: str, seed: bytes) -> str:
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    hex_id = key_id(check_key_name(name), ALG_ED25519, public).hex()
    return f"PRIVATE+KEY+{name}+{hex_id}+{b64(bytes([ALG_ED25519]) + seed)}"


# -- cosignature/v1 (tlog-cosignature, Ed25519) --------------------------------------------


def cosignature_message(timestamp: int, text: bytes) -> bytes:
    return b"cosignature/v1\ntime %d\n" % timestamp + text


class CosignatureSigner(_NamedKey):
    """A witness's Ed25519 cosigner: payload is u64 timestamp || signature."""

    alg = ALG_COSIGNATURE_V1

    def __init__(
        self, name: str, public_key: bytes, sign: Callable[[bytes], bytes], clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(name, public_key)
        self._sign = sign
        self._clock = clock

    def sign(self, text: bytes) -> bytes:
        timestamp = int(self._clock())
        return struct.pack(">Q", timestamp) + self._sign(cosignature_message(timestamp, text))

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.public_key)


class CosignatureVerifier(_PublicKey):
    alg = ALG_COSIGNATURE_V1

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 72:
            return False
        (timestamp,) = struct.unpack(">Q", signature[:8])
        if timestamp >= 1 << 63:
            return False
        try:
            self._key.verify(signature[8:], cosignature_message(timestamp, text))
        except InvalidSignature:
            return False
        return True

    @staticmethod
    def timestamp(signature: bytes) -> int:
        (stamp,) = struct.unpack(">Q", signature[:8])
        return int(stamp)


# -- notes ----------------------------------------------------------------------------------


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text) or "\x7f" in text:
        raise NoteError("note text contains a control character")


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    _check_text(text)
    raw = text.encode()
    sigs = tuple(Signature(s.name, s.key_id, s.sign(raw)) for s in signers)
    return Note(text, sigs).format()


def parse_note(note: str | bytes) -> Note:
    """Split a note into text and signature lines (no verification)."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not UTF-8") from None
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("note has no blank line before its signatures, or does not end with a newline")
    text, block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    if "\n\n" in block:
        raise NoteError("empty line among the signature lines")
    sigs = parse_signature_lines(block)
    if not sigs:
        raise NoteError("note has no signatures")
    if len(sigs) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(sigs))


def open_note(note: str | bytes | Note, verifiers: Sequence[Verifier]) -> tuple[Note, list[Signature]]:
    """Verify a note: (the note, the signatures made by known keys). Raises NoteError when a
    known key's signature fails or when no known key signed."""
    parsed = note if isinstance(note, Note) else parse_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    raw = parsed.text.encode()
    good: list[Signature] = []
    for sig in parsed.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(raw, sig.signature):
            raise NoteError(f"invalid signature by {sig.name} ({sig.key_id.hex()})")
        good.append(sig)
    if not good:
        names = ", ".join(sorted({v.name for v in verifiers})) or "none"
        raise NoteError(f"no signature by a known key (known: {names})")
    return parsed, good


def merge_signatures(note: str, lines: Iterable[Signature]) -> str:
    """Add signature lines to a note, dropping exact duplicates (e.g. a re-sent cosignature)."""
    parsed = parse_note(note)
    sigs = list(parsed.signatures)
    for sig in lines:
        if sig not in sigs:
            sigs.append(sig)
    return Note(parsed.text, tuple(sigs)).format()


def parse_signature_lines(block: str) -> list[Signature]:
    """Signature lines alone, as a witness returns them."""
    out = []
    for line in block.splitlines():
        if not line:
            continue
        if not line.startswith(EM_DASH + " "):
            raise NoteError(f"malformed signature line {line[:60]!r}")
        name, _, blob = line[2:].rpartition(" ")
        raw = unb64(blob)
        if not name or " " in name or len(raw) < 5:
            raise NoteError(f"malformed signature line {line[:60]!r}")
        out.append(Signature(name, raw[:4], raw[4:]))
    return out
