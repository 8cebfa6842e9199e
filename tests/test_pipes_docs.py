"""docs/pipes.md stays true to the code: criteria, templates, schema keys, examples, output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from souverain.cli.main import main
from souverain.sovereignty import load_pipes, load_rules, parse_pipes
from souverain.sovereignty.schema import Access, AtRest, Contract, Entity, Hop, Keys, Location, Purpose, Requirements

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "pipes.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def test_every_criterion_and_template_is_documented() -> None:
    for crit in load_rules().criteria:
        assert f"| `{crit}` |" in DOC, crit
    for template in load_pipes(None).templates:
        assert f"| `{template}` |" in DOC, template


@pytest.mark.parametrize("struct", [Entity, Hop, AtRest, Keys, Location, Access, Contract, Purpose, Requirements])
def test_every_schema_key_is_documented(struct) -> None:
    for name in struct.__struct_fields__:
        assert re.search(rf"\b{name}:", DOC), f"{struct.__name__}.{name}"


def test_yaml_examples_are_valid_pipes() -> None:
    checked = 0
    for info, body in ((m["info"].strip(), m["body"]) for m in FENCE.finditer(DOC)):
        if (
            info != "yaml"
            or "..." in body
            or "bank/" in body
            or not re.match(r"^(evidence|requirements|entities|hops|routes):", body)
        ):
            continue
        parse_pipes(body, "doc.yaml")
        checked += 1
    assert checked >= 2


def test_check_transcript_matches(capsys, monkeypatch) -> None:
    block = next(
        m["body"] for m in FENCE.finditer(DOC) if m["info"].strip() == "console" and "pipes check examples" in m["body"]
    )
    documented = [line for line in block.splitlines()[1:] if not line.startswith("$") and "..." not in line]
    monkeypatch.chdir(ROOT)
    assert main(["pipes", "check", "examples/pipes/pipes.yaml"]) == 1
    actual = capsys.readouterr().out.splitlines()
    assert documented and all(line in actual for line in documented), (documented, actual)


def test_profile_fields_are_documented() -> None:
    from souverain.sovereignty import RouteProfile

    table = DOC.split("`RouteProfile` (msgspec struct", 1)[1].split("\n\n", 2)[1]
    documented = re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE)
    # every field is in the table, and the table names no field the struct lost
    assert sorted(documented) == sorted(n for n in RouteProfile.__struct_fields__ if n != "schema")


def test_catalogue_levels_are_what_the_analysis_gives() -> None:
    from souverain.sovereignty import analyse, templates_as_routes

    profiles = analyse(templates_as_routes(load_pipes(None))).profiles
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| [^|]+ \| `([a-z_]+)`", DOC, re.MULTILINE)
    documented = {template: level for template, level in rows if template in profiles}
    assert documented.keys() == profiles.keys()
    assert documented == {name: p.level_name for name, p in profiles.items()}
