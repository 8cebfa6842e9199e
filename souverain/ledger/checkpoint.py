"""C2SP tlog-checkpoint (v1.0.0) and tlog-proof (v1) receipts.

A checkpoint is a signed note whose text is `origin\\nsize\\nbase64(root)\\n`. This module
parses strictly (no leading zeros, a 32-byte root, no empty lines) so that two byte strings
that mean the same checkpoint cannot both be accepted.

A receipt (`c2sp.org/tlog-proof@v1`) bundles an entry's index, its inclusion proof and the
checkpoint with its cosignatures: a caller can keep it and check it offline, years later,
with only the log's and witnesses' public keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from souverain.ledger import merkle
from souverain.ledger.note import (
    CosignatureVerifier,
    Note,
    NoteError,
    Signature,
    Signer,
    Verifier,
    b64,
    open_note,
    parse_note,
    sign_note,
    unb64,
)

_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,19})$")
PROOF_HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{b64(self.root)}\n" + "".join(e + "\n" for e in self.extensions)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise NoteError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise NoteError("a checkpoint has an origin, a size and a root hash, on non-empty lines")
        origin, size, root, *ext = lines
        if not _DECIMAL.match(size) or int(size) >= 1 << 64:
            raise NoteError(f"checkpoint size {size[:24]!r} is not a decimal without leading zeros")
        root_hash = unb64(root)
        if len(root_hash) != merkle.HASH_SIZE:
            raise NoteError("checkpoint root is not a 32-byte hash")
        return cls(origin, int(size), root_hash, tuple(ext))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    return sign_note(checkpoint.text(), [signer])


@dataclass(frozen=True, slots=True)
class OpenedCheckpoint:
    """A checkpoint whose log signature verified, and the witnesses whose cosignature did."""

    checkpoint: Checkpoint
    note: Note
    cosigners: dict[str, int] = field(default_factory=dict)  # witness name -> timestamp

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root


def open_checkpoint(
    note: str | bytes,
    log: Verifier,
    *,
    origin: str | None = None,
    witnesses: Sequence[Verifier] = (),
    quorum: int = 0,
) -> OpenedCheckpoint:
    """Verify the log's signature (required), the origin (when given), and cosignatures
    by the known witnesses; at least `quorum` of them must have cosigned."""
    parsed = parse_note(note)
    checkpoint = Checkpoint.parse(parsed.text)
    wanted = origin or log.name
    if checkpoint.origin != wanted:
        raise NoteError(f"checkpoint origin is {checkpoint.origin!r}, expected {wanted!r}")
    open_note(parsed, [log])
    cosigners: dict[str, int] = {}
    if witnesses:
        try:
            _, sigs = open_note(parsed, list(witnesses))
        except NoteError as exc:
            if "no signature by a known key" not in str(exc):
                raise
            sigs = []
        for sig in sigs:
            cosigners[sig.name] = CosignatureVerifier.timestamp(sig.signature)
    if len(cosigners) < quorum:
        raise NoteError(f"checkpoint cosigned by {len(cosigners)} known witness(es), policy needs {quorum}")
    return OpenedCheckpoint(checkpoint, parsed, cosigners)


# -- tlog-proof receipts -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receipt:
    index: int
    proof: tuple[bytes, ...]
    checkpoint: str  # the signed note, verbatim
    extra: bytes | None = None

    def format(self) -> str:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(b64(h) for h in self.proof)
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str | bytes) -> Receipt:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        head, sep, checkpoint = text.partition("\n\n")
        if not sep:
            raise NoteError("receipt has no empty line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise NoteError(f"receipt does not start with {PROOF_HEADER!r}")
        pos, extra = 1, None
        if len(lines) > pos and lines[pos].startswith("extra "):
            extra = unb64(lines[pos][6:])
            pos += 1
        if len(lines) <= pos or not lines[pos].startswith("index ") or not _DECIMAL.match(lines[pos][6:]):
            raise NoteError("receipt has no valid `index` line")
        index = int(lines[pos][6:])
        proof = tuple(unb64(line) for line in lines[pos + 1 :])
        parse_note(checkpoint)
        return cls(index, proof, checkpoint, extra)


def verify_receipt(
    receipt: Receipt | str | bytes,
    entry: bytes,
    log: Verifier,
    *,
    origin: str | None = None,
    witnesses: Sequence[Verifier] = (),
    quorum: int = 0,
) -> OpenedCheckpoint:
    """tlog-proof verification: leaf hash of `entry`, log signature and origin, k-of-n
    cosignatures, then the inclusion proof. Raises NoteError or merkle.ProofError."""
    if not isinstance(receipt, Receipt):
        receipt = Receipt.parse(receipt)
    opened = open_checkpoint(receipt.checkpoint, log, origin=origin, witnesses=witnesses, quorum=quorum)
    merkle.verify_inclusion(receipt.index, opened.size, merkle.leaf_hash(entry), receipt.proof, opened.root)
    return opened


__all__ = [
    "Checkpoint",
    "OpenedCheckpoint",
    "Receipt",
    "Signature",
    "open_checkpoint",
    "sign_checkpoint",
    "verify_receipt",
]
