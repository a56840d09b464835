"""`finegate rollback` against the session's real `mlflow server`."""

from __future__ import annotations

import json

import pytest

from components.common.errors import InputError
from components.register.core import run_register
from components.register.promote import promote
from components.register.rollback import rollback
from pipelines.cli import main
from tests.register.run_dirs import make_run_dir


def _register(tmp_path, cfg, seed: int) -> str:
    run_dir = make_run_dir(tmp_path / f"run{seed}", cfg, seed=seed)
    report = run_register(run_dir, run_dir / "register", cfg)
    assert report.passed, report.reasons
    return report.details["model_version"]


@pytest.fixture
def two_promotions(tmp_path, register_cfg, mlflow_server):
    """v1 promoted, then v2 promoted over it: champion is v2, whose record names v1 as the one it replaced."""
    register_cfg.register_.log_adapter = False
    name = register_cfg.register_.model_name
    _register(tmp_path, register_cfg, seed=1)
    promote(name, "first model that passed every gate", tracking_uri=mlflow_server.url, by="sato")
    _register(tmp_path, register_cfg, seed=2)
    promote(name, "rouge_l 0.40 vs 0.39", tracking_uri=mlflow_server.url, by="sato")
    return name


def test_rollback_moves_champion_back_and_records_it_on_both_versions(two_promotions, client, mlflow_server, capsys):
    name = two_promotions

    code = main(["rollback", "--model", name, "--reason", "v2 titles run long in production", "--by", "tanaka",
                 "--tracking-uri", mlflow_server.url])

    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["version"], result["rolled_back_from"]) == ("1", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    restored, replaced = client.get_model_version(name, "1").tags, client.get_model_version(name, "2").tags
    for tags in (restored, replaced):
        assert tags["finegate.rollback.champion.by"] == "tanaka"
        assert tags["finegate.rollback.champion.reason"] == "v2 titles run long in production"
        assert tags["finegate.rollback.champion.at"] == result["at"]
    assert restored["finegate.rollback.champion.rolled_back_from"] == "2"
    assert replaced["finegate.rollback.champion.rolled_back_to"] == "1"
    assert client.get_model_version(name, "2").aliases == ["challenger"]


def test_rollback_past_the_first_promotion_is_refused_in_one_line(two_promotions, client, mlflow_server, capsys):
    name = two_promotions
    rollback(name, "v2 titles run long", tracking_uri=mlflow_server.url, by="tanaka")
    capsys.readouterr()

    code = main(["rollback", "--model", name, "--reason", "again", "--tracking-uri", mlflow_server.url])

    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith(f"finegate rollback: error: {name} version 1 (champion) has no earlier champion to go back to")
    assert client.get_model_version_by_alias(name, "champion").version == "1"


def test_rollback_to_a_deleted_version_is_refused(two_promotions, client, mlflow_server):
    name = two_promotions
    client.delete_model_version(name, "1")

    with pytest.raises(InputError, match=f"{name} version 2 \\(champion\\) replaced version 1, which no longer exists"):
        rollback(name, "v2 titles run long", tracking_uri=mlflow_server.url)
    assert client.get_model_version_by_alias(name, "champion").version == "2"


def test_rollback_without_a_champion_or_a_reason_is_refused(tmp_path, register_cfg, mlflow_server):
    name = register_cfg.register_.model_name
    _register(tmp_path, register_cfg, seed=3)

    with pytest.raises(InputError, match="needs --reason"):
        rollback(name, " ", tracking_uri=mlflow_server.url)
    with pytest.raises(InputError, match=f"no version of registered model '{name}' has alias 'champion'"):
        rollback(name, "why", tracking_uri=mlflow_server.url)
