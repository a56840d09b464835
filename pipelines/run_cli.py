"""`finegate run`: the whole chain on one machine, no cluster needed."""

from __future__ import annotations

import argparse
import sys

from components.common.cli import add_config_args, config_from_args
from pipelines.summary import describe_gate, gate_table, loosened_notes


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run every stage in order, stopping at the first failed gate",
                              description=__doc__)
    add_config_args(p)
    p.add_argument("--output-dir", default="runs/local", help="where each stage writes <dir>/<stage>/ (default: runs/local)")
    p.add_argument("--stop-after", choices=["policy", "clean", "split", "train", "hf_check", "gguf", "evaluate"],
                   help="stop after this stage (e.g. split)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pipelines.local_chain import run_chain

    cfg = config_from_args(args)
    summary = run_chain(cfg, args.output_dir, stop_after=args.stop_after)
    # stdout: the table a person reads (the JSON summary is run_summary.json beside the stage folders).
    print("\n".join(gate_table(summary["gates"])))
    for note in loosened_notes(summary["loosened"]):
        print(note)
    print()
    if summary["passed"]:
        if summary.get("model_uri"):
            print(f"registered: {summary['model_uri']} (version {summary.get('model_version')})")
            print(f"GGUF sha256: {summary.get('gguf_sha256')}")
        if summary.get("report_html"):
            print(f"report: {summary['report_html']}")
        print(f"run summary: {args.output_dir}/run_summary.json, {args.output_dir}/gates.md "
              f"({summary['seconds']:.0f} s)")
        return 0
    stage = summary["failed_stage"]
    for reason in summary["stages"][stage]["reasons"]:
        print(f"gate failed: {stage}: {reason}", file=sys.stderr)
    print(f"run stopped at {describe_gate(summary['failed_gate'])}, stage '{stage}'; nothing registered. Its report: "
          f"{summary['stages'][stage]['report']}", file=sys.stderr)
    return 1
