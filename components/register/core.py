"""The register stage: a run that passed every gate becomes an MLflow run and a registry version.

    run_register(run_dir, output_dir, cfg) -> StageReport

1. Every stage report in run_dir is read; one that failed or is missing refuses the registration (its
   reasons named), unless gates.override_reason gives a written reason, which is recorded with the model.
   Which reports are needed is register.required_stages: every gate stage of the chain unless
   register.required_stages_override_reason narrows it (then the version's gates.passed is false).
2. Everything MLflow will get is prepared and checked first (prepare.py): the GGUF (strict header, sha256
   equal to what the gguf and evaluate gates measured), params, metrics, tags, description and artifact
   files, with credentials redacted. A bad input fails here, while MLflow holds nothing of this run.
3. An MLflow run (experiment register.experiment) gets the redacted config as params, every finite numeric
   metric of every report as `<stage>.<metric>`, the trainer's loss curves, the reports, charts and HTML,
   and the LoRA adapter.
4. The GGUF becomes a flavor-less logged model (initialize -> artifacts -> finalize READY), registered as
   a new version of register.model_name from `models:/<model_id>` with lineage tags; then the registry is
   reconciled (registry.py): one version per GGUF sha256, alias `challenger` on the newest version, whatever
   concurrent registrations do. A registration that lost the race for its file withdraws its run, logged
   model and version, and reports the version that holds the file.
A refused registration still logs a FAILED run with the reasons (register.log_refused_runs).
MLflow's HTTP timeout and retries come from register.http_* for the whole call.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from components.common.config import RunConfig
from components.common.errors import InputError, StorageError
from components.common.redact import redact_config, redact_text, redact_uri
from components.common.report import StageReport
from components.common.stage_output import StageOutput, check_output_location
from components.register import registry
from components.register.prepare import Registration, prepare, prepare_refusal
from components.register.run_dir import STAGE, RunDir, read_run_dir
from components.register.tracking import (
    client_for,
    experiment_id,
    http_settings,
    is_local_store,
    long_uploads,
    mlflow_errors,
    stdout_to_stderr,
    tracking_uri,
)


def run_register(run_dir: str | Path, output_dir: str | Path, cfg: RunConfig,
                 sources: dict[str, str] | None = None) -> StageReport:
    """`sources`: where each stage's output really lives (KFP artifact URIs) when run_dir only links to it."""
    check_output_location(output_dir)  # a bad place fails before MLflow is touched
    run = read_run_dir(run_dir, cfg, sources)
    report = StageReport(STAGE)
    uri = tracking_uri(cfg)
    report.details.update({"tracking_uri": redact_uri(uri), "experiment": cfg.register_.experiment,
                           "stages": {v.stage: v.passed for v in run.verdicts}})
    with tempfile.TemporaryDirectory(prefix="finegate-register-") as tmp, http_settings(cfg.register_):
        if run.failed and not (cfg.gates.override_reason or "").strip():
            _refuse(run, cfg, uri, report, Path(tmp))
        else:
            plan = prepare(run, cfg, Path(tmp))  # before anything exists in MLflow
            _publish(plan, cfg, uri, report)
    return _write(report, Path(output_dir))


