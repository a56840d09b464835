"""The train stage: LoRA supervised fine-tuning with trl, gated by the standard and by gate A.

    finegate train --data-dir runs/demo/split --base-model .cache/tiny-base --output-dir runs/demo/train
    finegate train --data-dir s3://runs/x/split --base-model s3://models/base --output-dir out \\
        --set run.run_id=x --set train.checkpoint_uri=s3://ckpt/train

    run_train(data_dir, base_model, output_dir, cfg) -> StageReport

Reads `train.jsonl` and `val.jsonl` (rows with `prompt` and `completion`) from the split stage. Writes:
`adapter/` (LoRA weights + tokenizer), `merged/` (base + LoRA merged, safetensors, tokenizer with
`tokenizer.model`), `trainer_state.json`, `loss_curve.png` and `report.json`.

What it does, in order, and the setting that controls each step:
1. Policy check before any compute (`train.policy.*`, components/train/policy.py): LoRA rank, alpha,
   rsLoRA, dropout, target modules, learning rate, scheduler, warmup share, epochs, a validation split.
   A violation fails the stage naming setting, allowed range and rule, unless `train.policy_override_reason`
   says why, which the report then carries.
2. QLoRA (`train.quantization=4bit`) needs CUDA and bitsandbytes; without them the stage says so and stops.
3. Base model from a hub id, a folder or an s3:// prefix (`train.base_model` or --base-model; S3 objects are
   verified by sha256), safetensors only, `train.trust_remote_code` off unless turned on.
4. Prompt/completion examples (components/train/examples.py): the model's chat template when it has one,
   else `train.prompt_template`; EOS appended; loss on the completion only; rows whose completion does not
   fit `train.max_seq_length` at all are dropped and counted (`dropped_rows`).
5. trl `SFTTrainer` + peft `LoraConfig` (`train.lora.*`): `train.learning_rate`, `train.lr_scheduler`,
   `train.warmup_ratio`, `train.num_epochs`, `train.max_steps`, `train.per_device_batch_size`,
   `train.gradient_accumulation_steps`; padding-free batches (`train.padding_free`) or packing
   (`train.packing`, `train.packing_strategy`); bf16 on CUDA, fp32 on CPU; seed `run.seed`.
6. Validation loss every `train.eval_steps`; early stopping after `train.early_stopping_patience`
   evaluations without an improvement of `train.early_stopping_threshold`; the best checkpoint is restored.
7. Checkpoints every `train.save_steps`, mirrored to `train.checkpoint_uri`/<run.run_id>/ with sha256 and a
   completion marker (components/train/checkpoints.py). Started again with the same `run.run_id`, the stage
   resumes from the newest complete checkpoint (weights, optimizer, scheduler, RNG) (`train.resume`).
8. Overfitting verdict (`train.overfit.*`, components/train/overfit.py) and loss_curve.png.
9. Gate A: `best_val_loss` above `gates.max_val_loss` fails; an overfitting verdict fails when
   `gates.fail_on_overfit`. `best_val_loss` is also the stage's single float output for the pipeline.
Past one process: `train.num_processes` > 1 runs all of this in that many torchrun processes, rank 0
writing the output (components/train/data_parallel.py); `train.nodes` > 1 is a TrainJob the pipeline's
train task runs (components/train/trainjob.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from components.common import storage
from components.common.config import RunConfig, dump_config
from components.common.errors import ConfigError, InputError
from components.common.gates import Gate
from components.common.hf_models import load_causal_lm, require_safetensors
from components.common.report import StageReport
from components.common.stage_output import StageOutput
from components.common.torch_threads import torch_threads
from components.split.outputs import read_splits
from components.train.checkpoints import CheckpointMirror, mirror_callback
from components.train.examples import EncodedSplit, encode_rows, uses_chat_template
from components.train.overfit import early_stop_step
from components.train.policy import check_policy, policy_gate
from components.train.ranks import SINGLE, Ranks

STAGE = "train"
CHECKPOINTS = "checkpoints"
# Settings that change nothing about the numbers a run produces: a resumed run may differ in these.
_NOT_SHAPING_TRAINING = {"checkpoint_uri", "resume", "keep_local_checkpoints", "policy", "policy_override_reason",
                         "overfit", "base_model", "num_processes", "nodes", "output_uri", "trainjob",
                         "process_group_timeout_s"}


def run_train(data_dir: str | Path, base_model: str | None, output_dir: str | Path, cfg: RunConfig) -> StageReport:
    if cfg.train.nodes > 1:
        raise ConfigError(f"train.nodes={cfg.train.nodes}: training across machines runs as a Kubeflow Trainer "
                          "TrainJob, which the pipeline's train task creates on a cluster; on one machine use "
                          "train.nodes=1 and train.num_processes")
    if cfg.train.num_processes > 1:
        from components.train.data_parallel import launch

        return launch(data_dir, base_model, output_dir, cfg)
    report = StageReport(STAGE)
    base_model = base_model or cfg.train.base_model
    with StageOutput(output_dir, STAGE, inputs=[data_dir, base_model]) as output, \
            tempfile.TemporaryDirectory(prefix="finegate-train-") as tmp:
        splits = read_splits(data_dir, Path(tmp) / "data")
        train_rows, val_rows, allowed = _rows_under_policy(data_dir, splits, cfg, report)
        if not allowed:
            output.finish(report)
            return report

        _check_hardware(cfg)
        model_dir = _localize_model(base_model, Path(tmp) / "base", cfg)
        with torch_threads(None if _cuda() else cfg.train.cpu_threads):
            _train(train_rows, val_rows, model_dir, base_model, output.path, cfg, report,
                   _digest(splits.directory, base_model, cfg))
        output.finish(report)
    return report


def _rows_under_policy(data_dir, splits, cfg: RunConfig, report: StageReport,
                       announce: bool = True) -> tuple[list, list, bool]:
    """The train and val rows, with the policy check (it needs the val row count) applied to report; False
    when the policy refuses the run. A passed override is announced on stderr."""
    train_rows, val_rows = splits.rows("train"), splits.rows("val")
    if not train_rows:
        raise InputError(f"{data_dir}: train.jsonl is empty; give the split stage's output folder")
    policy = check_policy(cfg, len(val_rows))
    report.details["policy"] = policy.to_dict()
    policy_gate(policy, STAGE, cfg).apply(report)
    if policy.passed and policy.violations and announce:
        print(f"train: policy overridden ({policy.override_reason}): "
              + "; ".join(v.message for v in policy.violations), file=sys.stderr)
    return train_rows, val_rows, policy.passed


def _check_hardware(cfg: RunConfig) -> None:
    if cfg.train.quantization != "4bit":
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("train.quantization=4bit (QLoRA) needs a CUDA GPU: bitsandbytes' 4-bit kernels do not run "
                          "on CPU and this machine has no CUDA device. Train in full precision with "
                          "train.quantization=none, or run on a GPU node.")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError("train.quantization=4bit (QLoRA) needs the bitsandbytes package, which is not installed "
                          "here (it ships in the GPU train image)") from None


def _localize_model(base_model: str, cache: Path, cfg: RunConfig) -> Path | str:
    """A local folder for s3:// and folder bases; a hub id is passed through to from_pretrained."""
    if storage.is_s3(base_model) or Path(base_model).exists():
        local = storage.localize(base_model, cache, verify=cfg.storage.verify_sha256,
                                 external=cfg.storage.external_raw_inputs)
        require_safetensors(local, "base model")
        return local
    if base_model.count("/") > 1 or base_model.startswith((".", "/")):
        raise InputError(f"{base_model}: no such folder (and not a hub id like org/name)")
    return base_model


