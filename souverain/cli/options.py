"""Options shared by the `souverain` subcommands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add `--config`: the gateway's configuration file, found as `souverain serve` finds it."""
    parser.add_argument("--config", "-c", help="configuration file (default: $SOUVERAIN_CONFIG or ./souverain.yaml)")
    return parser


def config_path(arg: str | None) -> str | None:
    """The file `--config` names, else $SOUVERAIN_CONFIG, else ./souverain.yaml when it
    exists; None: the built-in defaults."""
    if arg:
        return arg
    if os.environ.get("SOUVERAIN_CONFIG"):
        return os.environ["SOUVERAIN_CONFIG"]
    return "souverain.yaml" if Path("souverain.yaml").is_file() else None
