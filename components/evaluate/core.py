"""The evaluate stage: the quantized model that would ship, against two baselines, on the test split.

    run_evaluate("runs/demo/gguf/model-Q4_K_M.gguf", "runs/demo/split", "runs/demo/evaluate", cfg,
                 base_model=".cache/tiny-base", reports="runs/demo")

1. Reads the first `evaluate.max_samples` rows of `test.jsonl` from `data_dir` (the split stage's output,
   local or s3://); the GGUF's header is checked before llama.cpp opens it.
2. Three systems title every test article (systems.py, baselines.py):
   `finetuned` the quantized GGUF in llama.cpp; `base` the base model without the adapter (HF transformers
   on its folder, or llama.cpp when `base_model` is a .gguf); `heuristic` the article's first sentence (after
   the instruction paragraph the training prompts open with) cut to the training titles' median length. Both
   models decode greedily from the fine-tuned model's prompt format, read from the shipped GGUF
   (tokenizer.chat_template, which train stamped: components/common/prompts.py), never from the config or the
   base; they stop at EOS or newline; articles too long for `evaluate.n_ctx` are cut for every system alike.
3. Per system: ROUGE-L, BLEU, chrF on Japanese tokens (common/jp_metrics.py), perplexity of the reference
   titles (models only), the degenerate-output rate by kind (common/degenerate.py, hf_check's rules),
   and the deltas of the fine-tuned model against each baseline.
4. Optional LLM-as-judge (judge.py, `evaluate.judge`): mean score per system, malformed replies counted.
5. Writes `samples.jsonl` (every row, every system's title, flags, ROUGE-L, judge score), `metrics.png`,
   `human_eval.csv` + `human_eval_key.csv` (blind A/B pairs, base vs fine-tuned), `report.html` (with the
   gate results of every stage report found in the run dir and the train stage's loss curve), `report.json`.

The evaluate gate fails when the fine-tuned model's degenerate rate exceeds `gates.max_degenerate_rate`,
its ROUGE-L is under `gates.min_rouge_l`, it does not beat a baseline in `evaluate.must_beat` on
`evaluate.gate_metric` by `evaluate.min_gain`, or (only with `evaluate.judge.required`, or a
`min_mean_score`) the judge could not judge it or judged it too low.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.common import jp_metrics, storage
from components.common.config import RunConfig
from components.common.degenerate import FLAGS, inspect_generation
from components.common.errors import InputError, row_problem
from components.common.gates import Gate
from components.common.report import REPORT_NAME, StageReport, read_report, write_jsonl
from components.common.settings.degenerate import OutputRules
from components.common.stage_output import StageOutput
from components.common.token_budget import training_titles
from components.evaluate.baselines import (
    heuristic_titles,
    hf_base_tokenizer_and_model,
    learn_heuristic,
    run_hf_base,
)
from components.evaluate.charts import write_metrics_chart
from components.evaluate.html_report import write_html_report
from components.evaluate.human_eval import write_human_eval
from components.evaluate.judge import judge_outputs
from components.evaluate.systems import LlamaRuntime, SystemOutputs, run_gguf
from components.gguf.outputs import read_quantized
from components.hf_check.generation import Decoding
from components.split.outputs import Splits, read_splits
from components.train.outputs import LOSS_CURVE, read_trained

STAGE = "evaluate"
SAMPLES = "samples.jsonl"
OVERLAP = ("rouge_l", "bleu", "chrf")
# What the deltas compare, and for which of them lower is better (the HTML colours by it).
DELTA_METRICS = ("rouge_l", "bleu", "chrf", "perplexity", "degenerate_rate", "judge_mean_score")
# Stage reports in pipeline order for the HTML page; anything else found in the run dir follows.
STAGE_ORDER = ("clean", "split", "train", "hf_check", "gguf", "evaluate", "register")


def read_test_rows(splits: Splits, limit: int) -> list[dict[str, Any]]:
    rows = [{"id": r.id, "source_line": r.source_line, "prompt": r.prompt, "reference": r.completion}
            for r in splits.rows("test", limit=limit)]
    for r in rows:
        if not r["prompt"].strip() or not r["reference"].strip():
            raise InputError(row_problem(str(splits.path("test")), r["source_line"], "prompt" if not r["prompt"].strip()
                                         else "completion", "empty; test rows need a prompt and its reference"))
    if not rows:
        raise InputError(f"{splits.path('test')}: no test rows; the split stage wrote an empty test split (give "
                         "split.ratios a test share, e.g. 80/10/10)")
    return rows


def system_metrics(system: SystemOutputs, rows: list[dict[str, Any]], rules: OutputRules,
                   template: str | None = None) -> tuple[dict[str, Any], list]:
    """Scores one system's outputs against the references; returns (metrics, flags per row), flagged by hf_check's
    rules. `template`: the prompt format's own text (PromptFormat.marker_template), which an answer must not echo."""
    refs = [r["reference"] for r in rows]
    metrics: dict[str, Any] = {"source": system.source, **jp_metrics.corpus_scores(system.outputs, refs)}
    if system.perplexity is not None:
        metrics.update(perplexity=system.perplexity["perplexity"], mean_nll=system.perplexity["mean_nll"],
                       reference_tokens=system.perplexity["tokens"])
    flags_per_row = []
    for row, text, finished in zip(rows, system.outputs, system.finished, strict=True):
        flags_per_row.append(inspect_generation(text, finished, row["prompt"], rules, template))
    kinds = Counter(flag for flags in flags_per_row for flag in flags)
    metrics["degenerate_rate"] = sum(bool(f) for f in flags_per_row) / len(rows)
    metrics["degenerate_by_kind"] = {flag: kinds[flag] for flag in FLAGS if kinds[flag]}
    metrics["unfinished"] = sum(not f for f in system.finished)
    if system.token_budget is not None:
        metrics["max_new_tokens"] = system.token_budget["max_new_tokens"]
        metrics["token_budget"] = system.token_budget
    if system.notes:
        metrics["notes"] = system.notes
    return metrics, flags_per_row


