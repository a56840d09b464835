"""The register stage: a run that passed every gate becomes an MLflow run and a registry version.

    run_register(run_dir, output_dir, cfg) -> StageReport

1. Every stage report in run_dir is read; one that failed or is missing refuses the registration (its
   reasons named), unless gates.override_reason gives a written reason, which is recorded with the model.
2. The shipped GGUF is checked (strict header, sha256 equal to what the gguf and evaluate gates measured).
3. An MLflow run (experiment register.experiment) gets the flattened config as params, every numeric
   metric of every report as `<stage>.<metric>`, the trainer's loss curves, the reports, charts and HTML,
   and the LoRA adapter.
4. The GGUF becomes a flavor-less logged model (initialize -> artifacts -> finalize READY), registered as
   a new version of register.model_name from `models:/<model_id>` with lineage tags, alias `challenger`.
   The registry is touched only after everything else worked, and a registered model this call created is
   deleted again if its first version cannot be made, so a failure never leaves an empty model behind.
A refused registration still logs a FAILED run with the reasons (register.log_refused_runs).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from components.common.config import RunConfig, dump_config
from components.common.errors import StorageError
from components.common.report import StageReport
from components.register.run_dir import (
    STAGE,
    TAG,
    RunDir,
    check_recorded_digests,
    flat_config,
    lineage,
    loss_history,
    read_run_dir,
    shipped_gguf,
    stage_metrics,
)
from components.register.tracking import client_for, experiment_id, mlflow_errors, tracking_uri

_MAX_TAG_VALUE = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH


def run_register(run_dir: str | Path, output_dir: str | Path, cfg: RunConfig,
                 sources: dict[str, str] | None = None) -> StageReport:
    """`sources`: where each stage's output really lives (KFP artifact URIs) when run_dir only links to it."""
    run = read_run_dir(run_dir, cfg, sources)
    report = StageReport(STAGE)
    out = Path(output_dir)
    uri = tracking_uri(cfg)
    report.details.update({"tracking_uri": uri, "experiment": cfg.register_.experiment,
                           "stages": {v.stage: v.passed for v in run.verdicts}})
    override = (cfg.gates.override_reason or "").strip()
    if run.failed and not override:
        return _refuse(run, cfg, uri, report, out)

    from components.gguf.header import check_header

    gguf_path = shipped_gguf(run, cfg)
    header = check_header(gguf_path)
    check_recorded_digests(run, gguf_path.name, header.sha256)
    gates = {"gates.passed": str(not run.failed).lower()}
    if run.failed:
        gates.update({"gates.override_reason": override, "gates.failed_stages": ",".join(v.stage for v in run.failed),
                      "gates.failed_reasons": " | ".join(v.why_not() for v in run.failed)})
        report.details["gate_override"] = {"reason": override, "failed": [v.why_not() for v in run.failed]}
    gguf_tags = {"gguf.file": gguf_path.name, "gguf.sha256": header.sha256, "gguf.bytes": str(header.file_bytes),
                 "gguf.architecture": str(header.metadata.get("general.architecture", ""))}
    tags = {**lineage(run, cfg), **{f"{TAG}{k}": _cap(v) for k, v in {**gates, **gguf_tags}.items() if v}}

    client = client_for(uri)
    model_name = cfg.register_.model_name or cfg.run.name
    with mlflow_errors(uri, f"looking up '{model_name}'"):
        existing = _version_holding(client, model_name, header.sha256)
    if existing is not None:
        # A retried task or a second `finegate register` of the same run: the file already is a version.
        _say(f"{gguf_path.name} (sha256 {header.sha256[:12]}) already is {model_name} version {existing.version}; "
             "nothing new registered")
        report.metrics["model_version"] = int(existing.version)
        report.details.update({"already_registered": True, "mlflow_run_id": existing.run_id,
                               "model_name": model_name, "model_version": str(existing.version),
                               "model_uri": f"models:/{model_name}/{existing.version}",
                               "aliases": list(existing.aliases), "gguf": {"file": str(gguf_path), "sha256": header.sha256}})
        report.write(out)
        return report
    with mlflow_errors(uri, f"experiment '{cfg.register_.experiment}'"):
        exp_id = experiment_id(client, cfg, uri)
        mlrun = client.create_run(exp_id, run_name=_run_name(run, cfg), tags=tags)
    run_id = mlrun.info.run_id
    _say(f"MLflow run {run_id} in experiment '{cfg.register_.experiment}' at {uri}")
    model_id = None
    try:
        logged = _log_run(client, uri, run_id, run, cfg)
        with mlflow_errors(uri, "logging the GGUF as a model"):
            model_id = _log_model(client, exp_id, run_id, gguf_path, header.sha256, tags)
        with mlflow_errors(uri, "logging metrics"):
            logged["metrics"] = _log_metrics(client, run_id, run, model_id)
        with mlflow_errors(uri, f"registering '{model_name}'"):
            version = _register_version(client, model_name, model_id, run_id, tags, _description(run, gguf_path, gates))
            client.set_registered_model_alias(model_name, cfg.register_.challenger_alias, version)
            client.set_terminated(run_id, "FINISHED")
    except BaseException:
        _terminate_quietly(client, run_id)
        raise
    _say(f"registered {model_name} version {version} (alias {cfg.register_.challenger_alias}), "
         f"GGUF sha256 {header.sha256[:12]}")
    report.metrics.update({"model_version": int(version), **{f"{k}_logged": v for k, v in logged.items()}})
    report.details.update({
        "mlflow_run_id": run_id, "experiment_id": exp_id, "model_id": model_id, "model_name": model_name,
        "model_version": version, "alias": cfg.register_.challenger_alias,
        "model_uri": f"models:/{model_name}/{version}",
        "alias_uri": f"models:/{model_name}@{cfg.register_.challenger_alias}",
        "gguf": {"file": str(gguf_path), "sha256": header.sha256, "bytes": header.file_bytes}, "tags": tags,
    })
    report.write(out)
    return report


