"""`souverain ledger ...` and `souverain witness ...`: the command-line side of the ledger.

    souverain ledger export DIR                 the log as tlog-tiles static files
    souverain ledger verify [DIR]               offline check of an export, or of the store
        [--vkey VKEY|FILE] [--witness VKEY|FILE ...] [--quorum K]
        [--checkpoint FILE ...] [--each] [--json]
    souverain ledger shred TENANT [--yes]       crypto-shred a tenant's retained content
    souverain ledger key                        print the log's verifier key
    souverain witness serve --name NAME --log VKEY [...] [--state DIR] [--host H] [--port P]
    souverain witness key --name NAME [--state DIR]

`add_parser(sub)` and `add_witness_parser(sub)` register these on the main parser's
subcommands; each handler returns the exit status: 0 fine, 1 problems found, 2 unusable
input. The configuration is found as for `souverain serve` (--config, $SOUVERAIN_CONFIG,
./souverain.yaml); the ledger section is `ledger:`, defaults when absent.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from souverain.cli.options import config_path, with_config
from souverain.ledger.config import LedgerConfig
from souverain.ledger.note import CosignatureVerifier, Ed25519Verifier, NoteError, verifier_from_vkey

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def load(args: argparse.Namespace) -> tuple[LedgerConfig, Path]:
    """The ledger section of the configuration and the state directory."""
    from souverain.config import load_config
    from souverain.state import state_dir

    config = load_config(config_path(getattr(args, "config", None)))
    ledger = getattr(config, "ledger", None) or LedgerConfig()
    return ledger, state_dir(config)


def _vkey_arg(value: str) -> str:
    """A verifier key given inline or as a file holding it."""
    path = Path(value)
    if "+" not in value or path.is_file():
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{value}: not a verifier key, and cannot read it as a file: {exc.strerror}") from None
    return value.strip()


def _checkpoint_file(path: Path) -> str:
    """A checkpoint, or the checkpoint inside a tlog-proof receipt."""
    from souverain.ledger.checkpoint import PROOF_HEADER, Receipt

    text = path.read_text(encoding="utf-8")
    return Receipt.parse(text).checkpoint if text.startswith(PROOF_HEADER) else text


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Any]:
    """A rich progress bar on a terminal; nothing otherwise (CI logs, pipes, --json)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),  # stdout stays clean for the report (and --json)
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


