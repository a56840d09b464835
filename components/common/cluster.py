"""How each pipeline task runs on a cluster: requests and limits, scratch disk, retries, timeout, GPU.

The `cluster` section of the run config; `pipelines/pipeline.py` applies it to every task when compiling.
KFP's local runner ignores all of it. Each task's defaults are visible here; a YAML file or `--set` changes
one field of one task (`--set cluster.train.memory_limit=80Gi`) and keeps the task's other defaults.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from components.common.section import Section

TASKS = ("policy", "clean", "split", "train", "hf_check", "gguf", "evaluate", "register", "gate_failed")


class TaskResources(Section):
    cpu_request: str = Field("500m", description="Kubernetes CPU request (cores or millicores).")
    cpu_limit: str = Field("1", description="CPU limit.")
    memory_request: str = Field("512Mi", description="Memory request.")
    memory_limit: str = Field("1Gi", description="Memory limit: the pod is killed (OOM) past it.")
    gpus: int = Field(0, ge=0, description="NVIDIA GPUs (nvidia.com/gpu) the task's pod gets.")
    scratch: str | None = Field(None, description=(
        "Size of a generic ephemeral volume mounted at /scratch and used as TMPDIR, where the stage downloads "
        "and writes models: the pod's disk is requested up front instead of evicting it at the node's limit."))
    retries: int = Field(0, ge=0, description="Retries of a failed pod (a lost node, an S3 hiccup); 0: none.")
    backoff_s: int = Field(60, ge=1, description="Wait before the first retry; doubled each time.")
    timeout_s: int = Field(0, ge=0, description="The pod's activeDeadlineSeconds; 0: no timeout.")


def _task(**values: Any) -> TaskResources:
    return TaskResources(**values)


# Sized for a 1-3B base model on one GPU node; the demo's tiny model needs a fraction of this.
DEFAULTS: dict[str, TaskResources] = {
    "policy": _task(cpu_request="100m", cpu_limit="500m", memory_request="256Mi", memory_limit="512Mi",
                    timeout_s=600),
    "clean": _task(cpu_request="2", cpu_limit="4", memory_request="4Gi", memory_limit="8Gi", scratch="20Gi",
                   retries=2, timeout_s=7200),
    "split": _task(cpu_request="1", cpu_limit="2", memory_request="2Gi", memory_limit="8Gi", scratch="20Gi",
                   retries=2, timeout_s=3600),
    "train": _task(cpu_request="4", cpu_limit="8", memory_request="32Gi", memory_limit="64Gi", gpus=1,
                   scratch="200Gi", retries=3, backoff_s=120, timeout_s=172800),
    "hf_check": _task(cpu_request="4", cpu_limit="8", memory_request="32Gi", memory_limit="64Gi", gpus=1,
                      scratch="100Gi", retries=2, timeout_s=14400),
    "gguf": _task(cpu_request="8", cpu_limit="16", memory_request="32Gi", memory_limit="64Gi", scratch="200Gi",
                  retries=2, timeout_s=21600),
    "evaluate": _task(cpu_request="8", cpu_limit="16", memory_request="16Gi", memory_limit="32Gi",
                      scratch="100Gi", retries=2, timeout_s=21600),
    "register": _task(cpu_request="1", cpu_limit="2", memory_request="2Gi", memory_limit="4Gi", scratch="50Gi",
                      retries=3, timeout_s=7200),
    "gate_failed": _task(cpu_request="100m", cpu_limit="500m", memory_request="128Mi", memory_limit="256Mi",
                         timeout_s=600),
}


def _pod(task: str, what: str) -> Any:
    return Field(DEFAULTS[task], description=f"Pod of the {what}.")


class ClusterSection(Section):
    """Pod settings of the compiled pipeline's tasks (ignored by `finegate run` and KFP's local runner). The
    register task's attribute is `register_` (`register` is taken on a pydantic model); its key stays `register`."""

    policy: TaskResources = _pod("policy", "policy check (the standard's rules, before any data is read)")
    clean: TaskResources = _pod("clean", "clean stage")
    split: TaskResources = _pod("split", "split stage")
    train: TaskResources = _pod("train", "train stage (a retried train pod resumes from its last checkpoint in "
                                "train.checkpoint_uri, since it keeps the KFP run id)")
    hf_check: TaskResources = _pod("hf_check", "hf_check stage")
    gguf: TaskResources = _pod("gguf", "gguf stage")
    evaluate: TaskResources = _pod("evaluate", "evaluate stage")
    register_: TaskResources = Field(DEFAULTS["register"], alias="register", description="Pod of the register stage.")
    gate_failed: TaskResources = _pod("gate_failed", "task that records a failed gate and fails the run")
    run_as_user: int = Field(10001, ge=1, description="Non-root UID every task runs as (the images' user).")
    gpu_node_selector: dict[str, str] = Field({}, description=(
        "Node labels a GPU task must match, e.g. {'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3'} "
        "(labels GPU feature discovery sets); {}: any node with a free GPU."))
    model_cache_pvc: str | None = Field(None, description=(
        "A ReadWriteMany PVC mounted at /model-cache in train, hf_check, gguf and evaluate, with HF_HOME pointing "
        "into it, so hub downloads happen once per cluster instead of once per pod; None: no shared cache."))
    checkpoint_from_run_id: bool = Field(True, description=(
        "When run.run_id is not set, the train task uses KFP's run id, so a retried or restarted train pod of the "
        "same run finds its checkpoints (train.checkpoint_uri/<run id>/) and resumes."))

    def task(self, name: str) -> TaskResources:
        return getattr(self, "register_" if name == "register" else name)

    @model_validator(mode="before")
    @classmethod
    def _keep_task_defaults(cls, data: Any) -> Any:
        """A partial task entry (one field) is laid over that task's defaults, not over the class defaults."""
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for task in TASKS:
            given = data.get(task)
            if isinstance(given, dict):
                merged[task] = {**DEFAULTS[task].model_dump(), **given}
        return merged
