"""`finegate register` and `finegate promote`: exit codes, one-line errors, the run dir's own config."""

from __future__ import annotations

import json

from pipelines.cli import main
from tests.register.run_dirs import make_run_dir


def test_register_reads_the_run_dirs_config_and_promote_moves_champion(tmp_path, register_cfg, client, capsys):
    run_dir = make_run_dir(tmp_path / "run", register_cfg)  # its config.json names the server and model

    assert main(["register", "--run-dir", str(run_dir)]) == 0
    registered = json.loads(capsys.readouterr().out)
    assert registered["passed"] is True and registered["model_version"] == "1"
    assert (run_dir / "register" / "report.json").is_file()

    config = str(run_dir / "config.json")
    assert main(["promote", "--config", config, "--reason", "passed every gate", "--by", "sato"]) == 0
    promoted = json.loads(capsys.readouterr().out)
    name = register_cfg.register_.model_name
    assert (promoted["model_name"], promoted["version"], promoted["alias"]) == (name, "1", "champion")
    assert client.get_model_version_by_alias(name, "champion").tags["finegate.promotion.champion.by"] == "sato"


def test_register_of_a_failed_run_exits_1_with_the_stage_on_stderr(tmp_path, register_cfg, client, capsys):
    run_dir = make_run_dir(tmp_path / "run", register_cfg, failed={"train": "overfitting: val loss rose 12% from step 40"})

    assert main(["register", "--run-dir", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert "gate failed: register: stage 'train' failed: overfitting: val loss rose 12% from step 40" in err
    assert client.search_registered_models(filter_string=f"name = '{register_cfg.register_.model_name}'") == []


def test_set_overrides_the_run_dirs_config(tmp_path, register_cfg, client, capsys):
    run_dir = make_run_dir(tmp_path / "run", register_cfg)
    other = register_cfg.register_.model_name + "-other"

    assert main(["register", "--run-dir", str(run_dir), "--set", f"register.model_name={other}"]) == 0
    assert client.get_model_version_by_alias(other, "challenger").version == "1"


def test_promote_without_gates_passed_exits_1_in_one_line(tmp_path, register_cfg, capsys):
    register_cfg.gates.override_reason = "accepted by the team lead"
    run_dir = make_run_dir(tmp_path / "run", register_cfg, failed={"gguf": "same_top_token_rate 0.61 < 0.85"})
    assert main(["register", "--run-dir", str(run_dir)]) == 0
    capsys.readouterr()

    code = main(["promote", "--config", str(run_dir / "config.json"), "--version", "1", "--reason", "demo"])

    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("finegate promote: error: ") and "--override-reason" in err and "\n" not in err


def test_unreachable_mlflow_exits_2_in_one_line(tmp_path, register_cfg, capsys):
    from tests.fixtures.servers import free_port

    run_dir = make_run_dir(tmp_path / "run", register_cfg)

    code = main(["register", "--run-dir", str(run_dir), "--set", f"register.tracking_uri=http://127.0.0.1:{free_port()}",
                 "--set", "register.http_max_retries=0"])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("finegate register: error: MLflow at http://127.0.0.1:")


def test_refusal_stands_when_mlflow_is_down(tmp_path, register_cfg, capsys):
    from tests.fixtures.servers import free_port

    run_dir = make_run_dir(tmp_path / "run", register_cfg, failed={"clean": "contamination 28% > 0%"})

    code = main(["register", "--run-dir", str(run_dir), "--set", f"register.tracking_uri=http://127.0.0.1:{free_port()}",
                 "--set", "register.http_max_retries=0"])

    captured = capsys.readouterr()
    assert code == 1
    assert "gate failed: register: stage 'clean' failed: contamination 28% > 0%" in captured.err
    assert "could not record the refusal in MLflow" in captured.err
    assert json.loads(captured.out)["mlflow_error"].startswith("MLflow at http://127.0.0.1:")
