"""Everything a registration sends to MLflow, built and checked before anything is created there.

    prepare(run, cfg, staging) -> Registration        a run that may be registered
    prepare_refusal(run, cfg, reasons, staging) -> RunRecord   a refused run (logged as a FAILED run)

Reading a report, a trainer state or the GGUF, turning metrics into doubles, checking every key and value
against MLflow's own rules, redacting credentials and staging the artifact files all happen here, so a bad
input is an error while MLflow still holds nothing of this run (no run, no logged model, no version).
Non-finite metrics (NaN, 1e400 read as infinity, integers beyond a double) are not an error: they are left
out and named in the `finegate.skipped_metrics` tag and the report, because the stage's own gate already
judged them (a comparison with a non-finite value fails there).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.common.config import RunConfig, dump_config
from components.common.errors import InputError
from components.common.redact import redact_config, redact_text
from components.register.run_dir import (
    TAG,
    Metrics,
    RunDir,
    check_recorded_digests,
    flat_config,
    lineage,
    loss_history,
    shipped_gguf,
    stage_metrics,
)
from components.register.settings import CHAIN_GATE_STAGES

_MAX_TAG_VALUE = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH
# Staged files read as text (and redacted); every other suffix is copied byte for byte.
_TEXT_SUFFIXES = (".json", ".html", ".txt", ".csv", ".md", ".yaml", ".yml")


@dataclass(kw_only=True)
class RunRecord:
    """What an MLflow run will hold: tags, params, metrics, curves and the staged artifact folder."""

    run_name: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: Metrics
    curves: list[tuple[str, float, int]] = field(default_factory=list)
    artifacts: Path
    artifact_count: int

    def metric_entities(self, model_id: str | None = None) -> list:
        """Report metrics at step 0, linked to the logged model so its page shows them; curves by step."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        return ([Metric(k, v, now, 0, model_id=model_id) for k, v in self.metrics.values.items()]
                + [Metric(k, v, now, step) for k, v, step in self.curves])


@dataclass(kw_only=True)
class Registration(RunRecord):
    """A run that passed (or was overridden): the run, the GGUF as a logged model, a registry version."""

    model_name: str
    gguf: Path
    digest: str
    file_bytes: int
    description: str
    model_files: list[Path]
    gates: dict[str, Any]


def unchecked_gate_stages(run: RunDir, cfg: RunConfig) -> list[str]:
    """Gate stages of the chain that register.required_stages left out and whose report is not there either."""
    present = {v.stage for v in run.verdicts if v.report is not None}
    return [s for s in CHAIN_GATE_STAGES if s not in cfg.register_.required_stages and s not in present]


def _ladder_tags(gguf_report: dict) -> dict[str, str]:
    """Every quantization rung gate D tried, with its figures, and the shipped file's real tensor-type mix."""
    ladder = gguf_report.get("ladder") or []
    rungs = [f"{r['type']}:{'passed' if r['passed'] else 'failed'} (same top token {r['same_top_token_rate']:.3f}, "
             f"KLD {r['mean_kld']:.4f})" for r in ladder if isinstance(r, dict) and "type" in r]
    shipped = next((r for r in ladder if isinstance(r, dict) and r.get("shipped")), None)
    tags = {"gguf.ladder": "; ".join(rungs)}
    if shipped:
        mix = shipped.get("mix") or {}
        tags["gguf.tensor_types"] = ", ".join(f"{t}={n}" for t, n in (mix.get("tensor_types") or {}).items())
        tags["gguf.quant_note"] = mix.get("note", "")
    return tags


def prepare(run: RunDir, cfg: RunConfig, staging: Path) -> Registration:
    from components.gguf.header import check_header

    gguf_path = shipped_gguf(run, cfg)
    header = check_header(gguf_path)
    check_recorded_digests(run, gguf_path.name, header.sha256)
    gates, gate_tags = _gates(run, cfg)
    metrics = stage_metrics(run)
    tags = {**lineage(run, cfg), **_tags({
        **gate_tags, "gguf.file": gguf_path.name, "gguf.sha256": header.sha256, "gguf.bytes": str(header.file_bytes),
        "gguf.architecture": str(header.metadata.get("general.architecture", "")),
        **_ladder_tags(run.report("gguf")),
        "skipped_metrics": ", ".join(f"{k}={why}" for k, why in metrics.skipped.items())})}
    artifacts, count = stage_run_artifacts(run, cfg, staging / "run", with_adapter=cfg.register_.log_adapter)
    sums = staging / "model" / "SHA256SUMS"
    sums.parent.mkdir(parents=True)
    sums.write_text(f"{header.sha256}  {gguf_path.name}\n", encoding="utf-8")
    registration = Registration(
        run_name=run_name(run, cfg), tags=tags, params=flat_config(cfg), metrics=metrics, artifacts=artifacts,
        artifact_count=count, model_name=cfg.register_.model_name or cfg.run.name, gguf=gguf_path,
        digest=header.sha256, file_bytes=header.file_bytes, curves=loss_history(run),
        description=redact_text(_description(run, gguf_path, gates)), model_files=[gguf_path, sums], gates=gates)
    _check_against_mlflow(registration)
    return registration


def prepare_refusal(run: RunDir, cfg: RunConfig, reasons: list[str], staging: Path) -> RunRecord:
    metrics = stage_metrics(run)
    tags = {**lineage(run, cfg), **_tags({
        "gates.passed": "false", "gates.failed_stages": ",".join(v.stage for v in run.failed),
        "refused": " | ".join(reasons),
        "skipped_metrics": ", ".join(f"{k}={why}" for k, why in metrics.skipped.items())}),
        "mlflow.note.content": _cap(redact_text("\n\n".join(reasons)))}
    artifacts, count = stage_run_artifacts(run, cfg, staging / "run", with_adapter=False)
    refusal = RunRecord(run_name=run_name(run, cfg), tags=tags, params=flat_config(cfg), metrics=metrics,
                        artifacts=artifacts, artifact_count=count)
    _check_against_mlflow(refusal)
    return refusal


