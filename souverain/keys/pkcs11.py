"""A key provider in an HSM, through PKCS#11 (tested against SoftHSM2).

Keys are token objects found by label. Signing keys are Ed25519 (CKK_EC_EDWARDS, CKM_EDDSA,
PKCS#11 3.0), generated on the device as sensitive and non-extractable. Wrapping keys are
AES-256, also generated on the device and non-extractable; `wrap` is CKM_AES_GCM encryption
with a fresh 96-bit nonce, so a data key goes in and comes out without the wrapping key
ever being visible to this process. `destroy` is C_DestroyObject.

One PKCS#11 session per provider, serialised by a lock: sessions must not be used by two
threads at once, and the provider's calls (a checkpoint signature per second, a data-key
unwrap per tenant) are few. Login is per application in PKCS#11, so a second provider in
the same process finds the token already logged in and carries on; closing a session never
logs out, so it cannot pull the login from under another provider.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from souverain.keys.base import KeyNotFound, KeyProviderError, UnwrapError, check_name

# PKCS#11 3.0 names Ed25519 by the printable string "edwards25519" (DER) or its OID.
_ED25519_PARAMS = bytes([0x13, 0x0C]) + b"edwards25519"


def _load() -> Any:
    try:
        import PyKCS11
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise KeyProviderError("the pkcs11 key provider needs the PyKCS11 package") from exc
    return PyKCS11


class Pkcs11SigningKey:
    def __init__(self, provider: Pkcs11KeyProvider, name: str, handle: Any, public_key: bytes) -> None:
        self.name = name
        self.public_key = public_key
        self._provider = provider
        self._handle = handle

    def sign(self, message: bytes) -> bytes:
        return self._provider._sign(self._handle, message)


class Pkcs11KeyProvider:
    kind = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str) -> None:
        P = self._P = _load()
        self._lock = threading.Lock()
        self._lib = P.PyKCS11Lib()
        try:
            self._lib.load(module)
            slot = next(
                (
                    s
                    for s in self._lib.getSlotList(tokenPresent=True)
                    if self._lib.getTokenInfo(s).label.strip() == token_label
                ),
                None,
            )
            if slot is None:
                raise KeyProviderError(f"no PKCS#11 token labelled {token_label!r} in {module}")
            self._session = self._lib.openSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION)
        except P.PyKCS11Error as exc:
            raise KeyProviderError(f"PKCS#11 module {module}: {exc}") from None
        try:
            self._session.login(pin)
        except P.PyKCS11Error as exc:
            if exc.value != P.CKR_USER_ALREADY_LOGGED_IN:
                self._session.closeSession()
                raise KeyProviderError(f"PKCS#11 login to token {token_label!r} failed: {exc}") from None

    # -- lookups ---------------------------------------------------------------------------
    def _find(self, name: str, cls: int) -> list[Any]:
        P = self._P
        return self._session.findObjects([(P.CKA_CLASS, cls), (P.CKA_LABEL, check_name(name))])

    def _one(self, name: str, cls: int, what: str) -> Any:
        found = self._find(name, cls)
        if not found:
            raise KeyNotFound(f"no {what} {name!r} on the token")
        return found[0]

    def exists(self, name: str) -> bool:
        P = self._P
        with self._lock:
            return any(self._find(name, cls) for cls in (P.CKO_SECRET_KEY, P.CKO_PRIVATE_KEY, P.CKO_PUBLIC_KEY))

    # -- signing ---------------------------------------------------------------------------
    def signing_key(self, name: str, *, create: bool = False) -> Pkcs11SigningKey:
        P = self._P
        with self._lock:
            if not self._find(name, P.CKO_PRIVATE_KEY):
                if not create:
                    raise KeyNotFound(f"no signing key {name!r} on the token")
                self._generate_ed25519(name)
            private = self._one(name, P.CKO_PRIVATE_KEY, "signing key")
            public = self._one(name, P.CKO_PUBLIC_KEY, "public key")
            (point,) = self._session.getAttributeValue(public, [P.CKA_EC_POINT])
        point = bytes(point)
        # CKA_EC_POINT is DER (OCTET STRING of 32 bytes) on most tokens, raw on a few.
        raw = point[2:] if len(point) == 34 and point[:2] == b"\x04\x20" else point
        if len(raw) != 32:
            raise KeyProviderError(f"signing key {name!r} is not an Ed25519 key")
        return Pkcs11SigningKey(self, name, private, raw)

    def _generate_ed25519(self, name: str) -> None:
        P = self._P
        common = [(P.CKA_TOKEN, P.CK_TRUE), (P.CKA_KEY_TYPE, P.CKK_EC_EDWARDS), (P.CKA_LABEL, name)]
        public = [
            (P.CKA_CLASS, P.CKO_PUBLIC_KEY),
            (P.CKA_VERIFY, P.CK_TRUE),
            (P.CKA_EC_PARAMS, _ED25519_PARAMS),
            *common,
        ]
        private = [
            (P.CKA_CLASS, P.CKO_PRIVATE_KEY),
            (P.CKA_SIGN, P.CK_TRUE),
            (P.CKA_PRIVATE, P.CK_TRUE),
            (P.CKA_SENSITIVE, P.CK_TRUE),
            (P.CKA_EXTRACTABLE, P.CK_FALSE),
            *common,
        ]
        try:
            self._session.generateKeyPair(public, private, mecha=P.Mechanism(P.CKM_EC_EDWARDS_KEY_PAIR_GEN, None))
        except P.PyKCS11Error as exc:
            raise KeyProviderError(f"cannot generate an Ed25519 key on the token: {exc}") from None

    def _sign(self, handle: Any, message: bytes) -> bytes:
        P = self._P
        with self._lock:
            try:
                return bytes(self._session.sign(handle, message, P.Mechanism(P.CKM_EDDSA, None)))
            except P.PyKCS11Error as exc:
                raise KeyProviderError(f"PKCS#11 signature failed: {exc}") from None

    # -- wrapping --------------------------------------------------------------------------
    def create_wrapping_key(self, name: str) -> None:
        P = self._P
        template = [
            (P.CKA_CLASS, P.CKO_SECRET_KEY),
            (P.CKA_KEY_TYPE, P.CKK_AES),
            (P.CKA_VALUE_LEN, 32),
            (P.CKA_TOKEN, P.CK_TRUE),
            (P.CKA_PRIVATE, P.CK_TRUE),
            (P.CKA_SENSITIVE, P.CK_TRUE),
            (P.CKA_EXTRACTABLE, P.CK_FALSE),
            (P.CKA_ENCRYPT, P.CK_TRUE),
            (P.CKA_DECRYPT, P.CK_TRUE),
            (P.CKA_LABEL, check_name(name)),
        ]
        with self._lock:
            if self._find(name, P.CKO_SECRET_KEY):
                raise ValueError(f"key {name!r} exists")
            try:
                self._session.generateKey(template, mecha=P.Mechanism(P.CKM_AES_KEY_GEN, None))
            except P.PyKCS11Error as exc:
                raise KeyProviderError(f"cannot generate an AES key on the token: {exc}") from None

    def wrap(self, name: str, plaintext: bytes, aad: bytes) -> bytes:
        P = self._P
        nonce = os.urandom(12)
        with self._lock:
            key = self._one(name, P.CKO_SECRET_KEY, "wrapping key")
            try:
                out = self._session.encrypt(key, plaintext, P.AES_GCM_Mechanism(nonce, aad, 128))
            except P.PyKCS11Error as exc:
                raise KeyProviderError(f"PKCS#11 AES-GCM encryption failed: {exc}") from None
        return nonce + bytes(out)

    def unwrap(self, name: str, wrapped: bytes, aad: bytes) -> bytes:
        P = self._P
        with self._lock:
            key = self._one(name, P.CKO_SECRET_KEY, "wrapping key")
            try:
                out = self._session.decrypt(key, wrapped[12:], P.AES_GCM_Mechanism(wrapped[:12], aad, 128))
            except P.PyKCS11Error:
                raise UnwrapError(f"wrapped key does not open under {name!r}") from None
        return bytes(out)

    def destroy(self, name: str) -> bool:
        P = self._P
        with self._lock:
            objects = [
                o for cls in (P.CKO_SECRET_KEY, P.CKO_PRIVATE_KEY, P.CKO_PUBLIC_KEY) for o in self._find(name, cls)
            ]
            for obj in objects:
                self._session.destroyObject(obj)
        return bool(objects)

    def close(self) -> None:
        with self._lock:
            try:
                self._session.closeSession()
            except self._P.PyKCS11Error:
                pass
