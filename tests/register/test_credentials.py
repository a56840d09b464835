"""A tracking URI with user:password: the password reaches no report, output, param, tag or artifact."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.cli import main
from tests.fixtures.servers import free_port
from tests.register.run_dirs import make_run_dir

PASSWORD = "pw-Zq81-secret"


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://finegate:{PASSWORD}@", 1)


def _everything_mlflow_holds(client, tmp_path: Path, name: str, version: str) -> str:
    mv = client.get_model_version(name, version)
    run = client.get_run(mv.run_id)
    logged = client.get_logged_model(json.loads((tmp_path / "run" / "register" / "report.json").read_text())["model_id"])
    artifacts = Path(client.download_artifacts(mv.run_id, "", str(tmp_path / "downloaded")))
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in artifacts.rglob("*") if p.is_file()]
    return json.dumps([run.data.params, run.data.tags, mv.tags, mv.description, logged.tags, texts])


def test_password_in_the_tracking_uri_appears_nowhere(tmp_path, register_cfg, client, mlflow_server, capfd):
    secret_uri = _with_credentials(mlflow_server.url)
    register_cfg.register_.tracking_uri = secret_uri  # so the run dir's own config.json holds it too
    register_cfg.register_.log_adapter = False
    run_dir = make_run_dir(tmp_path / "run", register_cfg)
    name = register_cfg.register_.model_name

    assert main(["register", "--run-dir", str(run_dir)]) == 0
    assert main(["promote", "--model", name, "--tracking-uri", secret_uri, "--reason", "first", "--by", "sato"]) == 0
    captured = capfd.readouterr()

    report = (run_dir / "register" / "report.json").read_text()
    assert json.loads(report)["tracking_uri"] == _with_credentials(mlflow_server.url).replace(PASSWORD, "***")
    held = _everything_mlflow_holds(client, tmp_path, name, "1")
    assert "finegate:***@127.0.0.1" in held, "the redacted URI is still logged (register.tracking_uri param)"
    for where, text in {"report.json": report, "stdout": captured.out, "stderr": captured.err, "MLflow": held}.items():
        assert PASSWORD not in text, f"the password leaked into {where}"


def test_password_stays_out_of_an_error_naming_the_server(tmp_path, register_cfg, capfd):
    dead = f"http://finegate:{PASSWORD}@127.0.0.1:{free_port()}"
    run_dir = make_run_dir(tmp_path / "run", register_cfg)

    code = main(["register", "--run-dir", str(run_dir), "--set", f"register.tracking_uri={dead}",
                 "--set", "register.http_max_retries=0"])

    err = capfd.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("finegate register: error: MLflow at http://finegate:***@127.0.0.1:")
    assert PASSWORD not in err
