"""`finegate evaluate --gguf-dir GGUF_DIR --data-dir SPLITS_DIR --output-dir DIR [--base-model DIR|FILE.gguf] [--run-dir DIR]`

    finegate evaluate --gguf-dir runs/demo/gguf --data-dir runs/demo/split \\
        --output-dir runs/demo/evaluate --base-model .cache/tiny-base --run-dir runs/demo
    finegate evaluate ... --set evaluate.judge.enabled=true --set evaluate.judge.url=http://127.0.0.1:8080/v1

Scores the quantized model on test.jsonl against the base model (no adapter) and the first-sentence
heuristic; writes report.json, report.html, samples.jsonl, metrics.png, human_eval.csv and its key file.
--run-dir is the pipeline's output folder: report.html shows every <stage>/report.json found there and the
train stage's loss_curve.png (--model-dir names the train output when it is elsewhere).
Exit codes: 0 gate passed, 1 gate failed (reasons on stderr), 2 bad input or configuration.
"""

from __future__ import annotations

import argparse

from components.common.cli import add_config_args, add_folder_arg, config_from_args, finish


def register(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="score the quantized model on the test split against baselines",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_folder_arg(parser, "--gguf-dir", "the gguf stage's output (or the .gguf file it ships), local or s3://",
                   required=True, old=("--gguf",))
    add_folder_arg(parser, "--data-dir", "the split stage's output: test.jsonl (and train.jsonl)", required=True)
    parser.add_argument("--output-dir", required=True, help="where report.json, report.html and the rest go")
    parser.add_argument("--base-model", help="the base model's folder or a .gguf of it (default: train.base_model)")
    parser.add_argument("--run-dir", help="the run's output folder with the other stages' reports")
    add_folder_arg(parser, "--model-dir", "the train stage's output, for its loss_curve.png (default: RUN_DIR/train)",
                   old=("--train-dir",))
    add_config_args(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from components.evaluate.core import run_evaluate

    return finish(run_evaluate(args.gguf_dir, args.data_dir, args.output_dir, config_from_args(args),
                               base_model=args.base_model, train_dir=args.model_dir, reports=args.run_dir))
