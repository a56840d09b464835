"""The finegate KFP v2 pipeline: policy -> clean -> split -> train -> hf_check -> gguf -> evaluate -> register,
each a container, each hand-off an artifact in the pipeline root (an s3:// bucket on MinIO on a cluster).

One gate rule (components/common/kfp_glue.py): every stage task returns 1.0 when its gate passed and 0.0
when it did not, and logs its figures and reasons to its Metrics artifact. Each task's output is the
condition of the next step; the `Else` branch runs that gate's `gate_failed` task, named for the gate, which
fails the run there with the stage's reasons. A run that stops shows, in its graph, the gate that stopped it:

    policy    the standard's training rules (no validation split, epochs, LoRA settings), before any compute
    gate 0    clean: contamination left, too few rows
    split     the leak check
    gate A    train: validation loss, overfitting
    gate B    hf_check: degenerate outputs, ROUGE-L, chrF, before any conversion
    gate C/D  gguf: F16 agrees with HF; a quantized type of the ladder agrees with F16
    gate E    evaluate: the shipped file on the test split, against its baselines
    registry  register: every stage report passed and matches its files, then the MLflow version

Every threshold comes from the run config compiled into the pipeline (`config_json`), the same object the
CLI and the tests use; `finegate compile --config FILE` writes the YAML for a cluster.
"""

from pathlib import Path

from kfp import dsl, kubernetes

from components.clean.component import clean
from components.common import storage
from components.common.config import RunConfig
from components.common.errors import ConfigError
from components.common.images import DATA_IMAGE
from components.common.kfp_glue import config_to_json
from components.evaluate.component import evaluate
from components.gguf.component import gguf
from components.hf_check.component import hf_check
from components.register.component import register
from components.split.component import split
from components.train.component import train
from components.train.policy_component import policy
from components.train.trainjob import S3_ENV_KEYS, S3_SECRET


@dsl.component(base_image=DATA_IMAGE, install_kfp_package=False)
def gate_failed(gate: str, stage: str, metrics: dsl.Input[dsl.Metrics]) -> None:
    """Fails the run at the gate that said no, with the reasons the stage logged to its Metrics artifact."""
    from components.common.errors import GateFailed

    reasons = metrics.metadata.get("reasons") or ["(no reasons recorded: see the stage's report.json)"]
    raise GateFailed(f"{gate} stopped the run after stage '{stage}': " + "; ".join(str(r) for r in reasons))


ENDPOINTS_CONFIG_MAP = "finegate-endpoints"
MODEL_CACHE = "/model-cache"
SCRATCH = "/scratch"
USES_MODELS = ("train", "hf_check", "gguf", "evaluate")


def on_cluster(task, name: str, cfg: RunConfig):
    """What a task's pod gets on a cluster, from the config's `cluster` section (components/common/cluster.py):
    S3 credentials (k8s/secrets), requests and limits, GPUs with a toleration for tainted GPU pools and the
    configured node labels, a scratch volume as TMPDIR, the shared model cache, retries with backoff, a
    timeout, and a non-root user (KFP's compiler adds the rest of the restricted profile: no privilege
    escalation, no capabilities, the RuntimeDefault seccomp profile)."""
    settings = cfg.cluster
    r = settings.task(name)
    kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env={k: k for k in S3_ENV_KEYS})
    task.set_cpu_request(r.cpu_request).set_cpu_limit(r.cpu_limit)
    task.set_memory_request(r.memory_request).set_memory_limit(r.memory_limit)
    gpus = r.gpus
    if name == "train" and cfg.train.nodes > 1:
        gpus = 0  # the TrainJob's nodes train (cluster.train sizes each of them); this pod only waits for them
    elif name == "train" and cfg.train.num_processes > 1:
        gpus = max(gpus, cfg.train.num_processes)  # one process per GPU of the pod
        kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory")  # NCCL
    if gpus:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(gpus)
        kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
        for key, value in settings.gpu_node_selector.items():
            kubernetes.add_node_selector(task, label_key=key, label_value=value)
    if r.scratch:
        kubernetes.add_ephemeral_volume(task, volume_name="scratch", mount_path=SCRATCH,
                                        access_modes=["ReadWriteOnce"], size=r.scratch)
        task.set_env_variable("TMPDIR", SCRATCH)
    if settings.model_cache_pvc and name in USES_MODELS:
        kubernetes.mount_pvc(task, pvc_name=settings.model_cache_pvc, mount_path=MODEL_CACHE)
        task.set_env_variable("HF_HOME", f"{MODEL_CACHE}/huggingface")
    if r.retries:
        task.set_retry(num_retries=r.retries, backoff_duration=f"{r.backoff_s}s", backoff_factor=2.0)
    if r.timeout_s:
        kubernetes.set_timeout(task, r.timeout_s)
    kubernetes.set_security_context(task, run_as_user=settings.run_as_user, run_as_group=settings.run_as_user,
                                    run_as_non_root=True)
    if name == "register":  # the cluster's MLflow server (k8s/mlflow), unless register.tracking_uri names one
        kubernetes.use_config_map_as_env(task, config_map_name=ENDPOINTS_CONFIG_MAP,
                                         config_map_key_to_env={"MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI"})
    return task


def _failed(gate: str, stage: str, task, place) -> None:
    place(gate_failed(gate=gate, stage=stage, metrics=task.outputs["metrics"]).set_display_name(f"{gate} failed"),
          "gate_failed")


