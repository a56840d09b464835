"""`kfp`: where `finegate submit` sends the compiled pipeline (pipelines/submit.py)."""

from __future__ import annotations

from pydantic import Field, field_validator

from components.common.section import Section


class KfpSection(Section):
    """Where `finegate submit` sends the compiled pipeline (pipelines/submit.py). No credential lives here (the
    config is compiled into the pipeline and shown with the run): a token comes from token_env or token_file."""

    host: str | None = Field(None, description=(
        "KFP API endpoint with its scheme, e.g. http://localhost:8080 (a port-forward to svc/ml-pipeline-ui). "
        "None: $KF_PIPELINES_ENDPOINT, else kfp.Client's own discovery: the in-cluster service from a pod, or the "
        "current kubeconfig's cluster through the Kubernetes API server's service proxy."))
    ui_host: str | None = Field(None, description="Base URL of the KFP UI for the printed run link; None: host.")
    namespace: str | None = Field(None, description=(
        "Profile namespace of a multi-user KFP, where the pipeline, experiment and run are created; None on a "
        "single-user KFP. Without a host, kfp.Client also reaches KFP's service in this namespace."))
    experiment: str = Field("finegate", min_length=1, description="Experiment the run is filed under; created when missing.")
    pipeline_name: str | None = Field(None, min_length=1, description=(
        "Name of the pipeline on the server; when one of that name exists the upload becomes a new version of it. "
        "None: run.name."))
    pipeline_root: str | None = Field(None, description=(
        "Where the run's artifacts go (s3://bucket/prefix); None: the root KFP is configured with "
        "(k8s/kfp sets s3://finegate-pipelines)."))
    token_env: str = Field("FINEGATE_KFP_TOKEN", min_length=1, description=(
        "Environment variable holding a bearer token for the API (an OIDC or service-account token), sent as "
        "'Authorization: Bearer' and never printed."))
    token_file: str | None = Field(None, description=(
        "File holding a bearer token, re-read for every request (a projected service-account token such as "
        "/var/run/secrets/kubeflow/pipelines/token); used when token_env's variable is unset."))
    kube_context: str | None = Field(None, description="kubeconfig context used when there is no host; None: the current one.")
    ssl_ca_cert: str | None = Field(None, description="PEM bundle of the CA that signed the endpoint's certificate; None: certifi's.")
    proxy: str | None = Field(None, description="HTTP(S) proxy the API is reached through.")
    request_timeout_s: float = Field(10.0, gt=0, le=300, description=(
        "Seconds one API call may wait to connect, and then for each byte of the answer. urllib3 tries a "
        "failed connection 4 times, so an endpoint that never answers fails after about 4 x this."))
    wait_timeout_s: float = Field(6 * 3600.0, gt=0, description=(
        "With --wait: seconds to follow the run before giving up on it (exit 1; the run itself goes on)."))
    poll_interval_s: float = Field(15.0, gt=0, le=600, description="With --wait: seconds between two reads of the run's state.")

    @field_validator("host", "ui_host", "proxy")
    @classmethod
    def _url_without_credentials(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"'{v}' needs its scheme (http:// or https://)")
        if "@" in v.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("a URL here may not carry credentials (user:password@): the config is compiled into "
                             "the pipeline; give a token through kfp.token_env or kfp.token_file")
        return v.rstrip("/")
