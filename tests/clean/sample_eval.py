"""Scores the clean stage against the hand-labelled sample (data/sample/*.labels.jsonl).

    python -m tests.clean.sample_eval [data/sample/note_titles.jsonl]

Two views: each detector applied on its own to every output (precision/recall of `tag_list` against
rows labelled tag_list), and the whole stage (which rule rejected each labelled row).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

from components.clean.core import run_clean
from components.common.config import RunConfig
from components.common.detectors import detect_tag_list

# Label kind -> the clean rules that count as catching it.
CAUGHT_BY = {
    "tag_list": {"tag_list"},
    "noise": {"url_or_html", "repetition", "noise"},
    "incomplete": {"incomplete", "bad_input", "length"},
    "exact_duplicate": {"exact_duplicate"},
    "near_duplicate": {"near_duplicate", "exact_duplicate"},
}


def _scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "tp": tp, "fp": fp, "fn": fn}


def evaluate(titles_path: Path, labels_path: Path) -> dict:
    cfg = RunConfig()
    rows = [json.loads(line) for line in titles_path.read_text(encoding="utf-8").splitlines()]
    labels = [json.loads(line) for line in labels_path.read_text(encoding="utf-8").splitlines()]

    tp = fp = fn = 0
    misses, false_alarms = [], []
    for row, label in zip(rows, labels, strict=True):
        output = row.get("output")
        fired = isinstance(output, str) and detect_tag_list(output, cfg.clean.tag_list) is not None
        truth = label["kind"] == "tag_list"
        tp += fired and truth
        fp += fired and not truth
        fn += truth and not fired
        if truth and not fired:
            misses.append(output)
        if fired and not truth:
            false_alarms.append(output)
    scores: dict = {"tag_list": _scores(tp, fp, fn), "tag_list_misses": misses, "tag_list_false_alarms": false_alarms}

    cfg.data.min_samples = 1
    cfg.clean.write_chart = False
    with tempfile.TemporaryDirectory() as out:
        report = run_clean(titles_path, out, cfg)
        rule_of = {}
        for name in ("kept.jsonl", "rejected.jsonl"):
            for line in (Path(out) / name).read_text(encoding="utf-8").splitlines():
                rec = json.loads(line)
                rule_of[rec["source_line"]] = rec.get("rule", "kept")
    stage: dict = {}
    for kind, rules in CAUGHT_BY.items():
        kind_lines = [lab["line"] for lab in labels if lab["kind"] == kind]
        caught = sum(rule_of[line] in rules for line in kind_lines)
        others = {"near_duplicate": {"exact_duplicate"}}.get(kind, set())  # near's rules include exact
        wrongly = sum(1 for lab in labels if lab["kind"] not in {kind, *others} and rule_of[lab["line"]] in rules)
        stage[kind] = {"rows": len(kind_lines), "caught": caught, "recall": round(caught / len(kind_lines), 4)
                       if kind_lines else 1.0, "others_caught_by_these_rules": wrongly}
    clean_lines = [lab["line"] for lab in labels if lab["kind"] == "clean"]
    lost = Counter(rule_of[line] for line in clean_lines if rule_of[line] != "kept")
    stage["clean"] = {"rows": len(clean_lines), "kept": len(clean_lines) - sum(lost.values()), "rejected_by": dict(lost)}
    scores["stage"] = stage
    scores["report_metrics"] = report.metrics
    return scores


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "data/sample/note_titles.jsonl")
    print(json.dumps(evaluate(path, path.with_name(path.stem + ".labels.jsonl")), ensure_ascii=False, indent=1))
