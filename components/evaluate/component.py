"""KFP component around the evaluate core (gate E)."""

from kfp import dsl

from components.common.images import GGUF_IMAGE


@dsl.component(base_image=GGUF_IMAGE, install_kfp_package=False)
def evaluate(gguf_model: dsl.Input[dsl.Model], splits: dsl.Input[dsl.Dataset], train_report: dsl.Input[dsl.Artifact],
             checked: dsl.Input[dsl.Artifact], cleaned: dsl.Input[dsl.Dataset], samples: dsl.Input[dsl.Dataset],
             base_model: str, config_json: str, evaluated: dsl.Output[dsl.Dataset], report_html: dsl.Output[dsl.HTML],
             metrics: dsl.Output[dsl.Metrics], gate: dsl.Output[dsl.Markdown]) -> float:
    """Test-set metrics of the shipped quantized model against the base model and a heuristic baseline;
    returns 1.0 when gate E passed. The earlier stages' outputs come in so report.html shows their gates
    exactly as `finegate run` does (pipelines/local_chain.py passes the same reports); report.html, one
    self-contained file, is also the task's HTML artifact."""
    import os
    import shutil

    from components.common.kfp_glue import config_from_json, log_report
    from components.evaluate.core import run_evaluate

    reports = [checked.path, cleaned.path, splits.path, train_report.path, samples.path, gguf_model.path]
    report = run_evaluate(gguf_model.path, splits.path, evaluated.path, config_from_json(config_json),
                          base_model=base_model, train_dir=train_report.path, reports=reports)
    if os.path.isfile(os.path.join(evaluated.path, "report.html")):
        shutil.copyfile(os.path.join(evaluated.path, "report.html"), report_html.path)
    return log_report(metrics, report, gate)
