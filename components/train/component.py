"""KFP component around the train core (the policy, then gate A)."""

from kfp import dsl

from components.common.images import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def train(splits: dsl.Input[dsl.Dataset], base_model: str, config_json: str, model: dsl.Output[dsl.Model],
          metrics: dsl.Output[dsl.Metrics], gate: dsl.Output[dsl.Markdown],
          loss_curve: dsl.Output[dsl.HTML]) -> float:
    """LoRA SFT on the splits; returns 1.0 when gate A (validation loss, overfitting) passed. The loss curve
    is also a one-file HTML artifact, so the run's page shows it."""
    from components.common.kfp_glue import config_from_json, log_report, write_image_html
    from components.train.core import run_train

    report = run_train(splits.path, base_model, model.path, config_from_json(config_json))
    write_image_html(loss_curve.path, f"{model.path}/loss_curve.png", "train: loss curves and overfitting verdict")
    return log_report(metrics, report, gate)
