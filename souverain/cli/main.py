"""The `souverain` command: `build_parser()` is the whole command tree, `main()` runs it.

The commands are listed in one place only, the tree itself: each documents itself with its
`help=` strings, `souverain --help` and `souverain COMMAND --help` print them, and
docs/cli.md is generated from them (`python -m souverain.cli.reference > docs/cli.md`, or
`make docs`; tests/test_docs_cli.py fails when the two disagree). A command group in
another module registers itself here with its `add_parser(sub)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime

from souverain import __version__
from souverain.auth import SCOPES
from souverain.cli.help import finish
from souverain.cli.options import config_path, with_config
from souverain.errors import ConfigError
from souverain.state.migrate import StateError


def _load(arg: str | None):
    from souverain.config import load_config

    return load_config(config_path(arg))


def _keystore(config):
    from souverain.state import open_keys

    return open_keys(config)


def cmd_serve(args: argparse.Namespace) -> int:
    from souverain.cli.serve import serve

    config = _load(args.config)
    if args.host:
        config.server.host = args.host
    if args.port is not None:
        config.server.port = args.port
    if args.workers < 1:
        print("souverain: --workers must be at least 1", file=sys.stderr)
        return 2
    return serve(config, workers=args.workers)


def cmd_keys_create(args: argparse.Namespace) -> int:
    keys = _keystore(_load(args.config))
    token, info = keys.create(
        args.name, tenant=args.tenant, scopes=tuple(args.scope or ["inference"]), models=args.model
    )
    print(token)
    print(f"key id {info.id} ({', '.join(info.scopes)}); store the key now: it is not shown again.", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    keys = _keystore(_load(args.config)).list()
    if args.json:
        print(json.dumps([dataclasses.asdict(k) for k in keys], indent=2))
        return 0
    print(f"{'ID':12}  {'NAME':20}  {'TENANT':12}  {'SCOPES':17}  {'MODELS':20}  {'CREATED (UTC)':19}  STATUS")
    for k in keys:
        created = datetime.fromtimestamp(k.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        status = "revoked" if k.revoked_at else "active"
        models = ",".join(k.models) if k.models else "*"
        print(
            f"{k.id:12}  {k.name[:20]:20}  {k.tenant[:12]:12}  {','.join(k.scopes):17}  {models[:20]:20}  {created}  {status}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    if _keystore(_load(args.config)).revoke(args.key_id):
        print(f"revoked {args.key_id}")
        return 0
    print(f"souverain: no active key with id {args.key_id!r}", file=sys.stderr)
    return 1


def cmd_config_check(args: argparse.Namespace) -> int:
    from souverain.config import load_config

    config = load_config(args.file)
    print(f"{args.file}: valid ({len(config.models)} model(s); air gap {'on' if config.air_gap.enabled else 'off'})")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    from souverain.config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="souverain",
        description="A sovereign, self-hosted AI gateway.",
        epilog=(
            "Commands that take --config read the configuration file it names, else $SOUVERAIN_CONFIG, "
            "else ./souverain.yaml when it exists, else use the built-in defaults (the embedded model, air gap on). "
            "`souverain COMMAND --help` describes each command; all of them: docs/cli.md."
        ),
    )
    parser.add_argument("--version", action="version", version=f"souverain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = with_config(sub.add_parser("serve", help="run the gateway"))
    serve.add_argument("--host", help="address to listen on (overrides server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (overrides server.port; 0 picks a free one)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="gateway processes accepting on the one port (default 1); they share the engine workers",
    )
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = with_config(keys.add_parser("create", help="create a key and print it once"))
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--tenant", default="default")
    create.add_argument("--scope", action="append", choices=list(SCOPES), help="repeatable; default inference")
    create.add_argument("--model", action="append", help="limit the key to this model (repeatable); default all")
    create.set_defaults(func=cmd_keys_create)
    listing = with_config(keys.add_parser("list", help="list keys (never their secrets)"))
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_keys_list)
    revoke = with_config(
        keys.add_parser(
            "revoke",
            help="revoke a key by id; refused from the next request on (replicas on PostgreSQL: within state.key_cache_s)",
        )
    )
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys_revoke)

    config = sub.add_parser("config", help="check configuration").add_subparsers(dest="config_command", required=True)
    check = config.add_parser("check", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)
    schema = config.add_parser("schema", help="print the configuration's JSON Schema")
    schema.set_defaults(func=cmd_config_schema)
    from souverain.cli.privacy import add_parser as add_privacy_parser

    add_privacy_parser(sub)
    from souverain.cli.pipes import add_parser as add_pipes_parser

    add_pipes_parser(sub)
    from souverain.cli.ledger import add_parser as add_ledger_parser
    from souverain.cli.ledger import add_witness_parser

    add_ledger_parser(sub)
    add_witness_parser(sub)
    from souverain.cli.usage import add_parser as add_usage_parser

    add_usage_parser(sub)
    return finish(parser)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"souverain: configuration error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError, StateError) as exc:
        print(f"souverain: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