def _gates(run: RunDir, cfg: RunConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """The gate record: passed only when every gate stage of the chain was read and passed."""
    unchecked = unchecked_gate_stages(run, cfg)
    tags = {"gates.passed": str(not run.failed and not unchecked).lower()}
    summary: dict[str, Any] = {"passed": not run.failed and not unchecked}
    if run.failed:
        override = (cfg.gates.override_reason or "").strip()
        tags.update({"gates.override_reason": override, "gates.failed_stages": ",".join(v.stage for v in run.failed),
                     "gates.failed_reasons": " | ".join(v.why_not() for v in run.failed)})
        summary["override"] = {"reason": override, "failed": [v.why_not() for v in run.failed]}
    if unchecked:
        reason = (cfg.register_.required_stages_override_reason or "").strip()
        tags.update({"gates.unchecked_stages": ",".join(unchecked),
                     "gates.required_stages": ",".join(cfg.register_.required_stages),
                     "gates.required_stages_override_reason": reason})
        summary["required_stages_override"] = {"reason": reason, "unchecked": unchecked,
                                               "required_stages": list(cfg.register_.required_stages)}
    return summary, tags


def _tags(values: dict[str, str]) -> dict[str, str]:
    return {f"{TAG}{k}": _cap(redact_text(str(v))) for k, v in values.items() if v not in (None, "")}


def stage_run_artifacts(run: RunDir, cfg: RunConfig, into: Path, with_adapter: bool) -> tuple[Path, int]:
    """config.json (the config register ran with), the run dir's and each stage's top-level report files,
    and the adapter, copied into `into` with credentials redacted from every text file."""
    suffixes = tuple(s.lower() for s in cfg.register_.run_artifact_suffixes)
    into.mkdir(parents=True)
    (into / "config.json").write_text(_json(redact_config(dump_config(cfg))), encoding="utf-8")
    count = 1
    for path in sorted(run.root.iterdir()):
        if path.is_file() and path.suffix.lower() in suffixes:
            count += _copy_redacted(path, into / "run" / path.name)
    for verdict in run.verdicts:
        stage_dir = verdict.path.parent
        if not stage_dir.is_dir():
            continue
        for path in sorted(stage_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in suffixes:
                count += _copy_redacted(path, into / "stages" / verdict.stage / path.name)
    adapter = run.root / "train" / "adapter"
    if with_adapter and adapter.is_dir():
        for path in sorted(p for p in adapter.rglob("*") if p.is_file()):
            count += _copy_redacted(path, into / "adapter" / path.relative_to(adapter))
    return into, count


def _copy_redacted(src: Path, dst: Path) -> int:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix.lower() in _TEXT_SUFFIXES:
        try:
            text = src.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            dst.write_text(redact_text(text), encoding="utf-8")
            return 1
    try:
        shutil.copy2(src, dst)
    except OSError as exc:
        raise InputError(f"{src}: cannot stage it for MLflow: {exc}") from None
    return 1


def _check_against_mlflow(what: RunRecord) -> None:
    """MLflow's own validators (what the client and server run), so a key or value it would refuse is an
    error now, before the run exists, instead of after it was half logged."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import (
        _validate_metric,
        _validate_model_version_tag,
        _validate_param,
        _validate_tag,
    )

    checks = [("param", k, lambda k=k, v=v: _validate_param(k, v)) for k, v in what.params.items()]
    checks += [("tag", k, lambda k=k, v=v: (_validate_tag(k, v), _validate_model_version_tag(k, v))) for k, v in what.tags.items()]
    checks += [("metric", k, lambda k=k, v=v: _validate_metric(k, v, 0, 0)) for k, v in what.metrics.values.items()]
    checks += [("metric", k, lambda k=k, v=v, s=s: _validate_metric(k, v, 0, s)) for k, v, s in what.curves]
    for kind, key, check in checks:
        try:
            check()
        except MlflowException as exc:
            raise InputError(f"MLflow would refuse {kind} '{key}': {exc.message.splitlines()[0]}") from None


def run_name(run: RunDir, cfg: RunConfig) -> str:
    return cfg.run.run_id or f"{cfg.run.name}-{run.root.resolve().name}"


def _description(run: RunDir, gguf_path: Path, gates: dict[str, Any]) -> str:
    evaluate = run.report("evaluate").get("metrics") or {}
    scores = ", ".join(f"{k}={v:.3f}" for k, v in evaluate.items()
                       if isinstance(v, float) and k in ("rouge_l", "chrf", "bleu", "degenerate_rate"))
    verdicts = []
    if "override" in gates:
        verdicts.append(f"GATE OVERRIDE: {gates['override']['reason']}")
    if "required_stages_override" in gates:
        narrowed = gates["required_stages_override"]
        verdicts.append(f"GATES NOT CHECKED ({', '.join(narrowed['unchecked'])}): {narrowed['reason']}")
    verdict = "; ".join(verdicts) or "every gate passed"
    return f"{gguf_path.name} from {run.root.name}; {verdict}" + (f"; test {scores}" if scores else "")


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _cap(value: str) -> str:
    return value if len(value) <= _MAX_TAG_VALUE else value[: _MAX_TAG_VALUE - 1] + "…"
