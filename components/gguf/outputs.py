"""What the gguf stage hands on, read the one way every consumer reads it: the quantized file it shipped
(the first ladder rung that passed gate D), named by its report, never re-derived from the config.

    shipped = read_quantized("runs/demo/gguf", cache_dir)   # verified against gguf's report
    shipped.path, shipped.sha256, shipped.quant_type
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.common.errors import InputError
from components.common.stage_output import read_output

STAGE = "gguf"


@dataclass
class QuantizedModel:
    path: Path
    sha256: str
    quant_type: str
    report: dict[str, Any]


def read_quantized(output: str | Path, cache_dir: str | Path, require_passed: bool = True) -> QuantizedModel:
    """The shipped GGUF of a gguf output: its directory, a file in it, or an s3:// prefix."""
    directory, report = read_output(output, STAGE, cache_dir, require_passed=require_passed)
    name = report.get("shipped")
    if not name:
        raise InputError(f"{output}: the gguf stage shipped no quantized file (gate D: no ladder rung passed)")
    entry = (report.get("manifest") or {}).get(name) or {}
    return QuantizedModel(directory / name, entry.get("sha256", ""), report.get("shipped_type") or "", report)
