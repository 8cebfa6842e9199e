"""The key-provider contract, run against both providers (file; PKCS#11 on SoftHSM2), and
envelope encryption with crypto-shredding on top of it."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from souverain.keys import (
    ContentError,
    FileKeyProvider,
    FileKeys,
    KeyNotFound,
    Keyring,
    Pkcs11Keys,
    UnwrapError,
    WrappedKey,
    open_provider,
)
from souverain.keys.base import KeyProviderError


@pytest.fixture(params=["file", "pkcs11"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "file":
        p = open_provider(FileKeys(path="keys"), tmp_path)
    else:
        module, label, pin = request.getfixturevalue("softhsm")
        p = open_provider(Pkcs11Keys(module=module, token_label=label, pin=pin))
    yield p
    p.close()


def name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"  # the SoftHSM token is shared by the session


def test_signing_key_signs_verifiably_and_persists(provider: Any) -> None:
    key_name = name("sign")
    with pytest.raises(KeyNotFound):
        provider.signing_key(key_name)
    key = provider.signing_key(key_name, create=True)
    assert len(key.public_key) == 32
    signature = key.sign(b"checkpoint text\n")
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(signature, b"checkpoint text\n")
    again = provider.signing_key(key_name, create=True)
    assert again.public_key == key.public_key  # found, not made anew
    assert provider.exists(key_name)
    assert provider.destroy(key_name) and not provider.exists(key_name)
    assert not provider.destroy(key_name)


def test_wrap_unwrap_is_authenticated(provider: Any) -> None:
    kek = name("kek")
    with pytest.raises(KeyNotFound):
        provider.wrap(kek, b"x", b"aad")
    provider.create_wrapping_key(kek)
    with pytest.raises(ValueError):
        provider.create_wrapping_key(kek)
    secret = secrets.token_bytes(32)
    wrapped = provider.wrap(kek, secret, b"tenant-a")
    assert secret not in wrapped and wrapped != provider.wrap(kek, secret, b"tenant-a")  # fresh nonce
    assert provider.unwrap(kek, wrapped, b"tenant-a") == secret
    with pytest.raises(UnwrapError):
        provider.unwrap(kek, wrapped, b"tenant-b")
    tampered = bytearray(wrapped)
    tampered[-1] ^= 1
    with pytest.raises(UnwrapError):
        provider.unwrap(kek, bytes(tampered), b"tenant-a")
    other = name("kek")
    provider.create_wrapping_key(other)
    with pytest.raises(UnwrapError):
        provider.unwrap(other, wrapped, b"tenant-a")
    assert provider.destroy(kek)
    with pytest.raises(KeyNotFound):
        provider.unwrap(kek, wrapped, b"tenant-a")


def test_key_names_are_checked(provider: Any) -> None:
    for bad in ("", "a b", "../etc/passwd", "x" * 65):
        with pytest.raises(ValueError):
            provider.signing_key(bad, create=True)


def test_provider_is_thread_safe(provider: Any) -> None:
    key = provider.signing_key(name("threads"), create=True)
    kek = name("kek")
    provider.create_wrapping_key(kek)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(20):
                msg = f"{i}-{j}".encode()
                Ed25519PublicKey.from_public_bytes(key.public_key).verify(key.sign(msg), msg)
                assert provider.unwrap(kek, provider.wrap(kek, msg, b"a"), b"a") == msg
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_file_keys_are_private(tmp_path: Path) -> None:
    p = FileKeyProvider(tmp_path / "keys")
    p.signing_key("s", create=True)
    p.create_wrapping_key("w")
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    for f in (tmp_path / "keys").iterdir():
        assert f.stat().st_mode & 0o777 == 0o600, f
    raw = (tmp_path / "keys" / "w.aes256").read_bytes()
    assert p.destroy("w") and not (tmp_path / "keys" / "w.aes256").exists()
    assert raw  # what was there is gone from the directory


def test_pkcs11_wrong_pin_and_token(softhsm: tuple[str, str, str]) -> None:  # noqa: F811
    module, label, _ = softhsm
    with pytest.raises(KeyProviderError):
        open_provider(Pkcs11Keys(module=module, token_label="no-such-token", pin="1234"))
    with pytest.raises(KeyProviderError, match="pin"):
        open_provider(Pkcs11Keys(module=module, token_label=label))


class MemoryKeys:
    """A WrappedKeyStore in memory: the contract the ledger stores implement."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.content: dict[str, int] = {}

    def current_key(self, tenant: str) -> WrappedKey | None:
        for r in self.rows:
            if r["tenant"] == tenant and not r["retired"]:
                return r["key"]
        return None

    def add_key(self, key: WrappedKey) -> WrappedKey:
        current = self.current_key(key.tenant)
        if current is None:
            self.rows.append({"tenant": key.tenant, "key": key, "retired": False})
            return key
        return current

    def retire_keys(self, tenant: str) -> list[str]:
        names = []
        for r in self.rows:
            if r["tenant"] == tenant:
                r["retired"] = True
                names.append(r["key"].kek)
        self.content.pop(tenant, None)
        return names


