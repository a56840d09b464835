"""run_clean end to end on small files: rules, their order, deduplication, the report and gate 0."""

from __future__ import annotations

import json

import pytest

from components.clean.core import _gate, _recheck_kept, run_clean
from components.clean.parallel import Workers
from components.clean.prepare import RowPreparer
from components.common.config import RunConfig
from tests.clean.rows import INSTRUCTION, alpaca, body, by_line, read_out, title, write_jsonl


@pytest.fixture
def cfg() -> RunConfig:
    cfg = RunConfig()
    cfg.data.min_samples = 1
    return cfg


def clean(tmp_path, rows, cfg, name="in.jsonl"):
    src = write_jsonl(tmp_path / name, rows)
    report = run_clean(src, tmp_path / "out", cfg)
    kept, rejected, written = read_out(tmp_path / "out")
    assert written == report.to_dict()
    return kept, rejected, written


def test_each_rule_rejects_its_row_and_counts_it(tmp_path, cfg):
    rows = [
        alpaca(0),
        alpaca(1, "自己紹介｜子育て｜ワーママ｜30代"),
        alpaca(2, "https://note.com/abc"),
        alpaca(3, "「」」」」」」」"),
        alpaca(4, "タイトル未定"),
        alpaca(5, "転職して半年で気づいた、年収よりも大事だったことと、これからの働き方について家族と話し合った週末の記録とその後の変化、そして次の一歩について"),
        alpaca(0),
        "",
        "{broken",
    ]
    kept, rejected, report = clean(tmp_path, rows, cfg)
    rule_of = {line: r["rule"] for line, r in by_line(kept, rejected).items()}
    assert rule_of == {1: "kept", 2: "tag_list", 3: "url_or_html", 4: "repetition", 5: "incomplete", 6: "length",
                       7: "exact_duplicate", 8: "empty_line", 9: "bad_input"}
    assert report["rules"] == {"empty_line": 1, "bad_input": 1, "url_or_html": 1, "tag_list": 1, "repetition": 1,
                               "incomplete": 1, "noise": 0, "length": 1, "exact_duplicate": 1, "near_duplicate": 0}
    assert report["metrics"]["rows_in"] == 9 and report["metrics"]["kept"] == 1 and report["metrics"]["rejected"] == 8


def test_kept_rows_are_unified_and_normalized(tmp_path, cfg):
    row = alpaca(0, "ＡＩと働く　３年目の本音", category="career", group="series-1", id="a-1")
    row["input"] = "  " + body(0) + "\r\n\r\n\r\n続き。ｶﾀｶﾅ\u200b  "
    kept, _, _ = clean(tmp_path, [row], cfg)
    assert kept == [{"id": "a-1", "source_line": 1,
                     "prompt": INSTRUCTION + "\n\n" + body(0) + "\n\n続き。カタカナ",
                     "completion": "AIと働く 3年目の本音", "category": "career", "group": "series-1"}]


def test_truncated_prompts_are_judged_whole_and_deduplicated_as_cut(tmp_path, cfg):
    cfg.clean.truncate_prompt_chars = 40
    cfg.clean.max_prompt_chars = 200
    same_opening = alpaca(0)
    same_opening["input"] = body(0)[:20] + "ここから先は別の記事です。" + body(1)
    too_long = alpaca(2)
    too_long["input"] = body(2, length=300)
    kept, rejected, report = clean(tmp_path, [alpaca(0), same_opening, too_long, alpaca(3)], cfg)
    assert [len(r["prompt"]) for r in kept] == [40, 40]
    assert kept[0]["prompt"] == (INSTRUCTION + "\n\n" + body(0))[:40]
    # the length rule read the whole prompt; deduplication compared the cut ones
    assert {r["source_line"]: r["rule"] for r in rejected} == {2: "exact_duplicate", 3: "length"}
    assert report["metrics"]["prompts_truncated"] == 2


def test_rows_without_an_id_get_one_from_their_line(tmp_path, cfg):
    kept, _, _ = clean(tmp_path, ["", alpaca(0), alpaca(1)], cfg)
    assert [(r["id"], r["source_line"]) for r in kept] == [("row-2", 2), ("row-3", 3)]


def test_rejected_rows_keep_the_raw_row_and_a_reason(tmp_path, cfg):
    row = alpaca(1, "#副業 #在宅ワーク", category="money")
    _, rejected, _ = clean(tmp_path, [row], cfg)
    assert rejected == [{"source_line": 1, "rule": "tag_list", "reason": "tag_list: completion: 2 hashtags", "raw": row}]