# -- ledger ---------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from souverain.ledger.export import export_log
    from souverain.ledger.store import open_store

    config, base = load(args)
    store = open_store(config.store, base)
    try:
        with _progress(not args.quiet, "exporting") as progress:
            report = export_log(store, args.dir, vkey=store.get_meta("vkey"), progress=progress)
    finally:
        store.close()
    print(
        f"exported tree size {report.size} to {args.dir}: {report.tiles} tile(s) and {report.bundles} entry "
        f"bundle(s) written, {report.checkpoints} checkpoint(s)"
    )
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from souverain.ledger.verify import DirectorySource, StoreSource, verify

    store = None
    warnings = []
    if args.dir:
        source: Any = DirectorySource(args.dir)
        if not Path(args.dir, "checkpoint").is_file():
            print(f"souverain: {args.dir} has no checkpoint file: not a ledger export", file=sys.stderr)
            return EXIT_USAGE
        recorded = Path(args.dir, "vkey")
        origin = None
        if not args.vkey and recorded.is_file():
            args.vkey = recorded.read_text().strip()
            warnings.append(f"no --vkey given: trusting the key in {recorded}, which whoever wrote the directory chose")
    else:
        from souverain.ledger.store import open_store

        config, base = load(args)
        store = open_store(config.store, base)
        source = StoreSource(store)
        origin = config.origin
        if not args.vkey:
            args.vkey = store.get_meta("vkey")
            warnings.append("no --vkey given: trusting the key recorded in the store")
        if not args.witness:
            args.witness = [w.vkey for w in config.witnesses]
    try:
        if not args.vkey:
            print("souverain: no verifier key: pass --vkey", file=sys.stderr)
            return EXIT_USAGE
        log = verifier_from_vkey(_vkey_arg(args.vkey))
        witnesses = [verifier_from_vkey(_vkey_arg(w)) for w in args.witness or []]
        if not isinstance(log, Ed25519Verifier) or not all(isinstance(w, CosignatureVerifier) for w in witnesses):
            print("souverain: --vkey must be a log key (type 0x01), --witness cosigner keys (0x04)", file=sys.stderr)
            return EXIT_USAGE
        extra = [(str(p), _checkpoint_file(Path(p))) for p in args.checkpoint or []]
        with _progress(not args.json, "verifying") as progress:
            report = verify(
                source,
                log,
                origin=origin,
                witnesses=witnesses,
                quorum=args.quorum,
                extra_checkpoints=extra,
                each=args.each,
                progress=progress,
            )
    except (NoteError, ValueError, OSError) as exc:
        print(f"souverain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if store is not None:
            store.close()
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "tree_size": report.size,
                    "entries": report.entries,
                    "checkpoints": report.checkpoints,
                    "cosigned": report.cosigned,
                    "problems": [{"kind": p.kind, "index": p.index, "message": p.message} for p in report.problems],
                    "notes": report.notes + warnings,
                },
                indent=2,
            )
        )
        return EXIT_OK if report.ok else EXIT_PROBLEMS
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"log {log.name} ({log.vkey})")
    print(f"checkpoints: {report.checkpoints} with a valid log signature; latest tree size {report.size}")
    for name, count in sorted(report.cosigned.items()):
        print(f"witness {name}: cosigned {count} checkpoint(s)")
    print(f"entries: {report.entries} read and rehashed")
    for note in report.notes:
        print(f"note: {note}")
    if report.ok:
        print(f"OK: every entry is included in checkpoint {report.size}; all checkpoints are consistent")
        return EXIT_OK
    print(f"FAILED: {len(report.problems)} problem(s)")
    for p in report.problems:
        where = (
            f"entry {p.index}: "
            if p.index is not None and p.kind in ("modified", "deleted", "inserted", "reordered")
            else ""
        )
        print(f"  [{p.kind}] {where}{p.message}")
    return EXIT_PROBLEMS


def cmd_shred(args: argparse.Namespace) -> int:
    from souverain.keys.config import open_provider
    from souverain.ledger.ledger import shred_tenant
    from souverain.ledger.store import open_store

    if not args.yes:
        if not sys.stdin.isatty():
            print("souverain: shredding cannot be undone; pass --yes to confirm", file=sys.stderr)
            return EXIT_USAGE
        answer = input(f"Destroy tenant {args.tenant!r}'s keys and retained content for good? Type the tenant name: ")
        if answer.strip() != args.tenant:
            print("not confirmed; nothing changed", file=sys.stderr)
            return EXIT_USAGE
    config, base = load(args)
    provider = open_provider(config.keys, base)
    store = open_store(config.store, base)
    try:
        report = shred_tenant(provider, store, args.tenant)
    finally:
        store.close()
        provider.close()
    if report.destroyed_keys:
        print(
            f"shredded tenant {args.tenant!r}: destroyed {len(report.destroyed_keys)} key(s); "
            "its retained content is unreadable for good"
        )
    else:
        print(f"tenant {args.tenant!r} has no keys left to destroy (never used, or already shredded)")
    return EXIT_OK


def cmd_key(args: argparse.Namespace) -> int:
    from souverain.keys.config import open_provider
    from souverain.ledger.note import Ed25519Signer

    config, base = load(args)
    provider = open_provider(config.keys, base)
    try:
        key = provider.signing_key(config.signing_key, create=True)
        print(Ed25519Signer(config.origin, key.public_key, key.sign).vkey)
    finally:
        provider.close()
    return EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `ledger export|verify|shred|key` on the main parser's subcommands."""
    parser = sub.add_parser("ledger", help="tamper-evident ledger: export, verify, shred")
    commands = parser.add_subparsers(dest="ledger_command", required=True)

    export = with_config(commands.add_parser("export", help="write the log as C2SP tlog-tiles static files"))
    export.add_argument("dir", help="directory to write (created; an earlier export there is brought up to date)")
    export.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    export.set_defaults(func=cmd_export)

    verify = with_config(commands.add_parser("verify", help="check a log offline: signatures, inclusion, consistency"))
    verify.add_argument("dir", nargs="?", help="an exported directory; omitted: the configured store")
    verify.add_argument("--vkey", help="the log's verifier key, or a file holding it")
    verify.add_argument("--witness", action="append", help="a witness's cosigner key or file (repeatable)")
    verify.add_argument("--quorum", type=int, default=0, help="witness cosignatures the latest checkpoint needs")
    verify.add_argument(
        "--checkpoint", action="append", help="a checkpoint or tlog-proof receipt obtained elsewhere (repeatable)"
    )
    verify.add_argument("--each", action="store_true", help="also verify an inclusion proof per entry (slower)")
    verify.add_argument("--json", action="store_true", help="machine-readable report")
    verify.set_defaults(func=cmd_verify)

    shred = with_config(
        commands.add_parser("shred", help="destroy a tenant's keys: its retained content is gone for good")
    )
    shred.add_argument("tenant")
    shred.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    shred.set_defaults(func=cmd_shred)

    key = with_config(commands.add_parser("key", help="print the log's verifier key (give it to auditors)"))
    key.set_defaults(func=cmd_key)
    return parser


