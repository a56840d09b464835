"""The split of the real sample data (clean, then split, as the pipeline runs them)."""

from __future__ import annotations

import json
from collections import Counter

from components.common.report import read_jsonl, read_report


def test_sample_split_passes_with_every_kept_row_placed_once(sample_splits):
    report = read_report(sample_splits)
    kept = read_jsonl(sample_splits.parent / "clean" / "kept.jsonl")
    placed = [r for name in ("train", "val", "test") for r in read_jsonl(sample_splits / f"{name}.jsonl")]
    assert report["passed"] and report["leak_check"]["pairs"] == []
    assert sorted(r["id"] for r in placed) == sorted(r["id"] for r in kept)
    assert all("source_line" in r for r in placed)


def test_sample_split_keeps_each_category_near_its_target_share(sample_splits):
    report = read_report(sample_splits)
    target = report["ratios"]["target"]
    totals = Counter(r.get("category") for r in read_jsonl(sample_splits.parent / "clean" / "kept.jsonl"))
    for name in ("train", "val", "test"):
        counts = Counter(r.get("category") for r in read_jsonl(sample_splits / f"{name}.jsonl"))
        for cat, total in totals.items():
            # one row of rounding per category, plus whatever whole groups force
            assert abs(counts[cat] - target[name] * total) <= 1 + report["grouping"]["largest_unit"], (name, cat)
    print(json.dumps(report["metrics"], ensure_ascii=False))
