"""TrainJob manifests are checked against the API of the Kubeflow Trainer release k8s/trainer installs
(components/train/trainjob_schema.py): a valid multi-node job passes, and each kind of mistake the API server
would refuse (or, for an unknown field, silently drop) is named."""

from __future__ import annotations

import copy
import re

import pytest

from components.common.errors import FinegateError
from components.train.trainjob_schema import (
    TRAINER_RELEASE,
    schema_version,
    trainjob_problems,
    validate_trainjob,
)
from tests.platform.repo_files import kustomizations


def _multi_node_trainjob() -> dict:
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "finegate-train", "namespace": "kubeflow"},
        "spec": {
            "runtimeRef": {"name": "torch-distributed"},
            "trainer": {
                "image": "localhost:5001/finegate/train:0.1.0",
                "command": ["finegate", "train", "--config", "/config/run.yaml"],
                "numNodes": 2,
                "resourcesPerNode": {"limits": {"nvidia.com/gpu": 1, "memory": "32Gi"}, "requests": {"cpu": "4"}},
                "env": [{"name": "AWS_SECRET_ACCESS_KEY",
                         "valueFrom": {"secretKeyRef": {"name": "finegate-s3", "key": "AWS_SECRET_ACCESS_KEY"}}}],
            },
        },
    }


def test_a_multi_node_trainjob_is_valid():
    assert trainjob_problems(_multi_node_trainjob()) == []
    validate_trainjob(_multi_node_trainjob())


def _break(change) -> dict:
    job = copy.deepcopy(_multi_node_trainjob())
    change(job)
    return job


@pytest.mark.parametrize("change, expected", [
    (lambda j: j["spec"]["trainer"].update(numNode=j["spec"]["trainer"].pop("numNodes")), r"trainer\.numNode: unknown field"),
    (lambda j: j["spec"]["trainer"]["env"][0].update(valueFrm=j["spec"]["trainer"]["env"][0].pop("valueFrom")),
     r"env\[0\]\.valueFrm: unknown field"),
    (lambda j: j["spec"]["trainer"].update(numNodes="2"), r"^Trainer\.numNodes: Input should be a valid integer"),
    (lambda j: j["spec"]["runtimeRef"].pop("name"), r"^RuntimeRef\.name: Input should be a valid string"),
    (lambda j: j.update(apiVersion="kubeflow.org/v1"), r"apiVersion"),
    (lambda j: j["metadata"].pop("name"), r"metadata\.name"),
    (lambda j: j["spec"]["trainer"]["resourcesPerNode"]["limits"].update(memory=["32Gi"]), r"ResourceQuantity with oneOf schemas: float, str"),
])
def test_an_invalid_trainjob_is_refused_with_the_reason(change, expected):
    job = _break(change)
    problems = trainjob_problems(job)
    assert any(re.search(expected, p) for p in problems), problems
    with pytest.raises(FinegateError, match="TrainJob finegate-train|TrainJob \\?"):
        validate_trainjob(job)


def test_schema_package_is_the_release_k8s_installs():
    refs = {str(path): re.search(r"[?&]ref=([^&]+)", entry).group(1) for path, kust in kustomizations()
            for entry in kust.get("resources", []) if "kubeflow/trainer" in entry}
    assert len(refs) == 2, f"expected k8s/trainer/manager and k8s/trainer/runtimes, found {refs}"
    assert set(refs.values()) == {TRAINER_RELEASE} == {schema_version()}, (
        f"Trainer manifests {refs}, schema module says {TRAINER_RELEASE}, kubeflow-trainer-api is {schema_version()}")
