"""The TrainJob of a multi-node run (components/train/trainjob.py) and the train task's side of it
(components/train/trainjob_run.py).

The manifest is checked offline against Kubeflow Trainer v2.3.0's API (kubeflow-trainer-api), the pod
security profile the cluster enforces and the secrets k8s/ creates. Create, wait, rejoin, timeout and the
copy back run through the real kubernetes client against the fake TrainJob API on loopback
(tests/fixtures/trainjob_api.py), with stage outputs on moto's S3 server. No cluster runs here: that the
Trainer controller accepts and schedules these pods is not tested (components/train/README.md says so).
"""

from __future__ import annotations

import json
import re

import pytest

from components.common import storage
from components.common.config import dump_config, load_config
from components.common.errors import ConfigError
from components.common.images import TRAIN_IMAGE
from components.common.kfp_glue import config_from_json
from components.common.stage_output import verify_output
from components.train.trainjob import (
    NODE_CONTAINER,
    NODE_LABELS,
    OUTPUT_ANNOTATION,
    S3_ENV_KEYS,
    S3_SECRET,
    trainjob_manifest,
    trainjob_name,
)
from components.train.trainjob_run import TrainJobError, run_trainjob
from components.train.trainjob_schema import trainjob_problems
from tests.fixtures.stage_outputs import write_stage_output
from tests.fixtures.trainjob_api import FakeTrainJobs, TrainJobApiServer
from tests.platform.pod_security import restricted_violations
from tests.platform.repo_files import generated_secrets, secret_values

RUN = "run-1"
NAMESPACE = "kubeflow"
# The runtime's own node container (manifests/base/runtimes/torch_distributed.yaml at v2.3.0).
RUNTIME_NODE = {"name": "node", "image": "pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime"}


def _cfg(*extra: str):
    return load_config(None, ["train.nodes=2", "train.num_processes=4", "cluster.train.gpus=4", f"run.run_id={RUN}",
                              "train.checkpoint_uri=s3://ckpt/train", f"train.trainjob.namespace={NAMESPACE}",
                              *extra])


def _manifest(cfg=None, **changes) -> dict:
    args = {"name": trainjob_name(RUN), "namespace": NAMESPACE, "data_uri": "s3://pipe/run-1/split",
            "base_model": "s3://models/base", "output_uri": "s3://pipe/run-1/train-out", **changes}
    return trainjob_manifest(cfg or _cfg(), **args)


def _pod(manifest: dict) -> tuple[dict, dict]:
    """(labels, spec) of a node pod: the runtime's pod template with the manifest's patch laid over it."""
    [patch] = manifest["spec"]["runtimePatches"]
    [job] = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    template = job["template"]["spec"]["template"]
    spec = dict(template["spec"])
    [container] = spec["containers"]
    spec["containers"] = [{**RUNTIME_NODE, **container}]
    return template["metadata"]["labels"], spec


def test_the_manifest_is_valid_for_the_trainer_release_k8s_installs():
    manifest = _manifest()
    assert trainjob_problems(manifest) == []
    assert manifest["spec"]["runtimeRef"] == {"name": "torch-distributed"}
    assert manifest["metadata"]["annotations"][OUTPUT_ANNOTATION] == "s3://pipe/run-1/train-out"


def test_every_node_runs_the_train_worker_under_torchrun_with_the_runs_config():
    cfg = _cfg()
    trainer = _manifest(cfg)["spec"]["trainer"]
    command = trainer["command"]
    assert command[:3] == ["torchrun", "-m", "components.train.worker"]
    args = dict(zip(command[3::2], command[4::2], strict=True))
    assert args["--data-dir"] == "s3://pipe/run-1/split" and args["--output-dir"] == "s3://pipe/run-1/train-out"
    assert args["--base-model"] == "s3://models/base"
    assert dump_config(config_from_json(args["--config-json"])) == dump_config(cfg)
    # nodes x processes per node; torchrun reads both from the runtime's PET_* variables
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (2, 4)
    assert not [e for e in trainer["env"] if e["name"].startswith("PET_")]  # reserved for the runtime


def test_each_node_gets_the_train_tasks_resources_and_one_gpu_per_process():
    cfg = _cfg("cluster.train.cpu_request=6500m", "cluster.train.memory_limit=100Gi",
               'cluster.gpu_node_selector={"nvidia.com/gpu.product": "H100"}')
    manifest = _manifest(cfg)
    resources = manifest["spec"]["trainer"]["resourcesPerNode"]
    assert resources == {"requests": {"cpu": "6500m", "memory": cfg.cluster.train.memory_request},
                         "limits": {"cpu": cfg.cluster.train.cpu_limit, "memory": "100Gi", "nvidia.com/gpu": "4"}}
    _, spec = _pod(manifest)
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "H100"}


