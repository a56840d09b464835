"""Training on more than one process: torchrun's data parallelism, in one pod or across TrainJob nodes.

    finegate train --data-dir SPLITS --output-dir OUT --set train.num_processes=2     (2 processes here)

`run_train` with train.num_processes > 1 does not train itself: `launch` starts torchrun, which starts that
many copies of the train worker (`python -m components.train.worker`, one per GPU; on CPU, processes that
talk over gloo), waits for them and returns the report they wrote. A multi-node TrainJob
(components/train/trainjob.py) runs the same worker under torchrun on every node, where the PET_* variables
of the Trainer's torch runtime tell torchrun the nodes, this node's rank and the master's address.

Why torchrun rather than `accelerate launch`: Kubeflow Trainer's torch runtime is built for it (its PET_*
variables are torchrun's own option defaults), so the pod and the TrainJob start the worker the same way;
accelerate launch wraps the same elastic launcher and would need its own config file or flags on top.

Each process runs trl's SFTTrainer, which finds torchrun's RANK/WORLD_SIZE/LOCAL_RANK through accelerate and
wraps the model in DistributedDataParallel: a process takes per_device_batch_size examples of each global
batch of per_device_batch_size x gradient_accumulation_steps x processes, and the gradients are averaged
over all the global batch's tokens (transformers' average_tokens_across_devices). What the processes share:
- the first process of each node fetches the splits and the base model into the node's scratch folder
  (components/train/ranks.py) and the others read them there: one download per node, not per process;
- the processes of a node share the Trainer's checkpoint folder in that scratch folder (each writes its RNG
  state there, all reload the best checkpoint at the end); a resumed run is restored into it once per node;
- only rank 0 opens the stage output, writes adapter/, merged/, trainer_state.json, loss_curve.png and
  report.json into it, and mirrors checkpoints to train.checkpoint_uri. No other process touches it.
The worker exits 0 whenever the report is written, gate passed or not (torchrun and the TrainJob treat any
other exit as a crash), 2 with the error on stderr and in FINEGATE_RANK_ERRORS for bad input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

from components.common import errors, storage
from components.common.config import RunConfig
from components.common.errors import ConfigError, FinegateError
from components.common.kfp_glue import config_to_json
from components.common.report import REPORT_NAME, StageReport, parse_json, read_report
from components.common.stage_output import StageOutput, check_output_location
from components.train.ranks import Ranks

WORKER = "components.train.worker"
# Where a worker leaves its FinegateError for `launch`, which raises it again as one line.
ERRORS_ENV = "FINEGATE_RANK_ERRORS"


def worker_args(data_dir: str | Path, base_model: str | None, output_dir: str | Path, cfg: RunConfig) -> list[str]:
    """What follows torchrun's own options: the worker module and the stage's inputs, the config as JSON."""
    args = ["-m", WORKER, "--data-dir", str(data_dir), "--output-dir", str(output_dir),
            "--config-json", config_to_json(cfg)]
    return args + (["--base-model", base_model] if base_model else [])


def launch(data_dir: str | Path, base_model: str | None, output_dir: str | Path, cfg: RunConfig) -> StageReport:
    """Runs the stage in train.num_processes processes on this machine and returns the report rank 0 wrote."""
    from components.split.outputs import read_splits
    from components.train.core import _check_hardware, _localize_model

    processes = cfg.train.num_processes
    _check_devices(processes)
    base_model = base_model or cfg.train.base_model
    check_output_location(output_dir, [data_dir, base_model])
    with tempfile.TemporaryDirectory(prefix="finegate-ranks-") as tmp:
        # Bad input found here is one line, before any process starts (a process's error comes back as one
        # line too, but after torchrun's account of the processes it stopped). The splits are read once.
        splits = read_splits(data_dir, Path(tmp) / "data")
        _check_hardware(cfg)
        if not storage.is_s3(base_model):
            _localize_model(base_model, Path(tmp) / "base", cfg)  # a folder's safetensors, a hub id's shape
        rank_errors = Path(tmp) / "errors"
        rank_errors.mkdir()
        # --standalone: a rendezvous on localhost at a free port, so runs side by side do not collide.
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
                   f"--nproc-per-node={processes}", *worker_args(splits.directory, base_model, output_dir, cfg)]
        print(f"train: starting {processes} data-parallel processes (torchrun)", file=sys.stderr, flush=True)
        # The workers' stdout goes to stderr: the CLI's stdout carries only the JSON report.
        done = subprocess.run(command, env={**os.environ, ERRORS_ENV: str(rank_errors)}, stdout=_stderr_fd(),
                              check=False)
        if done.returncode:
            raise _rank_error(rank_errors, done.returncode)
    return stage_report(output_dir)


def _check_devices(processes: int) -> None:
    import torch

    if torch.cuda.is_available() and processes > torch.cuda.device_count():
        raise ConfigError(f"train.num_processes={processes} but this machine has {torch.cuda.device_count()} "
                          "CUDA devices: data parallelism runs one process per GPU")


def _stderr_fd():
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a stand-in stderr without a file (a test's capture)
        return None


def _rank_error(directory: Path, returncode: int) -> Exception:
    """The first rank's FinegateError, raised again here as what it was; otherwise a crash (a bug, a kill)."""
    for path in sorted(directory.glob("rank-*.json"), key=lambda p: int(p.stem.split("-")[1])):
        found = json.loads(path.read_text(encoding="utf-8"))
        kind = getattr(errors, found["type"], None)
        error = kind if isinstance(kind, type) and issubclass(kind, FinegateError) else FinegateError
        return error(found["message"])
    return RuntimeError(f"the data-parallel training processes failed (torchrun exit {returncode}); their "
                        "output above says why")


