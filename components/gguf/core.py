"""The gguf stage: merged HF model -> F16 GGUF -> quantized GGUF, each checked against the one before.

    run_gguf("runs/demo/train", "runs/demo/split", "runs/demo/gguf", cfg)

1. Reads the train stage's verified output (its merged/ model) and the split stage's held-out rows.
2. `model-f16.gguf` from llama.cpp's own converter (convert.py); every GGUF's header is validated
   (header.py) before llama.cpp opens it, and its sha256 and real tensor-type mix go in the report.
3. Gate C, F16 against the HF model, on `gguf.n_prompts` held-out records (val, then test) in the prompt
   format merged/ carries (what training used; components/common/prompts.py): greedy agreement >=
   gates.min_greedy_agreement, largest logit difference <= gates.max_logit_diff, perplexity drift <=
   gates.max_f16_perplexity_drift. llama.cpp's own tokenizer on the F16 file, with the format the file
   carries (tokenizer.chat_template), must give the same ids (`tokenizer_match_rate`, reported).
4. Gate D, the quantization ladder: `gguf.quant_type` is quantized (llama.cpp's quantizer, quantize.py) and
   compared with F16: same top token >= gates.min_same_top_token_rate, mean KL divergence <=
   gates.max_mean_kld, perplexity ratio <= gates.max_perplexity_ratio, ROUGE-L between the two models'
   greedy outputs >= gates.min_output_rouge_l. When it fails, the next type of `gguf.ladder` is tried
   (Q4_K_M -> Q5_K_M -> Q6_K -> Q8_0); the first that passes ships as `model-<TYPE>.gguf`. Every rung tried
   is recorded with its figures and tensor mix; a failed rung's file is removed. No rung passing fails D.
   llama.cpp's published Llama-3-8B Q4_K_M figures stand beside ours in the report.

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

from components.common.config import RunConfig, dump_config
from components.common.errors import InputError
from components.common.hf_models import load_causal_lm
from components.common.prompts import Encoder, gguf_format, llama_encoder, model_encoder
from components.common.report import StageReport
from components.common.stage_output import StageOutput
from components.gguf import compare
from components.gguf.convert import convert_to_f16, find_converter
from components.gguf.gates import gate_summary, judge_f16, judge_quant
from components.gguf.header import check_header
from components.gguf.plot import PLOT_NAME, plot_fidelity
from components.gguf.quantize import ftype_for, quantize
from components.gguf.runtime import open_gguf, quiet_llama_log
from components.split.outputs import Splits, read_splits
from components.train.outputs import MERGED, read_trained

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


def read_held_out(splits: Splits, n: int) -> list[dict[str, Any]]:
    """The first n held-out records, val first (test is evaluate's), as {id, prompt, completion}."""
    rows = [{"id": r.id, "prompt": r.prompt, "completion": r.completion} for r in splits.rows(*HELD_OUT_SPLITS)][:n]
    if not rows:
        raise InputError(f"{splits.directory}: no held-out records (val.jsonl, test.jsonl) to compare the models on; "
                         "pass the split stage's output folder as --data-dir")
    return rows


def encode_held_out(encoder: Encoder, rows: list[dict[str, Any]], cfg: RunConfig, n_ctx: int) -> list[compare.HeldOut]:
    """The held-out records as token ids in the model's own prompt format (`encoder`: the one training used,
    read from merged/), so gate C sees what training saw."""
    room = cfg.gguf.max_new_tokens
    items = []
    for row in rows:
        text_ids, _ = encoder.pair_ids(row["prompt"], row["completion"])
        prompt_ids = encoder.prompt_ids(row["prompt"])
        if len(prompt_ids) + room > n_ctx:
            # Keep BOS and the end of the prompt, where the template asks for the title.
            prompt_ids = prompt_ids[:1] + prompt_ids[-(n_ctx - room - 1):]
        items.append(compare.HeldOut(id=row["id"], prompt=row["prompt"], completion=row["completion"],
                                     prompt_ids=prompt_ids, text_ids=text_ids[:n_ctx]))
    return items


def load_hf(model_dir: Path, cfg: RunConfig):
    import torch

    device = cfg.gguf.hf_device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_causal_lm(model_dir, getattr(torch, cfg.gguf.hf_dtype), what="merged model")
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


def measure_fidelity(model_dir: Path, out: Path, held_rows: list[dict[str, Any]], cfg: RunConfig) -> dict[str, Any]:
    """F16 against HF, then the ladder's quantized files against F16, on the same held-out ids, climbing until
    a rung passes gate D. At most two models are open at once (HF + F16, then F16 + one quantized file)."""
    model, tokenizer = load_hf(model_dir, cfg)
    # Never past the context the model was trained for: both sides would be extrapolating.
    n_ctx = min(cfg.gguf.n_ctx, getattr(model.config, "max_position_embeddings", None) or cfg.gguf.n_ctx)
    encoder = model_encoder(tokenizer, model_dir)  # the format train stamped into merged/
    held_out = encode_held_out(encoder, held_rows, cfg, n_ctx)
    eos = tokenizer.eos_token_id

    def decode(ids):
        return tokenizer.decode(ids, skip_special_tokens=True)

    hf = compare.HFModel(model, eos)
    max_new = cfg.gguf.max_new_tokens
    outputs: dict[str, list[list[int]]] = {}
    ladder: list[dict[str, Any]] = []
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
            **compare.tokenizer_agreement(llama_encoder(gguf_format(f16_llm, out / F16_NAME), f16_llm), held_out,
                                          n_ctx),
        }
        for quant in cfg.gguf.rungs():
            path = out / quant_file_name(quant)
            seconds = quantize(out / F16_NAME, path, quant, cfg.gguf.n_threads)
            header = check_header(path)
            with open_gguf(path, cfg.gguf, n_ctx) as q_llm:
                q = compare.LlamaModel(q_llm, quant, eos)
                figures = compare.compare_logits(f16, q, held_out, _progress(f"{quant} vs F16 logits"))
                outputs[quant] = compare.greedy_outputs(q, held_out, max_new, _progress(f"{quant} greedy"))
            figures["f16_perplexity"] = figures.pop("reference_perplexity")
            figures.update(compare.compare_greedy(outputs["f16"], outputs[quant], decode))
            gate = judge_quant(quant, figures, cfg)
            ladder.append({"type": quant, "passed": gate.passed, "figures": figures, "gate": gate,
                           "file": path.name, "header": header.to_dict(), "mix": quant_mix(header, quant),
                           "quantize_s": seconds})
            print(f"gguf: gate D {quant}: {'passed' if gate.passed else 'failed'} (same top token "
                  f"{figures['same_top_token_rate']:.3f}, KLD {figures['mean_kld']:.4f})", file=sys.stderr, flush=True)
            if gate.passed:
                break
            path.unlink()  # a failed rung does not ship; its figures, sha256 and mix stay in the report
    return {
        "prompt_format": encoder.format.to_dict(),
        "held_out": {"records": len(held_out), "ids": [h.id for h in held_out], "n_ctx": n_ctx,
                     "tokens": sum(len(h.text_ids) for h in held_out)},
        "f16_vs_hf": f16_vs_hf,
        "ladder": ladder,
        "samples": _samples(held_out, decode, outputs),
    }


