"""F16 GGUF -> quantized GGUF through llama.cpp's own quantizer (`llama_model_quantize`), in process."""

from __future__ import annotations

import ctypes
import sys
import time
from pathlib import Path

from components.common.errors import ConfigError, InputError
from components.gguf.runtime import quiet_llama_log

FTYPE_PREFIX = "LLAMA_FTYPE_MOSTLY_"


def known_quant_types() -> list[str]:
    import llama_cpp

    return sorted(name[len(FTYPE_PREFIX):] for name in dir(llama_cpp) if name.startswith(FTYPE_PREFIX))


def ftype_for(quant_type: str) -> int:
    """The llama_ftype of a type name as llama.cpp spells it (Q4_K_M, Q8_0, Q5_K_M, ...)."""
    import llama_cpp

    value = getattr(llama_cpp, FTYPE_PREFIX + quant_type.upper(), None)
    if not isinstance(value, int):
        raise ConfigError(f"gguf.quant_type or gguf.ladder: unknown quantization type '{quant_type}'; llama.cpp knows "
                          + ", ".join(known_quant_types()))
    return value


def quantize(f16_path: str | Path, out_path: str | Path, quant_type: str, n_threads: int | None = None) -> float:
    """Writes `out_path` quantized to `quant_type`; returns the wall time in seconds."""
    import llama_cpp

    quiet_llama_log()
    f16_path, out_path = Path(f16_path), Path(out_path)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype_for(quant_type)
    params.nthread = n_threads or 0  # 0: llama.cpp uses every hardware thread
    partial = out_path.with_name(out_path.name + ".part")
    print(f"gguf: quantizing {f16_path.name} to {quant_type}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    code = llama_cpp.llama_model_quantize(str(f16_path).encode(), str(partial).encode(), ctypes.byref(params))
    elapsed = time.perf_counter() - started
    if code != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise InputError(f"llama.cpp could not quantize {f16_path} to {quant_type} (llama_model_quantize "
                         f"returned {code}); run with FINEGATE_LLAMA_VERBOSE=1 to see llama.cpp's log")
    partial.replace(out_path)
    print(f"gguf: wrote {out_path} ({elapsed:.1f} s)", file=sys.stderr, flush=True)
    return elapsed
