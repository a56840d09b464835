"""hf_check: generate with the merged Hugging Face model before any conversion, and judge what comes out.

    run_hf_check(model_dir, data_dir, output_dir, cfg) -> StageReport

1. Reads the first `hf_check.max_prompts` rows of each split in `hf_check.splits` (val, test) from
   `data_dir` (the split stage's output; local or s3://) and loads `model_dir` (train's `merged/`).
2. Generates one answer per prompt, greedily, formatting each prompt exactly as training did: with the
   format the merged model carries (its chat template, which train stamps: components/common/prompts.py); stops
   at EOS or, with `hf_check.stop_at_newline`, at the first newline, within `hf_check.max_new_tokens`
   (None: derived from the tokenizer so any title of `hf_check.degenerate.max_output_chars` characters
   fits: components/common/token_budget.py; recorded in report.json `generation`). With
   `hf_check.do_sample`, one sampled answer per prompt too (temperature, top_p), flagged and reported, not gated.
3. Flags every output (components/common/degenerate.py); an output cut off by max_new_tokens is also
   `over_length` when `hf_check.flag_unfinished`. Scores outputs against the references (Japanese
   ROUGE-L, chrF, BLEU: components/common/jp_metrics.py) and the perplexity of the references.
4. Writes `samples.jsonl` (id, source_line, split, prompt, reference, output, flags, finished),
   `degenerate_rates.png` and `report.json`.

Gate B fails when the share of flagged greedy outputs exceeds `gates.max_degenerate_rate`, or ROUGE-L or
chrF fall under `gates.min_rouge_l` / `gates.min_chrf`; each reason names the rates and shows an output.

`metrics.quality_score` (the single number the pipeline reads) is the mean ROUGE-L over all greedy outputs
with every flagged output scored 0: equal to (ROUGE-L of the unflagged outputs) x (1 - degenerate rate).
A model that writes good titles half the time and 」」」」 otherwise scores half, not its good half's score.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from components.common import jp_metrics
from components.common.config import RunConfig
from components.common.degenerate import FLAGS, inspect_generation, output_chars
from components.common.errors import InputError
from components.common.gates import Gate
from components.common.hf_models import load_causal_lm
from components.common.prompts import model_encoder
from components.common.report import StageReport, write_jsonl
from components.common.stage_output import StageOutput
from components.common.token_budget import (
    TokenBudget,
    hf_token_counter,
    resolve_token_budget,
    training_titles,
)
from components.split.outputs import Splits, read_splits
from components.train.outputs import MERGED, read_trained

STAGE = "hf_check"
SAMPLES = "samples.jsonl"
RATES_PLOT = "degenerate_rates.png"


def load_split_rows(splits: Splits, names: list[str], max_prompts: int) -> list[dict[str, Any]]:
    """The first max_prompts rows of each named split, as the rows samples.jsonl is made of."""
    return [{"id": r.id, "source_line": r.source_line, "split": r.split, "prompt": r.prompt, "reference": r.completion}
            for r in splits.rows(*names, limit=max_prompts)]


def token_budget(tokenizer, titles: list[str], cfg: RunConfig, explicit: int | None) -> TokenBudget:
    """hf_check.max_new_tokens's rule (components/common/token_budget.py) for an HF tokenizer."""
    return resolve_token_budget(explicit, titles, hf_token_counter(tokenizer),
                                cfg.hf_check.degenerate.max_output_chars, cfg.hf_check.token_budget_margin)


def load_model(model_dir: Path, what: str = "merged model"):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_causal_lm(model_dir, torch.bfloat16 if device == "cuda" else torch.float32, what=what)
    return model.to(device).eval(), tokenizer


def _newline_token_ids(tokenizer) -> list[int]:
    ids = []
    for token_id in range(len(tokenizer)):
        if "\n" in tokenizer.decode([token_id]):
            ids.append(token_id)
    return ids


