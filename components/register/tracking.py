"""Which MLflow register and promote talk to, and one way to turn its failures into errors a person can act on.

Everything goes through an explicit `MlflowClient(tracking_uri, registry_uri)` rather than mlflow's
process-wide fluent state, so a library call never changes where the rest of the process logs.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

from components.common.config import RunConfig
from components.common.errors import StorageError


def tracking_uri(cfg: RunConfig) -> str:
    """register.tracking_uri, else MLFLOW_TRACKING_URI, else the local sqlite file (its folder created)."""
    uri = cfg.register_.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or cfg.register_.local_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return uri


def is_local_store(uri: str) -> bool:
    return "://" not in uri or uri.startswith(("sqlite:", "file:"))


def client_for(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(client, cfg: RunConfig, uri: str) -> str:
    """The configured experiment, created on first use; on a local store its artifacts go to
    register.local_artifact_location instead of ./mlruns of whatever directory the command ran in."""
    name = cfg.register_.experiment
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        if existing.lifecycle_stage == "deleted":
            raise StorageError(f"MLflow experiment '{name}' at {uri} is deleted: restore it or set register.experiment")
        return existing.experiment_id
    location = None
    if is_local_store(uri):
        location = Path(cfg.register_.local_artifact_location).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


@contextmanager
def mlflow_errors(uri: str, doing: str):
    """MLflow and HTTP failures become one-line StorageErrors naming the server and the step. MLflow's own
    chatter on stdout ("View run ... at") goes to stderr: stdout carries the command's JSON result only."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    try:
        with redirect_stdout(sys.stderr):
            yield
    except (MlflowException, RequestException, OSError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise StorageError(f"MLflow at {uri}: {doing}: {message.splitlines()[0] if message else type(exc).__name__}") from exc
