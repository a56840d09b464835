"""Kill -9 in the middle of `finegate train`, start it again with the same run id: it resumes from the
newest complete checkpoint on S3 and ends where an uninterrupted run ends (weights and loss curve)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.common import storage
from components.common.report import read_report
from components.train.checkpoints import CheckpointMirror
from tests.fixtures.models import SHORT_TRAIN_SETTINGS

pytestmark = pytest.mark.slow

SETTINGS = [*SHORT_TRAIN_SETTINGS, "train.max_steps=10", "train.eval_steps=2", "train.save_steps=2",
            "train.logging_steps=1", "train.save_total_limit=2"]


def _finegate() -> list[str]:
    script = Path(sys.executable).with_name("finegate")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pipelines.cli"]


def _train(splits, base, out, uri: str, run_id: str) -> subprocess.Popen:
    overrides = [arg for s in [*SETTINGS, f"run.run_id={run_id}", f"train.checkpoint_uri={uri}"] for arg in ("--set", s)]
    log = open(out.parent / f"{out.name}.log", "ab")
    stdout = open(out.parent / f"{out.name}.stdout", "wb")
    return subprocess.Popen([*_finegate(), "train", "--data-dir", str(splits), "--base-model", str(base),
                             "--output-dir", str(out), *overrides],
                            stdout=stdout, stderr=log, start_new_session=True)


def _finish(proc: subprocess.Popen, out: Path) -> dict:
    code = proc.wait(timeout=600)
    log = (out.parent / f"{out.name}.log").read_text(errors="replace")
    assert code in (0, 1), f"finegate train exited {code}:\n{log[-3000:]}"
    # stdout carries the report as JSON and nothing else (progress goes to stderr).
    assert json.loads((out.parent / f"{out.name}.stdout").read_text()) == read_report(out)
    return read_report(out)


def _curve(out: Path) -> dict[tuple[str, int], float]:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return {(key, e["step"]): e[key] for e in history for key in ("loss", "eval_loss") if key in e}


def _adapter(out: Path):
    from safetensors.torch import load_file

    return load_file(str(out / "adapter" / "adapter_model.safetensors"))


def test_killed_run_resumes_from_s3_and_matches_an_uninterrupted_run(tmp_path, s3_bucket, tiny_base, sample_splits):
    import torch

    uri = f"s3://{s3_bucket}/checkpoints"
    whole = _train(sample_splits, tiny_base, tmp_path / "whole", uri, "whole")
    whole_report = _finish(whole, tmp_path / "whole")
    assert whole_report["metrics"]["resumed_from_step"] is None

    # The restarted run reads its base model from S3 (verified by sha256): same weights, same result.
    base_uri = f"s3://{s3_bucket}/models/tiny-base"
    storage.publish(tiny_base, base_uri)
    crashed = _train(sample_splits, base_uri, tmp_path / "crashed", uri, "crashed")
    mirror = CheckpointMirror(uri, "crashed", settings_digest="")
    deadline = time.monotonic() + 600
    while not mirror.complete():
        assert crashed.poll() is None, "training ended before its first checkpoint reached S3"
        assert time.monotonic() < deadline, "no checkpoint reached S3 within 10 minutes"
        time.sleep(0.2)
    os.killpg(crashed.pid, signal.SIGKILL)
    assert crashed.wait(timeout=30) == -signal.SIGKILL
    assert not (tmp_path / "crashed" / "report.json").exists()
    complete_at_kill = mirror.complete()

    resumed_report = _finish(_train(sample_splits, base_uri, tmp_path / "crashed", uri, "crashed"), tmp_path / "crashed")
    resumed_from = resumed_report["metrics"]["resumed_from_step"]
    assert resumed_from is not None and f"checkpoint-{resumed_from}" in mirror.complete()
    assert resumed_from >= int(complete_at_kill[-1].rsplit("-", 1)[1]) and resumed_from < 10
    assert "resuming from" in (tmp_path / "crashed.log").read_text()

    whole_curve, resumed_curve = _curve(tmp_path / "whole"), _curve(tmp_path / "crashed")
    assert whole_curve.keys() == resumed_curve.keys()
    assert {k for k in whole_curve if k[0] == "eval_loss"} == {("eval_loss", s) for s in (2, 4, 6, 8, 10)}
    for key, value in whole_curve.items():
        assert resumed_curve[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    expected, got = _adapter(tmp_path / "whole"), _adapter(tmp_path / "crashed")
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        assert torch.allclose(got[name], tensor, atol=1e-5), name
    for key in ("best_val_loss", "best_step", "global_step"):
        assert resumed_report["metrics"][key] == pytest.approx(whole_report["metrics"][key], rel=1e-4)


def test_a_killed_train_task_restarted_in_the_same_kfp_run_resumes_from_its_checkpoint(tmp_path, s3_bucket, tiny_base,
                                                                                       sample_splits):
    """The pipeline gives the train task KFP's run id when the config has none (pipelines/pipeline.py): a pod
    lost mid-run and retried in the same run finds its checkpoints under train.checkpoint_uri/<run id>/."""
    from components.common.config import load_config
    from components.common.kfp_glue import config_to_json

    uri = f"s3://{s3_bucket}/kfp-checkpoints"
    cfg = load_config(None, [*SETTINGS, f"train.checkpoint_uri={uri}"])
    assert cfg.run.run_id is None
    config_json = config_to_json(cfg)

    def task(out: Path) -> subprocess.Popen:
        out.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen([sys.executable, "-m", "tests.train.train_component_task", str(sample_splits),
                                 str(tiny_base), str(out), "kfp-run-7f3a", config_json],
                                stdout=open(out / "stdout", "wb"), stderr=open(out / "stderr", "wb"),
                                start_new_session=True)

    mirror = CheckpointMirror(uri, "kfp-run-7f3a", settings_digest="")
    first = task(tmp_path / "pod-1")
    deadline = time.monotonic() + 600
    while not mirror.complete():
        assert first.poll() is None, (tmp_path / "pod-1" / "stderr").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint reached S3 within 10 minutes"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)

    second = task(tmp_path / "pod-2")
    assert second.wait(timeout=900) == 0, (tmp_path / "pod-2" / "stderr").read_text()[-3000:]
    report = read_report(tmp_path / "pod-2" / "train_report")
    assert report["metrics"]["resumed_from_step"] is not None and report["run_id"] == "kfp-run-7f3a"
    assert "resuming from" in (tmp_path / "pod-2" / "stderr").read_text()
