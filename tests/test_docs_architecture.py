"""docs/architecture.md names only what exists.

Every `code span` of the page that looks like a path, a file, or a dotted name is checked
against the tree, read with `ast` (nothing is imported): paths exist; `module.name`,
`Class.member` and configuration keys (`server.max_body_bytes`) resolve to a definition.
In "One request through the code", a bare name must also be defined somewhere in
`souverain/` or be a string the code uses (an error code, a scope).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
PACKAGE = ROOT / "souverain"
# Outside this repository: the shared design notes, and third-party modules.
EXTERNAL = {"DESIGN.md"}
THIRD_PARTY = ("httpx.",)

IDENT = re.compile(r"[A-Za-z_]\w*")
DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
FILE = re.compile(r"[\w.-]+\.(?:py|lock|toml|md|yaml|in)")
PATH = re.compile(r"[a-z_][\w.-]*(?:/[\w.-]+)*/?")


class Index:
    """Definitions in souverain/, by module, by class, and every string literal."""

    def __init__(self) -> None:
        self.modules: dict[str, set[str]] = {}
        self.classes: dict[str, list[tuple[set[str], dict[str, str], list[str]]]] = {}
        self.defined: set[str] = set()
        self.strings: set[str] = set()
        for path in PACKAGE.rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            self.modules[name] = self._names(tree.body)
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    members = self._names(node.body)
                    fields = {
                        n.target.id: ast.unparse(n.annotation)
                        for n in node.body
                        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
                    }
                    bases = [ast.unparse(b).split(".")[-1] for b in node.bases]
                    self.classes.setdefault(node.name, []).append((members, fields, bases))
                    self.defined |= members | {node.name}
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    self.strings.add(node.value)
            self.defined |= self.modules[name]

    @staticmethod
    def _names(body: list[ast.stmt]) -> set[str]:
        names: set[str] = set()
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        return names

    def members(self, cls: str, seen: frozenset[str] = frozenset()) -> tuple[set[str], dict[str, str]]:
        """A class's members and annotated fields, its bases' included (by name)."""
        members: set[str] = set()
        fields: dict[str, str] = {}
        for own, own_fields, bases in self.classes.get(cls, []):
            members |= own
            fields = {**own_fields, **fields}
            for base in bases:
                if base not in seen:
                    more, more_fields = self.members(base, seen | {cls})
                    members |= more
                    fields = {**more_fields, **fields}
        return members, fields

    def resolves(self, dotted: str) -> bool:
        first, *rest = dotted.split(".")
        # module.name[.member]: the module may be named by its last part(s)
        for module, names in self.modules.items():
            if module == "souverain." + first or module.endswith("." + first):
                if rest[0] in names and (len(rest) == 1 or self._member_path(rest[0], rest[1:])):
                    return True
        # Class.member[.member]
        if first in self.classes and self._member_path(first, rest):
            return True
        # a configuration key: Config.server.max_body_bytes
        return self._member_path("Config", [first, *rest])

    def _member_path(self, cls: str, path: list[str]) -> bool:
        for i, name in enumerate(path):
            members, fields = self.members(cls)
            if name not in members:
                return False
            if i + 1 < len(path):
                if name not in fields:
                    return False
                cls = IDENT.findall(fields[name])[0]
        return True


@cache
def index() -> Index:
    return Index()


def spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def walk_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## One request through the code")
    return text[start : text.index("\n## ", start + 1)]


def problems_in(text: str, *, bare_names: bool) -> list[str]:
    found = []
    for span in spans(text):
        if span in EXTERNAL or span.startswith(THIRD_PARTY):
            continue
        if "/" in span and PATH.fullmatch(span):
            if not ((ROOT / span).exists() or (PACKAGE / span).exists()):
                found.append(f"`{span}`: no such path")
        elif FILE.fullmatch(span):
            if not any(ROOT.glob(f"**/{span}")):
                found.append(f"`{span}`: no such file")
        elif DOTTED.fullmatch(span):
            if not index().resolves(span):
                found.append(f"`{span}`: not defined")
        elif bare_names and IDENT.fullmatch(span):
            if span not in index().defined and span not in index().strings:
                found.append(f"`{span}`: neither defined in souverain/ nor a string it uses")
    return found


def test_the_page_opens_with_one_request() -> None:
    sections = re.findall(r"^## (.+)$", DOC.read_text(encoding="utf-8"), re.M)
    assert sections[0] == "One request through the code"


def test_every_name_in_the_walk_exists() -> None:
    problems = problems_in(walk_section(), bare_names=True)
    assert not problems, "docs/architecture.md, One request through the code:\n" + "\n".join(problems)


def test_every_path_and_dotted_name_on_the_page_exists() -> None:
    problems = problems_in(DOC.read_text(encoding="utf-8"), bare_names=False)
    assert not problems, "docs/architecture.md:\n" + "\n".join(problems)


def test_the_check_catches_what_is_not_there() -> None:
    """The checker itself: each kind of mistake is reported."""
    wrong = (
        "`souverain/nowhere.py` `Pipeline._admitt` `outbound.sealed` `server.max_body` `nowhere.py` `_not_a_function`"
    )
    assert len(problems_in(wrong, bare_names=True)) == 6
    right = "`souverain/pipeline.py` `Pipeline._admit` `outbound.seal` `server.max_body_bytes` `setup.py` `no_permitted_route`"
    assert problems_in(right, bare_names=True) == []


def test_the_layout_table_covers_every_module() -> None:
    """A module added to souverain/ gets a row in the Layout table, or sits in a folder
    that has one, so the page says where everything lives."""
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## Layout") :]
    rows = set(re.findall(r"^\| `([^`]+)`", table, re.M))
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name in ("__init__.py", "__main__.py"):
            continue
        if rel not in rows and not any(row.endswith("/") and rel.startswith(row) for row in rows):
            missing.append(rel)
    assert not missing, "docs/architecture.md's Layout table has no row for: " + ", ".join(missing)
