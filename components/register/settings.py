"""`register`: the MLflow run, the GGUF as a logged model and a registry version (components/register)."""

from __future__ import annotations

from pydantic import Field, model_validator

from components.common.section import Section

# Every stage of the chain whose report is a gate; register needs all of them unless a written reason narrows it.
CHAIN_GATE_STAGES = ("policy", "clean", "split", "train", "hf_check", "gguf", "evaluate")


class RegisterSection(Section):
    """The register stage (components/register): an MLflow run, the GGUF as a logged model, a registry version."""

    tracking_uri: str | None = Field(None, description=(
        "MLflow tracking URI. None: the MLFLOW_TRACKING_URI environment variable (a cluster points it at its "
        "MLflow service), and without that local_tracking_uri, so a run on a laptop with no server still "
        "registers. Resolved when registering, never at config load: a config compiled on a laptop must not "
        "carry its local path to a pod."))
    local_tracking_uri: str = Field("sqlite:///runs/mlflow.db", description=(
        "The tracking store when neither tracking_uri nor MLFLOW_TRACKING_URI names one (`mlflow ui "
        "--backend-store-uri sqlite:///runs/mlflow.db` shows it)."))
    local_artifact_location: str = Field("runs/mlartifacts", description=(
        "Where a new experiment keeps its artifacts when the tracking URI is a database file (a server decides "
        "for itself, e.g. its --artifacts-destination s3://...)."))
    experiment: str = Field("finegate", description="MLflow experiment the run is logged in; created when missing.")
    model_name: str | None = Field(None, description="Registered model name; None: run.name.")
    challenger_alias: str = Field("challenger", description="The alias a new version gets.")
    champion_alias: str = Field("champion", description=(
        "The alias serving reads; only `finegate promote` (and rollback) move it."))
    required_stages: list[str] = Field(list(CHAIN_GATE_STAGES), description=(
        "Stages whose report.json must exist in the run dir and have passed (a missing report: the chain stopped "
        "before it); every other report found there must have passed too. Never empty; leaving out a gate stage "
        "of the chain needs register.required_stages_override_reason."))
    required_stages_override_reason: str | None = Field(None, description=(
        "Written reason for a required_stages that leaves out gate stages of the chain; recorded on the model "
        "version and in the report (the version's gates.passed is false when a left-out stage has no report), "
        "and such a version needs its own --override-reason to be promoted."))
    run_artifact_suffixes: list[str] = Field([".json", ".png", ".html"], description=(
        "Top-level files of each stage dir logged with the MLflow run (reports, curves, HTML); data files (.jsonl) "
        "stay in storage and are referenced by their sha256 instead."))
    log_adapter: bool = Field(True, description=(
        "Log the LoRA adapter (tens of MB) with the run, so the model can be rebuilt from the base model."))
    log_refused_runs: bool = Field(True, description=(
        "A refused registration still leaves an MLflow run (status FAILED, the reasons as tags, the reports), so "
        "the failed gate is visible where people look for models; nothing reaches the registry."))
    http_timeout_s: int = Field(5, ge=1, description=(
        "Seconds an MLflow API call may wait for the server (MLFLOW_HTTP_REQUEST_TIMEOUT; register, promote and "
        "rollback set these variables for their own calls). With the defaults a server that accepts connections "
        "and never answers fails the first call after (1 + 1) x 5 s plus a few seconds of backoff, where "
        "mlflow's own defaults (120 s, 7 retries) wait about 20 minutes."))
    http_max_retries: int = Field(1, ge=0, le=10, description=(
        "Retries of a failed or timed-out MLflow call (MLFLOW_HTTP_REQUEST_MAX_RETRIES; mlflow allows 10)."))
    http_backoff_factor: int = Field(1, ge=0, le=120, description=(
        "Backoff between retries: factor * 2^(n-1) s (MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR)."))
    upload_timeout_s: int = Field(600, ge=1, description=(
        "Seconds an artifact upload may wait for the server's answer: a proxying server stores the whole file "
        "(a GGUF of GBs) in its artifact store before it answers."))
    reconcile_max_rounds: int = Field(20, ge=1, description=(
        "Rounds of read-check-write that concurrent registrations get to settle the challenger alias before "
        "register gives up with an error (each round ends early once the alias is on the newest version)."))

    @model_validator(mode="after")
    def _every_gate_stage_required(self) -> RegisterSection:
        missing = [s for s in CHAIN_GATE_STAGES if s not in self.required_stages]
        if not self.required_stages:
            raise ValueError(f"register.required_stages is empty: a registration needs the gate stages "
                             f"{', '.join(CHAIN_GATE_STAGES)} (no written reason makes an empty set acceptable)")
        if missing and not (self.required_stages_override_reason or "").strip():
            raise ValueError(
                f"register.required_stages leaves out the gate stage(s) {', '.join(missing)}: a model is registered "
                "only after every gate of the chain passed. Set register.required_stages_override_reason to a "
                "written reason (recorded on the model version) to narrow it")
        return self
