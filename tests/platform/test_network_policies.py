"""k8s/network says who may talk to whom in `finegate`; these tests ask it, through the evaluator in
tests/platform/network_policy.py, about the pods k8s/ really runs and the KFP pods outside it."""

from __future__ import annotations

import pytest

from tests.platform.network_policy import Pod, allowed
from tests.platform.repo_files import containers, k8s_objects, pod_labels, pod_spec

PIPELINE_POD = Pod("kubeflow", {"pipelines.kubeflow.org/v2_component": "true",
                                "workflows.argoproj.io/workflow": "finegate-x"}, name="pipeline pod")
KFP_UI = Pod("kubeflow", {"app": "ml-pipeline-ui"}, name="KFP UI")
KFP_API = Pod("kubeflow", {"app": "ml-pipeline"}, name="KFP API server")
ELSEWHERE = Pod("default", {"app": "anything"}, name="a pod in another namespace")
SPOOF = Pod("default", {"pipelines.kubeflow.org/v2_component": "true"}, name="pipeline label, wrong namespace")
KUBE_DNS = Pod("kube-system", {"k8s-app": "kube-dns"}, {"dns": (53, "UDP"), "dns-tcp": (53, "TCP")}, name="DNS")


def _policies() -> list[dict]:
    return [o.body for o in k8s_objects() if o.kind == "NetworkPolicy"]


def _finegate_pods() -> dict[str, Pod]:
    pods = {}
    for o in k8s_objects():
        spec = pod_spec(o)
        if spec is None or o.namespace != "finegate":
            continue
        ports = {p["name"]: (p["containerPort"], p.get("protocol", "TCP"))
                 for c in containers(spec) for p in c.get("ports", []) if "name" in p}
        pods[o.name] = Pod("finegate", pod_labels(o), ports, name=o.name)
    return pods


PODS = _finegate_pods()
POLICIES = _policies()
OUTSIDE = [PIPELINE_POD, KFP_UI, KFP_API, ELSEWHERE, SPOOF]


def _callers(destination: Pod, port: int) -> set[str]:
    everyone = list(PODS.values()) + OUTSIDE
    return {p.name for p in everyone if p is not destination and allowed(POLICIES, p, destination, port)}


def test_the_pods_the_intents_name_exist():
    assert {"minio", "mlflow", "mlflow-postgres", "create-buckets"} <= set(PODS)


def test_postgres_accepts_only_mlflow():
    assert _callers(PODS["mlflow-postgres"], 5432) == {"mlflow"}


def test_minio_s3_accepts_pipeline_pods_mlflow_and_the_bucket_job():
    assert _callers(PODS["minio"], 9000) == {"pipeline pod", "mlflow", "create-buckets"}


def test_minio_console_is_for_port_forwards_only():
    assert _callers(PODS["minio"], 9001) == set()


def test_mlflow_accepts_the_kfp_namespace_only():
    assert _callers(PODS["mlflow"], 5000) == {"pipeline pod", "KFP UI", "KFP API server"}


@pytest.mark.parametrize("name", sorted(PODS))
def test_every_finegate_pod_resolves_names_and_reaches_nothing_else_outside(name):
    pod = PODS[name]
    assert allowed(POLICIES, pod, KUBE_DNS, 53, "UDP") and allowed(POLICIES, pod, KUBE_DNS, 53, "TCP")
    assert not allowed(POLICIES, pod, KUBE_DNS, 443)
    assert not any(allowed(POLICIES, pod, other, 443) for other in OUTSIDE)


@pytest.mark.parametrize("name", sorted(PODS))
def test_every_finegate_pod_is_closed_to_ports_it_does_not_serve(name):
    assert not any(allowed(POLICIES, other, PODS[name], 22) for other in list(PODS.values()) + OUTSIDE)


def test_evaluator_opens_what_no_policy_selects_and_closes_on_default_deny():
    # Guards the tests above: an evaluator that denied (or allowed) everything would pass some of them.
    a, b = Pod("ns", {"app": "a"}), Pod("ns", {"app": "b"})
    assert allowed([], a, b, 80)
    deny = {"metadata": {"name": "deny", "namespace": "ns"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    assert not allowed([deny], a, b, 80)
    allow_a = {"metadata": {"name": "a", "namespace": "ns"}, "spec": {
        "podSelector": {"matchLabels": {"app": "b"}},
        "ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]}}],
                     "ports": [{"port": 80}]}]}}
    assert allowed([deny, allow_a], a, b, 80) and not allowed([deny, allow_a], a, b, 81)
    assert not allowed([deny, allow_a], Pod("other", {"app": "a"}), b, 80)


def test_trainjob_nodes_reach_minio_s3_from_the_pipeline_namespace_only():
    from components.train.trainjob import NODE_LABELS

    node = Pod("kubeflow", dict(NODE_LABELS), name="TrainJob node")
    assert allowed(POLICIES, node, PODS["minio"], 9000)
    assert not allowed(POLICIES, node, PODS["minio"], 9001)
    assert not allowed(POLICIES, Pod("default", dict(NODE_LABELS), name="spoof"), PODS["minio"], 9000)
