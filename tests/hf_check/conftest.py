"""Real tiny models for the hf_check tests: one that learned its titles, one that answers 」」」」.

Both are character-level Llamas trained in-process (tests/hf_check/tiny_model.py) on the prompt template
the train stage uses, so hf_check formats prompts the way they were trained.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.common.config import RunConfig
from tests.fixtures.stage_outputs import write_splits
from tests.hf_check import tiny_model

# (article body, title): short, so a tiny model learns them in seconds.
PAIRS = [
    ("40歳の誕生日に中古の電子ピアノを買って、昔やめたピアノを再開した。", "40歳でピアノを再開した"),
    ("テントを張って焚き火をおこし、ただ炎を眺めて過ごす夜が好きだ。", "焚き火を眺めるだけの夜"),
    ("御朱印集めを始めて2年、87か所の寺社をまわって学んだこと。", "御朱印集め2年で学んだこと"),
    ("毎朝5時に起きて30分だけ本を読む習慣を半年続けてみた。", "朝5時の読書を半年続けた"),
    ("週末だけ畑を借りて、家族でトマトとナスを育てている。", "週末だけの家族菜園"),
    ("転職して半年、年収よりも大事だと気づいたのは人間関係だった。", "転職して気づいた大事なこと"),
]
BROKEN_ANSWER = "」" * 24


def formatted(cfg: RunConfig, prompt: str) -> str:
    return cfg.train.prompt_template.format(prompt=prompt)


@pytest.fixture(scope="session")
def hf_cfg() -> RunConfig:
    cfg = RunConfig()
    cfg.hf_check.max_new_tokens = 24
    cfg.hf_check.batch_size = 4
    return cfg


@pytest.fixture(scope="session")
def title_splits(tmp_path_factory) -> Path:
    """val.jsonl and test.jsonl in the split stage's record format."""
    root = tmp_path_factory.mktemp("splits")
    rows = [{"id": f"r{i}", "source_line": i + 1, "prompt": p, "completion": t} for i, (p, t) in enumerate(PAIRS)]
    return write_splits(root, [], rows[:3], rows[3:])


@pytest.fixture(scope="session")
def _trained(hf_cfg):
    texts = [formatted(hf_cfg, p) + t for p, t in PAIRS] + [BROKEN_ANSWER]
    model, tokenizer = tiny_model.build_tiny_llama(texts)
    prompts = [formatted(hf_cfg, p) for p, _ in PAIRS]
    loss = tiny_model.train_completions(model, tokenizer, prompts, [t for _, t in PAIRS], steps=60)
    assert loss < 0.05, f"the tiny model did not learn its titles (loss {loss:.3f})"
    return model, tokenizer, prompts


@pytest.fixture(scope="session")
def learned_model_dir(_trained, tmp_path_factory) -> Path:
    """Answers each training prompt with its title, then EOS."""
    model, tokenizer, _ = _trained
    return tiny_model.save(model, tokenizer, tmp_path_factory.mktemp("learned"))


@pytest.fixture(scope="session")
def broken_model_dir(_trained, learned_model_dir, tmp_path_factory) -> Path:
    """The same model fine-tuned further on completions of 」」」」: greedy decoding emits 」 over and over,
    like the model of the failed run this project learns from."""
    import copy

    model, tokenizer, prompts = _trained
    broken = copy.deepcopy(model)
    tiny_model.train_completions(broken, tokenizer, prompts, [BROKEN_ANSWER] * len(prompts), steps=20)
    return tiny_model.save(broken, tokenizer, tmp_path_factory.mktemp("broken"))


@pytest.fixture(scope="session")
def newline_first_model_dir(_trained, tmp_path_factory) -> Path:
    """Starts each answer with a blank line, then the title: the newline before the answer is not its end."""
    import copy

    model, tokenizer, prompts = _trained
    shifted = copy.deepcopy(model)
    tiny_model.train_completions(shifted, tokenizer, prompts, ["\n" + t for _, t in PAIRS], steps=30)
    return tiny_model.save(shifted, tokenizer, tmp_path_factory.mktemp("newline_first"))
