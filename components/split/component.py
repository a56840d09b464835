"""KFP component around the split core (the leak-free split)."""

from kfp import dsl

from components.common.images import DATA_IMAGE


@dsl.component(base_image=DATA_IMAGE, install_kfp_package=False)
def split(cleaned: dsl.Input[dsl.Dataset], config_json: str, splits: dsl.Output[dsl.Dataset],
          metrics: dsl.Output[dsl.Metrics], gate: dsl.Output[dsl.Markdown]) -> float:
    """Splits clean's output into train/val/test; returns 1.0 when the leak check passed."""
    from components.common.kfp_glue import config_from_json, log_report
    from components.split.core import run_split

    return log_report(metrics, run_split(cleaned.path, splits.path, config_from_json(config_json)), gate)