def test_cpu_nodes_ask_for_no_gpu():
    manifest = _manifest(_cfg("cluster.train.gpus=0"))
    assert "nvidia.com/gpu" not in manifest["spec"]["trainer"]["resourcesPerNode"]["limits"]
    assert "tolerations" not in _pod(manifest)[1]


def test_s3_credentials_come_from_the_secret_k8s_creates_in_the_pipeline_namespace():
    from pipelines import pipeline

    assert (S3_SECRET, S3_ENV_KEYS) == (pipeline.S3_SECRET, pipeline.S3_ENV_KEYS)  # what every task gets
    env = _manifest()["spec"]["trainer"]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
    assert refs == {key: {"name": "finegate-s3", "key": key} for key in S3_ENV_KEYS}
    [secret] = [o for o in generated_secrets() if o.name == S3_SECRET and o.namespace == NAMESPACE]
    assert set(S3_ENV_KEYS) <= set(secret_values(secret))


def test_the_image_is_the_train_image_unless_the_config_names_one():
    assert _manifest()["spec"]["trainer"]["image"] == TRAIN_IMAGE
    other = _manifest(_cfg("train.trainjob.image=registry.example/finegate/train:9"))
    assert other["spec"]["trainer"]["image"] == "registry.example/finegate/train:9"


