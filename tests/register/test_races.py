"""Concurrent registrations against the real `mlflow server`: the registry ends right whatever the interleaving."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from components.common.storage import sha256_file
from components.register.core import run_register
from tests.register.run_dirs import GGUF_NAME, make_run_dir

pytestmark = pytest.mark.slow  # 8 and 4 concurrent registrations against a real mlflow server


def _concurrently(calls):
    """Runs every call at once (a barrier releases them together); returns their results in order."""
    start = threading.Barrier(len(calls))

    def go(call):
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


def test_eight_concurrent_registrations_leave_challenger_on_the_highest_version(tmp_path, register_cfg, client):
    register_cfg.register_.log_adapter = False  # the race is in the registry; fewer uploads keep the test short
    run_dirs = [make_run_dir(tmp_path / f"run{i}", register_cfg, seed=i) for i in range(8)]

    reports = _concurrently([lambda d=d: run_register(d, d / "register", register_cfg) for d in run_dirs])

    name = register_cfg.register_.model_name
    versions = client.search_model_versions(f"name = '{name}'")
    assert all(r.passed for r in reports), [r.reasons for r in reports]
    assert sorted(int(v.version) for v in versions) == list(range(1, 9))
    assert sorted(int(r.details["model_version"]) for r in reports) == list(range(1, 9))
    assert client.get_model_version_by_alias(name, "challenger").version == "8"
    assert {v.tags["finegate.gguf.sha256"] for v in versions} == {sha256_file(d / "gguf" / GGUF_NAME) for d in run_dirs}


def test_four_concurrent_registrations_of_one_run_make_exactly_one_version(tmp_path, register_cfg, client):
    register_cfg.register_.log_adapter = False
    run_dir = make_run_dir(tmp_path / "run", register_cfg)

    reports = _concurrently([lambda i=i: run_register(run_dir, tmp_path / f"out{i}", register_cfg) for i in range(4)])

    name = register_cfg.register_.model_name
    versions = client.search_model_versions(f"name = '{name}'")
    assert [v.version for v in versions] == ["1"]
    assert client.get_model_version_by_alias(name, "challenger").version == "1"
    assert {r.details["model_version"] for r in reports} == {"1"}
    assert {r.details["mlflow_run_id"] for r in reports} == {versions[0].run_id}
    [winner] = [r for r in reports if not r.details.get("already_registered")]
    exp_id = client.get_experiment_by_name(register_cfg.register_.experiment).experiment_id
    assert [m.model_id for m in client.search_logged_models([exp_id])] == [winner.details["model_id"]]
    assert [r.info.run_id for r in client.search_runs([exp_id])] == [winner.details["mlflow_run_id"]]
