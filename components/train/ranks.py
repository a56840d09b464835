"""Where one training process sits in a data-parallel run, read from torchrun's environment.

A single-process run is `SINGLE`: rank 0 of 1, the main process of its node, nothing to wait for. Under
torchrun (components/train/data_parallel.py) every process has a rank among all processes and a local rank
on its node; the processes of a node share a scratch folder (`node_dir`) where its first process puts what
the node needs once (the splits, the base model, a restored checkpoint).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The variables torchrun sets for every process it starts.
TORCHRUN_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    node_dir: Path | None = None

    @property
    def main(self) -> bool:
        """The one process that writes the stage output and mirrors checkpoints."""
        return self.rank == 0

    @property
    def node_main(self) -> bool:
        return self.local_rank == 0

    @property
    def nodes(self) -> int:
        return self.world_size // self.local_world_size

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def once_per_node(self, name: str, fetch: Callable[[], Any]) -> Any:
        """`fetch()` run by the node's first process only; every process of the node gets its result as a
        string (None stays None). One process alone gets the result as fetch returned it."""
        if self.world_size == 1:
            return fetch()
        assert self.node_dir is not None, "a multi-process Ranks has a node folder"
        note = self.node_dir / f"{name}.json"
        if self.node_main:
            value = fetch()
            note.write_text(json.dumps(None if value is None else str(value)), encoding="utf-8")
        self.barrier()
        return json.loads(note.read_text(encoding="utf-8"))

    def trainer_args(self, cuda: bool) -> dict[str, Any]:
        """TrainingArguments of a multi-process run: gloo between CPU processes (the default backend would be
        MPI where torch has it), and checkpoints on every node when nodes do not share a disk (each node's
        processes reload the best one at the end)."""
        if self.world_size == 1:
            return {}
        return {"ddp_backend": None if cuda else "gloo", "save_on_each_node": self.nodes > 1}


SINGLE = Ranks()


def under_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_ENV)


def start_ranks(timeout_s: int) -> Ranks:
    """Joins the process group torchrun set up (NCCL between GPUs, gloo between CPU processes; the Trainer
    uses this one) and agrees on a scratch folder name, created on every node by its first process."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    env = {name: int(os.environ[name]) for name in TORCHRUN_ENV}
    if torch.cuda.is_available():
        torch.cuda.set_device(env["LOCAL_RANK"])
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=timedelta(seconds=timeout_s))
    name = [uuid.uuid4().hex[:12]]
    dist.broadcast_object_list(name, src=0)
    node_dir = Path(tempfile.gettempdir()) / f"finegate-train-{name[0]}"
    ranks = Ranks(env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"], env["LOCAL_WORLD_SIZE"], node_dir)
    if ranks.node_main:
        node_dir.mkdir(parents=True)
    ranks.barrier()
    return ranks


def stop_ranks(ranks: Ranks) -> None:
    import torch.distributed as dist

    if ranks.node_main and ranks.node_dir is not None:
        shutil.rmtree(ranks.node_dir, ignore_errors=True)
    if dist.is_initialized():
        dist.destroy_process_group()
