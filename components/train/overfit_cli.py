"""`finegate check-overfit TRAINER_STATE_JSON [--plot PNG] [--config FILE] [--set k=v ...]`

    finegate check-overfit runs/demo/train/trainer_state.json --plot runs/demo/train/loss_curve.png
    finegate check-overfit runs/demo/train/checkpoint-120 --set train.overfit.min_val_rise=0.05

Prints {"verdict", "reasons", "metrics"} as JSON (thresholds: train.overfit in the run config).
Exit codes: 0 ok, 1 overfit (reasons on stderr), 2 missing or unreadable file, or bad configuration.
"""

from __future__ import annotations

import argparse
import json
import sys

from components.common.cli import add_config_args, config_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser("check-overfit", help="judge a training run's loss curves for overfitting",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trainer_state", metavar="TRAINER_STATE_JSON",
                        help="a Hugging Face trainer_state.json, or the run or checkpoint folder holding it")
    parser.add_argument("--plot", metavar="PNG", help="also draw the loss curves with the verdict to this PNG")
    add_config_args(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from components.train.overfit import detect_overfitting, early_stop_step, load_trainer_state

    cfg = config_from_args(args).train.overfit
    state = load_trainer_state(args.trainer_state)
    verdict = detect_overfitting(state["log_history"], cfg)
    if args.plot:
        from components.common.stage_output import write_file_output
        from components.train.loss_curve import plot_loss_curves

        write_file_output(args.plot, lambda path: plot_loss_curves(state["log_history"], path, verdict,
                                                                   early_stop_step=early_stop_step(state), cfg=cfg),
                          inputs=[args.trainer_state])
    print(json.dumps(verdict.to_dict(), ensure_ascii=False, indent=2))
    if verdict.overfit:
        for reason in verdict.reasons:
            print(f"overfit: {reason}", file=sys.stderr)
        return 1
    return 0
