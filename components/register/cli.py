"""`finegate register`, `finegate promote` and `finegate rollback`: the MLflow registry end of the chain.

    finegate register --run-dir runs/demo
    finegate register --run-dir runs/demo --set register.tracking_uri=http://mlflow:5000
    finegate promote --model finegate --reason "beats v3 on rouge_l, 50 human pairs preferred 31:19"
    finegate promote --model finegate --version 4 --alias champion --reason "v5 titles too long"
    finegate rollback --model finegate --reason "v5 titles run long in production"

register reads the run dir's config.json (what `finegate run` wrote) unless --config is given; --set
applies on top. The MLflow server is --tracking-uri (promote, rollback), else register.tracking_uri, else
MLFLOW_TRACKING_URI, else a local sqlite file (register.local_tracking_uri); its HTTP timeout and retries
are register.http_*.
Exit codes: 0 registered / promoted / rolled back, 1 refused (a gate did not pass: reasons on stderr),
2 bad input (nothing to roll back to), configuration or an unreachable MLflow.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from components.common.cli import add_config_args, finish
from components.common.config import RunConfig, load_config


def register(subparsers) -> None:
    reg = subparsers.add_parser("register", help="log a gated run to MLflow and register its GGUF (alias challenger)",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    reg.add_argument("--run-dir", required=True, help="the run's output dir, holding <stage>/report.json and gguf/")
    reg.add_argument("--output-dir", help="where register's report.json goes (default: RUN_DIR/register)")
    add_config_args(reg)
    reg.set_defaults(func=main_register)

    pro = subparsers.add_parser("promote", help="move the champion alias to a registered version, with a reason",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pro.add_argument("--model", help="registered model name (default: register.model_name, else run.name)")
    which = pro.add_mutually_exclusive_group()
    which.add_argument("--version", help="the version number to promote")
    which.add_argument("--from-alias", help="promote the version this alias names (default: register.challenger_alias)")
    pro.add_argument("--alias", help="the alias to move (default: register.champion_alias)")
    pro.add_argument("--reason", required=True, help="why this version should serve; recorded on the version")
    pro.add_argument("--by", help="who promotes (default: $FINEGATE_USER, else the login name)")
    pro.add_argument("--override-reason", help="needed only to promote a version registered under a gate override")
    pro.add_argument("--tracking-uri", help="the MLflow server (default: register.tracking_uri, MLFLOW_TRACKING_URI)")
    add_config_args(pro)
    pro.set_defaults(func=main_promote)

    back = subparsers.add_parser("rollback", help="move the champion alias back to the version it replaced",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    back.add_argument("--model", required=True, help="registered model name")
    back.add_argument("--reason", required=True, help="why the current version must stop serving; recorded on both")
    back.add_argument("--tracking-uri", help="the MLflow server (default: register.tracking_uri, MLFLOW_TRACKING_URI)")
    back.add_argument("--alias", help="the alias to move back (default: register.champion_alias)")
    back.add_argument("--by", help="who rolls back (default: $FINEGATE_USER, else the login name)")
    add_config_args(back)
    back.set_defaults(func=main_rollback)


def main_register(args: argparse.Namespace) -> int:
    from components.register.core import run_register

    run_dir = Path(args.run_dir)
    run_config = run_dir / "config.json"
    config = args.config or (run_config if run_config.is_file() else None)
    cfg = load_config(config, args.overrides)
    return finish(run_register(run_dir, args.output_dir or Path(run_dir) / "register", cfg))


def main_promote(args: argparse.Namespace) -> int:
    from components.register.promote import promote
    from components.register.tracking import http_settings

    cfg = load_config(args.config, args.overrides)
    reg = cfg.register_
    with http_settings(reg):
        result = promote(args.model or reg.model_name or cfg.run.name, args.reason, tracking_uri=_uri(args, cfg),
                         version=args.version,
                         from_alias=None if args.version else (args.from_alias or reg.challenger_alias),
                         to_alias=args.alias or reg.champion_alias, by=args.by, override_reason=args.override_reason)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def main_rollback(args: argparse.Namespace) -> int:
    from components.register.rollback import rollback
    from components.register.tracking import http_settings

    cfg = load_config(args.config, args.overrides)
    with http_settings(cfg.register_):
        result = rollback(args.model, args.reason, tracking_uri=_uri(args, cfg),
                          alias=args.alias or cfg.register_.champion_alias, by=args.by)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def _uri(args: argparse.Namespace, cfg: RunConfig) -> str:
    from components.register.tracking import tracking_uri

    return args.tracking_uri or tracking_uri(cfg)
