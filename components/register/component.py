"""KFP component around the register core."""

from kfp import dsl

from components.common.images import GGUF_IMAGE


@dsl.component(base_image=GGUF_IMAGE, install_kfp_package=False)
def register(checked: dsl.Input[dsl.Artifact], cleaned: dsl.Input[dsl.Dataset], splits: dsl.Input[dsl.Dataset],
             adapter: dsl.Input[dsl.Model], train_report: dsl.Input[dsl.Artifact],
             samples: dsl.Input[dsl.Dataset], gguf_model: dsl.Input[dsl.Model], evaluated: dsl.Input[dsl.Dataset],
             config_json: str, registration: dsl.Output[dsl.Artifact], metrics: dsl.Output[dsl.Metrics],
             summary: dsl.Output[dsl.Markdown]) -> float:
    """Logs the run to MLflow and registers the quantized GGUF with alias challenger; returns 1.0 when it
    registered, 0.0 when it refused (a stage's gate did not pass: nothing registered). MLflow is
    register.tracking_uri or MLFLOW_TRACKING_URI."""
    import json
    import os
    import tempfile

    from components.common.config import dump_config
    from components.common.errors import ConfigError
    from components.common.kfp_glue import config_from_json, log_report
    from components.common.redact import redact_config
    from components.register.core import run_register
    from pipelines.summary import write_run_summary

    cfg = config_from_json(config_json)
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not (cfg.register_.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")):
        # The local sqlite fallback would vanish with the pod while the task reported a registered version.
        raise ConfigError("no MLflow server: set MLFLOW_TRACKING_URI on the task (configmap finegate-endpoints) "
                          "or register.tracking_uri in the run config")
    artifacts = {"policy": checked, "clean": cleaned, "split": splits, "hf_check": samples, "gguf": gguf_model,
                 "evaluate": evaluated}
    with tempfile.TemporaryDirectory(prefix="finegate-register-") as tmp:
        # The stage outputs arrive as separate artifacts: a run dir of links puts them where the core looks.
        run_dir = os.path.join(tmp, cfg.run.run_id or cfg.run.name)
        os.makedirs(run_dir)
        for stage, artifact in artifacts.items():
            os.symlink(artifact.path, os.path.join(run_dir, stage), target_is_directory=True)
        # The train output arrives as two of its three artifacts (register does not read the merged model).
        train_dir = os.path.join(run_dir, "train")
        os.makedirs(train_dir)
        for part in (adapter, train_report):
            for name in os.listdir(part.path):
                if not os.path.exists(os.path.join(train_dir, name)):
                    os.symlink(os.path.join(part.path, name), os.path.join(train_dir, name))
        with open(os.path.join(run_dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump(redact_config(dump_config(cfg)), f, ensure_ascii=False, indent=2)
        sources = {**{s: a.uri for s, a in artifacts.items()}, "train": train_report.uri, "train.adapter": adapter.uri}
        report = run_register(run_dir, registration.path, cfg, sources=sources)
        write_run_summary(summary.path, run_dir, cfg, report)
    passed = log_report(metrics, report)
    for key in ("model_name", "model_version", "alias_uri", "mlflow_run_id", "tracking_uri"):
        if report.details.get(key) is not None:
            registration.metadata[key] = report.details[key]
    return passed
