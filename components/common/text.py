"""Japanese text normalization shared by every stage that compares or measures text."""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u3000\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def has_control_chars(text: str) -> bool:
    return bool(_CONTROL.search(text))


def normalize(text: str) -> str:
    """NFKC (full-width ASCII to half-width, half-width kana to full-width), control characters and
    zero-width marks removed, runs of spaces folded to one, line ends unified, outer space stripped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub("", text)
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
