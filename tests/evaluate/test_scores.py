"""Scores come from the outputs: perfect titles score 1, broken ones are flagged, deltas are differences."""

from __future__ import annotations

import pytest

from components.common.config import RunConfig
from components.common.errors import InputError
from components.evaluate.baselines import (
    HeuristicSpec,
    first_sentence,
    heuristic_title,
    heuristic_titles,
    learn_heuristic,
)
from components.evaluate.core import deltas_against, system_metrics
from components.evaluate.settings import EvaluateSection
from components.evaluate.systems import SystemOutputs
from components.split.outputs import SplitRow

ROWS = [
    {"prompt": "四十歳でピアノを再開した。毎晩十五分だけ鍵盤に触れている。", "reference": "四十歳でピアノを再開して半年"},
    {"prompt": "週末に近所の山を歩くようになった。朝の空気が気持ちいい。", "reference": "週末の山歩きで疲れが抜けた話"},
    {"prompt": "在宅勤務が続き、机と椅子を見直した。腰の痛みが減った。", "reference": "在宅勤務の机を見直したら腰が楽になった"},
]
CFG = RunConfig()
RULES = CFG.output_rules()
JOIN = CFG.data.alpaca_join


def _system(outputs, finished=None):
    return SystemOutputs(name="x", source="test", outputs=outputs, finished=finished or [True] * len(outputs))


def test_perfect_predictions_score_one_on_every_overlap_metric():
    metrics, flags = system_metrics(_system([r["reference"] for r in ROWS]), ROWS, RULES)
    assert metrics["rouge_l"] == pytest.approx(1.0)
    assert metrics["bleu"] == pytest.approx(1.0)
    assert metrics["chrf"] == pytest.approx(1.0)
    assert metrics["degenerate_rate"] == 0.0 and flags == [{}, {}, {}]


def test_unrelated_titles_score_near_zero():
    metrics, _ = system_metrics(_system(["家計簿アプリで節約", "猫と暮らす毎日", "初めての海外旅行"]), ROWS, RULES)
    assert metrics["rouge_l"] < 0.2 and metrics["bleu"] < 0.05


def test_broken_outputs_are_counted_by_kind():
    outputs = ["」」」」」」」」", "自己紹介｜子育て｜ワーママ｜30代", "在宅勤務の机を見直した"]
    metrics, flags = system_metrics(_system(outputs), ROWS, RULES)
    assert flags[0] and "repetition" in flags[0]
    assert "tag_list" in flags[1]
    assert flags[2] == {}
    assert metrics["degenerate_rate"] == pytest.approx(2 / 3)
    assert metrics["degenerate_by_kind"]["tag_list"] == 1


def test_output_cut_by_the_token_limit_is_over_length():
    metrics, flags = system_metrics(_system([r["reference"] for r in ROWS], finished=[True, False, True]), ROWS, RULES)
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
    titles = heuristic_titles([r["prompt"] for r in ROWS], HeuristicSpec(title_chars=8)).outputs
    assert titles == ["四十歳でピアノを", "週末に近所の山を", "在宅勤務が続き"]


def _train_rows(pairs) -> list[SplitRow]:
    return [SplitRow(id=f"t{i}", source_line=i + 1, split="train", prompt=p, completion=c)
            for i, (p, c) in enumerate(pairs)]


def test_title_length_is_the_median_training_title(tmp_path):
    rows = _train_rows([("本文。", "あ" * n) for n in (10, 12, 30)])
    assert learn_heuristic(rows, CFG.evaluate, JOIN).title_chars == 12
    with pytest.raises(InputError, match="heuristic_title_chars"):
        learn_heuristic([], CFG.evaluate, JOIN)
    assert learn_heuristic([], EvaluateSection(heuristic_title_chars=5), JOIN).title_chars == 5


