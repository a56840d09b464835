"""A GGUF file -> a Hugging Face base-model folder the train stage reads: `finegate import-gguf`.

    finegate import-gguf --gguf model.Q4_1.gguf --output-dir .cache/smollm2
    finegate import-gguf --gguf s3://models/x.gguf --output-dir s3://models/x-hf --dtype bfloat16

1. The file's header is checked first (components/gguf/header.py): a truncated, malformed or non-GGUF file
   is refused with one line before any loader reads it; its sha256 is recorded.
2. transformers reads the file's metadata into a config; an architecture its GGUF loader does not support,
   or one that is not a causal LM, is refused with one line.
3. transformers loads the weights dequantized, in `import_gguf.dtype`. `save_pretrained` refuses a model
   loaded from GGUF, so the weights are copied into a fresh model of the same config, which saves as
   safetensors with config.json and generation_config.json.
4. The tokenizer is built by transformers from the file's vocabulary, with the chat template the file
   carries (`tokenizer.chat_template`), and saved as tokenizer.json + tokenizer_config.json +
   chat_template.jinja. One gap of transformers 5.24 is closed first (see `_tokenizer_as_llama_cpp_reads_it`).
5. The saved folder is verified before it is published (components/base_models/verify.py): reloaded from
   safetensors, it must tokenize `import_gguf.verify_texts` exactly like llama.cpp and like the GGUF's
   tokenizer, carry the file's chat template, and give the GGUF-loaded model's logits within
   `import_gguf.max_logit_diff`. A failed check publishes nothing.
6. `import_gguf.json` describes the import (source, sha256, architecture, parameters, verification). A local
   folder is written beside its destination and renamed into place; an s3:// prefix gets every file with
   its sha256.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from components.common import storage
from components.common.config import RunConfig
from components.common.errors import InputError
from components.common.torch_threads import torch_threads
from components.gguf.header import check_header

BUILD_INFO = "import_gguf.json"
# Metadata the config reader does not need but the import record and the tokenizer fix do.
_TOKENIZER_TYPE = "tokenizer.ggml.model"
_ADD_SPACE_PREFIX = "tokenizer.ggml.add_space_prefix"
_CHAT_TEMPLATE = "tokenizer.chat_template"


def progress(message: str) -> None:
    print(f"import-gguf: {message}", file=sys.stderr, flush=True)


def import_gguf(gguf: str, output: str, cfg: RunConfig) -> dict[str, Any]:
    """Imports `gguf` (a file or s3:// object) into `output` (a folder or s3:// prefix); returns the record."""
    if not storage.is_s3(output):
        _check_destination(Path(output))
    with torch_threads(cfg.import_gguf.num_threads), tempfile.TemporaryDirectory(prefix="finegate-import-") as tmp:
        source = storage.localize(gguf, Path(tmp) / "input", verify=cfg.storage.verify_sha256)
        if storage.is_s3(output):
            out_dir = Path(tmp) / "model"
        else:
            out_dir = Path(output).parent / f".{Path(output).name}.import-{uuid.uuid4().hex[:8]}"
        try:
            info = _import(source, gguf, out_dir, cfg)
            if storage.is_s3(output):
                storage.publish(out_dir, output)
            else:
                _move_into_place(out_dir, Path(output))
        finally:
            if out_dir.exists():
                shutil.rmtree(out_dir)
    info["output"] = output
    progress(f"wrote {output}")
    return info


def _import(source: Path, source_uri: str, out_dir: Path, cfg: RunConfig) -> dict[str, Any]:
    import torch
    import transformers

    from components.base_models.verify import verify_import

    started = time.monotonic()
    progress(f"checking {source.name}")
    header = check_header(source)
    metadata = read_metadata(source)
    config = load_config(source, metadata)
    dtype = getattr(torch, cfg.import_gguf.dtype)

    progress(f"loading {source.name} ({header.metadata.get('general.architecture')}, "
             f"{header.file_bytes / 2**20:.0f} MiB) dequantized to {cfg.import_gguf.dtype}")
    gguf_model = load_gguf_model(source, dtype)
    tokenizer = load_gguf_tokenizer(source, metadata)

    progress(f"saving safetensors, config and tokenizer to {out_dir}")
    model = plain_copy(gguf_model, config, dtype)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    n_parameters = model.num_parameters()
    del model

    progress("verifying the saved folder against the GGUF (tokens with llama.cpp, logits with transformers)")
    verification = verify_import(out_dir, source, gguf_model, tokenizer, metadata.get(_CHAT_TEMPLATE), cfg)
    info = {
        "source": source_uri, "source_file": source.name, "sha256": header.sha256, "source_bytes": header.file_bytes,
        "architecture": header.metadata.get("general.architecture"), "model_type": config.model_type,
        "name": header.metadata.get("general.name"), "license": metadata.get("general.license"),
        "tensor_types": header.tensor_types, "parameters": n_parameters, "dtype": cfg.import_gguf.dtype,
        "vocab_size": len(tokenizer), "tokenizer_type": metadata.get(_TOKENIZER_TYPE),
        "chat_template": bool(metadata.get(_CHAT_TEMPLATE)), "transformers_version": transformers.__version__,
        "verification": verification, "seconds": round(time.monotonic() - started, 1),
    }
    (out_dir / BUILD_INFO).write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return info


def read_metadata(source: Path) -> dict[str, Any]:
    """The file's scalar metadata (arrays such as the vocabulary come back as their length)."""
    from transformers.integrations.gguf import read_gguf_metadata

    metadata, _ = read_gguf_metadata(str(source))
    if "tokenizer.ggml.tokens" not in metadata:
        raise InputError(f"{source}: the GGUF carries no tokenizer (no tokenizer.ggml.tokens); a base model needs one")
    return metadata


def load_config(source: Path, metadata: dict[str, Any]):
    """The transformers config the file describes, refused unless a causal-LM class reads it."""
    import transformers
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    architecture = metadata.get("general.architecture")
    try:
        config = AutoConfig.from_pretrained(str(source.parent), gguf_file=source.name)
    except (ValueError, KeyError, NotImplementedError) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"{source}: GGUF architecture '{architecture}' is not supported by transformers "
                         f"{transformers.__version__}'s GGUF loader ({reason})") from None
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise InputError(f"{source}: GGUF architecture '{architecture}' ({config.model_type}) is not a causal "
                         "language model; the train stage needs one")
    # general.name lands here; the import record keeps it, the saved config does not need it.
    config.__dict__.pop("_model_name_or_path", None)
    return config


