"""How split rows become training examples: template or chat template, EOS appended, loss on the
completion only, rows whose completion cannot fit dropped and counted; padding-free batches are exact."""

from __future__ import annotations

import pytest

from components.split.outputs import SplitRow
from components.train.examples import encode_rows
from tests.fixtures.models import fixture_config

TEMPLATE = fixture_config().train.prompt_template


def split_rows(*pairs: tuple[str, str], ids: list[str] | None = None) -> list[SplitRow]:
    return [SplitRow(id=(ids or [f"r{i}" for i in range(len(pairs))])[i], source_line=i + 1, split="train",
                     prompt=p, completion=c) for i, (p, c) in enumerate(pairs)]


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_base))


def test_completion_is_masked_in_and_ends_with_eos(tokenizer):
    rows = split_rows(("週末に山を歩いた。", "週末の山歩き"))
    encoded = encode_rows(rows, tokenizer, TEMPLATE, max_length=256)
    ids, mask = encoded.input_ids[0], encoded.completion_mask[0]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    completion = [t for t, m in zip(ids, mask, strict=True) if m]
    assert tokenizer.decode(completion) == "週末の山歩き" + tokenizer.eos_token
    prompt = [t for t, m in zip(ids, mask, strict=True) if not m]
    assert tokenizer.decode(prompt, skip_special_tokens=True) == TEMPLATE.format(prompt="週末に山を歩いた。")


def test_rows_whose_completion_cannot_fit_are_dropped_and_counted(tokenizer):
    long_prompt = "長い本文です。" * 200
    rows = split_rows(("短い本文。", "短いタイトル"), (long_prompt, "消えるタイトル"),
                      ("本文。" * 10, "とても長いタイトルがここで切れてしまう" * 3), ids=["fits", "too-long", "cut"])
    prompt_tokens = len(tokenizer(TEMPLATE.format(prompt="本文。" * 10))["input_ids"])
    encoded = encode_rows(rows, tokenizer, TEMPLATE, max_length=prompt_tokens + 3)
    assert encoded.rows_in == 3 and encoded.dropped == ["too-long"] and encoded.truncated == 1
    assert len(encoded.input_ids) == 2
    assert all(len(ids) <= prompt_tokens + 3 for ids in encoded.input_ids)
    assert all(sum(mask) >= 1 for mask in encoded.completion_mask)


def test_a_chat_template_replaces_the_plain_template(tiny_base):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_base))
    tokenizer.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
                               "{% if add_generation_prompt %}<s>assistant: {% endif %}")
    encoded = encode_rows(split_rows(("本文", "題名")), tokenizer, TEMPLATE, max_length=128)
    ids, mask = encoded.input_ids[0], encoded.completion_mask[0]
    assert "### 指示" not in tokenizer.decode(ids)
    assert tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m]) == "題名</s>"


def test_padding_free_batches_give_the_padded_loss(tiny_base, tokenizer):
    """The reason padding-free works on CPU: with the cache off (as trl's compute_loss sets it) the
    attention keeps the flattened examples apart, so the loss equals the padded batch's."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model = AutoModelForCausalLM.from_pretrained(str(tiny_base)).eval()
    rows = split_rows(("子育てと仕事の両立。", "両立の工夫"), ("山へ行った。", "山歩き"), ("机を見直した。毎日の習慣。", "机の話"))
    encoded = encode_rows(rows, tokenizer, TEMPLATE, max_length=128)
    examples = [{"input_ids": ids, "labels": [t if m else -100 for t, m in zip(ids, mask, strict=True)]}
                for ids, mask in zip(encoded.input_ids, encoded.completion_mask, strict=True)]
    padded = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)(examples)
    flat = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(examples)
    assert "attention_mask" not in flat and flat["input_ids"].shape[0] == 1
    with torch.no_grad():
        loss_padded = model(**padded, use_cache=False).loss
        loss_flat = model(**flat, use_cache=False).loss
    assert torch.allclose(loss_padded, loss_flat, atol=1e-5)
