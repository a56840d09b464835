"""Is a model's output a real answer, or one of the ways a fine-tuned model breaks?

    flag_output(output, prompt=None, cfg=DegenerateSection(), clean_cfg=CleanSection()) -> list[str]

returns the kinds below that apply, in this order; an empty list means the output looks like a real answer.

    empty        nothing but white space, punctuation, special-token markup, a lone character (の),
                 or a placeholder (無題, タイトル未定, {title})
    repetition   a runaway loop: 」」」」, 「」「」「」, の の の, ワーママワーママワーママ, a phrase said
                 three times, or a long phrase (a whole title) said twice
    tag_list     a list of tags instead of a title: 自己紹介｜子育て｜ワーママ｜30代, #朝活 #読書
                 (the clean stage's own detector and rule, so outputs and training data are judged alike)
    prompt_copy  most of the output is text lifted from the prompt (long shared character sequences),
                 not merely a shared word; or only the prompt template's own text (### 指示)
    over_length  longer than hf_check.degenerate.max_output_chars: the model did not stop

Natural titles stay unflagged: a single separator (ピアノ再開｜40歳の挑戦), brackets (【保存版】), a word
said twice for emphasis (ちゃんと、ちゃんと休む), numbers (1000000円), ！！ or ーー.
`inspect_output` returns the same kinds with the evidence for each, for reports; `inspect_generation`
adds the verdict on a generation cut off by the token limit.
"""

from __future__ import annotations

import re
import unicodedata

from components.common.config import CleanSection, DegenerateSection, HfCheckSection
from components.common.detectors import (
    detect_placeholder,
    detect_repetition,
    detect_tag_list,
    fold_ellipses,
    is_reduplicated_word,
)
from components.common.text import normalize

FLAGS = ("empty", "repetition", "tag_list", "prompt_copy", "over_length")

# Special-token text a decoder can leave behind (<unk>, </s>, <|im_end|>, [PAD]): markup, not an answer.
_SPECIAL_TOKEN = re.compile(r"<\|?/?[A-Za-z_][A-Za-z0-9_]*\|?>|\[(?:PAD|UNK|CLS|SEP|MASK|EOS|BOS)\]")
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


def _empty_evidence(text: str, cfg: DegenerateSection, clean_cfg: CleanSection) -> str | None:
    if not text:
        return "no text"
    content = _content_only(text)
    if not content:
        return f"no letters or digits: {text!r}"
    if len(content) < cfg.min_content_chars:
        return f"{len(content)} letter(s), no answer: {text!r}"
    return detect_placeholder(text, clean_cfg.placeholders)


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
    """(characters of the output inside a shared run of >= ngram characters, output length, longest run).

    White space is ignored on both sides; both are normalized (NFKC), so width differences do not hide a copy.
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
    longest, best, run_start = 0, "", None
    for i, hit in enumerate([*covered, False]):
        if hit and run_start is None:
            run_start = i
        elif not hit and run_start is not None:
            if i - run_start > longest:
                longest, best = i - run_start, out[run_start:i]
            run_start = None
    return sum(covered), len(out), best


def template_lines(template: str) -> list[str]:
    """The prompt template's own text (everything but {prompt}), line by line, normalized."""
    literal = template.replace("{prompt}", "\n")
    return [line for line in (normalize(x) for x in literal.split("\n")) if line]


def _prompt_copy_evidence(text: str, prompt: str | None, cfg: DegenerateSection,
                          template: str | None = None) -> str | None:
    # A model that answers with the template's header (### 指示) has learned the format, not the task.
    if template and any(text in line for line in template_lines(template)):
        return f"echoes the prompt template: {text!r}"
    if not prompt:
        return None
    copied, total, longest = copied_from_prompt(text, prompt, cfg.prompt_copy_ngram)
    # One long verbatim run, not phrases recombined: a title that reuses the body's wording stays a title.
    if len(longest) >= cfg.prompt_copy_min_chars and copied / total >= cfg.prompt_copy_min_coverage:
        return f"{copied}/{total} characters copied from the prompt, e.g. {longest!r}"
    return None


def inspect_output(output: str | None, prompt: str | None = None, cfg: DegenerateSection | None = None,
                   clean_cfg: CleanSection | None = None, template: str | None = None) -> dict[str, str]:
    """Each degenerate kind that applies to `output`, with the evidence for it (FLAGS order).

    `template` (train.prompt_template) makes an output that only repeats the template's own text a
    prompt copy too."""
    cfg = cfg or DegenerateSection()
    clean_cfg = clean_cfg or CleanSection()
    text = _strip_markup(output or "")
    found: dict[str, str] = {}
    repetition = _repetition_evidence(text, cfg) if text else None
    empty = _empty_evidence(text, cfg, clean_cfg)
    # A loop of punctuation (」」」」) is a loop first; "empty" is for outputs with nothing in them.
    if empty and not repetition:
        found["empty"] = empty
    if repetition:
        found["repetition"] = repetition
    if text and not empty:
        tags = detect_tag_list(text, clean_cfg.tag_list)
        if tags:
            found["tag_list"] = tags
        copy = _prompt_copy_evidence(text, prompt, cfg, template)
        if copy:
            found["prompt_copy"] = copy
    if len(text) > cfg.max_output_chars:
        found["over_length"] = f"{len(text)} characters > {cfg.max_output_chars}"
    return found


def flag_output(output: str | None, prompt: str | None = None, cfg: DegenerateSection | None = None,
                clean_cfg: CleanSection | None = None, template: str | None = None) -> list[str]:
    """The degenerate kinds of `output` (see the module docstring); [] for a real answer."""
    return list(inspect_output(output, prompt, cfg, clean_cfg, template))


def inspect_generation(output: str | None, finished: bool, prompt: str | None, hf_check: HfCheckSection,
                       clean_cfg: CleanSection | None = None, template: str | None = None) -> dict[str, str]:
    """`inspect_output` for a generation: one cut off by max_new_tokens (no EOS, no newline) also counts as
    `over_length` with hf_check.flag_unfinished, unless it is empty. Shared by hf_check and evaluate."""
    found = inspect_output(output, prompt, hf_check.degenerate, clean_cfg, template)
    if not finished and hf_check.flag_unfinished and not {"empty", "over_length"} & set(found):
        found["over_length"] = "no EOS before the max_new_tokens limit: the model does not stop"
    return {flag: found[flag] for flag in FLAGS if flag in found}
