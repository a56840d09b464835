"""hf_check on the real pipeline's model: the tiny base fine-tuned by run_train (shared session fixtures)."""

from __future__ import annotations

import math
import shutil

import pytest

from components.common.degenerate import FLAGS
from components.common.report import read_jsonl, read_report
from components.hf_check.core import run_hf_check
from tests.fixtures.models import fixture_config
from tests.fixtures.stage_outputs import write_stage_output


@pytest.fixture(scope="module")
def checked(trained_run, sample_splits, tmp_path_factory):
    cfg = fixture_config("hf_check.max_prompts=8", "hf_check.max_new_tokens=24")
    out = tmp_path_factory.mktemp("hf_check_trained")
    return run_hf_check(trained_run / "merged", sample_splits, out, cfg), out, cfg


@pytest.mark.slow
def test_trained_model_is_checked_and_gate_b_follows_the_thresholds(checked, sample_splits):
    report, out, cfg = checked
    samples = read_jsonl(out / "samples.jsonl")
    expected = sum(min(8, len(read_jsonl(sample_splits / f"{s}.jsonl"))) for s in ("val", "test"))
    assert len(samples) == report.metrics["samples"] == expected
    assert all(set(s["flags"]) <= set(FLAGS) for s in samples)
    m = report.metrics
    assert m["degenerate_rate"] == pytest.approx(sum(bool(s["flags"]) for s in samples) / len(samples))
    assert m["quality_score"] == pytest.approx(sum(s["rouge_l"] for s in samples if not s["flags"]) / len(samples),
                                               abs=1e-3)
    assert math.isfinite(m["perplexity"]) and m["perplexity"] > 1.0
    gate_ok = (m["degenerate_rate"] <= cfg.gates.max_degenerate_rate and m["rouge_l"] >= cfg.gates.min_rouge_l
               and m["chrf"] >= cfg.gates.min_chrf)
    assert report.passed is gate_ok
    assert read_report(out)["passed"] is gate_ok


@pytest.mark.slow
def test_fine_tuning_makes_the_reference_titles_likelier(checked, trained_run, tiny_base, sample_splits, tmp_path):
    from transformers import AutoTokenizer

    from components.common.prompts import read_format, stamp

    report, _, cfg = checked
    # The base, prompted in the fine-tuned model's format (which it carries, as train stamps it), read by
    # hf_check as a train output.
    base = tmp_path / "base_model"
    shutil.copytree(tiny_base, base)
    fine_tuned = trained_run / "merged"
    stamp(AutoTokenizer.from_pretrained(str(base)), read_format(AutoTokenizer.from_pretrained(str(fine_tuned)),
                                                                fine_tuned), base)
    as_trained = write_stage_output(tmp_path / "base", "train", {"merged": base})
    base = run_hf_check(as_trained, sample_splits, tmp_path / "out", cfg)
    assert report.metrics["perplexity"] < base.metrics["perplexity"]
