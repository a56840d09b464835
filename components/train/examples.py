"""Split rows -> token ids and completion masks, exactly as trl's SFTTrainer would build them.

We tokenize here rather than inside trl so that (1) rows whose completion would be truncated away entirely
are dropped and *counted* (trl drops them silently), and (2) padding-free batches still respect
`train.max_seq_length` (trl only truncates padded batches).

The format and its token ids are components/common/prompts.py's, the one module every stage prompts through:
the tokenizer's chat template when it has one (a user turn, the generation prompt, then the assistant turn),
else `train.prompt_template` with the completion and the EOS token appended. The train stage stamps that
format into merged/, so later stages read it from the model. Loss is on the completion only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from components.common.prompts import hf_encoder, training_format, uses_chat_template
from components.split.outputs import SplitRow

# uses_chat_template: train/core.py's report says which kind of format the run trained with.
__all__ = ["EncodedSplit", "encode_rows", "uses_chat_template"]


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


def encode_rows(rows: Sequence[SplitRow], tokenizer, template: str, max_length: int) -> EncodedSplit:
    out = EncodedSplit(rows_in=len(rows))
    encoder = hf_encoder(training_format(tokenizer, template), tokenizer)
    for row in rows:
        ids, n_prompt = encoder.pair_ids(row.prompt, row.completion)
        if n_prompt >= max_length:
            out.dropped.append(row.id)
            continue
        if len(ids) > max_length:
            out.truncated += 1
            ids = ids[:max_length]
        out.input_ids.append(ids)
        out.completion_mask.append([0] * n_prompt + [1] * (len(ids) - n_prompt))
    return out
