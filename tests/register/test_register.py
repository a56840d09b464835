"""register against a real `mlflow server` (sqlite backend, artifacts in moto's S3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.common import storage
from components.common.errors import IntegrityError
from components.common.storage import sha256_file
from components.register.core import run_register
from tests.register.run_dirs import GGUF_NAME, LOSSES, RAW_SHA, TRAIN_SHA, make_run_dir, write_tiny_gguf


def _registered_names(client, name: str) -> list[str]:
    return [m.name for m in client.search_registered_models(filter_string=f"name = '{name}'")]


def test_passing_run_becomes_a_version_with_alias_challenger_and_lineage_tags(tmp_path, register_cfg, client):
    run_dir = make_run_dir(tmp_path / "run", register_cfg)
    gguf_sha = sha256_file(run_dir / "gguf" / GGUF_NAME)

    report = run_register(run_dir, run_dir / "register", register_cfg)

    assert report.passed, report.reasons
    name = register_cfg.register_.model_name
    version = client.get_model_version_by_alias(name, "challenger")
    assert version.version == report.details["model_version"] == "1"
    assert version.run_id == report.details["mlflow_run_id"]
    assert version.source == f"models:/{report.details['model_id']}"
    tags = version.tags
    assert tags["finegate.gguf.sha256"] == gguf_sha
    assert tags["finegate.gguf.file"] == GGUF_NAME
    assert tags["finegate.gates.passed"] == "true"
    assert tags["finegate.data.raw_sha256"] == RAW_SHA
    assert tags["finegate.data.train_sha256"] == TRAIN_SHA
    assert tags["finegate.base_model"] == register_cfg.train.base_model
    assert len(tags["finegate.config_sha256"]) == 64
    assert len(tags["finegate.git_commit"]) == 40
    assert json.loads((run_dir / "register" / "report.json").read_text())["model_version"] == "1"


def test_run_holds_params_stage_metrics_curves_and_reports(tmp_path, register_cfg, client):
    run_dir = make_run_dir(tmp_path / "run", register_cfg)

    report = run_register(run_dir, run_dir / "register", register_cfg)

    run = client.get_run(report.details["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["split.seed"] == "42"
    assert run.data.params["register.challenger_alias"] == "challenger"
    metrics = run.data.metrics
    assert metrics["evaluate.rouge_l"] == pytest.approx(0.38)
    assert metrics["train.best_val_loss"] == pytest.approx(1.95)
    assert metrics["train.policy.rank"] == 16
    assert metrics["train.overfit"] == 0.0
    assert metrics["hf_check.passed"] == 1.0
    eval_curve = client.get_metric_history(run.info.run_id, "train.history.eval_loss")
    assert [(m.step, m.value) for m in sorted(eval_curve, key=lambda m: m.step)] == [(s, v) for s, _, v in LOSSES]

    def listed(path: str = "") -> set[str]:
        return {f.path for f in client.list_artifacts(run.info.run_id, path)}

    assert {"config.json", "run", "stages", "adapter"} <= listed()
    assert {"stages/train/loss_curve.png", "stages/train/trainer_state.json", "stages/train/report.json"} <= listed("stages/train")
    assert "stages/evaluate/report.html" in listed("stages/evaluate")
    assert "stages/evaluate/samples.jsonl" not in listed("stages/evaluate")
    assert "adapter/adapter_model.safetensors" in listed("adapter")
    assert GGUF_NAME not in {Path(p).name for p in listed("stages/gguf")}, "the GGUF belongs to the model, not the run"


def test_gguf_lands_in_the_servers_s3_with_the_logged_model_not_the_run(tmp_path, register_cfg, mlflow_server):
    run_dir = make_run_dir(tmp_path / "run", register_cfg)

    report = run_register(run_dir, run_dir / "register", register_cfg)

    keys = [k.split(f"s3://{mlflow_server.bucket}/", 1)[1]
            for k in storage.list_objects(f"s3://{mlflow_server.bucket}/mlartifacts")]
    model_dir = f"/models/{report.details['model_id']}/artifacts/"
    run_dir_key = f"/{report.details['mlflow_run_id']}/artifacts/"
    assert sorted(k.rsplit("/", 1)[1] for k in keys if model_dir in k) == ["SHA256SUMS", GGUF_NAME]
    run_keys = [k for k in keys if run_dir_key in k]
    assert any(k.endswith("stages/evaluate/report.html") for k in run_keys)
    assert not any(k.endswith(".gguf") for k in run_keys)


def test_failed_gate_is_refused_naming_the_stage_and_nothing_is_registered(tmp_path, register_cfg, client):
    run_dir = make_run_dir(tmp_path / "run", register_cfg,
                           failed={"hf_check": "degenerate_rate 0.41 > gates.max_degenerate_rate 0.1"})

    report = run_register(run_dir, run_dir / "register", register_cfg)

    assert not report.passed
    assert "stage 'hf_check' failed: degenerate_rate 0.41 > gates.max_degenerate_rate 0.1" in report.reasons
    assert _registered_names(client, register_cfg.register_.model_name) == []
    assert client.search_logged_models([client.get_experiment_by_name(register_cfg.register_.experiment).experiment_id]) == []
    refused = client.get_run(report.details["mlflow_run_id"])
    assert refused.info.status == "FAILED"
    assert refused.data.tags["finegate.gates.failed_stages"] == "hf_check"
    assert "degenerate_rate 0.41" in refused.data.tags["finegate.refused"]
    assert refused.data.metrics["hf_check.passed"] == 0.0
    assert json.loads((run_dir / "register" / "report.json").read_text())["passed"] is False


def test_missing_stage_report_is_refused(tmp_path, register_cfg, client):
    run_dir = make_run_dir(tmp_path / "run", register_cfg, missing=("evaluate",))

    report = run_register(run_dir, run_dir / "register", register_cfg)

    assert not report.passed
    assert any(r.startswith("stage 'evaluate' has no report.json") for r in report.reasons)
    assert _registered_names(client, register_cfg.register_.model_name) == []


def test_failed_extra_stage_found_in_the_run_dir_also_refuses(tmp_path, register_cfg, client):
    run_dir = make_run_dir(tmp_path / "run", register_cfg)
    (run_dir / "judge").mkdir()
    (run_dir / "judge" / "report.json").write_text(json.dumps(
        {"stage": "judge", "passed": False, "reasons": ["judge unreachable"], "metrics": {}, "manifest": {}}))

    report = run_register(run_dir, run_dir / "register", register_cfg)

    assert report.reasons[0] == "stage 'judge' failed: judge unreachable"
    assert _registered_names(client, register_cfg.register_.model_name) == []


def test_override_registers_and_records_the_reason_and_the_failed_gate(tmp_path, register_cfg, client):
    register_cfg.gates.override_reason = "ROUGE-L gate miscalibrated for 12-char titles; signed off by K. Sato"
    run_dir = make_run_dir(tmp_path / "run", register_cfg, failed={"evaluate": "rouge_l 0.18 < gates.min_rouge_l 0.2"})

    report = run_register(run_dir, run_dir / "register", register_cfg)

    assert report.passed
    tags = client.get_model_version(register_cfg.register_.model_name, report.details["model_version"]).tags
    assert tags["finegate.gates.passed"] == "false"
    assert tags["finegate.gates.override_reason"] == register_cfg.gates.override_reason
    assert tags["finegate.gates.failed_stages"] == "evaluate"
    assert "rouge_l 0.18" in tags["finegate.gates.failed_reasons"]


def test_gguf_changed_after_its_gates_ran_is_refused_before_anything_is_logged(tmp_path, register_cfg, client):
    run_dir = make_run_dir(tmp_path / "run", register_cfg)
    write_tiny_gguf(run_dir / "gguf" / GGUF_NAME, seed=99)

    with pytest.raises(IntegrityError, match="differs from the file the gguf report describes"):
        run_register(run_dir, run_dir / "register", register_cfg)

    assert client.get_experiment_by_name(register_cfg.register_.experiment) is None
    assert _registered_names(client, register_cfg.register_.model_name) == []


def test_second_run_becomes_version_2_and_takes_the_challenger_alias(tmp_path, register_cfg, client):
    first = run_register(make_run_dir(tmp_path / "a", register_cfg, seed=1), tmp_path / "a" / "register", register_cfg)
    second = run_register(make_run_dir(tmp_path / "b", register_cfg, seed=2), tmp_path / "b" / "register", register_cfg)

    name = register_cfg.register_.model_name
    assert (first.details["model_version"], second.details["model_version"]) == ("1", "2")
    assert client.get_model_version_by_alias(name, "challenger").version == "2"
    assert client.get_model_version(name, "1").aliases == []


def test_registering_the_same_gguf_again_returns_its_existing_version(tmp_path, register_cfg, client):
    run_dir = make_run_dir(tmp_path / "run", register_cfg)
    first = run_register(run_dir, run_dir / "register", register_cfg)

    again = run_register(run_dir, run_dir / "register", register_cfg)

    name = register_cfg.register_.model_name
    assert again.passed and again.details["already_registered"] is True
    assert again.details["model_version"] == first.details["model_version"] == "1"
    assert again.details["mlflow_run_id"] == first.details["mlflow_run_id"]
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["1"]


def test_lineage_tags_come_from_the_real_clean_and_split_reports(tmp_path, register_cfg, client, sample_splits,
                                                                 sample_path):
    import shutil

    run_dir = make_run_dir(tmp_path / "run", register_cfg)
    for stage in ("clean", "split"):
        shutil.rmtree(run_dir / stage)
        shutil.copytree(sample_splits.parent / stage, run_dir / stage)

    report = run_register(run_dir, run_dir / "register", register_cfg)

    assert report.passed, report.reasons
    tags = client.get_model_version(register_cfg.register_.model_name, report.details["model_version"]).tags
    assert tags["finegate.data.raw_sha256"] == sha256_file(sample_path)
    assert tags["finegate.data.kept_sha256"] == sha256_file(run_dir / "clean" / "kept.jsonl")
    for split in ("train", "val", "test"):
        assert tags[f"finegate.data.{split}_sha256"] == sha256_file(run_dir / "split" / f"{split}.jsonl")
    metrics = client.get_run(report.details["mlflow_run_id"]).data.metrics
    assert metrics["split.train_rows"] == sum(1 for _ in open(run_dir / "split" / "train.jsonl", encoding="utf-8"))


def test_the_version_records_every_quantization_rung_and_the_shipped_tensor_mix(tmp_path, register_cfg, client):
    run_dir = make_run_dir(tmp_path / "run", register_cfg)
    report_path = run_dir / "gguf" / "report.json"
    gguf = json.loads(report_path.read_text())
    gguf["ladder"] = [
        {"type": "Q4_K_M", "passed": False, "shipped": False, "same_top_token_rate": 0.823, "mean_kld": 0.095,
         "mix": {"tensor_types": {"Q5_0": 166, "Q4_K": 30}, "note": "Q4_K_M requested: 166 of 211 quantized tensors are 166 Q5_0"}},
        {"type": "Q8_0", "passed": True, "shipped": True, "same_top_token_rate": 0.949, "mean_kld": 0.007,
         "mix": {"tensor_types": {"F32": 61, "Q8_0": 211}}}]
    report_path.write_text(json.dumps(gguf))  # the report is not in its own manifest: no reseal needed

    report = run_register(run_dir, run_dir / "register", register_cfg)

    tags = client.get_model_version(register_cfg.register_.model_name, report.details["model_version"]).tags
    assert tags["finegate.gguf.ladder"] == ("Q4_K_M:failed (same top token 0.823, KLD 0.0950); "
                                           "Q8_0:passed (same top token 0.949, KLD 0.0070)")
    assert tags["finegate.gguf.tensor_types"] == "F32=61, Q8_0=211"
