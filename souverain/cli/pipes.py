"""`souverain pipes`: declare deployment routes as code, and see what they mean.

Its subcommands and their options are documented by their `help=` strings below;
`souverain pipes --help` and docs/cli.md print them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from souverain.errors import ConfigError


def _file(arg: str | None, *, optional: bool = False) -> str | None:
    if arg:
        return arg
    if os.environ.get("SOUVERAIN_PIPES"):
        return os.environ["SOUVERAIN_PIPES"]
    if Path("pipes.yaml").is_file():
        return "pipes.yaml"
    if optional:
        return None
    raise ConfigError("no pipes file: give FILE, set SOUVERAIN_PIPES, or create ./pipes.yaml (see examples/pipes/)")


def _analyse(args: argparse.Namespace, path: str | None):
    from souverain.sovereignty import analyse, load_pipes, templates_as_routes

    pipes = load_pipes(path, catalogue=not args.no_catalogue)
    if getattr(args, "catalogue", False):
        pipes = templates_as_routes(pipes)
    routes = getattr(args, "route", None) or None
    for name in routes or ():
        if name not in pipes.routes:
            raise ConfigError(f"{path}: no route {name!r} (routes: {', '.join(pipes.routes) or 'none'})")
    return pipes, analyse(pipes, min_confidence=args.min_confidence, routes=routes)


def cmd_check(args: argparse.Namespace) -> int:
    path = _file(args.file, optional=args.catalogue)
    pipes, analysis = _analyse(args, path)
    if args.json:
        import msgspec

        print(msgspec.json.format(msgspec.json.encode(analysis.profiles), indent=2).decode())
    else:
        where = path or "catalogue"
        print(
            f"{where}: {len(analysis.routes)} route(s); rules {pipes.rules.version}; minimum confidence {analysis.min_confidence}"
        )
        width = max((len(n) for n in analysis.routes), default=0)
        for name, r in analysis.routes.items():
            p = r.profile
            state = "breaks its requirements" if r.breaches else "ok"
            print(
                f"  {name:{width}}  {p.level_name + f' ({int(p.level)})':19}  non-EU access: {p.non_eu_access:8}  {state}"
            )
            if p.non_eu_access == "residual":  # contested: never a bare yes or no
                print(f"  {'':{width}}  residual: {p.non_eu_access_reason}")
            for breach in r.breaches:
                print(f"  {'':{width}}  - {breach}")
    return 1 if any(r.breaches for r in analysis.routes.values()) else 0


def cmd_report(args: argparse.Namespace) -> int:
    from souverain.sovereignty.report import to_json, to_markdown
    from souverain.sovereignty.report_html import to_html

    pipes, analysis = _analyse(args, _file(args.file, optional=args.catalogue))
    if args.format == "json":
        text = to_json(analysis)
    elif args.format == "html":
        text = to_html(analysis, pipes)
    else:
        text = to_markdown(analysis, pipes)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(analysis.routes)} route(s))", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    import msgspec

    from souverain.sovereignty import analyse, load_pipes
    from souverain.sovereignty.diff import diff, to_text

    analyses = []
    for path in (args.old, args.new):
        pipes = load_pipes(path, catalogue=not args.no_catalogue)
        analyses.append(analyse(pipes, min_confidence=args.min_confidence))
    result = diff(*analyses)
    if args.format == "json":
        print(msgspec.json.format(msgspec.json.encode(result), indent=2).decode())
    else:
        sys.stdout.write(to_text(result, markdown=args.format == "md"))
    return 1 if result.blocking else 0


def cmd_dora(args: argparse.Namespace) -> int:
    import msgspec

    from souverain.sovereignty.dora import TABLES, art30, art30_markdown, register, taxonomies

    default, layouts = taxonomies()
    if args.list_taxonomies:
        for name, layout in layouts.items():
            print(f"{name}{' (default)' if name == default else ''}: {layout.title}")
        return 0
    name = args.taxonomy or default
    if name not in layouts:
        raise ConfigError(f"unknown taxonomy {name!r}; known: {', '.join(layouts)}")
    pipes, analysis = _analyse(args, _file(args.file))
    reg = register(analysis, pipes, name)
    records = art30(analysis, pipes)
    outputs = {f"{t}.csv": reg.csv(t, layouts[name]) for t in TABLES}
    outputs["art30.md"] = art30_markdown(records)
    outputs["art30.json"] = msgspec.json.format(msgspec.json.encode(records), indent=2).decode() + "\n"
    if args.table:
        key = args.table if args.table.startswith("art30") else f"{args.table}.csv"
        sys.stdout.write(outputs["art30.md" if key == "art30" else key])
    else:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for filename, text in outputs.items():
            (out / filename).write_text(text, encoding="utf-8")
        print(f"wrote {', '.join(outputs)} to {out} (taxonomy {name})", file=sys.stderr)
    for gap in reg.gaps:
        print(f"gap: {gap}", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `souverain pipes ...` on the main parser's subcommands."""
    pipes = sub.add_parser(
        "pipes",
        help="analyse deployment routes (pipes as code)",
        description="Analyse deployment routes (pipes as code). FILE is the argument, else $SOUVERAIN_PIPES, "
        "else ./pipes.yaml. The shipped catalogue is loaded first unless --no-catalogue. "
        "Exit status 2 means the file itself is invalid.",
    )
    cmds = pipes.add_subparsers(dest="pipes_command", required=True)

    def common(p: argparse.ArgumentParser, file: bool = True) -> argparse.ArgumentParser:
        if file:
            p.add_argument("file", nargs="?", help="pipes file (default: $SOUVERAIN_PIPES or ./pipes.yaml)")
        p.add_argument("--no-catalogue", action="store_true", help="do not load the shipped catalogue")
        p.add_argument(
            "--min-confidence", choices=["asserted", "secondary", "verified"], help="facts below count as unknown"
        )
        return p

    check = common(cmds.add_parser("check", help="validate and analyse; exit 1 if a route breaks its requirements"))
    check.add_argument("--catalogue", action="store_true", help="analyse every catalogue template as a route")
    check.add_argument("--route", action="append", help="only this route (repeatable)")
    check.add_argument("--json", action="store_true", help="print the route profiles as JSON")
    check.set_defaults(func=cmd_check)

    report = common(cmds.add_parser("report", help="Markdown, JSON or HTML report, per route"))
    report.add_argument("--format", "-f", choices=["md", "json", "html"], default="md")
    report.add_argument("--output", "-o", help="write to this file instead of standard output")
    report.add_argument("--catalogue", action="store_true", help="analyse every catalogue template as a route")
    report.add_argument("--route", action="append", help="only this route (repeatable)")
    report.set_defaults(func=cmd_report)

    diff = common(
        cmds.add_parser("diff", help="what changed; exit 1 if a personal-data route lost sovereignty"), file=False
    )
    diff.add_argument("old", help="the pipes file before the change (/dev/null for none)")
    diff.add_argument("new", help="the pipes file after the change")
    diff.add_argument("--format", "-f", choices=["text", "md", "json"], default="text")
    diff.set_defaults(func=cmd_diff)

    dora = common(cmds.add_parser("dora", help="DORA Register of Information rows and GDPR Art. 30 records"))
    dora.add_argument("--taxonomy", help="column layout to pin (see --list-taxonomies)")
    dora.add_argument("--list-taxonomies", action="store_true")
    target = dora.add_mutually_exclusive_group()
    target.add_argument(
        "--out", default="dora-register", help="directory for the CSV and Art. 30 files (default: ./dora-register)"
    )
    tables = ["b_05.01", "b_05.02", "b_02.02", "art30"]
    target.add_argument(
        "--table",
        choices=tables,
        metavar="TABLE",
        help=f"print one table to standard output: {', '.join(tables[:-1])} or {tables[-1]}",
    )
    dora.set_defaults(func=cmd_dora)
