"""The gates a registration needs: never empty, every gate stage of the chain unless a written reason narrows it."""

from __future__ import annotations

import json

import pytest

from components.common.config import load_config
from components.common.errors import ConfigError, GateFailed
from components.register.core import run_register
from components.register.promote import promote
from pipelines.cli import main
from tests.register.run_dirs import make_run_dir

REASON = "hf_check runs in the nightly eval pipeline for this model family; see ticket ML-42"


@pytest.mark.parametrize("overrides", [["register.required_stages=[]"],
                                       ["register.required_stages=[]", f"register.required_stages_override_reason={REASON}"]],
                         ids=["empty", "empty-with-a-reason"])
def test_an_empty_set_of_required_stages_is_a_config_error_naming_every_gate_stage(overrides):
    with pytest.raises(ConfigError, match="register.required_stages is empty: .*policy, clean, split, train, hf_check, gguf, evaluate"):
        load_config(None, overrides)


def test_leaving_out_gate_stages_without_a_reason_names_them():
    with pytest.raises(ConfigError, match=r"leaves out the gate stage\(s\) policy, train, hf_check, gguf, evaluate.*"
                                          "required_stages_override_reason"):
        load_config(None, ["register.required_stages=[clean, split]"])


def test_register_with_an_empty_set_exits_2_in_one_line_and_registers_nothing(tmp_path, register_cfg, client, capsys):
    run_dir = make_run_dir(tmp_path / "run", register_cfg, missing=("clean", "split", "train", "hf_check", "gguf", "evaluate"))

    code = main(["register", "--run-dir", str(run_dir), "--set", "register.required_stages=[]"])

    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "register.required_stages is empty" in err
    assert client.search_registered_models(filter_string=f"name = '{register_cfg.register_.model_name}'") == []


def test_narrowed_stages_with_a_reason_register_but_record_it_and_promote_needs_its_own(tmp_path, register_cfg, client,
                                                                                        mlflow_server):
    register_cfg.register_.required_stages_override_reason = REASON
    register_cfg.register_.required_stages = ["clean", "split", "train", "gguf", "evaluate"]
    run_dir = make_run_dir(tmp_path / "run", register_cfg, missing=("hf_check",))

    report = run_register(run_dir, run_dir / "register", register_cfg)

    assert report.passed, report.reasons
    name = register_cfg.register_.model_name
    tags = client.get_model_version(name, "1").tags
    assert tags["finegate.gates.passed"] == "false", "a gate that was never read did not pass"
    assert tags["finegate.gates.unchecked_stages"] == "hf_check"
    assert tags["finegate.gates.required_stages_override_reason"] == REASON
    written = json.loads((run_dir / "register" / "report.json").read_text())
    assert written["gates"]["required_stages_override"] == {
        "reason": REASON, "unchecked": ["hf_check"], "required_stages": ["clean", "split", "train", "gguf", "evaluate"]}
    with pytest.raises(GateFailed, match="without its gate stage\\(s\\) hf_check checked.*--override-reason"):
        promote(name, "ship it", tracking_uri=mlflow_server.url)
    promote(name, "ship it", tracking_uri=mlflow_server.url, override_reason="hf_check passed in nightly run 311")
    assert client.get_model_version_by_alias(name, "champion").version == "1"


def test_narrowed_stages_whose_reports_are_there_and_passed_still_pass(tmp_path, register_cfg, client):
    register_cfg.register_.required_stages_override_reason = REASON
    register_cfg.register_.required_stages = ["gguf", "evaluate"]
    run_dir = make_run_dir(tmp_path / "run", register_cfg)  # every report present: each one is still read

    report = run_register(run_dir, run_dir / "register", register_cfg)

    tags = client.get_model_version(register_cfg.register_.model_name, report.details["model_version"]).tags
    assert tags["finegate.gates.passed"] == "true"
    assert "finegate.gates.unchecked_stages" not in tags
