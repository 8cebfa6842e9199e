"""Whether the scanner runs compiled (mypyc) or as pure Python, decided once at import.

setup.py compiles the modules in `COMPILED` to C extensions and writes the SHA-256 of
each source it compiled to `_compiled.json` beside them. Python prefers an extension to
a `.py` of the same name, so an extension built from an older source would silently
run old code after an edit. This module is imported first by the package and:

- uses the extensions only when every one of them is there and every source still has
  the hash it was compiled from;
- otherwise, when extensions are present but stale (or SOUVERAIN_PURE_PYTHON is set),
  puts a finder first on `sys.meta_path` that loads all of `COMPILED` from their `.py`
  files. All or none: compiled modules call each other directly, so one stale module
  cannot be swapped out alone. A stale build is logged once as a warning.

`ACTIVE` says which one runs and `REASON` why. This module itself is never compiled.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

# setup.py compiles these (it reads this list and MANIFEST from this file).
COMPILED = (
    "context",
    "detectors",
    "doc",
    "findings",
    "health",
    "ids",
    "keywords",
    "names",
    "normalise",
    "numbers",
    "patterns",
    "payload",
    "phones",
    "scanner",
)
MANIFEST = "_compiled.json"
ENV = "SOUVERAIN_PURE_PYTHON"
_HERE = Path(__file__).resolve().parent
_PACKAGE = __name__.rpartition(".")[0]

_log = logging.getLogger("souverain.privacy")


def _extension(directory: Path, module: str) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = directory / f"{module}{suffix}"
        if path.exists():
            return path
    return None


def decide(directory: Path = _HERE, environ: Mapping[str, str] = os.environ) -> tuple[bool, str, bool]:
    """(compiled modules usable, why, extensions present but not to be used)."""
    present = [m for m in COMPILED if _extension(directory, m) is not None]
    if not present:
        return False, "pure Python: the scanner was not compiled (see setup.py)", False
    if environ.get(ENV):
        return False, f"pure Python: {ENV} is set", True
    if len(present) != len(COMPILED):
        missing = sorted(set(COMPILED) - set(present))
        return False, f"pure Python: compiled modules missing ({', '.join(missing)})", True
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        recorded = manifest["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return False, f"pure Python: {MANIFEST} is missing or unreadable, so the build cannot be checked", True
    changed = [
        m for m in COMPILED if recorded.get(m) != hashlib.sha256((directory / f"{m}.py").read_bytes()).hexdigest()
    ]
    if changed:
        return (
            False,
            (
                f"pure Python: {', '.join(f'{m}.py' for m in changed)} changed since the scanner was "
                "compiled; `make install` compiles it again"
            ),
            True,
        )
    return True, "compiled (mypyc)", False


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Loads the compiled modules of this package from their `.py` sources."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.names = {f"{_PACKAGE}.{m}": m for m in COMPILED}

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        module = self.names.get(fullname)
        if module is None:
            return None
        return importlib.util.spec_from_file_location(fullname, self.directory / f"{module}.py")


ACTIVE, REASON, _shadowed = decide()
if _shadowed:
    sys.meta_path.insert(0, _SourceFinder(_HERE))
    if not os.environ.get(ENV):
        _log.warning("privacy scanner: %s", REASON)
