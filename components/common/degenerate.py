"""Is a model's output a real answer, or one of the ways a fine-tuned model breaks?

    flag_output(output, prompt=None, rules=OutputRules(), template=None) -> list[str]

returns the kinds below that apply, in this order; an empty list means the output looks like a real answer.

    empty            nothing but white space, punctuation, special-token markup, a lone character (の),
                     or a placeholder (無題, タイトル未定, {title})
    repetition       a runaway loop: 」」」」, 「」「」「」, の の の, ワーママワーママワーママ, a phrase said
                     three times, or a long phrase (a whole title) said twice
    tag_list         a list of tags instead of a title: 自己紹介｜子育て｜ワーママ｜30代, #朝活 #読書
                     (the clean stage's own detector and rule, so outputs and training data are judged alike)
    prompt_copy      text lifted from the prompt instead of a title: the opening of the article (or of the
                     instruction) cut off before its first sentence ends, run on past it, or a whole first
                     sentence written as prose (with its 。 or clauses joined by 、); or mostly long runs of
                     the prompt's text, not merely a shared word; or only the prompt template's own text
    over_length      longer than hf_check.degenerate.max_output_chars: the model did not stop
    broken_text      bytes that never became text: U+FFFD (a byte-level tokenizer's answer cut in the middle
                     of a character), control characters, UTF-8 read as Latin-1/cp1252 or as a byte-level
                     BPE's byte alphabet (ã‚¿ã‚¤, ãĤ¿ãĤ¤)
    template_markup  the prompt format leaking into the answer: special-token text (<|im_end|>, <|eot_id|>,
                     </s>, <start_of_turn>, [INST], <<SYS>>), a Markdown header (### タイトル), a line that is
                     only a role name (assistant, model:) or a line of train.prompt_template

Natural titles stay unflagged: a single separator (ピアノ再開｜40歳の挑戦), brackets (【保存版】), a word
said twice for emphasis (ちゃんと、ちゃんと休む), numbers (1000000円), ！！ or ーー, a phrase of the article
(電子ピアノを買って再開した), and a short first sentence taken whole as the title, as writers do
(ベビーカーで電車に乗るのが怖かった, 2 of the 440 sample titles).

broken_text is a kind of its own rather than part of empty or over_length: a title can be whole and still
carry a �, and the fix is in decoding (the token budget, the tokenizer's decoder), not in training.
template_markup is reported even when a real title stands beside it (40歳でピアノを再開<|im_end|>): the
answer as served would show the markup; the other kinds judge the text with the special tokens taken out.
`inspect_output` returns the same kinds with the evidence for each, for reports; `inspect_generation`
adds the verdict on a generation cut off by the token limit.
"""

from __future__ import annotations

import re
import unicodedata

from components.common.detectors import (
    detect_placeholder,
    detect_repetition,
    detect_tag_list,
    fold_ellipses,
    is_reduplicated_word,
)
from components.common.settings.degenerate import DegenerateSection, OutputRules
from components.common.text import normalize

# The built-in rules (the settings' defaults), for callers without a run config.
DEFAULT_RULES = OutputRules()

FLAGS = ("empty", "repetition", "tag_list", "prompt_copy", "over_length", "broken_text", "template_markup")

# Special-token text a decoder can leave behind: <unk>, </s>, <|im_end|>, <|start_header_id|>, <start_of_turn>,
# <｜end▁of▁sentence｜> (NFKC makes its bars |), Llama 2's [INST] and <<SYS>>, BERT's [PAD]. Markup, not an answer.
_SPECIAL_TOKEN = re.compile(r"<</?SYS>>|<\|[^|<>\n]{1,48}\|>|</?[A-Za-z_][A-Za-z0-9_]*>"
                            r"|\[/?(?:INST|SYS|PAD|UNK|CLS|SEP|MASK|EOS|BOS)\]")
# A special token cut off by the token limit (40歳で再開<|im_): no title holds "<|".
_PARTIAL_SPECIAL_TOKEN = re.compile(r"<\|")
# The role names chat templates write before a turn (ChatML, Llama 3, Gemma, Alpaca-style "Human:").
_ROLES = r"(?:system|user|assistant|human|システム|ユーザー|アシスタント"
_ROLE_LINE = re.compile(r"(?i)^\s*" + _ROLES + r"|model)\s*[:：]?\s*$")
_ROLE_LABEL = re.compile(r"(?i)^\s*" + _ROLES + r")\s*[:：]")
# A label a model may put before its answer (タイトル: , Title: ); the opening-copy check looks past it.
_LEADING_LABEL = re.compile(r"^[^:：\s]{1,8}[:：]\s*")
# Markdown headers are how instruction templates mark their sections (### 指示, ### Response:); a title
# never opens with ## and nowhere holds ###. A lone # is a hashtag or a number (#1 会社を辞めた日).
_MARKDOWN_HEADER = re.compile(r"#{3,}|^\s*##(?!#)", re.MULTILINE)
_WHITESPACE = re.compile(r"\s+")


