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
    detect_repetition(text, cfg.clean.repetition)     runaway repetition: 」」」」, 痩せた痩せた痩せた
    detect_placeholder(text, cfg.clean.placeholders)  null, TODO, タイトル未定, {title} ...
    detect_incomplete(text, None)                     empty, unclosed 【「（ or stray 」, dangling separator,
                                                      no letters at all. Title-level checks: a body cut
                                                      mid-sentence is not a title problem, so the clean
                                                      stage applies this one to completions only.

Aliases for other stages, same signature: ``tag_list``/``find_tag_list``, ``repetition``/``find_repetition``,
``url_or_html``, ``placeholder``, ``incomplete`` (and ``find_`` forms of each). ``find_contamination(text, cfg.clean)`` runs them all in the clean stage's order and
returns ``(rule_name, detail)`` for the first that fires, or ``None``.

The tag-list detector tells a title's parts from tags with a morphological analyzer (fugashi + unidic-lite):
a tag is a short run of nouns, affixes and symbols; a segment with a particle, an auxiliary, a conjugated
verb or adjective, or sentence punctuation is part of a sentence, so the row is a title, not a tag list.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.common.config import CleanSection, RepetitionRule, TagListRule

__all__ = [
    "detect_tag_list", "detect_url_or_html", "detect_repetition", "detect_placeholder", "detect_incomplete",
    "tag_list", "url_or_html", "repetition", "placeholder", "incomplete",
    "find_tag_list", "find_url_or_html", "find_repetition", "find_placeholder", "find_incomplete",
    "CONTAMINATION_RULES", "find_contamination",
]


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


# ---------------------------------------------------------------- brackets (shared by tag_list, incomplete)
# After NFKC: （ -> (, ［ -> [, ｛ -> {, ＜ -> <; the Japanese corner/lenticular brackets stay as they are.
_OPEN_TO_CLOSE = {"【": "】", "「": "」", "『": "』", "(": ")", "[": "]", "{": "}", "〈": "〉", "《": "》",
                  "〔": "〕", "〖": "〗", "〘": "〙", "“": "”", "‘": "’"}
_CLOSE_TO_OPEN = {v: k for k, v in _OPEN_TO_CLOSE.items()}


# ---------------------------------------------------------------- tag list
# List separators after NFKC (｜ -> |, ／ -> /, ， -> ,, ･ -> ・). ¦ and ‖ show up in scraped titles too.
_LIST_SEPARATORS = "|/・、,¦‖"
_STRUCTURAL_SEPARATORS = "|/,¦‖"  # not Japanese sentence punctuation: tags tacked onto a title use these
_PAIR_SEPARATORS = ",/"  # two bare nouns joined by these are a list; with ｜ they are title + subtitle
_SENTENCE_PUNCT = re.compile(r"[。!?！？…]|\.\.\.")
_HASHTAG = re.compile(r"(?<![A-Za-z0-9_&])[#♯]([^\s#♯|/,、]+)")
_KATAKANA_WORD = re.compile(r"^[\u30a0-\u30ffー]+$")
_DIGIT = re.compile(r"\d")
# POS (unidic) that make a segment part of a sentence rather than a tag.
_PREDICATE_POS = {"助詞", "助動詞", "形容詞", "副詞", "連体詞", "接続詞"}


@lru_cache(maxsize=1)
def _tagger():
    try:
        import fugashi
    except ImportError as exc:  # pragma: no cover - the pinned requirements include it
        from components.common.errors import ConfigError

        raise ConfigError("the tag_list detector needs fugashi and unidic-lite (pip install -r requirements/base.txt)") from exc
    return fugashi.Tagger()


@lru_cache(maxsize=65536)
def _is_phrase(segment: str) -> bool:
    """True when the segment reads as (part of) a sentence: a particle, an auxiliary, an adjective or
    adverb, or a verb that is not in its nominal (連用形) form, e.g. 読む, 働いてみた, 持たない暮らし.
    Nouns, affixes, symbols and nominal verbs (振り返り, 書き方, おすすめ) make a tag."""
    if _SENTENCE_PUNCT.search(segment):
        return True
    for word in _tagger()(segment):
        pos = word.feature.pos1
        if pos in _PREDICATE_POS:
            return True
        if pos == "動詞" and not str(word.feature.cForm).startswith("連用形"):
            return True
    return False


