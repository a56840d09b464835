"""KFP component around the hf_check core (gate B)."""

from kfp import dsl

from components.common.images import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def hf_check(model: dsl.Input[dsl.Model], splits: dsl.Input[dsl.Dataset], config_json: str,
             samples: dsl.Output[dsl.Dataset], metrics: dsl.Output[dsl.Metrics]) -> float:
    """Generates with the merged HF model before any conversion; returns 1.0 when gate B passed."""
    import os

    from components.common.kfp_glue import config_from_json, log_report
    from components.hf_check.core import run_hf_check

    report = run_hf_check(os.path.join(model.path, "merged"), splits.path, samples.path, config_from_json(config_json))
    log_report(metrics, report)
    return float(report.passed)