def _is_content(char: str) -> bool:
    """Letters (kana, kanji, Latin) and digits carry meaning; punctuation, brackets and symbols do not."""
    return unicodedata.category(char)[0] in "LN"


def _content_only(text: str) -> str:
    return "".join(c for c in text if _is_content(c))


# NFKC spells the ellipsis … as three dots, which would make まさか…… a run of six; ⋯ survives NFKC as one character.
_ELLIPSES = str.maketrans({"…": "⋯", "‥": "⋯"})


def _strip_markup(text: str) -> str:
    return fold_ellipses(normalize(_SPECIAL_TOKEN.sub("", text).translate(_ELLIPSES)))


def output_chars(output: str) -> int:
    """The length the over_length flag measures: normalized, special-token text left out."""
    return len(_strip_markup(output))


# ---------------------------------------------------------------- broken_text
# U+FFFD is what a decoder writes for bytes that are not UTF-8 (a character cut by the token limit); control
# characters are bytes a decoder passed through; lone surrogates come from bytes escaped rather than decoded.
_UNDECODED = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# A Japanese character is 3 UTF-8 bytes (4 outside the BMP): a lead byte and its continuation bytes.
_WIDE_UTF8 = re.compile(rb"[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
# One wide character spelt by single-byte characters can be a coincidence (é…” reads as 锔); two in a row are not.
_MOJIBAKE_MIN_CHARS = 2
_WIDE_UTF8_MIN_BYTES = 3


def _byte_alphabets() -> dict[str, dict[str, int]]:
    """Character -> byte for the two ways UTF-8 gets shown as single-byte characters: read as cp1252 (Latin-1
    where cp1252 has no character), and GPT-2's byte-level BPE alphabet, which a decoder without the
    ByteLevel step leaves behind. ASCII is left out: those bytes never belong to a Japanese character."""
    latin = {}
    for byte in range(0x80, 0x100):
        try:
            latin[bytes([byte]).decode("cp1252")] = byte
        except UnicodeDecodeError:
            latin[chr(byte)] = byte
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    shifted = [b for b in range(256) if b not in printable]
    gpt2 = {chr(b): b for b in printable if b >= 0x80} | {chr(256 + i): b for i, b in enumerate(shifted) if b >= 0x80}
    return {"cp1252/Latin-1": latin, "a byte-level BPE's byte alphabet": gpt2}


_BYTE_ALPHABETS = _byte_alphabets()


def _mojibake(text: str) -> str | None:
    """Runs of characters that spell UTF-8 bytes of at least two wide characters (タイ as ã‚¿ã‚¤)."""
    for name, alphabet in _BYTE_ALPHABETS.items():
        run: list[str] = []
        for char in [*text, ""]:
            if char in alphabet:
                run.append(char)
                continue
            if len(run) >= _MOJIBAKE_MIN_CHARS * _WIDE_UTF8_MIN_BYTES:
                decoded = "".join(m.decode() for m in _WIDE_UTF8.findall(bytes(alphabet[c] for c in run)))
                if len(decoded) >= _MOJIBAKE_MIN_CHARS:
                    return f"UTF-8 read as {name}: {''.join(run)[:18]!r} is {decoded[:6]!r}"
            run = []
    return None


def broken_text_evidence(output: str) -> str | None:
    """Why `output` holds bytes that never became text, or None."""
    found = _UNDECODED.findall(output)
    if found:
        names = sorted({f"U+{ord(c):04X}" for c in found})
        where = " at the end (cut inside a character)" if output.rstrip().endswith("\ufffd") else ""
        return f"{len(found)} undecoded character(s) {', '.join(names)}{where}: {output[-24:]!r}"
    return _mojibake(output)


# ---------------------------------------------------------------- template_markup
def _template_headers(template: str | None) -> list[str]:
    """Lines of train.prompt_template other than the prompt itself (### 指示, ### タイトル), normalized."""
    return [line for line in template_lines(template) if len(line) >= 2] if template else []


def template_markup_evidence(output: str, template: str | None = None) -> str | None:
    """The prompt format's markup in an answer: special-token text, a Markdown header, a role-name line,
    or a line that begins or ends with a line of the prompt template."""
    raw = unicodedata.normalize("NFKC", output)
    special = _SPECIAL_TOKEN.search(raw)
    if special:
        return f"special-token text {special.group()!r}"
    partial = _PARTIAL_SPECIAL_TOKEN.search(raw)
    if partial:
        return f"the start of a special token: {raw[partial.start() :][:16]!r}"
    header = _MARKDOWN_HEADER.search(raw)
    if header:
        line = raw[raw.rfind("\n", 0, header.start()) + 1 :].split("\n", 1)[0]
        return f"a Markdown header as in instruction templates: {line.strip()!r}"
    headers = _template_headers(template)
    for line in raw.split("\n"):
        if _ROLE_LINE.match(line) or _ROLE_LABEL.match(line):
            return f"a chat role header: {line.strip()!r}"
        line = normalize(line)
        for header_line in headers:
            if line.startswith(header_line) or line.endswith(header_line):
                return f"the prompt template's {header_line!r}"
    return None


def _empty_evidence(text: str, rules: OutputRules) -> str | None:
    if not text:
        return "no text"
    content = _content_only(text)
    if not content:
        return f"no letters or digits: {text!r}"
    if len(content) < rules.degenerate.min_content_chars:
        return f"{len(content)} letter(s), no answer: {text!r}"
    return detect_placeholder(text, rules.placeholders)


def _periodic_loop(text: str, max_unit: int, min_repeats: int, min_char_run: int) -> str | None:
    """The first segment that repeats a unit of 1..max_unit characters back to back often enough.

    A segment is periodic with period L while text[j] == text[j - L]; its span divided by L is the number
    of repeats. A single character needs a run of min_char_run, and digits never count (1000000円). A loop
    the output ends in (cut off by the token limit) counts once it has begun a third copy of its unit:
    ピアノを再開した。ピアノを再開した。ピアノを is a loop, ちゃんと、ちゃんと is emphasis.
    """
    n = len(text)
    for unit in range(1, min(max_unit, n // 2) + 1):
        run = 0
        for j in range(unit, n):
            run = run + 1 if text[j] == text[j - unit] else 0
            if not run:
                continue
            span = run + unit
            if unit == 1:
                if text[j].isdigit():
                    continue
                looping = span >= min_char_run
            else:
                cut_off_in_loop = j == n - 1 and span > 2 * unit
                # A unit said twice can be one word (そろそろ, ちょこちょこ); said twice again it is emphasis.
                redup = text[j - unit + 1 : j + 1].isalpha() and is_reduplicated_word(text[j - unit + 1 : j + 1])
                repeats = min_repeats * (2 if redup else 1)
                looping = span >= repeats * unit or cut_off_in_loop
            segment = text[j - span + 1 : j + 1]
            # A loop of one character seen as a longer unit (ああああ as ああ×2) is judged as a character run.
            if looping and (unit == 1 or len(set(segment)) > 1):
                return segment
    return None


def _repeated_tokens(text: str, min_repeats: int) -> str | None:
    """Space-separated words said over and over: の の の, ピアノ ピアノ ピアノ."""
    words = _WHITESPACE.split(text)
    run = 1
    for i in range(1, len(words)):
        run = run + 1 if words[i] and words[i] == words[i - 1] else 1
        if run >= min_repeats:
            return " ".join(words[i - run + 1 : i + 1])
    return None


def _recurring_phrase(text: str, length: int, min_count: int) -> str | None:
    """A phrase of `length` characters occurring `min_count` times without overlap, anywhere in the text."""
    for i in range(len(text) - length * min_count + 1):
        phrase = text[i : i + length]
        count, pos = 1, i + length
        while count < min_count:
            pos = text.find(phrase, pos)
            if pos < 0:
                break
            count, pos = count + 1, pos + length
        if count >= min_count:
            return phrase
    return None


def _repetition_evidence(text: str, cfg: DegenerateSection) -> str | None:
    rule = cfg.repetition
    text = text[: cfg.max_scan_chars]
    shared = detect_repetition(text, rule)
    if shared:
        return shared
    # The clean stage's detector reads titles as written; model loops also run through spaces (の の の の)
    # and punctuation (ワーママ｜ワーママ｜ワーママ), so look again with those taken out.
    compact = _WHITESPACE.sub("", text)
    content = _content_only(compact)
    loop_args = (rule.max_phrase_chars, rule.max_phrase_repeats, rule.max_char_run)
    for candidate in (compact, content):
        segment = _periodic_loop(candidate, *loop_args)
        if segment:
            return f"loop: {segment!r}"
    words = _repeated_tokens(text, rule.max_phrase_repeats)
    if words:
        return f"same word over and over: {words!r}"
    phrase = _recurring_phrase(content, cfg.recurring_phrase_chars, rule.max_phrase_repeats)
    if phrase:
        return f"phrase recurs {rule.max_phrase_repeats}+ times: {phrase!r}"
    phrase = _recurring_phrase(content, cfg.long_phrase_chars, 2)
    if phrase:
        return f"long phrase said twice: {phrase!r}"
    return None


def copied_from_prompt(output: str, prompt: str, ngram: int) -> tuple[int, int, str]:
    """(characters of the output inside a shared run of >= ngram characters, output length, the longest
    stretch of the output found verbatim in the prompt).

    White space is ignored on both sides; both are normalized (NFKC), so width differences do not hide a copy.
    Two phrases from different places of the prompt placed side by side cover the output but are two runs:
    老後2000万円 + が、ようやく自分事になっ is a title recombining the body, not a 19-character copy.
    """
    out = _WHITESPACE.sub("", normalize(output))
    src = _WHITESPACE.sub("", normalize(prompt))
    if len(out) < ngram or len(src) < ngram:
        return 0, len(out), ""
    grams = {src[i : i + ngram] for i in range(len(src) - ngram + 1)}
    covered = [False] * len(out)
    for i in range(len(out) - ngram + 1):
        if out[i : i + ngram] in grams:
            covered[i : i + ngram] = [True] * ngram
    best = ""
    for start in range(len(out)):
        end = start + max(len(best) + 1, ngram)
        while end <= len(out) and out[start:end] in src:
            best, end = out[start:end], end + 1
    return sum(covered), len(out), best


def template_lines(template: str) -> list[str]:
    """The prompt template's own text (everything but {prompt}), line by line, normalized."""
    literal = template.replace("{prompt}", "\n")
    return [line for line in (normalize(x) for x in literal.split("\n")) if line]


# A sentence ends at 。！？ (one or several) unless a closing quote follows: 「まさか！」と思った is one sentence.
_SENTENCE_END = re.compile(r"[。．.！？!?]+(?![」』）)】\]〉》”’])")
_CLAUSE_BREAK = re.compile(r"[、，,]")
_FULL_STOP_AT_END = re.compile(r"[。．][」』）)】\]〉》”’]*$")
# The sentence that asks for the title is the request, however title-like its wording.
_ASKS_FOR_TITLE = re.compile(r"(?i)タイトル|題名|見出し|表題|title|headline")


def _less_template(line: str, headers: list[str]) -> str:
    for header in headers:
        if line.startswith(header):
            line = line[len(header) :].strip()
    return line


def prompt_paragraphs(prompt: str, template: str | None = None) -> list[str]:
    """The prompt's lines as the detectors compare them (normalized, special tokens out), each less the
    prompt template's own text (### 指示, or a label such as 記事: that opens a line)."""
    headers = _template_headers(template)
    return [line for line in (_less_template(x, headers) for x in _strip_markup(prompt).split("\n")) if line]


def sentences(paragraph: str) -> list[tuple[str, str]]:
    """(sentence, its end marks) in order; the last one may have no end mark."""
    found, start = [], 0
    for end in _SENTENCE_END.finditer(paragraph):
        found.append((paragraph[start : end.start()], end.group()))
        start = end.end()
    if paragraph[start:].strip():
        found.append((paragraph[start:], ""))
    return found


def _lifted_as_title(text: str, sentence: str) -> bool:
    """`text` is all of `sentence`, written the way a writer titles an article with its opening line:
    one clause (no 、), no full stop, and not the request for a title."""
    return (_content_only(text) == _content_only(sentence) and not _CLAUSE_BREAK.search(sentence)
            and not _FULL_STOP_AT_END.search(text) and not _ASKS_FOR_TITLE.search(sentence))


def _lifts_one_sentence_as_title(text: str, run: str, paragraphs: list[str]) -> bool:
    """The one run `text` shares with the prompt is a whole sentence lifted as a title, maybe with the
    writer's own words around it (ベビーカーで電車に乗るのが怖かった話)."""
    compact = _WHITESPACE.sub("", normalize(text))
    end = compact.find(run) + len(run)
    if _FULL_STOP_AT_END.search(compact[: end + 1]):
        return False
    return any(_lifted_as_title(run, sentence) for p in paragraphs for sentence, _ in sentences(p))


def _opening_copy(text: str, paragraphs: list[str], min_chars: int) -> str | None:
    """The output is a paragraph's opening (compared on letters and digits, so punctuation, brackets, width
    and spaces do not hide it) cut off inside its first sentence, the whole first sentence as prose, or
    more than that sentence."""
    out = _content_only(text)
    if len(out) < min_chars:
        return None
    for paragraph in paragraphs:
        if not _content_only(paragraph).startswith(out):
            continue
        first = sentences(paragraph)[0][0]
        first_len = len(_content_only(first))
        if len(out) < first_len:
            return f"the opening of the prompt, cut off mid-sentence: {paragraph[:40]!r}"
        if len(out) > first_len:
            return f"the opening of the prompt, past its first sentence: {paragraph[:40]!r}"
        if not _lifted_as_title(text, first):
            return f"the prompt's first sentence, as prose: {first[:40]!r}"
    return None


def _prompt_copy_evidence(text: str, prompt: str | None, cfg: DegenerateSection,
                          template: str | None = None) -> str | None:
    # A model that answers with the template's header (### 指示) has learned the format, not the task.
    if template and any(text in line for line in template_lines(template)):
        return f"echoes the prompt template: {text!r}"
    if not prompt:
        return None
    paragraphs = prompt_paragraphs(prompt, template)
    # A label (the template's, or タイトル: ) before the copied opening does not make it a title.
    unlabelled = _less_template(text, _template_headers(template))
    for candidate in dict.fromkeys((unlabelled, _LEADING_LABEL.sub("", unlabelled))):
        opening = _opening_copy(candidate, paragraphs, cfg.opening_copy_min_chars)
        if opening:
            return opening
    copied, total, longest = copied_from_prompt(text, prompt, cfg.prompt_copy_ngram)
    # One long verbatim run, not phrases recombined: a title that reuses the body's wording stays a title.
    if len(longest) >= cfg.prompt_copy_min_chars and copied / total >= cfg.prompt_copy_min_coverage:
        if copied == len(longest) and _lifts_one_sentence_as_title(text, longest, paragraphs):
            return None
        return f"{copied}/{total} characters copied from the prompt, e.g. {longest!r}"
    return None


def inspect_output(output: str | None, prompt: str | None = None, rules: OutputRules = DEFAULT_RULES,
                   template: str | None = None) -> dict[str, str]:
    """Each degenerate kind that applies to `output`, with the evidence for it (FLAGS order).

    `template` (the prompt format's own text) makes an output that only repeats the template's own text a
    prompt copy too."""
    cfg = rules.degenerate
    text = _strip_markup(output or "")
    found: dict[str, str] = {}
    broken = broken_text_evidence(output or "")
    markup = template_markup_evidence(output or "", template)
    repetition = _repetition_evidence(text, cfg) if text else None
    empty = _empty_evidence(text, rules)
    # A loop of punctuation (」」」」) is a loop first; "empty" is for outputs with nothing in them.
    if empty and not repetition:
        found["empty"] = empty
    if repetition:
        found["repetition"] = repetition
    if text and not empty:
        tags = detect_tag_list(text, rules.tag_list)
        if tags:
            found["tag_list"] = tags
        copy = _prompt_copy_evidence(text, prompt, cfg, template)
        if copy:
            found["prompt_copy"] = copy
    if len(text) > cfg.max_output_chars:
        found["over_length"] = f"{len(text)} characters > {cfg.max_output_chars}"
    if broken:
        found["broken_text"] = broken
    if markup:
        found["template_markup"] = markup
    return found


def flag_output(output: str | None, prompt: str | None = None, rules: OutputRules = DEFAULT_RULES,
                template: str | None = None) -> list[str]:
    """The degenerate kinds of `output` (see the module docstring); [] for a real answer."""
    return list(inspect_output(output, prompt, rules, template))


def inspect_generation(output: str | None, finished: bool, prompt: str | None, rules: OutputRules = DEFAULT_RULES,
                       template: str | None = None) -> dict[str, str]:
    """`inspect_output` for a generation: one cut off by max_new_tokens (no EOS, no newline) also counts as
    `over_length` with rules.flag_unfinished (hf_check.flag_unfinished), unless it is empty. Shared by hf_check,
    evaluate and check-outputs."""
    found = inspect_output(output, prompt, rules, template)
    if not finished and rules.flag_unfinished and not {"empty", "over_length"} & set(found):
        found["over_length"] = "no EOS before the max_new_tokens limit: the model does not stop"
    return {flag: found[flag] for flag in FLAGS if flag in found}
