"""The KFP pipeline: compiled with one gate rule, and run as compiled by KFP's local runner, green through
register on the demo config and stopped at the gate of a failing config."""

import json

import pytest
import yaml

from components.common.config import load_config
from pipelines.pipeline import compile_pipeline

# Every stage task and the display name of the gate_failed task its Else branch runs.
GATES = {"policy": "policy failed", "clean": "gate 0 (data) failed", "split": "leak check failed",
         "train": "gate A (training) failed", "hf-check": "gate B (inference quality) failed",
         "gguf": "gate C/D (quantization fidelity) failed", "evaluate": "gate E (test set) failed",
         "register": "registry failed"}


def _walk(node, found):
    if isinstance(node, dict):
        found.append(node)
        for v in node.values():
            _walk(v, found)
    elif isinstance(node, list):
        for v in node:
            _walk(v, found)
    return found


def _tasks(spec) -> dict[str, dict]:
    """Every task of the compiled DAG by its id (clean, train, gate-failed-3, ...), however deep its condition."""
    return {key: task for node in _walk(spec, []) if isinstance(node.get("tasks"), dict)
            for key, task in node["tasks"].items()}


def _compiled(tmp_path, *overrides):
    cfg = load_config("configs/production.yaml", list(overrides))
    spec, platform = yaml.safe_load_all(open(compile_pipeline(cfg, str(tmp_path / "p.yaml"))))
    return spec, platform


def test_every_gate_is_a_condition_on_its_stage_output_with_its_own_failure_task(tmp_path):
    spec, _ = _compiled(tmp_path)
    nodes = _walk(spec, [])
    conditions = [n["triggerPolicy"]["condition"] for n in nodes if "condition" in (n.get("triggerPolicy") or {})]
    for stage in GATES:
        # One rule: the stage's float output is compared with 1.0 (passed) or, for register's refusal, 0.0.
        assert any(f"{stage}-Output" in c and ("== 1.0" in c or "== 0.0" in c) for c in conditions), stage
    names = {n["taskInfo"]["name"] for n in nodes if isinstance(n.get("taskInfo"), dict)}
    assert set(GATES.values()) <= names
    assert not any("<=" in c for c in conditions), "no gate compares a figure in the DAG: stages compare"


