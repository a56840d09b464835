"""k8s/mlflow's server command, run for real: the arguments and backend URI read from the Deployment (only
the in-cluster addresses swapped for loopback ones), against a real PostgreSQL and the real S3 server, and
a model version registered through it. This is what caught the crash loop: the manifest said
`postgresql://`, which SQLAlchemy 2.1 maps to psycopg 3, a driver the MLflow image does not install."""

from __future__ import annotations

import os
import pathlib
import re
import secrets
import subprocess
import sys
import uuid
from urllib.parse import urlparse

import pytest
import sqlalchemy.engine

from components.common import storage
from tests.fixtures.servers import free_port, stop, wait_http
from tests.platform.repo_files import (
    IMAGES,
    containers,
    dockerfile_instructions,
    k8s_objects,
    pod_spec,
    requirement_lines,
    requirement_name,
    secret_values,
)

pytestmark = pytest.mark.slow  # starts PostgreSQL and an mlflow server on it

# The Python module each SQLAlchemy PostgreSQL driver imports, and the PyPI names that provide it.
DRIVER_PACKAGES = {"psycopg2": {"psycopg2", "psycopg2-binary"}, "psycopg": {"psycopg", "psycopg-binary"},
                   "pg8000": {"pg8000"}, "asyncpg": {"asyncpg"}}


def _mlflow_container() -> dict:
    deployment = next(o for o in k8s_objects() if o.kind == "Deployment" and o.name == "mlflow")
    return containers(pod_spec(deployment))[0]


def _arg(args: list[str], flag: str) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith(flag + "="))


def _secret(name: str) -> dict[str, str]:
    return secret_values(next(o for o in k8s_objects() if o.kind == "Secret" and o.name == name
                              and o.namespace == "finegate"))


def test_backend_uri_driver_is_one_the_mlflow_image_installs():
    uri = _arg(_mlflow_container()["args"], "--backend-store-uri")
    driver = sqlalchemy.engine.make_url(re.sub(r"\$\((\w+)\)", "x", uri)).get_dialect().driver
    installed = {requirement_name(line) for line in requirement_lines(IMAGES / "mlflow" / "requirements.txt")}
    assert DRIVER_PACKAGES[driver] & installed, (
        f"{uri}: SQLAlchemy {sqlalchemy.__version__} loads the {driver!r} driver for it, which "
        f"images/mlflow/requirements.txt does not install ({sorted(installed)})")


def _server_command(args: list[str], env: dict[str, str], postgres_host: str, port: int) -> list[str]:
    """The image's entrypoint + the manifest's args with $(VAR)s expanded as the kubelet does, and the three
    in-cluster addresses replaced by loopback ones."""
    entrypoint = next(i for i in dockerfile_instructions(IMAGES / "mlflow" / "Dockerfile") if i.keyword == "ENTRYPOINT")
    assert entrypoint.args == '["mlflow", "server"]', f"images/mlflow's entrypoint changed: {entrypoint.args}"
    expanded = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in args]
    uri = _arg(expanded, "--backend-store-uri")
    local_uri = uri.replace(urlparse(uri).hostname + f":{urlparse(uri).port}", postgres_host)
    swap = {"--host": "127.0.0.1", "--port": str(port), "--backend-store-uri": local_uri}
    command = [sys.executable, "-m", "mlflow", "server"]
    for a in expanded:
        flag = a.split("=", 1)[0]
        command.append(f"{flag}={swap[flag]}" if flag in swap else a)
    return command


def test_mlflow_server_as_deployed_registers_a_model_version_in_postgres(postgres_server, s3_endpoint, tmp_path):
    container = _mlflow_container()
    credentials = _secret("mlflow-postgres")
    password = secrets.token_hex(24)  # what k8s/secrets/generate.sh makes: hex, 48 characters
    postgres_server.create_database(credentials["POSTGRES_USER"], password, credentials["POSTGRES_DB"])

    # The container's environment: values from the manifest, Secret keys from the generated Secrets, the
    # generated password ours, S3 the session's S3 server.
    env = {}
    for entry in container["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        env[entry["name"]] = _secret(ref["name"])[ref["key"]] if ref else entry["value"]
    env["PGPASSWORD"] = password
    env["MLFLOW_S3_ENDPOINT_URL"] = s3_endpoint
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env[key] = os.environ[key]
    bucket = urlparse(_arg(container["args"], "--artifacts-destination")).netloc
    if bucket not in {b["Name"] for b in storage.s3_client().list_buckets()["Buckets"]}:
        storage.s3_client().create_bucket(Bucket=bucket)

    port = free_port()
    command = _server_command(container["args"], env, f"{postgres_server.host}:{postgres_server.port}", port)
    assert not any(password in part for part in command), "the database password must not be a process argument"
    log_path = tmp_path / "mlflow.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env=dict(os.environ, **env, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
                                         MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"))
        try:
            try:
                wait_http(f"http://127.0.0.1:{port}/health", proc, timeout=240)
            except (RuntimeError, TimeoutError) as exc:
                pytest.fail(f"mlflow server from k8s/mlflow: {exc}; its log ends:\n{log_path.read_text()[-3000:]}")
            name = _register_and_read_back(f"http://127.0.0.1:{port}", tmp_path)
        finally:
            stop(proc)
    rows = postgres_server.psql(f"SELECT name, alias FROM registered_model_aliases WHERE name = '{name}'",
                                database=credentials["POSTGRES_DB"])
    assert rows.split() == [f"{name}|challenger"], "the alias is not in PostgreSQL"


def _register_and_read_back(url: str, tmp_path) -> str:
    """A flavor-less logged model (as the register stage logs a GGUF), a version of it, the `challenger`
    alias, and the file read back through the alias; returns the registered model's name."""
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.entities import LoggedModelStatus

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    name = f"pg-{uuid.uuid4().hex[:8]}"
    experiment = client.create_experiment(name)
    run = client.create_run(experiment)
    artifact = tmp_path / "model.gguf"
    artifact.write_bytes(b"GGUF" + bytes(range(256)))
    model = client.create_logged_model(experiment, name="model", source_run_id=run.info.run_id, model_type="gguf")
    client.log_model_artifact(model.model_id, str(artifact))
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.create_registered_model(name)
    version = client.create_model_version(name, source=f"models:/{model.model_id}", run_id=run.info.run_id,
                                          model_id=model.model_id)
    client.set_registered_model_alias(name, "challenger", version.version)
    client.set_terminated(run.info.run_id)

    by_alias = client.get_model_version_by_alias(name, "challenger")
    assert (by_alias.name, by_alias.version, by_alias.source) == (name, version.version, f"models:/{model.model_id}")
    # Through the server's artifact proxy (mlflow-artifacts:/...), as a consumer of `challenger` reads it.
    location = client.get_logged_model(by_alias.source.removeprefix("models:/")).artifact_location
    local = download_artifacts(artifact_uri=location, dst_path=str(tmp_path / "back"), tracking_uri=url)
    assert (pathlib.Path(local) / "model.gguf").read_bytes() == artifact.read_bytes(), os.listdir(local)
    return name
