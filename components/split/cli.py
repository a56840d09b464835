"""`finegate split --input kept.jsonl --output-dir DIR [--config FILE] [--set k=v ...]`

    finegate split --input runs/demo/clean/kept.jsonl --output-dir runs/demo/split
    finegate split --input s3://bucket/run/clean/kept.jsonl --output-dir runs/x/split --set split.ratios=80/20

Exit codes: 0 split written and leak check passed, 1 leak check failed (pairs on stderr),
2 bad input or configuration (e.g. a split smaller than split.min_<name>).
"""

from __future__ import annotations

import argparse

from components.common.cli import add_config_args, config_from_args, finish


def register(subparsers) -> None:
    parser = subparsers.add_parser("split", help="split kept.jsonl into train/val/test with a leak check",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="kept.jsonl from clean: a local path or an s3:// URI")
    parser.add_argument("--output-dir", required=True, help="where train.jsonl, val.jsonl, test.jsonl and report.json go")
    add_config_args(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from components.split.core import run_split

    return finish(run_split(args.input, args.output_dir, config_from_args(args)))
