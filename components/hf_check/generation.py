"""How an HF causal LM answers a batch of prompts, as hf_check runs it (and evaluate's HF base model).

    generate(model, tokenizer, prompt_ids, Decoding(...), max_new_tokens) -> [(answer, finished), ...]

`Decoding` holds the few settings generation reads, so a caller passes what it means instead of a run config.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from components.common.degenerate import output_chars
from components.hf_check.settings import HfCheckSection


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    seed: int


@dataclass(frozen=True)
class Decoding:
    """Greedy unless `sampling` is set. An answer ends at EOS, at the first newline with `stop_at_newline`, or
    once it is longer than `max_output_chars` (the over-length flag's limit)."""

    batch_size: int
    stop_at_newline: bool
    max_output_chars: int
    sampling: Sampling | None = None

    @classmethod
    def of(cls, section: HfCheckSection, sample_seed: int | None = None) -> Decoding:
        """hf_check's greedy decoding; with a seed, its sampled one (hf_check.temperature, hf_check.top_p)."""
        sampling = None if sample_seed is None else Sampling(section.temperature, section.top_p, sample_seed)
        return cls(section.batch_size, section.stop_at_newline, section.degenerate.max_output_chars, sampling)


def _newline_token_ids(tokenizer) -> list[int]:
    ids = []
    for token_id in range(len(tokenizer)):
        if "\n" in tokenizer.decode([token_id]):
            ids.append(token_id)
    return ids


def generate(model, tokenizer, prompts: list[list[int]], decoding: Decoding, max_new_tokens: int,
             label: str = "greedy") -> list[tuple[str, bool]]:
    """(answer, finished) per prompt (its token ids, `Encoder.prompt_ids`); finished is False when
    max_new_tokens cut the answer off.

    The answer ends at EOS or, with decoding.stop_at_newline, at the first newline after some text
    (white space before the answer is skipped, not taken for an empty answer), or once it is longer than
    decoding.max_output_chars (unfinished: it did not stop). Special tokens the model
    wrote before its end (<|im_start|>, a second BOS) stay in the answer as text, for the template_markup
    flag; only padding and the EOS are dropped.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import StoppingCriteria, StoppingCriteriaList

    eos_id = tokenizer.eos_token_id
    # A chat model can end its turn with a token other than the tokenizer's EOS (Llama 3: <|eot_id|> beside
    # <|end_of_text|>); generate stops at the generation config's ids, and so does the answer.
    configured = getattr(model.generation_config, "eos_token_id", None)
    end_ids = {eos_id, *(configured if isinstance(configured, list) else [configured])} - {None}
    end_tensor = torch.tensor(sorted(end_ids), device=model.device, dtype=torch.long)
    newline_ids = torch.tensor(_newline_token_ids(tokenizer) if decoding.stop_at_newline else [],
                               device=model.device, dtype=torch.long)
    max_chars = decoding.max_output_chars

    class AnswerEnded(StoppingCriteria):
        def __init__(self, prompt_length: int):
            self.prompt_length = prompt_length
            self.ended: set[int] = set()

        def __call__(self, input_ids, scores, **kwargs):  # one verdict per row of the batch
            last = input_ids[:, -1]
            done = torch.isin(last, end_tensor)
            for i in torch.isin(last, newline_ids).nonzero().flatten().tolist():
                done[i] = bool(tokenizer.decode(input_ids[i, self.prompt_length :]).strip())
            # An answer already past the character limit is over_length whatever follows: the derived token
            # budget leaves room for the costliest characters, and a rambling model need not use all of it.
            for i in range(len(done)):
                if i not in self.ended and not done[i]:
                    done[i] = output_chars(tokenizer.decode(input_ids[i, self.prompt_length :])) > max_chars
                if done[i]:
                    self.ended.add(i)
            return done

    tokenizer.padding_side = "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token_id = pad_id
    options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad_id}
    sampling = decoding.sampling
    if sampling:
        options.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        torch.manual_seed(sampling.seed)
    else:
        options.update(do_sample=False, temperature=None, top_p=None, top_k=None)

    results: list[tuple[str, bool]] = []
    with tqdm(total=len(prompts), desc=f"hf_check {label}", unit="prompt", file=sys.stderr) as bar:
        for start in range(0, len(prompts), decoding.batch_size):
            batch = prompts[start : start + decoding.batch_size]
            enc = tokenizer.pad({"input_ids": batch}, return_tensors="pt").to(model.device)
            prompt_length = enc["input_ids"].shape[1]
            with torch.no_grad():
                out = model.generate(**enc, **options,
                                     stopping_criteria=StoppingCriteriaList([AnswerEnded(prompt_length)]))
            for row in out[:, prompt_length:].tolist():
                end = next((k for k, token in enumerate(row) if token in end_ids), None)
                eos_seen = end is not None
                if eos_seen:
                    row = row[:end]
                answer = tokenizer.decode([t for t in row if t != pad_id], skip_special_tokens=False).lstrip()
                finished = eos_seen
                if decoding.stop_at_newline and "\n" in answer:
                    answer, finished = answer.split("\n", 1)[0], True
                results.append((answer, finished))
            bar.update(len(batch))
    return results


