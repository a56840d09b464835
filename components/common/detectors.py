"""Content-quality detectors for Japanese titles: what a training target (or a model's output) must not be.

Every detector is a pure function with one signature::

    detect_<name>(text: str, rule_cfg) -> str | None

It returns a short human-readable detail when it fires (e.g. ``"4 short segments joined by '|'"``)
and ``None`` when the text is clean. Detectors normalize internally (NFKC), so full-width and
half-width forms (``｜`` / ``|``, ``＃`` / ``#``) behave the same; pass raw or normalized text.

    detect_tag_list(text, cfg.clean.tag_list)        several short noun segments joined by | / ・ 、 , or
                                                      hashtags; a title with one ｜ between title and
                                                      subtitle is kept
    detect_url_or_html(text, None)                    URLs, HTML tags/entities, Markdown markup
    detect_repetition(text, cfg.clean.repetition)     runaway repetition: 」」」」, 痩せた痩せた痩せた; counted in
                                                      words (そろそろ、そろそろ is twice) and ellipses (…… is
                                                      two marks, not six dots)
    detect_placeholder(text, cfg.clean.placeholders)  null, TODO, タイトル未定, {title}, <title>, ※タイトルを入力,
                                                      記事タイトル, New Post, Untitled-3, ○○○, Lorem ipsum:
                                                      scaffolding words around a field or not-real word
    detect_incomplete(text, None)                     empty, unclosed 【「（ or stray 」, dangling separator,
                                                      no letters at all. Title-level checks: a body cut
                                                      mid-sentence is not a title problem, so the clean
                                                      stage applies this one to completions only.
    detect_noise(text, None)                          not language: mojibake, U+FFFD, private-use characters,
                                                      escaped bytes, base64/hex blobs, keyboard mash, no
                                                      letters (components/common/noise.py)

    is_placeholder(text, placeholders) -> bool   whole-text placeholder only (what clean checks on prompts)

The clean stage applies them in its own order (components/clean/contamination.py); hf_check applies them to a
model's answers (components/common/degenerate.py).

The tag-list detector splits a title at list separators outside brackets and weighs each part with a
morphological analyzer (fugashi + unidic-lite): bare (nouns, affixes, nominal verbs: 自己紹介, 働き方),
light (also の and attributive な: 今日の学び, 丁寧な暮らし) or heavy (case particles, conjugated verbs,
auxiliaries, sentence punctuation: 年収より大事だったこと). Three or more short parts that are bare or light
(with at most one verb-like tag such as やってみた) are a list; two parts are title and subtitle unless both
are bare nouns; a long title followed by three or more tags is a title with tags tacked on. Series
markers (その2, 第3回), subtitles naming a part or an edition (京都・路地裏編, 2024年版, 秋の味覚特集),
katakana names joined by ・, a word said twice in a row (毎日、毎日、ちょっとずつ) and lists that lead into a
sentence (東京、大阪、福岡で働いた; 仕事｜育児｜そして私) are kept.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import TYPE_CHECKING

from components.common.noise import detect_noise

if TYPE_CHECKING:
    from components.common.settings.rules import RepetitionRule, TagListRule

__all__ = [
    "detect_tag_list", "detect_url_or_html", "detect_repetition", "detect_placeholder", "detect_incomplete",
    "detect_noise", "is_placeholder", "is_reduplicated_word", "fold_ellipses",
]


def _nfkc(text: str) -> str:
    if len(text) <= 200:
        return _nfkc_short(text)
    return unicodedata.normalize("NFKC", text).strip()


@lru_cache(maxsize=4096)
def _nfkc_short(text: str) -> str:
    # Each detector normalizes the same title again: cache the short ones.
    return unicodedata.normalize("NFKC", text).strip()


# ---------------------------------------------------------------- brackets (shared by tag_list, incomplete)
# After NFKC: （ -> (, ［ -> [, ｛ -> {, ＜ -> <; the Japanese corner/lenticular brackets stay as they are.
_OPEN_TO_CLOSE = {"【": "】", "「": "」", "『": "』", "(": ")", "[": "]", "{": "}", "〈": "〉", "《": "》",
                  "〔": "〕", "〖": "〗", "〘": "〙", "“": "”", "‘": "’"}
_CLOSE_TO_OPEN = {v: k for k, v in _OPEN_TO_CLOSE.items()}
_HAS_BRACKET = re.compile("[" + re.escape("".join(_OPEN_TO_CLOSE) + "".join(_CLOSE_TO_OPEN)) + "]")


# ---------------------------------------------------------------- tag list
# List separators after NFKC (｜ -> |, ／ -> /, ， -> ,, ･ -> ・). ¦ and ‖ show up in scraped titles too.
_LIST_SEPARATORS = "|/・、,¦‖"
_STRUCTURAL_SEPARATORS = "|/,¦‖"  # not Japanese sentence punctuation: tags tacked onto a title use these
_SENTENCE_PUNCT = re.compile(r"[。!?！？…]|\.\.\.")
_LIST_MARKS = re.compile(r"[|/・、,¦‖#♯【\[:：\s]")
_HASHTAG = re.compile(r"(?<![A-Za-z0-9_&])[#♯]([^\s#♯|/,、]+)")
_KEYWORD_LABEL = re.compile(r"(?i)^(?:タグ|ハッシュタグ|キーワード|tags?|keywords?)\s*[:：]")
_BRACKET_GROUP = re.compile(r"【[^】]*】|\[[^\]]*\]")
_KATAKANA_WORD = re.compile(r"^[\u30a0-\u30ffー]+$")
_SPACE_BREAK = re.compile(r"(?<=[^\x00-\x7f])\s+|\s+(?=[^\x00-\x7f])")
# Series markers make a segment part of a title (育休日記 その2｜...), never a tag.
_SERIES = re.compile(r"(?i)その\d+|第\d+[回話章部弾]|vol\.?\s*\d+|part\s*\d+|ep\.?\s*\d+|day\s*\d+|"
                     r"\d+(?:か|ヶ|ケ|カ)?[日週月年]目|[前中後]編|完結編|番外編")
# A space inside a segment, between Japanese words, belongs to a title (育休日記 その1), not to a tag.
_INNER_SPACE = re.compile(r"[^\x00-\x7f]\s+[^\x00-\x7f]")
# A segment naming a part or an edition of what the title is about is a subtitle, never a tag: 京都・路地裏編,
# 平日編, 秋の味覚特集, ビジネス書まとめ, 2024年版, 保存版. A bare まとめ or 特集 can be a tag, and 短編/長編 are genres.
_PART_SUFFIX = re.compile(r"(?<=.)(?:(?<![短長詩])[編篇]|特集|まとめ)$")

# How much sentence a segment carries (unidic POS):
#   bare   nouns, affixes, symbols, nominal verbs (振り返り, 書き方, おすすめ): 自己紹介, 30代, 働き方
#   light  also の, attributive な and adjectives before a noun: 今日の学び, 丁寧な暮らし, 大人の学び直し
#   heavy  case particles, conjugated verbs, auxiliaries, adverbs: 個人で稼ぐ, やってみた, 年収より大事だった
# Tags on note.com are mostly bare or light; a title's parts are heavy.
BARE, LIGHT, HEAVY = 0, 1, 2
_HEAVY_POS = {"副詞", "接続詞"}


@lru_cache(maxsize=1)
def _tagger():
    try:
        import fugashi
    except ImportError as exc:  # pragma: no cover - the pinned requirements include it
        from components.common.errors import ConfigError

        raise ConfigError("the tag_list detector needs fugashi and unidic-lite (pip install -r requirements/base.txt)") from exc
    return fugashi.Tagger()


@lru_cache(maxsize=65536)
def _weight(segment: str) -> int:
    if _SENTENCE_PUNCT.search(segment):
        return HEAVY
    words = list(_tagger()(segment))
    weight = BARE
    for i, word in enumerate(words):
        pos, form = word.feature.pos1, str(word.feature.cForm)
        nxt = words[i + 1].feature.pos1 if i + 1 < len(words) else None
        if pos in _HEAVY_POS:
            return HEAVY
        if pos == "助詞":
            if word.surface != "の":
                return HEAVY
            weight = LIGHT
        elif pos == "助動詞":
            if word.surface != "な":
                return HEAVY
            weight = LIGHT
        elif pos == "動詞" and not form.startswith("連用形"):
            return HEAVY
        elif pos in ("形容詞", "連体詞"):
            if nxt not in ("名詞", "接尾辞"):
                return HEAVY
            weight = LIGHT
    return weight


@lru_cache(maxsize=16)
def _separator_pattern(separators: str) -> re.Pattern:
    plain = re.escape("".join(c for c in separators if c not in "/,"))
    digit_bound = "".join(c for c in separators if c in "/,")
    parts = [f"[{plain}]"] if plain else []
    if digit_bound:
        # / and , are separators unless both neighbours are digits (3/15, 1,000).
        parts += [rf"(?<!\d)[{re.escape(digit_bound)}]", rf"[{re.escape(digit_bound)}](?!\d)"]
    return re.compile("|".join(parts))


def _top_level_split(text: str, separators: str) -> tuple[list[str], list[str]]:
    """Splits at separators outside brackets (「読む・書く」 is one piece); drops empty pieces (a trailing
    separator is `incomplete`'s business). Returns (segments, separators used).
    / and , between digits (3/15, 1,000) are not separators."""
    if not _HAS_BRACKET.search(text):
        pattern = _separator_pattern(separators)
        used = pattern.findall(text)
        if not used:
            return ([text.strip()] if text.strip() else []), []
        return [p.strip() for p in pattern.split(text) if p.strip()], used
    segments, used, depth, start = [], [], 0, 0
    for i, ch in enumerate(text):
        if ch in _OPEN_TO_CLOSE:
            depth += 1
        elif ch in _CLOSE_TO_OPEN:
            depth = max(0, depth - 1)
        elif depth == 0 and ch in separators:
            if ch in "/," and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit():
                continue
            segments.append(text[start:i])
            used.append(ch)
            start = i + 1
    segments.append(text[start:])
    return [s.strip() for s in segments if s.strip()], used


def _segments(text: str) -> tuple[list[str], list[str]]:
    separators = _LIST_SEPARATORS
    if "・" in text and all(_KATAKANA_WORD.match(p) for p in _top_level_split(text, "・")[0]):
        # ワーク・ライフ・バランス, ジョン・スミス: katakana joined by ・ is one loanword or name, not a list.
        separators = separators.replace("・", "")
    segments, used = _top_level_split(text, separators)
    if len(segments) < 2:
        # Space-separated keywords (節約 家計簿 貯金). A space between two ASCII words does not count,
        # so "iPhone 15 Pro" stays one segment.
        spaced = [s.strip() for s in _SPACE_BREAK.split(text) if s.strip()]
        if len(spaced) >= 2:
            return spaced, [" "] * (len(spaced) - 1)
    return segments, used


def _is_short(segment: str, rule: TagListRule) -> bool:
    return (len(segment) <= rule.max_segment_chars and not _SERIES.search(segment)
            and not _INNER_SPACE.search(segment) and not _names_a_part(segment))


@lru_cache(maxsize=65536)
def _names_a_part(segment: str) -> bool:
    if _PART_SUFFIX.search(segment):
        return True
    if len(segment) < 2 or not segment.endswith("版"):
        return False
    # 版 as its own word is an edition (2024年版, 保存版, Switch版); inside one it is not (Kindle出版, 初版, 絶版).
    words = list(_tagger()(segment))
    return len(words) > 1 and words[-1].surface == "版"


def _heavy_tolerated(segments: list[str], weights: list[int], used: list[str]) -> bool:
    """A list of tags may hold a verb-like tag (やってみた, 個人で稼ぐ, はたらく): one, or one per three
    segments. Not when the heavy segment is the sentence the list belongs to:
    - it holds sentence punctuation (。！？);
    - separators are mixed (節約・貯金・投資、全部やめてみた結果);
    - it is last and opens with a noun and a particle, the list being that particle's object
      (東京、大阪、福岡で働いた; 嵐山を歩いた), or is last after 、 or a space, which join the parts of a
      sentence (ありがとう、さようなら、また会う日まで);
    - it continues a katakana name across ・ (ロード・オブ・ザ・リングを観た)."""
    heavy = [i for i, w in enumerate(weights) if w == HEAVY]
    if not heavy:
        return True
    if len(set(used)) > 1 or len(heavy) > max(1, (len(weights) - 1) // 3):
        return False
    if any(_SENTENCE_PUNCT.search(segments[i]) for i in heavy):
        return False  # 東京、大阪、福岡。3都市で働いてみた
    if heavy[-1] == len(segments) - 1 and (used[-1] in "、 " or _opens_with_noun_and_particle(segments[-1])
                                           or _is_adverbial_phrase(segments[-1])):
        return False
    for i in heavy:
        if i and used[i - 1] == "・" and _is_katakana(segments[i - 1][-1]) and _is_katakana(segments[i][0]):
            return False
    return True


def _is_katakana(ch: str) -> bool:
    return "\u30a1" <= ch <= "\u30fa" or ch == "ー"


@lru_cache(maxsize=65536)
def _opens_with_noun_and_particle(segment: str) -> bool:
    words = list(_tagger()(segment))
    i = 0
    while i < len(words) and words[i].feature.pos1 in ("名詞", "接頭辞", "接尾辞", "代名詞"):
        i += 1
    return 0 < i < len(words) and words[i].feature.pos1 == "助詞" and words[i].surface != "の"


@lru_cache(maxsize=65536)
def _is_adverbial_phrase(segment: str) -> bool:
    """A conjunction with more words (そして私), or an adverb with a particle, verb or adjective after it
    (ちょっとずつ, 少しだけ, もっと遠くへ, ゆっくり休む): the end of a sentence, not a tag. A lone adverb
    (コツコツ) or one before a noun (のんびり暮らし) can be a tag."""
    words = list(_tagger()(segment))
    if len(words) < 2:
        return False
    if any(w.feature.pos1 == "接続詞" for w in words):
        return True
    return words[0].feature.pos1 == "副詞" and any(
        w.feature.pos1 in ("助詞", "動詞", "助動詞", "形容詞") for w in words[1:])


def _most_common(used: list[str]) -> str:
    return max(dict.fromkeys(used), key=used.count)


def detect_tag_list(text: str, rule: TagListRule) -> str | None:
    """Several short tag-like segments joined by list separators, hashtags, or a title with tags tacked on.

    Fires on 自己紹介｜子育て｜ワーママ｜30代, 節約, 家計簿, 貯金, #副業 #在宅ワーク, 読書・勉強・資格, 【副業】【在宅】,
    タグ：暮らし 毎日note, ワーママ｜育児日記, and 在宅で月5万円稼いだ話｜副業｜主婦｜在宅. Keeps
    転職して半年｜年収より大事だったこと, 【保存版】家計簿アプリ3つを比べてみた, 東京、大阪、福岡。3都市で働いてみた,
    ワーク・ライフ・バランスって何だろう, 育休日記 その2｜仕事のほうが楽だった、とは言えない.
    """
    text = _nfkc(text)
    if not _LIST_MARKS.search(text):
        return None  # no separator, hashtag, bracket, colon or space: one piece
    text = _URL.sub(" ", text).strip()  # a URL's slashes are not list separators
    if not text:
        return None
    if _KEYWORD_LABEL.match(text):
        return "labelled as tags/keywords"
    hashtags = [t for t in _HASHTAG.findall(text) if not t.isdigit()]
    if hashtags:
        if len(hashtags) >= rule.min_hashtags:
            return f"{len(hashtags)} hashtags"
        if not re.sub(r"[\s|/,、・]", "", _HASHTAG.sub("", text)):
            return "only hashtags"
    groups = _BRACKET_GROUP.findall(text)
    if len(groups) >= 2 and not _BRACKET_GROUP.sub("", text).strip():
        return f"{len(groups)} bracketed tags and nothing else"

    segments, used = _segments(text)
    if len(segments) < 2 or any(a == b for a, b in itertools.pairwise(segments)):
        # One piece; or a word said twice in a row (毎日、毎日、ちょっとずつ; 好き、好き、大好き), which is
        # emphasis: a pasted tag list never holds the same tag twice running. Said over and over, the word
        # is repetition's business.
        return None
    n, sep = len(segments), _most_common(used)
    weights = [_weight(s) for s in segments]
    short = [_is_short(s, rule) for s in segments]
    if n >= rule.min_segments and all(short) and _heavy_tolerated(segments, weights, used):
        return f"{n} short segments joined by '{sep}'"
    if n == 2 and all(short):
        # Two parts: title and subtitle unless both are bare nouns (ワーママ｜育児日記); with a comma, which
        # never joins a title to its subtitle, light ones too (大人の学び直し, 私の仕事).
        limit = LIGHT if set(used) <= {","} else BARE
        if set(used) <= set(_STRUCTURAL_SEPARATORS) and max(weights) <= limit:
            return f"2 tags joined by '{sep}'"
    return _title_with_tags(text, rule)


def _title_with_tags(text: str, rule: TagListRule) -> str | None:
    """在宅ワークで月5万円稼いだ話｜副業｜主婦｜在宅: a title, then (or after) tags joined by | / ,."""
    parts, used = _top_level_split(text, _STRUCTURAL_SEPARATORS)
    if len(parts) < rule.min_segments + 1:
        return None
    for tags in (parts[1:], parts[:-1]):
        weights = [_weight(t) for t in tags]
        if all(_is_short(t, rule) for t in tags) and weights.count(HEAVY) <= max(1, len(tags) // 3):
            return f"title with {len(tags)} tags joined by '{_most_common(used)}'"
    return None


# ---------------------------------------------------------------- URL / HTML / Markdown
# Scheme URLs, www. hosts, and bare domains with a path (note.com/user/n/abc; not "note.comで書く").
_URL = re.compile(r"(?i)\b(?:https?|ftp)://\S+|\bwww\.[a-z0-9-]+(?:\.[a-z0-9-]+)+\S*|"
                  r"\b(?:[a-z0-9-]+\.)+(?:com|net|org|jp|io|me|info|dev|app|ly|tv|co)/[\x21-\x7e]*")
_HTML_TAG_NAMES = (
    "a|abbr|article|aside|audio|b|blockquote|body|br|button|center|code|div|em|figure|font|footer|form|"
    "h[1-6]|head|header|hr|html|i|iframe|img|input|label|li|link|meta|nav|noscript|ol|option|p|pre|s|script|"
    "section|select|small|source|span|strong|style|sub|sup|svg|table|tbody|td|textarea|th|thead|title|tr|u|ul|video"
)
# Only real HTML element names: <PR> and <保存版> are common in Japanese titles and are not markup.
_HTML_TAG = re.compile(rf"(?i)<\s*/?\s*(?:{_HTML_TAG_NAMES})\b[^<>]*>|<!--|<!doctype")
_HTML_ENTITY = re.compile(r"(?i)&(?:amp|lt|gt|quot|apos|nbsp|hellip|mdash|ndash|copy|reg|yen|laquo|raquo|#\d{2,7}|#x[0-9a-f]{2,6});")
_MARKDOWN = re.compile(r"^#{1,6}\s|\[[^\]]+\]\([^)]+\)|!\[[^\]]*\]|\*\*[^*]+\*\*|```|^>\s")


def detect_url_or_html(text: str, rule_cfg: object = None) -> str | None:
    """A URL, HTML markup or Markdown where plain title text belongs (rule_cfg is unused)."""
    text = _nfkc(text)
    url = _URL.search(text)
    if url:
        return "url only" if url.group(0) == text else f"url {url.group(0)[:60]}"
    m = _HTML_TAG.search(text)
    if m:
        return f"html tag {m.group(0)[:40]}"
    m = _HTML_ENTITY.search(text)
    if m:
        return f"html entity {m.group(0)}"
    m = _MARKDOWN.search(text)
    if m:
        return f"markdown {m.group(0).strip()[:40]}"
    return None


# ---------------------------------------------------------------- repetition
_REPEAT_GAP = r"[\s、,・!?⋯]*"
# NFKC spells … as ... and ‥ as .., so まさか…… reads as six dots; ・・・ is the ellipsis typed with ・.
# Each such run counts as ellipsis marks (one per three dots), so only a run of ellipses is a runaway.
_DOT_RUN = re.compile(r"\.{2,}|・{3,}")
_ELLIPSIS = "⋯"  # survives NFKC as one character


def _as_ellipses(match: re.Match) -> str:
    return _ELLIPSIS * -(-len(match.group(0)) // 3)


@lru_cache(maxsize=16)
def _repetition_patterns(max_char_run: int, max_phrase_repeats: int, max_phrase_chars: int):
    # Digits are excluded from character runs: 1000000円 is a number, not a loop.
    char_run = re.compile(rf"([^\d\s])\1{{{max_char_run - 1},}}")
    phrase = re.compile(rf"([^\s、,・!?⋯]{{2,{max_phrase_chars}}}?)(?:{_REPEAT_GAP}\1){{{max_phrase_repeats - 1},}}")
    return char_run, phrase


def fold_ellipses(text: str) -> str:
    """Each ellipsis as one mark (⋯), however it was typed or NFKC spelt it (…… → ⋯⋯, ・・・ → ⋯)."""
    return _DOT_RUN.sub(_as_ellipses, text)


@lru_cache(maxsize=4096)
def _is_reduplicated_word(unit: str) -> bool:
    """unit+unit is one dictionary word: そろ -> そろそろ, ドキ -> ドキドキ, ちょこ -> ちょこちょこ. Not です
    (ですです is two words) nor ワーママ (ワーママワーママ is only an unknown katakana run to the analyzer)."""
    words = list(_tagger()(unit * 2))
    return len(words) == 1 and not words[0].is_unk


def _repeats(unit: str, run: str) -> tuple[str, int]:
    """(word, times) for a run of `unit` said back to back: counted in words, so a reduplicated word
    (そろそろ, ドキドキ) said twice is two repeats, not four; a unit left over on its own counts as one."""
    times = len(re.findall(re.escape(unit), run))
    if not _is_reduplicated_word(unit):
        return unit, times
    words = run.count(unit * 2)
    return (unit * 2 if words else unit), words + (times - 2 * words)


def detect_repetition(text: str, rule: RepetitionRule) -> str | None:
    """Runaway repetition: one character `max_char_run`+ times in a row (」」」」, !!!!, ⋯⋯⋯⋯), or a word or
    phrase of 2..`max_phrase_chars` characters `max_phrase_repeats`+ times back to back (痩せた痩せた痩せた,
    痩せた、痩せた、痩せた).

    An ellipsis (…, ‥, ・・・) is one mark, however NFKC spells it: まさか……の結末 holds two. Repeats are
    counted in words: a reduplicated word (そろそろ, ドキドキ, ちょこちょこ) is one word, so
    そろそろ、そろそろ本気で is emphasis (twice), and ドキドキ、ドキドキ、ドキドキ is a loop (three times)."""
    text = fold_ellipses(_nfkc(text))
    char_run, phrase = _repetition_patterns(rule.max_char_run, rule.max_phrase_repeats, rule.max_phrase_chars)
    m = char_run.search(text)
    if m:
        return f"'{m.group(1)}' repeated {len(m.group(0))} times"
    # A phrase said `max_phrase_repeats` times repeats each of its characters that often: most titles
    # have no such character, and the phrase pattern (the costly one) need not run.
    if len(text) < 2 * rule.max_phrase_repeats or Counter(text).most_common(1)[0][1] < rule.max_phrase_repeats:
        return None
    for m in phrase.finditer(text):
        if m.group(1).isdigit():
            continue
        word, times = _repeats(m.group(1), m.group(0))
        if times >= rule.max_phrase_repeats:
            return f"'{word}' repeated {times} times"
    return None


# ---------------------------------------------------------------- placeholder
# What an editor, a template or a writer leaves where a title belongs until someone writes one. Besides the
# configured whole-text placeholders (clean.placeholders), a text is a placeholder when every word of it is
# scaffolding and at least one word names the missing text or says the text is not real:
#   names the field    タイトル, 見出し, 件名, title, heading, ...       (※タイトルを入力, Your title here)
#   not real           テスト, サンプル, ダミー, 仮, 無題, new, untitled, hoge, lorem, ... (テスト投稿, New Post)
#   fill-in marks      ○○○, ＿＿＿, ××, ＊＊ (a run of one mark)           (タイトル：○○○)
#   a counter          a number after a document word                    (Document1, 記事 3)
#   new + document     and nothing else                                   (新規投稿, New Post)
# Scaffolding is what such texts are made of besides: document words (記事, ブログ, post, page), prompts to
# the writer (ここに, 入力してください, enter, here, add a), particles, auxiliaries, symbols and numbers.
# A real title always says something beyond them (タイトルの付け方で迷った話, テスト勉強の記録, 初投稿).
_FIELD_WORDS = frozenset(
    "タイトル 題名 表題 見出し 件名 題 名前 名称 テキスト 本文 文章 キャプション 記事名 プレースホルダー プレースホルダ "
    "title titles heading headline subject caption text name placeholder".split())
_NOT_REAL_WORDS = frozenset(
    "テスト サンプル ダミー 仮 仮題 未定 未設定 未入力 無題 なし 無し 下書き ほげ ふが ぴよ "
    "test testing sample example dummy draft untitled todo tbd fixme wip none null undefined "
    "hoge hogehoge fuga piyo foo bar baz qux foobar lorem ipsum".split())
# "New" says a document is unwritten only when nothing but a document word follows (新規投稿, New Post; not
# 新しい記事を書きました, which tells of one).
_NEW_WORDS = frozenset("新規 新しい new".split())
_DOC_WORDS = frozenset(
    "記事 ブログ 投稿 ページ ドキュメント 文書 ファイル ノート エントリー エントリ 原稿 作品 コピー "
    "post page article blog document doc entry file story item copy note".split())
_PROMPT_WORDS = frozenset(
    "入力 記入 記載 書く 書い 書き 書いて 入れる 入れ 入れて ここ こちら ください 下さい する し して します お 願い "
    "追加 設定 変更 編集 挿入 クリック 例 必須 任意 未 "
    "enter type add insert write put your here click to the a an please edit change me goes this is my of for "
    "required optional e.g ex".split())
_VOCABULARY = re.compile("|".join(sorted(map(re.escape, _FIELD_WORDS | _NOT_REAL_WORDS | _NEW_WORDS | _DOC_WORDS),
                                         key=len, reverse=True)))
# Particles, auxiliaries, symbols, white space: the glue of a sentence, never its content.
_GLUE_POS = frozenset({"助詞", "助動詞", "補助記号", "記号", "空白"})
_FILL_IN = re.compile(r"([○●◯〇□■△▲▽▼◇◆☆★×✕*_?？＿])\1+")
_DUMMY_TEXT = re.compile(r"(?i)^(?:lorem ipsum|あのイーハトーヴォ)")
_QUOTES = "「」『』【】()[]{}<>〈〉《》\"'`“”‘’ "
_END_PUNCT = "!?.。！？、,:：;；~〜-ー"
_PLACEHOLDER_MAX_CHARS = 64  # longer than any editor's default name or prompt: the rest is text
# Template slots: {title}, {{ page.title }}, ${title}, %(title)s, {% block %}, <%= title %>, %TITLE%,
# __TITLE__, [[title]], and a field word in ASCII brackets anywhere (<title>, [タイトル]).
_TEMPLATE = re.compile(
    r"\{\{?\s*[\w.\-]+\s*\}?\}|\{\{[^{}]+\}\}|\$\{[^}]*\}|%\([a-z_]+\)s|\{%.*?%\}|<%=?.*?%>|%[A-Z_]{2,}[A-Z0-9_]*%|"
    r"__[A-Z][A-Z0-9_]*__|\[\[[\w .\-]+\]\]|"
    r"[<\[{]\s*(?:" + "|".join(sorted(_FIELD_WORDS, key=len, reverse=True)) + r")\s*[>\]}]", re.IGNORECASE)
_TODO_PREFIX = re.compile(r"(?i)^(?:todo|tbd|fixme|xxx)\b")


@lru_cache(maxsize=16)
def _placeholder_set(placeholders: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_placeholder_key(p) for p in placeholders)


def _placeholder_key(text: str) -> str:
    return _nfkc(text).casefold().strip(_QUOTES).strip()


def _listed(text: str, placeholders: list[str] | tuple[str, ...]) -> bool:
    listed = _placeholder_set(tuple(placeholders))
    key = _placeholder_key(text)
    return bool(key) and (key in listed or key.rstrip(_END_PUNCT).strip(_QUOTES) in listed)


@lru_cache(maxsize=65536)
def _scaffolding_only(text: str) -> str | None:
    """What makes `text` a placeholder by the rule above ("field word 'タイトル'"), or None."""
    key = _placeholder_key(text)
    if not key or len(key) > _PLACEHOLDER_MAX_CHARS:
        return None
    fill_in = _FILL_IN.search(key)
    if not fill_in and not _VOCABULARY.search(key):
        return None  # no word the rule needs: skip the analyzer
    core = f"fill-in marks '{fill_in.group(0)}'" if fill_in else None
    new = doc = counter = prompt = False
    for word in _tagger()(key):
        surface, pos = word.surface, word.feature.pos1
        if surface in _FIELD_WORDS or surface in _NOT_REAL_WORDS:
            core = core or f"{'field' if surface in _FIELD_WORDS else 'not-real'} word '{surface}'"
        elif surface in _NEW_WORDS:
            new = True
        elif surface in _DOC_WORDS:
            doc = True
        elif word.feature.pos2 == "数詞":
            counter = counter or doc
        elif surface in _PROMPT_WORDS:
            prompt = True
        elif pos not in _GLUE_POS:
            return None
    if core is None and doc and counter:
        core = "a document word with a counter"
    if core is None and new and doc and not prompt:
        core = "an editor's name for a new document"
    return core


def is_placeholder(text: str, placeholders: list[str] | tuple[str, ...]) -> bool:
    """The whole text is a placeholder: one of `placeholders` (after NFKC, case folding, stripping
    quotes/brackets), scaffolding around a field or not-real word (see above), or dummy text (Lorem ipsum).
    The check the clean stage applies to prompts, where {braces} may be an article's own code."""
    if _DUMMY_TEXT.match(_placeholder_key(text[:64])):
        return True
    if len(text) > _PLACEHOLDER_MAX_CHARS:  # longer than any placeholder: skip normalizing a whole article
        return False
    return _listed(text, placeholders) or _scaffolding_only(text) is not None


def detect_placeholder(text: str, placeholders: list[str] | tuple[str, ...]) -> str | None:
    """The whole text is a placeholder (is_placeholder: 「タイトル未定」, NULL, ※タイトルを入力, 記事タイトル,
    New Post, Untitled-3, ○○○, Lorem ipsum ...), starts with TODO/TBD/FIXME, or holds an unfilled template
    slot anywhere ({title}, {{ title }}, ${title}, <title>, [タイトル])."""
    shown = text.strip()[:40]
    if _listed(text, placeholders):
        return f"placeholder '{shown}'"
    key = _placeholder_key(text)
    if _TODO_PREFIX.match(key):
        return f"placeholder '{shown}'"
    if _DUMMY_TEXT.match(key):
        return f"dummy text '{shown}'"
    m = _TEMPLATE.search(_nfkc(text))
    if m:
        return f"unfilled template variable {m.group(0)}"
    why = _scaffolding_only(text)
    if why:
        return f"placeholder '{shown}' ({why})"
    return None


# ---------------------------------------------------------------- incomplete
# Not # (C#), + (C++) or - : they end real titles.
_DANGLING_END = "|/・、,¦‖:"
_DANGLING_START = "|/、,¦‖"


# "(笑" / "（泣" left open at the end is a written laugh or sob, not a cut title.
_NETSPEAK_PAREN = re.compile(r"\((?:笑|泣|汗|爆笑|苦笑)\)?$")


def detect_incomplete(text: str, rule_cfg: object = None) -> str | None:
    """A title that is not whole: empty or white space, an unclosed bracket (【保存版 ...), a closing
    bracket with no opener (」」), a dangling separator at either end (転職して半年｜), or no letters,
    kana, kanji or digits at all (・・・). rule_cfg is unused."""
    text = _nfkc(text)
    if not text:
        return "empty"
    if not any(ch.isalnum() for ch in text):
        return "no words, only symbols"
    stack: list[str] = []
    for ch in _NETSPEAK_PAREN.sub("", text) if _HAS_BRACKET.search(text) else "":
        if ch in _OPEN_TO_CLOSE:
            stack.append(ch)
        elif ch in _CLOSE_TO_OPEN:
            if not stack:
                return f"'{ch}' closes nothing"
            if stack[-1] != _CLOSE_TO_OPEN[ch]:
                return f"'{stack[-1]}' closed by '{ch}'"
            stack.pop()
    if stack:
        return f"unclosed '{stack[-1]}'"
    if text[-1] in _DANGLING_END:
        return f"ends with '{text[-1]}'"
    if text[0] in _DANGLING_START:
        return f"starts with '{text[0]}'"
    return None


def is_reduplicated_word(unit: str) -> bool:
    """True when some rotation of `unit`, said twice, is one dictionary word (そろ, ドキ, ょこち of ちょこちょこ):
    a loop detector that finds the unit at any offset treats it as half a word, not a phrase."""
    return any(_is_reduplicated_word(unit[i:] + unit[:i]) for i in range(len(unit)))
