"""KFP component around the train core (gate A)."""

from kfp import dsl

from components.common.images import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def train(splits: dsl.Input[dsl.Dataset], base_model: str, config_json: str, model: dsl.Output[dsl.Model],
          metrics: dsl.Output[dsl.Metrics]) -> float:
    """LoRA SFT on the splits; returns best_val_loss, which the pipeline's gate A compares with
    gates.max_val_loss. An overfitting verdict or a policy violation fails the task itself."""
    from components.common.errors import GateFailed
    from components.common.kfp_glue import config_from_json, log_report
    from components.train.core import run_train

    report = run_train(splits.path, base_model, model.path, config_from_json(config_json))
    log_report(metrics, report)
    if not report.passed:
        raise GateFailed("gate A (train): " + "; ".join(report.reasons))
    return float(report.metrics["best_val_loss"])
