"""report.html's gate table reads every other stage's report from the run dir, in pipeline order."""

from __future__ import annotations

import json

from components.evaluate.core import collect_stage_reports, find_loss_curve


def _report(folder, stage, passed=True, reasons=()):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps({"stage": stage, "passed": passed, "reasons": list(reasons),
                                                    "metrics": {}}), encoding="utf-8")


def test_run_dir_reports_come_in_pipeline_order_without_our_own(tmp_path):
    for stage in ("gguf", "clean", "train", "split"):
        _report(tmp_path / stage, stage)
    _report(tmp_path / "evaluate", "evaluate", passed=False, reasons=["stale report of an earlier attempt"])
    _report(tmp_path / "zz_custom", "zz_custom")
    found = collect_stage_reports(tmp_path, own_dir=tmp_path / "evaluate")
    assert [r["stage"] for r in found] == ["clean", "split", "train", "gguf", "zz_custom"]


def test_explicit_report_files_and_unreadable_ones(tmp_path):
    _report(tmp_path / "a", "train", passed=False, reasons=["val loss 3.1 above gates.max_val_loss=2.5"])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "report.json").write_text("{not json", encoding="utf-8")
    found = collect_stage_reports([tmp_path / "a" / "report.json", tmp_path / "b", tmp_path / "missing"],
                                  own_dir=tmp_path / "out")
    assert found[0]["reasons"] == ["val loss 3.1 above gates.max_val_loss=2.5"]
    assert found[1]["stage"] == "b" and found[1]["passed"] is False and "unreadable" in found[1]["reasons"][0]
    assert len(found) == 2
    assert collect_stage_reports(None, own_dir=tmp_path) == []


def test_loss_curve_from_the_train_dir_or_the_run_dir(tmp_path):
    (tmp_path / "train").mkdir()
    assert find_loss_curve(None, tmp_path) is None
    (tmp_path / "train" / "loss_curve.png").write_bytes(b"\x89PNG")
    assert find_loss_curve(None, tmp_path) == tmp_path / "train" / "loss_curve.png"
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "loss_curve.png").write_bytes(b"\x89PNG")
    assert find_loss_curve(other, tmp_path) == other / "loss_curve.png"
