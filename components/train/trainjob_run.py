"""The train task's side of a multi-node run: create the TrainJob, wait for it, bring its output home.

    run_trainjob(data_uri, base_model, model_dir, model_uri, cfg) -> StageReport

1. One TrainJob per run id (components/train/trainjob.py builds it). Its output goes to
   <train.output_uri>/<run id>, or, without train.output_uri, beside the task's model artifact
   (<artifact uri>-trainjob); the TrainJob records where (annotation finegate.io/output-uri).
2. It is created in train.trainjob.namespace (default: the namespace the task runs in). When a TrainJob of
   that name exists (a retried task of the same run), it is rejoined: a finished one is used as it is, a
   running one waited for, a failed one deleted and created again (resuming from the run's mirrored
   checkpoints when train.checkpoint_uri is set).
3. Its status is read every train.trainjob.poll_s seconds until its Complete or Failed condition is True,
   for at most train.trainjob.timeout_s; then the TrainJob is deleted and the task fails saying so.
4. The stage output is copied from S3 into the task's model artifact, verified against its report, so
   downstream tasks read the same adapter/, merged/ and report.json as after a one-pod run.
The pipeline runner's service account needs create, get and delete on trainjobs (k8s/trainer/pipeline-runner).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from components.common.config import RunConfig
from components.common.errors import ConfigError, FinegateError
from components.common.report import REPORT_NAME, StageReport
from components.common.stage_output import read_output
from components.train.data_parallel import stage_report
from components.train.settings import TrainJobSection
from components.train.trainjob import OUTPUT_ANNOTATION, trainjob_manifest, trainjob_name
from components.train.trainjob_schema import API_VERSION

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "trainjobs"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# (connect, read) seconds of each API call: a silent API server fails the call instead of hanging the task.
REQUEST_TIMEOUT = (10, 60)


class TrainJobError(FinegateError):
    """The TrainJob could not be created, failed, or did not finish in time."""


def run_trainjob(data_uri: str, base_model: str, model_dir: str | Path, model_uri: str, cfg: RunConfig,
                 api=None) -> StageReport:
    """Trains on train.nodes nodes through a TrainJob and returns the stage report, with the stage output
    copied into model_dir. `api`: a kubernetes CustomObjectsApi (default: in-cluster, else kubeconfig)."""
    settings = cfg.train.trainjob
    run_id = cfg.run.run_id or f"unnamed-{uuid.uuid4().hex}"
    output_uri = (f"{cfg.train.output_uri.rstrip('/')}/{run_id}" if cfg.train.output_uri
                  else f"{model_uri.rstrip('/')}-trainjob")
    namespace = settings.namespace or own_namespace()
    manifest = trainjob_manifest(cfg, name=trainjob_name(run_id), namespace=namespace, data_uri=data_uri,
                                 base_model=base_model, output_uri=output_uri)
    api = api or custom_objects_api()
    job = create_or_rejoin(api, manifest, settings)
    wait_for(api, namespace, manifest["metadata"]["name"], settings)
    return copy_output(job["metadata"]["annotations"][OUTPUT_ANNOTATION], model_dir)


def own_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip()
    except OSError:
        raise ConfigError("not running in a Kubernetes pod: set train.trainjob.namespace to where the TrainJob "
                          "goes") from None


def custom_objects_api():
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as exc:
            raise ConfigError(f"no Kubernetes API to create the TrainJob with (not in a pod, no kubeconfig: {exc})") \
                from None
    return client.CustomObjectsApi()


def _api_error(exc, what: str) -> TrainJobError:
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        hint = {403: "; the pipeline runner's service account may not manage TrainJobs: apply k8s/trainer/pipeline-runner",
                404: "; is Kubeflow Trainer installed (k8s/trainer, README)?"}.get(exc.status, "")
        return TrainJobError(f"{what}: Kubernetes API answered {exc.status} {exc.reason}{hint}")
    return TrainJobError(f"{what}: {type(exc).__name__}: {exc}")


def _call(what: str, fn, *args, **kwargs) -> Any:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return fn(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
    except (ApiException, HTTPError, OSError) as exc:
        raise _api_error(exc, what) from None


def _get(api, namespace: str, name: str) -> dict | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise _api_error(exc, f"reading TrainJob {namespace}/{name}") from None


def condition(job: dict, kind: str) -> dict | None:
    """The TrainJob's condition of this type when it is True (Complete, Failed, Suspended)."""
    for found in (job.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind and found.get("status") == "True":
            return found
    return None


def create_or_rejoin(api, manifest: dict, settings: TrainJobSection) -> dict:
    from kubernetes.client.exceptions import ApiException

    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    try:
        created = api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest,
                                                      _request_timeout=REQUEST_TIMEOUT)
        print(f"train: created TrainJob {namespace}/{name} ({manifest['spec']['trainer']['numNodes']} nodes)",
              file=sys.stderr, flush=True)
        return created
    except ApiException as exc:
        if exc.status != 409:
            raise _api_error(exc, f"creating TrainJob {namespace}/{name}") from None
    existing = _get(api, namespace, name)
    if existing is None:  # deleted between the two calls
        return _call(f"creating TrainJob {namespace}/{name}", api.create_namespaced_custom_object, GROUP, VERSION,
                     namespace, PLURAL, manifest)
    if condition(existing, "Failed") is None:
        print(f"train: rejoining TrainJob {namespace}/{name} of this run", file=sys.stderr, flush=True)
        return existing
    print(f"train: TrainJob {namespace}/{name} of this run failed before; starting it again", file=sys.stderr,
          flush=True)
    delete(api, namespace, name, settings)
    return _call(f"creating TrainJob {namespace}/{name}", api.create_namespaced_custom_object, GROUP, VERSION,
                 namespace, PLURAL, manifest)


