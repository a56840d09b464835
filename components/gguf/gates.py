"""Gates C and D: the stage's figures against `gates.*` thresholds (common/gates.py's rule: a value that
could not be measured fails), with a reason a person can act on."""

from __future__ import annotations

from typing import Any

from components.common.config import RunConfig
from components.common.gates import Gate

STAGE = "gguf"
F16_FIX = ("the F16 GGUF does not compute what the HF model computes: check that the converter comes from "
           "the same llama.cpp as the runtime (make setup) and that merged/ holds its config and tokenizer files")


def judge_f16(figures: dict[str, Any], cfg: RunConfig) -> Gate:
    """Gate C: the F16 GGUF against the HF model it was converted from."""
    gate = Gate("C", STAGE, cfg)
    gate.at_least("gates.min_greedy_agreement", figures["greedy_agreement"], "F16-vs-HF greedy agreement", fix=F16_FIX)
    gate.at_most("gates.max_logit_diff", figures["max_logit_diff"], "F16-vs-HF largest logit difference", fix=F16_FIX)
    gate.at_most("gates.max_f16_perplexity_drift", figures["f16_perplexity_drift"], "F16-vs-HF perplexity drift",
                 fix=F16_FIX)
    return gate


def judge_quant(quant: str, figures: dict[str, Any], cfg: RunConfig) -> Gate:
    """Gate D: one quantized GGUF against the F16 GGUF it was made from."""
    fix = (f"{quant} loses too much of the F16 model: let gguf.ladder climb to a larger type (Q5_K_M, Q6_K, "
           "Q8_0); the loss is the quantizer's only where gate C passed")
    gate = Gate("D", STAGE, cfg)
    gate.at_least("gates.min_same_top_token_rate", figures["same_top_token_rate"], f"{quant} same-top-token rate",
                  fix=fix)
    gate.at_most("gates.max_mean_kld", figures["mean_kld"], f"{quant} mean KL divergence", fix=fix)
    gate.at_most("gates.max_perplexity_ratio", figures["perplexity_ratio"], f"{quant} perplexity ratio", fix=fix)
    gate.at_least("gates.min_output_rouge_l", figures["output_rouge_l"], f"{quant} output ROUGE-L against F16",
                  fix=fix)
    return gate


def gate_summary(gate: Gate) -> dict[str, Any]:
    """{"passed", <check setting>: {value, threshold, passed}} as the report's gates.C / gates.D.<type> show it."""
    return {"passed": gate.passed, **{c.setting.split(".")[-1]: {"value": c.value, "threshold": c.threshold,
                                                                  "passed": c.passed} for c in gate.checks}}
