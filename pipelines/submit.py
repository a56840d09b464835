"""`finegate submit`'s core: the run config's pipeline onto a Kubeflow Pipelines server, a run of it, its outcome.

    with kfp_session(cfg.kfp, token) as client:
        submitted = submit(client, cfg, package)        # pipeline (or a new version of it), experiment, run
        outcome = wait_for_run(client, submitted.run_id, cfg.kfp)   # SUCCEEDED / FAILED / ... with failed tasks

It talks to KFP's v2beta1 REST API through `kfp.Client`, so kfp's own auth paths apply unchanged: a bearer
token, a token file re-read per request, the in-cluster service account, or the kubeconfig through the API
server's proxy. Every socket waits at most kfp.request_timeout_s, and anything the server or the network
refuses becomes a KfpError (exit 2, one line, the endpoint's credentials redacted).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from components.common.config import RunConfig
from components.common.errors import FinegateError
from components.common.redact import MASK, redact_text, redact_uri
from pipelines.settings import KfpSection

# kfp.Client reads the endpoint from this variable when no host is given (kfp/client/client.py).
KFP_ENDPOINT_ENV = "KF_PIPELINES_ENDPOINT"
SUCCEEDED = "SUCCEEDED"
# V2beta1RuntimeState values after which a run changes no more.
FINISHED_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"})
_MESSAGE_CHARS = 300


class KfpError(FinegateError):
    """The KFP server could not be reached, refused a request, or answered something unusable."""


@dataclass(frozen=True)
class Submitted:
    pipeline_name: str
    pipeline_id: str
    new_pipeline: bool
    version_name: str
    version_id: str
    experiment_name: str
    experiment_id: str
    run_name: str
    run_id: str
    run_url: str | None


@dataclass(frozen=True)
class FailedTask:
    name: str
    state: str
    message: str | None


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    state: str
    finished: bool
    error: str | None = None
    failed_tasks: list[FailedTask] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.state == SUCCEEDED


def resolve_host(settings: KfpSection) -> str | None:
    return settings.host or os.environ.get(KFP_ENDPOINT_ENV) or None


def resolve_token(settings: KfpSection, token: str | None = None) -> str | None:
    """The bearer token: the one given, else the value of the variable kfp.token_env names."""
    return token or os.environ.get(settings.token_env) or None


def run_url(settings: KfpSection, run_id: str) -> str | None:
    """The run's page in the KFP UI, when the UI's address is known (not through a kubeconfig proxy)."""
    base = settings.ui_host or resolve_host(settings)
    return redact_uri(f"{base.rstrip('/')}/#/runs/details/{run_id}") if base else None


def compile_package(cfg: RunConfig, folder: str | Path) -> Path:
    from pipelines.pipeline import compile_pipeline

    return Path(compile_pipeline(cfg, str(Path(folder) / "pipeline.yaml")))


@contextlib.contextmanager
def kfp_session(settings: KfpSection, token: str | None = None) -> Iterator[Any]:
    """A `kfp.Client` for these settings (its constructor already asks the server's health) whose every call
    waits at most kfp.request_timeout_s per try, inside which every failure to talk to KFP is one KfpError."""
    host = resolve_host(settings)
    if host is None and not _kubernetes_reachable():
        raise KfpError("no KFP endpoint: set kfp.host (or --host, or $KF_PIPELINES_ENDPOINT), or run where a "
                       "kubeconfig or an in-cluster service account leads to the cluster")
    where = f"KFP API at {redact_uri(host)}" if host else "KFP API (through the kubeconfig or in-cluster service)"
    token = resolve_token(settings, token)
    with _kfp_errors(where, token):
        client = _client(settings, host, token)
        if getattr(client, "multi_user", False) and not client.get_user_namespace():
            raise KfpError(f"{where} is a multi-user KFP: set kfp.namespace (or --namespace) to your profile's namespace")
        yield client


def submit(client: Any, cfg: RunConfig, package: Path, run_name: str | None = None,
           version_name: str | None = None) -> Submitted:
    """Uploads `package` (a new pipeline, or a new version when a pipeline of its name exists), files a run of
    that version under the experiment (created when missing), and returns what was created."""
    settings = cfg.kfp
    pipeline_name = settings.pipeline_name or cfg.run.name
    now = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(package.read_bytes()).hexdigest()
    description = f"finegate, run config '{cfg.run.name}', package sha256 {digest}"
    pipeline_id = find_pipeline(client, pipeline_name, settings.namespace)
    new_pipeline = pipeline_id is None
    if new_pipeline:
        pipeline = _quiet(client.upload_pipeline, str(package), pipeline_name=pipeline_name,
                          description=description, namespace=settings.namespace)
        pipeline_id = _required(pipeline.pipeline_id, "the uploaded pipeline's id")
        version = _first_version(client, pipeline_id)
    else:
        version = _quiet(client.upload_pipeline_version, str(package),
                         pipeline_version_name=version_name or f"{pipeline_name}-{now}-{digest[:8]}",
                         pipeline_id=pipeline_id, description=description)
    version_id = _required(version.pipeline_version_id, "the uploaded version's id")
    experiment = _quiet(client.create_experiment, settings.experiment, namespace=settings.namespace)
    experiment_id = _required(experiment.experiment_id, "the experiment's id")
    run_name = run_name or cfg.run.run_id or f"{cfg.run.name}-{now}"
    run = _quiet(client.run_pipeline, experiment_id, run_name, pipeline_id=pipeline_id, version_id=version_id,
                 pipeline_root=settings.pipeline_root)
    run_id = _required(run.run_id, "the new run's id")
    return Submitted(pipeline_name=pipeline_name, pipeline_id=pipeline_id, new_pipeline=new_pipeline,
                     version_name=version.display_name or version.name or "", version_id=version_id,
                     experiment_name=settings.experiment, experiment_id=experiment_id, run_name=run_name,
                     run_id=run_id, run_url=run_url(settings, run_id))


def find_pipeline(client: Any, name: str, namespace: str | None) -> str | None:
    """The id of the pipeline of this display name, None when there is none."""
    name_filter = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "string_value": name}]})
    found = client.list_pipelines(filter=name_filter, namespace=namespace, page_size=2).pipelines or []
    if len(found) > 1:
        raise KfpError(f"more than one pipeline is named '{name}' on the server: set kfp.pipeline_name to a unique one")
    return _required(found[0].pipeline_id, f"the id of pipeline '{name}'") if found else None


def wait_for_run(client: Any, run_id: str, settings: KfpSection,
                 on_state: Callable[[str], None] | None = None) -> RunOutcome:
    """Reads the run every kfp.poll_interval_s until it finishes or kfp.wait_timeout_s pass; `on_state` hears
    each new state."""
    deadline = time.monotonic() + settings.wait_timeout_s
    last = None
    while True:
        run = client.get_run(run_id)
        state = run.state or "RUNTIME_STATE_UNSPECIFIED"
        if state != last and on_state is not None:
            on_state(state)
        last = state
        if state in FINISHED_STATES:
            return outcome_of(run)
        left = deadline - time.monotonic()
        if left <= 0:
            return RunOutcome(run_id=run_id, state=state, finished=False)
        time.sleep(min(settings.poll_interval_s, left))


def outcome_of(run: Any) -> RunOutcome:
    """A finished V2beta1Run as its state, its error and the tasks that failed with their messages."""
    tasks = (run.run_details.task_details if run.run_details else None) or []
    failed = [FailedTask(name=t.display_name or t.task_id or "?", state=t.state or "?",
                         message=_clean(t.error.message) if t.error and t.error.message else None)
              for t in tasks if t.state in ("FAILED", "CANCELED") or (t.error and t.error.message)]
    error = _clean(run.error.message) if run.error and run.error.message else None
    return RunOutcome(run_id=run.run_id, state=run.state, finished=True, error=error, failed_tasks=failed)


def _first_version(client: Any, pipeline_id: str) -> Any:
    """The version KFP creates with a new pipeline (the upload answers with the pipeline only)."""
    versions = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc").pipeline_versions
    if not versions:
        raise KfpError(f"the server lists no version of the pipeline it just created ({pipeline_id})")
    return versions[0]


def _client(settings: KfpSection, host: str | None, token: str | None) -> Any:
    import kfp

    class BoundedClient(kfp.Client):
        multi_user = False

        def get_kfp_healthz(self, sleep_duration: int = 5):
            # kfp asks 5 times, 5 s apart, logging a traceback each time; one bounded try says whether it answers.
            _bound_requests(self, settings.request_timeout_s)
            health = self._healthz_api.healthz_service_get_healthz()
            self.multi_user = bool(health.multi_user)
            return health

    credentials = None
    if token is None and settings.token_file:
        from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

        # kfp would log its own error line for every request before failing; refuse it once, up front
        with open(settings.token_file, encoding="utf-8") as readable:
            if not readable.read().strip():
                raise KfpError(f"kfp.token_file {settings.token_file} is empty")
        credentials = ServiceAccountTokenVolumeCredentials(path=settings.token_file)
    options = dict(host=host, existing_token=token, credentials=credentials, proxy=settings.proxy,
                   ssl_ca_cert=settings.ssl_ca_cert, kube_context=settings.kube_context)
    if settings.namespace:
        options["namespace"] = settings.namespace
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "This client only works with KFP v2.0.0-beta.2 and later"
        client = _quiet(BoundedClient, **options)
    return _bound_requests(client, settings.request_timeout_s)


def _bound_requests(client: Any, seconds: float) -> Any:
    """Gives every API call of this client a (connect, read) timeout. kfp.Client passes none to its generated
    API client, which then hands urllib3 an explicit None (wait forever), so neither urllib3's defaults nor the
    socket default apply; the generated client's one REST object, shared by all its APIs, is the one place to
    set it (the constructor may already call healthz, hence also from get_kfp_healthz)."""
    rest = client._healthz_api.api_client.rest_client
    if not getattr(rest, "finegate_timeout", None):
        unbounded = rest.request

        def request(method, url, **kwargs):
            kwargs["_request_timeout"] = kwargs.get("_request_timeout") or (seconds, seconds)
            return unbounded(method, url, **kwargs)

        rest.request, rest.finegate_timeout = request, seconds
    return client


def _quiet(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """kfp.Client prints its own 'details' links (the endpoint's full URL) on stdout; this command prints its own."""
    with contextlib.redirect_stdout(io.StringIO()):
        return call(*args, **kwargs)


@contextlib.contextmanager
def _kfp_errors(where: str, token: str | None) -> Iterator[None]:
    import kfp_server_api
    import urllib3

    try:
        yield
    except kfp_server_api.ApiException as exc:
        raise _error(f"{where}: {_api_problem(exc)}", token) from None
    except urllib3.exceptions.HTTPError as exc:
        raise _error(f"{where} unreachable: {_network_problem(exc)}", token) from None
    except OSError as exc:  # a token file or CA bundle that cannot be read, a socket error urllib3 let through
        path = f"{exc.filename}: " if exc.filename else ""
        raise _error(f"{where}: {path}{_clean(exc.strerror or str(exc) or type(exc).__name__)}", token) from None
    except ValueError as exc:  # kfp.Client's own checks (an ambiguous name, an empty one)
        raise _error(f"{where}: {_clean(str(exc))}", token) from None


def _error(message: str, token: str | None) -> KfpError:
    # a server or proxy may quote the request's Authorization header back in its error
    return KfpError(message.replace(token, MASK) if token else message)


def _api_problem(exc: Any) -> str:
    """HTTP status and the server's own message (a google.rpc.Status body), without headers or tokens."""
    message = ""
    try:
        body = json.loads(exc.body) if exc.body else {}
        if isinstance(body, dict):
            message = str(body.get("message") or body.get("error_message") or "")
    except (TypeError, ValueError):
        message = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
    status = f"HTTP {exc.status} {exc.reason or ''}".strip() if exc.status else _clean(str(exc.reason))
    return f"{status}: {_clean(message)}" if message else status


def _network_problem(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    # urllib3 names its connection object ("<HTTPConnection object at 0x7f...>: Failed to ..."); the rest is the story.
    return _clean(re.sub(r"<[^>]*>:?\s*", "", str(reason))) or type(reason).__name__


def _clean(text: str) -> str:
    text = redact_text(" ".join(str(text).split()))
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "..."


def _required(value: str | None, what: str) -> str:
    if not value:
        raise KfpError(f"the KFP server's answer lacks {what}")
    return value


def _kubernetes_reachable() -> bool:
    """Whether kfp.Client's own discovery has anything to go on: a pod's service account or a kubeconfig."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return True
    kubeconfig = os.environ.get("KUBECONFIG", "~/.kube/config")
    return any(Path(p).expanduser().is_file() for p in kubeconfig.split(os.pathsep) if p)
