"""Checks an imported folder against the GGUF it came from, before anything is published.

The GGUF is the reference twice over: llama.cpp defines how its vocabulary tokenizes, and the model
transformers loads from it defines the logits. The saved folder, reloaded from safetensors alone, must
agree with both on `import_gguf.verify_texts` (and the first one rendered as a chat prompt, when the file
has a chat template), and must carry the file's chat template unchanged. Any disagreement is an InputError
naming the text and the numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from components.common.config import RunConfig
from components.common.errors import InputError


def verify_import(out_dir: Path, source: Path, gguf_model, gguf_tokenizer, chat_template: str | None,
                  cfg: RunConfig) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    saved_tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    if chat_template and saved_tokenizer.chat_template != chat_template:
        raise InputError(f"{out_dir}: the saved tokenizer does not carry the GGUF's chat template "
                         "(tokenizer.chat_template); the import is not published")
    texts = verification_texts(cfg.import_gguf.verify_texts, gguf_tokenizer, chat_template)
    token_ids = same_token_ids(texts, source, gguf_tokenizer, saved_tokenizer)
    saved_model = AutoModelForCausalLM.from_pretrained(str(out_dir), dtype=gguf_model.dtype, use_safetensors=True)
    logits = logit_agreement(token_ids, gguf_model, saved_model.eval(), cfg.import_gguf.max_logit_diff)
    return {"texts": len(texts), "tokens": sum(len(ids) for ids in token_ids), "token_ids_match_llama_cpp": True,
            "chat_template_carried": bool(chat_template), **logits}


def verification_texts(texts: list[str], tokenizer, chat_template: str | None) -> list[str]:
    """The configured texts, plus the first as a chat prompt: the format the train stage will use."""
    if not chat_template:
        return list(texts)
    chat = tokenizer.apply_chat_template([{"role": "user", "content": texts[0]}], add_generation_prompt=True,
                                         tokenize=False)
    return [*texts, chat]


def same_token_ids(texts: list[str], source: Path, gguf_tokenizer, saved_tokenizer) -> list[list[int]]:
    """Token ids of each text (special tokens as the file says: BOS when it adds one, `<|im_start|>` read
    as one token), equal in llama.cpp, the GGUF's transformers tokenizer and the saved one."""
    with llama_cpp_vocab(source) as vocab:
        out = []
        for text in texts:
            reference = vocab.tokenize(text.encode("utf-8"), add_bos=True, special=True)
            from_gguf = gguf_tokenizer(text)["input_ids"]
            saved = saved_tokenizer(text)["input_ids"]
            if not reference == from_gguf == saved:
                raise InputError(f"{source}: token ids differ on {text[:40]!r}: llama.cpp {_head(reference)}, "
                                 f"transformers from the GGUF {_head(from_gguf)}, saved folder {_head(saved)}; "
                                 "the import is not published")
            out.append(list(reference))
    return out


def logit_agreement(token_ids: list[list[int]], gguf_model, saved_model, max_logit_diff: float) -> dict[str, Any]:
    import torch

    worst, same_top, positions = 0.0, 0, 0
    with torch.no_grad():
        for ids in token_ids:
            batch = torch.tensor([ids])
            expected, got = gguf_model(batch).logits.float(), saved_model(batch).logits.float()
            worst = max(worst, (expected - got).abs().max().item())
            same_top += int((expected.argmax(-1) == got.argmax(-1)).sum())
            positions += len(ids)
    if not worst <= max_logit_diff:  # also catches NaN
        raise InputError(f"the saved folder's logits differ from the GGUF-loaded model's by up to {worst:.3g} "
                         f"(import_gguf.max_logit_diff={max_logit_diff}); the import is not published")
    return {"max_abs_logit_diff": worst, "same_top_token_rate": same_top / positions}


@contextmanager
def llama_cpp_vocab(source: Path) -> Iterator:
    """llama.cpp's tokenizer for the file (vocabulary only, no weights), closed afterwards."""
    try:
        from llama_cpp import Llama
    except ImportError:
        raise InputError("llama-cpp-python is needed to check the GGUF's tokenizer: run `make setup` "
                         "(scripts/setup_llama_cpp.sh)") from None
    from components.gguf.runtime import quiet_llama_log

    llm = Llama(model_path=str(source), vocab_only=True, verbose=quiet_llama_log())
    try:
        yield llm
    finally:
        llm.close()


def _head(ids: list[int], n: int = 12) -> str:
    return str(list(ids[:n]))[:-1] + (", ...]" if len(ids) > n else "]")