def test_gate_failed_reads_the_stage_metrics_and_tasks_get_their_cluster_settings(tmp_path):
    spec, platform = _compiled(tmp_path)
    failed = [n for n in _walk(spec, []) if n.get("componentRef", {}).get("name", "").startswith("comp-gate-failed")]
    assert failed and all("metrics" in n["inputs"]["artifacts"] for n in failed)
    executors = spec["deploymentSpec"]["executors"]
    train_exec = next(v for k, v in executors.items() if k.startswith("exec-train"))
    assert train_exec["container"]["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    train_platform = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]
    assert train_platform["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert train_platform["secretAsEnv"][0]["secretName"] == "finegate-s3"


def test_the_config_and_its_thresholds_are_compiled_in(tmp_path):
    spec, _ = _compiled(tmp_path, "gates.max_val_loss=1.75")
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    assert json.loads(defaults["config_json"]["defaultValue"])["gates"]["max_val_loss"] == 1.75


def _run_compiled(tmp_path, cfg, **arguments):
    """The compiled YAML, loaded back and run by KFP's local runner (components in this Python)."""
    from kfp import components, local

    path = compile_pipeline(cfg, str(tmp_path / "pipeline.yaml"), for_cluster=False)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    components.load_component_from_file(path)(**arguments)


def _ran(tmp_path) -> set[str]:
    return {p.name for p in (tmp_path / "root").glob("*/*")}


def test_a_v1_config_stops_at_the_policy_task_before_any_compute(tmp_path):
    with pytest.raises(RuntimeError, match="gate-failed"):
        _run_compiled(tmp_path, load_config("configs/v1-replay.yaml"))
    assert _ran(tmp_path) == {"policy"}


def test_too_few_clean_rows_stop_the_pipeline_at_gate_0(tmp_path):
    cfg = load_config("configs/demo.yaml", ["data.min_samples=5000"])
    with pytest.raises(RuntimeError, match="gate-failed"):
        _run_compiled(tmp_path, cfg, raw_data_uri="data/sample/v1_replay.jsonl")
    assert _ran(tmp_path) == {"policy", "clean"}
    gate = next((tmp_path / "root").glob("*/clean/gate")).read_text(encoding="utf-8")
    assert "fewer than data.min_samples=5000" in gate and "**FAILED**" in gate


@pytest.mark.slow
def test_the_demo_config_runs_green_through_register(tmp_path, demo_base, local_mlflow):
    cfg = load_config("configs/demo.yaml")
    _run_compiled(tmp_path, cfg, base_model=str(demo_base))
    assert _ran(tmp_path) == {"policy", "clean", "split", "train", "hf-check", "gguf", "evaluate", "register"}
    registration = next((tmp_path / "root").glob("*/register/summary")).read_text(encoding="utf-8")
    assert f"Registered: `models:/{cfg.run.name}@challenger`" in registration
    html = next((tmp_path / "root").glob("*/evaluate/report_html"))
    assert html.is_file() and "<img" in html.read_text(encoding="utf-8")  # one file, images inlined


def _k8s(platform) -> dict:
    return platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_every_task_gets_requests_limits_a_non_root_user_and_a_timeout_from_the_config(tmp_path):
    spec, platform = _compiled(tmp_path, "cluster.gguf.memory_limit=96Gi", "cluster.run_as_user=20001")
    executors = spec["deploymentSpec"]["executors"]
    for name, executor in executors.items():
        resources = executor["container"]["resources"]
        assert {"cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"} <= set(resources), name
        k8s = _k8s(platform)[name]
        assert k8s["securityContext"]["runAsNonRoot"] is True and int(k8s["securityContext"]["runAsUser"]) == 20001
        assert int(k8s["activeDeadlineSeconds"]) > 0, name
    gguf_exec = next(v for k, v in executors.items() if k.startswith("exec-gguf"))
    assert gguf_exec["container"]["resources"]["memoryLimit"] == 96 * 2**30 or \
        gguf_exec["container"]["resources"].get("resourceMemoryLimit") == "96Gi"


def test_network_stages_retry_with_backoff_and_model_stages_get_scratch_and_the_cache(tmp_path):
    spec, platform = _compiled(tmp_path, "cluster.model_cache_pvc=hf-cache",
                               "cluster.gpu_node_selector={nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}")
    tasks = _tasks(spec)
    for name in ("clean", "split", "train", "hf-check", "gguf", "evaluate", "register"):
        assert tasks[name]["retryPolicy"]["maxRetryCount"] >= 2, name
        assert tasks[name]["retryPolicy"]["backoffDuration"].endswith("s"), name
    k8s = _k8s(platform)
    assert k8s["exec-train"]["nodeSelector"]["labels"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    for name in ("exec-train", "exec-hf-check", "exec-gguf", "exec-evaluate"):
        assert k8s[name]["pvcMount"][0]["constant"] == "hf-cache" or k8s[name]["pvcMount"][0].get("pvcName") == "hf-cache"
        assert any(v["mountPath"] == "/scratch" for v in k8s[name]["genericEphemeralVolume"]), name
    assert "pvcMount" not in k8s["exec-clean"]


def test_the_train_task_gets_the_kfp_run_id_for_its_checkpoints(tmp_path):
    spec, _ = _compiled(tmp_path)
    train_task = _tasks(spec)["train"]
    assert train_task["inputs"]["parameters"]["run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
    spec, _ = _compiled(tmp_path, "run.run_id=fixed-id")
    train_task = _tasks(spec)["train"]
    assert train_task["inputs"]["parameters"]["run_id"]["runtimeValue"]["constant"] == "fixed-id"


def test_compile_refuses_inputs_no_pod_can_read(capsys):
    from pipelines.cli import main

    assert main(["compile", "--config", "configs/demo.yaml", "--output", "/dev/null"]) == 2
    err = capsys.readouterr().err
    assert "data.input=data/sample/note_titles.jsonl is a local path" in err and err.count("\n") == 1
    assert "train.base_model=.cache/tiny-base is a local folder" in err


def test_every_pipeline_task_passes_the_restricted_pod_security_profile(tmp_path):
    from tests.platform.pod_security import pipeline_task_violations

    spec, platform = _compiled(tmp_path)
    executors = list(spec["deploymentSpec"]["executors"])
    assert len(executors) >= 9
    assert pipeline_task_violations(_k8s(platform), executors) == {}
