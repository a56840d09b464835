"""promote and fetch against the session's real `mlflow server`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from components.common.errors import GateFailed, InputError
from components.common.storage import sha256_file
from components.register.core import run_register
from components.register.fetch import fetch_gguf
from components.register.promote import promote
from tests.register.run_dirs import GGUF_NAME, make_run_dir, write_tiny_gguf


def _register(tmp_path: Path, cfg, seed: int, **kwargs) -> str:
    run_dir = make_run_dir(tmp_path / f"run{seed}", cfg, seed=seed, **kwargs)
    report = run_register(run_dir, run_dir / "register", cfg)
    assert report.passed, report.reasons
    return report.details["model_version"]


def test_promote_moves_champion_and_records_who_why_when(tmp_path, register_cfg, client, mlflow_server):
    name = register_cfg.register_.model_name
    v1 = _register(tmp_path, register_cfg, seed=1)
    promote(name, "first model that passed every gate", tracking_uri=mlflow_server.url, by="sato")
    v2 = _register(tmp_path, register_cfg, seed=2)

    result = promote(name, "rouge_l 0.40 vs 0.39; raters preferred v2 31:19", tracking_uri=mlflow_server.url, by="tanaka")

    assert (result["version"], result["previous_version"], result["changed"]) == (v2, v1, True)
    assert client.get_model_version_by_alias(name, "champion").version == v2
    promoted = client.get_model_version(name, v2)
    assert set(promoted.aliases) == {"champion", "challenger"}
    assert promoted.tags["finegate.promotion.champion.by"] == "tanaka"
    assert promoted.tags["finegate.promotion.champion.reason"] == "rouge_l 0.40 vs 0.39; raters preferred v2 31:19"
    assert promoted.tags["finegate.promotion.champion.previous_version"] == v1
    at = datetime.fromisoformat(promoted.tags["finegate.promotion.champion.at"])
    assert abs(datetime.now(UTC) - at) < timedelta(minutes=5)
    replaced = client.get_model_version(name, v1)
    assert replaced.aliases == []
    assert replaced.tags["finegate.promotion.champion.by"] == "sato"
    assert replaced.tags["finegate.demotion.champion.replaced_by"] == v2
    assert replaced.tags["finegate.demotion.champion.by"] == "tanaka"


def test_promoting_the_current_champion_again_changes_nothing(tmp_path, register_cfg, client, mlflow_server):
    name = register_cfg.register_.model_name
    _register(tmp_path, register_cfg, seed=1)
    promote(name, "first", tracking_uri=mlflow_server.url, by="sato")

    again = promote(name, "second time", tracking_uri=mlflow_server.url, by="kato")

    assert again["changed"] is False
    assert client.get_model_version(name, "1").tags["finegate.promotion.champion.by"] == "sato"


def test_champion_loaded_back_by_alias_is_the_registered_file(tmp_path, register_cfg, mlflow_server, monkeypatch):
    from mlflow.artifacts import download_artifacts

    name = register_cfg.register_.model_name
    _register(tmp_path, register_cfg, seed=3)
    registered_sha = sha256_file(tmp_path / "run3" / "gguf" / GGUF_NAME)
    promote(name, "ship it", tracking_uri=mlflow_server.url)

    # As a serving pod would: MLFLOW_TRACKING_URI set, the plain models:/ URI (mlflow resolves its alias
    # through the process-wide registry URI, not the arguments).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    raw = Path(download_artifacts(f"models:/{name}@champion", dst_path=str(tmp_path / "raw")))
    fetched = fetch_gguf(name, "champion", tmp_path / "fetched", tracking_uri=mlflow_server.url)

    assert sha256_file(raw / GGUF_NAME) == registered_sha
    assert sha256_file(fetched) == registered_sha
    assert (raw / "SHA256SUMS").read_text() == f"{registered_sha}  {GGUF_NAME}\n"


def test_promote_refuses_an_overridden_version_without_its_own_written_reason(tmp_path, register_cfg, client,
                                                                              mlflow_server):
    name = register_cfg.register_.model_name
    register_cfg.gates.override_reason = "judge endpoint down during the run; metrics otherwise fine"
    version = _register(tmp_path, register_cfg, seed=4, failed={"evaluate": "judge unreachable"})

    with pytest.raises(GateFailed, match="did not pass its gates.*--override-reason"):
        promote(name, "needed for the demo", tracking_uri=mlflow_server.url)
    assert client.get_model_version(name, version).aliases == ["challenger"]

    promote(name, "needed for the demo", tracking_uri=mlflow_server.url, override_reason="judge rerun by hand: 4.1/5")
    tags = client.get_model_version(name, version).tags
    assert tags["finegate.promotion.champion.override_reason"] == "judge rerun by hand: 4.1/5"


def test_promote_refuses_a_version_not_made_by_register(tmp_path, client, mlflow_server):
    from mlflow.entities import LoggedModelStatus

    name = f"handmade-{tmp_path.name[-12:]}"
    exp = client.create_experiment(f"handmade-{tmp_path.name[-12:]}")
    model = client.create_logged_model(exp, name="gguf")
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.create_registered_model(name)
    client.create_model_version(name, source=f"models:/{model.model_id}", model_id=model.model_id)

    with pytest.raises(GateFailed, match="no gate record"):
        promote(name, "looks good to me", tracking_uri=mlflow_server.url, version=1)
    assert client.get_model_version(name, "1").aliases == []


def test_promote_needs_a_reason_and_an_existing_version(tmp_path, register_cfg, mlflow_server):
    name = register_cfg.register_.model_name
    _register(tmp_path, register_cfg, seed=5)

    with pytest.raises(InputError, match="needs --reason"):
        promote(name, "  ", tracking_uri=mlflow_server.url)
    with pytest.raises(InputError, match="has no version 7"):
        promote(name, "why not", tracking_uri=mlflow_server.url, version=7)
    with pytest.raises(InputError, match="has alias 'staging'"):
        promote(name, "why not", tracking_uri=mlflow_server.url, from_alias="staging")
    with pytest.raises(InputError, match="no registered model named 'nope-"):
        promote(f"nope-{name}", "why not", tracking_uri=mlflow_server.url)


def test_fetch_refuses_a_gguf_replaced_in_storage_after_registration(tmp_path, register_cfg, mlflow_server):
    from components.common import storage
    from components.common.errors import IntegrityError

    name = register_cfg.register_.model_name
    version = _register(tmp_path, register_cfg, seed=6)
    run_dir = tmp_path / "run6"
    model_id = json.loads((run_dir / "register" / "report.json").read_text())["model_id"]
    key = next(k for k in storage.list_objects(f"s3://{mlflow_server.bucket}/mlartifacts")
               if f"/models/{model_id}/artifacts/{GGUF_NAME}" in k)
    write_tiny_gguf(tmp_path / "other.gguf", seed=60)
    storage.upload_file(tmp_path / "other.gguf", key)

    with pytest.raises(IntegrityError, match=f"not the registered {sha256_file(run_dir / 'gguf' / GGUF_NAME)}"):
        fetch_gguf(name, "challenger", tmp_path / "fetched", tracking_uri=mlflow_server.url)
    assert version == "1"
