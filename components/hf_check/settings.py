"""`hf_check`: the inference check of the merged HF model before any conversion (gate B reads its report)."""

from __future__ import annotations

from pydantic import Field

from components.common.section import Section
from components.common.settings.degenerate import DegenerateSection


class HfCheckSection(Section):
    """Inference check of the merged HF model before any conversion (gate B reads its report)."""

    splits: list[str] = Field(["val", "test"], description="The splits whose prompts are answered.")
    max_new_tokens: int | None = Field(None, ge=1, description=(
        "Tokens generated per answer. None: derived from the tokenizer so that any title of up to "
        "degenerate.max_output_chars characters fits with the token that ends it: max_output_chars x the most "
        "tokens the tokenizer spends per character of the titles (each character alone, and each training and "
        "reference title as a whole), + token_budget_margin. An integer overrides it; report.json records the "
        "budget used and how many titles would not fit in it."))
    token_budget_margin: int = Field(4, ge=1, description=(
        "Tokens added to the derived max_new_tokens (hf_check's and evaluate's): the EOS or newline that ends the "
        "answer, and slack for merges a per-character count cannot see."))
    max_prompts: int = Field(64, description=(
        "Prompts taken from each split: the first ones, so runs compare like with like."))
    batch_size: int = Field(8, description="Prompts generated together (the evaluate stage's base model too).")
    stop_at_newline: bool = Field(True, description=(
        "Titles are one line: generation stops at EOS or at the first newline."))
    flag_unfinished: bool = Field(True, description=(
        "An output cut off by max_new_tokens (no EOS, no newline) is rambling: flagged over_length."))
    do_sample: bool = Field(False, description=(
        "Greedy outputs are gated; with do_sample, one sampled output per prompt is also flagged and reported."))
    temperature: float = Field(0.7, description="Sampling temperature, with do_sample.")
    top_p: float = Field(0.9, description="Nucleus sampling's top_p, with do_sample.")
    degenerate: DegenerateSection = Field(DegenerateSection(), description=(
        "How a broken output is told from a real answer (evaluate and check-outputs apply it too)."))
