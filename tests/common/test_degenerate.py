"""Degenerate-output flags (components/common/degenerate.py) on hand-written Japanese outputs.

Each kind has outputs that must be flagged and real answers that must not; the garbage is modelled on
what broken fine-tunes really emit (」」」」, 「」「」, の の の, a title said three times, the prompt's
first sentence cut off, rambling that never stops).
"""

from __future__ import annotations

import pytest

from components.common.config import CleanSection, DegenerateSection
from components.common.degenerate import FLAGS, flag_output, inspect_output

BODY = ("小学生のころに3年でやめたピアノを、40歳の誕生日に中古の電子ピアノを買って再開した。"
        "最初の1か月はバイエルの後半すら弾けず、自分の指が他人のものみたいだった。")

# (output, the one kind it must get) -- the kind must be among the flags.
FLAGGED = [
    ("」」」」」」", "repetition"),
    ("「」」」」」」」", "repetition"),
    ("「」「」「」", "repetition"),
    ("の の の の", "repetition"),
    ("の の の", "repetition"),
    ("ワーママワーママワーママ", "repetition"),
    ("ちょこちょこちょこちょこちょこちょこ", "repetition"),
    ("朝活朝活朝活", "repetition"),
    ("痩せた・・・痩せた・・・痩せた", "repetition"),
    ("ワーママ｜ワーママ｜ワーママ", "repetition"),
    ("痩せた、痩せた、痩せた", "repetition"),
    ("ですですですです", "repetition"),
    ("40歳でピアノを再開 40歳でピアノを再開 40歳でピアノを再開", "repetition"),
    ("40歳でピアノを再開して半年 40歳でピアノを再開して半年", "repetition"),
    ("ピアノを再開した。ピアノを再開した。ピアノを", "repetition"),
    ("1. 朝活のすすめ 2. 朝活のすすめ 3. 朝活のすすめ", "repetition"),
    ("ドキドキ、ドキドキ、ドキドキ", "repetition"),
    ("", "empty"),
    ("   ", "empty"),
    ("「」", "empty"),
    ("。", "empty"),
    ("……", "empty"),
    ("…………", "repetition"),
    ("</s>", "empty"),
    ("の", "empty"),
    ("無題", "empty"),
    ("「タイトル未定」", "empty"),
    ("自己紹介｜子育て｜ワーママ｜30代", "tag_list"),
    ("#副業 #在宅ワーク #主婦", "tag_list"),
    ("節約・家計簿・貯金", "tag_list"),
    ("在宅で月5万円稼いだ話｜副業｜主婦｜在宅", "tag_list"),
    ("小学生のころに3年でやめたピアノを、40歳の誕生日に", "prompt_copy"),
    ("最初の1か月はバイエルの後半すら弾けず", "prompt_copy"),
    ("タイトル：40歳の誕生日に中古の電子ピアノを買って再開した", "prompt_copy"),
    ("ピアノ" * 25, "over_length"),
    ("40歳でピアノを再開して、毎日少しずつ練習を続けて、いつか人前で弾けるようになりたいと思っていて、そのために"
     "まずは簡単な曲から始めることにしました", "over_length"),
]

