"""Noise: text that is not language at all, where a title belongs. `detect_noise(text, rule_cfg=None)`
returns what gave it away, or None. Each check is one way bytes or keys stop being words:

    replacement   U+FFFD: a decoder already met bytes it could not read (the text went through the
                  wrong encoding once)
    private use   U+E000-F8FF and the private planes: a font's own glyphs, meaningless anywhere else
    mojibake      UTF-8 read as Latin-1/cp1252 (ã\\x81\\x82, ã‚ã‚Š, Ã©), UTF-8 read as Shift_JIS
                  (縺ゅ, 繧繝), Shift_JIS read as cp1252 (‚±‚ñ): the byte patterns those mistakes leave
    escapes       code points or bytes written out (\\u3042\\u3044, %E3%81%82, \\xe3\\x81): text that was
                  serialized twice
    blob          a base64 or hex token (a hash, a key, an encoded payload): long, no word structure
    keyboard mash neighbouring keys of one keyboard row in order (asdf, lkjh, qwert), or a long
                  run of one row's keys with almost no vowels (dfjskdlfj)
    no letters    no letter of any script (2024/01/01, 12345, ★☆★☆), or a letter or two amid twice as many
                  symbols ((*´ω`*), m(_ _)m)

Texts with no characters at all, or only symbols and no digits, are `incomplete`'s business (checked before).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_REPLACEMENT = "\ufffd"
_PRIVATE_USE = re.compile("[\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]")

# cp1252's characters for bytes 0x80-0x9f, then Latin-1 for 0xa0-0xbf: how a UTF-8 continuation byte
# looks after a Latin-1/cp1252 decode. Undefined cp1252 bytes (0x81, 0x8d, 0x8f, 0x90, 0x9d) stay C1.
_CP1252_HIGH = bytes(range(0x80, 0xA0)).decode("cp1252", "ignore")
_CONTINUATION = "[" + re.escape(_CP1252_HIGH) + "\u0080-\u00bf]"
# A 3-byte UTF-8 sequence (kana, kanji: lead bytes e3-e9) or a 2-byte one (accented Latin: c3, c2) read
# one byte per character.
_LATIN1_MOJIBAKE = re.compile(f"[\u00e0-\u00ef]{_CONTINUATION}{{2}}|[\u00c2-\u00df]{_CONTINUATION}")
# Kana and CJK punctuation in UTF-8 start e3 80-83, which Shift_JIS reads as these four rare kanji.
_SJIS_MOJIBAKE = re.compile("[縲縺繧繝]")
# Shift_JIS kana (lead bytes 82, 83) read as cp1252: ‚ or ƒ, each followed by a Latin-1 character.
_SJIS_AS_CP1252 = re.compile("(?:[\u201a\u0192][\u00a0-\u00ff]){2,}")

_ESCAPES = re.compile(r"(?:\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}|%[0-9a-fA-F]{2}){2,}")

_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-]+")
_HEX = re.compile(r"[0-9a-fA-F]{16,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Real words and model names mix cases and digits in a few places (iPhone15ProMax); random base64 switches
# between upper case, lower case and digits at about 2 of 3 characters.
_BLOB_MIN_CHARS, _PADDED_BLOB_MIN_CHARS, _BLOB_MIN_SWITCH_RATE = 24, 16, 0.5

# Neighbouring keys of one row, in order, this many at once: no English word holds them (checked against
# 260k words: the top row's four-key runs erty and wert are in liberty and strew, hence five there).
_MASH_KEYS = {"qwertyuiop": 5, "asdfghjkl": 4, "zxcvbnm": 4}
_ROWS = tuple(_MASH_KEYS)
_ROW_RUN_MIN_CHARS, _ROW_RUN_MAX_VOWEL_SHARE = 6, 0.25
_VOWELS = set("aeiouy")
_LETTERS = re.compile(r"[a-z]+")
# A kaomoji or a row of marks holds a letter or two ((*´ω`*), m(_ _)m); a word among symbols holds more.
_FEW_LETTERS = 2
# Marks that punctuate or stretch a word (えっ!?!?, 育児…, すごーい) rather than draw a face.
_SENTENCE_MARKS = set("!?。、,.…‥・ー〜~-")


@lru_cache(maxsize=1)
def _mash_pattern() -> re.Pattern:
    grams = {row[i : i + n] for row, n in _MASH_KEYS.items() for i in range(len(row) - n + 1)}
    grams |= {g[::-1] for g in grams}
    return re.compile("|".join(sorted(grams)))


def detect_noise(text: str, rule_cfg: object = None) -> str | None:
    """Replacement characters, private-use characters, mojibake, escaped bytes, base64/hex blobs, keyboard
    mash, or no letters at all (rule_cfg is unused)."""
    if not text.strip():
        return None
    if _REPLACEMENT in text:
        return "replacement character U+FFFD (decoded with the wrong encoding)"
    m = _PRIVATE_USE.search(text)
    if m:
        return f"private-use character U+{ord(m.group(0)):04X}"
    found = _mojibake(text)
    if found:
        return found
    m = _ESCAPES.search(text)
    if m:
        return f"escaped bytes {m.group(0)[:24]}"
    folded = unicodedata.normalize("NFKC", text)
    for token in _TOKEN.findall(folded):
        if _is_blob(token):
            return f"encoded blob {token[:24]}{'...' if len(token) > 24 else ''}"
    mash = _keyboard_mash(folded.casefold())
    if mash:
        return f"keyboard mash '{mash}'"
    return _letterless(folded)


def _mojibake(text: str) -> str | None:
    m = next((m for m in _LATIN1_MOJIBAKE.finditer(text) if _decodes_to_text(m.group(0))), None)
    if m:
        return f"mojibake {m.group(0)!r} (UTF-8 read as Latin-1)"
    m = _SJIS_AS_CP1252.search(text)
    if m:
        return f"mojibake {m.group(0)[:12]!r} (Shift_JIS read as cp1252)"
    hits = _SJIS_MOJIBAKE.findall(text)
    if len(hits) >= 2:
        return f"mojibake {''.join(hits[:4])!r}... (UTF-8 read as Shift_JIS)"
    return None


def _decodes_to_text(chars: str) -> bool:
    """The characters, turned back into the bytes a Latin-1/cp1252 decode made of them, are UTF-8 for an
    accented Latin letter (Ã© -> é) or a kana, kanji or CJK mark (ã\x81\x82 -> あ): the signature of that
    mistake, not an accented word (Café, São) nor a sign before a quote (AI×“働き方”, which would be Hebrew)."""
    try:
        decoded = bytes(ord(c) if ord(c) < 0x100 else _cp1252_byte(c) for c in chars).decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        return False
    return all(("\u00c0" <= c <= "\u024f" or c >= "\u2000") and unicodedata.category(c)[0] in "LNPS" for c in decoded)


def _cp1252_byte(char: str) -> int:
    return char.encode("cp1252")[0]


def _is_blob(token: str) -> bool:
    if _HEX.fullmatch(token):
        return sum(c.isdigit() for c in token) >= 3 and sum(c.isalpha() for c in token) >= 2
    body = token.rstrip("=")
    padded = body != token
    if len(body) < (_PADDED_BLOB_MIN_CHARS if padded else _BLOB_MIN_CHARS):
        return False
    if not (any(c.isupper() for c in body) and any(c.islower() for c in body) and any(c.isdigit() for c in body)):
        return False
    kinds = ["u" if c.isupper() else "l" if c.islower() else "d" if c.isdigit() else "s" for c in body]
    switches = sum(a != b for a, b in zip(kinds, kinds[1:], strict=False))
    return switches / (len(kinds) - 1) >= _BLOB_MIN_SWITCH_RATE


def _keyboard_mash(folded: str) -> str | None:
    for word in _LETTERS.findall(folded):
        m = _mash_pattern().search(word)
        if m:
            return word
        if len(word) >= _ROW_RUN_MIN_CHARS and any(set(word) <= set(row) for row in _ROWS):
            vowels = sum(c in _VOWELS for c in word)
            if vowels / len(word) < _ROW_RUN_MAX_VOWEL_SHARE:
                return word
    return None


def _letterless(text: str) -> str | None:
    kinds = [unicodedata.category(c)[0] for c in text if not c.isspace() and c not in _SENTENCE_MARKS]
    letters, symbols = kinds.count("L"), kinds.count("S") + kinds.count("P")
    if letters == 0:
        return "no letters"
    if letters <= _FEW_LETTERS and symbols >= 2 * letters:
        return f"{letters} letter(s) among {symbols} symbols"
    return None
