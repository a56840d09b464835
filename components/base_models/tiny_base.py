"""The tiny base model for the demo, the tests and CI: no model hub is reachable there, so we build one.

    finegate make-tiny-base --corpus data/sample/note_titles.jsonl --output-dir .cache/tiny-base
    finegate make-tiny-base --corpus corpus.txt --output-dir s3://models/tiny-base --set tiny_base.pretrain_steps=100

1. A SentencePiece BPE tokenizer trained on the corpus, with byte fallback (any character encodes) and no
   normalization or dummy prefix, so `LlamaTokenizer` (a `tokenizers` BPE with Metaspace) encodes exactly
   like SentencePiece and llama.cpp's converter (which reads `tokenizer.model`) agrees with both.
2. A small `LlamaForCausalLM` (`tiny_base.*`); hidden and intermediate sizes must be multiples of 256 so
   llama.cpp's k-quants (Q4_K_M: 256-wide super-blocks) quantize every row.
3. Brief full-parameter pre-training with a plain torch loop, so the model writes Japanese titles and the
   gates downstream measure something real. For a fine-tuning data set the corpus is the pipeline's own
   train split (the real clean and split stages, same config), formatted with `train.prompt_template`: the
   prompt's tokens weigh `tiny_base.prompt_loss_weight` in the loss and the title and EOS weigh 1, so the
   base learns to answer the template with a title that ends. Nothing of a val/test article (its group or
   duplicate cluster, kept or rejected) and nothing clean rejected (tag lists, noise) reaches the model.
   Any other corpus (plain text, JSONL that is not a data set) is pre-trained on as raw text.
4. Saved as safetensors + config + tokenizer (`tokenizer.model` kept beside `tokenizer.json`), plus
   `tiny_base.json` describing the build. Deterministic for `tiny_base.seed`.
"""

from __future__ import annotations

import io
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.base_models.settings import TinyBaseSection
from components.common import storage
from components.common.config import RunConfig
from components.common.errors import ConfigError, FinegateError, InputError
from components.common.report import JsonProblem, parse_json, read_jsonl, read_text
from components.common.torch_threads import torch_threads

BUILD_INFO = "tiny_base.json"
# Special token ids follow Llama's SentencePiece convention; <pad> is added so batches need not pad with EOS.
UNK_ID, BOS_ID, EOS_ID, PAD_ID = 0, 1, 2, 3
_K_QUANT_BLOCK = 256


@dataclass
class Corpus:
    """What pre-training reads. `pairs`: (prompt, completion) of the rows the pipeline will train on
    (its train split); `texts`: raw text, for a corpus that is not a fine-tuning data set."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def tokenizer_sentences(self) -> list[str]:
        return [t for pair in self.pairs for t in pair] + self.texts


def read_text_lines(path: Path) -> list[str]:
    """Every non-blank line of a text corpus; for a JSONL file, every string inside each row."""
    raw = read_text(path, "a corpus (JSONL or plain text)")
    lines = [line for line in raw.split("\n") if line.strip()]
    if not lines:
        raise InputError(f"{path}: the corpus is empty")
    if path.suffix not in (".jsonl", ".json") and not lines[0].lstrip().startswith("{"):
        return lines
    texts = []
    for n, line in enumerate(lines, 1):
        try:
            row = parse_json(line)
        except JsonProblem as exc:
            raise InputError(f"{path}:{n}: {exc.reason}; give a JSONL file or plain text") from None
        texts.extend(_strings(row))
    return texts


def _strings(value: Any) -> list[str]:
    """Every non-empty string inside a row, nested ones (chat `messages`) included."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _train_split_pairs(corpus: Path, cfg: RunConfig, workdir: Path) -> list[tuple[str, str]] | None:
    """(prompt, completion) of the rows the pipeline's split stage puts in train, or None when the clean
    stage cannot read the corpus as a fine-tuning data set.

    The real clean and split stages run with the pipeline's config, so the train split here is the
    pipeline's. Only those rows are pre-trained on: nothing the clean stage rejected (tag lists, noise, the
    duplicates and near duplicates of a held-out article) and nothing of a val/test article (the split
    keeps a `group` and a duplicate cluster in one split) reaches the base model."""
    from components.clean.core import run_clean
    from components.split.core import run_split

    cfg = cfg.model_copy(deep=True)
    cfg.clean.write_chart = False
    try:
        cleaned = run_clean(str(corpus), workdir / "clean", cfg)
    except FinegateError as exc:
        print(f"make-tiny-base: no prompt/completion pairs in {corpus.name} ({exc}); pre-training on raw text only",
              file=sys.stderr)
        return None
    if not cleaned.metrics.get("kept"):
        return None
    try:
        run_split(str(workdir / "clean" / "kept.jsonl"), workdir / "split", cfg)
    except FinegateError as exc:
        raise ConfigError(f"make-tiny-base: cannot tell the pipeline's train split apart: {exc}") from None
    return [(r["prompt"], r["completion"]) for r in read_jsonl(workdir / "split" / "train.jsonl")]


