"""Japanese text normalization shared by every stage that compares or measures text."""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029]")
# Invisible characters: Unicode's format characters (category Cf: bidi embeddings, overrides and isolates,
# soft hyphen, zero-width space and joiners, word joiner, BOM, interlinear annotation, tag characters) and
# the other Default_Ignorable_Code_Points (Hangul fillers, combining grapheme joiner, Khmer inherent vowels).
# They render as nothing, so in a title or an article they can only hide text (U+202E shows a reader a
# reversed string; tag characters smuggle ASCII past one) or split what should match (ソフト\u00adハイフン
# is not ソフトハイフン to a duplicate check). Kept, because they change what is seen: variation selectors
# (FE00-FE0F, E0100-E01EF, Mongolian 180B-180D/180F) pick a glyph (the red heart emoji; a kanji's variant in a name, 葛 + U+E0100); and see _EMOJI_PARTS.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff0-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e00ff\U000e01f0-\U000e0fff]")
# ZWJ between two emoji makes one emoji of them (👨\u200d💻 is a technologist, not a man and a laptop), and tag
# characters between 🏴 and the cancel tag U+E007F spell a subdivision flag (🏴 g b s c t = Scotland): inside
# those sequences they are kept; anywhere else they are removed like any other invisible character.
_EMOJI = ("[\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u21aa\u231a-\u23ff\u24c2\u25aa-\u27bf\u2934\u2935"
          "\u2b05-\u2b55\u3030\u303d\u3297\u3299\U0001f000-\U0001faff][\ufe0f\U0001f3fb-\U0001f3ff]?")
_EMOJI_PARTS = re.compile(f"{_EMOJI}(?:\u200d{_EMOJI})+|\U0001f3f4[\U000e0020-\U000e007e]{{1,8}}\U000e007f")
_SPACES = re.compile(r"[ \t\u3000\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def has_control_chars(text: str) -> bool:
    return bool(_CONTROL.search(text))


def remove_invisible(text: str) -> str:
    """`text` without invisible format characters (see _INVISIBLE), emoji sequences kept whole."""
    if not _INVISIBLE.search(text):
        return text
    kept, start = [], 0
    for m in _EMOJI_PARTS.finditer(text):
        kept += [_INVISIBLE.sub("", text[start : m.start()]), m.group(0)]
        start = m.end()
    return "".join(kept) + _INVISIBLE.sub("", text[start:])


def normalize(text: str) -> str:
    """NFKC (full-width ASCII to half-width, half-width kana to full-width), control characters and
    invisible format characters removed (bidi overrides, soft hyphens, zero-width marks; not the joiners
    inside an emoji), runs of spaces folded to one, line ends unified, outer space stripped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFKC", text)
    text = remove_invisible(_CONTROL.sub("", text))
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def dedup_key(text: str) -> str:
    """What two texts must share to be exact duplicates: normalized, case-folded, all white space removed."""
    return re.sub(r"\s+", "", normalize(text)).casefold()


def char_ngrams(text: str, n: int) -> set[str]:
    compact = re.sub(r"\s+", "", text)
    if len(compact) <= n:
        return {compact} if compact else set()
    return {compact[i : i + n] for i in range(len(compact) - n + 1)}
