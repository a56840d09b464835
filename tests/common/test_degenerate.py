"""Degenerate-output flags (components/common/degenerate.py) on hand-written Japanese outputs.

Each kind has outputs that must be flagged and real answers that must not; the garbage is modelled on
what broken fine-tunes really emit (」」」」, 「」「」, の の の, a title said three times, the prompt's
first sentence cut off, rambling that never stops) and on what a real pretrained model does that a tiny
one never did (the article's opening words instead of a title, a character cut in half by the token
limit, its chat template's markup in the answer).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.common.config import RunConfig
from components.common.degenerate import FLAGS, flag_output, inspect_output
from components.common.settings.data import DataSection
from components.common.settings.degenerate import DegenerateSection, OutputRules
from components.train.settings import TrainSection
from tests.clean.titles_labelled import TITLES

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


# What hf_check and evaluate pass: the prompt is the instruction paragraph, then the article (clean joins them
# with data.alpaca_join); the template is train.prompt_template, and a formatted prompt may come instead.
TEMPLATE = TrainSection().prompt_template
ASK = "次の記事本文にふさわしいタイトルを付けてください。"
PROMPT = ASK + DataSection().alpaca_join + BODY
SHORT_OPENING = "会社を辞めた。理由は一つではないけれど、いちばん大きかったのは通勤の2時間だった。"
PROMPTS = {"article": BODY, "instruction_and_article": PROMPT, "formatted": TEMPLATE.format(prompt=PROMPT)}

# (output, kind, prompt) from a real model's failures: each must carry the kind, whichever prompt form is passed.
REAL_MODEL_FAILURES = [
    # the article's opening instead of a title: opening words, the first clause, the first sentence as prose
    ("小学生のころに", "prompt_copy", PROMPT),
    ("小学生のころに3年でやめたピアノを", "prompt_copy", PROMPT),
    ("小学生のころに３年でやめたピアノを、40歳の誕生日に", "prompt_copy", PROMPT),
    ("「小学生のころに」", "prompt_copy", PROMPT),
    ("小学生のころに3年でやめたピアノを、40歳の誕生日に中古の電子ピアノを買って再開した", "prompt_copy", PROMPT),
    ("小学生のころに3年でやめたピアノを、40歳の誕生日に中古の電子ピアノを買って再開した。", "prompt_copy", PROMPT),
    ("会社を辞めた。", "prompt_copy", SHORT_OPENING),  # short, but with the article's full stop: prose
    ("会社を辞めた。理由は一つ", "prompt_copy", SHORT_OPENING),  # past the first sentence
    ("理由は一つではないけれど、いちばん大きかったのは通勤の2時間だった", "prompt_copy", SHORT_OPENING),
    ("次の記事本文に", "prompt_copy", PROMPT),  # the instruction's opening
    ("次の記事本文にふさわしいタイトルを付けてください", "prompt_copy", PROMPT),
    ("小学生のころに3年でや\ufffd", "prompt_copy", PROMPT),
    # a character cut in half by the token limit (a byte-level tokenizer decodes the partial bytes as U+FFFD)
    ("40歳でピアノを再開し\ufffd", "broken_text", PROMPT),
    ("40歳で\ufffd\ufffdピアノを再開", "broken_text", PROMPT),
    ("\ufffd", "broken_text", PROMPT),
    ("40歳でピアノを再開\x01\x02", "broken_text", PROMPT),
    ("ã‚¿ã‚¤ãƒˆãƒ«", "broken_text", PROMPT),  # タイトル as UTF-8 read as cp1252
    # the chat template's or the prompt template's markup in the answer
    ("<|im_start|>assistant", "template_markup", PROMPT),
    ("<|im_end|>", "template_markup", PROMPT),
    ("40歳でピアノを再開した<|im_end|>", "template_markup", PROMPT),
    ("40歳でピアノを再開した<|eot_id|>", "template_markup", PROMPT),
    ("<|start_header_id|>assistant<|end_header_id|>", "template_markup", PROMPT),
    ("[INST] 40歳でピアノを再開した", "template_markup", PROMPT),
    ("40歳でピアノを再開した [/INST]", "template_markup", PROMPT),
    ("<<SYS>>", "template_markup", PROMPT),
    ("<start_of_turn>model", "template_markup", PROMPT),
    ("40歳でピアノを再開した<end_of_turn>", "template_markup", PROMPT),
    ("<｜end▁of▁sentence｜>", "template_markup", PROMPT),
    ("### タイトル", "template_markup", PROMPT),
    ("### タイトル\n40歳でピアノを再開した", "template_markup", PROMPT),
    ("40歳でピアノを再開した\n\n### 指示", "template_markup", PROMPT),
    ("### Response:", "template_markup", PROMPT),
    ("40歳でピアノを再開した###", "template_markup", PROMPT),
    ("assistant", "template_markup", PROMPT),
    ("model", "template_markup", PROMPT),
    ("Assistant:", "template_markup", PROMPT),
    ("assistant\n40歳でピアノを再開した", "template_markup", PROMPT),
    ("ASSISTANT: 40歳でピアノを再開した", "template_markup", PROMPT),
    ("</s>40歳でピアノを再開した", "template_markup", PROMPT),
    ("40歳でピアノを再開した<|im_", "template_markup", PROMPT),  # a special token cut by the token limit
    ("<|assistant|>40歳でピアノを再開した", "template_markup", PROMPT),
    ("<eos>", "template_markup", PROMPT),
    ("アシスタント：40歳でピアノを再開した", "template_markup", PROMPT),
    ("タイトル：小学生のころに", "prompt_copy", PROMPT),  # a label, then the opening words
]

# Real titles beside the same prompts: they reuse the article's words, open with its first words and go on,
# take a short first sentence whole (as writers do), or hold what the new detectors look for in a legitimate form.
REAL_TITLES = [
    ("40歳の誕生日に、ピアノをもう一度", PROMPT),
    ("電子ピアノを買って再開した", PROMPT),
    ("自分の指が他人のもの、バイエルの後半すら弾けず", PROMPT),
    ("小学生以来のピアノ、40歳で再開", PROMPT),
    ("会社を辞めた", SHORT_OPENING),  # the whole first sentence, one clause, no full stop
    ("会社を辞めた話", SHORT_OPENING),
    ("会社を辞めた理由は通勤の2時間だった", SHORT_OPENING),
    ("ベビーカーで電車に乗るのが怖かった", "ベビーカーで電車に乗るのが怖かった。舌打ちされたらどうしよう、泣いたらどうしよう。"),
    ("ベビーカーで電車に乗るのが怖かった頃の私へ", "ベビーカーで電車に乗るのが怖かった。舌打ちされたらどうしよう。"),
    ("「向いてない」と「慣れてない」は違う", "『向いてない』と『慣れてない』は違う。営業に配属された最初の半年、私は毎日前者だと思っていた。"),
    ("ピアノ", "ピアノを再開した。40歳の誕生日だった。"),  # one shared word is not a copy
    ("#1 会社を辞めた日のこと", PROMPT),
    ("C#で作る簡単なゲーム", PROMPT),
    ("Café巡り｜京都の路地裏で", PROMPT),
    ("São Pauloで働いた1年", PROMPT),
    ("naïveな私の転職記", PROMPT),
    ("仕事—そして私", PROMPT),
    ("「まさか…」”の結末", PROMPT),
    ("🎹40歳でピアノを再開した", PROMPT),
    ("Model 3に乗って1年", PROMPT),
    ("AI時代の働き方", PROMPT),
    ("ユーザー目線で考える家計簿アプリ", PROMPT),
    ("Assistant Managerになって半年", PROMPT),
    ("<速報>ピアノ発表会に出ます", PROMPT),
    ("タイトルで9割決まる、は本当か", PROMPT),
    # two phrases from two places of the article side by side: recombined, not a 19-character copy
    ("老後2000万円が、ようやく自分事になった", "老後2000万円問題のニュースを見たとき、私は25歳だった。遠い数字が、ようやく自分事になってきた。"),
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
    assert "over_length" in flag_output(long_title, rules=OutputRules(DegenerateSection(max_output_chars=10)))
    assert flag_output(long_title, rules=OutputRules(DegenerateSection(max_output_chars=15))) == []
    looser = DegenerateSection(repetition={"max_char_run": 8, "max_phrase_repeats": 3, "max_phrase_chars": 12})
    assert "repetition" not in flag_output("」」」」」", rules=OutputRules(looser))


def test_tag_list_rule_is_the_clean_stages():
    three_tags = "読書・勉強・資格"
    assert flag_output(three_tags) == ["tag_list"]
    cfg = RunConfig(clean={"tag_list": {"min_segments": 4}})
    assert flag_output(three_tags, rules=cfg.output_rules()) == []


def test_echo_of_the_prompt_template_is_a_prompt_copy_and_markup():
    template = "### 指示\n{prompt}\n\n### タイトル\n"
    assert flag_output("### 指示", BODY, template=template) == ["prompt_copy", "template_markup"]
    assert flag_output("指示", BODY, template=template) == ["prompt_copy"]
    assert flag_output("### 指示", BODY) == ["template_markup"]  # a Markdown header is markup in any template
    assert flag_output("40歳でピアノを再開して半年", BODY, template=template) == []


@pytest.mark.parametrize(("output", "kind", "prompt"), REAL_MODEL_FAILURES)
@pytest.mark.parametrize("form", ["raw", "formatted"])
def test_real_model_failure_is_flagged(output, kind, prompt, form):
    given = TEMPLATE.format(prompt=prompt) if form == "formatted" else prompt
    assert kind in flag_output(output, given, template=TEMPLATE)


@pytest.mark.parametrize(("output", "prompt"), REAL_TITLES)
@pytest.mark.parametrize("form", ["raw", "formatted"])
def test_real_title_beside_its_article_is_not_flagged(output, prompt, form):
    given = TEMPLATE.format(prompt=prompt) if form == "formatted" else prompt
    assert flag_output(output, given, template=TEMPLATE) == []


@pytest.mark.parametrize("prompt", PROMPTS.values(), ids=PROMPTS.keys())
def test_opening_copy_is_found_after_an_instruction_and_inside_the_template(prompt):
    found = inspect_output("小学生のころに3年でやめたピアノを", prompt, template=TEMPLATE)
    assert list(found) == ["prompt_copy"] and "cut off mid-sentence" in found["prompt_copy"]
    # the opening words are short of the 16-character run the long-copy rule needs: only the opening rule sees them
    assert flag_output("小学生のころに", prompt, template=TEMPLATE) == ["prompt_copy"]


def test_opening_copy_threshold_comes_from_the_config():
    assert flag_output("小学生の", PROMPT) == ["prompt_copy"]
    assert flag_output("小学生の", PROMPT, rules=OutputRules(DegenerateSection(opening_copy_min_chars=5))) == []


def test_text_cut_inside_a_character_is_broken_and_says_where():
    found = inspect_output("40歳でピアノを再開し\ufffd", PROMPT)
    assert list(found) == ["broken_text"]
    assert "U+FFFD" in found["broken_text"] and "at the end" in found["broken_text"]


def test_byte_level_tokens_shown_without_their_decoder_are_broken_text():
    """A real byte-level BPE's own token strings for a title (what a pipeline that skips the ByteLevel decoder shows)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator([BODY, ASK], trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    encoding = tokenizer.encode("40歳でピアノを再開した")
    raw = "".join(encoding.tokens)
    assert tokenizer.decode(encoding.ids) == "40歳でピアノを再開した"
    assert flag_output(tokenizer.decode(encoding.ids), PROMPT) == []
    assert "byte-level" in inspect_output(raw, PROMPT)["broken_text"]


