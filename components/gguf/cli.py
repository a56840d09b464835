"""`finegate gguf --model-dir MERGED_DIR --data-dir SPLITS_DIR --output-dir DIR [--config FILE] [--set k=v ...]`

    finegate gguf --model-dir runs/demo/train/merged --data-dir runs/demo/split --output-dir runs/demo/gguf
    finegate gguf --model-dir s3://bucket/run/train/merged --data-dir s3://bucket/run/split \\
        --output-dir runs/x/gguf --set gguf.quant_types='[Q4_K_M, Q8_0]'

Writes model-f16.gguf, model-<QUANT>.gguf and report.json (gates C and D). Exit codes: 0 both gates
passed, 1 a gate failed (reasons on stderr), 2 bad input or configuration (no converter, malformed GGUF).
"""

from __future__ import annotations

import argparse

from components.common.cli import add_config_args, config_from_args, finish


def register(subparsers) -> None:
    parser = subparsers.add_parser("gguf", help="convert merged/ to F16 GGUF, quantize, gate C (F16 vs HF) and D",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="the train stage's merged/ folder (local or s3://)")
    parser.add_argument("--data-dir", required=True, help="the split stage's folder with val.jsonl/test.jsonl")
    parser.add_argument("--output-dir", required=True, help="where the GGUF files and report.json go")
    add_config_args(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from components.gguf.core import run_gguf

    return finish(run_gguf(args.model_dir, args.data_dir, args.output_dir, config_from_args(args)))
