"""The tiny base model for the demo, the tests and CI: no model hub is reachable there, so we build one.

    finegate make-tiny-base --corpus data/sample/note_titles.jsonl --output .cache/tiny-base
    finegate make-tiny-base --corpus corpus.txt --output s3://models/tiny-base --set tiny_base.pretrain_steps=100

1. A SentencePiece BPE tokenizer trained on the corpus, with byte fallback (any character encodes) and no
   normalization or dummy prefix, so `LlamaTokenizer` (a `tokenizers` BPE with Metaspace) encodes exactly
   like SentencePiece and llama.cpp's converter (which reads `tokenizer.model`) agrees with both.
2. A small `LlamaForCausalLM` (`tiny_base.*`); hidden and intermediate sizes must be multiples of 256 so
   llama.cpp's k-quants (Q4_K_M: 256-wide super-blocks) quantize every row.
3. Brief full-parameter pre-training on the corpus with a plain torch loop, so the model writes Japanese and
   the gates downstream measure something real. The corpus is every string field of each JSONL row (or each
   line of a text file) plus the body→title pairs of the rows the clean stage keeps, formatted with
   `train.prompt_template`, so the base model knows the task's format weakly.
   With `tiny_base.hold_out_eval_splits` (default on), rows the split stage (same config) puts into val or
   test are left out of pre-training entirely, so evaluation never scores text the base model memorised.
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from components.common import storage
from components.common.config import RunConfig, TinyBaseSection
from components.common.errors import ConfigError, FinegateError, InputError
from components.common.report import JsonProblem, parse_json, read_jsonl, read_text

BUILD_INFO = "tiny_base.json"
# Special token ids follow Llama's SentencePiece convention; <pad> is added so batches need not pad with EOS.
UNK_ID, BOS_ID, EOS_ID, PAD_ID = 0, 1, 2, 3
_K_QUANT_BLOCK = 256


def read_corpus_rows(path: Path) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """(rows, texts): JSONL rows (None for plain text) and every non-empty string field or line."""
    raw = read_text(path, "a corpus (JSONL or plain text)")
    # Split at newlines only, as the clean stage numbers lines (str.splitlines also splits at U+2028, which
    # JSON strings may hold raw): the held-out source lines below must name the same rows.
    lines = [line for line in raw.split("\n") if line.strip()]
    if not lines:
        raise InputError(f"{path}: the corpus is empty")
    if path.suffix in (".jsonl", ".json") or lines[0].lstrip().startswith("{"):
        rows = []
        for n, line in enumerate(lines, 1):
            try:
                row = parse_json(line)
            except JsonProblem as exc:
                raise InputError(f"{path}:{n}: {exc.reason}; give a JSONL file or plain text") from None
            rows.append(row if isinstance(row, dict) else {"text": str(row)})
        return rows, [t for row in rows for t in _strings(row)]
    return None, lines


def _strings(value: Any) -> list[str]:
    """Every non-empty string inside a row, nested ones (chat `messages`) included."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _clean_pairs(corpus: Path, cfg: RunConfig, workdir: Path) -> tuple[list[tuple[str, str]], set[int]]:
    """(prompt, completion) pairs of the rows the clean stage keeps, and the source lines held out.

    Runs the real clean stage (and, with `hold_out_eval_splits`, the split stage) with the same config
    the pipeline will use, so the rows held out here are exactly the pipeline's val and test rows."""
    try:
        from components.clean.core import run_clean
    except ImportError:
        print("make-tiny-base: clean stage not available; pre-training on raw text only", file=sys.stderr)
        return [], set()
    cfg = cfg.model_copy(deep=True)
    cfg.clean.write_chart = False
    try:
        run_clean(str(corpus), workdir / "clean", cfg)
    except FinegateError as exc:
        # A corpus that is not a fine-tuning data set (no prompt/completion schema) is plain text to us.
        print(f"make-tiny-base: no prompt/completion pairs in {corpus.name} ({exc}); pre-training on raw text only",
              file=sys.stderr)
        return [], set()
    kept = _read_jsonl(workdir / "clean" / "kept.jsonl")
    if not kept:
        return [], set()
    if not cfg.tiny_base.hold_out_eval_splits:
        return [(r["prompt"], r["completion"]) for r in kept], set()
    from components.split.core import run_split

    try:
        run_split(str(workdir / "clean" / "kept.jsonl"), workdir / "split", cfg)
    except FinegateError as exc:
        raise ConfigError(f"make-tiny-base: cannot hold out val/test rows: {exc} "
                          "(or set tiny_base.hold_out_eval_splits=false)") from None
    train = _read_jsonl(workdir / "split" / "train.jsonl")
    held_out = {int(r["source_line"]) for name in ("val", "test") for r in _read_jsonl(workdir / "split" / f"{name}.jsonl")}
    return [(r["prompt"], r["completion"]) for r in train], held_out


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return read_jsonl(path)


