"""`hf_check.degenerate`: how a broken output is told from a real answer (components/common/degenerate.py),
and `OutputRules`, everything those detectors read, gathered from the sections that own it."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from components.common.section import Section
from components.common.settings.rules import PLACEHOLDERS, RepetitionRule, TagListRule


class DegenerateSection(Section):
    """How hf_check, evaluate and check-outputs tell a broken output from a real answer."""

    max_output_chars: int = Field(60, ge=1, description=(
        "An answer longer than this is over_length: the model did not stop. The default is the longest title the "
        "clean stage keeps (clean.max_completion_chars)."))
    min_content_chars: int = Field(2, ge=1, description=(
        "Fewer letters and digits than this is no answer (の, w), even when it is not blank."))
    prompt_copy_ngram: int = Field(8, ge=2, description=(
        "Prompt copy: output characters inside runs of at least this many characters shared with the prompt "
        "count as copied (a phrase, not a shared word like ピアノ)."))
    prompt_copy_min_chars: int = Field(16, ge=1, description=(
        "Prompt copy needs one shared run at least this long: a title may lift one clause of the body "
        "(朝の1時間を自分のために is 12), and real titles recombine the body's phrases "
        "(退職金の見込み額、思ったより300万円少なかった)."))
    prompt_copy_min_coverage: float = Field(0.7, gt=0, le=1, description=(
        "Prompt copy needs the shared runs to make up this share of the output: a title quoting one phrase of "
        "the body stays a title."))
    opening_copy_min_chars: int = Field(4, ge=1, description=(
        "Prompt copy, however short: an output of at least this many letters and digits that is the opening of a "
        "prompt paragraph (the article's or the instruction's first words) cut off before its first sentence ends "
        "(小学生のころに), or run on past it. The first sentence taken whole, without its full stop and with no 、 "
        "inside, stays a title: writers title articles with it (ベビーカーで電車に乗るのが怖かった)."))
    repetition: RepetitionRule = Field(RepetitionRule(), description=(
        "Loops: the same rule (and detector) the clean stage applies to titles, here also across spaces "
        "(の の の の)."))
    recurring_phrase_chars: int = Field(5, ge=2, description=(
        "A phrase this long recurring repetition.max_phrase_repeats times anywhere (1. 朝活 2. 朝活 3. 朝活) is a "
        "loop; shorter ones recur in natural parallel titles (ちゃんと食べて、ちゃんと寝て、ちゃんと休む)."))
    long_phrase_chars: int = Field(10, ge=2, description=(
        "A phrase this long said even twice is a repeated title, not emphasis (ちゃんと、ちゃんと is 4)."))
    max_scan_chars: int = Field(2000, ge=100, description=(
        "Only this much of an output is scanned for loops: a runaway output is flagged long before that."))


@dataclass(frozen=True)
class OutputRules:
    """What the degenerate-output detectors read: hf_check.degenerate and hf_check.flag_unfinished, with the
    clean stage's placeholder list and tag-list rule, so a model's answers and its training titles are judged
    alike (RunConfig.output_rules() gathers them from a run config)."""

    degenerate: DegenerateSection = field(default_factory=DegenerateSection)
    placeholders: tuple[str, ...] = tuple(PLACEHOLDERS)
    tag_list: TagListRule = field(default_factory=TagListRule)
    flag_unfinished: bool = True
