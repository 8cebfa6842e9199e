"""Pipes as code: who could be compelled to hand over the data, hop by hop.

The routing layer needs three calls:

    pipes = load_pipes("pipes.yaml")          # the shipped catalogue, then the file on top
    analysis = analyse(pipes)                 # pure: same inputs, same bytes
    profile = analysis.profile("my-route")    # RouteProfile: level, non-EU access, residency, verdicts, digest

`profile.level` is a `Level` (an IntEnum, so `profile.level >= Level.EU_CONTROLLED`
works); `profile.digest` is what the ledger records. See docs/pipes.md.
"""

from souverain.sovereignty.analyse import analyse, breaches, effective_requirements
from souverain.sovereignty.loader import Pipes, load_pipes, parse_pipes, templates_as_routes
from souverain.sovereignty.results import (
    Analysis,
    CountrySet,
    HopReach,
    LawReach,
    Level,
    Residency,
    RouteAnalysis,
    RouteProfile,
    Tri,
    Verdict,
)
from souverain.sovereignty.rules import Rules, load_rules
from souverain.sovereignty.schema import Confidence


def load_profiles(
    path: str, *, catalogue: bool = True, min_confidence: Confidence | None = None
) -> dict[str, RouteProfile]:
    """Load, analyse, and return every route's profile by name: the routing layer's one call."""
    return analyse(load_pipes(path, catalogue=catalogue), min_confidence=min_confidence).profiles


__all__ = [
    "Analysis",
    "CountrySet",
    "HopReach",
    "LawReach",
    "Level",
    "Pipes",
    "Residency",
    "RouteAnalysis",
    "RouteProfile",
    "Rules",
    "Tri",
    "Verdict",
    "analyse",
    "breaches",
    "effective_requirements",
    "load_pipes",
    "load_profiles",
    "load_rules",
    "parse_pipes",
    "templates_as_routes",
]
