"""The ledger's configuration (`ledger:` in souverain.yaml), as typed structs.

    ledger:
      origin: ledger.bank.example/gateway     # the checkpoint origin line and log key name
      store: {kind: sqlite, path: ledger.db}   # or {kind: postgres, dsn: ..., schema: ...};
                                               # omitted: where `state:` keeps everything
      keys: {provider: file, path: keys}       # or pkcs11 (see souverain.keys.config)
      checkpoint_interval_s: 0.5
      retention: {content: false, days: 184}
      witnesses:
        - url: http://witness.internal:8090
          vkey: witness.internal/w1+8d66cf3f+BL...

Relative paths are relative to the state directory.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from souverain.keys.config import FileKeys, KeysConfig
from souverain.strict import Strict as Base

KeyName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
Origin = Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^[^\s+]+$")]

# AI Act Art. 19(1) and 26(6): logs kept at least six months. 184 days covers any six
# consecutive calendar months.
SIX_MONTHS_DAYS = 184


class SqliteStoreConfig(Base, tag="sqlite", tag_field="kind"):
    path: str = "ledger.db"


class PostgresStoreConfig(Base, tag="postgres", tag_field="kind"):
    # libpq connection string or URL; ${ENV_VAR} for the password.
    dsn: Annotated[str, Meta(min_length=1)]
    schema: Annotated[str, Meta(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "souverain_ledger"


StoreConfig = SqliteStoreConfig | PostgresStoreConfig


class RetentionConfig(Base):
    # Keep request and response content, encrypted per tenant, apart from the tree. Off by
    # default: the ledger then holds metadata and keyed digests only.
    content: bool = False
    # Days content is kept before it is purged.
    days: Annotated[int, Meta(ge=1)] = SIX_MONTHS_DAYS


class WitnessConfig(Base):
    # Submission prefix of a C2SP tlog-witness; `/add-checkpoint` is appended.
    url: Annotated[str, Meta(pattern=r"^https?://")]
    # The witness's cosignature/v1 verifier key.
    vkey: Annotated[str, Meta(min_length=1)]
    timeout_s: Annotated[float, Meta(gt=0)] = 5.0


class LedgerConfig(Base):
    enabled: bool = True
    origin: Origin = "souverain.local/ledger"
    # Name of the checkpoint signing key in the key provider (made on first start).
    signing_key: KeyName = "souverain-ledger-checkpoint"
    # Omitted: where `state:` says (ledger.db in the state directory, or the state's
    # PostgreSQL schema); the configuration fills it in when it loads.
    store: StoreConfig | None = None
    keys: KeysConfig = msgspec.field(default_factory=FileKeys)
    # Seconds between checkpoints while entries arrive (at most 1 s by default).
    checkpoint_interval_s: Annotated[float, Meta(gt=0, le=60)] = 0.5
    # Most entries in one sequencing transaction.
    max_batch: Annotated[int, Meta(ge=1, le=100_000)] = 4096
    retention: RetentionConfig = msgspec.field(default_factory=RetentionConfig)
    witnesses: list[WitnessConfig] = []
