"""A key provider backed by files in one directory: for development and tests only.

Signing keys are PKCS#8 PEM files (`<name>.ed25519.pem`), wrapping keys 32 random bytes in
base64 (`<name>.aes256`), mode 0600 in a 0700 directory. Keys are created with a hard link
from a temporary file so that two processes racing to create one key agree on the winner.

`destroy` overwrites the file before unlinking it. On copy-on-write file systems, SSDs and
in backups the old blocks may survive: production deployments that rely on crypto-shredding
should keep wrapping keys in an HSM (`pkcs11`), where destruction is the device's promise.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from souverain.keys.base import KeyNotFound, UnwrapError, check_name

_SIGN_SUFFIX = ".ed25519.pem"
_WRAP_SUFFIX = ".aes256"


class FileSigningKey:
    def __init__(self, name: str, private: Ed25519PrivateKey) -> None:
        self.name = name
        self._private = private
        self.public_key = private.public_key().public_bytes_raw()

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


class FileKeyProvider:
    kind = "file"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._wrapping: dict[str, AESGCM] = {}

    def _path(self, name: str, suffix: str) -> Path:
        return self.directory / (check_name(name) + suffix)

    def _create(self, path: Path, data: bytes) -> bool:
        """Write `data` at `path` unless it exists; False if another writer won."""
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink()

    def signing_key(self, name: str, *, create: bool = False) -> FileSigningKey:
        path = self._path(name, _SIGN_SUFFIX)
        if not path.exists():
            if not create:
                raise KeyNotFound(f"no signing key {name!r} in {self.directory}")
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            self._create(path, pem)
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyNotFound(f"{path} is not an Ed25519 private key")
        return FileSigningKey(name, private)

    def create_wrapping_key(self, name: str) -> None:
        if self.exists(name):
            raise ValueError(f"key {name!r} exists")
        if not self._create(self._path(name, _WRAP_SUFFIX), base64.b64encode(AESGCM.generate_key(256)) + b"\n"):
            raise ValueError(f"key {name!r} exists")

    def _aead(self, name: str) -> AESGCM:
        with self._lock:
            aead = self._wrapping.get(name)
            if aead is None:
                try:
                    raw = base64.b64decode(self._path(name, _WRAP_SUFFIX).read_bytes())
                except FileNotFoundError:
                    raise KeyNotFound(f"no wrapping key {name!r} in {self.directory}") from None
                aead = self._wrapping[name] = AESGCM(raw)
            return aead

    def wrap(self, name: str, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead(name).encrypt(nonce, plaintext, aad)

    def unwrap(self, name: str, wrapped: bytes, aad: bytes) -> bytes:
        aead = self._aead(name)
        try:
            return aead.decrypt(wrapped[:12], wrapped[12:], aad)
        except (InvalidTag, ValueError):
            raise UnwrapError(f"wrapped key does not open under {name!r}") from None

    def exists(self, name: str) -> bool:
        return self._path(name, _WRAP_SUFFIX).exists() or self._path(name, _SIGN_SUFFIX).exists()

    def destroy(self, name: str) -> bool:
        found = False
        with self._lock:
            self._wrapping.pop(name, None)
            for suffix in (_WRAP_SUFFIX, _SIGN_SUFFIX):
                path = self._path(name, suffix)
                try:
                    size = path.stat().st_size
                    with path.open("r+b") as f:
                        f.write(b"\0" * size)
                        f.flush()
                        os.fsync(f.fileno())
                    path.unlink()
                    found = True
                except FileNotFoundError:
                    continue
        return found

    def close(self) -> None:
        with self._lock:
            self._wrapping.clear()
