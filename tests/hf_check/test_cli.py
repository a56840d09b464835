"""`finegate check-outputs` and `finegate hf-check` end to end, through the installed command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from components.common.report import read_jsonl, write_jsonl

BODY = "毎朝5時に起きて30分だけ本を読む習慣を半年続けてみた。眠いけれど、一日が長くなった。"


def finegate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=300)


def test_check_outputs_writes_flags_back_and_prints_rates(tmp_path):
    rows = [
        {"id": 1, "prompt": BODY, "reference": "朝5時の読書を半年続けた", "output": "朝5時の読書を半年続けた"},
        {"id": 2, "prompt": BODY, "reference": "朝5時の読書を半年続けた", "output": "」」」」」」"},
        {"id": 3, "prompt": BODY, "output": "毎朝5時に起きて30分だけ本を読む"},
        {"id": 4, "output": "読書｜朝活｜習慣｜早起き"},
        {"id": 5, "output": "朝5時に起きて", "finished": False},  # cut off by the token limit
        {"id": 6, "prompt": BODY, "output": "朝5時の読書を半年続けた<|im_end|>"},
        {"id": 7, "prompt": BODY, "output": "朝5時の読書を半年\ufffd"},
        {"id": 8, "prompt": BODY, "output": "毎朝5時に"},  # the article's opening words
    ]
    src, dst = tmp_path / "outputs.jsonl", tmp_path / "flagged.jsonl"
    write_jsonl(src, rows)
    result = finegate("check-outputs", "--input", str(src), "--output", str(dst))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 8 and summary["flagged"] == 7
    assert summary["any_flag_rate"] == 7 / 8
    assert summary["rate_per_flag"] == {"empty": 0.0, "repetition": 1 / 8, "tag_list": 1 / 8, "prompt_copy": 2 / 8,
                                        "over_length": 1 / 8, "broken_text": 1 / 8, "template_markup": 1 / 8}
    assert summary["scores_vs_reference"]["rows"] == 2
    assert summary["scores_vs_reference"]["rouge_l"] == 0.5
    written = read_jsonl(dst)
    assert [r["flags"] for r in written] == [[], ["repetition"], ["prompt_copy"], ["tag_list"], ["over_length"],
                                             ["template_markup"], ["broken_text"], ["prompt_copy"]]
    assert written[0]["id"] == 1 and written[0]["reference"] == rows[0]["reference"]


def test_check_outputs_config_override_changes_the_threshold(tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, [{"output": "朝5時の読書を半年続けた"}])
    result = finegate("check-outputs", "--input", str(src), "--output", str(dst),
                      "--set", "hf_check.degenerate.max_output_chars=5")
    assert result.returncode == 0, result.stderr
    assert read_jsonl(dst)[0]["flags"] == ["over_length"]


def test_check_outputs_row_without_output_is_one_line_error(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"output": "題"}\n{"prompt": "本文"}\n', encoding="utf-8")
    result = finegate("check-outputs", "--input", str(src), "--output", str(tmp_path / "out.jsonl"))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"finegate check-outputs: error: {src}:2: field 'output': "
                                     "missing: each row needs an 'output'")


@pytest.mark.slow  # a fresh interpreter loading torch and transformers
def test_hf_check_command_exits_1_when_gate_b_fails(broken_model_dir, title_splits, tmp_path):
    result = finegate("hf-check", "--model-dir", str(broken_model_dir), "--data-dir", str(title_splits),
                      "--output-dir", str(tmp_path), "--set", "hf_check.max_new_tokens=12")
    assert result.returncode == 1
    assert "gate failed: hf_check: degenerate outputs 100.0%" in result.stderr
    assert "hf_check greedy" in result.stderr  # progress is shown while generating
    assert json.loads(result.stdout)["passed"] is False
    assert len(read_jsonl(tmp_path / "samples.jsonl")) == 6
