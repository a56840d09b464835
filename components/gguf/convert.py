"""HF safetensors -> F16 GGUF with llama.cpp's own converter, run as a subprocess.

The converter is `convert_hf_to_gguf.py` from the same llama.cpp source as the installed runtime, with the
`conversion/` package and the vendored `gguf-py` beside it (scripts/setup_llama_cpp.sh lays them out), so
the file it writes is one the runtime reads. It runs under this interpreter (the venv that has torch and
transformers); its log goes to `convert.log` and its progress to stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from components.common.errors import InputError

CONVERTER = "convert_hf_to_gguf.py"
ENV_DIR = "FINEGATE_LLAMA_CPP_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]


def find_converter(converter_dir: str | None) -> Path:
    """The converter script: gguf.converter_dir, else $FINEGATE_LLAMA_CPP_DIR, else the setup cache."""
    candidates = [converter_dir] if converter_dir else []
    candidates += [os.environ.get(ENV_DIR), str(REPO_ROOT / ".cache" / "llama.cpp")]
    tried = []
    for folder in filter(None, candidates):
        script = Path(folder) / CONVERTER
        if script.is_file() and (script.parent / "gguf-py").is_dir() and (script.parent / "conversion").is_dir():
            return script
        tried.append(str(script))
        if converter_dir:
            break  # an explicit setting that is wrong is an error, not a reason to look elsewhere
    raise InputError(f"llama.cpp's converter not found (looked for {', '.join(tried)} with gguf-py/ and "
                     "conversion/ beside it): run `make setup` (scripts/setup_llama_cpp.sh .venv .cache/llama.cpp) "
                     "or set gguf.converter_dir to a folder holding it")


def check_model_dir(model_dir: Path) -> None:
    if not (model_dir / "config.json").is_file():
        raise InputError(f"{model_dir}: not a Hugging Face model folder (no config.json); pass the train "
                         "stage's merged/ folder as --model-dir")
    if not any(model_dir.glob("*.safetensors")):
        raise InputError(f"{model_dir}: no *.safetensors weights; the train stage writes them into merged/")


def convert_to_f16(model_dir: str | Path, out_path: str | Path, converter_dir: str | None = None,
                   log_path: str | Path | None = None, python: str = sys.executable) -> float:
    """Runs the converter with --outtype f16; returns its wall time in seconds. Raises InputError with the
    converter's last lines when it fails."""
    model_dir, out_path = Path(model_dir), Path(out_path)
    check_model_dir(model_dir)
    script = find_converter(converter_dir)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path) if log_path else out_path.with_suffix(".convert.log")
    partial = out_path.with_name(out_path.name + ".part")
    cmd = [python, str(script), str(model_dir), "--outfile", str(partial), "--outtype", "f16"]
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}  # always the vendored gguf-py
    print(f"gguf: converting {model_dir} to F16 GGUF with {script}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    tail: deque[str] = deque(maxlen=20)
    n_tensors = 0
    with log_path.open("w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                encoding="utf-8", errors="replace", env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail.append(line.rstrip())
            # The converter logs one line per tensor ("blk.0.attn_q.weight, torch.float32 --> F16, ...").
            if "-->" in line:
                n_tensors += 1
                if n_tensors % 50 == 0:
                    print(f"gguf: converted {n_tensors} tensors", file=sys.stderr, flush=True)
        code = proc.wait()
    elapsed = time.perf_counter() - started
    if code != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise InputError(f"llama.cpp's converter failed on {model_dir} (exit {code}; full log {log_path}): "
                         + " | ".join(line for line in tail if line)[-800:])
    partial.replace(out_path)
    print(f"gguf: wrote {out_path} ({n_tensors} tensors, {elapsed:.1f} s)", file=sys.stderr, flush=True)
    return elapsed
