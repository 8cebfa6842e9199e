"""Sovereignty levels and residency aspects: the words the pipes analysis and routing share.

The analysis (`souverain/sovereignty/`) gives each route a `Level` and says where each
aspect of its residency lies; a routing policy (`souverain/routing/policy.py`) names the
lowest level and the aspects a data class needs. Both read the names here, and
docs/pipes.md defines them; how a route earns its level is `sovereignty/levels.py`. A
leaf module, like `classes.py`: it imports nothing of ours.
"""

from __future__ import annotations

import enum
from typing import Literal, get_args

LevelName = Literal["none", "eu_resident", "eu_controlled", "sovereign", "in_house"]


class Level(enum.IntEnum):
    """How far a route keeps data out of non-EU reach; higher is stricter. See docs/pipes.md."""

    NONE = 0  # data may leave the EEA, or that cannot be ruled out
    EU_RESIDENT = 1  # processing, storage and fallback in the EEA; a non-EU law can compel plaintext
    EU_CONTROLLED = 2  # and no established non-EU reach, no non-EU-controlled party can obtain plaintext
    SOVEREIGN = 3  # and no non-EU reach at all; every party holding the data EU-controlled; admin, support, telemetry in the EEA
    IN_HOUSE = 4  # and no third party can reach plaintext: only the organisation does

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Level:
        return cls[name.upper()]


# Where a route's data goes, aspect by aspect (docs/pipes.md, "Residency").
Aspect = Literal["processing", "storage", "fallback", "support", "admin", "telemetry"]
ASPECTS: tuple[Aspect, ...] = get_args(Aspect)

assert tuple(level.label for level in Level) == get_args(LevelName)
