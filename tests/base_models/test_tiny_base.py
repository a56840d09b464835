"""The tiny base model: a tokenizer that reloads identically, k-quant-friendly sizes, Japanese output,
held-out eval rows, and a deterministic build (local and on S3)."""

from __future__ import annotations

import json
import re

import pytest

from components.base_models.tiny_base import make_tiny_base
from components.common import storage
from components.common.errors import ConfigError
from components.common.report import read_jsonl
from components.common.text import normalize
from components.split.outputs import read_splits
from pipelines.cli import main as finegate
from tests.fixtures.models import TINY_BASE_SETTINGS, fixture_config

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


def test_pretraining_taught_it_japanese_titles_it_never_saw(tiny_base, sample_splits, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from components.base_models.tiny_base import build_model
    from components.common.torch_threads import torch_threads
    from components.train.examples import encode_rows

    cfg = fixture_config()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_base))
    trained = AutoModelForCausalLM.from_pretrained(str(tiny_base)).eval()
    untrained = build_model(cfg.tiny_base, len(tokenizer)).eval()
    held_out = read_splits(sample_splits, tmp_path / "cache").rows("test", limit=20)
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
    enc = tokenizer(cfg.train.prompt_template.format(prompt=held_out[0].prompt), return_tensors="pt")
    with torch.no_grad():
        out = trained.generate(**enc, max_new_tokens=30, do_sample=True, top_k=20)
    text = tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert len(JAPANESE.findall(text)) >= len(text.replace("\n", "").replace(" ", "")) // 2 > 0, text


def test_nothing_of_a_held_out_article_and_no_rejected_title_reaches_pretraining(tmp_path, sample_path, sample_splits):
    """The base model is pre-trained on the pipeline's train split only: no val/test article body or title
    (nor their tag-list twins and duplicates that clean rejected) and no rejected tag list is in its corpus."""
    from components.base_models.tiny_base import pretraining_corpus

    corpus = pretraining_corpus(sample_path, fixture_config(*TINY_BASE_SETTINGS), tmp_path)
    prompts = "\n".join(p for p, _ in corpus.pairs)
    titles = {c for _, c in corpus.pairs}
    splits = read_splits(sample_splits, tmp_path / "cache")
    held_out = splits.rows("val", "test")
    article = lambda prompt: prompt.split("\n\n", 1)[-1]  # noqa: E731 - the body after the instruction
    assert corpus.counts == {"train_pairs": len(splits.rows("train")), "raw_texts": 0}
    assert [r.id for r in held_out if article(r.prompt) in prompts] == []
    assert [r.id for r in held_out if r.completion in titles] == []
    rejected = read_jsonl(sample_splits.parent / "clean" / "rejected.jsonl")
    held_bodies = {normalize(article(r.prompt)) for r in held_out}
    twins = [r for r in rejected if normalize(str((r.get("raw") or {}).get("input", ""))) in held_bodies]
    assert twins, "the sample has rejected twins of held-out articles: the test must look at them"
    assert [r["source_line"] for r in twins if normalize(str(r["raw"]["output"])) in titles] == []
    tag_lists = [r for r in rejected if r["rule"] == "tag_list"]
    assert tag_lists and not any(normalize(str(r["raw"].get("output", ""))) in titles for r in tag_lists)


SMALL = ["tiny_base.vocab_size=300", "tiny_base.pretrain_steps=3", "tiny_base.batch_size=2",
         "tiny_base.seq_length=16", "tiny_base.num_layers=1"]


@pytest.mark.slow
def test_build_is_deterministic_and_publishes_to_s3(tmp_path, s3_bucket):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{i}日目の日記：今日は晴れ。散歩をして、本を読んだ。" for i in range(60)), encoding="utf-8")
    cfg = fixture_config(*SMALL)
    make_tiny_base(corpus, str(tmp_path / "a"), cfg)
    info = make_tiny_base(corpus, f"s3://{s3_bucket}/tiny", cfg)
    assert info["documents"] == {"train_pairs": 0, "raw_texts": 60}
    fetched = storage.localize(f"s3://{s3_bucket}/tiny", tmp_path / "fetched")
    for name in ("model.safetensors", "tokenizer.model", "tokenizer.json", "config.json"):
        assert storage.sha256_file(fetched / name) == storage.sha256_file(tmp_path / "a" / name), name


@pytest.mark.slow
def test_jsonl_without_a_prompt_schema_is_pretrained_as_raw_text(tmp_path):
    corpus = tmp_path / "notes.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": f"{i}日目の日記：雨。", "tags": ["日記", "雨"]}, ensure_ascii=False)
                                for i in range(40)), encoding="utf-8")
    info = make_tiny_base(corpus, str(tmp_path / "m"), fixture_config(*SMALL))
    assert info["documents"] == {"train_pairs": 0, "raw_texts": 120}


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


@pytest.mark.slow
def test_make_tiny_base_from_plain_text(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{i}日目：今日は晴れ。散歩をして本を読んだ。" for i in range(40)), encoding="utf-8")
    code = finegate(["make-tiny-base", "--corpus", str(corpus), "--output-dir", str(tmp_path / "base"),
                     "--set", "tiny_base.vocab_size=300", "--set", "tiny_base.pretrain_steps=2",
                     "--set", "tiny_base.seq_length=16", "--set", "tiny_base.batch_size=2"])
    assert code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pretrain_steps"] == 2 and info["documents"]["raw_texts"] == 40
    assert (tmp_path / "base" / "model.safetensors").is_file() and (tmp_path / "base" / "tokenizer.model").is_file()
