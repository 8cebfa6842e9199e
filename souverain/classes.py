"""The gateway's data classes, lowest to highest (DESIGN.md, stage 3: classify). One
definition, imported by everyone who names a class:

    public < internal < confidential < personal < special

`DataClassName` is a class as a word (configuration, headers, request fields, ledger
entries), `CLASSES` their order, `highest` the rule that a class can only be raised, and
`DataClass` the same order as an enum (what the privacy scanner computes with).
"""

from __future__ import annotations

import enum
from typing import Literal, TypeGuard, get_args

DataClassName = Literal["public", "internal", "confidential", "personal", "special"]
CLASSES: tuple[DataClassName, ...] = get_args(DataClassName)


def highest(*names: DataClassName) -> DataClassName:
    """The highest of `names`."""
    return max(names, key=CLASSES.index)


def is_class(name: str) -> TypeGuard[DataClassName]:
    """Whether `name` is one of `CLASSES` (for text read from a header)."""
    return name in CLASSES


class DataClass(enum.IntEnum):
    """The classes as an ordered enum.

    The scanner can only ever *raise* a request's class: `public` means "nothing found",
    not "known to be public". `internal` and `confidential` are mostly declared by the
    caller; the scanner reaches `confidential` only for business identifiers and tenant
    deny-list hits. `special` is GDPR Art. 9 data: here, health terms found together with
    personal data about someone (see `souverain.privacy.health`).
    """

    PUBLIC = 0
    INTERNAL = 1
    CONFIDENTIAL = 2
    PERSONAL = 3
    SPECIAL = 4

    @classmethod
    def parse(cls, name: str) -> DataClass:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown data class {name!r}; one of {', '.join(c.name.lower() for c in cls)}") from None

    def __str__(self) -> str:
        return self.name.lower()

    @property
    def word(self) -> DataClassName:
        return CLASSES[self.value]
