"""The whole gguf chain on a tiny model: real converter, real quantizer, real llama.cpp runtime."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from components.common.config import load_config
from components.common.storage import sha256_file
from components.gguf.gates import judge_f16, judge_quant
from components.gguf.header import check_header
from components.gguf.quantize import ftype_for, quantize
from tests.gguf.tiny_model import TEMPLATE

pytestmark = pytest.mark.slow


def finegate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True)


def test_f16_agrees_with_hf_and_passes_gate_c(gguf_run):
    report, _, cfg = gguf_run
    m = report.metrics
    assert m["greedy_agreement"] >= cfg.gates.min_greedy_agreement
    assert m["max_logit_diff"] <= cfg.gates.max_logit_diff
    assert m["f16_perplexity_drift"] <= cfg.gates.max_f16_perplexity_drift
    # The same weights rounded to F16: far inside the gate, not just under it.
    assert m["max_logit_diff"] < 0.1
    assert m["tokenizer_match_rate"] == 1.0
    assert report.details["gates"]["C"]["passed"] is True


def test_held_out_records_are_prompted_in_the_format_the_merged_model_carries(gguf_run, tiny_merged):
    from transformers import AutoTokenizer

    from components.common.prompts import read_format

    report, _, _ = gguf_run
    carried = read_format(AutoTokenizer.from_pretrained(str(tiny_merged)), tiny_merged)
    assert report.details["prompt_format"] == carried.to_dict()
    assert carried.marker_template == TEMPLATE  # what tests/gguf/tiny_model.py trained it on


def test_q4_k_m_passes_gate_d_at_the_first_rung_and_ships(gguf_run):
    report, out, cfg = gguf_run
    figures = report.details["quantized"]["Q4_K_M"]
    assert list(report.details["quantized"]) == ["Q4_K_M"]
    assert figures["same_top_token_rate"] >= cfg.gates.min_same_top_token_rate
    assert figures["mean_kld"] <= cfg.gates.max_mean_kld and figures["mean_kld"] > 0  # never bit-identical
    assert figures["perplexity_ratio"] <= cfg.gates.max_perplexity_ratio
    assert figures["output_rouge_l"] >= cfg.gates.min_output_rouge_l
    assert report.details["shipped"] == "model-Q4_K_M.gguf" and (out / "model-Q4_K_M.gguf").is_file()
    assert report.metrics["same_top_token_rate"] == figures["same_top_token_rate"]
    assert report.passed and report.reasons == []


def test_a_failing_type_climbs_the_ladder_to_the_first_that_passes(ladder_run, gguf_run):
    report, out, cfg = ladder_run
    ladder = report.details["ladder"]
    assert ladder[0]["type"] == "Q4_K_M" and not ladder[0]["passed"]
    assert ladder[-1]["passed"] and ladder[-1]["shipped"] and all(not r["passed"] for r in ladder[:-1])
    assert [r["type"] for r in ladder] == cfg.gguf.rungs()[: len(ladder)]
    shipped = ladder[-1]["type"]
    assert report.passed and report.details["shipped"] == f"model-{shipped}.gguf"
    assert report.metrics["mean_kld"] == report.details["quantized"][shipped]["mean_kld"] <= cfg.gates.max_mean_kld
    # Failed rungs are reported (figures, sha256, tensor mix) but their files do not ship.
    assert not (out / "model-Q4_K_M.gguf").exists() and ladder[0]["sha256"] and ladder[0]["mix"]["tensor_types"]
    superseded = [c for c in report.details["gate_checks"] if c.get("superseded")]
    assert superseded and all(c["gate"] == "D" for c in superseded)


def test_every_rung_reports_its_real_tensor_type_mix(gguf_run):
    report, _, _ = gguf_run
    mix = report.details["ladder"][0]["mix"]
    assert mix["requested"] == "Q4_K_M" and mix["quantized_tensors"] > 0
    # The tiny model's rows are multiples of 256: every quantized tensor is a k-quant, none fell back.
    assert mix["fallback_tensors"] == 0 and "note" not in mix
    assert sum(mix["tensor_types"].values()) == report.details["files"]["model-Q4_K_M.gguf"]["tensor_count"]


def test_report_records_files_with_sha256_and_llama_cpp_reference(gguf_run):
    report, out, _ = gguf_run
    written = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert written["stage"] == "gguf" and written["passed"] is True
    assert set(written["files"]) == {"model-f16.gguf", "model-Q4_K_M.gguf"}
    for name, header in written["files"].items():
        assert header["sha256"] == sha256_file(out / name)
    assert written["files"]["model-Q4_K_M.gguf"]["metadata"]["general.file_type"] == ftype_for("Q4_K_M")
    assert written["reference_llama_cpp"]["same_top_token_rate"] == 0.919
    assert len(written["samples"]) == written["held_out"]["records"] == 6
    assert (out / "fidelity.png").stat().st_size > 0
    assert "-->" in (out / "convert.log").read_text(encoding="utf-8")


@pytest.mark.parametrize("quant_type", ["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"])
def test_each_quantization_type_writes_a_valid_file_of_that_type(gguf_run, tmp_path, quant_type):
    _, out, _ = gguf_run
    target = tmp_path / f"model-{quant_type}.gguf"
    quantize(out / "model-f16.gguf", target, quant_type)
    header = check_header(target)
    assert header.metadata["general.file_type"] == ftype_for(quant_type)
    assert header.file_bytes < (out / "model-f16.gguf").stat().st_size


def test_stricter_thresholds_fail_gate_d_on_the_same_figures(gguf_run):
    report, _, _ = gguf_run
    strict = load_config(overrides=["gates.min_same_top_token_rate=0.999"])
    assert judge_f16(report.details["f16_vs_hf"], strict).passed
    d = judge_quant("Q4_K_M", report.details["quantized"]["Q4_K_M"], strict)
    assert not d.passed
    assert d.reasons[0].startswith("gate D: Q4_K_M same-top-token rate")


def test_cli_exits_1_with_the_gate_d_reason(tiny_merged, held_out_splits, tmp_path):
    result = finegate("gguf", "--model-dir", str(tiny_merged), "--data-dir", str(held_out_splits),
                      "--output-dir", str(tmp_path / "gguf"), "--set", "gguf.n_prompts=2",
                      "--set", "gguf.max_new_tokens=4", "--set", "gates.max_mean_kld=0.0")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "gate failed: gguf: gate D: Q4_K_M mean KL divergence" in result.stderr
    assert "gate D: no quantization type passed (tried Q4_K_M, Q5_K_M, Q6_K, Q8_0)" in result.stderr
    report = json.loads((tmp_path / "gguf" / "report.json").read_text(encoding="utf-8"))
    assert report["passed"] is False and report["gates"]["C"]["passed"] is True
    assert report["shipped"] is None and not list((tmp_path / "gguf").glob("model-Q*.gguf"))