# -- witness --------------------------------------------------------------------------------


def _cosigner(args: argparse.Namespace) -> Any:
    from souverain.keys.config import FileKeys, Pkcs11Keys, open_provider
    from souverain.ledger.note import CosignatureSigner

    state = Path(args.state)
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    if args.pkcs11_module:
        keys: Any = Pkcs11Keys(module=args.pkcs11_module, token_label=args.token_label, pin_env=args.pin_env)
    else:
        keys = FileKeys(path="keys")
    provider = open_provider(keys, state)
    key = provider.signing_key(args.key_name, create=True)
    return provider, CosignatureSigner(args.name, key.public_key, key.sign)


def cmd_witness_key(args: argparse.Namespace) -> int:
    provider, signer = _cosigner(args)
    provider.close()
    print(signer.vkey)
    return EXIT_OK


def cmd_witness_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from souverain.ledger.witness import Witness, create_witness_app

    logs: dict[str, list[Any]] = {}
    for value in args.log:
        verifier = verifier_from_vkey(_vkey_arg(value))
        if not isinstance(verifier, Ed25519Verifier):
            print(f"souverain: --log {value}: not an Ed25519 log key", file=sys.stderr)
            return EXIT_USAGE
        logs.setdefault(verifier.name, []).append(verifier)
    provider, signer = _cosigner(args)
    witness = Witness(signer, logs, Path(args.state) / "witness.db")
    print(f"souverain witness {signer.name}: cosigner key {signer.vkey}", flush=True)
    print(f"souverain witness: logs {', '.join(sorted(logs))}; listening on http://{args.host}:{args.port}", flush=True)
    try:
        uvicorn.run(create_witness_app(witness), host=args.host, port=args.port, log_level="warning")
    finally:
        witness.close()
        provider.close()
    return EXIT_OK


def add_witness_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `witness serve|key` on the main parser's subcommands."""
    parser = sub.add_parser("witness", help="a C2SP tlog-witness that cosigns a log's checkpoints")
    commands = parser.add_subparsers(dest="witness_command", required=True)

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--name", required=True, help="the witness's name, e.g. witness.example.org/w1")
        p.add_argument("--state", default=".souverain-witness", help="directory for state and (file) keys")
        p.add_argument(
            "--key-name", default="souverain-witness-cosigner", help="the cosigner key's name in the provider"
        )
        p.add_argument("--pkcs11-module", help="keep the cosigner key in an HSM: its PKCS#11 module")
        p.add_argument("--token-label", default="souverain")
        p.add_argument("--pin-env", default="SOUVERAIN_HSM_PIN", help="environment variable holding the HSM PIN")
        return p

    serve = common(commands.add_parser("serve", help="run the witness (POST /add-checkpoint)"))
    serve.add_argument("--log", action="append", required=True, help="a log's verifier key or file (repeatable)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    serve.set_defaults(func=cmd_witness_serve)

    key = common(commands.add_parser("key", help="print the witness's cosigner verifier key"))
    key.set_defaults(func=cmd_witness_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m souverain.ledger ledger|witness ...`: the same commands without the rest of
    the gateway's CLI (for auditors' machines, and until they are wired into `souverain`)."""
    from souverain.errors import ConfigError

    parser = argparse.ArgumentParser(prog="python -m souverain.ledger")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    add_witness_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"souverain: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"souverain: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
