"""KFP component around the gguf core (gates C and D)."""

from kfp import dsl

from components.common.images import GGUF_IMAGE


@dsl.component(base_image=GGUF_IMAGE, install_kfp_package=False)
def gguf(model: dsl.Input[dsl.Model], splits: dsl.Input[dsl.Dataset], config_json: str,
         gguf_model: dsl.Output[dsl.Model], metrics: dsl.Output[dsl.Metrics], gate: dsl.Output[dsl.Markdown]) -> float:
    """Converts to F16 GGUF, quantizes up the ladder, compares each step with the one before; returns 1.0
    when gates C (F16 vs HF) and D (a quantized type vs F16) passed."""
    from components.common.kfp_glue import config_from_json, log_report
    from components.gguf.core import run_gguf

    return log_report(metrics, run_gguf(model.path, splits.path, gguf_model.path, config_from_json(config_json)), gate)
