"""Build hook: compile the privacy scanner's hot modules with mypyc.

Everything else about the package is in pyproject.toml. The scanner runs on every
request, and in pure Python it misses its latency goal by about 2x (docs/benchmarks.md);
mypyc compiles the same typed Python sources to C extensions, with no second source to
keep in step. The compiled modules are used only while they match their sources: the
build writes the SHA-256 of every source it compiled next to the extensions, and
`souverain.privacy.native` loads the pure-Python modules instead whenever one differs
(an edit after `make install`), or when SOUVERAIN_PURE_PYTHON is set.

Without mypy (a build that did not install requirements/build.lock), or with
SOUVERAIN_PURE_PYTHON set at build time, the package installs as pure Python.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

PACKAGE_DIR = os.path.join("souverain", "privacy")


def _native_constant(name: str) -> object:
    """A constant of souverain/privacy/native.py, read without importing the package
    (whose dependencies a build environment need not have)."""
    with open(os.path.join(PACKAGE_DIR, "native.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{name} is not in native.py")


COMPILED = _native_constant("COMPILED")  # the modules to compile: native.py's list
MANIFEST = _native_constant("MANIFEST")


def _sources() -> list[str]:
    return [os.path.join(PACKAGE_DIR, f"{m}.py") for m in COMPILED]


class BuildExtWithManifest(build_ext):
    """build_ext that writes, next to the extensions it built, the hash of each source."""

    def run(self) -> None:
        super().run()
        if not self.extensions:
            return
        target = os.path.dirname(self.get_ext_fullpath("souverain.privacy.numbers"))
        hashes = {}
        for path in _sources():
            with open(path, "rb") as f:
                hashes[os.path.basename(path)[:-3]] = hashlib.sha256(f.read()).hexdigest()
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, MANIFEST), "w", encoding="utf-8") as f:
            json.dump({"python": sys.version.split()[0], "sources": hashes}, f, indent=1, sort_keys=True)


def _extensions() -> list:
    if set(sys.argv[1:]) & {"dist_info", "egg_info"}:
        return []  # metadata only (pip asks for it first): nothing to compile yet
    if os.environ.get("SOUVERAIN_PURE_PYTHON"):
        print("souverain: SOUVERAIN_PURE_PYTHON is set, the privacy scanner stays pure Python", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print(
            "souverain: mypy is not installed (requirements/build.lock), the privacy scanner stays pure Python",
            file=sys.stderr,
        )
        return []
    # The third-party modules the scanner calls (stdnum, phonenumbers, ahocorasick) have
    # no type stubs: mypyc treats what they return as `object` and checks it at run time.
    return mypycify(
        ["--ignore-missing-imports", "--follow-imports=silent", *_sources()],
        opt_level="3",
        group_name="souverain.privacy._compiled",
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtWithManifest})
