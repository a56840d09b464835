"""Fixtures of the platform tests: the production pipeline compiled once per session."""

from __future__ import annotations

import pytest
import yaml

from components.common.config import load_config
from pipelines.pipeline import compile_pipeline
from tests.platform.repo_files import REPO


@pytest.fixture(scope="session")
def compiled_documents(tmp_path_factory) -> list[dict]:
    """The production pipeline as `finegate compile` writes it: the pipeline spec, then (when any task has
    Kubernetes settings from kfp-kubernetes) the platform spec as a second YAML document."""
    path = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    compile_pipeline(load_config(REPO / "configs" / "production.yaml"), str(path))
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


@pytest.fixture(scope="session")
def compiled_pipeline(compiled_documents) -> dict:
    return compiled_documents[0]
