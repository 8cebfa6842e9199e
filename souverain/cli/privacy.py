"""`souverain privacy`: check text before it is sent anywhere.

Its subcommands and their options are documented by their `help=` strings below;
`souverain privacy --help` and docs/cli.md print them.

Findings are printed as JSON: type, category, offsets, validator and confidence, plus a
summary (data class, counts per type). Values are never printed unless --values is given.
The settings (allow and deny lists, thresholds, dictionaries) are the gateway's: the
`privacy:` section of its configuration file (--config, found as `souverain serve` finds
it), for the tenant --tenant names; so a document is checked exactly as the gateway would
check it for that tenant. A file holding only the settings themselves, with no
`privacy:` key above them, is read as those settings (see docs/privacy.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from souverain.cli.options import config_path, with_config

EXIT_FOUND = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    privacy = sub.add_parser(
        "privacy",
        help="find personal data in text or requests",
        description="Find personal data in text, or in a chat completion request (JSON), as the gateway would "
        "for a tenant: the settings are the privacy: section of the gateway's configuration. Findings never "
        "show the values found unless scan --values asks for them.",
    ).add_subparsers(dest="privacy_command", required=True)

    scan = privacy.add_parser("scan", help="print findings as JSON (never values, unless --values)")
    _common(scan)
    scan.add_argument(
        "--jsonl",
        action="store_true",
        help="input is JSON Lines; scan each object's text field, print one line of findings per line",
    )
    scan.add_argument("--field", default="text", help="with --jsonl: the field to scan (default: text)")
    scan.add_argument("--values", action="store_true", help="include the matched values in the output")
    scan.add_argument("--exit-code", action="store_true", help=f"exit with status {EXIT_FOUND} when anything is found")
    scan.set_defaults(func=cmd_scan)

    apply = privacy.add_parser("apply", help="print the input with personal data masked, redacted or hashed")
    _common(apply)
    apply.add_argument("--action", choices=["mask", "redact", "hash"], default="redact")
    apply.add_argument(
        "--key-env", default="SOUVERAIN_PRIVACY_KEY", help="environment variable holding the HMAC key for --action hash"
    )
    apply.set_defaults(func=cmd_apply)

    types = privacy.add_parser("types", help="list the detected types and their data classes")
    types.set_defaults(func=cmd_types)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", help="files to read (default: standard input)")
    with_config(p)
    p.add_argument("--tenant", help="use this tenant's settings (privacy.tenants); default: the default settings")
    p.add_argument("--threshold", type=float, help="minimum confidence (overrides the config)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument(
        "--text", dest="kind", action="store_const", const="text", help="treat the input as text, even if it is JSON"
    )
    kind.add_argument(
        "--request",
        dest="kind",
        action="store_const",
        const="request",
        help="the input is a chat completion request (JSON); default: detected",
    )


def _scanner(args: argparse.Namespace) -> Any:
    import dataclasses

    from souverain.privacy import Scanner

    config = _settings(args)
    if args.threshold is not None:
        if not 0.0 <= args.threshold <= 1.0:
            raise ValueError("--threshold must be between 0 and 1")
        config = dataclasses.replace(config, threshold=args.threshold)
    return Scanner(config)


def _settings(args: argparse.Namespace) -> Any:
    """The `ScannerConfig` the gateway applies to --tenant, from the configuration file."""
    import yaml

    from souverain.config import load_config
    from souverain.privacy import ScannerConfig
    from souverain.privacy import load_config as load_settings
    from souverain.privacy.config import SETTINGS, scanner_configs

    path = config_path(args.config)
    if path is None:
        return ScannerConfig()
    try:
        top = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        top = None  # the gateway's loader says what is wrong, with the line
    if isinstance(top, dict) and top and set(top) <= set(SETTINGS):
        if args.tenant:
            raise ValueError(
                f"{path} holds privacy settings only, with no tenants; --tenant needs the gateway's configuration"
            )
        return load_settings(path)
    privacy = load_config(path).privacy
    try:
        default, tenants = scanner_configs(privacy)
    except ValueError as exc:  # the loader checked the files; one changed since
        raise ValueError(f"{path}: privacy.{exc}") from None
    if args.tenant and args.tenant not in tenants:
        print(
            f"souverain: tenant {args.tenant!r} has no privacy settings of its own in {path}; "
            "using the default settings, as the gateway does",
            file=sys.stderr,
        )
    return tenants.get(args.tenant, default) if args.tenant else default


def _sources(files: list[str]) -> Iterator[tuple[str, TextIO]]:
    if not files:
        yield "-", sys.stdin
        return
    for name in files:
        if name == "-":
            yield "-", sys.stdin
        else:
            with open(name, encoding="utf-8") as f:
                yield name, f


def _as_request(text: str, kind: str | None) -> Any:
    """The chat request in `text`, or None when it should be scanned as plain text."""
    if kind == "text":
        return None
    stripped = text.lstrip()
    if kind is None and not stripped.startswith("{"):
        return None
    try:
        body = json.loads(text)
    except ValueError:
        if kind == "request":
            raise ValueError("input is not valid JSON") from None
        return None
    if isinstance(body, dict) and isinstance(body.get("messages"), list):
        return body
    if kind == "request":
        raise ValueError('a request is a JSON object with a "messages" list')
    return None


def _report(scanner: Any, text: str, kind: str | None, values: bool) -> tuple[str, list[Any], dict[str, Any]]:
    request = _as_request(text, kind)
    findings = scanner.scan_request(request) if request is not None else scanner.scan(text)
    return (
        "request" if request is not None else "text",
        [f.to_dict(include_value=values) for f in findings],
        scanner.classify(findings).to_dict(),
    )


def cmd_scan(args: argparse.Namespace) -> int:
    scanner = _scanner(args)
    found = False
    if args.jsonl:
        return _scan_jsonl(args, scanner)
    results = []
    for name, stream in _sources(args.files):
        kind, findings, summary = _report(scanner, stream.read(), args.kind, args.values)
        found = found or bool(findings)
        results.append({"source": name, "kind": kind, "findings": findings, "summary": summary})
    out = results[0] if len(results) == 1 else results
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return EXIT_FOUND if args.exit_code and found else 0


def _scan_jsonl(args: argparse.Namespace, scanner: Any) -> int:
    found = False
    write = sys.stdout.write
    for _, stream in _sources(args.files):
        for n, line in enumerate(stream, 1):
            out: dict[str, Any] = {"line": n}
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict) or not isinstance(obj.get(args.field), str):
                    raise ValueError(f'not a JSON object with a string "{args.field}" field')
            except ValueError as exc:
                out["error"] = str(exc)
            else:
                if "id" in obj:
                    out["id"] = obj["id"]
                findings = scanner.scan(obj[args.field])
                found = found or bool(findings)
                out["findings"] = [f.to_dict(include_value=args.values) for f in findings]
                out["summary"] = scanner.classify(findings).to_dict()
            write(json.dumps(out, ensure_ascii=False) + "\n")
    return EXIT_FOUND if args.exit_code and found else 0


def cmd_apply(args: argparse.Namespace) -> int:
    from souverain.privacy import actions

    scanner = _scanner(args)
    key = os.environ.get(args.key_env, "").encode()
    if args.action == "hash" and not key:
        raise ValueError(f"--action hash needs a key in ${args.key_env}")
    for _, stream in _sources(args.files):
        text = stream.read()
        request = _as_request(text, args.kind)
        if request is not None:
            json.dump(actions.apply(request, args.action, scanner, key=key), sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
            continue
        findings = scanner.scan(text)
        if args.action == "mask":
            sys.stdout.write(actions.mask(text, findings))
        elif args.action == "redact":
            sys.stdout.write(actions.redact(text, findings))
        else:
            sys.stdout.write(actions.hash_values(text, findings, key))
    return 0


def cmd_types(args: argparse.Namespace) -> int:
    from souverain.privacy import TYPES

    width = max(len(t) for t in TYPES)
    for name, info in TYPES.items():
        print(f"{name:{width}}  {info.category:12}  {str(info.data_class):12}  {info.description}")
    return 0