def test_clean_row_survives_its_contaminated_twin(tmp_path, cfg):
    # The tag-list row comes first; quality rules run before deduplication, so the clean one is kept.
    rows = [alpaca(7, "自己紹介｜子育て｜ワーママ｜30代"), alpaca(7)]
    kept, rejected, _ = clean(tmp_path, rows, cfg)
    assert [r["source_line"] for r in kept] == [2] and kept[0]["completion"] == title(7)
    assert rejected[0]["rule"] == "tag_list"


def test_exact_duplicates_after_normalization_form_one_cluster(tmp_path, cfg):
    twin = alpaca(3)
    twin["input"] = body(3).replace("記事3", "記事３") + "  "  # full-width digit, trailing space
    kept, rejected, report = clean(tmp_path, [alpaca(3), alpaca(4), twin, alpaca(3)], cfg)
    assert [r["source_line"] for r in kept] == [1, 2]
    assert {r["source_line"]: r["rule"] for r in rejected} == {3: "exact_duplicate", 4: "exact_duplicate"}
    assert "line 1 (id row-1)" in rejected[0]["reason"]
    assert report["duplicates"]["clusters"] == [{
        "survivor": {"id": "row-1", "source_line": 1},
        "dropped": [{"id": "row-3", "source_line": 3, "kind": "exact", "similarity": 1.0},
                    {"id": "row-4", "source_line": 4, "kind": "exact", "similarity": 1.0}]}]


def test_near_duplicate_is_dropped_with_its_similarity(tmp_path, cfg):
    edited = alpaca(5)
    edited["input"] = body(5).replace("。", "！", 1) + "最後まで読んでくださりありがとう。"
    kept, rejected, report = clean(tmp_path, [alpaca(5), alpaca(6), edited], cfg)
    assert [r["source_line"] for r in kept] == [1, 2]
    assert rejected[0]["rule"] == "near_duplicate" and "line 1" in rejected[0]["reason"]
    (cluster,) = report["duplicates"]["clusters"]
    assert cluster["survivor"]["source_line"] == 1 and cluster["dropped"][0]["kind"] == "near"
    assert cluster["dropped"][0]["similarity"] >= cfg.clean.near_duplicates.threshold


def test_near_duplicate_threshold_is_configurable(tmp_path, cfg):
    edited = alpaca(5)
    edited["input"] = body(5) + "最後まで読んでくださりありがとう。"
    cfg.clean.near_duplicates.threshold = 0.99
    kept, _, _ = clean(tmp_path, [alpaca(5), edited], cfg)
    assert len(kept) == 2


@pytest.mark.parametrize("row,detail", [
    (alpaca(1, None), None),
    ({"instruction": INSTRUCTION, "input": body(1), "output": None}, "output: null"),
    ({"instruction": INSTRUCTION, "input": None, "output": title(1)}, "input: null"),
    ({"instruction": INSTRUCTION, "input": "   ", "output": title(1)}, "input: blank"),
    ({"instruction": INSTRUCTION, "input": body(1), "output": "  \u3000 "}, "completion: empty"),
])
def test_null_or_blank_fields_are_incomplete(tmp_path, cfg, row, detail):
    kept, rejected, _ = clean(tmp_path, [row], cfg)
    if detail is None:
        assert len(kept) == 1
    else:
        assert rejected[0]["rule"] == "incomplete" and rejected[0]["reason"] == f"incomplete: {detail}"


def test_instruction_only_alpaca_rows_pass_when_input_is_optional(tmp_path, cfg):
    cfg.data.alpaca_input_required = False
    row = {"instruction": "次の文章にタイトルを付けて: " + body(2), "output": title(2)}
    kept, _, _ = clean(tmp_path, [row], cfg)
    assert kept[0]["prompt"] == row["instruction"]


def test_length_bounds_come_from_the_config(tmp_path, cfg):
    cfg.clean.max_completion_chars = 8
    _, rejected, _ = clean(tmp_path, [alpaca(1)], cfg)
    assert rejected[0]["reason"] == "length: completion: 12 characters > clean.max_completion_chars=8"


def test_repeated_id_is_rejected_with_the_first_line(tmp_path, cfg):
    _, rejected, _ = clean(tmp_path, [alpaca(1, id="x"), alpaca(2, id="x")], cfg)
    assert rejected[0]["rule"] == "bad_input"
    assert rejected[0]["reason"].endswith("in.jsonl:2: field 'id': id 'x' already used on line 1")


def test_control_characters_are_stripped_when_configured(tmp_path, cfg):
    cfg.clean.control_chars = "strip"
    kept, _, _ = clean(tmp_path, [alpaca(1, "ベル\u0007を鳴らした日のこと")], cfg)
    assert kept[0]["completion"] == "ベルを鳴らした日のこと"


