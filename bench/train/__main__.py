"""Bench: `finegate train` against a minimal plain trl script, same model, data and settings, side by side.

    .venv/bin/python -m bench.train                          # tiny base built here, sample data, 30 steps
    .venv/bin/python -m bench.train --steps 60 --repeats 3 --base-model .cache/tiny-base

Each contender runs in its own child process, alternating (finegate, trl, finegate, trl, ...), so drift in
the machine's load hits both alike. Throughput is the Trainer's own count of real (non-padding) input
tokens over its own `train_runtime` (evaluations and checkpoint saves included, for both), so the ratio
measures what finegate adds to the training loop: policy check, its tokenization, callbacks, mirroring.
Also printed: the share of real tokens in the training batches, padding-free (what finegate trains on)
against plain right-padding of the same batches. Targets: tokens/s ratio >= 0.95, real-token share >= 90%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 0.95
TARGET_REAL_SHARE = 0.90
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "note_titles.jsonl"


def settings(steps: int) -> list[str]:
    every = max(1, steps // 3)
    return [f"train.max_steps={steps}", f"train.eval_steps={every}", f"train.save_steps={every}",
            "train.logging_steps=5", "train.max_seq_length=512", "train.cpu_threads=1"]


def run_finegate(splits: str, base: str, out: str, overrides: list[str]) -> dict:
    from components.common.config import load_config
    from components.train.core import run_train

    report = run_train(splits, base, out, load_config(None, overrides))
    state = json.loads((Path(out) / "trainer_state.json").read_text())
    return {"report_metrics": report.metrics, **_throughput(state["log_history"], state["num_input_tokens_seen"])}


def run_plain_trl(splits: str, base: str, out: str, overrides: list[str]) -> dict:
    """What a person would write by hand with trl: the same settings, nothing else."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, EarlyStoppingCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    from components.common.config import load_config

    cfg = load_config(None, overrides)
    t = cfg.train
    if t.cpu_threads:
        torch.set_num_threads(t.cpu_threads)
    template = t.prompt_template
    data = load_dataset("json", data_files={"train": f"{splits}/train.jsonl", "val": f"{splits}/val.jsonl"})
    data = data.map(lambda r: {"prompt": template.format(prompt=r["prompt"]), "completion": r["completion"]},
                    remove_columns=[c for c in data["train"].column_names if c not in ("prompt", "completion")])
    set_seed(cfg.run.seed)
    args = SFTConfig(
        output_dir=out, seed=cfg.run.seed, data_seed=cfg.run.seed, num_train_epochs=t.num_epochs, max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_batch_size, per_device_eval_batch_size=t.per_device_batch_size,
        learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler, warmup_steps=t.warmup_ratio,
        eval_strategy="steps", eval_steps=t.eval_steps, save_strategy="steps", save_steps=t.save_steps,
        save_total_limit=t.save_total_limit, logging_steps=t.logging_steps, load_best_model_at_end=True,
        metric_for_best_model="eval_loss", greater_is_better=False, use_cpu=True,
        # trl's SFTConfig defaults to bf16=True, i.e. bf16 autocast even on CPU, which ran 4-6x slower here;
        # finegate trains in fp32 on CPU, so the plain script is told the same.
        bf16=False,
        max_length=None, padding_free=True, gradient_checkpointing=t.gradient_checkpointing,
        include_num_input_tokens_seen="non_padding", report_to="none", disable_tqdm=True)
    lora = LoraConfig(r=t.lora.rank, lora_alpha=t.lora.alpha, lora_dropout=t.lora.dropout,
                      use_rslora=t.lora.use_rslora, target_modules=list(t.lora.target_modules), task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(base), args=args, train_dataset=data["train"],
                         eval_dataset=data["val"], processing_class=AutoTokenizer.from_pretrained(base),
                         peft_config=lora, callbacks=[EarlyStoppingCallback(t.early_stopping_patience)])
    trainer.train()
    return _throughput(trainer.state.log_history, trainer.state.num_input_tokens_seen)


def _throughput(history: list[dict], tokens: int) -> dict:
    runtime = next(e["train_runtime"] for e in reversed(history) if "train_runtime" in e)
    best = min((e["eval_loss"] for e in history if "eval_loss" in e), default=None)
    return {"tokens": tokens, "train_runtime": runtime, "tokens_per_second": tokens / runtime, "best_val_loss": best}


