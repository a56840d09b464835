"""No credential is committed: every password in k8s/ comes from a file that k8s/secrets/generate.sh writes
(gitignored), kustomize refuses to build without it, and the script's passwords are random, kept across
re-runs, and the same value wherever one identity is used."""

from __future__ import annotations

import base64
import re
import shutil
import stat
import subprocess

from tests.platform.kustomize import kustomize, render
from tests.platform.repo_files import (
    K8S,
    REPO,
    containers,
    file_value,
    generated_secrets,
    generator_files,
    k8s_objects,
    kustomizations,
    pod_spec,
    secret_values,
)

CREDENTIAL_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE", re.I)
GENERATED = K8S / "secrets" / "generated"


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)


def test_every_credential_in_a_secret_comes_from_a_generated_file_outside_git():
    problems, checked = [], 0
    sources = {file_value(src): src for path, kust in kustomizations()
               for entry in kust.get("secretGenerator", []) for src in generator_files(path, entry).values()}
    for o in k8s_objects():
        if o.kind != "Secret":
            continue
        for key, value in secret_values(o).items():
            if not CREDENTIAL_KEY.search(key):
                continue
            checked += 1
            source = sources.get(value)
            if source is None:
                problems.append(f"{o.where}: {key} is a literal value, not a generated file")
            elif _git("check-ignore", "-q", str(source)).returncode != 0:
                problems.append(f"{o.where}: {key} comes from {source}, which git does not ignore")
            elif _git("ls-files", "--error-unmatch", str(source)).returncode == 0:
                problems.append(f"{o.where}: {key} comes from {source}, which is committed")
    assert checked >= 4, "expected the MinIO, S3 (x2) and PostgreSQL passwords among the Secrets"
    assert not problems, "\n".join(problems)


def test_no_pod_gets_a_credential_as_a_literal_environment_value():
    problems = [f"{o.where}: container {c['name']} sets {e['name']} literally"
                for o in k8s_objects() if pod_spec(o) for c in containers(pod_spec(o))
                for e in c.get("env", []) if CREDENTIAL_KEY.search(e["name"]) and "value" in e]
    assert not problems, "\n".join(problems)


def test_no_committed_file_under_k8s_holds_a_placeholder_password():
    tracked = _git("ls-files", "k8s").stdout.split()
    assert tracked, "git ls-files found nothing under k8s/"
    offenders = [p for p in tracked if re.search(r"change-?me", (REPO / p).read_text(encoding="utf-8"), re.I)]
    assert not offenders, f"placeholder credentials committed in {offenders}"


def _copy_without_generated(tmp_path):
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("generated"))
    return copy


def test_kustomize_stops_when_the_generated_passwords_are_missing(tmp_path):
    copy = _copy_without_generated(tmp_path)
    result = kustomize(copy)
    assert result.returncode != 0, "kubectl kustomize built k8s/ without any password file"
    assert "generated/minio-root-password" in result.stderr, result.stderr


def _decoded(objects: list[dict]) -> dict[tuple[str, str], dict[str, str]]:
    return {(o["metadata"]["namespace"], o["metadata"]["name"]):
            {k: base64.b64decode(v).decode() for k, v in o.get("data", {}).items()}
            for o in objects if o["kind"] == "Secret"}


def test_generate_script_makes_random_passwords_shared_by_one_identity(tmp_path):
    copy = _copy_without_generated(tmp_path / "first")
    subprocess.run([str(copy / "secrets" / "generate.sh")], check=True, capture_output=True)
    secrets = _decoded(render(copy))
    root = secrets[("finegate", "minio-root")]
    password = root["MINIO_ROOT_PASSWORD"]
    assert re.fullmatch(r"[0-9a-f]{48}", password), "expected 24 random bytes as hex"
    for namespace in ("finegate", "kubeflow"):
        s3 = secrets[(namespace, "finegate-s3")]
        assert (s3["AWS_ACCESS_KEY_ID"], s3["AWS_SECRET_ACCESS_KEY"]) == (root["MINIO_ROOT_USER"], password)
    postgres = secrets[("finegate", "mlflow-postgres")]["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"[0-9a-f]{48}", postgres) and postgres != password
    for path in (copy / "secrets" / "generated").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name} is readable by others"

    # A re-run keeps what a running cluster already uses; another checkout gets other passwords.
    subprocess.run([str(copy / "secrets" / "generate.sh")], check=True, capture_output=True)
    assert _decoded(render(copy))[("finegate", "minio-root")]["MINIO_ROOT_PASSWORD"] == password
    other = _copy_without_generated(tmp_path / "second")
    subprocess.run([str(other / "secrets" / "generate.sh")], check=True, capture_output=True)
    assert _decoded(render(other))[("finegate", "minio-root")]["MINIO_ROOT_PASSWORD"] != password


def test_rendered_secrets_are_the_ones_the_tests_read(tmp_path):
    # generated_secrets() models kustomize's secretGenerator; this keeps the model honest.
    copy = _copy_without_generated(tmp_path)
    subprocess.run([str(copy / "secrets" / "generate.sh")], check=True, capture_output=True)
    rendered = {key: set(values) for key, values in _decoded(render(copy)).items()}
    modelled = {(o.namespace, o.name): set(secret_values(o)) for o in generated_secrets()}
    assert rendered == modelled


def test_kind_up_generates_the_passwords_before_anything_is_applied():
    script = (K8S / "kind" / "create.sh").read_text(encoding="utf-8")
    generate = script.find("secrets/generate.sh")
    assert generate != -1, "k8s/kind/create.sh does not run k8s/secrets/generate.sh"
    assert generate < script.find("kind create cluster")
