"""KFP component around the split core."""

from kfp import dsl

from components.common.images import DATA_IMAGE


@dsl.component(base_image=DATA_IMAGE, install_kfp_package=False)
def split(cleaned: dsl.Input[dsl.Dataset], config_json: str, splits: dsl.Output[dsl.Dataset],
          metrics: dsl.Output[dsl.Metrics]) -> float:
    """Splits kept.jsonl into train/val/test; returns 1.0 when the leak check passed."""
    import os

    from components.common.kfp_glue import config_from_json, log_report
    from components.split.core import run_split

    report = run_split(os.path.join(cleaned.path, "kept.jsonl"), splits.path, config_from_json(config_json))
    log_report(metrics, report)
    return float(report.passed)
