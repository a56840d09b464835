"""human_eval.csv is blind (no system names, no ids), shuffled, and the same for the same seed."""

from __future__ import annotations

import csv

from components.evaluate.human_eval import KEY_FILE, RATER_FILE, write_human_eval

SAMPLES = [{"id": f"row{i}", "source_line": 10 + i, "prompt": f"記事{i}の本文。", "reference": f"参照{i}",
            "outputs": {"finetuned": f"微調整タイトル{i}", "base": f"ベースタイトル{i}"}} for i in range(20)]


def _read(path):
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def test_rater_file_names_no_system_and_no_sample_id(tmp_path):
    write_human_eval(SAMPLES, "finetuned", "base", 10, seed=1, output_dir=tmp_path)
    text = (tmp_path / RATER_FILE).read_text(encoding="utf-8-sig")
    for leak in ("finetuned", "base", "row1", "source_line"):
        assert leak not in text
    rows = _read(tmp_path / RATER_FILE)
    assert len(rows) == 10
    assert list(rows[0]) == ["pair_id", "article", "title_A", "title_B", "preferred (A/B/tie)", "comment"]
    assert all(r["preferred (A/B/tie)"] == "" for r in rows)


def test_key_file_maps_every_pair_back_to_its_row_and_systems(tmp_path):
    write_human_eval(SAMPLES, "finetuned", "base", 10, seed=1, output_dir=tmp_path)
    rater = {r["pair_id"]: r for r in _read(tmp_path / RATER_FILE)}
    by_id = {s["id"]: s for s in SAMPLES}
    for key in _read(tmp_path / KEY_FILE):
        sample = by_id[key["id"]]
        pair = rater[key["pair_id"]]
        assert int(key["source_line"]) == sample["source_line"]
        assert pair["article"] == sample["prompt"]
        assert pair["title_A"] == sample["outputs"][key["A"]]
        assert pair["title_B"] == sample["outputs"][key["B"]]
        assert {key["A"], key["B"]} == {"finetuned", "base"}


def test_order_and_sides_are_shuffled_but_fixed_by_the_seed(tmp_path):
    first, again, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    summary = write_human_eval(SAMPLES, "finetuned", "base", 20, seed=7, output_dir=first)
    write_human_eval(SAMPLES, "finetuned", "base", 20, seed=7, output_dir=again)
    write_human_eval(SAMPLES, "finetuned", "base", 20, seed=8, output_dir=other)
    assert (first / RATER_FILE).read_bytes() == (again / RATER_FILE).read_bytes()
    assert (first / KEY_FILE).read_bytes() == (again / KEY_FILE).read_bytes()
    assert (first / KEY_FILE).read_bytes() != (other / KEY_FILE).read_bytes()
    keys = _read(first / KEY_FILE)
    assert [k["id"] for k in keys] != [s["id"] for s in SAMPLES]  # not in test-file order
    assert 0 < summary["a_is"]["finetuned"] < 20  # the fine-tuned model is neither always A nor always B


def test_pairs_with_identical_titles_are_left_out(tmp_path):
    samples = [dict(s, outputs=dict(s["outputs"])) for s in SAMPLES[:4]]
    samples[0]["outputs"]["base"] = samples[0]["outputs"]["finetuned"]
    summary = write_human_eval(samples, "finetuned", "base", 50, seed=1, output_dir=tmp_path)
    assert summary["pairs"] == 3 and summary["identical_pairs_left_out"] == 1
    assert "row0" not in {k["id"] for k in _read(tmp_path / KEY_FILE)}
