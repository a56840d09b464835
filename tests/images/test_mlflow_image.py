"""The mlflow image serves k8s/mlflow's Deployment as written, against a real PostgreSQL: its args and
environment are read from the manifest and its Secrets, only the cluster's host names become loopback
addresses. A tiny GGUF is registered through it from this host, given an alias, and fetched back by alias
(finegate's own fetch, which checks the sha256), with the registry rows in PostgreSQL and the file in S3."""

from __future__ import annotations

import re
import secrets
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from components.common.storage import sha256_file
from components.register.fetch import fetch_gguf
from components.register.run_dir import TAG
from tests.fixtures.postgres import running_postgres
from tests.fixtures.servers import free_port
from tests.images.docker_cli import docker, image_uid_gid
from tests.platform.repo_files import K8S, is_file_value, k8s_objects, secret_values

pytestmark = pytest.mark.docker

DEPLOYMENT = K8S / "mlflow" / "deployment.yaml"
CLUSTER_DATABASE = "mlflow-postgres"  # the Service the backend URI names (k8s/mlflow/postgres-service.yaml)


def _secret_value(name: str, key: str, generated: dict[tuple[str, str], str]) -> str:
    """A Secret key as the pod would get it: the value k8s/ commits where it commits one, else a value made
    here as k8s/secrets/generate.sh makes one per cluster (a password read from a generated file is never
    committed: kustomize's secretGenerator reads it from k8s/secrets/generated/)."""
    for obj in k8s_objects():
        if obj.kind == "Secret" and obj.name == name and obj.namespace == "finegate":
            values = secret_values(obj)
            if key in values and not is_file_value(values[key]):
                return values[key]
    if (name, key) not in generated:
        generated[(name, key)] = {"POSTGRES_USER": "mlflow", "POSTGRES_DB": "mlflow"}.get(key, secrets.token_hex(24))
    return generated[(name, key)]


def _container_env(container: dict, generated: dict[tuple[str, str], str]) -> dict[str, str]:
    """The container's environment as the kubelet gives it: plain values, and Secret keys."""
    env = {}
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        env[var["name"]] = _secret_value(ref["name"], ref["key"], generated) if ref else var["value"]
    return env


def _expanded_args(container: dict, env: dict[str, str], postgres_port: int, port: int) -> list[str]:
    """The manifest's args with $(VAR) expanded as the kubelet does, and the in-cluster addresses made
    loopback ones: the database Service's host:port in the backend URI, the server's own --host/--port."""
    args = []
    for arg in container["args"]:
        flag, _, value = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg).partition("=")
        if flag == "--backend-store-uri":
            parts = urlsplit(value)
            assert parts.hostname.split(".")[0] == CLUSTER_DATABASE, f"the backend URI names {parts.hostname}"
            value = urlunsplit(parts._replace(netloc=parts.netloc.replace(f"{parts.hostname}:{parts.port}",
                                                                          f"127.0.0.1:{postgres_port}")))
        value = {"--host": "127.0.0.1", "--port": str(port)}.get(flag, value)
        args.append(f"{flag}={value}")
    return args


def _security_options(pod: dict, container: dict) -> list[str]:
    """What the pod's and container's securityContext ask of the runtime, as docker run options."""
    pod_context, own = pod.get("securityContext", {}), container.get("securityContext", {})
    options = [f"--user={pod_context['runAsUser']}:{pod_context.get('runAsGroup', pod_context['runAsUser'])}"]
    options += [f"--cap-drop={cap}" for cap in own.get("capabilities", {}).get("drop", [])]
    if own.get("allowPrivilegeEscalation") is False:
        options.append("--security-opt=no-new-privileges")
    return options