def build_pipeline(cfg: RunConfig, for_cluster: bool = True):
    """The pipeline function for one run config (its thresholds and defaults baked in); `for_cluster=False`
    leaves out the pod settings (KFP's local runner)."""
    config_json = config_to_json(cfg)

    def place(task, name: str):
        # KFP's local runner would apply the env part (TMPDIR=/scratch) on a machine without /scratch.
        return on_cluster(task, name, cfg) if for_cluster else task
    # Without a run id in the config, KFP's own: a retried train pod of this run resumes its checkpoints.
    run_id = cfg.run.run_id or (dsl.PIPELINE_JOB_ID_PLACEHOLDER if cfg.cluster.checkpoint_from_run_id else "")

    @dsl.pipeline(name=cfg.run.name.replace("_", "-"), description="LoRA fine-tuning with quality gates")
    def finegate_pipeline(raw_data_uri: str = cfg.data.input, base_model: str = cfg.train.base_model,
                          config_json: str = config_json):
        checked = place(policy(config_json=config_json).set_display_name("policy (before any compute)"), "policy")
        with dsl.If(checked.outputs["Output"] == 1.0, name="policy-holds"):
            cleaned = place(clean(raw_data_uri=raw_data_uri, config_json=config_json)
                            .set_display_name("clean (gate 0)"), "clean")
            with dsl.If(cleaned.outputs["Output"] == 1.0, name="gate-0-data"):
                splits = place(split(cleaned=cleaned.outputs["cleaned"], config_json=config_json)
                               .set_display_name("split (leak check)"), "split")
                with dsl.If(splits.outputs["Output"] == 1.0, name="leak-free-split"):
                    trained = train(splits=splits.outputs["splits"], base_model=base_model, config_json=config_json,
                                    run_id=run_id)
                    place(trained.set_display_name("train (gate A)"), "train")
                    _gate_a_onwards(place, trained, checked, cleaned, splits, base_model, config_json)
                with dsl.Else():
                    _failed("leak check", "split", splits, place)
            with dsl.Else():
                _failed("gate 0 (data)", "clean", cleaned, place)
        with dsl.Else():
            _failed("policy", "policy", checked, place)

    return finegate_pipeline


def _gate_a_onwards(place, trained, checked, cleaned, splits, base_model, config_json) -> None:
    with dsl.If(trained.outputs["Output"] == 1.0, name="gate-A-training"):
        samples = hf_check(model=trained.outputs["model"], splits=splits.outputs["splits"], config_json=config_json)
        place(samples.set_display_name("hf_check (gate B)"), "hf_check")
        with dsl.If(samples.outputs["Output"] == 1.0, name="gate-B-inference"):
            quantized = gguf(model=trained.outputs["model"], splits=splits.outputs["splits"], config_json=config_json)
            place(quantized.set_display_name("gguf (gates C, D)"), "gguf")
            with dsl.If(quantized.outputs["Output"] == 1.0, name="gate-CD-fidelity"):
                evaluated = evaluate(gguf_model=quantized.outputs["gguf_model"], splits=splits.outputs["splits"],
                                     train_report=trained.outputs["train_report"], checked=checked.outputs["checked"],
                                     cleaned=cleaned.outputs["cleaned"], samples=samples.outputs["samples"],
                                     base_model=base_model, config_json=config_json)
                place(evaluated.set_display_name("evaluate (gate E)"), "evaluate")
                with dsl.If(evaluated.outputs["Output"] == 1.0, name="gate-E-test-set"):
                    _register(place, checked, cleaned, splits, trained, samples, quantized, evaluated, config_json)
                with dsl.Else():
                    _failed("gate E (test set)", "evaluate", evaluated, place)
            with dsl.Else():
                _failed("gate C/D (quantization fidelity)", "gguf", quantized, place)
        with dsl.Else():
            _failed("gate B (inference quality)", "hf_check", samples, place)
    with dsl.Else():
        _failed("gate A (training)", "train", trained, place)


def _register(place, checked, cleaned, splits, trained, samples, quantized, evaluated, config_json) -> None:
    # Never cached: a cached task would report a version the registry may no longer hold.
    registered = register(checked=checked.outputs["checked"], cleaned=cleaned.outputs["cleaned"],
                          splits=splits.outputs["splits"], adapter=trained.outputs["adapter"],
                          train_report=trained.outputs["train_report"],
                          samples=samples.outputs["samples"], gguf_model=quantized.outputs["gguf_model"],
                          evaluated=evaluated.outputs["evaluated"], config_json=config_json)
    registered.set_display_name("register (MLflow)").set_caching_options(False)
    place(registered, "register")
    with dsl.If(registered.outputs["Output"] == 0.0, name="registry-refused"):
        _failed("registry", "register", registered, place)


def unreachable_inputs(cfg: RunConfig) -> list[str]:
    """The inputs a pod cannot read: local paths (a pod has neither this checkout nor its .cache)."""
    problems = []
    if not storage.is_s3(cfg.data.input):
        problems.append(f"data.input={cfg.data.input} is a local path; upload it and give its s3:// URI")
    base = cfg.train.base_model
    hub_id = base.count("/") == 1 and not base.startswith((".", "/", "~")) and not Path(base).exists()
    if not storage.is_s3(base) and not hub_id:
        problems.append(f"train.base_model={base} is a local folder; give a hub id (org/name) or an s3:// prefix")
    return problems


def compile_pipeline(cfg: RunConfig, package_path: str, for_cluster: bool = True) -> str:
    """Writes the pipeline YAML. For a cluster (the default) the config's inputs must be reachable from a
    pod; `for_cluster=False` compiles for KFP's local runner, which runs in this checkout."""
    from kfp import compiler

    problems = unreachable_inputs(cfg) if for_cluster else []
    if problems:
        raise ConfigError("cannot compile for a cluster: " + "; ".join(problems)
                          + " (or compile with --local for KFP's local runner)")
    compiler.Compiler().compile(build_pipeline(cfg, for_cluster=for_cluster), package_path=package_path)
    return package_path