def record_rank_error(rank: int, exc: FinegateError) -> None:
    directory = os.environ.get(ERRORS_ENV)
    if directory:
        Path(directory, f"rank-{rank}.json").write_text(
            json.dumps({"type": type(exc).__name__, "message": str(exc)}), encoding="utf-8")


def stage_report(output_dir: str | Path) -> StageReport:
    """The StageReport a finished stage output holds (report.json, local or on S3)."""
    if storage.is_s3(str(output_dir)):
        data = parse_json(storage.read_bytes(f"{str(output_dir).rstrip('/')}/{REPORT_NAME}").decode("utf-8"))
    else:
        data = read_report(Path(output_dir))
    known = ("stage", "passed", "reasons", "metrics")
    return StageReport(data["stage"], data["passed"], list(data["reasons"]), dict(data["metrics"]),
                       {k: v for k, v in data.items() if k not in known})


def run_rank(ranks: Ranks, data_dir: str, base_model: str | None, output_dir: str, cfg: RunConfig) -> None:
    """One process's part of the stage (the module docstring says who does what)."""
    from components.common.torch_threads import torch_threads
    from components.split.outputs import read_splits
    from components.train.core import (
        STAGE,
        _check_hardware,
        _cuda,
        _digest,
        _localize_model,
        _rows_under_policy,
        _train,
    )

    expected = cfg.train.num_processes * cfg.train.nodes
    if ranks.world_size != expected:
        raise ConfigError(f"torchrun started {ranks.world_size} processes on {ranks.nodes} nodes, but "
                          f"train.num_processes x train.nodes is {expected}: the global batch would not be the one "
                          "the config says")
    base_model = base_model or cfg.train.base_model
    report = StageReport(STAGE)
    node = ranks.node_dir
    output = StageOutput(output_dir, STAGE, inputs=[data_dir, base_model]) if ranks.main else None
    with output or nullcontext():
        data = ranks.once_per_node("splits", lambda: read_splits(data_dir, node / "data").directory)
        splits = read_splits(data, node / "data")
        train_rows, val_rows, allowed = _rows_under_policy(data_dir, splits, cfg, report, announce=ranks.main)
        if not allowed:
            if output:
                output.finish(report)
            return

        _check_hardware(cfg)
        model_dir = ranks.once_per_node("base_model", lambda: _localize_model(base_model, node / "base", cfg))
        with torch_threads(None if _cuda() else cfg.train.cpu_threads):
            _train(train_rows, val_rows, model_dir, base_model, output.path if output else None, cfg, report,
                   _digest(splits.directory, base_model, cfg), ranks, checkpoints=node / "checkpoints")
        if output:
            output.finish(report)