def quant_mix(header, requested: str) -> dict[str, Any]:
    """What a quantized file really holds: tensors per ggml type, and how many quantized tensors fell back
    from the requested family (k-quants need rows that are multiples of 256; llama.cpp quietly writes
    those tensors in a legacy type, e.g. Q5_0, under the requested file type's name)."""
    types = dict(header.tensor_types)
    quantized = {t: n for t, n in types.items() if t not in ("F32", "F16", "BF16")}
    family = (lambda t: "_K" in t) if "_K" in requested else (lambda t: t == requested.split("_K")[0])
    fallback = {t: n for t, n in quantized.items() if not family(t)}
    total = sum(quantized.values())
    mix = {"requested": requested, "tensor_types": types, "quantized_tensors": total,
           "fallback_tensors": sum(fallback.values()), "fallback_types": fallback}
    if fallback:
        mix["note"] = (f"{requested} requested: {sum(fallback.values())} of {total} quantized tensors are "
                       + ", ".join(f"{n} {t}" for t, n in sorted(fallback.items(), key=lambda kv: -kv[1]))
                       + (" (k-quants need rows that are multiples of 256)" if "_K" in requested else ""))
    return mix


def apply_gates(report: StageReport, fidelity: dict[str, Any], cfg: RunConfig) -> str | None:
    """Gate C for F16, gate D over the ladder; returns the type that ships (None: no rung passed).
    The shipped rung's figures (else the last rung's) are the single-number metrics the pipeline reads."""
    gate_c = judge_f16(fidelity["f16_vs_hf"], cfg)
    gate_c.apply(report)
    ladder = fidelity["ladder"]
    shipped = next((r["type"] for r in ladder if r["passed"]), None)
    if shipped is not None:
        next(r for r in ladder if r["passed"])["gate"].apply(report)
        report.details.setdefault("gate_checks", []).extend(
            {**row, "passed": row["passed"], "superseded": True} for r in ladder if not r["passed"]
            for row in r["gate"].rows())
    else:
        for rung in ladder:
            rung["gate"].apply(report)
        tried = ", ".join(r["type"] for r in ladder)
        report.fail(f"gate D: no quantization type passed (tried {tried}); ship F16 or fix the model, and see "
                    "report.json ladder for each rung's figures")
    c, primary = fidelity["f16_vs_hf"], next((r for r in ladder if r["passed"]), ladder[-1])["figures"]
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
        "ladder_rungs_tried": len(ladder),
        "gate_c_passed": float(gate_c.passed),
        "gate_d_passed": float(shipped is not None),
    })
    report.details["gates"] = {"C": gate_summary(gate_c),
                               "D": {r["type"]: gate_summary(r["gate"]) for r in ladder}}
    return shipped