def pretraining_documents(corpus: Path, cfg: RunConfig, workdir: Path) -> tuple[list[str], dict[str, int]]:
    """The texts pre-training reads: raw strings of every row not held out, plus formatted clean pairs."""
    rows, texts = read_corpus_rows(corpus)
    pairs: list[tuple[str, str]] = []
    held_out: set[int] = set()
    if rows is not None and cfg.tiny_base.include_prompt_pairs:
        pairs, held_out = _clean_pairs(corpus, cfg, workdir)
    if held_out:
        # source_line counts physical lines of the file from 1 (blank lines included), as the clean stage does.
        texts = []
        for line_no, line in enumerate(read_text(corpus).split("\n"), 1):
            if line.strip() and line_no not in held_out:
                texts.extend(_strings(parse_json(line)))
    formatted = [cfg.train.prompt_template.format(prompt=p) + c for p, c in pairs]
    counts = {"raw_texts": len(texts), "prompt_pairs": len(formatted), "held_out_rows": len(held_out)}
    return texts + formatted, counts


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


def token_blocks(texts: list[str], tokenizer, seq_length: int):
    """Every document as BOS ... EOS, concatenated and cut into blocks of seq_length tokens."""
    import torch

    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer(text)["input_ids"])
        stream.append(tokenizer.eos_token_id)
    n_blocks = len(stream) // seq_length
    if n_blocks < 1:
        raise InputError(f"the corpus is {len(stream)} tokens, shorter than one block of "
                         f"tiny_base.seq_length={seq_length}")
    return torch.tensor(stream[: n_blocks * seq_length]).view(n_blocks, seq_length)


def pretrain(model, blocks, section: TinyBaseSection) -> list[float]:
    """Plain full-parameter causal-LM training: AdamW, linear warmup then cosine decay."""
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
        batch = blocks[torch.randint(len(blocks), (section.batch_size,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
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


@contextmanager
def torch_threads(n: int | None):
    """torch's CPU thread count set to `n` for a block, then restored (None leaves it alone)."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _make(corpus: str | Path, output: str, cfg: RunConfig) -> dict[str, Any]:
    import torch

    section = cfg.tiny_base
    started = time.monotonic()
    torch.manual_seed(section.seed)
    with tempfile.TemporaryDirectory(prefix="finegate-tiny-base-") as tmp:
        workdir = Path(tmp)
        corpus_path = storage.localize(str(corpus), workdir / "input", verify=cfg.storage.verify_sha256)
        documents, counts = pretraining_documents(corpus_path, cfg, workdir)
        out_dir = workdir / "model" if storage.is_s3(output) else Path(output)
        tokenizer = train_tokenizer(documents, section, out_dir)
        model = build_model(section, len(tokenizer))
        blocks = token_blocks(documents, tokenizer, section.seq_length)
        losses = pretrain(model, blocks, section)
        model.generation_config.pad_token_id = PAD_ID
        model.save_pretrained(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))
        info = {
            "corpus": str(corpus), "output": str(output), "seed": section.seed,
            "vocab_size": len(tokenizer), "parameters": sum(p.numel() for p in model.parameters()),
            "corpus_tokens": int(blocks.numel()), "documents": counts,
            "pretrain_steps": section.pretrain_steps, "first_loss": losses[0] if losses else None,
            "final_loss": sum(losses[-10:]) / len(losses[-10:]) if losses else None,
            "seconds": round(time.monotonic() - started, 1),
        }
        (out_dir / BUILD_INFO).write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        if storage.is_s3(output):
            storage.publish(out_dir, output)
    return info

