"""The train stage end to end on the tiny base and the cleaned sample splits: real trl + LoRA on CPU."""

from __future__ import annotations

import json

import pytest

from components.common.report import read_report
from components.common.storage import sha256_file
from components.train.core import run_train
from tests.fixtures.models import SHORT_TRAIN_SETTINGS, fixture_config
from tests.fixtures.stage_outputs import write_splits

pytestmark = pytest.mark.slow


def test_report_carries_gate_a_inputs_and_the_artifacts_exist(trained_run, sample_splits):
    report = read_report(trained_run)
    m = report["metrics"]
    assert m["best_step"] in (6, 12) and m["global_step"] == 12
    state = json.loads((trained_run / "trainer_state.json").read_text())
    evals = {e["step"]: e["eval_loss"] for e in state["log_history"] if "eval_loss" in e}
    assert sorted(evals) == [6, 12]
    assert m["best_val_loss"] == pytest.approx(min(evals.values()))
    assert m["best_step"] == min(evals, key=evals.get)
    assert report["policy"]["passed"] and report["policy"]["violations"] == []
    assert report["overfitting"]["verdict"] in ("ok", "overfit")
    assert m["train_rows"] + m["dropped_rows"] >= len((sample_splits / "train.jsonl").read_text().splitlines())
    assert m["real_token_share"] == 1.0  # padding-free batches
    assert report["prompt_format"] == "prompt_template"
    for name in ("adapter/adapter_model.safetensors", "merged/model.safetensors", "merged/tokenizer.model",
                 "merged/tokenizer.json", "loss_curve.png", "trainer_state.json"):
        assert (trained_run / name).is_file(), name
    assert not list((trained_run / "merged").glob("*.bin"))


def test_adapter_follows_the_standard(trained_run):
    config = json.loads((trained_run / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["lora_alpha"] == 32 and config["use_rslora"] is True
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_merged_model_reloads_and_generates_like_base_plus_adapter(trained_run, tiny_base):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, LlamaTokenizer

    tokenizer = LlamaTokenizer.from_pretrained(str(trained_run / "merged"), add_bos_token=True)
    merged = AutoModelForCausalLM.from_pretrained(str(trained_run / "merged")).eval()
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_base)),
                                             str(trained_run / "adapter")).eval()
    base = AutoModelForCausalLM.from_pretrained(str(tiny_base)).eval()
    prompt = fixture_config().train.prompt_template.format(prompt="在宅勤務が続き、机と椅子を見直した。")
    enc = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        logits = merged(**enc).logits
        assert torch.allclose(logits, with_adapter(**enc).logits, atol=1e-4)
        assert not torch.allclose(logits, base(**enc).logits, atol=1e-4)  # the adapter changed something
        out = merged.generate(**enc, max_new_tokens=12, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]  # what it says is gate B's business (hf_check)


def _diverging_splits(root):
    """Train rows all teach one title, val rows expect another: the val loss can only rise as training
    learns, the way it does when a model memorises its training set."""
    prompts = [f"{i}日目の日記。今日は散歩をして、帰りにパン屋へ寄った。" for i in range(20)]
    return write_splits(root, [{"id": f"t{i}", "prompt": p, "completion": "いつも同じタイトル"}
                               for i, p in enumerate(prompts[:16])],
                        [{"id": f"v{i}", "prompt": p, "completion": "まったく別の見出し"} for i, p in enumerate(prompts[16:])])


def test_early_stopping_fires_and_the_best_checkpoint_is_restored(tmp_path, tiny_base):
    cfg = fixture_config(*SHORT_TRAIN_SETTINGS, "train.max_steps=40", "train.eval_steps=2", "train.save_steps=2",
                         "train.per_device_batch_size=4", "train.learning_rate=3e-4",
                         "train.early_stopping_patience=2", "train.keep_local_checkpoints=true",
                         "train.policy_override_reason=a 40-step test run where patience 2 shows the restore",
                         "gates.max_val_loss=0.01")
    report = run_train(_diverging_splits(tmp_path / "split"), str(tiny_base), tmp_path / "out", cfg)
    m = report.metrics
    assert m["early_stop_step"] is not None and m["early_stop_step"] < 40
    assert m["early_stop_step"] == m["best_step"] + 2 * 2  # patience 2 evaluations, 2 steps apart
    checkpoints = tmp_path / "out" / "checkpoints"
    restored = sha256_file(tmp_path / "out" / "adapter" / "adapter_model.safetensors")
    assert restored == sha256_file(checkpoints / f"checkpoint-{m['best_step']}" / "adapter_model.safetensors")
    assert restored != sha256_file(checkpoints / f"checkpoint-{m['early_stop_step']}" / "adapter_model.safetensors")
    # Gate A: a validation loss above gates.max_val_loss fails the stage with the numbers in the reason.
    assert not report.passed
    assert any("gates.max_val_loss=0.01" in r for r in report.reasons)
