"""`finegate import-gguf --gguf FILE_OR_S3 --output DIR_OR_S3 [--dtype float32|bfloat16]`

    finegate import-gguf --gguf SmolLM2-135M-Instruct.Q4_1.gguf --output .cache/smollm2
    finegate import-gguf --gguf s3://models/model.gguf --output s3://models/model-hf --dtype bfloat16

Turns a GGUF into a Hugging Face base-model folder (safetensors, config, generation config, tokenizer with
the file's chat template, import_gguf.json), verified against the file before it is written; the manual
is components/base_models/from_gguf.py's docstring. Progress goes to stderr, the import record (JSON) to
stdout. Exit codes: 0 imported, 2 bad input (malformed file, unsupported architecture, failed verification).
"""

from __future__ import annotations

import argparse
import json

from components.common.cli import add_config_args, config_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser("import-gguf", help="turn a GGUF file into a verified Hugging Face base-model folder",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", required=True, help="the GGUF file, local or s3://")
    parser.add_argument("--output", required=True, help="folder or s3:// prefix for the model")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"],
                        help="dtype of the saved weights (default: import_gguf.dtype, float32)")
    add_config_args(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from components.base_models.from_gguf import import_gguf

    cfg = config_from_args(args)
    if args.dtype:
        cfg.import_gguf.dtype = args.dtype
    print(json.dumps(import_gguf(args.gguf, args.output, cfg), ensure_ascii=False, indent=2))
    return 0