def _top_level_split(text: str, separators: str) -> tuple[list[str], list[str]]:
    """Splits at separators outside brackets (「読む・書く」 is one piece). Returns (segments, separators used).
    / and , between digits (3/15, 1,000) are not separators."""
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
    return [s.strip() for s in segments], used


def _segments(text: str) -> tuple[list[str], list[str]]:
    segments, used = _top_level_split(text, _LIST_SEPARATORS)
    if "・" in used:
        # ワーク・ライフ・バランス, ジョン・スミス: katakana joined by ・ is one loanword or name, not a list.
        dot_pieces = _top_level_split(text, "・")[0]
        if all(_KATAKANA_WORD.match(p) for p in dot_pieces if p):
            segments, used = _top_level_split(text, _LIST_SEPARATORS.replace("・", ""))
    segments = [s for s in segments if s]
    if len(segments) < 2:
        # Space-separated keywords (節約 家計簿 貯金). Only spaces between two Japanese characters count,
        # so "iPhone 15 Pro レビュー" stays one segment.
        spaced = [s for s in re.split(r"(?<=[^\x00-\x7f])\s+(?=[^\x00-\x7f])", text) if s.strip()]
        if len(spaced) >= 2:
            return [s.strip() for s in spaced], [" "] * (len(spaced) - 1)
    return segments, used


def _is_tag(segment: str, rule: TagListRule) -> bool:
    return 0 < len(segment) <= rule.max_segment_chars and not _is_phrase(segment)


def detect_tag_list(text: str, rule: TagListRule) -> str | None:
    """Several short noun segments joined by list separators, or hashtags.

    Fires on 自己紹介｜子育て｜ワーママ｜30代, 節約, 家計簿, 貯金, #副業 #在宅ワーク, 読書・勉強・資格, and on a
    title with tags tacked on (在宅で月5万円稼いだ話｜副業｜主婦｜在宅). Keeps 転職して半年｜年収より大事だったこと,
    【保存版】家計簿アプリ3つを比べてみた, 東京、大阪、福岡。3都市で働いてみた, ワーク・ライフ・バランスって何だろう.
    """
    text = _URL.sub(" ", _nfkc(text)).strip()  # a URL's slashes are not list separators
    if not text:
        return None
    hashtags = [t for t in _HASHTAG.findall(text) if not t.isdigit()]
    if hashtags:
        rest = _HASHTAG.sub("", text)
        if len(hashtags) >= rule.min_hashtags:
            return f"{len(hashtags)} hashtags"
        if not re.sub(r"[\s|/,、・]", "", rest):
            return "only hashtags"
    groups = re.findall(r"【[^】]*】|\[[^\]]*\]", text)
    if len(groups) >= 2 and not re.sub(r"【[^】]*】|\[[^\]]*\]|\s", "", text):
        return f"{len(groups)} bracketed tags and nothing else"

    segments, used = _segments(text)
    if len(segments) < 2:
        return None
    sep = max(set(used), key=used.count)
    tags = [s for s in segments if _is_tag(s, rule)]
    if len(tags) == len(segments) and len(segments) >= rule.min_segments:
        return f"{len(segments)} short segments joined by '{sep}'"
    if len(segments) == 2 and len(tags) == 2 and set(used) <= set(_PAIR_SEPARATORS):
        return f"2 bare nouns joined by '{sep}'"
    structural = [u for u in used if u in _STRUCTURAL_SEPARATORS]
    if structural and len(tags) >= rule.min_segments and len(segments) - len(tags) == 1:
        # 在宅ワークで月5万円稼いだ話｜副業｜在宅｜主婦: a title followed (or preceded) by a tag list.
        if _tags_are_contiguous(segments, tags):
            return f"title with {len(tags)} tags joined by '{max(set(structural), key=structural.count)}'"
    return None


def _tags_are_contiguous(segments: list[str], tags: list[str]) -> bool:
    """The one non-tag segment sits at either end: tags before or after a title, not around it."""
    return segments[0] not in tags or segments[-1] not in tags


# ---------------------------------------------------------------- URL / HTML / Markdown
_URL = re.compile(r"(?i)\b(?:https?|ftp)://\S+|\bwww\.[a-z0-9-]+(?:\.[a-z0-9-]+)+\S*")
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
_REPEAT_GAP = r"[\s、,・!?！？]*"


