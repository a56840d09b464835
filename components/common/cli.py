"""Pieces every stage's CLI subcommand shares: the --config/--set options and the exit protocol."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from components.common import storage
from components.common.config import RunConfig, load_config
from components.common.report import StageReport


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML run config (see configs/); defaults apply where it is silent")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value by its dotted path, e.g. --set split.seed=7 (repeatable)")


def add_folder_arg(parser: argparse.ArgumentParser, flag: str, help: str, required: bool = False,
                   old: tuple[str, ...] = ()) -> None:
    """A stage folder under its one spelling on every command (--data-dir: a split output, --model-dir: a train
    output, --gguf-dir: a gguf output, --output-dir: where this command writes). `old` spellings still work and
    are left out of --help."""
    dest = flag.removeprefix("--").replace("-", "_")
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(flag, dest=dest, help=help)
    for alias in old:
        group.add_argument(alias, dest=dest, help=argparse.SUPPRESS)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run config, whose storage settings (timeouts, retries, endpoint) this process then uses."""
    cfg = load_config(args.config, args.overrides)
    storage.configure(cfg.storage)
    return cfg


def finish(report: StageReport | dict[str, Any]) -> int:
    """Prints the report as JSON on stdout; exit 0 when the gate passed, 1 with its reasons on stderr when not."""
    data = report.to_dict() if isinstance(report, StageReport) else report
    print(json.dumps(data, ensure_ascii=False, indent=2))
    if data.get("passed", True):
        return 0
    for reason in data.get("reasons", []):
        print(f"gate failed: {data.get('stage')}: {reason}", file=sys.stderr)
    return 1
