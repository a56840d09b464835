from __future__ import annotations

import uuid

import pytest

from components.common.config import RunConfig, load_config


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
    """http://127.0.0.1:PORT of a loopback socket that accepts every connection and never answers a byte
    (a hung MLflow behind a live load balancer)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held, stop = [], threading.Event()

    def accept_forever():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()
