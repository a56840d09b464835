"""No cluster, no server: register falls back to a local sqlite file and an artifact folder under ./runs."""

from __future__ import annotations

from components.common.config import load_config
from components.common.storage import sha256_file
from components.register.core import run_register
from components.register.fetch import fetch_gguf
from components.register.promote import promote
from components.register.tracking import tracking_uri
from tests.register.run_dirs import GGUF_NAME, make_run_dir


def test_without_a_tracking_uri_register_uses_sqlite_and_artifacts_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load_config(None, ["run.name=local-titles"])
    run_dir = make_run_dir(tmp_path / "runs" / "demo", cfg)

    report = run_register(run_dir, run_dir / "register", cfg)

    assert report.passed, report.reasons
    assert report.details["tracking_uri"] == "sqlite:///runs/mlflow.db"
    assert (tmp_path / "runs" / "mlflow.db").is_file()
    assert not (tmp_path / "mlflow.db").exists(), "nothing may fall back to mlflow's default ./mlflow.db"
    stored = list((tmp_path / "runs" / "mlartifacts").rglob(GGUF_NAME))
    assert [sha256_file(p) for p in stored] == [sha256_file(run_dir / "gguf" / GGUF_NAME)]
    promote("local-titles", "first local model", tracking_uri=tracking_uri(cfg), by="me")
    fetched = fetch_gguf("local-titles", "champion", tmp_path / "serve", tracking_uri=tracking_uri(cfg))
    assert sha256_file(fetched) == sha256_file(run_dir / "gguf" / GGUF_NAME)
