"""`finegate gguf --model-dir TRAIN_DIR --data-dir SPLITS_DIR --output-dir DIR [--config FILE] [--set k=v ...]`

    finegate gguf --model-dir runs/demo/train --data-dir runs/demo/split --output-dir runs/demo/gguf
    finegate gguf --model-dir s3://bucket/run/train --data-dir s3://bucket/run/split \\
        --output-dir runs/x/gguf --set gguf.quant_type=Q8_0 --set gguf.ladder='[]'

Writes model-f16.gguf, model-<QUANT>.gguf and report.json (gates C and D). Exit codes: 0 both gates
passed, 1 a gate failed (reasons on stderr), 2 bad input or configuration (no converter, malformed GGUF).
"""

from __future__ import annotations

import argparse

from components.common.cli import add_config_args, add_folder_arg, config_from_args, finish


def register(subparsers) -> None:
    parser = subparsers.add_parser("gguf", help="convert merged/ to F16 GGUF, quantize, gate C (F16 vs HF) and D",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_folder_arg(parser, "--model-dir", "the train stage's output (or its merged/ folder), local or s3://",
                   required=True)
    add_folder_arg(parser, "--data-dir", "the split stage's folder with val.jsonl/test.jsonl", required=True)
    parser.add_argument("--output-dir", required=True, help="where the GGUF files and report.json go")
    add_config_args(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from components.gguf.core import run_gguf

    return finish(run_gguf(args.model_dir, args.data_dir, args.output_dir, config_from_args(args)))