def _log_run(client, uri: str, run_id: str, run: RunDir, cfg: RunConfig) -> dict[str, int]:
    """Params, then the reports, charts and adapter as artifacts (one upload of a staged folder)."""
    from mlflow.entities import Param

    params = flat_config(cfg)
    with mlflow_errors(uri, "logging params"):
        client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
    with tempfile.TemporaryDirectory(prefix="finegate-register-") as tmp:
        staged = _stage_artifacts(run, cfg, Path(tmp), with_adapter=cfg.register_.log_adapter)
        with mlflow_errors(uri, f"uploading {staged} run artifacts"):
            client.log_dict(run_id, dump_config(cfg), "config.json")
            client.log_artifacts(run_id, tmp)
    _say(f"logged {len(params)} params and {staged} artifacts")
    return {"params": len(params), "artifacts": staged + 1}


def _stage_artifacts(run: RunDir, cfg: RunConfig, into: Path, with_adapter: bool) -> int:
    suffixes = tuple(s.lower() for s in cfg.register_.run_artifact_suffixes)
    count = 0
    for path in sorted(run.root.iterdir()):
        if path.is_file() and path.suffix.lower() in suffixes:
            count += _copy(path, into / "run" / path.name)
    for verdict in run.verdicts:
        stage_dir = verdict.path.parent
        if not stage_dir.is_dir():
            continue
        for path in sorted(stage_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in suffixes:
                count += _copy(path, into / "stages" / verdict.stage / path.name)
    adapter = run.root / "train" / "adapter"
    if with_adapter and adapter.is_dir():
        shutil.copytree(adapter, into / "adapter")
        count += sum(1 for p in adapter.rglob("*") if p.is_file())
    return count


def _copy(src: Path, dst: Path) -> int:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return 1


def _log_model(client, exp_id: str, run_id: str, gguf_path: Path, digest: str, tags: dict[str, str]) -> str:
    """The GGUF as a flavor-less logged model (no MLmodel file: nothing to load but the file itself)."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    model = client.create_logged_model(exp_id, name=gguf_path.stem, source_run_id=run_id, tags=tags, model_type="gguf")
    try:
        _say(f"uploading {gguf_path.name} ({gguf_path.stat().st_size / 1e6:.1f} MB) as logged model {model.model_id}")
        with tempfile.TemporaryDirectory(prefix="finegate-register-") as tmp:
            sums = Path(tmp) / "SHA256SUMS"
            sums.write_text(f"{digest}  {gguf_path.name}\n", encoding="utf-8")
            client.log_model_artifact(model.model_id, str(gguf_path))
            client.log_model_artifact(model.model_id, str(sums))
    except BaseException:
        client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    return model.model_id


def _log_metrics(client, run_id: str, run: RunDir, model_id: str | None) -> int:
    """Report metrics at step 0, linked to the logged model so its page shows them; curves by training step."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0, model_id=model_id) for k, v in stage_metrics(run).items()]
    metrics += [Metric(k, v, now, step) for k, v, step in loss_history(run)]
    client.log_batch(run_id, metrics=metrics)
    return len(metrics)


def _register_version(client, name: str, model_id: str, run_id: str, tags: dict[str, str], description: str) -> str:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    created = False
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, description="finegate: LoRA fine-tuned GGUF models that passed every gate")
        created = True
    try:
        # A database registry store resolves a models:/<model_id> source through mlflow's process-wide
        # tracking URI, not the client's (its own TODO in sqlalchemy_store.create_model_version): point that
        # at our store for this one call, or a local registration looks in ./mlflow.db and fails.
        with _use_tracking_uri(client.tracking_uri):
            version = client.create_model_version(name, source=f"models:/{model_id}", run_id=run_id, tags=tags,
                                                  description=description, model_id=model_id)
    except BaseException:
        if created:
            client.delete_registered_model(name)
        raise
    # What mlflow.register_model does too: the logged model lists the versions made from it.
    client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: f'[{{"name": "{name}", "version": "{version.version}"}}]'})
    return str(version.version)


