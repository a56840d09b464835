"""Checkpoints mirrored to S3 (or a folder) at every save, and the resume that reads them back.

Layout under `train.checkpoint_uri`:

    <checkpoint_uri>/<run.run_id>/checkpoint-<step>/<every file the Trainer saved>   (sha256 in metadata)
    <checkpoint_uri>/<run.run_id>/checkpoint-<step>/COMPLETE.json                   (written last)

COMPLETE.json lists every file with its sha256 and the digest of the settings that shape training. A
checkpoint without it was cut off mid-upload and is never resumed; one whose settings differ from the
current run's is refused (same run id, different run) rather than silently mixed.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from components.common import storage
from components.common.errors import ConfigError, IntegrityError
from components.common.report import JsonProblem, parse_json, read_json

MARKER = "COMPLETE.json"
_STEP = re.compile(r"checkpoint-(\d+)$")


def checkpoint_step(name: str) -> int | None:
    match = _STEP.search(name.rstrip("/"))
    return int(match.group(1)) if match else None


class CheckpointMirror:
    def __init__(self, uri: str, run_id: str, settings_digest: str):
        self.prefix = f"{str(uri).rstrip('/')}/{run_id}"
        self.settings_digest = settings_digest

    def _uri(self, *parts: str) -> str:
        return "/".join([self.prefix, *parts])

    def upload(self, checkpoint_dir: Path) -> dict[str, str]:
        """Copies one checkpoint folder, then writes its completion marker; returns {file: sha256}."""
        started = time.monotonic()
        name = checkpoint_dir.name
        files = storage.publish(checkpoint_dir, self._uri(name))
        marker = {"checkpoint": name, "step": checkpoint_step(name), "files": files,
                  "settings_digest": self.settings_digest, "written_at": time.time()}
        storage.write_bytes(self._uri(name, MARKER), json.dumps(marker, indent=2).encode())
        print(f"train: mirrored {name} ({len(files)} files) to {self._uri(name)} in "
              f"{time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        return files

    def complete(self) -> list[str]:
        """Names of the mirrored checkpoints whose marker exists, oldest first."""
        if storage.is_s3(self.prefix):
            names = [uri[len(self.prefix) + 1 : -len(MARKER) - 1] for uri in storage.list_objects(self.prefix)
                     if uri.endswith("/" + MARKER)]
        else:
            names = [p.parent.name for p in Path(self.prefix).glob(f"checkpoint-*/{MARKER}")]
        steps = {n: checkpoint_step(n) for n in names}
        return sorted((n for n, s in steps.items() if s is not None and "/" not in n), key=lambda n: steps[n])

    def marker(self, name: str) -> dict[str, Any]:
        uri = self._uri(name, MARKER)
        try:
            return parse_json(storage.read_bytes(uri).decode("utf-8"))
        except (JsonProblem, UnicodeDecodeError) as exc:
            raise IntegrityError(f"{uri}: unreadable checkpoint marker ({exc})") from None

    def download(self, name: str, dest_root: Path) -> Path:
        """Fetches one checkpoint and checks every file against the sha256 its marker recorded."""
        marker = self.marker(name)
        if marker.get("settings_digest") != self.settings_digest:
            raise ConfigError(
                f"{self._uri(name)} was written by a run with different training settings (data, base model "
                "or train config) under the same run.run_id; resume it with its own settings or start a new "
                "run id")
        dest = dest_root / name
        if dest.exists():
            shutil.rmtree(dest)
        for rel, digest in marker["files"].items():
            source = self._uri(name, rel)
            target = storage.local_target(dest, rel, source)
            if storage.is_s3(source):
                got = storage.download_file(source, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
                got = storage.sha256_file(target)
            if got != digest:
                raise IntegrityError(f"{source}: sha256 {got} differs from {digest} recorded in {MARKER}")
        return dest

    def restore_latest(self, dest_root: Path) -> Path | None:
        """Downloads the newest complete checkpoint (and the best one its state points to) for resuming;
        None when there is nothing to resume."""
        names = self.complete()
        if not names:
            return None
        latest = self.download(names[-1], dest_root)
        state_path = latest / "trainer_state.json"
        state = read_json(state_path, "a checkpoint's trainer_state.json")
        best = state.get("best_model_checkpoint")
        if best:
            best_name = Path(best).name
            if best_name != latest.name and best_name in names:
                self.download(best_name, dest_root)
            # The state names the folder it was saved in, which may be another machine's path.
            state["best_model_checkpoint"] = str(dest_root / best_name) if best_name in names else None
            state_path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return latest


def mirror_callback(mirror: CheckpointMirror):
    """A TrainerCallback uploading each checkpoint right after the Trainer has written it."""
    from transformers import TrainerCallback

    class MirrorCheckpoints(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if args.world_size > 1:
                import torch.distributed as dist

                # The Trainer does not wait for the other processes' RNG states before this call.
                dist.barrier()
            if state.is_world_process_zero:
                mirror.upload(Path(args.output_dir) / f"checkpoint-{state.global_step}")
            return control

    return MirrorCheckpoints()
