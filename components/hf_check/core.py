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
from components.common.degenerate import FLAGS, inspect_generation
from components.common.errors import InputError
from components.common.gates import Gate
from components.common.hf_models import load_causal_lm
from components.common.prompts import model_encoder
from components.common.report import StageReport, write_jsonl
from components.common.settings.degenerate import OutputRules
from components.common.stage_output import StageOutput
from components.common.token_budget import hf_token_counter, training_titles
from components.hf_check.generation import Decoding, generate
from components.split.outputs import Splits, read_splits
from components.train.outputs import MERGED, read_trained

STAGE = "hf_check"
SAMPLES = "samples.jsonl"
RATES_PLOT = "degenerate_rates.png"


def load_split_rows(splits: Splits, names: list[str], max_prompts: int) -> list[dict[str, Any]]:
    """The first max_prompts rows of each named split, as the rows samples.jsonl is made of."""
    return [{"id": r.id, "source_line": r.source_line, "split": r.split, "prompt": r.prompt, "reference": r.completion}
            for r in splits.rows(*names, limit=max_prompts)]


def load_model(model_dir: Path, what: str = "merged model"):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_causal_lm(model_dir, torch.bfloat16 if device == "cuda" else torch.float32, what=what)
    return model.to(device).eval(), tokenizer


def _flag_rows(rows: list[dict[str, Any]], outputs: list[tuple[str, bool]], rules: OutputRules, template: str,
               prefix: str = "") -> None:
    """`template`: the prompt format's own text (PromptFormat.marker_template), which an answer must not echo."""
    for row, (text, finished) in zip(rows, outputs, strict=True):
        found = inspect_generation(text, finished, row["prompt"], rules, template)
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
    budget = cfg.token_budget_rule(cfg.hf_check.max_new_tokens).resolve(titles, hf_token_counter(tokenizer))
    print(f"hf_check: {budget.describe()}", file=sys.stderr)

    markers, rules = encoder.format.marker_template, cfg.output_rules()
    prompt_ids = [encoder.prompt_ids(r["prompt"]) for r in rows]
    greedy = generate(model, tokenizer, prompt_ids, Decoding.of(cfg.hf_check), budget.max_new_tokens)
    _flag_rows(rows, greedy, rules, markers)
    if cfg.hf_check.do_sample:
        sampled = generate(model, tokenizer, prompt_ids, Decoding.of(cfg.hf_check, sample_seed=cfg.run.seed),
                           budget.max_new_tokens, label="sampled")
        _flag_rows(rows, sampled, rules, markers, "sampled_")
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
