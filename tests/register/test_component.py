"""The KFP component's body, called with KFP artifact objects on local folders (as the launcher does)."""

from __future__ import annotations

import pytest
from kfp import dsl

from components.common.errors import ConfigError, GateFailed
from components.common.kfp_glue import config_to_json
from components.register.component import register
from tests.register.run_dirs import make_run_dir

STAGE_INPUTS = {"clean": ("cleaned", dsl.Dataset), "split": ("splits", dsl.Dataset), "train": ("model", dsl.Model),
                "hf_check": ("samples", dsl.Dataset), "gguf": ("gguf_model", dsl.Model),
                "evaluate": ("evaluation", dsl.HTML)}


def _call(run_dir, out, cfg):
    inputs = {arg: kind(uri=str(run_dir / stage)) for stage, (arg, kind) in STAGE_INPUTS.items()}
    registration, metrics = dsl.Artifact(uri=str(out / "registration")), dsl.Metrics(uri=str(out / "metrics"))
    result = register.python_func(**inputs, config_json=config_to_json(cfg), registration=registration,
                                  metrics=metrics)
    return result, registration, metrics


def test_component_registers_the_stage_artifacts_and_records_their_uris(tmp_path, register_cfg, client):
    run_dir = make_run_dir(tmp_path / "run", register_cfg)

    result, registration, metrics = _call(run_dir, tmp_path / "out", register_cfg)

    assert result == 1.0
    name = register_cfg.register_.model_name
    assert registration.metadata["alias_uri"] == f"models:/{name}@challenger"
    assert metrics.metadata["passed"] == 1.0
    tags = client.get_model_version_by_alias(name, "challenger").tags
    assert tags["finegate.source.gguf"] == str(run_dir / "gguf")
    assert tags["finegate.source.evaluate"] == str(run_dir / "evaluate")
    assert "finegate.run_dir" not in tags


def test_component_fails_the_task_when_a_gate_failed(tmp_path, register_cfg, client):
    run_dir = make_run_dir(tmp_path / "run", register_cfg, failed={"split": "leak: 3 pairs straddle splits"})

    with pytest.raises(GateFailed, match="stage 'split' failed: leak: 3 pairs straddle splits"):
        _call(run_dir, tmp_path / "out", register_cfg)
    assert client.search_registered_models(filter_string=f"name = '{register_cfg.register_.model_name}'") == []


def test_component_in_a_pod_without_mlflow_refuses_the_local_fallback(tmp_path, register_cfg, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    register_cfg.register_.tracking_uri = None
    run_dir = make_run_dir(tmp_path / "run", register_cfg)

    with pytest.raises(ConfigError, match="MLFLOW_TRACKING_URI"):
        _call(run_dir, tmp_path / "out", register_cfg)


def test_pipeline_registers_after_evaluate_inside_the_last_gate_uncached(tmp_path):
    import yaml

    from components.common.config import load_config
    from components.common.images import GGUF_IMAGE
    from pipelines.pipeline import compile_pipeline

    spec = next(yaml.safe_load_all(open(compile_pipeline(load_config(None), str(tmp_path / "p.yaml")))))
    holder = next(c for c in spec["components"].values() if "register" in c.get("dag", {}).get("tasks", {}))
    task = holder["dag"]["tasks"]["register"]
    assert "evaluate" in holder["dag"]["tasks"], "register runs in the same gate as evaluate"
    assert task["dependentTasks"] == ["evaluate"]
    assert task["inputs"]["artifacts"]["evaluation"]["taskOutputArtifact"]["producerTask"] == "evaluate"
    assert task["cachingOptions"].get("enableCache", False) is False
    assert spec["deploymentSpec"]["executors"]["exec-register"]["container"]["image"] == GGUF_IMAGE
