"""`finegate make-tiny-base` and `finegate import-gguf`: the two ways to make a base-model folder.

    finegate make-tiny-base --corpus data/sample/note_titles.jsonl --output-dir .cache/tiny-base
    finegate import-gguf --gguf SmolLM2-135M-Instruct.Q4_1.gguf --output-dir .cache/smollm2
    finegate import-gguf --gguf s3://models/model.gguf --output-dir s3://models/model-hf --dtype bfloat16

make-tiny-base builds the demo's, the tests' and CI's tiny Llama from a corpus (components/base_models/tiny_base.py).
import-gguf turns a GGUF into a Hugging Face base-model folder (safetensors, config, generation config, tokenizer
with the file's chat template, import_gguf.json), verified against the file before it is written; the manual is
components/base_models/from_gguf.py's docstring. Progress goes to stderr, the build or import record (JSON) to
stdout. Exit codes: 0 built or imported, 2 bad input (malformed file, unsupported architecture, failed
verification).
"""

from __future__ import annotations

import argparse
import json

from components.common.cli import add_config_args, add_folder_arg, config_from_args


def register(subparsers) -> None:
    tiny = subparsers.add_parser("make-tiny-base", help="build the tiny local base model (demo, tests, CI)",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tiny.add_argument("--corpus", required=True, help="JSONL (every string field is text) or plain text; or s3://")
    add_folder_arg(tiny, "--output-dir", "folder or s3:// prefix for the model", required=True, old=("--output",))
    add_config_args(tiny)
    tiny.set_defaults(func=main_tiny_base)

    parser = subparsers.add_parser("import-gguf", help="turn a GGUF file into a verified Hugging Face base-model folder",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", required=True, help="the GGUF file, local or s3://")
    add_folder_arg(parser, "--output-dir", "folder or s3:// prefix for the model", required=True, old=("--output",))
    parser.add_argument("--dtype", choices=["float32", "bfloat16"],
                        help="dtype of the saved weights (default: import_gguf.dtype, float32)")
    add_config_args(parser)
    parser.set_defaults(func=main)


def main_tiny_base(args: argparse.Namespace) -> int:
    from components.base_models.tiny_base import make_tiny_base

    print(json.dumps(make_tiny_base(args.corpus, args.output_dir, config_from_args(args)), ensure_ascii=False, indent=2))
    return 0


def main(args: argparse.Namespace) -> int:
    from components.base_models.from_gguf import import_gguf

    cfg = config_from_args(args)
    if args.dtype:
        cfg.import_gguf.dtype = args.dtype
    print(json.dumps(import_gguf(args.gguf, args.output_dir, cfg), ensure_ascii=False, indent=2))
    return 0
