"""Key-provider configuration (`ledger.keys` in souverain.yaml) and the factory.

keys:
  provider: file          # development: keys in files under the state directory
  path: keys

keys:
  provider: pkcs11        # an HSM; SoftHSM2 for testing
  module: /usr/lib/softhsm/libsofthsm2.so
  token_label: souverain
  pin: ${SOUVERAIN_HSM_PIN}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from souverain.keys.base import KeyProvider, KeyProviderError


class FileKeys(msgspec.Struct, tag="file", tag_field="provider", forbid_unknown_fields=True, kw_only=True):
    # Directory of key files; relative paths are relative to the state directory.
    path: str = "keys"


class Pkcs11Keys(msgspec.Struct, tag="pkcs11", tag_field="provider", forbid_unknown_fields=True, kw_only=True):
    # Path to the PKCS#11 module (shared library) of the HSM.
    module: Annotated[str, Meta(min_length=1)]
    token_label: Annotated[str, Meta(min_length=1, max_length=32)]
    # User PIN; write ${ENV_VAR} to take it from the environment. Or name the variable here.
    pin: str | None = None
    pin_env: str | None = None


KeysConfig = FileKeys | Pkcs11Keys


def open_provider(config: KeysConfig, base_dir: str | os.PathLike[str] = ".") -> KeyProvider:
    if isinstance(config, FileKeys):
        from souverain.keys.file import FileKeyProvider

        path = Path(config.path)
        return FileKeyProvider(path if path.is_absolute() else Path(base_dir) / path)
    from souverain.keys.pkcs11 import Pkcs11KeyProvider

    pin = config.pin
    if pin is None and config.pin_env:
        pin = os.environ.get(config.pin_env)
    if not pin:
        raise KeyProviderError("the pkcs11 key provider needs `pin` (or `pin_env` naming a set variable)")
    return Pkcs11KeyProvider(config.module, config.token_label, pin)