def _publish(plan: Registration, cfg: RunConfig, uri: str, report: StageReport) -> None:
    client = client_for(uri)
    name, alias = plan.model_name, cfg.register_.challenger_alias
    report.details.update({"model_name": name, "gates": plan.gates,
                           "gguf": {"file": str(plan.gguf), "sha256": plan.digest, "bytes": plan.file_bytes}})
    if plan.metrics.skipped:
        report.details["skipped_metrics"] = plan.metrics.skipped
        _say("metrics left out (not finite): " + ", ".join(f"{k}={v}" for k, v in plan.metrics.skipped.items()))
    with mlflow_errors(uri, f"looking up '{name}'"):
        existing = registry.lowest_holding(client, name, plan.digest)
    if existing is not None:
        # A retried task or a second `finegate register` of the same run: the file already is a version.
        _say(f"{plan.gguf.name} (sha256 {plan.digest[:12]}) already is {name} version {existing.version}; "
             "nothing new registered")
        _settle_alias(client, uri, name, alias, cfg)
        _report_existing(report, client, uri, name, existing, alias)
        return
    with mlflow_errors(uri, f"experiment '{cfg.register_.experiment}'"):
        exp_id = experiment_id(client, cfg, uri)
        run_id = client.create_run(exp_id, run_name=plan.run_name, tags=plan.tags).info.run_id
    _say(f"MLflow run {run_id} in experiment '{cfg.register_.experiment}' at {redact_uri(uri)}")
    model_id = None
    try:
        with mlflow_errors(uri, "logging params"):
            client.log_batch(run_id, params=_params(plan.params))
        with mlflow_errors(uri, f"uploading {plan.artifact_count} run artifacts"), long_uploads():
            client.log_artifacts(run_id, str(plan.artifacts))
        _say(f"logged {len(plan.params)} params and {plan.artifact_count} artifacts")
        with mlflow_errors(uri, "logging the GGUF as a model"):
            model_id = _log_model(client, exp_id, run_id, plan)
        with mlflow_errors(uri, "logging metrics"):
            metrics = plan.metric_entities(model_id)
            client.log_batch(run_id, metrics=metrics)
        with mlflow_errors(uri, f"registering '{name}'"):
            own = registry.create_version(client, name, model_id, run_id, plan.tags, plan.description,
                                          is_local_store(uri))
            kept = registry.keep_lowest(client, name, own, plan.digest)
        if str(kept.version) != own:
            _withdraw(client, uri, run_id, model_id, name, own, kept)
            _settle_alias(client, uri, name, alias, cfg)
            _report_existing(report, client, uri, name, kept, alias)
            report.details["withdrawn"] = {"mlflow_run_id": run_id, "model_id": model_id, "model_version": own}
            return
        with mlflow_errors(uri, f"recording version {own} on its logged model"):
            _link_version(client, model_id, name, own)
        settled = _settle_alias(client, uri, name, alias, cfg)
        with mlflow_errors(uri, "finishing the run"):
            client.set_terminated(run_id, "FINISHED")
    except BaseException:
        _terminate_quietly(client, run_id)
        raise
    _say(f"registered {name} version {own}" + (f" (alias {alias})" if settled == own else
                                                f" ({alias} is on the newer version {settled})")
         + f", GGUF sha256 {plan.digest[:12]}")
    report.metrics.update({"model_version": int(own), "params_logged": len(plan.params),
                           "artifacts_logged": plan.artifact_count, "metrics_logged": len(metrics)})
    report.details.update({
        "mlflow_run_id": run_id, "experiment_id": exp_id, "model_id": model_id, "model_version": own,
        "alias": alias, "alias_version": settled, "model_uri": f"models:/{name}/{own}",
        "alias_uri": f"models:/{name}@{alias}", "tags": plan.tags,
    })


def _params(params: dict[str, str]) -> list:
    from mlflow.entities import Param

    return [Param(k, v) for k, v in params.items()]


def _log_model(client, exp_id: str, run_id: str, plan: Registration) -> str:
    """The GGUF as a flavor-less logged model (no MLmodel file: nothing to load but the file itself)."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    model = client.create_logged_model(exp_id, name=plan.gguf.stem, source_run_id=run_id, tags=plan.tags,
                                       model_type="gguf")
    try:
        _say(f"uploading {plan.gguf.name} ({plan.file_bytes / 1e6:.1f} MB) as logged model {model.model_id}")
        with long_uploads():
            for path in plan.model_files:
                client.log_model_artifact(model.model_id, str(path))
    except BaseException:
        client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    return model.model_id


def _link_version(client, model_id: str, name: str, version: str) -> None:
    """What mlflow.register_model does too: the logged model lists the versions made from it."""
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: f'[{{"name": "{name}", "version": "{version}"}}]'})


def _withdraw(client, uri: str, run_id: str, model_id: str, name: str, own: str, kept) -> None:
    """A concurrent registration of the same file got the lower version: this one's run and logged model go."""
    with mlflow_errors(uri, f"withdrawing the duplicate of {name} version {kept.version}"):
        client.set_terminated(run_id, "FINISHED")
        client.delete_logged_model(model_id)
        client.delete_run(run_id)
    _say(f"a concurrent registration of the same GGUF holds {name} version {kept.version}; this one's version "
         f"{own}, run {run_id} and logged model {model_id} were withdrawn")


