"""The gguf stage runs inside the gguf image, without a network, on a tiny Llama built here: llama.cpp's
converter and quantizer from the image turn a sealed train output into GGUF files that pass gates C and D."""

from __future__ import annotations

import os

import pytest

from components.gguf.header import check_header
from components.gguf.outputs import read_quantized
from tests.gguf.tiny_model import build_tiny_llama_dir, write_splits
from tests.images.docker_cli import docker, image_uid_gid

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_gguf_stage_converts_and_quantizes_a_tiny_model_inside_the_gguf_image(images, tmp_path):
    ref = images["gguf"]
    train = tmp_path / "train"
    build_tiny_llama_dir(train / "merged")
    splits = write_splits(tmp_path / "split")
    out = tmp_path / "out"
    out.mkdir()
    # The pod's user owns what it reads and writes (KFP downloads its inputs as that user); some of these
    # files were written private (0600) by root here.
    for tree in (train, splits, out):
        for path in (tree, *tree.rglob("*")):
            os.chown(path, *image_uid_gid(ref))

    done = docker("run", "--rm", "--network", "none", "-v", f"{train}:/in/train:ro", "-v", f"{splits}:/in/split:ro",
                  "-v", f"{out}:/out", ref, "finegate", "gguf", "--model-dir", "/in/train/merged",
                  "--data-dir", "/in/split", "--output-dir", "/out/gguf", check=False, timeout=1200)
    assert done.returncode == 0, f"finegate gguf in {ref} exited {done.returncode}:\n{done.stderr[-3000:]}"

    shipped = read_quantized(out / "gguf", tmp_path / "cache")  # verified against the stage's own report
    assert shipped.report["passed"] and shipped.quant_type, shipped.report.get("reasons")
    for path in (out / "gguf" / "model-f16.gguf", shipped.path):
        check_header(path)
