"""The tiny base model: a tokenizer that reloads identically, k-quant-friendly sizes, Japanese output,
held-out eval rows, and a deterministic build (local and on S3)."""

from __future__ import annotations

import json
import re

import pytest

from components.common import storage
from components.common.errors import ConfigError
from components.common.report import read_jsonl
from components.train.tiny_base import make_tiny_base
from tests.fixtures.models import fixture_config

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
UNSEEN = ["絵文字😀と顔文字(^_^)", "鬱蒐麤", "ﾊﾝｶｸｶﾅ ＡＢＣ", "  二つの空白  と\n改行\tタブ"]


def test_tokenizer_reloads_and_encodes_like_sentencepiece(tiny_base, sample_path):
    import sentencepiece as spm
    from transformers import AutoTokenizer, LlamaTokenizer

    sp = spm.SentencePieceProcessor(model_file=str(tiny_base / "tokenizer.model"))
    llama = LlamaTokenizer.from_pretrained(str(tiny_base), add_bos_token=True)
    auto = AutoTokenizer.from_pretrained(str(tiny_base))
    texts = [json.loads(line)["input"] for line in sample_path.read_text(encoding="utf-8").splitlines()[:20]]
    for text in texts + UNSEEN:
        ids = [sp.bos_id()] + sp.encode(text)
        assert llama(text)["input_ids"] == ids
        assert auto(text)["input_ids"] == ids
        assert llama.decode(ids, skip_special_tokens=True) == text
    assert (llama.bos_token_id, llama.eos_token_id, llama.pad_token_id) == (1, 2, 3)
    assert llama.unk_token_id not in llama("😀")["input_ids"]  # byte fallback, never <unk>


def test_tiny_base_is_a_safetensors_llama_with_k_quant_row_sizes(tiny_base):
    config = json.loads((tiny_base / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["hidden_size"] % 256 == 0 and config["intermediate_size"] % 256 == 0
    assert (tiny_base / "model.safetensors").is_file() and not list(tiny_base.glob("*.bin"))
    assert (tiny_base / "tokenizer.model").is_file() and (tiny_base / "tokenizer.json").is_file()


def test_pretraining_taught_it_japanese_titles_it_never_saw(tiny_base, sample_splits):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from components.train.examples import encode_rows
    from components.train.tiny_base import build_model, torch_threads

    cfg = fixture_config()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_base))
    trained = AutoModelForCausalLM.from_pretrained(str(tiny_base)).eval()
    untrained = build_model(cfg.tiny_base, len(tokenizer)).eval()
    held_out = read_jsonl(sample_splits / "test.jsonl")[:20]
    encoded = encode_rows(held_out, tokenizer, cfg.train.prompt_template, max_length=512)

    def completion_loss(model) -> float:
        losses = []
        with torch.no_grad(), torch_threads(1):
            for ids, mask in zip(encoded.input_ids, encoded.completion_mask, strict=True):
                labels = torch.tensor([[t if m else -100 for t, m in zip(ids, mask, strict=True)]])
                losses.append(model(input_ids=torch.tensor([ids]), labels=labels).loss.item())
        return sum(losses) / len(losses)

    # Titles of test rows (never pre-trained on) are far more likely to the trained model than to chance.
    assert completion_loss(trained) < completion_loss(untrained) - 1.0
    torch.manual_seed(0)
    enc = tokenizer(cfg.train.prompt_template.format(prompt=held_out[0]["prompt"]), return_tensors="pt")
    with torch.no_grad():
        out = trained.generate(**enc, max_new_tokens=30, do_sample=True, top_k=20)
    text = tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert len(JAPANESE.findall(text)) >= len(text.replace("\n", "").replace(" ", "")) // 2 > 0, text


def test_val_and_test_rows_never_reach_pretraining(tiny_base, sample_splits):
    info = json.loads((tiny_base / "tiny_base.json").read_text())
    held_out = sum(len(read_jsonl(sample_splits / f"{name}.jsonl")) for name in ("val", "test"))
    assert info["documents"]["held_out_rows"] == held_out > 0
    assert info["documents"]["prompt_pairs"] == len(read_jsonl(sample_splits / "train.jsonl"))


SMALL = ["tiny_base.vocab_size=300", "tiny_base.pretrain_steps=3", "tiny_base.batch_size=2",
         "tiny_base.seq_length=16", "tiny_base.num_layers=1"]


def test_build_is_deterministic_and_publishes_to_s3(tmp_path, s3_bucket):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{i}日目の日記：今日は晴れ。散歩をして、本を読んだ。" for i in range(60)), encoding="utf-8")
    cfg = fixture_config(*SMALL)
    make_tiny_base(corpus, str(tmp_path / "a"), cfg)
    info = make_tiny_base(corpus, f"s3://{s3_bucket}/tiny", cfg)
    assert info["documents"] == {"raw_texts": 60, "prompt_pairs": 0, "held_out_rows": 0}
    fetched = storage.localize(f"s3://{s3_bucket}/tiny", tmp_path / "fetched")
    for name in ("model.safetensors", "tokenizer.model", "tokenizer.json", "config.json"):
        assert storage.sha256_file(fetched / name) == storage.sha256_file(tmp_path / "a" / name), name


def test_jsonl_without_a_prompt_schema_is_pretrained_as_raw_text(tmp_path):
    corpus = tmp_path / "notes.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": f"{i}日目の日記：雨。", "tags": ["日記", "雨"]}, ensure_ascii=False)
                                for i in range(40)), encoding="utf-8")
    info = make_tiny_base(corpus, str(tmp_path / "m"), fixture_config(*SMALL))
    assert info["documents"] == {"raw_texts": 120, "prompt_pairs": 0, "held_out_rows": 0}


def test_row_sizes_that_k_quants_cannot_split_are_refused(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("今日は晴れ。\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="intermediate_size=640: must be a multiple of 256"):
        make_tiny_base(corpus, str(tmp_path / "m"), fixture_config("tiny_base.intermediate_size=640"))


@pytest.mark.slow
def test_llama_cpp_tokenizes_the_converted_model_like_transformers(tiny_base, sample_path, tmp_path):
    """The reason for no normalization and no dummy prefix: after GGUF conversion (which reads
    tokenizer.model) llama.cpp must split every prompt into the ids the model was trained on."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from transformers import AutoTokenizer

    from components.gguf.convert import convert_to_f16

    convert_to_f16(tiny_base, tmp_path / "tiny.gguf")
    llm = llama_cpp.Llama(str(tmp_path / "tiny.gguf"), vocab_only=True, verbose=False)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_base))
    template = fixture_config().train.prompt_template
    texts = [template.format(prompt=json.loads(line)["input"])
             for line in sample_path.read_text(encoding="utf-8").splitlines()[:10]]
    for text in texts + UNSEEN:
        assert llm.tokenize(text.encode(), add_bos=True, special=True) == tokenizer(text)["input_ids"], text
