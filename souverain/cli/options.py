"""Options shared by the `souverain` subcommands."""

from __future__ import annotations

import argparse


def with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add `--config`: the gateway's configuration file, found as `souverain serve` finds it."""
    parser.add_argument("--config", "-c", help="configuration file (default: $SOUVERAIN_CONFIG or ./souverain.yaml)")
    return parser
