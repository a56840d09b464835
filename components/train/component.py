"""KFP component around the train core (the policy, then gate A)."""

from kfp import dsl

from components.common.images import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def train(splits: dsl.Input[dsl.Dataset], base_model: str, config_json: str, run_id: str, model: dsl.Output[dsl.Model],
          adapter: dsl.Output[dsl.Model], train_report: dsl.Output[dsl.Artifact], metrics: dsl.Output[dsl.Metrics],
          gate: dsl.Output[dsl.Markdown], loss_curve: dsl.Output[dsl.HTML]) -> float:
    """LoRA SFT on the splits; returns 1.0 when gate A (validation loss, overfitting) passed. The loss curve
    is also a one-file HTML artifact, so the run's page shows it. `run_id` (KFP's run id when the config sets
    none) names the checkpoint prefix, so a retried pod of the same run resumes from its last checkpoint.
    The output leaves as three artifacts (components/train/outputs.py ARTIFACT_PARTS), each with the report:
    `model` (merged, for hf_check and gguf), `adapter` and `train_report` (trainer state, curves). With
    train.nodes > 1 the task trains nowhere itself: it runs a TrainJob (components/train/trainjob_run.py)."""
    import os
    import tempfile

    from components.common.kfp_glue import config_from_json, log_report, write_image_html
    from components.train.core import run_train
    from components.train.outputs import LOSS_CURVE, hand_on

    cfg = config_from_json(config_json)
    if run_id and not cfg.run.run_id:
        cfg.run.run_id = run_id
    # Beside the artifacts, on their filesystem: handing on is a rename, not a copy of the model.
    with tempfile.TemporaryDirectory(dir=os.path.dirname(model.path), prefix=".train-") as tmp:
        out = os.path.join(tmp, "train")
        if cfg.train.nodes > 1:  # a Kubeflow Trainer TrainJob trains; its verified output is copied here
            from components.train.trainjob_run import run_trainjob

            report = run_trainjob(splits.uri, base_model, out, model.uri, cfg)
        else:
            report = run_train(splits.path, base_model, out, cfg)
        write_image_html(loss_curve.path, os.path.join(out, LOSS_CURVE), "train: loss curves and overfitting verdict")
        hand_on(out, {"model": model.path, "adapter": adapter.path, "train_report": train_report.path})
    return log_report(metrics, report, gate)
