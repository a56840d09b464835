"""The two baselines a fine-tuned title model has to beat.

    heuristic_titles(articles, max_chars)   the article's first sentence, cut to a title's length
    run_hf_base(model_dir, ...)             the base model without the adapter, through HF transformers

A fine-tuned model that does not beat the first sentence of the article has learned nothing worth
shipping; one that does not beat its own base model was not helped by fine-tuning.
"""

from __future__ import annotations

import re
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from components.common.errors import InputError
from components.common.prompts import PromptFormat, hf_encoder
from components.common.text import normalize
from components.common.token_budget import BudgetRule, hf_token_counter
from components.evaluate.settings import EvaluateSection
from components.evaluate.systems import SystemOutputs
from components.hf_check.generation import Decoding
from components.split.outputs import SplitRow

# A sentence ends at a Japanese or Western full stop, question or exclamation mark, or a line break.
_SENTENCE_END = re.compile(r"[。．！？!?\n]")
# Brackets and quotes a cut can leave unbalanced at the end of a title.
_TRAILING = "、，,・：:（(「『【〔［[ 　"


def first_sentence(article: str) -> str:
    text = normalize(article)
    match = _SENTENCE_END.search(text)
    if not match:
        return text
    end = match.end() if match.group() in "！？!?" else match.start()  # keep ！？, drop 。 (titles rarely end in 。)
    return text[:end].strip()


def article_text(prompt: str, separator: str, instructions: set[str]) -> str:
    """The prompt without its leading instruction paragraphs ("次の記事本文に…付けてください。"), so the
    heuristic quotes the article, not the request."""
    blocks = prompt.split(separator)
    while len(blocks) > 1 and normalize(blocks[0]) in instructions:
        blocks.pop(0)
    return separator.join(blocks)


def heuristic_title(article: str, max_chars: int) -> str:
    return first_sentence(article)[:max_chars].rstrip(_TRAILING)


@dataclass
class HeuristicSpec:
    """What the heuristic learns from the training split: how long a title is, and which leading
    paragraphs of the prompts are instructions (the same paragraph opening many prompts)."""

    title_chars: int
    separator: str = "\n\n"
    instructions: set[str] = field(default_factory=set)

    def article(self, prompt: str) -> str:
        return article_text(prompt, self.separator, self.instructions)

    def title(self, prompt: str) -> str:
        return heuristic_title(self.article(prompt), self.title_chars)


def learn_heuristic(train_rows: Sequence[SplitRow], ev: EvaluateSection, separator: str) -> HeuristicSpec:
    """Title length: evaluate.heuristic_title_chars, else the median training title length (the length the
    fine-tuned model learned to write). Instructions: a leading paragraph (split on `separator`,
    data.alpaca_join: how clean joins instruction and input) that opens at least
    evaluate.heuristic_instruction_min_rows training prompts; clean removed duplicate articles, so only a
    template repeats that often."""
    lengths = [len(normalize(r.completion)) for r in train_rows if r.completion]
    if ev.heuristic_title_chars is None and not lengths:
        raise InputError("the train split has no completions to measure a title length from; set "
                         "evaluate.heuristic_title_chars")
    leads = Counter(normalize(r.prompt.split(separator, 1)[0]) for r in train_rows if separator in r.prompt)
    instructions = {lead for lead, n in leads.items() if n >= ev.heuristic_instruction_min_rows}
    chars = ev.heuristic_title_chars or max(1, round(statistics.median(lengths)))
    return HeuristicSpec(chars, separator, instructions)


def heuristic_titles(prompts: list[str], spec: HeuristicSpec) -> SystemOutputs:
    outputs = [spec.title(p) for p in prompts]
    skipped = f", after the {len(spec.instructions)} instruction paragraph(s) the training prompts open with" \
        if spec.instructions else ""
    return SystemOutputs(name="heuristic", outputs=outputs, finished=[True] * len(outputs),
                         source=f"first sentence of the article{skipped}, cut to {spec.title_chars} characters")


def hf_base_tokenizer_and_model(model_dir: str | Path):
    """The base model folder loaded as hf_check loads the merged model (same dtype and device rules)."""
    from components.hf_check.core import load_model

    try:
        return load_model(Path(model_dir))
    except InputError as exc:
        raise InputError(f"{exc}; give --base-model the base model's folder (config.json, weights, tokenizer) "
                         "or a .gguf of it") from None


def run_hf_base(model, tokenizer, articles: list[str], references: list[str], budget_rule: BudgetRule,
                decoding: Decoding, prompt_format: PromptFormat, source: str,
                titles: Sequence[str] = ()) -> SystemOutputs:
    """Greedy titles and reference perplexity of an HF causal LM (the base model, no adapter), prompted in
    `prompt_format` (the fine-tuned model's, never the base's own) through the base's tokenizer, generated
    as hf_check generates (components/hf_check/generation.py) with `decoding`, within evaluate's token budget
    (derived from `titles`, the training titles, and the references when evaluate.max_new_tokens is None)."""
    from components.common.jp_metrics import completion_perplexity
    from components.hf_check.generation import generate

    encoder = hf_encoder(prompt_format, tokenizer)
    budget = budget_rule.resolve([*titles, *references], hf_token_counter(tokenizer))
    results = generate(model, tokenizer, [encoder.prompt_ids(a) for a in articles], decoding, budget.max_new_tokens,
                       label="base")
    print("evaluate: base perplexity of the references", file=sys.stderr, flush=True)
    ppl = completion_perplexity(model, [encoder.pair_ids(a, r) for a, r in zip(articles, references, strict=True)])
    return SystemOutputs(name="base", source=source, outputs=[t.strip() for t, _ in results],
                         finished=[f for _, f in results], perplexity=ppl, token_budget=budget.to_dict())