def generate(model, tokenizer, prompts: list[list[int]], cfg: RunConfig, max_new_tokens: int, sample: bool = False,
             label: str = "greedy") -> list[tuple[str, bool]]:
    """(answer, finished) per prompt (its token ids, `Encoder.prompt_ids`); finished is False when
    max_new_tokens cut the answer off.

    The answer ends at EOS or, with hf_check.stop_at_newline, at the first newline after some text
    (white space before the answer is skipped, not taken for an empty answer), or once it is longer than
    hf_check.degenerate.max_output_chars (unfinished: it did not stop). Special tokens the model
    wrote before its end (<|im_start|>, a second BOS) stay in the answer as text, for the template_markup
    flag; only padding and the EOS are dropped.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import StoppingCriteria, StoppingCriteriaList

    section = cfg.hf_check
    eos_id = tokenizer.eos_token_id
    # A chat model can end its turn with a token other than the tokenizer's EOS (Llama 3: <|eot_id|> beside
    # <|end_of_text|>); generate stops at the generation config's ids, and so does the answer.
    configured = getattr(model.generation_config, "eos_token_id", None)
    end_ids = {eos_id, *(configured if isinstance(configured, list) else [configured])} - {None}
    end_tensor = torch.tensor(sorted(end_ids), device=model.device, dtype=torch.long)
    newline_ids = torch.tensor(_newline_token_ids(tokenizer) if section.stop_at_newline else [],
                               device=model.device, dtype=torch.long)
    max_chars = section.degenerate.max_output_chars

    class AnswerEnded(StoppingCriteria):
        def __init__(self, prompt_length: int):
            self.prompt_length = prompt_length
            self.ended: set[int] = set()

        def __call__(self, input_ids, scores, **kwargs):  # one verdict per row of the batch
            last = input_ids[:, -1]
            done = torch.isin(last, end_tensor)
            for i in torch.isin(last, newline_ids).nonzero().flatten().tolist():
                done[i] = bool(tokenizer.decode(input_ids[i, self.prompt_length :]).strip())
            # An answer already past the character limit is over_length whatever follows: the derived token
            # budget leaves room for the costliest characters, and a rambling model need not use all of it.
            for i in range(len(done)):
                if i not in self.ended and not done[i]:
                    done[i] = output_chars(tokenizer.decode(input_ids[i, self.prompt_length :])) > max_chars
                if done[i]:
                    self.ended.add(i)
            return done

    tokenizer.padding_side = "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token_id = pad_id
    options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad_id}
    if sample:
        options.update(do_sample=True, temperature=section.temperature, top_p=section.top_p, top_k=0)
        torch.manual_seed(cfg.run.seed)
    else:
        options.update(do_sample=False, temperature=None, top_p=None, top_k=None)

    results: list[tuple[str, bool]] = []
    with tqdm(total=len(prompts), desc=f"hf_check {label}", unit="prompt", file=sys.stderr) as bar:
        for start in range(0, len(prompts), section.batch_size):
            batch = prompts[start : start + section.batch_size]
            enc = tokenizer.pad({"input_ids": batch}, return_tensors="pt").to(model.device)
            prompt_length = enc["input_ids"].shape[1]
            with torch.no_grad():
                out = model.generate(**enc, **options,
                                     stopping_criteria=StoppingCriteriaList([AnswerEnded(prompt_length)]))
            for row in out[:, prompt_length:].tolist():
                end = next((k for k, token in enumerate(row) if token in end_ids), None)
                eos_seen = end is not None
                if eos_seen:
                    row = row[:end]
                answer = tokenizer.decode([t for t in row if t != pad_id], skip_special_tokens=False).lstrip()
                finished = eos_seen
                if section.stop_at_newline and "\n" in answer:
                    answer, finished = answer.split("\n", 1)[0], True
                results.append((answer, finished))
            bar.update(len(batch))
    return results


def _flag_rows(rows: list[dict[str, Any]], outputs: list[tuple[str, bool]], cfg: RunConfig, template: str,
               prefix: str = "") -> None:
    """`template`: the prompt format's own text (PromptFormat.marker_template), which an answer must not echo."""
    for row, (text, finished) in zip(rows, outputs, strict=True):
        found = inspect_generation(text, finished, row["prompt"], cfg.hf_check, cfg.clean, template)
        row[f"{prefix}output"] = text
        row[f"{prefix}finished"] = finished
        row[f"{prefix}flags"] = list(found)
        row[f"{prefix}flag_details"] = found


def degenerate_rates(rows: list[dict[str, Any]], key: str = "flags") -> dict[str, float]:
    """{"any": share of rows with any flag, <flag>: share with that flag} (0.0 for no rows)."""
    n = len(rows)
    rates = {"any": sum(bool(r[key]) for r in rows) / n if n else 0.0}
    for flag in FLAGS:
        rates[flag] = sum(flag in r[key] for r in rows) / n if n else 0.0
    return rates


