"""KFP component around the evaluate core."""

from kfp import dsl

from components.common.images import GGUF_IMAGE


@dsl.component(base_image=GGUF_IMAGE, install_kfp_package=False)
def evaluate(gguf_model: dsl.Input[dsl.Model], splits: dsl.Input[dsl.Dataset], model: dsl.Input[dsl.Model],
             base_model: str, config_json: str, evaluation: dsl.Output[dsl.HTML],
             metrics: dsl.Output[dsl.Metrics]) -> float:
    """Test-set metrics of the quantized model against the base model and a heuristic baseline;
    returns 1.0 when the evaluation passed."""
    import os

    from components.common.kfp_glue import config_from_json, log_report
    from components.evaluate.core import run_evaluate

    cfg = config_from_json(config_json)
    quant = cfg.gguf.quant_types[0].upper()
    report = run_evaluate(os.path.join(gguf_model.path, f"model-{quant}.gguf"), splits.path, evaluation.path, cfg,
                          base_model=base_model, train_dir=model.path)
    log_report(metrics, report)
    return float(report.passed)
