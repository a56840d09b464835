"""Bad input or setup stops `finegate gguf` with one actionable line and exit code 2, before any work."""

from __future__ import annotations

import subprocess
import sys

from tests.fixtures.stage_outputs import write_splits


def finegate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True)


def test_unknown_quantization_type_lists_the_known_ones(tmp_path):
    r = finegate("gguf", "--model-dir", str(tmp_path), "--data-dir", str(tmp_path), "--output-dir",
                 str(tmp_path / "out"), "--set", "gguf.ladder=[Q4_K_M, Q4_K_XL]")
    assert r.returncode == 2
    assert "unknown quantization type 'Q4_K_XL'" in r.stderr and "Q5_K_M" in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_converter_names_make_setup(tmp_path):
    r = finegate("gguf", "--model-dir", str(tmp_path), "--data-dir", str(tmp_path), "--output-dir",
                 str(tmp_path / "out"), "--set", f"gguf.converter_dir={tmp_path / 'nowhere'}")
    assert r.returncode == 2
    assert "converter not found" in r.stderr and "make setup" in r.stderr
    assert "Traceback" not in r.stderr


def test_split_folder_without_held_out_records_is_refused(tmp_path, tiny_merged):
    splits = write_splits(tmp_path / "splits", [{"prompt": "本文", "completion": "題"}], [], [])
    r = finegate("gguf", "--model-dir", str(tiny_merged), "--data-dir", str(splits),
                 "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "no held-out records (val.jsonl, test.jsonl)" in r.stderr