def _refuse(run: RunDir, cfg: RunConfig, uri: str, report: StageReport, out: Path) -> StageReport:
    for verdict in run.failed:
        report.fail(verdict.why_not())
    report.fail("nothing registered: fix the failed stage and rerun the chain from it, or set "
                "gates.override_reason to a written reason (recorded with the model)")
    if cfg.register_.log_refused_runs:
        try:
            report.details["mlflow_run_id"] = _log_refused_run(run, cfg, uri, report.reasons)
        except StorageError as exc:  # the refusal stands either way; MLflow being down must not hide it
            report.details["mlflow_error"] = str(exc)
            _say(f"could not record the refusal in MLflow: {exc}")
    report.write(out)
    _say(f"refused: {len(run.failed)} stage(s) did not pass; nothing registered")
    return report


def _version_holding(client, name: str, digest: str):
    """The version of `name` already holding the file with this sha256, if any."""
    found = client.search_model_versions(f"name = '{name}' and tags.`{TAG}gguf.sha256` = '{digest}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def _log_refused_run(run: RunDir, cfg: RunConfig, uri: str, reasons: list[str]) -> str:
    """A FAILED run holding the reasons, metrics and reports: the refusal is visible in MLflow, the registry untouched."""
    from mlflow.entities import Metric, Param

    client = client_for(uri)
    tags = {**lineage(run, cfg), f"{TAG}gates.passed": "false",
            f"{TAG}gates.failed_stages": ",".join(v.stage for v in run.failed),
            f"{TAG}refused": _cap(" | ".join(reasons)), "mlflow.note.content": _cap("\n\n".join(reasons))}
    with mlflow_errors(uri, "logging the refused run"):
        exp_id = experiment_id(client, cfg, uri)
        mlrun = client.create_run(exp_id, run_name=_run_name(run, cfg), tags=tags)
        run_id = mlrun.info.run_id
        now = int(time.time() * 1000)
        client.log_batch(run_id, params=[Param(k, v) for k, v in flat_config(cfg).items()],
                         metrics=[Metric(k, v, now, 0) for k, v in stage_metrics(run).items()])
        with tempfile.TemporaryDirectory(prefix="finegate-register-") as tmp:
            if _stage_artifacts(run, cfg, Path(tmp), with_adapter=False):
                client.log_artifacts(run_id, tmp)
        client.set_terminated(run_id, "FAILED")
    _say(f"refused run logged to MLflow as {run_id} (status FAILED)")
    return run_id


def _description(run: RunDir, gguf_path: Path, gates: dict[str, str]) -> str:
    evaluate = run.report("evaluate").get("metrics") or {}
    scores = ", ".join(f"{k}={v:.3f}" for k, v in evaluate.items()
                       if isinstance(v, float) and k in ("rouge_l", "chrf", "bleu", "degenerate_rate"))
    verdict = "every gate passed" if gates["gates.passed"] == "true" else f"GATE OVERRIDE: {gates['gates.override_reason']}"
    return f"{gguf_path.name} from {run.root.name}; {verdict}" + (f"; test {scores}" if scores else "")


def _run_name(run: RunDir, cfg: RunConfig) -> str:
    return cfg.run.run_id or f"{cfg.run.name}-{run.root.resolve().name}"


def _terminate_quietly(client, run_id: str) -> None:
    try:
        with redirect_stdout(sys.stderr):
            client.set_terminated(run_id, "FAILED")
    except Exception:  # noqa: BLE001 - the original error is the one worth raising
        pass


def _cap(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_TAG_VALUE else text[: _MAX_TAG_VALUE - 1] + "…"


def _say(message: str) -> None:
    print(f"register: {message}", file=sys.stderr, flush=True)