def run_gguf(model_dir: str | Path, data_dir: str | Path, output_dir: str | Path, cfg: RunConfig) -> StageReport:
    for quant in cfg.gguf.rungs():
        ftype_for(quant)  # an unknown type or a missing converter fails now, not after minutes of work
    find_converter(cfg.gguf.converter_dir)
    quiet_llama_log()
    with StageOutput(output_dir, STAGE, inputs=[model_dir, data_dir]) as output, \
            tempfile.TemporaryDirectory(prefix="finegate-gguf-") as tmp:
        trained = read_trained(model_dir, Path(tmp) / "model", parts=(MERGED,))
        held_rows = read_held_out(read_splits(data_dir, Path(tmp) / "data"), cfg.gguf.n_prompts)
        report = _convert_and_measure(trained.merged, held_rows, output.path, cfg)
        output.finish(report)
    return report


def _convert_and_measure(merged: Path, held_rows: list[dict[str, Any]], out: Path, cfg: RunConfig) -> StageReport:
    report = StageReport(STAGE)
    timings: dict[str, float] = {}
    timings["convert_s"] = convert_to_f16(merged, out / F16_NAME, cfg.gguf.converter_dir, log_path=out / "convert.log")
    files = {F16_NAME: check_header(out / F16_NAME).to_dict()}
    started = time.perf_counter()
    fidelity = measure_fidelity(merged, out, held_rows, cfg)
    timings["fidelity_s"] = time.perf_counter() - started
    shipped = apply_gates(report, fidelity, cfg)
    ladder = fidelity.pop("ladder")
    for rung in ladder:
        timings[f"quantize_{rung['type']}_s"] = rung["quantize_s"]
        if rung["passed"]:
            files[rung["file"]] = rung["header"]
    report.details.update(fidelity)
    report.details.update({
        "quantized": {r["type"]: r["figures"] for r in ladder},
        "ladder": [{"type": r["type"], "passed": r["passed"], "file": r["file"], "sha256": r["header"]["sha256"],
                    "shipped": r["type"] == shipped, "mix": r["mix"], **{k: r["figures"][k] for k in
                    ("same_top_token_rate", "mean_kld", "perplexity_ratio", "output_rouge_l")}} for r in ladder],
        "reference_llama_cpp": compare.LLAMA_CPP_REFERENCE,
        "files": files,
        "shipped": quant_file_name(shipped) if shipped else None,
        "shipped_type": shipped,
        "requested_type": cfg.gguf.quant_type.upper(),
        "timings": timings,
        "config": {"gguf": dump_config(cfg)["gguf"], "gates": dump_config(cfg)["gates"]},
    })
    for rung in report.details["ladder"]:
        if rung["mix"].get("note"):
            print(f"gguf: {rung['mix']['note']}", file=sys.stderr)
    plot_fidelity({"quantized": report.details["quantized"], "f16_vs_hf": fidelity["f16_vs_hf"]},
                  compare.LLAMA_CPP_REFERENCE, cfg.gates, out / PLOT_NAME)
    return report
