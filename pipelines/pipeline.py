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

from kfp import dsl, kubernetes

from components.clean.component import clean
from components.common.config import RunConfig
from components.common.images import DATA_IMAGE
from components.common.kfp_glue import config_to_json
from components.evaluate.component import evaluate
from components.gguf.component import gguf
from components.hf_check.component import hf_check
from components.register.component import register
from components.split.component import split
from components.train.component import train
from components.train.policy_component import policy


@dsl.component(base_image=DATA_IMAGE, install_kfp_package=False)
def gate_failed(gate: str, stage: str, metrics: dsl.Input[dsl.Metrics]) -> None:
    """Fails the run at the gate that said no, with the reasons the stage logged to its Metrics artifact."""
    from components.common.errors import GateFailed

    reasons = metrics.metadata.get("reasons") or ["(no reasons recorded: see the stage's report.json)"]
    raise GateFailed(f"{gate} stopped the run after stage '{stage}': " + "; ".join(str(r) for r in reasons))


S3_SECRET = "finegate-s3"
S3_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")
ENDPOINTS_CONFIG_MAP = "finegate-endpoints"


def on_cluster(task, gpu: bool = False, cpu: str | None = None, memory: str | None = None):
    """What a stage's pod needs on a cluster: S3 credentials (k8s/secrets), and for GPU stages one NVIDIA GPU
    plus a toleration for tainted GPU pools. Ignored by KFP's local runner."""
    kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env={k: k for k in S3_ENV_KEYS})
    if gpu:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
        kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    if cpu:
        task.set_cpu_request(cpu)
    if memory:
        task.set_memory_request(memory)
    return task


def _failed(gate: str, stage: str, task) -> None:
    gate_failed(gate=gate, stage=stage, metrics=task.outputs["metrics"]).set_display_name(f"{gate} failed")


def build_pipeline(cfg: RunConfig):
    """The pipeline function for one run config (its thresholds and defaults baked in)."""
    config_json = config_to_json(cfg)

    @dsl.pipeline(name=cfg.run.name.replace("_", "-"), description="LoRA fine-tuning with quality gates")
    def finegate_pipeline(raw_data_uri: str = cfg.data.input, base_model: str = cfg.train.base_model,
                          config_json: str = config_json):
        checked = on_cluster(policy(config_json=config_json).set_display_name("policy (before any compute)"))
        with dsl.If(checked.outputs["Output"] == 1.0, name="policy-holds"):
            cleaned = on_cluster(clean(raw_data_uri=raw_data_uri, config_json=config_json)
                                 .set_display_name("clean (gate 0)"))
            with dsl.If(cleaned.outputs["Output"] == 1.0, name="gate-0-data"):
                splits = on_cluster(split(cleaned=cleaned.outputs["cleaned"], config_json=config_json)
                                    .set_display_name("split (leak check)"))
                with dsl.If(splits.outputs["Output"] == 1.0, name="leak-free-split"):
                    trained = train(splits=splits.outputs["splits"], base_model=base_model, config_json=config_json)
                    on_cluster(trained.set_display_name("train (gate A)"), gpu=True, cpu="4", memory="32G")
                    _gate_a_onwards(trained, checked, cleaned, splits, base_model, config_json)
                with dsl.Else():
                    _failed("leak check", "split", splits)
            with dsl.Else():
                _failed("gate 0 (data)", "clean", cleaned)
        with dsl.Else():
            _failed("policy", "policy", checked)

    return finegate_pipeline


def _gate_a_onwards(trained, checked, cleaned, splits, base_model, config_json) -> None:
    with dsl.If(trained.outputs["Output"] == 1.0, name="gate-A-training"):
        samples = hf_check(model=trained.outputs["model"], splits=splits.outputs["splits"], config_json=config_json)
        on_cluster(samples.set_display_name("hf_check (gate B)"), gpu=True, cpu="4", memory="32G")
        with dsl.If(samples.outputs["Output"] == 1.0, name="gate-B-inference"):
            quantized = gguf(model=trained.outputs["model"], splits=splits.outputs["splits"], config_json=config_json)
            on_cluster(quantized.set_display_name("gguf (gates C, D)"), cpu="8", memory="32G")
            with dsl.If(quantized.outputs["Output"] == 1.0, name="gate-CD-fidelity"):
                evaluated = evaluate(gguf_model=quantized.outputs["gguf_model"], splits=splits.outputs["splits"],
                                     model=trained.outputs["model"], checked=checked.outputs["checked"],
                                     cleaned=cleaned.outputs["cleaned"], samples=samples.outputs["samples"],
                                     base_model=base_model, config_json=config_json)
                on_cluster(evaluated.set_display_name("evaluate (gate E)"), cpu="8", memory="16G")
                with dsl.If(evaluated.outputs["Output"] == 1.0, name="gate-E-test-set"):
                    _register(checked, cleaned, splits, trained, samples, quantized, evaluated, config_json)
                with dsl.Else():
                    _failed("gate E (test set)", "evaluate", evaluated)
            with dsl.Else():
                _failed("gate C/D (quantization fidelity)", "gguf", quantized)
        with dsl.Else():
            _failed("gate B (inference quality)", "hf_check", samples)
    with dsl.Else():
        _failed("gate A (training)", "train", trained)


def _register(checked, cleaned, splits, trained, samples, quantized, evaluated, config_json) -> None:
    # Never cached: a cached task would report a version the registry may no longer hold.
    registered = register(checked=checked.outputs["checked"], cleaned=cleaned.outputs["cleaned"],
                          splits=splits.outputs["splits"], model=trained.outputs["model"],
                          samples=samples.outputs["samples"], gguf_model=quantized.outputs["gguf_model"],
                          evaluated=evaluated.outputs["evaluated"], config_json=config_json)
    registered.set_display_name("register (MLflow)").set_caching_options(False)
    on_cluster(registered)
    kubernetes.use_config_map_as_env(registered, config_map_name=ENDPOINTS_CONFIG_MAP,
                                     config_map_key_to_env={"MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI"})
    with dsl.If(registered.outputs["Output"] == 0.0, name="registry-refused"):
        _failed("registry", "register", registered)


def compile_pipeline(cfg: RunConfig, package_path: str) -> str:
    from kfp import compiler

    compiler.Compiler().compile(build_pipeline(cfg), package_path=package_path)
    return package_path
