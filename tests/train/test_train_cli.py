"""`finegate train` on the command line: exit codes and one-line errors."""

from __future__ import annotations

import pytest

from pipelines.cli import main as finegate
from tests.fixtures.stage_outputs import write_splits


def _splits(root):
    rows = [{"prompt": f"記事{i}の本文です。", "completion": f"タイトル{i}"} for i in range(4)]
    return write_splits(root, rows[:3], rows[3:])


def test_qlora_on_a_machine_without_cuda_says_so(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = finegate(["train", "--data-dir", str(_splits(tmp_path / "split")), "--base-model", "org/model",
                     "--output-dir", str(tmp_path / "out"), "--set", "train.quantization=4bit"])
    err = capsys.readouterr().err
    assert code == 2
    assert "train.quantization=4bit (QLoRA) needs a CUDA GPU" in err and "Traceback" not in err


def test_policy_violation_exits_1_with_the_rule_on_stderr(tmp_path, capsys):
    code = finegate(["train", "--data-dir", str(_splits(tmp_path / "split")), "--base-model", "org/model",
                     "--output-dir", str(tmp_path / "out"), "--set", "train.num_epochs=10"])
    err = capsys.readouterr().err
    assert code == 1
    assert "gate failed: train: policy: train.num_epochs=10.0 is outside the allowed range 1 to 3" in err


def test_missing_train_split_is_an_input_error(tmp_path, capsys):
    (tmp_path / "split").mkdir()
    code = finegate(["train", "--data-dir", str(tmp_path / "split"), "--output-dir", str(tmp_path / "out")])
    assert code == 2
    assert "no report.json: not a finished 'split' output" in capsys.readouterr().err


def test_unknown_train_setting_names_its_path(tmp_path, capsys):
    code = finegate(["train", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"),
                     "--set", "train.lora.rnak=16"])
    assert code == 2
    assert "train.lora.rnak: unknown key" in capsys.readouterr().err


def test_pickled_weights_are_refused(tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "pytorch_model.bin").write_bytes(b"pickle")
    code = finegate(["train", "--data-dir", str(_splits(tmp_path / "split")), "--base-model", str(model),
                     "--output-dir", str(tmp_path / "out")])
    assert code == 2
    assert "has only pickled weights (pytorch_model.bin), which can run code" in capsys.readouterr().err
