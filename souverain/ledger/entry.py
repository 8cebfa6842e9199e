"""What one ledger entry holds (DESIGN.md, "The ledger"), and its exact bytes.

An entry records what happened to a request without its content: who (tenant, API key id),
where it went (route and the digest of that route's sovereignty profile), what the
classifier found (data class; detector types and counts, never values), the decision and
its reasons, tokens, cost, latency, and keyed digests (HMAC-SHA256 under a per-tenant key)
of the request and response. The digests let someone who holds the content prove it is the
content logged, while someone who only sees the log cannot test guesses against them; once
a tenant's key is shredded they prove nothing at all.

The leaf is the entry's JSON (field order fixed by the struct), stored and hashed as it was
written: verifiers hash the stored bytes and never re-encode, so JSON's freedom of form
cannot make a valid entry look tampered with. Strings are bounded and patterned so that a
caller cannot pour request content into a field by mistake.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from souverain.classes import DataClassName
from souverain.ledger.tiles import MAX_ENTRY_SIZE

ENTRY_VERSION: Literal[1] = 1

Ident = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")]
OptIdent = Annotated[str, Meta(max_length=128, pattern=r"^([A-Za-z0-9][A-Za-z0-9._:/@+-]*)?$")]
Digest = Annotated[str, Meta(max_length=80, pattern=r"^(sha256:[0-9a-f]{64})?$")]
_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")
# What an entry records for a name it cannot hold (a model asked for with a space in it,
# or past 128 characters): the request is still recorded, under this label.
INVALID_NAME = "invalid-name"


def safe_ident(value: str) -> str:
    """`value` if an entry can hold it as an identifier, else `INVALID_NAME`."""
    return value if value == "" or (len(value) <= 128 and _IDENT.fullmatch(value)) else INVALID_NAME


Hmac = Annotated[str, Meta(max_length=64, pattern=r"^([0-9a-f]{64})?$")]
TypeName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Count = Annotated[int, Meta(ge=0)]
Reason = Annotated[str, Meta(min_length=1, max_length=300)]
Word = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
UtcTime = Annotated[datetime, Meta(tz=True)]


def _now() -> datetime:
    return datetime.now(UTC)


class Entry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One request's record. Fill what the pipeline knows; the ledger fills the digests
    when `append` is given the request and response bytes."""

    v: Literal[1] = ENTRY_VERSION
    time: UtcTime = msgspec.field(default_factory=_now)
    tenant: Ident
    key_id: OptIdent = ""
    route: OptIdent = ""
    # sha256:<hex> of the route's sovereignty profile as evaluated for this request.
    route_profile: Digest = ""
    model: OptIdent = ""
    # The request's data class (max of declared, found, and retrieved documents).
    data_class: DataClassName = "public"
    # What the privacy scanner found: detector type -> count. Never the values.
    found: dict[TypeName, Count] = {}
    # e.g. allowed, pseudonymised, refused.
    decision: Word = "allowed"
    reasons: Annotated[list[Reason], Meta(max_length=32)] = []
    status: Annotated[int, Meta(ge=100, le=599)] = 200
    prompt_tokens: Count = 0
    completion_tokens: Count = 0
    cost: Decimal = Decimal(0)  # in `currency`; a decimal string in the JSON
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] = "EUR"
    latency_ms: Count = 0
    # HMAC-SHA256 under the tenant's digest key, hex; "" when not given.
    request_hmac: Hmac = ""
    response_hmac: Hmac = ""
    # The class computed on exactly the bytes sent to `route` (the outbound check), and
    # their HMAC under the same key: what went to the route, provably allowed there.
    # "" when nothing was sent (refused before dispatch).
    sent_class: DataClassName | Literal[""] = ""
    sent_hmac: Hmac = ""


class EntryError(ValueError):
    """An entry breaks the schema or is too large for an entry bundle."""


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(Entry)


def encode_entry(entry: Entry) -> bytes:
    """The leaf bytes. Validated by decoding them again, since structs do not validate on
    construction; the round trip costs microseconds and keeps bad data out of the tree."""
    data = _encoder.encode(entry)
    if len(data) > MAX_ENTRY_SIZE:
        raise EntryError(f"entry of {len(data)} bytes; at most {MAX_ENTRY_SIZE}")
    try:
        _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise EntryError(f"invalid ledger entry: {exc}") from None
    return data


def decode_entry(data: bytes) -> Entry:
    try:
        return _decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise EntryError(f"invalid ledger entry: {exc}") from None
