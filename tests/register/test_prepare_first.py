"""Everything is read and checked before MLflow holds anything: a bad input leaves no run, model or version."""

from __future__ import annotations

import json

import pytest

from components.common.errors import FinegateError
from components.common.stage_output import build_manifest
from components.register.core import run_register
from tests.register.run_dirs import make_run_dir


def _nothing_in_mlflow(client, cfg) -> bool:
    experiment = client.get_experiment_by_name(cfg.register_.experiment)
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    models = client.search_registered_models(filter_string=f"name = '{cfg.register_.model_name}'")
    return not runs and not models


def _replace_in(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.parametrize("raw", ["1e400", "-1e400"], ids=["inf", "minus-inf"])
def test_non_finite_metric_is_left_out_and_named_not_a_failure(tmp_path, register_cfg, client, raw):
    register_cfg.register_.log_adapter = False
    run_dir = make_run_dir(tmp_path / "run", register_cfg)
    _replace_in(run_dir / "evaluate" / "report.json", '"chrf": 0.3', f'"chrf": {raw}')

    report = run_register(run_dir, run_dir / "register", register_cfg)

    assert report.passed, report.reasons
    assert list(report.details["skipped_metrics"]) == ["evaluate.chrf"]
    run = client.get_run(report.details["mlflow_run_id"])
    assert "evaluate.chrf" not in run.data.metrics
    assert run.data.metrics["evaluate.rouge_l"] == pytest.approx(0.38)
    assert run.data.tags["finegate.skipped_metrics"].startswith("evaluate.chrf=")
    assert json.loads((run_dir / "register" / "report.json").read_text())["skipped_metrics"] == report.details["skipped_metrics"]


def test_non_finite_metric_in_a_refused_run_still_logs_the_refusal(tmp_path, register_cfg, client):
    run_dir = make_run_dir(tmp_path / "run", register_cfg, failed={"evaluate": "rouge_l 0.1 < 0.2"})
    _replace_in(run_dir / "evaluate" / "report.json", '"chrf": 0.3', '"chrf": 1e400')

    report = run_register(run_dir, run_dir / "register", register_cfg)

    assert not report.passed and "mlflow_error" not in report.details
    refused = client.get_run(report.details["mlflow_run_id"])
    assert refused.info.status == "FAILED" and "evaluate.chrf" not in refused.data.metrics


def _reseal(stage_dir) -> None:
    """The stage wrote what is there now: its report's manifest describes the files as they are."""
    report = json.loads((stage_dir / "report.json").read_text(encoding="utf-8"))
    report["manifest"] = build_manifest(stage_dir)
    (stage_dir / "report.json").write_text(json.dumps(report), encoding="utf-8")


@pytest.mark.parametrize("breakage", ["trainer_state", "shipped_gguf", "400-digit-metric", "changed_file"])
def test_unreadable_input_fails_before_anything_is_created(tmp_path, register_cfg, client, breakage):
    run_dir = make_run_dir(tmp_path / "run", register_cfg)
    if breakage == "trainer_state":  # read for the loss curves, which used to happen after the run existed
        (run_dir / "train" / "trainer_state.json").write_text('{"log_history": [', encoding="utf-8")
        _reseal(run_dir / "train")
        expected = "trainer_state.json"
    elif breakage == "shipped_gguf":
        _replace_in(run_dir / "gguf" / "report.json", '"shipped": "model-Q4_K_M.gguf"', '"shipped": "gone.gguf"')
        expected = "the quantized GGUF the gguf report ships is missing"
    elif breakage == "400-digit-metric":  # became 1e400 after float(): now refused by the JSON reader's limits
        _replace_in(run_dir / "evaluate" / "report.json", '"chrf": 0.3', '"chrf": 1' + "0" * 400)
        expected = "a number of 401 digits"
    else:  # a file changed after its stage's report described it
        (run_dir / "train" / "trainer_state.json").write_text('{"log_history": []}', encoding="utf-8")
        expected = "differs from the file the train report describes"

    with pytest.raises(FinegateError, match=expected):
        run_register(run_dir, run_dir / "register", register_cfg)

    assert _nothing_in_mlflow(client, register_cfg)
