"""The TrainJob that trains across machines (train.nodes > 1), as a plain manifest.

    trainjob_manifest(cfg, name=..., namespace=..., data_uri=..., base_model=..., output_uri=...) -> dict

Kubeflow Trainer (k8s/trainer, v2.3.0) runs it with the ClusterTrainingRuntime `train.trainjob.runtime`
(`torch-distributed`): `train.nodes` pods, each with the torch runtime's PET_* variables (number of nodes,
processes per node, this node's rank, the master's address), under which `torchrun` starts
`train.num_processes` train workers per node (components/train/worker.py, the code `finegate train --set
train.num_processes=N` runs in one pod). The nodes read the splits and the base model from S3, mirror
checkpoints to `train.checkpoint_uri` (S3: the nodes share no disk), and rank 0 writes the stage output to
`output_uri`. The pods get what the pipeline's train task gets (pipelines/pipeline.py): the S3 identity
from the finegate-s3 secret, `cluster.train`'s requests and limits with its GPUs on every node, the GPU
toleration and node labels, the scratch volume as TMPDIR, the model cache, and the restricted pod security
profile; plus a memory-backed /dev/shm, which NCCL uses between the GPUs of a node.

The manifest is checked against the pinned Trainer release's API (components/train/trainjob_schema.py)
before it is returned. components/train/trainjob_run.py creates it and waits for it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from components.common import storage
from components.common.config import RunConfig
from components.common.errors import ConfigError
from components.train.data_parallel import worker_args
from components.train.trainjob_schema import API_VERSION, KIND, validate_trainjob

# The pipeline's S3 identity (k8s/secrets; pipelines/pipeline.py gives the same keys to every task).
S3_SECRET = "finegate-s3"
S3_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")
SCRATCH = "/scratch"
MODEL_CACHE = "/model-cache"
SHM = "/dev/shm"
# The container Trainer's torch runtime starts on every node (manifests/base/runtimes/torch_distributed.yaml).
NODE_CONTAINER = "node"
NODE_JOB = "node"
PATCH_MANAGER = "finegate"
# Pods of a TrainJob carry this, so k8s/network lets them reach MinIO.
NODE_LABELS = {"app.kubernetes.io/name": "finegate-train-node", "app.kubernetes.io/part-of": "finegate"}
OUTPUT_ANNOTATION = "finegate.io/output-uri"
# TrainJob names are RFC 1035 labels of at most 63 characters (a CEL rule of the v2.3.0 CRD).
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def trainjob_name(run_id: str) -> str:
    """One TrainJob per run id, so a retried train task finds the job its first attempt created."""
    return "finegate-train-" + hashlib.sha256(run_id.encode()).hexdigest()[:12]


def check_trainjob_inputs(cfg: RunConfig, data_uri: str, base_model: str, output_uri: str) -> None:
    """What nodes that share no disk with the train task need: everything they read or write on S3."""
    problems = []
    if cfg.train.nodes < 2:
        problems.append(f"train.nodes={cfg.train.nodes}: a TrainJob is for 2 or more nodes")
    if not storage.is_s3(data_uri):
        problems.append(f"the splits ({data_uri}) are not on S3: run the pipeline on the cluster, whose pipeline "
                        "root is s3://")
    if not storage.is_s3(output_uri):
        problems.append(f"the output ({output_uri}) is not on S3: set train.output_uri=s3://...")
    if not storage.is_s3(base_model) and (base_model.startswith((".", "/")) or base_model.count("/") > 1):
        problems.append(f"train.base_model={base_model} is a local folder; give a hub id or an s3:// prefix")
    if cfg.train.checkpoint_uri and not storage.is_s3(cfg.train.checkpoint_uri):
        problems.append(f"train.checkpoint_uri={cfg.train.checkpoint_uri} is not on S3, where every node can reach it")
    gpus = cfg.cluster.train.gpus
    if gpus and cfg.train.num_processes > gpus:
        problems.append(f"train.num_processes={cfg.train.num_processes} exceeds cluster.train.gpus={gpus}: one "
                        "process per GPU")
    if problems:
        raise ConfigError("train.nodes > 1 (a TrainJob): " + "; ".join(problems))


def trainjob_manifest(cfg: RunConfig, *, name: str, namespace: str, data_uri: str, base_model: str,
                      output_uri: str, image: str | None = None) -> dict[str, Any]:
    """The TrainJob for this run, valid against Kubeflow Trainer v2.3.0's API (raises ConfigError otherwise)."""
    from components.common.images import TRAIN_IMAGE

    check_trainjob_inputs(cfg, data_uri, base_model, output_uri)
    if len(name) > 63 or not _NAME.match(name):
        raise ConfigError(f"TrainJob name {name!r}: must be a lowercase RFC 1035 label of at most 63 characters")
    resources = cfg.cluster.train
    env = [{"name": key, "valueFrom": {"secretKeyRef": {"name": S3_SECRET, "key": key}}} for key in S3_ENV_KEYS]
    if resources.scratch:
        env.append({"name": "TMPDIR", "value": SCRATCH})
    if cfg.cluster.model_cache_pvc:
        env.append({"name": "HF_HOME", "value": f"{MODEL_CACHE}/huggingface"})
    limits: dict[str, Any] = {"cpu": resources.cpu_limit, "memory": resources.memory_limit}
    if resources.gpus:
        limits["nvidia.com/gpu"] = str(resources.gpus)
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, "labels": dict(NODE_LABELS),
                     "annotations": {OUTPUT_ANNOTATION: output_uri}},
        "spec": {
            "runtimeRef": {"name": cfg.train.trainjob.runtime},
            "activeDeadlineSeconds": cfg.train.trainjob.timeout_s,
            "trainer": {
                "image": image or cfg.train.trainjob.image or TRAIN_IMAGE,
                "command": ["torchrun", *worker_args(data_uri, base_model, output_uri, cfg)],
                "numNodes": cfg.train.nodes,
                "numProcPerNode": cfg.train.num_processes,
                "resourcesPerNode": {"requests": {"cpu": resources.cpu_request, "memory": resources.memory_request},
                                     "limits": limits},
                "env": env,
            },
            "runtimePatches": [{"manager": PATCH_MANAGER,
                                "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [
                                    {"name": NODE_JOB, "template": {"spec": {"template": _pod_patch(cfg)}}}]}}}}],
        },
    }
    validate_trainjob(manifest)
    return manifest


def _pod_patch(cfg: RunConfig) -> dict[str, Any]:
    """The node pods' labels, security, volumes and placement, as a runtime patch of the pod template."""
    settings, resources = cfg.cluster, cfg.cluster.train
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory",
                                                                  "sizeLimit": cfg.train.trainjob.shm_size}}]
    mounts: list[dict[str, Any]] = [{"name": "dshm", "mountPath": SHM}]
    if resources.scratch:
        volumes.append({"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": resources.scratch}}}}}})
        mounts.append({"name": "scratch", "mountPath": SCRATCH})
    if settings.model_cache_pvc:
        volumes.append({"name": "model-cache", "persistentVolumeClaim": {"claimName": settings.model_cache_pvc}})
        mounts.append({"name": "model-cache", "mountPath": MODEL_CACHE})
    spec: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": settings.run_as_user,
                            "runAsGroup": settings.run_as_user, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": NODE_CONTAINER, "volumeMounts": mounts,
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
        "volumes": volumes,
    }
    if resources.gpus:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        if settings.gpu_node_selector:
            spec["nodeSelector"] = dict(settings.gpu_node_selector)
    return {"metadata": {"labels": dict(NODE_LABELS)}, "spec": spec}
