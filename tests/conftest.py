"""Fixtures every stage's tests share: a real S3 server on loopback and the sample data."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from components.common import storage
from tests.fixtures.servers import moto_s3_server

pytest_plugins = ["tests.fixtures.data", "tests.fixtures.mlflow_server", "tests.fixtures.models", "tests.fixtures.demo",
                  "tests.fixtures.postgres"]

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "note_titles.jsonl"

# Fixtures that train, convert or build a model. A test that uses one, directly or through another fixture
# (base_gguf, finetuned_gguf, evaluated, ...), is slow whether or not it says so: `make test-fast`
# (-m "not slow") then builds no model at all.
MODEL_FIXTURES = frozenset({
    "tiny_base", "trained_run", "demo_base",  # tests/fixtures: the product's builders (make-tiny-base, train)
    "tiny_merged",  # tests/gguf/conftest.py
    "_trained", "byte_level_model_dir",  # tests/hf_check
    "char_lm",  # tests/common/test_jp_metrics.py
})


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """URL of moto's S3 server; the AWS variables point boto3 at it for the whole session."""
    log_dir = tmp_path_factory.mktemp("moto")
    with moto_s3_server(log_dir) as url, pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", url)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        storage._client.cache_clear()
        yield url
        storage._client.cache_clear()


@pytest.fixture
def s3_bucket(s3_endpoint):
    """A fresh, empty bucket on the S3 server; returns its name."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    storage.s3_client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def sample_path() -> Path:
    assert SAMPLE.is_file(), f"sample data missing: {SAMPLE} (run python data/sample/build_sample.py)"
    return SAMPLE
