"""The checkpoint mirror on a real S3 server: sha256 per file, a completion marker written last, and a
resume that never picks a half-uploaded, tampered or foreign checkpoint."""

from __future__ import annotations

import json

import pytest

from components.common import storage
from components.common.errors import ConfigError, IntegrityError
from components.train.checkpoints import MARKER, CheckpointMirror


def _checkpoint(root, step: int, best: int | None = None):
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(f"weights at {step}".encode())
    (folder / "optimizer.pt").write_bytes(f"optimizer at {step}".encode())
    state = {"global_step": step, "best_model_checkpoint": f"/elsewhere/checkpoint-{best}" if best else None}
    (folder / "trainer_state.json").write_text(json.dumps(state))
    return folder


@pytest.fixture(params=["s3", "folder"])
def mirror_uri(request, tmp_path):
    if request.param == "folder":
        return str(tmp_path / "mirror")
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/checkpoints"


def test_upload_records_every_file_and_writes_the_marker_last(tmp_path, mirror_uri):
    mirror = CheckpointMirror(mirror_uri, "run-1", "settings-a")
    files = mirror.upload(_checkpoint(tmp_path / "local", 4))
    assert set(files) == {"adapter_model.safetensors", "optimizer.pt", "trainer_state.json"}
    marker = mirror.marker("checkpoint-4")
    assert marker["files"] == files and marker["step"] == 4 and marker["settings_digest"] == "settings-a"
    assert files["optimizer.pt"] == storage.sha256_file(tmp_path / "local" / "checkpoint-4" / "optimizer.pt")
    assert mirror.complete() == ["checkpoint-4"]


def test_resume_takes_the_newest_complete_checkpoint_and_its_best_one(tmp_path, mirror_uri):
    mirror = CheckpointMirror(mirror_uri, "run-1", "settings-a")
    local = tmp_path / "local"
    for step in (2, 4, 6):
        mirror.upload(_checkpoint(local, step, best=2))
    # checkpoint-8 was cut off mid-upload: its files are there, its marker is not.
    storage.publish(_checkpoint(local, 8, best=2), f"{mirror.prefix}/checkpoint-8")
    assert mirror.complete() == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]

    restored = mirror.restore_latest(tmp_path / "resume")
    assert restored == tmp_path / "resume" / "checkpoint-6"
    assert (restored / "optimizer.pt").read_bytes() == b"optimizer at 6"
    state = json.loads((restored / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"] == str(tmp_path / "resume" / "checkpoint-2")
    assert (tmp_path / "resume" / "checkpoint-2" / "adapter_model.safetensors").read_bytes() == b"weights at 2"


def test_nothing_to_resume_under_a_new_run_id(tmp_path, mirror_uri):
    CheckpointMirror(mirror_uri, "run-1", "s").upload(_checkpoint(tmp_path / "local", 2))
    assert CheckpointMirror(mirror_uri, "run-2", "s").restore_latest(tmp_path / "resume") is None


def test_a_checkpoint_from_other_settings_is_refused(tmp_path, mirror_uri):
    CheckpointMirror(mirror_uri, "run-1", "settings-a").upload(_checkpoint(tmp_path / "local", 2))
    with pytest.raises(ConfigError, match="different training settings"):
        CheckpointMirror(mirror_uri, "run-1", "settings-b").restore_latest(tmp_path / "resume")


def test_a_replaced_file_fails_the_sha256_check(tmp_path, s3_bucket):
    mirror = CheckpointMirror(f"s3://{s3_bucket}/ckpt", "run-1", "s")
    mirror.upload(_checkpoint(tmp_path / "local", 2))
    # Replaced by a consistent object (its own sha256 in metadata) that is not the file the marker names.
    storage.write_bytes(f"{mirror.prefix}/checkpoint-2/optimizer.pt", b"someone else's optimizer")
    with pytest.raises(IntegrityError, match=f"differs from .* recorded in {MARKER}"):
        mirror.restore_latest(tmp_path / "resume")
