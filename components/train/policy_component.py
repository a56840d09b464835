"""KFP component around the pre-flight policy check (the pipeline's first task, before any compute)."""

from kfp import dsl

from components.common.images import DATA_IMAGE


@dsl.component(base_image=DATA_IMAGE, install_kfp_package=False)
def policy(config_json: str, checked: dsl.Output[dsl.Artifact], metrics: dsl.Output[dsl.Metrics], gate: dsl.Output[dsl.Markdown]) -> float:
    """The standard's training rules against the run config; returns 1.0 when they hold."""
    from components.common.kfp_glue import config_from_json, log_report
    from components.train.policy import run_policy_check

    return log_report(metrics, run_policy_check(checked.path, config_from_json(config_json)), gate)
