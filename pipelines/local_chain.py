"""The whole chain in one process, stage after stage, each gate read before the next stage starts.

This is what `finegate run` and `make run` execute with no cluster at all; the KFP pipeline runs the
same stage cores, one container per stage. Every stage writes into `<output_dir>/<stage>/`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from components.common.config import RunConfig, dump_config
from components.common.report import StageReport


@dataclass
class Step:
    name: str
    run: Callable[[RunConfig, Path], StageReport]


def _clean(cfg: RunConfig, out: Path) -> StageReport:
    from components.clean.core import run_clean

    return run_clean(cfg.data.input, out / "clean", cfg)


def _split(cfg: RunConfig, out: Path) -> StageReport:
    from components.split.core import run_split

    return run_split(out / "clean" / "kept.jsonl", out / "split", cfg)


def _train(cfg: RunConfig, out: Path) -> StageReport:
    from components.train.core import run_train

    return run_train(out / "split", cfg.train.base_model, out / "train", cfg)


def _hf_check(cfg: RunConfig, out: Path) -> StageReport:
    from components.hf_check.core import run_hf_check

    return run_hf_check(out / "train" / "merged", out / "split", out / "hf_check", cfg)


def _gguf(cfg: RunConfig, out: Path) -> StageReport:
    from components.gguf.core import run_gguf

    return run_gguf(out / "train" / "merged", out / "split", out / "gguf", cfg)


def _evaluate(cfg: RunConfig, out: Path) -> StageReport:
    from components.evaluate.core import run_evaluate

    quant = cfg.gguf.quant_types[0].upper()
    return run_evaluate(out / "gguf" / f"model-{quant}.gguf", out / "split", out / "evaluate", cfg,
                        base_model=cfg.train.base_model, train_dir=out / "train", reports=out)


def _register(cfg: RunConfig, out: Path) -> StageReport:
    from components.register.core import run_register

    return run_register(out, out / "register", cfg)


STEPS = [Step("clean", _clean), Step("split", _split), Step("train", _train), Step("hf_check", _hf_check),
         Step("gguf", _gguf), Step("evaluate", _evaluate), Step("register", _register)]
STAGE_NAMES = [s.name for s in STEPS]


def run_chain(cfg: RunConfig, output_dir: str | Path, stop_after: str | None = None) -> dict:
    """Runs the steps in order; stops at the first failed gate. Returns the run summary."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dump_config(cfg), ensure_ascii=False, indent=2), encoding="utf-8")
    summary: dict = {"run": cfg.run.name, "output_dir": str(out), "passed": True, "stages": {}}
    for step in STEPS:
        print(f"[finegate] stage {step.name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        report = step.run(cfg, out)
        summary["stages"][step.name] = {"passed": report.passed, "reasons": report.reasons,
                                        "seconds": round(time.monotonic() - started, 1),
                                        "report": str(out / step.name / "report.json")}
        if not report.passed:
            summary["passed"] = False
            summary["failed_stage"] = step.name
            break
        if step.name == stop_after:
            break
    (out / "run_summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary
