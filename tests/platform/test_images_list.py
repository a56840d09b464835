"""`finegate images` lists every image a finegate cluster pulls (pipelines/images_cli.py), in the form a
mirror needs, and k8s/upstream-images.yaml stays in step with the refs k8s/ pins."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from pipelines.images_cli import normalize
from tests.platform.repo_files import K8S, REPO, containers, k8s_objects, kustomizations, load_all, pod_spec

# A pullable reference: host, path, and a tag or digest (never an implicit :latest).
PINNED = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[\w][\w.-]*)?(@sha256:[0-9a-f]{64})?$")


def _finegate(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "images", *args], capture_output=True, text=True,
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})), timeout=120)


@pytest.fixture(scope="module")
def listed() -> list[str]:
    result = _finegate()
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("image, full", [
    ("postgres:16", "docker.io/library/postgres:16"),
    ("pytorch/pytorch:2.1", "docker.io/pytorch/pytorch:2.1"),
    ("quay.io/minio/minio:R", "quay.io/minio/minio:R"),
    ("localhost:5001/finegate/data:0.1.0", "localhost:5001/finegate/data:0.1.0"),
    ("docker.io/alpine:3", "docker.io/library/alpine:3"),
])
def test_normalize_makes_docker_hub_explicit(image, full):
    assert normalize(image) == full


def test_every_image_k8s_runs_is_listed(listed):
    in_manifests = {normalize(c["image"]) for o in k8s_objects() if pod_spec(o) for c in containers(pod_spec(o))}
    kind_node = load_all(K8S / "kind" / "cluster.yaml")[0]["nodes"][0]["image"]
    registry = re.search(r"^reg_image='([^']+)'", (K8S / "kind" / "create.sh").read_text(), re.M).group(1)
    wanted = in_manifests | {normalize(kind_node), normalize(registry)}
    assert wanted <= set(listed), f"not listed: {sorted(wanted - set(listed))}"
    assert {"docker.io/library/postgres:16.9-bookworm", "ghcr.io/kubeflow/kfp-launcher:2.17.0",
            "quay.io/argoproj/argoexec:v4.0.5", "ghcr.io/kubeflow/trainer/trainer-controller-manager:v2.3.0",
            "nvcr.io/nvidia/k8s-device-plugin:v0.20.0"} <= set(listed)


def test_every_listed_image_is_pinned_and_fully_named(listed):
    bad = [i for i in listed if not PINNED.match(i) or ":" not in i.rsplit("/", 1)[-1] or i.endswith(":latest")]
    assert not bad, f"unpinned or malformed: {bad}"


def test_finegate_images_follow_the_registry_setting():
    result = _finegate(env={"FINEGATE_IMAGE_REGISTRY": "registry.example.com/ml", "FINEGATE_IMAGE_TAG": "9.9.9"})
    own = [i for i in result.stdout.split() if "/ml/" in i]
    assert sorted(own) == [f"registry.example.com/ml/{n}:9.9.9" for n in ("data", "gguf", "mlflow", "train")]
    assert "localhost:5001/finegate" not in result.stdout


def test_mirror_targets_are_one_prefix(listed):
    result = _finegate("--mirror", "mirror.example.com/air")
    pairs = dict(line.split() for line in result.stdout.splitlines())
    assert sorted(pairs) == listed
    for source, target in pairs.items():
        if source.startswith("localhost:5001/finegate/"):
            assert target == "mirror.example.com/air/finegate/" + source.split("/", 2)[2]
        else:
            assert target == f"mirror.example.com/air/{source}"
        assert PINNED.match(target), target
    assert len(set(pairs.values())) == len(pairs)
    hosts = _finegate("--registry-hosts").stdout.split()
    assert set(hosts) == {s.split("/")[0] for s in pairs if not s.startswith("localhost:")}


def test_mirror_setting_comes_from_the_environment_too():
    assert _finegate(env={"FINEGATE_IMAGE_MIRROR": "m.example.com"}).stdout == _finegate("--mirror", "m.example.com").stdout


def test_a_malformed_mirror_is_one_line_and_exit_2():
    result = _finegate("--mirror", "not a registry")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--mirror" in result.stderr


def test_upstream_image_list_matches_the_pinned_refs():
    recorded = yaml.safe_load((K8S / "upstream-images.yaml").read_text())
    remote = {}
    for path, kust in kustomizations():
        for entry in kust.get("resources", []):
            m = re.match(r"https://(?:raw\.githubusercontent\.com|github\.com)/([^/]+)/([^/?]+?)(?:\.git)?/(.*)", entry)
            if m:
                ref = re.search(r"[?&]ref=([^&]+)", entry)
                version = ref.group(1) if ref else m.group(3).split("/")[0]  # raw URLs: /OWNER/NAME/REF/PATH
                remote[str(path.parent.relative_to(REPO))] = (f"github.com/{m.group(1)}/{m.group(2)}", version)
    assert set(recorded["images"]) == set(remote), "re-run scripts/upstream_images.py: kustomizations changed"
    for where, (source, version) in remote.items():
        assert recorded["sources"].get(source) == version, (
            f"{where} pins {source} at {version}; k8s/upstream-images.yaml was made at "
            f"{recorded['sources'].get(source)}: re-run scripts/upstream_images.py")
