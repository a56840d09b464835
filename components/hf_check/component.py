"""KFP component around the hf_check core (gate B)."""

from kfp import dsl

from components.common.images import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def hf_check(model: dsl.Input[dsl.Model], splits: dsl.Input[dsl.Dataset], config_json: str,
             samples: dsl.Output[dsl.Dataset], metrics: dsl.Output[dsl.Metrics], gate: dsl.Output[dsl.Markdown]) -> float:
    """Generates with the merged HF model before any conversion; returns 1.0 when gate B passed."""
    from components.common.kfp_glue import config_from_json, log_report
    from components.hf_check.core import run_hf_check

    return log_report(metrics, run_hf_check(model.path, splits.path, samples.path, config_from_json(config_json)), gate)
