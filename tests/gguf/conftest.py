"""Session fixtures for the gguf tests: one tiny model, its held-out splits, one real run of the stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.common.config import load_config
from tests.gguf.tiny_model import build_tiny_llama_dir, write_splits

RUN_QUANT_TYPES = ["Q4_K_M", "Q8_0"]


@pytest.fixture(scope="session")
def tiny_merged(tmp_path_factory) -> Path:
    return build_tiny_llama_dir(tmp_path_factory.mktemp("tiny_llama") / "merged")


@pytest.fixture(scope="session")
def held_out_splits(tmp_path_factory) -> Path:
    return write_splits(tmp_path_factory.mktemp("splits"))


@pytest.fixture(scope="session")
def gguf_run(tmp_path_factory, tiny_merged, held_out_splits):
    """(report, output dir, config) of the real stage on the tiny model with two quantization types."""
    from components.gguf.core import run_gguf

    cfg = load_config(overrides=[f"gguf.quant_types={RUN_QUANT_TYPES}"])
    out = tmp_path_factory.mktemp("gguf_run")
    return run_gguf(tiny_merged, held_out_splits, out, cfg), out, cfg
