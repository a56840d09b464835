"""Fixtures of the evaluate tests, built once per session from the shared ones (tests/fixtures/models.py):

    finetuned_gguf   trained_run's merged model, converted by llama.cpp's converter and quantized to Q4_K_M
    base_model_dir   tiny_base (the base model without the adapter, an HF folder)
    base_gguf        tiny_base converted to an F16 GGUF (the base baseline through llama.cpp)
    run_dir          a run folder as the pipeline lays it out: clean/, split/, train/ (reports, loss curve)
    judge_server     a llama.cpp OpenAI-compatible server serving finetuned_gguf on loopback
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.evaluate.servers import llama_cpp_server
from tests.fixtures.stage_outputs import seal


@pytest.fixture(scope="session")
def finetuned_gguf(trained_run, tmp_path_factory) -> Path:
    from components.gguf.convert import convert_to_f16
    from components.gguf.quantize import quantize

    out = tmp_path_factory.mktemp("finetuned_gguf")
    convert_to_f16(trained_run / "merged", out / "model-f16.gguf")
    quantize(out / "model-f16.gguf", out / "model-Q4_K_M.gguf", "Q4_K_M")
    # A gguf stage output shipping that file (its gates are the gguf tests' business).
    seal(out, "gguf", details={"shipped": "model-Q4_K_M.gguf", "shipped_type": "Q4_K_M"})
    return out / "model-Q4_K_M.gguf"


@pytest.fixture(scope="session")
def base_model_dir(tiny_base) -> Path:
    return tiny_base


@pytest.fixture(scope="session")
def run_dir(sample_splits, trained_run, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    (run / "clean").symlink_to(sample_splits.parent / "clean", target_is_directory=True)
    (run / "split").symlink_to(sample_splits, target_is_directory=True)
    (run / "train").symlink_to(trained_run, target_is_directory=True)
    return run


@pytest.fixture(scope="session")
def judge_server(finetuned_gguf, tmp_path_factory) -> str:
    """Base URL (…/v1) of a llama.cpp server serving the tiny quantized model as "judge"."""
    with llama_cpp_server(Path(finetuned_gguf), tmp_path_factory.mktemp("judge_server")) as url:
        yield url