def test_markup_beside_a_real_title_is_flagged_alone():
    # The other kinds judge the title without its special tokens; the markup is still reported.
    assert flag_output("40歳でピアノを再開した<|im_end|>", PROMPT) == ["template_markup"]
    assert flag_output("<|im_end|>", PROMPT) == ["empty", "template_markup"]
    assert "role header" in inspect_output("assistant", PROMPT)["template_markup"]


def test_a_label_line_of_a_custom_prompt_template_is_markup():
    template = "記事: {prompt}\nタイトル: "
    assert flag_output("タイトル: 40歳でピアノを再開した", PROMPT, template=template) == ["template_markup"]
    assert flag_output("40歳でピアノを再開した", template.format(prompt=PROMPT), template=template) == []
    assert flag_output("記事: 小学生のころに", template.format(prompt=PROMPT), template=template) == [
        "prompt_copy", "template_markup"]


SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _clean_sample_rows(name: str) -> list[dict]:
    """Rows of a sample file labelled clean, with the prompt the clean stage builds (instruction + article)."""
    def lines(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    pairs = zip(lines(SAMPLE / f"{name}.jsonl"), lines(SAMPLE / f"{name}.labels.jsonl"), strict=True)
    clean = [row for row, label in pairs if label["kind"] == "clean"]
    return [{"title": r["output"], "prompt": r["instruction"] + DataSection().alpaca_join + r["input"]} for r in clean]


@pytest.mark.parametrize("name", ["note_titles", "v1_replay"])
def test_no_natural_title_is_flagged_beside_its_own_article(name):
    rows = _clean_sample_rows(name)
    assert len(rows) > 400
    flagged = {}
    for row in rows:
        for prompt in (row["prompt"], TEMPLATE.format(prompt=row["prompt"])):
            found = inspect_output(row["title"], prompt, template=TEMPLATE)
            if found:
                flagged[row["title"]] = found
    assert flagged == {}


@pytest.mark.parametrize("title", TITLES)
def test_labelled_natural_title_is_not_flagged(title):
    assert flag_output(title, template=TEMPLATE) == []
    assert flag_output(title, PROMPT, template=TEMPLATE) == []
