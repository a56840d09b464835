"""The split stage: kept.jsonl -> train.jsonl, val.jsonl, test.jsonl and a report with a leak check.

    run_split("runs/demo/clean/kept.jsonl", "runs/demo/split", cfg)

- ratios from `split.ratios` (80/10/10 by default; any non-negative train/val/test shares summing to 1
  are accepted, train and val > 0; "80/20" means train/val and no test: test.jsonl is written empty);
- deterministic for `split.seed`;
- stratified by `split.stratify_by` (category) when rows carry it;
- grouped by `split.group_by`: rows sharing a value never straddle two splits; with
  `split.cluster_near_duplicates` exact and near duplicates (prompt or completion) are grouped too;
- nothing is removed: every kept row lands in exactly one split, with its `id` and `source_line`;
- the leak check (exact + near duplicates across splits) fails the gate with the pairs as reasons;
- a split smaller than `split.min_<name>` is an error that says how many rows there were and what to change.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from components.clean.outputs import read_kept
from components.common import storage
from components.common.config import RunConfig
from components.common.errors import InputError
from components.common.gates import Gate
from components.common.report import StageReport, write_jsonl
from components.common.stage_output import StageOutput
from components.split.assign import assign_units
from components.split.chart import write_category_chart
from components.split.leaks import describe, find_leaks
from components.split.outputs import SPLITS, STAGE
from components.split.units import build_units

NO_STRATUM = "(none)"
# Reasons list this many leak pairs one by one; report.json's leak_check.pairs holds all of them.
_LEAKS_IN_REASONS = 20


def _strata(rows: list[dict[str, Any]], field: str | None) -> tuple[list[str], bool]:
    if not field or not any(r.get(field) not in (None, "") for r in rows):
        return ["(all)"] * len(rows), False
    return [NO_STRATUM if r.get(field) in (None, "") else str(r.get(field)) for r in rows], True


def _too_small(name: str, got: int, n_rows: int, n_units: int, largest_unit: int, cfg: RunConfig,
               planned: bool) -> str:
    ratio = cfg.split.ratios[SPLITS.index(name)]
    minimum = getattr(cfg.split, f"min_{name}")
    ratios = "/".join(f"{r:g}" for r in cfg.split.ratios)
    msg = f"{name} {'would get' if planned else 'got'} {got} rows ({ratio:.0%} of {n_rows} kept rows), fewer than split.min_{name}={minimum}"
    if planned:
        fixes = ["add data", f"lower split.min_{name}", f"give {name} a larger share of split.ratios (now {ratios})"]
    else:
        msg += (f"; the rows form {n_units} units that cannot be cut (shared split.group_by values"
                f"{' and duplicate clusters' if cfg.split.cluster_near_duplicates else ''}), the largest holding"
                f" {largest_unit} rows")
        fixes = ["add rows outside the big units", "group by a finer field (split.group_by)",
                 f"give {name} a larger share of split.ratios (now {ratios})"]
        if minimum > 1:
            fixes.insert(1, f"lower split.min_{name}")
    return f"{msg}. Fix: {'; or '.join(fixes)}"


def run_split(input_path: str | Path, output_dir: str | Path, cfg: RunConfig) -> StageReport:
    with StageOutput(output_dir, STAGE, inputs=[input_path]) as output, \
            tempfile.TemporaryDirectory(prefix="finegate-split-") as cache:
        _, rows = read_kept(input_path, cache)
        report = _split(rows, input_path, output, cfg)
    return report


def _split(rows: list[dict[str, Any]], input_path, output: StageOutput, cfg: RunConfig) -> StageReport:
    out = output.path
    report = StageReport(STAGE)
    n = len(rows)
    ratios = cfg.split.ratios
    rule = cfg.split_near_duplicates()
    active = [name for name, r in zip(SPLITS, ratios, strict=True) if r > 0]
    print(f"split: {n} rows from {input_path}, ratios {'/'.join(f'{r:g}' for r in ratios)}", file=sys.stderr)

    for name in active:
        planned = round(ratios[SPLITS.index(name)] * n)
        if planned < getattr(cfg.split, f"min_{name}"):
            raise _error(report, output, _too_small(name, planned, n, n, 1, cfg, planned=True))

    strata, stratified = _strata(rows, cfg.split.stratify_by)
    units = build_units(rows, cfg.split.group_by, cfg.split.cluster_near_duplicates, rule)
    where_unit = assign_units(units.members, strata, ratios, cfg.split.seed)
    owner = units.unit_of_rows(n)
    split_of_row = [SPLITS[where_unit[owner[i]]] for i in range(n)]
    by_split = {name: [row for row, s in zip(rows, split_of_row, strict=True) if s == name] for name in SPLITS}
    largest_unit = max(len(m) for m in units.members)

    for name in active:
        if len(by_split[name]) < getattr(cfg.split, f"min_{name}"):
            raise _error(report, output, _too_small(name, len(by_split[name]), n, len(units.members),
                                                  largest_unit, cfg, planned=False))

    digests = {}
    for name in SPLITS:
        write_jsonl(out / f"{name}.jsonl", by_split[name])
        digests[f"{name}.jsonl"] = storage.sha256_file(out / f"{name}.jsonl")
    print("split: " + ", ".join(f"{s} {len(by_split[s])}" for s in SPLITS) + "; checking for leaks", file=sys.stderr)

    leaks = find_leaks({name: by_split[name] for name in active}, rule)
    straddling = _straddling_groups(by_split, cfg.split.group_by)
    _fill_report(report, rows, by_split, strata, stratified, units, straddling, leaks, rule, cfg)
    report.details["outputs"] = digests
    report.details["chart"] = write_category_chart(report.details, out).name
    for leak in leaks[:_LEAKS_IN_REASONS]:
        report.fail("leak: " + describe(leak))
    if len(leaks) > _LEAKS_IN_REASONS:
        report.fail(f"leak: {len(leaks) - _LEAKS_IN_REASONS} more pairs listed in report.json leak_check.pairs")
    gate = Gate("split", STAGE, cfg)
    gate.fixed("duplicate pairs straddling splits", len(leaks), "<=", 0,
               reason=f"{len(leaks)} duplicate pairs straddle splits (rule: {rule.ngram}-gram Jaccard >= "
                      f"{rule.threshold}); keep split.cluster_near_duplicates on, or remove the pairs in clean")
    gate.fixed("groups straddling splits", len(straddling), "<=", 0,
               reason="; ".join(f"group {group!r} straddles {', '.join(names)}" for group, names in straddling.items()))
    gate.apply(report)
    output.finish(report)
    return report


def _error(report: StageReport, output: StageOutput, message: str) -> InputError:
    """The report records the error too, so a pipeline run shows it beside the other stages' reports."""
    report.fail(message)
    output.finish(report)
    return InputError(message)


