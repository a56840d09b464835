"""What the train stage hands on, read the one way every consumer reads it.

    trained = read_trained("runs/demo/train", cache_dir)   # verified against train's report
    trained.merged       # base + LoRA merged: safetensors, config, tokenizer (the model the gates test)
    trained.adapter      # the LoRA weights alone
    trained.loss_curve   # loss_curve.png

`--model-dir runs/demo/train/merged` (the merged folder itself) is accepted too: its parent is the output.
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


def read_trained(output: str | Path, cache_dir: str | Path, parts: tuple[str, ...] | None = None) -> TrainedModel:
    """`parts`: what the consumer reads (MERGED, ADAPTER, TRAINER_STATE, LOSS_CURVE); only those are
    downloaded and verified, so hf_check and gguf never fetch the adapter and evaluate only the curve. On a
    cluster the train task hands on three artifacts (merged model, adapter, report and curves), each with the
    train report, and a consumer receives only the one it reads."""
    directory, report = read_output(_output_of(str(output)), STAGE, cache_dir, parts=parts)
    return TrainedModel(directory, report)


# What each of the train task's KFP artifacts holds (report.json goes with each): consumers take only theirs.
ARTIFACT_PARTS = {"model": (MERGED,), "adapter": (ADAPTER,), "train_report": (TRAINER_STATE, LOSS_CURVE)}


def hand_on(directory: str | Path, destinations: dict[str, str | Path]) -> None:
    """Moves a finished train output into separate artifact folders ({artifact name: folder}), each with the
    train report beside its parts, so every reader verifies what it got against the same manifest."""
    import shutil

    source = Path(directory)
    for name, folder in destinations.items():
        dest = Path(folder)
        dest.mkdir(parents=True, exist_ok=True)
        for part in ARTIFACT_PARTS[name]:
            if (source / part).exists():
                shutil.move(str(source / part), str(dest / part))
        shutil.copy2(source / REPORT_NAME, dest / REPORT_NAME)
