"""Small but real run dirs for the register tests: every stage's report.json written through StageReport,
a valid GGUF written by the gguf package's GGUFWriter (no model needed), a trainer_state.json with a loss
history, a matplotlib loss curve, a safetensors adapter and an HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from components.common.config import RunConfig, dump_config
from components.common.report import StageReport
from components.common.stage_output import build_manifest
from components.common.storage import sha256_bytes, sha256_file

GGUF_NAME = "model-Q4_K_M.gguf"
RAW_SHA = sha256_bytes(b"raw note_titles.jsonl")
TRAIN_SHA = sha256_bytes(b"train.jsonl")
LOSSES = [(10, 2.8, 2.9), (20, 2.1, 2.3), (30, 1.7, 2.0), (40, 1.5, 1.95)]  # (step, train loss, val loss)


def write_tiny_gguf(path: Path, seed: int = 0) -> str:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"finegate-test-{seed}")
    writer.add_block_count(1)
    rng = np.random.default_rng(seed)
    writer.add_tensor("token_embd.weight", rng.standard_normal((8, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sha256_file(path)


def make_run_dir(root: Path, cfg: RunConfig, *, seed: int = 0, failed: dict[str, str] | None = None,
                 missing: tuple[str, ...] = ()) -> Path:
    """A finished run: every stage passed unless `failed` maps a stage to its failure reason."""
    failed = failed or {}
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(dump_config(cfg)), encoding="utf-8")
    gguf_dir = root / "gguf"
    gguf_dir.mkdir(parents=True, exist_ok=True)
    gguf_sha = write_tiny_gguf(gguf_dir / GGUF_NAME, seed)

    reports = {
        "policy": StageReport("policy"),
        "clean": StageReport("clean", metrics={"rows_in": 638, "kept": 455, "contamination_rate_after": 0.0},
                             details={"input": {"uri": "data/note_titles.jsonl", "sha256": RAW_SHA},
                                      "outputs": {"kept.jsonl": sha256_bytes(b"kept")}}),
        "split": StageReport("split", metrics={"train_rows": 364, "val_rows": 45, "test_rows": 46, "leak_pairs": 0},
                             details={"outputs": {"train.jsonl": TRAIN_SHA, "val.jsonl": sha256_bytes(b"val"),
                                                  "test.jsonl": sha256_bytes(b"test")}}),
        "train": StageReport("train", metrics={"best_val_loss": 1.95, "best_step": 40, "overfit": False,
                                               "policy": {"rank": 16, "alpha": 32}}),
        "hf_check": StageReport("hf_check", metrics={"degenerate_rate": 0.02, "rouge_l": 0.41}),
        "gguf": StageReport("gguf", metrics={"same_top_token_rate": 0.97, "mean_kld": 0.01},
                            details={"shipped": GGUF_NAME, "files": {GGUF_NAME: {"sha256": gguf_sha}}}),
        "evaluate": StageReport("evaluate", metrics={"rouge_l": 0.38 + seed / 100, "chrf": 0.3, "base_rouge_l": 0.12},
                                details={"gguf_sha256": gguf_sha}),
    }
    train = root / "train"
    train.mkdir(exist_ok=True)
    history = [{"loss": tl, "step": s, "epoch": s / 40} for s, tl, _ in LOSSES]
    history += [{"eval_loss": vl, "step": s, "epoch": s / 40} for s, _, vl in LOSSES]
    (train / "trainer_state.json").write_text(json.dumps({"log_history": history, "best_metric": 1.95}), encoding="utf-8")
    _loss_png(train / "loss_curve.png")
    _adapter(train / "adapter")
    (root / "evaluate").mkdir(exist_ok=True)
    (root / "evaluate" / "report.html").write_text("<html><body><h1>evaluate</h1></body></html>", encoding="utf-8")
    (root / "evaluate" / "samples.jsonl").write_text('{"output": "data stays out of MLflow"}\n', encoding="utf-8")
    # Reports last, each with the manifest of its stage's files (as StageOutput writes them).
    for stage, report in reports.items():
        if stage in missing:
            continue
        if stage in failed:
            report.fail(failed[stage])
        (root / stage).mkdir(exist_ok=True)
        report.details["manifest"] = build_manifest(root / stage)
        report.write(root / stage)
    return root


def _loss_png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([s for s, _, _ in LOSSES], [t for _, t, _ in LOSSES], label="train")
    ax.plot([s for s, _, _ in LOSSES], [v for _, _, v in LOSSES], label="val")
    fig.savefig(path)
    plt.close(fig)


def _adapter(path: Path) -> None:
    from safetensors.numpy import save_file

    path.mkdir(parents=True, exist_ok=True)
    save_file({"lora_A": np.zeros((16, 8), dtype=np.float32)}, str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(json.dumps({"r": 16, "lora_alpha": 32}), encoding="utf-8")
