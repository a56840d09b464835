from __future__ import annotations

import uuid

import pytest

from components.common.config import RunConfig, load_config
from tests.fixtures.servers import silent_server as silent_tcp_server


@pytest.fixture
def register_cfg(mlflow_server) -> RunConfig:
    """A config pointed at the session's MLflow server, with an experiment and model name of its own."""
    tag = uuid.uuid4().hex[:8]
    return load_config(None, [f"register.tracking_uri={mlflow_server.url}", f"register.experiment=exp-{tag}",
                              f"register.model_name=titles-{tag}", "run.name=note-titles"])


@pytest.fixture
def client(mlflow_server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)


@pytest.fixture
def silent_server():
    """A loopback MLflow that accepts every connection and never answers (a hung server behind a live load
    balancer)."""
    with silent_tcp_server() as url:
        yield url
