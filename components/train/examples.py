"""Split rows -> token ids and completion masks, exactly as trl's SFTTrainer would build them.

We tokenize here rather than inside trl so that (1) rows whose completion would be truncated away entirely
are dropped and *counted* (trl drops them silently), and (2) padding-free batches still respect
`train.max_seq_length` (trl only truncates padded batches).

The prompt is formatted like every later stage formats it (hf_check's `format_prompt`): the tokenizer's chat
template when it has one (a user turn, the generation prompt, then the assistant turn), else
`train.prompt_template` with the completion and the EOS token appended. Loss is on the completion only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from components.split.outputs import SplitRow


@dataclass
class EncodedSplit:
    input_ids: list[list[int]] = field(default_factory=list)
    completion_mask: list[list[int]] = field(default_factory=list)
    rows_in: int = 0
    # Ids of rows dropped because not one completion token fits in max_seq_length.
    dropped: list[Any] = field(default_factory=list)
    # Rows kept with a completion cut short (their EOS is lost); counted so a person sees it.
    truncated: int = 0

    @property
    def tokens(self) -> int:
        return sum(len(ids) for ids in self.input_ids)

    def as_dataset(self):
        from datasets import Dataset

        return Dataset.from_dict({"input_ids": self.input_ids, "completion_mask": self.completion_mask})


def uses_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode_pair(tokenizer, prompt: str, completion: str, template: str) -> tuple[list[int], int]:
    """(ids of prompt + completion + end, number of prompt tokens)."""
    if uses_chat_template(tokenizer):
        user = [{"role": "user", "content": prompt}]
        prompt_ids = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=True,
                                                   return_dict=True)["input_ids"]
        full_ids = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": completion}],
                                                 tokenize=True, return_dict=True)["input_ids"]
    else:
        text = template.format(prompt=prompt)
        prompt_ids = tokenizer(text)["input_ids"]
        full_ids = tokenizer(text + completion + tokenizer.eos_token)["input_ids"]
    # Where prompt and prompt+completion diverge is where the completion starts (trl's rule).
    return list(full_ids), _common_prefix(prompt_ids, full_ids)


def encode_rows(rows: Sequence[SplitRow], tokenizer, template: str, max_length: int) -> EncodedSplit:
    out = EncodedSplit(rows_in=len(rows))
    for row in rows:
        ids, n_prompt = encode_pair(tokenizer, row.prompt, row.completion, template)
        if n_prompt >= max_length:
            out.dropped.append(row.id)
            continue
        if len(ids) > max_length:
            out.truncated += 1
            ids = ids[:max_length]
        out.input_ids.append(ids)
        out.completion_mask.append([0] * n_prompt + [1] * (len(ids) - n_prompt))
    return out
