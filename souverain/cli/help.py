"""How every `souverain` command prints its `--help`: one formatter, one walk over the tree.

`finish(parser)` is called once on the whole command tree (`cli/main.py`), so a command
added anywhere in `souverain/cli/` gets the same treatment without doing anything:

- its one-line `help=` (what the parent lists) becomes its description when it has none,
  so `souverain keys create --help` says what the command does;
- it prints options the way Python 3.13 and later do on every supported Python
  (`-c, --config CONFIG`, not `-c CONFIG, --config CONFIG` before 3.13), so the help text,
  and docs/cli.md generated from it (`cli/reference.py`), do not depend on the version
  (a command that sets a formatter of its own keeps it).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator


class Formatter(argparse.HelpFormatter):
    """argparse's formatter, with an option's metavar shown once, after its last flag."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        args = self._format_args(action, self._get_default_metavar_for_optional(action))
        return ", ".join(action.option_strings) + " " + args


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    """Every command under `parser`, itself first, depth first in the order they were
    added: (the words after `souverain`, its parser, the one-line help its parent lists)."""
    yield from _walk(parser, path, None)


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...], summary: str | None
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    yield path, parser, summary
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        summaries = {choice.dest: choice.help for choice in action._choices_actions}
        seen: set[int] = set()
        for name, sub in action.choices.items():
            if id(sub) in seen:  # an alias of a command already listed
                continue
            seen.add(id(sub))
            yield from _walk(sub, (*path, name), summaries.get(name))


def finish(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every command in the tree the shared formatter and a description."""
    for _, command, summary in commands(parser):
        if command.formatter_class is argparse.HelpFormatter:  # one that chose its own keeps it
            command.formatter_class = Formatter
        if command.description is None and summary:
            command.description = summary[0].upper() + summary[1:] + ("" if summary.endswith(".") else ".")
    return parser