def test_instruction_paragraphs_that_open_many_prompts_are_skipped(tmp_path):
    ask = "次の記事本文にふさわしいタイトルを付けてください。"
    rows = [(f"{ask}\n\n記事{i}の本文です。続きがあります。", "十文字のタイトル例") for i in range(3)]
    rows.append(("朝の散歩を始めた。\n\n二段落目。", "散歩で見つけた十文字"))  # an article's own first paragraph, seen once
    spec = learn_heuristic(_train_rows(rows), CFG.evaluate, JOIN)
    assert spec.instructions == {ask}
    assert spec.title(f"{ask}\n\nピアノを再開した。毎晩弾いている。") == "ピアノを再開した"
    assert spec.title("朝の散歩を始めた。\n\n二段落目。") == "朝の散歩を始めた"
    assert spec.title(ask) == ask[:spec.title_chars].rstrip("。")  # a prompt that is nothing but the request


def _gate_reasons(finetuned, judge=None, **evaluate_changes):
    from components.common.report import StageReport
    from components.evaluate.core import _gate

    base = {"rouge_l": 0.30, "bleu": 0.1, "chrf": 0.2, "degenerate_rate": 0.0, "degenerate_by_kind": {}}
    per_system = {"finetuned": {**base, **finetuned}, "base": dict(base), "heuristic": {**base, "rouge_l": 0.25}}
    cfg = CFG.model_copy(deep=True)
    for key, value in evaluate_changes.items():
        target = cfg.evaluate.judge if key.startswith("judge_") else cfg.evaluate
        setattr(target, key.removeprefix("judge_"), value)
    report, notes = StageReport("evaluate"), []
    _gate(report, per_system, judge or {"status": "skipped"}, cfg, notes)
    return report.reasons, notes


def test_gate_fails_a_model_that_does_not_beat_its_base():
    reasons, _ = _gate_reasons({"rouge_l": 0.29})
    assert len(reasons) == 1 and reasons[0].startswith("fine-tuning did not beat the base baseline: rouge_l 0.290")
    assert _gate_reasons({"rouge_l": 0.35})[0] == []
    assert _gate_reasons({"rouge_l": 0.31}, min_gain=0.05)[0][0].startswith("fine-tuning did not beat the base")
    assert _gate_reasons({"rouge_l": 0.29}, must_beat=["heuristic"])[0] == []


def test_gate_fails_degenerate_or_low_scoring_models():
    reasons, _ = _gate_reasons({"rouge_l": 0.35, "degenerate_rate": 0.28, "degenerate_by_kind": {"tag_list": 7}})
    assert reasons == ["the quantized model's degenerate-output rate is 28.0% (tag_list 7), above "
                       "gates.max_degenerate_rate=10.0%; see samples.jsonl flags"]
    reasons, _ = _gate_reasons({"rouge_l": 0.15}, must_beat=[])
    assert reasons == ["the quantized model's ROUGE-L on the test split is 0.150, under gates.min_rouge_l=0.2"]


def test_a_failed_judge_is_a_note_unless_required():
    failed = {"status": "failed", "error": "cannot reach http://x/v1/chat/completions", "systems": {}}
    reasons, notes = _gate_reasons({"rouge_l": 0.35}, failed)
    assert reasons == [] and notes == ["LLM judge failed: cannot reach http://x/v1/chat/completions "
                                       "(advisory: evaluate.judge.required is false)"]
    reasons, _ = _gate_reasons({"rouge_l": 0.35}, failed, judge_required=True)
    assert reasons == ["LLM judge failed: cannot reach http://x/v1/chat/completions (evaluate.judge.required)"]


def test_judge_thresholds_gate_only_when_set():
    judged = {"status": "ok", "systems": {"finetuned": {"mean_score": 2.5, "malformed_rate": 0.5}}}
    assert _gate_reasons({"rouge_l": 0.35}, judged)[0] == []
    assert _gate_reasons({"rouge_l": 0.35}, judged, judge_min_mean_score=3)[0] == [
        "the LLM judge's mean score for the fine-tuned model is 2.50, under evaluate.judge.min_mean_score=3"]
    assert "unreadable 50%" in _gate_reasons({"rouge_l": 0.35}, judged, judge_required=True)[0][0]
