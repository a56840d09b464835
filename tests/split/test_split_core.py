"""The split stage's core: ratios, seeds, stratification, grouping, minimum sizes, nothing removed."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from components.common.config import load_config
from components.common.errors import InputError
from components.split.core import run_split
from tests.split.kept_rows import ids, kept_row, read_split, write_kept

SMALL_MINIMUMS = ["split.min_train=1", "split.min_val=1", "split.min_test=1"]


def cfg(*overrides: str):
    return load_config(None, [*SMALL_MINIMUMS, *overrides])


def split_ids(out) -> dict[str, set[str]]:
    return {name: ids(read_split(out, name)) for name in ("train", "val", "test")}


@pytest.fixture
def kept_200(tmp_path):
    # 200 rows in three unequal categories, 40 of them in 10 groups of 4.
    cats = ["hobby"] * 100 + ["work"] * 70 + ["family"] * 30
    rows = [kept_row(i, cats[i], group=f"g{i // 4}" if i < 40 else None) for i in range(200)]
    return write_kept(tmp_path / "kept.jsonl", rows)


def test_same_seed_gives_identical_files(kept_200, tmp_path):
    run_split(kept_200, tmp_path / "a", cfg("split.seed=7"))
    run_split(kept_200, tmp_path / "b", cfg("split.seed=7"))
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_different_seed_gives_a_different_split(kept_200, tmp_path):
    run_split(kept_200, tmp_path / "a", cfg("split.seed=7"))
    run_split(kept_200, tmp_path / "b", cfg("split.seed=8"))
    a, b = split_ids(tmp_path / "a"), split_ids(tmp_path / "b")
    assert a["val"] != b["val"] and a["test"] != b["test"]
    assert len(a["val"]) == len(b["val"])


def test_sizes_match_ratios_within_one_row(kept_200, tmp_path):
    report = run_split(kept_200, tmp_path / "out", cfg())
    got = {name: len(rows) for name, rows in split_ids(tmp_path / "out").items()}
    assert abs(got["train"] - 160) <= 1 and abs(got["val"] - 20) <= 1 and abs(got["test"] - 20) <= 1
    assert report.passed
    assert report.metrics["max_ratio_deviation"] <= 1 / 200
    chart = tmp_path / "out" / report.details["chart"]
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_every_row_lands_in_exactly_one_split_with_id_and_source_line(kept_200, tmp_path):
    run_split(kept_200, tmp_path / "out", cfg())
    original = {json.loads(line)["id"]: json.loads(line) for line in kept_200.read_text(encoding="utf-8").splitlines()}
    seen = []
    for name in ("train", "val", "test"):
        seen += read_split(tmp_path / "out", name)
    assert sorted(r["id"] for r in seen) == sorted(original)
    assert all(r == original[r["id"]] for r in seen)


def test_each_category_share_per_split_is_close_to_target(tmp_path):
    cats = ["hobby"] * 150 + ["work"] * 60 + ["family"] * 20 + ["money"] * 10
    kept = write_kept(tmp_path / "kept.jsonl", [kept_row(i, cats[i]) for i in range(len(cats))])
    report = run_split(kept, tmp_path / "out", cfg("split.ratios=70/15/15"))
    totals = Counter(cats)
    for name, ratio in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        counts = Counter(r["category"] for r in read_split(tmp_path / "out", name))
        for cat, total in totals.items():
            assert abs(counts[cat] - ratio * total) <= 1, (name, cat, counts[cat], ratio * total)
    assert report.details["splits"]["val"]["categories"] == dict(sorted(
        Counter(r["category"] for r in read_split(tmp_path / "out", "val")).items()))
    assert report.details["stratification"]["applied"] is True
    assert report.metrics["max_category_deviation"] <= 1 / 10


def test_rows_sharing_a_group_never_straddle_splits(kept_200, tmp_path):
    report = run_split(kept_200, tmp_path / "out", cfg())
    group_splits: dict[str, set[str]] = {}
    for name in ("train", "val", "test"):
        for row in read_split(tmp_path / "out", name):
            if row.get("group"):
                group_splits.setdefault(row["group"], set()).add(name)
    assert group_splits and all(len(s) == 1 for s in group_splits.values())
    assert report.metrics["straddling_groups"] == 0
    assert sum(report.details["splits"][s]["groups"] for s in ("train", "val", "test")) == len(group_splits)


def test_groups_are_dealt_to_val_and_test_too_not_only_to_train(tmp_path):
    # 30 groups of 4 and 80 single rows: were big units placed against the final targets, train
    # (largest deficit) would swallow every group and val/test would see no grouped rows.
    rows = [kept_row(i, group=f"g{i // 4}" if i < 120 else None) for i in range(200)]
    report = run_split(write_kept(tmp_path / "kept.jsonl", rows), tmp_path / "out", cfg())
    assert report.details["splits"]["val"]["groups"] >= 1
    assert report.details["splits"]["test"]["groups"] >= 1


def test_stratified_and_grouped_together_keep_proportions_close(tmp_path):
    # Groups hold 3 rows of one category each; categories are unequal.
    cats = [["hobby", "hobby", "work", "family"][g % 4] for g in range(60) for _ in range(3)]
    rows = [kept_row(i, cat, group=f"g{i // 3}") for i, cat in enumerate(cats)]
    rows += [kept_row(180 + i, ["hobby", "work"][i % 2]) for i in range(60)]
    report = run_split(write_kept(tmp_path / "kept.jsonl", rows), tmp_path / "out", cfg())
    by_split = {n: read_split(tmp_path / "out", n) for n in ("train", "val", "test")}
    totals = Counter(r["category"] for r in rows)
    for name, ratio in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        counts = Counter(r["category"] for r in by_split[name])
        for cat, total in totals.items():
            assert abs(counts[cat] / total - ratio) <= 0.05, (name, cat, counts[cat], total)
    groups = Counter()
    for members in by_split.values():
        groups.update({r["group"] for r in members if r.get("group")})
    assert all(k == 1 for k in groups.values())
    # 60 groups dealt in proportion: about 6 each to val and test, not all to train
    assert 4 <= report.details["splits"]["val"]["groups"] <= 8
    assert 4 <= report.details["splits"]["test"]["groups"] <= 8
    worst = report.details["stratification"]["max_deviation"]
    assert worst["split"] in ("train", "val", "test") and abs(worst["value"]) == report.metrics["max_category_deviation"]


def test_rows_without_category_or_group_still_get_split(tmp_path):
    kept = write_kept(tmp_path / "kept.jsonl", [kept_row(i) for i in range(50)])
    report = run_split(kept, tmp_path / "out", cfg())
    sizes = {name: len(rows) for name, rows in split_ids(tmp_path / "out").items()}
    assert sizes == {"train": 40, "val": 5, "test": 5}
    assert report.details["stratification"]["applied"] is False
    assert report.details["grouping"]["rows_with_group"] == 0


def test_70_15_15_gives_those_shares(kept_200, tmp_path):
    report = run_split(kept_200, tmp_path / "out", cfg("split.ratios=[0.7, 0.15, 0.15]"))
    assert report.metrics["train_rows"] in (139, 140, 141)
    assert report.metrics["val_rows"] in (29, 30, 31) and report.metrics["test_rows"] in (29, 30, 31)
    assert report.details["ratios"]["target"] == {"train": 0.7, "val": 0.15, "test": 0.15}


def test_80_20_means_train_and_val_with_an_empty_test_file(kept_200, tmp_path):
    # min_test would fail any split with a test set of 0 rows; it does not apply when test's ratio is 0.
    report = run_split(kept_200, tmp_path / "out", load_config(None, ["split.ratios=80/20", "split.min_test=50"]))
    assert report.passed
    assert report.metrics["train_rows"] == 160 and report.metrics["val_rows"] == 40
    assert (tmp_path / "out" / "test.jsonl").read_text() == ""
    assert report.details["ratios"]["target"]["test"] == 0
    assert report.details["test_split"].startswith("disabled")
    assert "test" not in report.details["stratification"]["deviation"]


def test_too_small_split_is_an_error_saying_how_many_rows_and_what_to_change(tmp_path):
    kept = write_kept(tmp_path / "kept.jsonl", [kept_row(i) for i in range(60)])
    with pytest.raises(InputError) as err:
        run_split(kept, tmp_path / "out", load_config(None, ["split.min_train=10", "split.min_val=20"]))
    message = str(err.value)
    assert "val would get 6 rows" in message and "60 kept rows" in message
    assert "split.min_val=20" in message and "lower split.min_val" in message and "split.ratios (now 0.8/0.1/0.1)" in message
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["passed"] is False and report["reasons"] == [message]


def test_split_emptied_by_one_big_group_is_an_error_naming_the_units(tmp_path):
    # 20 rows of which 19 share one group: 80/10/10 plans 2 rows each for val and test, but the
    # single row left over can go to only one of them.
    rows = [kept_row(i, group="same-article" if i < 19 else None) for i in range(20)]
    with pytest.raises(InputError, match=r"got 0 rows .* 2 units .* the largest holding 19 rows"):
        run_split(write_kept(tmp_path / "kept.jsonl", rows), tmp_path / "out", cfg())


def test_bad_rows_are_reported_with_file_line_and_field(tmp_path):
    rows = [kept_row(i) for i in range(5)]
    del rows[3]["source_line"]
    kept = write_kept(tmp_path / "kept.jsonl", rows)
    with pytest.raises(InputError, match=r"kept.jsonl:4: field 'source_line': missing"):
        run_split(kept, tmp_path / "out", cfg())
    rows = [kept_row(i) for i in range(5)]
    rows[4]["id"] = rows[1]["id"]
    with pytest.raises(InputError, match=r"kept.jsonl:5: field 'id': duplicate id 'r0001' \(first on line 2\)"):
        run_split(write_kept(tmp_path / "kept.jsonl", rows), tmp_path / "out", cfg())
