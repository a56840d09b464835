"""How many tokens a model may generate for a title: enough for any title the over-length flag accepts.

    resolve_token_budget(explicit, titles, count_tokens, max_output_chars, margin) -> TokenBudget

The over-length flag counts characters (hf_check.degenerate.max_output_chars); generation counts tokens,
and tokenizers spend from one token per Japanese character (a character vocabulary) to three (a byte-level
BPE on a kanji it never merged; SmolLM2's averages 1.8). A fixed token budget cut real titles off: with
SmolLM2's tokenizer 43 of the sample's 440 clean titles need more than 47 tokens, so a model writing them
perfectly was flagged over_length for not stopping.

The rule, when no explicit budget is given:

    tokens_per_char = the most tokens the tokenizer spends per character of the titles: each distinct
                      character alone (counted after a newline, so a tokenizer's leading-space marker is not
                      charged to it), and each title as a whole (its tokens / its characters: what merges
                      and markers cost in context)
    max_new_tokens  = ceil(max_output_chars x tokens_per_char) + margin

so every title of up to max_output_chars characters, written in the characters the titles use, fits with
the token that ends it (the margin). With no titles to measure, a character costs at most 4 tokens (the
bytes of one UTF-8 character, each a token of a byte-level vocabulary).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.split.outputs import Splits

# Counts the tokens of each text, with no BOS/EOS: one call for many texts, so fast tokenizers batch them.
CountTokens = Callable[[Sequence[str]], list[int]]

UTF8_MAX_BYTES = 4
# Put before a character so that the tokenizer's start-of-text habits (SentencePiece's ▁ prefix) fall on it,
# not on the character; every tokenizer family keeps a line break its own token (Llama 3's and Qwen's
# pre-tokenizers exclude it from the punctuation they glue onto words).
_ANCHOR = "\n"


@dataclass
class TokenBudget:
    max_new_tokens: int
    derived: bool
    tokens_per_char: float | None = None
    costliest: str | None = None  # the character or title that set tokens_per_char
    titles: int = 0
    # Titles whose tokens plus the one that ends them exceed the budget (an explicit budget can be too small).
    titles_cut_off: int = 0
    longest_title_tokens: int | None = None

    def to_dict(self) -> dict:
        return asdict(self) | {"rule": self.describe()}

    def describe(self) -> str:
        if not self.derived:
            how = "set in the config"
        else:
            how = f"derived: {self.tokens_per_char:g} tokens per character (set by {self.costliest!r})"
        cut = f"; {self.titles_cut_off} of {self.titles} titles do not fit" if self.titles_cut_off else ""
        return f"up to {self.max_new_tokens} new tokens per answer, {how}{cut}"


@dataclass(frozen=True)
class BudgetRule:
    """What a budget is made from (RunConfig.token_budget_rule gathers it): an explicit max_new_tokens, else the
    rule above with the longest answer the over-length flag accepts and the margin."""

    max_new_tokens: int | None
    max_output_chars: int
    margin: int

    def resolve(self, titles: Iterable[str], count_tokens: CountTokens) -> TokenBudget:
        return resolve_token_budget(self.max_new_tokens, titles, count_tokens, self.max_output_chars, self.margin)


def training_titles(splits: Splits) -> list[str]:
    """The completions of the split stage's train split: the titles the model learned."""
    return [row.completion for row in splits.rows("train")]


def hf_token_counter(tokenizer) -> CountTokens:
    def count(texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    return count


def _costliest(titles: list[str], counts: list[int], count_tokens: CountTokens) -> tuple[float, str]:
    best, why = 0.0, ""
    for title, n in zip(titles, counts, strict=True):
        if n / len(title) > best:
            best, why = n / len(title), title
    chars = sorted({c for t in titles for c in t if not c.isspace()})
    anchor = count_tokens([_ANCHOR])[0]
    for char, n in zip(chars, count_tokens([_ANCHOR + c for c in chars]), strict=True):
        if n - anchor > best:
            best, why = float(n - anchor), char
    return best, why


def resolve_token_budget(explicit: int | None, titles: Iterable[str], count_tokens: CountTokens,
                         max_output_chars: int, margin: int) -> TokenBudget:
    """The generation budget: `explicit` when given, else the rule in the module docstring."""
    titles = [t for t in dict.fromkeys(titles) if isinstance(t, str) and t.strip()]
    counts = count_tokens(titles)
    if explicit is not None:
        budget = TokenBudget(explicit, derived=False)
    elif titles:
        per_char, why = _costliest(titles, counts, count_tokens)
        budget = TokenBudget(math.ceil(round(max_output_chars * per_char, 6)) + margin, derived=True,
                             tokens_per_char=round(per_char, 4), costliest=why)
    else:
        budget = TokenBudget(max_output_chars * UTF8_MAX_BYTES + margin, derived=True,
                             tokens_per_char=float(UTF8_MAX_BYTES), costliest="no titles: UTF-8 worst case")
    budget.titles = len(titles)
    budget.titles_cut_off = sum(n + 1 > budget.max_new_tokens for n in counts)
    budget.longest_title_tokens = max(counts, default=None)
    return budget
