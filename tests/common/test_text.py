"""Text normalization: invisible format characters go, what real text needs to look right stays."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest

from components.clean.core import run_clean
from components.common.config import RunConfig
from components.common.text import dedup_key, normalize
from tests.clean.rows import alpaca, write_jsonl

SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"


@pytest.mark.parametrize("raw,expected", [
    ("転職して\u202e半年", "転職して半年"),                      # right-to-left override
    ("ソフト\u00adハイフン", "ソフトハイフン"),                    # soft hyphen
    ("\u2066在宅ワーク\u2069の話", "在宅ワークの話"),              # bidi isolates
    ("朝\u200b活\u2060の\ufeff記録", "朝活の記録"),               # zero-width space, word joiner, BOM
    ("家\u200d族", "家族"),                                      # ZWJ between kanji joins nothing
    ("title\U000e0049\U000e0047\U000e004e", "title"),            # tag characters smuggling "IGN"
    ("\u3164\u3164東京", "東京"),                                 # Hangul filler posing as a blank
    ("a\ufff9b\ufffbc", "abc"),                                  # interlinear annotation
])
def test_invisible_format_characters_are_removed(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("text", [
    "👨\u200d💻エンジニアの朝",            # ZWJ sequence: one emoji
    "🏳\ufe0f\u200d🌈の旗",                 # with a variation selector before the joiner
    "👩🏽\u200d🚀になりたい",                # with a skin tone
    f"{SCOTLAND}旅行記",                   # tag characters of a subdivision flag
    "葛\U000e0100城さんの話",              # ideographic variation selector: a name's kanji variant
    "❤\ufe0f大好き",                       # emoji presentation selector
])
def test_sequences_that_render_as_one_glyph_are_kept(text):
    assert normalize(text) == text


def test_every_format_character_of_this_unicode_version_is_removed():
    format_chars = [chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)) == "Cf"]
    survivors = [f"U+{ord(c):04X}" for c in format_chars if normalize(f"a{c}b") != "ab"]
    assert survivors == []


def test_invisible_characters_do_not_hide_a_duplicate():
    assert dedup_key("ソフト\u00adハイフン\u202e") == dedup_key("ソフトハイフン")


def test_kept_jsonl_holds_no_bidi_override_or_soft_hyphen(tmp_path):
    cfg = RunConfig()
    cfg.data.min_samples, cfg.clean.write_chart, cfg.clean.workers = 1, False, 1
    rows = [alpaca(1, "転職して\u202e半年"), alpaca(2, "ソフト\u00adハイフンの話")]
    rows[1]["input"] = rows[1]["input"].replace("本文", "本\u00ad文\u202e")
    run_clean(write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out", cfg)
    kept = (tmp_path / "out" / "kept.jsonl").read_text(encoding="utf-8")
    assert len(kept.splitlines()) == 2
    assert "\u202e" not in kept and "\u00ad" not in kept
    assert [json.loads(line)["completion"] for line in kept.splitlines()] == ["転職して半年", "ソフトハイフンの話"]
