"""`finegate run`: the whole chain on one machine, no cluster needed."""

from __future__ import annotations

import argparse
import json
import sys

from components.common.cli import add_config_args, config_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run every stage in order, stopping at the first failed gate",
                              description=__doc__)
    add_config_args(p)
    p.add_argument("--output-dir", default="runs/local", help="where each stage writes <dir>/<stage>/ (default: runs/local)")
    p.add_argument("--stop-after", choices=["clean", "split", "train", "hf_check", "gguf", "evaluate"],
                   help="stop after this stage (e.g. split)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pipelines.local_chain import run_chain

    cfg = config_from_args(args)
    summary = run_chain(cfg, args.output_dir, stop_after=args.stop_after)
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    if summary["passed"]:
        return 0
    stage = summary["failed_stage"]
    for reason in summary["stages"][stage]["reasons"]:
        print(f"gate failed: {stage}: {reason}", file=sys.stderr)
    print(f"run stopped at stage '{stage}'; its report: {summary['stages'][stage]['report']}", file=sys.stderr)
    return 1
