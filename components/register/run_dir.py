"""What register reads from a run dir: every stage's report and verdict, the shipped GGUF, and the lineage
(data digests, base model, config hash, code version) that goes onto the model version as tags."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.common.config import RunConfig, dump_config
from components.common.errors import InputError, IntegrityError
from components.common.redact import redact_config, redact_text
from components.common.report import REPORT_NAME, read_json
from components.common.stage_output import verify_output

STAGE = "register"
TAG = "finegate."  # every tag register writes starts with this, so they sort together in the MLflow UI
_BAD_KEY_CHARS = re.compile(r"[^\w.\- /:]")
_MAX_KEY = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH


@dataclass
class StageVerdict:
    stage: str
    path: Path
    report: dict[str, Any] | None  # None: the stage left no report

    @property
    def passed(self) -> bool:
        return self.report is not None and self.report.get("passed") is True

    def why_not(self) -> str:
        if self.report is None:
            return f"stage '{self.stage}' has no {REPORT_NAME} at {self.path} (the chain stopped before it)"
        reasons = self.report.get("reasons") or ["report says passed=false without a reason"]
        return f"stage '{self.stage}' failed: " + "; ".join(str(r) for r in reasons)


@dataclass
class RunDir:
    root: Path
    verdicts: list[StageVerdict] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[StageVerdict]:
        return [v for v in self.verdicts if not v.passed]

    def report(self, stage: str) -> dict[str, Any]:
        return next((v.report for v in self.verdicts if v.stage == stage and v.report), {})


def read_run_dir(run_dir: str | Path, cfg: RunConfig, sources: dict[str, str] | None = None) -> RunDir:
    """The required stages first (in chain order), then any other `<dir>/report.json` found beside them."""
    root = Path(run_dir)
    if not root.is_dir():
        raise InputError(f"run dir not found: {root} (give the directory `finegate run` wrote, holding <stage>/report.json)")
    required = list(cfg.register_.required_stages)
    others = sorted(p.parent.name for p in root.glob(f"*/{REPORT_NAME}") if p.parent.name not in required)
    run = RunDir(root, sources=dict(sources or {}))
    for stage in required + [s for s in others if s != STAGE]:
        path = root / stage / REPORT_NAME
        run.verdicts.append(StageVerdict(stage, path, _read_report(path) if path.is_file() else None))
    return run


def _read_report(path: Path) -> dict[str, Any]:
    """A stage report, once every file its manifest lists is verified (common/stage_output.py): what gets
    registered is exactly what the gates measured."""
    data = read_json(path, "a stage report")
    if not isinstance(data, dict) or not isinstance(data.get("passed"), bool):
        raise InputError(f"{path}: not a stage report (needs a boolean 'passed' field)")
    # present_only: on a cluster the train output arrives as separate artifacts and register gets the adapter
    # and the report/curves, not the merged model it does not read (pipelines/pipeline.py).
    verify_output(path.parent, str(data.get("stage")), str(path.parent), require_passed=False, present_only=True)
    return data


def shipped_gguf(run: RunDir, cfg: RunConfig) -> Path:
    """The file the gguf stage shipped (its report's `shipped`, else model-<first quant type>.gguf)."""
    name = run.report("gguf").get("shipped")
    if not name:
        raise InputError(f"{run.root / 'gguf'}: the gguf stage's report names no shipped file (gate D passed no type)")
    path = run.root / "gguf" / name
    if not path.is_file():
        raise InputError(f"{path}: the quantized GGUF the gguf report ships is missing")
    return path


def check_recorded_digests(run: RunDir, gguf_name: str, digest: str) -> None:
    """The file registered must be the file the gates measured: gguf and evaluate recorded its sha256."""
    recorded = {
        "gguf": (run.report("gguf").get("files") or {}).get(gguf_name, {}).get("sha256"),
        "evaluate": run.report("evaluate").get("gguf_sha256"),
    }
    for stage, value in recorded.items():
        if value and value != digest:
            raise IntegrityError(f"{gguf_name}: sha256 {digest} differs from the {value} the {stage} stage measured; "
                                 "the file changed after its gates ran, rerun the chain from gguf")


def flat_config(cfg: RunConfig) -> dict[str, str]:
    """The run config, redacted, as MLflow params: dotted keys, lists and nulls as JSON, capped at MLflow's
    6000 chars."""
    flat: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
            return
        value = node if isinstance(node, str) else json.dumps(node, ensure_ascii=False)
        flat[metric_key(prefix[:-1])] = value if len(value) <= 6000 else value[:5999] + "…"

    walk(redact_config(dump_config(cfg)), "")
    return flat


def config_sha256(cfg: RunConfig) -> str:
    """Of the redacted config: the hash identifies the settings, and must not let anyone test password guesses."""
    canonical = json.dumps(redact_config(dump_config(cfg)), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def metric_key(name: str) -> str:
    """MLflow keys allow word characters, . - / : and spaces, and must not read as another path (a//b, ../a):
    anything else (a 【】 category, an empty path segment) becomes _."""
    cleaned = _BAD_KEY_CHARS.sub("_", name)[:_MAX_KEY]
    return "/".join(part if part not in ("", ".", "..") else "_" for part in cleaned.split("/"))


@dataclass
class Metrics:
    """What goes to MLflow as metrics, and what could not (non-finite or beyond a double), with why."""

    values: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def stage_metrics(run: RunDir) -> Metrics:
    """Every numeric metric of every stage report, as `<stage>.<metric>` (nested ones dotted, booleans 0/1),
    plus `<stage>.passed`. NaN, infinity (1e400 in JSON) and integers beyond a double are skipped and named:
    MLflow stores a double, and the gate that read the value already judged it."""
    out = Metrics()
    for verdict in run.verdicts:
        if verdict.report is None:
            continue
        _flatten(verdict.report.get("metrics") or {}, f"{verdict.stage}.", out)
        out.values[metric_key(f"{verdict.stage}.passed")] = float(verdict.passed)
    return out


def _flatten(metrics: dict[str, Any], prefix: str, out: Metrics) -> None:
    for key, value in metrics.items():
        name = metric_key(f"{prefix}{key}")
        if isinstance(value, dict):
            _flatten(value, f"{prefix}{key}.", out)
        elif isinstance(value, bool):
            out.values[name] = float(value)
        elif isinstance(value, (int, float)):
            number = _finite_float(value)
            if number is None:
                out.skipped[name] = _why_not_finite(value)
            else:
                out.values[name] = number


def _finite_float(value: int | float) -> float | None:
    try:
        number = float(value)
    except OverflowError:  # a JSON integer of 400 digits
        return None
    return number if math.isfinite(number) else None


def _why_not_finite(value: int | float) -> str:
    return "integer beyond a double" if isinstance(value, int) else str(value)


def loss_history(run: RunDir) -> list[tuple[str, float, int]]:
    """The trainer's logged curves (loss, eval_loss, learning_rate, ...) as (key, value, step) points; a
    non-finite point (a diverged step) is left out of the curve."""
    path = run.root / "train" / "trainer_state.json"
    if not path.is_file():
        return []
    state = read_json(path, "a trainer_state.json")
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise InputError(f"{path}: no 'log_history' list; is this a Hugging Face trainer_state.json?")
    points = []
    for entry in history:
        step = entry.get("step") if isinstance(entry, dict) else None
        if not isinstance(step, int) or isinstance(step, bool):
            continue
        for key, value in entry.items():
            if key in ("step", "epoch") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            number = _finite_float(value)
            if number is not None:
                points.append((metric_key(f"train.history.{key}"), number, step))
    return points


def lineage(run: RunDir, cfg: RunConfig) -> dict[str, str]:
    """Where the model came from, as tags: data digests, base model, config hash, code version."""
    clean, split, train = run.report("clean"), run.report("split"), run.report("train")
    tags = {
        "run_name": cfg.run.name,
        "run_id": cfg.run.run_id,
        "run_dir": None if run.sources else str(run.root.resolve()),
        "data.raw_uri": (clean.get("input") or {}).get("uri"),
        "data.raw_sha256": (clean.get("input") or {}).get("sha256"),
        "data.kept_sha256": (clean.get("outputs") or {}).get("kept.jsonl"),
        "base_model": train.get("base_model") or cfg.train.base_model,
        "config_sha256": config_sha256(cfg),
        **git_version(),
    }
    for name, digest in (split.get("outputs") or {}).items():
        tags[f"data.{Path(name).stem}_sha256"] = digest
    for stage, uri in run.sources.items():
        tags[f"source.{stage}"] = uri
    return {metric_key(f"{TAG}{k}"): redact_text(str(v)) for k, v in tags.items() if v not in (None, "")}


def git_version() -> dict[str, str]:
    """The code that ran: FINEGATE_GIT_COMMIT (set in images, which hold no .git), else this checkout's HEAD."""
    if commit := os.environ.get("FINEGATE_GIT_COMMIT"):
        return {"git_commit": commit}
    repo = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit, "git_dirty": str(bool(dirty)).lower()}
