"""docs/cli.md is what the commands' own --help prints, and the docs name real commands.

- docs/cli.md is exactly what `python -m souverain.cli.reference` generates;
- each of its blocks is what `souverain ... --help` really prints at 80 columns, and every
  command a usage line offers has a block (the walk misses none);
- the output does not depend on the terminal's width, and a command added later is
  picked up by the generator without touching it;
- every `souverain COMMAND --option` quoted in README.md and docs/ names a real command
  and one of its options.
"""

from __future__ import annotations

import argparse
import difflib
import re
from pathlib import Path

import pytest

from souverain.cli import reference
from souverain.cli.help import Formatter, commands, finish
from souverain.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "cli.md"
HEADING = re.compile(r"^#{2,4} `(?P<command>souverain[a-z0-9 _-]*)`\n\n```text\n(?P<help>.*?)\n```$", re.M | re.S)


def documented() -> dict[str, str]:
    """Each command's help block in docs/cli.md, by its command line."""
    return {m["command"]: m["help"] for m in HEADING.finditer(DOC.read_text(encoding="utf-8"))}


def test_cli_md_is_generated_from_the_parsers() -> None:
    want = reference.render()
    have = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
    if have != want:
        diff = "".join(
            list(
                difflib.unified_diff(
                    have.splitlines(True), want.splitlines(True), "docs/cli.md", "the commands' --help"
                )
            )[:60]
        )
        pytest.fail(
            f"docs/cli.md is out of date with the commands' --help; regenerate it with "
            f"`{reference.REGENERATE}` (or `make docs`) and commit it:\n{diff}"
        )


def test_check_option_reports_a_stale_file(tmp_path, monkeypatch, capsys) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text("# stale\n", encoding="utf-8")
    monkeypatch.setattr(reference, "DOC", stale)
    assert reference.main(["--check"]) == 1
    assert reference.REGENERATE in capsys.readouterr().err
    assert reference.main(["--write"]) == 0
    assert reference.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == reference.render()


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit:
        main([*argv, "--help"])
    assert exit.value.code == 0
    return capsys.readouterr().out.rstrip("\n")


def test_each_block_is_what_help_prints(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", str(reference.COLUMNS))
    blocks = documented()
    assert len(blocks) == len(list(commands(build_parser())))
    for command, text in blocks.items():
        assert _help(command.split()[1:], capsys) == text, command


def test_every_offered_subcommand_has_a_block() -> None:
    """Read the subcommands off each block ("positional arguments:" then {serve,keys,...}):
    an independent check that the walk behind the generator reached every command."""
    blocks = documented()
    for command, text in blocks.items():
        for group in re.findall(r"^  \{([a-z0-9_,-]+)\}$", text, re.M):
            for name in group.split(","):
                assert f"{command} {name}" in blocks, f"`{command} {name}` is offered but not in docs/cli.md"
    assert {
        "souverain serve",
        "souverain keys create",
        "souverain pipes check",
        "souverain ledger verify",
        "souverain witness serve",
        "souverain privacy scan",
        "souverain config schema",
    } <= set(blocks)


@pytest.mark.parametrize("columns", ["40", "200"])
def test_output_ignores_the_terminal_width(monkeypatch, columns) -> None:
    want = reference.render()
    monkeypatch.setenv("COLUMNS", columns)
    assert reference.render() == want


def test_options_print_their_metavar_once() -> None:
    """The same on Python 3.11 and 3.13+: `-c, --config CONFIG`."""
    parser = argparse.ArgumentParser(prog="x", formatter_class=Formatter)
    parser.add_argument("--config", "-c")
    parser.add_argument("--yes", "-y", action="store_true")
    text = parser.format_help()
    assert "--config, -c CONFIG" in text and "--yes, -y" in text and "--config CONFIG," not in text


def test_a_command_added_later_is_picked_up() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    example = sub.add_parser("example", help="what each tenant used").add_subparsers(
        dest="example_command", required=True
    )
    example.add_parser("export", help="FOCUS rows").add_argument("--since", help="start of the period")
    text = reference.render(finish(parser))
    assert "- [`souverain example`](#souverain-example): what each tenant used" in text
    assert "#### `souverain example export`" in text
    assert "FOCUS rows." in text and "--since SINCE  start of the period" in text


def test_subcommands_describe_themselves(capsys) -> None:
    """A command's one-line help becomes its description: `--help` says what it does."""
    assert "\n\nCreate a key and print it once.\n\n" in _help(["keys", "create"], capsys)


# -- every command line quoted in the docs is real ---------------------------------------

QUOTED = re.compile(r"`souverain((?: [a-z][a-z0-9_-]*)+)([^`\n]*)`")


def test_docs_name_real_commands_and_options() -> None:
    tree = {path: parser for path, parser, _ in commands(build_parser())}
    problems = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for m in QUOTED.finditer(page.read_text(encoding="utf-8")):
            words = m[1].split()
            path: tuple[str, ...] = ()
            while words and (*path, words[0]) in tree:
                path, words = (*path, words[0]), words[1:]
            if not path:
                problems.append(f"{page.name}: `souverain{m[1]}`: no such command")
                continue
            options = {o for a in tree[path]._actions for o in a.option_strings}
            for option in re.findall(
                r"(?<![\w-])(--?[a-z][a-z0-9-]*)", m[2] if words == [] else " ".join(words) + m[2]
            ):
                if option not in options:
                    problems.append(f"{page.name}: `souverain {' '.join(path)}` has no option {option}")
    assert not problems, "\n".join(problems)


def test_links_into_cli_md_land_on_a_command() -> None:
    commands_documented = {"-".join(c.split()) for c in documented()}
    links = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        prefix = r"(?:cli\.md)?" if page == DOC else r"(?:docs/)?cli\.md"
        links += [(page.name, a) for a in re.findall(rf"\({prefix}#([a-z0-9-]+)\)", page.read_text(encoding="utf-8"))]
    assert len(links) >= 3 + len(commands_documented) - 1  # the pages' links and cli.md's own list
    missing = [f"{page}: cli.md#{anchor}" for page, anchor in links if anchor not in commands_documented]
    assert not missing, missing
