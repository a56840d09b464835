"""KFP component around the clean core (gate 0)."""

from kfp import dsl

from components.common.images import DATA_IMAGE


@dsl.component(base_image=DATA_IMAGE, install_kfp_package=False)
def clean(raw_data_uri: str, config_json: str, cleaned: dsl.Output[dsl.Dataset],
          metrics: dsl.Output[dsl.Metrics], gate: dsl.Output[dsl.Markdown]) -> float:
    """Cleans raw rows (a path or s3:// URI) into kept.jsonl/rejected.jsonl; returns 1.0 when gate 0 passed."""
    from components.clean.core import run_clean
    from components.common.kfp_glue import config_from_json, log_report

    return log_report(metrics, run_clean(raw_data_uri, cleaned.path, config_from_json(config_json)), gate)
