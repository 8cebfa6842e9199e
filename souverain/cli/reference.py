"""docs/cli.md, generated from the commands' own `--help`.

    python -m souverain.cli.reference --write     rewrite docs/cli.md (what `make docs` runs)
    python -m souverain.cli.reference --check     exit 1 if docs/cli.md is out of date
    python -m souverain.cli.reference             print it

Every command and subcommand, in the order `build_parser()` adds them, with exactly what
`souverain ... --help` prints in an 80-column terminal, colour off. The text comes from the
parsers and nowhere else, so a command is documented by writing its `help=` strings;
tests/test_docs_cli.py fails when docs/cli.md and the parsers disagree.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from souverain.cli.help import commands

COLUMNS = 80
DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
REGENERATE = "python -m souverain.cli.reference --write"


@contextmanager
def _columns(n: int) -> Iterator[None]:
    """argparse wraps to the terminal's width, which $COLUMNS overrides (shutil.get_terminal_size)."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(n)
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def help_text(parser: argparse.ArgumentParser) -> str:
    """`parser`'s `--help`, as printed in an 80-column terminal, without colour."""
    if hasattr(parser, "color"):  # Python 3.14 colours help on a terminal
        parser.color = False
    with _columns(COLUMNS):
        return parser.format_help()


def _anchor(path: tuple[str, ...]) -> str:
    return "-".join(("souverain", *path))


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole of docs/cli.md."""
    if parser is None:
        from souverain.cli.main import build_parser

        parser = build_parser()
    tree = list(commands(parser))
    out = [
        "# Command-line reference",
        "",
        f"<!-- Generated from the commands' own --help by `{REGENERATE}` (or `make docs`);",
        "     do not edit by hand: tests/test_docs_cli.py fails when this file and the commands disagree. -->",
        "",
        "Every `souverain` command and what its `--help` prints (in an 80-column terminal). The",
        "configuration file the commands read is described in [configuration.md](configuration.md).",
        "",
    ]
    for path, _, summary in tree[1:]:
        indent = "  " * (len(path) - 1)
        out.append(f"{indent}- [`souverain {' '.join(path)}`](#{_anchor(path)}): {summary or ''}".rstrip())
    for path, command, _ in tree:
        out += ["", f"{'#' * min(2 + len(path), 4)} `{' '.join(('souverain', *path))}`", "", "```text"]
        out.append(help_text(command).rstrip("\n"))
        out.append("```")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m souverain.cli.reference", description="docs/cli.md, generated from the commands' own --help."
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"rewrite {DOC.name} in the checkout's docs/")
    action.add_argument("--check", action="store_true", help=f"exit 1 if {DOC.name} differs from the commands' help")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOC.write_text(text, encoding="utf-8")
    elif args.check:
        if not DOC.is_file() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date with the commands' --help; run: {REGENERATE}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