def load_gguf_model(source: Path, dtype):
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=dtype)
    except (ValueError, KeyError, NotImplementedError, RuntimeError) as exc:
        raise InputError(f"{source}: transformers could not load the GGUF's weights: {' '.join(str(exc).split())}") from None
    return model.eval()


def load_gguf_tokenizer(source: Path, metadata: dict[str, Any]):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise InputError(f"{source}: transformers cannot build the GGUF's tokenizer "
                         f"('{metadata.get(_TOKENIZER_TYPE)}'): {' '.join(str(exc).split())}") from None
    return _tokenizer_as_llama_cpp_reads_it(tokenizer, metadata)


def _tokenizer_as_llama_cpp_reads_it(tokenizer, metadata: dict[str, Any]):
    """transformers 5.24 builds a SentencePiece ("llama") vocabulary with a Metaspace that prepends "▁" to
    the text, ignoring `tokenizer.ggml.add_space_prefix = false`, which llama.cpp honours: every text would
    start with one extra token. Such a file gets the pre-tokenizer and decoder `LlamaTokenizer` builds for
    add_prefix_space=False (the tiny base model's own, components/base_models/tiny_base.py)."""
    from tokenizers import decoders, pre_tokenizers

    backend = tokenizer.backend_tokenizer
    if (metadata.get(_TOKENIZER_TYPE) == "llama" and metadata.get(_ADD_SPACE_PREFIX) is False
            and isinstance(backend.pre_tokenizer, pre_tokenizers.Metaspace)):
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=False)
        backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
        tokenizer.add_prefix_space = False
    return tokenizer


def plain_copy(gguf_model, config, dtype):
    """A model of the same config holding the GGUF model's weights, free of its GGUF quantizer."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = gguf_model.generation_config
    return model.eval()


def _check_destination(output: Path) -> None:
    """Refuses to replace a folder that is not an earlier import (or empty) before any work is done."""
    if output.is_file():
        raise InputError(f"{output}: is a file; --output-dir must be a folder or an s3:// prefix")
    if output.is_dir() and any(output.iterdir()) and not (output / BUILD_INFO).is_file():
        raise InputError(f"{output}: exists and is not an earlier import (no {BUILD_INFO}); choose another --output")


def _move_into_place(built: Path, output: Path) -> None:
    _check_destination(output)
    if output.exists():
        shutil.rmtree(output)
    built.replace(output)
