"""`finegate hf-check` (gate B) and `finegate check-outputs` (flag any model's outputs).

    finegate hf-check --model-dir runs/demo/train --data-dir runs/demo/split --output-dir runs/demo/hf_check
    finegate check-outputs --input outputs.jsonl --output flagged.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from components.common.cli import add_config_args, add_folder_arg, config_from_args, finish
from components.common.errors import InputError, row_problem
from components.common.report import iter_jsonl


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("hf-check", help="generate with the merged HF model and apply gate B",
                              description="Greedy generation for the val/test prompts with the merged model; "
                                          "flags degenerate outputs, scores them, gate B. Exit 1 when it fails.")
    add_folder_arg(p, "--model-dir", "the train stage's output (or its merged/ folder), local or s3://", required=True,
                   old=("--model",))
    add_folder_arg(p, "--data-dir", "the split stage's output folder (val.jsonl, test.jsonl)", required=True,
                   old=("--data",))
    p.add_argument("--output-dir", required=True, help="where samples.jsonl and report.json go")
    add_config_args(p)
    p.set_defaults(func=_hf_check)

    c = subparsers.add_parser("check-outputs", help="flag degenerate outputs in a JSONL file",
                              description="Reads rows with 'output' (and optionally 'prompt', 'reference', and "
                                          "'finished': false for a generation cut off by the token limit), "
                                          "writes each row back with 'flags', prints the rate per flag as JSON "
                                          "(and ROUGE-L/chrF/BLEU for rows with a 'reference').")
    c.add_argument("--input", required=True, help="JSONL rows with an 'output' field")
    c.add_argument("--output", required=True, help="JSONL to write the rows to, each with 'flags' added")
    add_config_args(c)
    c.set_defaults(func=_check_outputs)


def _hf_check(args: argparse.Namespace) -> int:
    from components.hf_check.core import run_hf_check

    return finish(run_hf_check(args.model_dir, args.data_dir, args.output_dir, config_from_args(args)))


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    rows = []
    for line_no, row in iter_jsonl(path, "a row with an 'output'"):
        if "output" not in row:
            raise InputError(row_problem(str(path), line_no, "output", "missing: each row needs an 'output'"))
        if not isinstance(row["output"], str | None):
            raise InputError(row_problem(str(path), line_no, "output", f"not text: {row['output']!r}"))
        rows.append(row)
    return rows


def _check_outputs(args: argparse.Namespace) -> int:
    from components.common.degenerate import inspect_generation, inspect_output
    from components.common.report import write_jsonl
    from components.common.stage_output import write_file_output
    from components.hf_check.core import degenerate_rates

    cfg = config_from_args(args)
    rules, template = cfg.output_rules(), cfg.train.prompt_template
    rows = _read_rows(Path(args.input))
    for row in rows:
        prompt = row.get("prompt") if isinstance(row.get("prompt"), str) else None
        if isinstance(row.get("finished"), bool):  # a generation log (samples.jsonl): the token-limit rule applies
            found = inspect_generation(row["output"], row["finished"], prompt, rules, template)
        else:
            found = inspect_output(row["output"], prompt, rules, template)
        row["flags"] = list(found)
        row["flag_details"] = found
    write_file_output(args.output, lambda path: write_jsonl(path, rows), inputs=[args.input])
    rates = degenerate_rates(rows)
    summary = {"rows": len(rows), "flagged": sum(bool(r["flags"]) for r in rows),
               "any_flag_rate": rates.pop("any"), "rate_per_flag": rates, "output": str(args.output)}
    scored = [r for r in rows if isinstance(r.get("reference"), str)]
    if scored:
        from components.common.jp_metrics import corpus_scores

        summary["scores_vs_reference"] = {"rows": len(scored), **corpus_scores(
            [r["output"] or "" for r in scored], [r["reference"] for r in scored])}
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0
