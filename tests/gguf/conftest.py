"""Session fixtures for the gguf tests: one tiny model, its held-out splits, one real run of the stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.common.config import load_config
from tests.gguf.tiny_model import build_tiny_llama_dir, write_splits


@pytest.fixture(scope="session")
def tiny_merged(tmp_path_factory) -> Path:
    return build_tiny_llama_dir(tmp_path_factory.mktemp("tiny_llama") / "merged")


@pytest.fixture(scope="session")
def held_out_splits(tmp_path_factory) -> Path:
    return write_splits(tmp_path_factory.mktemp("splits"))


@pytest.fixture(scope="session")
def gguf_run(tmp_path_factory, tiny_merged, held_out_splits):
    """(report, output dir, config) of the real stage on the tiny model with the production config: Q4_K_M
    passes gate D at the first rung."""
    from components.gguf.core import run_gguf

    cfg = load_config()
    out = tmp_path_factory.mktemp("gguf_run")
    return run_gguf(tiny_merged, held_out_splits, out, cfg), out, cfg


@pytest.fixture(scope="session")
def ladder_run(tmp_path_factory, tiny_merged, held_out_splits, gguf_run):
    """The same model with gate D's KL threshold set under what Q4_K_M reached: the ladder has to climb."""
    from components.gguf.core import run_gguf

    q4_kld = gguf_run[0].details["quantized"]["Q4_K_M"]["mean_kld"]
    cfg = load_config(overrides=[f"gates.max_mean_kld={q4_kld / 2}"])
    out = tmp_path_factory.mktemp("ladder_run")
    return run_gguf(tiny_merged, held_out_splits, out, cfg), out, cfg
