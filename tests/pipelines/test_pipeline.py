"""The KFP pipeline: compiled with its gates, and run by KFP's local runner up to a failing gate."""

import json

import pytest
import yaml

from components.common.config import load_config
from pipelines.pipeline import build_pipeline, compile_pipeline


def _conditions(spec: dict) -> list[str]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            cond = node.get("triggerPolicy", {}).get("condition")
            if cond:
                found.append(cond)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    return found


def test_compiled_pipeline_gates_every_stage(tmp_path):
    cfg = load_config(None, ["gates.max_val_loss=1.75"])
    # The pipeline spec, then the kubernetes platform spec (kfp-kubernetes settings).
    spec, platform = yaml.safe_load_all(open(compile_pipeline(cfg, str(tmp_path / "p.yaml"))))
    conditions = _conditions(spec)
    assert any("clean-Output" in c and "== 1.0" in c for c in conditions)
    assert any("train-Output" in c and "<= 1.75" in c for c in conditions), "gate A compares best_val_loss"
    assert any("hf-check-Output" in c for c in conditions)
    assert any("gguf-Output" in c for c in conditions)
    executors = spec["deploymentSpec"]["executors"]
    train_exec = next(v for k, v in executors.items() if k.startswith("exec-train"))
    assert train_exec["container"]["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    train_platform = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]
    assert train_platform["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert train_platform["secretAsEnv"][0]["secretName"] == "finegate-s3"
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    assert json.loads(defaults["config_json"]["defaultValue"])["gates"]["max_val_loss"] == 1.75


def test_local_runner_stops_the_pipeline_at_gate_0(tmp_path):
    """v1's data (28% tag lists) with min_samples above what survives: the run must stop after clean."""
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    cfg = load_config("configs/v1-replay.yaml", ["data.min_samples=5000"])
    pipeline = build_pipeline(cfg)
    with pytest.raises(RuntimeError, match="gate-failed"):
        pipeline(raw_data_uri="data/sample/v1_replay.jsonl")
    ran = {p.name for p in (tmp_path / "root").glob("*/*")}
    assert "clean" in ran
    assert "train" not in ran and "split" not in ran
