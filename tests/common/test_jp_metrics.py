"""Japanese ROUGE-L, chrF, BLEU and completion perplexity (components/common/jp_metrics.py)."""

from __future__ import annotations

import math

import pytest
from rouge_score import rouge_scorer

from components.common import jp_metrics

REF = "ソロキャンプで焚き火を眺めるだけの夜が好きだ"
PARTIAL = "焚き火を眺める夜が好き"
UNRELATED = "御朱印集めで失敗したこと"


def test_rouge_score_default_tokenizer_scores_japanese_zero():
    # The reason this module exists: the default tokenizer keeps only [a-z0-9], so Japanese vanishes.
    default = rouge_scorer.RougeScorer(["rougeL"])
    assert default.score(REF, PARTIAL)["rougeL"].fmeasure == 0.0
    assert default.score(REF, REF)["rougeL"].fmeasure == 0.0


def test_rouge_l_is_one_for_identical_japanese():
    assert jp_metrics.rouge_l([REF], [REF]) == pytest.approx(1.0)
    assert jp_metrics.rouge_l([REF], [REF], tokenization="char") == pytest.approx(1.0)


def test_rouge_l_is_partial_for_partial_match_and_lower_for_unrelated():
    partial = jp_metrics.rouge_l([PARTIAL], [REF])
    unrelated = jp_metrics.rouge_l([UNRELATED], [REF])
    assert 0.3 < partial < 1.0
    assert unrelated < partial


def test_word_tokens_split_japanese_into_words():
    assert jp_metrics.word_tokens("40歳でピアノを再開") == ["40", "歳", "で", "ピアノ", "を", "再開"]
    assert jp_metrics.char_tokens("ピアノ 再開") == ["ピ", "ア", "ノ", "再", "開"]


def test_full_width_and_half_width_text_score_the_same():
    assert jp_metrics.rouge_l(["ＡＢＣで学ぶ１００日"], ["ABCで学ぶ100日"]) == pytest.approx(1.0)


def test_chrf_and_bleu_rank_identical_partial_unrelated():
    for metric in (jp_metrics.chrf, jp_metrics.bleu):
        same = metric([REF], [REF])
        partial = metric([PARTIAL], [REF])
        unrelated = metric([UNRELATED], [REF])
        assert same == pytest.approx(1.0), metric.__name__
        assert same > partial > unrelated >= 0.0, metric.__name__


def test_corpus_scores_returns_all_three_on_unit_scale():
    scores = jp_metrics.corpus_scores([PARTIAL, REF], [REF, REF])
    assert set(scores) == {"rouge_l", "chrf", "bleu"}
    assert all(0.0 < v <= 1.0 for v in scores.values())


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        jp_metrics.rouge_l([REF, REF], [REF])


def test_empty_corpus_scores_zero():
    assert jp_metrics.corpus_scores([], []) == {"rouge_l": 0.0, "chrf": 0.0, "bleu": 0.0}


@pytest.fixture(scope="module")
def char_lm():
    """A real (tiny, random) Llama with a character tokenizer, to check which tokens get scored."""
    torch = pytest.importorskip("torch")
    from tests.hf_check.tiny_model import build_tiny_llama

    torch.manual_seed(0)
    return build_tiny_llama(texts=[REF, PARTIAL, UNRELATED, "本文:"])


def test_perplexity_scores_only_completion_tokens(char_lm):
    from components.common.prompts import hf_encoder, training_format

    model, tokenizer = char_lm
    encoder = hf_encoder(training_format(tokenizer, "{prompt}"), tokenizer)
    ids, start = encoder.pair_ids("本文:", "夜が好き")
    assert tokenizer.decode(ids[start:], skip_special_tokens=True) == "夜が好き"
    assert ids[-1] == tokenizer.eos_token_id

    a = jp_metrics.completion_perplexity(model, [encoder.pair_ids("本文:", "夜が好き")])
    b = jp_metrics.completion_perplexity(model, [encoder.pair_ids("本文:焚き火を眺める", "夜が好き")])
    assert a["tokens"] == b["tokens"] == 5  # four characters and EOS; the prompt is never counted
    assert math.isfinite(a["perplexity"]) and a["perplexity"] > 1.0
    assert a["perplexity"] == pytest.approx(math.exp(a["mean_nll"]))