def _digest(data: Path, base_model: str, cfg: RunConfig) -> str:
    """What a resumed run must share with the one that wrote the checkpoint: data, base model, settings."""
    train_settings = {k: v for k, v in dump_config(cfg)["train"].items() if k not in _NOT_SHAPING_TRAINING}
    parts = {"train": train_settings, "seed": cfg.run.seed, "base_model": base_model,
             "data": {name: storage.sha256_file(data / name) for name in ("train.jsonl", "val.jsonl")}}
    processes = cfg.train.num_processes * cfg.train.nodes
    if processes > 1:  # the global batch, and so the run, depends on it; single-process digests stay as they were
        parts["processes"] = processes
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _load(model_dir: Path | str, cfg: RunConfig):
    import torch

    bf16 = _bf16()
    extra: dict[str, Any] = {}
    if cfg.train.quantization == "4bit":
        from transformers import BitsAndBytesConfig

        extra["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
    model, tokenizer = load_causal_lm(model_dir, torch.bfloat16 if bf16 else torch.float32,
                                      trust_remote_code=cfg.train.trust_remote_code, what="base model", **extra)
    return model, tokenizer, bf16


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _bf16() -> bool:
    """bf16 where the GPU supports it, fp32 everywhere else (CPU training in bf16 is slow and lossy)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _encode(rows, tokenizer, cfg: RunConfig, name: str) -> EncodedSplit:
    encoded = encode_rows(rows, tokenizer, cfg.train.prompt_template, cfg.train.max_seq_length)
    if encoded.dropped:
        print(f"train: {len(encoded.dropped)} {name} rows dropped: not one completion token fits in "
              f"train.max_seq_length={cfg.train.max_seq_length} (ids {encoded.dropped[:10]})", file=sys.stderr)
    if not encoded.input_ids:
        raise InputError(f"every {name} row was dropped: no completion fits in train.max_seq_length="
                         f"{cfg.train.max_seq_length}; raise it")
    return encoded


def sft_config(cfg: RunConfig, output_dir: Path, bf16: bool, ranks: Ranks = SINGLE):
    from trl import SFTConfig

    t = cfg.train
    # Padding-free batches without packing are not truncated by trl: examples.py already did it.
    max_length = None if t.padding_free and not t.packing else t.max_seq_length
    return SFTConfig(
        output_dir=str(output_dir), seed=cfg.run.seed, data_seed=cfg.run.seed,
        num_train_epochs=t.num_epochs, max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_batch_size, per_device_eval_batch_size=t.per_device_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,  # transformers 5: a float below 1 is a share of the steps
        eval_strategy="steps", eval_steps=t.eval_steps, save_strategy="steps", save_steps=t.save_steps,
        save_total_limit=t.save_total_limit, logging_steps=t.logging_steps,
        load_best_model_at_end=t.load_best_at_end, metric_for_best_model="eval_loss", greater_is_better=False,
        bf16=bf16, use_cpu=not _cuda(),
        max_length=max_length, packing=t.packing, packing_strategy=t.packing_strategy,
        padding_free=t.padding_free, completion_only_loss=True, gradient_checkpointing=t.gradient_checkpointing,
        include_num_input_tokens_seen="non_padding", report_to="none", disable_tqdm=True,
        dataloader_num_workers=0, **ranks.trainer_args(_cuda()),
    )


def lora_config(cfg: RunConfig):
    from peft import LoraConfig

    lora = cfg.train.lora
    return LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout, use_rslora=lora.use_rslora,
                      target_modules=list(lora.target_modules), bias="none", task_type="CAUSAL_LM")


def real_token_share(trainer) -> float:
    """Share of the token slots in the training batches that hold an example's tokens rather than padding,
    over one epoch drawn with a private generator (the Trainer's own RNG stays untouched)."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    dataset = trainer.train_dataset
    counted = {"real": 0}

    def collate(examples):
        counted["real"] += sum(len(e["input_ids"]) for e in examples)
        return trainer.data_collator(examples)

    loader = DataLoader(dataset, batch_size=trainer.args.per_device_train_batch_size, collate_fn=collate,
                        sampler=RandomSampler(dataset, generator=torch.Generator().manual_seed(0)))
    slots = sum(batch["input_ids"].numel() for batch in loader)
    return counted["real"] / slots if slots else 0.0


def progress_callback():
    """Prints training progress to stderr and measures the real tokens per second of this session."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        started, tokens_at_start, seconds, tokens = 0.0, 0, 0.0, 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.started, self.tokens_at_start = time.monotonic(), state.num_input_tokens_seen

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.monotonic() - self.started
            self.tokens = state.num_input_tokens_seen - self.tokens_at_start

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero:
                return
            logs = logs or {}
            parts = [f"{k.replace('eval_', 'val_')} {logs[k]:.4f}" for k in ("loss", "eval_loss") if k in logs]
            if parts:
                print(f"train: step {state.global_step}/{state.max_steps} " + " ".join(parts),
                      file=sys.stderr, flush=True)

    return Progress()


def _train(train_rows, val_rows, model_dir, base_model: str, out: Path | None, cfg: RunConfig, report: StageReport,
           settings_digest: str, ranks: Ranks = SINGLE, checkpoints: Path | None = None) -> None:
    """Trains and, in the main process (`ranks.main`), writes the stage's files into `out`. Other processes of
    a data-parallel run train alongside and share `checkpoints` with the main process of their node."""
    from transformers import EarlyStoppingCallback, PrinterCallback, set_seed
    from trl import SFTTrainer

    from components.train.loss_curve import plot_loss_curves
    from components.train.overfit import detect_overfitting

    model, tokenizer, bf16 = _load(model_dir, cfg)
    train_set, val_set = _encode(train_rows, tokenizer, cfg, "train"), _encode(val_rows, tokenizer, cfg, "val")

    checkpoints = checkpoints or out / CHECKPOINTS
    if ranks.node_main:
        shutil.rmtree(checkpoints, ignore_errors=True)  # scratch: the mirror, not this folder, is what resumes
    progress = progress_callback()
    callbacks = [progress]
    if cfg.train.early_stopping:
        callbacks.append(EarlyStoppingCallback(cfg.train.early_stopping_patience, cfg.train.early_stopping_threshold))
    resumed_from, run_id = None, cfg.run.run_id
    if cfg.train.checkpoint_uri:
        if run_id is None:
            run_id = f"train-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
            if ranks.main:
                print(f"train: run.run_id not set; checkpoints go under {run_id} and this run cannot be resumed "
                      "by id", file=sys.stderr)
        mirror = CheckpointMirror(cfg.train.checkpoint_uri, run_id, settings_digest)
        callbacks.append(mirror_callback(mirror))
        if cfg.train.resume:
            restored = ranks.once_per_node("resumed_from", lambda: mirror.restore_latest(checkpoints))
            resumed_from = Path(restored) if restored else None
            if resumed_from is not None and ranks.main:
                print(f"train: resuming from {mirror.prefix}/{resumed_from.name}", file=sys.stderr)

    set_seed(cfg.run.seed)  # the LoRA weights are initialised inside SFTTrainer, before the Trainer seeds
    trainer = SFTTrainer(model=model, args=sft_config(cfg, checkpoints, bf16, ranks), train_dataset=train_set.as_dataset(),
                         eval_dataset=val_set.as_dataset(), processing_class=tokenizer, peft_config=lora_config(cfg),
                         callbacks=callbacks)
    # disable_tqdm makes the Trainer print every log dict to stdout, where the CLI writes its JSON report.
    trainer.remove_callback(PrinterCallback)
    share = real_token_share(trainer)
    trainer.train(resume_from_checkpoint=str(resumed_from) if resumed_from else None)
    ranks.barrier()  # every process is done with the node's checkpoint folder
    if not ranks.main:
        return

    state = trainer.state
    state.save_to_json(str(out / "trainer_state.json"))
    stopped_at = early_stop_step({"global_step": state.global_step, "max_steps": state.max_steps})
    best_step = state.best_global_step
    best_val_loss = float(state.best_metric) if state.best_metric is not None else float("nan")
    eval_losses = [e["eval_loss"] for e in state.log_history if "eval_loss" in e]
    # The model that ships: the best checkpoint when it is restored, else the last step's.
    val_loss = best_val_loss if cfg.train.load_best_at_end else (eval_losses[-1] if eval_losses else float("nan"))

    trainer.model.save_pretrained(str(out / "adapter"))
    tokenizer.save_pretrained(str(out / "adapter"))
    _merge(model_dir, out, tokenizer, cfg)

    rules = cfg.train.overfit_rules()
    verdict = detect_overfitting(state.log_history, rules)
    plot_loss_curves(state.log_history, out / "loss_curve.png", verdict=verdict, best_step=best_step,
                     early_stop_step=stopped_at, cfg=rules)

    train_losses = [e["loss"] for e in state.log_history if "loss" in e]
    report.metrics.update({
        "val_loss": val_loss, "best_val_loss": best_val_loss, "best_step": best_step, "early_stop_step": stopped_at,
        "global_step": state.global_step, "max_steps": state.max_steps, "epochs": state.epoch,
        "final_train_loss": train_losses[-1] if train_losses else None,
        "train_rows": len(train_set.input_ids), "val_rows": len(val_set.input_ids),
        "dropped_rows": len(train_set.dropped) + len(val_set.dropped),
        "truncated_completions": train_set.truncated + val_set.truncated,
        "train_tokens": train_set.tokens, "real_token_share": round(share, 4),
        "tokens_per_second": round(progress.tokens / progress.seconds, 1) if progress.seconds else None,
        "train_seconds": round(progress.seconds, 1), "resumed_from_step": state_step(resumed_from),
        "overfit": verdict.overfit, "processes": ranks.world_size, "nodes": ranks.nodes,
        "global_batch_size": trainer.args.per_device_train_batch_size * trainer.args.gradient_accumulation_steps
                             * ranks.world_size,
    })
    report.details.update({
        "base_model": base_model, "run_id": run_id,
        "prompt_format": "chat_template" if uses_chat_template(tokenizer) else "prompt_template",
        "prompt_template": None if uses_chat_template(tokenizer) else cfg.train.prompt_template,
        "dropped_row_ids": {"train": train_set.dropped, "val": val_set.dropped},
        "checkpoints": f"{cfg.train.checkpoint_uri.rstrip('/')}/{run_id}" if cfg.train.checkpoint_uri else None,
        "overfitting": verdict.to_dict(),
        "artifacts": ["adapter/", "merged/", "trainer_state.json", "loss_curve.png"],
    })
    _gate(report, val_loss, verdict, cfg)
    if not cfg.train.keep_local_checkpoints and cfg.train.checkpoint_uri:
        shutil.rmtree(checkpoints, ignore_errors=True)
    elif checkpoints != out / CHECKPOINTS:  # kept, as a single process keeps them, in the stage output
        shutil.move(checkpoints, out / CHECKPOINTS)
    print(f"train: best val loss {best_val_loss:.4f} at step {best_step}"
          + (f", early stop at {stopped_at}" if stopped_at else "")
          + f"; overfitting: {verdict.verdict}; gate A {'passed' if report.passed else 'FAILED'}", file=sys.stderr)


def state_step(checkpoint: Path | None) -> int | None:
    return int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint is not None else None


def _merge(model_dir, out: Path, tokenizer, cfg: RunConfig) -> None:
    """Base + adapter merged into plain weights (reloaded unquantized, so QLoRA runs merge cleanly too), its
    tokenizer carrying the prompt format training used as its chat template: every later stage, and llama.cpp
    reading the GGUF, reads the format from the model (components/common/prompts.py)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from components.common.prompts import stamp, training_format

    dtype = torch.bfloat16 if _bf16() else torch.float32
    base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype, use_safetensors=True,
                                                trust_remote_code=cfg.train.trust_remote_code)
    merged = PeftModel.from_pretrained(base, str(out / "adapter")).merge_and_unload()
    merged.save_pretrained(str(out / "merged"))
    stamp(tokenizer, training_format(tokenizer, cfg.train.prompt_template), out / "merged")
    # llama.cpp's converter reads tokenizer.model; without it, it falls back to a BPE hash check.
    source = Path(str(model_dir)) / "tokenizer.model"
    if source.is_file() and not (out / "merged" / "tokenizer.model").is_file():
        shutil.copy2(source, out / "merged" / "tokenizer.model")


def _gate(report: StageReport, val_loss: float, verdict, cfg: RunConfig) -> None:
    gate = Gate("A", STAGE, cfg)
    no_eval = (f"gate A: no validation loss: training ended at step {report.metrics['global_step']} before the first "
               f"evaluation (train.eval_steps={cfg.train.eval_steps}); lower train.eval_steps")
    gate.at_most("gates.max_val_loss", val_loss, "validation loss of the shipped model",
                 reason=no_eval if math.isnan(val_loss) else None,
                 fix="train longer, fix the data or raise the threshold with a reason")
    gate.rule("gates.fail_on_overfit", verdict.overfit, "no overfitting (loss curves)",
              reason="gate A: overfitting: " + "; ".join(verdict.reasons)
                     + " (see loss_curve.png; set gates.fail_on_overfit=false only with a written reason)")
    gate.apply(report)