@lru_cache(maxsize=16)
def _repetition_patterns(max_char_run: int, max_phrase_repeats: int, max_phrase_chars: int):
    # Digits are excluded from character runs: 1000000円 is a number, not a loop.
    char_run = re.compile(rf"([^\d\s])\1{{{max_char_run - 1},}}")
    phrase = re.compile(rf"([^\s、,・!?！？]{{2,{max_phrase_chars}}}?)(?:{_REPEAT_GAP}\1){{{max_phrase_repeats - 1},}}")
    return char_run, phrase


def detect_repetition(text: str, rule: RepetitionRule) -> str | None:
    """Runaway repetition: one character `max_char_run`+ times in a row (」」」」, !!!!), or a phrase of
    2..`max_phrase_chars` characters `max_phrase_repeats`+ times back to back (痩せた痩せた痩せた,
    痩せた、痩せた、痩せた)."""
    text = _nfkc(text)
    char_run, phrase = _repetition_patterns(rule.max_char_run, rule.max_phrase_repeats, rule.max_phrase_chars)
    m = char_run.search(text)
    if m:
        return f"'{m.group(1)}' repeated {len(m.group(0))} times"
    m = phrase.search(text)
    if m and not m.group(1).isdigit():
        times = len(re.findall(re.escape(m.group(1)), m.group(0)))
        return f"'{m.group(1)}' repeated {times} times"
    return None


# ---------------------------------------------------------------- placeholder
_QUOTES = "「」『』【】()[]{}<>〈〉《》\"'`“”‘’ "
_TEMPLATE = re.compile(r"\{\{?\s*[\w.\-]+\s*\}?\}|\$\{[^}]*\}|%\([a-z_]+\)s|<(?:title|タイトル)>", re.IGNORECASE)
_TODO_PREFIX = re.compile(r"(?i)^(?:todo|tbd|fixme|xxx)\b")


@lru_cache(maxsize=16)
def _placeholder_set(placeholders: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_placeholder_key(p) for p in placeholders)


def _placeholder_key(text: str) -> str:
    return _nfkc(text).casefold().strip(_QUOTES).strip()


def detect_placeholder(text: str, placeholders: list[str] | tuple[str, ...]) -> str | None:
    """The whole text is a placeholder from `placeholders` (compared after NFKC, case folding and
    stripping quotes/brackets, so 「タイトル未定」 and NULL match), starts with TODO/TBD/FIXME, or holds
    an unfilled template variable ({title}, {{ title }}, ${title})."""
    key = _placeholder_key(text)
    if key and key in _placeholder_set(tuple(placeholders)):
        return f"placeholder '{text.strip()[:40]}'"
    if _TODO_PREFIX.match(key):
        return f"placeholder '{text.strip()[:40]}'"
    m = _TEMPLATE.search(_nfkc(text))
    if m:
        return f"unfilled template variable {m.group(0)}"
    return None


# ---------------------------------------------------------------- incomplete
# Not # (C#), + (C++) or - : they end real titles.
_DANGLING_END = "|/・、,¦‖:"
_DANGLING_START = "|/、,¦‖"


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
    for ch in text:
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


# ---------------------------------------------------------------- all together
# The clean stage's contamination rules, in the order it applies them (first match is the reason).
CONTAMINATION_RULES = ("url_or_html", "tag_list", "repetition", "incomplete")


def find_contamination(text: str, clean: CleanSection) -> tuple[str, str] | None:
    """(rule, detail) of the first contamination rule a completion breaks, or None when it is clean.
    Placeholders count as `incomplete`, as the issue lists them."""
    if detail := detect_url_or_html(text):
        return "url_or_html", detail
    if detail := detect_tag_list(text, clean.tag_list):
        return "tag_list", detail
    if detail := detect_repetition(text, clean.repetition):
        return "repetition", detail
    if detail := detect_placeholder(text, clean.placeholders) or detect_incomplete(text):
        return "incomplete", detail
    return None


tag_list = find_tag_list = detect_tag_list
url_or_html = find_url_or_html = detect_url_or_html
repetition = find_repetition = detect_repetition
placeholder = find_placeholder = detect_placeholder
incomplete = find_incomplete = detect_incomplete