# Real answers: no flag at all.
CLEAN = [
    "40歳でピアノを再開して半年、指より先に心がほぐれた",
    "ピアノ再開｜40歳の挑戦",
    "【保存版】家計簿アプリ3つを比べてみた",
    "ちゃんと、ちゃんと休む",
    "えっ・・・・・・まさかの展開",
    "ちょこちょこ、ちょこちょこ片付け",
    "ありがとう、ありがとう",
    "年収1000000円アップの転職術",
    "すごーーい！！初めてのフルマラソン",
    "ドキドキの初ライブ",
    "トントン拍子に進んだ転職",
    "ちゃんと食べて、ちゃんと寝て、ちゃんと休む",
    "ひとり時間の楽しみ方、ふたり時間の楽しみ方",
    "東京、大阪、福岡。3都市で働いてみた",
    "iPhone 15 Pro レビュー",
    "「また明日」と言える職場",
    "ワーク・ライフ・バランスって何だろう",
    "40歳の誕生日に、ピアノをもう一度",  # shares words with the body, copies no phrase of it
    "電子ピアノを買って再開した",  # one clause of the body (13 characters) makes a fair title
    "自分の指が他人のもの、バイエルの後半すら弾けず",  # the body's phrases recombined, no long verbatim run
    "2024年の振り返り",
    "まさか……の結末",  # NFKC writes …… as six dots; it is still one ellipsis
    "そろそろ、そろそろ本気で朝活",  # a reduplicated word said twice is emphasis, not そろ four times
    "ドキドキ、ドキドキの初ライブ",
    "喫茶店めぐり｜京都・路地裏編",  # a title and a subtitle naming a part, not three tags
]


@pytest.mark.parametrize(("output", "kind"), FLAGGED)
def test_degenerate_output_is_flagged(output, kind):
    assert kind in flag_output(output, BODY)


@pytest.mark.parametrize("output", CLEAN)
def test_real_answer_is_not_flagged(output):
    assert flag_output(output, BODY) == []


def test_flags_come_in_a_fixed_order_and_only_known_kinds():
    flags = flag_output("ワーママ｜ワーママ｜ワーママ" * 6, BODY)
    assert flags == [f for f in FLAGS if f in flags]
    assert {"repetition", "over_length"} <= set(flags)


def test_loop_of_punctuation_is_repetition_not_empty():
    assert flag_output("」」」」」」") == ["repetition"]
    assert flag_output("「」") == ["empty"]


def test_prompt_copy_needs_the_prompt():
    copied = "最初の1か月はバイエルの後半すら弾けず"
    assert flag_output(copied) == []
    assert flag_output(copied, BODY) == ["prompt_copy"]


def test_title_quoting_one_phrase_of_the_body_is_not_a_copy():
    # 12 characters lifted, but they are under half of a title that says more.
    title = "最初の1か月はバイエルすら無理だった私が、半年で弾けるようになった曲"
    assert flag_output(title, BODY) == []


def test_full_width_copy_of_half_width_prompt_is_still_a_copy():
    assert "prompt_copy" in flag_output("ＡＢＣ教室で習った１０の発音のコツと練習法", "ABC教室で習った10の発音のコツと練習法を書きます")


def test_evidence_names_what_was_found():
    found = inspect_output("」」」」」」", BODY)
    assert "」" in found["repetition"] and "6" in found["repetition"]
    assert "characters copied" in inspect_output("最初の1か月はバイエルの後半すら弾けず", BODY)["prompt_copy"]
    assert inspect_output("あ" * 5 + "い" * 70)["over_length"] == "75 characters > 60"


def test_thresholds_come_from_the_config():
    long_title = "四十歳で始めたピアノの練習日記"  # 15 characters
    assert "over_length" in flag_output(long_title, cfg=DegenerateSection(max_output_chars=10))
    assert flag_output(long_title, cfg=DegenerateSection(max_output_chars=15)) == []
    looser = DegenerateSection(repetition={"max_char_run": 8, "max_phrase_repeats": 3, "max_phrase_chars": 12})
    assert "repetition" not in flag_output("」」」」」", cfg=looser)


def test_tag_list_rule_is_the_clean_stages():
    three_tags = "読書・勉強・資格"
    assert flag_output(three_tags) == ["tag_list"]
    assert flag_output(three_tags, clean_cfg=CleanSection(tag_list={"min_segments": 4})) == []


def test_echo_of_the_prompt_template_is_a_prompt_copy():
    template = "### 指示\n{prompt}\n\n### タイトル\n"
    assert flag_output("### 指示", BODY, template=template) == ["prompt_copy"]
    assert flag_output("### 指示", BODY) == []  # without the template it is only unusual text
    assert flag_output("40歳でピアノを再開して半年", BODY, template=template) == []
