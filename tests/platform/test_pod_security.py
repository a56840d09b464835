"""Every pod k8s/ runs passes Pod Security "restricted" (tests/platform/pod_security.py), the `finegate`
namespace enforces it, and k8s/ leaves KFP's `kubeflow` namespace and its labels alone."""

from __future__ import annotations

import copy

import pytest
import yaml
from kfp import compiler, dsl, kubernetes

from tests.platform.pod_security import numeric_non_root_user, pipeline_task_violations, restricted_violations
from tests.platform.repo_files import k8s_objects, pod_spec

RESTRICTED_LABELS = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}


def _pods():
    return [o for o in k8s_objects() if pod_spec(o) is not None]


def _annotations(o) -> dict:
    if o.kind == "Pod":
        return o.body.get("metadata", {}).get("annotations") or {}
    return o.body.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}


def test_k8s_has_the_pods_this_test_is_about():
    kinds = {(o.kind, o.name) for o in _pods()}
    assert {("Deployment", "minio"), ("Deployment", "mlflow"), ("StatefulSet", "mlflow-postgres"),
            ("Job", "create-buckets"), ("Pod", "gpu-smoke-test")} <= kinds


@pytest.mark.parametrize("obj", _pods(), ids=lambda o: f"{o.kind}/{o.name}")
def test_pod_passes_the_restricted_profile(obj):
    problems = restricted_violations(pod_spec(obj), _annotations(obj)) + numeric_non_root_user(pod_spec(obj))
    assert not problems, f"{obj.where}:\n" + "\n".join(problems)


def _restricted_pod() -> dict:
    return {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "x:1", "securityContext": {
                "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "d"}}]}


@pytest.mark.parametrize("change, control", [
    (lambda s: s["securityContext"].pop("runAsNonRoot"), "Running as Non-root"),
    (lambda s: s["containers"][0]["securityContext"].update(runAsNonRoot=False), "Running as Non-root"),
    (lambda s: s["containers"][0]["securityContext"].update(runAsUser=0), "Running as Non-root user"),
    (lambda s: s["securityContext"].pop("seccompProfile"), "Seccomp"),
    (lambda s: s["containers"][0]["securityContext"].update(seccompProfile={"type": "Unconfined"}), "Seccomp"),
    (lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"), "Privilege Escalation"),
    (lambda s: s["containers"][0]["securityContext"].update(capabilities={"drop": ["NET_RAW"]}), "Capabilities"),
    (lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]), "Capabilities"),
    (lambda s: s["volumes"].append({"name": "host", "hostPath": {"path": "/"}}), "HostPath Volumes"),
    (lambda s: s["volumes"].append({"name": "nfs", "nfs": {"server": "a", "path": "/"}}), "Volume Types"),
    (lambda s: s.update(hostNetwork=True), "Host Namespaces"),
    (lambda s: s["containers"][0]["securityContext"].update(privileged=True), "Privileged Containers"),
    (lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]), "Host Ports"),
    (lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]), "Sysctls"),
    (lambda s: s.update(initContainers=[{"name": "init", "image": "x:1"}]), "Privilege Escalation"),
])
def test_each_restricted_rule_is_checked(change, control):
    assert restricted_violations(_restricted_pod()) == []
    broken = copy.deepcopy(_restricted_pod())
    change(broken)
    assert any(p.startswith(control + ":") for p in restricted_violations(broken)), restricted_violations(broken)


def test_finegate_namespace_enforces_restricted():
    namespaces = {o.name: o.body for o in k8s_objects() if o.kind == "Namespace"}
    labels = namespaces["finegate"]["metadata"].get("labels", {})
    assert RESTRICTED_LABELS.items() <= labels.items(), labels


def test_k8s_does_not_redeclare_kfps_namespace():
    # KFP's cluster-scoped manifests create `kubeflow` with their own Pod Security labels (enforce baseline,
    # warn restricted at 2.17.0); an applied copy without them would delete them.
    assert not [o.where for o in k8s_objects() if o.kind == "Namespace" and o.name == "kubeflow"]


def _compiled_platform_spec(tmp_path, with_security_context: bool) -> tuple[dict, list[str]]:
    @dsl.component(base_image="python:3.11")
    def step():
        print("ok")

    @dsl.pipeline(name="restricted-check")
    def pipeline():
        task = step()
        if with_security_context:
            kubernetes.set_security_context(task, run_as_user=10001, run_as_non_root=True)

    path = tmp_path / "p.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    executors = list(documents[0]["deploymentSpec"]["executors"])
    platform = next((d for d in documents[1:] if "platforms" in d), {})
    return platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {}), executors


def test_pipeline_task_check_reads_kfp_kubernetes_security_context(tmp_path):
    # The check the lead runs on the compiled pipeline, proven on a pipeline compiled by the same kfp.
    settings, executors = _compiled_platform_spec(tmp_path, with_security_context=True)
    assert pipeline_task_violations(settings, executors) == {}
    settings, executors = _compiled_platform_spec(tmp_path, with_security_context=False)
    assert set(pipeline_task_violations(settings, executors)) == set(executors)
