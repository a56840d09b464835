"""What the train stage hands on, read the one way every consumer reads it.

    trained = read_trained("runs/demo/train", cache_dir)   # verified against train's report
    trained.merged       # base + LoRA merged: safetensors, config, tokenizer (the model the gates test)
    trained.adapter      # the LoRA weights alone
    trained.loss_curve   # loss_curve.png

`--model runs/demo/train/merged` (the merged folder itself) is accepted too: its parent is the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.common import storage
from components.common.report import REPORT_NAME
from components.common.stage_output import read_output

STAGE = "train"
MERGED, ADAPTER = "merged", "adapter"
TRAINER_STATE, LOSS_CURVE = "trainer_state.json", "loss_curve.png"


@dataclass
class TrainedModel:
    directory: Path
    report: dict[str, Any]

    @property
    def merged(self) -> Path:
        return self.directory / MERGED

    @property
    def adapter(self) -> Path:
        return self.directory / ADAPTER

    @property
    def loss_curve(self) -> Path | None:
        path = self.directory / LOSS_CURVE
        return path if path.is_file() else None


def _output_of(uri: str) -> str:
    """The train output a path names: the output itself, or its merged/ or adapter/ folder."""
    stripped = uri.rstrip("/")
    name = stripped.rsplit("/", 1)[-1]
    if name in (MERGED, ADAPTER):
        parent = stripped.rsplit("/", 1)[0]
        if storage.is_s3(uri) or (Path(parent) / REPORT_NAME).is_file():
            return parent
    return uri


def read_trained(output: str | Path, cache_dir: str | Path) -> TrainedModel:
    directory, report = read_output(_output_of(str(output)), STAGE, cache_dir)
    return TrainedModel(directory, report)
