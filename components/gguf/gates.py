"""Gates C and D: the stage's figures against `gates.*` thresholds, with a reason a person can act on."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from components.common.config import GatesSection

F16_FIX = ("the F16 GGUF does not compute what the HF model computes: check that the converter comes from "
           "the same llama.cpp as the runtime (make setup) and that merged/ holds its config and tokenizer files")


@dataclass
class GateResult:
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def check(self, gate: str, key: str, label: str, value: float, limit: float, at_least: bool, fix: str) -> None:
        ok = math.isfinite(value) and (value >= limit if at_least else value <= limit)  # NaN: nothing measured
        self.checks[key] = {"value": value, "threshold": limit, "passed": ok}
        if not ok:
            self.reasons.append(f"gate {gate}: {label} {value:.4g} {'<' if at_least else '>'} {limit:g}; {fix}")


def judge_f16(figures: dict[str, Any], gates: GatesSection) -> GateResult:
    """Gate C: the F16 GGUF against the HF model it was converted from."""
    r = GateResult()
    r.check("C", "greedy_agreement", "F16-vs-HF greedy agreement", figures["greedy_agreement"],
            gates.min_greedy_agreement, True, F16_FIX)
    r.check("C", "max_logit_diff", "F16-vs-HF largest logit difference", figures["max_logit_diff"],
            gates.max_logit_diff, False, F16_FIX)
    r.check("C", "f16_perplexity_drift", "F16-vs-HF perplexity drift", figures["f16_perplexity_drift"],
            gates.max_f16_perplexity_drift, False, F16_FIX)
    return r


def judge_quant(quant: str, figures: dict[str, Any], gates: GatesSection) -> GateResult:
    """Gate D: one quantized GGUF against the F16 GGUF it was made from."""
    fix = (f"{quant} loses too much of the F16 model: put a larger type first in gguf.quant_types "
           "(Q5_K_M, Q6_K, Q8_0); the loss is the quantizer's only where gate C passed")
    r = GateResult()
    r.check("D", "same_top_token_rate", f"{quant} same-top-token rate", figures["same_top_token_rate"],
            gates.min_same_top_token_rate, True, fix)
    r.check("D", "mean_kld", f"{quant} mean KL divergence", figures["mean_kld"], gates.max_mean_kld, False, fix)
    r.check("D", "perplexity_ratio", f"{quant} perplexity ratio", figures["perplexity_ratio"],
            gates.max_perplexity_ratio, False, fix)
    r.check("D", "output_rouge_l", f"{quant} output ROUGE-L against F16", figures["output_rouge_l"],
            gates.min_output_rouge_l, True, fix)
    return r
