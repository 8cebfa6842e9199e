"""The base of every struct read from a file the operator writes (the configuration, the
pipes file, the ledger's settings, routing policies): an unknown key is an error, not
ignored (a misspelt setting must not silently keep its default), fields are given by
name, and defaults are left out when a struct is written back."""

from __future__ import annotations

import msgspec


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass
