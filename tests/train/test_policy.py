"""The standard's policy is checked before any compute: each rule names its setting, range and source,
and only a written override reason lets a violating run go on."""

from __future__ import annotations

import pytest

from components.common.errors import InputError
from components.common.report import read_report
from components.train.core import run_train
from components.train.policy import STANDARD, check_policy
from tests.fixtures.models import fixture_config
from tests.fixtures.stage_outputs import write_splits

# Each case: overrides that break exactly one rule, the setting the failure must name, and text of its range.
VIOLATIONS = [
    (["train.lora.rank=8", "train.lora.alpha=16"], "train.lora.rank=8", "range 16 to 64"),
    (["train.lora.rank=128", "train.lora.alpha=256"], "train.lora.rank=128", "range 16 to 64"),
    (["train.lora.alpha=64"], "train.lora.alpha=64", "values [16, 32]"),
    (["train.lora.use_rslora=false"], "train.lora.use_rslora=False", "value true"),
    (["train.lora.dropout=0.3"], "train.lora.dropout=0.3", "range 0 to 0.1"),
    (["train.lora.target_modules=[q_proj,v_proj]"], "train.lora.target_modules", "missing ['k_proj', 'o_proj'"),
    (["train.learning_rate=0.001"], "train.learning_rate=0.001", "range 0.0001 to 0.0003"),
    (["train.learning_rate=0.00001"], "train.learning_rate=1e-05", "range 0.0001 to 0.0003"),
    (["train.lr_scheduler=polynomial"], "train.lr_scheduler='polynomial'", "values ['cosine', 'linear'"),
    (["train.warmup_ratio=0.2"], "train.warmup_ratio=0.2", "range 0.03 to 0.1"),
    (["train.warmup_ratio=0.0"], "train.warmup_ratio=0.0", "range 0.03 to 0.1"),
    (["train.num_epochs=5"], "train.num_epochs=5.0", "range 1 to 3"),
    (["train.early_stopping_patience=3"], "train.early_stopping_patience=3", "range 10 to 20"),
    (["train.early_stopping_patience=30"], "train.early_stopping_patience=30", "range 10 to 20"),
    (["train.early_stopping=false"], "train.early_stopping=False", "value true"),
    (["train.load_best_at_end=false"], "train.load_best_at_end=False", "value true"),
]


def _splits(tmp_path, val_rows: int = 2):
    rows = [{"id": f"r{i}", "source_line": i + 1, "prompt": f"記事{i}の本文です。", "completion": f"タイトル{i}"}
            for i in range(6)]
    return write_splits(tmp_path / "split", rows[:4], rows[4 : 4 + val_rows])


@pytest.mark.parametrize(("overrides", "setting", "allowed"), VIOLATIONS, ids=[v[1] for v in VIOLATIONS])
def test_each_rule_fails_the_stage_before_any_compute(tmp_path, overrides, setting, allowed):
    # The base model does not exist: reaching it would raise, so a report proves nothing was loaded.
    report = run_train(_splits(tmp_path), str(tmp_path / "no-such-model"), tmp_path / "out", fixture_config(*overrides))
    assert not report.passed
    assert len(report.reasons) == 1
    reason = report.reasons[0]
    assert setting in reason and allowed in reason and STANDARD in reason
    assert "train.policy_override_reason" in reason
    written = read_report(tmp_path / "out")
    assert written["passed"] is False and written["policy"]["violations"][0]["setting"] in reason
    assert not (tmp_path / "out" / "merged").exists()


def test_missing_validation_split_is_a_violation(tmp_path):
    report = run_train(_splits(tmp_path, val_rows=0), str(tmp_path / "no-such-model"), tmp_path / "out",
                       fixture_config())
    assert not report.passed
    assert "split val.jsonl rows=0" in report.reasons[0] and "validation split must exist" in report.reasons[0]


def test_default_config_follows_the_standard():
    check = check_policy(fixture_config(), val_rows=10)
    assert check.passed and check.violations == []


def test_override_reason_lets_the_run_go_on_and_is_recorded(tmp_path):
    cfg = fixture_config("train.learning_rate=0.001", "train.policy_override_reason=tiny model needs a higher LR")
    check = check_policy(cfg, val_rows=2)
    assert check.passed
    recorded = check.to_dict()
    assert recorded["overridden"] and recorded["override_reason"] == "tiny model needs a higher LR"
    assert recorded["violations"][0]["setting"] == "train.learning_rate"
    # The stage goes past the policy to the base model, which does not exist here.
    with pytest.raises(InputError, match="no-such-model"):
        run_train(_splits(tmp_path), str(tmp_path / "no-such-model"), tmp_path / "out", cfg)


def test_a_run_without_a_validation_split_is_refused_before_any_data_is_read(tmp_path):
    """v1 had no validation split: `finegate run` refuses it in its pre-flight policy stage, before clean."""
    from pipelines.local_chain import run_chain

    summary = run_chain(fixture_config("split.ratios=[1.0, 0, 0]"), tmp_path / "run")
    assert summary["failed_stage"] == "policy" and summary["failed_gate"] == "policy"
    assert "validation split must exist" in summary["stages"]["policy"]["reasons"][0]
    assert not (tmp_path / "run" / "clean").exists()
