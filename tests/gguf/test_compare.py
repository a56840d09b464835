"""The fidelity figures on small, hand-computable logits and outputs."""

from __future__ import annotations

import math

import pytest
import torch

from components.common.config import RunConfig
from components.gguf.compare import LogitStats, compare_greedy, first_difference
from components.gguf.gates import judge_f16, judge_quant

IDS = [1, 0, 2]  # three positions; targets of positions 0 and 1 are tokens 0 and 2


def stats_of(ref: list[list[float]], cand: list[list[float]]) -> dict:
    s = LogitStats()
    s.add(torch.tensor(ref), torch.tensor(cand), IDS)
    return s.summary()


def test_identical_logits_agree_fully():
    logits = [[2.0, 0.0, -1.0], [0.0, 1.0, 3.0], [1.0, 1.5, 0.0]]
    m = stats_of(logits, logits)
    assert m["same_top_token_rate"] == 1.0
    assert m["max_logit_diff"] == 0.0
    assert m["mean_kld"] == pytest.approx(0.0, abs=1e-12)
    assert m["perplexity_ratio"] == pytest.approx(1.0)


def test_a_constant_shift_changes_logits_but_not_the_distribution():
    logits = [[2.0, 0.0, -1.0], [0.0, 1.0, 3.0], [1.0, 1.5, 0.0]]
    shifted = [[v + 0.5 for v in row] for row in logits]
    m = stats_of(logits, shifted)
    assert m["max_logit_diff"] == pytest.approx(0.5)
    assert m["mean_kld"] == pytest.approx(0.0, abs=1e-12)
    assert m["same_top_token_rate"] == 1.0


def test_kld_top_token_and_perplexity_match_hand_computation():
    ref = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]  # uniform: p = 1/3 everywhere
    cand = [[math.log(2), 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]  # first position: p = (1/2, 1/4, 1/4)
    m = stats_of(ref, cand)
    kld_first = sum(1 / 3 * math.log((1 / 3) / q) for q in (0.5, 0.25, 0.25))
    assert m["mean_kld"] == pytest.approx(kld_first / 3)
    # argmax of a uniform row is token 0, and so is the candidate's first row: all three agree.
    assert m["same_top_token_rate"] == 1.0
    # position 0 predicts token 0 (p 1/3 -> 1/2), position 1 predicts token 2 (1/3 both)
    ppl_ref = math.exp(-(math.log(1 / 3) * 2) / 2)
    ppl_cand = math.exp(-(math.log(1 / 2) + math.log(1 / 3)) / 2)
    assert m["reference_perplexity"] == pytest.approx(ppl_ref)
    assert m["perplexity_ratio"] == pytest.approx(ppl_cand / ppl_ref)


def test_a_flipped_top_token_is_counted():
    ref = [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]
    cand = [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 3.0, 2.0]]
    assert stats_of(ref, cand)["same_top_token_rate"] == pytest.approx(2 / 3)


def test_first_difference_of_token_sequences():
    assert first_difference([1, 2, 3], [1, 2, 3]) == 3
    assert first_difference([1, 2, 3], [1, 5, 3]) == 1
    assert first_difference([1, 2], [1, 2, 3, 4]) == 2


def test_greedy_agreement_counts_identical_outputs_and_shared_prefixes():
    texts = {1: "週末", 2: "の", 3: "山歩き", 4: "海"}

    def decode(ids):
        return "".join(texts[i] for i in ids)

    ref = [[1, 2, 3], [1, 2, 3], []]
    cand = [[1, 2, 3], [1, 2, 4], []]
    g = compare_greedy(ref, cand, decode)
    assert g["identical_outputs"] == 2
    assert g["greedy_agreement"] == pytest.approx(2 / 3)
    assert g["greedy_token_agreement"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert 0.0 < g["output_rouge_l"] < 1.0  # 週末の山歩き vs 週末の海: partial word overlap, two empties agree


def test_gates_name_the_failing_figure_and_its_gate():
    cfg = RunConfig()
    f16 = {"greedy_agreement": 0.4, "max_logit_diff": 0.01, "f16_perplexity_drift": 0.0}
    c = judge_f16(f16, cfg)
    assert not c.passed and len(c.reasons) == 1
    assert c.reasons[0].startswith("gate C: F16-vs-HF greedy agreement 0.4 < gates.min_greedy_agreement=0.8")
    quant = {"same_top_token_rate": 0.95, "mean_kld": 0.3, "perplexity_ratio": 1.01, "output_rouge_l": float("nan")}
    d = judge_quant("Q4_K_M", quant, cfg)
    # A figure that could not be measured (NaN) fails its check: a gate never passes on nothing.
    assert [c.setting for c in d.checks if not c.passed] == ["gates.max_mean_kld", "gates.min_output_rouge_l"]
    assert d.reasons[0].startswith("gate D: Q4_K_M mean KL divergence 0.3 > gates.max_mean_kld=0.1")
    assert "could not be measured" in d.reasons[1]


def test_figures_do_not_depend_on_the_chunk_size():
    torch.manual_seed(0)
    ref, cand = torch.randn(7, 11), torch.randn(7, 11)
    ids = [3, 1, 4, 1, 5, 9, 2]
    whole, chunked = LogitStats(), LogitStats()
    whole.add(ref, cand, ids, chunk=64)
    chunked.add(ref, cand, ids, chunk=2)
    for key, value in whole.summary().items():
        assert chunked.summary()[key] == pytest.approx(value), key
