"""`finegate train` with train.num_processes > 1 keeps the stage's exit protocol: a policy failure in the
processes is a failed gate (exit 1, the report written once), bad input is one line (exit 2), and
train.nodes > 1 is refused on one machine. Real torchrun with two gloo processes; no model is loaded."""

from __future__ import annotations

import json

import pytest

from components.common.report import read_report
from pipelines.cli import main as finegate
from tests.fixtures.stage_outputs import write_splits


def _splits(root):
    rows = [{"prompt": f"記事{i}の本文です。", "completion": f"タイトル{i}"} for i in range(4)]
    return write_splits(root, rows[:3], rows[3:])


def test_a_policy_failure_in_the_processes_is_a_failed_gate_with_one_report(tmp_path, capfd):
    code = finegate(["train", "--data-dir", str(_splits(tmp_path / "split")), "--base-model", "org/model",
                     "--output-dir", str(tmp_path / "out"), "--set", "train.num_processes=2",
                     "--set", "train.num_epochs=10"])
    out, err = capfd.readouterr()
    assert code == 1
    assert "gate failed: train: policy: train.num_epochs=10.0 is outside the allowed range 1 to 3" in err
    assert json.loads(out) == read_report(tmp_path / "out")  # stdout holds the report and nothing else
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "split"]


def test_bad_input_is_found_before_any_process_starts(tmp_path, capfd):
    (tmp_path / "split").mkdir()
    code = finegate(["train", "--data-dir", str(tmp_path / "split"), "--base-model", "org/model",
                     "--output-dir", str(tmp_path / "out"), "--set", "train.num_processes=2"])
    err = capfd.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        f"finegate train: error: {tmp_path / 'split'}: no report.json: not a finished 'split' output (the stage did "
        "not finish, or this is not its output directory); run the split stage into it again"]


@pytest.mark.slow  # two processes load torch and transformers
def test_bad_input_inside_the_processes_comes_back_as_the_same_one_line_error(tmp_path, capfd):
    model = tmp_path / "model"  # passes the launcher's look (safetensors weights), fails to load in the processes
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"not weights")
    code = finegate(["train", "--data-dir", str(_splits(tmp_path / "split")), "--base-model", str(model),
                     "--output-dir", str(tmp_path / "out"), "--set", "train.num_processes=2"])
    err = capfd.readouterr().err
    assert code == 2
    assert f"finegate train (rank 0): error: {model}: cannot load the base model" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"finegate train: error: {model}: cannot load the base model"), last
    assert not (tmp_path / "out" / "report.json").exists()


def test_more_than_one_node_is_refused_outside_a_trainjob(tmp_path, capsys):
    code = finegate(["train", "--data-dir", str(_splits(tmp_path / "split")), "--output-dir", str(tmp_path / "out"),
                     "--set", "train.nodes=2"])
    assert code == 2
    assert "train.nodes=2: training across machines runs as a Kubeflow Trainer TrainJob" in capsys.readouterr().err
