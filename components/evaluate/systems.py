"""The systems the evaluate stage compares, each run over the same test prompts.

    finetuned   the quantized GGUF, through llama.cpp (what would ship)
    base        the base model without the adapter: HF transformers on its folder, or llama.cpp on a GGUF of it
    heuristic   the article's first sentence cut to a title's length (baselines.py)

Every model system decodes greedily from the fine-tuned model's own prompt format (the one training used, which
the shipped GGUF carries: components/common/prompts.py), the base model too, and stops at EOS, the first
newline (a title is one line) or its token budget (evaluate.max_new_tokens; None: derived from that
system's tokenizer by hf_check's rule, components/common/token_budget.py, and recorded per system), and
scores the perplexity of the reference titles (completion tokens and the EOS that ends them; the prompt
is context only).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.common.prompts import PromptFormat, llama_encoder
from components.common.token_budget import BudgetRule
from components.gguf.settings import GgufSection

STOP = ["\n"]


@dataclass
class SystemOutputs:
    name: str
    source: str
    outputs: list[str]
    # False where generation hit max_new_tokens without EOS or newline (hf_check.flag_unfinished's rule).
    finished: list[bool]
    perplexity: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    # The generation budget the system ran with (TokenBudget.to_dict()); None for a system that generates nothing.
    token_budget: dict[str, Any] | None = None


@dataclass(frozen=True)
class LlamaRuntime:
    """llama.cpp as evaluate runs it: the gguf stage's threads and GPU layers, evaluate's own context."""

    gguf: GgufSection
    n_ctx: int

    def open(self, path: str | Path):
        from components.gguf.runtime import open_gguf

        return open_gguf(path, self.gguf, self.n_ctx)


def _progress(name: str, i: int, n: int) -> None:
    if i == n or i % 10 == 0:
        print(f"evaluate: {name} {i}/{n}", file=sys.stderr, flush=True)


def _log_softmax_at(row, target: int) -> float:
    import numpy as np

    row = row.astype(np.float64)
    top = row.max()
    return float(row[target] - top - math.log(np.exp(row - top).sum()))


class GgufRunner:
    """Greedy titles and reference perplexity from one GGUF opened in llama.cpp (header checked first)."""

    def __init__(self, llm, budget: BudgetRule, prompt_format: PromptFormat, titles: Sequence[str]):
        self.llm = llm
        self.encoder = llama_encoder(prompt_format, llm)
        self.budget = budget.resolve(titles, self.count_tokens)
        n_ctx_train = llm._model.n_ctx_train() if hasattr(llm, "_model") else llm.n_ctx()
        # Past the trained context a model's positions mean nothing: prompts are cut to fit both limits.
        self.n_ctx = min(llm.n_ctx(), n_ctx_train if n_ctx_train > 0 else llm.n_ctx())

    def _tokens(self, text: str, bos: bool) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=False)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self._tokens(text, bos=False)) for text in texts]

    def fit_article(self, article: str) -> tuple[str, bool]:
        """The article, cut from its end until the formatted prompt leaves room for a title."""
        budget = self.n_ctx - self.budget.max_new_tokens - 1
        ids = self.prompt_ids(article)
        if len(ids) <= budget:
            return article, False
        article_ids = self._tokens(article, bos=False)
        while len(ids) > budget and article_ids:
            article_ids = article_ids[: max(0, len(article_ids) - (len(ids) - budget) - 1)]
            article = self.llm.detokenize(article_ids).decode("utf-8", "ignore")
            ids = self.prompt_ids(article)
        return article, True

    def prompt_ids(self, article: str) -> list[int]:
        return self.encoder.prompt_ids(article)

    def pair_ids(self, article: str, completion: str) -> tuple[list[int], int]:
        """The article and its reference as training tokenized them, and where the reference starts."""
        return self.encoder.pair_ids(article, completion)

    def completion_nll(self, article: str, completion: str) -> tuple[float, int]:
        """Summed negative log-likelihood of the completion's tokens (and the end of turn) after the prompt,
        and their count."""
        full, start = self.pair_ids(article, completion)
        full = full[: self.n_ctx]
        start = max(start, 1)  # without a BOS the first token has no context to be predicted from
        if len(full) <= start:
            return 0.0, 0
        self.llm.reset()
        self.llm.eval(full)
        scores = self.llm.scores
        nll = 0.0
        for pos in range(start, len(full)):
            nll -= _log_softmax_at(scores[pos - 1], full[pos])
        return nll, len(full) - start

    def generate(self, article: str) -> tuple[str, bool]:
        """The greedy title and whether it ended on its own (EOS or newline) rather than at the token limit."""
        out = self.llm.create_completion(prompt=self.prompt_ids(article), max_tokens=self.budget.max_new_tokens,
                                         temperature=0.0, top_k=1, repeat_penalty=1.0, stop=STOP)
        choice = out["choices"][0]
        return choice["text"].strip(), choice.get("finish_reason") != "length"


def run_gguf(name: str, gguf_path: str | Path, articles: list[str], references: list[str], llama: LlamaRuntime,
             budget: BudgetRule, prompt_format: PromptFormat, fit: bool = False,
             titles: Sequence[str] = ()) -> tuple[SystemOutputs, list[str]]:
    """Titles and perplexity of one GGUF, prompted in `prompt_format` (the fine-tuned model's, whichever GGUF
    this is). With `fit`, articles too long for the context are cut first
    (the cut articles are returned, so every other system sees the same text). The token budget is derived
    from `titles` (the training titles) and the references."""
    outputs: list[str] = []
    finished: list[bool] = []
    used: list[str] = []
    total_nll, total_tokens, cut = 0.0, 0, 0
    with llama.open(gguf_path) as llm:
        runner = GgufRunner(llm, budget, prompt_format, [*titles, *references])
        for i, (article, reference) in enumerate(zip(articles, references, strict=True), 1):
            if fit:
                article, was_cut = runner.fit_article(article)
                cut += was_cut
            used.append(article)
            nll, n = runner.completion_nll(article, reference)
            total_nll, total_tokens = total_nll + nll, total_tokens + n
            text, done = runner.generate(article)
            outputs.append(text)
            finished.append(done)
            _progress(name, i, len(articles))
    mean_nll = total_nll / total_tokens if total_tokens else float("nan")
    system = SystemOutputs(name=name, source=f"llama.cpp on {gguf_path}", outputs=outputs, finished=finished,
                           perplexity={"mean_nll": mean_nll, "perplexity": math.exp(mean_nll) if total_tokens else
                                       float("nan"), "tokens": total_tokens},
                           token_budget=runner.budget.to_dict())
    if cut:
        system.notes.append(f"{cut} article(s) cut to fit the {runner.n_ctx}-token context")
    return system, used
