"""The whole chain in one process, stage after stage, each gate read before the next stage starts.

This is what `finegate run` and `make run` execute with no cluster at all; the KFP pipeline runs the
same stage cores, one container per stage, with the same inputs. Every stage writes `<output_dir>/<stage>/`,
and each stage reads the verified output of the one before (components/common/stage_output.py).
The run ends with `run_summary.json` and `gates.md`: every gate's checks, where the run stopped, what shipped.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from components.common.config import RunConfig, dump_config, loosened_thresholds
from components.common.redact import redact_config
from components.common.report import StageReport, read_report
from pipelines.summary import gate_rows, write_summary_files


@dataclass
class Step:
    name: str
    run: Callable[[RunConfig, Path], StageReport]


def _policy(cfg: RunConfig, out: Path) -> StageReport:
    from components.train.policy import run_policy_check

    return run_policy_check(out / "policy", cfg)


def _clean(cfg: RunConfig, out: Path) -> StageReport:
    from components.clean.core import run_clean

    return run_clean(cfg.data.input, out / "clean", cfg)


def _split(cfg: RunConfig, out: Path) -> StageReport:
    from components.split.core import run_split

    return run_split(out / "clean", out / "split", cfg)


def _train(cfg: RunConfig, out: Path) -> StageReport:
    from components.train.core import run_train

    return run_train(out / "split", cfg.train.base_model, out / "train", cfg)


def _hf_check(cfg: RunConfig, out: Path) -> StageReport:
    from components.hf_check.core import run_hf_check

    return run_hf_check(out / "train", out / "split", out / "hf_check", cfg)


def _gguf(cfg: RunConfig, out: Path) -> StageReport:
    from components.gguf.core import run_gguf

    return run_gguf(out / "train", out / "split", out / "gguf", cfg)


def _evaluate(cfg: RunConfig, out: Path) -> StageReport:
    from components.evaluate.core import run_evaluate

    # The same inputs the KFP component gets (components/evaluate/component.py): each earlier stage's output.
    reports = [out / stage for stage in ("policy", "clean", "split", "train", "hf_check", "gguf")]
    return run_evaluate(out / "gguf", out / "split", out / "evaluate", cfg, base_model=cfg.train.base_model,
                        train_dir=out / "train", reports=reports)


def _register(cfg: RunConfig, out: Path) -> StageReport:
    from components.register.core import run_register

    return run_register(out, out / "register", cfg)


STEPS = [Step("policy", _policy), Step("clean", _clean), Step("split", _split), Step("train", _train),
         Step("hf_check", _hf_check), Step("gguf", _gguf), Step("evaluate", _evaluate), Step("register", _register)]
STAGE_NAMES = [s.name for s in STEPS]


def run_chain(cfg: RunConfig, output_dir: str | Path, stop_after: str | None = None) -> dict:
    """Runs the steps in order; stops at the first failed gate. Returns the run summary."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("run_summary.json", "gates.md"):  # a summary describes this run or none
        (out / stale).unlink(missing_ok=True)
    (out / "config.json").write_text(json.dumps(redact_config(dump_config(cfg)), ensure_ascii=False, indent=2),
                                     encoding="utf-8")
    summary: dict = {"run": cfg.run.name, "output_dir": str(out), "passed": True, "stages": {},
                     "loosened": loosened_thresholds(cfg)}
    started_run = time.monotonic()
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
            failed = [c for c in report.details.get("gate_checks", []) if not c["passed"] and not c.get("superseded")]
            summary["failed_gate"] = failed[0]["gate"] if failed else step.name
            break
        if step.name == stop_after:
            break
    summary["seconds"] = round(time.monotonic() - started_run, 1)
    reports = {name: read_report(out / name) for name in summary["stages"] if (out / name / "report.json").is_file()}
    _shipped(summary, reports, out)
    rows = gate_rows(reports)
    summary["gates"] = rows
    (out / "run_summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    write_summary_files(out, summary, rows)
    return summary


def _shipped(summary: dict, reports: dict, out: Path) -> None:
    registered = reports.get("register") or {}
    if summary["passed"] and registered.get("passed"):
        summary["model_uri"] = registered.get("alias_uri") or registered.get("model_uri")
        summary["model_version"] = registered.get("model_version")
        summary["gguf_sha256"] = (registered.get("gguf") or {}).get("sha256")
    if (out / "evaluate" / "report.html").is_file() and "evaluate" in reports:
        summary["report_html"] = str(out / "evaluate" / "report.html")