def pretraining_corpus(corpus: Path, cfg: RunConfig, workdir: Path) -> Corpus:
    pairs = _train_split_pairs(corpus, cfg, workdir) if _looks_like_rows(corpus) else None
    if pairs is not None:
        return Corpus(pairs=pairs, counts={"train_pairs": len(pairs), "raw_texts": 0})
    texts = read_text_lines(corpus)
    return Corpus(texts=texts, counts={"train_pairs": 0, "raw_texts": len(texts)})


def _looks_like_rows(path: Path) -> bool:
    if path.suffix.lower() in (".jsonl", ".json", ".csv", ".tsv", ".parquet"):
        return True
    with path.open("rb") as f:
        return f.read(64).lstrip().startswith(b"{")


def train_tokenizer(texts: list[str], section: TinyBaseSection, out_dir: Path):
    """Trains SentencePiece BPE, writes tokenizer.model, returns the reloaded `LlamaTokenizer`."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    model = io.BytesIO()
    # One sentence per line of text: SentencePiece cannot hold a newline inside a piece anyway (it is
    # encoded through byte fallback), and shorter sentences keep training fast.
    sentences = [line for text in texts for line in text.split("\n") if line.strip()]
    options = dict(
        sentence_iterator=iter(sentences), model_writer=model, model_type="bpe", vocab_size=section.vocab_size,
        byte_fallback=True, character_coverage=section.character_coverage, split_digits=True,
        # No normalization and no dummy prefix: HF's Llama tokenizer has no normalizer and is told
        # add_prefix_space=False, and llama.cpp's converter copies that flag, so all three agree.
        normalization_rule_name="identity", add_dummy_prefix=False, remove_extra_whitespaces=False,
        unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, pad_id=PAD_ID, pad_piece="<pad>",
        shuffle_input_sentence=False, num_threads=1, max_sentence_length=1 << 16, minloglevel=2,
        hard_vocab_limit=False,
    )
    try:
        spm.SentencePieceTrainer.train(**options)
    except RuntimeError as exc:
        if "Vocabulary size is smaller than required_chars" in str(exc):
            raise ConfigError(f"tiny_base.vocab_size={section.vocab_size} cannot hold the characters the corpus needs "
                              f"at tiny_base.character_coverage={section.character_coverage} ({exc}); raise the "
                              "vocabulary or lower the coverage (rarer characters then fall back to bytes)") from None
        raise
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tokenizer.model").write_bytes(model.getvalue())
    return LlamaTokenizer.from_pretrained(str(out_dir), add_bos_token=True, add_prefix_space=False, pad_token="<pad>")


def _check_sizes(section: TinyBaseSection) -> None:
    for name in ("hidden_size", "intermediate_size"):
        value = getattr(section, name)
        if value % _K_QUANT_BLOCK:
            raise ConfigError(f"tiny_base.{name}={value}: must be a multiple of {_K_QUANT_BLOCK} "
                              "(llama.cpp k-quants such as Q4_K_M quantize rows in 256-wide blocks)")
    if section.hidden_size % section.num_heads or section.num_heads % section.num_kv_heads:
        raise ConfigError(f"tiny_base: hidden_size {section.hidden_size} must divide into num_heads "
                          f"{section.num_heads}, and num_heads into num_kv_heads {section.num_kv_heads}")


def build_model(section: TinyBaseSection, vocab_size: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=section.hidden_size, intermediate_size=section.intermediate_size,
        num_hidden_layers=section.num_layers, num_attention_heads=section.num_heads,
        num_key_value_heads=section.num_kv_heads, max_position_embeddings=section.max_position_embeddings,
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID, tie_word_embeddings=False,
    )
    torch.manual_seed(section.seed)
    return LlamaForCausalLM(config)


def token_stream(corpus: Corpus, tokenizer, cfg: RunConfig) -> tuple[list[int], list[float]]:
    """Every document as token ids with a loss weight per token. A train pair is the training prompt
    format with its title and EOS (train's own encoding, components/common/prompts.py); its prompt tokens
    weigh tiny_base.prompt_loss_weight and the title and EOS weigh 1, so the model learns to end the template
    with a short title rather than to continue the article. Raw text weighs 1 throughout."""
    from components.common.prompts import hf_encoder, training_format

    ids: list[int] = []
    weights: list[float] = []
    template = cfg.tiny_base.pretrain_template or cfg.train.prompt_template
    encoder = hf_encoder(training_format(tokenizer, template), tokenizer)
    for prompt, completion in corpus.pairs:
        pair_ids, n_prompt = encoder.pair_ids(prompt, completion)
        ids.extend(pair_ids)
        weights.extend([cfg.tiny_base.prompt_loss_weight] * n_prompt + [1.0] * (len(pair_ids) - n_prompt))
    for text in corpus.texts:
        text_ids = tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
        ids.extend(text_ids)
        weights.extend([1.0] * len(text_ids))
    return ids, weights


def token_blocks(ids: list[int], weights: list[float], seq_length: int):
    """The stream cut into (blocks of seq_length token ids, their loss weights)."""
    import torch

    n_blocks = len(ids) // seq_length
    if n_blocks < 1:
        raise InputError(f"the corpus is {len(ids)} tokens, shorter than one block of "
                         f"tiny_base.seq_length={seq_length}")
    cut = n_blocks * seq_length
    return (torch.tensor(ids[:cut]).view(n_blocks, seq_length),
            torch.tensor(weights[:cut], dtype=torch.float32).view(n_blocks, seq_length))


def weighted_lm_loss(logits, input_ids, weights):
    """Next-token cross-entropy, each target token weighted (the weight of the token being predicted)."""
    import torch.nn.functional as F

    nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1),
                          reduction="none")
    w = weights[:, 1:].reshape(-1)
    return (nll * w).sum() / w.sum().clamp_min(1e-8)


def pretrain(model, blocks, weights, section: TinyBaseSection) -> list[float]:
    """Plain full-parameter causal-LM training on weighted tokens: AdamW, linear warmup then cosine decay."""
    import torch

    generator = torch.Generator().manual_seed(section.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=section.learning_rate, weight_decay=0.01)
    warmup = max(1, int(section.pretrain_steps * section.warmup_fraction))

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, section.pretrain_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    model.train()
    losses: list[float] = []
    every = max(1, section.pretrain_steps // 10)
    for step in range(section.pretrain_steps):
        pick = torch.randint(len(blocks), (section.batch_size,), generator=generator)
        batch = blocks[pick]
        loss = weighted_lm_loss(model(input_ids=batch).logits, batch, weights[pick])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if (step + 1) % every == 0 or step + 1 == section.pretrain_steps:
            print(f"make-tiny-base: pre-train step {step + 1}/{section.pretrain_steps} loss {losses[-1]:.3f}",
                  file=sys.stderr, flush=True)
    model.eval()
    return losses


def make_tiny_base(corpus: str | Path, output: str, cfg: RunConfig) -> dict[str, Any]:
    """Builds the tiny base model from `corpus` into `output` (a folder or an s3:// prefix)."""
    section = cfg.tiny_base
    _check_sizes(section)
    with torch_threads(section.num_threads):
        return _make(corpus, output, cfg)


def _make(corpus: str | Path, output: str, cfg: RunConfig) -> dict[str, Any]:
    import torch

    section = cfg.tiny_base
    started = time.monotonic()
    torch.manual_seed(section.seed)
    with tempfile.TemporaryDirectory(prefix="finegate-tiny-base-") as tmp:
        workdir = Path(tmp)
        corpus_path = storage.localize(str(corpus), workdir / "input", verify=cfg.storage.verify_sha256)
        corpus_data = pretraining_corpus(corpus_path, cfg, workdir)
        out_dir = workdir / "model" if storage.is_s3(output) else Path(output)
        tokenizer = train_tokenizer(corpus_data.tokenizer_sentences(), section, out_dir)
        model = build_model(section, len(tokenizer))
        blocks, weights = token_blocks(*token_stream(corpus_data, tokenizer, cfg), section.seq_length)
        losses = pretrain(model, blocks, weights, section)
        model.generation_config.pad_token_id = PAD_ID
        model.save_pretrained(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))
        info = {
            "corpus": str(corpus), "output": str(output), "seed": section.seed,
            "vocab_size": len(tokenizer), "parameters": sum(p.numel() for p in model.parameters()),
            "corpus_tokens": int(blocks.numel()), "documents": corpus_data.counts,
            "prompt_loss_weight": section.prompt_loss_weight,
            "pretrain_steps": section.pretrain_steps, "first_loss": losses[0] if losses else None,
            "final_loss": sum(losses[-10:]) / len(losses[-10:]) if losses else None,
            "seconds": round(time.monotonic() - started, 1),
        }
        (out_dir / BUILD_INFO).write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        if storage.is_s3(output):
            storage.publish(out_dir, output)
    return info

