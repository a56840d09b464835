"""The content detectors on Japanese titles: each rule's positives and the real titles it must keep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.clean.contamination import find_contamination
from components.clean.settings import CleanSection
from components.common.detectors import (
    detect_incomplete,
    detect_noise,
    detect_placeholder,
    detect_repetition,
    detect_tag_list,
    detect_url_or_html,
)
from components.common.settings.rules import RepetitionRule, TagListRule
from tests.clean.titles_labelled import LOOK_ALIKES, NOISE, PLACEHOLDERS, REPETITIONS, TAG_LISTS, TITLES

CLEAN = CleanSection()
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("title", TAG_LISTS)
def test_tag_list_is_detected(title):
    assert detect_tag_list(title, TagListRule()) is not None


@pytest.mark.parametrize("title", TITLES)
def test_real_title_passes_every_detector(title):
    assert find_contamination(title, CLEAN) is None


def test_title_with_single_separator_is_kept():
    assert detect_tag_list("転職して半年｜年収より大事だったこと", TagListRule()) is None


def test_tag_list_detail_names_segments_and_separator():
    assert detect_tag_list("自己紹介｜子育て｜ワーママ｜30代", TagListRule()) == "4 short segments joined by '|'"


def test_min_segments_is_honoured():
    rule = TagListRule(min_segments=5)
    assert detect_tag_list("自己紹介｜子育て｜ワーママ｜30代", rule) is None
    assert detect_tag_list("自己紹介｜子育て｜ワーママ｜30代｜東京", rule) is not None


def test_long_segments_are_phrases_not_tags():
    assert detect_tag_list("北海道旅行3泊4日子連れプラン比較｜冬休み家族旅行記録まとめ集｜費用総額公開", TagListRule()) is None


def test_url_is_not_read_as_slash_separated_tags():
    assert detect_tag_list("https://note.com/user/n/abc", TagListRule()) is None


@pytest.mark.parametrize("text", ["すごい!!!!", "ああああ"])
def test_runaway_repetition_is_detected(text):
    assert detect_repetition(text, RepetitionRule()) is not None


@pytest.mark.parametrize("title", REPETITIONS)
def test_labelled_loop_is_rejected_as_repetition(title):
    assert find_contamination(title, CLEAN)[0] == "repetition"


def test_repetition_detail_counts_a_reduplicated_word_as_one():
    assert detect_repetition("ドキドキ、ドキドキ、ドキドキ", RepetitionRule()) == "'ドキドキ' repeated 3 times"
    assert detect_repetition("ドキドキ、ドキドキ", RepetitionRule(max_phrase_repeats=2)) == "'ドキドキ' repeated 2 times"
    assert detect_repetition("まさか…………の結末", RepetitionRule()) == "'⋯' repeated 4 times"
    assert detect_repetition("まさか………の結末", RepetitionRule()) is None


@pytest.mark.parametrize("text", ["1000000円貯めた話", "ドキドキの初出勤", "ちゃんと、ちゃんと休む", "すごーい！",
                                  "まだまだ続く在宅ワーク", "ワクワクする週末"])
def test_ordinary_doubling_is_not_repetition(text):
    assert detect_repetition(text, RepetitionRule()) is None


def test_repetition_thresholds_come_from_the_rule():
    assert detect_repetition("ああああ", RepetitionRule(max_char_run=5)) is None
    assert detect_repetition("痩せた痩せた", RepetitionRule(max_phrase_repeats=2)) is not None


@pytest.mark.parametrize("text", ["https://note.com/abc", "詳しくはこちら https://example.jp/x", "www.example.com",
                                  "<br>転職して半年", "<p>タイトル</p>", "転職&amp;副業", "[こちら](https://x.jp)",
                                  "## 見出し", "note.com/user/n/abc123"])
def test_url_html_and_markup_are_detected(text):
    assert detect_url_or_html(text) is not None


@pytest.mark.parametrize("text", ["<PR>新商品を試してみた", "＜保存版＞家計簿の作り方", "note.comで書き始めた理由", "A&Bの違い"])
def test_angle_brackets_and_domains_in_titles_are_not_markup(text):
    assert detect_url_or_html(text) is None


@pytest.mark.parametrize("text", ["null", "NULL", "None", "TODO", "TODO: あとで考える", "タイトル未定", "「タイトル未定」",
                                  "（タイトル）", "無題", "{title}", "{{ title }}", "n/a"])
def test_placeholders_are_detected(text):
    assert detect_placeholder(text, CLEAN.placeholders) is not None


@pytest.mark.parametrize("text", ["タイトルの付け方で迷った話", "未定の予定を楽しむ", "ToDoリストをやめた理由", "無題の日々"])
def test_words_containing_a_placeholder_are_kept(text):
    assert detect_placeholder(text, CLEAN.placeholders) is None


@pytest.mark.parametrize("text,detail", [("", "empty"), ("   ", "empty"), ("【保存版 家計簿アプリ", "unclosed '【'"),
                                         ("「好き」を仕事に」", "'」' closes nothing"), ("転職して半年｜", "ends with '|'"),
                                         ("・・・", "no words, only symbols"), ("【保存版」家計簿", "'【' closed by '」'")])
def test_incomplete_titles_are_detected(text, detail):
    assert detect_incomplete(text) == detail


@pytest.mark.parametrize("text", ["【保存版】家計簿アプリ3つを比べてみた", "「読む・書く・話す」を毎日続けたら",
                                  "気づいたこと…", "C++とC#の違い", "ゆっくり、でも確実に。", "今日も寝坊した(笑",
                                  "また失敗した（泣）"])
def test_whole_titles_are_not_incomplete(text):
    assert detect_incomplete(text) is None


@pytest.mark.parametrize("text", PLACEHOLDERS)
def test_placeholder_families_are_detected(text):
    assert detect_placeholder(text, CLEAN.placeholders) is not None
    assert find_contamination(text, CLEAN) is not None  # incomplete, unless markup (<title>) or a run fires first


@pytest.mark.parametrize("text", NOISE)
def test_non_language_noise_is_detected(text):
    assert detect_noise(text) is not None
    assert find_contamination(text, CLEAN) is not None


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_natural_titles_that_look_like_placeholders_or_noise_are_kept(text):
    assert find_contamination(text, CLEAN) is None


@pytest.mark.parametrize("text,detail", [
    ("ã\x81\x82ã\x81\x84", "mojibake 'ã\\x81\\x82' (UTF-8 read as Latin-1)"),
    ("今日の\ufffd記事", "replacement character U+FFFD (decoded with the wrong encoding)"),
    ("2024/01/01", "no letters"),
    ("asdfghjkl", "keyboard mash 'asdfghjkl'"),
])
def test_noise_detail_names_what_gave_it_away(text, detail):
    assert detect_noise(text) == detail


def test_placeholder_rules_need_a_field_or_not_real_word_and_nothing_else():
    assert detect_placeholder("記事タイトル", CLEAN.placeholders) == "placeholder '記事タイトル' (field word 'タイトル')"
    assert detect_placeholder("記事タイトルの決め方", CLEAN.placeholders) is None
    assert detect_placeholder("ブログ", CLEAN.placeholders) is None  # a document word alone names nothing missing


def test_whitespace_and_symbols_stay_incomplete_not_noise():
    assert find_contamination("   ", CLEAN) == ("incomplete", "empty")
    assert find_contamination("・・・", CLEAN)[0] in ("incomplete", "repetition")
    assert detect_noise("") is None


def test_find_contamination_names_the_rule():
    assert find_contamination("#副業 #在宅ワーク", CLEAN)[0] == "tag_list"
    assert find_contamination("https://note.com/abc", CLEAN)[0] == "url_or_html"
    assert find_contamination("」」」」」", CLEAN)[0] == "repetition"
    assert find_contamination("タイトル未定", CLEAN)[0] == "incomplete"
    assert find_contamination("ã\x81\x82ã\x81\x84", CLEAN)[0] == "noise"


@pytest.mark.parametrize("name", ["note_titles", "v1_replay"])
def test_detectors_on_the_labelled_sample_titles(name):
    """Precision and recall of tag_list, and what the whole stage catches, on the hand-labelled sample data
    (data/sample/<name>.labels.jsonl), when present."""
    titles_path = REPO / "data" / "sample" / f"{name}.jsonl"
    labels_path = REPO / "data" / "sample" / f"{name}.labels.jsonl"
    if not labels_path.is_file():
        pytest.skip(f"{labels_path.name} not built yet")
    from tests.clean.sample_eval import evaluate

    scores = evaluate(titles_path, labels_path)
    summary = json.dumps({k: scores[k] for k in ("tag_list", "stage")}, ensure_ascii=False)
    assert scores["tag_list"]["precision"] >= 0.95 and scores["tag_list"]["recall"] >= 0.95, summary
    stage = scores["stage"]
    assert stage["clean"]["kept"] == stage["clean"]["rows"], summary  # no clean row lost
    for kind in ("noise", "incomplete", "exact_duplicate", "near_duplicate"):
        assert stage[kind]["recall"] >= 0.95, summary