def test_report_shows_contamination_before_and_after(tmp_path, cfg):
    rows = [alpaca(i) for i in range(6)] + [alpaca(10, "節約, 家計簿, 貯金"), alpaca(11, "https://x.jp")]
    _, _, report = clean(tmp_path, rows, cfg)
    assert report["metrics"]["contamination_rate_before"] == 0.25
    assert report["metrics"]["contamination_rate_after"] == 0.0
    assert report["contamination"]["before"]["by_rule"] == {"url_or_html": 1, "tag_list": 1, "repetition": 0,
                                                            "incomplete": 0, "noise": 0}
    assert report["passed"] is True and report["reasons"] == []
    assert (tmp_path / "out" / "clean_rules.png").stat().st_size > 0


def test_gate_fails_when_too_few_rows_survive(tmp_path, cfg):
    cfg.data.min_samples = 3
    _, _, report = clean(tmp_path, [alpaca(1), alpaca(2, "#副業 #在宅"), alpaca(1)], cfg)
    assert report["passed"] is False
    assert report["reasons"][0].startswith("only 1 rows survived cleaning, fewer than data.min_samples=3")


def test_gate_measures_contamination_in_the_kept_file(tmp_path, cfg):
    # The gate re-reads kept.jsonl; a file that still holds a tag list (e.g. edited after cleaning) fails it.
    kept = tmp_path / "kept.jsonl"
    write_jsonl(kept, [{"id": "a", "source_line": 1, "prompt": body(1), "completion": title(1)},
                       {"id": "b", "source_line": 2, "prompt": body(2), "completion": "旅行/京都/一人旅"}])
    after = _recheck_kept(kept, Workers(RowPreparer(None, cfg, str(kept)), 1))
    assert (after.rows, after.contaminated, dict(after.by_rule)) == (2, 1, {"tag_list": 1})
    from components.clean.core import Tally
    from components.common.report import StageReport

    report = StageReport("clean", metrics={"accounting_ok": True})
    _gate(report, Tally(rows_in=2, kept=2), after, cfg)
    assert report.passed is False
    assert report.reasons[0].startswith("contamination in kept.jsonl 50.00% > gates.max_contamination_rate 0.00%")


def test_report_lists_at_most_the_configured_clusters(tmp_path, cfg):
    cfg.clean.report_max_clusters = 1
    rows = [alpaca(1), alpaca(2), alpaca(1), alpaca(2), alpaca(2)]
    _, _, report = clean(tmp_path, rows, cfg)
    dup = report["duplicates"]
    assert (dup["clusters_total"], dup["clusters_listed"]) == (2, 1)
    assert dup["clusters"][0]["survivor"]["source_line"] == 2  # the largest cluster first


def test_report_names_input_and_output_digests(tmp_path, cfg):
    _, _, report = clean(tmp_path, [alpaca(1)], cfg)
    from components.common.storage import sha256_file

    assert report["input"]["sha256"] == sha256_file(tmp_path / "in.jsonl")
    assert report["input"]["format"] == "jsonl" and report["input"]["schema"] == "alpaca"
    assert report["outputs"]["kept.jsonl"] == sha256_file(tmp_path / "out" / "kept.jsonl")
    checks = json.loads((tmp_path / "out" / "report.json").read_text())["gate_checks"]
    assert {(c["setting"], c["threshold"]) for c in checks if c["setting"]} == {
        ("gates.max_contamination_rate", 0.0), ("data.min_samples", 1)}


def test_worker_processes_give_the_same_files_as_one_process(tmp_path, cfg):
    rows = []
    for i in range(6000):
        rows.append(alpaca(i % 5000, "#副業 #在宅" if i % 97 == 0 else None))
    # Rejected rows come back from the workers as parsed, invalid bytes included.
    src = write_jsonl(tmp_path / "in.jsonl", rows + ["", "{broken", b'{"instruction": "x", "input": "\xff", "output": "t"}'])
    outputs = {}
    for count in (0, 2):
        cfg.clean.workers = count
        cfg.clean.write_chart = False
        report = run_clean(src, tmp_path / f"out{count}", cfg)
        outputs[count] = [(tmp_path / f"out{count}" / name).read_bytes() for name in ("kept.jsonl", "rejected.jsonl")]
        assert report.metrics["rows_in"] == 6003 and report.metrics["accounting_ok"]
        assert report.metrics["worker_processes"] == count
    assert outputs[0] == outputs[2]
    # Bodies 0-999 appear twice (one clean copy each); of 1000-4999, the multiples of 97 are only tag lists.
    assert report.metrics["kept"] == 5000 - len(range(1067, 5000, 97))


def test_small_inputs_stay_in_one_process_whatever_the_workers_setting(tmp_path, cfg):
    cfg.clean.workers = 3
    kept, _, report = clean(tmp_path, [alpaca(i) for i in range(50)], cfg)
    assert len(kept) == 50 and report["metrics"]["worker_processes"] == 0
