"""The leak check, and the clustering that keeps near duplicates in one split so it has nothing to find."""

from __future__ import annotations

import json

from components.common.config import load_config
from components.common.settings.rules import NearDuplicateRule
from components.split.core import run_split
from components.split.leaks import find_leaks
from tests.split.kept_rows import kept_row, read_split, write_kept

RULE = NearDuplicateRule()
SMALL_MINIMUMS = ["split.min_train=1", "split.min_val=1", "split.min_test=1"]


def near_copy(row: dict, i: int, field: str = "prompt") -> dict:
    """Another row whose `field` differs from `row`'s by one trailing character."""
    copy = kept_row(i)
    copy[field] = row[field] + "！"
    return copy


def test_near_duplicate_prompt_across_train_and_val_is_a_leak_with_ids_and_source_lines():
    a = kept_row(1)
    b = near_copy(a, 2)
    leaks = find_leaks({"train": [kept_row(0), a], "val": [b], "test": [kept_row(3)]}, RULE)
    assert len(leaks) == 1
    leak = leaks[0]
    assert leak["field"] == "prompt" and leak["kind"] == "near" and leak["similarity"] >= RULE.threshold
    assert leak["a"] == {"split": "train", "id": "r0001", "source_line": 2}
    assert leak["b"] == {"split": "val", "id": "r0002", "source_line": 3}


def test_exact_duplicate_completion_across_val_and_test_is_reported_once_as_exact():
    a = kept_row(1)
    b = kept_row(2)
    b["completion"] = "  " + a["completion"].upper() + " "  # same dedup_key
    leaks = find_leaks({"train": [kept_row(0)], "val": [a], "test": [b]}, RULE)
    assert [(x["field"], x["kind"], x["a"]["id"], x["b"]["id"]) for x in leaks] == [("completion", "exact", "r0001", "r0002")]


def test_duplicates_inside_one_split_are_not_leaks():
    a = kept_row(1)
    assert find_leaks({"train": [a, near_copy(a, 2), dict(a, id="x")], "val": [kept_row(3)]}, RULE) == []


def _kept_with_near_duplicate_pairs(tmp_path, pairs: int = 20, singles: int = 60):
    rows = [kept_row(i) for i in range(singles)]
    injected = []
    for k in range(pairs):
        original = kept_row(1000 + k)
        field = "prompt" if k % 2 else "completion"
        rows += [original, near_copy(original, 2000 + k, field)]
        injected.append((original["id"], f"r{2000 + k:04d}"))
    return write_kept(tmp_path / "kept.jsonl", rows), injected


def _split_of(out) -> dict[str, str]:
    return {r["id"]: name for name in ("train", "val", "test") for r in read_split(out, name)}


def test_near_duplicate_pairs_clean_let_through_stay_in_one_split(tmp_path):
    kept, injected = _kept_with_near_duplicate_pairs(tmp_path)
    report = run_split(kept, tmp_path / "out", load_config(None, SMALL_MINIMUMS))
    where = _split_of(tmp_path / "out")
    assert all(where[a] == where[b] for a, b in injected)
    assert report.passed and report.details["leak_check"]["pairs"] == []
    links = report.details["grouping"]["links"]
    assert links["near_prompt"] + links["near_completion"] == len(injected)


def test_leak_fails_the_gate_listing_every_straddling_pair_when_clustering_is_off(tmp_path):
    # 20 pairs placed independently: the chance that none straddles is about 0.66^20.
    kept, injected = _kept_with_near_duplicate_pairs(tmp_path)
    report = run_split(kept, tmp_path / "out", load_config(None, [*SMALL_MINIMUMS, "split.cluster_near_duplicates=false"]))
    where = _split_of(tmp_path / "out")
    straddling = {(a, b) for a, b in injected if where[a] != where[b]}
    assert straddling
    reported = {tuple(sorted((p["a"]["id"], p["b"]["id"]))) for p in report.details["leak_check"]["pairs"]}
    assert reported == {tuple(sorted(pair)) for pair in straddling}
    assert not report.passed and report.metrics["leak_pairs"] == len(straddling)
    a, b = sorted(straddling)[0]
    assert any(f"id {a} (source_line {int(a[1:]) + 1})" in r and b in r for r in report.reasons)
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    assert on_disk["passed"] is False and on_disk["leak_check"]["passed"] is False


def test_a_stricter_split_rule_groups_pairs_that_the_clean_rule_would_let_through(tmp_path):
    # Two titles sharing most 5-grams but below clean's 0.8: a split rule at 0.5 keeps them together.
    original = kept_row(500)
    similar = kept_row(501)
    similar["completion"] = original["completion"][:-3] + "ちがう"
    rows = [kept_row(i) for i in range(40)] + [original, similar]
    kept = write_kept(tmp_path / "kept.jsonl", rows)
    strict = load_config(None, [*SMALL_MINIMUMS, "split.near_duplicates.threshold=0.5"])
    clean_rule = find_leaks({"train": [original], "val": [similar]}, NearDuplicateRule())
    strict_rule = find_leaks({"train": [original], "val": [similar]}, strict.split.near_duplicates)
    assert clean_rule == [] and len(strict_rule) == 1
    report = run_split(kept, tmp_path / "out", strict)
    where = _split_of(tmp_path / "out")
    assert where["r0500"] == where["r0501"] and report.passed
