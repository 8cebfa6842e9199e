"""Where the gateway keeps its state (`state:` in souverain.yaml), as typed structs.

    state: {kind: sqlite}                      # the default: files in the state directory
    state:
      kind: postgres                           # every replica on one database
      dsn: host=db.internal dbname=souverain user=souverain
      schema: souverain

With PostgreSQL, everything the gateway keeps (API keys, the ledger unless `ledger.store`
names another place, the usage tables to come) lives in that database's schema, so a
replica keeps nothing of its own. The password never goes in the file: libpq reads
PGPASSWORD or a PGPASSFILE, or the DSN takes it as ${ENV_VAR}.

This module imports nothing of the gateway's: the configuration schema imports it.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from souverain.strict import Strict as Base

SchemaName = Annotated[str, Meta(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]


class SqliteStateConfig(Base, tag="sqlite", tag_field="kind"):
    """SQLite files in the state directory: `souverain.db` (API keys), `ledger.db`."""


class PostgresStateConfig(Base, tag="postgres", tag_field="kind"):
    # libpq connection string or URL. The password comes from the environment: PGPASSWORD,
    # a PGPASSFILE, or ${ENV_VAR} in the DSN; a password written in the file is an error.
    dsn: Annotated[str, Meta(min_length=1)]
    # PostgreSQL schema holding every table of the gateway's.
    schema: SchemaName = "souverain"
    # Longest a replica trusts its in-memory copy of the API keys without hearing from
    # the database: it re-reads them every half of this and at once on a NOTIFY; past it,
    # keys are refused (503) until the database answers again.
    key_cache_s: Annotated[float, Meta(gt=0, le=60)] = 1.0


StateConfig = SqliteStateConfig | PostgresStateConfig
