"""`gguf`: conversion to GGUF, quantization and gates C and D (components/gguf/core.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.common.section import Section


class GgufSection(Section):
    quant_type: str = Field("Q4_K_M", description="The quantization type to ship (llama.cpp's name: Q4_K_M, Q8_0, ...).")
    ladder: list[str] = Field(["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"], description=(
        "Larger types to climb to, in order, when gate D fails for gguf.quant_type: the first that passes ships "
        "and every rung tried is reported. [] ships quant_type or nothing."))
    n_prompts: int = Field(16, ge=1, description=(
        "Held-out records (val first, then test) compared across HF, F16 and each quantized file."))
    n_ctx: int = Field(512, ge=64, description="llama.cpp context; longer held-out texts are cut to it.")
    n_threads: int | None = Field(None, description=(
        "llama.cpp CPU threads for inference and quantization; None: llama.cpp's default (every hardware thread "
        "when quantizing)."))
    n_gpu_layers: int = Field(-1, description=(
        "Layers llama.cpp offloads to the GPU when it was built with a GPU backend (-1: all); a CPU build "
        "ignores it."))
    max_new_tokens: int = Field(32, ge=1, description="Greedy tokens generated per prompt for the agreement checks.")
    hf_dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description=(
        "Dtype of the HF reference: float32, so gate C measures the conversion, not the reference's own rounding."))
    hf_device: str = Field("auto", description="torch device of the HF reference; auto: cuda when available.")
    converter_dir: str | None = Field(None, description=(
        "Folder holding convert_hf_to_gguf.py and gguf-py; None: $FINEGATE_LLAMA_CPP_DIR, else the setup cache "
        "(.cache/llama.cpp)."))

    def rungs(self) -> list[str]:
        """quant_type, then every ladder type above it, in the order gate D tries them."""
        first, ladder = self.quant_type.upper(), [t.upper() for t in self.ladder]
        above = ladder[ladder.index(first) + 1 :] if first in ladder else ladder
        return list(dict.fromkeys([first, *above]))
