"""Envelope encryption per tenant, and crypto-shredding.

Each tenant has a data key (32 random bytes) kept only wrapped, by a wrapping key of its own
in the key provider. From the data key two keys are derived (HKDF-SHA256): one encrypts the
tenant's retained content (AES-256-GCM), one keys the HMAC digests written into its ledger
entries. Shredding a tenant retires its data keys and destroys their wrapping keys in the
provider: every copy of the wrapped data key (the database, its backups) becomes noise, the
content cannot be decrypted and the digests can no longer be tested against a guess, while
the ledger's entries and Merkle tree stay as they were and keep verifying.

Why a wrapping key per tenant rather than one for all: with one shared wrapping key,
"shredding" could only delete the wrapped data key from the database, and any backup that
still held it would bring the content back. A per-tenant wrapping key in the HSM makes the
erasure a property of the device, not of every backup's retention.

One `Keyring` per process, shared by its threads; each call names the store (connection)
of the calling thread. Several processes may share one store. Creating a key is a race they
settle through the store (the first insert wins; a loser destroys its own wrapping key).
Unwrapped data keys are cached for `ttl` seconds: a shred in this process takes effect at
once, another process's within `ttl` (content sealed by that process in the meantime is
sealed under the destroyed key, so it is unreadable too).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from souverain.keys.base import KeyNotFound, KeyProvider

SEAL_VERSION = b"\x01"


@dataclass(frozen=True, slots=True)
class WrappedKey:
    tenant: str
    kek: str  # the wrapping key's name in the provider
    wrapped: bytes
    created: float


class WrappedKeyStore(Protocol):
    """Where wrapped data keys live (the ledger store implements it)."""

    def current_key(self, tenant: str) -> WrappedKey | None: ...

    def add_key(self, key: WrappedKey) -> WrappedKey:
        """Insert unless the tenant already has a current key; return the current one."""

    def retire_keys(self, tenant: str) -> list[str]:
        """Forget every data key of `tenant` (and what they protect); return the names of
        all wrapping keys it ever used, so their destruction can be (re)tried."""


class ContentError(ValueError):
    """Sealed content does not open: wrong tenant, altered bytes, or a shredded key."""


def _derive(data_key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"souverain/" + purpose).derive(data_key)


def _wrap_aad(tenant: str) -> bytes:
    return b"souverain/data-key/v1\n" + tenant.encode()


class TenantKey:
    """A tenant's unwrapped data key, as the two keys derived from it."""

    def __init__(self, tenant: str, kek: str, data_key: bytes) -> None:
        self.tenant = tenant
        self.kek = kek
        self._aead = AESGCM(_derive(data_key, b"content/v1"))
        self._mac_key = _derive(data_key, b"digest/v1")

    def digest(self, data: bytes) -> str:
        """HMAC-SHA256 of `data`, hex."""
        return hmac.new(self._mac_key, data, hashlib.sha256).hexdigest()

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return SEAL_VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if sealed[:1] != SEAL_VERSION:
            raise ContentError("unknown sealed-content version")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], aad)
        except (InvalidTag, ValueError):
            raise ContentError("sealed content does not open under this tenant's key") from None


def kek_name(tenant: str) -> str:
    """A fresh wrapping-key name: tenant names may hold characters key labels may not."""
    return f"souverain-kek-{hashlib.sha256(tenant.encode()).hexdigest()[:16]}-{secrets.token_hex(4)}"


class Keyring:
    def __init__(self, provider: KeyProvider, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._provider = provider
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, TenantKey]] = {}
        self._generation: dict[str, int] = {}  # bumped by shred, so a racing get does not re-cache

    def get(self, store: WrappedKeyStore, tenant: str, *, create: bool = True) -> TenantKey | None:
        """The tenant's current key; made on first use when `create`."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(tenant)
            if cached and now - cached[0] < self._ttl:
                return cached[1]
            generation = self._generation.get(tenant, 0)
        for _ in range(3):
            current = store.current_key(tenant)
            if current is not None and cached and cached[1].kek == current.kek:
                key = cached[1]
            elif current is not None:
                unwrapped = self._unwrap(current)
                if unwrapped is None:
                    if store.current_key(tenant) != current:
                        continue  # shredded while we looked: look again
                    # Shredding retires a data key before destroying its wrapping key, so
                    # this is a misconfigured provider (another token or directory), not
                    # a shred: refuse rather than guess.
                    raise KeyNotFound(f"wrapping key {current.kek!r} of tenant {tenant!r} is not in the key provider")
                key = unwrapped
            elif create:
                key = self._create(store, tenant)
            else:
                return None
            with self._lock:
                if self._generation.get(tenant, 0) != generation:  # shredded meanwhile: again
                    generation, cached = self._generation[tenant], None
                    continue
                self._cache[tenant] = (now, key)
            return key
        raise KeyNotFound(f"the key of tenant {tenant!r} keeps changing (shredded repeatedly?)")

    def _unwrap(self, wrapped: WrappedKey) -> TenantKey | None:
        """None when the wrapping key is missing from the provider."""
        try:
            data_key = self._provider.unwrap(wrapped.kek, wrapped.wrapped, _wrap_aad(wrapped.tenant))
        except KeyNotFound:
            return None
        return TenantKey(wrapped.tenant, wrapped.kek, data_key)

    def _create(self, store: WrappedKeyStore, tenant: str) -> TenantKey:
        name = kek_name(tenant)
        data_key = secrets.token_bytes(32)
        self._provider.create_wrapping_key(name)
        wrapped = WrappedKey(tenant, name, self._provider.wrap(name, data_key, _wrap_aad(tenant)), time.time())
        winner = store.add_key(wrapped)
        if winner.kek == name:
            return TenantKey(tenant, name, data_key)
        self._provider.destroy(name)  # another process made the tenant's key first
        key = self._unwrap(winner)
        if key is None:
            raise KeyNotFound(f"wrapping key {winner.kek!r} of tenant {tenant!r} is missing")
        return key

    def shred(self, store: WrappedKeyStore, tenant: str) -> list[str]:
        """Retire the tenant's data keys and destroy their wrapping keys. Returns the names
        of the wrapping keys destroyed now (empty when there was nothing left to destroy)."""
        with self._lock:
            self._cache.pop(tenant, None)
            self._generation[tenant] = self._generation.get(tenant, 0) + 1
        names = store.retire_keys(tenant)
        destroyed = [name for name in names if self._provider.destroy(name)]
        with self._lock:
            self._cache.pop(tenant, None)
            self._generation[tenant] += 1
        return destroyed