def deltas_against(finetuned: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in DELTA_METRICS:
        a, b = finetuned.get(key), baseline.get(key)
        out[key] = a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
    return out


def collect_stage_reports(reports: str | Path | Sequence[str | Path] | None, own_dir: Path) -> list[dict[str, Any]]:
    """Every other stage's report.json: from a run dir (its <stage>/report.json) or a list of files/dirs."""
    if reports is None:
        return []
    if isinstance(reports, (str, Path)):
        root = Path(reports)
        paths = sorted(root.glob(f"*/{REPORT_NAME}")) if root.is_dir() and not (root / REPORT_NAME).is_file() \
            else [root]
    else:
        paths = [Path(p) for p in reports]
    found: list[dict[str, Any]] = []
    for path in paths:
        file = path / REPORT_NAME if path.is_dir() else path
        if not file.is_file() or file.resolve() == (own_dir / REPORT_NAME).resolve():
            continue
        try:
            data = read_report(file)
        except (OSError, InputError) as exc:
            found.append({"stage": file.parent.name, "passed": False, "reasons": [f"{file}: unreadable ({exc})"]})
            continue
        if isinstance(data, dict):
            data.setdefault("stage", file.parent.name)
            found.append(data)
    rank = {name: i for i, name in enumerate(STAGE_ORDER)}
    return sorted(found, key=lambda r: rank.get(str(r.get("stage")), len(rank)))


def find_loss_curve(train_dir: str | Path | None, reports) -> Path | None:
    candidates = []
    if train_dir is not None:
        candidates.append(Path(train_dir) / LOSS_CURVE)
    if isinstance(reports, (str, Path)) and Path(reports).is_dir():
        candidates.append(Path(reports) / "train" / LOSS_CURVE)
    return next((c for c in candidates if c.is_file()), None)


def _judge(rows, systems: dict[str, SystemOutputs], cfg: RunConfig, per_system: dict[str, dict[str, Any]],
           samples: list[dict[str, Any]]) -> dict[str, Any]:
    judge = cfg.evaluate.judge
    names = [s for s in judge.systems if s in systems]
    items = [{"id": i, "system": name, "article": samples[i]["article"], "title": systems[name].outputs[i]}
             for i in range(min(judge.max_samples, len(rows))) for name in names]
    result = judge_outputs(items, judge)
    for v in result.verdicts:
        samples[v.id].setdefault("judge", {})[v.system] = v.to_dict() | {"id": samples[v.id]["id"]}
    summary = result.summary() | {"model": judge.model, "url": judge.url, "items": len(items)}
    for name, s in summary["systems"].items():
        per_system[name]["judge_mean_score"] = s["mean_score"]
        per_system[name]["judge_malformed"] = s["malformed"]
    return summary


def _gate(report: StageReport, per_system: dict[str, dict[str, Any]], judge: dict[str, Any], cfg: RunConfig,
          notes: list[str]) -> None:
    ft = per_system["finetuned"]
    gates, ev = cfg.gates, cfg.evaluate
    gate = Gate("E", STAGE, cfg)
    kinds = ", ".join(f"{k} {n}" for k, n in ft["degenerate_by_kind"].items())
    gate.at_most("gates.max_degenerate_rate", ft["degenerate_rate"], "degenerate-output rate of the quantized model",
                 reason=f"the quantized model's degenerate-output rate is {ft['degenerate_rate']:.1%} ({kinds}), above "
                        f"gates.max_degenerate_rate={gates.max_degenerate_rate:.1%}; see samples.jsonl flags")
    gate.at_least("gates.min_rouge_l", ft["rouge_l"], "ROUGE-L of the quantized model on the test split",
                  reason=f"the quantized model's ROUGE-L on the test split is {ft['rouge_l']:.3f}, under "
                         f"gates.min_rouge_l={gates.min_rouge_l:g}")
    metric = ev.gate_metric
    for baseline in ev.must_beat:
        if baseline not in per_system:
            gate.fixed(f"the {baseline} baseline was run", 0, ">=", 1,
                       reason=f"evaluate.must_beat lists '{baseline}' but that baseline was not run")
            continue
        gain = ft[metric] - per_system[baseline][metric]
        gate.at_least("evaluate.min_gain", gain, f"{metric} gain over the {baseline} baseline",
                      reason=f"fine-tuning did not beat the {baseline} baseline: {metric} {ft[metric]:.3f} vs "
                             f"{per_system[baseline][metric]:.3f} (gain {gain:+.3f}, evaluate.min_gain={ev.min_gain:g})")
    gate.apply(report)
    js = ev.judge
    if judge.get("status") == "failed":
        message = f"LLM judge failed: {judge.get('error')}"
        if js.required:
            report.fail(message + " (evaluate.judge.required)")
        else:
            notes.append(message + " (advisory: evaluate.judge.required is false)")
    ft_judge = judge.get("systems", {}).get("finetuned")
    if js.required and ft_judge and ft_judge["malformed_rate"] > js.max_malformed_rate:
        report.fail(f"the LLM judge's replies for the fine-tuned model were unreadable {ft_judge['malformed_rate']:.0%} "
                    f"of the time, above evaluate.judge.max_malformed_rate={js.max_malformed_rate:.0%}")
    if js.min_mean_score is not None and judge.get("status") != "skipped":
        mean = ft_judge.get("mean_score") if ft_judge else None
        if mean is None or mean < js.min_mean_score:
            shown = "no score" if mean is None else f"{mean:.2f}"
            report.fail(f"the LLM judge's mean score for the fine-tuned model is {shown}, under "
                        f"evaluate.judge.min_mean_score={js.min_mean_score:g}")


def run_evaluate(gguf_path: str | Path, data_dir: str | Path, output_dir: str | Path, cfg: RunConfig,
                 base_model: str | Path | None = None, train_dir: str | Path | None = None,
                 reports: str | Path | Sequence[str | Path] | None = None) -> StageReport:
    """gguf_path: the gguf stage's output (or its shipped file); data_dir: the split stage's output; base_model:
    the base model's folder or a .gguf of it (default: train.base_model); train_dir: the train stage's output
    (for its loss curve); reports: the run dir holding the other stages' <stage>/report.json, or a list of
    report files."""
    with StageOutput(output_dir, STAGE, inputs=[gguf_path, data_dir, train_dir]) as output:
        report = _evaluate(gguf_path, data_dir, output.path, cfg, base_model, train_dir, reports)
        output.finish(report)
    return report


def _evaluate(gguf_path, data_dir, out: Path, cfg: RunConfig, base_model, train_dir, reports) -> StageReport:
    from components.gguf.header import check_header
    from components.gguf.runtime import read_prompt_format

    ev = cfg.evaluate
    notes: list[str] = []
    loss_curve = None
    with tempfile.TemporaryDirectory(prefix="finegate-evaluate-") as cache:
        splits = read_splits(data_dir, Path(cache) / "data")
        test_path = splits.path("test")
        rows = read_test_rows(splits, ev.max_samples)
        heuristic_spec = learn_heuristic(splits.rows("train"), ev, cfg.data.alpaca_join)
        shipped = read_quantized(gguf_path, Path(cache) / "gguf")
        gguf_local = shipped.path
        header = check_header(gguf_local)
        if train_dir is not None:
            curve = read_trained(train_dir, Path(cache) / "train", parts=(LOSS_CURVE,)).loss_curve
            if curve is not None:  # kept beside report.html, which shows it
                loss_curve = Path(shutil.copy2(curve, out / LOSS_CURVE))
        base_ref = str(base_model or cfg.train.base_model)
        base_local = storage.localize(base_ref, Path(cache) / "base", verify=cfg.storage.verify_sha256,
                                      external=cfg.storage.external_raw_inputs) \
            if storage.is_s3(base_ref) or Path(base_ref).exists() else base_ref
        print(f"evaluate: {len(rows)} test rows from {test_path}; model {gguf_path}; base {base_ref}",
              file=sys.stderr, flush=True)

        base_is_gguf = str(base_local).endswith(".gguf")
        # The format travels with the fine-tuned model: both systems are prompted as it was trained. The base
        # weights load after llama.cpp is done with the fine-tuned model, so the two never sit in memory together.
        fmt = read_prompt_format(gguf_local)
        articles, refs = [r["prompt"] for r in rows], [r["reference"] for r in rows]
        titles = training_titles(splits)
        budget = cfg.token_budget_rule(ev.max_new_tokens)
        llama = LlamaRuntime(cfg.gguf, ev.n_ctx)
        finetuned, used_articles = run_gguf("finetuned", gguf_local, articles, refs, llama, budget, fmt, fit=True,
                                            titles=titles)
        if base_is_gguf:
            base, _ = run_gguf("base", base_local, used_articles, refs, llama, budget, fmt, titles=titles)
            base.source = f"llama.cpp on {base_ref} (no adapter)"
        else:
            model, tokenizer = hf_base_tokenizer_and_model(base_local)
            # Batched and cut off as hf_check generates, but always one line: a title never spans two.
            decoding = Decoding(cfg.hf_check.batch_size, stop_at_newline=True,
                                max_output_chars=cfg.hf_check.degenerate.max_output_chars)
            base = run_hf_base(model, tokenizer, used_articles, refs, budget, decoding, fmt,
                               source=f"transformers on {base_ref} (no adapter)", titles=titles)
            del model
    heuristic = heuristic_titles(articles, heuristic_spec)
    systems = {s.name: s for s in (finetuned, base, heuristic)}

    per_system: dict[str, dict[str, Any]] = {}
    # The article without the instruction the prompts open with: what the judge and human raters read.
    samples = [{"id": r["id"], "source_line": r["source_line"], "prompt": r["prompt"], "reference": r["reference"],
                "article": heuristic_spec.article(r["prompt"]), "outputs": {}, "flags": {}, "rouge_l": {}} for r in rows]
    rules = cfg.output_rules()
    for name, system in systems.items():
        per_system[name], flags = system_metrics(system, rows, rules, fmt.marker_template)
        pair_scores = jp_metrics.rouge_l_per_pair(system.outputs, refs)
        for sample, text, found, score in zip(samples, system.outputs, flags, pair_scores, strict=True):
            sample["outputs"][name] = text
            sample["flags"][name] = list(found)
            if found:
                sample.setdefault("flag_details", {})[name] = found
            sample["rouge_l"][name] = score
        notes.extend(f"{name}: {n}" for n in system.notes)

    judge = _judge(rows, systems, cfg, per_system, samples)
    deltas = {b: deltas_against(per_system["finetuned"], per_system[b]) for b in ("base", "heuristic")}

    report = StageReport(STAGE)
    ft = per_system["finetuned"]
    report.metrics.update({"samples": len(rows), **{m: ft[m] for m in OVERLAP}, "perplexity": ft.get("perplexity"),
                           "mean_nll": ft.get("mean_nll"), "degenerate_rate": ft["degenerate_rate"]})
    if ft.get("judge_mean_score") is not None:
        report.metrics["judge_mean_score"] = ft["judge_mean_score"]
    for b in ("base", "heuristic"):
        for m in (*OVERLAP, "perplexity", "degenerate_rate"):
            if per_system[b].get(m) is not None:
                report.metrics[f"{b}_{m}"] = per_system[b][m]
        for m in OVERLAP:
            report.metrics[f"{m}_gain_vs_{b}"] = deltas[b][m]
    _gate(report, per_system, judge, cfg, notes)

    human = None
    if ev.human_eval_pairs:
        human = write_human_eval(samples, "finetuned", "base", ev.human_eval_pairs, cfg.run.seed, out)
    write_jsonl(out / SAMPLES, samples)
    chart = write_metrics_chart(per_system, out, cfg.gates.min_rouge_l, cfg.gates.max_degenerate_rate)
    report.details.update({
        "run_name": cfg.run.name, "gguf": str(gguf_path), "gguf_sha256": header.sha256,
        "test_file": str(test_path if not storage.is_s3(str(data_dir)) else data_dir),
        "samples": len(rows), "base_model": base_ref, "prompt_format": fmt.to_dict(),
        "heuristic_title_chars": heuristic_spec.title_chars,
        "heuristic_instructions": sorted(heuristic_spec.instructions),
        "systems": per_system, "deltas": deltas, "judge": judge, "human_eval": human, "notes": notes,
        "thresholds": {"max_degenerate_rate": cfg.gates.max_degenerate_rate, "min_rouge_l": cfg.gates.min_rouge_l,
                       "must_beat": list(ev.must_beat), "gate_metric": ev.gate_metric, "min_gain": ev.min_gain},
        "artifacts": {"samples": SAMPLES, "metrics_chart": chart.name, "html": "report.html",
                      **({"human_eval": human["rater_file"], "human_eval_key": human["key_file"]} if human else {})},
    })
    stage_reports = collect_stage_reports(reports, out) + [report.to_dict()]
    loss_curve = loss_curve or find_loss_curve(None, reports)
    write_html_report(report.to_dict(), stage_reports, samples, out, loss_curve, chart, ev.report_samples)
    print(f"evaluate: finetuned rouge_l {ft['rouge_l']:.3f} (base {per_system['base']['rouge_l']:.3f}, heuristic "
          f"{per_system['heuristic']['rouge_l']:.3f}), degenerate {ft['degenerate_rate']:.1%}",
          file=sys.stderr, flush=True)
    return report
