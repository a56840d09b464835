"""KFP component around the register core."""

from kfp import dsl

from components.common.images import GGUF_IMAGE


@dsl.component(base_image=GGUF_IMAGE, install_kfp_package=False)
def register(cleaned: dsl.Input[dsl.Dataset], splits: dsl.Input[dsl.Dataset], model: dsl.Input[dsl.Model],
             samples: dsl.Input[dsl.Dataset], gguf_model: dsl.Input[dsl.Model], evaluation: dsl.Input[dsl.HTML],
             config_json: str, registration: dsl.Output[dsl.Artifact], metrics: dsl.Output[dsl.Metrics]) -> float:
    """Logs the run to MLflow and registers the quantized GGUF with alias challenger; fails the task when a
    stage's gate did not pass (nothing registered). MLflow is register.tracking_uri or MLFLOW_TRACKING_URI."""
    import json
    import os
    import tempfile

    from components.common.config import dump_config
    from components.common.errors import ConfigError, GateFailed
    from components.common.kfp_glue import config_from_json, log_report
    from components.register.core import run_register

    cfg = config_from_json(config_json)
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not (cfg.register_.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")):
        # The local sqlite fallback would vanish with the pod while the task reported a registered version.
        raise ConfigError("no MLflow server: set MLFLOW_TRACKING_URI on the task (configmap finegate-endpoints) "
                          "or register.tracking_uri in the run config")
    artifacts = {"clean": cleaned, "split": splits, "train": model, "hf_check": samples, "gguf": gguf_model,
                 "evaluate": evaluation}
    with tempfile.TemporaryDirectory(prefix="finegate-register-") as tmp:
        # The stage outputs arrive as separate artifacts: a run dir of links puts them where the core looks.
        run_dir = os.path.join(tmp, cfg.run.run_id or cfg.run.name)
        os.makedirs(run_dir)
        for stage, artifact in artifacts.items():
            os.symlink(artifact.path, os.path.join(run_dir, stage), target_is_directory=True)
        with open(os.path.join(run_dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump(dump_config(cfg), f, ensure_ascii=False, indent=2)
        report = run_register(run_dir, registration.path, cfg, sources={s: a.uri for s, a in artifacts.items()})
    log_report(metrics, report)
    for key in ("model_name", "model_version", "alias_uri", "mlflow_run_id", "tracking_uri"):
        if report.details.get(key) is not None:
            registration.metadata[key] = report.details[key]
    if not report.passed:
        raise GateFailed("register refused: " + "; ".join(report.reasons))
    return 1.0
