"""The gguf stage: merged HF model -> F16 GGUF -> quantized GGUF(s), each checked against the one before.

    run_gguf("runs/demo/train/merged", "runs/demo/split", "runs/demo/gguf", cfg)

1. `model-f16.gguf` from llama.cpp's own converter (convert.py), `model-<QUANT>.gguf` for every type in
   `gguf.quant_types` from llama.cpp's quantizer (quantize.py); Q4_K_M by default.
2. Every GGUF's header is validated (header.py) before llama.cpp opens it; its sha256 goes in the report.
3. Gate C, F16 against the HF model, on `gguf.n_prompts` held-out records (val, then test) formatted as
   in training (hf_check's `format_prompt`: chat template, else `train.prompt_template`): greedy
   agreement >= gates.min_greedy_agreement, largest logit difference <= gates.max_logit_diff,
   perplexity drift <= gates.max_f16_perplexity_drift.
4. Gate D, each quantized file against F16: same top token >= gates.min_same_top_token_rate, mean KL
   divergence <= gates.max_mean_kld, perplexity ratio <= gates.max_perplexity_ratio, ROUGE-L between the
   two models' greedy outputs >= gates.min_output_rouge_l. llama.cpp's published Llama-3-8B Q4_K_M figures
   stand beside ours in the report.

A conversion that changes the model is caught at C, before anyone blames the quantizer; a quantization
that breaks it is caught at D, before evaluation. Models are opened one pair at a time and closed.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from components.common import storage
from components.common.config import RunConfig, dump_config
from components.common.errors import InputError, row_problem
from components.common.report import StageReport, iter_jsonl
from components.gguf import compare
from components.gguf.convert import convert_to_f16, find_converter
from components.gguf.gates import judge_f16, judge_quant
from components.gguf.header import check_header
from components.gguf.plot import PLOT_NAME, plot_fidelity
from components.gguf.quantize import ftype_for, quantize
from components.gguf.runtime import open_gguf, quiet_llama_log

STAGE = "gguf"
F16_NAME = "model-f16.gguf"
HELD_OUT_SPLITS = ("val", "test")  # test is evaluate's, so val goes first


def quant_file_name(quant_type: str) -> str:
    return f"model-{quant_type.upper()}.gguf"


def _progress(label: str):
    def show(done: int, total: int) -> None:
        if done == total or done % max(1, total // 4) == 0:
            print(f"gguf: {label} {done}/{total}", file=sys.stderr, flush=True)
    return show


def read_held_out(data_dir: Path, n: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for split in HELD_OUT_SPLITS:
        path = data_dir / f"{split}.jsonl"
        if not path.is_file():
            continue
        for line_no, row in iter_jsonl(path, "a split row"):
            for name in ("prompt", "completion"):
                if not isinstance(row.get(name), str):
                    raise InputError(row_problem(str(path), line_no, name, "missing or not text; split rows need "
                                                 "prompt and completion"))
            rows.append({**row, "id": row.get("id", f"{split}:{line_no}")})
            if len(rows) == n:
                return rows
    if not rows:
        raise InputError(f"{data_dir}: no held-out records (val.jsonl, test.jsonl) to compare the models on; "
                         "pass the split stage's output folder as --data-dir")
    return rows


def encode_held_out(tokenizer, rows: list[dict[str, Any]], cfg: RunConfig, n_ctx: int) -> list[compare.HeldOut]:
    from components.common.jp_metrics import completion_token_ids

    # One prompt format for every stage that prompts the model (hf_check's rule: the tokenizer's chat
    # template when it has one, else train.prompt_template), so gate C sees what training saw.
    from components.hf_check.core import format_prompt

    fmt = format_prompt(tokenizer, cfg.train.prompt_template)
    room = cfg.gguf.max_new_tokens
    items = []
    for row in rows:
        prompt_text = fmt(row["prompt"])
        text_ids, _ = completion_token_ids(tokenizer, prompt_text, row["completion"])
        prompt_ids = tokenizer(prompt_text)["input_ids"]
        if len(prompt_ids) + room > n_ctx:
            # Keep BOS and the end of the prompt, where the template asks for the title.
            prompt_ids = prompt_ids[:1] + prompt_ids[-(n_ctx - room - 1):]
        items.append(compare.HeldOut(id=row["id"], text=prompt_text + row["completion"],
                                     prompt_ids=prompt_ids, text_ids=text_ids[:n_ctx]))
    return items


def load_hf(model_dir: Path, cfg: RunConfig):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = cfg.gguf.hf_device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, cfg.gguf.hf_dtype))
    model.to(device).eval()
    return model, tokenizer


def free_torch_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _samples(held_out, decode, outputs: dict[str, list[list[int]]]) -> list[dict[str, Any]]:
    return [{"id": item.id, **{name: decode(outs[i]) for name, outs in outputs.items()}}
            for i, item in enumerate(held_out)]


def measure_fidelity(model_dir: Path, out: Path, held_rows: list[dict[str, Any]], cfg: RunConfig,
                     quant_types: list[str]) -> dict[str, Any]:
    """F16 against HF, then every quantized file against F16, on the same held-out ids. At most two models
    are open at once (HF + F16, then F16 + one quantized file); each is closed when its turn is over."""
    model, tokenizer = load_hf(model_dir, cfg)
    # Never past the context the model was trained for: both sides would be extrapolating.
    n_ctx = min(cfg.gguf.n_ctx, getattr(model.config, "max_position_embeddings", None) or cfg.gguf.n_ctx)
    held_out = encode_held_out(tokenizer, held_rows, cfg, n_ctx)
    eos = tokenizer.eos_token_id

    def decode(ids):
        return tokenizer.decode(ids, skip_special_tokens=True)

    hf = compare.HFModel(model, eos)
    max_new = cfg.gguf.max_new_tokens
    outputs: dict[str, list[list[int]]] = {}
    quantized: dict[str, dict[str, Any]] = {}
    with open_gguf(out / F16_NAME, cfg.gguf, n_ctx) as f16_llm:
        f16 = compare.LlamaModel(f16_llm, "f16", eos)
        logits = compare.compare_logits(hf, f16, held_out, _progress("F16 vs HF logits"))
        outputs["hf"] = compare.greedy_outputs(hf, held_out, max_new, _progress("HF greedy"))
        del hf, model
        free_torch_memory()
        outputs["f16"] = compare.greedy_outputs(f16, held_out, max_new, _progress("F16 greedy"))
        f16_vs_hf = {
            **compare.compare_greedy(outputs["hf"], outputs["f16"], decode),
            "max_logit_diff": logits["max_logit_diff"],
            "mean_logit_diff": logits["mean_logit_diff"],
            "f16_same_top_token_rate": logits["same_top_token_rate"],
            "f16_mean_kld": logits["mean_kld"],
            "hf_perplexity": logits["reference_perplexity"],
            "f16_perplexity": logits["perplexity"],
            "f16_perplexity_drift": abs(logits["perplexity_ratio"] - 1.0),
            "positions": logits["positions"],
            "vocab_mismatch": logits["vocab_mismatch"],
            **compare.tokenizer_agreement(f16, lambda text: tokenizer(text)["input_ids"], held_out),
        }
        for quant in quant_types:
            with open_gguf(out / quant_file_name(quant), cfg.gguf, n_ctx) as q_llm:
                q = compare.LlamaModel(q_llm, quant, eos)
                figures = compare.compare_logits(f16, q, held_out, _progress(f"{quant} vs F16 logits"))
                outputs[quant] = compare.greedy_outputs(q, held_out, max_new, _progress(f"{quant} greedy"))
            figures["f16_perplexity"] = figures.pop("reference_perplexity")
            quantized[quant] = {**figures, **compare.compare_greedy(outputs["f16"], outputs[quant], decode)}
    return {
        "held_out": {"records": len(held_out), "ids": [h.id for h in held_out], "n_ctx": n_ctx,
                     "tokens": sum(len(h.text_ids) for h in held_out)},
        "f16_vs_hf": f16_vs_hf,
        "quantized": quantized,
        "samples": _samples(held_out, decode, outputs),
    }


def apply_gates(report: StageReport, fidelity: dict[str, Any], cfg: RunConfig) -> None:
    """Gate results into the report: C for F16, D for every quantized type; the first type's figures are
    the single-number metrics the pipeline reads."""
    gate_c = judge_f16(fidelity["f16_vs_hf"], cfg.gates)
    gate_d = {q: judge_quant(q, figures, cfg.gates) for q, figures in fidelity["quantized"].items()}
    for reason in gate_c.reasons + [r for g in gate_d.values() for r in g.reasons]:
        report.fail(reason)
    c = fidelity["f16_vs_hf"]
    primary = next(iter(fidelity["quantized"].values()))
    report.metrics.update({
        "greedy_agreement": c["greedy_agreement"],
        "max_logit_diff": c["max_logit_diff"],
        "mean_logit_diff": c["mean_logit_diff"],
        "f16_perplexity_drift": c["f16_perplexity_drift"],
        "hf_perplexity": c["hf_perplexity"],
        "f16_perplexity": c["f16_perplexity"],
        "tokenizer_match_rate": c["tokenizer_match_rate"],
        "same_top_token_rate": primary["same_top_token_rate"],
        "mean_kld": primary["mean_kld"],
        "perplexity_ratio": primary["perplexity_ratio"],
        "output_rouge_l": primary["output_rouge_l"],
        "quant_perplexity": primary["perplexity"],
        "gate_c_passed": float(gate_c.passed),
        "gate_d_passed": float(all(g.passed for g in gate_d.values())),
    })
    report.details["gates"] = {"C": {"passed": gate_c.passed, **gate_c.checks},
                               "D": {q: {"passed": g.passed, **g.checks} for q, g in gate_d.items()}}


def run_gguf(model_dir: str | Path, data_dir: str | Path, output_dir: str | Path, cfg: RunConfig) -> StageReport:
    report = StageReport(STAGE)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    quant_types = list(dict.fromkeys(q.upper() for q in cfg.gguf.quant_types))
    for quant in quant_types:
        ftype_for(quant)  # an unknown type or a missing converter fails now, not after minutes of work
    find_converter(cfg.gguf.converter_dir)
    quiet_llama_log()
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="finegate-gguf-") as tmp:
        model_path = storage.localize(model_dir, Path(tmp) / "model", verify=cfg.storage.verify_sha256)
        data_path = storage.localize(data_dir, Path(tmp) / "data", verify=cfg.storage.verify_sha256)
        held_rows = read_held_out(Path(data_path), cfg.gguf.n_prompts)

        started = time.perf_counter()
        timings["convert_s"] = convert_to_f16(model_path, out / F16_NAME, cfg.gguf.converter_dir,
                                              log_path=out / "convert.log")
        files = {F16_NAME: check_header(out / F16_NAME).to_dict()}
        for quant in quant_types:
            name = quant_file_name(quant)
            timings[f"quantize_{quant}_s"] = quantize(out / F16_NAME, out / name, quant, cfg.gguf.n_threads)
            files[name] = check_header(out / name).to_dict()
        timings["convert_and_quantize_s"] = time.perf_counter() - started

        started = time.perf_counter()
        fidelity = measure_fidelity(Path(model_path), out, held_rows, cfg, quant_types)
        timings["fidelity_s"] = time.perf_counter() - started

    apply_gates(report, fidelity, cfg)
    report.details.update(fidelity)
    report.details.update({
        "reference_llama_cpp": compare.LLAMA_CPP_REFERENCE,
        "files": files,
        "shipped": quant_file_name(quant_types[0]),
        "timings": timings,
        "config": {"gguf": dump_config(cfg)["gguf"], "gates": dump_config(cfg)["gates"],
                   "prompt_template": cfg.train.prompt_template},
    })
    plot_fidelity(fidelity, compare.LLAMA_CPP_REFERENCE, cfg.gates, out / PLOT_NAME)
    report.write(out)
    return report
