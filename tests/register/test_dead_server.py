"""An MLflow endpoint that accepts connections and never answers: register, promote and rollback fail with
the server named, within register.http_timeout_s per try (the @timeout guard is far above it; no duration is
asserted)."""

from __future__ import annotations

import os

import pytest

from components.common.errors import StorageError
from components.register.core import run_register
from pipelines.cli import main
from tests.register.run_dirs import make_run_dir

pytestmark = pytest.mark.slow  # each test waits out the client's connect/read timeouts by design

FAST = ["register.http_timeout_s=1", "register.http_max_retries=1", "register.http_backoff_factor=0"]
MLFLOW_HTTP_VARIABLES = ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")


@pytest.mark.timeout(90)  # mlflow's own defaults (120 s, 7 retries with backoff) would wait about 20 minutes
def test_register_against_a_silent_server_fails_naming_it_and_restores_the_environment(tmp_path, register_cfg,
                                                                                      silent_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    register_cfg.register_.tracking_uri = silent_server
    register_cfg.register_.http_timeout_s, register_cfg.register_.http_max_retries = 1, 1
    register_cfg.register_.http_backoff_factor = 0
    run_dir = make_run_dir(tmp_path / "run", register_cfg)
    before = {k: os.environ.get(k) for k in MLFLOW_HTTP_VARIABLES}

    with pytest.raises(StorageError, match=f"^MLflow at {silent_server}: looking up .*timeout"):
        run_register(run_dir, run_dir / "register", register_cfg)

    assert {k: os.environ.get(k) for k in MLFLOW_HTTP_VARIABLES} == before


@pytest.mark.timeout(90)
@pytest.mark.parametrize("command", [["promote", "--model", "titles", "--reason", "why"],
                                     ["rollback", "--model", "titles", "--reason", "why"]], ids=lambda c: c[0])
def test_promote_and_rollback_against_a_silent_server_exit_2_in_one_line(silent_server, capsys, command):
    sets = [arg for item in FAST for arg in ("--set", item)]

    code = main([*command, "--tracking-uri", silent_server, *sets])

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"finegate {command[0]}: error: MLflow at {silent_server}: ") and "\n" not in err
