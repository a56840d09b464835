"""The finegate KFP v2 pipeline: clean → split → train → hf_check → gguf → evaluate, each a container,
each hand-off an artifact in the pipeline root (an s3:// bucket on MinIO on a cluster).

Gates are conditions in the DAG, so a run that fails one shows where it stopped:
    gate 0  clean passed             (contamination left, too few rows)
    gate A  best_val_loss <= gates.max_val_loss   (train fails its own task on overfitting or a policy breach)
    gate B  hf_check passed          (degenerate outputs, ROUGE-L) before any conversion runs
    gate C/D gguf passed             (F16 agrees with HF; quantized agrees with F16)
Each condition's Else branch runs `gate_failed`, which fails the run with the stage's reasons.

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


@dsl.component(base_image=DATA_IMAGE, install_kfp_package=False)
def gate_failed(gate: str, stage: str, value: float, threshold: str) -> None:
    """Fails the run at the gate that said no; the stage's report (its Metrics artifact) holds the reasons."""
    from components.common.errors import GateFailed

    raise GateFailed(f"{gate} stopped the run after stage '{stage}': value {value} does not meet {threshold}; "
                     f"see that task's metrics and report.json for the reasons")


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


def build_pipeline(cfg: RunConfig):
    """The pipeline function for one run config (its thresholds and defaults baked in)."""
    config_json = config_to_json(cfg)
    max_val_loss = cfg.gates.max_val_loss

    @dsl.pipeline(name=cfg.run.name.replace("_", "-"), description="LoRA fine-tuning with quality gates")
    def finegate_pipeline(raw_data_uri: str = cfg.data.input, base_model: str = cfg.train.base_model,
                          config_json: str = config_json):
        cleaned = clean(raw_data_uri=raw_data_uri, config_json=config_json).set_display_name("clean (gate 0)")
        on_cluster(cleaned)
        with dsl.If(cleaned.outputs["Output"] == 1.0, name="gate-0-data"):
            splits = on_cluster(split(cleaned=cleaned.outputs["cleaned"], config_json=config_json))
            with dsl.If(splits.outputs["Output"] == 1.0, name="leak-free-split"):
                trained = train(splits=splits.outputs["splits"], base_model=base_model, config_json=config_json)
                on_cluster(trained.set_display_name("train (gate A)"), gpu=True, cpu="4", memory="32G")
                with dsl.If(trained.outputs["Output"] <= max_val_loss, name="gate-A-val-loss"):
                    checked = hf_check(model=trained.outputs["model"], splits=splits.outputs["splits"],
                                       config_json=config_json).set_display_name("hf_check (gate B)")
                    on_cluster(checked, gpu=True, cpu="4", memory="32G")
                    with dsl.If(checked.outputs["Output"] == 1.0, name="gate-B-inference"):
                        quantized = gguf(model=trained.outputs["model"], splits=splits.outputs["splits"],
                                         config_json=config_json).set_display_name("gguf (gates C, D)")
                        on_cluster(quantized, cpu="8", memory="32G")
                        with dsl.If(quantized.outputs["Output"] == 1.0, name="gate-CD-fidelity"):
                            evaluated = evaluate(gguf_model=quantized.outputs["gguf_model"],
                                                 splits=splits.outputs["splits"], model=trained.outputs["model"],
                                                 base_model=base_model, config_json=config_json)
                            on_cluster(evaluated.set_display_name("evaluate"), cpu="8", memory="16G")
                            # register refuses (and fails its task) unless every stage's report passed; never
                            # cached: a cached task would report a version the registry may no longer hold.
                            registered = register(cleaned=cleaned.outputs["cleaned"], splits=splits.outputs["splits"],
                                                  model=trained.outputs["model"], samples=checked.outputs["samples"],
                                                  gguf_model=quantized.outputs["gguf_model"],
                                                  evaluation=evaluated.outputs["evaluation"], config_json=config_json)
                            registered.set_display_name("register (MLflow)").set_caching_options(False)
                            on_cluster(registered)
                            kubernetes.use_config_map_as_env(registered, config_map_name=ENDPOINTS_CONFIG_MAP,
                                                             config_map_key_to_env={"MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI"})
                        with dsl.Else():
                            gate_failed(gate="gate C/D (quantization fidelity)", stage="gguf",
                                        value=quantized.outputs["Output"], threshold="passed == 1")
                    with dsl.Else():
                        gate_failed(gate="gate B (inference quality)", stage="hf_check",
                                    value=checked.outputs["Output"], threshold="passed == 1")
                with dsl.Else():
                    gate_failed(gate="gate A (validation loss)", stage="train", value=trained.outputs["Output"],
                                threshold=f"best_val_loss <= {max_val_loss}")
            with dsl.Else():
                gate_failed(gate="leak check", stage="split", value=splits.outputs["Output"], threshold="passed == 1")
        with dsl.Else():
            gate_failed(gate="gate 0 (data)", stage="clean", value=cleaned.outputs["Output"], threshold="passed == 1")

    return finegate_pipeline


def compile_pipeline(cfg: RunConfig, package_path: str) -> str:
    from kfp import compiler

    compiler.Compiler().compile(build_pipeline(cfg), package_path=package_path)
    return package_path
