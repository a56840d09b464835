"""`finegate submit`: the run config's pipeline onto a Kubeflow Pipelines server, and a run of it.

    finegate submit --config configs/production.yaml --host http://localhost:8080 --wait

Compiles the pipeline (as `finegate compile` does), uploads it (a new version when a pipeline of its name
exists), starts a run in the experiment (created when missing) and prints the run's link. With --wait it
follows the run: exit 0 when it succeeded, 1 when it failed, was canceled or outlived kfp.wait_timeout_s
(the failed tasks and their messages on stderr). Exit 2: bad configuration, or a server that cannot be
reached or refuses the request.

Settings are the config's `kfp:` section; the flags below override it. A bearer token comes from --token,
else from the variable kfp.token_env names (FINEGATE_KFP_TOKEN), else from kfp.token_file; without one,
kfp.Client's in-cluster or kubeconfig credentials apply when no host is set. It is never printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from pydantic import ValidationError

from components.common.cli import add_config_args, config_from_args
from components.common.errors import ConfigError

# flag -> kfp setting it overrides
_OVERRIDES = {"host": "host", "namespace": "namespace", "experiment": "experiment",
              "pipeline_name": "pipeline_name", "wait_timeout_s": "wait_timeout_s"}


def register(subparsers) -> None:
    p = subparsers.add_parser("submit", help="upload the pipeline to a KFP server and start a run (--wait: follow it)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    p.add_argument("--host", help="KFP API endpoint, e.g. http://localhost:8080 (kfp.host)")
    p.add_argument("--namespace", help="profile namespace of a multi-user KFP (kfp.namespace)")
    p.add_argument("--experiment", help="experiment to file the run under (kfp.experiment)")
    p.add_argument("--pipeline-name", help="name of the pipeline on the server (kfp.pipeline_name; default run.name)")
    p.add_argument("--run-name", help="the run's display name (default: run.run_id, else run.name and the UTC time)")
    p.add_argument("--version-name", help="name of the new pipeline version (default: pipeline name, UTC time, "
                                          "package sha256 prefix)")
    p.add_argument("--token", help="bearer token for the API; visible to other users of this machine in the "
                                   "process list, so prefer the variable named by kfp.token_env")
    p.add_argument("--wait", action="store_true", help="follow the run to its end; exit 0 only if it succeeded")
    p.add_argument("--wait-timeout-s", type=float, help="with --wait: seconds to follow the run (kfp.wait_timeout_s)")
    p.set_defaults(func=_submit)


def _submit(args: argparse.Namespace) -> int:
    from pipelines.submit import compile_package, kfp_session, submit, wait_for_run

    cfg = config_from_args(args)
    for flag, setting in _OVERRIDES.items():
        value = getattr(args, flag)
        if value is not None:
            try:
                setattr(cfg.kfp, setting, value)  # validated on assignment, like the config file
            except ValidationError as err:
                problem = err.errors()[0]["msg"].removeprefix("Value error, ")
                raise ConfigError(f"--{flag.replace('_', '-')}: {problem}") from None
    with tempfile.TemporaryDirectory(prefix="finegate-submit-") as folder:
        package = compile_package(cfg, folder)
        with kfp_session(cfg.kfp, args.token) as client:
            done = submit(client, cfg, package, run_name=args.run_name, version_name=args.version_name)
            _print_submitted(done)
            if not args.wait:
                return 0
            outcome = wait_for_run(client, done.run_id, cfg.kfp,
                                   on_state=lambda state: print(f"run state: {state}", file=sys.stderr))
    where = done.run_url or f"run {done.run_id}"
    if outcome.succeeded:
        print(f"run {outcome.state}: {where}")
        return 0
    for task in outcome.failed_tasks:
        print(f"task failed: {task.name} ({task.state})" + (f": {task.message}" if task.message else ""),
              file=sys.stderr)
    if outcome.error:
        print(f"run error: {outcome.error}", file=sys.stderr)
    if outcome.finished:
        print(f"run {outcome.state}: {where}", file=sys.stderr)
    else:
        print(f"run still {outcome.state} after {cfg.kfp.wait_timeout_s:g} s (kfp.wait_timeout_s); it goes on "
              f"on the server: {where}", file=sys.stderr)
    return 1


def _print_submitted(done) -> None:
    if done.new_pipeline:
        print(f"pipeline '{done.pipeline_name}': new, id {done.pipeline_id}, version '{done.version_name}' "
              f"({done.version_id})")
    else:
        print(f"pipeline '{done.pipeline_name}' ({done.pipeline_id}): new version '{done.version_name}' "
              f"({done.version_id})")
    print(f"experiment '{done.experiment_name}': {done.experiment_id}")
    print(f"run '{done.run_name}': {done.run_id}")
    print(f"run URL: {done.run_url}" if done.run_url else
          "run URL: unknown through a kubeconfig proxy; set kfp.ui_host to the KFP UI's address")
