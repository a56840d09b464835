"""The one way this stage opens a GGUF in llama.cpp: header checked first, closed and freed afterwards."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from components.common.errors import InputError, one_line
from components.common.prompts import PromptFormat, gguf_format
from components.gguf.header import check_header
from components.gguf.settings import GgufSection

VERBOSE_ENV = "FINEGATE_LLAMA_VERBOSE"


def quiet_llama_log() -> bool:
    """llama.cpp logs every tensor it loads or quantizes; keep only its errors unless asked for more."""
    verbose = os.environ.get(VERBOSE_ENV, "") not in ("", "0")
    logging.getLogger("llama-cpp-python").setLevel(logging.DEBUG if verbose else logging.ERROR)
    return verbose


@contextmanager
def open_gguf(path: str | Path, gguf: GgufSection, n_ctx: int | None = None) -> Iterator:
    """A llama_cpp.Llama over `path` with logits for every position (context `n_ctx`, default gguf.n_ctx).
    The header is validated before llama.cpp sees the file (MalformedGGUF otherwise); the model is closed
    and its memory freed on exit."""
    check_header(path, with_sha256=False)
    from llama_cpp import Llama

    verbose = quiet_llama_log()
    n_ctx = n_ctx or gguf.n_ctx
    try:
        llm = Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
                    n_threads=gguf.n_threads, n_gpu_layers=gguf.n_gpu_layers, logits_all=True,
                    verbose=verbose)
    except (ValueError, RuntimeError, OSError) as exc:  # a well-formed file llama.cpp still cannot use
        raise InputError(f"{path}: llama.cpp cannot load this GGUF ({one_line(str(exc))}); its header is valid, so "
                         "the model itself is incomplete or of an architecture this llama.cpp does not know "
                         f"(run with {VERBOSE_ENV}=1 to see llama.cpp's log)") from None
    try:
        yield llm
    finally:
        llm.close()
        del llm
        gc.collect()


def read_prompt_format(path: str | Path) -> PromptFormat:
    """The prompt format a GGUF carries (its tokenizer.chat_template and BOS/EOS texts), read by llama.cpp from
    the file's vocabulary alone (no weights loaded); the header is validated first."""
    check_header(path, with_sha256=False)
    from llama_cpp import Llama

    try:
        llm = Llama(model_path=str(path), vocab_only=True, verbose=quiet_llama_log())
    except (ValueError, RuntimeError, OSError) as exc:
        raise InputError(f"{path}: llama.cpp cannot read this GGUF's vocabulary ({one_line(str(exc))})") from None
    try:
        return gguf_format(llm, path)
    finally:
        llm.close()
