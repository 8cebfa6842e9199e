"""`souverain usage`: what was used and what it cost, from the usage roll-up of the state
the configuration names (docs/usage.md, "Reading the usage")."""

from __future__ import annotations

import argparse
import sys

from souverain.cli.options import config_path, with_config


def cmd_usage(args: argparse.Namespace) -> int:
    from souverain.config import load_config
    from souverain.state import state_dir, usage_db
    from souverain.usage.report import Query, QueryError, render

    config = load_config(config_path(args.config))
    try:
        query = Query.parse(args.by, args.since, args.until, args.tenant, args.format)
    except QueryError as exc:
        print(f"souverain: {exc}", file=sys.stderr)
        return 2
    db = usage_db(config, state_dir(config))()
    try:
        sys.stdout.write(render(query, query.run(db), config.usage.currency))
    finally:
        db.close()
    return 0


def cmd_costs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from souverain.config import load_config
    from souverain.ledger.store import open_store
    from souverain.state import state_dir, usage_db
    from souverain.usage.costs import CostQuery, render
    from souverain.usage.report import QueryError

    config = load_config(config_path(getattr(args, "config", None)))
    try:
        query = CostQuery.parse(args.since, args.until, args.route, args.against, args.format)
        query.routes(config.usage)  # names checked before any database is opened
    except QueryError as exc:
        print(f"souverain: {exc}", file=sys.stderr)
        return 2
    directory = state_dir(config)
    ledger = config.ledger
    db = usage_db(config, directory)()
    try:
        result = query.run(config.usage, db, (lambda: open_store(ledger.store, directory)) if ledger.enabled else None)
    finally:
        db.close()
    text = render(result, query.format)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"souverain: {args.output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    usage = with_config(
        sub.add_parser(
            "usage",
            help="totals of requests, tokens and cost (or FOCUS 1.2 CSV)",
            description="Totals from the daily usage roll-up: requests, refused requests, tokens and cost, "
            "grouped as --by says. --format csv gives every combination per day in FinOps FOCUS 1.2 columns.",
        )
    )
    usage.add_argument(
        "--by",
        default="tenant",
        help="group by these, comma-separated: day, tenant, key, cost_centre, model, route, data_class "
        "(default: tenant)",
    )
    usage.add_argument("--since", help="first day, YYYY-MM-DD (UTC)")
    usage.add_argument("--until", help="last day, YYYY-MM-DD (UTC), included")
    usage.add_argument("--tenant", help="only this tenant")
    usage.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output (default: table)")
    usage.set_defaults(func=cmd_usage)
    commands = usage.add_subparsers(title="commands", dest="usage_command", metavar="COMMAND")
    costs = commands.add_parser(
        "costs",
        help="the cost case: self-hosted against API routes, break-even, utilisation",
        description="For the traffic of a period (the usage records): what the self-hosted routes cost "
        "(usage.self_hosted), what the same tokens would have cost on each API route of usage.prices, the "
        "monthly volume at which both cost the same, and the cost per million tokens by utilisation. "
        "A route's throughput is its tokens_per_second, else measured from the ledger over the period.",
    )
    _config_option(costs)
    costs.add_argument("--since", help="first day, YYYY-MM-DD (UTC; default: 29 days before --until)")
    costs.add_argument("--until", help="last day, YYYY-MM-DD (UTC), included (default: today)")
    costs.add_argument("--route", help="only this self-hosted route")
    costs.add_argument("--against", help="only this API route")
    costs.add_argument(
        "--format",
        choices=["table", "json", "html"],
        default="table",
        help="output (default: table); html is one self-contained page with a chart",
    )
    costs.add_argument("-o", "--output", help="write to this file instead of standard output")
    costs.set_defaults(func=cmd_costs)
    add_prune_parser(commands)


def cmd_usage_prune(args: argparse.Namespace) -> int:
    import time

    from souverain.config import load_config
    from souverain.state import state_dir, usage_db
    from souverain.usage.store import day_iso

    config = load_config(config_path(args.config))
    days = config.usage.retention_days
    if days is None:
        print("souverain: usage.retention_days is not set: every usage row is kept, nothing to prune")
        return 0
    db = usage_db(config, state_dir(config))()
    try:
        pruned = db.prune(days, time.time(), fed_by_ledger=config.ledger.enabled)
    finally:
        db.close()
    if pruned.rows or pruned.partitions:
        dropped = f", partitions dropped: {', '.join(pruned.partitions)}" if pruned.partitions else ""
        print(
            f"removed the usage rows of the days before {day_iso(pruned.before)}: {pruned.rows} rows deleted{dropped}; "
            "the daily totals `souverain usage` reads are kept"
        )
    else:
        print("nothing removed: no usage rows older than the retention")
    if pruned.held_back:
        print(
            "(kept rows the retention lets go: the usage writer has not yet given every older ledger entry its row; "
            "the gateway does so as it runs, and prunes every hour)"
        )
    return 0


def add_prune_parser(commands: argparse._SubParsersAction) -> None:
    prune = commands.add_parser(
        "prune",
        help="remove the per-request rows older than usage.retention_days (daily totals stay)",
        description="Remove the usage rows of every whole UTC month that ended more than usage.retention_days "
        "ago (PostgreSQL: drops its partition), as the gateway's usage writer does every hour. The daily totals "
        "that `souverain usage` reads, and the ledger, are kept.",
    )
    _config_option(prune)
    prune.set_defaults(func=cmd_usage_prune)


def _config_option(command: argparse.ArgumentParser) -> None:
    """A subcommand's own --config. SUPPRESS: `souverain usage --config F costs` keeps F
    (a default here would replace it)."""
    command.add_argument(
        "--config",
        "-c",
        default=argparse.SUPPRESS,
        help="configuration file (default: $SOUVERAIN_CONFIG or ./souverain.yaml)",
    )
