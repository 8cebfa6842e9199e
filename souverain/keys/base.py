"""The key-provider contract: where the ledger's secret keys live and what may be done with them.

Two kinds of key, both named by the caller:
- a signing key (Ed25519): signs checkpoints (or a witness's cosignatures). Its public
  half is readable; the private half never leaves the provider when it is an HSM.
- a wrapping key (AES-256): encrypts small secrets (data keys) and decrypts them again.
  Destroying it is how content is crypto-shredded: whatever it wrapped is gone for good.

Rules every provider keeps:
- Names match `^[A-Za-z0-9._-]{1,64}$`; one name is one key of one kind.
- `wrap` output is self-contained (nonce included) and authenticated, bound to `aad`;
  `unwrap` with another `aad`, another key or altered bytes raises `UnwrapError`.
- A missing key raises `KeyNotFound`; `destroy` of a missing key returns False.
- Methods are thread-safe (the sequencer, the integrator and readers share one provider).
"""

from __future__ import annotations

import re
from typing import Protocol

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class KeyProviderError(RuntimeError):
    """The provider failed (HSM unreachable, wrong PIN, unsupported mechanism)."""


class KeyNotFound(KeyProviderError, LookupError):
    pass


class UnwrapError(KeyProviderError):
    """Wrapped bytes did not authenticate under this key and `aad`."""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"key name {name!r} must match {_NAME.pattern}")
    return name


class SigningKey(Protocol):
    name: str
    public_key: bytes
    """The 32-byte Ed25519 public key (RFC 8032)."""

    def sign(self, message: bytes) -> bytes:
        """A 64-byte Ed25519 signature."""


class KeyProvider(Protocol):
    kind: str
    """`file` or `pkcs11`."""

    def signing_key(self, name: str, *, create: bool = False) -> SigningKey:
        """The Ed25519 key `name`; with create, made first if missing."""

    def create_wrapping_key(self, name: str) -> None:
        """Make a new AES-256 wrapping key; ValueError if `name` exists."""

    def wrap(self, name: str, plaintext: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, name: str, wrapped: bytes, aad: bytes) -> bytes: ...

    def exists(self, name: str) -> bool: ...

    def destroy(self, name: str) -> bool:
        """Delete the key for good; True if it existed."""

    def close(self) -> None: ...