def _tiny_gguf(path: Path) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("images-check tiny model")
    writer.add_tensor("token_embd.weight", np.arange(64, dtype=np.float32).reshape(8, 8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def mlflow_container(images, s3_endpoint, tmp_path):
    """(server URL, PostgreSQL, database name, artifact bucket) while the mlflow image serves."""
    import yaml

    from components.common import storage

    ref = images["mlflow"]
    pod = yaml.safe_load(DEPLOYMENT.read_text(encoding="utf-8"))["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "mlflow")
    assert image_uid_gid(ref)[0] == pod["securityContext"]["runAsUser"], \
        f"{ref}'s USER is not the uid {DEPLOYMENT.name} runs it as"
    generated: dict[tuple[str, str], str] = {}  # one value per Secret key, shared by the pod and the database
    env = _container_env(container, generated)
    env["MLFLOW_S3_ENDPOINT_URL"] = s3_endpoint  # the S3 server here stands for MinIO
    user, password, database = (_secret_value("mlflow-postgres", key, generated) for key in
                                ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"))
    with running_postgres() as postgres:
        postgres.create_database(user, password, database)
        port = free_port()
        args = _expanded_args(container, env, postgres.port, port)
        backend = next(a for a in args if a.startswith("--backend-store-uri="))
        # Said before the server dies of it: SQLAlchemy 2.1 reads a bare postgresql:// as the psycopg 3 driver.
        names_psycopg2 = backend.startswith("--backend-store-uri=postgresql+psycopg2://")  # (no URI in the message)
        assert names_psycopg2, "k8s/mlflow's backend URI must name the driver the image holds: postgresql+psycopg2://"
        bucket = re.search(r"--artifacts-destination=s3://([^/]+)", " ".join(args)).group(1)
        storage.s3_client().create_bucket(Bucket=bucket)  # in the cluster, k8s/minio's bucket Job makes it
        env_file = tmp_path / "mlflow.env"  # not -e: the password stays out of every process's arguments
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
        env_file.chmod(0o600)
        name = f"finegate-mlflow-check-{uuid.uuid4().hex[:8]}"
        # Host network: the server reaches PostgreSQL and S3 on this host's loopback, as pods reach services.
        docker("run", "-d", "--name", name, "--network", "host", "--env-file", str(env_file),
               *_security_options(pod, container), ref, *args)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, name)
            yield url, postgres, database, bucket
        finally:
            docker("rm", "-f", name, check=False)


def _wait_healthy(url: str, container: str, timeout: float = 240) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            return
        except OSError:
            running = docker("inspect", "-f", "{{.State.Running}}", container, check=False).stdout.strip()
            if running != "true":
                break
            time.sleep(1)
    logs = docker("logs", "--tail", "40", container, check=False)
    raise AssertionError(f"the mlflow container never answered {url}/health; its log ends:\n"
                         f"{(logs.stdout + logs.stderr)[-4000:]}")


def test_a_model_registered_through_the_mlflow_image_is_stored_in_postgres_and_fetched_by_alias(
        mlflow_container, tmp_path):
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus

    url, postgres, database, bucket = mlflow_container
    gguf_path = _tiny_gguf(tmp_path / "model-Q8_0.gguf")
    digest = sha256_file(gguf_path)
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    name = f"images-check-{uuid.uuid4().hex[:8]}"
    experiment = client.create_experiment(name)
    run = client.create_run(experiment)
    model = client.create_logged_model(experiment, name="tiny", source_run_id=run.info.run_id, model_type="gguf")
    client.log_model_artifact(model.model_id, str(gguf_path))
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.create_registered_model(name)
    version = client.create_model_version(name, source=f"models:/{model.model_id}", run_id=run.info.run_id,
                                          model_id=model.model_id,
                                          tags={f"{TAG}gguf.file": gguf_path.name, f"{TAG}gguf.sha256": digest})
    client.set_registered_model_alias(name, "challenger", version.version)
    client.set_terminated(run.info.run_id)

    fetched = fetch_gguf(name, "challenger", tmp_path / "fetched", tracking_uri=url)
    assert fetched.read_bytes() == gguf_path.read_bytes()
    rows = postgres.psql(f"SELECT alias, version FROM registered_model_aliases WHERE name = '{name}'", database).strip()
    assert rows == f"challenger|{version.version}", f"PostgreSQL holds {rows!r} for {name}'s aliases"
    from components.common import storage

    keys = [o["Key"] for o in storage.s3_client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(k.endswith(f"/{gguf_path.name}") for k in keys), f"s3://{bucket} holds {keys}, not {gguf_path.name}"
