"""Fidelity of a model against a reference on the same token ids: the figures gates C and D read.

Both sides see identical ids (the HF tokenizer's), so a tokenizer difference cannot pass for a weight
difference; whether llama.cpp's own tokenizer, with the prompt format the GGUF carries, gives the same ids is
measured separately (`tokenizer_match_rate`).

- teacher-forced over held-out texts (formatted prompt + reference completion + EOS), every position:
  largest and mean absolute logit difference, share of positions with the same top token, mean KL
  divergence KL(reference || candidate) of the next-token distributions, perplexity of each side;
- greedy generation from the formatted prompts: share of prompts with identical continuations, share of
  tokens before the first divergence, ROUGE-L (Japanese words) between the two decoded outputs.

llama.cpp's published figures for Llama-3-8B Q4_K_M (tools/perplexity/README.md: 91.9% same top token,
mean KLD 0.031, perplexity ratio 1.028) are reported beside ours as the reference points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# llama.cpp tools/perplexity README, Llama 3 8B, Q4_K_M against F16 on wikitext-2.
LLAMA_CPP_REFERENCE = {
    "source": "llama.cpp tools/perplexity/README.md, Llama-3-8B Q4_K_M vs F16",
    "same_top_token_rate": 0.919,
    "mean_kld": 0.031,
    "perplexity_ratio": 1.028,
}


@dataclass
class HeldOut:
    """One held-out record as both models see it."""

    id: Any  # the record's own id, as the split stage wrote it
    prompt: str  # the record's prompt and reference completion, before formatting
    completion: str
    prompt_ids: list[int]  # formatted prompt, for greedy generation
    text_ids: list[int]  # formatted prompt + completion + EOS, teacher-forced


class HFModel:
    """A Hugging Face causal LM behind the two calls the comparison needs."""

    name = "hf"

    def __init__(self, model, eos_id: int | None):
        import torch

        self.model, self.eos_id = model, eos_id
        self.device = next(model.parameters()).device
        self._torch = torch

    def logits(self, ids: Sequence[int]):
        torch = self._torch
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([list(ids)], device=self.device)).logits[0]
        return out.float().cpu()

    def greedy(self, prompt_ids: Sequence[int], max_new_tokens: int) -> list[int]:
        torch = self._torch
        generated: list[int] = []
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([list(prompt_ids)], device=self.device), use_cache=True)
            for _ in range(max_new_tokens):
                token = int(out.logits[0, -1].float().argmax())
                if token == self.eos_id:
                    break
                generated.append(token)
                out = self.model(input_ids=torch.tensor([[token]], device=self.device), cache=out.cache,
                                 use_cache=True)
        return generated


class LlamaModel:
    """A llama_cpp.Llama opened with logits_all=True (see runtime.open_gguf), fed token ids directly."""

    def __init__(self, llm, name: str, eos_id: int | None):
        self.llm, self.name, self.eos_id = llm, name, eos_id

    def logits(self, ids: Sequence[int]):
        import torch

        self.llm.reset()
        self.llm.eval(list(ids))
        return torch.from_numpy(self.llm.scores[: len(ids)].copy())

    def greedy(self, prompt_ids: Sequence[int], max_new_tokens: int) -> list[int]:
        # argmax over llama.cpp's own logits, exactly as HFModel does: no sampler settings can differ.
        self.llm.reset()
        self.llm.eval(list(prompt_ids))
        generated: list[int] = []
        for _ in range(max_new_tokens):
            token = int(self.llm.scores[self.llm.n_tokens - 1].argmax())
            if token == self.eos_id:
                break
            generated.append(token)
            if self.llm.n_tokens >= self.llm.n_ctx():
                break
            self.llm.eval([token])
        return generated


@dataclass
class LogitStats:
    """Running sums over every teacher-forced position of every text."""

    positions: int = 0
    predicted: int = 0  # positions with a next token to score (all but each text's last)
    same_top: int = 0
    kld_sum: float = 0.0
    nll_ref: float = 0.0
    nll_cand: float = 0.0
    max_abs_diff: float = 0.0
    abs_diff_sum: float = 0.0
    logits_compared: int = 0
    vocab_mismatch: list[int] = field(default_factory=list)

    def add(self, ref, cand, ids: Sequence[int], chunk: int = 64) -> None:
        """Adds one text: `ref` and `cand` are [positions, vocab] logits for the same `ids`."""
        import torch

        if ref.shape[-1] != cand.shape[-1]:
            self.vocab_mismatch = [int(ref.shape[-1]), int(cand.shape[-1])]
            width = min(ref.shape[-1], cand.shape[-1])
            ref, cand = ref[:, :width], cand[:, :width]
        # Position t predicts token t+1; the last position has no target (-1 marks it).
        targets = torch.tensor([*ids[1:], -1], dtype=torch.long)
        # In chunks of positions: a 128k vocabulary in float64 is 1 MB per position and per temporary.
        for start in range(0, ref.shape[0], chunk):
            r, c = ref[start:start + chunk].double(), cand[start:start + chunk].double()
            diff = (r - c).abs()
            self.max_abs_diff = max(self.max_abs_diff, float(diff.max()))
            self.abs_diff_sum += float(diff.sum())
            self.logits_compared += diff.numel()
            self.same_top += int((r.argmax(-1) == c.argmax(-1)).sum())
            logp_r, logp_c = torch.log_softmax(r, -1), torch.log_softmax(c, -1)
            self.kld_sum += float((logp_r.exp() * (logp_r - logp_c)).sum())
            t = targets[start:start + chunk]
            scored = t >= 0
            self.nll_ref -= float(logp_r[scored].gather(-1, t[scored][:, None]).sum())
            self.nll_cand -= float(logp_c[scored].gather(-1, t[scored][:, None]).sum())
            self.predicted += int(scored.sum())
        self.positions += ref.shape[0]

    def summary(self) -> dict[str, Any]:
        predicted = self.predicted
        ppl_ref = math.exp(self.nll_ref / predicted) if predicted else float("nan")
        ppl_cand = math.exp(self.nll_cand / predicted) if predicted else float("nan")
        return {
            "positions": self.positions,
            "max_logit_diff": self.max_abs_diff,
            "mean_logit_diff": self.abs_diff_sum / self.logits_compared if self.logits_compared else float("nan"),
            "same_top_token_rate": self.same_top / self.positions if self.positions else float("nan"),
            "mean_kld": self.kld_sum / self.positions if self.positions else float("nan"),
            "reference_perplexity": ppl_ref,
            "perplexity": ppl_cand,
            "perplexity_ratio": ppl_cand / ppl_ref if predicted else float("nan"),
            "vocab_mismatch": self.vocab_mismatch or None,
        }


def compare_logits(reference, candidate, held_out: Sequence[HeldOut],
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    stats = LogitStats()
    for i, item in enumerate(held_out):
        stats.add(reference.logits(item.text_ids), candidate.logits(item.text_ids), item.text_ids)
        if progress:
            progress(i + 1, len(held_out))
    return stats.summary()


def greedy_outputs(model, held_out: Sequence[HeldOut], max_new_tokens: int,
                   progress: Callable[[int, int], None] | None = None) -> list[list[int]]:
    outputs = []
    for i, item in enumerate(held_out):
        outputs.append(model.greedy(item.prompt_ids, max_new_tokens))
        if progress:
            progress(i + 1, len(held_out))
    return outputs


def first_difference(a: Sequence[int], b: Sequence[int]) -> int:
    """Index of the first position where two id sequences differ (the shorter length if one is a prefix)."""
    shorter = min(len(a), len(b))
    return next((k for k in range(shorter) if a[k] != b[k]), shorter)


def compare_greedy(reference: Sequence[Sequence[int]], candidate: Sequence[Sequence[int]],
                   decode: Callable[[Sequence[int]], str]) -> dict[str, Any]:
    """Agreement of two models' greedy continuations of the same prompts."""
    from components.common.jp_metrics import rouge_l_per_pair

    same = [list(a) == list(b) for a, b in zip(reference, candidate, strict=True)]
    prefix_shares = []
    for a, b in zip(reference, candidate, strict=True):
        longest = max(len(a), len(b))
        common = first_difference(a, b)
        prefix_shares.append(common / longest if longest else 1.0)
    texts_ref = [decode(ids) for ids in reference]
    texts_cand = [decode(ids) for ids in candidate]
    # Two empty outputs agree fully; rouge-score would call that 0.
    rouge = [1.0 if not r.strip() and not c.strip() else s
             for r, c, s in zip(texts_ref, texts_cand, rouge_l_per_pair(texts_cand, texts_ref), strict=True)]
    n = len(same)
    return {
        "prompts": n,
        "identical_outputs": sum(same),
        "greedy_agreement": sum(same) / n if n else float("nan"),
        "greedy_token_agreement": sum(prefix_shares) / n if n else float("nan"),
        "output_rouge_l": sum(rouge) / n if n else float("nan"),
    }


def tokenizer_agreement(llama, held_out: Sequence[HeldOut], n_ctx: int) -> dict[str, Any]:
    """Does llama.cpp's own tokenizer, in the format the GGUF carries (`llama`: a prompts.Encoder), give the
    ids the HF side was compared on (each record's prompt + completion, cut at n_ctx)?"""
    matches, first_mismatch = 0, None
    for item in held_out:
        hf_ids, ll_ids = item.text_ids, llama.pair_ids(item.prompt, item.completion)[0][:n_ctx]
        if hf_ids == ll_ids:
            matches += 1
        elif first_mismatch is None:
            at = first_difference(hf_ids, ll_ids)
            first_mismatch = {"id": item.id, "position": at, "hf": hf_ids[at:at + 8], "llama_cpp": ll_ids[at:at + 8]}
    n = len(held_out)
    return {"tokenizer_match_rate": matches / n if n else float("nan"), "first_mismatch": first_mismatch}
