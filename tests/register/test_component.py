"""The KFP component's body, called with KFP artifact objects on local folders (as the launcher does)."""

from __future__ import annotations

import pytest
from kfp import dsl

from components.common.errors import ConfigError
from components.common.kfp_glue import config_to_json
from components.register.component import register
from tests.register.run_dirs import make_run_dir

STAGE_INPUTS = {"policy": ("checked", dsl.Artifact), "clean": ("cleaned", dsl.Dataset), "split": ("splits", dsl.Dataset),
                "hf_check": ("samples", dsl.Dataset), "gguf": ("gguf_model", dsl.Model),
                "evaluate": ("evaluated", dsl.Dataset)}


def _call(run_dir, out, cfg):
    inputs = {arg: kind(uri=str(run_dir / stage)) for stage, (arg, kind) in STAGE_INPUTS.items()}
    # The train output as the pipeline hands it to register: its adapter and report/curves artifacts.
    inputs["adapter"], inputs["train_report"] = dsl.Model(uri=str(run_dir / "train")), dsl.Artifact(uri=str(run_dir / "train"))
    out.mkdir(parents=True, exist_ok=True)
    registration, metrics = dsl.Artifact(uri=str(out / "registration")), dsl.Metrics(uri=str(out / "metrics"))
    summary = dsl.Markdown(uri=str(out / "summary"))
    result = register.python_func(**inputs, config_json=config_to_json(cfg), registration=registration,
                                  metrics=metrics, summary=summary)
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
    summary = (tmp_path / "out" / "summary").read_text(encoding="utf-8")
    assert f"**Every gate passed.** Registered: `models:/{name}@challenger`" in summary


def test_component_returns_0_with_the_reasons_when_a_gate_failed(tmp_path, register_cfg, client):
    """The pipeline's gate rule: the task returns 0.0 and logs why; the DAG's `registry` gate_failed task then
    fails the run with these reasons."""
    run_dir = make_run_dir(tmp_path / "run", register_cfg, failed={"split": "leak: 3 pairs straddle splits"})

    result, _, metrics = _call(run_dir, tmp_path / "out", register_cfg)
    assert result == 0.0 and metrics.metadata["passed"] == 0.0
    assert any("stage 'split' failed: leak: 3 pairs straddle splits" in r for r in metrics.metadata["reasons"])
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

    spec = next(yaml.safe_load_all(open(compile_pipeline(load_config("configs/production.yaml"),
                                                         str(tmp_path / "p.yaml")))))
    holder_name, holder = next((n, c) for n, c in spec["components"].items()
                               if "register" in c.get("dag", {}).get("tasks", {}))
    task = holder["dag"]["tasks"]["register"]
    # register runs only inside gate E's branch: after evaluate passed.
    gate_e = next(t for c in spec["components"].values() for t in c.get("dag", {}).get("tasks", {}).values()
                  if t["taskInfo"]["name"] == "gate-E-test-set")
    assert gate_e["componentRef"]["name"] == holder_name
    assert "== 1.0" in gate_e["triggerPolicy"]["condition"] and "evaluate-Output" in gate_e["triggerPolicy"]["condition"]
    assert task["cachingOptions"].get("enableCache", False) is False
    assert spec["deploymentSpec"]["executors"]["exec-register"]["container"]["image"] == GGUF_IMAGE
