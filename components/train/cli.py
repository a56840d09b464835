"""`finegate train`.

    finegate train --data-dir runs/demo/split --base-model .cache/tiny-base --output-dir runs/demo/train
    finegate train --data-dir SPLITS --base-model s3://models/base --output-dir OUT \\
        --set run.run_id=r1 --set train.checkpoint_uri=s3://ckpt/train     (resumable after a crash)

train exit codes: 0 gate A passed, 1 gate A or the policy check failed (reasons on stderr),
2 bad input or configuration (including QLoRA requested on a machine without CUDA).
The stage's manual is components/train/core.py's docstring; every setting is under `train.` in the config.
"""

from __future__ import annotations

import argparse

from components.common.cli import add_config_args, config_from_args, finish


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="LoRA SFT with a policy check, S3 checkpoints and gate A",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--data-dir", required=True, help="the split stage's folder (train.jsonl, val.jsonl), or s3://")
    train.add_argument("--base-model", help="hub id, local folder or s3:// prefix (default: train.base_model)")
    train.add_argument("--output-dir", required=True, help="where adapter/, merged/, loss_curve.png, report.json go")
    add_config_args(train)
    train.set_defaults(func=main_train)


def main_train(args: argparse.Namespace) -> int:
    from components.train.core import run_train

    return finish(run_train(args.data_dir, args.base_model, args.output_dir, config_from_args(args)))

