"""`finegate clean --input PATH_OR_S3_URI --output-dir DIR [--config FILE] [--set k=v ...]`

    finegate clean --input data/sample/note_titles.jsonl --output-dir runs/demo/clean
    finegate clean --input s3://raw/notes.parquet --output-dir s3://runs/demo/clean --set clean.near_duplicates.threshold=0.9
    finegate clean --input titles.csv --output-dir out --set data.column_mapping.prompt=body --set data.column_mapping.completion=title

Writes kept.jsonl, rejected.jsonl, report.json and clean_rules.png into DIR (local or s3://).
Exit codes: 0 gate 0 passed, 1 gate 0 failed (reasons on stderr), 2 bad input or configuration
(missing file, unknown format, unreachable S3 object).
"""

from __future__ import annotations

import argparse

from components.common.cli import add_config_args, config_from_args, finish


def register(subparsers) -> None:
    parser = subparsers.add_parser("clean", help="reject contaminated, malformed and duplicate rows (gate 0)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="raw data: a JSONL, CSV or Parquet file, local or s3:// (default: data.input)")
    parser.add_argument("--output-dir", required=True, help="where kept.jsonl, rejected.jsonl and report.json go (local or s3://)")
    add_config_args(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from components.clean.core import run_clean

    cfg = config_from_args(args)
    return finish(run_clean(args.input or cfg.data.input, args.output_dir, cfg))
