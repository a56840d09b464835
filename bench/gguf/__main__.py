"""Bench: the gguf stage's convert + quantize against llama.cpp's converter and quantizer called directly.

    .venv/bin/python -m bench.gguf                                  # tiny model built on the spot
    .venv/bin/python -m bench.gguf --model-dir runs/demo/train/merged --repeats 5
    .venv/bin/python -m bench.gguf --model-dir M --data-dir runs/demo/split --fidelity   # + gates C/D figures

Both sides run on the same model in the same process, alternating which goes first, `--repeats` times:
- stage:  components.gguf convert_to_f16 + quantize + the header checks (with sha256) of both files;
- direct: `python convert_hf_to_gguf.py MODEL --outfile F --outtype f16` + `llama_model_quantize` with
  llama.cpp's default parameters.
Prints the median of each and their ratio (target: stage / direct <= 1.1).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.1


def stage_once(model_dir: Path, work: Path, quant: str) -> float:
    from components.gguf.convert import convert_to_f16
    from components.gguf.header import check_header
    from components.gguf.quantize import quantize

    started = time.perf_counter()
    convert_to_f16(model_dir, work / "stage-f16.gguf", log_path=work / "stage-convert.log")
    check_header(work / "stage-f16.gguf")
    quantize(work / "stage-f16.gguf", work / f"stage-{quant}.gguf", quant)
    check_header(work / f"stage-{quant}.gguf")
    return time.perf_counter() - started


def direct_once(model_dir: Path, work: Path, quant: str) -> float:
    import llama_cpp

    from components.gguf.convert import find_converter

    script = find_converter(None)
    started = time.perf_counter()
    subprocess.run([sys.executable, str(script), str(model_dir), "--outfile", str(work / "direct-f16.gguf"),
                    "--outtype", "f16"], check=True, capture_output=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant}")
    code = llama_cpp.llama_model_quantize(str(work / "direct-f16.gguf").encode(),
                                          str(work / f"direct-{quant}.gguf").encode(), ctypes.byref(params))
    if code != 0:
        raise SystemExit(f"llama_model_quantize returned {code}")
    return time.perf_counter() - started


def default_model(work: Path) -> Path:
    from tests.gguf.tiny_model import build_tiny_llama_dir

    print("bench.gguf: building the tiny test model (no --model-dir given)", file=sys.stderr)
    return build_tiny_llama_dir(work / "tiny" / "merged")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gguf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="HF model folder (default: build the tiny test model)")
    parser.add_argument("--quant", default="Q4_K_M")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, help="split folder, for --fidelity")
    parser.add_argument("--fidelity", action="store_true", help="also run the whole stage and print gates C/D")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)

    from components.gguf.runtime import quiet_llama_log

    quiet_llama_log()
    with tempfile.TemporaryDirectory(prefix="bench-gguf-") as tmp:
        work = Path(tmp)
        model_dir = args.model_dir or default_model(work)
        stage, direct = [], []
        for i in range(args.repeats):
            order = [("stage", stage_once, stage), ("direct", direct_once, direct)]
            for name, run, times in order if i % 2 == 0 else order[::-1]:
                times.append(run(model_dir, work, args.quant))
                print(f"bench.gguf: run {i + 1}/{args.repeats} {name}: {times[-1]:.2f} s", file=sys.stderr)
        same_output = (work / f"stage-{args.quant}.gguf").read_bytes() == (work / f"direct-{args.quant}.gguf").read_bytes()
        results = {
            "model_dir": str(model_dir), "quant": args.quant, "repeats": args.repeats,
            "stage_s": statistics.median(stage), "direct_s": statistics.median(direct),
            "ratio": statistics.median(stage) / statistics.median(direct), "target_ratio": TARGET_RATIO,
            "identical_quantized_file": same_output, "stage_runs": stage, "direct_runs": direct,
        }
        if args.fidelity:
            results["fidelity"] = fidelity(model_dir, args.data_dir, work, args.quant)

    print(f"gguf convert+quantize ({args.quant}), median of {args.repeats}: stage {results['stage_s']:.2f} s, "
          f"direct llama.cpp {results['direct_s']:.2f} s, ratio {results['ratio']:.3f} "
          f"(target <= {TARGET_RATIO}); quantized files identical: {same_output}")
    if "fidelity" in results:
        print(json.dumps(results["fidelity"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def fidelity(model_dir: Path, data_dir: Path | None, work: Path, quant: str) -> dict:
    from components.common.config import load_config
    from components.gguf.core import run_gguf

    if data_dir is None:
        from tests.gguf.tiny_model import write_splits

        data_dir = write_splits(work / "splits")
    report = run_gguf(model_dir, data_dir, work / "stage", load_config(overrides=[f"gguf.quant_type={quant}", "gguf.ladder=[]"]))
    from components.gguf.compare import LLAMA_CPP_REFERENCE

    keys = ("greedy_agreement", "max_logit_diff", "mean_logit_diff", "f16_perplexity_drift", "tokenizer_match_rate",
            "same_top_token_rate", "mean_kld", "perplexity_ratio", "output_rouge_l")
    return {"passed": report.passed, "reasons": report.reasons, **{k: report.metrics[k] for k in keys},
            "llama_cpp_reference": LLAMA_CPP_REFERENCE}


if __name__ == "__main__":
    sys.exit(main())
