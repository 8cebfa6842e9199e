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