def padded_share(splits: str, base: str, overrides: list[str]) -> float:
    """Real-token share if the same batches were right-padded instead of padding-free."""
    import torch
    from transformers import AutoTokenizer

    from components.common.config import load_config
    from components.split.outputs import read_splits
    from components.train.examples import encode_rows

    cfg = load_config(None, overrides)
    tokenizer = AutoTokenizer.from_pretrained(base)
    rows = read_splits(splits, Path(splits) / ".cache").rows("train")
    encoded = encode_rows(rows, tokenizer, cfg.train.prompt_template, cfg.train.max_seq_length)
    lengths = torch.tensor([len(ids) for ids in encoded.input_ids])
    order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0))
    batch = cfg.train.per_device_batch_size
    real = slots = 0
    for start in range(0, len(order), batch):
        chunk = lengths[order[start : start + batch]]
        real, slots = real + int(chunk.sum()), slots + int(chunk.max()) * len(chunk)
    return real / slots


def child(args: argparse.Namespace) -> None:
    run = run_finegate if args.child == "finegate" else run_plain_trl
    started = time.perf_counter()
    result = run(args.splits, args.base_model, args.out, json.loads(args.overrides))
    result["process_seconds"] = time.perf_counter() - started
    print(json.dumps(result))


def prepare(work: Path, base_model: str | None) -> tuple[str, str]:
    from components.base_models.tiny_base import make_tiny_base
    from components.clean.core import run_clean
    from components.common.config import load_config
    from components.split.core import run_split

    cfg = load_config(None)
    run_clean(str(SAMPLE), work / "clean", cfg)
    run_split(work / "clean" / "kept.jsonl", work / "split", cfg)
    if base_model is None:
        base_model = str(work / "base")
        started = time.perf_counter()
        make_tiny_base(SAMPLE, base_model, cfg)
        print(f"tiny base built in {time.perf_counter() - started:.0f} s", flush=True)
    return str(work / "split"), base_model


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--base-model", help="a model folder (default: build the tiny base here)")
    parser.add_argument("--child", choices=["finegate", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--splits", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0

    overrides = settings(args.steps)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        splits, base = prepare(work, args.base_model)
        runs: dict[str, list[dict]] = {"finegate": [], "trl": []}
        for i in range(args.repeats):
            for name in ("finegate", "trl"):
                out = work / f"{name}-{i}"
                proc = subprocess.run([sys.executable, "-m", "bench.train", "--child", name, "--splits", splits,
                                       "--base-model", base, "--out", str(out), "--overrides", json.dumps(overrides)],
                                      cwd=REPO, capture_output=True, text=True)
                if proc.returncode:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    return 2
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                runs[name].append(result)
                print(f"  {name:8s} run {i + 1}: {result['tokens']} tokens in {result['train_runtime']:.1f} s = "
                      f"{result['tokens_per_second']:.0f} tokens/s (process {result['process_seconds']:.0f} s, "
                      f"best val {result['best_val_loss']:.4f})", flush=True)
        share_padded = padded_share(splits, base, overrides)

    median = {name: statistics.median(r["tokens_per_second"] for r in rs) for name, rs in runs.items()}
    ratio = median["finegate"] / median["trl"]
    share = runs["finegate"][0]["report_metrics"]["real_token_share"]
    print(f"tokens/s (median of {args.repeats}): finegate {median['finegate']:.0f}, plain trl {median['trl']:.0f}; "
          f"ratio {ratio:.3f} (target >= {TARGET_RATIO})")
    print(f"real-token share: finegate {share:.1%} (padding-free), right-padded batches would be "
          f"{share_padded:.1%} (target >= {TARGET_REAL_SHARE:.0%})")
    same_tokens = {r["tokens"] for rs in runs.values() for r in rs}
    print(f"same training tokens in every run: {len(same_tokens) == 1} ({sorted(same_tokens)})")
    return 0 if ratio >= TARGET_RATIO and share >= TARGET_REAL_SHARE else 1


if __name__ == "__main__":
    sys.exit(main())