def _straddling_groups(by_split: dict[str, list[dict[str, Any]]], group_by: str | None) -> dict[str, list[str]]:
    if not group_by:
        return {}
    seen: dict[str, set[str]] = {}
    for name, rows in by_split.items():
        for row in rows:
            value = row.get(group_by)
            if value not in (None, ""):
                seen.setdefault(json.dumps(value, ensure_ascii=False, sort_keys=True), set()).add(name)
    return {g: sorted(names, key=SPLITS.index) for g, names in seen.items() if len(names) > 1}


def _fill_report(report: StageReport, rows, by_split, strata, stratified, units, straddling, leaks, rule,
                 cfg: RunConfig) -> None:
    n = len(rows)
    ratios = dict(zip(SPLITS, cfg.split.ratios, strict=True))
    totals = Counter(strata)
    stratum_of = {id(r): s for r, s in zip(rows, strata, strict=True)}
    group_by = cfg.split.group_by

    splits: dict[str, Any] = {}
    deviations: dict[str, dict[str, float]] = {}
    worst = {"value": 0.0, "split": None, "category": None}
    for name in SPLITS:
        members = by_split[name]
        counts = Counter(stratum_of[id(r)] for r in members)
        groups = {json.dumps(r.get(group_by), ensure_ascii=False) for r in members
                  if group_by and r.get(group_by) not in (None, "")}
        splits[name] = {"rows": len(members), "target_ratio": ratios[name], "ratio": round(len(members) / n, 4),
                        "categories": dict(sorted(counts.items())), "groups": len(groups)}
        if ratios[name] == 0:
            continue
        deviations[name] = {}
        for stratum, total in sorted(totals.items()):
            dev = counts[stratum] / total - ratios[name]
            deviations[name][stratum] = round(dev, 4)
            if abs(dev) > abs(worst["value"]):
                worst = {"value": round(dev, 4), "split": name, "category": stratum}

    ratio_dev = max(abs(len(by_split[s]) / n - ratios[s]) for s in SPLITS)
    report.metrics.update({
        "rows": n,
        **{f"{s}_rows": len(by_split[s]) for s in SPLITS},
        **{f"{s}_ratio": splits[s]["ratio"] for s in SPLITS},
        "max_ratio_deviation": round(ratio_dev, 4),
        "max_category_deviation": round(abs(worst["value"]), 4),
        "units": len(units.members),
        "leak_pairs": len(leaks),
        "straddling_groups": len(straddling),
    })
    sizes = sorted((len(m) for m in units.members), reverse=True)
    report.details.update({
        "ratios": {"target": ratios, "actual": {s: splits[s]["ratio"] for s in SPLITS}},
        "test_split": "enabled" if ratios["test"] > 0 else "disabled (ratio 0): test.jsonl is empty; evaluate on val",
        "splits": splits,
        "stratification": {
            "field": cfg.split.stratify_by, "applied": stratified,
            "categories": dict(sorted(totals.items())),
            # share of each category's rows that went to each split, minus the split's target ratio
            "deviation": deviations,
            "max_deviation": worst,
        },
        "grouping": {
            "field": group_by,
            "rows_with_group": sum(1 for r in rows if group_by and r.get(group_by) not in (None, "")),
            "groups": sum(splits[s]["groups"] for s in SPLITS),
            "cluster_near_duplicates": cfg.split.cluster_near_duplicates,
            "units": len(units.members), "largest_unit": sizes[0], "units_with_several_rows": sum(1 for k in sizes if k > 1),
            "links": units.links,
            "straddling": straddling,
        },
        "leak_check": {
            "passed": not leaks, "fields": ["prompt", "completion"], "rule": rule.model_dump(), "pairs": leaks,
        },
        "seed": cfg.split.seed,
    })