def test_keyring_seals_digests_and_shreds(provider: Any) -> None:
    store = MemoryKeys()
    ring = Keyring(provider)
    tenant = name("tenant")
    key = ring.get(store, tenant)
    assert key is not None and ring.get(store, tenant) is key  # cached
    other = ring.get(store, name("tenant"))
    assert other is not None
    sealed = key.seal(b"the prompt", b"aad")
    assert b"the prompt" not in sealed and key.open(sealed, b"aad") == b"the prompt"
    with pytest.raises(ContentError):
        key.open(sealed, b"other aad")
    with pytest.raises(ContentError):
        other.open(sealed, b"aad")
    digest = key.digest(b"the prompt")
    assert len(digest) == 64 and digest != other.digest(b"the prompt")
    # Another process (a second keyring on the same store) gets the same key.
    assert Keyring(provider).get(store, tenant).digest(b"the prompt") == digest  # type: ignore[union-attr]
    # A backup of the wrapped data key, taken before shredding...
    backup = store.current_key(tenant)
    assert backup is not None
    destroyed = ring.shred(store, tenant)
    assert destroyed == [backup.kek] and not provider.exists(backup.kek)
    # ...opens no more: the wrapping key is gone from the provider.
    with pytest.raises(KeyNotFound):
        provider.unwrap(backup.kek, backup.wrapped, b"souverain/data-key/v1\n" + tenant.encode())
    assert ring.get(store, tenant, create=False) is None
    fresh = ring.get(store, tenant)
    assert fresh is not None and fresh.kek != backup.kek and fresh.digest(b"the prompt") != digest
    with pytest.raises(ContentError):
        fresh.open(sealed, b"aad")
    assert ring.shred(store, tenant) == [fresh.kek]  # all generations; shredding again is harmless
    assert ring.shred(store, tenant) == []


class LateView:
    """A second process's view of the store: its first look finds no key yet (the other
    process commits one just after), then it sees the store as it is."""

    def __init__(self, store: MemoryKeys) -> None:
        self.store = store
        self.looked = False

    def current_key(self, tenant: str) -> WrappedKey | None:
        if not self.looked:
            self.looked = True
            return None
        return self.store.current_key(tenant)

    def add_key(self, key: WrappedKey) -> WrappedKey:
        return self.store.add_key(key)

    def retire_keys(self, tenant: str) -> list[str]:
        return self.store.retire_keys(tenant)


def test_keyring_race_has_one_winner(provider: Any) -> None:
    store = MemoryKeys()
    tenant = name("tenant")
    key_a = Keyring(provider).get(store, tenant)
    created: list[str] = []
    original = provider.create_wrapping_key

    def spy(kek: str) -> None:
        created.append(kek)
        original(kek)

    provider.create_wrapping_key = spy
    try:
        key_b = Keyring(provider).get(LateView(store), tenant)
    finally:
        provider.create_wrapping_key = original
    assert key_a is not None and key_b is not None
    # b made a key, lost the insert, adopted a's and destroyed its own wrapping key.
    assert key_b.kek == key_a.kek and key_b.digest(b"x") == key_a.digest(b"x")
    assert len(created) == 1 and created[0] != key_a.kek and not provider.exists(created[0])
    assert len(store.rows) == 1


def test_keyring_sees_another_process_shred_after_ttl(provider: Any) -> None:
    store = MemoryKeys()
    now = [0.0]
    ring = Keyring(provider, ttl=30, clock=lambda: now[0])
    tenant = name("tenant")
    key = ring.get(store, tenant)
    Keyring(provider).shred(store, tenant)  # "another process"
    assert ring.get(store, tenant) is key  # still cached within the TTL
    now[0] = 31
    later = ring.get(store, tenant)
    assert later is not None and later.kek != key.kek  # type: ignore[union-attr]


def test_keyring_refuses_a_missing_wrapping_key(provider: Any) -> None:
    store = MemoryKeys()
    tenant = name("tenant")
    key = Keyring(provider).get(store, tenant)
    provider.destroy(key.kek)  # type: ignore[union-attr] - e.g. the wrong token configured
    with pytest.raises(KeyNotFound):
        Keyring(provider).get(store, tenant)
