"""The one way a stage loads a Hugging Face model it was handed: safetensors only, one-line errors.

Pickled weights (`pytorch_model.bin`, `*.pt`) can run code when loaded, so no stage ever loads them: a folder
with only pickles is refused in one line that says why. Whatever `from_pretrained` raises on a malformed
folder (a truncated or corrupt safetensors file, a broken config, a tokenizer it cannot parse) is a verdict
on that folder, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.common.errors import ConfigError, InputError, one_line

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def require_safetensors(model_dir: str | Path, what: str = "model") -> None:
    """Refuses a local folder that holds no *.safetensors weights (naming pickled ones it found)."""
    folder = Path(model_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: the {what} is a folder (config.json, *.safetensors, tokenizer files)")
    if any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise InputError(f"{folder}: the {what} has only pickled weights ({', '.join(pickles)}), which can run code "
                         "when loaded: finegate loads safetensors only (convert them with safetensors' torch "
                         "save_file, or save_pretrained(safe_serialization=True))")
    raise InputError(f"{folder}: no *.safetensors weights in the {what} folder "
                     f"(found {sorted(p.name for p in folder.iterdir()) or 'nothing'})")


def load_causal_lm(model_dir: str | Path, dtype, *, trust_remote_code: bool = False, what: str = "model",
                   **kwargs: Any):
    """(model, tokenizer) from a local folder (safetensors only) or a hub id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if Path(str(model_dir)).exists():
        require_safetensors(model_dir, what)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype, use_safetensors=True,
                                                     trust_remote_code=trust_remote_code, **kwargs)
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        if isinstance(exc, ValueError) and "trust_remote_code" in str(exc):
            raise ConfigError(f"{model_dir}: this {what} needs its own code; set train.trust_remote_code=true only "
                              "if you trust it") from None
        raise InputError(f"{model_dir}: cannot load the {what} ({type(exc).__name__}: {one_line(str(exc))})") from None
    return model, tokenizer
