"""The schema of a `privacy:` block: the scanner's settings as an operator writes them.

The gateway's configuration holds one (`privacy:` in souverain.yaml, with `tenants`), and a
file may hold one on its own (`souverain privacy scan --config FILE`); both are read by the
shared YAML loader (`souverain/yamlfile.py`) against these structs, so a mistake of shape
is reported as `file:line: key: message`. What a schema cannot say (type names that exist,
regular expressions that compile, files that can be read) is checked by `config.py` when
the settings are built into a `ScannerConfig`.

This module is light on purpose: the configuration's schema imports it.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, UnsetType

from souverain.classes import DataClassName
from souverain.strict import Strict as Base

Threshold = Annotated[float, Meta(ge=0, le=1)]


class DictionaryFile(Base):
    # A UTF-8 text file of entries, one a line ('#' starts a comment line). Relative to
    # the directory of the configuration file.
    file: str


class PrivacySettings(Base):
    """The privacy scanner's settings (docs/privacy.md). A key left out means "not set
    here": the scanner's built-in value at the top of `privacy`, the top's value in
    `privacy.tenants`. Type names are those of `souverain privacy types`, DENYLIST and
    the types of `dictionaries`; an unknown one is an error."""

    # Findings below this confidence are dropped (types without a threshold of their own).
    threshold: Threshold | UnsetType = UNSET
    # Thresholds per type, e.g. {PERSON: 0.7}.
    thresholds: dict[str, Threshold] | UnsetType = UNSET
    # Types never reported.
    disabled: list[str] | UnsetType = UNSET
    # Values never flagged: exact (ignoring case and spacing), or `re:` and a regular
    # expression searched in the value.
    allow: list[str] | UnsetType = UNSET
    # Words or phrases always flagged, as type DENYLIST (whole words, ignoring case).
    deny: list[str] | UnsetType = UNSET
    # Operator dictionaries by type (a customer list as PERSON, project names as PROJECT):
    # a list of entries, or {file: PATH}; entries are always flagged as that type.
    dictionaries: dict[str, list[str] | DictionaryFile] | UnsetType = UNSET
    # Data class per type, replacing the built-in one (dictionary types: confidential).
    classes: dict[str, DataClassName] | UnsetType = UNSET
    # Regions whose national formats are tried for numbers written without +CC.
    phone_regions: list[str] | UnsetType = UNSET
    # A spaCy pipeline installed as a package (never downloaded) that adds person names.
    spacy_model: str | None | UnsetType = UNSET
    # A names table (the shipped names.tsv's format) replacing the shipped name lists;
    # relative to the directory of the configuration file.
    names_table: str | None | UnsetType = UNSET


class PrivacyConfig(PrivacySettings):
    """The settings of every tenant, and `tenants` with the keys some tenants change."""

    # Per-tenant settings, by tenant name: each key set replaces the default's, whole.
    tenants: dict[str, PrivacySettings] = {}