def _settle_alias(client, uri: str, name: str, alias: str, cfg: RunConfig) -> str | None:
    with mlflow_errors(uri, f"pointing alias '{alias}' of {name} at its newest version"):
        return registry.point_alias_at_newest(client, name, alias, cfg.register_.reconcile_max_rounds)


def _report_existing(report: StageReport, client, uri: str, name: str, version, alias: str) -> None:
    with mlflow_errors(uri, f"reading {name} version {version.version}"):
        aliases = list(client.get_model_version(name, str(version.version)).aliases)
    report.metrics["model_version"] = int(version.version)
    report.details.update({"already_registered": True, "mlflow_run_id": version.run_id,
                           "model_version": str(version.version), "model_uri": f"models:/{name}/{version.version}",
                           "alias_uri": f"models:/{name}@{alias}", "aliases": aliases})


def _refuse(run: RunDir, cfg: RunConfig, uri: str, report: StageReport, staging: Path) -> None:
    for verdict in run.failed:
        report.fail(verdict.why_not())
    report.fail("nothing registered: fix the failed stage and rerun the chain from it, or set "
                "gates.override_reason to a written reason (recorded with the model)")
    if cfg.register_.log_refused_runs:
        try:
            refusal = prepare_refusal(run, cfg, report.reasons, staging)
            if refusal.metrics.skipped:
                report.details["skipped_metrics"] = refusal.metrics.skipped
            report.details["mlflow_run_id"] = _log_refused_run(refusal, cfg, uri)
        except (StorageError, InputError) as exc:  # the refusal stands either way; MLflow being down must not hide it
            report.details["mlflow_error"] = str(exc)
            _say(f"could not record the refusal in MLflow: {exc}")
    _say(f"refused: {len(run.failed)} stage(s) did not pass; nothing registered")


def _log_refused_run(refusal, cfg: RunConfig, uri: str) -> str:
    """A FAILED run holding the reasons, metrics and reports: the refusal is visible in MLflow, the registry untouched."""
    client = client_for(uri)
    with mlflow_errors(uri, "logging the refused run"):
        exp_id = experiment_id(client, cfg, uri)
        run_id = client.create_run(exp_id, run_name=refusal.run_name, tags=refusal.tags).info.run_id
        client.log_batch(run_id, params=_params(refusal.params), metrics=refusal.metric_entities())
        with long_uploads():
            client.log_artifacts(run_id, str(refusal.artifacts))
        client.set_terminated(run_id, "FAILED")
    _say(f"refused run logged to MLflow as {run_id} (status FAILED)")
    return run_id


def _write(report: StageReport, out: Path) -> StageReport:
    """Everything the report says passes through the redaction once more: it is printed and kept. Written
    as every stage output is (components/common/stage_output.py): local or s3://, the report last."""
    report.reasons[:] = [redact_text(r) for r in report.reasons]
    report.details = redact_config(report.details)
    with StageOutput(out, STAGE) as output:
        output.finish(report)
    return report


def _terminate_quietly(client, run_id: str) -> None:
    try:
        with stdout_to_stderr():
            client.set_terminated(run_id, "FAILED")
    except Exception:  # noqa: BLE001 - the original error is the one worth raising
        pass


def _say(message: str) -> None:
    print(f"register: {redact_text(message)}", file=sys.stderr, flush=True)