def delete(api, namespace: str, name: str, settings: TrainJobSection) -> None:
    """Deletes the TrainJob with its pods (foreground) and waits until it is gone."""
    from kubernetes.client.exceptions import ApiException

    try:
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                            propagation_policy="Foreground", _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status != 404:
            raise _api_error(exc, f"deleting TrainJob {namespace}/{name}") from None
    deadline = time.monotonic() + settings.timeout_s
    while _get(api, namespace, name) is not None:
        if time.monotonic() > deadline:
            raise TrainJobError(f"TrainJob {namespace}/{name} was not deleted within {settings.timeout_s} s")
        time.sleep(settings.poll_s)


def wait_for(api, namespace: str, name: str, settings: TrainJobSection) -> dict:
    """The TrainJob once it is Complete; TrainJobError when it failed, vanished or ran out of time."""
    deadline = time.monotonic() + settings.timeout_s
    said = None
    while True:
        job = _get(api, namespace, name)
        if job is None:
            raise TrainJobError(f"TrainJob {namespace}/{name} was deleted while the train task waited for it")
        if condition(job, "Complete"):
            print(f"train: TrainJob {namespace}/{name} complete", file=sys.stderr, flush=True)
            return job
        failed = condition(job, "Failed")
        if failed:
            raise TrainJobError(f"TrainJob {namespace}/{name} failed ({failed.get('reason')}: {failed.get('message')}); "
                                f"its pods' logs say why: kubectl logs -n {namespace} -l "
                                f"jobset.sigs.k8s.io/jobset-name={name}")
        state = [(c.get("type"), c.get("reason")) for c in (job.get("status") or {}).get("conditions") or []
                 if c.get("status") == "True"]
        if state != said:
            print(f"train: TrainJob {namespace}/{name}: {', '.join(f'{t} ({r})' for t, r in state) or 'started'}",
                  file=sys.stderr, flush=True)
            said = state
        if time.monotonic() > deadline:
            delete(api, namespace, name, settings)
            raise TrainJobError(f"TrainJob {namespace}/{name} did not finish within train.trainjob.timeout_s="
                                f"{settings.timeout_s} s; it was deleted (its checkpoints stay in train.checkpoint_uri)")
        time.sleep(settings.poll_s)


def copy_output(output_uri: str, model_dir: str | Path) -> StageReport:
    """The TrainJob's stage output, verified, moved into model_dir (report.json last); its report."""
    from components.train.core import STAGE

    dest = Path(model_dir)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="finegate-trainjob-") as tmp:
        local, _ = read_output(output_uri, STAGE, tmp, require_passed=False)
        for entry in sorted(local.iterdir(), key=lambda p: p.name == REPORT_NAME):
            target = dest / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            shutil.move(str(entry), target)
    print(f"train: copied the TrainJob's output from {output_uri}", file=sys.stderr, flush=True)
    return stage_report(dest)
