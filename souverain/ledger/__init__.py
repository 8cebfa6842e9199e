"""The tamper-evident ledger: one entry per request, in an RFC 6962 Merkle tree whose signed
checkpoints, proofs and tiles use the C2SP formats byte for byte.

Public API (see docs/ledger.md):
    Ledger, LedgerConfig, Entry            record requests; open/start/append/stop
    routes (souverain.ledger.http)          auditor HTTP endpoints
    add_parser (souverain.cli.ledger)       `souverain ledger export|verify|shred|key`
    verify_receipt, open_checkpoint         check what the ledger hands out, offline
"""

from souverain.ledger.checkpoint import Checkpoint, OpenedCheckpoint, Receipt, open_checkpoint, verify_receipt
from souverain.ledger.config import LedgerConfig, PostgresStoreConfig, RetentionConfig, SqliteStoreConfig, WitnessConfig
from souverain.ledger.entry import Entry, EntryError, decode_entry, encode_entry
from souverain.ledger.ledger import Ledger, LedgerError, ShredReport, shred_tenant
from souverain.ledger.reader import NotFoundError

__all__ = [
    "Checkpoint",
    "Entry",
    "EntryError",
    "Ledger",
    "LedgerConfig",
    "LedgerError",
    "NotFoundError",
    "OpenedCheckpoint",
    "PostgresStoreConfig",
    "Receipt",
    "RetentionConfig",
    "ShredReport",
    "SqliteStoreConfig",
    "WitnessConfig",
    "decode_entry",
    "encode_entry",
    "open_checkpoint",
    "shred_tenant",
    "verify_receipt",
]
