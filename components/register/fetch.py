"""The serving side of the registry: download the GGUF an alias points at and prove it is the file the gates
measured (its sha256 against the version's finegate.gguf.sha256 tag)."""

from __future__ import annotations

from pathlib import Path

from components.common.errors import InputError, IntegrityError
from components.common.storage import sha256_file
from components.register.run_dir import TAG
from components.register.tracking import client_for, mlflow_errors


def fetch_gguf(model_name: str, alias: str, dst_dir: str | Path, *, tracking_uri: str) -> Path:
    """`models:/<name>@<alias>` into dst_dir; returns the GGUF's path after checking its sha256."""
    from mlflow.artifacts import download_artifacts

    client = client_for(tracking_uri)
    with mlflow_errors(tracking_uri, f"resolving {model_name}@{alias}"):
        version = client.get_model_version_by_alias(model_name, alias)
        # Not download_artifacts("models:/name@alias"): mlflow 3.17 resolves that through the process-wide
        # registry URI and ignores the one passed in; the version's own download URI has no such detour.
        source = client.get_model_version_download_uri(model_name, version.version)
        local = Path(download_artifacts(artifact_uri=source, dst_path=str(dst_dir), tracking_uri=tracking_uri))
    name, expected = version.tags.get(f"{TAG}gguf.file"), version.tags.get(f"{TAG}gguf.sha256")
    if not name or not expected:
        raise InputError(f"{model_name} version {version.version} has no {TAG}gguf.* tags: not made by finegate register")
    path = local / name
    if not path.is_file():
        raise InputError(f"{model_name}@{alias} (version {version.version}) holds no {name}")
    digest = sha256_file(path)
    if digest != expected:
        raise IntegrityError(f"{path}: sha256 {digest} is not the registered {expected}; the stored object was replaced")
    return path
