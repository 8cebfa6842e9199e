"""Key custody: the key-provider protocol, its file and PKCS#11 providers, and envelope
encryption with crypto-shredding per tenant."""

from souverain.keys.base import KeyNotFound, KeyProvider, KeyProviderError, SigningKey, UnwrapError
from souverain.keys.config import FileKeys, KeysConfig, Pkcs11Keys, open_provider
from souverain.keys.envelope import ContentError, Keyring, TenantKey, WrappedKey, WrappedKeyStore
from souverain.keys.file import FileKeyProvider

__all__ = [
    "ContentError",
    "FileKeyProvider",
    "FileKeys",
    "KeyNotFound",
    "KeyProvider",
    "KeyProviderError",
    "Keyring",
    "KeysConfig",
    "Pkcs11Keys",
    "SigningKey",
    "TenantKey",
    "UnwrapError",
    "WrappedKey",
    "WrappedKeyStore",
    "open_provider",
]
