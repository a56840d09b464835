"""Scores come from the outputs: perfect titles score 1, broken ones are flagged, deltas are differences."""

from __future__ import annotations

import pytest

from components.common.config import RunConfig
from components.common.errors import InputError
from components.common.report import write_jsonl
from components.evaluate.baselines import (
    first_sentence,
    heuristic_title,
    heuristic_titles,
    median_title_chars,
)
from components.evaluate.core import deltas_against, system_metrics
from components.evaluate.systems import SystemOutputs

ROWS = [
    {"prompt": "四十歳でピアノを再開した。毎晩十五分だけ鍵盤に触れている。", "reference": "四十歳でピアノを再開して半年"},
    {"prompt": "週末に近所の山を歩くようになった。朝の空気が気持ちいい。", "reference": "週末の山歩きで疲れが抜けた話"},
    {"prompt": "在宅勤務が続き、机と椅子を見直した。腰の痛みが減った。", "reference": "在宅勤務の机を見直したら腰が楽になった"},
]
CFG = RunConfig()


def _system(outputs, finished=None):
    return SystemOutputs(name="x", source="test", outputs=outputs, finished=finished or [True] * len(outputs))


def test_perfect_predictions_score_one_on_every_overlap_metric():
    metrics, flags = system_metrics(_system([r["reference"] for r in ROWS]), ROWS, CFG)
    assert metrics["rouge_l"] == pytest.approx(1.0)
    assert metrics["bleu"] == pytest.approx(1.0)
    assert metrics["chrf"] == pytest.approx(1.0)
    assert metrics["degenerate_rate"] == 0.0 and flags == [{}, {}, {}]


def test_unrelated_titles_score_near_zero():
    metrics, _ = system_metrics(_system(["家計簿アプリで節約", "猫と暮らす毎日", "初めての海外旅行"]), ROWS, CFG)
    assert metrics["rouge_l"] < 0.2 and metrics["bleu"] < 0.05


def test_broken_outputs_are_counted_by_kind():
    outputs = ["」」」」」」」」", "自己紹介｜子育て｜ワーママ｜30代", "在宅勤務の机を見直した"]
    metrics, flags = system_metrics(_system(outputs), ROWS, CFG)
    assert flags[0] and "repetition" in flags[0]
    assert "tag_list" in flags[1]
    assert flags[2] == {}
    assert metrics["degenerate_rate"] == pytest.approx(2 / 3)
    assert metrics["degenerate_by_kind"]["tag_list"] == 1


def test_output_cut_by_the_token_limit_is_over_length():
    metrics, flags = system_metrics(_system([r["reference"] for r in ROWS], finished=[True, False, True]), ROWS, CFG)
    assert list(flags[1]) == ["over_length"] and metrics["unfinished"] == 1


def test_deltas_are_finetuned_minus_baseline_and_skip_missing_values():
    d = deltas_against({"rouge_l": 0.5, "perplexity": 10.0, "degenerate_rate": 0.0},
                       {"rouge_l": 0.3, "degenerate_rate": 0.25})
    assert d["rouge_l"] == pytest.approx(0.2)
    assert d["degenerate_rate"] == pytest.approx(-0.25)
    assert d["perplexity"] is None and d["judge_mean_score"] is None


@pytest.mark.parametrize("article, sentence", [
    ("四十歳でピアノを再開した。毎晩十五分。", "四十歳でピアノを再開した"),
    ("本当に続くの？三日坊主の私が日記を書いた。", "本当に続くの?"),
    ("見出しだけの行\n本文はここから。", "見出しだけの行"),
    ("句点のない一文", "句点のない一文"),
])
def test_first_sentence_ends_at_the_first_sentence_mark(article, sentence):
    assert first_sentence(article) == sentence


def test_heuristic_title_is_cut_to_the_length_and_loses_dangling_punctuation():
    assert heuristic_title("週末に、近所の山を歩くようになった。", 4) == "週末に"
    assert heuristic_titles([r["prompt"] for r in ROWS], 8).outputs == ["四十歳でピアノを", "週末に近所の山を", "在宅勤務が続き"]


def test_title_length_is_the_median_training_title(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"prompt": "p", "completion": "あ" * n} for n in (10, 12, 30)])
    assert median_title_chars(tmp_path / "train.jsonl") == 12
    with pytest.raises(InputError, match="heuristic_title_chars"):
        median_title_chars(tmp_path / "missing.jsonl")
