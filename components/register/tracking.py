"""Which MLflow register, promote and rollback talk to, how long they wait for it, and one way to turn its
failures into errors a person can act on.

Everything goes through an explicit `MlflowClient(tracking_uri, registry_uri)` rather than mlflow's
process-wide fluent state, so a library call never changes where the rest of the process logs. Everything
this module prints or raises names the server by its redacted URI (components/common/redact.py).
"""

from __future__ import annotations

import io
import os
import sys
import threading
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

from components.common.config import RunConfig
from components.common.errors import StorageError
from components.common.redact import redact_text, redact_uri
from components.register.settings import RegisterSection


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
    register.local_artifact_location instead of ./mlruns of whatever directory the command ran in.
    Two registrations creating it at once: the second finds the first one's (RESOURCE_ALREADY_EXISTS)."""
    from mlflow.exceptions import MlflowException

    name = cfg.register_.experiment
    existing = client.get_experiment_by_name(name)
    if existing is None:
        location = None
        if is_local_store(uri):
            location = Path(cfg.register_.local_artifact_location).resolve().as_uri()
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            existing = client.get_experiment_by_name(name)
    if existing.lifecycle_stage == "deleted":
        raise StorageError(f"MLflow experiment '{name}' at {redact_uri(uri)} is deleted: restore it or set register.experiment")
    return existing.experiment_id


# mlflow 3.17 reads MLFLOW_HTTP_REQUEST_TIMEOUT / _MAX_RETRIES / _BACKOFF_FACTOR from the environment on every
# request (mlflow.utils.rest_utils.http_request) and has no per-client setting, so the settings are process
# environment for as long as any caller is inside http_settings; concurrent callers (threads) share one
# saved copy of the variables, restored when the last one leaves.
_TIMEOUT, _RETRIES, _BACKOFF = ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")
_env_lock = threading.Lock()
_env_state: dict = {"users": 0, "uploads": 0, "saved": {}, "settings": None}


def _apply_http_env() -> None:
    reg: RegisterSection = _env_state["settings"]
    timeout = max(reg.upload_timeout_s, reg.http_timeout_s) if _env_state["uploads"] else reg.http_timeout_s
    os.environ.update({_TIMEOUT: str(timeout), _RETRIES: str(reg.http_max_retries),
                       _BACKOFF: str(reg.http_backoff_factor)})


@contextmanager
def http_settings(reg: RegisterSection):
    """MLflow's HTTP timeout, retries and backoff from register.* for the calls inside (config wins over
    variables already set: the run config is the one place settings live)."""
    with _env_lock:
        if _env_state["users"] == 0:
            _env_state["saved"] = {k: os.environ.get(k) for k in (_TIMEOUT, _RETRIES, _BACKOFF)}
        _env_state["users"] += 1
        _env_state["settings"] = reg
        _apply_http_env()
    try:
        yield
    finally:
        with _env_lock:
            _env_state["users"] -= 1
            if _env_state["users"] == 0:
                for key, value in _env_state["saved"].items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
            else:
                _apply_http_env()


@contextmanager
def long_uploads():
    """Inside http_settings: artifact uploads wait register.upload_timeout_s for the server's answer (a proxying
    server answers only after it stored the whole file). mlflow reads the timeout when a request starts."""
    with _env_lock:
        _env_state["uploads"] += 1
        _apply_http_env()
    try:
        yield
    finally:
        with _env_lock:
            _env_state["uploads"] -= 1
            if _env_state["users"]:
                _apply_http_env()


class _RedactingStream(io.TextIOBase):
    """stderr, with credentials masked: mlflow prints "View run ... at: <tracking URI>/#/..." on stdout."""

    def __init__(self, target):
        self._target = target

    def write(self, text: str) -> int:
        self._target.write(redact_text(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()


def stdout_to_stderr():
    """MLflow's chatter on stdout ("View run ... at: <tracking URI>") to stderr, redacted: stdout carries the
    command's JSON result only."""
    return redirect_stdout(_RedactingStream(sys.stderr))


@contextmanager
def mlflow_errors(uri: str, doing: str):
    """MLflow and HTTP failures become one-line StorageErrors naming the server (redacted) and the step;
    MLflow's stdout goes to stderr (stdout_to_stderr)."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    try:
        with stdout_to_stderr():
            yield
    except (MlflowException, RequestException, OSError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        first = message.splitlines()[0] if message else type(exc).__name__
        error = StorageError(redact_text(f"MLflow at {redact_uri(uri)}: {doing}: {first}"))
        # mlflow's own message holds the request URL, user info and all: a traceback (KFP prints one) must
        # not carry it, so the cause is chained only when it holds no credentials.
        raise error from (exc if redact_text(str(exc)) == str(exc) else None)
