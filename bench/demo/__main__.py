"""Bench: `make run` after setup, timed: the demo's tiny base model built from the sample data, then the
whole chain (policy -> clean -> ... -> register) on configs/demo.yaml, in fresh folders.

    .venv/bin/python -m bench.demo                       # configs/demo.yaml
    .venv/bin/python -m bench.demo --config configs/demo.yaml --keep runs/bench-demo

Prints the seconds of the base-model build and of every stage, the total, and its ratio to the target
(10 minutes on a 2-core machine); exits 1 when the run did not end green. The figure depends on the machine
and its load: the README states the machine and the load average printed here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 600.0
REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temp folder)")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="finegate-bench-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    finegate = [sys.executable, "-m", "pipelines.cli"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}")
    load_before = os.getloadavg()[0]

    started = time.monotonic()
    subprocess.run([*finegate, "make-tiny-base", "--corpus", str(REPO / "data/sample/note_titles.jsonl"),
                    "--output-dir", str(work / "tiny-base"), "--config", args.config], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    base_s = time.monotonic() - started
    run = subprocess.run([*finegate, "run", "--config", args.config, "--output-dir", str(work / "run"),
                          "--set", f"train.base_model={work / 'tiny-base'}"], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, text=True)
    total_s = time.monotonic() - started
    summary = json.loads((work / "run" / "run_summary.json").read_text(encoding="utf-8"))

    print(f"machine: {os.cpu_count()} cores, load average {load_before:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"  make-tiny-base      {base_s:7.1f} s")
    for stage, info in summary["stages"].items():
        print(f"  {stage:<19} {info['seconds']:7.1f} s  {'passed' if info['passed'] else 'FAILED'}")
    print(f"total {total_s:.1f} s = {total_s / 60:.1f} min; ratio to the {TARGET_S / 60:.0f}-minute target: "
          f"{total_s / TARGET_S:.2f}; run {'green' if summary['passed'] else 'stopped at ' + summary['failed_stage']}")
    return 0 if run.returncode == 0 and summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