def _scores(rows: list[dict[str, Any]]) -> dict[str, float]:
    preds = [r["output"] for r in rows]
    refs = [r["reference"] for r in rows]
    per_pair = jp_metrics.rouge_l_per_pair(preds, refs)
    for row, score in zip(rows, per_pair, strict=True):
        row["rouge_l"] = round(score, 4)
    n = len(rows)
    clean = [s for s, r in zip(per_pair, rows, strict=True) if not r["flags"]]
    return {
        "rouge_l": sum(per_pair) / n if n else 0.0,
        "rouge_l_unflagged": sum(clean) / len(clean) if clean else 0.0,
        "chrf": jp_metrics.chrf(preds, refs),
        "bleu": jp_metrics.bleu(preds, refs),
        "quality_score": sum(clean) / n if n else 0.0,
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _example(rows: list[dict[str, Any]], flag: str | None = None) -> str:
    for r in rows:
        if (flag in r["flags"]) if flag else r["flags"]:
            return f"e.g. {r['split']}/{r['id']}: {r['output'][:60]!r} ({r['flag_details'][flag or r['flags'][0]]})"
    return ""


def _gate_b(report: StageReport, rows: list[dict[str, Any]], cfg: RunConfig) -> None:
    gates, m = cfg.gates, report.metrics
    gate = Gate("B", STAGE, cfg)
    rate = m["degenerate_rate"]
    by_flag = {f: m[f"degenerate_rate_{f}"] for f in FLAGS if m[f"degenerate_rate_{f}"] > 0}
    worst = max(by_flag, key=by_flag.get) if by_flag else None
    parts = ", ".join(f"{f} {_pct(v)}" for f, v in sorted(by_flag.items(), key=lambda kv: -kv[1]))
    gate.at_most("gates.max_degenerate_rate", rate, "degenerate-output rate (greedy)",
                 reason=f"degenerate outputs {_pct(rate)} > gates.max_degenerate_rate {_pct(gates.max_degenerate_rate)} "
                        f"({parts}); {_example(rows, worst)}")
    gate.at_least("gates.min_rouge_l", m["rouge_l"], "ROUGE-L against the references",
                  reason=f"ROUGE-L {m['rouge_l']:.3f} < gates.min_rouge_l {gates.min_rouge_l} "
                         f"(Japanese word tokens, {len(rows)} outputs vs references)")
    gate.at_least("gates.min_chrf", m["chrf"], "chrF against the references",
                  reason=f"chrF {m['chrf']:.3f} < gates.min_chrf {gates.min_chrf}")
    gate.apply(report)


def _plot_rates(rates: dict[str, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    names = ["any", *FLAGS]
    ax.bar(names, [100 * rates[n] for n in names], color=["#444"] + ["#c44"] * len(FLAGS))
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_ylabel("% of outputs")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_hf_check(model_dir: str | Path, data_dir: str | Path, output_dir: str | Path, cfg: RunConfig) -> StageReport:
    with StageOutput(output_dir, STAGE, inputs=[model_dir, data_dir]) as output:
        report = _check(model_dir, data_dir, output.path, cfg)
        output.finish(report)
    return report


def _check(model_dir: str | Path, data_dir: str | Path, out: Path, cfg: RunConfig) -> StageReport:
    with tempfile.TemporaryDirectory(prefix="hf_check_inputs_") as cache:
        splits = read_splits(data_dir, Path(cache) / "data")
        rows = load_split_rows(splits, cfg.hf_check.splits, cfg.hf_check.max_prompts)
        if not rows:
            raise InputError(f"{data_dir}: the {', '.join(cfg.hf_check.splits)} splits hold no rows to generate for")
        model, tokenizer = load_model(read_trained(model_dir, Path(cache) / "model", parts=(MERGED,)).merged)
        encoder = model_encoder(tokenizer, model_dir)  # the format train stamped into merged/
        titles = training_titles(splits) + [r["reference"] for r in rows]
    budget = token_budget(tokenizer, titles, cfg, cfg.hf_check.max_new_tokens)
    print(f"hf_check: {budget.describe()}", file=sys.stderr)

    markers = encoder.format.marker_template
    prompt_ids = [encoder.prompt_ids(r["prompt"]) for r in rows]
    _flag_rows(rows, generate(model, tokenizer, prompt_ids, cfg, budget.max_new_tokens), cfg, markers)
    if cfg.hf_check.do_sample:
        _flag_rows(rows, generate(model, tokenizer, prompt_ids, cfg, budget.max_new_tokens, sample=True,
                                  label="sampled"), cfg, markers, "sampled_")
    print("hf_check: perplexity of the references", file=sys.stderr)
    ppl = jp_metrics.completion_perplexity(model, [encoder.pair_ids(r["prompt"], r["reference"]) for r in rows])

    report = StageReport(STAGE)
    rates = degenerate_rates(rows)
    report.metrics.update({"samples": len(rows), "degenerate_rate": rates["any"],
                           **{f"degenerate_rate_{f}": rates[f] for f in FLAGS},
                           **_scores(rows), "perplexity": ppl["perplexity"], "mean_nll": ppl["mean_nll"],
                           "reference_tokens": ppl["tokens"], "max_new_tokens": budget.max_new_tokens})
    if cfg.hf_check.do_sample:
        sampled = degenerate_rates(rows, "sampled_flags")
        report.metrics.update({"sampled_degenerate_rate": sampled["any"],
                               **{f"sampled_degenerate_rate_{f}": sampled[f] for f in FLAGS}})
    report.details["splits"] = {
        split: {"samples": len(part), "degenerate_rate": degenerate_rates(part)["any"], **_scores(part)}
        for split in cfg.hf_check.splits if (part := [r for r in rows if r["split"] == split])}
    report.details["examples"] = {f: _example(rows, f) for f in FLAGS if any(f in r["flags"] for r in rows)}
    report.details["generation"] = budget.to_dict()
    report.details["prompt_format"] = encoder.format.to_dict()
    report.details["thresholds"] = {"max_degenerate_rate": cfg.gates.max_degenerate_rate,
                                    "min_rouge_l": cfg.gates.min_rouge_l, "min_chrf": cfg.gates.min_chrf}
    report.details["artifacts"] = {"samples": SAMPLES, "degenerate_rates_plot": RATES_PLOT}
    _gate_b(report, rows, cfg)

    write_jsonl(out / SAMPLES, rows)
    _plot_rates(rates, out / RATES_PLOT, f"hf_check: degenerate outputs ({len(rows)} greedy)")
    return report
