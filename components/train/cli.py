"""`finegate train` and `finegate make-tiny-base`.

    finegate train --data-dir runs/demo/split --base-model .cache/tiny-base --output-dir runs/demo/train
    finegate train --data-dir SPLITS --base-model s3://models/base --output-dir OUT \\
        --set run.run_id=r1 --set train.checkpoint_uri=s3://ckpt/train     (resumable after a crash)
    finegate make-tiny-base --corpus data/sample/note_titles.jsonl --output .cache/tiny-base

train exit codes: 0 gate A passed, 1 gate A or the policy check failed (reasons on stderr),
2 bad input or configuration (including QLoRA requested on a machine without CUDA).
The stage's manual is components/train/core.py's docstring; every setting is under `train.` in the config.
"""

from __future__ import annotations

import argparse
import json

from components.common.cli import add_config_args, config_from_args, finish


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="LoRA SFT with a policy check, S3 checkpoints and gate A",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--data-dir", required=True, help="the split stage's folder (train.jsonl, val.jsonl), or s3://")
    train.add_argument("--base-model", help="hub id, local folder or s3:// prefix (default: train.base_model)")
    train.add_argument("--output-dir", required=True, help="where adapter/, merged/, loss_curve.png, report.json go")
    add_config_args(train)
    train.set_defaults(func=main_train)

    tiny = subparsers.add_parser("make-tiny-base", help="build the tiny local base model (demo, tests, CI)",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tiny.add_argument("--corpus", required=True, help="JSONL (every string field is text) or plain text; or s3://")
    tiny.add_argument("--output", required=True, help="folder or s3:// prefix for the model")
    add_config_args(tiny)
    tiny.set_defaults(func=main_tiny_base)


def main_train(args: argparse.Namespace) -> int:
    from components.train.core import run_train

    return finish(run_train(args.data_dir, args.base_model, args.output_dir, config_from_args(args)))


def main_tiny_base(args: argparse.Namespace) -> int:
    from components.train.tiny_base import make_tiny_base

    print(json.dumps(make_tiny_base(args.corpus, args.output, config_from_args(args)), ensure_ascii=False, indent=2))
    return 0
