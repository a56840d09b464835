"""`finegate compile`: the KFP pipeline YAML for a cluster, with the run config's thresholds baked in."""

from __future__ import annotations

import argparse

from components.common.cli import add_config_args, config_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser("compile", help="write the KFP v2 pipeline YAML for a run config", description=__doc__)
    add_config_args(p)
    p.add_argument("--output", default="finegate-pipeline.yaml", help="where to write the pipeline YAML")
    p.add_argument("--local", action="store_true",
                   help="for KFP's local runner in this checkout: local data and base-model paths are allowed")
    p.set_defaults(func=_compile)


def _compile(args: argparse.Namespace) -> int:
    from pipelines.pipeline import compile_pipeline

    path = compile_pipeline(config_from_args(args), args.output, for_cluster=not args.local)
    print(f"pipeline written to {path}")
    return 0