def test_node_pods_pass_the_restricted_profile_and_carry_the_network_label():
    labels, spec = _pod(_manifest(_cfg("cluster.model_cache_pvc=hf-cache")))
    assert restricted_violations(spec, {}) == []
    assert labels == NODE_LABELS
    assert spec["containers"][0]["name"] == NODE_CONTAINER
    mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert mounts == {"dshm": "/dev/shm", "scratch": "/scratch", "model-cache": "/model-cache"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Gi"}
    assert volumes["model-cache"]["persistentVolumeClaim"] == {"claimName": "hf-cache"}
    env = {e["name"]: e.get("value") for e in _manifest(_cfg("cluster.model_cache_pvc=hf-cache"))["spec"]["trainer"]["env"]}
    assert env["TMPDIR"] == "/scratch" and env["HF_HOME"] == "/model-cache/huggingface"


@pytest.mark.parametrize("changes, settings, expected", [
    ({"data_uri": "/tmp/split"}, [], r"the splits \(/tmp/split\) are not on S3"),
    ({"output_uri": "out"}, [], r"the output \(out\) is not on S3"),
    ({"base_model": "/models/base"}, [], r"train.base_model=/models/base is a local folder"),
    ({}, ["train.checkpoint_uri=/ckpt"], r"train.checkpoint_uri=/ckpt is not on S3"),
    ({}, ["cluster.train.gpus=2"], r"train.num_processes=4 exceeds cluster.train.gpus=2"),
    ({}, ["train.nodes=1"], r"train.nodes=1: a TrainJob is for 2 or more nodes"),
])
def test_what_nodes_without_a_shared_disk_cannot_reach_is_refused(changes, settings, expected):
    with pytest.raises(ConfigError, match=r"^train.nodes > 1 \(a TrainJob\): .*" + expected):
        _manifest(_cfg(*settings), **changes)


def test_one_trainjob_name_per_run_and_a_valid_dns_label():
    assert trainjob_name(RUN) == trainjob_name(RUN) != trainjob_name("run-2")
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", trainjob_name(RUN)) and len(trainjob_name(RUN)) <= 63
    with pytest.raises(ConfigError, match="RFC 1035"):
        _manifest(name="Finegate_Train")


# ---------------------------------------------------------------- the train task against the fake API


def _stage_output(uri: str, passed: bool = True) -> dict:
    write_stage_output(uri, "train", {"merged/model.safetensors": b"weights", "trainer_state.json": "{}"},
                       passed=passed, reasons=[] if passed else ["gate A: validation loss 9.0 > 5.5"],
                       metrics={"best_val_loss": 1.5 if passed else 9.0, "processes": 8, "nodes": 2})
    return json.loads(storage.read_bytes(f"{uri}/report.json"))


@pytest.fixture
def fake_api(tmp_path):
    fake = FakeTrainJobs(tmp_path / "nodes", finish_as=("Complete", "AllJobsCompleted", "jobset completed"))
    with TrainJobApiServer(fake) as server:
        yield fake, server.api()


def _fast(*extra: str):
    return _cfg("train.trainjob.poll_s=0.05", *extra)


def _run(s3_bucket, tmp_path, api, cfg=None, model_uri=None):
    return run_trainjob(f"s3://{s3_bucket}/run-1/split", f"s3://{s3_bucket}/base", tmp_path / "model",
                        model_uri or f"s3://{s3_bucket}/run-1/train/model", cfg or _fast(), api=api)


def test_a_complete_trainjobs_output_is_copied_into_the_model_artifact(tmp_path, s3_bucket, fake_api):
    fake, api = fake_api
    written = _stage_output(f"s3://{s3_bucket}/run-1/train/model-trainjob", passed=False)
    report = _run(s3_bucket, tmp_path, api)
    assert report.to_dict() == written  # a failed gate A is a report, not an error: the pipeline branches on it
    assert verify_output(tmp_path / "model", "train", "model", require_passed=False) == written
    assert (tmp_path / "model" / "merged" / "model.safetensors").read_bytes() == b"weights"
    methods = [m for m, _ in fake.seen]
    assert methods[0] == "POST" and set(methods[1:]) == {"GET"}
    [job] = fake.jobs.values()
    assert job["metadata"]["annotations"][OUTPUT_ANNOTATION] == f"s3://{s3_bucket}/run-1/train/model-trainjob"


def test_train_output_uri_puts_the_output_under_the_run_id(tmp_path, s3_bucket, fake_api):
    fake, api = fake_api
    written = _stage_output(f"s3://{s3_bucket}/trainjobs/{RUN}")
    report = _run(s3_bucket, tmp_path, api, _fast(f"train.output_uri=s3://{s3_bucket}/trainjobs"))
    assert report.passed and report.to_dict() == written
    [job] = fake.jobs.values()
    assert f"s3://{s3_bucket}/trainjobs/{RUN}" in job["spec"]["trainer"]["command"]


def test_a_failed_trainjob_fails_the_task_with_its_reason_and_where_the_logs_are(tmp_path, s3_bucket, tmp_path_factory):
    fake = FakeTrainJobs(tmp_path / "nodes", finish_as=("Failed", "FailedJobs", "node 1 exited with 2"))
    with TrainJobApiServer(fake) as server, pytest.raises(TrainJobError) as caught:
        _run(s3_bucket, tmp_path, server.api())
    name = trainjob_name(RUN)
    assert str(caught.value) == (f"TrainJob {NAMESPACE}/{name} failed (FailedJobs: node 1 exited with 2); its pods' logs "
                                 f"say why: kubectl logs -n {NAMESPACE} -l jobset.sigs.k8s.io/jobset-name={name}")
    assert not (tmp_path / "model" / "report.json").exists()


def test_a_trainjob_that_outlives_the_timeout_is_deleted(tmp_path, s3_bucket):
    fake = FakeTrainJobs(tmp_path / "nodes")  # never finishes
    with TrainJobApiServer(fake) as server, pytest.raises(TrainJobError, match="did not finish within "
                                                                                "train.trainjob.timeout_s=1 s"):
        _run(s3_bucket, tmp_path, server.api(), _fast("train.trainjob.timeout_s=1"))
    assert ("DELETE", f"/apis/trainer.kubeflow.org/v1alpha1/namespaces/{NAMESPACE}/trainjobs/{trainjob_name(RUN)}") \
        in fake.seen
    assert fake.jobs == {}


def test_a_retried_task_rejoins_the_trainjob_of_its_run_and_its_output(tmp_path, s3_bucket, fake_api):
    fake, api = fake_api
    first_attempt = _manifest(output_uri=f"s3://{s3_bucket}/attempt-1/model-trainjob")
    fake.create(NAMESPACE, first_attempt)  # the first pod of the task created it, then was lost
    written = _stage_output(f"s3://{s3_bucket}/attempt-1/model-trainjob")
    report = _run(s3_bucket, tmp_path, api, model_uri=f"s3://{s3_bucket}/attempt-2/model")
    assert report.to_dict() == written
    assert [m for m, _ in fake.seen].count("POST") == 1 and "DELETE" not in [m for m, _ in fake.seen]
    assert len(fake.jobs) == 1


def test_a_failed_trainjob_of_the_run_is_replaced_by_a_new_one(tmp_path, s3_bucket, fake_api):
    fake, api = fake_api
    fake.create(NAMESPACE, _manifest(output_uri=f"s3://{s3_bucket}/attempt-1/model-trainjob"))
    fake.set_condition(NAMESPACE, trainjob_name(RUN), "Failed", "FailedJobs", "node 0 exited with 1")
    written = _stage_output(f"s3://{s3_bucket}/run-1/train/model-trainjob")
    report = _run(s3_bucket, tmp_path, api)
    assert report.to_dict() == written
    methods = [m for m, _ in fake.seen]
    assert methods.index("DELETE") < len(methods) - 1 - methods[::-1].index("POST")  # deleted, then created
    [job] = fake.jobs.values()
    assert job["metadata"]["annotations"][OUTPUT_ANNOTATION] == f"s3://{s3_bucket}/run-1/train/model-trainjob"


def test_a_pipeline_runner_without_the_rbac_rule_is_told_which_manifest_grants_it(tmp_path, s3_bucket):
    fake = FakeTrainJobs(tmp_path / "nodes", forbidden={"POST"})
    with TrainJobApiServer(fake) as server, pytest.raises(TrainJobError, match=r"answered 403 Forbidden; the pipeline "
                                                          r"runner's service account may not manage TrainJobs: apply "
                                                          r"k8s/trainer/pipeline-runner"):
        _run(s3_bucket, tmp_path, server.api())
