"""The compiled scanner (mypyc, setup.py): used only while it matches its sources, and
finding exactly what the pure-Python scanner finds."""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import souverain.privacy
from souverain.privacy import Scanner, ScannerConfig, native
from souverain.privacy import numbers as numbers_module

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(souverain.privacy.__file__).resolve().parent
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def compiled_or_skip() -> None:
    """Tests of the compiled build need it; in CI (which installs with `make install`)
    it must be there."""
    if native.ACTIVE:
        return
    if IN_CI:
        pytest.fail(f"CI=true but the scanner is not compiled: {native.REASON}")
    pytest.skip(f"the scanner is not compiled here ({native.REASON}); `make install` compiles it")


def test_setup_compiles_the_modules_native_checks() -> None:
    """setup.py reads its list from native.py; each module it names is a source here."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    tree.body = [node for node in tree.body if not isinstance(node, ast.Expr) or isinstance(node.value, ast.Constant)]
    globs: dict = {"__name__": "setup_without_the_setup_call"}
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)  # setup.py reads native.py relative to the project root
        exec(compile(tree, "setup.py", "exec"), globs)
    finally:
        os.chdir(cwd)
    assert globs["COMPILED"] == native.COMPILED and globs["MANIFEST"] == native.MANIFEST
    assert [os.path.basename(p) for p in globs["_sources"]()] == [f"{m}.py" for m in native.COMPILED]
    for module in native.COMPILED:
        assert (PACKAGE / f"{module}.py").is_file()


def test_the_compiled_modules_are_the_ones_loaded() -> None:
    compiled_or_skip()
    assert numbers_module.__file__.endswith(SUFFIX)
    for module in native.COMPILED:
        assert sys.modules[f"souverain.privacy.{module}"].__file__.endswith(SUFFIX), module


# -- the decision, on a directory of stand-ins --------------------------------------------
def fake_build(tmp_path: Path, *, manifest: bool = True, skip: str = "") -> Path:
    hashes = {}
    for module in native.COMPILED:
        source = f"VALUE = {module!r}\n".encode()
        (tmp_path / f"{module}.py").write_bytes(source)
        if module != skip:
            (tmp_path / f"{module}{SUFFIX}").write_bytes(b"")
        hashes[module] = hashlib.sha256(source).hexdigest()
    if manifest:
        (tmp_path / native.MANIFEST).write_text(json.dumps({"sources": hashes}), encoding="utf-8")
    return tmp_path


def test_a_build_that_matches_its_sources_is_used(tmp_path: Path) -> None:
    assert native.decide(fake_build(tmp_path), {}) == (True, "compiled (mypyc)", False)


def test_an_edited_source_turns_the_whole_build_off(tmp_path: Path) -> None:
    d = fake_build(tmp_path)
    (d / "ids.py").write_text("VALUE = 'edited'\n", encoding="utf-8")
    active, reason, shadowed = native.decide(d, {})
    assert (active, shadowed) == (False, True)
    assert "ids.py changed" in reason and "make install" in reason


@pytest.mark.parametrize(
    ("kwargs", "environ", "words"),
    [
        ({"manifest": False}, {}, "cannot be checked"),
        ({"skip": "names"}, {}, "missing (names)"),
        ({}, {native.ENV: "1"}, native.ENV),
    ],
)
def test_an_unverifiable_or_refused_build_is_not_used(tmp_path: Path, kwargs: dict, environ: dict, words: str) -> None:
    active, reason, shadowed = native.decide(fake_build(tmp_path, **kwargs), environ)
    assert (active, shadowed) == (False, True)
    assert words in reason


def test_no_build_at_all_is_plain_pure_python(tmp_path: Path) -> None:
    (tmp_path / "numbers.py").write_text("", encoding="utf-8")
    assert native.decide(tmp_path, {})[:1] == (False,)
    assert native.decide(tmp_path, {})[2] is False


# -- end to end: a copy of the installed build, edited --------------------------------------
PROBE = (
    "import sys; import souverain.privacy.native as n, souverain.privacy.numbers as m; "
    "print(n.ACTIVE, m.__file__, getattr(m, 'EDITED', None))"
)


def run_copy(copy: Path) -> tuple[list[str], str]:
    env = {k: v for k, v in os.environ.items() if k != native.ENV}
    env["PYTHONPATH"] = str(copy)
    p = subprocess.run([sys.executable, "-c", PROBE], cwd=copy, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.split(), p.stderr


def test_an_edit_after_the_build_runs_the_edited_source(tmp_path: Path) -> None:
    compiled_or_skip()
    shutil.copytree(PACKAGE.parent, tmp_path / "souverain", ignore=shutil.ignore_patterns("__pycache__"))
    out, _ = run_copy(tmp_path)
    assert out[0] == "True" and out[1].startswith(str(tmp_path)) and out[1].endswith(SUFFIX)

    numbers = tmp_path / "souverain" / "privacy" / "numbers.py"
    numbers.write_text(numbers.read_text(encoding="utf-8") + "\nEDITED = 'yes'\n", encoding="utf-8")
    out, err = run_copy(tmp_path)
    assert out == ["False", str(numbers), "yes"]
    assert "numbers.py changed since the scanner was compiled" in err


# -- the compiled scanner finds what the pure-Python one finds -------------------------------
FRAGMENTS = [
    "Mój PESEL to 84022484181.",
    "PESEL 44051401359",
    "Steuer-ID 59 378 910 647",
    "BSN 111222333",
    "Mijn BSN is 395297709.",
    "CNP-ul meu este 2911102304895.",
    "Il mio codice fiscale è VCTVFR97L05C860U.",
    "Henkilötunnus: 131052-308T",
    "Rodné číslo: 541027/1823",
    "IBAN DE89 3704 0044 0532 0130 00",
    "FR14 2004 1010 0505 0001 3M02 606",
    "Tel. +48 601 234 567",
    "appelez le 06 12 34 56 78",
    "Rufen Sie bitte 07121280056 an",
    "card 4111 1111 1111 1111",
    "USt-IdNr. DE136695976",
    "BIC COBADEFFXXX at the bank",
    "jan.kowalski@example.pl",
    "marie [at] example [dot] fr",
    "server 10.1.2.3 and 2001:db8::1",
    "born on 12 March 1984",
    "geboren am 3. Mai 1980",
    "Passport number: X1234567",
    "Herr Müller",
    "Dear Marie Dupont,",
    "avec Xavière Qzulnik hier",
    "Jan Kowalski",
    "order 123456789",
    "invoice 2024-00017",
    "tracking 1Z999AA10123456784",
    "Dupont et Fils SA",
    "the patient has diabetes",
    "Minu isikukood on 48907160641.",
    "Ｐ\u200bESEL ４４０５１４０１３５９",
    "DE89\u00a03704\u00a00044\u00a00532\u00a00130\u00a000",
    "j\u0430n.kowalski@ex\u0430mple.pl",
    "The quarterly review covers the migration.",
    "median went from 41 ms to 38 ms",
    "version 1.2.3.4",
    "Clients/Poland/2019",
]


def texts() -> list[str]:
    rng = random.Random(20261124)
    out = list(FRAGMENTS)
    for _ in range(300):
        parts = rng.sample(FRAGMENTS, rng.randint(2, 6))
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 16)))
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(["Nr. ", "ref ", "ID ", "", "PESEL ", "tel "]) + digits)
        out.append(rng.choice([" ", ". ", ", ", "\n"]).join(parts))
    return out


def scan_all(items: list[str]) -> list[list[list]]:
    out = []
    for threshold in (0.5, 0.3):
        scanner = Scanner(ScannerConfig(threshold=threshold))
        out.extend([[f.type, f.start, f.end, f.confidence, f.validator] for f in scanner.scan(t)] for t in items)
    return out


def test_compiled_and_pure_python_find_the_same() -> None:
    compiled_or_skip()
    items = texts()
    here = scan_all(items)
    assert sum(map(len, here)) > len(items)  # the sample holds personal data
    script = (
        "import json, sys\nsys.path.insert(0, sys.argv[1])\nfrom test_privacy_native import scan_all\n"
        "import souverain.privacy.numbers as m\nassert m.__file__.endswith('.py'), m.__file__\n"
        "print(json.dumps(scan_all(json.load(sys.stdin))))"
    )
    env = dict(os.environ, **{native.ENV: "1"})
    p = subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent)],
        input=json.dumps(items),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == here
