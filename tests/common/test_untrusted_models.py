"""Weights a stage was handed are never trusted: pickles are refused in one line, a corrupt safetensors file
or a GGUF llama.cpp cannot load is one line too, never a traceback."""

from __future__ import annotations

import pytest

from components.common.config import RunConfig
from components.common.errors import InputError
from components.common.hf_models import load_causal_lm, require_safetensors
from tests.register.run_dirs import write_tiny_gguf


def _model_folder(tmp_path, tiny_base):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_base, folder)
    return folder


def test_a_folder_with_only_pickled_weights_is_refused_before_loading(tmp_path, tiny_base):
    import torch

    folder = _model_folder(tmp_path, tiny_base)
    (folder / "model.safetensors").unlink()

    class Payload:  # what a malicious pickle does on load: call os.system
        def __reduce__(self):
            import os
            return os.system, (f"touch {tmp_path / 'pwned'}",)

    torch.save({"weights": Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(InputError, match=r"only pickled weights \(pytorch_model.bin\).*safetensors only"):
        load_causal_lm(folder, torch.float32)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_safetensors_file_is_one_line(tmp_path, tiny_base, damage):
    import torch

    folder = _model_folder(tmp_path, tiny_base)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\xff" * 64)
    with pytest.raises(InputError) as err:
        load_causal_lm(folder, torch.float32, what="merged model")
    message = str(err.value)
    assert message.startswith(f"{folder}: cannot load the merged model") and "\n" not in message


def test_an_empty_folder_says_what_is_missing(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(InputError, match="no \\*.safetensors weights in the model folder"):
        require_safetensors(tmp_path / "m")


def test_a_well_formed_gguf_llama_cpp_cannot_load_is_one_line(tmp_path):
    from components.gguf.runtime import open_gguf

    path = tmp_path / "incomplete.gguf"
    write_tiny_gguf(path)  # a valid header and one tensor: no model llama.cpp can build
    with pytest.raises(InputError, match="llama.cpp cannot load this GGUF") as err:
        with open_gguf(path, RunConfig().gguf):
            pass
    assert "\n" not in str(err.value)
